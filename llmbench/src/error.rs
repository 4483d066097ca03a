//! One opaque error type for the whole crate: a kind a caller can ask about,
//! a human context saying what and where, and the underlying cause.

use std::fmt;

/// A `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in the broad terms a caller can act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A scenario (`Bench`) is invalid: a field is missing or out of range.
    Scenario,
    /// Configuration (flags, environment, `llmbench.toml`) is invalid.
    Config,
    /// The engine could not be reached or answered with something unusable.
    Engine,
    /// Reading or writing a file failed.
    Io,
    /// The run was interrupted (Ctrl-C, SIGTERM).
    Interrupted,
}

impl ErrorKind {
    fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Scenario => "invalid scenario",
            ErrorKind::Config => "invalid configuration",
            ErrorKind::Engine => "engine error",
            ErrorKind::Io => "i/o error",
            ErrorKind::Interrupted => "interrupted",
        }
    }
}

/// The error type of llmbench.
///
/// Its `Display` says what failed and where; [`Error::chain`] renders the whole
/// cause chain, which is what the harness prints when a trial fails.
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// A new error of `kind` with a message saying what and where.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            inner: Box::new(Inner {
                kind,
                message: message.into(),
                source: None,
            }),
        }
    }

    /// Attach the underlying cause.
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.inner.source = Some(Box::new(source));
        self
    }

    /// Prefix the message with more context (for example the scenario name).
    #[must_use]
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.inner.message = format!("{context}: {}", self.inner.message);
        self
    }

    pub(crate) fn scenario(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Scenario, message)
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }

    pub(crate) fn io(what: impl fmt::Display, source: std::io::Error) -> Self {
        Self::new(ErrorKind::Io, what.to_string()).with_source(source)
    }

    /// What went wrong, without the kind or the causes.
    pub(crate) fn message(&self) -> &str {
        &self.inner.message
    }

    /// The broad kind of this error.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// Is this an invalid scenario?
    pub fn is_scenario(&self) -> bool {
        self.inner.kind == ErrorKind::Scenario
    }

    /// Is this invalid configuration?
    pub fn is_config(&self) -> bool {
        self.inner.kind == ErrorKind::Config
    }

    /// Did an engine fail or could it not be reached?
    pub fn is_engine(&self) -> bool {
        self.inner.kind == ErrorKind::Engine
    }

    /// Was the run interrupted?
    pub fn is_interrupted(&self) -> bool {
        self.inner.kind == ErrorKind::Interrupted
    }

    /// The message and every cause, joined by `: caused by: `.
    pub fn chain(&self) -> String {
        let mut out = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            out.push_str(": caused by: ");
            out.push_str(&c.to_string());
            cause = c.source();
        }
        out
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.inner.kind.as_str(), self.inner.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.inner.kind);
        d.field("message", &self.inner.message);
        if let Some(source) = &self.inner.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner
            .source
            .as_ref()
            .map(|s| &**s as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_lists_every_cause() {
        let io = std::io::Error::other("disk full");
        let err = Error::io("writing out/requests.jsonl", io).context("scenario `chat`");
        assert_eq!(err.kind(), ErrorKind::Io);
        assert_eq!(
            err.chain(),
            "i/o error: scenario `chat`: writing out/requests.jsonl: caused by: disk full"
        );
    }
}
