//! Incremental decoders for the streaming wire formats. Pure: bytes in, events
//! out, whatever the split of the bytes into reads; no I/O, no clocks.

/// One server-sent event, or a comment line (keep-alive).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SseItem {
    /// An event: its `event:` type if one was given, and its `data:` lines
    /// joined by `\n`.
    Event {
        /// The `event:` field, if present.
        event: Option<String>,
        /// The data lines joined with `\n` (no trailing newline).
        data: String,
    },
    /// A comment line (`:...`), which servers send as keep-alive.
    Comment,
}

/// An incremental decoder of `text/event-stream` bodies, per the WHATWG
/// server-sent events grammar: lines end in CR, LF or CRLF (also when the CR
/// and LF arrive in different reads); `data:` with or without a space; several
/// `data:` lines make one multi-line event; comments are reported, not dropped.
///
/// ```
/// use llmbench::engine::wire::{SseDecoder, SseItem};
/// let mut d = SseDecoder::new();
/// let mut out = Vec::new();
/// d.feed(b"data: {\"a\"", &mut out);
/// d.feed(b":1}\r\n\r\n: ping\n\n", &mut out);
/// assert_eq!(out[0], SseItem::Event { event: None, data: "{\"a\":1}".into() });
/// assert_eq!(out[1], SseItem::Comment);
/// ```
#[derive(Debug, Default)]
pub struct SseDecoder {
    line: Vec<u8>,
    after_cr: bool,
    data: String,
    has_data: bool,
    event: Option<String>,
}

impl SseDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decode `bytes`, appending every event they complete to `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<SseItem>) {
        if bytes.is_empty() {
            // An empty read must not forget a CR that may be half of a CRLF.
            return;
        }
        let mut rest = bytes;
        if std::mem::take(&mut self.after_cr) {
            // The CR that ended the last read's line may be half of a CRLF.
            rest = rest.strip_prefix(b"\n").unwrap_or(rest);
        }
        while let Some(i) = memchr::memchr2(b'\n', b'\r', rest) {
            if self.line.is_empty() {
                // The whole line is in this read: decoded where it lies.
                self.end_line(&rest[..i], out);
            } else {
                self.line.extend_from_slice(&rest[..i]);
                // Taken and put back, so its allocation serves every line.
                let mut line = std::mem::take(&mut self.line);
                self.end_line(&line, out);
                line.clear();
                self.line = line;
            }
            let cr = rest[i] == b'\r';
            rest = &rest[i + 1..];
            if cr {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
        }
        self.line.extend_from_slice(rest);
    }

    /// Whether bytes of an unfinished event are waiting for more input. At the
    /// end of a stream this means the stream was cut mid-event.
    pub fn has_partial(&self) -> bool {
        !self.line.is_empty() || self.has_data || self.event.is_some()
    }

    fn end_line(&mut self, line: &[u8], out: &mut Vec<SseItem>) {
        if line.is_empty() {
            if self.has_data {
                out.push(SseItem::Event {
                    event: self.event.take(),
                    data: std::mem::take(&mut self.data),
                });
            }
            self.has_data = false;
            self.event = None;
            self.data.clear();
            return;
        }
        if line[0] == b':' {
            out.push(SseItem::Comment);
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                match std::str::from_utf8(value) {
                    Ok(text) => self.data.push_str(text),
                    Err(_) => self.data.push_str(&String::from_utf8_lossy(value)),
                }
                self.has_data = true;
            }
            b"event" => self.event = Some(String::from_utf8_lossy(value).into_owned()),
            // `id` and `retry` only matter to reconnecting browsers.
            _ => {}
        }
    }
}

/// An incremental decoder of newline-delimited JSON (`application/x-ndjson`,
/// Ollama's stream format): one complete line per item, without its `\n` (and
/// without a `\r` before it), whatever the split of the bytes into reads.
/// Blank lines are skipped. Bytes are kept until their line ends, so a
/// multi-byte character cut between reads is decoded whole; invalid UTF-8 is
/// replaced (U+FFFD), as [`SseDecoder`] does.
///
/// A body whose last line has no `\n` (a non-streamed answer is one object
/// with no trailing newline) leaves that line pending: [`has_partial`]
/// says so and [`finish`] hands it over.
///
/// [`has_partial`]: NdjsonDecoder::has_partial
/// [`finish`]: NdjsonDecoder::finish
///
/// ```
/// use llmbench::engine::wire::NdjsonDecoder;
/// let mut d = NdjsonDecoder::new();
/// let mut out = Vec::new();
/// d.feed(b"{\"a\":1}\r\n\n{\"b\"", &mut out);
/// d.feed(b":2}\n{\"c\":3}", &mut out);
/// assert_eq!(out, ["{\"a\":1}", "{\"b\":2}"]);
/// assert!(d.has_partial());
/// assert_eq!(d.finish().as_deref(), Some("{\"c\":3}"));
/// ```
#[derive(Debug, Default)]
pub struct NdjsonDecoder {
    line: Vec<u8>,
}

impl NdjsonDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decode `bytes`, appending every line they complete to `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<String>) {
        let mut rest = bytes;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            if self.line.is_empty() {
                // The whole line is in this read: no copy into the buffer.
                push_line(&rest[..i], out);
            } else {
                self.line.extend_from_slice(&rest[..i]);
                push_line(&self.line, out);
                self.line.clear();
            }
            rest = &rest[i + 1..];
        }
        self.line.extend_from_slice(rest);
    }

    /// Whether a line without its `\n` is waiting for more input. At the end
    /// of a stream this means the body was cut mid-line, or its last line has
    /// no newline (see [`NdjsonDecoder::finish`]).
    pub fn has_partial(&self) -> bool {
        !self.line.trim_ascii().is_empty()
    }

    /// At the end of the body: the unterminated last line, if it holds more
    /// than whitespace. The decoder is then back at the start of a stream.
    pub fn finish(&mut self) -> Option<String> {
        let mut out = Vec::new();
        push_line(&self.line, &mut out);
        self.line.clear();
        out.pop()
    }
}

/// `line` (without its `\n`) as an item, unless it is blank.
fn push_line(line: &[u8], out: &mut Vec<String>) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if !line.trim_ascii().is_empty() {
        out.push(String::from_utf8_lossy(line).into_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(input: &[u8], cuts: &[usize]) -> Vec<SseItem> {
        let mut d = SseDecoder::new();
        let mut out = Vec::new();
        let mut start = 0;
        for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
            let cut = cut.clamp(start, input.len());
            d.feed(&input[start..cut], &mut out);
            start = cut;
        }
        out
    }

    fn data(s: &str) -> SseItem {
        SseItem::Event {
            event: None,
            data: s.into(),
        }
    }

    /// A CRLF split by an empty read is still one line end (found by the
    /// property test in `tests/properties.rs`): the LF after the empty read
    /// used to end a blank line too, and dispatch a half-sent event.
    #[test]
    fn an_empty_read_between_cr_and_lf_keeps_them_one_line_end() {
        let input = b"data: a\r\n";
        assert_eq!(decode_in_pieces(input, &[8, 8]), vec![]);
        assert_eq!(
            decode_in_pieces(b"data: a\r\n\r\n", &[8, 8]),
            vec![data("a")]
        );
    }

    #[test]
    fn all_line_endings_and_space_forms() {
        let input = b"data: a\n\ndata:b\r\n\r\ndata: c\r\rdata: d\r\n\n";
        assert_eq!(
            decode_in_pieces(input, &[]),
            vec![data("a"), data("b"), data("c"), data("d")]
        );
    }

    #[test]
    fn multi_line_data_comments_and_event_types() {
        let input = b": keep-alive\n\nevent: error\ndata: one\ndata:  two\nid: 7\n\n";
        assert_eq!(
            decode_in_pieces(input, &[]),
            vec![
                SseItem::Comment,
                SseItem::Event {
                    event: Some("error".into()),
                    data: "one\n two".into()
                }
            ]
        );
    }

    #[test]
    fn every_split_gives_the_same_events() {
        let input: &[u8] =
            b"data: {\"x\":\"h\xc3\xa9\"}\r\n\r\n:\n\ndata: [DONE]\r\n\r\ndata: a\rdata: b\r\r";
        let whole = decode_in_pieces(input, &[]);
        assert_eq!(whole.len(), 4);
        for i in 0..=input.len() {
            for j in i..=input.len() {
                assert_eq!(decode_in_pieces(input, &[i, j]), whole, "cuts at {i}, {j}");
            }
        }
    }

    #[test]
    fn partial_event_is_visible_at_end_of_stream() {
        let mut d = SseDecoder::new();
        let mut out = Vec::new();
        d.feed(b"data: {\"cut", &mut out);
        assert!(out.is_empty());
        assert!(d.has_partial());
        d.feed(b"\"}\n\n", &mut out);
        assert!(!d.has_partial());
    }

    #[test]
    fn real_llamacpp_stream_with_keepalive_pings() {
        let fixture = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/fixtures/llamacpp/completion_stream_sse_ping.sse"
        );
        let bytes = std::fs::read(fixture)
            .unwrap_or_else(|e| panic!("{fixture}: {e} (../shared must sit beside the checkout)"));
        let items = decode_in_pieces(&bytes, &[]);
        let comments = items.iter().filter(|i| **i == SseItem::Comment).count();
        let events = items.len() - comments;
        assert_eq!(comments, 6);
        assert_eq!(events, 121, "120 tokens and the final event");
    }

    fn ndjson_in_pieces(input: &[u8], cuts: &[usize]) -> (Vec<String>, Option<String>) {
        let mut d = NdjsonDecoder::new();
        let mut out = Vec::new();
        let mut start = 0;
        for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
            let cut = cut.clamp(start, input.len());
            d.feed(&input[start..cut], &mut out);
            start = cut;
        }
        (out, d.finish())
    }

    #[test]
    fn ndjson_lines_crlf_and_blank_lines() {
        let input = b"{\"a\":1}\n\n{\"b\":2}\r\n\r\n  \n{\"c\":\"x y\"}\n";
        let (lines, rest) = ndjson_in_pieces(input, &[]);
        assert_eq!(lines, [r#"{"a":1}"#, r#"{"b":2}"#, r#"{"c":"x y"}"#]);
        assert_eq!(rest, None);
    }

    #[test]
    fn ndjson_every_split_gives_the_same_lines() {
        // A 4-byte emoji and a 2-byte letter, so cuts land inside characters.
        let input: &[u8] =
            b"{\"response\":\"h\xc3\xa9\"}\n{\"r\":\"\xf0\x9f\x98\x8a\"}\r\n\n{\"done\":true}\n{\"tail\":1}";
        let whole = ndjson_in_pieces(input, &[]);
        assert_eq!(whole.0.len(), 3);
        assert_eq!(whole.0[1], "{\"r\":\"\u{1f60a}\"}");
        assert_eq!(whole.1.as_deref(), Some("{\"tail\":1}"));
        for i in 0..=input.len() {
            for j in i..=input.len() {
                assert_eq!(ndjson_in_pieces(input, &[i, j]), whole, "cuts at {i}, {j}");
            }
        }
    }

    #[test]
    fn ndjson_partial_line_is_visible_at_end_of_stream() {
        let mut d = NdjsonDecoder::new();
        let mut out = Vec::new();
        d.feed(b"{\"cut", &mut out);
        assert!(out.is_empty());
        assert!(d.has_partial());
        d.feed(b"\":1}\n", &mut out);
        assert!(!d.has_partial());
        assert_eq!(out, [r#"{"cut":1}"#]);
        d.feed(b" \r", &mut out);
        assert!(!d.has_partial(), "trailing whitespace is not a line");
        assert_eq!(d.finish(), None);
    }

    #[test]
    fn real_ollama_stream_decodes_to_its_lines() {
        let fixture = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/fixtures/ollama/chat_stream_long_203_tokens.ndjson"
        );
        let bytes = std::fs::read(fixture)
            .unwrap_or_else(|e| panic!("{fixture}: {e} (../shared must sit beside the checkout)"));
        let (lines, rest) = ndjson_in_pieces(&bytes, &[]);
        assert_eq!(lines.len(), 203);
        assert_eq!(rest, None, "every line of a stream ends with a newline");
        let (split, _) = ndjson_in_pieces(&bytes, &(1..bytes.len()).step_by(7).collect::<Vec<_>>());
        assert_eq!(split, lines);
    }
}
