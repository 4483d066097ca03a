//! Metric definitions checked against the simulator's ground truth: TTFT
//! starts at the first content, not at the role-only chunk; TPOT follows its
//! formula; prefill cost shows in TTFT. (Timing under load is in
//! `timing_under_load.rs`.)

use std::collections::HashMap;
use std::time::Duration;

use llmbench::harness::run_once;
use llmbench::prelude::*;
use llmbench::sim::{SimConfig, Simulator, Truth};

#[test]
fn ttft_counts_to_the_first_content_not_the_role_chunk() {
    let ttft = Duration::from_millis(60);
    let sim = Simulator::start(
        SimConfig::new()
            .ttft_base(ttft)
            .per_prompt_token(Duration::ZERO),
    )
    .unwrap();
    let bench = Bench::new()
        .workload(Workload::prompts(["hello"]).max_tokens(4))
        .load(Load::users(1).requests(3));
    let run = run_once("ttft", &bench, &Engine::openai(sim.url(), sim.model())).unwrap();
    let truth: HashMap<String, Truth> =
        sim.truth().into_iter().map(|t| (t.id.clone(), t)).collect();
    for r in &run.records {
        let t = &truth[r.response_id.as_ref().unwrap()];
        let ttft_ms = r.ttft_ms.unwrap();
        let ttfb_ms = r.ttfb_ms.unwrap();
        // The role chunk comes at once; the first token only after prefill.
        assert!(ttfb_ms < 30.0, "ttfb {ttfb_ms} ms is the early role chunk");
        assert!(
            ttft_ms >= 60.0,
            "ttft {ttft_ms} ms includes the simulated prefill"
        );
        let truth_ttft = t.token_written_at[0] - t.received_at;
        assert!(Duration::from_secs_f64(ttft_ms / 1e3) + Duration::from_micros(1) >= truth_ttft);
        // TPOT from its definition, with the engine's token count.
        let n = f64::from(r.output_tokens.unwrap());
        let want = (r.e2e_latency_ms - ttft_ms) / (n - 1.0);
        assert!((r.tpot_ms.unwrap() - want).abs() < 1e-9);
    }
}

#[test]
fn long_prompts_really_take_longer() {
    let sim = Simulator::start(
        SimConfig::new()
            .ttft_base(Duration::from_millis(5))
            .per_prompt_token(Duration::from_micros(200)),
    )
    .unwrap();
    let engine = Engine::openai(sim.url(), sim.model());
    let short = Bench::new()
        .workload(Workload::prompts(["hi"]).max_tokens(2))
        .load(Load::users(1).requests(2));
    let long_prompt = "word ".repeat(500);
    let long = Bench::new()
        .workload(Workload::prompts([long_prompt]).max_tokens(2))
        .load(Load::users(1).requests(2));
    let s = run_once("short", &short, &engine).unwrap().summary;
    let l = run_once("long", &long, &engine).unwrap().summary;
    // The engine's own prompt token counts: 1 and 500 words plus the same template.
    assert_eq!(l.prompt_tokens / 2 - s.prompt_tokens / 2, 499);
    // The simulator can only be late, never early: TTFT is at least its model.
    let model_ms = |tokens: u64| 5.0 + 0.2 * tokens as f64;
    let (s_ttft, l_ttft) = (s.ttft.unwrap().min, l.ttft.unwrap().min);
    assert!(
        s_ttft >= model_ms(s.prompt_tokens / 2),
        "short prompt ttft {s_ttft} ms"
    );
    assert!(
        l_ttft >= model_ms(l.prompt_tokens / 2),
        "long prompt ttft {l_ttft} ms"
    );
}
