//! The memory cases: the client's resident memory while `n` streams are open
//! at once, and while a long run appends a million records to
//! `requests.jsonl` (kept on disk, not in memory). The simulator runs in a
//! child process, so the figures are the client's own; a sampling thread
//! reads `/proc/self/status` every 50 ms.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use llmbench::engine::Timeouts;
use llmbench::harness::{run_once_to, TrialRun};
use llmbench::measure::RequestRecord;
use llmbench::prelude::*;

use super::sim_process::{ChildConfig, SimProcess};
use super::status_mb;

/// One reading of the sampler.
struct Sample {
    at: Instant,
    rss_mb: f64,
    jsonl_bytes: u64,
}

/// Reads this process's VmRSS (and the size of `jsonl`) until stopped.
struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<Sample>>,
}

impl Sampler {
    fn start(jsonl: PathBuf) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                if let Some(rss_mb) = status_mb("/proc/self/status", "VmRSS:") {
                    let jsonl_bytes = std::fs::metadata(&jsonl).map_or(0, |m| m.len());
                    samples.push(Sample {
                        at: Instant::now(),
                        rss_mb,
                        jsonl_bytes,
                    });
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            samples
        });
        Sampler { stop, thread }
    }

    fn finish(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

/// A fresh directory for one case's `requests.jsonl`, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(case: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("llmbench-client-{case}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            fail(&format!("creating {}: {e}", dir.display()));
        }
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn fail(what: &str) -> ! {
    eprintln!("client bench: memory: {what}");
    std::process::exit(1);
}

fn sim(config: ChildConfig) -> SimProcess {
    SimProcess::start(config, None).unwrap_or_else(|e| fail(&e))
}

fn run(name: &str, sim: &SimProcess, bench: &Bench, jsonl: &Path) -> TrialRun {
    let engine = Engine::openai(&sim.url, &sim.model);
    run_once_to(
        name,
        bench,
        &engine,
        jsonl,
        Duration::from_secs(300),
        Timeouts::default(),
    )
    .unwrap_or_else(|e| fail(&format!("{name}: {}", e.chain())))
}

/// Each record written to `jsonl`, with its line number (from 1) and the
/// byte offset where its line ends,
/// read a line at a time (the file of a long run is larger than the client's
/// whole memory figure). Returns how many there were.
fn each_record(jsonl: &Path, mut f: impl FnMut(RequestRecord, u64, u64)) -> u64 {
    let file = std::fs::File::open(jsonl)
        .unwrap_or_else(|e| fail(&format!("reading {}: {e}", jsonl.display())));
    let mut reader = BufReader::new(file);
    let (mut line, mut end, mut n) = (String::new(), 0u64, 0u64);
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => return n,
            Ok(len) => end += len as u64,
            Err(e) => fail(&format!("reading {}: {e}", jsonl.display())),
        }
        let r = serde_json::from_str(&line)
            .unwrap_or_else(|e| fail(&format!("a line of {}: {e}", jsonl.display())));
        n += 1;
        f(r, n, end);
    }
}

/// `streams` users each send one long streamed request (TTFT 1 s, a token
/// every 50 ms, 100 tokens: about 6 s each), so all are open at once. Each
/// process needs an open-files limit above `streams` (`ulimit -n`); past it
/// the requests fail with `connect` errors, which the line reports.
pub fn streams(streams: u32, tokens: u32) {
    let sim = sim(ChildConfig {
        ttft: Duration::from_secs(1),
        itl: Duration::from_millis(50),
        max_concurrency: streams as usize + 1,
    });
    let dir = TempDir::new("streams");
    let jsonl = dir.0.join("requests.jsonl");
    let bench = Bench::new()
        .workload(Workload::prompts(["Tell me a long story."]).max_tokens(tokens))
        .load(Load::users(streams).requests(u64::from(streams)));
    let before = status_mb("/proc/self/status", "VmRSS:").unwrap_or(f64::NAN);
    let sampler = Sampler::start(jsonl.clone());
    let mut sim_rss = f64::NAN;
    let run = std::thread::scope(|s| {
        // The simulator's memory, read once its streams are all open.
        s.spawn(|| {
            std::thread::sleep(
                Duration::from_millis(3_000)
                    .min(Duration::from_millis(u64::from(tokens) * 25 + 1_000)),
            );
            sim_rss = sim.rss_mb().unwrap_or(f64::NAN);
        });
        run("streams", &sim, &bench, &jsonl)
    });
    let samples = sampler.finish();
    let hwm = status_mb("/proc/self/status", "VmHWM:").unwrap_or(f64::NAN);
    // Open streams at each sample: sent before it, not yet ended.
    let mut spans = Vec::new();
    each_record(&jsonl, |r, _, _| {
        spans.push((r.sent_ms, r.sent_ms + r.e2e_latency_ms));
    });
    let open_at = |at: Instant| {
        let t = at.saturating_duration_since(run.t0).as_secs_f64() * 1e3;
        spans.iter().filter(|&&(a, b)| a <= t && t < b).count()
    };
    let mut peak_open = 0;
    let mut rss_all_open = f64::NAN;
    for s in &samples {
        let open = open_at(s.at);
        if open > peak_open {
            peak_open = open;
            rss_all_open = s.rss_mb;
        } else if open == peak_open {
            rss_all_open = rss_all_open.max(s.rss_mb);
        }
    }
    let summary = &run.summary;
    println!(
        "memory, {streams} streams ({tokens} tokens at 50 ms, simulator in a child process): \
         {}/{} ok, at most {peak_open} open at once; client RSS {before:.0} MB before, \
         {rss_all_open:.0} MB with {peak_open} open, peak {hwm:.0} MB; simulator RSS {sim_rss:.0} MB",
        summary.successes, summary.requests,
    );
}

/// `total` closed-loop requests (64 users, 4-token answers, no delays) in one
/// run, records appended to `requests.jsonl`; RSS when each of `marks`
/// requests had been written.
pub fn flat(total: u64, marks: &[u64]) {
    let sim = sim(ChildConfig {
        ttft: Duration::ZERO,
        itl: Duration::ZERO,
        max_concurrency: 1024,
    });
    let dir = TempDir::new("flat");
    let jsonl = dir.0.join("requests.jsonl");
    let bench = Bench::new()
        .workload(Workload::prompts(["Count to four."]).max_tokens(4))
        .load(Load::users(64).requests(total));
    let sampler = Sampler::start(jsonl.clone());
    let started = Instant::now();
    let run = run("flat", &sim, &bench, &jsonl);
    let secs = started.elapsed().as_secs_f64();
    let samples = sampler.finish();
    // Where the line of each mark's record ends in the file.
    let mut ends = Vec::new();
    let written = each_record(&jsonl, |_, n, end| {
        if marks.contains(&n) {
            ends.push((n, end));
        }
    });
    let size_mb = std::fs::metadata(&jsonl).map_or(0, |m| m.len()) as f64 / 1e6;
    let mut line = format!(
        "memory, {total} requests to requests.jsonl ({size_mb:.0} MB, {:.0} requests/s): {written} recorded, {} in memory; client RSS",
        total as f64 / secs,
        run.records.len(),
    );
    ends.sort_unstable();
    for (mark, end) in ends {
        // The first sample taken after that line reached the file.
        let rss = samples
            .iter()
            .find(|s| s.jsonl_bytes >= end)
            .or(samples.last())
            .map_or(f64::NAN, |s| s.rss_mb);
        line.push_str(&format!(" {rss:.1} MB after {mark},"));
    }
    let max = samples.iter().map(|s| s.rss_mb).fold(f64::NAN, f64::max);
    line.push_str(&format!(" max {max:.1} MB"));
    println!("{line}");
}
