//! `#[llm_bench]` goes on functions only.

#![allow(dead_code)]
use llmbench::prelude::*;

#[llm_bench]
struct Chat {
    users: u32,
}

#[llm_bench]
impl Chat {
    fn bench() -> Bench {
        Bench::new()
    }
}

#[llm_bench]
static RAG: u32 = 4;

fn main() {}
