//! Engines: where requests go. [`Engine`] is configuration (kind, URL, model);
//! each wire protocol has a client in its own file.

pub(crate) mod openai;
pub mod wire;

use std::sync::Arc;

use futures_util::future::BoxFuture;

use crate::error::{Error, ErrorKind, Result};
use crate::measure::Exchange;
use crate::workload::Mode;

/// One generation request, as the load generator hands it to a client.
#[derive(Clone, Debug)]
pub struct GenRequest {
    /// The prompt text.
    pub prompt: Arc<str>,
    /// Chat or completion.
    pub mode: Mode,
    /// The output budget.
    pub max_tokens: u32,
}

/// What every engine adapter does: send a request and fill in what it saw.
pub trait EngineClient: Send + Sync {
    /// Send `req` and stream the response into `ex`: `sent_at` just before
    /// the request leaves, then every arrival as it happens, so that if the
    /// future is dropped midway (timeout, Ctrl-C) `ex` still holds what
    /// arrived. Failures are recorded in `ex.error`, never returned or panicked.
    fn send<'a>(&'a self, req: &'a GenRequest, ex: &'a mut Exchange) -> BoxFuture<'a, ()>;

    /// The models the engine serves.
    fn models(&self) -> BoxFuture<'_, Result<Vec<String>>>;
}

/// A client for `engine`, with its model resolved (asked of the engine when
/// the configuration names none). Returns the client and the model.
pub async fn connect(engine: &Engine) -> Result<(Arc<dyn EngineClient>, String)> {
    engine.check_supported()?;
    let api_key = match &engine.api_key_env {
        Some(var) => Some(std::env::var(var).map_err(|_| {
            Error::config(format!(
                "engine `{}`: environment variable `{var}` (api_key_env) is not set",
                engine.label()
            ))
        })?),
        None => None,
    };
    let model = engine.model.clone().unwrap_or_default();
    let mut client = openai::OpenAiClient::new(&engine.url, model.clone(), api_key.clone())?;
    let model = if model.is_empty() {
        let models = client.list_models().await.map_err(|e| {
            e.context(format!(
                "engine `{}`: no model named, asking the engine",
                engine.label()
            ))
        })?;
        let first = models.into_iter().next().ok_or_else(|| {
            Error::new(
                ErrorKind::Engine,
                format!(
                    "engine `{}` at {} lists no models; name one with `,model=NAME`",
                    engine.label(),
                    engine.url
                ),
            )
        })?;
        client = openai::OpenAiClient::new(&engine.url, first.clone(), api_key)?;
        first
    } else {
        model
    };
    Ok((Arc::new(client), model))
}

/// The wire protocol an engine speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EngineKind {
    /// OpenAI-compatible: vLLM, SGLang, llama.cpp `/v1`, Ollama `/v1`, any.
    OpenAi,
    /// Ollama's native API (not yet supported).
    Ollama,
    /// HuggingFace TGI's native API (not yet supported).
    Tgi,
    /// llama.cpp `llama-server`'s native API (not yet supported).
    LlamaCpp,
}

impl EngineKind {
    /// The name used on the command line and in `llmbench.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::OpenAi => "openai",
            EngineKind::Ollama => "ollama",
            EngineKind::Tgi => "tgi",
            EngineKind::LlamaCpp => "llamacpp",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        match s {
            "openai" => Ok(EngineKind::OpenAi),
            "ollama" => Ok(EngineKind::Ollama),
            "tgi" => Ok(EngineKind::Tgi),
            "llamacpp" => Ok(EngineKind::LlamaCpp),
            other => Err(Error::config(format!(
                "unknown engine kind `{other}`; expected one of: openai, ollama, tgi, llamacpp"
            ))),
        }
    }

    /// Whether this build can talk to engines of this kind.
    pub fn is_supported(self) -> bool {
        matches!(self, EngineKind::OpenAi)
    }
}

/// One engine to benchmark.
///
/// ```
/// use llmbench::prelude::*;
/// let e: Engine = "openai=http://127.0.0.1:8000,model=qwen,name=vllm".parse().unwrap();
/// assert_eq!(e.label(), "vllm");
/// assert_eq!(e.model(), Some("qwen"));
/// ```
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Engine {
    pub(crate) kind: EngineKind,
    pub(crate) url: String,
    pub(crate) model: Option<String>,
    pub(crate) name: Option<String>,
    /// The name of the environment variable holding the API key; the key
    /// itself is read when requests are sent and never stored.
    pub(crate) api_key_env: Option<String>,
}

impl Engine {
    /// An OpenAI-compatible server at `url` (scheme, host and port; the
    /// `/v1/...` paths are added), serving `model`.
    pub fn openai(url: impl Into<String>, model: impl Into<String>) -> Self {
        Engine {
            kind: EngineKind::OpenAi,
            url: url.into(),
            model: Some(model.into()),
            name: None,
            api_key_env: None,
        }
    }

    /// Label this engine in trial names and reports (default: the kind).
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Read the API key from environment variable `var` when sending.
    #[must_use]
    pub fn api_key_env(mut self, var: impl Into<String>) -> Self {
        self.api_key_env = Some(var.into());
        self
    }

    /// The label used in trial names (`scenario/label`) and reports.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(self.kind.as_str())
    }

    /// The wire protocol.
    pub fn kind(&self) -> EngineKind {
        self.kind
    }

    /// The base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The model, if one was named (otherwise the engine's first is asked for).
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    /// Check that this engine can be used by this build.
    pub(crate) fn check_supported(&self) -> Result<()> {
        if self.kind.is_supported() {
            Ok(())
        } else {
            Err(Error::config(format!(
                "engine `{}`: kind `{}` is not yet supported by this version of llmbench \
                 (supported: openai; use `openai=URL` for any OpenAI-compatible server)",
                self.label(),
                self.kind.as_str()
            )))
        }
    }
}

impl std::str::FromStr for Engine {
    type Err = Error;

    /// Parse `KIND=URL[,model=NAME][,name=LABEL][,api_key_env=VAR]`.
    fn from_str(spec: &str) -> Result<Self> {
        let bad = |why: String| {
            Error::config(format!(
                "--engine `{spec}`: {why}; expected KIND=URL[,model=NAME][,name=LABEL][,api_key_env=VAR]"
            ))
        };
        let mut parts = spec.split(',');
        let head = parts.next().unwrap_or_default();
        let (kind, url) = head
            .split_once('=')
            .ok_or_else(|| bad("missing `=` between kind and URL".into()))?;
        let kind = EngineKind::parse(kind.trim()).map_err(|e| bad(e.to_string()))?;
        let url = url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(bad(format!(
                "URL `{url}` must start with http:// or https://"
            )));
        }
        let mut engine = Engine {
            kind,
            url: url.trim_end_matches('/').to_string(),
            model: None,
            name: None,
            api_key_env: None,
        };
        for part in parts {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| bad(format!("option `{part}` has no `=`")))?;
            let value = value.trim().to_string();
            match key.trim() {
                "model" => engine.model = Some(value),
                "name" => engine.name = Some(value),
                "api_key_env" => engine.api_key_env = Some(value),
                other => {
                    return Err(bad(format!(
                        "unknown option `{other}` (allowed: model, name, api_key_env)"
                    )))
                }
            }
        }
        Ok(engine)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_spec() {
        let e: Engine = "openai=http://h:1/,model=m,name=n,api_key_env=KEY"
            .parse()
            .unwrap();
        assert_eq!(e.kind(), EngineKind::OpenAi);
        assert_eq!(e.url(), "http://h:1");
        assert_eq!(e.model(), Some("m"));
        assert_eq!(e.label(), "n");
        assert_eq!(e.api_key_env.as_deref(), Some("KEY"));
    }

    #[test]
    fn rejects_bad_specs_with_the_reason() {
        let cases = [
            ("openai", "missing `=`"),
            ("bogus=http://h", "unknown engine kind `bogus`"),
            ("openai=h:1", "must start with http://"),
            ("openai=http://h,colour=red", "unknown option `colour`"),
            ("openai=http://h,model", "option `model` has no `=`"),
        ];
        for (spec, why) in cases {
            let err = spec.parse::<Engine>().unwrap_err().to_string();
            assert!(err.contains(why), "{spec}: {err}");
            assert!(err.contains(spec), "{spec}: {err}");
        }
    }

    #[test]
    fn other_kinds_parse_but_are_not_yet_supported() {
        let e: Engine = "ollama=http://h:11434".parse().unwrap();
        let err = e.check_supported().unwrap_err().to_string();
        assert!(err.contains("not yet supported"), "{err}");
    }
}
