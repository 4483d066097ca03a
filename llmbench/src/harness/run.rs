//! Running one trial: connect to the engine, drive the load, send every
//! record to a writer thread that judges it against the SLOs, appends it to
//! `requests.jsonl` and folds it into the aggregate, and hand back the
//! summary.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;

use crate::engine::{self, Engine, Timeouts};
use crate::error::{Error, ErrorKind, Result};
use crate::load::executor::{self, Plan};
use crate::measure::{client_cpu, Aggregate, RequestRecord, Summary};
use crate::monitor::correlation::{self, Timeline};
use crate::monitor::sampler;
use crate::report::JsonlWriter;
use crate::workload::prepare;
use crate::workload::PromptLengths;
use crate::ValidBench;

/// What one trial produced.
#[derive(Debug)]
pub struct TrialRun {
    /// The instant the trial's offsets (`sent_ms`, ...) count from.
    pub t0: Instant,
    /// The wall-clock time taken beside `t0`: where the trial sits on a
    /// timeline shared with other machines (shards).
    pub t0_wall: SystemTime,
    /// The aggregate the summary came from, whose lossless
    /// [`state`](Aggregate::state) merges with other shards'.
    pub aggregate: Aggregate,
    /// The model the requests named.
    pub model: String,
    /// Every record, in the order requests finished (kept only when asked).
    pub records: Vec<RequestRecord>,
    /// The aggregate figures.
    pub summary: Summary,
    /// One message per error kind: the first failure of that kind.
    pub first_errors: BTreeMap<String, String>,
    /// True when the run was stopped (Ctrl-C, SIGTERM, a write error).
    pub stopped: bool,
    /// What a comparison with a baseline resamples.
    pub samples: crate::measure::Samples,
    /// The version the engine reported before the trial, if any.
    pub engine_version: Option<String>,
    /// Requested vs reported prompt tokens, where prompts were fitted to
    /// lengths.
    pub prompt_lengths: Option<PromptLengths>,
}

/// How to run a trial, beyond the scenario and the engine.
pub(crate) struct TrialSetup {
    pub scenario: String,
    pub step: Option<String>,
    pub engine: Engine,
    pub bench: ValidBench,
    pub request_timeout: Duration,
    pub retries: u32,
    pub timeouts: Timeouts,
    pub keep_records: bool,
    pub jsonl: Option<JsonlWriter>,
    pub stop: watch::Receiver<bool>,
    /// Where the live view reads the figures so far, when it is on.
    pub live: Option<super::live::Live>,
    /// The run's monitor and what this trial's sampler needs; `None`:
    /// nothing is sampled.
    pub monitor: Option<(sampler::Home, sampler::Trial)>,
}

struct WriterOutcome {
    jsonl: Option<JsonlWriter>,
    aggregate: Aggregate,
    records: Vec<RequestRecord>,
    first_errors: BTreeMap<String, String>,
    write_error: Option<Error>,
    /// Records this trial appended to `requests.jsonl`.
    written: u64,
    samples: crate::measure::Samples,
    /// When the requests' output came, binned (only when monitored).
    timeline: Timeline,
    prompt_lengths: PromptLengths,
}

/// What the writer keeps besides the aggregate, and who it tells.
struct WriterOptions {
    /// Keep every record in memory (`run_once`).
    keep: bool,
    /// Keep each record's output times for the monitor's correlations.
    points: bool,
    /// Feed the live view.
    live: Option<super::live::Live>,
}

impl WriterOutcome {
    fn new(aggregate: Aggregate, prompt_lengths: PromptLengths) -> Self {
        WriterOutcome {
            jsonl: None,
            aggregate,
            records: Vec::new(),
            first_errors: BTreeMap::new(),
            write_error: None,
            written: 0,
            samples: crate::measure::Samples::default(),
            timeline: Timeline::default(),
            prompt_lengths,
        }
    }
}

fn spawn_writer(
    rx: mpsc::Receiver<RequestRecord>,
    mut jsonl: Option<JsonlWriter>,
    stop: watch::Sender<bool>,
    mut out: WriterOutcome,
    WriterOptions { keep, points, live }: WriterOptions,
) -> Result<JoinHandle<WriterOutcome>> {
    std::thread::Builder::new()
        .name("llmbench-writer".into())
        .spawn(move || {
            for mut record in batched(&rx) {
                record.slo_met = out.aggregate.slo_met(&record);
                if let (Some(w), None) = (jsonl.as_mut(), &out.write_error) {
                    match w.append(&record) {
                        Ok(()) => out.written += 1,
                        Err(e) => {
                            // Stop the load: what cannot be written must not be measured.
                            out.write_error = Some(e);
                            let _ = stop.send(true);
                        }
                    }
                }
                out.aggregate.add(&record);
                out.samples.add(&record);
                out.prompt_lengths.add(&record);
                if let Some(live) = &live {
                    super::live::add(live, &record);
                }
                if let Some(err) = &record.error {
                    out.first_errors
                        .entry(err.kind.as_str().to_string())
                        .or_insert_with(|| err.message.clone());
                }
                if points {
                    out.timeline.add(&record);
                }
                if keep {
                    out.records.push(record);
                }
            }
            out.jsonl = jsonl;
            out
        })
        .map_err(|e| Error::io("starting the record writer thread", e))
}

/// How long the writer naps between looks at a busy channel.
const WRITER_NAP: Duration = Duration::from_millis(1);

/// The records of `rx` until every sender is gone. While records keep
/// coming, the writer looks for them every [`WRITER_NAP`] instead of
/// sleeping in `recv`, so a finished request does not have to wake it: at
/// 20,000 requests/s a wake-up per record was a futex call and a context
/// switch on the client's core each. Idle, it waits in `recv` as before.
/// Each record still reaches `requests.jsonl` within about a millisecond.
fn batched(rx: &mpsc::Receiver<RequestRecord>) -> impl Iterator<Item = RequestRecord> + '_ {
    let mut busy = false;
    std::iter::from_fn(move || loop {
        match rx.try_recv() {
            Ok(record) => return Some(record),
            Err(mpsc::TryRecvError::Disconnected) => return None,
            Err(mpsc::TryRecvError::Empty) if busy => {
                busy = false;
                std::thread::sleep(WRITER_NAP);
                // A record found after the nap keeps the writer polling.
                if let Ok(record) = rx.try_recv() {
                    busy = true;
                    return Some(record);
                }
            }
            Err(mpsc::TryRecvError::Empty) => {
                let record = rx.recv().ok();
                busy = record.is_some();
                return record;
            }
        }
    })
}

/// Run one trial to its end. Returns the run, or why the trial could not
/// start or its records could not be written (failed requests are data in
/// the run), and in either case the `requests.jsonl` writer for the next
/// trial.
pub(crate) async fn execute(setup: TrialSetup) -> (Result<TrialRun>, Option<JsonlWriter>) {
    let TrialSetup {
        scenario,
        step,
        engine,
        bench,
        request_timeout,
        retries,
        timeouts,
        keep_records,
        jsonl,
        stop: mut outer_stop,
        live,
        monitor,
    } = setup;
    let (client, model) = match engine::connect_with(&engine, timeouts).await {
        Ok(connected) => connected,
        Err(e) => {
            let e = e.context(format!(
                "scenario `{scenario}`, engine `{}`",
                engine.label()
            ));
            return (Err(e), jsonl);
        }
    };
    // What the engine says it is, for run.json; asked before the clock
    // starts, and never a reason to fail.
    let engine_version = tokio::time::timeout(Duration::from_secs(2), client.version())
        .await
        .ok()
        .and_then(|v| v.ok().flatten());
    // The prompts, fitted to their lengths before the clock starts.
    let pool = prepare::pool_size(bench.load.request_limit());
    let prompts = match prepare::prepare(&bench.workload, bench.seed, pool, &*client).await {
        Ok(prompts) => prompts,
        Err(e) => {
            let e = e.context(format!(
                "scenario `{scenario}`, engine `{}`: preparing the prompts",
                engine.label()
            ));
            return (Err(e), jsonl);
        }
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    // Forward an outer stop (signals) into this trial's stop.
    let forward = {
        let stop_tx = stop_tx.clone();
        tokio::spawn(async move {
            if outer_stop.wait_for(|s| *s).await.is_ok() {
                let _ = stop_tx.send(true);
            }
        })
    };
    let (tx, rx) = mpsc::channel();
    let aggregate = Aggregate::with_slos(&bench.slos).with_phases(&bench.load);
    let points = monitor.is_some();
    let fitted = prompts.lengths.is_some();
    let check = PromptLengths::new(prompts.lengths);
    let options = WriterOptions {
        keep: keep_records,
        points,
        live,
    };
    let outcome = WriterOutcome::new(aggregate, check);
    let writer = match spawn_writer(rx, jsonl, stop_tx.clone(), outcome, options) {
        Ok(writer) => writer,
        Err(e) => return (Err(e), None),
    };
    let plan = Arc::new(Plan {
        scenario: scenario.clone(),
        step,
        engine: engine.label().to_string(),
        model: model.clone(),
        workload: bench.workload.clone(),
        prompts: Arc::new(prompts),
        load: bench.load.clone(),
        seed: bench.seed,
        request_timeout,
        retries,
    });
    // The client's own CPU use over the load, to tell whether the client,
    // not the engine, was busy.
    let cpu_before = client_cpu::sample();
    // Holding a sender keeps the writer thread alive until the second
    // sample, so its time shows under its own name.
    let writer_open = tx.clone();
    // The sampler's thread starts before t0, so starting it is not
    // counted in the first request's latency; it samples from t0 on.
    let sampling = monitor.and_then(|(home, trial)| sampler::spawn(&home, trial));
    let t0 = Instant::now();
    let t0_wall = SystemTime::now();
    if let Some(s) = &sampling {
        s.begin(t0);
    }
    executor::run(plan, client, t0, tx, stop_rx.clone()).await;
    let cpu = cpu_before
        .zip(client_cpu::sample())
        .map(|(before, after)| client_cpu::between(&before, &after, client_cpu::available_cores()));
    let monitored = match sampling {
        Some(s) => tokio::task::spawn_blocking(move || s.finish())
            .await
            .ok()
            .flatten(),
        None => None,
    };
    drop(writer_open);
    forward.abort();
    let stopped = *stop_rx.borrow();
    let joined = tokio::task::spawn_blocking(move || writer.join())
        .await
        .ok()
        .and_then(|joined| joined.ok());
    let Some(outcome) = joined else {
        let e = Error::new(ErrorKind::Io, "the record writer thread died");
        return (Err(e), None);
    };
    if let Some(e) = outcome.write_error {
        let e = e.context(format!(
            "scenario `{scenario}`, engine `{}`: stopped after {} requests, {} of them \
             recorded",
            engine.label(),
            outcome.aggregate.requests(),
            outcome.written
        ));
        return (Err(e), outcome.jsonl);
    }
    let run = TrialRun {
        t0,
        t0_wall,
        aggregate: outcome.aggregate.clone(),
        model,
        records: outcome.records,
        summary: outcome
            .aggregate
            .summary()
            .with_client_cpu(cpu)
            .with_monitor(monitored.map(|(mut m, rows)| {
                m.correlation = correlation::correlate(&rows, &outcome.timeline);
                m
            })),
        first_errors: outcome.first_errors,
        stopped,
        samples: outcome.samples,
        engine_version,
        prompt_lengths: fitted.then_some(outcome.prompt_lengths),
    };
    (Ok(run), outcome.jsonl)
}

/// Run `bench` once against `engine` and return every record, writing no
/// files: the library-level entry point tests and tools use.
///
/// ```no_run
/// use llmbench::prelude::*;
/// use llmbench::sim::{SimConfig, Simulator};
/// let sim = Simulator::start(SimConfig::new())?;
/// let bench = Bench::new()
///     .workload(Workload::prompts(["Say hello."]).max_tokens(8))
///     .load(Load::users(2).requests(4));
/// let run = llmbench::harness::run_once("hello", &bench, &Engine::openai(sim.url(), sim.model()))?;
/// assert_eq!(run.records.len(), 4);
/// # Ok::<(), llmbench::Error>(())
/// ```
pub fn run_once(scenario: &str, bench: &crate::Bench, engine: &Engine) -> Result<TrialRun> {
    run_once_with(
        scenario,
        bench,
        engine,
        Duration::from_secs(300),
        Timeouts::default(),
    )
}

/// [`run_once`] with a whole-request timeout and per-stage timeouts.
pub fn run_once_with(
    scenario: &str,
    bench: &crate::Bench,
    engine: &Engine,
    request_timeout: Duration,
    timeouts: Timeouts,
) -> Result<TrialRun> {
    run_alone(scenario, bench, engine, request_timeout, timeouts, None)
}

/// [`run_once_with`] for long runs: every record is appended to
/// `requests_jsonl` as it finishes (created if missing, one JSON line per
/// request, as the harness writes `requests.jsonl`) and none is kept in
/// memory, so [`TrialRun::records`] is empty and memory stays flat however
/// many requests the load sends; only the aggregate (histograms) grows with
/// the run, and it does not grow with the request count.
///
/// ```no_run
/// use std::time::Duration;
/// use llmbench::engine::Timeouts;
/// use llmbench::prelude::*;
/// use llmbench::sim::{SimConfig, Simulator};
/// let sim = Simulator::start(SimConfig::new().record_truth(false))?;
/// let bench = Bench::new()
///     .workload(Workload::prompts(["Say hello."]).max_tokens(8))
///     .load(Load::users(8).requests(100_000));
/// let engine = Engine::openai(sim.url(), sim.model());
/// let path = std::env::temp_dir().join("requests.jsonl");
/// let run = llmbench::harness::run_once_to(
///     "long", &bench, &engine, &path, Duration::from_secs(60), Timeouts::default(),
/// )?;
/// assert!(run.records.is_empty());
/// assert_eq!(run.summary.requests, 100_000);
/// # Ok::<(), llmbench::Error>(())
/// ```
pub fn run_once_to(
    scenario: &str,
    bench: &crate::Bench,
    engine: &Engine,
    requests_jsonl: &std::path::Path,
    request_timeout: Duration,
    timeouts: Timeouts,
) -> Result<TrialRun> {
    let jsonl = JsonlWriter::open(requests_jsonl)?;
    run_alone(
        scenario,
        bench,
        engine,
        request_timeout,
        timeouts,
        Some(jsonl),
    )
}

/// One trial on its own runtime: records kept in memory when there is no
/// `jsonl` to write them to, written there and dropped otherwise.
fn run_alone(
    scenario: &str,
    bench: &crate::Bench,
    engine: &Engine,
    request_timeout: Duration,
    timeouts: Timeouts,
    jsonl: Option<JsonlWriter>,
) -> Result<TrialRun> {
    let bench = bench
        .validate()
        .map_err(|e| e.context(format!("scenario `{scenario}`")))?;
    if bench.load.capacity_search().is_some() {
        return Err(Error::scenario(format!(
            "scenario `{scenario}`: load.find_capacity: run_once runs one load; run the \
             scenario through the harness, which runs the search"
        )));
    }
    if bench.load.phases().len() > 1 {
        return Err(Error::scenario(format!(
            "scenario `{scenario}`: load.steps: run_once runs one load; run each of \
             Load::phases() in turn, or run the scenario through the harness"
        )));
    }
    // Each stream holds a descriptor: raise the soft limit, and refuse a
    // load that certainly needs more than the hard one allows. (An
    // in-process simulator's descriptors cannot be told apart here, so
    // each stream counts as one: the check never refuses what might fit.)
    super::limits::raise_to_hard();
    super::limits::ensure(&bench.load, request_timeout, false)
        .map_err(|e| e.context(format!("scenario `{scenario}`")))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the client runtime", e))?;
    let (_stop_tx, stop) = watch::channel(false);
    let setup = TrialSetup {
        scenario: scenario.to_string(),
        step: None,
        engine: engine.clone(),
        bench,
        request_timeout,
        retries: 0,
        timeouts,
        keep_records: jsonl.is_none(),
        jsonl,
        stop,
        live: None,
        monitor: None,
    };
    runtime.block_on(execute(setup)).0
}
