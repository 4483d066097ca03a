//! What monitoring costs the client: the harness (the `harness-fixture`
//! bench binary, as `cargo bench` runs it) sends as many short requests as
//! 32 users can to a simulator with no delays, so the client is the limit,
//! alternately with the monitor sampling every second and with
//! `--no-monitor`; the requests/s of the two are compared. Target: under 2%.
//!
//! `cargo bench --bench monitor` measures (5 pairs of 5 s runs);
//! `cargo test --bench monitor` runs one short pair.

use std::process::Command;
use std::time::Duration;

use llmbench::sim::{Itl, SimConfig, Simulator};

const FIXTURE: &str = env!("CARGO_BIN_EXE_harness-fixture");

/// One run's requests/s, with or without the monitor.
fn run(url: &str, monitored: bool, scale: &str) -> f64 {
    let out_dir =
        std::env::temp_dir().join(format!("llmbench-monitor-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out_dir);
    let spec = format!("openai={url},name=fast");
    let mut cmd = Command::new(FIXTURE);
    cmd.args([
        "--bench",
        "--exact",
        "cmp_throughput/fast",
        "--quiet",
        "--engine",
        &spec,
    ])
    .args(["--duration-scale", scale, "--out"])
    .arg(&out_dir)
    .env_remove("LLMBENCH_ENGINE")
    .env_remove("LLMBENCH_ENGINES")
    .env_remove("LLMBENCH_NO_MONITOR");
    if monitored {
        cmd.args(["--monitor-interval", "1"]);
    } else {
        cmd.arg("--no-monitor");
    }
    let out = cmd.output().unwrap_or_else(|e| {
        eprintln!("monitor bench: cannot run {FIXTURE}: {e}");
        std::process::exit(1);
    });
    if !out.status.success() {
        eprintln!("monitor bench: {}", String::from_utf8_lossy(&out.stdout));
        std::process::exit(1);
    }
    let summary = std::fs::read_dir(&out_dir)
        .ok()
        .and_then(|mut d| d.next())
        .and_then(|d| std::fs::read_to_string(d.ok()?.path().join("summary.json")).ok())
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
    let _ = std::fs::remove_dir_all(&out_dir);
    summary
        .and_then(|s| s["trials"][0]["request_throughput"].as_f64())
        .unwrap_or_else(|| {
            eprintln!("monitor bench: no request_throughput in summary.json");
            std::process::exit(1);
        })
}

fn main() {
    let measure = std::env::args().any(|a| a == "--bench");
    let (pairs, scale) = if measure { (5, "1") } else { (1, "0.1") };
    let sim = Simulator::start(
        SimConfig::new()
            .ttft_base(Duration::ZERO)
            .per_prompt_token(Duration::ZERO)
            .itl(Itl::Constant(Duration::ZERO))
            .record_truth(false),
    )
    .unwrap_or_else(|e| {
        eprintln!("monitor bench: starting the simulator: {}", e.chain());
        std::process::exit(1);
    });
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for _ in 0..pairs {
        // Alternate, so a change in the machine's load hits both alike.
        on.push(run(&sim.url(), true, scale));
        off.push(run(&sim.url(), false, scale));
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (m_on, m_off) = (mean(&on), mean(&off));
    println!(
        "monitor overhead, client-bound (32 users, no engine delay, {pairs} pairs): {m_on:.0} req/s monitored vs {m_off:.0} req/s not ({:+.1}%); runs on {on:.0?}, off {off:.0?}",
        (m_on / m_off - 1.0) * 100.0
    );
    if !measure {
        println!("test monitor ... ok");
    }
}
