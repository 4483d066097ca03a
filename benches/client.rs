//! How much load the client takes before it, not the engine, is the limit,
//! and how true its timestamps stay under load. Runs against the built-in
//! simulator in this process (on its own thread and runtime):
//!
//! - throughput: the simulator answers at once (no delays), from a child
//!   process pinned to the last CPU while the client keeps the others;
//!   requests/s and streamed tokens/s the client takes in, and each side's
//!   CPU time per request;
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
#[path = "client/placement.rs"]
mod placement;
#[path = "client/sim_process.rs"]
mod sim_process;

use std::collections::HashMap;
use std::time::Duration;

use llmbench::engine::Timeouts;
use llmbench::harness::run_once_with;
use llmbench::prelude::*;
use llmbench::sim::{Itl, SimConfig, Simulator, Truth};
use placement::{OtherLoad, Placement};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p / 100.0).round() as usize;
    sorted[i]
}

fn run(name: &str, sim: &Simulator, bench: &Bench) -> llmbench::harness::TrialRun {
    run_on(name, &Engine::openai(sim.url(), sim.model()), bench)
}

fn run_on(name: &str, engine: &Engine, bench: &Bench) -> llmbench::harness::TrialRun {
    match run_once_with(
        name,
        bench,
        engine,
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

/// CPU seconds of the in-process simulator's threads (`llmbench-sim-*`)
/// so far.
fn sim_threads_cpu() -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return f64::NAN;
    };
    tasks
        .filter_map(|t| t.ok())
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .is_ok_and(|name| name.starts_with("llmbench-sim"))
        })
        .map(|t| total(cpu_secs(&t.path().join("stat").to_string_lossy())))
        .sum()
}

/// User plus system seconds, NaN when unknown.
fn total(cpu: Option<(f64, f64)>) -> f64 {
    cpu.map_or(f64::NAN, |(user, system)| user + system)
}

/// This process's CPU seconds so far.
fn own_cpu() -> f64 {
    total(cpu_secs("/proc/self/stat"))
}

/// User and system CPU seconds from a `/proc/PID/stat` file (all the
/// process's threads, those ended included).
fn cpu_secs(path: &str) -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name (which may hold spaces) in parentheses;
    // utime and stime are fields 14 and 15, in clock ticks (100 a second
    // on Linux).
    let mut rest = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .skip(11);
    let utime: f64 = rest.next()?.parse().ok()?;
    let stime: f64 = rest.next()?.parse().ok()?;
    Some((utime / 100.0, stime / 100.0))
}

/// Client-bound throughput: the simulator answers at once, from a child
/// process on its own CPU, so the figure is what the client's CPU takes in;
/// with each side's CPU time per request, to show which one limits.
fn throughput(scale: u32, max_tokens: u32) {
    let placement = Placement::pin_client();
    let sim = sim_process::SimProcess::start(
        sim_process::ChildConfig {
            ttft: Duration::ZERO,
            itl: Duration::ZERO,
            max_concurrency: 1024,
        },
        placement.as_ref().map(|p| p.sim.as_str()),
    )
    .unwrap_or_else(|e| {
        eprintln!("client bench: throughput: {e}");
        std::process::exit(1);
    });
    let bench = Bench::new()
        .workload(Workload::prompts(["Count to four."]).max_tokens(max_tokens))
        .load(Load::users(64).requests(u64::from(scale) * 2_000));
    let engine = Engine::openai(&sim.url, &sim.model);
    let (client0, sim0) = (cpu_secs("/proc/self/stat"), sim.cpu_secs());
    let others = OtherLoad::start(total(client0) + total(sim0));
    let run = run_on("throughput", &engine, &bench);
    let (client1, sim1) = (cpu_secs("/proc/self/stat"), sim.cpu_secs());
    let others = others.cpus(total(client1) + total(sim1));
    drop(sim);
    let placement = Placement::describe(placement.as_ref());
    let s = &run.summary;
    let per_request = |a: Option<(f64, f64)>, b: Option<(f64, f64)>| match (a, b) {
        (Some((u0, s0)), Some((u1, s1))) => {
            let n = s.requests.max(1) as f64;
            format!("{:.0}+{:.0} µs", (u1 - u0) / n * 1e6, (s1 - s0) / n * 1e6)
        }
        _ => "n/a".to_string(),
    };
    println!(
        "throughput ({max_tokens}-token answers, 64 users): {:>9.0} requests/s {:>10.0} output tokens/s  ({} requests, {} failed; {placement}; CPU user+system per request: client {}, simulator {}; other programs used {others:.2} CPUs)",
        s.request_throughput,
        s.output_token_throughput,
        s.requests,
        s.failures,
        per_request(client0, client1),
        per_request(sim0, sim1),
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
    let placement = Placement::pin_client();
    if let Some(p) = &placement {
        p.move_sim_threads();
    }
    let bench = Bench::new()
        .workload(Workload::prompts(["Tell me a story."]).max_tokens(50))
        .load(Load::users(streams).requests(u64::from(streams)));
    let (own0, sim0) = (own_cpu(), sim_threads_cpu());
    let others = OtherLoad::start(own0);
    let run = run("accuracy", &sim, &bench);
    let own1 = own_cpu();
    let others = others.cpus(own1);
    let sim_cpu = sim_threads_cpu() - sim0;
    let placement = Placement::describe(placement.as_ref());
    let truth: HashMap<String, Truth> =
        sim.truth().into_iter().map(|t| (t.id.clone(), t)).collect();
    // How bunched the first tokens were: the most the simulator wrote in
    // any 1 ms. The client reads them one after another, so the last of a
    // bunch is seen late by the client's work on those before it.
    let mut firsts: Vec<_> = truth
        .values()
        .filter_map(|t| t.token_written_at.first().copied())
        .collect();
    firsts.sort();
    let bunch = (0..firsts.len())
        .map(|i| firsts[i..].partition_point(|&t| t < firsts[i] + Duration::from_millis(1)))
        .max()
        .unwrap_or(0);
    // Whether the client was still sending its first requests when the
    // first tokens came back: that work delays the reads queued behind it.
    let all_sent_ms = run.records.iter().map(|r| r.sent_ms).fold(0.0, f64::max);
    let first_token_ms = firsts.first().map_or(f64::NAN, |&t| {
        t.saturating_duration_since(run.t0).as_secs_f64() * 1e3
    });
    let chunks: usize = run.records.iter().map(|r| r.content_chunks as usize).sum();
    let client_per_chunk = (own1 - own0 - sim_cpu) / chunks.max(1) as f64 * 1e6;
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
        "accuracy ({streams} streams, TTFT 100 ms, ITL 20 ms; {placement}; other programs used {others:.2} CPUs): {}/{} ok; first token seen late by p50 {:.3} ms, p99 {:.3} ms; per-gap error p50 {:.3} ms, p99 {:.3} ms; all {streams} sent by {all_sent_ms:.0} ms, first token written at {first_token_ms:.0} ms, at most {bunch} in 1 ms; client CPU {client_per_chunk:.1} µs per chunk",
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
    let placement = Placement::pin_client();
    if let Some(p) = &placement {
        p.move_sim_threads();
    }
    let bench = Bench::new()
        .workload(Workload::prompts(["Count to four."]).max_tokens(4))
        .load(Load::rate(rate).poisson().for_secs(secs));
    let others = OtherLoad::start(own_cpu());
    let run = run("open loop", &sim, &bench);
    let others = others.cpus(own_cpu());
    let placement = Placement::describe(placement.as_ref());
    let s = &run.summary;
    let lag = s.schedule_lag.clone();
    println!(
        "open loop (Poisson {rate} req/s for {secs} s; {placement}; other programs used {others:.2} CPUs): {} sent, {:.0} req/s done; send lag p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
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
