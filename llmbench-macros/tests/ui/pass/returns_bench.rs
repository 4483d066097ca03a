//! `fn name() -> Bench` registers under the function's name, with where it is;
//! a `#[cfg]` that removes the function removes its registration.

use llmbench::prelude::*;

#[llm_bench]
fn chat() -> Bench {
    Bench::new()
}

mod nested {
    use llmbench::llm_bench;

    #[llm_bench]
    pub(crate) fn rag() -> llmbench::Bench {
        llmbench::Bench::new()
    }
}

#[llm_bench]
fn r#loop() -> ::llmbench::Bench {
    Bench::new()
}

// Configured out: registered with the function, so not at all.
#[llm_bench]
#[cfg(any())]
fn gone() -> Bench {
    Bench::new()
}

fn main() {
    let entry = |name: &str| {
        llmbench::__private::BENCHES
            .iter()
            .find(|entry| entry.name == name)
            .unwrap_or_else(|| panic!("`{name}` is not registered"))
    };

    let chat = entry("chat");
    assert_eq!(chat.description, "");
    assert_eq!(chat.module_path, module_path!());
    assert!(chat.file.ends_with("returns_bench.rs"), "{}", chat.file);
    assert_eq!(chat.line, 7);
    assert!((chat.make)().is_ok());

    let rag = entry("rag");
    assert_eq!(rag.module_path, format!("{}::nested", module_path!()));
    assert_eq!(rag.line, 15);
    assert!((rag.make)().is_ok());

    assert!((entry("loop").make)().is_ok());
    assert_eq!(llmbench::__private::BENCHES.len(), 3);
}
