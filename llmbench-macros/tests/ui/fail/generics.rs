//! A `#[llm_bench]` function cannot be generic.

#![allow(dead_code)]
use llmbench::prelude::*;

#[llm_bench]
fn chat<const USERS: u32>() -> Bench {
    Bench::new().load(Load::users(USERS))
}

fn main() {}
