//! Every fault the simulator can inject, on every protocol and both of its
//! routes, run through the harness (`run_once_with`): the record each one
//! produces. Failures are data (issue 4): none panics, none is lost or
//! retried, none counts as a success, each names its URL, and the tokens
//! that arrived before the failure are kept with their arrival times.
//!
//! Tests are named `<fault>::<protocol>`; each runs the protocol's chat route
//! and its raw-prompt route (`api=completion` or `api=generate`) against a
//! simulator that speaks only that protocol. One user sends the requests one
//! after another, so record `i` is the simulator's request `i + 1`, and each
//! record is checked against that request's [`Truth`].

use std::fmt;
use std::time::{Duration, Instant};

use llmbench::engine::Timeouts;
use llmbench::harness::{run_once_with, TrialRun};
use llmbench::measure::RequestErrorKind;
use llmbench::prelude::*;
use llmbench::sim::{Fault, Itl, Protocol, SimConfig, Simulator, Truth};

/// The simulator's time to first token, in ms (no per-prompt-token cost).
const TTFT_MS: u64 = 5;
/// The simulator's gap between tokens.
const ITL: Duration = Duration::from_millis(2);
/// Tokens per answer: the workload's budget, which the simulator fills.
const TOKENS: u32 = 6;
/// The first-token timeout of the stall tests: 60 times the simulator's time
/// to first token, so a request that is not stalled never reaches it.
const STALL_LIMIT: Duration = Duration::from_millis(60 * TTFT_MS);
/// A whole-request limit no request reaches: it only turns a hung request
/// into a failed assertion instead of a hung test.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the loading tests' simulator pretends to load its model.
const LOADING: Duration = Duration::from_millis(1500);
/// Rounding allowance of [`llmbench::measure::RequestRecord::content_arrivals`],
/// which rebuilds instants from millisecond floats.
const ROUNDING: Duration = Duration::from_micros(1);

/// One route of one protocol: how the engine spec names it, and the path the
/// simulator records.
#[derive(Clone, Copy, Debug)]
struct Route {
    protocol: Protocol,
    api: &'static str,
    path: &'static str,
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} api={} ({})", self.protocol, self.api, self.path)
    }
}

/// The chat route and the raw-prompt route of `protocol`.
fn routes(protocol: Protocol) -> [Route; 2] {
    let (chat, raw, raw_path) = match protocol {
        Protocol::OpenAi => ("/v1/chat/completions", "completion", "/v1/completions"),
        Protocol::Ollama => ("/api/chat", "generate", "/api/generate"),
        Protocol::Tgi => ("/v1/chat/completions", "generate", "/generate_stream"),
        Protocol::LlamaCpp => ("/v1/chat/completions", "completion", "/completion"),
    };
    [
        Route {
            protocol,
            api: "chat",
            path: chat,
        },
        Route {
            protocol,
            api: raw,
            path: raw_path,
        },
    ]
}

/// A quick simulator speaking only `route`'s protocol.
fn config(route: Route) -> SimConfig {
    SimConfig::new()
        .protocols(&[route.protocol])
        .ttft_base(Duration::from_millis(TTFT_MS))
        .per_prompt_token(Duration::ZERO)
        .itl(Itl::Constant(ITL))
        .seed(11)
}

fn start(route: Route, config: SimConfig) -> Simulator {
    Simulator::start(config).unwrap_or_else(|e| panic!("{route}: simulator: {e}"))
}

fn stall_timeouts() -> Timeouts {
    Timeouts {
        first_token: Some(STALL_LIMIT),
        ..Timeouts::default()
    }
}

/// What a failed record must say.
struct Expect {
    kind: RequestErrorKind,
    status: Option<u16>,
    /// Parts of the message besides the URL (the engine's own words).
    says: Vec<String>,
    /// Content chunks received before the failure.
    chunks: u32,
    /// The least time the failure can take.
    at_least: Duration,
}

/// The record `fault` must produce on `route`.
fn expected(route: Route, fault: Fault) -> Expect {
    let tgi = route.protocol == Protocol::Tgi;
    let fail = |kind, status, says: &[&str], chunks| Expect {
        kind,
        status,
        says: says.iter().map(|s| (*s).to_string()).collect(),
        chunks,
        at_least: Duration::ZERO,
    };
    match fault {
        Fault::Status(code) => {
            let engine = match code {
                429 if tgi => "Model is overloaded".to_string(),
                429 => "simulated rate limit: too many requests".to_string(),
                503 => "simulated engine unavailable".to_string(),
                other => format!("simulated HTTP {other} error"),
            };
            let answered = format!("answered {code}");
            fail(
                RequestErrorKind::HttpStatus,
                Some(code),
                &[&answered, &engine],
                0,
            )
        }
        Fault::CutAfter(n) => fail(RequestErrorKind::Truncated, Some(200), &[], n),
        Fault::MalformedAfter(n) => fail(
            RequestErrorKind::MalformedStream,
            Some(200),
            &["{not json"],
            n,
        ),
        Fault::ErrorEventAfter(n) => fail(
            RequestErrorKind::EngineError,
            Some(200),
            &["simulated engine failure"],
            n,
        ),
        Fault::Stall => Expect {
            at_least: STALL_LIMIT,
            ..fail(RequestErrorKind::Timeout, Some(200), &["first-token"], 0)
        },
        // Closed after the request was read, before any byte of an answer:
        // no status, and not a connect failure (the connection was made).
        Fault::Drop => fail(
            RequestErrorKind::Transport,
            None,
            &["connection closed before message completed"],
            0,
        ),
    }
}

/// The record of a request refused while the model loads.
fn loading_refusal(route: Route) -> Expect {
    let engine = match route.protocol {
        Protocol::Ollama => "model is loading, try again later",
        _ => "Loading model",
    };
    Expect {
        kind: RequestErrorKind::HttpStatus,
        status: Some(503),
        says: vec!["answered 503".to_string(), engine.to_string()],
        chunks: 0,
        at_least: Duration::ZERO,
    }
}

/// One trial's records, each beside the simulator's truth of that request.
struct Trial {
    route: Route,
    url: String,
    run: TrialRun,
    truth: Vec<Truth>,
}

/// Send `requests` requests one after another over `route` to `sim`, and
/// check that each produced exactly one record: as many records as requests
/// the simulator saw (nothing lost, nothing retried), in order.
fn send(sim: &Simulator, route: Route, requests: u64, timeouts: Timeouts) -> Trial {
    let seen_before = sim.requests_seen();
    let spec = format!(
        "{}={},model={},api={}",
        route.protocol,
        sim.url(),
        sim.model(),
        route.api
    );
    let engine: Engine = spec.parse().unwrap_or_else(|e| panic!("{spec}: {e}"));
    let bench = Bench::new()
        .workload(Workload::prompts(["Why is the sky blue?"]).max_tokens(TOKENS))
        .load(Load::users(1).requests(requests));
    let name = route.to_string();
    let mut run = run_once_with(&name, &bench, &engine, REQUEST_TIMEOUT, timeouts)
        .unwrap_or_else(|e| panic!("{route}: the trial did not run: {e}"));
    run.records.sort_by_key(|r| r.request_id);
    assert_eq!(
        run.records.len() as u64,
        requests,
        "{route}: one record per request sent"
    );
    assert_eq!(
        sim.requests_seen() - seen_before,
        requests,
        "{route}: the simulator saw exactly as many requests as there are records"
    );
    let truth: Vec<Truth> = sim.truth().into_iter().skip(seen_before as usize).collect();
    assert_eq!(
        truth.len() as u64,
        requests,
        "{route}: truth of every request"
    );
    for (i, (record, t)) in run.records.iter().zip(&truth).enumerate() {
        assert_eq!(record.request_id, i as u64, "{route}: records in order");
        assert_eq!(
            (t.protocol, t.route, t.stream),
            (route.protocol, route.path, true),
            "{route}: request {i} went to the route asked for, streamed"
        );
        // The message of a failure is kept in the run's first errors too.
        if let Some(err) = &record.error {
            assert!(
                run.first_errors.contains_key(err.kind.as_str()),
                "{route}: request {i}: {:?} missing from first_errors",
                err.kind
            );
        }
    }
    assert_eq!(
        run.summary.requests, requests,
        "{route}: every record is in the summary"
    );
    Trial {
        route,
        url: format!("{}{}", sim.url(), route.path),
        run,
        truth,
    }
}

impl Trial {
    /// Request `i` failed as `expect` says, keeping the content that arrived
    /// before the failure, each chunk no earlier than the simulator wrote it.
    fn assert_failed(&self, i: usize, expect: &Expect) {
        let (r, t) = (&self.run.records[i], &self.truth[i]);
        let at = format!("{} request {i} (fault {:?})", self.route, t.fault);
        assert!(!r.success, "{at}: counted as a success: {r:?}");
        let err = r
            .error
            .as_ref()
            .unwrap_or_else(|| panic!("{at}: failed without an error: {r:?}"));
        assert_eq!(err.kind, expect.kind, "{at}: {err:?}");
        assert_eq!(err.status, expect.status, "{at}: {err:?}");
        let post = format!("POST {}", self.url);
        assert!(
            err.message.contains(&post),
            "{at}: the message names `{post}`: {}",
            err.message
        );
        for part in &expect.says {
            assert!(
                err.message.contains(part.as_str()),
                "{at}: the message says `{part}`: {}",
                err.message
            );
        }
        let chunks = expect.chunks;
        assert_eq!(
            r.content_chunks, chunks,
            "{at}: the content received before the failure is kept: {r:?}"
        );
        assert_eq!(r.ttft_ms.is_some(), chunks > 0, "{at}: ttft: {r:?}");
        assert_eq!(
            r.itl_ms.len(),
            chunks.saturating_sub(1) as usize,
            "{at}: one gap between each two chunks kept: {r:?}"
        );
        assert_eq!((r.tpot_ms, r.output_tps), (None, None), "{at}: {r:?}");
        assert!(
            t.token_written_at.len() >= chunks as usize,
            "{at}: the simulator wrote {} tokens",
            t.token_written_at.len()
        );
        let arrivals = r.content_arrivals(self.run.t0);
        for (k, (arrived, written)) in arrivals.iter().zip(&t.token_written_at).enumerate() {
            assert!(
                *arrived + ROUNDING >= *written,
                "{at}: chunk {k} recorded {:?} before the simulator wrote it",
                written.saturating_duration_since(*arrived)
            );
        }
        let e2e = Duration::from_secs_f64(r.e2e_latency_ms / 1e3);
        assert!(
            e2e + ROUNDING >= expect.at_least && e2e < REQUEST_TIMEOUT,
            "{at}: e2e latency {e2e:?}, expected at least {:?}",
            expect.at_least
        );
    }

    /// Request `i` succeeded with every token of the answer.
    fn assert_succeeded(&self, i: usize) {
        let (r, t) = (&self.run.records[i], &self.truth[i]);
        let at = format!("{} request {i}", self.route);
        assert!(r.success, "{at}: failed: {:?}", r.error);
        assert_eq!(r.error, None, "{at}");
        assert_eq!(t.status, Some(200), "{at}");
        assert_eq!(r.content_chunks, TOKENS, "{at}: {r:?}");
        assert_eq!(t.token_written_at.len(), TOKENS as usize, "{at}");
        assert_eq!(r.itl_ms.len(), TOKENS as usize - 1, "{at}: {r:?}");
    }
}

/// `fault` strikes every request: each of three records is the failure
/// `fault` promises, on both routes.
fn every_request(protocol: Protocol, fault: Fault) {
    for route in routes(protocol) {
        let sim = start(route, config(route).fault(fault));
        let timeouts = match fault {
            Fault::Stall => stall_timeouts(),
            _ => Timeouts::default(),
        };
        let trial = send(&sim, route, 3, timeouts);
        for i in 0..3 {
            assert_eq!(trial.truth[i].fault, Some(fault), "{route}: request {i}");
            trial.assert_failed(i, &expected(route, fault));
        }
        assert_eq!(trial.run.summary.successes, 0, "{route}");
    }
}

/// A fault strikes some requests (as `strike` configures): the struck ones
/// fail as the fault promises, exactly those (the simulator's truth says
/// which), and the others, sent after them by the same client, succeed.
fn some_requests(
    protocol: Protocol,
    strike: fn(SimConfig) -> SimConfig,
    requests: u64,
    timeouts: Timeouts,
) {
    for route in routes(protocol) {
        let sim = start(route, strike(config(route)));
        let trial = send(&sim, route, requests, timeouts);
        for (i, t) in trial.truth.iter().enumerate() {
            match t.fault {
                Some(fault) => trial.assert_failed(i, &expected(route, fault)),
                None => trial.assert_succeeded(i),
            }
        }
        let struck = sim.truth().iter().filter(|t| t.fault.is_some()).count();
        let failed = trial.run.records.iter().filter(|r| !r.success).count();
        assert_eq!(failed, struck, "{route}: failures are the struck requests");
        assert!(
            0 < failed && failed < requests as usize,
            "{route}: both failures ({failed}) and successes occur"
        );
    }
}

/// While the model loads, every request is refused with 503 and the
/// engine's message; once loaded, the same simulator serves.
fn loading(protocol: Protocol) {
    let mut loaded = Vec::new();
    for route in routes(protocol) {
        let before = Instant::now();
        let sim = start(route, config(route).loading_for(LOADING));
        // The simulator's clock started between `before` and `after`.
        let after = Instant::now();
        let trial = send(&sim, route, 3, Timeouts::default());
        for (i, t) in trial.truth.iter().enumerate() {
            assert!(
                t.received_at < before + LOADING,
                "{route}: request {i} arrived {:?} after start, past the loading period \
                 of {LOADING:?}: this machine is too slow for this test",
                t.received_at - before
            );
            assert_eq!((t.fault, t.status), (None, Some(503)), "{route}: {i}");
            trial.assert_failed(i, &loading_refusal(route));
        }
        loaded.push((route, sim, after + LOADING));
    }
    for (route, sim, ready) in loaded {
        std::thread::sleep(ready.saturating_duration_since(Instant::now()));
        let trial = send(&sim, route, 2, Timeouts::default());
        for i in 0..2 {
            trial.assert_succeeded(i);
        }
    }
}

/// One `#[test]` per protocol for each fault: `<fault>::<protocol>`.
macro_rules! each_protocol {
    ($($(#[doc = $doc:literal])* $name:ident => $check:ident($($arg:expr),*);)*) => {$(
        $(#[doc = $doc])*
        mod $name {
            use super::*;

            #[test]
            fn openai() {
                $check(Protocol::OpenAi $(, $arg)*);
            }

            #[test]
            fn ollama() {
                $check(Protocol::Ollama $(, $arg)*);
            }

            #[test]
            fn tgi() {
                $check(Protocol::Tgi $(, $arg)*);
            }

            #[test]
            fn llamacpp() {
                $check(Protocol::LlamaCpp $(, $arg)*);
            }
        }
    )*};
}

each_protocol! {
    /// 429: `http_status` 429 with the engine's rate-limit message.
    status_429 => every_request(Fault::Status(429));
    /// 500: `http_status` 500 with the engine's message.
    status_500 => every_request(Fault::Status(500));
    /// 503: `http_status` 503 with the engine's message.
    status_503 => every_request(Fault::Status(503));
    /// A stream cut after 3 tokens: `truncated`, the 3 tokens kept.
    cut_after_3 => every_request(Fault::CutAfter(3));
    /// A stream cut before its first token: `truncated`, nothing kept.
    cut_after_0 => every_request(Fault::CutAfter(0));
    /// A bad event after 3 tokens: `malformed_stream`, the 3 tokens kept.
    malformed_after_3 => every_request(Fault::MalformedAfter(3));
    /// A bad event before the first token: `malformed_stream`.
    malformed_after_0 => every_request(Fault::MalformedAfter(0));
    /// An error event after 3 tokens: `engine_error`, the 3 tokens kept.
    error_event_after_3 => every_request(Fault::ErrorEventAfter(3));
    /// An error event before the first token: `engine_error`.
    error_event_after_0 => every_request(Fault::ErrorEventAfter(0));
    /// Headers, then silence: `timeout` at the first-token limit.
    stall => every_request(Fault::Stall);
    /// Every second request stalls; the others, after it, succeed.
    stall_every_2nd => some_requests(|c| c.fault_every(2, Fault::Stall), 3, stall_timeouts());
    /// The connection closed without an answer: `transport`, no status.
    drop => every_request(Fault::Drop);
    /// Every second request dropped, on the connection the client kept from
    /// the answer before (llamacpp opens one per request): still one
    /// `transport` record each, not retried.
    drop_every_2nd => some_requests(|c| c.fault_every(2, Fault::Drop), 5, Timeouts::default());
    /// Half the requests, seeded, answered 503: exactly those fail.
    rate_status_503 => some_requests(|c| c.fault_rate(0.5, Fault::Status(503)), 20, Timeouts::default());
    /// Half the requests, seeded, cut after 2 tokens: exactly those fail,
    /// and the client's next request after a cut one succeeds.
    rate_cut_after_2 => some_requests(|c| c.fault_rate(0.5, Fault::CutAfter(2)), 20, Timeouts::default());
    /// The model loading: `http_status` 503 with the engine's message, then
    /// served.
    loading => loading();
}
