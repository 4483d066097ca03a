//! A method cannot be registered: the harness has no `self` to call it on.

#![allow(dead_code)]
use llmbench::prelude::*;

struct Scenarios;

impl Scenarios {
    #[llm_bench]
    fn chat(&self) -> Bench {
        Bench::new()
    }
}

fn main() {}
