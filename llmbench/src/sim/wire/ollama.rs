//! Ollama's wire format: `/api/chat` and `/api/generate` as NDJSON (one
//! compact object per line, the last with `done:true`, `done_reason`, counts
//! and durations in nanoseconds) or one object without a trailing newline;
//! `/api/tags`, `/api/ps`, `/api/version`; errors `{"error":"..."}`.
//!
//! One line per token, and `eval_count` counts exactly those tokens (real
//! Ollama also counts an end-of-sequence token it never writes when an
//! answer stops by itself; the simulator does not).

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde::Serialize;
use serde_json::json;

use super::{
    nanos, ndjson, rfc3339, to_json, Meta, Reply, Stats, Wire, FAILURE, JSON_UTF8, NDJSON, VERSION,
};
use crate::sim::model::{token_id, tokenize};
use crate::sim::request::Endpoint;

/// How long a loaded model stays loaded, as `/api/ps` reports it.
const KEEP_ALIVE: Duration = Duration::from_secs(300);

#[derive(Serialize)]
struct Message<'a> {
    role: &'static str,
    content: &'a str,
}

/// One line (or whole body) of `/api/chat` or `/api/generate`; `message`
/// for chat, `response` for generate.
#[derive(Serialize)]
struct Line<'a> {
    model: &'a str,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<Message<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<&'a str>,
    done: bool,
    #[serde(flatten)]
    end: Option<Done>,
}

/// What the last line adds. Durations in nanoseconds.
#[derive(Serialize)]
struct Done {
    done_reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<Vec<u32>>,
    total_duration: u64,
    load_duration: u64,
    prompt_eval_count: u32,
    prompt_eval_duration: u64,
    eval_count: u32,
    eval_duration: u64,
}

/// The writer of one `/api/chat` or `/api/generate` answer.
pub(crate) struct Writer {
    meta: Meta,
    /// Ids of the tokens written so far, for `/api/generate`'s `context`.
    ids: Vec<u32>,
}

impl Writer {
    pub(crate) fn new(meta: Meta) -> Writer {
        Writer {
            meta,
            ids: Vec::new(),
        }
    }

    fn chat(&self) -> bool {
        self.meta.route.endpoint == Endpoint::OllamaChat
    }

    fn line<'a>(&'a self, text: &'a str, end: Option<Done>) -> Line<'a> {
        let chat = self.chat();
        Line {
            model: &self.meta.model,
            created_at: rfc3339(SystemTime::now()),
            message: chat.then_some(Message {
                role: "assistant",
                content: text,
            }),
            response: (!chat).then_some(text),
            done: end.is_some(),
            end,
        }
    }

    /// The counts and durations of the last line. The simulator loads no
    /// model: `load_duration` is the time it took to read the request into
    /// its queue. Prompt time runs from the slot to the first token,
    /// generation from the first token to the last.
    fn done(&self, stats: &Stats, output_ids: Vec<u32>) -> Done {
        let context = (!self.chat()).then(|| {
            // Made-up prompt ids, then the answer's.
            (0..self.meta.prompt_tokens)
                .map(|i| 1000 + i % 49_000)
                .chain(output_ids)
                .collect()
        });
        Done {
            done_reason: stats.finish.as_str(),
            context,
            total_duration: nanos(stats.total_time()),
            load_duration: nanos(stats.validation_time()),
            prompt_eval_count: self.meta.prompt_tokens,
            prompt_eval_duration: nanos(stats.prompt_time()),
            eval_count: stats.output_tokens,
            eval_duration: nanos(stats.decode_time()),
        }
    }
}

impl Wire for Writer {
    fn stream_type(&self) -> &'static str {
        NDJSON
    }

    fn token(&mut self, word: &str, _last: bool) -> Bytes {
        if !self.chat() {
            self.ids.push(token_id(word));
        }
        ndjson(&self.line(word, None))
    }

    fn closing(&mut self, stats: &Stats) -> Vec<Bytes> {
        let ids = std::mem::take(&mut self.ids);
        let done = self.done(stats, ids);
        vec![ndjson(&self.line("", Some(done)))]
    }

    fn whole(&mut self, text: &str, stats: &Stats) -> Reply {
        let ids = tokenize(text).into_iter().map(token_id).collect();
        let done = self.done(stats, ids);
        Reply::new(200, JSON_UTF8, to_json(&self.line(text, Some(done))))
    }

    fn malformed_event(&self) -> Bytes {
        Bytes::from_static(b"{not json\n")
    }

    fn error_event(&self) -> Bytes {
        ndjson(&json!({ "error": FAILURE }))
    }

    fn failure(&self) -> Reply {
        Reply::new(500, JSON_UTF8, error_body(FAILURE))
    }
}

/// Ollama's error body `{"error":"..."}`.
pub(crate) fn error_body(message: &str) -> Vec<u8> {
    to_json(&json!({ "error": message }))
}

/// The answer to a "load the model" request (no prompt, no messages).
pub(crate) fn load_body(model: &str, chat: bool) -> Vec<u8> {
    let created_at = rfc3339(SystemTime::now());
    if chat {
        to_json(&json!({
            "model": model, "created_at": created_at,
            "message": {"role": "assistant", "content": ""},
            "done": true, "done_reason": "load",
        }))
    } else {
        to_json(&json!({
            "model": model, "created_at": created_at, "response": "",
            "done": true, "done_reason": "load",
        }))
    }
}

/// A stable, made-up sha256-looking digest of the model name.
fn digest(model: &str) -> String {
    (0..4u64)
        .map(|round| {
            let hash = model
                .bytes()
                .fold(0xcbf2_9ce4_8422_2325_u64 ^ round, |h, b| {
                    (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
                });
            format!("{hash:016x}")
        })
        .collect()
}

/// What `/api/tags` and `/api/ps` say about the model.
fn details() -> serde_json::Value {
    json!({
        "parent_model": "",
        "format": "gguf",
        "family": "llmbench",
        "families": ["llmbench"],
        "parameter_size": "0B",
        "quantization_level": "sim",
    })
}

/// The body of `GET /api/tags`: the one model.
pub(crate) fn tags_body(model: &str, started: SystemTime) -> Vec<u8> {
    to_json(&json!({"models": [{
        "name": model,
        "model": model,
        "modified_at": rfc3339(started),
        "size": 0,
        "digest": digest(model),
        "details": details(),
    }]}))
}

/// The body of `GET /api/ps`: the model once loaded, nothing before.
pub(crate) fn ps_body(model: &str, loaded: bool) -> Vec<u8> {
    if !loaded {
        return to_json(&json!({"models": []}));
    }
    to_json(&json!({"models": [{
        "name": model,
        "model": model,
        "size": 0,
        "digest": digest(model),
        "details": details(),
        "expires_at": rfc3339(SystemTime::now() + KEEP_ALIVE),
        "size_vram": 0,
        "context_length": super::llamacpp::N_CTX,
    }]}))
}

/// The body of `GET /api/version`.
pub(crate) fn version_body() -> Vec<u8> {
    to_json(&json!({ "version": VERSION }))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{json_of, meta, stats};
    use super::*;
    use crate::sim::Protocol;

    fn writer(endpoint: Endpoint) -> Writer {
        Writer::new(meta(Protocol::Ollama, endpoint, "/api/x"))
    }

    #[test]
    fn chat_lines_then_done_with_nanosecond_durations() {
        let mut w = writer(Endpoint::OllamaChat);
        assert_eq!(w.stream_type(), NDJSON);
        let line = w.token(" a", false);
        assert!(line.ends_with(b"}\n") && line.iter().filter(|&&b| b == b'\n').count() == 1);
        let line = json_of(&line);
        assert_eq!(line["model"], "m");
        assert_eq!(
            line["message"],
            json!({"role": "assistant", "content": " a"})
        );
        assert_eq!(line["done"], false);
        assert!(line.get("response").is_none() && line.get("done_reason").is_none());
        let created = line["created_at"].as_str().expect("created_at");
        assert!(created.ends_with('Z') && created.len() >= 20, "{created}");

        let closing = w.closing(&stats());
        assert_eq!(closing.len(), 1);
        let done = json_of(&closing[0]);
        assert_eq!(done["done"], true);
        assert_eq!(done["done_reason"], "length");
        assert_eq!(done["message"]["content"], "");
        assert_eq!(done["total_duration"], 73_000_000);
        assert_eq!(done["load_duration"], 1_000_000);
        assert_eq!(done["prompt_eval_count"], 5);
        assert_eq!(done["prompt_eval_duration"], 40_000_000);
        assert_eq!(done["eval_count"], 3);
        assert_eq!(done["eval_duration"], 20_000_000);
        assert!(done.get("context").is_none());
    }

    #[test]
    fn generate_has_response_and_context() {
        let mut w = writer(Endpoint::OllamaGenerate);
        assert_eq!(json_of(&w.token(" a", false))["response"], " a");
        let done = json_of(&w.closing(&stats())[0]);
        assert_eq!(done["response"], "");
        assert_eq!(done["context"].as_array().map(Vec::len), Some(5 + 1));
        let reply = w.whole(" a b", &stats());
        assert_eq!(reply.content_type, JSON_UTF8);
        assert!(
            !reply.body.ends_with(b"\n"),
            "no newline after a whole body"
        );
        let body: serde_json::Value = serde_json::from_slice(&reply.body).expect("json");
        assert_eq!(body["response"], " a b");
        assert_eq!(body["eval_count"], 3);
        assert_eq!(
            &w.error_event()[..],
            b"{\"error\":\"simulated engine failure\"}\n"
        );
    }

    #[test]
    fn model_lists() {
        let tags: serde_json::Value =
            serde_json::from_slice(&tags_body("m", SystemTime::now())).expect("json");
        assert_eq!(tags["models"][0]["name"], "m");
        assert_eq!(tags["models"][0]["digest"].as_str().map(str::len), Some(64));
        let ps: serde_json::Value = serde_json::from_slice(&ps_body("m", true)).expect("json");
        assert_eq!(
            ps["models"][0]["context_length"],
            super::super::llamacpp::N_CTX
        );
        let ps: serde_json::Value = serde_json::from_slice(&ps_body("m", false)).expect("json");
        assert_eq!(ps["models"], json!([]));
    }
}
