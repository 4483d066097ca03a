//! Prompt lengths counted with a local `tokenizer.json` for an engine that
//! has no tokenize endpoint (the simulator speaking Ollama's API): exact
//! when the file is the engine's tokenizer. `data/sim-tokenizer.json` is a
//! word-level tokenizer made here that counts as the simulator does (each
//! run of letters and digits one token, each other visible character one).
#![cfg(feature = "tokenizer-json")]
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::Duration;

use llmbench::harness::run_once;
use llmbench::prelude::*;
use llmbench::sim::{Itl, Protocol, SimConfig, Simulator};
use llmbench::workload::LengthSource;

fn sim_tokenizer() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/sim-tokenizer.json")
}

fn ollama_sim() -> (Simulator, Engine) {
    let sim = Simulator::start(
        SimConfig::new()
            .protocols(&[Protocol::Ollama])
            .ttft_base(Duration::from_millis(1))
            .per_prompt_token(Duration::from_micros(1))
            .itl(Itl::Constant(Duration::from_micros(200))),
    )
    .unwrap();
    let engine = format!("ollama={},model=m", sim.url()).parse().unwrap();
    (sim, engine)
}

#[test]
fn a_local_tokenizer_gives_exact_lengths_where_the_engine_has_no_tokenizer() {
    let (_sim, engine) = ollama_sim();
    for workload in [
        Workload::rag().prompt_tokens([700, 1500]),
        Workload::chat().prompt_tokens(20..=50),
        Workload::prompts(["Summarise the text above."])
            .prompt_tokens(900)
            .completion(),
    ] {
        let bench = Bench::new()
            .workload(workload.tokenizer_json(sim_tokenizer()).max_tokens(2))
            .load(Load::users(2).requests(8))
            .seed(3);
        let run = run_once("tokenizer file", &bench, &engine).unwrap();
        let check = run.prompt_lengths.unwrap();
        assert_eq!(check.source, Some(LengthSource::TokenizerFile));
        assert!(!check.estimated);
        assert_eq!(check.requests, 8);
        assert_eq!(check.max_error, Some(0), "{check:?}");
    }
}

#[test]
fn a_missing_or_unreadable_tokenizer_file_is_named() {
    let (_sim, engine) = ollama_sim();
    let missing = sim_tokenizer().with_file_name("no-such-tokenizer.json");
    let bench = Bench::new()
        .workload(Workload::rag().prompt_tokens(500).tokenizer_json(&missing))
        .load(Load::users(1).requests(1));
    let err = bench.validate().err().unwrap().to_string();
    assert!(
        err.contains("workload.tokenizer_json") && err.contains("no-such-tokenizer.json"),
        "{err}"
    );

    let bad = std::env::temp_dir().join(format!("llmbench-bad-tok-{}.json", std::process::id()));
    std::fs::write(
        &bad,
        "{\"version\": \"1.0\", \"model\": {\"type\": \"Nonsense\"}}",
    )
    .unwrap();
    let bench = Bench::new()
        .workload(Workload::rag().prompt_tokens(500).tokenizer_json(&bad))
        .load(Load::users(1).requests(1));
    let err = run_once("bad tokenizer", &bench, &engine)
        .err()
        .unwrap()
        .chain();
    assert!(err.contains(&bad.display().to_string()), "{err}");
    std::fs::remove_file(bad).unwrap();
}
