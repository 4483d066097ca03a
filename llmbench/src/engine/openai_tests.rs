//! Unit tests of the OpenAI-compatible adapter.
// Compiled only under #[cfg(test)], from the module that includes this file.

use super::*;

fn replay(sse: &str) -> Exchange {
    let t0 = Instant::now();
    let mut ex = Exchange::started(t0);
    let mut dec = SseDecoder::new();
    let mut items = Vec::new();
    dec.feed(sse.as_bytes(), &mut items);
    for item in items {
        if let SseItem::Event { data, .. } = item {
            if data != "[DONE]" {
                apply_event(&data, t0, &mut ex).unwrap();
            }
        }
    }
    ex
}

#[test]
fn role_only_and_empty_chunks_are_not_content() {
    let ex = replay(concat!(
        "data: {\"id\":\"a\",\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":null}}]}\n\n",
        "data: {\"id\":\"a\",\"choices\":[{\"delta\":{\"content\":\"\"}}]}\n\n",
        "data: {\"id\":\"a\",\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n",
        "data: {\"id\":\"a\",\"choices\":[{\"delta\":{\"reasoning\":\"hm\"}}]}\n\n",
        "data: {\"id\":\"a\",\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
        "data: {\"id\":\"a\",\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":2}}\n\n",
    ));
    assert_eq!(ex.content_at.len(), 2);
    assert_eq!(ex.response_id.as_deref(), Some("a"));
    assert_eq!(ex.finish_reason.as_deref(), Some("stop"));
    assert_eq!((ex.prompt_tokens, ex.output_tokens), (Some(4), Some(2)));
}

#[test]
fn error_bodies_in_both_nestings() {
    assert_eq!(
        error_message(r#"{"error":{"message":"busy","code":503}}"#),
        "busy"
    );
    assert_eq!(
        error_message(r#"{"object":"error","message":"bad","code":400}"#),
        "bad"
    );
    assert_eq!(error_message(r#"{"error":"unhealthy"}"#), "unhealthy");
    assert_eq!(error_message("plain text"), "plain text");
}

#[test]
fn malformed_and_error_events_are_reported() {
    let mut ex = Exchange::started(Instant::now());
    let (kind, msg) = apply_event("{not json", Instant::now(), &mut ex).unwrap_err();
    assert_eq!(kind, RequestErrorKind::MalformedStream);
    assert!(msg.contains("{not json"), "{msg}");
    let (kind, msg) = apply_event(
        r#"{"error":{"message":"out of memory"}}"#,
        Instant::now(),
        &mut ex,
    )
    .unwrap_err();
    assert_eq!(kind, RequestErrorKind::EngineError);
    assert!(msg.contains("out of memory"), "{msg}");
}
