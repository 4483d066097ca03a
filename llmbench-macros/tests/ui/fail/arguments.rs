//! A `#[llm_bench]` function takes no arguments.

#![allow(dead_code)]
use llmbench::prelude::*;

#[llm_bench]
fn chat(users: u32, secs: u64) -> Bench {
    Bench::new().load(Load::users(users).for_secs(secs))
}

fn main() {}
