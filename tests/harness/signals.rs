//! The signal rows of the fault matrix (issue 10; the other rows are in
//! `llmbench/tests/fault_matrix.rs`): SIGINT and SIGTERM reach the harness
//! with about 200 requests in flight to a simulator started here. The run
//! ends as interrupted, saying so; `requests.jsonl` holds one whole record
//! for every request the simulator saw, the ones cut short as
//! `interrupted`, and the summary counts them all.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use llmbench::measure::RequestErrorKind;
use llmbench::sim::{Itl, SimConfig, Simulator};

use super::{fixture_command, records, run_dir, summary, temp_dir, text};

/// Send `signal` (`INT`, `TERM`) to the harness once the simulator has
/// seen 400 requests, and check what is left.
fn signal_under_load(signal: &str) {
    let row = format!("SIG{signal}");
    let sim = Simulator::start(
        SimConfig::new()
            .ttft_base(Duration::from_millis(5))
            .itl(Itl::Constant(Duration::from_millis(5)))
            .max_concurrency(1024),
    )
    .unwrap();
    let out_dir = temp_dir(&format!("signal-{signal}"));
    let spec = format!("openai={},model={},name=remote", sim.url(), sim.model());
    let child = fixture_command(&["--bench", "--exact", "in_flight_200/remote"])
        .args(["--engine", &spec, "--out", out_dir.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = child;
    let started = Instant::now();
    while sim.requests_seen() < 400 {
        if started.elapsed() > Duration::from_secs(30) || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{row}: 400 requests not sent within 30 s (the simulator saw {}):\n{}",
                sim.requests_seen(),
                text(&out)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let kill = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(101), "{row}: {t}");
    assert!(t.contains("interrupted after"), "{row}: {t}");
    assert!(!t.contains("panicked"), "{row}: {t}");

    let dir = run_dir(&out_dir);
    let recs = records(&dir); // panics on a partial line
    let seen = sim.requests_seen();
    let interrupted = recs
        .iter()
        .filter(|r| {
            r.error
                .as_ref()
                .is_some_and(|e| e.kind == RequestErrorKind::Interrupted)
        })
        .count() as u64;
    let others = recs.len() as u64 - interrupted;
    // Every request the simulator saw has its record; a record besides the
    // interrupted ones is a request it saw (an interrupted one may have been
    // cut before it arrived).
    assert!(
        recs.len() as u64 >= seen,
        "{row}: {} records, the simulator saw {seen}",
        recs.len()
    );
    assert!(others <= seen, "{row}: {others} finished records of {seen}");
    assert!(
        interrupted > 0,
        "{row}: the requests in flight are recorded as interrupted"
    );
    assert!(
        recs.iter().all(|r| r.success || r.error.is_some()),
        "{row}: every record is a success or says why not"
    );
    let mut ids: Vec<u64> = recs.iter().map(|r| r.request_id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), recs.len(), "{row}: no request recorded twice");
    let s = summary(&dir);
    assert_eq!(s["trials"][0]["status"], "interrupted", "{row}");
    assert_eq!(s["trials"][0]["requests"], recs.len(), "{row}");
    std::fs::remove_dir_all(out_dir).unwrap();
}

#[cfg(unix)]
#[test]
fn sigint_with_200_requests_in_flight() {
    signal_under_load("INT");
}

#[cfg(unix)]
#[test]
fn sigterm_with_200_requests_in_flight() {
    signal_under_load("TERM");
}
