//! `fn name() -> Result<Bench>` registers too, however `Result` is spelled, and
//! an `Err` reaches the harness as an `Err`.

use llmbench::prelude::*;
use llmbench::{Error, ErrorKind, Result};

#[llm_bench]
fn short() -> Result<Bench> {
    Ok(Bench::new())
}

#[llm_bench]
fn long() -> llmbench::Result<Bench> {
    Ok(Bench::new())
}

#[llm_bench]
fn explicit() -> std::result::Result<Bench, llmbench::Error> {
    Ok(Bench::new())
}

#[llm_bench]
fn broken() -> Result<Bench, Error> {
    Err(Error::new(ErrorKind::Config, "no dataset"))
}

fn main() {
    let make = |name: &str| {
        let entry = llmbench::__private::BENCHES
            .iter()
            .find(|entry| entry.name == name)
            .unwrap_or_else(|| panic!("`{name}` is not registered"));
        (entry.make)()
    };
    assert!(make("short").is_ok());
    assert!(make("long").is_ok());
    assert!(make("explicit").is_ok());
    let err = make("broken").expect_err("`broken` returns an error");
    assert!(err.to_string().contains("no dataset"), "{err}");
}
