//! A `#[llm_bench]` function cannot be `unsafe`.

#![allow(dead_code)]
use llmbench::prelude::*;

#[llm_bench]
unsafe fn chat() -> Bench {
    Bench::new()
}

fn main() {}
