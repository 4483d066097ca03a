//! A `#[llm_bench]` function cannot be `extern`.

#![allow(dead_code, improper_ctypes_definitions)]
use llmbench::prelude::*;

#[llm_bench]
extern "C" fn chat() -> Bench {
    Bench::new()
}

fn main() {}
