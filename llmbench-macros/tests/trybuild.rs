//! Compile tests for `#[llm_bench]`: every accepted form builds and registers
//! its scenario (`ui/pass`), and every misuse fails with the message pinned in
//! its `.stderr` file (`ui/fail`). Regenerate those with `TRYBUILD=overwrite`
//! and read each one.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
