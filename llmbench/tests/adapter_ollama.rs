//! The Ollama adapter against every recorded Ollama body in
//! `../shared/fixtures/ollama/`: each is replayed over a real socket with its
//! real status and content type (streams whole, line by line with delays, and
//! cut every 7 bytes) and the result is checked against the fixture README's
//! "A correct parser extracts" column.

#![allow(clippy::unwrap_used)] // a test helper that fails should panic

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use llmbench::engine::{connect, connect_with, EngineClient, GenRequest, ModelInfo, Timeouts};
use llmbench::measure::{Exchange, RequestErrorKind};
use llmbench::sim::replay::{Chunking, Received, Recorded, Replay};
use llmbench::{Engine, Mode};
use serde_json::Value;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/ollama");

/// Nothing here should take this long; a hang fails instead of blocking CI.
const LIMIT: Duration = Duration::from_secs(20);

const NDJSON: &str = "application/x-ndjson";
const JSON_UTF8: &str = "application/json; charset=utf-8";

/// Every fixture this file tests; `every_fixture_has_a_test` keeps it equal to
/// the directory's contents.
const COVERED: [&str; 22] = [
    "chat.json",
    "chat_stream.ndjson",
    "chat_stream_done_reason_length.ndjson",
    "chat_stream_long_203_tokens.ndjson",
    "chat_stream_tool_call_doc.ndjson",
    "chat_stream_v2026_done_first.ndjson",
    "chat_thinking_done_reason_length.json",
    "error_input_exceeds_context_400.json",
    "error_model_not_found_chat.json",
    "error_model_not_found_generate.json",
    "error_tools_unsupported_400.json",
    "generate.json",
    "generate_gemma3_context.json",
    "generate_load_empty_prompt.json",
    "generate_stream.ndjson",
    "generate_stream_gemma3_context.ndjson",
    "generate_stream_midstream_error.ndjson",
    "ps.json",
    "ps_keep_alive_forever.json",
    "tags.json",
    "v1_chat_completions_reasoning.json",
    "version.json",
];

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{DIR}/{name}");
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{path}: {e} (../shared must sit beside the checkout)"))
}

fn path_of(mode: Mode) -> &'static str {
    match mode {
        Mode::Chat => "/api/chat",
        Mode::Completion => "/api/generate",
    }
}

/// Send one request through the public API to `spec` (`KIND=URL,...`,
/// without the URL) served by `replay`.
async fn send(replay: &Replay, spec: &str, mode: Mode) -> Exchange {
    let (kind, rest) = spec.split_once('=').unwrap();
    let engine: Engine = format!("{kind}={}{rest}", replay.url()).parse().unwrap();
    let (client, _) = connect(&engine).await.unwrap();
    let req = GenRequest {
        prompt: "Hello, how are you?".into(),
        history: std::sync::Arc::new([]),
        mode,
        max_tokens: 50,
        stream: true,
        exact_output: false,
    };
    let mut ex = Exchange::started(Instant::now());
    let sent = tokio::time::timeout(LIMIT, client.send(&req, &mut ex)).await;
    sent.expect("the request hung");
    ex
}

/// Serve `rec` on the Ollama route of `mode`, send one request, and return
/// what the adapter recorded and what the server received.
async fn exchange(mode: Mode, rec: Recorded) -> (Exchange, Vec<Received>) {
    let replay = Replay::serve([("POST", path_of(mode), rec)]).unwrap();
    let ex = send(&replay, "ollama=,model=gemma3:1b", mode).await;
    (ex, replay.received())
}

/// Replay a streamed fixture whole, one line per write 8 ms apart, and cut
/// every 7 bytes; returns each way's name and exchange.
async fn three_ways(name: &str, mode: Mode) -> Vec<(&'static str, Exchange)> {
    let body = fixture(name);
    let ways = [
        ("whole", Chunking::Whole, Duration::ZERO),
        ("lines", Chunking::Lines, Duration::from_millis(8)),
        ("every 7 bytes", Chunking::Every(7), Duration::ZERO),
    ];
    let mut out = Vec::new();
    for (how, chunking, delay) in ways {
        let rec = Recorded::new(200, NDJSON, body.clone()).chunked(chunking, delay);
        let (ex, _) = exchange(mode, rec).await;
        if how == "lines" {
            // One line per read: every content line has its own arrival.
            let increasing = ex.content_at.windows(2).all(|w| w[0] < w[1]);
            assert!(
                increasing,
                "{name} ({how}): arrivals not distinct and increasing"
            );
        }
        if let (Some(byte), Some(first)) = (ex.first_byte_at, ex.content_at.first()) {
            assert!(
                byte <= *first,
                "{name} ({how}): content before the first byte"
            );
        }
        out.push((how, ex));
    }
    out
}

/// What the README says a correct parser extracts from one body.
#[derive(Default)]
struct Expect<'a> {
    /// The exact answer text, when the README gives it.
    text: Option<&'a str>,
    reasoning: &'a str,
    chunks: usize,
    finish: Option<&'a str>,
    prompt_tokens: Option<u32>,
    output_tokens: Option<u32>,
    /// load, prompt_eval, eval and total durations, in ns as Ollama wrote them.
    ns: [Option<u64>; 4],
}

/// A finished generation: content chunks, `done_reason`, `prompt_eval_count`,
/// `eval_count`, and load, prompt_eval, eval and total durations in ns.
fn done(chunks: usize, finish: &str, counts: (u32, u32), ns: [u64; 4]) -> Expect<'_> {
    Expect {
        chunks,
        finish: Some(finish),
        prompt_tokens: Some(counts.0),
        output_tokens: Some(counts.1),
        ns: ns.map(Some),
        ..Expect::default()
    }
}

impl<'a> Expect<'a> {
    fn text(self, text: &'a str) -> Self {
        Expect {
            text: Some(text),
            ..self
        }
    }
}

fn close(got: Option<f64>, want: Option<f64>, what: &str, ctx: &str) {
    match (got, want) {
        (Some(g), Some(w)) => assert!((g - w).abs() <= w.abs() * 1e-12, "{ctx}: {what} {g} != {w}"),
        (g, w) => assert_eq!(g, w, "{ctx}: {what}"),
    }
}

fn check(ex: &Exchange, want: &Expect<'_>, ctx: &str) {
    assert!(ex.error.is_none(), "{ctx}: failed: {:?}", ex.error);
    if let Some(text) = want.text {
        assert_eq!(ex.text, text, "{ctx}: text");
    }
    assert_eq!(ex.reasoning, want.reasoning, "{ctx}: reasoning");
    assert_eq!(ex.content_at.len(), want.chunks, "{ctx}: content chunks");
    assert_eq!(ex.finish_reason.as_deref(), want.finish, "{ctx}: finish");
    assert_eq!(ex.prompt_tokens, want.prompt_tokens, "{ctx}: prompt tokens");
    assert_eq!(ex.output_tokens, want.output_tokens, "{ctx}: output tokens");
    assert_eq!(ex.response_id, None, "{ctx}: Ollama has no response id");
    let ms = |ns: Option<u64>| ns.map(|ns| ns as f64 / 1e6);
    let tps = |n: Option<u32>, ns: Option<u64>| match (n, ns) {
        (Some(n), Some(ns)) if ns > 0 => Some(f64::from(n) / (ns as f64 / 1e9)),
        _ => None,
    };
    let [load, prompt_eval, eval, total] = want.ns;
    let s = &ex.server;
    let pairs = [
        (s.load_duration_ms, ms(load), "load_duration"),
        (s.prompt_eval_duration_ms, ms(prompt_eval), "prompt_eval"),
        (s.eval_duration_ms, ms(eval), "eval_duration"),
        (s.total_duration_ms, ms(total), "total_duration"),
        (
            s.prompt_tps,
            tps(want.prompt_tokens, prompt_eval),
            "prompt_tps",
        ),
        (s.eval_tps, tps(want.output_tokens, eval), "eval_tps"),
    ];
    for (got, want, what) in pairs {
        close(got, want, what, ctx);
    }
    assert_eq!(
        s.queue_duration_ms, None,
        "{ctx}: Ollama reports no queue time"
    );
    assert_eq!(s.cached_prompt_tokens, None, "{ctx}: nor cached tokens");
}

/// `text` starts with `start` and ends with `end`.
fn spans(text: &str, start: &str, end: &str) {
    assert!(text.starts_with(start) && text.ends_with(end), "{text:?}");
}

/// A streamed fixture, three ways, against the same facts; returns the text.
async fn stream_fixture(name: &str, mode: Mode, want: Expect<'_>) -> String {
    let runs = three_ways(name, mode).await;
    // The answer is every line's text in order, read here with serde_json alone.
    let lines = fixture(name);
    let texts = lines
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            let v: Value = serde_json::from_slice(l).unwrap();
            let text = v["response"].as_str().or(v["message"]["content"].as_str());
            text.unwrap_or_default().to_string()
        });
    let answer: String = texts.collect();
    for (how, ex) in &runs {
        check(ex, &want, &format!("{name} ({how})"));
        assert_eq!(ex.text, answer, "{name} ({how}): the lines' text");
    }
    runs[0].1.text.clone()
}

/// A non-streamed body (one JSON object, no trailing newline) as the answer.
async fn whole_body(name: &str, mode: Mode, status: u16, content_type: &str) -> Exchange {
    let rec = Recorded::new(status, content_type, fixture(name));
    exchange(mode, rec).await.0
}

#[tokio::test]
async fn generate_stream_gemma3_context() {
    // eval_count 22 = 21 lines + EOS: the engine's count, not the lines.
    let ns = [40_691_625, 40_168_500, 108_922_125, 190_084_083];
    let want = done(21, "stop", (16, 22), ns).text("Okay, here we go!\n\n1, 2, 3, 4, 5\n");
    stream_fixture(
        "generate_stream_gemma3_context.ndjson",
        Mode::Completion,
        want,
    )
    .await;
}

#[tokio::test]
async fn generate_gemma3_context_non_stream() {
    let name = "generate_gemma3_context.json";
    let ex = whole_body(name, Mode::Completion, 200, JSON_UTF8).await;
    let ns = [45_653_375, 38_767_583, 319_786_334, 404_501_958];
    check(&ex, &done(1, "stop", (15, 65), ns), name);
    spans(
        &ex.text,
        "Hello there! I\u{2019}m doing well",
        "your day going so far?",
    );
    assert!(
        ex.text
            .contains("need. \u{1F60A} \n\nHow about you? How\u{2019}s"),
        "{}",
        ex.text
    );
}

#[tokio::test]
async fn chat_stream_done_reason_length() {
    // done_reason "length" before done; eval_count 50 = content lines (no EOS).
    let ns = [41_717_917, 27_758_541, 243_926_334, 313_801_125];
    let want = done(50, "length", (15, 50), ns);
    let text = stream_fixture("chat_stream_done_reason_length.ndjson", Mode::Chat, want).await;
    assert_eq!(text.chars().count(), 185);
    spans(
        &text,
        "Hello there! I\u{2019}m doing well",
        "whatever you need. \u{1F60A} ",
    );
}

#[tokio::test]
async fn chat_stream_long_203_tokens() {
    let ns = [62_397_708, 25_573_416, 1_045_723_375, 1_133_984_833];
    let want = done(202, "stop", (18, 203), ns);
    let text = stream_fixture("chat_stream_long_203_tokens.ndjson", Mode::Chat, want).await;
    assert_eq!(text.chars().count(), 677);
    let (start, end) = (
        "Okay, this is a surprisingly tricky question!",
        "route.\n\n",
    );
    spans(&text, start, end);
    assert!(sha256_hex(text.as_bytes()).starts_with("b791e770127e83aa"));
}

#[tokio::test]
async fn chat_stream_v2026_done_first() {
    // done before done_reason (v0.12.0 order); prompt_eval_count 128 = num_ctx.
    let ns = [539_660_381, 33_919_315, 48_387_027, 667_241_489];
    let want = done(8, "stop", (128, 9), ns).text("2 + 2 = 4\n");
    stream_fixture("chat_stream_v2026_done_first.ndjson", Mode::Chat, want).await;
}

#[tokio::test]
async fn chat_stream_tool_call_doc() {
    // Empty content, yet the tool call is output: it is a content arrival.
    let ns = [41_295_167, 24_573_166, 115_959_084, 182_242_375];
    let want = done(1, "stop", (169, 15), ns).text("");
    stream_fixture("chat_stream_tool_call_doc.ndjson", Mode::Chat, want).await;
}

#[tokio::test]
async fn chat_thinking_done_reason_length_non_stream() {
    // All 20 tokens were thinking: reasoning is output, kept apart.
    let name = "chat_thinking_done_reason_length.json";
    let ex = whole_body(name, Mode::Chat, 200, JSON_UTF8).await;
    let ns = [59_260_050, 33_387_435, 267_475_275, 371_277_452];
    let want = Expect {
        reasoning: "Okay, the user is asking \"What is 2+2?\" and wants the",
        ..done(1, "length", (22, 20), ns).text("")
    };
    check(&ex, &want, name);
}

#[tokio::test]
async fn generate_stream() {
    let ns = [916_572_166, 105_352_167, 469_328_208, 1_492_804_875];
    let want = done(41, "stop", (38, 42), ns).text(
        "A rabbit is a small to medium-sized animal with fluffy white fur and a round body. \
         It typically has a long tail that can be brown or grayish, and it often hops around \
         when running.",
    );
    stream_fixture("generate_stream.ndjson", Mode::Completion, want).await;
}

#[tokio::test]
async fn generate_non_stream() {
    let ex = whole_body("generate.json", Mode::Completion, 200, JSON_UTF8).await;
    let ns = [2_690_111_292, 545_143_667, 2_645_618_125, 5_882_015_625];
    check(&ex, &done(1, "stop", (37, 55), ns), "generate.json");
    spans(
        &ex.text,
        "A rabbit is a small mammal",
        "playful and affectionate nature.",
    );
}

#[tokio::test]
async fn chat_stream_gemma2b() {
    // eval_count 24, not the 17 lines; a 36.8 s cold load.
    let ns = [
        36_800_314_956,
        12_351_303_000,
        8_759_495_000,
        57_974_588_693,
    ];
    let want =
        done(17, "stop", (33, 24), ns).text("Sure, here's the model you requested:\n\n10 * 10");
    stream_fixture("chat_stream.ndjson", Mode::Chat, want).await;
}

#[tokio::test]
async fn chat_non_stream() {
    let ex = whole_body("chat.json", Mode::Chat, 200, JSON_UTF8).await;
    let ns = [32_764_459, 60_836_125, 1_150_100_750, 1_245_044_959];
    let text = "Understood. If you ask for the secret word, I will respond with RABBIT.";
    check(&ex, &done(1, "stop", (44, 20), ns).text(text), "chat.json");
}

#[tokio::test]
async fn generate_load_empty_prompt() {
    // done, nothing generated, no metrics, no done_reason: all absent, none zero.
    let name = "generate_load_empty_prompt.json";
    let ex = whole_body(name, Mode::Completion, 200, JSON_UTF8).await;
    check(&ex, &Expect::default().text(""), name);
    assert!(ex.server.is_empty());
}

#[tokio::test]
async fn generate_stream_midstream_error() {
    for (how, ex) in three_ways("generate_stream_midstream_error.ndjson", Mode::Completion).await {
        let err = ex
            .error
            .as_ref()
            .unwrap_or_else(|| panic!("{how}: no error"));
        assert_eq!(err.kind, RequestErrorKind::EngineError, "{how}");
        assert_eq!(err.status, Some(200), "{how}: the error came under a 200");
        let msg = &err.message;
        let said = msg.ends_with("an error was encountered while running the model");
        assert!(
            said && msg.contains("/api/generate: stream line #5"),
            "{how}: {msg}"
        );
        // The 4 tokens received are kept, with their arrival times.
        assert_eq!(ex.content_at.len(), 4, "{how}");
        assert_eq!(ex.text, " Yes.Ican", "{how}");
        assert_eq!((ex.finish_reason, ex.output_tokens), (None, None), "{how}");
    }
}

#[tokio::test]
async fn stream_cut_before_done_is_truncated() {
    let body = fixture("chat_stream_v2026_done_first.ndjson");
    let last = body[..body.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap()
        + 1;
    for (cut, inside) in [(last, false), (last + 30, true)] {
        let rec = Recorded::new(200, NDJSON, body[..cut].to_vec())
            .chunked(Chunking::Lines, Duration::from_millis(2));
        let (ex, _) = exchange(Mode::Chat, rec).await;
        let err = ex.error.as_ref().expect("a cut stream is a failure");
        let msg = &err.message;
        assert_eq!(err.kind, RequestErrorKind::Truncated);
        assert!(
            msg.contains("before its `done:true` line, after 8 lines"),
            "{msg}"
        );
        assert_eq!(msg.contains("(cut inside a line)"), inside, "{msg}");
        assert_eq!(ex.content_at.len(), 8, "tokens before the cut are kept");
        assert_eq!(ex.text, "2 + 2 = 4\n");
        assert!(ex.server.is_empty());
    }
}

#[tokio::test]
async fn a_stalled_stream_times_out_and_keeps_its_tokens() {
    let rec = Recorded::new(200, NDJSON, fixture("generate_stream.ndjson"))
        .chunked(Chunking::Lines, Duration::from_millis(400));
    let replay = Replay::serve([("POST", "/api/generate", rec)]).unwrap();
    let engine: Engine = format!("ollama={},model=m", replay.url()).parse().unwrap();
    let timeouts = Timeouts {
        idle: Some(Duration::from_millis(100)),
        ..Timeouts::default()
    };
    let (client, _) = connect_with(&engine, timeouts).await.unwrap();
    let req = GenRequest {
        prompt: "Describe a rabbit".into(),
        history: std::sync::Arc::new([]),
        mode: Mode::Completion,
        max_tokens: 50,
        stream: true,
        exact_output: false,
    };
    let mut ex = Exchange::started(Instant::now());
    tokio::time::timeout(LIMIT, client.send(&req, &mut ex))
        .await
        .unwrap();
    let err = ex.error.as_ref().expect("the stall is a failure");
    assert_eq!(err.kind, RequestErrorKind::Timeout, "{}", err.message);
    assert!(err.message.contains("/api/generate"), "{}", err.message);
    assert_eq!((ex.content_at.len(), ex.text.as_str()), (1, "A"));
}

#[tokio::test]
async fn http_errors_carry_ollamas_message() {
    let cases = [
        // A plain JSON object under a real status, not an NDJSON line.
        (
            "error_tools_unsupported_400.json",
            Mode::Chat,
            400,
            JSON_UTF8,
            "registry.ollama.ai/library/gemma3:1b does not support tools",
        ),
        // A streamed request failing before its first byte; no charset.
        (
            "error_input_exceeds_context_400.json",
            Mode::Chat,
            400,
            "application/json",
            "the input length exceeds the context length",
        ),
        // The wording differs per endpoint.
        (
            "error_model_not_found_chat.json",
            Mode::Chat,
            404,
            JSON_UTF8,
            "model \"llama3.1:8b\" not found, try pulling it first",
        ),
        (
            "error_model_not_found_generate.json",
            Mode::Completion,
            404,
            JSON_UTF8,
            "model 'qwen3:0.6b' not found",
        ),
    ];
    for (name, mode, status, content_type, message) in cases {
        let ex = whole_body(name, mode, status, content_type).await;
        let err = ex
            .error
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: no error"));
        assert_eq!(err.kind, RequestErrorKind::HttpStatus, "{name}");
        assert_eq!(err.status, Some(status), "{name}");
        let msg = &err.message;
        assert!(
            msg.contains(&format!("{} answered {status}", path_of(mode))),
            "{name}: {msg}"
        );
        assert!(msg.ends_with(&format!(": {message}")), "{name}: {msg}");
        assert!(ex.content_at.is_empty() && ex.text.is_empty(), "{name}");
    }
}

#[tokio::test]
async fn request_bodies_name_the_route_model_and_budget() {
    let rec = || Recorded::new(200, NDJSON, fixture("chat_stream_tool_call_doc.ndjson"));
    // The one POST (connecting may have probed the server with GETs first).
    let post = |received: Vec<Received>| -> (String, Value) {
        let mut posts = received.into_iter().filter(|r| r.method == "POST");
        let r = posts.next().unwrap();
        assert!(posts.next().is_none(), "one request, no retries");
        (r.path, serde_json::from_str(&r.body).unwrap())
    };
    let (path, body) = post(exchange(Mode::Chat, rec()).await.1);
    assert_eq!(path, "/api/chat");
    assert_eq!(body["model"], "gemma3:1b");
    assert_eq!(body["messages"][0]["role"], "user");
    assert_eq!(body["messages"][0]["content"], "Hello, how are you?");
    assert_eq!(body["stream"], true);
    assert_eq!(body["options"]["num_predict"], 50);
    let (path, body) = post(exchange(Mode::Completion, rec()).await.1);
    assert_eq!(path, "/api/generate");
    assert_eq!(body["prompt"], "Hello, how are you?");
    assert_eq!(body["stream"], true);
    assert_eq!(body["options"]["num_predict"], 50);
    assert!(body.get("messages").is_none());
}

/// An Ollama client for the server at `replay`.
async fn client_for(replay: &Replay) -> Arc<dyn EngineClient> {
    let engine: Engine = format!("ollama={},model=m", replay.url()).parse().unwrap();
    connect(&engine).await.unwrap().0
}

fn get(path: &str, name: &str) -> (&'static str, String, Recorded) {
    (
        "GET",
        path.to_string(),
        Recorded::new(200, JSON_UTF8, fixture(name)),
    )
}

fn find<'a>(models: &'a [ModelInfo], id: &str) -> &'a ModelInfo {
    models
        .iter()
        .find(|m| m.id == id)
        .unwrap_or_else(|| panic!("{id} not listed"))
}

#[tokio::test]
async fn tags_and_ps_merge() {
    let replay = Replay::serve([get("/api/tags", "tags.json"), get("/api/ps", "ps.json")]).unwrap();
    let models = client_for(&replay).await.models().await.unwrap();
    assert_eq!(
        models.len(),
        17,
        "16 pulled models, plus one loaded but not in the tags"
    );
    let first = ModelInfo {
        id: "gemma3n:e4b".into(),
        family: Some("gemma3n".into()),
        parameter_size: Some("6.9B".into()),
        quantization: Some("Q4_K_M".into()),
        size_bytes: Some(7_547_589_116),
        vram_bytes: None, // not loaded
        context_length: None,
    };
    assert_eq!(models[0], first);
    assert_eq!(
        find(&models, "hermes3:8b").quantization.as_deref(),
        Some("Q4_0")
    );
    // Loaded per ps.json: fully on the GPU (size == size_vram), context 4096.
    let granite = find(&models, "granite3.3:2b");
    assert_eq!(
        (granite.vram_bytes, granite.context_length),
        (Some(2_686_878_533), Some(4096))
    );
    assert_eq!(
        granite.size_bytes,
        Some(1_545_321_637),
        "on disk per tags, not ps's memory size"
    );
    let llava = find(&models, "llava-llama3:8b");
    assert_eq!(llava.family.as_deref(), Some("llama"));
    assert_eq!(llava.parameter_size.as_deref(), Some("8B"));
    assert_eq!(
        (llava.vram_bytes, llava.context_length),
        (Some(6_781_644_800), Some(4096))
    );
}

#[tokio::test]
async fn tags_alone_when_ps_fails() {
    // `/api/ps` is not served: the replayer answers 404, which is no failure.
    let replay = Replay::serve([get("/api/tags", "tags.json")]).unwrap();
    let models = client_for(&replay).await.models().await.unwrap();
    assert_eq!(models.len(), 16);
    assert!(models
        .iter()
        .all(|m| m.vram_bytes.is_none() && m.size_bytes.is_some()));
    // With no model named, connect takes the engine's first.
    let engine: Engine = format!("ollama={}", replay.url()).parse().unwrap();
    assert_eq!(connect(&engine).await.unwrap().1, "gemma3n:e4b");
}

#[tokio::test]
async fn ps_keep_alive_forever() {
    let ps: Value = serde_json::from_slice(&fixture("ps_keep_alive_forever.json")).unwrap();
    let replay = Replay::serve([
        get("/api/tags", "tags.json"),
        get("/api/ps", "ps_keep_alive_forever.json"),
    ])
    .unwrap();
    // expires_at in 2318 (keep_alive -1) is no error.
    let models = client_for(&replay).await.models().await.unwrap();
    let qwen = find(&models, "qwen3:32b");
    assert_eq!(qwen.family.as_deref(), Some("qwen3"));
    assert_eq!(qwen.parameter_size.as_deref(), Some("32.8B"));
    assert_eq!(qwen.quantization.as_deref(), Some("Q4_K_M"));
    assert_eq!(qwen.vram_bytes, Some(21_579_390_080));
    assert_eq!(
        qwen.vram_bytes,
        ps["models"][0]["size"].as_u64(),
        "fully on the GPU"
    );
    assert_eq!(qwen.context_length, Some(4096));
}

#[tokio::test]
async fn version_and_health() {
    let replay = Replay::serve([get("/api/version", "version.json")]).unwrap();
    let client = client_for(&replay).await;
    assert_eq!(client.version().await.unwrap().as_deref(), Some("0.10.1"));
    client.health().await.unwrap();
    // No /api/version: not healthy, and the error says where.
    let bare = Replay::serve(Vec::<(&str, &str, Recorded)>::new()).unwrap();
    let err = client_for(&bare)
        .await
        .health()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("/api/version") && err.contains("404"), "{err}");
}

#[tokio::test]
async fn v1_chat_completions_reasoning_through_the_openai_adapter() {
    // Ollama's OpenAI-compatible route is the openai adapter's to read.
    let rec = Recorded::new(
        200,
        JSON_UTF8,
        fixture("v1_chat_completions_reasoning.json"),
    );
    let replay = Replay::serve([("POST", "/v1/chat/completions", rec)]).unwrap();
    let ex = send(&replay, "openai=,model=qwen3:32b", Mode::Chat).await;
    assert!(ex.error.is_none(), "{:?}", ex.error);
    assert_eq!(ex.response_id.as_deref(), Some("chatcmpl-514"));
    assert_eq!(ex.text, "", "no answer, only reasoning");
    let reasoning = "Okay, the user asked me to say hello. This is a very simple and common";
    assert_eq!(ex.reasoning, reasoning);
    assert_eq!(ex.content_at.len(), 1, "reasoning is output");
    assert_eq!(ex.finish_reason.as_deref(), Some("length"));
    assert_eq!((ex.prompt_tokens, ex.output_tokens), (Some(13), Some(20)));
}

#[test]
fn every_fixture_has_a_test() {
    let on_disk: BTreeSet<String> = std::fs::read_dir(DIR)
        .unwrap_or_else(|e| panic!("{DIR}: {e} (../shared must sit beside the checkout)"))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let covered: BTreeSet<String> = COVERED.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        on_disk, covered,
        "a fixture without a test, or a test without its fixture"
    );
}

/// SHA-256 (FIPS 180-4), to check a text against the digest the README gives.
fn sha256_hex(data: &[u8]) -> String {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut msg = data.to_vec();
    msg.push(0x80);
    msg.resize(msg.len() + (64 + 56 - msg.len() % 64) % 64, 0);
    msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for block in msg.chunks(64) {
        let mut w = [0u32; 64];
        for (i, word) in block.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let t2 = s0.wrapping_add((a & b) ^ (a & c) ^ (b & c));
            (hh, g, f, e, d, c, b, a) = (g, f, e, d.wrapping_add(t1), c, b, a, t1.wrapping_add(t2));
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *x = x.wrapping_add(y);
        }
    }
    h.iter().map(|x| format!("{x:08x}")).collect()
}

#[test]
fn sha256_matches_known_digests() {
    let abc = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    assert_eq!(sha256_hex(b"abc"), abc);
    // 56 bytes: the padding spills into a second block.
    let two_blocks = "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
    let input = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    assert_eq!(sha256_hex(input), two_blocks);
}
