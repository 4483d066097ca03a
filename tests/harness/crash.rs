//! A run killed outright (SIGKILL: no handler runs) at any moment, from
//! its start to the writing of its reports and baseline, leaves a run
//! directory whose every file reads and that `llmbench report` turns into
//! reports, and a baseline that is whole or absent, never half written.

use std::path::Path;
use std::process::Stdio;
use std::time::Instant;

use llmbench::baseline;
use serde_json::Value;

use super::{fixture_command, temp_dir};

/// The run under test: two quick scenarios, reports, a saved baseline.
fn start(out: &Path, baselines: &Path) -> std::process::Child {
    fixture_command(&[
        "--bench",
        "ok_",
        "--out",
        out.to_str().unwrap(),
        "--baseline-dir",
        baselines.to_str().unwrap(),
        "--save-baseline",
        "crash",
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap()
}

/// Every file under `dir` that should parse does; temporaries aside.
fn check_files(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() || name.contains(".tmp") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        if name.ends_with(".json") {
            serde_json::from_str::<Value>(&text)
                .unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()));
        } else if name.ends_with(".jsonl") {
            for (i, line) in text.lines().enumerate() {
                serde_json::from_str::<Value>(line)
                    .unwrap_or_else(|e| panic!("{} line {}: {e}", path.display(), i + 1));
            }
        }
    }
}

#[cfg(unix)]
#[test]
fn a_run_killed_at_any_moment_leaves_files_that_read() {
    let root = temp_dir("crash");
    // How long a whole run takes here, to spread the kills over it.
    let whole = {
        let (out, baselines) = (root.join("whole"), root.join("whole-baselines"));
        let started = Instant::now();
        let status = start(&out, &baselines).wait().unwrap();
        assert!(status.success());
        assert!(baseline::load(&baselines, "crash").is_ok());
        started.elapsed()
    };
    // Eight kills spread over the run, then sixteen over its last quarter,
    // where summaries, reports and the baseline are written.
    const KILLS: u32 = 24;
    let share = |i: u32| {
        if i < 8 {
            f64::from(i) / 8.0
        } else {
            0.75 + f64::from(i - 8) / 16.0 * 0.35
        }
    };
    let mut with_dir = 0;
    for i in 0..KILLS {
        let out = root.join(format!("kill-{i}"));
        // The same baseline folder each time: a kill while a baseline is
        // replaced must leave the old one or the new one.
        let baselines = root.join("baselines");
        let at = whole.mul_f64(share(i));
        let mut child = start(&out, &baselines);
        std::thread::sleep(at);
        let _ = child.kill();
        child.wait().unwrap();
        if let Ok(b) = baseline::load(&baselines, "crash") {
            assert!(!b.sets.is_empty(), "kill {i} at {at:?}: an empty baseline");
        } else {
            assert!(
                !baselines.join("crash").exists(),
                "kill {i} at {at:?}: a baseline that does not load: {}",
                baseline::load(&baselines, "crash").unwrap_err()
            );
        }
        let Some(dir) = std::fs::read_dir(&out)
            .ok()
            .and_then(|mut d| d.next())
            .map(|e| e.unwrap().path())
        else {
            continue; // killed before the run directory was made
        };
        check_files(&dir);
        let mut left: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        eprintln!("kill {i} at {at:?} left {}", left.join(" "));
        if !dir.join("requests.jsonl").exists() && !dir.join("summary.json").exists() {
            continue; // killed before the first trial began
        }
        with_dir += 1;
        let written = llmbench::report::rebuild(&dir)
            .unwrap_or_else(|e| panic!("kill {i} at {at:?}: {}", e.chain()));
        assert!(dir.join("report.md").is_file(), "{:?}", written.notes);
        check_files(&dir);
    }
    assert!(
        with_dir >= KILLS / 2,
        "most kills hit a run under way ({with_dir})"
    );
    std::fs::remove_dir_all(root).unwrap();
}
