//! Decoding a recorded response body without a socket: the same per-event
//! folds the adapters run on live streams, fed from bytes in memory. For
//! parsing captured transcripts, and for measuring decoding cost
//! (`benches/decoders.rs`).

use std::time::Instant;

use super::wire::{NdjsonDecoder, SseDecoder, SseItem};
use super::{llamacpp, ollama, openai, tgi, EngineKind};
use crate::measure::{Exchange, RequestError, RequestErrorKind};
use crate::workload::Mode;

type Failure = (RequestErrorKind, String);

/// Decode `body`, a complete response of an engine of `kind` on `route`
/// (chat, or completion/generate), as if it had arrived in one read. The
/// exchange holds the text, token counts, finish reason, server timings and,
/// for a body that is cut, malformed or carries an error, the error.
///
/// ```
/// use llmbench::engine::{decode::decode, EngineKind};
/// use llmbench::Mode;
/// let body = b"data: {\"choices\":[{\"text\":\"Hi\",\"finish_reason\":\"length\"}]}\n\ndata: [DONE]\n\n";
/// let ex = decode(EngineKind::OpenAi, Mode::Completion, body);
/// assert_eq!(ex.text, "Hi");
/// assert!(ex.error.is_none());
/// ```
pub fn decode(kind: EngineKind, route: Mode, body: &[u8]) -> Exchange {
    let now = Instant::now();
    let mut ex = Exchange::started(now);
    ex.first_byte_at = Some(now);
    let whole = matches!(
        body.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{' | b'[')
    );
    let result = match (kind, route) {
        (EngineKind::Ollama, _) => ndjson(body, now, &mut ex),
        (EngineKind::Tgi, route) => {
            let route = if route == Mode::Chat {
                tgi::Route::Chat
            } else {
                tgi::Route::Generate
            };
            tgi_body(body, whole, route, now, &mut ex)
        }
        (EngineKind::LlamaCpp, Mode::Completion) => llamacpp_native(body, whole, now, &mut ex),
        (EngineKind::OpenAi | EngineKind::LlamaCpp, _) => openai_body(body, whole, now, &mut ex),
    };
    if let Err((kind, message)) = result {
        ex.error = Some(RequestError {
            kind,
            status: None,
            message,
        });
    }
    ex
}

/// Every `data:` payload of an SSE body, and whether it ended mid-event.
fn sse_events(body: &[u8]) -> (Vec<String>, bool) {
    let mut decoder = SseDecoder::new();
    let mut items = Vec::new();
    decoder.feed(body, &mut items);
    let events = items
        .into_iter()
        .filter_map(|item| match item {
            SseItem::Event { data, .. } => Some(data),
            SseItem::Comment => None,
        })
        .collect();
    (events, decoder.has_partial())
}

fn openai_body(body: &[u8], whole: bool, now: Instant, ex: &mut Exchange) -> Result<(), Failure> {
    if whole {
        return openai::apply_event(&String::from_utf8_lossy(body), now, ex);
    }
    let (events, _) = sse_events(body);
    for (i, data) in events.iter().enumerate() {
        if data.trim() == "[DONE]" {
            return Ok(());
        }
        openai::apply_event(data, now, ex)
            .map_err(|(k, m)| (k, format!("stream event #{}: {m}", i + 1)))?;
    }
    Err((
        RequestErrorKind::Truncated,
        "stream ended before `data: [DONE]`".into(),
    ))
}

fn llamacpp_native(
    body: &[u8],
    whole: bool,
    now: Instant,
    ex: &mut Exchange,
) -> Result<(), Failure> {
    let mut state = llamacpp::NativeStream::default();
    if whole {
        return llamacpp::apply_event(&mut state, &String::from_utf8_lossy(body), now, ex);
    }
    let (events, _) = sse_events(body);
    for data in &events {
        llamacpp::apply_event(&mut state, data, now, ex)
            .map_err(|(k, m)| (k, format!("stream event #{}: {m}", state.events)))?;
    }
    if state.stopped {
        Ok(())
    } else {
        Err((
            RequestErrorKind::Truncated,
            "stream ended before its `stop:true` event".into(),
        ))
    }
}

fn tgi_body(
    body: &[u8],
    whole: bool,
    route: tgi::Route,
    now: Instant,
    ex: &mut Exchange,
) -> Result<(), Failure> {
    let mut fold = tgi::Fold::new(route);
    if whole {
        return fold.body(&String::from_utf8_lossy(body), now, ex);
    }
    let (events, partial) = sse_events(body);
    for data in &events {
        fold.event(data, now, ex)
            .map_err(|(k, m)| (k, format!("stream event #{}: {m}", fold.events())))?;
    }
    match fold.end(partial, ex.content_at.len()) {
        None => Ok(()),
        Some(why) => Err((RequestErrorKind::Truncated, why)),
    }
}

fn ndjson(body: &[u8], now: Instant, ex: &mut Exchange) -> Result<(), Failure> {
    let mut decoder = NdjsonDecoder::new();
    let mut lines = Vec::new();
    decoder.feed(body, &mut lines);
    let mut state = ollama::LineState::default();
    for line in &lines {
        ollama::apply_line(&mut state, line, now, ex)
            .map_err(|(k, m)| (k, format!("stream line #{}: {m}", state.lines)))?;
    }
    ollama::end_of_stream(&mut state, decoder.finish(), now, ex)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(path: &str) -> Vec<u8> {
        let full = format!(
            "{}/../../shared/fixtures/{path}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
    }

    #[test]
    fn each_protocol_decodes_its_transcripts() {
        let cases = [
            (
                EngineKind::OpenAi,
                Mode::Chat,
                "vllm/chat_stream.sse",
                "Okay. Sure.",
                None,
            ),
            (
                EngineKind::OpenAi,
                Mode::Chat,
                "llamacpp/v1_chat.json",
                "The answer is \"2 + 2 = 4.\"",
                Some(13),
            ),
            (
                EngineKind::LlamaCpp,
                Mode::Completion,
                "llamacpp/completion_stream_sse_ping.sse",
                "",
                Some(120),
            ),
            (
                EngineKind::Ollama,
                Mode::Chat,
                "ollama/chat_stream.ndjson",
                "",
                Some(24),
            ),
            (
                EngineKind::Ollama,
                Mode::Chat,
                "ollama/chat.json",
                "",
                Some(20),
            ),
            (
                EngineKind::Tgi,
                Mode::Completion,
                "tgi/generate_stream_details.sse",
                "",
                Some(20),
            ),
            (
                EngineKind::Tgi,
                Mode::Completion,
                "tgi/generate_details.json",
                " for /api/v1/projects/1",
                Some(10),
            ),
        ];
        for (kind, route, path, text, output) in cases {
            let ex = decode(kind, route, &fixture(path));
            assert!(ex.error.is_none(), "{path}: {:?}", ex.error);
            assert!(!ex.content_at.is_empty(), "{path}");
            if !text.is_empty() {
                assert_eq!(ex.text, text, "{path}");
            }
            assert_eq!(ex.output_tokens, output, "{path}");
        }
    }

    #[test]
    fn cut_and_failed_bodies_say_so() {
        let body = fixture("llamacpp/completion_stream.sse");
        let ex = decode(
            EngineKind::LlamaCpp,
            Mode::Completion,
            &body[..body.len() / 2],
        );
        assert_eq!(ex.error.map(|e| e.kind), Some(RequestErrorKind::Truncated));
        let ex = decode(
            EngineKind::Ollama,
            Mode::Completion,
            &fixture("ollama/generate_stream_midstream_error.ndjson"),
        );
        assert_eq!(
            ex.error.map(|e| e.kind),
            Some(RequestErrorKind::EngineError)
        );
        assert_eq!(ex.content_at.len(), 4, "tokens before the error are kept");
    }
}
