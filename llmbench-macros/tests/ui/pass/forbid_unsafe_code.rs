//! The output compiles in a crate that forbids unsafe code, even though linkme
//! places the entry with `#[link_section]`.

#![forbid(unsafe_code)]
#![deny(warnings)]

use llmbench::prelude::*;

/// Safe.
#[llm_bench]
fn chat() -> Bench {
    Bench::new()
}

fn main() {
    let entry = llmbench::__private::BENCHES
        .iter()
        .find(|entry| entry.name == "chat")
        .expect("`chat` is registered");
    assert_eq!(entry.description, "Safe.");
    assert!((entry.make)().is_ok());
}
