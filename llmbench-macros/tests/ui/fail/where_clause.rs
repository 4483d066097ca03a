//! A `#[llm_bench]` function cannot have a `where` clause.

#![allow(dead_code)]
use llmbench::prelude::*;

#[llm_bench]
fn chat() -> Bench
where
    Bench: Clone,
{
    Bench::new()
}

fn main() {}
