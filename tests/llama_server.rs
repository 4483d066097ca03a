//! A real llama-server end to end. `scripts/llama-server` builds it (CPU
//! only, cached outside the clone; the first run takes minutes) and fetches
//! SmolLM2-135M. One test has the harness launch it from an engines file
//! (`[engine.launch]`), as a user's `cargo bench` would, over the native
//! `/completion` route and `/v1/chat/completions`; another launches it through
//! `engine::launch` and runs the library's `run_once`. Both check the client's
//! figures against the server's own: every request succeeds, output token
//! counts come from the engine and match what streamed, the client's TTFT is
//! at least the server's prompt time; the first also that the server timings
//! reach `summary.json`, the engine's logs the run directory, and that no
//! llama-server outlives the run; the second that `/metrics` counted the same
//! tokens.
//!
//! A failed build fails these tests: they never skip.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that cannot proceed should panic

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use llmbench::engine::launch::{LaunchSpec, Launched};
use llmbench::harness::run_once;
use llmbench::measure::{PromptScaling, RequestRecord};
use llmbench::prelude::*;
use serde_json::Value;

const MAX_TOKENS: u32 = 16;
const REQUESTS: u64 = 4;
/// The fixture bench binary, and its `ok_chat` scenario's shape.
const FIXTURE: &str = env!("CARGO_BIN_EXE_harness-fixture");
const OK_CHAT_MAX_TOKENS: u32 = 8;
const OK_CHAT_REQUESTS: u64 = 6;

/// The binary and the model, from `scripts/llama-server` (which builds them
/// on the first run and prints where they are).
fn llama_server_and_model() -> (PathBuf, PathBuf) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/llama-server");
    // stderr passes through: the build's progress shows while it runs.
    let out = Command::new(&script)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{} failed ({}); its messages are above. stdout:\n{stdout}",
        script.display(),
        out.status
    );
    let value = |key: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(PathBuf::from)
            .unwrap_or_else(|| panic!("no `{key}` line from {}:\n{stdout}", script.display()))
    };
    (value("LLAMA_SERVER="), value("LLAMA_MODEL="))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A llama-server on a free loopback port, its base URL and its model id.
/// The model is passed as a bare file name from its folder: llama-server
/// echoes `-m` as the model id, and a path would leak into every answer.
fn launch(tag: &str) -> (Launched, String, String) {
    launch_with(tag, &["-c", "2048", "--parallel", "2"])
}

/// [`launch`] with other context and slot arguments.
fn launch_with(tag: &str, slots: &[&str]) -> (Launched, String, String) {
    let (server, model) = llama_server_and_model();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let spec = LaunchSpec::new(&server, format!("{url}/health"))
        .arg("-m")
        .arg(model.file_name().unwrap())
        .current_dir(model.parent().unwrap())
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(slots.iter().copied())
        .args(["-t", "1", "--metrics", "--no-ui"])
        .startup_timeout(Duration::from_secs(60))
        .log_dir(Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("llama-server-{tag}")));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let engine = runtime
        .block_on(Launched::start(&spec))
        .unwrap_or_else(|e| panic!("{}", e.chain()));
    let model = model.file_name().unwrap().to_str().unwrap().to_string();
    (engine, url, model)
}

/// Run the fixture bench binary with `args` and `--out out_dir`, the
/// engines named only by `args`, `LLAMA_SERVER` set to `server`; assert it
/// passed and return its output and its run directory.
fn bench_run(args: &[&OsStr], out_dir: &Path, server: Option<&Path>) -> (String, PathBuf) {
    let _ = std::fs::remove_dir_all(out_dir);
    let mut command = Command::new(FIXTURE);
    command
        .args(args)
        .arg("--out")
        .arg(out_dir)
        .env_remove("LLMBENCH_ENGINE")
        .env_remove("LLMBENCH_ENGINES");
    if let Some(server) = server {
        command.env("LLAMA_SERVER", server);
    }
    let out = command.output().unwrap();
    let t = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{t}");
    assert!(out.status.success(), "{t}");
    let dirs: Vec<_> = std::fs::read_dir(out_dir).unwrap().collect();
    assert_eq!(dirs.len(), 1, "one run directory");
    let dir = dirs.into_iter().next().unwrap().unwrap().path();
    (t, dir)
}

/// The `summary.json` of run directory `dir`.
fn summary_of(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

fn bench(workload: Workload) -> Bench {
    Bench::new()
        .workload(workload.max_tokens(MAX_TOKENS))
        .load(Load::users(2).requests(REQUESTS))
}

fn prompts() -> Workload {
    Workload::prompts([
        "Why is the sky blue?",
        "Name three colours.",
        "Write one sentence about the sea.",
    ])
}

/// `GET path` over plain HTTP/1.0: the test needs no HTTP client of its own.
fn http_get(url: &str, path: &str) -> String {
    let host = url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(host).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "GET {path}: {answer}");
    answer
}

/// llama-server's running count of generated tokens, from `/metrics`.
fn tokens_predicted_total(url: &str) -> f64 {
    let metrics = http_get(url, "/metrics");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("llamacpp:tokens_predicted_total "))
        .unwrap_or_else(|| panic!("no llamacpp:tokens_predicted_total in /metrics:\n{metrics}"))
        .trim()
        .parse()
        .unwrap()
}

/// How a route streams llama-server's tokens.
#[derive(Clone, Copy)]
struct Route {
    /// The finish reason when the budget ran out.
    length: &'static str,
    /// One event per token, also for a token without whole text (native
    /// `/completion`). The `/v1` routes hold back the bytes of a character
    /// split over several tokens (an emoji is two to four) and send it as
    /// one delta, so they may send fewer chunks than tokens.
    event_per_token: bool,
}

const NATIVE: Route = Route {
    length: "limit",
    event_per_token: true,
};
const V1: Route = Route {
    length: "length",
    event_per_token: false,
};

/// What every request of a run against llama-server must show: `requests`
/// records, each asking for `max_tokens`, streamed the way `route` streams.
fn check_records(
    records: &[RequestRecord],
    model: &str,
    route: Route,
    max_tokens: u32,
    requests: u64,
) {
    assert_eq!(records.len() as u64, requests, "{records:?}");
    for r in records {
        assert_eq!(r.model, model, "the model id is the bare file name");
        let id = r.request_id;
        eprintln!(
            "request {id}: ttft {:.1} ms, server prompt {:?} ms ({:?} tokens, {:?} cached), \
             output {:?} tokens in {} chunks, finish {:?}, e2e {:.1} ms, server eval {:?} ms",
            r.ttft_ms.unwrap_or(f64::NAN),
            r.server.prompt_eval_duration_ms,
            r.prompt_tokens,
            r.server.cached_prompt_tokens,
            r.output_tokens,
            r.content_chunks,
            r.finish_reason,
            r.e2e_latency_ms,
            r.server.eval_duration_ms,
        );
        assert!(r.success, "request {id} failed: {:?}", r.error);
        assert!(
            !r.output_tokens_estimated,
            "request {id}: output tokens are the engine's"
        );
        let output = r.output_tokens.unwrap();
        assert!(
            (1..=max_tokens).contains(&output),
            "request {id}: {output} tokens"
        );
        assert!(
            r.prompt_tokens.is_some_and(|n| n > 0),
            "request {id}: {r:?}"
        );
        // The server's predicted_n against what the client saw stream: one
        // chunk per token; a stop on end-of-generation may count a token that
        // carries no text.
        let chunks = r.content_chunks;
        let budget_used = r.finish_reason.as_deref() == Some(route.length);
        if budget_used {
            assert_eq!(output, max_tokens, "request {id}: the budget was used up");
        }
        if !route.event_per_token {
            assert!(
                (1..=output).contains(&chunks),
                "request {id}: predicted_n {output} vs {chunks} chunks"
            );
        } else if budget_used {
            assert_eq!(output, chunks, "request {id}: predicted_n vs chunks");
        } else {
            assert!(
                output == chunks || output == chunks + 1,
                "request {id}: predicted_n {output} vs {chunks} chunks ({:?})",
                r.finish_reason
            );
        }
        // The first token leaves the server after its prompt was evaluated.
        let ttft = r.ttft_ms.unwrap();
        if let Some(prompt_ms) = r.server.prompt_eval_duration_ms {
            assert!(
                ttft >= prompt_ms,
                "request {id}: client TTFT {ttft} ms < server prompt time {prompt_ms} ms"
            );
        }
        assert!(r.e2e_latency_ms >= ttft);
    }
}

#[test]
fn openai_chat_route_agrees_with_the_server_and_its_metrics() {
    let (engine, url, model) = launch("openai");
    let spec: Engine = format!("openai={url},model={model}").parse().unwrap();
    let before = tokens_predicted_total(&url);
    let run = run_once("llama_server", &bench(prompts()), &spec)
        .unwrap_or_else(|e| panic!("{}", e.chain()));
    assert_eq!(run.model, model);
    check_records(&run.records, &model, V1, MAX_TOKENS, REQUESTS);
    let counted: u32 = run.records.iter().filter_map(|r| r.output_tokens).sum();
    let after = tokens_predicted_total(&url);
    assert_eq!(
        after - before,
        f64::from(counted),
        "/metrics counted {} generated tokens, the records {counted}",
        after - before
    );
    // llama-server adds its timings to the /v1 stream's last chunk.
    assert!(
        run.records
            .iter()
            .all(|r| r.server.prompt_eval_duration_ms.is_some()),
        "every chat record carries the server's prompt time"
    );
    engine.stop().unwrap();
}

#[test]
fn rag_prompts_are_within_one_percent_of_the_requested_tokens() {
    // One slot with room for the longest prompt and its answer.
    let (engine, url, _) = launch_with("rag", &["-c", "4608", "--parallel", "1"]);
    // The fixture's `seq_rag_lengths`: `Workload::rag().prompt_tokens([1024,
    // 2048, 4096])` run by the harness as `cargo bench` runs it.
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("llama-server-rag-runs");
    let engine_spec = OsString::from(format!("llamacpp={url},name=llama"));
    let args = ["--bench", "--exact", "seq_rag_lengths/llama", "--engine"].map(OsStr::new);
    let (_, dir) = bench_run(
        &[&args[..], &[engine_spec.as_os_str()]].concat(),
        &out_dir,
        None,
    );
    let summary = summary_of(&dir);
    let trials = summary["trials"].as_array().unwrap();
    // Three result sets, one per length.
    let steps: Vec<&str> = trials.iter().map(|t| t["step"].as_str().unwrap()).collect();
    assert_eq!(
        steps,
        [
            "1024 prompt tokens",
            "2048 prompt tokens",
            "4096 prompt tokens"
        ]
    );
    for (trial, want) in trials.iter().zip([1024u32, 2048, 4096]) {
        assert_eq!(trial["status"], "ok", "{trial}");
        let lengths = &trial["workload"]["prompt_lengths"];
        assert_eq!(lengths["source"], "tokenizer", "{lengths}");
        assert_eq!(lengths["requests"], 2, "{lengths}");
        let ratio = lengths["max_error_ratio"].as_f64().unwrap();
        assert!(
            ratio <= 0.01,
            "asked for {want} prompt tokens, the server counted {} (max error {ratio})",
            lengths["reported_mean"]
        );
        eprintln!(
            "rag: asked for {want} prompt tokens, the server counted {} on average",
            lengths["reported_mean"]
        );
        // llama-server times its own prompt processing.
        let processing = &trial["use_case"]["prompt_processing"];
        assert_eq!(processing["source"], "server", "{processing}");
    }
    // Longer prompts take longer to process: TTFT rises with length.
    let scaling: PromptScaling =
        serde_json::from_value(summary["prompt_scaling"][0].clone()).unwrap();
    eprintln!("rag: {}", scaling.describe());
    let line = scaling.ttft_p50_vs_prompt_tokens.unwrap();
    assert_eq!(line.points, 3);
    assert!(line.ms_per_1k_tokens > 0.0 && line.r > 0.9, "{line:?}");
    engine.stop().unwrap();
}

/// An `[[engine]]` entry the harness launches: llama-server on `port`, the
/// model by its bare file name from its folder. The binary is named through
/// `${LLAMA_SERVER}`, which the harness expands from its environment.
fn launched_entry(head: &str, model: &Path, port: u16) -> String {
    format!(
        r#"
[[engine]]
{head}
url = "http://127.0.0.1:{port}"
[engine.launch]
command = "${{LLAMA_SERVER}}"
args = ["-m", "{file}", "--host", "127.0.0.1", "--port", "{port}",
        "-c", "2048", "--parallel", "2", "-t", "1", "--metrics", "--no-ui"]
cwd = "{dir}"
startup_timeout_s = 60
"#,
        file = model.file_name().unwrap().to_str().unwrap(),
        dir = model.parent().unwrap().display(),
    )
}

/// Whether process `pid` runs (a zombie does not).
fn alive(pid: u64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // `pid (comm) S ...`: the state follows the last `)`.
        Ok(stat) => {
            stat.rsplit(')')
                .next()
                .and_then(|r| r.trim().chars().next())
                != Some('Z')
        }
        Err(_) => Command::new("kill")
            .args(["-0", &pid.to_string()])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
    }
}

#[test]
fn the_harness_launches_llama_server_and_both_routes_agree_with_it() {
    let (server, model_path) = llama_server_and_model();
    let model = model_path
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join("llama-server-harness");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    // Native /completion (no model named: the adapter asks the server), and
    // /v1/chat/completions on a second server.
    let engines = work.join("engines.toml");
    let (native_port, chat_port) = (free_port(), free_port());
    let text = [
        launched_entry(
            "kind = \"llamacpp\"\nname = \"llama\"\napi = \"completion\"",
            &model_path,
            native_port,
        ),
        launched_entry(
            &format!("kind = \"openai\"\nname = \"llama-v1\"\nmodel = \"{model}\""),
            &model_path,
            chat_port,
        ),
    ]
    .concat();
    std::fs::write(&engines, text).unwrap();
    let out_dir = work.join("runs");
    let args = [
        "--bench",
        "ok_chat",
        "--monitor-interval",
        "0.2",
        "--engines",
    ]
    .map(OsStr::new);
    let (t, dir) = bench_run(
        &[&args[..], &[engines.as_os_str()]].concat(),
        &out_dir,
        Some(&server),
    );
    let all_ok = format!("[{OK_CHAT_REQUESTS}/{OK_CHAT_REQUESTS} ok");
    for trial in ["ok_chat/llama ", "ok_chat/llama-v1 "] {
        let line = t.lines().find(|l| l.contains(trial)).unwrap();
        assert!(line.contains(&all_ok), "{line}");
    }
    let records: Vec<RequestRecord> = std::fs::read_to_string(dir.join("requests.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of = |engine: &str| -> Vec<RequestRecord> {
        records
            .iter()
            .filter(|r| r.engine == engine)
            .cloned()
            .collect()
    };
    check_records(
        &of("llama"),
        &model,
        NATIVE,
        OK_CHAT_MAX_TOKENS,
        OK_CHAT_REQUESTS,
    );
    check_records(
        &of("llama-v1"),
        &model,
        V1,
        OK_CHAT_MAX_TOKENS,
        OK_CHAT_REQUESTS,
    );

    let summary = summary_of(&dir);
    let trials = summary["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 2);
    for trial in trials {
        let label = trial["engine"].as_str().unwrap();
        assert_eq!(trial["status"], "ok", "{trial}");
        let command = trial["engine_command"].as_str().unwrap();
        assert!(
            command.starts_with(&format!("{} -m {model} ", server.display())),
            "{command}"
        );
        // The server's own timings reach the summary, for every request.
        let coverage = &trial["metric_coverage"];
        for metric in ["prompt_eval_duration", "eval_duration"] {
            if label == "llama" || metric == "prompt_eval_duration" {
                assert_eq!(coverage[metric], 1.0, "{label}: {metric} in {coverage}");
                assert!(
                    trial["server"][metric]["p50"].as_f64().unwrap() > 0.0,
                    "{trial}"
                );
            }
        }
        // Its logs are in the run directory (llama-server writes to
        // stderr), and it is gone.
        let log = |stream: &str| {
            let path = dir.join(format!("engines/{label}.{stream}.log"));
            std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{label}: {}: {e}", path.display()))
        };
        log("stdout");
        assert!(
            log("stderr").contains("llama"),
            "{label}: its stderr log says nothing"
        );
        let pid = trial["engine_pid"].as_u64().unwrap();
        assert!(
            !alive(pid),
            "{label}: llama-server (pid {pid}) outlived the run"
        );
    }
    for port in [native_port, chat_port] {
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port {port} still answers"
        );
    }
    check_monitor(&dir, trials);
    correlations_over_a_longer_run(&server, &engines, &work);
}

/// Six seconds of four users on the native server (two slots, so requests
/// wait at times): enough samples for the summary's correlations of the
/// client's figures with the engine's queue and KV cache.
fn correlations_over_a_longer_run(server: &Path, engines: &Path, work: &Path) {
    let out_dir = work.join("runs-long");
    let args = [
        "--bench",
        "--exact",
        "slow/llama",
        "--duration-scale",
        "0.1",
        "--monitor-interval",
        "0.2",
        "--engines",
    ]
    .map(OsStr::new);
    let (_, dir) = bench_run(
        &[&args[..], &[engines.as_os_str()]].concat(),
        &out_dir,
        Some(server),
    );
    let summary = summary_of(&dir);
    let correlation = &summary["trials"][0]["monitor"]["correlation"];
    let figures: Vec<f64> = correlation
        .as_object()
        .unwrap()
        .values()
        .flat_map(|c| [c["output_tps"].as_f64(), c["ttft"].as_f64()])
        .flatten()
        .collect();
    assert!(
        !figures.is_empty() && figures.iter().all(|r| (-1.0..=1.0).contains(r)),
        "correlation figures: {correlation}"
    );
}

/// `monitor.csv` has each launched llama-server's process and `/metrics`
/// series, and the summary its monitor figures with the correlations.
fn check_monitor(dir: &Path, trials: &[Value]) {
    let text = std::fs::read_to_string(dir.join("monitor.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (cpu, rss, running) = (
        col("engine_cpu_pct"),
        col("engine_rss_mib"),
        col("engine_requests_running"),
    );
    for label in ["ok_chat/llama", "ok_chat/llama-v1"] {
        let rows: Vec<Vec<&str>> = text
            .lines()
            .filter(|l| l.starts_with(&format!("{label},")))
            .map(|l| l.split(',').collect())
            .collect();
        assert!(!rows.is_empty(), "{label}: no monitor rows in\n{text}");
        let filled = |i: usize| rows.iter().filter(|r| !r[i].is_empty()).count();
        assert!(
            filled(cpu) > 0 && filled(rss) > 0,
            "{label}: the engine process\n{text}"
        );
        assert!(filled(running) > 0, "{label}: /metrics series\n{text}");
        let rss_mib: f64 = rows.iter().find_map(|r| r[rss].parse().ok()).unwrap();
        assert!(
            rss_mib > 10.0,
            "{label}: llama-server's RSS is {rss_mib} MiB"
        );
    }
    for trial in trials {
        let monitor = &trial["monitor"];
        assert!(
            monitor["series"]["engine_cpu_pct"]["max"].as_f64().unwrap() > 0.0,
            "{monitor}"
        );
        assert!(monitor["correlation"].is_object(), "{monitor}");
    }
}
