//! The SSE decoder: never panics, and a body fed in two reads (split where
//! its first byte says) or byte by byte gives the events it gives whole.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmbench::engine::wire::{SseDecoder, SseItem};

fn decode(reads: &[&[u8]]) -> (Vec<SseItem>, bool) {
    let mut d = SseDecoder::new();
    let mut out = Vec::new();
    for read in reads {
        d.feed(read, &mut out);
    }
    (out, d.has_partial())
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, body)) = data.split_first() else {
        return;
    };
    let whole = decode(&[body]);
    let at = usize::from(cut).min(body.len());
    let (a, b) = body.split_at(at);
    assert_eq!(decode(&[a, &[], b]), whole, "split at {at}");
    let bytes: Vec<&[u8]> = body.chunks(1).collect();
    assert_eq!(decode(&bytes), whole, "byte by byte");
});
