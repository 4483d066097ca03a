//! SLOs and goodput against the simulator, whose delays are known and can
//! only be exceeded, never undercut: a limit far above its time to first
//! token holds, one below it misses (deterministically), and goodput is the
//! requests meeting every threshold over the run's duration, recounted here
//! from the records.

use std::time::Duration;

use llmbench::harness::{run_once, TrialRun};
use llmbench::measure::RequestRecord;
use llmbench::prelude::*;
use llmbench::sim::{Itl, SimConfig, Simulator};

/// The simulator's time to first token, before any per-prompt-token cost.
const TTFT_MS: u64 = 30;
/// The simulator's gap between tokens.
const ITL_MS: u64 = 5;
/// Tokens per answer: the workload's budget, which the simulator fills.
const TOKENS: u32 = 8;

fn sim(per_prompt_token: Duration) -> Simulator {
    Simulator::start(
        SimConfig::new()
            .ttft_base(Duration::from_millis(TTFT_MS))
            .per_prompt_token(per_prompt_token)
            .itl(Itl::Constant(Duration::from_millis(ITL_MS)))
            .seed(3),
    )
    .expect("the simulator starts")
}

fn run(sim: &Simulator, prompts: &[&str], slo: Slo) -> TrialRun {
    let bench = Bench::new()
        .workload(
            Workload::prompts(prompts.iter().copied())
                .completion()
                .max_tokens(TOKENS),
        )
        .load(Load::users(4).requests(12))
        .slo(slo);
    run_once("slo", &bench, &Engine::openai(sim.url(), sim.model())).expect("the trial runs")
}

/// First send to last completion, from the records alone (latencies count
/// from the send in this closed loop).
fn duration_s(records: &[RequestRecord]) -> f64 {
    assert!(records.iter().all(|r| !r.latency_from_schedule));
    let first = records
        .iter()
        .map(|r| r.sent_ms)
        .fold(f64::INFINITY, f64::min);
    let last = records
        .iter()
        .map(|r| r.sent_ms + r.e2e_latency_ms)
        .fold(f64::NEG_INFINITY, f64::max);
    (last - first) / 1e3
}

#[test]
fn limits_far_above_the_simulators_delays_hold_and_every_request_is_good() {
    let sim = sim(Duration::ZERO);
    let slo = Slo::ttft_p95_ms(10_000)
        .itl_p99_ms(10_000)
        .tpot_p99_ms(10_000)
        .e2e_p99_9_ms(20_000);
    let run = run(&sim, &["Say hello."], slo);
    let s = &run.summary;
    assert_eq!(s.successes, 12);
    assert!(s.slo_misses().is_empty(), "{:?}", s.slo_misses());
    assert_eq!(s.slos.len(), 4);
    assert!(s.slos.iter().all(|c| c.passed && c.missed_by_ms.is_none()));
    assert_eq!(s.slos[0].observed_ms, s.ttft.as_ref().map(|d| d.p95));
    assert!(run.records.iter().all(|r| r.slo_met == Some(true)));
    assert_eq!(s.good_requests, Some(12));
    assert_eq!(s.slo_attainment, Some(1.0));
    assert_eq!(s.goodput, Some(s.request_throughput));
}

#[test]
fn a_limit_below_the_simulators_first_token_misses_with_its_message() {
    let sim = sim(Duration::ZERO);
    let run = run(
        &sim,
        &["Say hello."],
        Slo::ttft_p50_ms(TTFT_MS / 2).e2e_p99_ms(20_000),
    );
    let s = &run.summary;
    assert_eq!(s.successes, 12, "the requests themselves succeed");
    let observed = s.ttft.as_ref().expect("ttft measured").p50;
    assert!(observed >= TTFT_MS as f64, "the simulator is never early");
    let misses = s.slo_misses();
    assert_eq!(
        misses.len(),
        1,
        "only the ttft threshold misses: {misses:?}"
    );
    // `slo ttft p50 <= 15 ms missed: 31.25 ms (+108.3%)`
    let rest = misses[0]
        .strip_prefix("slo ttft p50 <= 15 ms missed: ")
        .unwrap_or_else(|| panic!("{}", misses[0]));
    let (value, pct) = rest.split_once(" ms (").expect("value, then percentage");
    let value: f64 = value.parse().expect("a number");
    assert!((value - observed).abs() <= 0.05, "{value} vs {observed}");
    let want = (observed - 15.0) / 15.0 * 100.0;
    assert_eq!(pct, format!("+{want:.1}%)"));
    let ttft = &s.slos[0];
    assert!(!ttft.passed);
    assert_eq!((ttft.limit_ms, ttft.observed_ms), (15.0, Some(observed)));
    assert!(ttft.missed_by_ms.expect("missed") >= 15.0);
    assert!(s.slos[1].passed, "e2e p99 <= 20 s holds");
    assert!(run.records.iter().all(|r| r.slo_met == Some(false)));
    assert_eq!((s.good_requests, s.goodput), (Some(0), Some(0.0)));
    assert_eq!(s.slo_attainment, Some(0.0));
}

#[test]
fn goodput_is_the_requests_meeting_every_threshold_over_the_duration() {
    // 1 ms per prompt token: the long prompt's first token comes after at
    // least 330 ms, the short one's after about 32 ms.
    const LIMIT_MS: f64 = 200.0;
    let long = "word ".repeat(300);
    let sim = sim(Duration::from_millis(1));
    let run = run(
        &sim,
        &["Hi there.", &long],
        Slo::ttft_p50_ms(LIMIT_MS as u64).tpot_p99_ms(1_000),
    );
    let recs = &run.records;
    assert_eq!(recs.len(), 12);
    assert!(recs.iter().all(|r| r.success));
    let is_long = |r: &RequestRecord| r.prompt_tokens.expect("usage") >= 300;
    let longs = recs.iter().filter(|r| is_long(r)).count();
    assert!(
        longs > 0 && longs < 12,
        "both prompts were sent: {longs} long"
    );
    for r in recs {
        let meets = r.ttft_ms.expect("ttft") <= LIMIT_MS && r.tpot_ms.expect("tpot") <= 1_000.0;
        assert_eq!(r.slo_met, Some(meets), "{r:?}");
        if is_long(r) {
            assert_eq!(r.slo_met, Some(false), "the simulator is never early");
        }
    }
    let good = recs.iter().filter(|r| r.slo_met == Some(true)).count();
    assert!(good > 0, "short prompts have 170 ms to spare");
    let s = &run.summary;
    assert_eq!(s.good_requests, Some(good as u64));
    let goodput = s.goodput.expect("stated SLOs give a goodput");
    let want = good as f64 / duration_s(recs);
    assert!((goodput - want).abs() < 1e-9 * want, "{goodput} vs {want}");
    assert!((s.duration_s - duration_s(recs)).abs() < 1e-9);
    assert_eq!(s.slo_attainment, Some(good as f64 / 12.0));
}

#[test]
fn without_slos_there_is_no_goodput_and_no_judgement() {
    let sim = sim(Duration::ZERO);
    let bench = Bench::new()
        .workload(Workload::prompts(["Hi."]).max_tokens(4))
        .load(Load::users(1).requests(2));
    let run = run_once("plain", &bench, &Engine::openai(sim.url(), sim.model()))
        .unwrap_or_else(|e| panic!("{}", e.chain()));
    assert!(run.records.iter().all(|r| r.slo_met.is_none()));
    let s = &run.summary;
    assert_eq!(
        (s.goodput, s.good_requests, s.slo_attainment),
        (None, None, None)
    );
    assert!(s.slos.is_empty());
    let json = serde_json::to_value(s).expect("serializes");
    assert!(json["goodput"].is_null() && json["slos"] == serde_json::json!([]));
}

#[test]
fn bad_thresholds_are_rejected_naming_the_field() {
    let bench = Bench::new()
        .workload(Workload::prompts(["Hi."]))
        .load(Load::users(1).requests(1))
        .slo(Slo::ttft_p95_ms(500).and(Slo::new(SloMetric::Itl, 120.0, Duration::ZERO)));
    let err = bench
        .validate()
        .expect_err("percentile 120 is out of range");
    assert!(
        err.to_string()
            .contains("slo.percentile: must be in (0, 100] (got 120)"),
        "{err}"
    );
}
