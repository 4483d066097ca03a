//! The TGI adapter against every TGI fixture, served over a real socket by
//! the transcript replayer with its real status and content type, through the
//! public API; streams whole, one event per write with delays, and cut every
//! 5 bytes. Each asserts what the fixtures README says a parser extracts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use llmbench::engine::{connect, connect_with, EngineClient, GenRequest, Timeouts};
use llmbench::measure::{Exchange, RecordContext, RequestErrorKind, RequestRecord};
use llmbench::sim::replay::{Chunking, Recorded, Replay};
use llmbench::{Engine, Mode};
use serde_json::{json, Value};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/fixtures/tgi/");

/// Nothing here should take this long; a hang fails instead of blocking CI.
const LIMIT: Duration = Duration::from_secs(20);

const SSE: &str = "text/event-stream";
const JSON: &str = "application/json";
const LENGTH: Option<&str> = Some("length");

/// Every fixture a test below asserts; `metrics_v3.prom` belongs to the
/// engine-metrics monitor, not to the request adapter.
const COVERED: &str = "chat.json chat_response_format_v2_1_1.json chat_stream.sse \
    chat_stream_include_usage.sse chat_stream_v2_0_4_no_done.sse chat_tool_call_v1_4_5.json \
    error_generation_424.json error_overloaded_429.json error_validation_422.json generate.json \
    generate_best_of_array.json generate_compat_array_no_details.json generate_details.json \
    generate_details_compat_array.json generate_details_t5_compat_array.json generate_stream.sse \
    generate_stream_details.sse generate_stream_details_input_length.sse health_ok.txt info.json";
const NOT_FOR_THE_ADAPTER: &str = "metrics_v3.prom";

const ZEPHYR: &str = "Deep learning is a subfield of machine learning that uses artificial \
    neural networks with multiple layers to learn and";

/// A fixture's bytes; a missing one fails the test, it never skips.
fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{FIXTURES}{name}");
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {path} is missing: {e}"))
}

fn json_fixture(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).expect("a JSON fixture")
}

#[track_caller]
fn has(hay: &str, needle: &str) {
    assert!(hay.contains(needle), "{hay:?} lacks {needle:?}");
}

/// What the README lists per fixture: content chunks, text, finish reason,
/// prompt tokens, output tokens.
type Facts<'a> = (usize, &'a str, Option<&'a str>, Option<u32>, Option<u32>);

fn facts(ex: &Exchange) -> Facts<'_> {
    let tokens = (ex.prompt_tokens, ex.output_tokens);
    let finish = ex.finish_reason.as_deref();
    (ex.content_at.len(), &ex.text, finish, tokens.0, tokens.1)
}

#[test]
fn every_tgi_fixture_has_a_test() {
    let dir = std::fs::read_dir(FIXTURES).unwrap_or_else(|e| panic!("{FIXTURES}: {e}"));
    let mut found: Vec<String> = dir
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    let known = COVERED.split_whitespace().chain([NOT_FOR_THE_ADAPTER]);
    let mut known: Vec<&str> = known.collect();
    known.sort_unstable();
    assert_eq!(
        found, known,
        "a fixture without a test, or a test without its fixture"
    );
}

/// The path each route's request goes to.
fn path(api: &str) -> &'static str {
    match api {
        "generate" => "/generate_stream",
        _ => "/v1/chat/completions",
    }
}

async fn client(url: &str, api: &str) -> Arc<dyn EngineClient> {
    let engine: Engine = format!("tgi={url},model=m,api={api}")
        .parse()
        .expect("spec");
    connect(&engine).await.expect("connect").0
}

async fn send_to(url: &str, api: &str) -> Exchange {
    let client = client(url, api).await;
    let prompt = "Why is the sky blue?".into();
    let req = GenRequest {
        prompt,
        history: std::sync::Arc::new([]),
        mode: Mode::Chat,
        max_tokens: 20,
        stream: true,
        exact_output: false,
    };
    let mut ex = Exchange::started(Instant::now());
    let sent = tokio::time::timeout(LIMIT, client.send(&req, &mut ex)).await;
    sent.expect("the request finished in time");
    ex
}

/// Serve `rec` on `api`'s route and send one request through the public API.
async fn send(api: &str, rec: Recorded) -> (Exchange, Replay) {
    let replay = Replay::serve([("POST", path(api), rec)]).expect("replay");
    (send_to(&replay.url(), api).await, replay)
}

/// The byte offsets just after each SSE event (`\n\n`).
fn event_ends(body: &[u8]) -> Vec<usize> {
    let ends = body.windows(2).enumerate().filter(|(_, w)| w == b"\n\n");
    ends.map(|(i, _)| i + 2).collect()
}

/// Send a streamed fixture three ways; each must succeed with `want`.
async fn stream_three_ways(api: &str, name: &str, want: Facts<'_>) {
    let body = fixture(name);
    let ways = [
        ("whole", Chunking::Whole, Duration::ZERO),
        (
            "event per write",
            Chunking::At(event_ends(&body)),
            Duration::from_millis(3),
        ),
        ("every 5 bytes", Chunking::Every(5), Duration::ZERO),
    ];
    for (how, chunking, delay) in ways {
        let rec = Recorded::new(200, SSE, body.clone()).chunked(chunking, delay);
        let (ex, _replay) = send(api, rec).await;
        assert!(ex.error.is_none(), "{name} {how}: {:?}", ex.error);
        assert!(ex.first_byte_at.is_some(), "{name} {how}");
        assert_eq!(facts(&ex), want, "{name} {how}");
        assert_eq!(ex.response_id, None, "{name}: TGI's ids are \"\" or absent");
        assert!(
            ex.server.is_empty(),
            "{name}: streams carry no server timings"
        );
        if !delay.is_zero() {
            let increasing = ex.content_at.windows(2).all(|w| w[0] < w[1]);
            assert!(
                increasing,
                "{name} {how}: arrivals must increase: {:?}",
                ex.content_at
            );
        }
    }
}

fn record(ex: Exchange) -> RequestRecord {
    let t0 = ex.sent_at;
    let (scenario, engine, model) = ("s", "tgi", "m");
    let (request_id, user, scheduled_at) = (0, 0, t0);
    let ctx = RecordContext {
        scenario,
        engine,
        model,
        request_id,
        user,
        t0,
        scheduled_at,
        latency_from_schedule: false,
    };
    RequestRecord::from_exchange(&ctx, ex)
}

// ---- streams -----------------------------------------------------------------

#[tokio::test]
async fn generate_streams_end_at_generated_text_without_done() {
    let japanese = "\n日本で一番高い山はなんですか?\nベストアンサー\n富士山です。";
    // 2.0.3, `data:` without a space, `details` null: every event is one
    // token, so their count is the engine's output count.
    let want = (20, japanese, None, None, Some(20));
    stream_three_ways("generate", "generate_stream.sse", want).await;
    // 1.4, `details` on the final event, no `input_length` yet.
    let want = (20, ZEPHYR, LENGTH, None, Some(20));
    stream_three_ways("generate", "generate_stream_details.sse", want).await;
    // 3.x, `data: ` with a space, one event that is also the final one.
    let want = (1, ".", LENGTH, Some(1), Some(1));
    stream_three_ways("generate", "generate_stream_details_input_length.sse", want).await;
}

#[tokio::test]
async fn chat_streams_with_and_without_done() {
    let brain = "Deep learning is a subfield of machine learning that is inspired by the \
        structure and function of the brain";
    // 3.2.1: `[DONE]`, `usage:null` everywhere, finish_reason on the 20th content chunk.
    stream_three_ways("chat", "chat_stream.sse", (20, brain, LENGTH, None, None)).await;
    // 2.0.4: no `[DONE]`, the stream ends at EOF after the finish_reason chunk.
    let want = (
        10,
        "Deep learning is a subfield of machine learning that",
        LENGTH,
        None,
        None,
    );
    stream_three_ways("chat", "chat_stream_v2_0_4_no_done.sse", want).await;
    // include_usage: the finish chunk's content is "", usage on a `choices:[]` chunk.
    let want = (2, "OK!", Some("stop"), Some(39), Some(3));
    stream_three_ways("chat", "chat_stream_include_usage.sse", want).await;
}

#[tokio::test]
async fn records_say_whether_output_tokens_are_the_engines() {
    let (ex, _r) = send("chat", Recorded::new(200, SSE, fixture("chat_stream.sse"))).await;
    let r = record(ex);
    assert_eq!(
        (r.output_tokens, r.output_tokens_estimated),
        (Some(20), true)
    );
    let usage = fixture("chat_stream_include_usage.sse");
    let (ex, _r) = send("chat", Recorded::new(200, SSE, usage)).await;
    let r = record(ex);
    assert_eq!(
        (r.output_tokens, r.output_tokens_estimated),
        (Some(3), false)
    );
    let details = fixture("generate_stream_details.sse");
    let (ex, _r) = send("generate", Recorded::new(200, SSE, details)).await;
    let r = record(ex);
    assert_eq!(
        (r.output_tokens, r.output_tokens_estimated),
        (Some(20), false)
    );
}

#[tokio::test]
async fn requests_take_each_route_with_its_body() {
    let rec = Recorded::new(200, SSE, fixture("generate_stream_details.sse"));
    let (_, replay) = send("generate", rec).await;
    // Only the POSTs: `connect` may probe other routes first.
    let posts = |r: &Replay| {
        r.received()
            .into_iter()
            .filter(|r| r.method == "POST")
            .collect::<Vec<_>>()
    };
    let got = posts(&replay);
    assert_eq!((got.len(), got[0].path.as_str()), (1, "/generate_stream"));
    let body: Value = serde_json::from_str(&got[0].body).expect("JSON request");
    let parameters = json!({"max_new_tokens": 20, "details": true});
    assert_eq!(
        body,
        json!({"inputs": "Why is the sky blue?", "parameters": parameters})
    );
    let rec = Recorded::new(200, SSE, fixture("chat_stream_include_usage.sse"));
    let (_, replay) = send("chat", rec).await;
    let got = posts(&replay);
    assert_eq!(got[0].path, "/v1/chat/completions");
    let body: Value = serde_json::from_str(&got[0].body).expect("JSON request");
    assert_eq!(
        (&body["model"], &body["stream"], &body["max_tokens"]),
        (&json!("m"), &json!(true), &json!(20))
    );
    assert_eq!(body["messages"][0]["content"], "Why is the sky blue?");
}

#[tokio::test]
async fn stream_headers_carry_no_timings() {
    // What TGI really sends on a stream (`generate_stream_internal`).
    let rec = Recorded::new(200, SSE, fixture("generate_stream_details.sse"))
        .header("x-compute-type", "gpu+optimized")
        .header("x-compute-characters", "20")
        .header("x-accel-buffering", "no");
    let (ex, _r) = send("generate", rec).await;
    assert!(ex.error.is_none(), "{:?}", ex.error);
    assert!(ex.server.is_empty(), "{:?}", ex.server);
}

#[tokio::test]
async fn streams_cut_before_their_end_are_truncated() {
    let body = fixture("generate_stream_details.sse");
    let ends = event_ends(&body);
    for (cut, inside) in [(ends[9], false), (ends[9] + 30, true)] {
        let (ex, _r) = send("generate", Recorded::new(200, SSE, body[..cut].to_vec())).await;
        let err = ex.error.as_ref().expect("truncated");
        assert_eq!(err.kind, RequestErrorKind::Truncated);
        has(&err.message, "/generate_stream");
        has(
            &err.message,
            "before the final event (the one with `generated_text`)",
        );
        assert_eq!(err.message.contains("cut inside an event"), inside);
        assert_eq!(ex.content_at.len(), 10, "tokens before the cut are kept");
        has(
            &ex.text,
            "Deep learning is a subfield of machine learning that",
        );
        assert_eq!(ex.output_tokens, None);
    }
    let body = fixture("chat_stream_v2_0_4_no_done.sse");
    let (ex, _r) = send(
        "chat",
        Recorded::new(200, SSE, body[..event_ends(&body)[4]].to_vec()),
    )
    .await;
    let err = ex.error.as_ref().expect("truncated");
    assert_eq!(
        (err.kind, ex.content_at.len()),
        (RequestErrorKind::Truncated, 5)
    );
    has(&err.message, "/v1/chat/completions");
    // A finish_reason without [DONE] ends a chat stream only if nothing is cut.
    let mut body = body;
    body.extend_from_slice(b"data:{\"id\"");
    let (ex, _r) = send("chat", Recorded::new(200, SSE, body)).await;
    let err = ex.error.as_ref().expect("cut");
    assert_eq!(err.kind, RequestErrorKind::Truncated);
    has(&err.message, "cut inside an event");
}

#[tokio::test]
async fn error_and_malformed_events_keep_what_arrived() {
    // TGI sends the same `ErrorResponse` JSON as an event under 200.
    let mut body = fixture("generate_stream_details.sse");
    body.truncate(event_ends(&body)[4]);
    let mut bad = body.clone();
    body.extend_from_slice(
        &[b"data:", &fixture("error_generation_424.json")[..], b"\n\n"].concat(),
    );
    let (ex, _r) = send("generate", Recorded::new(200, SSE, body)).await;
    let err = ex.error.as_ref().expect("engine error");
    assert_eq!(
        (err.kind, err.status),
        (RequestErrorKind::EngineError, Some(200))
    );
    has(&err.message, "stream event #6");
    has(
        &err.message,
        "Request failed during generation: Server error: (error_type: generation)",
    );
    assert_eq!(
        (ex.content_at.len(), ex.text.as_str()),
        (5, "Deep learning is a sub")
    );
    bad.extend_from_slice(b"data:{oops\n\n");
    let (ex, _r) = send("generate", Recorded::new(200, SSE, bad)).await;
    let err = ex.error.as_ref().expect("malformed");
    assert_eq!(err.kind, RequestErrorKind::MalformedStream);
    has(&err.message, "stream event #6");
    has(&err.message, "{oops");
    assert_eq!(ex.content_at.len(), 5);
}

#[tokio::test]
async fn a_streamed_tool_call_is_output() {
    // TGI streams a tool call as one object, not a list, and no content.
    let tool = concat!(
        "data:{\"choices\":[{\"delta\":{\"role\":\"assistant\",\"tool_calls\":",
        "{\"index\":0,\"id\":\"\",\"function\":{\"arguments\":\"{\\\"a\\\"\"}}},\"finish_reason\":null}]}\n\n",
        "data:{\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":\"eos_token\"}]}\n\n",
    );
    let (ex, _r) = send("chat", Recorded::new(200, SSE, tool)).await;
    assert!(ex.error.is_none(), "{:?}", ex.error);
    assert_eq!(facts(&ex), (1, "", Some("eos_token"), None, None));
}

// ---- non-streamed bodies: a 200 JSON answer is read whole ------------------

/// Send a whole JSON body, as a gateway answering without streaming would.
async fn whole(api: &str, rec: Recorded) -> Exchange {
    let (ex, _r) = send(api, rec).await;
    assert!(ex.error.is_none(), "{:?}", ex.error);
    ex
}

#[tokio::test]
async fn generate_bodies_object_or_compat_array() {
    let japanese = json_fixture("generate.json")["generated_text"].clone();
    let japanese = japanese.as_str().expect("text");
    assert!(japanese.starts_with("\n日本で一番高い山はなんですか?\nベストアンサー"));
    let cases = [
        ("generate.json", (1, japanese, None, None, None)),
        (
            "generate_details.json",
            (1, " for /api/v1/projects/1", LENGTH, None, Some(10)),
        ),
        (
            "generate_details_compat_array.json",
            (1, ZEPHYR, LENGTH, None, Some(20)),
        ),
        (
            "generate_compat_array_no_details.json",
            (1, ".", None, None, None),
        ),
        // `best_of_sequences` are not the answer; its `seed` is past i64::MAX.
        (
            "generate_best_of_array.json",
            (1, "us", LENGTH, None, Some(1)),
        ),
    ];
    for (name, want) in cases {
        let ex = whole("generate", Recorded::new(200, JSON, fixture(name))).await;
        assert_eq!(facts(&ex), want, "{name}");
        assert!(
            ex.server.is_empty(),
            "{name}: no timing headers, no timings"
        );
    }
    // The T5 answer: `generated_text` "" although its one token is " " (not
    // special, so it is output); the token counts came as headers.
    let rec = Recorded::new(200, JSON, fixture("generate_details_t5_compat_array.json"))
        .header("x-prompt-tokens", "2")
        .header("x-generated-tokens", "1");
    let ex = whole("generate", rec).await;
    assert_eq!(facts(&ex), (1, "", LENGTH, Some(2), Some(1)));
}

#[tokio::test]
async fn generate_timing_headers_become_server_timings() {
    // The headers `generate` sets (router/src/server.rs), values invented.
    let rec = Recorded::new(200, JSON, fixture("generate_details.json"))
        .header("x-compute-type", "gpu+optimized")
        .header("x-compute-time", "0.412")
        .header("x-total-time", "412")
        .header("x-validation-time", "1")
        .header("x-queue-time", "30")
        .header("x-inference-time", "381")
        .header("x-time-per-token", "38")
        .header("x-prompt-tokens", "3")
        .header("x-generated-tokens", "10");
    let s = whole("generate", rec).await;
    assert_eq!((s.prompt_tokens, s.output_tokens), (Some(3), Some(10)));
    let s = s.server;
    assert_eq!(
        (s.queue_duration_ms, s.eval_duration_ms),
        (Some(30.0), Some(381.0))
    );
    assert_eq!(
        (s.total_duration_ms, s.eval_tps),
        (Some(412.0), Some(10.0 * 1e3 / 381.0))
    );
    assert_eq!(
        (s.prompt_eval_duration_ms, s.prompt_tps, s.load_duration_ms),
        (None, None, None)
    );
    let rec =
        Recorded::new(200, JSON, fixture("generate_details.json")).header("x-compute-time", "0.25");
    let s = whole("generate", rec).await.server;
    assert_eq!(
        (s.total_duration_ms, s.eval_duration_ms, s.eval_tps),
        (Some(250.0), None, None)
    );
}

#[tokio::test]
async fn chat_bodies() {
    let chat = json_fixture("chat.json");
    let chat = chat["choices"][0]["message"]["content"]
        .as_str()
        .expect("content");
    has(
        chat,
        "Deep learning is a subfield of artificial intelligence (AI)",
    );
    let eos = Some("eos_token");
    let cases = [
        ("chat.json", (1, chat, Some("stop"), Some(46), Some(579))),
        // No `content` key; one tool call with an integer id and `parameters`.
        (
            "chat_tool_call_v1_4_5.json",
            (1, "", eos, Some(246), Some(27)),
        ),
    ];
    for (name, want) in cases {
        let ex = whole("chat", Recorded::new(200, JSON, fixture(name))).await;
        assert_eq!(facts(&ex), want, "{name}");
        assert_eq!(ex.response_id, None, "{name}: `id` is \"\"");
    }
    let rec = Recorded::new(200, JSON, fixture("chat_response_format_v2_1_1.json"));
    let ex = whole("chat", rec).await;
    let (n, text, finish, prompt, output) = facts(&ex);
    assert_eq!((n, finish, prompt, output), (1, eos, Some(35), Some(45)));
    let parsed: Value = serde_json::from_str(text).expect("content is JSON text");
    let want = json!({"activity":"bike ride","animals":["puppy","cat","raccoon"],"animals_seen":3,"location":"park"});
    assert_eq!(parsed, want);
}

// ---- failures -----------------------------------------------------------------

#[tokio::test]
async fn error_statuses_carry_the_engine_message() {
    let validation = "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 1024. \
        Given: 1 `inputs` tokens and 10000 `max_new_tokens` (error_type: validation)";
    let cases = [
        ("error_validation_422.json", 422, validation),
        (
            "error_generation_424.json",
            424,
            "Request failed during generation: Server error: (error_type: generation)",
        ),
        (
            "error_overloaded_429.json",
            429,
            "Model is overloaded (error_type: overloaded)",
        ),
    ];
    for (name, status, message) in cases {
        for api in ["generate", "chat"] {
            let (ex, _r) = send(api, Recorded::new(status, JSON, fixture(name))).await;
            let err = ex.error.as_ref().expect("failed");
            assert_eq!(
                (err.kind, err.status),
                (RequestErrorKind::HttpStatus, Some(status))
            );
            has(&err.message, "POST http://127.0.0.1:");
            has(&err.message, path(api));
            assert!(
                err.message.ends_with(message),
                "{name} {api}: {}",
                err.message
            );
            assert!(ex.content_at.is_empty());
        }
    }
    // axum's own rejection is plain text; the compat route wraps errors in an array.
    let plain = "Failed to deserialize the JSON body into the target type: missing field `inputs`";
    let array = r#"[{"error":"Input validation error: bad","error_type":"validation"}]"#;
    for (body, ct, tail) in [
        (plain, "text/plain; charset=utf-8", plain),
        (
            array,
            JSON,
            "Input validation error: bad (error_type: validation)",
        ),
    ] {
        let (ex, _r) = send("generate", Recorded::new(422, ct, body)).await;
        let err = ex.error.expect("failed");
        assert_eq!(
            (err.kind, err.status),
            (RequestErrorKind::HttpStatus, Some(422))
        );
        assert!(err.message.ends_with(tail), "{}", err.message);
    }
}

#[tokio::test]
async fn a_stalled_stream_times_out_with_its_tokens() {
    let body = fixture("generate_stream_details.sse");
    let rec = Recorded::new(200, SSE, body.clone())
        .chunked(Chunking::At(event_ends(&body)), Duration::from_millis(400));
    let replay = Replay::serve([("POST", "/generate_stream", rec)]).expect("replay");
    let engine: Engine = format!("tgi={},model=m,api=generate", replay.url())
        .parse()
        .expect("spec");
    let idle = Some(Duration::from_millis(100));
    let (client, _) = connect_with(
        &engine,
        Timeouts {
            idle,
            ..Timeouts::default()
        },
    )
    .await
    .expect("connect");
    let req = GenRequest {
        prompt: "p".into(),
        history: std::sync::Arc::new([]),
        mode: Mode::Completion,
        max_tokens: 20,
        stream: true,
        exact_output: false,
    };
    let mut ex = Exchange::started(Instant::now());
    tokio::time::timeout(LIMIT, client.send(&req, &mut ex))
        .await
        .expect("in time");
    let err = ex.error.expect("timed out");
    assert_eq!(err.kind, RequestErrorKind::Timeout);
    has(&err.message, "/generate_stream");
    assert_eq!((ex.content_at.len(), ex.text.as_str()), (1, "Deep"));
}

#[tokio::test]
async fn refused_connections_are_connect_errors() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    drop(listener);
    let err = send_to(&url, "generate").await.error.expect("refused");
    assert_eq!((err.kind, err.status), (RequestErrorKind::Connect, None));
    has(&err.message, &format!("{url}/generate_stream"));
}

// ---- /info and /health --------------------------------------------------------

#[tokio::test]
async fn info_gives_the_model_and_version() {
    let info = Recorded::new(200, JSON, fixture("info.json"));
    let replay = Replay::serve([("GET", "/info", info)]).expect("replay");
    let current = client(&replay.url(), "generate").await;
    let models = current.models().await.expect("models");
    assert_eq!(models.len(), 1);
    assert_eq!(models[0].id, "bigscience/blomm-560m");
    assert_eq!(models[0].context_length, Some(2048), "max_total_tokens");
    assert_eq!(
        (models[0].quantization.as_deref(), models[0].size_bytes),
        (None, None)
    );
    let version = current.version().await.expect("version");
    assert_eq!(version.as_deref(), Some("0.5.0"));
    // With no model named, connect asks `/info`.
    let engine: Engine = format!("tgi={}", replay.url()).parse().expect("spec");
    assert_eq!(
        connect(&engine).await.expect("connect").1,
        "bigscience/blomm-560m"
    );
    // TGI 1.x: `max_input_length` and `model_dtype`, no `max_total_tokens`.
    let old = r#"{"model_id":"b","model_dtype":"torch.float16","max_input_length":1024,"version":"1.4.5"}"#;
    let replay = Replay::serve([("GET", "/info", Recorded::new(200, JSON, old))]).expect("replay");
    let old = client(&replay.url(), "chat").await;
    let model = old.models().await.expect("models").remove(0);
    assert_eq!(
        (model.context_length, model.quantization.as_deref()),
        (Some(1024), Some("torch.float16"))
    );
    let version = old.version().await.expect("version");
    assert_eq!(version.as_deref(), Some("1.4.5"));
}

#[tokio::test]
async fn health_empty_200_is_ready_and_503_is_not() {
    assert!(fixture("health_ok.txt").is_empty());
    let ok = Recorded::new(200, "text/plain", fixture("health_ok.txt"));
    let replay = Replay::serve([("GET", "/health", ok)]).expect("replay");
    client(&replay.url(), "chat")
        .await
        .health()
        .await
        .expect("healthy");
    // The 503 body the README gives for an unhealthy TGI.
    let sick = Recorded::new(
        503,
        JSON,
        r#"{"error":"unhealthy","error_type":"healthcheck"}"#,
    );
    let replay = Replay::serve([("GET", "/health", sick)]).expect("replay");
    let err = client(&replay.url(), "chat")
        .await
        .health()
        .await
        .expect_err("not ready");
    assert!(err.is_engine(), "{err}");
    has(
        &err.to_string(),
        "/health: not ready: answered 503 Service Unavailable",
    );
    has(&err.to_string(), "unhealthy (error_type: healthcheck)");
}
