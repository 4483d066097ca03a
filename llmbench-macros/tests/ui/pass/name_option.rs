//! `name = "..."` replaces the function's name as the trial name.

use llmbench::prelude::*;

#[llm_bench(name = "chat-long_v2.1")]
fn chat() -> Bench {
    Bench::new()
}

fn main() {
    let names: Vec<_> = llmbench::__private::BENCHES
        .iter()
        .map(|entry| entry.name)
        .collect();
    assert_eq!(names, ["chat-long_v2.1"]);
    assert!((llmbench::__private::BENCHES[0].make)().is_ok());
}
