//! A return type that looks right but is not `Bench` or `llmbench::Result<Bench>`
//! gets `IntoBench`'s message, at the type.

use llmbench::prelude::*;

#[llm_bench]
fn chat() -> llmbench::Result<String> {
    Ok(String::new())
}

#[llm_bench]
fn rag() -> Result<Bench, String> {
    Ok(Bench::new())
}

fn main() {}
