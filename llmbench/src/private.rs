//! What `#[llm_bench]` output uses. Not part of the public API: names here may
//! change in any release.

pub use linkme;

use crate::bench::Bench;
use crate::error::Result;

/// One registered scenario function.
#[derive(Debug)]
pub struct BenchEntry {
    /// The trial name (the function name unless `name = "..."` was given).
    pub name: &'static str,
    /// The function's doc comment, trimmed; empty if it has none.
    pub description: &'static str,
    /// `module_path!()` where the function lives.
    pub module_path: &'static str,
    /// `file!()` of the function.
    pub file: &'static str,
    /// `line!()` of the function.
    pub line: u32,
    /// Calls the function.
    pub make: fn() -> Result<Bench>,
}

/// Every `#[llm_bench]` function in the binary.
#[linkme::distributed_slice]
pub static BENCHES: [BenchEntry];

/// What a `#[llm_bench]` function may return: `Bench` or `Result<Bench>`.
#[diagnostic::on_unimplemented(
    message = "a `#[llm_bench]` function must return `Bench` or `llmbench::Result<Bench>`, not `{Self}`",
    label = "this type is returned here"
)]
pub trait IntoBench {
    /// Turn the function's value into a scenario.
    fn into_bench(self) -> Result<Bench>;
}

impl IntoBench for Bench {
    fn into_bench(self) -> Result<Bench> {
        Ok(self)
    }
}

impl IntoBench for Result<Bench> {
    fn into_bench(self) -> Result<Bench> {
        self
    }
}
