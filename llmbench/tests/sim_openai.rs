//! The simulator's OpenAI-compatible routes seen from the wire, through the
//! raw client in `sim_support` (not llmbench's client): routes, stream
//! format, token counts, prompt-dependent TTFT, keep-alive, determinism.

mod sim_support;

use std::time::{Duration, Instant};

use llmbench::sim::{Itl, OutputLen, Protocol, SimConfig, Truth};
use serde_json::json;
use sim_support::*;
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn health_and_models() {
    let sim = start(SimConfig::new().model("tiny"));
    assert_eq!(sim.model(), "tiny");
    assert_eq!(sim.url(), format!("http://127.0.0.1:{}", sim.addr().port()));

    let health = call(sim.addr(), "GET", "/health", None).await;
    assert_eq!(health.status, 200);
    assert_eq!(health.json(), json!({"status": "ok"}));

    let models = call(sim.addr(), "GET", "/v1/models", None).await;
    assert_eq!(models.status, 200);
    assert_eq!(models.header("content-type"), Some("application/json"));
    let models = models.json();
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"][0]["id"], "tiny");
    assert_eq!(models["data"][0]["object"], "model");
    assert_eq!(models["data"][0]["owned_by"], "llmbench");
    assert!(models["data"][0]["created"].as_u64().is_some());
    assert_eq!(sim.requests_seen(), 0, "probes are not generation requests");
}

#[tokio::test]
async fn chat_stream_sends_role_tokens_finish_usage_done() {
    let sim = start(fast());
    let reply = call(
        sim.addr(),
        "POST",
        "/v1/chat/completions",
        Some(chat("Name three colors.", Some(5), true, true)),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("text/event-stream"));
    assert!(reply.complete);
    assert!(reply.body.ends_with(b"data: [DONE]\n\n"));
    let events = reply.event_values();
    assert_eq!(events.len(), 1 + 5 + 1 + 1 + 1, "{events:?}");

    let truth = &sim.truth()[0];
    assert_eq!(truth.id, "chatcmpl-sim-1");
    for event in &events[..8] {
        assert_eq!(event["id"], truth.id.as_str());
        assert_eq!(event["model"], "llmbench-sim");
    }
    assert_eq!(events[0]["object"], "chat.completion.chunk");
    assert_eq!(
        events[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    let words = contents(&events);
    assert_eq!(words.len(), 5);
    assert!(words.iter().all(|w| w.starts_with(' ') && w.len() > 1));
    assert_eq!(events[6]["choices"][0]["delta"], json!({}));
    assert_eq!(events[6]["choices"][0]["finish_reason"], "length");
    assert_eq!(events[7]["choices"], json!([]));
    assert_eq!(
        events[7]["usage"],
        json!({"prompt_tokens": 4 + 8 + 3, "completion_tokens": 5, "total_tokens": 20})
    );
    assert_eq!(events[8], json!("[DONE]"));

    assert_eq!(truth.prompt_tokens, 15);
    assert_eq!(truth.output_tokens, 5);
    assert!(truth.stream);
    assert_eq!(truth.token_written_at.len(), 5);
    assert!(truth.finished_at.is_some());
    assert_eq!(truth.fault, None);
    assert_eq!(truth.protocol, Protocol::OpenAi);
    assert_eq!(truth.route, "/v1/chat/completions");
    assert_eq!(truth.status, Some(200));
    assert_eq!(reply.header("x-request-id"), Some("chatcmpl-sim-1"));
    assert_eq!(
        truth.first_token_at,
        truth.token_written_at.first().copied()
    );
    assert_eq!(truth.last_token_at, truth.token_written_at.last().copied());
    // The truth of each token is never later than the client saw it.
    for (k, written) in truth.token_written_at.iter().enumerate() {
        assert!(*written <= reply.events[1 + k].1, "token {k}");
    }
}

#[tokio::test]
async fn chat_stream_without_max_tokens_has_16_tokens_and_stops() {
    let sim = start(fast());
    let reply = call(
        sim.addr(),
        "POST",
        "/v1/chat/completions",
        Some(chat("hi", None, true, false)),
    )
    .await;
    let events = reply.event_values();
    assert_eq!(contents(&events).len(), 16);
    assert_eq!(events.len(), 1 + 16 + 1 + 1, "no usage chunk unless asked");
    assert_eq!(events[17]["choices"][0]["finish_reason"], "stop");
    assert!(events.iter().all(|e| e.get("usage").is_none()));
}

#[tokio::test]
async fn token_count_follows_max_tokens_under_from_request() {
    let sim = start(fast().itl(Itl::Constant(Duration::ZERO)));
    for n in [1, 7, 40] {
        let reply = call(
            sim.addr(),
            "POST",
            "/v1/chat/completions",
            Some(chat("hi", Some(n), true, false)),
        )
        .await;
        assert_eq!(contents(&reply.event_values()).len(), n as usize);
    }
    let outputs: Vec<u32> = sim.truth().iter().map(|t| t.output_tokens).collect();
    assert_eq!(outputs, [1, 7, 40]);
}

#[tokio::test]
async fn completion_stream_has_no_role_chunk() {
    let sim = start(fast());
    let reply = call(
        sim.addr(),
        "POST",
        "/v1/completions",
        Some(
            json!({"prompt": "Once upon a time", "max_tokens": 4, "stream": true,
                    "stream_options": {"include_usage": true}}),
        ),
    )
    .await;
    assert!(reply.complete);
    let events = reply.event_values();
    assert_eq!(events.len(), 4 + 1 + 1 + 1, "{events:?}");
    for event in &events[..6] {
        assert_eq!(event["id"], "cmpl-sim-1");
        assert_eq!(event["object"], "text_completion");
    }
    assert_eq!(contents(&events).len(), 4);
    assert_eq!(events[4]["choices"][0]["text"], "");
    assert_eq!(events[4]["choices"][0]["finish_reason"], "length");
    assert_eq!(events[5]["usage"]["prompt_tokens"], 4);
    assert_eq!(events[5]["usage"]["completion_tokens"], 4);
    assert_eq!(events[6], json!("[DONE]"));
    assert_eq!(sim.truth()[0].id, "cmpl-sim-1");
}

#[tokio::test]
async fn non_stream_answers_in_one_body_with_usage() {
    let sim = start(fast());
    let started = Instant::now();
    let reply = call(
        sim.addr(),
        "POST",
        "/v1/chat/completions",
        Some(chat("What is 2+2?", Some(6), false, false)),
    )
    .await;
    let elapsed = started.elapsed();
    assert_eq!(reply.status, 200);
    assert!(reply.header("content-length").is_some());
    let body = reply.json();
    let truth = &sim.truth()[0];
    assert_eq!(body["id"], truth.id.as_str());
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["message"]["role"], "assistant");
    let content = body["choices"][0]["message"]["content"]
        .as_str()
        .expect("content");
    assert_eq!(content.split_whitespace().count(), 6);
    assert_eq!(body["choices"][0]["finish_reason"], "length");
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 17, "completion_tokens": 6, "total_tokens": 23})
    );
    assert!(!truth.stream);
    assert!(truth.token_written_at.is_empty());
    let first = truth.first_token_at.expect("first token due");
    let last = truth.last_token_at.expect("last token due");
    assert!(first - truth.started_at.expect("started") >= Duration::from_millis(5));
    // Deadlines are absolute: the last token is never early, though the
    // first may be late (so the gap between them can be short).
    assert!(
        last - truth.started_at.expect("started")
            >= Duration::from_millis(5) + 5 * Duration::from_millis(2)
    );
    assert!(last >= first);
    assert_eq!(truth.finished_at.map(|f| f >= last), Some(true));
    // Prefill then five gaps, all before the body was sent.
    let model =
        Duration::from_millis(5) + Duration::from_micros(170) + 5 * Duration::from_millis(2);
    let started_at = truth.started_at.expect("started");
    assert!(truth.finished_at.expect("finished") - started_at >= model);
    assert!(elapsed >= model);

    let reply = call(
        sim.addr(),
        "POST",
        "/v1/completions",
        Some(json!({"prompt": "One, two, three,", "max_tokens": 3})),
    )
    .await;
    let body = reply.json();
    assert_eq!(body["id"], "cmpl-sim-2");
    assert_eq!(body["object"], "text_completion");
    assert_eq!(
        body["choices"][0]["text"]
            .as_str()
            .map(|t| t.split_whitespace().count()),
        Some(3)
    );
    assert_eq!(body["usage"]["prompt_tokens"], 6);
}

#[tokio::test]
async fn ttft_grows_with_prompt_and_is_never_early() {
    let per_token = Duration::from_micros(200);
    let base = Duration::from_millis(10);
    let sim = start(
        SimConfig::new()
            .ttft_base(base)
            .per_prompt_token(per_token)
            .itl(Itl::Constant(Duration::from_millis(1))),
    );
    let long = "word ".repeat(500);
    for prompt in ["short", long.as_str()] {
        call(
            sim.addr(),
            "POST",
            "/v1/chat/completions",
            Some(chat(prompt, Some(2), true, false)),
        )
        .await;
    }
    let truth = sim.truth();
    let ttft = |t: &Truth| t.token_written_at[0] - t.started_at.expect("started");
    for t in &truth {
        let model = base + per_token * t.prompt_tokens;
        assert!(ttft(t) >= model, "{:?} < {model:?}", ttft(t));
    }
    assert_eq!(truth[0].prompt_tokens, 1 + 11);
    assert_eq!(truth[1].prompt_tokens, 500 + 11);
    // The bound above is what makes long prompts slow: 499 more tokens at
    // 200 µs put the long prompt's first token at least ~100 ms later than
    // the short prompt's model. (Comparing the two measured TTFTs instead
    // would fail whenever the short one happens to be late.)
    assert!(ttft(&truth[1]) >= base + per_token * truth[0].prompt_tokens + per_token * 499);
}

#[tokio::test]
async fn role_chunk_arrives_before_prefill_ends() {
    // Prefill takes a minute: the role chunk must come long before.
    let sim = start(fast().ttft_base(Duration::from_secs(60)));
    let mut conn = Conn::open(sim.addr()).await;
    conn.send(
        "POST",
        "/v1/chat/completions",
        Some(&chat("hi", Some(2), true, false)),
    )
    .await;
    tokio::time::timeout(LIMIT, async {
        conn.read_head().await;
        while find(&conn.buf, b"\n\n").is_none() {
            conn.fill().await;
            assert!(!conn.eof);
        }
    })
    .await
    .expect("role chunk arrives");
    let text = String::from_utf8_lossy(&conn.buf).into_owned();
    assert!(
        text.contains(r#""delta":{"role":"assistant","content":""}"#),
        "{text}"
    );
    assert!(sim.truth()[0].token_written_at.is_empty());
}

#[tokio::test]
async fn unknown_routes_and_bad_bodies_get_openai_errors() {
    let sim = start(fast());
    let reply = call(sim.addr(), "GET", "/v1/nonexistent", None).await;
    assert_eq!(reply.status, 404);
    let error = &reply.json()["error"];
    assert_eq!(error["type"], "not_found_error");
    assert_eq!(error["code"], 404);
    assert!(error["message"]
        .as_str()
        .is_some_and(|m| m.contains("/v1/nonexistent")));

    let mut conn = Conn::open(sim.addr()).await;
    let head =
        "POST /v1/chat/completions HTTP/1.1\r\nHost: sim\r\nContent-Length: 9\r\n\r\n{not json";
    conn.stream.write_all(head.as_bytes()).await.expect("write");
    let (status, headers) = conn.read_head().await;
    let reply = conn.read_body(status, headers).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"]["type"], "invalid_request_error");
    assert!(reply.json()["error"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("not valid JSON")));

    let reply = call(
        sim.addr(),
        "POST",
        "/v1/chat/completions",
        Some(json!({"model": "x", "max_tokens": 5})),
    )
    .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"]["message"], "'messages' is required");

    let reply = call(
        sim.addr(),
        "POST",
        "/v1/completions",
        Some(json!({"model": "x"})),
    )
    .await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["error"]["message"], "'prompt' is required");
    assert_eq!(
        sim.requests_seen(),
        0,
        "rejected bodies are not generation requests"
    );
}

#[tokio::test]
async fn keep_alive_serves_several_requests_on_one_connection() {
    let sim = start(fast());
    let mut conn = Conn::open(sim.addr()).await;
    for i in 1..=3u64 {
        let reply = tokio::time::timeout(
            LIMIT,
            conn.request(
                "POST",
                "/v1/chat/completions",
                Some(&chat("hi", Some(2), i % 2 == 0, false)),
            ),
        )
        .await
        .expect("in time");
        assert_eq!(reply.status, 200);
        assert!(reply.complete);
    }
    let health = conn.request("GET", "/health", None).await;
    assert_eq!(health.status, 200);
    assert_eq!(sim.requests_seen(), 3);
    let ids: Vec<String> = sim.truth().into_iter().map(|t| t.id).collect();
    assert_eq!(ids, ["chatcmpl-sim-1", "chatcmpl-sim-2", "chatcmpl-sim-3"]);
}

#[tokio::test]
async fn same_seed_same_answers() {
    let config = fast()
        .seed(11)
        .itl(Itl::Uniform {
            min: Duration::from_millis(1),
            max: Duration::from_millis(3),
        })
        .output_tokens(OutputLen::Uniform { min: 2, max: 12 });
    let mut texts = Vec::new();
    for config in [
        config.clone(),
        config,
        fast()
            .seed(12)
            .output_tokens(OutputLen::Uniform { min: 2, max: 12 }),
    ] {
        let sim = start(config);
        let mut text = String::new();
        for _ in 0..4 {
            let reply = call(
                sim.addr(),
                "POST",
                "/v1/chat/completions",
                Some(chat("hi", Some(100), false, false)),
            )
            .await;
            text.push_str(
                reply.json()["choices"][0]["message"]["content"]
                    .as_str()
                    .expect("text"),
            );
            text.push('|');
        }
        texts.push(text);
    }
    assert_eq!(texts[0], texts[1]);
    assert_ne!(texts[0], texts[2]);
}
