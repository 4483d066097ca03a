//! The use-case figures against the simulator, whose true delays are known:
//! time to first sentence (its answers end a sentence every
//! `SENTENCE_TOKENS` tokens), the TTFT-per-prompt-length slope (it costs a
//! fixed time per prompt token), generation drift (its gaps are steady)
//! and prompt processing labelled as the client's TTFT.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use llmbench::harness::run_once;
use llmbench::measure::{LineFit, TimingSource, LONG_GENERATION_GAPS};
use llmbench::prelude::*;
use llmbench::sim::{Itl, SimConfig, Simulator, SENTENCE_TOKENS};
use llmbench::workload::Lengths;

/// Microseconds of prefill per prompt token: 20 ms per 1K tokens.
const PER_PROMPT_TOKEN_US: u64 = 20;
/// Output tokens per answer: enough gaps to judge drift.
const OUTPUT: u32 = 48;

#[test]
fn use_case_figures_match_the_simulators_true_delays() {
    let sim = Simulator::start(
        SimConfig::new()
            .ttft_base(Duration::from_millis(5))
            .per_prompt_token(Duration::from_micros(PER_PROMPT_TOKEN_US))
            .itl(Itl::Constant(Duration::from_millis(2))),
    )
    .unwrap();
    let engine = Engine::openai(sim.url(), sim.model());
    let bench = Bench::new()
        .workload(
            Workload::prompts(["Summarise the text above."])
                .prompt_tokens(Lengths::uniform(300, 3000))
                .output_tokens(OUTPUT),
        )
        // One user: no queueing, so TTFT is prefill plus the network.
        .load(Load::users(1).requests(14))
        .seed(7);
    let run = run_once("use case", &bench, &engine).unwrap();
    let truth = sim.truth();
    assert_eq!(run.records.len(), 14);
    // Plus the probe that measured the chat template's tokens.
    assert_eq!(truth.len(), 15);

    // The fit of the simulator's own first-token times, and of ours.
    let mut true_fit = LineFit::default();
    let mut true_ttfs_excess = Vec::new();
    let mut true_drift = Vec::new();
    for r in &run.records {
        assert!(r.success, "{:?}", r.error);
        let t = truth
            .iter()
            .find(|t| Some(&t.id) == r.response_id.as_ref())
            .unwrap();
        let written = &t.token_written_at;
        assert_eq!(written.len(), OUTPUT as usize);
        let ttft = r.ttft_ms.unwrap();
        let ttfs = r.ttfs_ms.unwrap();
        // The sentence ends with the twelfth token: TTFT plus eleven gaps.
        let gaps = SENTENCE_TOKENS as usize - 1;
        let by_gaps: f64 = r.itl_ms[..gaps].iter().sum();
        assert!(
            (ttfs - ttft - by_gaps).abs() < 1e-6,
            "{ttfs} vs {ttft} + {by_gaps}"
        );
        let sentence = written[gaps] - written[0];
        true_ttfs_excess.push(sentence.as_secs_f64() * 1e3);
        let prefill = t.first_token_at.unwrap() - t.started_at.unwrap();
        true_fit.add(f64::from(t.prompt_tokens), prefill.as_secs_f64() * 1e3);
        let q = (written.len() - 1) / 4;
        let early = written[q] - written[0];
        let late = written[written.len() - 1] - written[written.len() - 1 - q];
        true_drift.push(early.as_secs_f64() / late.as_secs_f64() - 1.0);
    }
    let u = &run.summary.use_case;

    eprintln!(
        "use case: TTFS - TTFT mean {:.3} ms (true median {:.3} ms); {:.2} ms per 1K prompt \
         tokens (true {:.2}); drift {:+.3} (true {:+.3})",
        u.ttfs.as_ref().unwrap().mean - run.summary.ttft.as_ref().unwrap().mean,
        {
            let mut v = true_ttfs_excess.clone();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        },
        u.ttft_vs_prompt_tokens.as_ref().unwrap().ms_per_1k_tokens,
        true_fit.slope().unwrap().ms_per_1k_tokens,
        u.drift.as_ref().unwrap().change,
        {
            let mut v = true_drift.clone();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        },
    );
    // Time to first sentence: the measured TTFS minus TTFT is the true time
    // from the first token to the twelfth, give or take the client's reads.
    let ttfs = u.ttfs.as_ref().unwrap();
    let ttft = run.summary.ttft.as_ref().unwrap();
    true_ttfs_excess.sort_by(f64::total_cmp);
    let true_median = true_ttfs_excess[true_ttfs_excess.len() / 2];
    let measured = ttfs.mean - ttft.mean;
    assert!(
        (measured - true_median).abs() < 2.0,
        "TTFS - TTFT: measured {measured:.3} ms, true {true_median:.3} ms"
    );

    // TTFT per 1K prompt tokens: the simulator charges 20 ms.
    let line = u.ttft_vs_prompt_tokens.as_ref().unwrap();
    let truth_line = true_fit.slope().unwrap();
    assert!(
        (truth_line.ms_per_1k_tokens - 20.0).abs() < 1.0,
        "{truth_line:?}"
    );
    assert!(
        (line.ms_per_1k_tokens - truth_line.ms_per_1k_tokens).abs() < 2.0,
        "measured {line:?}, true {truth_line:?}"
    );
    assert!(line.r > 0.95, "{line:?}");
    assert_eq!(line.points, 14);

    // Steady gaps: no drift, as the simulator's own write times say.
    let drift = u.drift.as_ref().unwrap();
    assert_eq!(drift.requests, 14);
    assert!(
        OUTPUT as usize > LONG_GENERATION_GAPS,
        "answers long enough to judge drift"
    );
    true_drift.sort_by(f64::total_cmp);
    let true_change = true_drift[true_drift.len() / 2];
    assert!(
        (drift.change - true_change).abs() < 0.15,
        "drift {:.3}, true {true_change:.3}",
        drift.change
    );

    // The sustained rate: about one token per 2 ms gap.
    let sustained = u.sustained_output_tps.as_ref().unwrap();
    assert!(
        sustained.p50 > 250.0 && sustained.p50 <= 520.0,
        "{sustained:?}"
    );
    let jitter = u.itl_jitter.as_ref().unwrap();
    assert!(jitter.p99_over_p50 >= 1.0, "{jitter:?}");

    // The simulator's /v1 reports no prompt time: TTFT stands in, labelled.
    let processing = u.prompt_processing.as_ref().unwrap();
    assert_eq!(processing.source, TimingSource::ClientTtft);
    assert_eq!(processing.duration_ms.count, 14);
    assert!(processing.prompt_tps.as_ref().unwrap().p50 > 0.0);
}

#[test]
fn an_engine_reporting_its_prompt_time_is_the_source() {
    let sim =
        Simulator::start(SimConfig::new().itl(Itl::Constant(Duration::from_millis(1)))).unwrap();
    // Ollama's native API reports prompt_eval_duration.
    let engine: Engine = format!("ollama={},model={}", sim.url(), sim.model())
        .parse()
        .unwrap();
    let bench = Bench::new()
        .workload(Workload::prompts(["Hi there."]).max_tokens(4))
        .load(Load::users(1).requests(3));
    let run = run_once("prompt time", &bench, &engine).unwrap();
    let processing = run.summary.use_case.prompt_processing.unwrap();
    assert_eq!(processing.source, TimingSource::Server);
    assert_eq!(processing.duration_ms.count, 3);
    // Answers of four tokens end no sentence: the whole answer is one.
    for r in &run.records {
        let last: f64 = r.ttft_ms.unwrap() + r.itl_ms.iter().sum::<f64>();
        assert!((r.ttfs_ms.unwrap() - last).abs() < 1e-6, "{r:?}");
    }
}
