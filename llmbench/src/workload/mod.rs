//! What each request asks for: the prompts (a list, a template, a use-case
//! preset or a dataset, single prompts or conversations), their token
//! lengths and shared prefix, the API mode and the output budget.

mod check;
mod corpus;
mod dataset;
mod lengths;
pub(crate) mod prepare;
mod preset;
mod synth;
mod template;
mod tokenizer_file;
pub(crate) mod turns;

use std::sync::Arc;

pub use check::{PromptLengths, WorkloadSummary};
pub use lengths::Lengths;
pub use prepare::LengthSource;
pub use preset::Preset;
pub use turns::{Role, Turn};

use crate::error::{Error, Result};

/// How a prompt is sent to the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// As one user message to a chat endpoint (`/v1/chat/completions`), so the
    /// engine applies its chat template; a conversation as its turns, in order.
    #[default]
    Chat,
    /// As raw text to a completion endpoint (`/v1/completions`); a
    /// conversation as one text, a `Role: content` paragraph per turn.
    Completion,
}

/// One prompt of a workload, with its own output budget if it has one (a
/// dataset's `max_tokens`).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Prompt {
    /// The prompt; in a conversation, its last user message.
    pub text: String,
    pub max_tokens: Option<u32>,
    /// The turns of a conversation before `text` (a dataset's `messages`);
    /// empty for a single prompt.
    pub history: Arc<[Turn]>,
}

/// The requests a scenario sends.
///
/// ```
/// use llmbench::prelude::*;
/// let w = Workload::prompts(["Say hello.", "Name three colours."]).max_tokens(32);
/// assert_eq!(w.prompt_count(), 2);
/// // A use case: RAG prompts of 1K, 2K and 4K tokens (one result set each).
/// let rag = Workload::rag().prompt_tokens([1024, 2048, 4096]);
/// assert_eq!(rag.preset_kind(), Some(llmbench::workload::Preset::Rag));
/// ```
#[must_use]
#[derive(Clone, Debug)]
pub struct Workload {
    pub(crate) prompts: Arc<[Prompt]>,
    pub(crate) mode: Mode,
    pub(crate) max_tokens: u32,
    pub(crate) stream: bool,
    pub(crate) preset: Option<Preset>,
    /// Fit every prompt to a length drawn from this, in the engine's tokens.
    pub(crate) prompt_tokens: Option<Lengths>,
    /// Draw every answer budget from this (instead of `max_tokens`).
    pub(crate) output_tokens: Option<Lengths>,
    /// Ask the engine to generate the whole budget (`ignore_eos`,
    /// `min_tokens`) where it allows.
    pub(crate) exact_output: bool,
    /// Send only this many prompts, a seeded sample (datasets).
    pub(crate) sample: Option<usize>,
    /// Begin every prompt with the same corpus text of this many tokens.
    pub(crate) shared_prefix_tokens: Option<u32>,
    /// Count prompt tokens with this `tokenizer.json` where the engine has
    /// no tokenize endpoint.
    pub(crate) tokenizer_file: Option<std::path::PathBuf>,
    /// Why the prompts could not be made (a template's error), reported
    /// when the scenario is validated.
    pub(crate) invalid: Option<String>,
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
        Self::from_prompts(prompts.into_iter().map(|p| Prompt {
            text: p.into(),
            max_tokens: None,
            history: Arc::new([]),
        }))
    }

    pub(crate) fn from_prompts(prompts: impl IntoIterator<Item = Prompt>) -> Self {
        Workload {
            prompts: prompts.into_iter().collect(),
            mode: Mode::Chat,
            max_tokens: DEFAULT_MAX_TOKENS,
            stream: true,
            preset: None,
            prompt_tokens: None,
            output_tokens: None,
            exact_output: false,
            sample: None,
            shared_prefix_tokens: None,
            tokenizer_file: None,
            invalid: None,
        }
    }

    /// The use case `preset`: its built-in prompts, fitted to its prompt
    /// lengths, answers of its output lengths (forced where the engine
    /// allows), and its primary metric marked in `summary.json`.
    pub fn preset(preset: Preset) -> Self {
        let mut w = Self::prompts(preset.prompts().iter().copied());
        w.preset = Some(preset);
        w.prompt_tokens = Some(preset.prompt_tokens());
        w.output_tokens = Some(preset.output_tokens());
        w.exact_output = true;
        w
    }

    /// Chat: 5-50 prompt tokens (chat template included), 10-100 output
    /// tokens; judged by TTFT.
    pub fn chat() -> Self {
        Self::preset(Preset::Chat)
    }

    /// Creative writing: 5-20 prompt tokens, 500-2,000 output tokens;
    /// judged by output tokens per second.
    pub fn creative() -> Self {
        Self::preset(Preset::Creative)
    }

    /// RAG: 1,000-4,000 prompt tokens of context and a question, 10-100
    /// output tokens; judged by prompt processing time.
    pub fn rag() -> Self {
        Self::preset(Preset::Rag)
    }

    /// Document work: 2,000-8,000 prompt tokens, 500-2,000 output tokens;
    /// judged by end-to-end latency.
    pub fn document() -> Self {
        Self::preset(Preset::Document)
    }

    /// Fit every prompt to a length drawn from `lengths`, in the engine's
    /// tokens as it reports them (in chat mode its chat template included):
    /// text from a built-in corpus precedes the prompt's own words, or the
    /// words are cut. A list (`[1024, 2048, 4096]`) runs each value as its
    /// own result set under `cargo bench`.
    pub fn prompt_tokens(mut self, lengths: impl Into<Lengths>) -> Self {
        self.prompt_tokens = Some(lengths.into());
        self
    }

    /// Begin every prompt with the same `tokens` tokens of text (from the
    /// built-in corpus, chosen by the scenario's seed), so that an engine's
    /// prompt cache sees a prefix that all requests share. Counted with
    /// the engine's tokenizer, as prompt lengths are. With
    /// [`Workload::prompt_tokens`], a prompt's length includes the prefix
    /// and the rest differs from prompt to prompt; without, the prefix and
    /// a blank line go before each prompt as written (before the first turn
    /// of a conversation).
    ///
    /// ```
    /// use llmbench::prelude::*;
    /// // 2,048-token prompts whose first 1,536 tokens are the same.
    /// let w = Workload::rag().prompt_tokens(2048).shared_prefix_tokens(1536);
    /// ```
    pub fn shared_prefix_tokens(mut self, tokens: u32) -> Self {
        self.shared_prefix_tokens = Some(tokens);
        self
    }

    /// Count prompt tokens with the Hugging Face `tokenizer.json` at `path`
    /// (the model's own, from its repository) where the engine has no
    /// tokenize endpoint (Ollama, TGI here): the prompt lengths of
    /// [`Workload::prompt_tokens`] are then exact whenever the file is the
    /// engine's tokenizer; the tokens its chat template or BOS adds are
    /// measured by a probe request. An engine's own tokenizer still comes
    /// first. Needs the `tokenizer-json` feature (on by default).
    ///
    /// ```no_run
    /// use llmbench::prelude::*;
    /// let w = Workload::rag()
    ///     .prompt_tokens(2048)
    ///     .tokenizer_json("models/llama-3.1-8b/tokenizer.json");
    /// ```
    pub fn tokenizer_json(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.tokenizer_file = Some(path.into());
        self
    }

    /// Draw each answer's length from `lengths`, and ask the engine to
    /// generate all of it (`ignore_eos` and `min_tokens` on OpenAI-compatible
    /// and llama.cpp servers; elsewhere it is the budget). What the engine
    /// produced is what is counted.
    pub fn output_tokens(mut self, lengths: impl Into<Lengths>) -> Self {
        self.output_tokens = Some(lengths.into());
        self.exact_output = true;
        self
    }

    /// Whether to ask the engine to generate the whole budget (on by
    /// default for presets and [`Workload::output_tokens`]); turn it off for
    /// a hosted API that rejects `ignore_eos` and `min_tokens`.
    pub fn exact_output(mut self, exact: bool) -> Self {
        self.exact_output = exact;
        self
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

    /// The most tokens each request may generate (`max_tokens`), for every
    /// request (replacing a preset's output lengths).
    pub fn max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = max_tokens;
        self.output_tokens = None;
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

    /// The output budget per request (the largest, when answers have
    /// lengths of their own).
    pub fn output_budget(&self) -> u32 {
        match &self.output_tokens {
            Some(lengths) => lengths.largest(),
            None => self
                .prompts
                .iter()
                .filter_map(|p| p.max_tokens)
                .max()
                .unwrap_or(self.max_tokens)
                .max(self.max_tokens),
        }
    }

    /// The use case, if the workload is a preset.
    pub fn preset_kind(&self) -> Option<Preset> {
        self.preset
    }

    /// The prompt lengths prompts are fitted to, if any.
    pub fn prompt_lengths(&self) -> Option<&Lengths> {
        self.prompt_tokens.as_ref()
    }

    /// Answers no longer than `cap` tokens (smoke runs).
    pub(crate) fn capped(&mut self, cap: u32) {
        self.max_tokens = self.max_tokens.min(cap);
        if let Some(o) = &self.output_tokens {
            self.output_tokens = Some(o.capped(cap));
        }
    }

    /// The tokens every prompt begins with, if they share a prefix.
    pub fn shared_prefix(&self) -> Option<u32> {
        self.shared_prefix_tokens
    }

    /// Check every field; the error names the field.
    pub(crate) fn validate(&self) -> Result<()> {
        if let Some(why) = &self.invalid {
            return Err(Error::scenario(why.clone()));
        }
        if let Some(l) = &self.prompt_tokens {
            l.validate("workload.prompt_tokens")?;
        }
        if let Some(n) = self.shared_prefix_tokens {
            if n == 0 {
                return Err(Error::scenario(
                    "workload.shared_prefix_tokens: must be at least 1 (got 0)",
                ));
            }
            if let Some(shortest) = self.prompt_tokens.as_ref().map(Lengths::smallest) {
                if shortest <= n {
                    return Err(Error::scenario(format!(
                        "workload.shared_prefix_tokens: a prefix of {n} tokens leaves no room \
                         for the request in prompts of {shortest} tokens (the shortest of \
                         workload.prompt_tokens); prompts are the prefix and their own text"
                    )));
                }
            }
        }
        let conversations = self
            .prompts
            .iter()
            .filter(|p| !p.history.is_empty())
            .count();
        if self.prompt_tokens.is_some() && conversations > 0 {
            return Err(Error::scenario(format!(
                "workload.prompt_tokens: {conversations} of the {} prompts are conversations \
                 of several turns, and only single prompts are fitted to a length; send them \
                 as written (no prompt_tokens), or keep single-turn lines only",
                self.prompts.len()
            )));
        }
        if let Some(l) = &self.output_tokens {
            l.validate("workload.output_tokens")?;
        }
        if let Some(path) = &self.tokenizer_file {
            tokenizer_file::available(path)?;
            if !path.is_file() {
                return Err(Error::scenario(format!(
                    "workload.tokenizer_json: {}: no such file",
                    path.display()
                )));
            }
        }
        Ok(())
    }
}
