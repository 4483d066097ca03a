//! The Ollama client: `/api/chat` and `/api/generate` streamed as NDJSON,
//! with Ollama's own token counts and nanosecond timings; `/api/tags` and
//! `/api/ps` for models, `/api/version` for health and version.

use std::time::Instant;

use futures_util::future::BoxFuture;
use serde::Deserialize;
use serde_json::{json, Value};

use super::client::{next_read, QuietTimer};
use super::openai::{error_message, excerpt, stream_error};
use super::wire::NdjsonDecoder;
use super::{ClientConfig, EngineClient, GenRequest, ModelInfo};
use crate::error::{Error, ErrorKind, Result};
use crate::measure::{Exchange, RequestError, RequestErrorKind, ServerTimings};
use crate::workload::Mode;

/// A client for one Ollama server and model.
#[derive(Debug)]
pub(crate) struct OllamaClient {
    http: reqwest::Client,
    config: ClientConfig,
}

/// The parts of a stream line llmbench reads, by name (Ollama's key order
/// changed in v0.12.0 and is no contract); everything else is ignored.
#[derive(Deserialize)]
struct Line {
    error: Option<Value>,
    /// `/api/generate` text.
    response: Option<String>,
    /// `/api/generate` reasoning, when the model thinks.
    thinking: Option<String>,
    /// `/api/chat` message.
    message: Option<Message>,
    done: Option<bool>,
    done_reason: Option<String>,
    prompt_eval_count: Option<u64>,
    eval_count: Option<u64>,
    load_duration: Option<u64>,
    prompt_eval_duration: Option<u64>,
    eval_duration: Option<u64>,
    total_duration: Option<u64>,
}

#[derive(Deserialize)]
struct Message {
    content: Option<String>,
    thinking: Option<String>,
    tool_calls: Option<Vec<Value>>,
}

fn non_empty(s: &Option<String>) -> bool {
    s.as_deref().is_some_and(|s| !s.is_empty())
}

impl Line {
    /// Does this line carry generated output: text, reasoning, or a tool
    /// call (whose `content` is empty, yet the engine generated it)?
    fn has_content(&self) -> bool {
        non_empty(&self.response)
            || non_empty(&self.thinking)
            || self.message.as_ref().is_some_and(|m| {
                non_empty(&m.content)
                    || non_empty(&m.thinking)
                    || m.tool_calls.as_ref().is_some_and(|t| !t.is_empty())
            })
    }

    /// Hand this line's reasoning and answer text to the exchange.
    fn collect_text(&self, ex: &mut Exchange) {
        let message = self.message.as_ref();
        let reasoning = [
            self.thinking.as_deref(),
            message.and_then(|m| m.thinking.as_deref()),
        ];
        for r in reasoning.into_iter().flatten() {
            ex.push_reasoning(r);
        }
        let answer = [
            self.response.as_deref(),
            message.and_then(|m| m.content.as_deref()),
        ];
        for t in answer.into_iter().flatten() {
            ex.push_text(t);
        }
    }
}

/// Where a response body stands, line by line.
#[derive(Debug, Default)]
pub(crate) struct LineState {
    /// Lines seen so far, blank ones excluded.
    pub(crate) lines: u64,
    /// Whether the final `done:true` line arrived.
    pub(crate) done: bool,
}

/// A failure found while decoding: its kind, and what happened (without the
/// URL, which the caller adds).
pub(crate) type Failure = (RequestErrorKind, String);

/// Nanoseconds to milliseconds.
fn ns_to_ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// Tokens per second from the engine's own count and duration, only when
/// both are there and the duration is not zero.
fn rate(count: Option<u64>, duration_ns: Option<u64>) -> Option<f64> {
    match (count, duration_ns) {
        (Some(n), Some(ns)) if ns > 0 => Some(n as f64 / (ns as f64 / 1e9)),
        _ => None,
    }
}

fn to_u32(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Fold one NDJSON line, which arrived at `now`, into the exchange. Pure: no
/// I/O, no clock; lines after the final one are counted and ignored.
pub(crate) fn apply_line(
    state: &mut LineState,
    line: &str,
    now: Instant,
    ex: &mut Exchange,
) -> std::result::Result<(), Failure> {
    state.lines += 1;
    if state.done {
        return Ok(());
    }
    let parsed: Line = serde_json::from_str(line).map_err(|e| {
        (
            RequestErrorKind::MalformedStream,
            format!("not a valid line ({e}): {}", excerpt(line)),
        )
    })?;
    if let Some(err) = parsed.error {
        return Err(stream_error(&err));
    }
    if parsed.has_content() {
        ex.content_at.push(now);
        parsed.collect_text(ex);
    }
    if parsed.done == Some(true) {
        state.done = true;
        ex.finish_reason = parsed.done_reason;
        ex.prompt_tokens = parsed.prompt_eval_count.map(to_u32);
        ex.output_tokens = parsed.eval_count.map(to_u32);
        ex.server = ServerTimings {
            load_duration_ms: parsed.load_duration.map(ns_to_ms),
            prompt_eval_duration_ms: parsed.prompt_eval_duration.map(ns_to_ms),
            prompt_tps: rate(parsed.prompt_eval_count, parsed.prompt_eval_duration),
            eval_duration_ms: parsed.eval_duration.map(ns_to_ms),
            eval_tps: rate(parsed.eval_count, parsed.eval_duration),
            total_duration_ms: parsed.total_duration.map(ns_to_ms),
            ..ServerTimings::default()
        };
    }
    Ok(())
}

/// The end of the body, at `now`: `rest` is its unterminated last line, if
/// any. A complete object there is applied (a non-streamed answer has no
/// trailing newline); a cut one, or no `done:true` line at all, is a
/// truncated stream.
pub(crate) fn end_of_stream(
    state: &mut LineState,
    rest: Option<String>,
    now: Instant,
    ex: &mut Exchange,
) -> std::result::Result<(), Failure> {
    let mut cut = false;
    if let Some(rest) = rest {
        if serde_json::from_str::<Value>(&rest).is_ok() {
            apply_line(state, &rest, now, ex)
                .map_err(|(kind, what)| (kind, format!("stream line #{}: {what}", state.lines)))?;
        } else {
            cut = true;
        }
    }
    if state.done {
        return Ok(());
    }
    let partial = if cut { " (cut inside a line)" } else { "" };
    Err((
        RequestErrorKind::Truncated,
        format!(
            "stream ended before its `done:true` line, after {} lines and {} content chunks{partial}",
            state.lines,
            ex.content_at.len()
        ),
    ))
}

/// A `/api/tags` or `/api/ps` entry.
fn model_info(m: &Value) -> Option<ModelInfo> {
    let id = m.get("name").or_else(|| m.get("model"))?.as_str()?;
    let detail = |key: &str| {
        m.get("details")
            .and_then(|d| d.get(key))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(String::from)
    };
    Some(ModelInfo {
        id: id.to_string(),
        family: detail("family"),
        parameter_size: detail("parameter_size"),
        quantization: detail("quantization_level"),
        ..ModelInfo::default()
    })
}

/// The `models` array of a tags or ps answer.
fn model_list(v: &Value) -> &[Value] {
    v.get("models")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// Merge what `/api/ps` says of loaded models into the `/api/tags` list. Its
/// `size` is memory in use, not size on disk, so it is not taken as one; a
/// loaded model missing from the tags is still served, so it is added.
fn merge_ps(models: &mut Vec<ModelInfo>, ps: &Value) {
    for entry in model_list(ps) {
        let Some(loaded) = model_info(entry) else {
            continue;
        };
        let vram = entry.get("size_vram").and_then(Value::as_u64);
        let context = entry.get("context_length").and_then(Value::as_u64);
        let info = match models.iter_mut().position(|m| m.id == loaded.id) {
            Some(i) => &mut models[i],
            None => {
                models.push(loaded);
                let last = models.len() - 1;
                &mut models[last]
            }
        };
        info.vram_bytes = vram.or(info.vram_bytes);
        info.context_length = context.or(info.context_length);
    }
}

impl OllamaClient {
    /// A client for the server and model in `config`.
    pub(crate) fn new(config: ClientConfig) -> Result<Self> {
        Ok(OllamaClient {
            http: config.http()?,
            config,
        })
    }

    /// `GET path`'s body; a non-2xx answer is an error with Ollama's message.
    async fn get_text(&self, path: &str) -> Result<String> {
        let (url, status, body) = self.config.get(&self.http, path).await?;
        let fail = |what: String| Error::new(ErrorKind::Engine, format!("GET {url}: {what}"));
        if !status.is_success() {
            return Err(fail(format!("answered {status}: {}", error_message(&body))));
        }
        Ok(body)
    }

    /// `GET path` as JSON.
    async fn get_json(&self, path: &str) -> Result<Value> {
        let body = self.get_text(path).await?;
        serde_json::from_str(&body).map_err(|e| {
            let what = format!(
                "GET {}{path}: not JSON: {}",
                self.config.base,
                excerpt(&body)
            );
            Error::new(ErrorKind::Engine, what).with_source(e)
        })
    }

    /// The models at `/api/tags`, with `/api/ps` merged in when it answers.
    async fn list_models(&self) -> Result<Vec<ModelInfo>> {
        let tags = self.get_json("/api/tags").await?;
        let mut models: Vec<ModelInfo> = model_list(&tags)
            .iter()
            .filter_map(|m| {
                let mut info = model_info(m)?;
                info.size_bytes = m.get("size").and_then(Value::as_u64);
                Some(info)
            })
            .collect();
        // Which models are loaded is extra information: its absence is not a failure.
        if let Ok(ps) = self.get_json("/api/ps").await {
            merge_ps(&mut models, &ps);
        }
        Ok(models)
    }

    fn body(&self, req: &GenRequest) -> (&'static str, Value) {
        let options = json!({"num_predict": req.max_tokens});
        match self.config.route(req) {
            Mode::Chat => (
                "/api/chat",
                json!({
                    "model": self.config.model,
                    "messages": req.messages(),
                    "stream": req.stream,
                    "options": options,
                }),
            ),
            Mode::Completion => (
                "/api/generate",
                // `raw`: the completion route sends the prompt as it is,
                // without the model's template, as `/v1/completions` does.
                json!({
                    "model": self.config.model,
                    "prompt": req.text(),
                    "raw": true,
                    "stream": req.stream,
                    "options": options,
                }),
            ),
        }
    }

    async fn stream(&self, req: &GenRequest, ex: &mut Exchange) {
        let (path, body) = self.body(req);
        let url = format!("{}{path}", self.config.base);
        let fail = |ex: &mut Exchange, kind, status, message: String| {
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
            // Before the first byte Ollama fails with a real status and one
            // plain JSON object `{"error":"..."}` (not an NDJSON line).
            let body = resp.text().await.unwrap_or_default();
            ex.ended_at = Instant::now();
            let msg = format!("POST {url} answered {status}: {}", error_message(&body));
            return fail(ex, RequestErrorKind::HttpStatus, Some(status.as_u16()), msg);
        }
        let code = Some(status.as_u16());
        let mut body = resp.bytes_stream();
        let mut decoder = NdjsonDecoder::new();
        let mut lines = Vec::new();
        let mut state = LineState::default();
        let mut quiet = QuietTimer::default();
        while let Some(read) = next_read(&mut body, &self.config.timeouts, ex, &mut quiet).await {
            // The arrival clock is read before anything is parsed (DESIGN rule 1).
            let now = Instant::now();
            ex.ended_at = now;
            let bytes = match read {
                Ok(bytes) => bytes,
                Err(e) => {
                    let (kind, msg) = e.describe(&format!("POST {url}"), ex);
                    return fail(ex, kind, code, msg);
                }
            };
            ex.first_byte_at.get_or_insert(now);
            decoder.feed(&bytes, &mut lines);
            for line in lines.drain(..) {
                if let Err((kind, what)) = apply_line(&mut state, &line, now, ex) {
                    let msg = format!("POST {url}: stream line #{}: {what}", state.lines);
                    return fail(ex, kind, code, msg);
                }
            }
        }
        let now = ex.ended_at;
        if let Err((kind, what)) = end_of_stream(&mut state, decoder.finish(), now, ex) {
            fail(ex, kind, code, format!("POST {url}: {what}"));
        }
    }

    async fn version_string(&self) -> Result<Option<String>> {
        let v = self.get_json("/api/version").await?;
        Ok(v.get("version").and_then(Value::as_str).map(String::from))
    }
}

impl EngineClient for OllamaClient {
    fn send<'a>(&'a self, req: &'a GenRequest, ex: &'a mut Exchange) -> BoxFuture<'a, ()> {
        Box::pin(self.stream(req, ex))
    }

    fn models(&self) -> BoxFuture<'_, Result<Vec<ModelInfo>>> {
        Box::pin(self.list_models())
    }

    fn health(&self) -> BoxFuture<'_, Result<()>> {
        // Ollama has no `/health`; `/api/version` answers as soon as it serves.
        Box::pin(async move { self.get_text("/api/version").await.map(|_| ()) })
    }

    fn version(&self) -> BoxFuture<'_, Result<Option<String>>> {
        Box::pin(self.version_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/../../shared/fixtures/ollama/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{path}: {e} (../shared must sit beside the checkout)"))
    }

    /// Decode `body` as it would arrive in one read, then end the stream.
    fn fold(body: &[u8]) -> (LineState, Exchange, std::result::Result<(), Failure>) {
        let t0 = Instant::now();
        let mut ex = Exchange::started(t0);
        let mut state = LineState::default();
        let mut decoder = NdjsonDecoder::new();
        let mut lines = Vec::new();
        decoder.feed(body, &mut lines);
        for line in &lines {
            if let Err(e) = apply_line(&mut state, line, t0, &mut ex) {
                return (state, ex, Err(e));
            }
        }
        let end = end_of_stream(&mut state, decoder.finish(), t0, &mut ex);
        (state, ex, end)
    }

    #[test]
    fn generate_stream_midstream_error() {
        let (state, ex, end) = fold(&fixture("generate_stream_midstream_error.ndjson"));
        let (kind, msg) = end.unwrap_err();
        assert_eq!(kind, RequestErrorKind::EngineError);
        assert_eq!(
            msg,
            "engine reported an error: an error was encountered while running the model"
        );
        assert_eq!(state.lines, 5, "the error is the fifth line");
        assert_eq!(ex.content_at.len(), 4, "the 4 tokens received are kept");
        assert_eq!(ex.text, " Yes.Ican");
        assert_eq!((ex.finish_reason, ex.output_tokens), (None, None));
    }

    #[test]
    fn cut_stream_is_truncated_and_keeps_its_tokens() {
        let body = fixture("generate_stream.ndjson");
        let last_line = body[..body.len() - 1]
            .iter()
            .rposition(|&b| b == b'\n')
            .unwrap()
            + 1;
        // Without the final line.
        let (state, ex, end) = fold(&body[..last_line]);
        let (kind, msg) = end.unwrap_err();
        assert_eq!(kind, RequestErrorKind::Truncated);
        assert!(
            msg.contains("after 41 lines and 41 content chunks"),
            "{msg}"
        );
        assert!(!msg.contains("cut inside"), "{msg}");
        assert!(!state.done);
        assert_eq!(ex.content_at.len(), 41);
        assert!(ex.text.starts_with("A rabbit is"), "{}", ex.text);
        assert!(ex.server.is_empty() && ex.output_tokens.is_none());
        // Cut inside the final line.
        let (_, ex, end) = fold(&body[..last_line + 40]);
        let (kind, msg) = end.unwrap_err();
        assert_eq!(kind, RequestErrorKind::Truncated);
        assert!(msg.contains("(cut inside a line)"), "{msg}");
        assert_eq!(ex.content_at.len(), 41);
    }

    #[test]
    fn malformed_line_is_reported_with_its_text() {
        let mut ex = Exchange::started(Instant::now());
        let mut state = LineState::default();
        apply_line(
            &mut state,
            r#"{"response":"a","done":false}"#,
            ex.sent_at,
            &mut ex,
        )
        .unwrap();
        let (kind, msg) = apply_line(&mut state, "{not json", ex.sent_at, &mut ex).unwrap_err();
        assert_eq!(kind, RequestErrorKind::MalformedStream);
        assert!(msg.contains("{not json"), "{msg}");
        let (kind, _) =
            apply_line(&mut state, r#"{"done":"yes"}"#, ex.sent_at, &mut ex).unwrap_err();
        assert_eq!(kind, RequestErrorKind::MalformedStream, "wrong type");
        assert_eq!(ex.content_at.len(), 1);
    }

    #[test]
    fn final_line_in_either_key_order_gives_counts_and_timings() {
        for line in [
            r#"{"message":{"content":""},"done_reason":"length","done":true,"prompt_eval_count":4,"prompt_eval_duration":2000000,"eval_count":10,"eval_duration":500000000}"#,
            r#"{"message":{"content":""},"done":true,"done_reason":"length","eval_duration":500000000,"eval_count":10,"prompt_eval_duration":2000000,"prompt_eval_count":4}"#,
        ] {
            let mut ex = Exchange::started(Instant::now());
            let mut state = LineState::default();
            apply_line(&mut state, line, ex.sent_at, &mut ex).unwrap();
            assert!(state.done);
            assert!(
                ex.content_at.is_empty(),
                "an empty final message is not content"
            );
            assert_eq!(ex.finish_reason.as_deref(), Some("length"));
            assert_eq!((ex.prompt_tokens, ex.output_tokens), (Some(4), Some(10)));
            assert_eq!(ex.server.prompt_eval_duration_ms, Some(2.0));
            assert_eq!(ex.server.prompt_tps, Some(2000.0));
            assert_eq!(ex.server.eval_tps, Some(20.0));
            assert_eq!(ex.server.load_duration_ms, None, "absent, not zero");
            assert_eq!(ex.server.total_duration_ms, None);
        }
    }

    #[test]
    fn zero_durations_give_no_rate() {
        let mut ex = Exchange::started(Instant::now());
        let line = r#"{"done":true,"eval_count":3,"eval_duration":0,"prompt_eval_count":2}"#;
        apply_line(&mut LineState::default(), line, ex.sent_at, &mut ex).unwrap();
        assert_eq!(ex.server.eval_duration_ms, Some(0.0));
        assert_eq!(ex.server.eval_tps, None);
        assert_eq!(ex.server.prompt_tps, None);
    }

    #[test]
    fn ps_only_models_are_added_without_a_disk_size() {
        let tags: Value = serde_json::from_slice(&fixture("tags.json")).unwrap();
        let ps: Value = serde_json::from_slice(&fixture("ps.json")).unwrap();
        let mut models: Vec<ModelInfo> = model_list(&tags).iter().filter_map(model_info).collect();
        merge_ps(&mut models, &ps);
        assert_eq!(models.len(), 17, "16 pulled, plus llava-llama3:8b loaded");
        let llava = models.last().unwrap();
        assert_eq!(llava.id, "llava-llama3:8b");
        assert_eq!(llava.vram_bytes, Some(6_781_644_800));
        assert_eq!(llava.size_bytes, None);
    }
}
