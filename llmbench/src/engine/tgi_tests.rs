//! Unit tests of the tgi adapter.
// Compiled only under #[cfg(test)], from the module that includes this file.

use super::*;
use std::time::Duration;

/// Drive the fold without a socket: one event per millisecond.
fn fold(route: Route, events: &[&str]) -> (Fold, Exchange) {
    let t0 = Instant::now();
    let (mut fold, mut ex) = (Fold::new(route), Exchange::started(t0));
    for (i, data) in events.iter().enumerate() {
        let at = t0 + Duration::from_millis(i as u64);
        fold.event(data, at, &mut ex).unwrap();
    }
    (fold, ex)
}

#[test]
fn special_and_empty_tokens_are_output_but_not_content() {
    let tok = |text: &str, special: bool, end: &str| {
        format!(r#"{{"token":{{"text":"{text}","special":{special}}},"generated_text":{end}}}"#)
    };
    let events = [
        tok("Hi", false, "null"),
        tok("", false, "null"),
        tok("</s>", true, "\"Hi\""),
    ];
    let (f, ex) = fold(Route::Generate, &events.each_ref().map(String::as_str));
    assert_eq!(f.end(false, 1), None);
    assert_eq!((ex.content_at.len(), ex.text.as_str()), (1, "Hi"));
    assert_eq!(
        ex.output_tokens,
        Some(3),
        "one event per token, EOS included"
    );
    let (f, _) = fold(Route::Generate, &[&events[0]]);
    assert!(f
        .end(false, 1)
        .is_some_and(|why| why.contains("generated_text")));
}

#[test]
fn chat_ends_at_done_or_cleanly_after_a_finish_reason() {
    let a = r#"{"id":"","choices":[{"delta":{"content":"a"},"finish_reason":null}]}"#;
    let stop = r#"{"id":"","choices":[{"delta":{"content":""},"finish_reason":"stop"}]}"#;
    let (f, ex) = fold(Route::Chat, &[a]);
    assert!(f.end(false, 1).is_some());
    assert_eq!(ex.response_id, None, "TGI's empty id is no id");
    let (f, ex) = fold(Route::Chat, &[a, stop]);
    assert_eq!(f.end(false, 1), None);
    assert!(f.end(true, 1).is_some_and(|why| why.contains("cut inside")));
    assert_eq!((ex.content_at.len(), ex.text.as_str()), (1, "a"));
    assert_eq!(fold(Route::Chat, &[a, "[DONE]"]).0.end(true, 1), None);
}
