//! Option values are string literals.

#![allow(dead_code)]
use llmbench::prelude::*;

#[llm_bench(name = chat_long)]
fn chat() -> Bench {
    Bench::new()
}

#[llm_bench(crate = llmbench)]
fn rag() -> Bench {
    Bench::new()
}

#[llm_bench(name)]
fn code() -> Bench {
    Bench::new()
}

#[llm_bench(name("code"))]
fn summarize() -> Bench {
    Bench::new()
}

fn main() {}
