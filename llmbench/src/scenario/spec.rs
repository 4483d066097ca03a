//! The schema of a scenario file: one field per builder call, named as
//! the builder's method is, read by serde and turned into a [`Bench`] by
//! calling those methods. Ranges and combinations are left to
//! [`Bench::validate`]; only what a file can say and the builder cannot
//! (two starting points at once) is checked here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::values::{CaseValue, EngineValue, LengthsValue, Secs, SloValue};
use crate::bench::Bench;
use crate::error::{Error, Result};
use crate::load::{Capacity, Load};
use crate::workload::{Mode, Preset, Workload};

/// A whole scenario file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScenarioSpec {
    /// The trials' name; default: the file's name without its extension.
    pub name: Option<String>,
    /// A sentence on what the scenario is for.
    pub description: Option<String>,
    workload: WorkloadSpec,
    load: LoadSpec,
    #[serde(default)]
    slo: SloValue,
    engine: Option<EngineValue>,
    seed: Option<u64>,
    #[serde(default)]
    compare_streaming: bool,
    #[serde(default)]
    fail_on_regression: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkloadSpec {
    preset: Option<Preset>,
    prompts: Option<Vec<String>>,
    template: Option<String>,
    cases: Option<Vec<BTreeMap<String, CaseValue>>>,
    jsonl: Option<PathBuf>,
    sharegpt: Option<PathBuf>,
    multi_turn: Option<bool>,
    prompt_tokens: Option<LengthsValue>,
    shared_prefix_tokens: Option<u32>,
    tokenizer_json: Option<PathBuf>,
    output_tokens: Option<LengthsValue>,
    max_tokens: Option<u32>,
    mode: Option<Mode>,
    stream: Option<bool>,
    exact_output: Option<bool>,
    sample: Option<usize>,
    keep_prompt_tokens: Option<Range>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Range {
    min: u32,
    max: u32,
}

/// The load presets, as `Load::quick()` and the others.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum LoadPreset {
    Quick,
    Stress,
    SpikeTest,
    Endurance,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoadSpec {
    preset: Option<LoadPreset>,
    users: Option<u32>,
    rate: Option<f64>,
    steps: Option<Vec<LoadSpec>>,
    #[serde(default)]
    poisson: bool,
    gamma: Option<f64>,
    max_in_flight: Option<u32>,
    think_time_secs: Option<Secs>,
    ramp_to: Option<RampSpec>,
    spike_to: Option<SpikeSpec>,
    warmup_secs: Option<Secs>,
    for_secs: Option<Secs>,
    requests: Option<u64>,
    sweep: Option<Vec<f64>>,
    find_capacity: Option<CapacitySpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RampSpec {
    to: f64,
    over_secs: Secs,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpikeSpec {
    peak: f64,
    at_secs: Secs,
    hold_secs: Secs,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CapacitySpec {
    low: f64,
    high: f64,
    attainment: Option<f64>,
    max_runs: Option<u32>,
    precision: Option<f64>,
}

/// `Ok(())` when exactly one of `given` (field, present) is present;
/// else an error naming `at` and the fields.
fn one_of(at: &str, given: &[(&str, bool)]) -> Result<()> {
    let names: Vec<&str> = given.iter().map(|(n, _)| *n).collect();
    let set: Vec<&str> = given.iter().filter(|(_, s)| *s).map(|(n, _)| *n).collect();
    match set.len() {
        1 => Ok(()),
        0 => Err(Error::scenario(format!(
            "{at}: give one of {}",
            names.join(", ")
        ))),
        _ => Err(Error::scenario(format!(
            "{at}: give one of {}, not {}",
            names.join(", "),
            set.join(" and ")
        ))),
    }
}

impl ScenarioSpec {
    /// The scenario as the builder makes it; dataset paths are relative to
    /// `dir`, the file's folder.
    pub(crate) fn into_bench(self, dir: &Path) -> Result<Bench> {
        let mut bench = Bench::new()
            .workload(self.workload.into_workload(dir)?)
            .load(self.load.into_load("load")?);
        if let Some(slo) = self.slo.0 {
            bench = bench.slo(slo);
        }
        if let Some(engine) = self.engine {
            bench = bench.engine(engine.0);
        }
        if let Some(seed) = self.seed {
            bench = bench.seed(seed);
        }
        if self.compare_streaming {
            bench = bench.compare_streaming();
        }
        Ok(bench.fail_on_regression(self.fail_on_regression))
    }
}

impl WorkloadSpec {
    fn into_workload(self, dir: &Path) -> Result<Workload> {
        one_of(
            "workload",
            &[
                ("preset", self.preset.is_some()),
                ("prompts", self.prompts.is_some()),
                ("template", self.template.is_some()),
                ("jsonl", self.jsonl.is_some()),
                ("sharegpt", self.sharegpt.is_some()),
            ],
        )?;
        if self.cases.is_some() != self.template.is_some() {
            return Err(Error::scenario(if self.cases.is_some() {
                "workload.cases: fill a `template`; give one, or drop the cases"
            } else {
                "workload.template: needs `cases`, a list of its parameters' values"
            }));
        }
        if self.multi_turn.is_some() && self.sharegpt.is_none() {
            return Err(Error::scenario(
                "workload.multi_turn: chooses how a `sharegpt` file is read (a JSONL file's \
                 `messages` are always sent whole)",
            ));
        }
        if self.max_tokens.is_some() && self.output_tokens.is_some() {
            return Err(Error::scenario(
                "workload.max_tokens: max_tokens gives every request one budget and \
                 output_tokens draws one per request; keep one of them",
            ));
        }
        let mut w = match (
            self.preset,
            self.prompts,
            self.template,
            self.jsonl,
            self.sharegpt,
        ) {
            (Some(preset), ..) => Workload::preset(preset),
            (_, Some(prompts), ..) => Workload::prompts(prompts),
            (_, _, Some(template), ..) => Workload::template(
                &template,
                self.cases
                    .unwrap_or_default()
                    .into_iter()
                    .map(|case| case.into_iter().map(|(k, v)| (k, v.0))),
            ),
            (_, _, _, Some(path), _) => Workload::jsonl(dir.join(path))?,
            (_, _, _, _, Some(path)) if self.multi_turn == Some(true) => {
                Workload::sharegpt_multi_turn(dir.join(path))?
            }
            (_, _, _, _, Some(path)) => Workload::sharegpt(dir.join(path))?,
            (None, None, None, None, None) => return Err(Error::scenario("workload: no prompts")),
        };
        if let Some(l) = self.prompt_tokens {
            w = w.prompt_tokens(l.0);
        }
        if let Some(path) = self.tokenizer_json {
            w = w.tokenizer_json(dir.join(path));
        }
        if let Some(n) = self.shared_prefix_tokens {
            w = w.shared_prefix_tokens(n);
        }
        if let Some(n) = self.max_tokens {
            w = w.max_tokens(n);
        }
        if let Some(l) = self.output_tokens {
            w = w.output_tokens(l.0);
        }
        w = match self.mode {
            Some(Mode::Completion) => w.completion(),
            Some(Mode::Chat) => w.chat_mode(),
            None => w,
        };
        if let Some(stream) = self.stream {
            w = w.stream(stream);
        }
        if let Some(exact) = self.exact_output {
            w = w.exact_output(exact);
        }
        if let Some(n) = self.sample {
            w = w.sample(n);
        }
        if let Some(r) = self.keep_prompt_tokens {
            w = w.keep_prompt_tokens(r.min..=r.max);
        }
        Ok(w)
    }
}

impl LoadSpec {
    /// The load; `at` names it in errors (`load`, `load.steps[1]`).
    fn into_load(self, at: &str) -> Result<Load> {
        one_of(
            at,
            &[
                ("preset", self.preset.is_some()),
                ("users", self.users.is_some()),
                ("rate", self.rate.is_some()),
                ("steps", self.steps.is_some()),
            ],
        )?;
        let mut load = match (self.preset, self.users, self.rate, self.steps) {
            (Some(LoadPreset::Quick), ..) => Load::quick(),
            (Some(LoadPreset::Stress), ..) => Load::stress(),
            (Some(LoadPreset::SpikeTest), ..) => Load::spike_test(),
            (Some(LoadPreset::Endurance), ..) => Load::endurance(),
            (_, Some(users), ..) => Load::users(users),
            (_, _, Some(rate), _) => Load::rate(rate),
            (_, _, _, Some(steps)) => Load::steps(
                steps
                    .into_iter()
                    .enumerate()
                    .map(|(i, step)| step.into_load(&format!("{at}.steps[{i}]")))
                    .collect::<Result<Vec<Load>>>()?,
            ),
            (None, None, None, None) => return Err(Error::scenario(format!("{at}: no level"))),
        };
        if self.poisson {
            load = load.poisson();
        }
        if let Some(b) = self.gamma {
            load = load.gamma(b);
        }
        if let Some(n) = self.max_in_flight {
            load = load.max_in_flight(n);
        }
        if let Some(t) = self.think_time_secs {
            load = load.think_time(t.0);
        }
        if let Some(r) = self.ramp_to {
            load = load.ramp_to(r.to, r.over_secs.0);
        }
        if let Some(s) = self.spike_to {
            load = load.spike_to(s.peak, s.at_secs.0, s.hold_secs.0);
        }
        if let Some(w) = self.warmup_secs {
            load = load.warmup_for(w.0);
        }
        if let Some(d) = self.for_secs {
            load = load.for_duration(d.0);
        }
        if let Some(n) = self.requests {
            load = load.requests(n);
        }
        if let Some(levels) = self.sweep {
            load = load.sweep(levels);
        }
        if let Some(c) = self.find_capacity {
            let mut search = Capacity::between(c.low, c.high);
            if let Some(a) = c.attainment {
                search = search.attainment(a);
            }
            if let Some(n) = c.max_runs {
                search = search.max_runs(n);
            }
            if let Some(p) = c.precision {
                search = search.precision(p);
            }
            load = load.find_capacity(search);
        }
        Ok(load)
    }
}
