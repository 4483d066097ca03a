//! The four use cases users recognise, run against the built-in simulator
//! by default: `cargo bench` (or `cargo bench -- --engine
//! openai=URL,model=NAME`). Each uses its preset's prompts and lengths;
//! long answers are shortened here so that a plain `cargo bench` against
//! the simulator (8 ms a token) ends within a minute; against a real
//! engine, drop the `.output_tokens(..)` overrides.

use llmbench::prelude::*;

/// Chat: 5-50 prompt tokens, 10-100 output tokens; eight users for five
/// seconds, judged by TTFT.
#[llm_bench]
fn chat() -> Bench {
    Bench::new()
        .workload(Workload::chat())
        .load(Load::users(8).for_secs(5))
        .slo(Slo::ttft_p95_ms(500))
}

/// Creative writing: 5-20 prompt tokens, long answers (200-400 tokens
/// here, 500-2,000 in the preset); judged by output tokens per second.
#[llm_bench]
fn creative() -> Bench {
    Bench::new()
        .workload(Workload::creative().output_tokens(200..=400))
        .load(Load::users(4).requests(12))
        .slo(Slo::tpot_p95_ms(50))
}

/// RAG: context and a question of 1K, 2K and 4K prompt tokens (one result
/// set each), 10-100 output tokens, at two requests a second; judged by
/// prompt processing time.
#[llm_bench]
fn rag() -> Bench {
    Bench::new()
        .workload(Workload::rag().prompt_tokens([1024, 2048, 4096]))
        .load(Load::rate(2.0).poisson().requests(10))
}

/// Document work: 2,000-4,000 prompt tokens (up to 8,000 in the preset),
/// 200-400 output tokens; judged by end-to-end latency.
#[llm_bench]
fn document() -> Bench {
    Bench::new()
        .workload(
            Workload::document()
                .prompt_tokens(2_000..=4_000)
                .output_tokens(200..=400),
        )
        .load(Load::users(2).requests(6))
}

fn main() -> std::process::ExitCode {
    llmbench::main()
}
