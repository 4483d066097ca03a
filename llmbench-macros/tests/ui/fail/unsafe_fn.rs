#![allow(dead_code)]
use llmbench::prelude::*;

#[llm_bench]
unsafe fn chat() -> Bench {
    Bench::new()
}

fn main() {}
