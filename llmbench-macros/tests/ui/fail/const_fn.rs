#![allow(dead_code)]
use llmbench::prelude::*;

#[llm_bench]
const fn chat() -> Bench {
    unimplemented!()
}

fn main() {}
