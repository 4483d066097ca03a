//! The simulator's own writers of each wire format, one file per protocol,
//! built from their own small structs so that no bug can be shared with the
//! client's decoders. This file holds what they share: the per-request
//! [`Meta`], the measured [`Stats`] a final event reports, the [`Wire`] trait
//! a request's answer is written through, and the error shapes.

pub(crate) mod llamacpp;
pub(crate) mod ollama;
pub(crate) mod openai;
pub(crate) mod tgi;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::Serialize;

use super::model::Finish;
use super::request::{Endpoint, Reject, Route};
use super::Protocol;

pub(crate) const JSON: &str = "application/json";
/// What Ollama and llama-server call their JSON.
pub(crate) const JSON_UTF8: &str = "application/json; charset=utf-8";
pub(crate) const SSE: &str = "text/event-stream";
pub(crate) const NDJSON: &str = "application/x-ndjson";
pub(crate) const TEXT: &str = "text/plain; charset=utf-8";

/// What the simulator reports as its version where a protocol asks.
pub(crate) const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "-llmbench-sim");

/// The message of every injected mid-generation failure.
pub(crate) const FAILURE: &str = "simulated engine failure";

/// What one request's answer repeats, fixed when it is read.
pub(crate) struct Meta {
    pub(crate) route: Route,
    pub(crate) id: String,
    /// Unix seconds when it was read.
    pub(crate) created: u64,
    /// The model name answers carry.
    pub(crate) model: String,
    pub(crate) prompt_tokens: u32,
    pub(crate) max_tokens: Option<u32>,
    /// Why the answer will end, if no fault ends it first.
    pub(crate) finish: Finish,
    pub(crate) include_usage: bool,
    pub(crate) details: bool,
    pub(crate) seed: Option<u64>,
    pub(crate) prompt: String,
}

/// What the simulator measured about one answer, for the durations and
/// counts a protocol reports with its last event. All instants are the same
/// ones the truth records.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stats {
    pub(crate) output_tokens: u32,
    pub(crate) finish: Finish,
    pub(crate) received_at: Instant,
    /// When it joined the queue for a slot (after reading and checking).
    pub(crate) queued_at: Instant,
    pub(crate) started_at: Instant,
    pub(crate) first_token_at: Instant,
    pub(crate) last_token_at: Instant,
    /// When the last event was built.
    pub(crate) end: Instant,
    /// The concurrency slot it ran in.
    pub(crate) slot: usize,
}

impl Stats {
    /// Checking and queueing the request, before it waits for a slot.
    pub(crate) fn validation_time(&self) -> Duration {
        self.queued_at.saturating_duration_since(self.received_at)
    }
    /// Waiting for a slot.
    pub(crate) fn queue_time(&self) -> Duration {
        self.started_at.saturating_duration_since(self.queued_at)
    }
    /// From the slot to the first token: prefill.
    pub(crate) fn prompt_time(&self) -> Duration {
        self.first_token_at
            .saturating_duration_since(self.started_at)
    }
    /// From the first token to the last.
    pub(crate) fn decode_time(&self) -> Duration {
        self.last_token_at
            .saturating_duration_since(self.first_token_at)
    }
    /// From the slot to the end: the inference.
    pub(crate) fn inference_time(&self) -> Duration {
        self.end.saturating_duration_since(self.started_at)
    }
    /// From reading the request to the end.
    pub(crate) fn total_time(&self) -> Duration {
        self.end.saturating_duration_since(self.received_at)
    }
}

/// A complete response: status, content type, extra headers, body.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) content_type: &'static str,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: Bytes,
}

impl Reply {
    pub(crate) fn new(status: u16, content_type: &'static str, body: impl Into<Bytes>) -> Reply {
        Reply {
            status,
            content_type,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    pub(crate) fn json(status: u16, body: impl Into<Bytes>) -> Reply {
        Reply::new(status, JSON, body)
    }
}

/// How one request's answer is written, streamed or whole.
pub(crate) trait Wire: Send + Sync {
    /// The content type of a stream.
    fn stream_type(&self) -> &'static str {
        SSE
    }
    /// Extra headers of a stream.
    fn stream_headers(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
    /// What a stream sends as soon as the request is read, before queueing.
    fn opening(&mut self) -> Option<Bytes> {
        None
    }
    /// The event of one content token; `last` for the answer's last one.
    fn token(&mut self, word: &str, last: bool) -> Bytes;
    /// What a stream sends after its last token (may be nothing).
    fn closing(&mut self, stats: &Stats) -> Vec<Bytes>;
    /// A whole (non-streamed) answer.
    fn whole(&mut self, text: &str, stats: &Stats) -> Reply;
    /// An event that is not JSON.
    fn malformed_event(&self) -> Bytes {
        Bytes::from_static(b"data: {not json\n\n")
    }
    /// The event that reports a failure mid-stream.
    fn error_event(&self) -> Bytes;
    /// The answer to a non-streamed request that failed mid-generation.
    fn failure(&self) -> Reply;
}

/// The writer for a request's route.
pub(crate) fn writer(meta: Meta) -> Box<dyn Wire> {
    match (meta.route.endpoint, meta.route.protocol) {
        (Endpoint::OllamaChat | Endpoint::OllamaGenerate, _) => Box::new(ollama::Writer::new(meta)),
        (Endpoint::TgiGenerate | Endpoint::TgiGenerateStream, _) => {
            Box::new(tgi::Writer::new(meta))
        }
        (Endpoint::LlamaCompletion, _) => Box::new(llamacpp::Writer::new(meta)),
        (_, Protocol::LlamaCpp) => Box::new(openai::Writer::new(meta, openai::Flavor::LlamaCpp)),
        _ => Box::new(openai::Writer::new(meta, openai::Flavor::OpenAi)),
    }
}

/// An error answer in `protocol`'s shape.
pub(crate) fn error_reply(protocol: Protocol, status: u16, message: &str) -> Reply {
    match protocol {
        Protocol::OpenAi => Reply::json(status, openai::error_body(status, message)),
        Protocol::LlamaCpp => Reply::new(status, JSON_UTF8, openai::error_body(status, message)),
        Protocol::Ollama => Reply::new(status, JSON_UTF8, ollama::error_body(message)),
        Protocol::Tgi => Reply::json(status, tgi::error_body(message, tgi::error_type(status))),
    }
}

/// The answer to [`super::Fault::Status`].
pub(crate) fn status_fault(protocol: Protocol, status: u16) -> Reply {
    let message = match (protocol, status) {
        (Protocol::Tgi, 429) => "Model is overloaded".to_owned(),
        (Protocol::Tgi, 424) => format!("Request failed during generation: {FAILURE}"),
        (_, 429) => "simulated rate limit: too many requests".to_owned(),
        (_, 503) => "simulated engine unavailable".to_owned(),
        _ => format!("simulated HTTP {status} error"),
    };
    error_reply(protocol, status, &message)
}

/// The answer to a body that was refused.
pub(crate) fn rejected(protocol: Protocol, reject: &Reject) -> Reply {
    match (protocol, reject) {
        // axum's JSON extractor answers in plain text before TGI's own
        // validation sees the request.
        (Protocol::Tgi, Reject::Syntax(m)) => Reply::new(
            400,
            TEXT,
            format!("Failed to parse the request body as JSON: {m}"),
        ),
        (Protocol::Tgi, Reject::Schema(m)) => Reply::new(
            422,
            TEXT,
            format!("Failed to deserialize the JSON body into the target type: {m}"),
        ),
        (Protocol::Tgi, Reject::Validation(m)) => {
            Reply::json(422, tgi::error_body(m, "validation"))
        }
        (protocol, reject) => error_reply(protocol, 400, reject.message()),
    }
}

/// The answer to an unknown route.
pub(crate) fn not_found(protocol: Protocol, method: &str, path: &str) -> Reply {
    match protocol {
        Protocol::OpenAi => error_reply(protocol, 404, &format!("no route for {method} {path}")),
        Protocol::LlamaCpp => error_reply(protocol, 404, "File Not Found"),
        // gin's and axum's defaults.
        Protocol::Ollama => Reply::new(404, TEXT, "404 page not found"),
        Protocol::Tgi => Reply::new(404, TEXT, Bytes::new()),
    }
}

/// The 503 of the loading period, for `/health` or any other route.
pub(crate) fn loading(protocol: Protocol, health: bool) -> Reply {
    match protocol {
        Protocol::OpenAi | Protocol::LlamaCpp => error_reply(protocol, 503, "Loading model"),
        Protocol::Tgi if health => Reply::json(503, tgi::error_body("unhealthy", "healthcheck")),
        Protocol::Tgi => Reply::json(503, tgi::error_body("Loading model", "unavailable")),
        Protocol::Ollama => error_reply(protocol, 503, "model is loading, try again later"),
    }
}

/// The bytes of `value` as compact JSON. The sim's structs always serialize;
/// should one ever fail, the bytes say so instead of panicking.
pub(crate) fn to_json(value: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(value)
        .unwrap_or_else(|_| br#"{"error":"simulator: cannot serialize"}"#.to_vec())
}

/// One server-sent event `data: <json>\n\n`.
pub(crate) fn sse(value: &impl Serialize) -> Bytes {
    sse_raw(&to_json(value))
}

/// One server-sent event around bytes already encoded.
pub(crate) fn sse_raw(data: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(data.len() + 8);
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// One NDJSON line `<json>\n`.
pub(crate) fn ndjson(value: &impl Serialize) -> Bytes {
    let mut out = to_json(value);
    out.push(b'\n');
    Bytes::from(out)
}

/// Seconds since the Unix epoch, for `created` fields.
pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Whole milliseconds, as TGI's headers count.
pub(crate) fn ms_whole(d: Duration) -> u128 {
    d.as_millis()
}

/// Nanoseconds, as Ollama counts, saturating.
pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// `time` as RFC 3339 in UTC the way Go writes `time.RFC3339Nano`: up to
/// nine fraction digits with trailing zeros dropped (none when zero), then
/// `Z`.
pub(crate) fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rest = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let mut out = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    );
    let nanos = since.subsec_nanos();
    if nanos > 0 {
        let fraction = format!("{nanos:09}");
        out.push('.');
        out.push_str(fraction.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Year, month, day of a count of days since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

#[cfg(test)]
pub(crate) mod testing {
    //! What the writers' tests share.
    use std::time::{Duration, Instant};

    use super::{Meta, Stats};
    use crate::sim::model::Finish;
    use crate::sim::request::{Endpoint, Route};
    use crate::sim::Protocol;

    pub(crate) fn meta(protocol: Protocol, endpoint: Endpoint, path: &'static str) -> Meta {
        Meta {
            route: Route {
                protocol,
                endpoint,
                path,
            },
            id: "chatcmpl-sim-1".to_owned(),
            created: 1_700_000_000,
            model: "m".to_owned(),
            prompt_tokens: 5,
            max_tokens: Some(3),
            finish: Finish::Length,
            include_usage: false,
            details: false,
            seed: None,
            prompt: "The capital of France is".to_owned(),
        }
    }

    /// 3 tokens: queued 1 ms, prefill 40 ms, decode 20 ms, 2 ms to the end.
    pub(crate) fn stats() -> Stats {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        Stats {
            output_tokens: 3,
            finish: Finish::Length,
            received_at: t0,
            queued_at: t0 + ms(1),
            started_at: t0 + ms(11),
            first_token_at: t0 + ms(51),
            last_token_at: t0 + ms(71),
            end: t0 + ms(73),
            slot: 2,
        }
    }

    pub(crate) fn json_of(bytes: &[u8]) -> serde_json::Value {
        let text = std::str::from_utf8(bytes).expect("utf-8");
        let body = text
            .strip_prefix("data: ")
            .and_then(|t| t.strip_suffix("\n\n"))
            .or_else(|| text.strip_suffix('\n'))
            .unwrap_or(text);
        serde_json::from_str(body).expect("json")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_writes_go_style_utc() {
        let at = |secs: u64, nanos: u32| rfc3339(UNIX_EPOCH + Duration::new(secs, nanos));
        assert_eq!(at(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(
            at(1_753_872_204, 429_849_000),
            "2025-07-30T10:43:24.429849Z"
        );
        assert_eq!(
            at(1_769_625_256, 110_694_939),
            "2026-01-28T18:34:16.110694939Z"
        );
        assert_eq!(at(951_782_400, 500_000_000), "2000-02-29T00:00:00.5Z");
    }

    #[test]
    fn error_shapes_follow_the_protocol() {
        let json =
            |r: &Reply| -> serde_json::Value { serde_json::from_slice(&r.body).expect("json") };
        let r = status_fault(Protocol::Tgi, 429);
        assert_eq!(
            json(&r),
            serde_json::json!({"error": "Model is overloaded", "error_type": "overloaded"})
        );
        let r = status_fault(Protocol::Ollama, 500);
        assert_eq!(r.status, 500);
        assert_eq!(
            json(&r),
            serde_json::json!({"error": "simulated HTTP 500 error"})
        );
        let r = loading(Protocol::LlamaCpp, true);
        assert_eq!(
            json(&r),
            serde_json::json!({"error": {"message": "Loading model", "type": "unavailable_error", "code": 503}})
        );
        let r = loading(Protocol::Tgi, true);
        assert_eq!(
            &r.body[..],
            br#"{"error":"unhealthy","error_type":"healthcheck"}"#
        );
        let r = rejected(
            Protocol::Tgi,
            &Reject::Schema("missing field `inputs`".into()),
        );
        assert_eq!((r.status, r.content_type), (422, TEXT));
        let r = not_found(Protocol::Ollama, "GET", "/x");
        assert_eq!(&r.body[..], b"404 page not found");
    }
}
