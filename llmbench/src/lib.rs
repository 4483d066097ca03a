//! # llmbench
//!
//! A benchmark harness for LLM serving engines, used the way criterion is:
//! write scenarios as functions under `benches/`, mark them `#[llm_bench]`,
//! and run `cargo bench`.
//!
//! ```no_run
//! use llmbench::prelude::*;
//!
//! /// Chat: short prompts, short answers, four users for ten seconds.
//! #[llm_bench]
//! fn chat() -> Bench {
//!     Bench::new()
//!         .workload(Workload::prompts(["Say hello.", "What is 2+2?"]).max_tokens(32))
//!         .load(Load::users(4).for_secs(10))
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     llmbench::main()
//! }
//! ```
//!
//! With no engine configured, each scenario runs against the built-in
//! simulated engine ([`sim`]); `--engine openai=http://HOST:PORT,model=NAME`
//! points it at any OpenAI-compatible server. Every request is appended to
//! `requests.jsonl` as it finishes and summarised in `summary.json` under
//! `target/llmbench/runs/<timestamp>/`. The metrics are defined in
//! `docs/metrics.md`.

#![warn(missing_docs)]

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
pub mod baseline;
mod bench;
pub mod engine;
mod error;
pub mod harness;
pub mod load;
pub mod measure;
pub mod monitor;
pub mod report;
pub mod scenario;
pub mod sim;
mod slo;
pub mod workload;

pub use bench::{Bench, ValidBench, DEFAULT_SEED};
pub use engine::{Engine, EngineKind};
pub use error::{Error, ErrorKind, Result};
pub use harness::main;
pub use llmbench_macros::llm_bench;
pub use load::Load;
pub use slo::{Slo, SloChain, SloMetric, SloThreshold};
pub use workload::{Mode, Workload, DEFAULT_MAX_TOKENS};

/// Everything a bench file needs: `use llmbench::prelude::*;`.
pub mod prelude {
    pub use crate::load::Capacity;
    pub use crate::workload::Lengths;
    pub use crate::{llm_bench, Bench, Engine, Load, Slo, SloChain, SloMetric, Workload};
}
