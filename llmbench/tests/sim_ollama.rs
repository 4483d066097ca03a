//! The simulator's Ollama routes seen from the wire, through the raw client
//! in `sim_support`: NDJSON lines, the final `done` line, nanosecond
//! durations that equal the simulator's own truth, probes and model lists.

mod sim_support;

use std::time::Duration;

use llmbench::sim::{OutputLen, Protocol, SimConfig, Truth};
use serde_json::{json, Value};
use sim_support::*;

fn ollama() -> SimConfig {
    fast().protocols(&[Protocol::Ollama])
}

/// The counts and durations of a final line agree with the truth.
fn assert_durations_match(done: &Value, t: &Truth) {
    let started = t.started_at.expect("started");
    let first = t.first_token_at.expect("first token");
    let last = t.last_token_at.expect("last token");
    let finished = t.finished_at.expect("finished");
    assert_eq!(done["prompt_eval_count"], t.prompt_tokens);
    assert_eq!(done["eval_count"], t.output_tokens);
    assert_eq!(done["prompt_eval_duration"], ns(first - started));
    assert_eq!(done["eval_duration"], ns(last - first));
    assert_eq!(done["total_duration"], ns(finished - t.received_at));
    let load = done["load_duration"].as_u64().expect("load_duration");
    assert!(load <= ns(started - t.received_at), "{load}");
    // The prompt took at least the model's prefill time.
    let prefill = Duration::from_millis(5) + Duration::from_micros(10) * t.prompt_tokens;
    assert!(done["prompt_eval_duration"].as_u64() >= Some(ns(prefill)));
}

#[tokio::test]
async fn chat_streams_ndjson_by_default_and_ends_with_done() {
    let sim = start(ollama());
    let reply = post(
        sim.addr(),
        "/api/chat",
        json!({"model": "gemma3:1b", "messages": [{"role": "user", "content": "10 * 10"}],
               "options": {"num_predict": 5}}),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/x-ndjson"));
    assert!(reply.complete);
    assert!(
        reply.body.ends_with(b"}\n"),
        "every line ends with a newline"
    );
    let lines = reply.event_values();
    assert_eq!(lines.len(), 5 + 1, "{}", reply.text());
    for line in &lines[..5] {
        assert_eq!(line["model"], "gemma3:1b", "the requested model is echoed");
        assert_eq!(line["done"], false);
        assert_eq!(line["message"]["role"], "assistant");
        assert!(line["message"]["content"]
            .as_str()
            .is_some_and(|c| c.starts_with(' ') && c.len() > 1));
        let created = line["created_at"].as_str().expect("created_at");
        assert!(created.ends_with('Z') && created.contains('T'), "{created}");
        assert!(line.get("done_reason").is_none());
    }
    let done = &lines[5];
    assert_eq!(done["done"], true);
    assert_eq!(done["done_reason"], "length");
    assert_eq!(done["message"], json!({"role": "assistant", "content": ""}));
    assert!(done.get("context").is_none());
    assert!(
        reply
            .text()
            .contains(r#""done":true,"done_reason":"length""#),
        "done before done_reason, as Ollama >= 0.12 writes it"
    );

    let truth = &sim.truth()[0];
    assert_eq!(truth.protocol, Protocol::Ollama);
    assert_eq!(truth.route, "/api/chat");
    assert_eq!(truth.id, "sim-1");
    assert_eq!(reply.header("x-request-id"), Some("sim-1"));
    assert!(truth.stream);
    assert_eq!(truth.prompt_tokens, 3 + 8 + 3);
    assert_eq!(truth.output_tokens, 5);
    assert_eq!(truth.status, Some(200));
    assert_durations_match(done, truth);
    for (k, written) in truth.token_written_at.iter().enumerate() {
        assert!(
            *written <= reply.events[k].1,
            "token {k} seen before written"
        );
    }
    assert_eq!(
        truth.first_token_at,
        truth.token_written_at.first().copied()
    );
    assert_eq!(truth.last_token_at, truth.token_written_at.last().copied());
}

#[tokio::test]
async fn generate_whole_answer_is_one_object_without_newline() {
    let sim = start(ollama().output_tokens(OutputLen::Fixed(3)));
    let reply = post(
        sim.addr(),
        "/api/generate",
        json!({"model": "m", "prompt": "Why is the sky blue?", "stream": false,
               "options": {"num_predict": 10}}),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    assert!(reply.header("content-length").is_some());
    assert!(!reply.body.ends_with(b"\n"));
    let body = reply.json();
    let truth = &sim.truth()[0];
    assert_eq!(truth.route, "/api/generate");
    assert!(!truth.stream && truth.token_written_at.is_empty());
    assert_eq!(body["done"], true);
    assert_eq!(
        body["done_reason"], "stop",
        "3 tokens of 10 allowed: stopped"
    );
    let text = body["response"].as_str().expect("response");
    assert_eq!(text.split_whitespace().count(), 3);
    assert_eq!(
        body["context"].as_array().map(Vec::len),
        Some(truth.prompt_tokens as usize + 3)
    );
    assert!(body.get("message").is_none());
    assert_durations_match(&body, truth);
}

#[tokio::test]
async fn budget_comes_from_num_predict_and_negative_means_none() {
    let sim = start(ollama().itl(llmbench::sim::Itl::Constant(Duration::ZERO)));
    for (options, tokens) in [
        (json!({"num_predict": 7}), 7),
        (json!({"num_predict": -1}), 16),
        (json!({}), 16),
    ] {
        let reply = post(
            sim.addr(),
            "/api/generate",
            json!({"model": "m", "prompt": "hi", "options": options}),
        )
        .await;
        let lines = reply.event_values();
        assert_eq!(lines.len(), tokens + 1, "{options}");
        assert_eq!(lines[tokens]["eval_count"], tokens);
        assert!(lines[tokens]["context"].is_array());
    }
    let outputs: Vec<u32> = sim.truth().iter().map(|t| t.output_tokens).collect();
    assert_eq!(outputs, [7, 16, 16]);
}

#[tokio::test]
async fn probes_model_lists_and_load_requests() {
    let sim = start(ollama().model("tiny:1b"));
    let root = get(sim.addr(), "/").await;
    assert_eq!(
        (root.status, root.text().as_str()),
        (200, "Ollama is running")
    );
    let version = get(sim.addr(), "/api/version").await;
    assert!(version.json()["version"]
        .as_str()
        .is_some_and(|v| !v.is_empty()));
    let tags = get(sim.addr(), "/api/tags").await.json();
    let model = &tags["models"][0];
    assert_eq!(model["name"], "tiny:1b");
    assert_eq!(model["model"], "tiny:1b");
    assert!(model["digest"].as_str().is_some_and(|d| d.len() == 64));
    assert!(model["details"]["quantization_level"].is_string());
    assert!(model["modified_at"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));
    let ps = get(sim.addr(), "/api/ps").await.json();
    assert_eq!(ps["models"][0]["name"], "tiny:1b");
    assert!(ps["models"][0]["expires_at"].is_string());

    let load = post(sim.addr(), "/api/generate", json!({"model": "tiny:1b"})).await;
    assert_eq!(load.status, 200);
    let load = load.json();
    assert_eq!(load["done"], true);
    assert_eq!(load["done_reason"], "load");
    assert_eq!(load["response"], "");
    let load = post(
        sim.addr(),
        "/api/chat",
        json!({"model": "x", "messages": []}),
    )
    .await;
    assert_eq!(load.json()["done_reason"], "load");
    assert_eq!(sim.requests_seen(), 0, "loading a model generates nothing");
}

#[tokio::test]
async fn errors_have_ollama_shapes() {
    let sim = start(ollama());
    let mut conn = Conn::open(sim.addr()).await;
    conn.send_raw("POST", "/api/chat", "{not json").await;
    let (status, headers) = conn.read_head().await;
    let reply = conn.read_body(status, headers).await;
    assert_eq!(reply.status, 400);
    let error = reply.json();
    assert!(error["error"]
        .as_str()
        .is_some_and(|m| m.contains("not valid JSON")));
    assert_eq!(error.as_object().map(|o| o.len()), Some(1));

    let reply = post(
        sim.addr(),
        "/api/generate",
        json!({"prompt": "x", "options": {"num_predict": "lots"}}),
    )
    .await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.json(),
        json!({"error": "'options.num_predict' must be an integer"})
    );

    let reply = get(sim.addr(), "/v1/models").await;
    assert_eq!(reply.status, 404, "no OpenAI routes on an Ollama-only sim");
    assert_eq!(reply.text(), "404 page not found");
    assert_eq!(sim.requests_seen(), 0);
}
