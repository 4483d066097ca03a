//! Seeded property tests (issue 10): a stream fed to the SSE and NDJSON
//! decoders in any split of its bytes gives the same events as fed whole;
//! the response decoders of every engine, the Prometheus parser and the
//! baseline parser never panic, whatever bytes they get.
//!
//! The inputs are the recorded engine transcripts in `../shared/fixtures`
//! and random streams built from the wire grammar, both mutated at random,
//! from a fixed seed per case: a failure names the case's seed, and
//! `LLMBENCH_PROPERTY_CASES` sets how many cases run (default 1000 per
//! property). The fuzz targets under `fuzz/` search the same properties
//! for longer.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use llmbench::engine::decode::decode;
use llmbench::engine::wire::{NdjsonDecoder, SseDecoder, SseItem};
use llmbench::EngineKind;
use llmbench::Mode;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn cases() -> u64 {
    std::env::var("LLMBENCH_PROPERTY_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures")
}

/// Every fixture file whose name ends in one of `exts`.
fn fixtures(exts: &[&str]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let root = fixtures_dir();
    let engines = std::fs::read_dir(&root).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the fixtures sit beside the checkout)",
            root.display()
        )
    });
    for engine in engines {
        let engine = engine.unwrap().path();
        if !engine.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&engine).unwrap() {
            let path = file.unwrap().path();
            let name = path.to_string_lossy().into_owned();
            if exts.iter().any(|e| name.ends_with(e)) {
                out.push((name, std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    assert!(
        !out.is_empty(),
        "no {exts:?} fixtures in {}",
        root.display()
    );
    out
}

/// A random SSE body from the grammar's pieces: fields with and without
/// the space, comments, multi-line data, every line ending, blank lines,
/// stray bytes (also invalid UTF-8) and sometimes a cut last line.
fn random_sse(rng: &mut ChaCha8Rng) -> Vec<u8> {
    const PIECES: &[&[u8]] = &[
        b"data: {\"a\":1}",
        b"data:{\"b\":[2]}",
        b"data: [DONE]",
        b"data:",
        b"data",
        b"event: error",
        b"event:ping",
        b": keep-alive",
        b":",
        b"id: 7",
        b"retry: 10",
        b"data: caf\xc3\xa9",
        b"data: \xff\xfe",
        b"  data: x",
    ];
    const ENDS: &[&[u8]] = &[b"\n", b"\r", b"\r\n", b"\n\n", b"\r\n\r\n", b"\r\r"];
    let mut body = Vec::new();
    for _ in 0..rng.random_range(0..24) {
        body.extend_from_slice(PIECES[rng.random_range(0..PIECES.len())]);
        body.extend_from_slice(ENDS[rng.random_range(0..ENDS.len())]);
    }
    if rng.random_bool(0.3) {
        body.extend_from_slice(b"data: cut");
    }
    body
}

/// A random NDJSON body: JSON lines, blank and whitespace lines, CRLF,
/// stray bytes, sometimes no final newline.
fn random_ndjson(rng: &mut ChaCha8Rng) -> Vec<u8> {
    const PIECES: &[&[u8]] = &[
        b"{\"message\":{\"content\":\"hi\"},\"done\":false}",
        b"{\"done\":true,\"eval_count\":3}",
        b"{\"error\":\"boom\"}",
        b"{not json",
        b"",
        b"   ",
        b"\t",
        b"\xff\xfe",
        b"caf\xc3\xa9",
    ];
    const ENDS: &[&[u8]] = &[b"\n", b"\r\n", b"\n\n"];
    let mut body = Vec::new();
    for _ in 0..rng.random_range(0..24) {
        body.extend_from_slice(PIECES[rng.random_range(0..PIECES.len())]);
        body.extend_from_slice(ENDS[rng.random_range(0..ENDS.len())]);
    }
    if rng.random_bool(0.3) {
        body.extend_from_slice(b"{\"done\":fal");
    }
    body
}

/// `bytes` with a few random edits: bytes flipped, inserted, removed, or
/// the tail cut.
fn mutate(rng: &mut ChaCha8Rng, bytes: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    for _ in 0..rng.random_range(0..4) {
        let at = rng.random_range(0..=out.len());
        match rng.random_range(0..4) {
            0 if at < out.len() => out[at] = rng.random(),
            1 => out.insert(at, rng.random()),
            2 if at < out.len() => {
                out.remove(at);
            }
            _ => out.truncate(at),
        }
    }
    out
}

/// Random cut points of `len` bytes: sometimes every byte, sometimes none,
/// otherwise a few.
fn splits(rng: &mut ChaCha8Rng, len: usize) -> Vec<usize> {
    match rng.random_range(0..6) {
        0 => (1..len).collect(),
        1 => Vec::new(),
        _ => {
            let mut cuts: Vec<usize> = (0..rng.random_range(1..8))
                .map(|_| rng.random_range(0..=len))
                .collect();
            cuts.sort_unstable();
            cuts
        }
    }
}

/// `bytes` as the reads `cuts` make of them (empty reads included).
fn reads<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut from = 0;
    for &cut in cuts {
        out.push(&bytes[from..cut]);
        from = cut;
    }
    out.push(&bytes[from..]);
    out
}

fn sse_in(chunks: &[&[u8]]) -> (Vec<SseItem>, bool) {
    let mut d = SseDecoder::new();
    let mut out = Vec::new();
    for chunk in chunks {
        d.feed(chunk, &mut out);
    }
    (out, d.has_partial())
}

fn ndjson_in(chunks: &[&[u8]]) -> (Vec<String>, bool, Option<String>) {
    let mut d = NdjsonDecoder::new();
    let mut out = Vec::new();
    for chunk in chunks {
        d.feed(chunk, &mut out);
    }
    let partial = d.has_partial();
    (out, partial, d.finish())
}

/// The property over recorded and random bodies, one seeded case at a time.
fn each_case(
    name: &str,
    recorded: &[(String, Vec<u8>)],
    random: fn(&mut ChaCha8Rng) -> Vec<u8>,
    check: impl Fn(&str, &[u8], &mut ChaCha8Rng),
) {
    for seed in 0..cases() {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (what, body) = if !recorded.is_empty() && rng.random_bool(0.5) {
            let (file, bytes) = &recorded[rng.random_range(0..recorded.len())];
            (format!("{file} mutated"), mutate(&mut rng, bytes))
        } else {
            ("a random body".to_string(), random(&mut rng))
        };
        check(&format!("{name}: seed {seed}, {what}"), &body, &mut rng);
    }
}

#[test]
fn sse_events_do_not_depend_on_how_the_bytes_are_split() {
    let recorded = fixtures(&[".sse"]);
    each_case("sse", &recorded, random_sse, |case, body, rng| {
        let whole = sse_in(&[body]);
        let cuts = splits(rng, body.len());
        assert_eq!(sse_in(&reads(body, &cuts)), whole, "{case}, cuts {cuts:?}");
    });
}

#[test]
fn ndjson_lines_do_not_depend_on_how_the_bytes_are_split() {
    let recorded = fixtures(&[".ndjson"]);
    each_case("ndjson", &recorded, random_ndjson, |case, body, rng| {
        let whole = ndjson_in(&[body]);
        let cuts = splits(rng, body.len());
        assert_eq!(
            ndjson_in(&reads(body, &cuts)),
            whole,
            "{case}, cuts {cuts:?}"
        );
    });
}

/// Every engine's decoder, on both routes, takes any body without a panic.
#[test]
fn engine_response_decoders_never_panic() {
    let recorded = fixtures(&[".sse", ".ndjson", ".json"]);
    let random = |rng: &mut ChaCha8Rng| {
        if rng.random_bool(0.5) {
            random_sse(rng)
        } else {
            random_ndjson(rng)
        }
    };
    each_case("decode", &recorded, random, |case, body, _| {
        for kind in [
            EngineKind::OpenAi,
            EngineKind::Ollama,
            EngineKind::Tgi,
            EngineKind::LlamaCpp,
        ] {
            for mode in [Mode::Chat, Mode::Completion] {
                let ex = decode(kind, mode, body);
                if let Some(err) = ex.error {
                    assert!(!err.message.is_empty(), "{case}: {kind:?} {mode:?}");
                }
            }
        }
    });
}

#[test]
fn prometheus_parser_never_panics() {
    let recorded = fixtures(&[".txt", ".prom"]);
    let random = |rng: &mut ChaCha8Rng| {
        let lines: &[&[u8]] = &[
            b"# HELP x y",
            b"# TYPE x gauge",
            b"x 1",
            b"x{a=\"b\"} 2.5",
            b"x{a=\"b\\\"c\",d=\"\"} NaN 1700000000",
            b"x{a=\"b\"",
            b"x +Inf",
            b"x -1e400",
            b"{} 1",
            b"\xff",
        ];
        let mut text = Vec::new();
        for _ in 0..rng.random_range(0..16) {
            text.extend_from_slice(lines[rng.random_range(0..lines.len())]);
            text.push(b'\n');
        }
        text
    };
    each_case("prometheus", &recorded, random, |_, body, _| {
        let _ = llmbench::monitor::prometheus::parse(&String::from_utf8_lossy(body));
    });
}

#[test]
fn baseline_parser_never_panics() {
    let recorded = fixtures(&[".json"]);
    let random = |rng: &mut ChaCha8Rng| {
        let mut text =
            br#"{"schema":1,"name":"main","saved_at":"2026-01-01T00:00:00Z","sets":[]}"#.to_vec();
        if rng.random_bool(0.5) {
            text = text[..rng.random_range(0..text.len())].to_vec();
        }
        text
    };
    let path = Path::new("baseline.json");
    each_case("baseline", &recorded, random, |case, body, _| {
        if let Err(e) = llmbench::baseline::parse(&String::from_utf8_lossy(body), path) {
            assert!(
                e.to_string().contains("baseline.json"),
                "{case}: the error names the file: {e}"
            );
        }
    });
}
