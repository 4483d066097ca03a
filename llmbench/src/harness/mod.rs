//! The harness behind `cargo bench`: turns every registered scenario x engine
//! into a libtest-mimic trial, runs them one at a time, and writes the run
//! directory.

mod baselines;
mod cli;
mod config;
mod engines;
mod limits;
mod lines;
mod live;
mod monitoring;
mod phase;
mod registry;
mod run;
mod rundir;
mod sequence;
mod sharding;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use clap::Parser;
use libtest_mimic::{Failed, Trial};
use tokio::sync::watch;

pub use cli::Args;
pub use config::configured_engines;
pub use registry::Scenario;
pub use run::{run_once, run_once_to, run_once_with, TrialRun};

use crate::engine::{Engine, Timeouts};
use crate::error::{Error, Result};

use crate::monitor::gpu::GpuMonitor;
use crate::monitor::sampler;
use crate::report::meta::RunMeta;
use crate::report::{self, JsonlWriter, RunData, RunDir};
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

/// Run the harness with already parsed arguments, on every `#[llm_bench]`
/// scenario of this binary.
pub fn run_with(args: Args) -> ExitCode {
    run_scenarios(args, registry::registered())
}

/// Run the harness with already parsed arguments on `scenarios` (as
/// `llmbench run FILE...` does): the same trials, run directory, reports
/// and baselines as under `cargo bench`. `cargo bench` passes `--bench` to
/// measure; without it every trial is a smoke test of two short requests.
pub fn run_scenarios(mut args: Args, scenarios: Vec<Scenario>) -> ExitCode {
    if args.list_baselines {
        let root = baseline_root(&args);
        return match crate::baseline::list(&root) {
            Ok(list) if list.is_empty() => {
                println!("no baselines in {}", root.display());
                ExitCode::SUCCESS
            }
            Ok(list) => {
                for (name, saved, sets) in list {
                    println!("{name}\t{saved}\t{sets} result sets");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {}", e.chain());
                ExitCode::from(2)
            }
        };
    }
    match prepare(&mut args, &scenarios) {
        Ok((trials, shared)) => {
            if let (Some(at), false) = (args.start_at, args.libtest.list) {
                if let Err(e) = sharding::wait_for_start(at, args.shard) {
                    eprintln!("error: {}", e.chain());
                    return ExitCode::from(2);
                }
            }
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
    /// Show a trial's progress while it runs (off with `--quiet`).
    live_view: bool,
    /// `--baseline`: the baseline, or why it could not be loaded.
    baseline: Option<std::result::Result<crate::baseline::Baseline, String>>,
    /// `--save-baseline`.
    save_baseline: Option<String>,
    baseline_root: PathBuf,
    fail_on_regression: bool,
    compare_cfg: crate::baseline::CompareConfig,
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
    /// How often to sample; `None` with `--no-monitor`.
    monitor_interval: Option<Duration>,
    /// The run's monitor, started with the run directory.
    monitor: sampler::Home,
    /// The GPUs, found before the first trial (and said once then), until
    /// the monitor starts with the run directory.
    gpus: Mutex<Option<GpuMonitor>>,
    /// What the GPU search found, for run.json.
    gpu_status: Mutex<Option<String>>,
    /// `--shard`: the part of every scenario this process runs.
    shard: Option<crate::load::Shard>,
    /// `--start-at`, recorded with the shard.
    start_at: Option<f64>,
}

struct RunState {
    dir: RunDir,
    jsonl: Option<JsonlWriter>,
    data: RunData,
    meta: RunMeta,
    /// Every result set's samples, for `--save-baseline`.
    sets: Vec<crate::baseline::BaselineSet>,
    /// Every result set against `--baseline`.
    comparisons: Vec<crate::baseline::SetComparison>,
    /// Every result set's lossless aggregate, for `histograms.json`.
    histograms: Vec<report::HistogramSet>,
}

/// One trial: a scenario on an engine.
struct TrialCtx {
    scenario: String,
    description: String,
    engine: Engine,
    bench_mode: bool,
    /// The scenario's seed before `--shard` derived this shard's.
    base_seed: u64,
}

fn prepare(args: &mut Args, scenarios: &[Scenario]) -> Result<(Vec<Trial>, Arc<Shared>)> {
    registry::check_unique(scenarios)?;
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
    let out_root = args.out.clone().unwrap_or_else(default_out_root);
    let baseline_root = baseline_root(args);
    if let Some(name) = &args.save_baseline {
        crate::baseline::check_name(name)?;
    }
    if !(args.noise_threshold.is_finite() && args.noise_threshold >= 0.0) {
        return Err(Error::config(format!(
            "--noise-threshold: must be a share, 0 or more (got {})",
            args.noise_threshold
        )));
    }
    let monitor_interval = args.monitor_interval()?;
    if let Some(at) = args.start_at {
        // A start time long past is refused before anything starts.
        sharding::start_delay(at, SystemTime::now())?;
    }
    // Each stream holds a descriptor; the usual soft limit of 1,024 is far
    // below what a big load needs. A trial that needs more than the limit
    // allows says so before it starts (`limits::ensure`).
    if let raised @ limits::RaiseOutcome::Failed(_) = limits::raise_to_hard() {
        eprintln!("llmbench: {raised}");
    }
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
        live_view: !args.libtest.quiet,
        baseline: args
            .baseline
            .as_ref()
            .map(|name| crate::baseline::load(&baseline_root, name).map_err(|e| e.chain())),
        save_baseline: args.save_baseline.clone(),
        baseline_root: baseline_root.clone(),
        fail_on_regression: args.fail_on_regression,
        compare_cfg: crate::baseline::CompareConfig {
            noise: args.noise_threshold,
            ..Default::default()
        },
        duration_scale: args.duration_scale,
        request_timeout,
        retries: args.retries,
        timeouts,
        out_root,
        sim: Mutex::new(None),
        run: Mutex::new(None),
        stop_tx,
        launcher: engines::Launcher::default(),
        smoke_logs: std::env::temp_dir().join(format!("llmbench-engines-{}", std::process::id())),
        monitor_interval,
        monitor: sampler::Home::default(),
        gpus: Mutex::new(None),
        gpu_status: Mutex::new(None),
        shard: args.shard,
        start_at: args.start_at,
    });
    if bench_mode && !args.libtest.list {
        shared.find_gpus();
    }
    if !args.libtest.list {
        shared.listen_for_signals();
    }
    let mut trials = Vec::new();
    for scenario in scenarios {
        let (name, description, origin, made) = scenario.parts();
        let targets: Vec<Target> = match made.as_ref().ok().and_then(|b| b.pinned_engine()) {
            Some(pinned) => vec![Target::Engine(pinned.clone())],
            None if engines.is_empty() => vec![Target::Sim],
            None => engines.iter().cloned().map(Target::Engine).collect(),
        };
        let checked = made
            .as_ref()
            .map_err(|e| e.chain())
            .and_then(|b| b.validate().map_err(|e| e.chain()));
        for target in targets {
            let trial_name = format!("{name}/{}", target.label());
            let scenario = name.to_string();
            let description = description.to_string();
            let shared = shared.clone();
            let trial = match &checked {
                Ok(bench) => {
                    let bench = bench.clone();
                    Trial::test(trial_name, move || {
                        shared.run_trial(scenario, description, bench, target, bench_mode)
                    })
                }
                Err(e) => {
                    let msg = match origin {
                        "" => format!("scenario `{name}`: {e}"),
                        at => format!("scenario `{name}` ({at}): {e}"),
                    };
                    Trial::test(trial_name, move || Err(Failed::from(msg)))
                }
            };
            trials.push(trial);
        }
    }
    Ok((trials, shared))
}

/// `--baseline-dir`, else `<target dir>/llmbench/baselines`.
fn baseline_root(args: &Args) -> PathBuf {
    args.baseline_dir
        .clone()
        .unwrap_or_else(|| crate::baseline::default_root(&default_out_root()))
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
            // No truth kept: an endurance run against it must not grow.
            *sim = Some(Simulator::start(SimConfig::new().record_truth(false))?);
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
        let base_seed = bench.seed;
        if bench_mode {
            if let Some(f) = self.duration_scale {
                bench.load = bench.load.scaled(f);
            }
            if let Some(shard) = self.shard {
                sharding::shard_bench(&mut bench, shard).map_err(|e| e.chain())?;
            }
        } else {
            // Smoke test (`cargo test --benches`): prove the scenario works.
            bench.load = bench.load.smoke();
            bench.workload.capped(SMOKE_MAX_TOKENS);
        }
        let trial = TrialCtx {
            scenario,
            description,
            engine,
            bench_mode,
            base_seed,
        };
        if bench_mode {
            if let Some(search) = bench.load.capacity_search() {
                return self.run_capacity(&trial, &bench, search);
            }
            if bench.load.phases().len() > 1 {
                return self.run_steps(&trial, &bench);
            }
            if let Some(lengths) = bench.workload.prompt_lengths().and_then(|l| l.steps()) {
                let lengths = lengths.to_vec();
                return self.run_prompt_steps(&trial, &bench, &lengths);
            }
            if bench.compare_streaming {
                return self.run_streaming_comparison(&trial, &bench);
            }
        }
        self.run_phase(&trial, &bench, None, bench_mode).0
    }
}

/// Output budget per request in smoke mode.
const SMOKE_MAX_TOKENS: u32 = 16;
