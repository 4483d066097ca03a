#![allow(dead_code)]
use llmbench::prelude::*;

#[llm_bench]
async fn chat() -> Bench {
    Bench::new()
}

fn main() {}
