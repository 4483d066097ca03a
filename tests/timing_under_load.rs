//! The client's timing proven against the simulator's ground truth under
//! load, on the one monotonic clock both share: no token is seen before it
//! was written, and write-to-arrival delays stay small at 100 concurrent
//! streams. Alone in its own test binary so no other test shares the cores.

use std::collections::HashMap;
use std::time::Duration;

use llmbench::harness::run_once;
use llmbench::prelude::*;
use llmbench::sim::{Itl, SimConfig, Simulator, Truth};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

#[test]
fn every_token_arrives_after_it_was_written_and_soon_after() {
    let sim = Simulator::start(
        SimConfig::new()
            .ttft_base(Duration::from_millis(30))
            .itl(Itl::Uniform {
                min: Duration::from_millis(5),
                max: Duration::from_millis(15),
            })
            .max_concurrency(128)
            .seed(11),
    )
    .unwrap();
    let bench = Bench::new()
        .workload(
            Workload::prompts(["Tell me about the sea.", "Describe a forest at dawn."])
                .max_tokens(40),
        )
        .load(Load::users(100).requests(100));
    let run = run_once("timing", &bench, &Engine::openai(sim.url(), sim.model())).unwrap();
    assert_eq!(run.records.len(), 100);
    let truth: HashMap<String, Truth> =
        sim.truth().into_iter().map(|t| (t.id.clone(), t)).collect();
    assert_eq!(truth.len(), 100);

    let mut delays = Vec::new();
    for r in &run.records {
        assert!(r.success, "{:?}", r.error);
        let id = r.response_id.as_ref().expect("the simulator sends an id");
        let t = &truth[id];
        let arrivals = r.content_arrivals(run.t0);
        assert_eq!(
            arrivals.len(),
            t.token_written_at.len(),
            "one content chunk per token"
        );
        assert_eq!(
            r.output_tokens,
            Some(t.output_tokens),
            "usage from the engine"
        );
        assert!(!r.output_tokens_estimated);
        for (k, (&seen, &written)) in arrivals.iter().zip(&t.token_written_at).enumerate() {
            // The offsets are float milliseconds; allow a microsecond of rounding.
            assert!(
                seen + Duration::from_micros(1) >= written,
                "request {id} token {k} seen {:?} before it was written",
                written - seen
            );
            delays.push(seen.saturating_duration_since(written));
        }
    }
    let m = median(delays.clone());
    let p99 = {
        let mut d = delays;
        d.sort_unstable();
        d[d.len() * 99 / 100]
    };
    eprintln!("write-to-arrival delay at 100 streams: median {m:?}, p99 {p99:?}");
    assert!(
        m < Duration::from_millis(2),
        "median write-to-arrival delay {m:?}"
    );
}
