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

/// A simulator that keeps the bodies it receives.
fn recording(protocols: &[Protocol]) -> Simulator {
    Simulator::start(
        SimConfig::new()
            .protocols(protocols)
            .ttft_base(Duration::from_millis(1))
            .per_prompt_token(Duration::from_micros(1))
            .itl(Itl::Constant(Duration::from_micros(200)))
            .record_bodies(true),
    )
    .unwrap()
}

/// The bodies `sim` received, in the order of the requests' ids (probes
/// and tokenize calls are not generation requests, and are not kept).
fn bodies(sim: &Simulator) -> Vec<serde_json::Value> {
    sim.truth().into_iter().filter_map(|t| t.body).collect()
}

/// Tokens by the simulator's documented rule: a run of letters and digits
/// is one, any other non-space character is one.
fn sim_tokens(text: &str) -> usize {
    let mut n = 0;
    let mut in_word = false;
    for c in text.chars() {
        if c.is_alphanumeric() {
            n += usize::from(!in_word);
            in_word = true;
        } else {
            n += usize::from(!c.is_whitespace());
            in_word = false;
        }
    }
    n
}

/// The longest text all of `texts` begin with.
fn common_start(texts: &[String]) -> String {
    let first = &texts[0];
    let mut end = first.len();
    for t in texts {
        end = end.min(
            first
                .bytes()
                .zip(t.bytes())
                .take_while(|(a, b)| a == b)
                .count(),
        );
    }
    while !first.is_char_boundary(end) {
        end -= 1;
    }
    first[..end].to_string()
}

/// The first message's content of the last `n` chat bodies (after the
/// probe that measures the chat template), in request order.
fn first_contents(sim: &Simulator, n: usize) -> Vec<String> {
    let all = bodies(sim);
    all[all.len() - n..]
        .iter()
        .map(|b| b["messages"][0]["content"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn prompts_that_share_a_prefix_begin_alike_and_keep_their_exact_lengths() {
    let w = || {
        Workload::rag()
            .prompt_tokens(500..=700)
            .shared_prefix_tokens(400)
    };
    let run_on = |seed: u64| {
        let sim = recording(&[]);
        let engine = Engine::openai(sim.url(), sim.model());
        let run = run_bench(w(), &engine, seed);
        for r in &run.records {
            assert!(r.success, "{:?}", r.error);
            assert_eq!(r.prompt_tokens, r.requested_prompt_tokens);
        }
        assert_eq!(run.prompt_lengths.unwrap().max_error, Some(0));
        first_contents(&sim, 12)
    };
    let a = run_on(5);
    assert_eq!(a.len(), 12);
    let shared = common_start(&a);
    assert!(
        sim_tokens(&shared) >= 400,
        "{}: {shared}",
        sim_tokens(&shared)
    );
    let distinct: std::collections::HashSet<&String> = a.iter().collect();
    assert_eq!(
        distinct.len(),
        a.len(),
        "the rest differs from prompt to prompt"
    );
    let again = run_on(5);
    assert_eq!(
        common_start(&again),
        shared,
        "the same seed, the same prefix"
    );
    let other = common_start(&run_on(6));
    assert!(
        !other.starts_with(&shared[..200]),
        "another seed, another prefix"
    );
}

#[test]
fn without_lengths_the_prefix_goes_before_each_prompt_as_written() {
    let sim = sim(&[]);
    let engine = Engine::openai(sim.url(), sim.model());
    let bench = Bench::new()
        .workload(Workload::prompts(["Say hi."]).shared_prefix_tokens(64))
        .load(Load::users(1).requests(2));
    let run = run_once("prefix", &bench, &engine).unwrap();
    assert_eq!(run.records.len(), 2);
    for r in &run.records {
        assert!(r.success, "{:?}", r.error);
        // The prefix, the request and the simulator's chat template.
        assert_eq!(r.prompt_tokens, Some(64 + 3 + 11));
        assert_eq!(r.requested_prompt_tokens, None);
    }
}

/// A JSONL dataset of one conversation, named by `tag`.
fn conversations(tag: &str) -> std::path::PathBuf {
    let path =
        std::env::temp_dir().join(format!("llmbench-chat-{tag}-{}.jsonl", std::process::id()));
    std::fs::write(
        &path,
        concat!(
            r#"{"messages": [{"role": "system", "content": "Be brief."}, "#,
            r#"{"role": "user", "content": "Name a fruit."}, "#,
            r#"{"role": "assistant", "content": "Apple."}, "#,
            r#"{"role": "user", "content": "And a colour?"}, "#,
            r#"{"role": "assistant", "content": "Red."}], "max_tokens": 5}"#,
            "\n"
        ),
    )
    .unwrap();
    path
}

#[test]
fn a_conversation_reaches_every_engine_with_all_its_turns_in_order() {
    let path = conversations("sent");
    let want = serde_json::json!([
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Name a fruit."},
        {"role": "assistant", "content": "Apple."},
        {"role": "user", "content": "And a colour?"},
    ]);
    let joined = "System: Be brief.\n\nUser: Name a fruit.\n\nAssistant: Apple.\n\n\
                  User: And a colour?\n\nAssistant:";
    for (protocol, kind, completion_field) in [
        (Protocol::OpenAi, "openai", "prompt"),
        (Protocol::Ollama, "ollama", "prompt"),
        (Protocol::Tgi, "tgi", "inputs"),
        (Protocol::LlamaCpp, "llamacpp", "prompt"),
    ] {
        let sim = recording(&[protocol]);
        let engine: Engine = format!("{kind}={},model=m", sim.url()).parse().unwrap();
        let send = |w: Workload| {
            let bench = Bench::new()
                .workload(w)
                .load(Load::users(1).requests(2))
                .seed(1);
            let run = run_once("chat", &bench, &engine).unwrap();
            for r in &run.records {
                assert!(r.success, "{kind}: {:?}", r.error);
            }
            run
        };
        let run = send(Workload::jsonl(&path).unwrap());
        // Every turn's tokens and the template's for each (the simulator
        // counts 8 a message and 3 for the reply).
        let turns = sim_tokens("Be brief. Name a fruit. Apple. And a colour?") as u32;
        assert_eq!(
            run.records[0].prompt_tokens,
            Some(turns + 4 * 8 + 3),
            "{kind}"
        );
        let chat = bodies(&sim);
        assert_eq!(chat.len(), 2, "{kind}");
        for body in &chat {
            assert_eq!(body["messages"], want, "{kind}");
        }
        send(Workload::jsonl(&path).unwrap().completion());
        let sent = bodies(&sim);
        assert_eq!(sent.len(), 4, "{kind}");
        assert_eq!(sent[3][completion_field], joined, "{kind}: {}", sent[3]);
    }
    std::fs::remove_file(path).unwrap();
}

#[test]
fn conversations_are_not_fitted_to_a_length() {
    let path = conversations("fitted");
    let bench = Bench::new()
        .workload(Workload::jsonl(&path).unwrap().prompt_tokens(100))
        .load(Load::users(1).requests(1));
    let err = bench.validate().unwrap_err().to_string();
    assert!(
        err.contains(
            "workload.prompt_tokens: 1 of the 1 prompts are conversations of several turns"
        ),
        "{err}"
    );
    std::fs::remove_file(path).unwrap();
}

#[test]
fn template_cases_are_sent_once_each_in_a_seeded_order() {
    let sim = recording(&[]);
    let engine = Engine::openai(sim.url(), sim.model());
    let topics = ["a lighthouse", "a night train", "bees", "the sea"];
    let cases: Vec<Vec<(&str, &str)>> = topics
        .iter()
        .map(|t| vec![("topic", *t), ("style", "verse")])
        .collect();
    let w = || Workload::template("Write about {topic} in {style}.", cases.clone());
    let sent = |seed: u64| {
        let before = bodies(&sim).len();
        let bench = Bench::new()
            .workload(w())
            .load(Load::users(1).requests(4))
            .seed(seed);
        run_once("template", &bench, &engine).unwrap();
        bodies(&sim)[before..]
            .iter()
            .map(|b| b["messages"][0]["content"].as_str().unwrap().to_string())
            .collect::<Vec<String>>()
    };
    let a = sent(2);
    let mut all = a.clone();
    all.sort();
    let mut want: Vec<String> = topics
        .iter()
        .map(|t| format!("Write about {t} in verse."))
        .collect();
    want.sort();
    assert_eq!(all, want, "each case once");
    assert_eq!(a, sent(2), "the same seed, the same order");
    let orders: std::collections::HashSet<Vec<String>> = (3..8).map(sent).collect();
    assert!(orders.len() > 1, "other seeds, other orders");
}
