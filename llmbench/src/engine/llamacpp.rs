//! llama.cpp `llama-server`'s native API: `/completion` streamed over SSE with
//! the server's own `timings`, and `/health`, `/props`, `/v1/models`,
//! `/slots`, `/tokenize`, `/detokenize`. Its chat route is the OpenAI one
//! (`/v1/chat/completions`), which the OpenAI client speaks.
//!
//! The native stream has no `[DONE]`: its last event carries `"stop":true`
//! and `timings`; a stream that ends before it is truncated. The finish
//! reason recorded is llama.cpp's own `stop_type` word (`limit`, `eos`,
//! `word`), as every adapter keeps its engine's word; in OpenAI terms `limit`
//! is `length` and `eos` and `word` are `stop`.

use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use reqwest::Method;
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::{json, Value};

use super::client::{next_read, QuietTimer};
use super::openai::{error_chain, error_message, OpenAiClient};
use super::wire::{SseDecoder, SseItem};
use super::{ClientConfig, EngineClient, GenRequest, ModelInfo};
use crate::error::{Error, ErrorKind, Result};
use crate::measure::{Exchange, RequestError, RequestErrorKind, ServerTimings};
use crate::workload::Mode;

/// Longest wait for an administrative call (health, props, models, ...).
const ADMIN_TIMEOUT: Duration = Duration::from_secs(10);

/// A client for one llama-server.
#[derive(Debug)]
pub(crate) struct LlamaCppClient {
    http: reqwest::Client,
    config: ClientConfig,
    /// The chat route: llama-server's OpenAI-compatible `/v1/chat/completions`.
    chat: OpenAiClient,
}

/// The parts of a native `/completion` event llmbench reads.
#[derive(Deserialize)]
struct Event {
    content: Option<String>,
    tokens: Option<Vec<IgnoredAny>>,
    stop: Option<bool>,
    stop_type: Option<String>,
    tokens_predicted: Option<u32>,
    tokens_evaluated: Option<u32>,
    timings: Option<Value>,
    error: Option<Value>,
}

/// Where a native `/completion` stream stands between events.
#[derive(Debug, Default)]
pub(crate) struct NativeStream {
    /// Events seen so far (keep-alive comments are not events).
    pub(crate) events: u64,
    /// The final event (`"stop":true`) has arrived.
    pub(crate) stopped: bool,
}

/// Fold one native event (an SSE `data:` payload, or a whole non-stream
/// answer) that arrived at `now` into the exchange. Pure: no I/O, no clock.
pub(crate) fn apply_event(
    state: &mut NativeStream,
    data: &str,
    now: Instant,
    ex: &mut Exchange,
) -> std::result::Result<(), (RequestErrorKind, String)> {
    state.events += 1;
    if state.stopped {
        return Ok(()); // nothing after the final event counts
    }
    let ev: Event = serde_json::from_str(data).map_err(|e| {
        (
            RequestErrorKind::MalformedStream,
            format!("not a valid event ({e}): {}", super::openai::excerpt(data)),
        )
    })?;
    if ev.error.is_some() {
        return Err((
            RequestErrorKind::EngineError,
            format!("engine reported an error: {}", error_message(data)),
        ));
    }
    let content = ev.content.unwrap_or_default();
    if !content.is_empty() || ev.tokens.is_some_and(|t| !t.is_empty()) {
        ex.content_at.push(now);
    }
    ex.push_text(&content);
    // Running counts ride on every event; the final `timings` settle them.
    ex.output_tokens = ev.tokens_predicted.or(ex.output_tokens);
    ex.prompt_tokens = ev.tokens_evaluated.or(ex.prompt_tokens);
    if let Some(t) = &ev.timings {
        ex.server = server_timings(t);
        let (prompt, output) = token_counts(t);
        ex.prompt_tokens = prompt.or(ex.prompt_tokens);
        ex.output_tokens = output.or(ex.output_tokens);
    }
    if ev.stop == Some(true) {
        state.stopped = true;
        ex.finish_reason = ev.stop_type.filter(|s| !s.is_empty());
    }
    Ok(())
}

fn timing_u32(t: &Value, key: &str) -> Option<u32> {
    t.get(key)
        .and_then(Value::as_u64)
        .and_then(|v| u32::try_from(v).ok())
}

/// llama.cpp's `timings` object (milliseconds), as the native route and the
/// `/v1` routes both send it, in DESIGN.md's names. Absent keys stay `None`.
pub(crate) fn server_timings(timings: &Value) -> ServerTimings {
    let ms = |key: &str| timings.get(key).and_then(Value::as_f64);
    ServerTimings {
        prompt_eval_duration_ms: ms("prompt_ms"),
        prompt_tps: ms("prompt_per_second"),
        eval_duration_ms: ms("predicted_ms"),
        eval_tps: ms("predicted_per_second"),
        cached_prompt_tokens: timing_u32(timings, "cache_n"),
        ..ServerTimings::default()
    }
}

/// `(prompt tokens, output tokens)` from a `timings` object: the prompt is
/// `cache_n + prompt_n` (`prompt_n` excludes cached tokens; `None` unless
/// both are given), the output `predicted_n`, the engine's own count (a
/// stream may have one content chunk fewer).
pub(crate) fn token_counts(timings: &Value) -> (Option<u32>, Option<u32>) {
    let n = |key: &str| timing_u32(timings, key);
    let prompt = n("cache_n").zip(n("prompt_n"));
    (prompt.and_then(|(c, p)| c.checked_add(p)), n("predicted_n"))
}

/// What `/props` says about the server.
#[derive(Clone, Debug, Default, PartialEq)]
#[allow(dead_code, reason = "fields beyond build_info are for later issues")]
pub(crate) struct Props {
    /// Parallel slots (`--parallel`).
    pub(crate) total_slots: Option<u32>,
    /// Context size per slot.
    pub(crate) n_ctx: Option<u64>,
    /// The model file, as passed to `-m`.
    pub(crate) model_path: Option<String>,
    /// The build (`b4567-abcdef0`), llama-server's version.
    pub(crate) build_info: Option<String>,
    /// The Jinja chat template.
    pub(crate) chat_template: Option<String>,
}

fn props_from(v: &Value) -> Props {
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(String::from);
    Props {
        total_slots: timing_u32(v, "total_slots"),
        n_ctx: v
            .pointer("/default_generation_settings/n_ctx")
            .and_then(Value::as_u64),
        model_path: s("model_path"),
        build_info: s("build_info"),
        chat_template: s("chat_template"),
    }
}

/// One entry of `/slots`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(dead_code, reason = "read by the engine monitor (a later issue)")]
pub(crate) struct Slot {
    pub(crate) id: u32,
    pub(crate) n_ctx: Option<u64>,
    /// Busy with a request (`is_processing`; older servers: `state` != 0).
    pub(crate) is_processing: bool,
}

fn slots_from(v: &Value) -> Option<Vec<Slot>> {
    v.as_array()?
        .iter()
        .map(|s| {
            let busy = s.get("is_processing").and_then(Value::as_bool);
            let state = s.get("state").and_then(Value::as_u64).map(|st| st != 0);
            Some(Slot {
                id: timing_u32(s, "id")?,
                n_ctx: s.get("n_ctx").and_then(Value::as_u64),
                is_processing: busy.or(state).unwrap_or(false),
            })
        })
        .collect()
}

/// One token of a `/tokenize` answer; `piece` only when asked `with_pieces`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(dead_code, reason = "read by token-exact workloads (a later issue)")]
pub(crate) struct Token {
    pub(crate) id: u32,
    /// The token's bytes: llama.cpp sends a string, or an array of byte
    /// values when the token is not valid UTF-8 alone.
    pub(crate) piece: Option<Vec<u8>>,
}

fn token_from(v: &Value) -> Option<Token> {
    let as_id = |v: &Value| v.as_u64().and_then(|n| u32::try_from(n).ok());
    if let Some(id) = as_id(v) {
        return Some(Token { id, piece: None });
    }
    let piece = match v.get("piece") {
        None => None,
        Some(Value::String(s)) => Some(s.as_bytes().to_vec()),
        Some(Value::Array(bytes)) => Some(
            bytes
                .iter()
                .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect::<Option<Vec<u8>>>()?,
        ),
        Some(_) => return None,
    };
    Some(Token {
        id: as_id(v.get("id")?)?,
        piece,
    })
}

fn tokens_from(v: &Value) -> Option<Vec<Token>> {
    v.get("tokens")?
        .as_array()?
        .iter()
        .map(token_from)
        .collect()
}

/// A `/v1/models` entry with what llama.cpp's `meta` says.
fn model_info(m: &Value) -> Option<ModelInfo> {
    let mut info = ModelInfo::id(m.get("id")?.as_str()?);
    let meta = |k: &str| m.get("meta").and_then(|meta| meta.get(k));
    info.context_length = meta("n_ctx").and_then(Value::as_u64);
    info.parameter_size = meta("n_params")
        .and_then(Value::as_u64)
        .map(|n| n.to_string());
    info.quantization = meta("ftype")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(String::from);
    Some(info)
}

impl LlamaCppClient {
    /// A client for the server in `config`.
    pub(crate) fn new(config: ClientConfig) -> Result<Self> {
        Ok(LlamaCppClient {
            http: config.http()?,
            chat: OpenAiClient::new(config.clone())?,
            config,
        })
    }

    /// An administrative call: `method path` with an optional JSON body,
    /// answered with JSON that `parse` reads. Errors name the URL, the
    /// status and the engine's own message, or quote what could not be read.
    async fn call<T>(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        parse: impl FnOnce(&Value) -> Option<T>,
    ) -> Result<T> {
        let url = format!("{}{path}", self.config.base);
        let fail = |what: String| Error::new(ErrorKind::Engine, format!("{method} {url}: {what}"));
        let mut builder = self
            .config
            .authorize(self.http.request(method.clone(), &url))
            .timeout(ADMIN_TIMEOUT);
        if let Some(body) = body {
            builder = builder
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let resp = builder.send().await.map_err(|e| fail(error_chain(&e)))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| fail(format!("reading the body: {}", error_chain(&e))))?;
        if !status.is_success() {
            return Err(fail(format!("answered {status}: {}", error_message(&text))));
        }
        serde_json::from_str(&text)
            .ok()
            .and_then(|v| parse(&v))
            .ok_or_else(|| {
                fail(format!(
                    "unexpected answer: {}",
                    super::openai::excerpt(&text)
                ))
            })
    }

    /// What `/props` says.
    pub(crate) async fn props(&self) -> Result<Props> {
        self.call(Method::GET, "/props", None, |v| Some(props_from(v)))
            .await
    }

    async fn list_models(&self) -> Result<Vec<ModelInfo>> {
        self.call(Method::GET, "/v1/models", None, |v| {
            Some(
                v.get("data")?
                    .as_array()?
                    .iter()
                    .filter_map(model_info)
                    .collect(),
            )
        })
        .await
    }

    async fn check_health(&self) -> Result<()> {
        let status = self
            .call(Method::GET, "/health", None, |v| {
                Some(v.get("status").and_then(Value::as_str).map(String::from))
            })
            .await?;
        match status {
            Some(s) if s != "ok" => Err(Error::new(
                ErrorKind::Engine,
                format!("GET {}/health: not ready: {s}", self.config.base),
            )),
            _ => Ok(()),
        }
    }

    /// Stream a raw-prompt request through the native `/completion`.
    async fn complete(&self, req: &GenRequest, ex: &mut Exchange) {
        let url = format!("{}/completion", self.config.base);
        let mut body = json!({
            "prompt": req.text(),
            "n_predict": req.max_tokens,
            "stream": req.stream,
            "cache_prompt": true,
        });
        if req.exact_output {
            body["ignore_eos"] = json!(true);
        }
        let fail = |ex: &mut Exchange, kind, status, message: String| {
            ex.ended_at = Instant::now();
            ex.error = Some(RequestError {
                kind,
                status,
                message,
            });
        };
        let Some(resp) = self
            .config
            .post_json(&self.http, &url, None, body, ex)
            .await
        else {
            return;
        };
        let status = resp.status();
        if !status.is_success() {
            // Also a `stream:true` request whose prompt is too long: a plain
            // JSON 400, no stream.
            let body = resp.text().await.unwrap_or_default();
            let msg = format!("POST {url} answered {status}: {}", error_message(&body));
            return fail(ex, RequestErrorKind::HttpStatus, Some(status.as_u16()), msg);
        }
        let sse = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("text/event-stream"));
        let record = |ex: &mut Exchange, kind, message: String| {
            ex.error = Some(RequestError {
                kind,
                status: Some(status.as_u16()),
                message,
            });
        };
        let mut state = NativeStream::default();
        let mut decoder = SseDecoder::new();
        let mut items = Vec::new();
        // A server that answers in one piece (JSON, not SSE) is read whole.
        let mut whole = Vec::new();
        let mut reads = resp.bytes_stream();
        let mut quiet = QuietTimer::default();
        while let Some(read) = next_read(&mut reads, &self.config.timeouts, ex, &mut quiet).await {
            // The arrival clock is read before anything is parsed (DESIGN rule 1).
            let now = Instant::now();
            ex.ended_at = now;
            let bytes = match read {
                Ok(bytes) => bytes,
                Err(e) => {
                    let what = format!("POST {url} (event {})", state.events);
                    let (kind, msg) = e.describe(&what, ex);
                    return record(ex, kind, msg);
                }
            };
            ex.first_byte_at.get_or_insert(now);
            if !sse {
                whole.extend_from_slice(&bytes);
                continue;
            }
            decoder.feed(&bytes, &mut items);
            for item in items.drain(..) {
                let SseItem::Event { data, .. } = item else {
                    continue; // keep-alive comment: neither content nor an end
                };
                if let Err((kind, what)) = apply_event(&mut state, &data, now, ex) {
                    let msg = format!("POST {url}: stream event #{}: {what}", state.events);
                    return record(ex, kind, msg);
                }
            }
        }
        if !sse {
            let text = String::from_utf8_lossy(&whole);
            if let Err((kind, what)) = apply_event(&mut state, &text, ex.ended_at, ex) {
                return record(ex, kind, format!("POST {url}: answer: {what}"));
            }
        }
        if !state.stopped {
            let partial = if decoder.has_partial() {
                " (cut inside an event)"
            } else {
                ""
            };
            let msg = format!(
                "POST {url}: stream ended without its final `\"stop\":true` event after {} events and {} content chunks{partial}",
                state.events,
                ex.content_at.len()
            );
            record(ex, RequestErrorKind::Truncated, msg);
        }
    }
}

#[allow(
    dead_code,
    reason = "used by the engine monitor and token-exact workloads (later issues)"
)]
impl LlamaCppClient {
    /// The server's slots (`/slots`, on by default).
    pub(crate) async fn slots(&self) -> Result<Vec<Slot>> {
        self.call(Method::GET, "/slots", None, slots_from).await
    }

    /// How many slots are busy with a request.
    pub(crate) async fn slots_processing(&self) -> Result<usize> {
        let slots = self.slots().await?;
        Ok(slots.iter().filter(|s| s.is_processing).count())
    }

    /// The tokens of `text`, with the bytes of each when `with_pieces`.
    pub(crate) async fn tokenize_pieces(
        &self,
        text: &str,
        with_pieces: bool,
    ) -> Result<Vec<Token>> {
        let body = json!({"content": text, "with_pieces": with_pieces});
        self.call(Method::POST, "/tokenize", Some(body), tokens_from)
            .await
    }

    /// The token ids of `text` in the served model's vocabulary.
    pub(crate) async fn tokenize(&self, text: &str) -> Result<Vec<u32>> {
        let tokens = self.tokenize_pieces(text, false).await?;
        Ok(tokens.into_iter().map(|t| t.id).collect())
    }

    /// The text of `tokens`.
    pub(crate) async fn detokenize(&self, tokens: &[u32]) -> Result<String> {
        let body = json!({ "tokens": tokens });
        self.call(Method::POST, "/detokenize", Some(body), |v| {
            v.get("content")?.as_str().map(String::from)
        })
        .await
    }
}

impl EngineClient for LlamaCppClient {
    fn send<'a>(&'a self, req: &'a GenRequest, ex: &'a mut Exchange) -> BoxFuture<'a, ()> {
        match self.config.route(req) {
            Mode::Completion => Box::pin(self.complete(req, ex)),
            Mode::Chat => self.chat.send(req, ex),
        }
    }

    fn models(&self) -> BoxFuture<'_, Result<Vec<ModelInfo>>> {
        Box::pin(self.list_models())
    }

    fn health(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.check_health())
    }

    fn tokenize<'a>(&'a self, text: &'a str) -> BoxFuture<'a, Result<Option<Vec<u32>>>> {
        Box::pin(async move { LlamaCppClient::tokenize(self, text).await.map(Some) })
    }

    fn version(&self) -> BoxFuture<'_, Result<Option<String>>> {
        Box::pin(async move { Ok(self.props().await?.build_info) })
    }
}

#[cfg(test)]
#[path = "llamacpp_tests.rs"]
mod tests;
