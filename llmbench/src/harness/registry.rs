//! The scenarios registered by `#[llm_bench]`, read from the linkme slice.

use crate::__private::{BenchEntry, BENCHES};
use crate::error::{Error, Result};

/// Every registered scenario, sorted by name; two with one name is an error
/// naming both places.
pub(crate) fn scenarios() -> Result<Vec<&'static BenchEntry>> {
    let mut all: Vec<&'static BenchEntry> = BENCHES.iter().collect();
    all.sort_by(|a, b| a.name.cmp(b.name));
    for pair in all.windows(2) {
        if pair[0].name == pair[1].name {
            return Err(Error::config(format!(
                "two scenarios are named `{}` ({}:{} and {}:{}); rename one with #[llm_bench(name = \"...\")]",
                pair[0].name, pair[0].file, pair[0].line, pair[1].file, pair[1].line
            )));
        }
    }
    Ok(all)
}
