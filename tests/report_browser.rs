//! `report.html` in a real browser: a run of several scenarios (a sweep and
//! a spike among them) is rendered by headless Chromium, which must log
//! nothing to its console, and the page's own check must find every chart
//! drawn. A screenshot is kept in `target/llmbench-test/report.png`.
//!
//! Ignored by a plain `cargo test` (a bare machine has no browser);
//! `scripts/test` installs Debian's `chromium` and runs it with
//! `--ignored`, where a missing browser is a failure. `LLMBENCH_CHROMIUM`
//! names another binary.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test that cannot proceed should panic

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const FIXTURE: &str = env!("CARGO_BIN_EXE_harness-fixture");

fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("LLMBENCH_CHROMIUM") {
        return PathBuf::from(path);
    }
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        let found = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .find(|p| p.is_file())
        });
        if let Some(path) = found {
            return path;
        }
    }
    panic!(
        "no Chromium found (chromium, chromium-browser or google-chrome on PATH, or \
         LLMBENCH_CHROMIUM): install Debian's `chromium`; scripts/test does it when run as root"
    );
}

fn headless(browser: &Path, args: &[&str]) -> (String, String) {
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", browser.display()));
    assert!(
        out.status.success(),
        "{} failed: {out:?}",
        browser.display()
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
#[ignore = "needs Chromium: scripts/test installs it and runs this with --ignored"]
fn the_html_report_renders_in_chromium_with_every_chart_drawn() {
    let browser = chromium();
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-browser");
    let _ = std::fs::remove_dir_all(&target);
    let out = Command::new(FIXTURE)
        .args(["--bench", "--out", target.to_str().unwrap()])
        .args(["--skip", "bad_", "--skip", "slow", "--skip", "streams"])
        .args([
            "--skip",
            "seq_capacity",
            "--skip",
            "slo_missed",
            "--skip",
            "cmp_throughput",
            "--skip",
            "shard_",
            "--skip",
            "in_flight",
        ])
        .env_remove("LLMBENCH_ENGINE")
        .env_remove("LLMBENCH_ENGINES")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = std::fs::read_dir(&target)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let html = dir.join("report.html");
    let page = std::fs::read_to_string(&html).unwrap();
    for fetch in ["<link", " src=", " href=", "@import", "url("] {
        assert!(
            !page.contains(fetch),
            "nothing is fetched, yet the page has `{fetch}`"
        );
    }
    let url = format!("file://{}", html.display());

    let (dom, log) = headless(&browser, &["--window-size=1000,3000", "--dump-dom", &url]);
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(
        console.is_empty(),
        "the page logged to the console: {console:#?}"
    );
    let check = dom
        .split("<pre id=\"llmbench-check\" hidden=\"\">")
        .nth(1)
        .and_then(|rest| rest.split("</pre>").next())
        .unwrap_or_else(|| panic!("the page's check did not run:\n{dom}"));
    let check: Value = serde_json::from_str(check).unwrap();
    let charts = check["charts"].as_u64().unwrap();
    let scenarios = page.matches("<section><h2>").count() as u64;
    // Six charts per scenario with successful requests, two per sweep.
    assert!(charts >= 6 * 4 + 2, "{check} ({scenarios} sections)");
    assert_eq!(check["drawn"], charts, "every chart drew: {check}");

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("../llmbench-test");
    std::fs::create_dir_all(&shots).unwrap();
    let png = shots.join("report.png");
    let shot = format!("--screenshot={}", png.display());
    headless(&browser, &["--window-size=1000,6000", &shot, &url]);
    let bytes = std::fs::read(&png).unwrap();
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
        "a real screenshot"
    );
    println!("screenshot: {}", png.canonicalize().unwrap().display());
}
