//! The use-case presets against the simulator: prompts fitted to the
//! requested token counts exactly (the engine's tokenizer, its chat
//! template measured), or labelled as estimates where the engine has no
//! tokenizer; the same scenario and seed send the same prompts in order.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use llmbench::harness::{run_once, TrialRun};
use llmbench::prelude::*;
use llmbench::sim::{Itl, Protocol, SimConfig, Simulator};
use llmbench::workload::{LengthSource, Lengths};

fn sim(protocols: &[Protocol]) -> Simulator {
    Simulator::start(
        SimConfig::new()
            .protocols(protocols)
            .ttft_base(Duration::from_millis(1))
            .per_prompt_token(Duration::from_micros(1))
            .itl(Itl::Constant(Duration::from_micros(200))),
    )
    .unwrap()
}

fn run_bench(workload: Workload, engine: &Engine, seed: u64) -> TrialRun {
    let bench = Bench::new()
        .workload(workload)
        .load(Load::users(2).requests(12))
        .seed(seed);
    run_once("workload", &bench, engine).unwrap()
}

/// Requested prompt tokens in request order.
fn requested(run: &TrialRun) -> Vec<(u64, u32)> {
    let mut v: Vec<(u64, u32)> = run
        .records
        .iter()
        .map(|r| (r.request_id, r.requested_prompt_tokens.unwrap()))
        .collect();
    v.sort_unstable();
    v
}

#[test]
fn prompts_have_exactly_the_requested_tokens_in_chat_and_completion_mode() {
    let sim = sim(&[]);
    let engine = Engine::openai(sim.url(), sim.model());
    for (case, workload) in [
        ("rag chat", Workload::rag().prompt_tokens(200..=900)),
        (
            "rag completion",
            Workload::rag().prompt_tokens(1024).completion(),
        ),
        (
            "document",
            Workload::document().prompt_tokens([300, 500]).max_tokens(4),
        ),
        ("chat", Workload::chat().prompt_tokens(12..=50)),
    ] {
        let run = run_bench(workload, &engine, 3);
        assert_eq!(run.records.len(), 12, "{case}");
        for r in &run.records {
            assert!(r.success, "{case}: {:?}", r.error);
            assert_eq!(r.prompt_tokens, r.requested_prompt_tokens, "{case}");
        }
        let check = run.prompt_lengths.unwrap();
        assert_eq!(check.source, Some(LengthSource::Tokenizer), "{case}");
        assert!(!check.estimated);
        assert_eq!((check.requests, check.max_error), (12, Some(0)), "{case}");
        assert_eq!(check.mean_error, Some(0.0), "{case}");
    }
}

#[test]
fn preset_answers_have_the_preset_lengths() {
    let sim = sim(&[]);
    let engine = Engine::openai(sim.url(), sim.model());
    let run = run_bench(Workload::chat(), &engine, 1);
    for r in &run.records {
        assert!(r.success, "{:?}", r.error);
        let out = r.output_tokens.unwrap();
        assert!((10..=100).contains(&out), "{out}");
        let want = r.requested_prompt_tokens.unwrap();
        assert!((5..=50).contains(&want), "{want}");
        // The chat template alone takes 11 of the simulator's tokens: a
        // shorter request cannot be met, and the check says by how much.
        assert_eq!(r.prompt_tokens.unwrap(), want.max(12), "{want}");
    }
}

#[test]
fn the_same_scenario_and_seed_send_the_same_prompts_in_the_same_order() {
    let sim = sim(&[]);
    let engine = Engine::openai(sim.url(), sim.model());
    let w = || Workload::rag().prompt_tokens(Lengths::normal(400.0, 100.0));
    let a = requested(&run_bench(w(), &engine, 9));
    assert_eq!(a, requested(&run_bench(w(), &engine, 9)));
    assert_ne!(a, requested(&run_bench(w(), &engine, 10)));
}

#[test]
fn native_tokenizers_and_calibrated_estimates() {
    // llama.cpp: its own /tokenize, raw prompts through /completion.
    let llama = sim(&[Protocol::LlamaCpp]);
    let engine: Engine = format!("llamacpp={},model=m,api=completion", llama.url())
        .parse()
        .unwrap();
    let run = run_bench(Workload::rag().prompt_tokens(500), &engine, 2);
    let check = run.prompt_lengths.unwrap();
    assert_eq!(check.source, Some(LengthSource::Tokenizer));
    assert_eq!(check.max_error, Some(0));
    // Ollama has no tokenize endpoint: lengths calibrated from what it
    // reports, and labelled as estimates.
    let ollama = sim(&[Protocol::Ollama]);
    let engine: Engine = format!("ollama={},model=m", ollama.url()).parse().unwrap();
    let run = run_bench(Workload::rag().prompt_tokens(500), &engine, 2);
    let check = run.prompt_lengths.unwrap();
    assert_eq!(check.source, Some(LengthSource::Calibrated));
    assert!(check.estimated);
    assert_eq!(check.requests, 12);
    assert!(check.max_error_ratio.unwrap() < 0.1, "{check:?}");
}

#[test]
fn a_jsonl_dataset_sends_each_prompt_once_with_its_own_budget() {
    let path = std::env::temp_dir().join(format!("llmbench-ds-{}.jsonl", std::process::id()));
    let lines: Vec<String> = (1..=6)
        .map(|n| format!("{{\"prompt\": \"Question number {n}?\", \"max_tokens\": {n}}}"))
        .collect();
    std::fs::write(&path, lines.join("\n")).unwrap();
    let sim = sim(&[]);
    let engine = Engine::openai(sim.url(), sim.model());
    let outputs = |w: Workload| {
        let bench = Bench::new()
            .workload(w)
            .load(Load::users(1).requests(6))
            .seed(4);
        let mut records = run_once("dataset", &bench, &engine).unwrap().records;
        records.sort_by_key(|r| r.request_id);
        records
            .iter()
            .map(|r| r.output_tokens.unwrap())
            .collect::<Vec<u32>>()
    };
    let order = outputs(Workload::jsonl(&path).unwrap());
    let mut all = order.clone();
    all.sort_unstable();
    assert_eq!(all, [1, 2, 3, 4, 5, 6], "each prompt once, its own budget");
    assert_eq!(
        order,
        outputs(Workload::jsonl(&path).unwrap()),
        "seeded order"
    );
    let sampled = outputs(Workload::jsonl(&path).unwrap().sample(2));
    assert_eq!(sampled[..2], sampled[2..4], "a sample of two, repeated");
    std::fs::remove_file(path).unwrap();
}
