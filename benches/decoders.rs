//! How fast each adapter decodes real responses: complete responses
//! (records) per second and events per second through `engine::decode`, on
//! the recorded transcripts in `../shared/fixtures`. `cargo bench --bench
//! decoders` measures; `cargo test --benches` runs each case once.
//! Arguments that are not flags filter the cases by name, as libtest does.

use std::time::{Duration, Instant};

use llmbench::engine::decode::decode;
use llmbench::engine::EngineKind;
use llmbench::Mode;

const CASES: [(&str, EngineKind, Mode, &str); 6] = [
    (
        "openai_chat_sse",
        EngineKind::OpenAi,
        Mode::Chat,
        "llamacpp/v1_chat_stream_concurrent_b.sse",
    ),
    (
        "openai_completions_sse",
        EngineKind::OpenAi,
        Mode::Completion,
        "vllm/completions_stream_usage_null.sse",
    ),
    (
        "llamacpp_native_sse",
        EngineKind::LlamaCpp,
        Mode::Completion,
        "llamacpp/completion_stream_sse_ping.sse",
    ),
    (
        "ollama_chat_ndjson",
        EngineKind::Ollama,
        Mode::Chat,
        "ollama/chat_stream_long_203_tokens.ndjson",
    ),
    (
        "tgi_generate_sse",
        EngineKind::Tgi,
        Mode::Completion,
        "tgi/generate_stream_details.sse",
    ),
    (
        "tgi_chat_sse",
        EngineKind::Tgi,
        Mode::Chat,
        "tgi/chat_stream.sse",
    ),
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let measure = args.iter().any(|a| a == "--bench");
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    println!("decoders: complete responses and events per second, one thread");
    for (name, kind, route, path) in CASES {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let full = format!("{}/../shared/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
        let body = match std::fs::read(&full) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("decoders: {full}: {e}");
                std::process::exit(1);
            }
        };
        let check = decode(kind, route, &body);
        if let Some(err) = &check.error {
            eprintln!("decoders: {name}: {path} does not decode: {}", err.message);
            std::process::exit(1);
        }
        let events = check.content_at.len().max(1) as f64;
        if !measure {
            println!("test {name} ... ok");
            continue;
        }
        // Warm up, then decode for about a second.
        for _ in 0..100 {
            std::hint::black_box(decode(kind, route, std::hint::black_box(&body)));
        }
        let started = Instant::now();
        let mut n = 0u64;
        while started.elapsed() < Duration::from_secs(1) {
            for _ in 0..100 {
                std::hint::black_box(decode(kind, route, std::hint::black_box(&body)));
            }
            n += 100;
        }
        let secs = started.elapsed().as_secs_f64();
        let per_s = n as f64 / secs;
        println!(
            "{name:<24} {per_s:>10.0} responses/s {:>12.0} content events/s {:>8.1} MB/s  ({} bytes, {} content events)",
            per_s * events,
            per_s * body.len() as f64 / 1e6,
            body.len(),
            events
        );
    }
}
