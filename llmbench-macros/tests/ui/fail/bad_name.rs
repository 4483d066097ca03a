//! `name = "..."` must be one non-empty word without `/`.

#![allow(dead_code)]
use llmbench::prelude::*;

#[llm_bench(name = "")]
fn empty() -> Bench {
    Bench::new()
}

#[llm_bench(name = "chat/vllm")]
fn slash() -> Bench {
    Bench::new()
}

#[llm_bench(name = "long chat")]
fn space() -> Bench {
    Bench::new()
}

fn main() {}
