//! Every engine's response decoder (OpenAI, Ollama, TGI, llama.cpp, chat
//! and completion routes), streamed or whole: never panics. The first byte
//! picks the engine and route, the rest is the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmbench::engine::decode::decode;
use llmbench::{EngineKind, Mode};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let kind = match pick % 4 {
        0 => EngineKind::OpenAi,
        1 => EngineKind::Ollama,
        2 => EngineKind::Tgi,
        _ => EngineKind::LlamaCpp,
    };
    let mode = if pick & 4 == 0 {
        Mode::Chat
    } else {
        Mode::Completion
    };
    let ex = decode(kind, mode, body);
    if let Some(err) = ex.error {
        assert!(!err.message.is_empty(), "an error says what is wrong");
    }
});
