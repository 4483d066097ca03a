//! Engines the harness starts itself (`[engine.launch]`): the `sim-engine`
//! binary, the simulator in a process of its own, launched from an engines
//! file; its logs, its end with the run, a start that never gets healthy,
//! and Ctrl-C while it loads, runs or ignores SIGTERM.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use llmbench::sim::{SimConfig, Simulator};
use serde_json::Value;

use super::{fixture, fixture_command, line_of, run_dir, start_slow_on, summary, temp_dir, text};

const SIM_ENGINE: &str = env!("CARGO_BIN_EXE_sim-engine");

/// A free port below Linux's ephemeral range (32768 and up), so that no
/// socket another test binds to port 0 can take it once a launched engine
/// lets it go: "the port no longer answers" then means this engine stopped.
fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id().wrapping_mul(7919);
    loop {
        let n = start.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed).wrapping_mul(104_729));
        let port = 20_000 + (n % 12_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// An engines file in `dir` with one engine, `name`, that the harness
/// launches: `sim-engine PORT` plus `args`, with `extra` lines in its
/// `[engine.launch]` table. Returns the file and the port.
pub(super) fn launched_engine_file(
    dir: &Path,
    name: &str,
    args: &str,
    extra: &str,
) -> (PathBuf, u16) {
    std::fs::create_dir_all(dir).unwrap();
    let port = free_port();
    let file = dir.join(format!("{name}.toml"));
    let text = format!(
        r#"
[[engine]]
kind = "openai"
url = "http://127.0.0.1:{port}"
model = "llmbench-sim"
name = "{name}"
[engine.launch]
command = "${{SIM_ENGINE}}"
args = ["{port}", {args}]
{extra}
"#
    );
    std::fs::write(&file, text).unwrap();
    (file, port)
}

/// Whether process `pid` runs (a zombie, dead but not yet reaped by its
/// new parent, does not).
fn alive(pid: u64) -> bool {
    let stat = Path::new("/proc").join(pid.to_string()).join("stat");
    if let Ok(text) = std::fs::read_to_string(&stat) {
        // `pid (comm) S ...`: the state follows the last `)`.
        return text
            .rsplit(')')
            .next()
            .and_then(|r| r.trim().chars().next())
            != Some('Z');
    }
    if Path::new("/proc/self").exists() {
        return false;
    }
    Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// Wait up to five seconds for process `pid` to be gone.
fn gone(pid: u64) -> bool {
    let started = Instant::now();
    while alive(pid) {
        if started.elapsed() > Duration::from_secs(5) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Fail if any file under `dir` holds `secret`.
fn assert_no_file_holds(dir: &Path, secret: &str) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            assert_no_file_holds(&path, secret);
        } else {
            let bytes = std::fs::read(&path).unwrap();
            let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
            assert!(!found, "{secret} is in {}", path.display());
        }
    }
}

fn answers(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

#[cfg(unix)]
#[test]
fn a_launched_engine_logs_into_the_run_dir_and_is_stopped_after_the_run() {
    let out_dir = temp_dir("launch");
    let (file, port) = launched_engine_file(
        &out_dir.with_extension("conf"),
        "launched",
        r#""--api-key", "hunter2""#,
        "",
    );
    let file = file.to_str().unwrap();
    let out = fixture(&[
        "--bench",
        "ok_",
        "--engines",
        file,
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(line_of(&t, "ok_chat/launched").contains("[6/6 ok"), "{t}");
    assert!(
        line_of(&t, "ok_completion/launched").contains("[3/3 ok"),
        "{t}"
    );
    let dir = run_dir(&out_dir);
    let stdout = std::fs::read_to_string(dir.join("engines/launched.stdout.log")).unwrap();
    assert!(
        stdout.contains(&format!("serving llmbench-sim at http://127.0.0.1:{port}")),
        "{stdout}"
    );
    let stderr = std::fs::read_to_string(dir.join("engines/launched.stderr.log")).unwrap();
    assert!(stderr.starts_with("sim-engine: pid "), "{stderr}");
    let s = summary(&dir);
    let trials = s["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 2);
    let pid = trials[0]["engine_pid"].as_u64().unwrap();
    assert_eq!(
        trials[1]["engine_pid"], pid,
        "one engine serves both trials"
    );
    assert_eq!(
        trials[0]["engine_command"],
        format!("{SIM_ENGINE} {port} --api-key <redacted>")
    );
    // The engine printed its key; the harness redacted it once it stopped.
    assert!(stdout.contains("api key <redacted>"), "{stdout}");
    assert_no_file_holds(&dir, "hunter2");
    assert!(gone(pid), "the engine (pid {pid}) still runs after the run");
    assert!(!answers(port));

    // Smoke mode starts it too, and writes no run directory.
    std::fs::remove_dir_all(&out_dir).unwrap();
    let out = fixture(&[
        "ok_chat",
        "--engines",
        file,
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(line_of(&t, "ok_chat/launched").contains("[2/2 ok"), "{t}");
    assert!(!out_dir.exists(), "smoke runs write no run directory");
    assert!(!answers(port), "the engine is stopped after a smoke run");

    // Listing starts nothing.
    let out = fixture(&["--list", "--engines", file]);
    assert!(text(&out).contains("ok_chat/launched: test"));
    assert!(!answers(port));
    std::fs::remove_dir_all(out_dir.with_extension("conf")).unwrap();
}

#[cfg(unix)]
#[test]
fn a_launch_that_never_gets_healthy_fails_its_trials_and_others_still_run() {
    let other = Simulator::start(SimConfig::new()).unwrap();
    let out_dir = temp_dir("stuck");
    let (file, port) = launched_engine_file(
        &out_dir.with_extension("conf"),
        "stuck",
        r#""--loading-secs", "600""#,
        "startup_timeout_s = 1",
    );
    let spec = format!("openai={},model=llmbench-sim,name=other", other.url());
    let started = Instant::now();
    let out = fixture(&[
        "--bench",
        "ok_",
        "--engines",
        file.to_str().unwrap(),
        "--engine",
        &spec,
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(101), "{t}");
    assert!(t.contains("2 passed; 2 failed"), "{t}");
    assert!(line_of(&t, "ok_chat/other").contains("[6/6 ok"), "{t}");
    assert!(
        line_of(&t, "ok_completion/other").contains("[3/3 ok"),
        "{t}"
    );
    let url = format!("http://127.0.0.1:{port}/health");
    for part in [
        format!("engine `stuck` (`{SIM_ENGINE} {port} --loading-secs 600`) not healthy at {url} after 1."),
        "startup timeout 1.0 s; last answer: HTTP 503".to_string(),
        "stuck.stderr.log:\n  sim-engine: pid".to_string(),
        "engine `stuck` is not started again in this run".to_string(),
    ] {
        assert!(t.contains(&part), "missing `{part}` in:\n{t}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the second trial did not wait again"
    );
    assert!(!answers(port), "the stuck engine was stopped");
    let s = summary(&run_dir(&out_dir));
    let stuck = s["trials"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["engine"] == "stuck")
        .unwrap();
    assert_eq!(stuck["status"], "failed");
    assert!(stuck["error"].as_str().unwrap().contains("not healthy at"));
    assert!(stuck["engine_command"]
        .as_str()
        .unwrap()
        .contains("--loading-secs 600"));
    assert!(stuck.get("engine_pid").is_none(), "{stuck}");
    std::fs::remove_dir_all(&out_dir).unwrap();
    std::fs::remove_dir_all(out_dir.with_extension("conf")).unwrap();
}

#[cfg(unix)]
#[test]
fn ctrl_c_stops_a_launched_engine_and_a_second_one_kills_it() {
    // First Ctrl-C: the run ends and the engine is stopped before exit.
    let out_dir = temp_dir("launch-sigint");
    let conf = out_dir.with_extension("conf");
    let (file, port) = launched_engine_file(&conf, "launched", "", "");
    let child = start_slow_on(
        &out_dir,
        8,
        "launched",
        &["--engines", file.to_str().unwrap()],
    );
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(101), "{t}");
    assert!(t.contains("interrupted after"), "{t}");
    let s = summary(&run_dir(&out_dir));
    assert_eq!(s["trials"][0]["status"], "interrupted");
    let pid = s["trials"][0]["engine_pid"].as_u64().unwrap();
    assert!(gone(pid), "the engine (pid {pid}) still runs after Ctrl-C");
    assert!(!answers(port));
    std::fs::remove_dir_all(&out_dir).unwrap();

    // An engine that ignores SIGTERM holds up the stop for its stop timeout;
    // a second Ctrl-C kills it and quits at once.
    let (file, port) = launched_engine_file(&conf, "deaf", "", "stop_timeout_s = 60");
    let text_of = std::fs::read_to_string(&file).unwrap().replace(
        r#"command = "${SIM_ENGINE}"
args = ["#,
        r#"command = "sh"
args = ["-c", "trap '' TERM; exec \"$0\" \"$@\"", "${SIM_ENGINE}", "#,
    );
    std::fs::write(&file, text_of).unwrap();
    let child = start_slow_on(&out_dir, 8, "deaf", &["--engines", file.to_str().unwrap()]);
    let started = Instant::now();
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    // Once the interrupted trial is recorded the harness is stopping the engine.
    let dir = run_dir(&out_dir);
    let pid = loop {
        let s = std::fs::read_to_string(dir.join("summary.json")).unwrap_or_default();
        if let Ok(v) = serde_json::from_str::<Value>(&s) {
            if let Some(pid) = v["trials"][0]["engine_pid"].as_u64() {
                break pid;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no summary after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    std::thread::sleep(Duration::from_millis(500));
    assert!(alive(pid), "the engine ignores SIGTERM, so it still runs");
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(130), "{t}");
    assert!(t.contains("stopping now"), "{t}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "it did not wait for the stop timeout"
    );
    assert!(
        gone(pid),
        "the engine (pid {pid}) still runs after a second Ctrl-C"
    );
    assert!(!answers(port));
    std::fs::remove_dir_all(out_dir).unwrap();
    std::fs::remove_dir_all(conf).unwrap();
}

#[cfg(unix)]
#[test]
fn ctrl_c_while_a_launched_engine_loads_stops_it() {
    let out_dir = temp_dir("launch-loading");
    let conf = out_dir.with_extension("conf");
    let (file, port) = launched_engine_file(
        &conf,
        "loading",
        r#""--loading-secs", "600""#,
        "startup_timeout_s = 300",
    );
    let child = fixture_command(&["--bench", "--exact", "ok_chat/loading", "--engines"])
        .arg(&file)
        .arg("--out")
        .arg(&out_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The engine has started once it wrote its pid.
    let started = Instant::now();
    let pid: u64 = loop {
        let log = std::fs::read_dir(&out_dir)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|d| {
                std::fs::read_to_string(d.ok()?.path().join("engines/loading.stderr.log")).ok()
            })
            .unwrap_or_default();
        if let Some(pid) = log.lines().find_map(|l| l.strip_prefix("sim-engine: pid ")) {
            break pid.trim().parse().unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the engine did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(answers(port), "it serves 503 while it loads");
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(101), "{t}");
    assert!(
        t.contains("not run: the run was interrupted while engine `loading`"),
        "{t}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "it did not wait out the start-up"
    );
    assert!(gone(pid), "the engine (pid {pid}) still runs after Ctrl-C");
    assert!(!answers(port));
    let s = summary(&run_dir(&out_dir));
    assert_eq!(s["trials"][0]["status"], "interrupted");
    std::fs::remove_dir_all(out_dir).unwrap();
    std::fs::remove_dir_all(conf).unwrap();
}
