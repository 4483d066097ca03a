//! Injected faults seen from the wire: each one, on each protocol, gives
//! the answer its variant promises and is recorded in the truth.

mod sim_support;

use std::time::Duration;

use llmbench::sim::{Fault, Protocol};
use serde_json::{json, Value};
use sim_support::*;

#[tokio::test]
async fn status_fault_answers_with_openai_error() {
    let sim = start(fast().fault(Fault::Status(429)));
    let reply = call(
        sim.addr(),
        "POST",
        "/v1/chat/completions",
        Some(chat("hi", Some(4), true, false)),
    )
    .await;
    assert_eq!(reply.status, 429);
    let error = &reply.json()["error"];
    assert_eq!(error["type"], "rate_limit_error");
    assert_eq!(error["code"], 429);
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
    let truth = &sim.truth()[0];
    assert_eq!(truth.fault, Some(Fault::Status(429)));
    assert_eq!(truth.started_at, None);
    assert!(truth.finished_at.is_some());

    let sim = start(fast().fault(Fault::Status(503)));
    let reply = call(
        sim.addr(),
        "POST",
        "/v1/completions",
        Some(json!({"prompt": "x"})),
    )
    .await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.json()["error"]["type"], "unavailable_error");
}

#[tokio::test]
async fn cut_fault_ends_the_body_abruptly() {
    let sim = start(fast().fault(Fault::CutAfter(3)));
    let reply = call(
        sim.addr(),
        "POST",
        "/v1/chat/completions",
        Some(chat("hi", Some(10), true, true)),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert!(!reply.complete, "the chunked body must not end cleanly");
    let events = reply.event_values();
    assert_eq!(contents(&events).len(), 3);
    assert_eq!(
        events.len(),
        1 + 3,
        "no finish, usage or [DONE]: {events:?}"
    );
    assert_eq!(sim.truth()[0].token_written_at.len(), 3);

    // Non-streamed: half a body, then the connection is gone.
    let reply = call(
        sim.addr(),
        "POST",
        "/v1/chat/completions",
        Some(chat("hi", Some(10), false, false)),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert!(!reply.complete);
    assert!(!reply.body.is_empty());
    assert!(serde_json::from_slice::<Value>(&reply.body).is_err());
}

#[tokio::test]
async fn malformed_fault_writes_bad_json_then_goes_on() {
    let sim = start(fast().fault(Fault::MalformedAfter(2)));
    let reply = call(
        sim.addr(),
        "POST",
        "/v1/completions",
        Some(json!({"prompt": "x", "max_tokens": 5, "stream": true})),
    )
    .await;
    assert!(reply.complete);
    let data: Vec<&str> = reply.events.iter().map(|(d, _)| d.as_str()).collect();
    assert_eq!(data[2], "{not json");
    assert_eq!(data.len(), 5 + 1 + 1 + 1);
    assert_eq!(data.last(), Some(&"[DONE]"));
    assert_eq!(contents(&reply.event_values()).len(), 5);

    let reply = call(
        sim.addr(),
        "POST",
        "/v1/completions",
        Some(json!({"prompt": "x", "max_tokens": 5})),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, b"{not json");
}

#[tokio::test]
async fn error_event_fault_ends_the_stream_without_done() {
    let sim = start(fast().fault(Fault::ErrorEventAfter(2)));
    let reply = call(
        sim.addr(),
        "POST",
        "/v1/chat/completions",
        Some(chat("hi", Some(6), true, false)),
    )
    .await;
    assert!(
        reply.complete,
        "the stream ends cleanly, just without [DONE]"
    );
    let events = reply.event_values();
    assert_eq!(events.len(), 1 + 2 + 1, "{events:?}");
    assert_eq!(
        events[3],
        json!({"error": {"message": "simulated engine failure", "type": "server_error", "code": 500}})
    );
    assert!(!reply.body.ends_with(b"data: [DONE]\n\n"));

    let reply = call(
        sim.addr(),
        "POST",
        "/v1/chat/completions",
        Some(chat("hi", Some(6), false, false)),
    )
    .await;
    assert_eq!(reply.status, 500);
    assert_eq!(reply.json()["error"]["type"], "server_error");
}

#[tokio::test]
async fn stall_fault_sends_headers_and_nothing_more() {
    let sim = start(fast().fault_every(2, Fault::Stall));
    let body = chat("hi", Some(3), true, false);
    let ok = call(
        sim.addr(),
        "POST",
        "/v1/chat/completions",
        Some(body.clone()),
    )
    .await;
    assert!(ok.complete);

    let mut conn = Conn::open(sim.addr()).await;
    conn.send("POST", "/v1/chat/completions", Some(&body)).await;
    let (status, _) = tokio::time::timeout(LIMIT, conn.read_head())
        .await
        .expect("headers arrive");
    assert_eq!(status, 200);
    let more = tokio::time::timeout(Duration::from_millis(300), conn.fill()).await;
    assert!(
        more.is_err(),
        "a stalled response writes nothing: {:?}",
        conn.buf
    );
    drop(conn);

    let truth = sim.truth();
    assert_eq!(truth[1].fault, Some(Fault::Stall));
    assert_eq!(truth[1].started_at, None);
    assert!(truth[1].token_written_at.is_empty());
    // Every other request is served normally.
    let ok = call(sim.addr(), "POST", "/v1/chat/completions", Some(body)).await;
    assert!(ok.complete);
    assert_eq!(sim.truth()[2].fault, None);
}

#[tokio::test]
async fn drop_fault_closes_before_any_response() {
    let sim = start(fast().fault_every(2, Fault::Drop));
    let body = chat("hi", Some(2), true, false);
    let ok = post(sim.addr(), "/v1/chat/completions", body.clone()).await;
    assert!(ok.complete);
    for (path, body) in [
        ("/v1/chat/completions", body),
        (
            "/api/chat",
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
        ),
        ("/generate_stream", json!({"inputs": "hi"})),
        ("/completion", json!({"prompt": "hi", "stream": true})),
    ] {
        let mut conn = Conn::open(sim.addr()).await;
        conn.send("POST", path, Some(&body)).await;
        let head = tokio::time::timeout(LIMIT, conn.try_head())
            .await
            .expect("closed in time");
        assert!(head.is_none(), "{path}: no response at all: {:?}", conn.buf);
        assert!(conn.buf.is_empty());
        // Keep the requests odd/even: one that is served.
        let ok = post(
            sim.addr(),
            "/api/generate",
            json!({"prompt": "x", "stream": false}),
        )
        .await;
        assert_eq!(ok.status, 200);
    }
    let truth = sim.truth();
    assert_eq!(truth.len(), 9);
    for t in truth.iter().skip(1).step_by(2) {
        assert_eq!(t.fault, Some(Fault::Drop));
        assert_eq!(t.status, None);
        assert_eq!(t.started_at, None);
        assert_eq!(t.output_tokens, 0);
        assert!(t.finished_at.is_some());
    }
    let routes: Vec<&str> = truth.iter().skip(1).step_by(2).map(|t| t.route).collect();
    assert_eq!(
        routes,
        [
            "/v1/chat/completions",
            "/api/chat",
            "/generate_stream",
            "/completion"
        ]
    );
}

#[tokio::test]
async fn fault_rate_is_seeded_and_recorded() {
    let run = || async {
        let sim = start(fast().seed(5).fault_rate(0.5, Fault::Status(503)));
        let mut statuses = Vec::new();
        for _ in 0..24 {
            let reply = post(sim.addr(), "/generate", json!({"inputs": "hi"})).await;
            statuses.push(reply.status);
            if reply.status == 503 {
                assert_eq!(reply.json()["error_type"], "unhealthy");
            }
        }
        let truth = sim.truth();
        for (t, status) in truth.iter().zip(&statuses) {
            let struck = t.fault == Some(Fault::Status(503));
            assert_eq!(struck, *status == 503);
            assert_eq!(t.status, Some(*status));
        }
        statuses
    };
    let first = run().await;
    assert_eq!(first, run().await, "same seed, same requests struck");
    let struck = first.iter().filter(|&&s| s == 503).count();
    assert!((4..=20).contains(&struck), "{struck} of 24 at p = 0.5");
}

#[tokio::test]
async fn status_faults_take_each_protocols_shape() {
    let sim = start(fast().fault(Fault::Status(429)));
    let reply = post(sim.addr(), "/generate_stream", json!({"inputs": "hi"})).await;
    assert_eq!(reply.status, 429);
    assert_eq!(
        reply.json(),
        json!({"error": "Model is overloaded", "error_type": "overloaded"})
    );
    let reply = post(sim.addr(), "/api/generate", json!({"prompt": "hi"})).await;
    assert_eq!(reply.status, 429);
    let error = reply.json();
    assert!(error["error"].is_string() && error.as_object().map(|o| o.len()) == Some(1));
    let reply = post(sim.addr(), "/completion", json!({"prompt": "hi"})).await;
    assert_eq!(reply.status, 429);
    assert_eq!(reply.json()["error"]["type"], "rate_limit_error");
    assert!(sim
        .truth()
        .iter()
        .all(|t| t.status == Some(429) && t.started_at.is_none()));
}

#[tokio::test]
async fn mid_stream_errors_take_each_protocols_shape() {
    let sim = start(fast().fault(Fault::ErrorEventAfter(2)));
    let reply = post(
        sim.addr(),
        "/api/chat",
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "options": {"num_predict": 6}}),
    )
    .await;
    assert_eq!(
        reply.status, 200,
        "the error comes under the 200 already sent"
    );
    assert!(reply.complete);
    let lines = reply.event_values();
    assert_eq!(lines.len(), 2 + 1, "{}", reply.text());
    assert_eq!(lines[2], json!({"error": "simulated engine failure"}));
    assert!(lines.iter().all(|l| l["done"] != true));

    let reply = post(
        sim.addr(),
        "/generate_stream",
        json!({"inputs": "hi", "parameters": {"max_new_tokens": 6}}),
    )
    .await;
    let events = reply.event_values();
    assert_eq!(events.len(), 3);
    assert_eq!(
        events[2],
        json!({"error": "Request failed during generation: simulated engine failure", "error_type": "generation"})
    );
    let reply = post(
        sim.addr(),
        "/completion",
        json!({"prompt": "hi", "n_predict": 6, "stream": true}),
    )
    .await;
    let events = reply.event_values();
    assert_eq!(events.len(), 3);
    assert_eq!(events[2]["error"]["message"], "simulated engine failure");
    assert!(events.iter().all(|e| e["stop"] != true));

    // Whole answers fail with the protocol's status: TGI 424, others 500.
    let reply = post(sim.addr(), "/generate", json!({"inputs": "hi"})).await;
    assert_eq!(
        (reply.status, reply.json()["error_type"].as_str()),
        (424, Some("generation"))
    );
    let reply = post(
        sim.addr(),
        "/api/generate",
        json!({"prompt": "hi", "stream": false}),
    )
    .await;
    assert_eq!(reply.status, 500);
    assert_eq!(reply.json(), json!({"error": "simulated engine failure"}));
    let truth = sim.truth();
    assert!(truth[..3].iter().all(|t| t.token_written_at.len() == 2));
    assert_eq!(truth[3].status, Some(424));
}

#[tokio::test]
async fn malformed_and_stall_on_ndjson() {
    let sim = start(fast().fault(Fault::MalformedAfter(1)));
    let reply = post(
        sim.addr(),
        "/api/generate",
        json!({"prompt": "hi", "options": {"num_predict": 3}}),
    )
    .await;
    let lines: Vec<&str> = reply.events.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(lines.len(), 1 + 1 + 2 + 1);
    assert_eq!(lines[1], "{not json");
    assert!(lines[4].contains(r#""done":true"#));

    let sim = start(fast().fault(Fault::Stall));
    let mut conn = Conn::open(sim.addr()).await;
    conn.send(
        "POST",
        "/api/chat",
        Some(&json!({"messages": [{"role": "user", "content": "x"}]})),
    )
    .await;
    let (status, headers) = tokio::time::timeout(LIMIT, conn.read_head())
        .await
        .expect("headers arrive");
    assert_eq!(status, 200);
    let ndjson = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("content-type") && v == "application/x-ndjson");
    assert!(ndjson, "{headers:?}");
    let more = tokio::time::timeout(Duration::from_millis(200), conn.fill()).await;
    assert!(
        more.is_err(),
        "a stalled response writes nothing: {:?}",
        conn.buf
    );
}

#[tokio::test]
async fn loading_answers_503_in_each_protocols_shape() {
    // Loading forever: nothing here depends on timing.
    let sim = start(fast().loading_for(Duration::from_secs(3600)));
    let health = get(sim.addr(), "/health").await;
    assert_eq!(health.status, 503);
    assert_eq!(
        health.json(),
        json!({"error": {"message": "Loading model", "type": "unavailable_error", "code": 503}})
    );
    assert_eq!(get(sim.addr(), "/props").await.status, 503);
    let reply = post(
        sim.addr(),
        "/v1/chat/completions",
        chat("hi", Some(2), true, false),
    )
    .await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.json()["error"]["type"], "unavailable_error");
    let reply = post(
        sim.addr(),
        "/api/chat",
        json!({"messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(reply.status, 503);
    assert!(reply.json()["error"].is_string());
    let reply = post(sim.addr(), "/generate", json!({"inputs": "hi"})).await;
    assert_eq!(reply.status, 503);
    assert!(reply.json()["error_type"].is_string());
    // Ollama's probes keep answering; no model is loaded yet.
    assert_eq!(get(sim.addr(), "/api/version").await.status, 200);
    assert_eq!(
        get(sim.addr(), "/api/ps").await.json(),
        json!({"models": []})
    );
    let truth = sim.truth();
    assert_eq!(truth.len(), 3);
    assert!(truth
        .iter()
        .all(|t| t.status == Some(503) && t.fault.is_none() && t.output_tokens == 0));

    let sim = start(
        fast()
            .protocols(&[Protocol::Tgi])
            .loading_for(Duration::from_secs(3600)),
    );
    let health = get(sim.addr(), "/health").await;
    assert_eq!(health.status, 503);
    assert_eq!(
        health.json(),
        json!({"error": "unhealthy", "error_type": "healthcheck"})
    );
}

#[tokio::test]
async fn loading_ends_and_then_it_serves() {
    let sim = start(fast().loading_for(Duration::from_millis(200)));
    let ready = tokio::time::timeout(LIMIT, async {
        loop {
            if get(sim.addr(), "/health").await.status == 200 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(ready.is_ok(), "healthy after loading");
    let reply = post(
        sim.addr(),
        "/api/generate",
        json!({"prompt": "hi", "stream": false}),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(sim.truth().last().and_then(|t| t.status), Some(200));
}
