//! What each request asks for: the prompts, the API mode and the output budget.

use std::sync::Arc;

/// How a prompt is sent to the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// As one user message to a chat endpoint (`/v1/chat/completions`), so the
    /// engine applies its chat template.
    #[default]
    Chat,
    /// As raw text to a completion endpoint (`/v1/completions`).
    Completion,
}

/// The requests a scenario sends.
///
/// ```
/// use llmbench::prelude::*;
/// let w = Workload::prompts(["Say hello.", "Name three colours."]).max_tokens(32);
/// assert_eq!(w.prompt_count(), 2);
/// ```
#[must_use]
#[derive(Clone, Debug)]
pub struct Workload {
    pub(crate) prompts: Arc<[String]>,
    pub(crate) mode: Mode,
    pub(crate) max_tokens: u32,
    pub(crate) stream: bool,
}

/// Output budget used when a workload does not set one.
pub const DEFAULT_MAX_TOKENS: u32 = 128;

impl Workload {
    /// Requests drawn from this list of prompts (in a seeded random order),
    /// sent as chat messages with a budget of [`DEFAULT_MAX_TOKENS`].
    pub fn prompts<I, S>(prompts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Workload {
            prompts: prompts.into_iter().map(Into::into).collect(),
            mode: Mode::Chat,
            max_tokens: DEFAULT_MAX_TOKENS,
            stream: true,
        }
    }

    /// Send prompts as raw text to the completion endpoint.
    pub fn completion(mut self) -> Self {
        self.mode = Mode::Completion;
        self
    }

    /// Send prompts as chat messages (the default).
    pub fn chat_mode(mut self) -> Self {
        self.mode = Mode::Chat;
        self
    }

    /// The most tokens each request may generate (`max_tokens`).
    pub fn max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = max_tokens;
        self
    }

    /// Ask for answers in one piece instead of streamed (to compare the
    /// two); each answer is then one arrival, so TTFT equals e2e latency.
    pub fn stream(mut self, stream: bool) -> Self {
        self.stream = stream;
        self
    }

    /// How many prompts there are to draw from.
    pub fn prompt_count(&self) -> usize {
        self.prompts.len()
    }

    /// The API mode requests use.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The output budget per request.
    pub fn output_budget(&self) -> u32 {
        self.max_tokens
    }
}
