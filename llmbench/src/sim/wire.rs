//! The simulator's own writer of the OpenAI-compatible wire format: JSON
//! bodies and server-sent events, built from its own small structs so that no
//! bug can be shared with the client's decoders.

use bytes::Bytes;
use serde::Serialize;
use serde_json::json;

/// Which OpenAI-compatible route a request came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Api {
    /// `/v1/chat/completions`
    Chat,
    /// `/v1/completions`
    Completions,
}

impl Api {
    /// The response id of the 1-based request `index`.
    pub(crate) fn id(self, index: u64) -> String {
        match self {
            Api::Chat => format!("chatcmpl-sim-{index}"),
            Api::Completions => format!("cmpl-sim-{index}"),
        }
    }
}

/// The fields every chunk and body of one response repeats.
pub(crate) struct Meta<'a> {
    pub(crate) api: Api,
    pub(crate) id: &'a str,
    pub(crate) created: u64,
    pub(crate) model: &'a str,
}

/// Token counts as the `usage` object reports them.
#[derive(Clone, Copy, Serialize)]
pub(crate) struct Usage {
    pub(crate) prompt_tokens: u32,
    pub(crate) completion_tokens: u32,
    pub(crate) total_tokens: u32,
}

impl Usage {
    pub(crate) fn new(prompt_tokens: u32, completion_tokens: u32) -> Usage {
        Usage {
            prompt_tokens,
            completion_tokens,
            total_tokens: prompt_tokens.saturating_add(completion_tokens),
        }
    }
}

#[derive(Serialize)]
struct Chunk<'a, C> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: C,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
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

#[derive(Serialize)]
struct TextBodyChoice<'a> {
    index: u32,
    text: &'a str,
    logprobs: Option<()>,
    finish_reason: &'static str,
}

/// The bytes of `value` as compact JSON. The sim's structs always serialize;
/// should one ever fail, the bytes say so instead of panicking.
fn to_json(value: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_else(|_| {
        br#"{"error":{"message":"simulator: cannot serialize","type":"server_error","code":500}}"#
            .to_vec()
    })
}

/// One server-sent event `data: <json>\n\n`.
fn event(value: &impl Serialize) -> Bytes {
    let mut out = Vec::with_capacity(320);
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(&to_json(value));
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

fn chat_chunk(meta: &Meta<'_>, delta: Delta<'_>, finish: Option<&'static str>) -> Bytes {
    event(&Chunk {
        id: meta.id,
        object: "chat.completion.chunk",
        created: meta.created,
        model: meta.model,
        choices: [ChatChoice {
            index: 0,
            delta,
            finish_reason: finish,
        }],
        usage: None,
    })
}

fn text_chunk(meta: &Meta<'_>, text: &str, finish: Option<&'static str>) -> Bytes {
    event(&Chunk {
        id: meta.id,
        object: "text_completion",
        created: meta.created,
        model: meta.model,
        choices: [TextChoice {
            index: 0,
            text,
            logprobs: None,
            finish_reason: finish,
        }],
        usage: None,
    })
}

/// The role-only first chunk of a chat stream (`delta` `{"role":"assistant","content":""}`).
pub(crate) fn role_event(meta: &Meta<'_>) -> Bytes {
    chat_chunk(
        meta,
        Delta {
            role: Some("assistant"),
            content: Some(""),
        },
        None,
    )
}

/// The chunk carrying one content token.
pub(crate) fn token_event(meta: &Meta<'_>, text: &str) -> Bytes {
    match meta.api {
        Api::Chat => chat_chunk(
            meta,
            Delta {
                role: None,
                content: Some(text),
            },
            None,
        ),
        Api::Completions => text_chunk(meta, text, None),
    }
}

/// The chunk with an empty delta (or text) and the finish reason.
pub(crate) fn finish_event(meta: &Meta<'_>, finish: &'static str) -> Bytes {
    match meta.api {
        Api::Chat => chat_chunk(
            meta,
            Delta {
                role: None,
                content: None,
            },
            Some(finish),
        ),
        Api::Completions => text_chunk(meta, "", Some(finish)),
    }
}

/// The `"choices":[]` chunk with `usage`, sent when `stream_options.include_usage` is true.
pub(crate) fn usage_event(meta: &Meta<'_>, usage: Usage) -> Bytes {
    let object = match meta.api {
        Api::Chat => "chat.completion.chunk",
        Api::Completions => "text_completion",
    };
    event(&Chunk {
        id: meta.id,
        object,
        created: meta.created,
        model: meta.model,
        choices: [(); 0],
        usage: Some(usage),
    })
}

/// The end of an OpenAI stream.
pub(crate) fn done_event() -> Bytes {
    Bytes::from_static(b"data: [DONE]\n\n")
}

/// What [`crate::sim::Fault::MalformedAfter`] writes into a stream.
pub(crate) fn malformed_event() -> Bytes {
    Bytes::from_static(b"data: {not json\n\n")
}

/// What [`crate::sim::Fault::MalformedAfter`] answers a non-streamed request with.
pub(crate) fn malformed_body() -> Bytes {
    Bytes::from_static(b"{not json")
}

/// The error object of [`crate::sim::Fault::ErrorEventAfter`].
pub(crate) fn engine_failure_body() -> Bytes {
    Bytes::from_static(
        br#"{"error":{"message":"simulated engine failure","type":"server_error","code":500}}"#,
    )
}

/// [`engine_failure_body`] as a stream event.
pub(crate) fn engine_failure_event() -> Bytes {
    let mut out = b"data: ".to_vec();
    out.extend_from_slice(&engine_failure_body());
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// The whole body of a non-streamed answer.
pub(crate) fn answer_body(
    meta: &Meta<'_>,
    text: &str,
    finish: &'static str,
    usage: Usage,
) -> Bytes {
    let bytes = match meta.api {
        Api::Chat => to_json(&Chunk {
            id: meta.id,
            object: "chat.completion",
            created: meta.created,
            model: meta.model,
            choices: [ChatBodyChoice {
                index: 0,
                message: ChatMessage {
                    role: "assistant",
                    content: text,
                },
                finish_reason: finish,
            }],
            usage: Some(usage),
        }),
        Api::Completions => to_json(&Chunk {
            id: meta.id,
            object: "text_completion",
            created: meta.created,
            model: meta.model,
            choices: [TextBodyChoice {
                index: 0,
                text,
                logprobs: None,
                finish_reason: finish,
            }],
            usage: Some(usage),
        }),
    };
    Bytes::from(bytes)
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
pub(crate) fn error_body(status: u16, message: &str) -> Bytes {
    Bytes::from(to_json(&json!({
        "error": {
            "message": message,
            "type": error_type(status),
            "code": status,
        }
    })))
}

/// The body of `GET /health`.
pub(crate) fn health_body() -> Bytes {
    Bytes::from_static(br#"{"status":"ok"}"#)
}

/// The body of `GET /v1/models`.
pub(crate) fn models_body(model: &str, created: u64) -> Bytes {
    Bytes::from(to_json(&json!({
        "object": "list",
        "data": [{
            "id": model,
            "object": "model",
            "created": created,
            "owned_by": "llmbench",
        }],
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(api: Api) -> Meta<'static> {
        Meta {
            api,
            id: "chatcmpl-sim-1",
            created: 1_700_000_000,
            model: "m",
        }
    }

    fn json_of(event: &Bytes) -> serde_json::Value {
        let text = std::str::from_utf8(event).expect("utf-8");
        let body = text
            .strip_prefix("data: ")
            .and_then(|t| t.strip_suffix("\n\n"))
            .expect("one SSE event");
        serde_json::from_str(body).expect("json")
    }

    #[test]
    fn chat_chunks_have_the_openai_shape() {
        let m = meta(Api::Chat);
        assert_eq!(
            &role_event(&m)[..],
            br#"data: {"id":"chatcmpl-sim-1","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}

"#
        );
        let token = json_of(&token_event(&m, " hi \"x\""));
        assert_eq!(
            token["choices"][0]["delta"],
            json!({"content": " hi \"x\""})
        );
        let finish = json_of(&finish_event(&m, "length"));
        assert_eq!(finish["choices"][0]["delta"], json!({}));
        assert_eq!(finish["choices"][0]["finish_reason"], "length");
        let usage = json_of(&usage_event(&m, Usage::new(3, 4)));
        assert_eq!(usage["choices"], json!([]));
        assert_eq!(
            usage["usage"],
            json!({"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7})
        );
    }

    #[test]
    fn completion_chunks_carry_text() {
        let m = meta(Api::Completions);
        let token = json_of(&token_event(&m, " a"));
        assert_eq!(token["object"], "text_completion");
        assert_eq!(token["choices"][0]["text"], " a");
        assert_eq!(token["choices"][0]["finish_reason"], json!(null));
        let finish = json_of(&finish_event(&m, "stop"));
        assert_eq!(finish["choices"][0]["text"], "");
        assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    }

    #[test]
    fn bodies_and_errors() {
        let body: serde_json::Value = serde_json::from_slice(&answer_body(
            &meta(Api::Chat),
            " a b",
            "stop",
            Usage::new(1, 2),
        ))
        .expect("json");
        assert_eq!(body["object"], "chat.completion");
        assert_eq!(body["choices"][0]["message"]["content"], " a b");
        assert_eq!(body["usage"]["total_tokens"], 3);
        let err: serde_json::Value =
            serde_json::from_slice(&error_body(429, "slow down")).expect("json");
        assert_eq!(
            err,
            json!({"error": {"message": "slow down", "type": "rate_limit_error", "code": 429}})
        );
        assert_eq!(json_of(&engine_failure_event())["error"]["code"], 500);
    }
}
