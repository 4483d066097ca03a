//! The fault matrix of issue 10 under real load: every row runs an open loop
//! of 2,000 requests/s with about 200 requests in flight against the
//! simulator, injects one failure, and checks what a user relies on: the
//! trial ends (with a clear message when it cannot go on), nothing panics,
//! every request sent has exactly one record (none lost, none retried), the
//! simulator saw exactly the requests the records say reached it, and each
//! failure has the outcome kind the fault calls for, naming its URL.
//!
//! Signals to the harness (SIGINT, SIGTERM) and the disk filling mid-run
//! are rows of `tests/harness` (`signals.rs`, `disk_full.rs`), which drives
//! the harness as a process.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use llmbench::engine::Timeouts;
use llmbench::harness::{run_once_to, run_once_with, TrialRun};
use llmbench::measure::{RequestErrorKind, RequestRecord};
use llmbench::prelude::*;
use llmbench::sim::{Fault, Itl, OutputLen, SimConfig, Simulator, Truth};

/// Requests sent per row.
const REQUESTS: u64 = 800;
/// Arrivals per second: with [`ANSWER`] about 200 requests are in flight.
const RATE: f64 = 2000.0;
/// Tokens per answer.
const TOKENS: u32 = 10;
/// The gap between tokens: an answer takes about 5 + 10 x 10 = 105 ms.
const ITL: Duration = Duration::from_millis(10);
/// A whole-request limit only the "never ends" row reaches.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// A simulator that serves every request at once (no queue) in about
/// 105 ms.
fn config() -> SimConfig {
    SimConfig::new()
        .ttft_base(Duration::from_millis(5))
        .per_prompt_token(Duration::ZERO)
        .itl(Itl::Constant(ITL))
        .max_concurrency(1024)
        .seed(10)
}

fn start(config: SimConfig) -> Simulator {
    Simulator::start(config).unwrap_or_else(|e| panic!("simulator: {e}"))
}

fn engine(url: &str) -> Engine {
    Engine::openai(url, "llmbench-sim")
}

fn bench(tokens: u32) -> Bench {
    Bench::new()
        .workload(Workload::prompts(["Why is the sky blue?"]).max_tokens(tokens))
        .load(Load::rate(RATE).requests(REQUESTS))
}

/// Run the row's trial against `url`; the trial must run to its end.
fn run(row: &str, url: &str, request_timeout: Duration, timeouts: Timeouts) -> TrialRun {
    run_once_with(row, &bench(TOKENS), &engine(url), request_timeout, timeouts)
        .unwrap_or_else(|e| panic!("{row}: the trial did not run: {e}"))
}

/// Records by outcome: `None` for a success.
fn outcomes(run: &TrialRun) -> BTreeMap<Option<RequestErrorKind>, u64> {
    let mut by = BTreeMap::new();
    for r in &run.records {
        *by.entry(r.error.as_ref().map(|e| e.kind)).or_insert(0) += 1;
    }
    by
}

/// What holds in every row: one record per request sent, none retried,
/// each failure naming the URL and kept in the run's first errors, the
/// summary counting them all; no more requests reached the simulator than
/// there are records, and every record with an answer came from it.
fn accounted(row: &str, run: &TrialRun, url: &str, seen: u64) {
    let records = run.records.len() as u64;
    assert_eq!(records, REQUESTS, "{row}: one record per request sent");
    let mut ids: Vec<u64> = run.records.iter().map(|r| r.request_id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(
        ids.len() as u64,
        REQUESTS,
        "{row}: no request recorded twice"
    );
    assert_eq!(
        run.summary.requests, REQUESTS,
        "{row}: the summary counts all"
    );
    assert!(
        seen <= records,
        "{row}: the simulator saw {seen} requests, more than the {records} records"
    );
    let answered = run
        .records
        .iter()
        .filter(|r| r.success || r.error.as_ref().is_some_and(|e| e.status.is_some()))
        .count() as u64;
    assert!(
        answered <= seen,
        "{row}: {answered} records have an answer, the simulator saw only {seen}"
    );
    let post = format!("POST {url}");
    for r in &run.records {
        if let Some(err) = &r.error {
            assert!(
                err.message.contains(&post),
                "{row}: the message names `{post}`: {}",
                err.message
            );
            assert!(
                run.first_errors.contains_key(err.kind.as_str()),
                "{row}: {:?} missing from first_errors",
                err.kind
            );
        }
    }
}

/// Responses carry the simulator's request id: every success is one
/// request the simulator served, each exactly once.
fn successes_match_truth(row: &str, records: &[RequestRecord], truth: &[Truth]) {
    let mut ids: Vec<&str> = records
        .iter()
        .filter(|r| r.success)
        .map(|r| {
            r.response_id
                .as_deref()
                .unwrap_or_else(|| panic!("{row}: a success without the engine's id: {r:?}"))
        })
        .collect();
    let n = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), n, "{row}: a response recorded twice");
    for id in ids {
        assert!(
            truth.iter().any(|t| t.id == id),
            "{row}: `{id}` is no request the simulator saw"
        );
    }
}

/// A fault striking about half the requests, seeded: every request reached
/// the simulator, exactly the struck ones failed, as `kind` with `status`
/// and a message saying `says`, and the others succeeded.
fn half_struck(row: &str, fault: Fault, kind: RequestErrorKind, status: Option<u16>, says: &str) {
    half_struck_with(row, fault, kind, status, says, Timeouts::default());
}

fn half_struck_with(
    row: &str,
    fault: Fault,
    kind: RequestErrorKind,
    status: Option<u16>,
    says: &str,
    timeouts: Timeouts,
) {
    let sim = start(config().fault_rate(0.5, fault));
    let run = run(row, &sim.url(), REQUEST_TIMEOUT, timeouts);
    let url = format!("{}/v1/chat/completions", sim.url());
    accounted(row, &run, &url, sim.requests_seen());
    assert_eq!(
        sim.requests_seen(),
        REQUESTS,
        "{row}: every request reached it"
    );
    let truth = sim.truth();
    let struck = truth.iter().filter(|t| t.fault.is_some()).count() as u64;
    assert!(
        struck > REQUESTS / 4 && struck < REQUESTS * 3 / 4,
        "{row}: about half struck: {struck}"
    );
    let by = outcomes(&run);
    assert_eq!(by.get(&Some(kind)), Some(&struck), "{row}: {by:?}");
    assert_eq!(by.get(&None), Some(&(REQUESTS - struck)), "{row}: {by:?}");
    for r in run.records.iter().filter(|r| !r.success) {
        let err = r.error.as_ref().expect("a failure has an error");
        assert_eq!(err.status, status, "{row}: {err:?}");
        assert!(err.message.contains(says), "{row}: says `{says}`: {err:?}");
    }
    successes_match_truth(row, &run.records, &truth);
}

#[test]
fn storm_of_429() {
    half_struck(
        "429 storm",
        Fault::Status(429),
        RequestErrorKind::HttpStatus,
        Some(429),
        "answered 429",
    );
}

#[test]
fn storm_of_503() {
    half_struck(
        "503 storm",
        Fault::Status(503),
        RequestErrorKind::HttpStatus,
        Some(503),
        "answered 503",
    );
}

#[test]
fn connection_reset_mid_stream() {
    half_struck(
        "reset mid-stream",
        Fault::CutAfter(3),
        RequestErrorKind::Truncated,
        Some(200),
        "",
    );
}

#[test]
fn malformed_chunk() {
    half_struck(
        "malformed chunk",
        Fault::MalformedAfter(3),
        RequestErrorKind::MalformedStream,
        Some(200),
        "{not json",
    );
}

#[test]
fn error_event_inside_a_200_stream() {
    half_struck(
        "error event",
        Fault::ErrorEventAfter(3),
        RequestErrorKind::EngineError,
        Some(200),
        "simulated engine failure",
    );
}

#[test]
fn stalled_before_the_first_token() {
    half_struck_with(
        "stalled (first token)",
        Fault::Stall,
        RequestErrorKind::Timeout,
        Some(200),
        "first-token",
        Timeouts {
            first_token: Some(Duration::from_millis(300)),
            ..Timeouts::default()
        },
    );
}

/// Tokens stop coming after the first: every request ends at the idle
/// timeout, keeping its one token.
#[test]
fn stalled_mid_stream() {
    let row = "stalled (idle)";
    let sim = start(config().itl(Itl::Constant(Duration::from_secs(30))));
    let timeouts = Timeouts {
        idle: Some(Duration::from_millis(200)),
        ..Timeouts::default()
    };
    let run = run(row, &sim.url(), REQUEST_TIMEOUT, timeouts);
    let url = format!("{}/v1/chat/completions", sim.url());
    accounted(row, &run, &url, sim.requests_seen());
    assert_eq!(sim.requests_seen(), REQUESTS, "{row}");
    for r in &run.records {
        let err = r.error.as_ref().expect("every request stalls");
        assert_eq!(err.kind, RequestErrorKind::Timeout, "{row}: {err:?}");
        assert!(err.message.contains("idle"), "{row}: {err:?}");
        assert_eq!(
            r.content_chunks, 1,
            "{row}: the token before the stall kept"
        );
    }
}

/// A stream that never ends: every request ends at the whole-request
/// timeout, with the tokens it got.
#[test]
fn stream_that_never_ends() {
    let row = "never ends";
    let sim = start(config().output_tokens(OutputLen::Fixed(1_000_000)));
    let limit = Duration::from_millis(300);
    let run = run_once_with(
        row,
        &bench(1_000_000),
        &engine(&sim.url()),
        limit,
        Timeouts::default(),
    )
    .unwrap_or_else(|e| panic!("{row}: the trial did not run: {e}"));
    let url = format!("{}/v1/chat/completions", sim.url());
    accounted(row, &run, &url, sim.requests_seen());
    assert_eq!(sim.requests_seen(), REQUESTS, "{row}");
    for r in &run.records {
        let err = r.error.as_ref().expect("no request ends by itself");
        assert_eq!(err.kind, RequestErrorKind::Timeout, "{row}: {err:?}");
        let arrived = format!("({} content chunks arrived)", r.content_chunks);
        assert!(err.message.contains(&arrived), "{row}: {err:?} vs {r:?}");
        assert!(
            r.e2e_latency_ms >= limit.as_secs_f64() * 1e3 - 1.0,
            "{row}: ended at {} ms, before the limit",
            r.e2e_latency_ms
        );
    }
}

/// The engine still loading when the load starts: the requests it refuses
/// are 503 records with its message, the ones after it loaded succeed.
#[test]
fn slow_start_while_loading() {
    let row = "slow start";
    // Half the 400 ms of arrivals fall in the loading period.
    let sim = start(config().loading_for(Duration::from_millis(200)));
    let run = run(row, &sim.url(), REQUEST_TIMEOUT, Timeouts::default());
    let url = format!("{}/v1/chat/completions", sim.url());
    accounted(row, &run, &url, sim.requests_seen());
    assert_eq!(sim.requests_seen(), REQUESTS, "{row}");
    let truth = sim.truth();
    let refused = truth.iter().filter(|t| t.status == Some(503)).count() as u64;
    assert!(
        0 < refused && refused < REQUESTS,
        "{row}: {refused} refused"
    );
    let by = outcomes(&run);
    assert_eq!(
        by.get(&Some(RequestErrorKind::HttpStatus)),
        Some(&refused),
        "{row}: {by:?}"
    );
    assert_eq!(by.get(&None), Some(&(REQUESTS - refused)), "{row}: {by:?}");
    for r in run.records.iter().filter(|r| !r.success) {
        let err = r.error.as_ref().expect("a failure has an error");
        assert_eq!(err.status, Some(503), "{row}: {err:?}");
        assert!(err.message.contains("Loading model"), "{row}: {err:?}");
    }
    successes_match_truth(row, &run.records, &truth);
}

/// Nothing listens at the URL: every request is a `connect` record naming
/// it, and the trial still ends with all of them.
#[test]
fn connection_refused_from_the_start() {
    let row = "refused";
    let sim = start(config());
    let url = sim.url();
    sim.shutdown();
    let run = run(row, &url, REQUEST_TIMEOUT, Timeouts::default());
    accounted(row, &run, &format!("{url}/v1/chat/completions"), 0);
    let by = outcomes(&run);
    assert_eq!(
        by.get(&Some(RequestErrorKind::Connect)),
        Some(&REQUESTS),
        "{row}: {by:?}"
    );
}

/// Wait on another thread until `sim` has seen `n` requests (or 10 s
/// passed), then run `then`; the thread returns when `then` began and
/// ended, and its value.
fn when_seen<T: Send + 'static>(
    sim: &Arc<Simulator>,
    n: u64,
    then: impl FnOnce(&Simulator) -> T + Send + 'static,
) -> std::thread::JoinHandle<(Instant, Instant, T)> {
    let sim = Arc::clone(sim);
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(10);
        while sim.requests_seen() < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        let began = Instant::now();
        let value = then(&sim);
        (began, Instant::now(), value)
    })
}

/// The engine dies with ~200 requests in flight: those end as failures
/// (cut or transport), the ones sent after as `connect`; every request has
/// its record, and the trial ends.
#[test]
fn engine_killed_mid_run() {
    let row = "engine killed";
    let sim = Arc::new(start(config()));
    let url = sim.url();
    let killer = when_seen(&sim, 400, |sim| {
        sim.stop();
        sim.wait();
    });
    let run = run(row, &url, REQUEST_TIMEOUT, Timeouts::default());
    let _ = killer.join().expect("the killer thread ends");
    let seen = sim.requests_seen();
    assert!((400..REQUESTS).contains(&seen), "{row}: seen {seen}");
    accounted(row, &run, &format!("{url}/v1/chat/completions"), seen);
    let by = outcomes(&run);
    let ok = by.get(&None).copied().unwrap_or(0);
    assert!(
        0 < ok && ok < seen,
        "{row}: {ok} successes of {seen}: {by:?}"
    );
    for (kind, _) in by.iter().filter(|(k, _)| k.is_some()) {
        assert!(
            matches!(
                kind,
                Some(
                    RequestErrorKind::Connect
                        | RequestErrorKind::Transport
                        | RequestErrorKind::Truncated
                )
            ),
            "{row}: {by:?}"
        );
    }
    let connect = by
        .get(&Some(RequestErrorKind::Connect))
        .copied()
        .unwrap_or(0);
    assert!(connect > 0, "{row}: requests after the death: {by:?}");
    // A request the simulator saw cannot fail to connect.
    assert!(connect <= REQUESTS - seen, "{row}: {by:?}, seen {seen}");
    successes_match_truth(row, &run.records, &sim.truth());
}

/// The engine dies and comes back on the same port: requests in between
/// fail, requests after succeed again, each has its record.
#[test]
fn engine_restarted_mid_run() {
    let row = "engine restarted";
    let first = Arc::new(start(config()));
    let addr = first.addr();
    let url = first.url();
    let restarter = when_seen(&first, 300, move |sim| {
        sim.stop();
        sim.wait();
        Simulator::start_on(config(), addr)
            .unwrap_or_else(|e| panic!("restarting the simulator on {addr}: {e}"))
    });
    let run = run(row, &url, REQUEST_TIMEOUT, Timeouts::default());
    let (_, restarted_at, second) = restarter.join().expect("the restart thread ends");
    let seen = first.requests_seen() + second.requests_seen();
    accounted(row, &run, &format!("{url}/v1/chat/completions"), seen);
    assert!(
        second.requests_seen() > 0,
        "{row}: none reached the new engine"
    );
    let by = outcomes(&run);
    assert!(by.len() > 1, "{row}: some requests failed: {by:?}");
    // Both engines count from 1, so their ids repeat: each success is a
    // request one of them served to its end, and no more succeeded than
    // they served.
    let (a, b) = (first.truth(), second.truth());
    let served = |truth: &[Truth]| {
        truth
            .iter()
            .filter(|t| t.finished_at.is_some() && t.token_written_at.len() == TOKENS as usize)
            .count() as u64
    };
    let ok = by.get(&None).copied().unwrap_or(0);
    assert!(
        ok <= served(&a) + served(&b),
        "{row}: {ok} successes, the engines served {} + {}",
        served(&a),
        served(&b)
    );
    assert!(served(&b) > 0, "{row}: the new engine served none");
    for r in run.records.iter().filter(|r| r.success) {
        let id = r.response_id.as_deref().unwrap_or_default();
        let times = a.iter().chain(&b).filter(|t| t.id == id).count();
        assert!(times > 0, "{row}: `{id}` is no request either engine saw");
    }
    let late = run
        .records
        .iter()
        .filter(|r| r.success && run.t0 + Duration::from_secs_f64(r.sent_ms / 1e3) > restarted_at)
        .count();
    assert!(late > 0, "{row}: no success sent after the restart");
}

/// The disk is full when `requests.jsonl` is written (`/dev/full` answers
/// every write with ENOSPC): the run stops early with an error naming the
/// file and the cause, instead of measuring what it cannot keep. (The disk
/// filling mid-run, with records already kept, is `tests/harness/disk_full.rs`.)
#[cfg(target_os = "linux")]
#[test]
fn disk_full_while_writing_requests_jsonl() {
    let row = "disk full";
    let sim = start(config());
    let path = std::path::Path::new("/dev/full");
    let err = run_once_to(
        row,
        &bench(TOKENS),
        &engine(&sim.url()),
        path,
        REQUEST_TIMEOUT,
        Timeouts::default(),
    )
    .expect_err("a run that cannot write its records fails");
    let message = format!("{err}");
    let chain = format!("{err:?}");
    assert!(
        message.contains("/dev/full"),
        "{row}: names the file: {message}"
    );
    assert!(
        message.contains("stopped after") && message.contains(", 0 of them recorded"),
        "{row}: says it stopped, and kept nothing: {message}"
    );
    assert!(
        message.contains("No space left") || chain.contains("No space left"),
        "{row}: says why: {message} / {chain}"
    );
    assert!(
        sim.requests_seen() < REQUESTS,
        "{row}: the load stopped early: {} of {REQUESTS} sent",
        sim.requests_seen()
    );
}
