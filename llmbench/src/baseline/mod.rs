//! Saved baselines and comparisons against them, as criterion does for
//! functions: `--save-baseline NAME` keeps each result set's summary and
//! samples under `target/llmbench/baselines/NAME/baseline.json` (written
//! aside, then renamed: a crash never leaves half a baseline);
//! `--baseline NAME` compares every result set with it, metric by metric
//! ([`compare`]), and `--fail-on-regression` turns a regression into a
//! failed trial. `llmbench compare A B` compares any two runs or baselines.

mod compare;
mod stats;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use compare::{compare, CompareConfig, MetricChange, Verdict};
pub use stats::{bootstrap_change, mann_whitney, two_proportions, welch, Statistic};

use crate::error::{Error, Result};
use crate::measure::{RequestRecord, Samples, Summary};
use crate::report::meta::{GitState, ScenarioMeta};

/// Layout version of `baseline.json` and `comparison.json`.
pub const BASELINE_SCHEMA: u32 = 1;

/// One result set as a baseline keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BaselineSet {
    /// The scenario.
    pub scenario: String,
    /// The step of a sequence, if any.
    pub step: Option<String>,
    /// The engine's label.
    pub engine: String,
    /// The engine's kind (`openai`, ...).
    pub engine_kind: String,
    /// The model.
    pub model: String,
    /// The scenario as defined for that run, when known.
    pub definition: Option<ScenarioMeta>,
    /// Its figures.
    pub summary: Summary,
    /// What comparisons resample.
    pub samples: Samples,
}

impl BaselineSet {
    /// Whether `other` is the same scenario, step and engine label.
    pub fn same_key(&self, other: &BaselineSet) -> bool {
        self.scenario == other.scenario && self.step == other.step && self.engine == other.engine
    }

    /// Why `self` (now) cannot be compared with `base`, if it cannot.
    pub fn not_comparable(&self, base: &BaselineSet) -> Option<String> {
        if self.engine_kind != base.engine_kind && !base.engine_kind.is_empty() {
            return Some(format!(
                "the engine changed kind: {} then, {} now",
                base.engine_kind, self.engine_kind
            ));
        }
        if self.model != base.model {
            return Some(format!(
                "the model changed: `{}` then, `{}` now",
                base.model, self.model
            ));
        }
        if let (Some(a), Some(b)) = (&base.definition, &self.definition) {
            let mut diffs = Vec::new();
            for (field, x, y) in [("mode", &a.mode, &b.mode), ("load", &a.load, &b.load)] {
                if x != y {
                    diffs.push(format!("{field}: {x} then, {y} now"));
                }
            }
            if a.max_tokens != b.max_tokens {
                diffs.push(format!(
                    "max_tokens: {} then, {} now",
                    a.max_tokens, b.max_tokens
                ));
            }
            if a.prompts != b.prompts || a.stream != b.stream || a.seed != b.seed {
                diffs.push("the workload (prompts, streaming or seed) changed".into());
            }
            if !diffs.is_empty() {
                return Some(format!("the scenario changed: {}", diffs.join("; ")));
            }
        }
        None
    }
}

/// A saved baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// [`BASELINE_SCHEMA`] when it was written.
    pub schema: u32,
    /// Its name.
    pub name: String,
    /// When it was saved (RFC 3339).
    pub saved_at: String,
    /// The llmbench that saved it.
    pub llmbench_version: String,
    /// The user's commit then, if known.
    pub git: Option<GitState>,
    /// Every result set.
    pub sets: Vec<BaselineSet>,
}

/// `target/llmbench/baselines` beside a runs root `target/llmbench/runs`.
pub fn default_root(runs_root: &Path) -> PathBuf {
    runs_root
        .parent()
        .map_or_else(|| PathBuf::from("baselines"), |p| p.join("baselines"))
}

/// Check a baseline name: letters, digits, `.`, `_` and `-`, not starting with `.`.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::config(format!(
            "baseline name `{name}`: use letters, digits, `.`, `_` and `-` (not starting with `.`)"
        )))
    }
}

fn io_err(what: String, e: io::Error) -> Error {
    Error::io(what, e)
}

/// Save `baseline` as `root/<name>/baseline.json`, replacing any baseline
/// of that name only once the new one is complete: a new baseline's folder
/// is made aside and renamed into place; an existing one's file is written
/// aside and renamed over. A crash at any moment leaves the old baseline
/// or the new one, whole.
pub fn save(root: &Path, baseline: &Baseline) -> Result<PathBuf> {
    check_name(&baseline.name)?;
    let dir = root.join(&baseline.name);
    let tmp = root.join(format!(".{}.tmp-{}", baseline.name, std::process::id()));
    let write_file = |path: &Path| -> io::Result<()> {
        let file = fs::File::create(path)?;
        let mut w = io::BufWriter::new(file);
        serde_json::to_writer(&mut w, baseline).map_err(io::Error::from)?;
        w.into_inner()
            .map_err(io::IntoInnerError::into_error)?
            .sync_all()
    };
    let write = || -> io::Result<()> {
        if dir.is_dir() {
            let aside = dir.join(format!("baseline.json.tmp-{}", std::process::id()));
            let result =
                write_file(&aside).and_then(|()| fs::rename(&aside, dir.join("baseline.json")));
            if result.is_err() {
                let _ = fs::remove_file(&aside);
            }
            return result;
        }
        fs::create_dir_all(&tmp)?;
        write_file(&tmp.join("baseline.json"))?;
        fs::rename(&tmp, &dir)
    };
    fs::create_dir_all(root).map_err(|e| io_err(format!("creating {}", root.display()), e))?;
    write().map_err(|e| {
        let _ = fs::remove_dir_all(&tmp);
        io_err(
            format!("saving baseline `{}` in {}", baseline.name, dir.display()),
            e,
        )
    })?;
    Ok(dir)
}

/// Load baseline `name` from `root`: the error names the file and what is
/// wrong (missing, truncated, corrupt, from a newer llmbench).
pub fn load(root: &Path, name: &str) -> Result<Baseline> {
    check_name(name)?;
    let path = root.join(name).join("baseline.json");
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let known = list(root).unwrap_or_default();
            let known: Vec<String> = known.into_iter().map(|b| b.0).collect();
            return Err(Error::config(format!(
                "no baseline `{name}` ({} not found); saved baselines: {}",
                path.display(),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
        }
        Err(e) => return Err(io_err(format!("reading {}", path.display()), e)),
    };
    parse(&text, &path)
}

/// Parse a `baseline.json` read from `path`.
pub fn parse(text: &str, path: &Path) -> Result<Baseline> {
    let schema = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("schema").and_then(serde_json::Value::as_u64));
    if let Some(s) = schema.filter(|&s| s > u64::from(BASELINE_SCHEMA)) {
        return Err(Error::config(format!(
            "{}: schema {s} is newer than this llmbench reads ({BASELINE_SCHEMA}); use a newer llmbench or save the baseline again",
            path.display()
        )));
    }
    serde_json::from_str(text).map_err(|e| {
        let what = if e.is_eof() {
            "truncated"
        } else {
            "not a baseline"
        };
        Error::config(format!(
            "{}: {what} (line {}, column {}: {e}); save the baseline again",
            path.display(),
            e.line(),
            e.column()
        ))
    })
}

/// The baselines under `root`: (name, saved_at, result sets); unreadable
/// ones are listed with what is wrong in place of the date.
pub fn list(root: &Path) -> Result<Vec<(String, String, usize)>> {
    let entries = match fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(format!("listing {}", root.display()), e)),
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !entry.path().join("baseline.json").is_file() {
            continue;
        }
        match load(root, &name) {
            Ok(b) => out.push((name, b.saved_at, b.sets.len())),
            Err(e) => out.push((name, format!("unreadable: {e}"), 0)),
        }
    }
    out.sort();
    Ok(out)
}

/// One result set's comparison.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SetComparison {
    /// The scenario.
    pub scenario: String,
    /// The step, if any.
    pub step: Option<String>,
    /// The engine.
    pub engine: String,
    /// Why it was not compared; `None` when it was.
    pub not_comparable: Option<String>,
    /// Every metric compared.
    pub metrics: Vec<MetricChange>,
}

impl SetComparison {
    /// Compare `now` with its set in `base`, if there is one.
    pub fn of(base: &Baseline, now: &BaselineSet, cfg: &CompareConfig) -> Self {
        let mut c = SetComparison {
            scenario: now.scenario.clone(),
            step: now.step.clone(),
            engine: now.engine.clone(),
            not_comparable: None,
            metrics: Vec::new(),
        };
        match base.sets.iter().find(|b| b.same_key(now)) {
            None => c.not_comparable = Some(format!("not in baseline `{}`", base.name)),
            Some(old) => match now.not_comparable(old) {
                Some(why) => c.not_comparable = Some(why),
                None => c.metrics = compare(&old.samples, &now.samples, cfg),
            },
        }
        c
    }

    /// The metrics that regressed.
    pub fn regressions(&self) -> impl Iterator<Item = &MetricChange> {
        self.metrics
            .iter()
            .filter(|m| m.verdict == Verdict::Regressed)
    }

    /// The lines printed under the trial.
    pub fn lines(&self) -> Vec<String> {
        match &self.not_comparable {
            Some(why) => vec![format!("not comparable with the baseline: {why}")],
            None => self.metrics.iter().map(MetricChange::line).collect(),
        }
    }
}

/// `comparison.json`: a run against a baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// [`BASELINE_SCHEMA`].
    pub schema: u32,
    /// The baseline's name.
    pub baseline: String,
    /// When it was saved.
    pub baseline_saved_at: String,
    /// The noise threshold used.
    pub noise_threshold: f64,
    /// The significance level used.
    pub significance: f64,
    /// Every result set of the run.
    pub sets: Vec<SetComparison>,
}

impl Comparison {
    /// A Markdown table for a pull-request comment.
    pub fn markdown(&self) -> String {
        let mut out = format!(
            "### llmbench: against baseline `{}` (saved {})\n\n| result set | metric | baseline | now | change | 95% CI | verdict |\n| --- | --- | ---: | ---: | ---: | --- | --- |\n",
            self.baseline, self.baseline_saved_at
        );
        for s in &self.sets {
            let set = match &s.step {
                Some(step) => format!("{} / {} ({step})", s.scenario, s.engine),
                None => format!("{} / {}", s.scenario, s.engine),
            };
            if let Some(why) = &s.not_comparable {
                out.push_str(&format!(
                    "| {set} | - | - | - | - | - | not comparable: {why} |\n"
                ));
                continue;
            }
            for m in &s.metrics {
                let ci = m.ci.map_or_else(
                    || "-".into(),
                    |[l, h]| format!("[{:+.1}%, {:+.1}%]", l * 100.0, h * 100.0),
                );
                let change = if m.unit == "%" {
                    format!("{:+.2} pt", m.change)
                } else {
                    format!("{:+.1}%", m.change * 100.0)
                };
                let verdict = match m.verdict {
                    Verdict::Regressed => "**regressed**",
                    v => v.as_str(),
                };
                out.push_str(&format!(
                    "| {set} | {} | {:.2} {} | {:.2} {} | {change} | {ci} | {verdict} |\n",
                    m.metric, m.old, m.unit, m.new, m.unit
                ));
            }
        }
        out
    }
}

/// The result sets of a run directory rebuilt from its `requests.jsonl`,
/// with models, kinds and definitions from `summary.json` and `run.json`.
pub fn sets_of_run(dir: &Path) -> Result<Vec<BaselineSet>> {
    use std::io::BufRead;
    let (run, _) = crate::report::load_run(dir)?;
    let meta = crate::report::load_meta(dir);
    let mut sets: Vec<BaselineSet> = run
        .trials
        .iter()
        .map(|t| BaselineSet {
            scenario: t.scenario.clone(),
            step: t.step.clone(),
            engine: t.engine.clone(),
            engine_kind: t.engine_kind.clone(),
            model: t.model.clone(),
            definition: meta
                .as_ref()
                .and_then(|m| m.scenarios.iter().find(|s| s.name == t.scenario).cloned()),
            summary: t.summary.clone(),
            samples: Samples::default(),
        })
        .collect();
    let path = dir.join("requests.jsonl");
    let file =
        fs::File::open(&path).map_err(|e| io_err(format!("opening {}", path.display()), e))?;
    for line in io::BufReader::new(file).lines() {
        let line = line.map_err(|e| io_err(format!("reading {}", path.display()), e))?;
        let Ok(r) = serde_json::from_str::<RequestRecord>(&line) else {
            continue; // reports say which lines were unreadable
        };
        let set = sets
            .iter_mut()
            .find(|s| s.scenario == r.scenario && s.step == r.step && s.engine == r.engine);
        if let Some(set) = set {
            set.samples.add(&r);
        }
    }
    Ok(sets)
}

#[cfg(test)]
mod tests;
