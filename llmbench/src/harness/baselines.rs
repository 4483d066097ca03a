//! The harness's side of baselines: after each result set, its samples are
//! kept (for `--save-baseline`) and compared with the loaded baseline (for
//! `--baseline`), the verdicts printed under the trial like criterion's;
//! at the end the baseline is saved and `comparison.json` and
//! `comparison.md` are written to the run directory.

use crate::baseline::{
    self, Baseline, BaselineSet, Comparison, SetComparison, Verdict, BASELINE_SCHEMA,
};
use crate::error::Result;
use crate::harness::run::TrialRun;
use crate::report;
use crate::ValidBench;

use super::{lock, Shared, TrialCtx};

/// What a comparison means for the trial.
pub(super) struct Judged {
    /// The lines to print under the trial's figures.
    pub lines: Vec<String>,
    /// Why the trial fails, if it does.
    pub failure: Option<String>,
}

impl Shared {
    /// Keep `run`'s samples and compare them with the baseline, if one was
    /// asked for.
    pub(super) fn against_baseline(
        &self,
        trial: &TrialCtx,
        bench: &ValidBench,
        step: &Option<String>,
        run: &TrialRun,
    ) -> Judged {
        let definition = lock(&self.run).as_ref().and_then(|r| {
            r.meta
                .scenarios
                .iter()
                .find(|s| s.name == trial.scenario)
                .cloned()
        });
        let set = BaselineSet {
            scenario: trial.scenario.clone(),
            step: step.clone(),
            engine: trial.engine.label().to_string(),
            engine_kind: trial.engine.kind().as_str().to_string(),
            model: run.model.clone(),
            definition,
            summary: run.summary.clone(),
            samples: run.samples.clone(),
        };
        let mut judged = Judged {
            lines: Vec::new(),
            failure: None,
        };
        match &self.baseline {
            None => {}
            Some(Err(why)) => {
                judged.failure = Some(format!("baseline: {why}"));
            }
            Some(Ok(base)) => {
                let c = SetComparison::of(base, &set, &self.compare_cfg);
                judged.lines = c.lines();
                let gated: Vec<String> = c
                    .regressions()
                    .filter(|m| {
                        m.metric == "error rate"
                            || self.fail_on_regression
                            || bench.fail_on_regression.iter().any(|f| f == &m.metric)
                    })
                    .map(|m| format!("regressed against baseline `{}`: {}", base.name, m.line()))
                    .collect();
                if !gated.is_empty() {
                    judged.failure = Some(gated.join("\n"));
                }
                if let Some(run) = lock(&self.run).as_mut() {
                    run.comparisons.push(c);
                }
            }
        }
        if self.save_baseline.is_some() {
            if let Some(run) = lock(&self.run).as_mut() {
                run.sets.push(set);
            }
        }
        judged
    }

    /// Save the baseline and write the comparison files, at the end of a
    /// run; what went wrong is printed, and the run's own files stay.
    pub(super) fn finish_baselines(&self) {
        let guard = lock(&self.run);
        let Some(run) = guard.as_ref() else {
            return;
        };
        if let Some(Ok(base)) = &self.baseline {
            let comparison = Comparison {
                schema: BASELINE_SCHEMA,
                baseline: base.name.clone(),
                baseline_saved_at: base.saved_at.clone(),
                noise_threshold: self.compare_cfg.noise,
                significance: self.compare_cfg.significance,
                sets: run.comparisons.clone(),
            };
            if let Err(e) = write_comparison(run.dir.path(), &comparison) {
                eprintln!("llmbench: error: {}", e.chain());
            }
            let regressed = comparison
                .sets
                .iter()
                .flat_map(|s| s.metrics.iter())
                .filter(|m| m.verdict == Verdict::Regressed)
                .count();
            println!(
                "llmbench: compared with baseline `{}`: {regressed} metrics regressed (comparison.md in the run directory)",
                base.name
            );
        }
        if let Some(name) = &self.save_baseline {
            let saved = Baseline {
                schema: BASELINE_SCHEMA,
                name: name.clone(),
                saved_at: report::rfc3339(std::time::SystemTime::now()),
                llmbench_version: env!("CARGO_PKG_VERSION").to_string(),
                git: run.meta.git.clone(),
                sets: run.sets.clone(),
            };
            match baseline::save(&self.baseline_root, &saved) {
                Ok(dir) => println!(
                    "llmbench: baseline `{name}` saved ({} result sets) in {}",
                    saved.sets.len(),
                    dir.display()
                ),
                Err(e) => eprintln!("llmbench: error: {}", e.chain()),
            }
        }
    }
}

fn write_comparison(dir: &std::path::Path, c: &Comparison) -> Result<()> {
    report::write_atomically(&dir.join("comparison.json"), |w| {
        serde_json::to_writer_pretty(&mut *w, c).map_err(std::io::Error::from)?;
        std::io::Write::write_all(w, b"\n")
    })?;
    report::write_atomically(&dir.join("comparison.md"), |w| {
        std::io::Write::write_all(w, c.markdown().as_bytes())
    })
}
