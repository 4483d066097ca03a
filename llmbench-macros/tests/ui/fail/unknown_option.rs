//! Unknown options are named, with the list of known ones.

#![allow(dead_code)]
use llmbench::prelude::*;

#[llm_bench(nmae = "chat_long")]
fn chat() -> Bench {
    Bench::new()
}

#[llm_bench(name = "rag", engine = "vllm")]
fn rag() -> Bench {
    Bench::new()
}

#[llm_bench(42)]
fn code() -> Bench {
    Bench::new()
}

fn main() {}
