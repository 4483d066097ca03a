//! A `#[llm_bench]` function cannot be `const`.

#![allow(dead_code)]
use llmbench::prelude::*;

#[llm_bench]
const fn chat() -> Bench {
    unimplemented!()
}

fn main() {}
