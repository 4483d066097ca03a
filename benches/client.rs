//! How much load the client takes before it, not the engine, is the limit,
//! and how true its timestamps stay under load. Runs against the built-in
//! simulator in this process (on its own thread and runtime):
//!
//! - throughput: the simulator answers at once (no delays); requests/s and
//!   streamed tokens/s the client takes in;
//! - accuracy: 1,024 concurrent streams (TTFT 100 ms, ITL 20 ms); how late
//!   the client saw each first token and each gap compared with the
//!   simulator's own record of when it wrote them;
//! - open-loop precision: Poisson arrivals at 2,000 requests/s; how late
//!   each request left compared with its scheduled instant;
//! - memory: the process's peak RSS after these runs; and, only when named
//!   (`cargo bench --bench client -- memory`, a minute or two), the client's
//!   RSS with 10,000 streams open at once and over a run of 1,000,000
//!   requests written to `requests.jsonl` (`memory.rs`).
//!
//! `cargo bench --bench client` measures; `cargo bench --bench client --
//! NAME` runs the cases whose name contains NAME (`throughput`, `accuracy`,
//! `open_loop`, `memory_streams`, `memory_flat`; `memory` names both);
//! `cargo test --benches` runs a tiny version of each
//! case. Both client and simulator share this machine's cores, so the figures
//! are a floor for the client alone.

#[path = "client/memory.rs"]
mod memory;
#[path = "client/sim_process.rs"]
mod sim_process;

use std::collections::HashMap;
use std::time::Duration;

use llmbench::engine::Timeouts;
use llmbench::harness::run_once_with;
use llmbench::prelude::*;
use llmbench::sim::{Itl, SimConfig, Simulator, Truth};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p / 100.0).round() as usize;
    sorted[i]
}

fn run(name: &str, sim: &Simulator, bench: &Bench) -> llmbench::harness::TrialRun {
    let engine = Engine::openai(sim.url(), sim.model());
    match run_once_with(
        name,
        bench,
        &engine,
        Duration::from_secs(120),
        Timeouts::default(),
    ) {
        Ok(run) => run,
        Err(e) => {
            eprintln!("client bench: {name}: {}", e.chain());
            std::process::exit(1);
        }
    }
}

fn start(config: SimConfig) -> Simulator {
    Simulator::start(config).unwrap_or_else(|e| {
        eprintln!("client bench: starting the simulator: {}", e.chain());
        std::process::exit(1);
    })
}

fn throughput(scale: u32, max_tokens: u32) {
    let sim = start(
        SimConfig::new()
            .ttft_base(Duration::ZERO)
            .per_prompt_token(Duration::ZERO)
            .itl(Itl::Constant(Duration::ZERO))
            .max_concurrency(1024)
            .record_truth(false),
    );
    let bench = Bench::new()
        .workload(Workload::prompts(["Count to four."]).max_tokens(max_tokens))
        .load(Load::users(64).requests(u64::from(scale) * 2_000));
    let run = run("throughput", &sim, &bench);
    let s = &run.summary;
    println!(
        "throughput ({max_tokens}-token answers, 64 users): {:>9.0} requests/s {:>10.0} output tokens/s  ({} requests, {} failed)",
        s.request_throughput, s.output_token_throughput, s.requests, s.failures
    );
}

fn accuracy(streams: u32) {
    let sim = start(
        SimConfig::new()
            .ttft_base(Duration::from_millis(100))
            .per_prompt_token(Duration::ZERO)
            .itl(Itl::Constant(Duration::from_millis(20)))
            .max_concurrency(streams as usize + 1),
    );
    let bench = Bench::new()
        .workload(Workload::prompts(["Tell me a story."]).max_tokens(50))
        .load(Load::users(streams).requests(u64::from(streams)));
    let run = run("accuracy", &sim, &bench);
    let truth: HashMap<String, Truth> =
        sim.truth().into_iter().map(|t| (t.id.clone(), t)).collect();
    let (mut ttft_late, mut gap_err) = (Vec::new(), Vec::new());
    for r in &run.records {
        let Some(t) = r.response_id.as_ref().and_then(|id| truth.get(id)) else {
            continue;
        };
        let seen = r.content_arrivals(run.t0);
        if let (Some(&first_seen), Some(&first_written)) =
            (seen.first(), t.token_written_at.first())
        {
            ttft_late.push(
                first_seen
                    .saturating_duration_since(first_written)
                    .as_secs_f64()
                    * 1e3,
            );
        }
        for k in 1..seen.len().min(t.token_written_at.len()) {
            let client = (seen[k] - seen[k - 1]).as_secs_f64() * 1e3;
            let server = (t.token_written_at[k] - t.token_written_at[k - 1]).as_secs_f64() * 1e3;
            gap_err.push((client - server).abs());
        }
    }
    ttft_late.sort_by(f64::total_cmp);
    gap_err.sort_by(f64::total_cmp);
    println!(
        "accuracy ({streams} streams, TTFT 100 ms, ITL 20 ms): {}/{} ok; first token seen late by p50 {:.3} ms, p99 {:.3} ms; per-gap error p50 {:.3} ms, p99 {:.3} ms",
        run.summary.successes,
        run.summary.requests,
        percentile(&ttft_late, 50.0),
        percentile(&ttft_late, 99.0),
        percentile(&gap_err, 50.0),
        percentile(&gap_err, 99.0),
    );
}

fn open_loop(rate: f64, secs: u64) {
    let sim = start(
        SimConfig::new()
            .ttft_base(Duration::ZERO)
            .per_prompt_token(Duration::ZERO)
            .itl(Itl::Constant(Duration::ZERO))
            .max_concurrency(4096)
            .record_truth(false),
    );
    let bench = Bench::new()
        .workload(Workload::prompts(["Count to four."]).max_tokens(4))
        .load(Load::rate(rate).poisson().for_secs(secs));
    let run = run("open loop", &sim, &bench);
    let s = &run.summary;
    let lag = s.schedule_lag.clone();
    println!(
        "open loop (Poisson {rate} req/s for {secs} s): {} sent, {:.0} req/s done; send lag p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        s.requests,
        s.request_throughput,
        lag.as_ref().map_or(f64::NAN, |d| d.p50),
        lag.as_ref().map_or(f64::NAN, |d| d.p99),
        lag.as_ref().map_or(f64::NAN, |d| d.max),
    );
}

/// A `kB` line (`VmRSS:`, `VmHWM:`) of a `/proc/PID/status` file, in MB.
fn status_mb(path: &str, key: &str) -> Option<f64> {
    let status = std::fs::read_to_string(path).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a == "--sim-child") {
        if let Err(e) = sim_process::child_main(&args[1..]) {
            eprintln!("client bench: simulator process: {e}");
            std::process::exit(2);
        }
        return;
    }
    let measure = args.iter().any(|a| a == "--bench");
    // libtest-style: the words that are not flags filter the cases by name;
    // the memory cases run only when named.
    let filters: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with('-'))
        .map(String::as_str)
        .collect();
    let wanted = |case: &str| {
        if filters.is_empty() {
            !case.starts_with("memory")
        } else {
            filters.iter().any(|f| case.contains(f))
        }
    };
    if measure {
        if wanted("throughput") {
            throughput(10, 4);
            throughput(1, 256);
        }
        if wanted("accuracy") {
            accuracy(1024);
        }
        if wanted("open_loop") {
            open_loop(2_000.0, 3);
        }
        if wanted("memory_streams") {
            memory::streams(10_000, 100);
        }
        if wanted("memory_flat") {
            memory::flat(1_000_000, &[100_000, 250_000, 500_000, 1_000_000]);
        }
        match status_mb("/proc/self/status", "VmHWM:") {
            Some(mb) => println!("peak RSS of this process (client and simulator): {mb:.0} MB"),
            None => println!("peak RSS: not available on this OS"),
        }
    } else {
        throughput(1, 4);
        accuracy(8);
        open_loop(200.0, 1);
        memory::streams(200, 4);
        memory::flat(2_000, &[1_000, 2_000]);
        println!("test client ... ok");
    }
}
