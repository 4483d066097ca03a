//! The open loop against a simulator slowed on purpose: requests keep
//! arriving on schedule while the engine serves one at a time, so the queue
//! grows, and the latencies say so (they count from the scheduled send: no
//! coordinated omission). A closed loop on the same engine hides it.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::Duration;

use llmbench::harness::run_once;
use llmbench::prelude::*;
use llmbench::sim::{Itl, SimConfig, Simulator, Truth};

/// One request at a time, each about 30 ms of service.
fn slow_engine() -> Simulator {
    Simulator::start(
        SimConfig::new()
            .ttft_base(Duration::from_millis(20))
            .per_prompt_token(Duration::ZERO)
            .itl(Itl::Constant(Duration::from_millis(5)))
            .max_concurrency(1),
    )
    .unwrap()
}

fn workload() -> Workload {
    Workload::prompts(["hi"]).max_tokens(3)
}

#[test]
fn open_loop_latency_includes_the_queue() {
    let sim = slow_engine();
    // 100 requests/s against an engine that serves about 33/s.
    let bench = Bench::new()
        .workload(workload())
        .load(Load::rate(100.0).requests(30));
    let run = run_once("open", &bench, &Engine::openai(sim.url(), sim.model())).unwrap();
    assert_eq!(run.records.len(), 30);
    let truth: HashMap<String, Truth> =
        sim.truth().into_iter().map(|t| (t.id.clone(), t)).collect();
    let mut worst_queue = Duration::ZERO;
    for r in &run.records {
        assert!(r.success, "{:?}", r.error);
        assert!(r.latency_from_schedule);
        assert_eq!(
            r.scheduled_ms,
            r.request_id as f64 * 10.0,
            "arrivals every 10 ms"
        );
        let t = &truth[r.response_id.as_ref().unwrap()];
        let queued = t.started_at.unwrap() - t.received_at;
        worst_queue = worst_queue.max(queued);
        // Latency from the scheduled send covers the engine's queue and its
        // whole service, however late the client sent.
        let scheduled = run.t0 + Duration::from_secs_f64(r.scheduled_ms / 1e3);
        let finished = t.finished_at.unwrap();
        let from_schedule =
            Duration::from_secs_f64(r.e2e_latency_ms / 1e3) + Duration::from_micros(1);
        assert!(
            from_schedule >= finished - scheduled,
            "request {}",
            r.request_id
        );
    }
    // 30 requests 10 ms apart, 30 ms each: the last waits about 600 ms.
    assert!(
        worst_queue >= Duration::from_millis(400),
        "queue {worst_queue:?}"
    );
    let e2e = run.summary.e2e_latency.unwrap();
    assert!(e2e.max >= 400.0, "the queue shows in e2e: {e2e:?}");
}

#[test]
fn a_closed_loop_on_the_same_engine_never_sees_the_queue() {
    let sim = slow_engine();
    let bench = Bench::new()
        .workload(workload())
        .load(Load::users(1).requests(10));
    let run = run_once("closed", &bench, &Engine::openai(sim.url(), sim.model())).unwrap();
    let e2e = run.summary.e2e_latency.unwrap();
    assert!(e2e.max < 200.0, "one user never queues: {e2e:?}");
    assert!(run.records.iter().all(|r| !r.latency_from_schedule));
}

#[test]
fn arrivals_over_the_cap_are_recorded_as_dropped() {
    let sim = slow_engine();
    let bench = Bench::new()
        .workload(workload())
        .load(Load::rate(200.0).max_in_flight(2).requests(20));
    let run = run_once("cap", &bench, &Engine::openai(sim.url(), sim.model())).unwrap();
    assert_eq!(run.records.len(), 20, "every arrival is a record");
    let dropped = run
        .summary
        .errors_by_kind
        .get("dropped")
        .copied()
        .unwrap_or(0);
    assert!(dropped > 0, "{:?}", run.summary.errors_by_kind);
    assert_eq!(
        sim.requests_seen() + dropped,
        20,
        "dropped arrivals were never sent"
    );
}

#[test]
fn a_warm_up_is_kept_in_the_records_and_left_out_of_the_summary() {
    let sim = slow_engine();
    let bench = Bench::new().workload(workload()).load(
        Load::rate(20.0)
            .for_secs(1)
            .warmup_for(Duration::from_millis(500)),
    );
    let run = run_once("warm", &bench, &Engine::openai(sim.url(), sim.model())).unwrap();
    let warm = run.records.iter().filter(|r| r.warmup).count();
    assert_eq!(warm, 10, "arrivals at 0, 50, ..., 450 ms");
    assert_eq!(run.records.len(), 20);
    assert_eq!(
        run.summary.requests, 10,
        "the summary counts what came after"
    );
}

#[test]
fn a_user_ramp_adds_users_over_time() {
    let sim = Simulator::start(
        SimConfig::new()
            .ttft_base(Duration::from_millis(10))
            .per_prompt_token(Duration::ZERO)
            .itl(Itl::Constant(Duration::from_millis(5)))
            .max_concurrency(16),
    )
    .unwrap();
    // 1 user at 0 ms, one more every 100 ms up to 4 at 300 ms, until 700 ms.
    let load = Load::users(1)
        .ramp_to(4, Duration::from_millis(400))
        .for_duration(Duration::from_millis(700));
    let bench = Bench::new().workload(workload()).load(load);
    let run = run_once("ramp", &bench, &Engine::openai(sim.url(), sim.model())).unwrap();
    let mut users: Vec<u32> = run.records.iter().map(|r| r.user).collect();
    users.sort_unstable();
    users.dedup();
    assert_eq!(users, [0, 1, 2, 3], "four users in the end");
    for r in &run.records {
        // A user that joins at k x 100 ms sends nothing before then.
        assert!(
            r.scheduled_ms >= f64::from(r.user) * 100.0,
            "user {} at {} ms",
            r.user,
            r.scheduled_ms
        );
    }
}

#[test]
fn a_user_spike_adds_users_and_retires_them() {
    let sim = Simulator::start(
        SimConfig::new()
            .ttft_base(Duration::from_millis(10))
            .per_prompt_token(Duration::ZERO)
            .itl(Itl::Constant(Duration::from_millis(5)))
            .max_concurrency(16),
    )
    .unwrap();
    let ms = Duration::from_millis;
    let load = Load::users(1)
        .spike_to(3, ms(200), ms(200))
        .for_duration(ms(800));
    let bench = Bench::new().workload(workload()).load(load);
    let run = run_once("spike", &bench, &Engine::openai(sim.url(), sim.model())).unwrap();
    let by = |u: u32| run.records.iter().filter(|r| r.user == u).count();
    assert!(by(1) > 0 && by(2) > 0, "the spike's users sent requests");
    assert!(
        by(0) > by(1),
        "the base user ran for the whole run, the spike's only during it"
    );
    for r in run.records.iter().filter(|r| r.user > 0) {
        assert!(
            r.scheduled_ms >= 200.0,
            "spike users start at 200 ms: {} ms",
            r.scheduled_ms
        );
    }
}
