//! The per-request record: what the client saw of one request, turned into
//! the metrics defined in `docs/metrics.md`.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::ms;

/// Why a request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum RequestErrorKind {
    /// The connection could not be made.
    Connect,
    /// The engine answered with a non-success HTTP status.
    HttpStatus,
    /// A stream event could not be parsed.
    MalformedStream,
    /// The engine reported an error inside a successful (200) stream.
    EngineError,
    /// The stream ended before its end marker.
    Truncated,
    /// The request took longer than the request timeout.
    Timeout,
    /// The run was interrupted while the request was in flight.
    Interrupted,
    /// An open-loop arrival not sent because the in-flight cap was reached.
    Dropped,
    /// Any other transport failure.
    Transport,
}

impl RequestErrorKind {
    /// The name used in outputs (`errors_by_kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            RequestErrorKind::Connect => "connect",
            RequestErrorKind::HttpStatus => "http_status",
            RequestErrorKind::MalformedStream => "malformed_stream",
            RequestErrorKind::EngineError => "engine_error",
            RequestErrorKind::Truncated => "truncated",
            RequestErrorKind::Timeout => "timeout",
            RequestErrorKind::Interrupted => "interrupted",
            RequestErrorKind::Dropped => "dropped",
            RequestErrorKind::Transport => "transport",
        }
    }
}

/// A failed request's cause: kind, HTTP status if any, and a message naming
/// what and where.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RequestError {
    /// The broad kind.
    pub kind: RequestErrorKind,
    /// The HTTP status, when the engine sent one.
    pub status: Option<u16>,
    /// What happened, with the URL and position in the stream.
    pub message: String,
}

/// What the engine itself reported about a request, in the names of
/// DESIGN.md. A field the engine did not report is `None`: never zero, never
/// invented. Adapters fill it; rates are filled only from the engine's own
/// figures (its token counts over its own durations).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerTimings {
    /// Time spent loading the model for this request (Ollama).
    pub load_duration_ms: Option<f64>,
    /// Time spent waiting in the engine's queue (TGI `queue_time`).
    pub queue_duration_ms: Option<f64>,
    /// Time spent evaluating the prompt (prefill).
    pub prompt_eval_duration_ms: Option<f64>,
    /// Prompt tokens evaluated per second, by the engine's figures.
    pub prompt_tps: Option<f64>,
    /// Time spent generating output tokens (decode).
    pub eval_duration_ms: Option<f64>,
    /// Output tokens generated per second, by the engine's figures.
    pub eval_tps: Option<f64>,
    /// The engine's total time for the request.
    pub total_duration_ms: Option<f64>,
    /// Prompt tokens served from the engine's cache (llama.cpp `cache_n`,
    /// OpenAI `prompt_tokens_details.cached_tokens`).
    pub cached_prompt_tokens: Option<u32>,
}

impl ServerTimings {
    /// Whether the engine reported nothing at all.
    pub fn is_empty(&self) -> bool {
        *self == ServerTimings::default()
    }
}

/// What the client observed of one request, as raw instants on the shared
/// monotonic clock. Adapters fill it; [`RequestRecord::from_exchange`] turns
/// it into metrics.
#[derive(Clone, Debug)]
pub struct Exchange {
    /// When the request was handed to the connection.
    pub sent_at: Instant,
    /// Arrival of the first byte of the response body.
    pub first_byte_at: Option<Instant>,
    /// Arrival of each chunk carrying generated content, in order.
    pub content_at: Vec<Instant>,
    /// Arrival of the last byte (or the failure).
    pub ended_at: Instant,
    /// The engine's response id.
    pub response_id: Option<String>,
    /// The engine's `finish_reason`.
    pub finish_reason: Option<String>,
    /// Prompt tokens as reported by the engine.
    pub prompt_tokens: Option<u32>,
    /// Output tokens as reported by the engine.
    pub output_tokens: Option<u32>,
    /// The failure, if the request failed.
    pub error: Option<RequestError>,
    /// What the engine reported about its own work.
    pub server: ServerTimings,
    /// The generated answer text, kept for `llmbench request`; not written
    /// to `requests.jsonl`.
    pub text: String,
    /// Generated reasoning, when the engine sends it apart from the answer.
    pub reasoning: String,
    /// Where to echo generated text as it arrives (`llmbench request`).
    pub live: Option<tokio::sync::mpsc::UnboundedSender<LiveText>>,
    /// The URL the request was posted to, once known: a timeout or a stop
    /// that cuts the adapter short still names where the request went.
    pub endpoint: Option<String>,
    /// Arrival of the content chunk that ended the answer's first sentence
    /// (its first `.`, `!`, `?` or newline after some text).
    pub first_sentence_at: Option<Instant>,
    /// Whether answer text other than white space and sentence ends has
    /// arrived (a sentence needs some words before its end).
    pub sentence_started: bool,
}

/// A piece of generated text, echoed as it arrives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LiveText {
    /// Part of the answer.
    Answer(String),
    /// Part of the reasoning.
    Reasoning(String),
}

impl Exchange {
    /// An exchange that has just been sent.
    pub fn started(sent_at: Instant) -> Self {
        Exchange {
            sent_at,
            first_byte_at: None,
            content_at: Vec::new(),
            ended_at: sent_at,
            response_id: None,
            finish_reason: None,
            prompt_tokens: None,
            output_tokens: None,
            error: None,
            server: ServerTimings::default(),
            text: String::new(),
            reasoning: String::new(),
            live: None,
            endpoint: None,
            first_sentence_at: None,
            sentence_started: false,
        }
    }

    /// Append generated answer text (and echo it when someone listens).
    pub fn push_text(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        if self.first_sentence_at.is_none() && self.ends_first_sentence(text) {
            // Adapters stamp the chunk before handing over its text.
            self.first_sentence_at = self.content_at.last().copied();
        }
        self.text.push_str(text);
        if let Some(live) = &self.live {
            let _ = live.send(LiveText::Answer(text.to_string()));
        }
    }

    /// Whether `text`, the next piece of the answer, ends its first
    /// sentence; notes the start of the sentence as it goes.
    fn ends_first_sentence(&mut self, text: &str) -> bool {
        for c in text.chars() {
            let end = matches!(c, '.' | '!' | '?' | '\n');
            if end && self.sentence_started {
                return true;
            }
            if !end && !c.is_whitespace() {
                self.sentence_started = true;
            }
        }
        false
    }

    /// Append generated reasoning text (and echo it when someone listens).
    pub fn push_reasoning(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        self.reasoning.push_str(text);
        if let Some(live) = &self.live {
            let _ = live.send(LiveText::Reasoning(text.to_string()));
        }
    }
}

/// One request, as written to `requests.jsonl`. Times are milliseconds;
/// `scheduled_ms` and `sent_ms` count from the start of the trial.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// The scenario's name.
    pub scenario: String,
    /// The step of a sequence of loads this request belongs to ("4 users").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// The engine's label.
    pub engine: String,
    /// The model asked for.
    pub model: String,
    /// Sequence number within the trial, from 0.
    pub request_id: u64,
    /// Which closed-loop user sent it.
    pub user: u32,
    /// The engine's own id for the response, if it gave one.
    pub response_id: Option<String>,
    /// Whether the request succeeded.
    pub success: bool,
    /// When it should have been sent.
    pub scheduled_ms: f64,
    /// When it was sent.
    pub sent_ms: f64,
    /// Actual minus scheduled send time.
    pub schedule_lag_ms: f64,
    /// Send to first byte of the body.
    pub ttfb_ms: Option<f64>,
    /// Send to first chunk with generated content.
    pub ttft_ms: Option<f64>,
    /// Send to the chunk that ended the answer's first sentence (its first
    /// `.`, `!`, `?` or newline after some text); an answer that never
    /// ends one is a sentence that ends with its last chunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttfs_ms: Option<f64>,
    /// Send to the end of the response (or the failure).
    pub e2e_latency_ms: f64,
    /// Every gap between consecutive content chunks.
    pub itl_ms: Vec<f64>,
    /// The mean of `itl_ms`.
    pub itl_mean_ms: Option<f64>,
    /// `(e2e - ttft) / (output_tokens - 1)`.
    pub tpot_ms: Option<f64>,
    /// Prompt tokens, as the engine reported them.
    pub prompt_tokens: Option<u32>,
    /// The prompt tokens asked for, where the workload fits prompts to a
    /// length (`Workload::prompt_tokens`, the presets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_prompt_tokens: Option<u32>,
    /// Output tokens: from the engine, else the content chunks counted.
    pub output_tokens: Option<u32>,
    /// True when `output_tokens` is a count of chunks, not the engine's figure.
    pub output_tokens_estimated: bool,
    /// Content chunks received.
    pub content_chunks: u32,
    /// `output_tokens / e2e_latency` in tokens per second.
    pub output_tps: Option<f64>,
    /// The engine's finish reason.
    pub finish_reason: Option<String>,
    /// The failure, when `success` is false.
    pub error: Option<RequestError>,
    /// Whether the request succeeded and met every SLO threshold of its
    /// scenario (the goodput rule in `docs/metrics.md`); `None` when the
    /// scenario states no SLO.
    #[serde(default)]
    pub slo_met: Option<bool>,
    /// What the engine reported about its own work.
    #[serde(flatten)]
    pub server: ServerTimings,
    /// Latencies count from `scheduled_ms` (open loop), not from `sent_ms`.
    #[serde(default)]
    pub latency_from_schedule: bool,
    /// Scheduled inside the warm-up window: kept here, left out of the summary.
    #[serde(default)]
    pub warmup: bool,
    /// Times the request was sent again after a retryable failure (only
    /// with `--retries`); its latencies count from the first send.
    #[serde(default)]
    pub retries: u32,
}

/// Who sent a request and when it was due, for [`RequestRecord::from_exchange`].
#[derive(Clone, Debug)]
pub struct RecordContext<'a> {
    /// The scenario's name.
    pub scenario: &'a str,
    /// The engine's label.
    pub engine: &'a str,
    /// The model.
    pub model: &'a str,
    /// The request's sequence number.
    pub request_id: u64,
    /// The user that sent it.
    pub user: u32,
    /// The trial's start.
    pub t0: Instant,
    /// When it should have been sent.
    pub scheduled_at: Instant,
    /// Count latencies from `scheduled_at` (open loop) rather than from the
    /// actual send (closed loop).
    pub latency_from_schedule: bool,
}

fn since(later: Instant, earlier: Instant) -> Duration {
    later.saturating_duration_since(earlier)
}

impl RequestRecord {
    /// Compute every per-request metric from what the client observed.
    pub fn from_exchange(ctx: &RecordContext<'_>, ex: Exchange) -> Self {
        // The origin of every latency: the actual send, or in an open loop
        // the scheduled one (a late send then counts against the latency).
        let sent = if ctx.latency_from_schedule {
            ctx.scheduled_at.min(ex.sent_at)
        } else {
            ex.sent_at
        };
        let gaps: Vec<f64> = ex
            .content_at
            .windows(2)
            .map(|w| ms(since(w[1], w[0])))
            .collect();
        let itl_mean_ms = (!gaps.is_empty()).then(|| gaps.iter().sum::<f64>() / gaps.len() as f64);
        let content_chunks = u32::try_from(ex.content_at.len()).unwrap_or(u32::MAX);
        let (output_tokens, estimated) = match ex.output_tokens {
            Some(n) => (Some(n), false),
            None if content_chunks > 0 => (Some(content_chunks), true),
            None => (None, false),
        };
        let ttft = ex.content_at.first().map(|&t| since(t, sent));
        let e2e = since(ex.ended_at, sent);
        let success = ex.error.is_none();
        let sentence_end = match ex.first_sentence_at {
            Some(t) => Some(t),
            // The whole answer was one unfinished sentence.
            None if success && ex.sentence_started => ex.content_at.last().copied(),
            None => None,
        };
        let tpot_ms = match (success, ttft, output_tokens) {
            (true, Some(ttft), Some(n)) if n >= 2 => {
                Some(ms(e2e.saturating_sub(ttft)) / f64::from(n - 1))
            }
            _ => None,
        };
        let output_tps = match (success, output_tokens) {
            (true, Some(n)) if !e2e.is_zero() => Some(f64::from(n) / e2e.as_secs_f64()),
            _ => None,
        };
        RequestRecord {
            scenario: ctx.scenario.to_string(),
            step: None,
            engine: ctx.engine.to_string(),
            model: ctx.model.to_string(),
            request_id: ctx.request_id,
            user: ctx.user,
            response_id: ex.response_id,
            success,
            scheduled_ms: ms(since(ctx.scheduled_at, ctx.t0)),
            sent_ms: ms(since(ex.sent_at, ctx.t0)),
            schedule_lag_ms: ms(since(ex.sent_at, ctx.scheduled_at)),
            ttfb_ms: ex.first_byte_at.map(|t| ms(since(t, sent))),
            ttft_ms: ttft.map(ms),
            ttfs_ms: sentence_end.map(|t| ms(since(t, sent))),
            e2e_latency_ms: ms(e2e),
            itl_ms: gaps,
            itl_mean_ms,
            tpot_ms,
            prompt_tokens: ex.prompt_tokens,
            requested_prompt_tokens: None,
            output_tokens,
            output_tokens_estimated: estimated,
            content_chunks,
            output_tps,
            finish_reason: ex.finish_reason,
            error: ex.error,
            slo_met: None,
            server: ex.server,
            latency_from_schedule: ctx.latency_from_schedule,
            warmup: false,
            retries: 0,
        }
    }

    /// The instant each content chunk arrived, rebuilt from the offsets, for
    /// comparing against a clock reading taken elsewhere (the simulator's).
    pub fn content_arrivals(&self, t0: Instant) -> Vec<Instant> {
        let Some(ttft) = self.ttft_ms else {
            return Vec::new();
        };
        let origin = if self.latency_from_schedule {
            self.scheduled_ms
        } else {
            self.sent_ms
        };
        let mut at = origin + ttft;
        let mut out = vec![t0 + Duration::from_secs_f64(at / 1e3)];
        for gap in &self.itl_ms {
            at += gap;
            out.push(t0 + Duration::from_secs_f64(at / 1e3));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(t0: Instant) -> RecordContext<'static> {
        RecordContext {
            scenario: "s",
            engine: "e",
            model: "m",
            request_id: 3,
            user: 1,
            t0,
            scheduled_at: t0,
            latency_from_schedule: false,
        }
    }

    #[test]
    fn the_first_sentence_ends_at_its_first_end_after_some_text() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut ex = Exchange::started(t0);
        // Leading white space and a stray end do not make a sentence.
        for (t, piece) in [
            (10, "\n"),
            (20, "."),
            (30, " Hello"),
            (40, " world"),
            (50, "!"),
            (60, " Next."),
        ] {
            ex.content_at.push(at(t));
            ex.push_text(piece);
        }
        ex.ended_at = at(70);
        let r = RequestRecord::from_exchange(&ctx(t0), ex);
        assert_eq!(r.ttfs_ms, Some(50.0));

        // An answer without an end is one sentence, ended by its last chunk.
        let mut ex = Exchange::started(t0);
        for (t, piece) in [(10, "A"), (25, " list, no end")] {
            ex.content_at.push(at(t));
            ex.push_text(piece);
        }
        ex.ended_at = at(30);
        assert_eq!(
            RequestRecord::from_exchange(&ctx(t0), ex).ttfs_ms,
            Some(25.0)
        );

        // A failed answer that never ended a sentence has none.
        let mut ex = Exchange::started(t0);
        ex.content_at.push(at(10));
        ex.push_text("Cut");
        ex.error = Some(RequestError {
            kind: RequestErrorKind::Truncated,
            status: None,
            message: "cut".into(),
        });
        assert_eq!(RequestRecord::from_exchange(&ctx(t0), ex).ttfs_ms, None);
    }

    #[test]
    fn metrics_follow_their_definitions() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut ex = Exchange::started(at(10));
        ex.first_byte_at = Some(at(15));
        ex.content_at = vec![at(40), at(50), at(70)];
        ex.ended_at = at(110);
        ex.output_tokens = Some(5);
        let r = RequestRecord::from_exchange(&ctx(t0), ex);
        assert!(r.success);
        assert_eq!(r.sent_ms, 10.0);
        assert_eq!(r.schedule_lag_ms, 10.0);
        assert_eq!(r.ttfb_ms, Some(5.0));
        assert_eq!(r.ttft_ms, Some(30.0));
        assert_eq!(r.e2e_latency_ms, 100.0);
        assert_eq!(r.itl_ms, vec![10.0, 20.0]);
        assert_eq!(r.itl_mean_ms, Some(15.0));
        // (100 - 30) / (5 - 1): the engine's count, not the 3 chunks.
        assert_eq!(r.tpot_ms, Some(17.5));
        assert_eq!(r.output_tps, Some(50.0));
        assert!(!r.output_tokens_estimated);
        let arrivals = r.content_arrivals(t0);
        assert_eq!(arrivals.len(), 3);
        assert!(arrivals[2].duration_since(at(70)) < Duration::from_micros(1));
    }

    #[test]
    fn chunk_count_is_an_estimate_when_the_engine_is_silent() {
        let t0 = Instant::now();
        let mut ex = Exchange::started(t0);
        ex.content_at = vec![t0 + Duration::from_millis(5)];
        ex.ended_at = t0 + Duration::from_millis(6);
        let r = RequestRecord::from_exchange(&ctx(t0), ex);
        assert_eq!(r.output_tokens, Some(1));
        assert!(r.output_tokens_estimated);
        assert_eq!(r.tpot_ms, None, "one token has no time per output token");
        assert!(r.itl_ms.is_empty());
    }

    #[test]
    fn failed_requests_keep_what_arrived() {
        let t0 = Instant::now();
        let mut ex = Exchange::started(t0);
        ex.content_at = vec![t0 + Duration::from_millis(5), t0 + Duration::from_millis(9)];
        ex.ended_at = t0 + Duration::from_millis(12);
        ex.error = Some(RequestError {
            kind: RequestErrorKind::Truncated,
            status: None,
            message: "cut".into(),
        });
        let r = RequestRecord::from_exchange(&ctx(t0), ex);
        assert!(!r.success);
        assert_eq!(r.content_chunks, 2);
        assert_eq!(r.tpot_ms, None);
        assert_eq!(r.output_tps, None);
        let line = serde_json::to_string(&r).unwrap();
        let back: RequestRecord = serde_json::from_str(&line).unwrap();
        assert_eq!(back, r);
    }
}
