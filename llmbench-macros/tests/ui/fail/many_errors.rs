//! Every mistake is reported at once, each at its own token.

#![allow(dead_code)]
use llmbench::prelude::*;

#[llm_bench(nmae = "x")]
async fn chat<T>(_users: T) -> String {
    String::new()
}

fn main() {}
