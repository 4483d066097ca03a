//! Each option may be given once.

#![allow(dead_code)]
use llmbench::prelude::*;

#[llm_bench(name = "chat", name = "chat_long")]
fn chat() -> Bench {
    Bench::new()
}

#[llm_bench(crate = "llmbench", crate = "::llmbench")]
fn rag() -> Bench {
    Bench::new()
}

fn main() {}
