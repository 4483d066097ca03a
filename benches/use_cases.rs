//! The use-case scenarios, run against the built-in simulator by default:
//! `cargo bench` (or `cargo bench -- --engine openai=URL,model=NAME`).

use llmbench::prelude::*;

const QUESTIONS: [&str; 6] = [
    "What is the capital of France?",
    "Give me one tip for sleeping better.",
    "How many legs does a spider have?",
    "Translate 'good morning' into Spanish.",
    "What does HTTP stand for?",
    "Name three primary colours.",
];

const STORY_STARTS: [&str; 4] = [
    "Write a short story about a lighthouse keeper who finds a message in a bottle.",
    "Describe a city on Mars a hundred years after the first landing.",
    "Tell a fable about a fox, a crow and a very old tree.",
    "Write the opening chapter of a mystery set on a night train.",
];

/// Chat: short questions, short answers; eight users for five seconds.
#[llm_bench]
fn chat() -> Bench {
    Bench::new()
        .workload(Workload::prompts(QUESTIONS).max_tokens(64))
        .load(Load::users(8).for_secs(5))
        .slo(Slo::ttft_p95_ms(500))
}

/// Creative writing: short prompts, long answers; four users for five seconds.
#[llm_bench]
fn creative() -> Bench {
    Bench::new()
        .workload(Workload::prompts(STORY_STARTS).max_tokens(400))
        .load(Load::users(4).for_secs(5))
        .slo(Slo::tpot_p95_ms(50))
}

fn main() -> std::process::ExitCode {
    llmbench::main()
}
