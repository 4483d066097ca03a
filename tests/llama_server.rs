//! A real llama-server end to end. `scripts/llama-server` builds it (CPU
//! only, cached outside the clone; the first run takes minutes) and fetches
//! SmolLM2-135M; each test launches it through `engine::launch` and runs a
//! few short requests through the harness, then checks the client's figures
//! against the server's own: every request succeeds, output token counts come
//! from the engine and match what streamed, the client's TTFT is at least the
//! server's prompt time, and `/metrics` counted the same tokens.
//!
//! A failed build fails these tests: they never skip.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that cannot proceed should panic

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use llmbench::engine::launch::{LaunchSpec, Launched};
use llmbench::harness::{run_once, TrialRun};
use llmbench::prelude::*;

const MAX_TOKENS: u32 = 16;
const REQUESTS: u64 = 4;

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
    let (server, model) = llama_server_and_model();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let spec = LaunchSpec::new(&server, format!("{url}/health"))
        .arg("-m")
        .arg(model.file_name().unwrap())
        .current_dir(model.parent().unwrap())
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args([
            "-c",
            "2048",
            "--parallel",
            "2",
            "-t",
            "1",
            "--metrics",
            "--no-ui",
        ])
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

/// What every request of a run against llama-server must show. `length` is
/// the finish reason the route uses when the budget ran out.
fn check_records(run: &TrialRun, model: &str, length: &str) {
    assert_eq!(run.model, model, "the model id is the bare file name");
    assert_eq!(run.records.len() as u64, REQUESTS, "{:?}", run.first_errors);
    for r in &run.records {
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
            (1..=MAX_TOKENS).contains(&output),
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
        if r.finish_reason.as_deref() == Some(length) {
            assert_eq!(output, MAX_TOKENS, "request {id}: the budget was used up");
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

/// Run `bench` against `engine` and check the records and `/metrics`.
fn run_and_check(url: &str, engine: &Engine, bench: &Bench, model: &str, length: &str) -> TrialRun {
    let before = tokens_predicted_total(url);
    let run = run_once("llama_server", bench, engine).unwrap_or_else(|e| panic!("{}", e.chain()));
    check_records(&run, model, length);
    let counted: u32 = run.records.iter().filter_map(|r| r.output_tokens).sum();
    let after = tokens_predicted_total(url);
    assert_eq!(
        after - before,
        f64::from(counted),
        "/metrics counted {} generated tokens, the records {counted}",
        after - before
    );
    run
}

#[test]
fn openai_chat_route_agrees_with_the_server() {
    let (engine, url, model) = launch("openai");
    let spec: Engine = format!("openai={url},model={model}").parse().unwrap();
    let run = run_and_check(&url, &spec, &bench(prompts()), &model, "length");
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
fn native_completion_route_agrees_with_the_server() {
    let (engine, url, model) = launch("native");
    // No model named: the adapter asks the server, which names the -m argument.
    let spec: Engine = format!("llamacpp={url},api=completion").parse().unwrap();
    let run = run_and_check(&url, &spec, &bench(prompts().completion()), &model, "limit");
    for r in &run.records {
        let s = &r.server;
        assert!(
            s.prompt_eval_duration_ms.is_some()
                && s.eval_duration_ms.is_some()
                && s.eval_tps.is_some(),
            "the native route reports its timings: {s:?}"
        );
    }
    engine.stop().unwrap();
}
