//! The simulator's llama.cpp routes seen from the wire, through the raw
//! client in `sim_support`: `/completion` events and its `stop:true` event
//! whose `timings` equal the simulator's truth, `/v1/*` with `timings`,
//! `/health`, `/props`, `/slots`, `/tokenize`, and llama.cpp's error shape.

mod sim_support;

use std::time::{Duration, Instant};

use llmbench::sim::{Itl, Protocol, SimConfig, Truth};
use serde_json::{json, Value};
use sim_support::*;

fn llamacpp() -> SimConfig {
    fast().protocols(&[Protocol::LlamaCpp])
}

/// `timings` agree with the truth: prompt time from the slot to the first
/// token, generation time from the first token to the last.
fn assert_timings_match(timings: &Value, t: &Truth) {
    let started = t.started_at.expect("started");
    let first = t.first_token_at.expect("first token");
    let last = t.last_token_at.expect("last token");
    assert_eq!(timings["cache_n"], 0);
    assert_eq!(timings["prompt_n"], t.prompt_tokens);
    assert_eq!(timings["predicted_n"], t.output_tokens);
    assert_eq!(timings["prompt_ms"], ms(first - started));
    assert_eq!(timings["predicted_ms"], ms(last - first));
    let per_second = timings["predicted_per_second"].as_f64().expect("rate");
    let expected = f64::from(t.output_tokens) / (last - first).as_secs_f64();
    assert!(
        (per_second - expected).abs() / expected < 1e-9,
        "{per_second} vs {expected}"
    );
}

#[tokio::test]
async fn completion_stream_ends_with_stop_and_timings() {
    let sim = start(llamacpp());
    let sent = Instant::now();
    let reply = post(
        sim.addr(),
        "/completion",
        json!({"prompt": "The capital of France is", "n_predict": 6, "stream": true}),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("text/event-stream"));
    assert!(reply.complete);
    assert!(!reply.text().contains("[DONE]"), "no [DONE] on /completion");
    let events = reply.event_values();
    assert_eq!(events.len(), 6 + 1, "{}", reply.text());
    for (k, event) in events[..6].iter().enumerate() {
        assert_eq!(event["stop"], false);
        assert_eq!(event["tokens_predicted"], k + 1);
        assert_eq!(event["tokens_evaluated"], 5);
        assert_eq!(event["tokens"].as_array().map(Vec::len), Some(1));
        assert!(event["content"].as_str().is_some_and(|c| c.len() > 1));
    }
    let last = &events[6];
    assert_eq!(last["stop"], true);
    assert_eq!(last["content"], "");
    assert_eq!(last["stop_type"], "limit");
    assert_eq!(last["tokens_predicted"], 6);
    assert_eq!(last["tokens_evaluated"], 5);
    assert_eq!(last["prompt"], "The capital of France is");
    assert_eq!(last["id_slot"], 0);
    assert_eq!(last["model"], "llmbench-sim");

    let truth = &sim.truth()[0];
    assert_eq!(
        (truth.protocol, truth.route),
        (Protocol::LlamaCpp, "/completion")
    );
    assert_eq!(truth.prompt_tokens, 5);
    assert_timings_match(&last["timings"], truth);
    // What an end-to-end check compares: server figures against the client's.
    let client_ttft = reply.events[0].1 - sent;
    assert!(client_ttft.as_secs_f64() * 1e3 >= last["timings"]["prompt_ms"].as_f64().expect("ms"));
    assert_eq!(last["timings"]["predicted_n"], events.len() - 1);
}

#[tokio::test]
async fn completion_whole_answer_has_content_and_timings() {
    let sim = start(llamacpp());
    let reply = post(
        sim.addr(),
        "/completion",
        json!({"prompt": [1, 2, 3], "n_predict": 4}),
    )
    .await;
    assert_eq!(
        reply.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    let body = reply.json();
    assert_eq!(body["stop"], true);
    let content = body["content"].as_str().expect("content");
    assert_eq!(content.split_whitespace().count(), 4);
    assert_eq!(body["tokens_evaluated"], 3);
    let truth = &sim.truth()[0];
    assert!(truth.token_written_at.is_empty());
    assert_timings_match(&body["timings"], truth);

    // No budget (-1) falls back to the default length, and ends by itself.
    let sim = start(llamacpp().itl(Itl::Constant(Duration::ZERO)));
    let reply = post(
        sim.addr(),
        "/completions",
        json!({"prompt": "x", "n_predict": -1}),
    )
    .await;
    let body = reply.json();
    assert_eq!(body["tokens_predicted"], 16);
    assert_eq!(body["stop_type"], "eos");
    assert_eq!(sim.truth()[0].route, "/completions");
}

#[tokio::test]
async fn v1_routes_carry_timings() {
    let sim = start(llamacpp());
    let reply = post(
        sim.addr(),
        "/v1/chat/completions",
        chat("What is 2+2?", Some(4), true, false),
    )
    .await;
    assert!(reply.text().ends_with("data: [DONE]\n\n"));
    let events = reply.event_values();
    assert_eq!(events.len(), 1 + 4 + 1 + 1, "{}", reply.text());
    assert_eq!(
        events[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": null})
    );
    assert_eq!(
        reply.events[0].1, reply.events[1].1,
        "the role chunk comes with the first token, in one write"
    );
    assert_eq!(contents(&events).len(), 4);
    let finish = &events[5];
    assert_eq!(finish["choices"][0]["finish_reason"], "length");
    assert!(finish["system_fingerprint"].is_string());
    let truth = &sim.truth()[0];
    assert_eq!(truth.protocol, Protocol::LlamaCpp);
    assert_timings_match(&finish["timings"], truth);

    // With include_usage, usage and timings ride on a `choices:[]` chunk.
    let reply = post(
        sim.addr(),
        "/v1/chat/completions",
        chat("hi", Some(2), true, true),
    )
    .await;
    let events = reply.event_values();
    let usage = &events[events.len() - 2];
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 2);
    assert_eq!(usage["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
    assert_eq!(usage["timings"]["predicted_n"], 2);

    // /v1/completions: usage and timings on the finish chunk, asked or not.
    let reply = post(
        sim.addr(),
        "/v1/completions",
        json!({"prompt": "One, two, three,", "max_tokens": 3, "stream": true}),
    )
    .await;
    let events = reply.event_values();
    let finish = &events[3];
    assert_eq!(finish["choices"][0]["text"], "");
    assert_eq!(finish["usage"]["completion_tokens"], 3);
    assert_eq!(finish["timings"]["predicted_n"], 3);

    let reply = post(
        sim.addr(),
        "/v1/chat/completions",
        chat("hi", Some(2), false, false),
    )
    .await;
    let body = reply.json();
    assert_eq!(body["usage"]["completion_tokens"], 2);
    assert_timings_match(&body["timings"], &sim.truth()[3]);
    let models = get(sim.addr(), "/v1/models").await.json();
    assert!(models["data"][0]["meta"]["n_ctx"].as_u64().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_props_slots_and_tokenize() {
    let sim = start(llamacpp().max_concurrency(4).model("smol.gguf"));
    let health = get(sim.addr(), "/health").await;
    assert_eq!(
        (health.status, health.json()),
        (200, json!({"status": "ok"}))
    );
    let props = get(sim.addr(), "/props").await.json();
    assert_eq!(props["total_slots"], 4);
    assert_eq!(props["model_path"], "smol.gguf");
    assert!(props["default_generation_settings"]["n_ctx"].as_u64() > Some(0));
    assert!(props["build_info"].is_string());

    // One long stream runs: one slot is busy with task 1.
    let mut conn = Conn::open(sim.addr()).await;
    conn.send(
        "POST",
        "/completion",
        Some(&json!({"prompt": "x", "n_predict": 1000, "stream": true})),
    )
    .await;
    let (status, _) = conn.read_head().await;
    assert_eq!(status, 200);
    tokio::time::timeout(LIMIT, async {
        while find(&conn.buf, b"\n\n").is_none() {
            conn.fill().await;
        }
    })
    .await
    .expect("first token");
    let slots = get(sim.addr(), "/slots").await.json();
    let slots = slots.as_array().expect("array");
    assert_eq!(slots.len(), 4);
    let busy: Vec<&Value> = slots
        .iter()
        .filter(|s| s["is_processing"] == true)
        .collect();
    assert_eq!(busy.len(), 1, "{slots:?}");
    assert_eq!(busy[0]["id_task"], 1);
    assert_eq!(busy[0]["n_prompt_tokens"], 1);
    drop(conn);

    let tokens = post(
        sim.addr(),
        "/tokenize",
        json!({"content": "Hello world! How are you?"}),
    )
    .await
    .json();
    let ids = tokens["tokens"].as_array().expect("tokens");
    assert_eq!(ids.len(), 7);
    let again = post(sim.addr(), "/tokenize", json!({"content": "Hello"}))
        .await
        .json();
    assert_eq!(again["tokens"][0], ids[0], "ids are stable");
    let pieces = post(
        sim.addr(),
        "/tokenize",
        json!({"content": "a, b", "with_pieces": true}),
    )
    .await
    .json();
    assert_eq!(pieces["tokens"][1]["piece"], ",");
    assert_eq!(
        sim.requests_seen(),
        1,
        "probes and tokenize generate nothing"
    );
}

#[tokio::test]
async fn errors_have_llamacpp_shapes() {
    let sim = start(llamacpp());
    let reply = get(sim.addr(), "/nope").await;
    assert_eq!(reply.status, 404);
    assert_eq!(
        reply.json(),
        json!({"error": {"message": "File Not Found", "type": "not_found_error", "code": 404}})
    );
    let reply = post(sim.addr(), "/completion", json!({"n_predict": 3})).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"]["type"], "invalid_request_error");
    assert_eq!(reply.json()["error"]["message"], "'prompt' is required");
    assert_eq!(reply.json()["error"]["code"], 400);
}
