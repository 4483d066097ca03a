//! The simulator's TGI routes seen from the wire, through the raw client in
//! `sim_support`: `/generate_stream` events ending on the last token (no
//! `[DONE]`), `details`, `/generate` with timing headers that equal the
//! simulator's truth, `/info`, `/health`, and TGI's error shapes.

mod sim_support;

use llmbench::sim::{OutputLen, Protocol, SimConfig};
use serde_json::{json, Value};
use sim_support::*;

fn tgi() -> SimConfig {
    fast().protocols(&[Protocol::Tgi])
}

fn generate(inputs: &str, parameters: Value) -> Value {
    json!({"inputs": inputs, "parameters": parameters})
}

#[tokio::test]
async fn generate_stream_ends_on_the_last_token_with_details() {
    let sim = start(tgi());
    let inputs = "日本で一番高い山は?";
    let reply = post(
        sim.addr(),
        "/generate_stream",
        generate(
            inputs,
            json!({"max_new_tokens": 6, "details": true, "seed": 18_435_558_523_380_366_744_u64}),
        ),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("text/event-stream"));
    assert_eq!(reply.header("x-compute-characters"), Some("10"));
    assert!(reply.header("x-compute-type").is_some());
    assert!(reply.complete);
    assert!(!reply.text().contains("[DONE]"));
    let events = reply.event_values();
    assert_eq!(events.len(), 6, "{}", reply.text());
    let mut text = String::new();
    for (k, event) in events.iter().enumerate() {
        assert_eq!(event["index"], k + 1);
        let token = &event["token"];
        assert!(token["id"].as_u64().is_some_and(|id| id >= 1000));
        assert!(token["logprob"].as_f64().is_some_and(|p| p <= 0.0));
        assert_eq!(token["special"], false);
        text.push_str(token["text"].as_str().expect("token text"));
        if k < 5 {
            assert_eq!(event["generated_text"], Value::Null);
            assert_eq!(event["details"], Value::Null);
        }
    }
    let last = &events[5];
    assert_eq!(last["generated_text"], text.as_str());
    let truth = &sim.truth()[0];
    assert_eq!(
        last["details"],
        json!({"finish_reason": "length", "generated_tokens": 6,
               "seed": 18_435_558_523_380_366_744_u64, "input_length": truth.prompt_tokens})
    );
    assert_eq!(truth.protocol, Protocol::Tgi);
    assert_eq!(truth.route, "/generate_stream");
    assert_eq!(truth.prompt_tokens, 2, "one run of letters, one `?`");
    assert_eq!(truth.output_tokens, 6);
    assert_eq!(truth.token_written_at.len(), 6);
    assert_eq!(
        truth.finished_at,
        truth.token_written_at.last().copied(),
        "the last token's event is the end"
    );
    assert!(truth.token_written_at[5] <= reply.events[5].1);
}

#[tokio::test]
async fn stream_without_details_and_eos_finish() {
    let sim = start(tgi().output_tokens(OutputLen::Fixed(2)));
    let reply = post(
        sim.addr(),
        "/generate_stream",
        generate("hi", json!({"max_new_tokens": 20})),
    )
    .await;
    let events = reply.event_values();
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e["details"].is_null()));
    assert!(events[1]["generated_text"].is_string());

    let reply = post(
        sim.addr(),
        "/generate_stream",
        generate("hi", json!({"max_new_tokens": 20, "details": true})),
    )
    .await;
    let events = reply.event_values();
    assert_eq!(events[1]["details"]["finish_reason"], "eos_token");
    assert_eq!(events[1]["details"]["seed"], Value::Null);
}

#[tokio::test]
async fn generate_headers_report_the_sims_own_times() {
    let sim = start(tgi());
    let reply = post(
        sim.addr(),
        "/generate",
        generate(
            "Test request",
            json!({"max_new_tokens": 4, "details": true}),
        ),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let body = reply.json();
    let truth = &sim.truth()[0];
    assert_eq!(truth.route, "/generate");
    let text = body["generated_text"].as_str().expect("generated_text");
    assert_eq!(text.split_whitespace().count(), 4);
    assert_eq!(body["details"]["finish_reason"], "length");
    assert_eq!(body["details"]["generated_tokens"], 4);
    assert_eq!(body["details"]["prefill"], json!([]));
    assert_eq!(body["details"]["tokens"].as_array().map(Vec::len), Some(4));

    let started = truth.started_at.expect("started");
    let finished = truth.finished_at.expect("finished");
    let whole_ms = |d: std::time::Duration| d.as_millis() as f64;
    assert_eq!(reply.header_num("x-generated-tokens"), 4.0);
    assert_eq!(
        reply.header_num("x-prompt-tokens"),
        f64::from(truth.prompt_tokens)
    );
    assert_eq!(reply.header_num("x-compute-characters"), 12.0);
    assert_eq!(
        reply.header_num("x-total-time"),
        whole_ms(finished - truth.received_at)
    );
    assert_eq!(
        reply.header_num("x-inference-time"),
        whole_ms(finished - started)
    );
    assert!(reply.header_num("x-queue-time") <= whole_ms(started - truth.received_at));
    assert!(reply.header_num("x-validation-time") <= whole_ms(started - truth.received_at));
    assert_eq!(
        reply.header_num("x-time-per-token"),
        whole_ms((finished - started) / 4)
    );
    let compute = reply.header_num("x-compute-time");
    assert!((compute - (finished - truth.received_at).as_secs_f64()).abs() < 1e-9);
    // Prefill plus three gaps happened before the answer.
    assert!(reply.header_num("x-inference-time") >= 5.0 + 3.0 * 2.0);

    let reply = post(sim.addr(), "/generate", generate("x", json!({}))).await;
    assert_eq!(
        reply.json().as_object().map(|o| o.len()),
        Some(1),
        "no details"
    );
}

#[tokio::test]
async fn info_health_and_chat_route() {
    let sim = start(tgi().model("bigscience/bloom-560m").max_concurrency(3));
    let health = get(sim.addr(), "/health").await;
    assert_eq!(health.status, 200);
    assert!(health.body.is_empty(), "TGI's health is an empty 200");
    let info = get(sim.addr(), "/info").await.json();
    assert_eq!(info["model_id"], "bigscience/bloom-560m");
    assert_eq!(info["max_concurrent_requests"], 3);
    assert!(info["version"].is_string());
    assert_eq!(info["sha"], Value::Null);
    assert!(info["max_total_tokens"].as_u64() > info["max_input_tokens"].as_u64());

    let reply = post(
        sim.addr(),
        "/v1/chat/completions",
        chat("Say OK", Some(3), true, false),
    )
    .await;
    assert_eq!(contents(&reply.event_values()).len(), 3);
    assert!(reply.text().ends_with("data: [DONE]\n\n"));
    let truth = &sim.truth()[0];
    assert_eq!(
        (truth.protocol, truth.route),
        (Protocol::Tgi, "/v1/chat/completions")
    );
}

#[tokio::test]
async fn errors_have_tgi_shapes() {
    let sim = start(tgi());
    let reply = post(
        sim.addr(),
        "/generate",
        generate("x", json!({"max_new_tokens": 0})),
    )
    .await;
    assert_eq!(reply.status, 422);
    let error = reply.json();
    assert_eq!(error["error_type"], "validation");
    assert!(error["error"]
        .as_str()
        .is_some_and(|m| m.starts_with("Input validation error")));

    let reply = post(sim.addr(), "/generate_stream", json!({"parameters": {}})).await;
    assert_eq!(reply.status, 422);
    assert!(reply
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/plain")));
    assert!(reply.text().contains("missing field `inputs`"));

    let mut conn = Conn::open(sim.addr()).await;
    conn.send_raw("POST", "/generate", "{not json").await;
    let (status, headers) = conn.read_head().await;
    let reply = conn.read_body(status, headers).await;
    assert_eq!(reply.status, 400);
    assert!(reply
        .text()
        .starts_with("Failed to parse the request body as JSON"));

    let reply = get(sim.addr(), "/nope").await;
    assert_eq!((reply.status, reply.body.len()), (404, 0));
    assert_eq!(sim.requests_seen(), 0);
}
