//! The scenarios the harness runs: those `#[llm_bench]` registered in the
//! linkme slice, or a list given at run time (`llmbench run FILE...`).

use crate::__private::BENCHES;
use crate::bench::Bench;
use crate::error::{Error, Result};

/// A scenario as the harness runs it, wherever it was written.
///
/// ```
/// use llmbench::harness::Scenario;
/// use llmbench::prelude::*;
/// let chat = Scenario::new(
///     "chat",
///     Bench::new().workload(Workload::chat()).load(Load::users(2).requests(4)),
/// )
/// .description("Chat: two users, four requests.")
/// .origin("scenarios/chat.yaml:1");
/// assert_eq!(chat.name(), "chat");
/// ```
#[derive(Debug)]
pub struct Scenario {
    name: String,
    description: String,
    origin: String,
    bench: Result<Bench>,
}

impl Scenario {
    /// A scenario called `name` (the first part of its trials' names).
    pub fn new(name: impl Into<String>, bench: Bench) -> Self {
        Self::made(name, Ok(bench))
    }

    /// A scenario whose making failed: its trials fail with `error`.
    pub fn failed(name: impl Into<String>, error: Error) -> Self {
        Self::made(name, Err(error))
    }

    fn made(name: impl Into<String>, bench: Result<Bench>) -> Self {
        Scenario {
            name: name.into(),
            description: String::new(),
            origin: String::new(),
            bench,
        }
    }

    /// What the scenario is for, in a sentence (`run.json`, reports).
    #[must_use]
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = text.into();
        self
    }

    /// Where it is written (`benches/serving.rs:12`, `scenarios/chat.yaml:1`),
    /// named in its errors.
    #[must_use]
    pub fn origin(mut self, place: impl Into<String>) -> Self {
        self.origin = place.into();
        self
    }

    /// The scenario's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The scenario, or why it could not be made.
    pub fn bench(&self) -> std::result::Result<&Bench, &Error> {
        self.bench.as_ref()
    }

    pub(crate) fn parts(&self) -> (&str, &str, &str, &Result<Bench>) {
        (&self.name, &self.description, &self.origin, &self.bench)
    }
}

/// Every `#[llm_bench]` scenario of this binary, sorted by name.
pub(crate) fn registered() -> Vec<Scenario> {
    let mut all: Vec<Scenario> = BENCHES
        .iter()
        .map(|entry| {
            Scenario::made(entry.name, (entry.make)())
                .description(entry.description)
                .origin(format!("{}:{}", entry.file, entry.line))
        })
        .collect();
    all.sort_by(|a, b| a.name.cmp(&b.name));
    all
}

/// Two scenarios with one name is an error naming both places.
pub(crate) fn check_unique(scenarios: &[Scenario]) -> Result<()> {
    for (i, a) in scenarios.iter().enumerate() {
        if let Some(b) = scenarios[i + 1..].iter().find(|b| b.name == a.name) {
            return Err(Error::config(format!(
                "two scenarios are named `{}` ({} and {}); rename one (#[llm_bench(name = \
                 \"...\")] in Rust, `name:` in a scenario file)",
                a.name, a.origin, b.origin
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_used_twice_names_both_places() {
        let make = |name: &str, origin: &str| Scenario::new(name, Bench::new()).origin(origin);
        let list = [
            make("a", "x.yaml:1"),
            make("b", "y.yaml:1"),
            make("a", "z.toml:1"),
        ];
        let err = check_unique(&list).unwrap_err().to_string();
        assert!(
            err.contains("two scenarios are named `a` (x.yaml:1 and z.toml:1)"),
            "{err}"
        );
        assert!(check_unique(&list[..2]).is_ok());
    }
}
