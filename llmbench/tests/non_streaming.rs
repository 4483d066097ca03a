//! Answers asked for in one piece (`Workload::stream(false)`), on every
//! protocol and route the simulator speaks: one arrival per answer, token
//! counts from the engine, and the simulator saw a non-streamed request.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use llmbench::harness::run_once;
use llmbench::prelude::*;
use llmbench::sim::{Protocol, SimConfig, Simulator};

#[test]
fn every_protocol_answers_whole_when_asked() {
    let cases = [
        (Protocol::OpenAi, "openai", "chat"),
        (Protocol::OpenAi, "openai", "completion"),
        (Protocol::LlamaCpp, "llamacpp", "completion"),
        (Protocol::LlamaCpp, "llamacpp", "chat"),
        (Protocol::Ollama, "ollama", "chat"),
        (Protocol::Ollama, "ollama", "generate"),
        (Protocol::Tgi, "tgi", "generate"),
        (Protocol::Tgi, "tgi", "chat"),
    ];
    for (protocol, kind, api) in cases {
        let sim = Simulator::start(
            SimConfig::new()
                .protocols(&[protocol])
                .ttft_base(Duration::from_millis(5))
                .itl(llmbench::sim::Itl::Constant(Duration::from_millis(2))),
        )
        .unwrap();
        let engine: Engine = format!("{kind}={},model={},api={api}", sim.url(), sim.model())
            .parse()
            .unwrap();
        let bench = Bench::new()
            .workload(
                Workload::prompts(["Say hello."])
                    .max_tokens(5)
                    .stream(false),
            )
            .load(Load::users(1).requests(2));
        let run = run_once("whole", &bench, &engine).unwrap();
        let case = format!("{kind} api={api}");
        assert_eq!(run.records.len(), 2, "{case}");
        for r in &run.records {
            assert!(r.success, "{case}: {:?}", r.error);
            assert_eq!(r.content_chunks, 1, "{case}: one arrival");
            assert_eq!(r.output_tokens, Some(5), "{case}: the engine's count");
            assert!(!r.output_tokens_estimated, "{case}");
            assert!(r.itl_ms.is_empty(), "{case}: no gaps in a whole answer");
        }
        assert!(
            sim.truth().iter().all(|t| !t.stream),
            "{case}: the engine was asked not to stream"
        );
    }
}
