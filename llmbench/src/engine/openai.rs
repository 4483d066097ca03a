//! The OpenAI-compatible client: `/v1/chat/completions` and `/v1/completions`
//! streamed over SSE (vLLM, SGLang, llama.cpp `/v1`, Ollama `/v1`, ...).

use std::borrow::Cow;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use serde::Deserialize;
use serde_json::{json, Value};

use super::client::{next_read, QuietTimer};
use super::wire::{SseDecoder, SseItem};
use super::{ClientConfig, EngineClient, GenRequest, ModelInfo, Timeouts};
use crate::error::{Error, ErrorKind, Result};
use crate::measure::{Exchange, RequestError, RequestErrorKind};
use crate::workload::Mode;

const CHAT_PATH: &str = "/v1/chat/completions";
const COMPLETIONS_PATH: &str = "/v1/completions";

/// A client for one OpenAI-compatible server and model.
#[derive(Debug)]
pub(crate) struct OpenAiClient {
    http: reqwest::Client,
    config: ClientConfig,
    /// The two generation URLs, parsed once (`None` when the base does not
    /// parse: each request then fails with reqwest's own message).
    chat_url: Option<reqwest::Url>,
    completions_url: Option<reqwest::Url>,
}

/// The parts of a stream chunk llmbench reads; everything else is ignored.
/// Strings borrow from the event where they can (no escapes): a chunk is
/// parsed for every token, and allocations were a tenth of its cost.
#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(borrow)]
    id: Option<Text<'a>>,
    #[serde(default, borrow)]
    choices: Vec<Choice<'a>>,
    usage: Option<Usage>,
    error: Option<Value>,
    /// llama.cpp's non-standard server timings (ms).
    timings: Option<Value>,
}

/// A string of a chunk, borrowed from the event unless it holds escapes
/// (serde borrows a `Cow` only when it is the field's whole type, not
/// inside an `Option`).
#[derive(Deserialize)]
#[serde(transparent)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

#[derive(Deserialize)]
struct Choice<'a> {
    /// Stream chunks carry a delta...
    #[serde(borrow)]
    delta: Option<Delta<'a>>,
    /// ...whole (non-stream) answers a message; both have the same fields.
    #[serde(borrow)]
    message: Option<Delta<'a>>,
    #[serde(borrow)]
    text: Option<Text<'a>>,
    #[serde(borrow)]
    finish_reason: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(borrow)]
    content: Option<Text<'a>>,
    #[serde(borrow)]
    reasoning_content: Option<Text<'a>>,
    #[serde(borrow)]
    reasoning: Option<Text<'a>>,
    tool_calls: Option<Vec<Value>>,
}

#[derive(Deserialize)]
struct Usage {
    prompt_tokens: Option<u32>,
    completion_tokens: Option<u32>,
    prompt_tokens_details: Option<PromptDetails>,
}

#[derive(Deserialize)]
struct PromptDetails {
    cached_tokens: Option<u32>,
}

fn non_empty(s: &Option<Text<'_>>) -> bool {
    s.as_ref().is_some_and(|s| !s.0.is_empty())
}

impl Choice<'_> {
    /// Does this choice carry generated content (text, reasoning or a tool
    /// call)? A role-only or empty delta does not.
    fn has_content(&self) -> bool {
        non_empty(&self.text)
            || self.delta().is_some_and(|d| {
                non_empty(&d.content)
                    || non_empty(&d.reasoning_content)
                    || non_empty(&d.reasoning)
                    || d.tool_calls.as_ref().is_some_and(|t| !t.is_empty())
            })
    }

    fn delta(&self) -> Option<&Delta<'_>> {
        self.delta.as_ref().or(self.message.as_ref())
    }

    /// Append this choice's answer and reasoning text to the exchange.
    fn collect_text(&self, ex: &mut Exchange) {
        if let Some(t) = &self.text {
            ex.push_text(&t.0);
        }
        if let Some(d) = self.delta() {
            if let Some(t) = &d.content {
                ex.push_text(&t.0);
            }
            for r in [&d.reasoning_content, &d.reasoning].into_iter().flatten() {
                ex.push_reasoning(&r.0);
            }
        }
    }
}

/// The most of an error body quoted in a message.
const QUOTE_LIMIT: usize = 300;

pub(crate) fn excerpt(s: &str) -> String {
    let s = s.trim();
    match s.char_indices().nth(QUOTE_LIMIT) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

/// The message of an OpenAI-style error body, in either nesting.
pub(crate) fn error_message(body: &str) -> String {
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return excerpt(body);
    };
    let msg = v
        .pointer("/error/message")
        .or_else(|| v.get("message"))
        .or_else(|| v.get("error"));
    match msg {
        Some(Value::String(s)) => excerpt(s),
        Some(other) => excerpt(&other.to_string()),
        None => excerpt(body),
    }
}

impl OpenAiClient {
    /// A client for the server and model in `config`.
    pub(crate) fn new(config: ClientConfig) -> Result<Self> {
        let parse = |path: &str| reqwest::Url::parse(&format!("{}{path}", config.base)).ok();
        Ok(OpenAiClient {
            http: config.http()?,
            chat_url: parse(CHAT_PATH),
            completions_url: parse(COMPLETIONS_PATH),
            config,
        })
    }

    /// The ids of the models the server lists at `/v1/models`.
    pub(crate) async fn list_models(&self) -> Result<Vec<ModelInfo>> {
        let (url, status, body) = self.config.get(&self.http, "/v1/models").await?;
        let fail = |what: String| Error::new(ErrorKind::Engine, format!("GET {url}: {what}"));
        if !status.is_success() {
            return Err(fail(format!("answered {status}: {}", error_message(&body))));
        }
        let v: Value = serde_json::from_str(&body)
            .map_err(|e| fail(format!("not JSON: {}", excerpt(&body))).with_source(e))?;
        let models = v
            .get("data")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(model_info).collect())
            .unwrap_or_default();
        Ok(models)
    }

    fn body(&self, req: &GenRequest) -> (&'static str, Value) {
        let (path, mut body) = match self.config.route(req) {
            Mode::Chat => (
                CHAT_PATH,
                json!({
                    "model": self.config.model,
                    "messages": req.messages(),
                    "max_tokens": req.max_tokens,
                    "stream": req.stream,
                }),
            ),
            Mode::Completion => (
                COMPLETIONS_PATH,
                json!({
                    "model": self.config.model,
                    "prompt": req.text(),
                    "max_tokens": req.max_tokens,
                    "stream": req.stream,
                }),
            ),
        };
        if req.stream {
            body["stream_options"] = json!({"include_usage": true});
        }
        if req.exact_output {
            // vLLM, SGLang and llama.cpp's server read these; the answer is
            // then as long as the budget, whatever the model would say.
            body["ignore_eos"] = json!(true);
            body["min_tokens"] = json!(req.max_tokens);
        }
        (path, body)
    }

    async fn stream(&self, req: &GenRequest, ex: &mut Exchange) {
        let (path, body) = self.body(req);
        let url = format!("{}{path}", self.config.base);
        let parsed = if path == CHAT_PATH {
            self.chat_url.as_ref()
        } else {
            self.completions_url.as_ref()
        };
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
            .post_json(&self.http, &url, parsed, body, ex)
            .await
        else {
            return;
        };
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            let msg = format!("POST {url} answered {status}: {}", error_message(&body));
            return fail(ex, RequestErrorKind::HttpStatus, Some(status.as_u16()), msg);
        }
        let is_json = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.contains("json"));
        if is_json {
            // The server answered in one piece (it ignored `stream`, or it
            // was asked not to stream): one arrival for all the content.
            return read_whole(resp, &url, &self.config.timeouts, ex).await;
        }
        let mut body = resp.bytes_stream();
        let mut decoder = SseDecoder::new();
        let mut items = Vec::new();
        let mut events = 0u64;
        let mut done = false;
        let mut quiet = QuietTimer::default();
        while let Some(read) = next_read(&mut body, &self.config.timeouts, ex, &mut quiet).await {
            // The arrival clock is read before anything is parsed (DESIGN rule 1).
            let now = Instant::now();
            ex.ended_at = now;
            let bytes = match read {
                Ok(bytes) => bytes,
                Err(e) => {
                    let (kind, msg) = e.describe(&format!("POST {url}"), ex);
                    return fail(ex, kind, Some(status.as_u16()), msg);
                }
            };
            ex.first_byte_at.get_or_insert(now);
            decoder.feed(&bytes, &mut items);
            for item in items.drain(..) {
                let SseItem::Event { data, .. } = item else {
                    continue; // keep-alive comment: neither content nor an end
                };
                events += 1;
                if done {
                    continue;
                }
                if data.trim() == "[DONE]" {
                    done = true;
                    continue;
                }
                if let Err(err) = apply_event(&data, now, ex) {
                    let (kind, what) = err;
                    let msg = format!("POST {url}: stream event #{events}: {what}");
                    ex.error = Some(RequestError {
                        kind,
                        status: Some(status.as_u16()),
                        message: msg,
                    });
                    return;
                }
            }
        }
        if !done {
            let partial = if decoder.has_partial() {
                " (cut inside an event)"
            } else {
                ""
            };
            let msg = format!(
                "POST {url}: stream ended before `data: [DONE]` after {} events and {} content chunks{partial}",
                events,
                ex.content_at.len()
            );
            ex.error = Some(RequestError {
                kind: RequestErrorKind::Truncated,
                status: Some(status.as_u16()),
                message: msg,
            });
        }
    }
}

/// Read a whole (non-stream) JSON answer into the exchange.
pub(crate) async fn read_whole(
    resp: reqwest::Response,
    url: &str,
    timeouts: &Timeouts,
    ex: &mut Exchange,
) {
    let status = resp.status().as_u16();
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    let mut quiet = QuietTimer::default();
    while let Some(read) = next_read(&mut stream, timeouts, ex, &mut quiet).await {
        let now = Instant::now();
        ex.ended_at = now;
        match read {
            Ok(bytes) => {
                ex.first_byte_at.get_or_insert(now);
                body.extend_from_slice(&bytes);
            }
            Err(e) => {
                let (kind, message) = e.describe(&format!("POST {url}"), ex);
                ex.error = Some(RequestError {
                    kind,
                    status: Some(status),
                    message,
                });
                return;
            }
        }
    }
    let text = String::from_utf8_lossy(&body);
    if let Err((kind, what)) = apply_event(&text, ex.ended_at, ex) {
        ex.error = Some(RequestError {
            kind,
            status: Some(status),
            message: format!("POST {url}: answer: {what}"),
        });
    }
}

/// The failure for an `error` field inside a successful (200) stream: a
/// string, or an object with a `message`.
pub(crate) fn stream_error(err: &Value) -> (RequestErrorKind, String) {
    let text = match err {
        Value::String(s) => s.clone(),
        other => other
            .get("message")
            .and_then(Value::as_str)
            .map_or_else(|| other.to_string(), String::from),
    };
    (
        RequestErrorKind::EngineError,
        format!("engine reported an error: {}", excerpt(&text)),
    )
}

/// Fold one SSE event's JSON into the exchange.
pub(crate) fn apply_event(
    data: &str,
    now: Instant,
    ex: &mut Exchange,
) -> std::result::Result<(), (RequestErrorKind, String)> {
    let chunk: Chunk<'_> = serde_json::from_str(data).map_err(|e| {
        (
            RequestErrorKind::MalformedStream,
            format!("not a valid chunk ({e}): {}", excerpt(data)),
        )
    })?;
    if let Some(err) = chunk.error {
        return Err(stream_error(&err));
    }
    if ex.response_id.is_none() {
        ex.response_id = chunk.id.map(|id| id.0.into_owned());
    }
    if chunk.choices.iter().any(Choice::has_content) {
        ex.content_at.push(now);
    }
    for choice in &chunk.choices {
        choice.collect_text(ex);
    }
    if let Some(t) = &chunk.timings {
        apply_timings(t, ex);
    }
    if let Some(reason) = chunk.choices.iter().find_map(|c| c.finish_reason.as_ref()) {
        ex.finish_reason = Some(reason.0.to_string());
    }
    if let Some(usage) = chunk.usage {
        ex.prompt_tokens = usage.prompt_tokens.or(ex.prompt_tokens);
        ex.output_tokens = usage.completion_tokens.or(ex.output_tokens);
        if let Some(cached) = usage.prompt_tokens_details.and_then(|d| d.cached_tokens) {
            ex.server.cached_prompt_tokens = Some(cached);
        }
    }
    Ok(())
}

/// llama.cpp adds its `timings` object to OpenAI-route answers: the same
/// server timings as its native route. Token counts from `usage` win; the
/// timings fill them only when usage is absent.
fn apply_timings(t: &Value, ex: &mut Exchange) {
    let cached = ex.server.cached_prompt_tokens;
    ex.server = super::llamacpp::server_timings(t);
    ex.server.cached_prompt_tokens = ex.server.cached_prompt_tokens.or(cached);
    let (prompt, output) = super::llamacpp::token_counts(t);
    ex.prompt_tokens = ex.prompt_tokens.or(prompt);
    ex.output_tokens = ex.output_tokens.or(output);
}

/// A `/v1/models` entry: the id, and the context length where the server
/// says (vLLM `max_model_len`, llama.cpp `meta.n_ctx`).
fn model_info(m: &Value) -> Option<ModelInfo> {
    let mut info = ModelInfo::id(m.get("id")?.as_str()?);
    info.context_length = m
        .get("max_model_len")
        .or_else(|| m.pointer("/meta/n_ctx"))
        .and_then(Value::as_u64);
    info.parameter_size = m
        .pointer("/meta/n_params")
        .and_then(Value::as_u64)
        .map(|n| n.to_string());
    Some(info)
}

pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    // Callers name the URL themselves; reqwest repeats it in its own text.
    if let Some(url) = e
        .downcast_ref::<reqwest::Error>()
        .and_then(reqwest::Error::url)
    {
        out = out.replace(&format!(" for url ({url})"), "");
    }
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

impl EngineClient for OpenAiClient {
    fn send<'a>(&'a self, req: &'a GenRequest, ex: &'a mut Exchange) -> BoxFuture<'a, ()> {
        Box::pin(self.stream(req, ex))
    }

    fn models(&self) -> BoxFuture<'_, Result<Vec<ModelInfo>>> {
        Box::pin(self.list_models())
    }

    fn health(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            // vLLM, SGLang, TGI and llama.cpp answer `/health`; a server
            // without it (404) is asked for its models instead, the one
            // route every OpenAI-compatible server has.
            let url = format!("{}/health", self.config.base);
            let fail = |what: String| Error::new(ErrorKind::Engine, format!("GET {url}: {what}"));
            let resp = self
                .config
                .authorize(self.http.get(&url))
                .timeout(Duration::from_secs(10))
                .send()
                .await
                .map_err(|e| fail(error_chain(&e)))?;
            let status = resp.status();
            if status == reqwest::StatusCode::NOT_FOUND {
                return self.list_models().await.map(|_| ());
            }
            if status.is_success() {
                return Ok(());
            }
            let body = resp.text().await.unwrap_or_default();
            Err(fail(format!("answered {status}: {}", error_message(&body))))
        })
    }

    fn tokenize<'a>(&'a self, text: &'a str) -> BoxFuture<'a, Result<Option<Vec<u32>>>> {
        Box::pin(async move {
            // vLLM and SGLang serve `/tokenize`; other servers 404: no tokenizer.
            let url = format!("{}/tokenize", self.config.base);
            // vLLM reads `prompt`, llama.cpp's server (behind `/v1`) `content`.
            let body = json!({ "model": self.config.model, "prompt": text, "content": text });
            let fail = |what: String| Error::new(ErrorKind::Engine, format!("POST {url}: {what}"));
            let resp = self
                .config
                .authorize(self.http.post(&url))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string())
                .timeout(Duration::from_secs(30))
                .send()
                .await
                .map_err(|e| fail(error_chain(&e)))?;
            let status = resp.status();
            if status == reqwest::StatusCode::NOT_FOUND {
                return Ok(None);
            }
            let text = resp.text().await.map_err(|e| fail(error_chain(&e)))?;
            if !status.is_success() {
                return Err(fail(format!("answered {status}: {}", error_message(&text))));
            }
            let v: Value = serde_json::from_str(&text)
                .map_err(|e| fail(format!("not JSON ({e}): {}", excerpt(&text))))?;
            let ids = v
                .get("tokens")
                .and_then(Value::as_array)
                .ok_or_else(|| fail(format!("no `tokens` array in {}", excerpt(&text))))?
                .iter()
                .map(|t| t.as_u64().and_then(|n| u32::try_from(n).ok()))
                .collect::<Option<Vec<u32>>>()
                .ok_or_else(|| fail(format!("a token id is not a number in {}", excerpt(&text))))?;
            Ok(Some(ids))
        })
    }

    fn version(&self) -> BoxFuture<'_, Result<Option<String>>> {
        Box::pin(async move {
            // vLLM answers `/version`; others 404, which means "not told".
            let url = format!("{}/version", self.config.base);
            let Ok(resp) = self
                .config
                .authorize(self.http.get(&url))
                .timeout(Duration::from_secs(10))
                .send()
                .await
            else {
                return Ok(None);
            };
            if !resp.status().is_success() {
                return Ok(None);
            }
            let body = resp.text().await.unwrap_or_default();
            Ok(serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v.get("version")?.as_str().map(String::from)))
        })
    }
}

#[cfg(test)]
#[path = "openai_tests.rs"]
mod tests;
