//! The OpenAI-compatible wire format (`/v1/chat/completions`,
//! `/v1/completions`, `/v1/models`), as vLLM writes it, and in llama-server's
//! flavor: role chunk with `content:null` arriving with the first token,
//! `system_fingerprint`, `timings` on the last chunk, `usage` with
//! `prompt_tokens_details`, always on the last `/v1/completions` chunk.

use bytes::Bytes;
use serde::Serialize;
use serde_json::json;

use super::llamacpp::Timings;
use super::{sse, sse_raw, to_json, Meta, Reply, Stats, Wire, FAILURE, JSON, JSON_UTF8};
use crate::sim::request::Endpoint;

/// Whose OpenAI-compatible server it imitates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flavor {
    /// vLLM (and TGI's `/v1` routes).
    OpenAi,
    /// llama-server.
    LlamaCpp,
}

/// What llama-server reports as its `system_fingerprint`.
const FINGERPRINT: &str = "b0-llmbench-sim";

/// Token counts as the `usage` object reports them.
#[derive(Clone, Copy, Serialize)]
struct Usage {
    prompt_tokens: u32,
    completion_tokens: u32,
    total_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt_tokens_details: Option<Cached>,
}

#[derive(Clone, Copy, Serialize)]
struct Cached {
    cached_tokens: u32,
}

#[derive(Serialize)]
struct Chunk<'a, C> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_fingerprint: Option<&'static str>,
    choices: C,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timings: Option<Timings>,
}

#[derive(Serialize)]
struct ChatChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    finish_reason: Option<&'static str>,
}

#[derive(Serialize)]
struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    /// `Some(None)` writes `"content":null`.
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<Option<&'a str>>,
}

#[derive(Serialize)]
struct TextChoice<'a> {
    index: u32,
    text: &'a str,
    logprobs: Option<()>,
    finish_reason: Option<&'static str>,
}

#[derive(Serialize)]
struct ChatMessage<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Serialize)]
struct ChatBodyChoice<'a> {
    index: u32,
    message: ChatMessage<'a>,
    finish_reason: &'static str,
}

/// The writer of one `/v1/*` answer.
pub(crate) struct Writer {
    meta: Meta,
    flavor: Flavor,
    /// llama.cpp sends its role chunk with the first token.
    role_pending: bool,
}

impl Writer {
    pub(crate) fn new(meta: Meta, flavor: Flavor) -> Writer {
        let role_pending = flavor == Flavor::LlamaCpp && meta.route.endpoint == Endpoint::V1Chat;
        Writer {
            meta,
            flavor,
            role_pending,
        }
    }

    fn chat(&self) -> bool {
        self.meta.route.endpoint == Endpoint::V1Chat
    }

    fn llama(&self) -> bool {
        self.flavor == Flavor::LlamaCpp
    }

    fn chunk<C: Serialize>(&self, choices: C) -> Chunk<'_, C> {
        let object = if self.chat() {
            "chat.completion.chunk"
        } else {
            "text_completion"
        };
        Chunk {
            id: &self.meta.id,
            object,
            created: self.meta.created,
            model: &self.meta.model,
            system_fingerprint: self.llama().then_some(FINGERPRINT),
            choices,
            usage: None,
            timings: None,
        }
    }

    fn chat_event<'a>(
        &'a self,
        delta: Delta<'a>,
        finish: Option<&'static str>,
    ) -> Chunk<'a, [ChatChoice<'a>; 1]> {
        self.chunk([ChatChoice {
            index: 0,
            delta,
            finish_reason: finish,
        }])
    }

    fn text_event<'a>(
        &'a self,
        text: &'a str,
        finish: Option<&'static str>,
    ) -> Chunk<'a, [TextChoice<'a>; 1]> {
        self.chunk([TextChoice {
            index: 0,
            text,
            logprobs: None,
            finish_reason: finish,
        }])
    }

    fn usage(&self, completion_tokens: u32) -> Usage {
        Usage {
            prompt_tokens: self.meta.prompt_tokens,
            completion_tokens,
            total_tokens: self.meta.prompt_tokens.saturating_add(completion_tokens),
            prompt_tokens_details: self.llama().then_some(Cached { cached_tokens: 0 }),
        }
    }

    fn timings(&self, stats: &Stats) -> Option<Timings> {
        self.llama()
            .then(|| Timings::new(self.meta.prompt_tokens, stats))
    }

    /// The role-only first chunk of a chat stream.
    fn role_event(&self) -> Bytes {
        let content = match self.flavor {
            Flavor::OpenAi => Some(Some("")),
            Flavor::LlamaCpp => Some(None),
        };
        sse(&self.chat_event(
            Delta {
                role: Some("assistant"),
                content,
            },
            None,
        ))
    }
}

impl Wire for Writer {
    fn opening(&mut self) -> Option<Bytes> {
        // vLLM sends its role chunk before prefill.
        (self.chat() && !self.llama()).then(|| self.role_event())
    }

    fn token(&mut self, word: &str, _last: bool) -> Bytes {
        let event = if self.chat() {
            sse(&self.chat_event(
                Delta {
                    role: None,
                    content: Some(Some(word)),
                },
                None,
            ))
        } else {
            sse(&self.text_event(word, None))
        };
        if !self.role_pending {
            return event;
        }
        self.role_pending = false;
        let mut both = self.role_event().to_vec();
        both.extend_from_slice(&event);
        Bytes::from(both)
    }

    fn closing(&mut self, stats: &Stats) -> Vec<Bytes> {
        let finish = stats.finish.as_str();
        let usage = self.usage(stats.output_tokens);
        let mut events = Vec::with_capacity(3);
        if self.chat() {
            let mut chunk = self.chat_event(
                Delta {
                    role: None,
                    content: None,
                },
                Some(finish),
            );
            if !self.meta.include_usage {
                chunk.timings = self.timings(stats);
            }
            events.push(sse(&chunk));
        } else {
            let mut chunk = self.text_event("", Some(finish));
            // llama-server puts usage on this chunk, asked or not.
            if self.llama() {
                chunk.usage = Some(usage);
                chunk.timings = self.timings(stats);
            }
            events.push(sse(&chunk));
        }
        if self.meta.include_usage && (self.chat() || !self.llama()) {
            let mut chunk = self.chunk([(); 0]);
            chunk.usage = Some(usage);
            chunk.timings = self.timings(stats);
            events.push(sse(&chunk));
        }
        events.push(Bytes::from_static(b"data: [DONE]\n\n"));
        events
    }

    fn whole(&mut self, text: &str, stats: &Stats) -> Reply {
        let finish = stats.finish.as_str();
        let body = if self.chat() {
            let mut chunk = self.chunk([ChatBodyChoice {
                index: 0,
                message: ChatMessage {
                    role: "assistant",
                    content: text,
                },
                finish_reason: finish,
            }]);
            chunk.object = "chat.completion";
            chunk.usage = Some(self.usage(stats.output_tokens));
            chunk.timings = self.timings(stats);
            to_json(&chunk)
        } else {
            let mut chunk = self.text_event(text, Some(finish));
            chunk.usage = Some(self.usage(stats.output_tokens));
            chunk.timings = self.timings(stats);
            to_json(&chunk)
        };
        let content_type = if self.llama() { JSON_UTF8 } else { JSON };
        Reply::new(200, content_type, body)
    }

    fn error_event(&self) -> Bytes {
        sse_raw(&error_body(500, FAILURE))
    }

    fn failure(&self) -> Reply {
        Reply::json(500, error_body(500, FAILURE))
    }
}

/// The OpenAI error `type` that goes with an HTTP status.
pub(crate) fn error_type(status: u16) -> &'static str {
    match status {
        400 | 413 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        408 => "timeout_error",
        429 => "rate_limit_error",
        503 => "unavailable_error",
        500..=599 => "server_error",
        _ => "invalid_request_error",
    }
}

/// An OpenAI-style error body `{"error":{"message","type","code"}}`.
pub(crate) fn error_body(status: u16, message: &str) -> Vec<u8> {
    to_json(&json!({
        "error": {
            "message": message,
            "type": error_type(status),
            "code": status,
        }
    }))
}

/// The body of `GET /health`.
pub(crate) fn health_body() -> Bytes {
    Bytes::from_static(br#"{"status":"ok"}"#)
}

/// The body of `GET /v1/models`; llama-server adds its `meta`.
pub(crate) fn models_body(model: &str, created: u64, flavor: Flavor, n_ctx: u32) -> Vec<u8> {
    let mut entry = json!({
        "id": model,
        "object": "model",
        "created": created,
        "owned_by": "llmbench",
    });
    if flavor == Flavor::LlamaCpp {
        entry["meta"] = json!({"n_ctx": n_ctx, "n_ctx_train": n_ctx, "n_params": 0});
    }
    to_json(&json!({"object": "list", "data": [entry]}))
}

#[cfg(test)]
mod tests {
    use super::super::testing::{json_of, meta, stats};
    use super::*;
    use crate::sim::Protocol;

    fn writer(endpoint: Endpoint, flavor: Flavor, include_usage: bool) -> Writer {
        let protocol = match flavor {
            Flavor::OpenAi => Protocol::OpenAi,
            Flavor::LlamaCpp => Protocol::LlamaCpp,
        };
        let mut m = meta(protocol, endpoint, "/v1/x");
        m.include_usage = include_usage;
        Writer::new(m, flavor)
    }

    #[test]
    fn chat_chunks_have_the_openai_shape() {
        let mut w = writer(Endpoint::V1Chat, Flavor::OpenAi, true);
        assert_eq!(
            &w.opening().expect("role chunk")[..],
            br#"data: {"id":"chatcmpl-sim-1","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}

"#
        );
        let token = json_of(&w.token(" hi \"x\"", false));
        assert_eq!(
            token["choices"][0]["delta"],
            json!({"content": " hi \"x\""})
        );
        let closing = w.closing(&stats());
        assert_eq!(closing.len(), 3);
        let finish = json_of(&closing[0]);
        assert_eq!(finish["choices"][0]["delta"], json!({}));
        assert_eq!(finish["choices"][0]["finish_reason"], "length");
        let usage = json_of(&closing[1]);
        assert_eq!(usage["choices"], json!([]));
        assert_eq!(
            usage["usage"],
            json!({"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8})
        );
        assert_eq!(&closing[2][..], b"data: [DONE]\n\n");
    }

    #[test]
    fn completion_chunks_carry_text() {
        let mut w = writer(Endpoint::V1Completions, Flavor::OpenAi, false);
        assert!(w.opening().is_none());
        let token = json_of(&w.token(" a", false));
        assert_eq!(token["object"], "text_completion");
        assert_eq!(token["choices"][0]["text"], " a");
        assert_eq!(token["choices"][0]["finish_reason"], json!(null));
        let closing = w.closing(&stats());
        assert_eq!(closing.len(), 2);
        let finish = json_of(&closing[0]);
        assert_eq!(finish["choices"][0]["text"], "");
        assert_eq!(finish["choices"][0]["finish_reason"], "length");
        assert!(finish.get("usage").is_none());
    }

    #[test]
    fn llamacpp_flavor_adds_timings_and_sends_its_role_with_the_first_token() {
        let mut w = writer(Endpoint::V1Chat, Flavor::LlamaCpp, false);
        assert!(w.opening().is_none());
        let first = w.token(" a", false);
        let text = std::str::from_utf8(&first).expect("utf-8");
        assert_eq!(text.matches("data: ").count(), 2, "{text}");
        assert!(text.contains(r#""delta":{"role":"assistant","content":null}"#));
        assert_eq!(
            w.token(" b", false).iter().filter(|&&b| b == b'\n').count(),
            2
        );
        let closing = w.closing(&stats());
        assert_eq!(closing.len(), 2);
        let finish = json_of(&closing[0]);
        assert_eq!(finish["system_fingerprint"], FINGERPRINT);
        assert_eq!(finish["timings"]["predicted_n"], 3);
        assert_eq!(finish["timings"]["prompt_ms"], 40.0);

        let mut w = writer(Endpoint::V1Completions, Flavor::LlamaCpp, true);
        let closing = w.closing(&stats());
        assert_eq!(closing.len(), 2, "usage rides on the finish chunk");
        let finish = json_of(&closing[0]);
        assert_eq!(finish["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
        assert_eq!(finish["timings"]["predicted_ms"], 20.0);
    }

    #[test]
    fn bodies_and_errors() {
        let mut w = writer(Endpoint::V1Chat, Flavor::OpenAi, false);
        let reply = w.whole(" a b", &stats());
        let body: serde_json::Value = serde_json::from_slice(&reply.body).expect("json");
        assert_eq!(body["object"], "chat.completion");
        assert_eq!(body["choices"][0]["message"]["content"], " a b");
        assert_eq!(body["usage"]["total_tokens"], 8);
        assert!(body.get("timings").is_none());
        let err: serde_json::Value =
            serde_json::from_slice(&error_body(429, "slow down")).expect("json");
        assert_eq!(
            err,
            json!({"error": {"message": "slow down", "type": "rate_limit_error", "code": 429}})
        );
        assert_eq!(json_of(&w.error_event())["error"]["code"], 500);
    }
}
