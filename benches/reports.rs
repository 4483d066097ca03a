//! How long writing the reports of a big run takes, and how much memory:
//! `llmbench report` (`llmbench::report::rebuild`) on a run directory whose
//! `requests.jsonl` holds a million requests (two engines, one scenario, 16
//! gaps each) and no `summary.json`, so every figure is rebuilt from the
//! records as for a run that was killed.
//!
//! `cargo bench --bench reports` measures (1,000,000 requests);
//! `cargo test --benches` runs 5,000.

use std::io::{BufWriter, Write};
use std::time::Instant;

/// The process's peak resident memory so far, MB (Linux).
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// A run directory with `n` synthetic records, alternating two engines.
fn make_run(n: u64) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("llmbench-reports-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temporary run directory");
    let file = std::fs::File::create(dir.join("requests.jsonl")).expect("requests.jsonl");
    let mut w = BufWriter::new(file);
    let gaps: Vec<String> = (0..16)
        .map(|g| format!("{}", 8.0 + f64::from(g % 5) * 0.25))
        .collect();
    let gaps = gaps.join(",");
    for id in 0..n {
        let engine = if id % 2 == 0 { "vllm" } else { "ollama" };
        let sent = id as f64 * 0.5;
        let ttft = 20.0 + (id % 97) as f64;
        let e2e = ttft + 130.0;
        writeln!(
            w,
            r#"{{"scenario":"chat","engine":"{engine}","model":"m","request_id":{id},"user":0,"response_id":"r{id}","success":true,"scheduled_ms":{sent},"sent_ms":{sent},"schedule_lag_ms":0.0,"ttfb_ms":{ttft},"ttft_ms":{ttft},"e2e_latency_ms":{e2e},"itl_ms":[{gaps}],"itl_mean_ms":8.5,"tpot_ms":8.6,"prompt_tokens":{p},"output_tokens":17,"output_tokens_estimated":false,"content_chunks":17,"output_tps":113.0,"finish_reason":"length","error":null,"slo_met":null,"latency_from_schedule":false,"warmup":false,"retries":0}}"#,
            p = 10 + id % 40
        )
        .expect("writing requests.jsonl");
    }
    w.flush().expect("writing requests.jsonl");
    dir
}

fn main() {
    let measure = std::env::args().any(|a| a == "--bench");
    let n = if measure { 1_000_000 } else { 5_000 };
    let dir = make_run(n);
    let size = std::fs::metadata(dir.join("requests.jsonl")).map_or(0, |m| m.len());
    let before = peak_rss_mb();
    let start = Instant::now();
    let written = match llmbench::report::rebuild(&dir) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("reports bench: {}", e.chain());
            std::process::exit(1);
        }
    };
    let took = start.elapsed();
    let rows = std::fs::read_to_string(dir.join("summary.csv")).map_or(0, |t| t.lines().count());
    assert_eq!(rows, 3, "a header and one row per engine");
    println!(
        "reports of {n} requests ({:.0} MB of requests.jsonl): {} files in {:.2} s ({:.0} requests/s); peak RSS {} MB before, {} MB after",
        size as f64 / 1e6,
        written.files.len(),
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64(),
        before.map_or_else(|| "?".into(), |m| format!("{m:.0}")),
        peak_rss_mb().map_or_else(|| "?".into(), |m| format!("{m:.0}")),
    );
    let _ = std::fs::remove_dir_all(&dir);
    if !measure {
        println!("test reports ... ok");
    }
}
