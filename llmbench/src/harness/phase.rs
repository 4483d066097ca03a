//! One result set: run one load against one engine (launching it if need
//! be), judge it, compare it with the baseline, record it in the run
//! directory and print its line; and the live view while it runs.

use std::io::Write;
use std::time::SystemTime;

use libtest_mimic::Failed;

use super::{limits, lines, live, lock, run, sharding, Shared, TrialCtx};
use crate::engine::Engine;
use crate::measure::{Aggregate, Summary};
use crate::report::{self, TrialStatus, TrialSummary};
use crate::ValidBench;

impl Shared {
    /// Run one load (a whole scenario, or one step of a sequence) and
    /// record it in `summary.json`; `judge_slos`: a missed SLO fails it.
    /// Returns the verdict and, when it ran, its figures.
    pub(super) fn run_phase(
        &self,
        trial: &TrialCtx,
        bench: &ValidBench,
        step: Option<String>,
        judge_slos: bool,
    ) -> (std::result::Result<(), Failed>, Option<Summary>) {
        let TrialCtx {
            scenario,
            description,
            engine,
            bench_mode,
            base_seed,
        } = trial;
        let bench_mode = *bench_mode;
        let started = SystemTime::now();
        let (jsonl, log_dir) = if bench_mode {
            let (jsonl, dir) = match self.take_jsonl(started) {
                Ok(taken) => taken,
                Err(e) => return (Err(e.chain().into()), None),
            };
            self.start_monitor(&dir);
            let noted = self.note_in_meta(|meta| {
                meta.add_scenario(scenario, description, bench);
                meta.add_engine(engine);
            });
            if let Err(e) = noted {
                // Keep the records' writer for the trials that follow.
                if let Some(run) = lock(&self.run).as_mut() {
                    run.jsonl = jsonl;
                }
                return (Err(e.chain().into()), None);
            }
            (jsonl, dir.join("engines"))
        } else {
            (None, self.smoke_logs.clone())
        };
        let stop = self.stop_tx.subscribe();
        let launched = self
            .check_limits(bench, engine)
            .and_then(|()| self.launcher.ensure(engine, &log_dir, &self.runtime, stop));
        let (engine_pid, result, jsonl) = match launched {
            Ok(engine_pid) => {
                let setup = run::TrialSetup {
                    scenario: scenario.to_string(),
                    step: step.clone(),
                    engine: engine.clone(),
                    bench: bench.clone(),
                    request_timeout: self.request_timeout,
                    retries: self.retries,
                    timeouts: self.timeouts,
                    keep_records: false,
                    jsonl,
                    stop: self.stop_tx.subscribe(),
                    live: None,
                    monitor: bench_mode.then(|| {
                        let trial = self.monitor_trial(
                            scenario,
                            step.as_deref(),
                            engine,
                            engine_pid.or(engine.process_id()),
                        );
                        (self.monitor.clone(), trial)
                    }),
                };
                let name = match &step {
                    Some(s) => format!("{scenario}/{} ({s})", engine.label()),
                    None => format!("{scenario}/{}", engine.label()),
                };
                let (setup, ticker) = self.live_view(setup, name);
                let (result, jsonl) = self.runtime.block_on(run::execute(setup));
                if let Some(ticker) = ticker {
                    ticker.stop();
                }
                (engine_pid, result.map_err(|e| e.chain()), jsonl)
            }
            Err(why) => (None, Err(why), jsonl),
        };
        let interrupted = *self.stop_tx.borrow();
        let (mut status, mut error) = match &result {
            // Smoke runs prove a scenario works: one or two shortened
            // requests say nothing about its percentiles.
            Ok(run) => lines::verdict(run, judge_slos),
            Err(why) if interrupted => (TrialStatus::Interrupted, Some(why.clone())),
            Err(why) => (TrialStatus::Failed, Some(why.clone())),
        };
        if let (true, Ok(run)) = (bench_mode, &result) {
            let (label, version) = (engine.label(), run.engine_version.clone());
            let gpu = lock(&self.gpu_status).clone();
            // run.json is a record of the run: failing to update it is noted, not fatal.
            if let Err(e) = self.note_in_meta(|m| {
                m.set_engine_version(label, version);
                m.gpu = m.gpu.take().or(gpu);
            }) {
                eprintln!("llmbench: {}", e.chain());
            }
        }
        let mut compared = Vec::new();
        if let (true, Ok(run)) = (bench_mode, &result) {
            let judged = self.against_baseline(trial, bench, &step, run);
            compared = judged.lines;
            if let Some(why) = judged.failure {
                if status == TrialStatus::Ok {
                    status = TrialStatus::Failed;
                }
                error = Some(error.map_or_else(|| why.clone(), |e| format!("{e}\n{why}")));
            }
        }
        if engine_pid.is_some() {
            // A failed trial may have left the engine in a bad state: it is
            // stopped (the next trial of it starts it afresh); say if it died.
            let failed = status == TrialStatus::Failed;
            if let Some(note) = self.launcher.release(engine.label(), failed) {
                error = error.map(|e| format!("{e}\n{note}"));
            }
        }
        let summary = match &result {
            Ok(run) => run.summary.clone(),
            Err(_) => Aggregate::with_slos(&bench.slos).summary(),
        };
        if bench_mode {
            let model = match &result {
                Ok(run) => run.model.clone(),
                Err(_) => engine.model().unwrap_or_default().to_string(),
            };
            let trial = TrialSummary {
                scenario: scenario.to_string(),
                step: step.clone(),
                description: description.to_string(),
                engine: engine.label().to_string(),
                engine_kind: engine.kind().as_str().to_string(),
                engine_url: engine.url().to_string(),
                engine_command: engine.launch_spec().map(|s| s.command_line()),
                engine_pid,
                model,
                mode: bench.workload.mode,
                max_tokens: bench.workload.output_budget(),
                users: bench.load.users,
                duration_limit_s: bench.load.duration.map(|d| d.as_secs_f64()),
                request_limit: bench.load.requests,
                seed: *base_seed,
                started_at: report::rfc3339(started),
                status,
                error: error.clone(),
                cost: engine
                    .hourly_price()
                    .map(|p| report::Cost::new(p, &summary)),
                workload: workload_summary(
                    &bench.workload,
                    &summary,
                    result.as_ref().ok().and_then(|r| r.prompt_lengths.clone()),
                ),
                shards: self
                    .shard
                    .map(|s| {
                        let t0 = result.as_ref().map_or(started, |r| r.t0_wall);
                        sharding::shard_info(s, Some(bench.seed), self.start_at, t0)
                    })
                    .into_iter()
                    .collect(),
                summary: summary.clone(),
            };
            let kept = self
                .record_trial(trial, jsonl)
                .and_then(|()| match &result {
                    Ok(run) => self.keep_histograms(scenario, &step, engine, run),
                    Err(_) => Ok(()),
                });
            if let Err(e) = kept {
                return (Err(e.chain().into()), None);
            }
        }
        if self.inline_figures && result.is_ok() {
            print!("{} ", lines::headline(&summary));
            if let Some(phases) = lines::phase_line(&summary) {
                print!("\n      phases: {phases}\n    ");
            }
            if !compared.is_empty() {
                print!("\n      {}\n    ", compared.join("\n      "));
            }
            let _ = std::io::stdout().flush();
        }
        let figures = result.is_ok().then_some(summary);
        match error {
            None => (Ok(()), figures),
            Some(msg) => (Err(msg.into()), figures),
        }
    }

    /// Whether the open-files limit allows `bench`'s load against
    /// `engine` (raising it if need be), or why not; a load that only may
    /// need more gets a note on stderr.
    pub(super) fn check_limits(
        &self,
        bench: &ValidBench,
        engine: &Engine,
    ) -> std::result::Result<(), String> {
        // The simulator started here holds the other end of every stream.
        let in_process = lock(&self.sim)
            .as_ref()
            .is_some_and(|sim| sim.url() == engine.url());
        match limits::ensure(&bench.load, self.request_timeout, in_process) {
            Ok(None) => Ok(()),
            Ok(Some(note)) => {
                eprintln!("llmbench: note: {note}");
                Ok(())
            }
            Err(e) => Err(e.chain()),
        }
    }

    /// Start the live view of the trial `setup` runs, unless `--quiet` or
    /// smoke mode (two requests) make it pointless.
    pub(super) fn live_view(
        &self,
        mut setup: run::TrialSetup,
        name: String,
    ) -> (run::TrialSetup, Option<live::Ticker>) {
        if !self.live_view || setup.jsonl.is_none() {
            return (setup, None);
        }
        let load = &setup.bench.load;
        let goal = match (load.request_limit(), load.duration()) {
            (Some(n), _) => live::Goal::Requests(n),
            (None, Some(d)) => live::Goal::Time(d),
            (None, None) => live::Goal::Unknown,
        };
        let figures = live::Live::default();
        setup.live = Some(figures.clone());
        (setup, live::Ticker::start(name, figures, goal))
    }
}

/// The workload's entry in a result set of `summary.json`, when it says
/// more than the prompts (a preset, fitted lengths, a shared prefix).
fn workload_summary(
    w: &crate::Workload,
    summary: &Summary,
    prompt_lengths: Option<crate::workload::PromptLengths>,
) -> Option<crate::workload::WorkloadSummary> {
    let preset = w.preset_kind();
    if preset.is_none()
        && w.prompt_tokens.is_none()
        && w.output_tokens.is_none()
        && w.shared_prefix_tokens.is_none()
    {
        return None;
    }
    Some(crate::workload::WorkloadSummary {
        preset,
        primary_metric: preset.map(|p| p.primary_metric(summary).to_string()),
        prompt_tokens: w.prompt_tokens.as_ref().map(ToString::to_string),
        output_tokens: w.output_tokens.as_ref().map(ToString::to_string),
        prompt_lengths,
        shared_prefix_tokens: w.shared_prefix_tokens,
    })
}
