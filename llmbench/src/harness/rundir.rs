//! The run directory's state across trials: `requests.jsonl`'s writer,
//! `summary.json` and `run.json` rewritten as trials finish, and the end of
//! the run (engines stopped, baselines saved, reports written).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::{lock, RunState, Shared};
use crate::error::{Error, Result};
use crate::report::meta::RunMeta;
use crate::report::{self, JsonlWriter, RunData, RunDir, TrialSummary};

impl Shared {
    /// The run's `requests.jsonl` writer (creating the run directory on
    /// the first call) and the run directory.
    pub(super) fn take_jsonl(&self, now: SystemTime) -> Result<(Option<JsonlWriter>, PathBuf)> {
        let mut run = lock(&self.run);
        if run.is_none() {
            let dir = RunDir::create(&self.out_root, now)?;
            let jsonl = dir.requests()?;
            *run = Some(RunState {
                dir,
                jsonl: Some(jsonl),
                data: RunData::new(report::rfc3339(now)),
                meta: RunMeta::collect(report::rfc3339(now)),
                sets: Vec::new(),
                comparisons: Vec::new(),
                histograms: Vec::new(),
            });
        }
        let run = run
            .as_mut()
            .ok_or_else(|| Error::config("the run directory was not created"))?;
        Ok((run.jsonl.take(), run.dir.path().to_path_buf()))
    }

    /// Change `run.json` with `change` and rewrite it.
    pub(super) fn note_in_meta(&self, change: impl FnOnce(&mut RunMeta)) -> Result<()> {
        let mut guard = lock(&self.run);
        let Some(run) = guard.as_mut() else {
            return Ok(());
        };
        change(&mut run.meta);
        run.dir.write_meta(&run.meta)
    }

    pub(super) fn record_trial(
        &self,
        trial: TrialSummary,
        jsonl: Option<JsonlWriter>,
    ) -> Result<()> {
        self.update_summary(|run| {
            run.jsonl = jsonl;
            run.data.trials.push(trial);
        })
    }

    /// Change the run's state with `change`, then rewrite `summary.json`.
    pub(super) fn update_summary(&self, change: impl FnOnce(&mut RunState)) -> Result<()> {
        let mut guard = lock(&self.run);
        let Some(run) = guard.as_mut() else {
            return Ok(());
        };
        change(run);
        run.dir.write_summary(&run.data)
    }

    /// End the run: stop the engines, then say where the results are.
    /// `failed`: a trial failed (a smoke run then keeps its engines' logs).
    pub(super) fn finish(&self, failed: bool) {
        self.launcher.stop_all();
        self.finish_baselines();
        if self.smoke_logs.is_dir() {
            if failed {
                println!(
                    "llmbench: launched engines' logs in {}",
                    self.smoke_logs.display()
                );
            } else {
                let _ = std::fs::remove_dir_all(&self.smoke_logs);
            }
        }
        lock(&self.sim).take();
        if let Some(run) = lock(&self.run).as_mut() {
            run.meta.ended_at = Some(report::rfc3339(SystemTime::now()));
            let reports = run
                .dir
                .write_meta(&run.meta)
                .and_then(|()| report::write_reports(run.dir.path(), &run.data, Some(&run.meta)));
            match reports {
                Ok(written) => {
                    for note in written.notes {
                        eprintln!("llmbench: note: {note}");
                    }
                }
                // The records and summary.json are already safe on disk;
                // `llmbench report DIR` writes the reports again.
                Err(e) => eprintln!(
                    "llmbench: error writing the reports: {}; the records are kept, and \
                     `llmbench report {}` writes them again",
                    e.chain(),
                    run.dir.path().display()
                ),
            }
            let path = run.dir.path();
            let shown = std::env::current_dir()
                .ok()
                .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
                .unwrap_or_else(|| path.to_path_buf());
            println!("llmbench: results in {}", shown.display());
        }
    }
}
