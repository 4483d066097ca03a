//! Trials made of several runs against one engine: a sequence of steps
//! (`Load::steps`, `.sweep`), each its own result set, with the scaling
//! table across them; and a capacity search, which runs the scenario at the
//! rates a bisection picks until it knows the highest rate that meets the
//! SLOs.

use std::io::Write;

use libtest_mimic::Failed;

use super::{lines, Shared, TrialCtx};
use crate::load::{Capacity, Load, Search};
use crate::measure::{scaling_table, PromptScaling, StreamingComparison};
use crate::report::CapacityEntry;
use crate::ValidBench;

type Verdict = std::result::Result<(), Failed>;

impl Shared {
    /// Print the start of a step's line under the trial's.
    fn step_line(&self, step: &str) {
        if self.inline_figures {
            print!("\n    {step:>12}: ");
            let _ = std::io::stdout().flush();
        }
    }

    /// Print `text` (lines) under the trial's line, before libtest's verdict.
    fn below(&self, text: &str) {
        if self.inline_figures {
            print!("\n{text}\n    ");
            let _ = std::io::stdout().flush();
        }
    }

    /// Run each step of `bench`'s sequence as its own result set, then the
    /// scaling table across them.
    pub(super) fn run_steps(&self, trial: &TrialCtx, bench: &ValidBench) -> Verdict {
        let mut failures = Vec::new();
        let mut done = Vec::new();
        for phase in bench.load.phases().to_vec() {
            if *self.stop_tx.borrow() {
                failures.push("not all steps ran: the run was interrupted".to_string());
                break;
            }
            let level = phase.level();
            let step = level.map_or_else(|| "step".to_string(), |l| l.to_string());
            self.step_line(&step);
            let mut one = bench.clone();
            one.load = phase;
            let (verdict, figures) = self.run_phase(trial, &one, Some(step.clone()), true);
            if let Err(failed) = verdict {
                failures.push(format!("{step}: {}", failed.message().unwrap_or("failed")));
            }
            if let (Some(level), Some(figures)) = (level, figures) {
                done.push((level, step, figures));
            }
        }
        if done.len() > 1 {
            let table = scaling_table(&trial.scenario, trial.engine.label(), &done);
            self.below(&lines::scaling_lines(&table));
            if let Err(e) = self.update_summary(|run| run.data.scaling.push(table)) {
                failures.push(e.chain());
            }
        } else if self.inline_figures {
            print!("\n    ");
        }
        verdict(failures)
    }

    /// Search for the highest rate at which the target share of requests
    /// meets every SLO. A run that misses its SLOs is what the search looks
    /// for, not a failure; a run that cannot be made at all (the engine is
    /// down, every request failed) fails the trial.
    pub(super) fn run_capacity(
        &self,
        trial: &TrialCtx,
        bench: &ValidBench,
        spec: Capacity,
    ) -> Verdict {
        let mut search = Search::new(spec);
        let mut failure = None;
        while let Some(rate) = search.next_rate() {
            if *self.stop_tx.borrow() {
                failure = Some("the search was interrupted".to_string());
                break;
            }
            let step = format!("capacity {rate:.3} req/s");
            self.step_line(&step);
            let mut one = bench.clone();
            one.load = at_rate(&bench.load, rate);
            let (verdict, figures) = self.run_phase(trial, &one, Some(step.clone()), false);
            if *self.stop_tx.borrow() {
                failure = Some("the search was interrupted".to_string());
                break;
            }
            // A run that happened counts by its attainment, even one whose
            // every request failed (an overwhelmed engine meets no SLO).
            match (figures.and_then(|s| s.slo_attainment), verdict) {
                (Some(share), _) => search.record(rate, share),
                (None, Err(failed)) => {
                    failure = Some(format!("{step}: {}", failed.message().unwrap_or("failed")));
                    break;
                }
                (None, Ok(())) => {
                    failure = Some(format!("{step}: no SLO attainment to judge by"));
                    break;
                }
            }
        }
        let result = search.result();
        self.below(&format!("    {}", result.describe()));
        let entry = CapacityEntry {
            scenario: trial.scenario.clone(),
            engine: trial.engine.label().to_string(),
            result,
        };
        if let Err(e) = self.update_summary(|run| run.data.capacity.push(entry)) {
            failure.get_or_insert(e.chain());
        }
        match failure {
            None => Ok(()),
            Some(why) => Err(why.into()),
        }
    }
}

impl Shared {
    /// Run the scenario once per prompt length of its list
    /// (`Workload::prompt_tokens([1024, 2048])`), each its own result set
    /// labelled "1024 prompt tokens".
    pub(super) fn run_prompt_steps(
        &self,
        trial: &TrialCtx,
        bench: &ValidBench,
        lengths: &[u32],
    ) -> Verdict {
        let mut failures = Vec::new();
        let mut done = Vec::new();
        for &n in lengths {
            if *self.stop_tx.borrow() {
                failures.push("not all prompt lengths ran: the run was interrupted".to_string());
                break;
            }
            let step = format!("{n} prompt tokens");
            self.step_line(&step);
            let mut one = bench.clone();
            one.workload = one.workload.prompt_tokens(n);
            let (verdict, figures) = self.run_phase(trial, &one, Some(step.clone()), true);
            if let Err(failed) = verdict {
                failures.push(format!("{step}: {}", failed.message().unwrap_or("failed")));
            }
            done.extend(figures.map(|f| (n, f)));
        }
        if done.len() > 1 {
            let scaling = PromptScaling::new(&trial.scenario, trial.engine.label(), &done);
            self.below(&format!("    {}", scaling.describe()));
            if let Err(e) = self.update_summary(|run| run.data.prompt_scaling.push(scaling)) {
                failures.push(e.chain());
            }
        } else if self.inline_figures {
            print!("\n    ");
        }
        verdict(failures)
    }

    /// Run the scenario streamed, then unstreamed, each its own result set,
    /// and compare the two.
    pub(super) fn run_streaming_comparison(&self, trial: &TrialCtx, bench: &ValidBench) -> Verdict {
        let mut failures = Vec::new();
        let mut figures = Vec::new();
        for (step, stream) in [("stream", true), ("no stream", false)] {
            if *self.stop_tx.borrow() {
                failures.push("not both runs ran: the run was interrupted".to_string());
                break;
            }
            self.step_line(step);
            let mut one = bench.clone();
            one.workload.stream = stream;
            let (verdict, summary) = self.run_phase(trial, &one, Some(step.to_string()), true);
            if let Err(failed) = verdict {
                failures.push(format!("{step}: {}", failed.message().unwrap_or("failed")));
            }
            figures.extend(summary);
        }
        if let [streamed, whole] = figures.as_slice() {
            let c =
                StreamingComparison::new(&trial.scenario, trial.engine.label(), streamed, whole);
            self.below(&format!("    {}", c.describe()));
            if let Err(e) = self.update_summary(|run| run.data.streaming.push(c)) {
                failures.push(e.chain());
            }
        } else if self.inline_figures {
            print!("\n    ");
        }
        verdict(failures)
    }
}

/// A trial made of several runs passes when every run did; otherwise it
/// fails with each run's reason on a line of its own.
fn verdict(failures: Vec<String>) -> Verdict {
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n").into())
    }
}

/// `load` at `rate` requests per second, no longer a search.
fn at_rate(load: &Load, rate: f64) -> Load {
    let mut one = load.clone();
    one.rate = Some(rate);
    one.capacity = None;
    one
}
