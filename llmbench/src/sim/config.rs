//! How a simulator behaves: [`SimConfig`] and the choices it is made of
//! (protocols, timing distributions, output lengths, faults).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// How a [`super::Simulator`] behaves: the protocols it speaks, its timing
/// model, output lengths, concurrency, seed and injected faults.
///
/// ```
/// use std::time::Duration;
/// use llmbench::sim::{Fault, Itl, OutputLen, Protocol, SimConfig};
///
/// let config = SimConfig::new()
///     .protocols(&[Protocol::Ollama, Protocol::LlamaCpp])
///     .ttft_base(Duration::from_millis(50))
///     .per_prompt_token(Duration::from_micros(100))
///     .itl(Itl::Normal { mean: Duration::from_millis(10), std_dev: Duration::from_millis(2) })
///     .output_tokens(OutputLen::Uniform { min: 32, max: 128 })
///     .max_concurrency(8)
///     .seed(7)
///     .fault_rate(0.05, Fault::Status(503))
///     .loading_for(Duration::from_secs(2));
/// ```
#[must_use]
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub(crate) protocols: Vec<Protocol>,
    pub(crate) ttft_base: Duration,
    pub(crate) per_prompt_token: Duration,
    pub(crate) itl: Itl,
    pub(crate) output: OutputLen,
    pub(crate) max_concurrency: usize,
    pub(crate) seed: u64,
    pub(crate) model: String,
    pub(crate) fault: Option<(FaultPlan, Fault)>,
    pub(crate) loading: Duration,
    pub(crate) record_truth: bool,
    pub(crate) record_bodies: bool,
}

/// Which requests a fault strikes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum FaultPlan {
    /// Requests n, 2n, 3n, ...; n = 0 never.
    Every(u64),
    /// Each request with this probability, drawn from the seeded generator
    /// of its index.
    Rate(f64),
}

impl SimConfig {
    /// The defaults: all four protocols, 20 ms base time to first token,
    /// 50 µs per prompt token, a constant 8 ms between tokens, as many output
    /// tokens as the request's budget (16 if it has none), 64 requests at a
    /// time (more queue), seed 0, model `llmbench-sim`, no fault, no loading
    /// period, truth recorded.
    pub fn new() -> Self {
        SimConfig {
            protocols: Protocol::ALL.to_vec(),
            ttft_base: Duration::from_millis(20),
            per_prompt_token: Duration::from_micros(50),
            itl: Itl::Constant(Duration::from_millis(8)),
            output: OutputLen::FromRequest,
            max_concurrency: 64,
            seed: 0,
            model: "llmbench-sim".to_owned(),
            fault: None,
            loading: Duration::ZERO,
            record_truth: true,
            record_bodies: false,
        }
    }

    /// Serve only these protocols' routes (an empty list serves all four).
    ///
    /// Routes two protocols share (`/health`, `/v1/*`) answer in the shape of
    /// the first served of OpenAI, llama.cpp, TGI: with llama.cpp alone,
    /// `/v1/chat/completions` carries llama.cpp's `timings`.
    pub fn protocols(mut self, protocols: &[Protocol]) -> Self {
        let mut list: Vec<Protocol> = Protocol::ALL
            .into_iter()
            .filter(|p| protocols.contains(p))
            .collect();
        if list.is_empty() {
            list = Protocol::ALL.to_vec();
        }
        self.protocols = list;
        self
    }

    /// Time to first token of an empty prompt, counted from when the request
    /// gets a concurrency slot.
    pub fn ttft_base(mut self, ttft: Duration) -> Self {
        self.ttft_base = ttft;
        self
    }

    /// Prefill cost per prompt token, added to the time to first token: long
    /// prompts really take longer.
    pub fn per_prompt_token(mut self, per_token: Duration) -> Self {
        self.per_prompt_token = per_token;
        self
    }

    /// The gap between consecutive tokens.
    pub fn itl(mut self, itl: Itl) -> Self {
        self.itl = itl;
        self
    }

    /// How many tokens each answer has (always capped by the request's
    /// budget: `max_tokens`, `num_predict`, `max_new_tokens` or `n_predict`,
    /// and at least 1).
    pub fn output_tokens(mut self, output: OutputLen) -> Self {
        self.output = output;
        self
    }

    /// How many requests are served at once; further requests wait in a
    /// first-in, first-out queue. 0 is taken as 1, and more than 65 536 as
    /// 65 536.
    pub fn max_concurrency(mut self, slots: usize) -> Self {
        self.max_concurrency = slots;
        self
    }

    /// The seed of every random choice (output lengths, gaps, words, which
    /// requests a [`SimConfig::fault_rate`] strikes). Request `n` always
    /// draws the same values for the same seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The model name it lists and puts in every answer.
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = model.into();
        self
    }

    /// Inject `fault` into every generation request (replaces any earlier
    /// fault setting).
    pub fn fault(self, fault: Fault) -> Self {
        self.fault_every(1, fault)
    }

    /// Inject `fault` into every `n`-th generation request, counting from 1:
    /// requests n, 2n, 3n, ... (replaces any earlier fault setting; `n = 0`
    /// injects nothing).
    pub fn fault_every(mut self, n: u64, fault: Fault) -> Self {
        self.fault = Some((FaultPlan::Every(n), fault));
        self
    }

    /// Inject `fault` into each generation request with probability `p`
    /// (clamped to 0..=1; NaN is 0). Whether request `n` is struck depends
    /// only on the seed and `n`, so a run is repeatable. Replaces any earlier
    /// fault setting.
    pub fn fault_rate(mut self, p: f64, fault: Fault) -> Self {
        let p = if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
        self.fault = Some((FaultPlan::Rate(p), fault));
        self
    }

    /// Pretend to load a model for this long after it starts: `/health`
    /// answers 503 in each protocol's own shape, and so does every
    /// generation request (and llama.cpp's other routes, as llama-server
    /// does); Ollama's probes keep answering, its `/api/ps` lists no model.
    pub fn loading_for(mut self, loading: Duration) -> Self {
        self.loading = loading;
        self
    }

    /// Keep the [`super::Truth`] of every request (the default), or keep
    /// none: a long-running simulator (`llmbench sim`) must not grow without
    /// limit. Without it [`super::Simulator::truth`] is empty, and
    /// [`super::Simulator::requests_seen`] still counts.
    pub fn record_truth(mut self, record: bool) -> Self {
        self.record_truth = record;
        self
    }

    /// Keep each generation request's body in its [`super::Truth`]
    /// ([`super::Truth::body`]), for a test to see what a client sent
    /// (off by default: prompts can be long).
    pub fn record_bodies(mut self, record: bool) -> Self {
        self.record_bodies = record;
        self
    }

    /// Whether `protocol` is served.
    pub(crate) fn serves(&self, protocol: Protocol) -> bool {
        self.protocols.contains(&protocol)
    }

    /// The protocol that owns a route several protocols have (`/health`,
    /// `/v1/*`): the first served of OpenAI, llama.cpp, TGI.
    pub(crate) fn shared_owner(&self) -> Option<Protocol> {
        [Protocol::OpenAi, Protocol::LlamaCpp, Protocol::Tgi]
            .into_iter()
            .find(|p| self.serves(*p))
    }

    /// The protocol whose shape an unknown route's 404 takes.
    pub(crate) fn primary(&self) -> Protocol {
        self.shared_owner().unwrap_or(Protocol::Ollama)
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// A wire protocol the simulator speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// OpenAI-compatible: `/v1/chat/completions`, `/v1/completions`,
    /// `/v1/models`, `/health` (as vLLM serves them).
    OpenAi,
    /// Ollama: `/api/chat`, `/api/generate` (NDJSON), `/api/tags`,
    /// `/api/ps`, `/api/version`.
    Ollama,
    /// HuggingFace TGI: `/generate`, `/generate_stream`, `/info`, `/health`,
    /// and `/v1/chat/completions`.
    Tgi,
    /// llama.cpp's `llama-server`: `/completion` with `timings`, `/health`,
    /// `/props`, `/slots`, `/tokenize`, and `/v1/*` with `timings`.
    LlamaCpp,
}

impl Protocol {
    /// All four, in the order routes are resolved.
    pub const ALL: [Protocol; 4] = [
        Protocol::OpenAi,
        Protocol::Ollama,
        Protocol::Tgi,
        Protocol::LlamaCpp,
    ];

    /// The name used on the command line and in `--engine KIND=URL`:
    /// `openai`, `ollama`, `tgi`, `llamacpp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::OpenAi => "openai",
            Protocol::Ollama => "ollama",
            Protocol::Tgi => "tgi",
            Protocol::LlamaCpp => "llamacpp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Protocol {
    type Err = String;

    /// `openai`, `ollama`, `tgi`, `llamacpp` (also `llama.cpp`,
    /// `llama-cpp`), any case.
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "openai" => Ok(Protocol::OpenAi),
            "ollama" => Ok(Protocol::Ollama),
            "tgi" => Ok(Protocol::Tgi),
            "llamacpp" | "llama.cpp" | "llama-cpp" => Ok(Protocol::LlamaCpp),
            other => Err(format!(
                "unknown protocol `{other}`: expected openai, ollama, tgi or llamacpp"
            )),
        }
    }
}

/// The distribution of the gap between consecutive tokens of one answer.
///
/// Draws come from a ChaCha generator seeded with ([`SimConfig::seed`],
/// request index), so they are the same on every run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Itl {
    /// Always the same gap.
    Constant(Duration),
    /// Uniform between `min` and `max`, both included (swapped if reversed).
    Uniform {
        /// The shortest gap.
        min: Duration,
        /// The longest gap.
        max: Duration,
    },
    /// Normal (Gaussian), drawn by Box-Muller; negative draws become zero.
    Normal {
        /// The mean gap.
        mean: Duration,
        /// The standard deviation.
        std_dev: Duration,
    },
}

/// How many tokens an answer has. Whatever is chosen is capped by the
/// request's budget (`max_tokens`, `max_completion_tokens`, Ollama's
/// `options.num_predict`, TGI's `parameters.max_new_tokens`, llama.cpp's
/// `n_predict`) and is at least 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputLen {
    /// Exactly the request's budget, or 16 when it has none.
    FromRequest,
    /// This many tokens.
    Fixed(u32),
    /// Uniform between `min` and `max`, both included (swapped if reversed).
    Uniform {
        /// The fewest tokens.
        min: u32,
        /// The most tokens.
        max: u32,
    },
}

/// A failure the simulator injects, to prove a client reports it instead of
/// hanging, panicking or counting it as success. Every error is written in
/// the shape of the protocol the request came in on.
///
/// "After n tokens" means right after the n-th content token was written; with
/// n = 0 the fault happens when the first token is due; when the answer has
/// fewer than n tokens, right after its last one. Non-streamed requests get
/// the nearest equivalent, described on each variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer at once, without queueing, with this HTTP status and the
    /// protocol's error body: OpenAI and llama.cpp
    /// `{"error":{"message","type","code"}}` (429 → `rate_limit_error`, 503 →
    /// `unavailable_error`, other 5xx → `server_error`, ...), Ollama
    /// `{"error":"..."}`, TGI `{"error","error_type"}` (429 → "Model is
    /// overloaded", `overloaded`). A status outside 100..=999 is sent as 500.
    Status(u16),
    /// Close the connection after reading the request, before any byte of a
    /// response. Takes no concurrency slot.
    Drop,
    /// Streams: abort the connection after n content tokens (no final event,
    /// no `[DONE]`, no final empty chunk of the chunked encoding), so the
    /// client sees a body error or early EOF. Non-streamed: when token n is
    /// due, send the headers and half a body, then abort.
    CutAfter(u32),
    /// Streams: after n content tokens write an event that is not JSON
    /// (`data: {not json` or the NDJSON line `{not json`), then go on
    /// normally. Non-streamed: the body is `{not json` (status 200).
    MalformedAfter(u32),
    /// Streams: after n tokens write the protocol's mid-stream error and end
    /// the stream: OpenAI and llama.cpp the event
    /// `data: {"error":{"message":"simulated engine failure","type":"server_error","code":500}}`
    /// (no `[DONE]`), Ollama the NDJSON line `{"error":"simulated engine failure"}`,
    /// TGI the event `data: {"error":"Request failed during generation: simulated engine failure","error_type":"generation"}`.
    /// Non-streamed: when token n is due, answer 500 (TGI: 424) with the
    /// protocol's error body.
    ErrorEventAfter(u32),
    /// Accept the request, send the response headers and nothing more until
    /// the client drops the connection. Takes no concurrency slot.
    Stall,
}

impl Fault {
    /// Whether the request never gets a slot nor generates a token.
    pub(crate) fn skips_generation(self) -> bool {
        matches!(self, Fault::Status(_) | Fault::Drop | Fault::Stall)
    }
}
