//! `llmbench check`, `models` and `request` start an engine that has an
//! `[engine.launch]` table and is not up yet, as the bench harness does,
//! and stop it when done. The engine here is `llmbench sim` itself.
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const LLMBENCH: &str = env!("CARGO_BIN_EXE_llmbench");

/// A free port below Linux's ephemeral range, so nothing bound to port 0
/// takes it once the launched engine lets it go.
fn free_port() -> u16 {
    let start = std::process::id().wrapping_mul(7919);
    (0..12_000u32)
        .map(|i| 20_000 + (start.wrapping_add(i.wrapping_mul(104_729)) % 12_000) as u16)
        .find(|&p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
        .unwrap()
}

/// An engines file in `dir` naming one engine the harness launches:
/// `llmbench sim` on a free port.
fn engines_file(dir: &Path) -> (PathBuf, u16) {
    std::fs::create_dir_all(dir).unwrap();
    let port = free_port();
    let file = dir.join("engines.toml");
    let text = format!(
        r#"
[[engine]]
kind = "openai"
url = "http://127.0.0.1:{port}"
model = "llmbench-sim"
name = "launched"
[engine.launch]
command = "{LLMBENCH}"
args = ["sim", "--port", "{port}", "--itl-ms", "1"]
startup_timeout_s = 30
"#
    );
    std::fs::write(&file, text).unwrap();
    (file, port)
}

fn llmbench(args: &[&str], engines: &Path) -> (Output, String) {
    let out = Command::new(LLMBENCH)
        .args(args)
        .arg("--engines")
        .arg(engines)
        .env_remove("LLMBENCH_ENGINE")
        .env_remove("LLMBENCH_ENGINES")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

fn answers(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

#[test]
fn check_models_and_request_start_a_launched_engine_and_stop_it() {
    let dir = std::env::temp_dir().join(format!("llmbench-cli-launch-{}", std::process::id()));
    let (file, port) = engines_file(&dir);
    assert!(!answers(port));

    let (out, t) = llmbench(&["check"], &file);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("llmbench: starting `launched`"), "{t}");
    let row = t.lines().find(|l| l.starts_with("launched")).unwrap();
    assert!(row.contains("up (launched)"), "{row}");
    assert!(row.contains("llmbench-sim"), "{row}");
    assert!(!answers(port), "stopped after the check");

    let (out, t) = llmbench(&["models"], &file);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("llmbench-sim"), "{t}");
    assert!(!answers(port), "stopped after listing models");

    let (out, t) = llmbench(
        &["request", "Say hi.", "--max-tokens", "4", "--json"],
        &file,
    );
    assert!(out.status.success(), "{t}");
    let json = String::from_utf8_lossy(&out.stdout);
    let record: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(record["success"], true, "{record}");
    assert_eq!(record["output_tokens"], 4, "{record}");
    assert!(!answers(port), "stopped after the request");

    // An engine that cannot start is down, and says why.
    let broken = std::fs::read_to_string(&file)
        .unwrap()
        .replace(r#"args = ["sim""#, r#"args = ["no-such-command""#);
    std::fs::write(&file, broken).unwrap();
    let (out, t) = llmbench(&["check"], &file);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains("DOWN (launch failed)"), "{t}");
    std::fs::remove_dir_all(dir).unwrap();
}
