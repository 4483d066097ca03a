//! The one trait every wire protocol implements, the request it is handed,
//! and `connect`, which turns an [`Engine`] into a ready client.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::{llamacpp, ollama, openai, tgi, Engine, EngineKind};
use crate::error::{Error, ErrorKind, Result};
use crate::measure::Exchange;
use crate::workload::Mode;

/// One generation request, as the load generator hands it to a client.
#[derive(Clone, Debug)]
pub struct GenRequest {
    /// The prompt text.
    pub prompt: Arc<str>,
    /// Chat (one user message, the engine's chat template applies) or
    /// completion (the raw prompt).
    pub mode: Mode,
    /// The output budget.
    pub max_tokens: u32,
}

/// A model an engine serves, with what the engine says about it. Fields the
/// engine does not report are `None`.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ModelInfo {
    /// The id to send as `model`.
    pub id: String,
    /// Model family (`llama`, `qwen2`, ...).
    pub family: Option<String>,
    /// Parameter count as the engine writes it (`8.0B`, `134515008`).
    pub parameter_size: Option<String>,
    /// Quantization (`Q4_K_M`, ...).
    pub quantization: Option<String>,
    /// Size on disk, bytes.
    pub size_bytes: Option<u64>,
    /// Size in GPU memory when loaded, bytes.
    pub vram_bytes: Option<u64>,
    /// Context length in tokens.
    pub context_length: Option<u64>,
}

impl ModelInfo {
    /// A model known only by its id.
    pub fn id(id: impl Into<String>) -> Self {
        ModelInfo {
            id: id.into(),
            ..ModelInfo::default()
        }
    }
}

/// Everything an adapter needs to build its client.
#[derive(Clone)]
pub struct ClientConfig {
    /// Base URL, no trailing slash.
    pub base: String,
    /// The model to name in requests (may be empty while models are listed).
    pub model: String,
    /// Bearer token, read from the environment; never printed.
    pub api_key: Option<String>,
    /// Route forced by `api=`; `None` follows each request's mode.
    pub api: Option<Mode>,
    /// Longest wait for a TCP connection.
    pub connect_timeout: Duration,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("base", &self.base)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("api", &self.api)
            .finish()
    }
}

impl ClientConfig {
    /// The route a request takes: the forced one, else the request's mode.
    pub fn route(&self, req: &GenRequest) -> Mode {
        self.api.unwrap_or(req.mode)
    }

    /// A `reqwest` client with the settings every adapter shares.
    pub(crate) fn http(&self) -> Result<reqwest::Client> {
        reqwest::Client::builder()
            .tcp_nodelay(true)
            .connect_timeout(self.connect_timeout)
            .pool_max_idle_per_host(usize::MAX)
            .build()
            .map_err(|e| Error::new(ErrorKind::Engine, "building the HTTP client").with_source(e))
    }
}

/// What every engine adapter does.
pub trait EngineClient: Send + Sync {
    /// Send `req` and stream the response into `ex`: `sent_at` just before
    /// the request leaves, then every arrival as it happens, so that if the
    /// future is dropped midway (timeout, Ctrl-C) `ex` still holds what
    /// arrived. Failures are recorded in `ex.error`, never returned or panicked.
    fn send<'a>(&'a self, req: &'a GenRequest, ex: &'a mut Exchange) -> BoxFuture<'a, ()>;

    /// The models the engine serves.
    fn models(&self) -> BoxFuture<'_, Result<Vec<ModelInfo>>>;

    /// Whether the engine is ready to serve (`Ok`), or why not.
    fn health(&self) -> BoxFuture<'_, Result<()>>;

    /// The engine's version, if it tells.
    fn version(&self) -> BoxFuture<'_, Result<Option<String>>>;
}

/// Build the adapter for `kind`.
pub(crate) fn client_for(kind: EngineKind, config: ClientConfig) -> Result<Arc<dyn EngineClient>> {
    match kind {
        EngineKind::OpenAi => Ok(Arc::new(openai::OpenAiClient::new(config)?)),
        EngineKind::Ollama => Ok(Arc::new(ollama::OllamaClient::new(config)?)),
        EngineKind::Tgi => Ok(Arc::new(tgi::TgiClient::new(config)?)),
        EngineKind::LlamaCpp => Ok(Arc::new(llamacpp::LlamaCppClient::new(config)?)),
    }
}

fn config_for(engine: &Engine) -> Result<ClientConfig> {
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
    Ok(ClientConfig {
        base: engine.url.trim_end_matches('/').to_string(),
        model: engine.model.clone().unwrap_or_default(),
        api_key,
        api: engine.api,
        connect_timeout: Duration::from_secs(10),
    })
}

/// A client for `engine` as configured, its model not checked or resolved
/// (for health checks and model listings).
pub fn client(engine: &Engine) -> Result<Arc<dyn EngineClient>> {
    client_for(engine.kind, config_for(engine)?)
}

/// A client for `engine`, with its model resolved (asked of the engine when
/// the configuration names none). Returns the client and the model.
pub async fn connect(engine: &Engine) -> Result<(Arc<dyn EngineClient>, String)> {
    let mut config = config_for(engine)?;
    let client = client_for(engine.kind, config.clone())?;
    if !config.model.is_empty() {
        return Ok((client, config.model));
    }
    let models = client.models().await.map_err(|e| {
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
    config.model = first.id.clone();
    Ok((client_for(engine.kind, config)?, first.id))
}
