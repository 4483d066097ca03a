//! The one trait every wire protocol implements, the request it is handed,
//! and `connect`, which turns an [`Engine`] into a ready client.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::BoxFuture;

use super::{llamacpp, ollama, openai, tgi, Engine, EngineKind};
use crate::error::{Error, ErrorKind, Result};
use crate::measure::{Exchange, RequestError, RequestErrorKind};
use crate::workload::{Mode, Turn};

/// One generation request, as the load generator hands it to a client.
#[derive(Clone, Debug)]
pub struct GenRequest {
    /// The prompt text; in a conversation, its last user message.
    pub prompt: Arc<str>,
    /// The turns of a conversation before `prompt` (system, user and
    /// assistant messages, in order); empty for a single prompt. A chat
    /// route sends them before `prompt`'s user message
    /// ([`GenRequest::messages`]); a completion route sends the text
    /// [`GenRequest::text`] joins.
    pub history: Arc<[Turn]>,
    /// Chat (the prompt as a user message, after the conversation's
    /// earlier turns; the engine's chat template applies) or completion
    /// (the raw prompt).
    pub mode: Mode,
    /// The output budget.
    pub max_tokens: u32,
    /// Stream the answer (every token timestamped as it arrives), or ask
    /// for it in one piece (then TTFT is the whole answer's arrival).
    pub stream: bool,
    /// Ask the engine to generate all `max_tokens` (`ignore_eos`,
    /// `min_tokens`) where its API allows.
    pub exact_output: bool,
}

impl GenRequest {
    /// The messages a chat route sends: the earlier turns, then the prompt
    /// as the user's.
    pub fn messages(&self) -> serde_json::Value {
        let turns = self
            .history
            .iter()
            .map(|t| serde_json::json!({"role": t.role.as_str(), "content": t.content}));
        let last = serde_json::json!({"role": "user", "content": &*self.prompt});
        serde_json::Value::Array(turns.chain([last]).collect())
    }

    /// The text a completion route sends: the prompt as it is, or for a
    /// conversation each turn as a `Role: content` paragraph, the prompt
    /// as the user's, and `Assistant:` last.
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        if self.history.is_empty() {
            std::borrow::Cow::Borrowed(&self.prompt)
        } else {
            std::borrow::Cow::Owned(crate::workload::turns::joined(&self.history, &self.prompt))
        }
    }
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
    /// How long to wait for the engine at each stage.
    pub timeouts: Timeouts,
    /// Keep connections open between requests. llama.cpp's server promises
    /// keep-alive but closes the connection after every streamed answer, so
    /// a pooled connection is dead when the next request goes out on it;
    /// for it each request opens its own connection.
    pub reuse_connections: bool,
}

/// How long a request may wait at each stage before it fails with kind
/// `timeout`. The whole-request limit is applied by the load executor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timeouts {
    /// For the TCP connection.
    pub connect: Duration,
    /// From the send to the first content chunk (prefill, queueing, model
    /// loading all count).
    pub first_token: Option<Duration>,
    /// Between two reads once content flows (a stalled stream).
    pub idle: Option<Duration>,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            first_token: None,
            idle: Some(Duration::from_secs(60)),
        }
    }
}

/// Why a read of a response body did not give bytes.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The transport failed (connection reset, ...).
    Transport(reqwest::Error),
    /// Nothing arrived within the applicable timeout.
    Quiet {
        /// Which limit: "first-token" or "idle".
        which: &'static str,
        /// Its length.
        limit: Duration,
    },
}

impl ReadError {
    /// The error kind and a message naming `url` and the position reached.
    pub(crate) fn describe(&self, url: &str, ex: &Exchange) -> (RequestErrorKind, String) {
        let chunks = ex.content_at.len();
        match self {
            ReadError::Transport(e) => (
                RequestErrorKind::Truncated,
                format!(
                    "reading the stream of {url} after {chunks} content chunks: {}",
                    super::openai::error_chain(e)
                ),
            ),
            ReadError::Quiet { which, limit } => (
                RequestErrorKind::Timeout,
                format!("{url}: nothing arrived within the {which} timeout of {limit:?} ({chunks} content chunks so far)"),
            ),
        }
    }
}

/// The timer behind the first-token and idle timeouts of one response body.
/// One per body, armed at the first read that has to wait and moved only
/// when it fires before the current deadline: a read whose bytes are
/// already there costs no clock read and no timer, and a stream of many
/// reads registers its timer once instead of once per read.
#[derive(Debug, Default)]
pub(crate) struct QuietTimer {
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// The next read of a response body: `None` at its end. The first-token
/// timeout applies until content has arrived, the idle timeout after; each
/// counts from the moment this read began to wait.
pub(crate) async fn next_read<S>(
    body: &mut S,
    timeouts: &Timeouts,
    ex: &Exchange,
    quiet: &mut QuietTimer,
) -> Option<Result<Bytes, ReadError>>
where
    S: futures_util::Stream<Item = reqwest::Result<Bytes>> + Unpin,
{
    use futures_util::StreamExt;
    let (which, limit) = if ex.content_at.is_empty() {
        ("first-token", timeouts.first_token)
    } else {
        ("idle", timeouts.idle)
    };
    let Some(limit) = limit else {
        return body.next().await.map(|r| r.map_err(ReadError::Transport));
    };
    let mut deadline: Option<tokio::time::Instant> = None;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(read) = body.poll_next_unpin(cx) {
            return Poll::Ready(read.map(|r| r.map_err(ReadError::Transport)));
        }
        let due = *deadline.get_or_insert_with(|| tokio::time::Instant::now() + limit);
        let sleep = quiet
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
        if sleep.deadline() > due {
            sleep.as_mut().reset(due);
        }
        // Fired at an earlier read's deadline: move on to this one's.
        while sleep.as_mut().poll(cx).is_ready() {
            if tokio::time::Instant::now() >= due {
                return Poll::Ready(Some(Err(ReadError::Quiet { which, limit })));
            }
            sleep.as_mut().reset(due);
        }
        Poll::Pending
    })
    .await
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

    /// `req` with the API key as a bearer token, when there is one.
    pub(crate) fn authorize(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.api_key {
            Some(key) => req.bearer_auth(key),
            None => req,
        }
    }

    /// GET `path` of the engine, for an administrative call (10 s limit):
    /// the URL, the status and the body. Only a missing answer is an error;
    /// the caller judges the status with the engine's own error shape.
    pub(crate) async fn get(
        &self,
        http: &reqwest::Client,
        path: &str,
    ) -> Result<(String, reqwest::StatusCode, String)> {
        let url = format!("{}{path}", self.base);
        let fail = |what: &str| Error::new(ErrorKind::Engine, format!("GET {url}: {what}"));
        let resp = self
            .authorize(http.get(&url))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| fail("no answer").with_source(e))?;
        let status = resp.status();
        let body = resp
            .text()
            .await
            .map_err(|e| fail("reading the body").with_source(e))?;
        Ok((url, status, body))
    }

    /// POST `body` as JSON to `url`, with `ex.sent_at` read just before the
    /// request leaves. When no response comes (refused, reset, DNS), the
    /// failure is recorded in `ex` and the result is `None`. `body` is taken
    /// and dropped once encoded, so it is not held for the whole stream (at
    /// 10,000 streams its tree is 20 MB). `parsed` is `url` parsed once
    /// for every request, where the adapter keeps it: parsing a URL (host
    /// IDNA included) cost a fifth of a 4-token request's client time.
    pub(crate) async fn post_json(
        &self,
        http: &reqwest::Client,
        url: &str,
        parsed: Option<&reqwest::Url>,
        body: serde_json::Value,
        ex: &mut Exchange,
    ) -> Option<reqwest::Response> {
        let post = match parsed {
            Some(parsed) => http.post(parsed.clone()),
            None => http.post(url),
        };
        let builder = self
            .authorize(post)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        drop(body);
        ex.endpoint = Some(url.to_string());
        ex.sent_at = Instant::now();
        match builder.send().await {
            Ok(resp) => Some(resp),
            Err(e) => {
                ex.ended_at = Instant::now();
                let kind = if e.is_connect() {
                    RequestErrorKind::Connect
                } else {
                    RequestErrorKind::Transport
                };
                ex.error = Some(RequestError {
                    kind,
                    status: None,
                    message: format!("POST {url}: {}", super::openai::error_chain(&e)),
                });
                None
            }
        }
    }

    /// A `reqwest` client with the settings every adapter shares.
    pub(crate) fn http(&self) -> Result<reqwest::Client> {
        reqwest::Client::builder()
            .tcp_nodelay(true)
            .connect_timeout(self.timeouts.connect)
            .pool_max_idle_per_host(if self.reuse_connections {
                usize::MAX
            } else {
                0
            })
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

    /// The token ids of `text` in the served model's tokenizer, from the
    /// engine's own tokenize endpoint; `Ok(None)` when the engine has none.
    fn tokenize<'a>(&'a self, text: &'a str) -> BoxFuture<'a, Result<Option<Vec<u32>>>> {
        let _ = text;
        Box::pin(async { Ok(None) })
    }
}

/// Whether the server behind `config` is llama.cpp's (its `Server` header
/// says so), which closes streamed connections it promised to keep alive.
async fn is_llamacpp(config: &ClientConfig) -> bool {
    let Ok(http) = config.http() else {
        return false;
    };
    let url = format!("{}/health", config.base);
    let Ok(resp) = http.get(&url).timeout(config.timeouts.connect).send().await else {
        return false;
    };
    resp.headers()
        .get(reqwest::header::SERVER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|s| s.contains("llama.cpp"))
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

fn config_for(engine: &Engine, timeouts: Timeouts) -> Result<ClientConfig> {
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
        timeouts,
        reuse_connections: engine.kind != EngineKind::LlamaCpp,
    })
}

/// A client for `engine` as configured, its model not checked or resolved
/// (for health checks and model listings).
pub fn client(engine: &Engine) -> Result<Arc<dyn EngineClient>> {
    client_for(engine.kind, config_for(engine, Timeouts::default())?)
}

/// A client for `engine`, with its model resolved (asked of the engine when
/// the configuration names none). Returns the client and the model.
pub async fn connect(engine: &Engine) -> Result<(Arc<dyn EngineClient>, String)> {
    connect_with(engine, Timeouts::default()).await
}

/// [`connect`] with the given timeouts.
pub async fn connect_with(
    engine: &Engine,
    timeouts: Timeouts,
) -> Result<(Arc<dyn EngineClient>, String)> {
    let mut config = config_for(engine, timeouts)?;
    if config.reuse_connections && is_llamacpp(&config).await {
        config.reuse_connections = false;
    }
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
