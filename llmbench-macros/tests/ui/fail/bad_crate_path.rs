//! `crate = "..."` must be a path, and one that resolves.

#![allow(dead_code)]
use llmbench::prelude::*;

#[llm_bench(crate = "llm bench")]
fn chat() -> Bench {
    Bench::new()
}

#[llm_bench(crate = "not_llmbench")]
fn rag() -> Bench {
    Bench::new()
}

fn main() {}
