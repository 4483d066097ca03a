//! llama-server's native wire format: `/completion` (SSE `data: ` events with
//! `content` per token, a last event with `stop:true` and `timings`, no
//! `[DONE]`), its `timings` object (also on `/v1/*`), `/props`, `/slots`,
//! `/tokenize`.

use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde_json::json;

use super::openai::error_body;
use super::{sse, sse_raw, to_json, Meta, Reply, Stats, Wire, FAILURE, JSON_UTF8};
use crate::sim::model::{token_id, tokenize, Finish};

/// The context size it claims per slot.
pub(crate) const N_CTX: u32 = 8192;

/// What it reports as `build_info`.
const BUILD: &str = "b0-llmbench-sim";

/// llama-server's `timings`: milliseconds, measured by the simulator. The
/// simulator keeps no prompt cache, so `cache_n` is 0 and `prompt_n` is every
/// prompt token. A rate over zero time (or per zero tokens) is `null`, as
/// llama-server's JSON writes infinity.
#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) struct Timings {
    cache_n: u32,
    prompt_n: u32,
    prompt_ms: f64,
    prompt_per_token_ms: Option<f64>,
    prompt_per_second: Option<f64>,
    predicted_n: u32,
    predicted_ms: f64,
    predicted_per_token_ms: Option<f64>,
    predicted_per_second: Option<f64>,
}

/// Milliseconds with nanosecond precision (exact for whole milliseconds).
fn ms(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1e6
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

impl Timings {
    /// Prompt time from the slot to the first token, generation time from the
    /// first token to the last.
    pub(crate) fn new(prompt_tokens: u32, stats: &Stats) -> Timings {
        let prompt_ms = ms(stats.prompt_time());
        let predicted_ms = ms(stats.decode_time());
        let (pn, on) = (f64::from(prompt_tokens), f64::from(stats.output_tokens));
        Timings {
            cache_n: 0,
            prompt_n: prompt_tokens,
            prompt_ms,
            prompt_per_token_ms: finite(prompt_ms / pn),
            prompt_per_second: finite(1e3 / prompt_ms * pn),
            predicted_n: stats.output_tokens,
            predicted_ms,
            predicted_per_token_ms: finite(predicted_ms / on),
            predicted_per_second: finite(1e3 / predicted_ms * on),
        }
    }
}

/// One `/completion` event or body.
#[derive(Serialize)]
struct Event<'a> {
    index: u32,
    content: &'a str,
    tokens: Vec<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id_slot: Option<i64>,
    stop: bool,
    #[serde(flatten)]
    end: Option<End<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tokens_predicted: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tokens_evaluated: Option<u32>,
}

/// What only the last event (or a whole body) carries.
#[derive(Serialize)]
struct End<'a> {
    model: &'a str,
    generation_settings: serde_json::Value,
    prompt: &'a str,
    has_new_line: bool,
    truncated: bool,
    stop_type: &'static str,
    stopping_word: &'static str,
    tokens_cached: u32,
    timings: Timings,
}

/// The writer of one `/completion` answer.
pub(crate) struct Writer {
    meta: Meta,
    predicted: u32,
    stream: bool,
}

impl Writer {
    pub(crate) fn new(meta: Meta) -> Writer {
        Writer {
            meta,
            predicted: 0,
            stream: true,
        }
    }

    fn last_event<'a>(&'a self, content: &'a str, stats: &Stats) -> Event<'a> {
        let budget = self.meta.max_tokens.map_or(-1, i64::from);
        let stop_type = match stats.finish {
            Finish::Length => "limit",
            Finish::Stop => "eos",
        };
        Event {
            index: 0,
            content,
            tokens: Vec::new(),
            id_slot: Some(i64::try_from(stats.slot).unwrap_or(-1)),
            stop: true,
            end: Some(End {
                model: &self.meta.model,
                generation_settings: json!({
                    "seed": 4_294_967_295_u32,
                    "temperature": 0.8,
                    "max_tokens": budget,
                    "n_predict": budget,
                    "stream": self.stream,
                }),
                prompt: &self.meta.prompt,
                has_new_line: false,
                truncated: false,
                stop_type,
                stopping_word: "",
                tokens_cached: self.meta.prompt_tokens.saturating_add(stats.output_tokens),
                timings: Timings::new(self.meta.prompt_tokens, stats),
            }),
            tokens_predicted: Some(stats.output_tokens),
            tokens_evaluated: Some(self.meta.prompt_tokens),
        }
    }
}

impl Wire for Writer {
    fn token(&mut self, word: &str, _last: bool) -> Bytes {
        self.predicted = self.predicted.saturating_add(1);
        sse(&Event {
            index: 0,
            content: word,
            tokens: vec![token_id(word)],
            id_slot: Some(-1),
            stop: false,
            end: None,
            tokens_predicted: Some(self.predicted),
            tokens_evaluated: Some(self.meta.prompt_tokens),
        })
    }

    fn closing(&mut self, stats: &Stats) -> Vec<Bytes> {
        vec![sse(&self.last_event("", stats))]
    }

    fn whole(&mut self, text: &str, stats: &Stats) -> Reply {
        self.stream = false;
        Reply::new(200, JSON_UTF8, to_json(&self.last_event(text, stats)))
    }

    fn error_event(&self) -> Bytes {
        sse_raw(&error_body(500, FAILURE))
    }

    fn failure(&self) -> Reply {
        Reply::new(500, JSON_UTF8, error_body(500, FAILURE))
    }
}

/// The body of `GET /props`.
pub(crate) fn props_body(model: &str, total_slots: usize) -> Vec<u8> {
    to_json(&json!({
        "default_generation_settings": {
            "params": {"seed": 4_294_967_295_u32, "temperature": 0.8, "n_predict": -1, "max_tokens": -1},
            "n_ctx": N_CTX,
        },
        "total_slots": total_slots,
        "model_alias": model,
        "model_path": model,
        "modalities": {"vision": false, "audio": false},
        "chat_template": "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{% endfor %}<|assistant|>",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "build_info": BUILD,
        "is_sleeping": false,
    }))
}

/// One slot as `GET /slots` shows it.
pub(crate) struct SlotView {
    pub(crate) id: usize,
    pub(crate) busy: bool,
    /// The request it serves or served last (-1: none yet).
    pub(crate) task: i64,
    pub(crate) prompt_tokens: u32,
}

/// The body of `GET /slots`.
pub(crate) fn slots_body(slots: &[SlotView]) -> Vec<u8> {
    let list: Vec<serde_json::Value> = slots
        .iter()
        .map(|s| {
            json!({
                "id": s.id,
                "n_ctx": N_CTX,
                "speculative": false,
                "is_processing": s.busy,
                "id_task": s.task,
                "n_prompt_tokens": s.prompt_tokens,
            })
        })
        .collect();
    to_json(&list)
}

/// The answer to `POST /tokenize {"content","with_pieces"}` by the
/// simulator's tokenizer; its ids are made up, stable per token text.
pub(crate) fn tokenize_reply(body: &[u8]) -> Reply {
    let request: serde_json::Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return Reply::new(
                400,
                JSON_UTF8,
                error_body(400, &format!("request body is not valid JSON: {e}")),
            )
        }
    };
    let content = request
        .get("content")
        .and_then(serde_json::Value::as_str)
        .unwrap_or("");
    let pieces = tokenize(content);
    let with_pieces = request
        .get("with_pieces")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    let tokens: serde_json::Value = if with_pieces {
        pieces
            .iter()
            .map(|p| json!({"id": token_id(p), "piece": p}))
            .collect()
    } else {
        pieces.iter().map(|p| json!(token_id(p))).collect()
    };
    Reply::new(200, JSON_UTF8, to_json(&json!({ "tokens": tokens })))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{json_of, meta, stats};
    use super::*;
    use crate::sim::request::Endpoint;
    use crate::sim::Protocol;

    fn writer() -> Writer {
        Writer::new(meta(
            Protocol::LlamaCpp,
            Endpoint::LlamaCompletion,
            "/completion",
        ))
    }

    #[test]
    fn stream_events_count_tokens_and_end_with_timings() {
        let mut w = writer();
        assert!(w.opening().is_none());
        let first = json_of(&w.token(" Paris", false));
        assert_eq!(
            first,
            json!({"index": 0, "content": " Paris", "tokens": [token_id("Paris")], "id_slot": -1,
                   "stop": false, "tokens_predicted": 1, "tokens_evaluated": 5})
        );
        assert_eq!(json_of(&w.token(".", true))["tokens_predicted"], 2);
        let closing = w.closing(&stats());
        assert_eq!(closing.len(), 1, "no [DONE]");
        let last = json_of(&closing[0]);
        assert_eq!(last["stop"], true);
        assert_eq!(last["content"], "");
        assert_eq!(last["id_slot"], 2);
        assert_eq!(last["stop_type"], "limit");
        assert_eq!(last["tokens_predicted"], 3);
        assert_eq!(last["tokens_evaluated"], 5);
        assert_eq!(last["prompt"], "The capital of France is");
        assert_eq!(last["generation_settings"]["n_predict"], 3);
        assert_eq!(
            last["timings"],
            json!({"cache_n": 0, "prompt_n": 5, "prompt_ms": 40.0, "prompt_per_token_ms": 8.0,
                   "prompt_per_second": 125.0, "predicted_n": 3, "predicted_ms": 20.0,
                   "predicted_per_token_ms": 20.0 / 3.0, "predicted_per_second": 150.0})
        );
    }

    #[test]
    fn whole_body_and_zero_rates() {
        let mut w = writer();
        let mut s = stats();
        s.last_token_at = s.first_token_at;
        let reply = w.whole(" Paris", &s);
        let body: serde_json::Value = serde_json::from_slice(&reply.body).expect("json");
        assert_eq!(body["content"], " Paris");
        assert_eq!(body["generation_settings"]["stream"], false);
        assert_eq!(body["timings"]["predicted_ms"], 0.0);
        assert_eq!(body["timings"]["predicted_per_second"], json!(null));
        assert_eq!(json_of(&w.error_event())["error"]["type"], "server_error");
    }

    #[test]
    fn tokenize_uses_the_sim_tokenizer() {
        let reply = tokenize_reply(br#"{"content":"Hello world! How are you?"}"#);
        let body: serde_json::Value = serde_json::from_slice(&reply.body).expect("json");
        assert_eq!(body["tokens"].as_array().map(Vec::len), Some(7));
        assert_eq!(body["tokens"][0], token_id("Hello"));
        let reply = tokenize_reply(br#"{"content":"a b","with_pieces":true}"#);
        let body: serde_json::Value = serde_json::from_slice(&reply.body).expect("json");
        assert_eq!(
            body["tokens"][1],
            json!({"id": token_id("b"), "piece": "b"})
        );
        assert_eq!(tokenize_reply(b"{").status, 400);
    }
}
