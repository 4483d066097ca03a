//! A `#[llm_bench]` function must return `Bench` or `llmbench::Result<Bench>`.

#![allow(dead_code)]
use llmbench::prelude::*;

#[llm_bench]
fn string() -> String {
    String::new()
}

#[llm_bench]
fn unit() -> () {}

#[llm_bench]
fn opaque() -> impl Into<Bench> {
    Bench::new()
}

#[llm_bench]
fn reference() -> &'static Bench {
    unimplemented!()
}

#[llm_bench]
fn option() -> Option<Bench> {
    None
}

fn main() {}
