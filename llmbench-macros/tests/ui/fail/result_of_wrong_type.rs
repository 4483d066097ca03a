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
