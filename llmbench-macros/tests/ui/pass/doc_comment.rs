//! The doc comment becomes the description: lines joined with `\n`, one leading
//! space dropped from each, the whole trimmed.

use llmbench::prelude::*;

///
/// RAG: long context, short answer.
///
///     at 1K, 2K and 4K prompt tokens
#[llm_bench]
/// Read after the attribute too.
///
fn rag() -> Bench {
    Bench::new()
}

#[doc = "From an attribute."]
#[llm_bench]
fn attr() -> Bench {
    Bench::new()
}

fn main() {
    let description = |name: &str| {
        llmbench::__private::BENCHES
            .iter()
            .find(|entry| entry.name == name)
            .unwrap_or_else(|| panic!("`{name}` is not registered"))
            .description
    };
    assert_eq!(
        description("rag"),
        "RAG: long context, short answer.\n\n    at 1K, 2K and 4K prompt tokens\nRead after the attribute too."
    );
    assert_eq!(description("attr"), "From an attribute.");
}
