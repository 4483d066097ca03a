//! The harness behind `cargo bench`: turns every registered scenario x engine
//! into a libtest-mimic trial, runs them one at a time, and writes the run
//! directory.

mod cli;
mod config;
mod engines;
mod registry;
mod run;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use clap::Parser;
use libtest_mimic::{Failed, Trial};
use tokio::sync::watch;

pub use cli::Args;
pub use config::configured_engines;
pub use run::{run_once, run_once_to, run_once_with, TrialRun};

use crate::engine::{Engine, Timeouts};
use crate::error::{Error, Result};
use crate::measure::{Aggregate, Summary};
use crate::report::{self, JsonlWriter, RunDir, RunSummary, TrialStatus, TrialSummary};
use crate::sim::{SimConfig, Simulator};
use crate::ValidBench;

/// The entry point of a bench binary: `fn main() -> ExitCode { llmbench::main() }`.
///
/// Parses libtest's and llmbench's flags (and their `LLMBENCH_*` twins), runs
/// every selected scenario x engine as a trial, and exits non-zero when a
/// trial failed.
pub fn main() -> ExitCode {
    match Args::try_parse() {
        Ok(args) => run_with(args),
        Err(e) => {
            let _ = e.print();
            if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            }
        }
    }
}

/// Run the harness with already parsed arguments.
pub fn run_with(mut args: Args) -> ExitCode {
    match prepare(&mut args) {
        Ok((trials, shared)) => {
            let conclusion = libtest_mimic::run(&args.libtest, trials);
            shared.finish(conclusion.has_failed());
            conclusion.exit_code()
        }
        Err(e) => {
            eprintln!("error: {}", e.chain());
            ExitCode::from(2)
        }
    }
}

/// Where a trial's requests go.
#[derive(Clone, Debug)]
enum Target {
    Sim,
    Engine(Engine),
}

impl Target {
    fn label(&self) -> &str {
        match self {
            Target::Sim => config::SIM_LABEL,
            Target::Engine(e) => e.label(),
        }
    }
}

/// State shared by every trial of one harness run.
struct Shared {
    runtime: tokio::runtime::Runtime,
    inline_figures: bool,
    duration_scale: Option<f64>,
    request_timeout: Duration,
    retries: u32,
    timeouts: Timeouts,
    out_root: PathBuf,
    sim: Mutex<Option<Simulator>>,
    run: Mutex<Option<RunState>>,
    stop_tx: watch::Sender<bool>,
    /// Engines the harness starts (`[engine.launch]`).
    launcher: engines::Launcher,
    /// Where launched engines log in smoke mode, which has no run directory.
    smoke_logs: PathBuf,
}

struct RunState {
    dir: RunDir,
    started_at: String,
    jsonl: Option<JsonlWriter>,
    trials: Vec<TrialSummary>,
}

fn prepare(args: &mut Args) -> Result<(Vec<Trial>, Arc<Shared>)> {
    // One trial at a time unless asked otherwise: concurrent trials would
    // share the machine and distort each other's numbers.
    args.libtest.test_threads.get_or_insert(1);
    // `cargo bench` passes --bench: every trial then measures. `cargo test
    // --benches` does not: every trial is then a quick smoke test. Trials are
    // libtest "tests" in both modes (libtest-mimic would skip tests under
    // --bench and demand a ns/iter figure from benches, which means nothing
    // for a load test), so the flag is ours to act on.
    let bench_mode = std::mem::take(&mut args.libtest.bench);
    let engines = config::configured_engines(&args.engines, args.engines_file.as_deref())?;
    if let Some(f) = args.duration_scale {
        if !(f.is_finite() && f > 0.0) {
            return Err(Error::config(format!(
                "--duration-scale: must be a positive number (got {f})"
            )));
        }
    }
    let (request_timeout, timeouts) = args.timeouts()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("llmbench-client")
        .build()
        .map_err(|e| Error::io("starting the client runtime", e))?;
    let (stop_tx, _) = watch::channel(false);
    let pretty = !args.libtest.quiet
        && matches!(
            args.libtest.format,
            None | Some(libtest_mimic::FormatSetting::Pretty)
        );
    let shared = Arc::new(Shared {
        runtime,
        inline_figures: pretty,
        duration_scale: args.duration_scale,
        request_timeout,
        retries: args.retries,
        timeouts,
        out_root: args.out.clone().unwrap_or_else(default_out_root),
        sim: Mutex::new(None),
        run: Mutex::new(None),
        stop_tx,
        launcher: engines::Launcher::default(),
        smoke_logs: std::env::temp_dir().join(format!("llmbench-engines-{}", std::process::id())),
    });
    if !args.libtest.list {
        shared.listen_for_signals();
    }
    let mut trials = Vec::new();
    for entry in registry::scenarios()? {
        let made = (entry.make)();
        let targets: Vec<Target> = match made.as_ref().ok().and_then(|b| b.pinned_engine()) {
            Some(pinned) => vec![Target::Engine(pinned.clone())],
            None if engines.is_empty() => vec![Target::Sim],
            None => engines.iter().cloned().map(Target::Engine).collect(),
        };
        let checked = made.and_then(|b| b.validate());
        for target in targets {
            let name = format!("{}/{}", entry.name, target.label());
            let scenario = entry.name.to_string();
            let description = entry.description.to_string();
            let shared = shared.clone();
            let trial = match &checked {
                Ok(bench) => {
                    let bench = bench.clone();
                    Trial::test(name, move || {
                        shared.run_trial(scenario, description, bench, target, bench_mode)
                    })
                }
                Err(e) => {
                    let msg = format!(
                        "scenario `{}` ({}:{}): {}",
                        entry.name,
                        entry.file,
                        entry.line,
                        e.chain()
                    );
                    Trial::test(name, move || Err(Failed::from(msg)))
                }
            };
            trials.push(trial);
        }
    }
    Ok((trials, shared))
}

/// `<target dir>/llmbench/runs`: the target directory is `CARGO_TARGET_DIR`,
/// else the ancestor of this executable that holds cargo's `CACHEDIR.TAG`,
/// else `./target`.
fn default_out_root() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            let exe = std::env::current_exe().ok()?;
            exe.ancestors()
                .find(|dir| dir.join("CACHEDIR.TAG").is_file())
                .map(Path::to_path_buf)
        })
        .unwrap_or_else(|| PathBuf::from("target"));
    target.join("llmbench").join("runs")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned lock means a trial panicked; its data is still consistent
    // for our uses (whole values are replaced, never half-updated).
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn listen_for_signals(self: &Arc<Self>) {
        let stop = self.stop_tx.clone();
        let live = self.launcher.live();
        self.runtime.spawn(async move {
            #[cfg(unix)]
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            loop {
                #[cfg(unix)]
                let terminated = async {
                    match term.as_mut() {
                        Some(t) => t.recv().await,
                        None => std::future::pending().await,
                    }
                };
                #[cfg(not(unix))]
                let terminated = std::future::pending::<Option<()>>();
                tokio::select! {
                    r = tokio::signal::ctrl_c() => if r.is_err() { return },
                    _ = terminated => {},
                }
                if *stop.borrow() {
                    eprintln!("\nllmbench: stopping now");
                    // Second signal: the user wants out without waiting.
                    // exit() runs no destructors: kill the engines first.
                    engines::kill_live(&live);
                    std::process::exit(130);
                }
                eprintln!("\nllmbench: stopping; finished requests are kept (signal again to quit at once)");
                let _ = stop.send(true);
            }
        });
    }

    fn simulator_url(&self) -> Result<(String, String)> {
        let mut sim = lock(&self.sim);
        if sim.is_none() {
            *sim = Some(Simulator::start(SimConfig::new())?);
        }
        let s = sim
            .as_ref()
            .ok_or_else(|| Error::config("simulator did not start"))?;
        Ok((s.url(), s.model().to_string()))
    }

    fn run_trial(
        self: Arc<Self>,
        scenario: String,
        description: String,
        mut bench: ValidBench,
        target: Target,
        bench_mode: bool,
    ) -> std::result::Result<(), Failed> {
        if *self.stop_tx.borrow() {
            return Err("not run: the run was interrupted".into());
        }
        let engine = match &target {
            Target::Engine(e) => e.clone(),
            Target::Sim => {
                let (url, model) = self.simulator_url().map_err(|e| e.chain())?;
                Engine::openai(url, model).name(config::SIM_LABEL)
            }
        };
        if bench_mode {
            if let Some(f) = self.duration_scale {
                bench.load = bench.load.scaled(f);
            }
        } else {
            // Smoke test (`cargo test --benches`): prove the scenario works.
            bench.load = bench.load.smoke();
            bench.workload.max_tokens = bench.workload.max_tokens.min(SMOKE_MAX_TOKENS);
        }
        let phases = bench.load.phases().to_vec();
        if phases.len() <= 1 {
            return self.run_phase(&scenario, &description, &bench, &engine, None, bench_mode);
        }
        // A sequence of steps: each runs as its own result set, one after
        // the other, against the same engine.
        let mut failures = Vec::new();
        for phase in phases {
            if *self.stop_tx.borrow() {
                failures.push("not all steps ran: the run was interrupted".to_string());
                break;
            }
            let step = phase
                .level()
                .map_or_else(|| "step".to_string(), |l| l.to_string());
            if self.inline_figures {
                print!("\n    {step:>12}: ");
                let _ = std::io::stdout().flush();
            }
            let mut one = bench.clone();
            one.load = phase;
            if let Err(failed) = self.run_phase(
                &scenario,
                &description,
                &one,
                &engine,
                Some(step.clone()),
                bench_mode,
            ) {
                failures.push(format!("{step}: {}", failed.message().unwrap_or("failed")));
            }
        }
        if self.inline_figures {
            print!("\n    ");
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.join("\n").into())
        }
    }

    /// Run one load (a whole scenario, or one step of a sequence) and
    /// record it in `summary.json`.
    fn run_phase(
        &self,
        scenario: &str,
        description: &str,
        bench: &ValidBench,
        engine: &Engine,
        step: Option<String>,
        bench_mode: bool,
    ) -> std::result::Result<(), Failed> {
        let started = SystemTime::now();
        let (jsonl, log_dir) = if bench_mode {
            let (jsonl, dir) = self.take_jsonl(started).map_err(|e| e.chain())?;
            (jsonl, dir.join("engines"))
        } else {
            (None, self.smoke_logs.clone())
        };
        let stop = self.stop_tx.subscribe();
        let (engine_pid, result, jsonl) =
            match self.launcher.ensure(engine, &log_dir, &self.runtime, stop) {
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
                    };
                    let (result, jsonl) = self.runtime.block_on(run::execute(setup));
                    (engine_pid, result.map_err(|e| e.chain()), jsonl)
                }
                Err(why) => (None, Err(why), jsonl),
            };
        let interrupted = *self.stop_tx.borrow();
        let (status, mut error) = match &result {
            // Smoke runs prove a scenario works: one or two shortened
            // requests say nothing about its percentiles.
            Ok(run) => verdict(run, bench_mode),
            Err(why) if interrupted => (TrialStatus::Interrupted, Some(why.clone())),
            Err(why) => (TrialStatus::Failed, Some(why.clone())),
        };
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
                step,
                description: description.to_string(),
                engine: engine.label().to_string(),
                engine_kind: engine.kind().as_str(),
                engine_url: engine.url().to_string(),
                engine_command: engine.launch_spec().map(|s| s.command_line()),
                engine_pid,
                model,
                mode: bench.workload.mode,
                max_tokens: bench.workload.max_tokens,
                users: bench.load.users,
                duration_limit_s: bench.load.duration.map(|d| d.as_secs_f64()),
                request_limit: bench.load.requests,
                seed: bench.seed,
                started_at: report::rfc3339(started),
                status,
                error: error.clone(),
                summary: summary.clone(),
            };
            self.record_trial(trial, jsonl).map_err(|e| e.chain())?;
        }
        if self.inline_figures && result.is_ok() {
            print!("{} ", headline(&summary));
            let _ = std::io::stdout().flush();
        }
        match error {
            None => Ok(()),
            Some(msg) => Err(msg.into()),
        }
    }

    /// The run's `requests.jsonl` writer (creating the run directory on
    /// the first call) and the run directory.
    fn take_jsonl(&self, now: SystemTime) -> Result<(Option<JsonlWriter>, PathBuf)> {
        let mut run = lock(&self.run);
        if run.is_none() {
            let dir = RunDir::create(&self.out_root, now)?;
            let jsonl = dir.requests()?;
            *run = Some(RunState {
                dir,
                started_at: report::rfc3339(now),
                jsonl: Some(jsonl),
                trials: Vec::new(),
            });
        }
        let run = run
            .as_mut()
            .ok_or_else(|| Error::config("the run directory was not created"))?;
        Ok((run.jsonl.take(), run.dir.path().to_path_buf()))
    }

    fn record_trial(&self, trial: TrialSummary, jsonl: Option<JsonlWriter>) -> Result<()> {
        let mut guard = lock(&self.run);
        let Some(run) = guard.as_mut() else {
            return Ok(());
        };
        run.jsonl = jsonl;
        run.trials.push(trial);
        run.dir.write_summary(&RunSummary {
            schema: report::SCHEMA,
            llmbench_version: env!("CARGO_PKG_VERSION"),
            started_at: &run.started_at,
            trials: &run.trials,
        })
    }

    /// End the run: stop the engines, then say where the results are.
    /// `failed`: a trial failed (a smoke run then keeps its engines' logs).
    fn finish(&self, failed: bool) {
        self.launcher.stop_all();
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
        if let Some(run) = lock(&self.run).as_ref() {
            let path = run.dir.path();
            let shown = std::env::current_dir()
                .ok()
                .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
                .unwrap_or_else(|| path.to_path_buf());
            println!("llmbench: results in {}", shown.display());
        }
    }
}

/// Output budget per request in smoke mode.
const SMOKE_MAX_TOKENS: u32 = 16;

/// How a trial ended and, if it failed, why; `judge_slos`: whether a missed
/// SLO threshold fails it (one line per miss).
fn verdict(run: &TrialRun, judge_slos: bool) -> (TrialStatus, Option<String>) {
    let s = &run.summary;
    let first = || {
        run.first_errors
            .iter()
            .map(|(kind, msg)| {
                format!(
                    "{kind} x{}: {msg}",
                    s.errors_by_kind.get(kind).unwrap_or(&0)
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    if run.stopped {
        let msg = format!(
            "interrupted after {} requests ({} succeeded); every finished request is in requests.jsonl",
            s.requests, s.successes
        );
        return (TrialStatus::Interrupted, Some(msg));
    }
    if s.requests == 0 {
        return (TrialStatus::Failed, Some("no request was sent".into()));
    }
    if s.successes == 0 {
        return (
            TrialStatus::Failed,
            Some(format!("all {} requests failed: {}", s.requests, first())),
        );
    }
    let misses = s.slo_misses();
    if judge_slos && !misses.is_empty() {
        return (TrialStatus::Failed, Some(misses.join("\n")));
    }
    (TrialStatus::Ok, None)
}

/// A duration in milliseconds, to three significant figures or so.
fn fmt_ms(ms: f64) -> String {
    if ms >= 10_000.0 {
        format!("{:.1} s", ms / 1e3)
    } else if ms >= 1_000.0 {
        format!("{:.2} s", ms / 1e3)
    } else if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

/// The figures printed on a trial's line.
fn headline(s: &Summary) -> String {
    let mut parts = vec![format!(
        "{}/{} ok in {:.1} s, {:.1} req/s",
        s.successes, s.requests, s.duration_s, s.request_throughput
    )];
    if let Some(d) = &s.ttft {
        parts.push(format!("ttft p50 {} p99 {}", fmt_ms(d.p50), fmt_ms(d.p99)));
    }
    if let Some(d) = &s.itl {
        parts.push(format!("itl p50 {}", fmt_ms(d.p50)));
    }
    if let Some(d) = &s.e2e_latency {
        parts.push(format!("e2e p50 {}", fmt_ms(d.p50)));
    }
    parts.push(format!("{:.0} tok/s", s.output_token_throughput));
    if let (Some(goodput), Some(share)) = (s.goodput, s.slo_attainment) {
        parts.push(format!(
            "goodput {goodput:.1} req/s, {:.0}% met slo",
            share * 100.0
        ));
    }
    if let (false, Some(lag)) = (s.warnings.is_empty(), &s.schedule_lag) {
        parts.push(format!(
            "WARNING: the client fell behind its schedule (send lag p99 {})",
            fmt_ms(lag.p99)
        ));
    }
    format!("[{}]", parts.join(" | "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_with_sensible_precision() {
        assert_eq!(fmt_ms(0.4234), "0.42 ms");
        assert_eq!(fmt_ms(21.349), "21.3 ms");
        assert_eq!(fmt_ms(151.6), "152 ms");
        assert_eq!(fmt_ms(3_216.0), "3.22 s");
        assert_eq!(fmt_ms(12_345.0), "12.3 s");
    }
}
