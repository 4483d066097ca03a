//! The baseline parser (`baseline.json`): never panics, and an error names
//! the file.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Err(e) = llmbench::baseline::parse(&text, Path::new("fuzz/baseline.json")) {
        assert!(e.to_string().contains("fuzz/baseline.json"), "{e}");
    }
});
