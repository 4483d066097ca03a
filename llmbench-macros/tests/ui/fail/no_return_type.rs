//! A `#[llm_bench]` function must return its scenario.

#![allow(dead_code)]
use llmbench::prelude::*;

#[llm_bench]
fn chat() {
    let _ = Bench::new();
}

fn main() {}
