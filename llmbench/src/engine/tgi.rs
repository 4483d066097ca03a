//! The HuggingFace TGI client: native `/generate_stream`, the OpenAI-shaped
//! `/v1/chat/completions`, `/info` and `/health`.
//!
//! How a TGI answer is read (the fixtures README's quirks are the checklist):
//!
//! * **Content.** On `/generate_stream` every event carries exactly one
//!   generated token (`token {id, text, logprob, special}`). An event is a
//!   content arrival when its token is not special and its text is not empty:
//!   a special token (EOS) is generated but never shown, and TGI sends `""`
//!   for a token that only completes a character later, whose text then
//!   arrives with the next one. Both still count as output tokens.
//! * **Token counts.** `details.generated_tokens` (we always ask for
//!   `details`) and `details.input_length` (3.x) when given; else the number
//!   of token events, special ones included, which is exact because each
//!   event is one token with its id (never a chunk estimate); else the
//!   `x-generated-tokens` / `x-prompt-tokens` headers of non-streamed answers.
//! * **End.** `/generate_stream` has no `[DONE]`: the event with a non-null
//!   `generated_text` ends it, and a stream that stops before it is
//!   truncated. Chat streams end with `[DONE]` only from TGI 2.2.0 on, so a
//!   chat stream that ends cleanly (not inside an event) after a chunk with a
//!   `finish_reason` is complete too.
//! * **Errors.** `{"error":"...","error_type":"..."}` as an event under 200
//!   is an engine error; as a non-2xx body (422, 424, 429, 500; also the
//!   compat route's one-element array, or `text/plain`) an HTTP status error
//!   with the engine's message.
//! * **Non-streamed answers.** A 200 whose content type is not
//!   `text/event-stream` (a buffering gateway, the compat route) is read as
//!   one whole `/generate` body (an object or a one-element array) or chat
//!   completion, with a single arrival when the body is complete.
//! * **Server timings.** TGI puts them in response headers of non-streamed
//!   answers only (`router/src/server.rs`: `x-queue-time`, `x-inference-time`,
//!   `x-total-time` in ms, `x-compute-time` in s); streams get none, and
//!   absent stays `None`.

use std::time::Instant;

use futures_util::future::BoxFuture;
use serde::Deserialize;
use serde_json::{json, Value};

use super::client::{next_read, QuietTimer};
use super::openai::error_message;
use super::wire::{SseDecoder, SseItem};
use super::{ClientConfig, EngineClient, GenRequest, ModelInfo};
use crate::error::{Error, ErrorKind, Result};
use crate::measure::{Exchange, RequestError, RequestErrorKind};
use crate::workload::Mode;

/// A client for one TGI server.
#[derive(Debug)]
pub(crate) struct TgiClient {
    http: reqwest::Client,
    config: ClientConfig,
}

/// Which TGI route an answer comes from; it decides what ends a stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Route {
    /// `POST /generate_stream`.
    #[default]
    Generate,
    /// `POST /v1/chat/completions`.
    Chat,
}

/// A fold step that failed: the record's error kind and what happened.
pub(crate) type Failure = (RequestErrorKind, String);

/// The outcome of one fold step.
pub(crate) type Step = std::result::Result<(), Failure>;

/// A `/generate_stream` event or a `/generate` body: the parts read.
#[derive(Deserialize)]
struct GenEvent {
    token: Option<Token>,
    generated_text: Option<String>,
    details: Option<Details>,
    error: Option<Value>,
}

#[derive(Deserialize)]
struct Token {
    #[serde(default)]
    text: String,
    #[serde(default)]
    special: bool,
}

impl Token {
    fn is_content(&self) -> bool {
        !self.special && !self.text.is_empty()
    }
}

/// `details` of a stream's final event or of a `/generate` body (its `seed`
/// may exceed `i64::MAX`; it is not read).
#[derive(Deserialize)]
struct Details {
    finish_reason: Option<String>,
    generated_tokens: Option<u32>,
    input_length: Option<u32>,
    #[serde(default)]
    tokens: Vec<Token>,
}

/// A chat chunk or completion: OpenAI-shaped, with TGI's variations (`id`
/// "", `usage: null`, tool calls with integer ids, or as one object rather
/// than a list in stream deltas).
#[derive(Deserialize)]
struct ChatChunk {
    id: Option<String>,
    #[serde(default)]
    choices: Vec<ChatChoice>,
    usage: Option<Usage>,
    error: Option<Value>,
}

#[derive(Deserialize)]
struct ChatChoice {
    delta: Option<ChatMessage>,
    message: Option<ChatMessage>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ChatMessage {
    content: Option<String>,
    tool_calls: Option<Value>,
}

#[derive(Deserialize)]
struct Usage {
    prompt_tokens: Option<u32>,
    completion_tokens: Option<u32>,
}

/// The text of a TGI error body or event: `error` (or an OpenAI-style
/// message, or plain text) with its `error_type`; the compat route's
/// one-element array is unwrapped.
pub(crate) fn tgi_error_message(body: &str) -> String {
    let v = match serde_json::from_str::<Value>(body) {
        Ok(Value::Array(items)) => items.into_iter().next().unwrap_or_default(),
        Ok(v) => v,
        Err(_) => return error_message(body),
    };
    let msg = error_message(&v.to_string());
    match v.get("error_type").and_then(Value::as_str) {
        Some(kind) => format!("{msg} (error_type: {kind})"),
        None => msg,
    }
}

fn is_error(v: &Option<Value>) -> bool {
    v.as_ref().is_some_and(|e| !e.is_null())
}

fn engine_error(data: &str) -> Failure {
    let msg = format!("engine reported an error: {}", tgi_error_message(data));
    (RequestErrorKind::EngineError, msg)
}

fn malformed(what: &str, e: &serde_json::Error, data: &str) -> Failure {
    let msg = format!("not a valid {what} ({e}): {}", error_message(data));
    (RequestErrorKind::MalformedStream, msg)
}

/// The per-event fold of one TGI answer: pure (data and an arrival instant
/// in, the [`Exchange`] updated), so tests and a decode benchmark drive it
/// without a socket.
#[derive(Debug, Default)]
pub(crate) struct Fold {
    route: Route,
    events: u64,
    tokens: u32,
    finished: bool,
    finish_seen: bool,
}

impl Fold {
    /// A fold at the start of an answer from `route`.
    pub(crate) fn new(route: Route) -> Self {
        Fold {
            route,
            ..Fold::default()
        }
    }

    /// Data events seen so far (the one being folded included).
    pub(crate) fn events(&self) -> u64 {
        self.events
    }

    /// Fold one SSE event's data, which arrived at `now`. Events after the
    /// end marker are counted and otherwise ignored.
    pub(crate) fn event(&mut self, data: &str, now: Instant, ex: &mut Exchange) -> Step {
        self.events += 1;
        if self.finished {
            return Ok(());
        }
        // `[DONE]` ends a chat stream; `/generate_stream` never sends it, and
        // one from a proxy is no substitute for the final event.
        if data.trim() == "[DONE]" {
            self.finished |= self.route == Route::Chat;
            return Ok(());
        }
        match self.route {
            Route::Generate => self.generate_event(data, now, ex),
            Route::Chat => self.chat_chunk(data, now, ex),
        }
    }

    fn generate_event(&mut self, data: &str, now: Instant, ex: &mut Exchange) -> Step {
        let ev: GenEvent =
            serde_json::from_str(data).map_err(|e| malformed("stream event", &e, data))?;
        if is_error(&ev.error) {
            return Err(engine_error(data));
        }
        if let Some(token) = ev.token {
            self.tokens = self.tokens.saturating_add(1);
            if token.is_content() {
                ex.content_at.push(now);
                ex.push_text(&token.text);
            }
        }
        if let Some(details) = ev.details {
            apply_details(&details, ex);
        }
        if ev.generated_text.is_some() {
            self.finished = true;
            ex.output_tokens = ex.output_tokens.or(Some(self.tokens));
        }
        Ok(())
    }

    fn chat_chunk(&mut self, data: &str, now: Instant, ex: &mut Exchange) -> Step {
        let chunk: ChatChunk =
            serde_json::from_str(data).map_err(|e| malformed("chat chunk", &e, data))?;
        if is_error(&chunk.error) {
            return Err(engine_error(data));
        }
        // TGI sends `"id":""`: no id, not an empty one.
        if ex.response_id.is_none() {
            ex.response_id = chunk.id.filter(|id| !id.is_empty());
        }
        let mut content = false;
        for choice in &chunk.choices {
            for part in [&choice.delta, &choice.message].into_iter().flatten() {
                if let Some(text) = part.content.as_deref().filter(|t| !t.is_empty()) {
                    ex.push_text(text);
                    content = true;
                }
                let calls = part.tool_calls.as_ref();
                content |=
                    calls.is_some_and(|c| c.as_array().map_or(!c.is_null(), |a| !a.is_empty()));
            }
            if let Some(reason) = &choice.finish_reason {
                ex.finish_reason = Some(reason.clone());
                self.finish_seen = true;
            }
        }
        if content {
            ex.content_at.push(now);
        }
        if let Some(usage) = chunk.usage {
            ex.prompt_tokens = usage.prompt_tokens.or(ex.prompt_tokens);
            ex.output_tokens = usage.completion_tokens.or(ex.output_tokens);
        }
        Ok(())
    }

    /// Fold a whole non-streamed body that was complete at `now`: a chat
    /// completion, or a `/generate` object (bare, or in the compat route's
    /// array).
    pub(crate) fn body(&mut self, body: &str, now: Instant, ex: &mut Exchange) -> Step {
        self.events += 1;
        let v: Value = serde_json::from_str(body).map_err(|e| malformed("JSON body", &e, body))?;
        let v = match v {
            Value::Array(items) => items.into_iter().next().unwrap_or_default(),
            other => other,
        };
        self.finished = true;
        if self.route == Route::Chat {
            return self.chat_chunk(&v.to_string(), now, ex);
        }
        let ev: GenEvent = serde_json::from_value(v).map_err(|e| malformed("body", &e, body))?;
        if is_error(&ev.error) {
            return Err(engine_error(body));
        }
        let Some(text) = ev.generated_text else {
            let what = format!("no `generated_text` in {}", error_message(body));
            return Err((RequestErrorKind::MalformedStream, what));
        };
        let shown = ev
            .details
            .iter()
            .flat_map(|d| &d.tokens)
            .any(Token::is_content);
        if shown || !text.is_empty() {
            ex.content_at.push(now);
        }
        ex.push_text(&text);
        if let Some(details) = ev.details {
            apply_details(&details, ex);
        }
        Ok(())
    }

    /// What the end of the body means: `None` when the answer is complete
    /// (the final event on `/generate_stream`; `[DONE]`, or a clean end after
    /// a `finish_reason`, on chat), else why it is truncated.
    pub(crate) fn end(&self, cut_inside_event: bool, content_chunks: usize) -> Option<String> {
        let chat_done = self.route == Route::Chat && self.finish_seen && !cut_inside_event;
        if self.finished || chat_done {
            return None;
        }
        let expected = match self.route {
            Route::Generate => "the final event (the one with `generated_text`)",
            Route::Chat => "`data: [DONE]` or a chunk with `finish_reason`",
        };
        let cut = if cut_inside_event {
            " (cut inside an event)"
        } else {
            ""
        };
        Some(format!(
            "stream ended before {expected} after {} events and {content_chunks} content chunks{cut}",
            self.events
        ))
    }
}

fn apply_details(details: &Details, ex: &mut Exchange) {
    if let Some(reason) = &details.finish_reason {
        ex.finish_reason = Some(reason.clone());
    }
    ex.output_tokens = details.generated_tokens.or(ex.output_tokens);
    ex.prompt_tokens = details.input_length.or(ex.prompt_tokens);
}

/// Read TGI's response headers (`router/src/server.rs`, set on non-streamed
/// answers): `x-queue-time`, `x-inference-time` (prefill and decode
/// together), `x-total-time` (ms, else `x-compute-time` in s), and the token
/// counts `x-prompt-tokens` / `x-generated-tokens`, which the body's
/// `details` override when folded later. `get` looks a header up by name.
pub(crate) fn apply_headers<'h>(get: impl Fn(&str) -> Option<&'h str>, ex: &mut Exchange) {
    let num = |name: &str| get(name).and_then(|v| v.trim().parse::<f64>().ok());
    let count = |name: &str| get(name).and_then(|v| v.trim().parse::<u32>().ok());
    let server = &mut ex.server;
    server.queue_duration_ms = num("x-queue-time").or(server.queue_duration_ms);
    server.eval_duration_ms = num("x-inference-time").or(server.eval_duration_ms);
    let total = num("x-total-time").or_else(|| num("x-compute-time").map(|s| s * 1e3));
    server.total_duration_ms = total.or(server.total_duration_ms);
    ex.prompt_tokens = count("x-prompt-tokens").or(ex.prompt_tokens);
    ex.output_tokens = count("x-generated-tokens").or(ex.output_tokens);
}

/// Fill `eval_tps` from the engine's own figures: its output token count
/// over its inference time (`x-time-per-token` is the same ratio rounded to
/// whole ms, so it is not used).
pub(crate) fn derive_rates(ex: &mut Exchange) {
    let server = &mut ex.server;
    if let (Some(n), Some(ms), None) = (ex.output_tokens, server.eval_duration_ms, server.eval_tps)
    {
        server.eval_tps = (ms > 0.0).then(|| f64::from(n) * 1e3 / ms);
    }
}

/// A `/info` body as a model: `model_id`; the context length is
/// `max_total_tokens` (prompt and output together), else the input limit;
/// `model_dtype` (older TGI, e.g. "torch.float16") stands in for quantization.
fn model_info(info: &Value) -> Option<ModelInfo> {
    let mut model = ModelInfo::id(info.get("model_id")?.as_str()?);
    model.context_length = ["max_total_tokens", "max_input_tokens", "max_input_length"]
        .iter()
        .find_map(|k| info.get(*k).and_then(Value::as_u64));
    let dtype = info.get("model_dtype").and_then(Value::as_str);
    model.quantization = dtype.map(String::from);
    Some(model)
}

fn failure(kind: RequestErrorKind, status: Option<u16>, message: String) -> Option<RequestError> {
    Some(RequestError {
        kind,
        status,
        message,
    })
}

impl TgiClient {
    /// A client for the server and model in `config`.
    pub(crate) fn new(config: ClientConfig) -> Result<Self> {
        Ok(TgiClient {
            http: config.http()?,
            config,
        })
    }

    fn request(&self, req: &GenRequest) -> (Route, &'static str, Value) {
        if self.config.route(req) == Mode::Completion {
            let parameters = json!({"max_new_tokens": req.max_tokens, "details": true});
            let body = json!({"inputs": req.text(), "parameters": parameters});
            let path = if req.stream {
                "/generate_stream"
            } else {
                "/generate"
            };
            return (Route::Generate, path, body);
        }
        // TGI serves one model; "tgi" is its documented placeholder name.
        let model = Some(self.config.model.as_str()).filter(|m| !m.is_empty());
        let mut body = json!({
            "model": model.unwrap_or("tgi"),
            "messages": req.messages(),
            "max_tokens": req.max_tokens,
            "stream": req.stream,
        });
        if req.stream {
            body["stream_options"] = json!({"include_usage": true});
        }
        (Route::Chat, "/v1/chat/completions", body)
    }

    /// `GET path`: the body when the status is a success, else an error
    /// with the engine's message (`what` says what a failure means).
    async fn get(&self, path: &str, what: &str) -> Result<String> {
        let (url, status, body) = self.config.get(&self.http, path).await?;
        let fail = |why: String| Error::new(ErrorKind::Engine, format!("GET {url}: {why}"));
        if !status.is_success() {
            return Err(fail(format!(
                "{what}answered {status}: {}",
                tgi_error_message(&body)
            )));
        }
        Ok(body)
    }

    async fn info(&self) -> Result<Value> {
        let body = self.get("/info", "").await?;
        serde_json::from_str(&body).map_err(|e| {
            let msg = format!(
                "GET {}/info: not JSON: {}",
                self.config.base,
                error_message(&body)
            );
            Error::new(ErrorKind::Engine, msg).with_source(e)
        })
    }

    async fn stream(&self, req: &GenRequest, ex: &mut Exchange) {
        let (route, path, body) = self.request(req);
        let url = format!("{}{path}", self.config.base);
        let Some(resp) = self
            .config
            .post_json(&self.http, &url, None, body, ex)
            .await
        else {
            return;
        };
        ex.ended_at = Instant::now();
        let status = resp.status();
        let code = Some(status.as_u16());
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            ex.ended_at = Instant::now();
            let msg = format!("POST {url} answered {status}: {}", tgi_error_message(&body));
            ex.error = failure(RequestErrorKind::HttpStatus, code, msg);
            return;
        }
        let headers = resp.headers();
        apply_headers(|n| headers.get(n).and_then(|v| v.to_str().ok()), ex);
        let content_type = headers.get(reqwest::header::CONTENT_TYPE);
        let content_type = content_type
            .and_then(|v| v.to_str().ok())
            .map(str::to_ascii_lowercase);
        let whole = content_type.is_some_and(|ct| !ct.starts_with("text/event-stream"));
        let mut fold = Fold::new(route);
        let mut body = resp.bytes_stream();
        let (mut decoder, mut items, mut buffered) = (SseDecoder::new(), Vec::new(), Vec::new());
        let mut quiet = QuietTimer::default();
        while let Some(read) = next_read(&mut body, &self.config.timeouts, ex, &mut quiet).await {
            // The arrival clock is read before anything is parsed (DESIGN rule 1).
            let now = Instant::now();
            ex.ended_at = now;
            let bytes = match read {
                Ok(bytes) => bytes,
                Err(e) => {
                    let (kind, msg) = e.describe(&format!("POST {url}"), ex);
                    ex.error = failure(kind, code, msg);
                    return;
                }
            };
            ex.first_byte_at.get_or_insert(now);
            if whole {
                buffered.extend_from_slice(&bytes);
                continue;
            }
            decoder.feed(&bytes, &mut items);
            for item in items.drain(..) {
                let SseItem::Event { data, .. } = item else {
                    continue; // keep-alive comment: neither content nor an end
                };
                if let Err((kind, what)) = fold.event(&data, now, ex) {
                    let msg = format!("POST {url}: stream event #{}: {what}", fold.events());
                    ex.error = failure(kind, code, msg);
                    return;
                }
            }
        }
        let failed = if whole {
            let at = ex.ended_at;
            let folded = fold.body(&String::from_utf8_lossy(&buffered), at, ex);
            folded
                .err()
                .map(|(kind, what)| (kind, format!("the JSON answer: {what}")))
        } else {
            let why = fold.end(decoder.has_partial(), ex.content_at.len());
            why.map(|why| (RequestErrorKind::Truncated, why))
        };
        match failed {
            Some((kind, what)) => ex.error = failure(kind, code, format!("POST {url}: {what}")),
            None => derive_rates(ex),
        }
    }
}

impl EngineClient for TgiClient {
    fn send<'a>(&'a self, req: &'a GenRequest, ex: &'a mut Exchange) -> BoxFuture<'a, ()> {
        Box::pin(self.stream(req, ex))
    }

    fn models(&self) -> BoxFuture<'_, Result<Vec<ModelInfo>>> {
        Box::pin(async move {
            let info = self.info().await?;
            let model = model_info(&info).ok_or_else(|| {
                let what = error_message(&info.to_string());
                let msg = format!("GET {}/info: no `model_id` in {what}", self.config.base);
                Error::new(ErrorKind::Engine, msg)
            })?;
            Ok(vec![model])
        })
    }

    fn health(&self) -> BoxFuture<'_, Result<()>> {
        // An empty 200 is healthy; 503 `{"error":"unhealthy",...}` is not.
        Box::pin(async move { self.get("/health", "not ready: ").await.map(|_| ()) })
    }

    fn version(&self) -> BoxFuture<'_, Result<Option<String>>> {
        Box::pin(async move {
            let info = self.info().await?;
            Ok(info
                .get("version")
                .and_then(Value::as_str)
                .map(String::from))
        })
    }
}

#[cfg(test)]
#[path = "tgi_tests.rs"]
mod tests;
