//! The harness end to end, driven as `cargo bench` drives a bench binary:
//! filters, listing, smoke mode, run directories, failing scenarios, SLO
//! verdicts, engine errors and Ctrl-C. The engines are simulators started here, or (in
//! `launch.rs`) started by the harness itself from an `[engine.launch]` table.

#![allow(clippy::unwrap_used)] // a test helper that fails should panic

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use llmbench::measure::RequestRecord;
use llmbench::sim::{Fault, SimConfig, Simulator};
use serde_json::Value;

const FIXTURE: &str = env!("CARGO_BIN_EXE_harness-fixture");
/// The simulator as a process of its own, for engines files to launch.
const SIM_ENGINE: &str = env!("CARGO_BIN_EXE_sim-engine");

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("llmbench-harness-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn fixture(args: &[&str]) -> Output {
    fixture_command(args)
        .output()
        .expect("the fixture bench binary runs")
}

/// The fixture bench binary with `args`, and `SIM_ENGINE` in its
/// environment for engines files to name as `${SIM_ENGINE}`.
fn fixture_command(args: &[&str]) -> Command {
    let mut command = Command::new(FIXTURE);
    command
        .args(args)
        .env_remove("LLMBENCH_ENGINE")
        .env_remove("LLMBENCH_ENGINES")
        .env("SIM_ENGINE", SIM_ENGINE);
    command
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The output line of trial `name`.
fn line_of<'a>(t: &'a str, name: &str) -> &'a str {
    t.lines()
        .find(|l| l.starts_with(&format!("test {name} ")))
        .unwrap_or_else(|| panic!("no line for {name} in:\n{t}"))
}

/// The single run directory under `out`.
fn run_dir(out: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(out)
        .expect("the out directory exists")
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "one run directory in {}", out.display());
    dirs.into_iter().next().unwrap()
}

fn records(dir: &Path) -> Vec<RequestRecord> {
    let text = std::fs::read_to_string(dir.join("requests.jsonl")).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l}: {e}")))
        .collect()
}

fn summary(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

#[test]
fn list_names_every_scenario_engine_pair() {
    let out = fixture(&["--list"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    for name in [
        "bad_build/sim",
        "bad_users/sim",
        "ok_chat/sim",
        "ok_completion/sim",
        "slo_met/sim",
        "slo_missed/sim",
        "slow/sim",
    ] {
        assert!(
            t.contains(&format!("{name}: test")),
            "{name} missing from:\n{t}"
        );
    }
    let out = fixture(&["--list", "ok_"]);
    assert!(!text(&out).contains("slow/sim"), "filters apply to --list");
}

#[test]
fn smoke_mode_runs_each_scenario_with_two_requests_and_writes_nothing() {
    let out_dir = temp_dir("smoke");
    let out = fixture(&["ok_", "--out", out_dir.to_str().unwrap()]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(line_of(&t, "ok_chat/sim").contains("[2/2 ok"), "{t}");
    assert!(line_of(&t, "ok_completion/sim").contains("[2/2 ok"), "{t}");
    assert!(t.contains("2 passed"), "{t}");
    assert!(!out_dir.exists(), "smoke runs write no run directory");
}

#[test]
fn bench_mode_writes_records_and_summary() {
    let out_dir = temp_dir("bench");
    let out = fixture(&["--bench", "ok_", "--out", out_dir.to_str().unwrap()]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(line_of(&t, "ok_chat/sim").contains("[6/6 ok"), "{t}");
    let dir = run_dir(&out_dir);
    assert!(
        t.contains(&format!("llmbench: results in {}", dir.display())),
        "{t}"
    );
    let recs = records(&dir);
    assert_eq!(recs.len(), 9, "6 chat + 3 completion requests");
    assert!(recs.iter().all(|r| r.success && r.ttft_ms.is_some()));
    let mut ids: Vec<u64> = recs
        .iter()
        .filter(|r| r.scenario == "ok_chat")
        .map(|r| r.request_id)
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..6).collect::<Vec<_>>());
    let s = summary(&dir);
    assert_eq!(s["schema"], 1);
    let trials = s["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 2);
    let chat = trials.iter().find(|t| t["scenario"] == "ok_chat").unwrap();
    assert_eq!(chat["engine"], "sim");
    assert_eq!(chat["status"], "ok");
    assert_eq!(chat["requests"], 6);
    assert_eq!(chat["description"], "A few quick chat requests.");
    for metric in ["ttft", "itl", "tpot", "e2e_latency", "output_tps"] {
        for stat in [
            "mean", "std_dev", "min", "p50", "p90", "p95", "p99", "p99_9", "max",
        ] {
            assert!(chat[metric][stat].is_f64(), "{metric}.{stat} in {chat}");
        }
    }
    // The client's own CPU use, the in-process simulator's threads left out.
    let cpu = &chat["client_cpu"];
    if cfg!(target_os = "linux") {
        for field in ["cpu_s", "wall_s", "cores_share"] {
            assert!(cpu[field].is_f64(), "client_cpu.{field} in {cpu}");
        }
        assert!(cpu["cores"].as_u64().unwrap() >= 1, "{cpu}");
        let threads = cpu["threads"].as_object().unwrap();
        for name in ["llmbench-client", "llmbench-writer"] {
            assert!(threads.contains_key(name), "{name} in {cpu}");
        }
        assert!(
            threads.keys().all(|name| !name.starts_with("llmbench-sim")),
            "{cpu}"
        );
    } else {
        assert!(cpu.is_null(), "{cpu}");
    }
    assert!(chat["warnings"].as_array().unwrap().is_empty(), "{chat}");
    std::fs::remove_dir_all(out_dir).unwrap();
}

#[test]
fn invalid_scenarios_fail_their_trial_and_the_rest_still_run() {
    let out = fixture(&[
        "--skip",
        "slow",
        "--skip",
        "completion",
        "--skip",
        "slo_",
        "--skip",
        "sweep",
        "--skip",
        "seq_",
        "--skip",
        "streams",
        "--skip",
        "cmp_",
        "--skip",
        "shard_",
        "--skip",
        "in_flight",
    ]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(101), "{t}");
    assert!(line_of(&t, "ok_chat/sim").contains("[2/2 ok"), "{t}");
    assert!(t.contains("scenario `bad_users`"), "{t}");
    assert!(t.contains("load.users: must be at least 1 (got 0)"), "{t}");
    assert!(t.contains("scenario `bad_build`"), "{t}");
    assert!(t.contains("`openai=not-a-url`"), "{t}");
    assert!(t.contains("1 passed; 2 failed"), "{t}");
}

#[cfg(unix)]
#[test]
fn a_load_beyond_the_open_files_limit_fails_up_front_saying_how_to_raise_it() {
    let out_dir = temp_dir("nofile");
    // 2,000 users need 4,000 descriptors with the simulator in process.
    let out = Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -n 1024 && exec "$0" "$@""#)
        .arg(FIXTURE)
        .args(["--bench", "--exact", "streams_2k/sim"])
        .args(["--out", out_dir.to_str().unwrap()])
        .env_remove("LLMBENCH_ENGINE")
        .env_remove("LLMBENCH_ENGINES")
        .output()
        .unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(101), "{t}");
    assert!(line_of(&t, "streams_2k/sim").contains("FAILED"), "{t}");
    assert!(
        t.contains("the load needs 2000 streams open at once (2 descriptors each")
            && t.contains("but the open-files limit is 1024 (hard 1024)")
            && t.contains("raise it with `ulimit -n"),
        "{t}"
    );
    let dir = run_dir(&out_dir);
    assert!(records(&dir).is_empty(), "no request was sent");
    let trial = &summary(&dir)["trials"][0];
    assert_eq!(trial["status"], "failed", "{trial}");
    assert!(
        trial["error"]
            .as_str()
            .unwrap()
            .contains("open-files limit"),
        "{trial}"
    );
    std::fs::remove_dir_all(out_dir).unwrap();
}

#[test]
fn a_missed_slo_fails_the_trial_saying_which_percentile_missed_by_how_much() {
    let out_dir = temp_dir("slo");
    let out = fixture(&["--bench", "slo_", "--out", out_dir.to_str().unwrap()]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(101), "{t}");
    assert!(t.contains("1 passed; 1 failed"), "{t}");
    let met = line_of(&t, "slo_met/sim");
    assert!(
        met.contains("goodput ") && met.contains("req/s, 100% met slo]") && met.ends_with(" ok"),
        "{t}"
    );
    assert!(
        line_of(&t, "slo_missed/sim").contains("0.0 req/s, 0% met slo]"),
        "{t}"
    );
    // One line per missed threshold, in the scenario's order; the e2e one held.
    let ttft = t
        .lines()
        .find(|l| l.starts_with("slo ttft p95 <= 5 ms missed: "))
        .unwrap_or_else(|| panic!("no ttft line in:\n{t}"));
    assert!(ttft.ends_with("%)"), "{ttft}");
    assert!(
        t.contains("\nslo tpot p50 <= 1 ms missed: "),
        "the tpot line follows: {t}"
    );
    assert!(!t.contains("slo e2e_latency"), "{t}");

    let dir = run_dir(&out_dir);
    let s = summary(&dir);
    let trial = |name: &str| {
        s["trials"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["scenario"] == name)
            .unwrap()
            .clone()
    };
    let (met, missed) = (trial("slo_met"), trial("slo_missed"));
    assert_eq!(met["status"], "ok");
    assert!(met["error"].is_null());
    assert_eq!(met["good_requests"], 6);
    assert_eq!(met["slo_attainment"], 1.0);
    assert_eq!(met["goodput"], met["request_throughput"]);
    assert_eq!(
        met["slos"].as_array().unwrap().len(),
        3,
        "both .slo(..) calls count"
    );
    assert_eq!(missed["status"], "failed");
    let error = missed["error"].as_str().unwrap();
    assert_eq!(error.lines().count(), 2, "{error}");
    assert!(
        error.starts_with("slo ttft p95 <= 5 ms missed: "),
        "{error}"
    );
    assert_eq!(missed["goodput"], 0.0);
    let checks = missed["slos"].as_array().unwrap();
    let passed: Vec<&Value> = checks.iter().map(|c| &c["passed"]).collect();
    assert_eq!(passed, [false, true, false]);
    let ttft = &checks[0];
    assert_eq!(
        (&ttft["metric"], &ttft["percentile"], &ttft["limit_ms"]),
        (&Value::from("ttft"), &Value::from(95.0), &Value::from(5.0))
    );
    assert!(
        ttft["observed_ms"].as_f64().unwrap() >= 20.0,
        "the simulator is never early"
    );
    assert_eq!(ttft["observed_ms"], missed["ttft"]["p95"]);
    assert!(ttft["missed_by_ms"].as_f64().unwrap() >= 15.0);
    assert!(ttft["missed_by_pct"].as_f64().unwrap() >= 300.0);
    let recs = records(&dir);
    assert!(recs
        .iter()
        .all(|r| r.slo_met == Some(r.scenario == "slo_met")));

    // Smoke mode proves the scenario runs; two short requests judge no percentile.
    let out = fixture(&["slo_missed"]);
    assert!(out.status.success(), "{}", text(&out));
    std::fs::remove_dir_all(out_dir).unwrap();
}

#[test]
fn an_openai_compatible_engine_replaces_the_simulator() {
    let engine = Simulator::start(SimConfig::new().model("other-model")).unwrap();
    let out_dir = temp_dir("engine");
    let spec = format!("openai={},model=other-model,name=remote", engine.url());
    let out = fixture(&[
        "--bench",
        "ok_chat",
        "--engine",
        &spec,
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(line_of(&t, "ok_chat/remote").contains("[6/6 ok"), "{t}");
    assert!(!t.contains("ok_chat/sim"), "{t}");
    assert_eq!(engine.requests_seen(), 6);
    let recs = records(&run_dir(&out_dir));
    assert!(recs
        .iter()
        .all(|r| r.engine == "remote" && r.model == "other-model"));
    std::fs::remove_dir_all(out_dir).unwrap();
}

#[test]
fn engine_failures_are_records_with_messages_and_fail_the_trial() {
    let status = Simulator::start(SimConfig::new().fault(Fault::Status(503))).unwrap();
    let malformed = Simulator::start(SimConfig::new().fault(Fault::MalformedAfter(2))).unwrap();
    let cut = Simulator::start(SimConfig::new().fault(Fault::CutAfter(2))).unwrap();
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let out_dir = temp_dir("faults");
    let engines = [
        format!("openai={},model=m,name=e503", status.url()),
        format!("openai={},model=m,name=malformed", malformed.url()),
        format!("openai={},model=m,name=cut", cut.url()),
        format!("openai=http://{dead},model=m,name=dead"),
    ];
    let mut args = vec!["--bench", "ok_chat", "--out", out_dir.to_str().unwrap()];
    for e in &engines {
        args.extend(["--engine", e.as_str()]);
    }
    let out = fixture(&args);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(101), "{t}");
    assert!(!t.contains("panicked"), "{t}");
    assert!(t.contains("0 passed; 4 failed"), "{t}");
    assert!(t.contains("all 6 requests failed: http_status x6"), "{t}");
    assert!(t.contains("503"), "{t}");
    assert!(
        t.contains("malformed_stream x6") && t.contains("stream event #"),
        "{t}"
    );
    assert!(t.contains("truncated x6") && t.contains(&cut.url()), "{t}");
    assert!(
        t.contains("connect x6") && t.contains(&dead.to_string()),
        "{t}"
    );
    let recs = records(&run_dir(&out_dir));
    assert_eq!(recs.len(), 24, "every request is a record");
    let cut_recs: Vec<_> = recs.iter().filter(|r| r.engine == "cut").collect();
    assert!(
        cut_recs.iter().all(|r| r.content_chunks == 2),
        "tokens before the cut are kept"
    );
    std::fs::remove_dir_all(out_dir).unwrap();
}

/// Start the `slow` scenario in bench mode and wait until `min_lines`
/// records are on disk.
fn start_slow(out_dir: &Path, min_lines: usize) -> std::process::Child {
    start_slow_on(out_dir, min_lines, "sim", &[])
}

/// [`start_slow`] on the engine labelled `engine`, with more arguments.
#[allow(clippy::zombie_processes)] // the caller waits for the child it gets
fn start_slow_on(
    out_dir: &Path,
    min_lines: usize,
    engine: &str,
    more: &[&str],
) -> std::process::Child {
    let trial = format!("slow/{engine}");
    let mut child = fixture_command(&["--bench", "--exact", &trial])
        .args(["--out", out_dir.to_str().unwrap()])
        .args(more)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        let lines = std::fs::read_dir(out_dir)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|d| std::fs::read_to_string(d.ok()?.path().join("requests.jsonl")).ok())
            .map_or(0, |t| t.lines().count());
        if lines >= min_lines {
            return child;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no records after 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(unix)]
#[test]
fn a_killed_run_leaves_only_whole_records() {
    let out_dir = temp_dir("sigkill");
    let mut child = start_slow(&out_dir, 8);
    child.kill().unwrap(); // SIGKILL: no handler runs
    child.wait().unwrap();
    let recs = records(&run_dir(&out_dir)); // panics on a partial line
    assert!(recs.len() >= 8);
    std::fs::remove_dir_all(out_dir).unwrap();
}

#[cfg(unix)]
#[test]
fn ctrl_c_keeps_every_finished_request() {
    let out_dir = temp_dir("sigint");
    let child = start_slow(&out_dir, 8);
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(101), "{t}");
    assert!(t.contains("interrupted after"), "{t}");
    let dir = run_dir(&out_dir);
    let recs = records(&dir);
    assert!(recs.len() >= 8);
    let finished = recs.iter().filter(|r| r.success).count();
    assert!(
        finished >= 8 - 4,
        "at least the records seen before the signal: {finished}"
    );
    let s = summary(&dir);
    assert_eq!(s["trials"][0]["status"], "interrupted");
    assert_eq!(s["trials"][0]["requests"], recs.len());
    std::fs::remove_dir_all(out_dir).unwrap();
}

mod baselines;
mod crash;
mod disk_full;
mod endurance;
mod launch;
mod monitor;
mod reports;
mod schema;
mod sequences;
mod shards;
mod signals;

#[test]
fn retries_are_off_by_default_and_counted_when_asked() {
    // Every second request the engine receives is refused with a 503; the
    // completion scenario has one user, so which ones is deterministic.
    let flaky = || Simulator::start(SimConfig::new().fault_every(2, Fault::Status(503))).unwrap();
    let engine = flaky();
    let out_dir = temp_dir("no-retries");
    let spec = format!("openai={},model=m,name=flaky", engine.url());
    let out = fixture(&[
        "--bench",
        "ok_completion",
        "--engine",
        &spec,
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(
        line_of(&text(&out), "ok_completion/flaky").contains("[2/3 ok"),
        "{}",
        text(&out)
    );
    let recs = records(&run_dir(&out_dir));
    assert!(recs.iter().all(|r| r.retries == 0));
    std::fs::remove_dir_all(out_dir).unwrap();

    let engine = flaky();
    let out_dir = temp_dir("retries");
    let spec = format!("openai={},model=m,name=flaky", engine.url());
    let out = fixture(&[
        "--bench",
        "ok_completion",
        "--engine",
        &spec,
        "--retries",
        "1",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let t = text(&out);
    assert!(
        line_of(&t, "ok_completion/flaky").contains("[3/3 ok"),
        "{t}"
    );
    let recs = records(&run_dir(&out_dir));
    // One user: the 2nd and 4th requests the engine sees are refused, and
    // each is retried once.
    let retried: u32 = recs.iter().map(|r| r.retries).sum();
    assert_eq!(retried, 2);
    assert_eq!(
        engine.requests_seen(),
        3 + u64::from(retried),
        "each retry reached the engine"
    );
    let s = summary(&run_dir(&out_dir));
    assert_eq!(s["trials"][0]["retries"], u64::from(retried));
    std::fs::remove_dir_all(out_dir).unwrap();
}

#[test]
fn a_sweep_runs_each_step_as_its_own_result_set() {
    let out_dir = temp_dir("sweep");
    let out = fixture(&[
        "--bench",
        "--exact",
        "sweep_users/sim",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("1 users: [4/4 ok") || t.contains("1 user: [4/4 ok"),
        "{t}"
    );
    assert!(t.contains("2 users: [4/4 ok"), "{t}");
    assert!(
        t.contains("scaling     req/s"),
        "the scaling table follows: {t}"
    );
    assert!(
        t.contains("    saturation: ") || t.contains("    no saturation: "),
        "{t}"
    );
    let dir = run_dir(&out_dir);
    let s = summary(&dir);
    let table = &s["scaling"][0];
    assert_eq!(table["scenario"], "sweep_users");
    assert_eq!(table["unit"], "users");
    assert_eq!(table["rows"].as_array().unwrap().len(), 2);
    assert_eq!(table["rows"][1]["level"], 2.0);
    let trials = s["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 2, "one result set per step");
    let steps: Vec<&str> = trials.iter().map(|t| t["step"].as_str().unwrap()).collect();
    assert_eq!(steps.len(), 2);
    assert_eq!(trials[1]["users"], 2);
    let recs = records(&dir);
    assert_eq!(recs.len(), 8);
    assert_eq!(
        recs.iter()
            .filter(|r| r.step.as_deref() == Some(steps[1]))
            .count(),
        4
    );
    std::fs::remove_dir_all(out_dir).unwrap();
}
