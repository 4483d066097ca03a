//! Scenario files (YAML and TOML, the same bytes read as each): never
//! panic, and an error names the file.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for file in ["fuzz-scenarios/s.yaml", "fuzz-scenarios/s.toml"] {
        if let Err(e) = llmbench::scenario::parse(&text, Path::new(file)) {
            assert!(e.to_string().contains(file), "{e}");
        }
    }
});
