//! HuggingFace TGI's wire format: `/generate_stream` (SSE `data: ` events
//! with `index` and `token`, the last one also carrying `generated_text` and,
//! when asked, `details`; no `[DONE]`), `/generate` with its `x-*` timing
//! headers (`router/src/server.rs`: times in whole milliseconds,
//! `x-compute-time` in seconds), `/info`, errors `{"error","error_type"}`.

use bytes::Bytes;
use serde::Serialize;
use serde_json::json;

use super::{ms_whole, sse, sse_raw, to_json, Meta, Reply, Stats, Wire, FAILURE, VERSION};
use crate::sim::model::{token_id, token_logprob, Finish};

/// What it reports as `x-compute-type`.
const COMPUTE_TYPE: &str = "llmbench-sim";

#[derive(Serialize)]
struct Token<'a> {
    id: u32,
    text: &'a str,
    logprob: f64,
    special: bool,
}

impl<'a> Token<'a> {
    fn of(text: &'a str) -> Token<'a> {
        Token {
            id: token_id(text),
            text,
            logprob: token_logprob(text),
            special: false,
        }
    }
}

#[derive(Serialize)]
struct StreamEvent<'a> {
    index: u32,
    token: Token<'a>,
    generated_text: Option<&'a str>,
    details: Option<StreamDetails>,
}

#[derive(Serialize)]
struct StreamDetails {
    finish_reason: &'static str,
    generated_tokens: u32,
    seed: Option<u64>,
    input_length: u32,
}

#[derive(Serialize)]
struct Details<'a> {
    finish_reason: &'static str,
    generated_tokens: u32,
    seed: Option<u64>,
    prefill: [(); 0],
    tokens: Vec<Token<'a>>,
}

#[derive(Serialize)]
struct Generated<'a> {
    generated_text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<Details<'a>>,
}

/// TGI's name for why an answer ended.
fn finish_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::Length => "length",
        Finish::Stop => "eos_token",
    }
}

/// The writer of one `/generate` or `/generate_stream` answer.
pub(crate) struct Writer {
    meta: Meta,
    /// Tokens written so far.
    index: u32,
    /// Their text, for the last event's `generated_text`.
    text: String,
}

impl Writer {
    pub(crate) fn new(meta: Meta) -> Writer {
        Writer {
            meta,
            index: 0,
            text: String::new(),
        }
    }

    fn compute_characters(&self) -> String {
        self.meta.prompt.chars().count().to_string()
    }
}

impl Wire for Writer {
    fn stream_headers(&self) -> Vec<(&'static str, String)> {
        vec![
            ("x-compute-type", COMPUTE_TYPE.to_owned()),
            ("x-compute-characters", self.compute_characters()),
            ("x-accel-buffering", "no".to_owned()),
        ]
    }

    fn token(&mut self, word: &str, last: bool) -> Bytes {
        self.index = self.index.saturating_add(1);
        self.text.push_str(word);
        let details = (last && self.meta.details).then(|| StreamDetails {
            finish_reason: finish_reason(self.meta.finish),
            generated_tokens: self.index,
            seed: self.meta.seed,
            input_length: self.meta.prompt_tokens,
        });
        sse(&StreamEvent {
            index: self.index,
            token: Token::of(word),
            generated_text: last.then_some(self.text.as_str()),
            details,
        })
    }

    /// The last token's event was the end.
    fn closing(&mut self, _stats: &Stats) -> Vec<Bytes> {
        Vec::new()
    }

    fn whole(&mut self, text: &str, stats: &Stats) -> Reply {
        let words = split_words(text);
        let details = self.meta.details.then(|| Details {
            finish_reason: finish_reason(stats.finish),
            generated_tokens: stats.output_tokens,
            seed: self.meta.seed,
            prefill: [],
            tokens: words.iter().map(|w| Token::of(w)).collect(),
        });
        let body = to_json(&Generated {
            generated_text: text,
            details,
        });
        let per_token = stats
            .inference_time()
            .checked_div(stats.output_tokens.max(1))
            .unwrap_or_default();
        let mut reply = Reply::json(200, body);
        reply.headers = vec![
            ("x-compute-type", COMPUTE_TYPE.to_owned()),
            (
                "x-compute-time",
                stats.total_time().as_secs_f64().to_string(),
            ),
            ("x-compute-characters", self.compute_characters()),
            ("x-total-time", ms_whole(stats.total_time()).to_string()),
            (
                "x-validation-time",
                ms_whole(stats.validation_time()).to_string(),
            ),
            ("x-queue-time", ms_whole(stats.queue_time()).to_string()),
            (
                "x-inference-time",
                ms_whole(stats.inference_time()).to_string(),
            ),
            ("x-time-per-token", ms_whole(per_token).to_string()),
            ("x-prompt-tokens", self.meta.prompt_tokens.to_string()),
            ("x-generated-tokens", stats.output_tokens.to_string()),
        ];
        reply
    }

    fn error_event(&self) -> Bytes {
        sse_raw(&generation_error())
    }

    fn failure(&self) -> Reply {
        Reply::json(424, generation_error())
    }
}

/// The simulator's words (each with its leading space) back from an answer's
/// text, for `details.tokens`.
fn split_words(text: &str) -> Vec<&str> {
    let mut words = Vec::new();
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if c == ' ' && i > start {
            words.push(&text[start..i]);
            start = i;
        }
    }
    if start < text.len() {
        words.push(&text[start..]);
    }
    words
}

fn generation_error() -> Vec<u8> {
    error_body(
        &format!("Request failed during generation: {FAILURE}"),
        "generation",
    )
}

/// TGI's error body `{"error","error_type"}`.
pub(crate) fn error_body(message: &str, error_type: &str) -> Vec<u8> {
    to_json(&json!({ "error": message, "error_type": error_type }))
}

/// The `error_type` TGI gives with an HTTP status.
pub(crate) fn error_type(status: u16) -> &'static str {
    match status {
        400 | 413 | 422 => "validation",
        424 => "generation",
        429 => "overloaded",
        503 => "unhealthy",
        500..=599 => "incomplete_generation",
        _ => "validation",
    }
}

/// The body of `GET /info`.
pub(crate) fn info_body(model: &str, max_concurrent: usize) -> Vec<u8> {
    let total = super::llamacpp::N_CTX;
    to_json(&json!({
        "model_id": model,
        "model_sha": null,
        "model_pipeline_tag": "text-generation",
        "max_concurrent_requests": max_concurrent,
        "max_best_of": 2,
        "max_stop_sequences": 4,
        "max_input_tokens": total - 1,
        "max_total_tokens": total,
        "validation_workers": 2,
        "max_client_batch_size": 4,
        "router": "text-generation-router",
        "version": VERSION,
        "sha": null,
        "docker_label": null,
    }))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{json_of, meta, stats};
    use super::*;
    use crate::sim::request::Endpoint;
    use crate::sim::Protocol;

    fn writer(details: bool) -> Writer {
        let mut m = meta(
            Protocol::Tgi,
            Endpoint::TgiGenerateStream,
            "/generate_stream",
        );
        m.details = details;
        m.seed = Some(u64::MAX);
        Writer::new(m)
    }

    #[test]
    fn stream_ends_on_the_last_token_with_details() {
        let mut w = writer(true);
        let headers = w.stream_headers();
        assert!(headers.contains(&("x-compute-characters", "24".to_owned())));
        let first = json_of(&w.token(" a", false));
        assert_eq!(first["index"], 1);
        assert_eq!(
            first["token"],
            json!({"id": token_id("a"), "text": " a", "logprob": token_logprob("a"), "special": false})
        );
        assert_eq!(first["generated_text"], json!(null));
        assert_eq!(first["details"], json!(null));
        let last = json_of(&w.token(" b", true));
        assert_eq!(last["index"], 2);
        assert_eq!(last["generated_text"], " a b");
        assert_eq!(
            last["details"],
            json!({"finish_reason": "length", "generated_tokens": 2, "seed": u64::MAX, "input_length": 5})
        );
        assert!(w.closing(&stats()).is_empty(), "no [DONE]");

        let mut w = writer(false);
        assert_eq!(json_of(&w.token(" a", true))["details"], json!(null));
        assert_eq!(
            json_of(&w.error_event()),
            json!({"error": "Request failed during generation: simulated engine failure", "error_type": "generation"})
        );
    }

    #[test]
    fn whole_answer_has_timing_headers() {
        let mut w = writer(true);
        let reply = w.whole(" a b c", &stats());
        let body: serde_json::Value = serde_json::from_slice(&reply.body).expect("json");
        assert_eq!(body["generated_text"], " a b c");
        assert_eq!(body["details"]["generated_tokens"], 3);
        assert_eq!(body["details"]["tokens"].as_array().map(Vec::len), Some(3));
        assert_eq!(body["details"]["tokens"][2]["text"], " c");
        let header = |name: &str| {
            reply
                .headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(header("x-total-time").as_deref(), Some("73"));
        assert_eq!(header("x-queue-time").as_deref(), Some("10"));
        assert_eq!(header("x-validation-time").as_deref(), Some("1"));
        assert_eq!(header("x-inference-time").as_deref(), Some("62"));
        assert_eq!(header("x-time-per-token").as_deref(), Some("20"));
        assert_eq!(header("x-compute-time").as_deref(), Some("0.073"));
        assert_eq!(header("x-generated-tokens").as_deref(), Some("3"));

        let mut w = writer(false);
        let reply = w.whole(" a", &stats());
        assert_eq!(&reply.body[..], br#"{"generated_text":" a"}"#);
        assert_eq!(w.failure().status, 424);
    }
}
