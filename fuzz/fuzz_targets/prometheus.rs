//! The Prometheus text-format parser (engines' `/metrics`): never panics;
//! an error names a line that exists.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Err(e) = llmbench::monitor::prometheus::parse(&text) {
        let lines = text.split('\n').count();
        assert!(
            e.line() >= 1 && e.line() <= lines,
            "line {} of {lines}",
            e.line()
        );
    }
});
