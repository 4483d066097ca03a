//! A spike against a simulator that can serve only so much: the phases of
//! the run (before, during and after the spike) get the requests scheduled
//! in them, the spike's queue shows in its TTFT, and the recovery after it
//! is measured against the TTFT before it.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use llmbench::harness::run_once;
use llmbench::prelude::*;
use llmbench::sim::{Itl, SimConfig, Simulator};

#[test]
fn a_spike_has_before_during_and_after_and_the_engine_recovers() {
    // Two slots, ~30 ms a request: about 66 requests/s at most.
    let sim = Simulator::start(
        SimConfig::new()
            .ttft_base(Duration::from_millis(20))
            .per_prompt_token(Duration::ZERO)
            .itl(Itl::Constant(Duration::from_millis(5)))
            .max_concurrency(2),
    )
    .unwrap();
    let ms = Duration::from_millis;
    // 20 requests/s, then 150/s from 1 s to 1.5 s (a backlog of about 40
    // requests, drained at about 46/s), then 20/s again until 3 s.
    let bench = Bench::new()
        .workload(Workload::prompts(["hi"]).max_tokens(3))
        .load(
            Load::rate(20.0)
                .spike_to(150.0, ms(1000), ms(500))
                .for_duration(ms(3000)),
        );
    let run = run_once("spike", &bench, &Engine::openai(sim.url(), sim.model())).unwrap();
    let s = &run.summary;
    let names: Vec<&str> = s.phases.iter().map(|p| p.phase.as_str()).collect();
    assert_eq!(names, ["before", "spike", "after"]);
    // Constant arrivals: 20 in the first second, 75 in the spike, 30 after.
    let counts: Vec<u64> = s.phases.iter().map(|p| p.summary.requests).collect();
    assert_eq!(counts, [20, 75, 30]);
    assert_eq!(counts.iter().sum::<u64>(), s.requests);
    for p in &s.phases {
        assert_eq!(p.summary.successes, p.summary.requests, "{}", p.phase);
    }
    let p50 = |i: usize| s.phases[i].summary.ttft.as_ref().unwrap().p50;
    assert!(
        p50(1) > 2.0 * p50(0),
        "the spike queues: ttft p50 before {} ms, during {} ms",
        p50(0),
        p50(1)
    );
    let rec = s.recovery.as_ref().unwrap();
    assert_eq!(rec.baseline_ttft_p50_ms, p50(0));
    let back = rec.recovery_s.expect("the backlog drains within the run");
    assert!(back > 0.0, "the backlog outlives the spike: {rec:?}");
    assert!(back < 1.5, "{rec:?}");
    assert!(rec.worst_ttft_p50_ms.unwrap() > 2.0 * rec.baseline_ttft_p50_ms);
}
