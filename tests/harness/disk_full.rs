//! The disk-full row of the fault matrix (issue 10), mid-run: the harness
//! runs under a file-size limit (`ulimit -f`, with SIGXFSZ ignored, so a
//! write past it fails with EFBIG as a full disk fails with ENOSPC; no
//! privileges needed) with about 200 requests in flight. The trial stops
//! with an error naming `requests.jsonl` and the cause, saying how many
//! records it kept; the file holds exactly those, each whole and readable;
//! no temporary file is left behind.

use std::process::Command;
use std::time::Duration;

use llmbench::sim::{Itl, SimConfig, Simulator};

use super::{records, run_dir, temp_dir, text, FIXTURE, SIM_ENGINE};

/// The file-size limit, in the shell's `ulimit -f` blocks (512 bytes for
/// dash, 1024 for bash): a few dozen records.
const LIMIT_BLOCKS: u32 = 64;

#[cfg(target_os = "linux")]
#[test]
fn disk_full_mid_run_keeps_only_whole_records_and_says_how_many() {
    let sim = Simulator::start(
        SimConfig::new()
            .ttft_base(Duration::from_millis(5))
            .itl(Itl::Constant(Duration::from_millis(5)))
            .max_concurrency(1024),
    )
    .unwrap();
    let out_dir = temp_dir("disk-full");
    let spec = format!("openai={},model={},name=remote", sim.url(), sim.model());
    let script = format!(
        "trap '' XFSZ; ulimit -f {LIMIT_BLOCKS} && exec \"$0\" --bench --exact in_flight_200/remote \
         --engine '{spec}' --out '{}'",
        out_dir.display()
    );
    let out = Command::new("sh")
        .args(["-c", &script, FIXTURE])
        .env_remove("LLMBENCH_ENGINE")
        .env_remove("LLMBENCH_ENGINES")
        .env("SIM_ENGINE", SIM_ENGINE)
        .output()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(101), "{t}");
    assert!(!t.contains("panicked"), "{t}");
    let line = t
        .lines()
        .find(|l| l.contains("stopped after"))
        .unwrap_or_else(|| panic!("no `stopped after` in:\n{t}"));
    assert!(line.contains("requests.jsonl"), "names the file: {line}");
    assert!(line.contains("File too large"), "says why: {line}");
    // "stopped after N requests, M of them recorded"
    let kept: usize = line
        .split(" of them recorded")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no record count in: {line}"));

    let dir = run_dir(&out_dir);
    let recs = records(&dir); // panics on a partial line
    assert_eq!(recs.len(), kept, "{line}");
    assert!(kept > 0, "some records fit under the limit: {line}");
    assert!(
        sim.requests_seen() >= kept as u64,
        "every record kept is a request the engine saw"
    );
    let leftovers: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporaries left: {leftovers:?}");
    std::fs::remove_dir_all(out_dir).unwrap();
}
