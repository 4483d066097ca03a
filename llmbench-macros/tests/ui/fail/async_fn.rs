//! A `#[llm_bench]` function cannot be `async`: the harness owns the runtime.

#![allow(dead_code)]
use llmbench::prelude::*;

#[llm_bench]
async fn chat() -> Bench {
    Bench::new()
}

fn main() {}
