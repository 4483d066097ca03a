//! Verdicts against the simulator, whose true delays are known: runs of an
//! unchanged engine compared with a baseline of it come out "no change" or
//! "within noise" (at least 95% of all metric comparisons); with its TTFT
//! raised 20% TTFT is "regressed" every time, lowered 20% "improved".

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use llmbench::baseline::{compare, CompareConfig, MetricChange, Verdict};
use llmbench::harness::run_once;
use llmbench::measure::Samples;
use llmbench::prelude::*;
use llmbench::sim::{Itl, SimConfig, Simulator};

/// 240 requests from 16 users against a simulator with this TTFT and 20 ms
/// between tokens (delays long enough that the machine's own jitter, a
/// fraction of a millisecond, stays well inside the 5% noise threshold).
fn run(ttft_ms: u64, seed: u64) -> Samples {
    let sim = Simulator::start(
        SimConfig::new()
            .ttft_base(Duration::from_millis(ttft_ms))
            .per_prompt_token(Duration::ZERO)
            .itl(Itl::Constant(Duration::from_millis(20)))
            .seed(seed),
    )
    .unwrap();
    let bench = Bench::new()
        .workload(Workload::prompts(["Say hello.", "Name a colour."]).max_tokens(4))
        .load(Load::users(16).requests(240))
        .seed(seed);
    let run = run_once("cmp", &bench, &Engine::openai(sim.url(), sim.model())).unwrap();
    assert_eq!(run.summary.successes, 240);
    run.samples
}

fn ttft_verdicts(changes: &[MetricChange]) -> Vec<Verdict> {
    changes
        .iter()
        .filter(|c| c.metric.starts_with("ttft"))
        .map(|c| c.verdict)
        .collect()
}

#[test]
fn unchanged_runs_show_no_change_and_a_20_percent_shift_is_always_caught() {
    let cfg = CompareConfig::default();
    let base = run(60, 1);
    let (mut quiet, mut total) = (0, 0);
    for seed in 2..8 {
        let changes = compare(&base, &run(60, seed), &cfg);
        for c in &changes {
            total += 1;
            if matches!(c.verdict, Verdict::NoChange | Verdict::WithinNoise) {
                quiet += 1;
            } else {
                eprintln!("unchanged engine, seed {seed}: {}", c.line());
            }
        }
    }
    assert!(total >= 6 * 8, "every metric compared ({total})");
    assert!(
        quiet as f64 >= 0.95 * total as f64,
        "{quiet} of {total} comparisons of an unchanged engine were quiet"
    );
    for seed in 10..13 {
        let slower = compare(&base, &run(72, seed), &cfg);
        assert_eq!(
            ttft_verdicts(&slower),
            [Verdict::Regressed; 2],
            "{slower:#?}"
        );
        let faster = compare(&base, &run(48, seed), &cfg);
        assert_eq!(
            ttft_verdicts(&faster),
            [Verdict::Improved; 2],
            "{faster:#?}"
        );
    }
}
