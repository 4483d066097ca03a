//! The reports a run writes (CSV, JSON, Markdown, run.json), read back as a
//! user's tools would read them; the reports of a killed run, rebuilt; and
//! an API key planted in the environment, found in no file.

use super::*;

/// `path` parsed as CSV: the header and the rows.
fn csv_of(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let header = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    (header, rows)
}

fn column(header: &[String], name: &str) -> usize {
    header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name} in {header:?}"))
}

#[test]
fn a_run_writes_csv_json_markdown_and_its_metadata() {
    let out_dir = temp_dir("reports");
    let out = fixture(&["--bench", "ok_", "--out", out_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let dir = run_dir(&out_dir);
    let recs = records(&dir);

    let (header, rows) = csv_of(&dir.join("sim_results.csv"));
    for name in [
        "request_id",
        "engine",
        "model",
        "scenario",
        "prompt_tokens",
        "completion_tokens",
        "total_duration_ms",
        "ttft_ms",
        "tokens_per_sec",
        "success",
        "error_message",
        "itl_mean_ms",
        "tpot_ms",
    ] {
        column(&header, name);
    }
    assert_eq!(rows.len(), recs.len(), "one row per request");
    let ttft = column(&header, "ttft_ms");
    for (row, rec) in rows.iter().zip(&recs) {
        let got: f64 = row[ttft].parse().unwrap();
        assert_eq!(Some(got), rec.ttft_ms, "the CSV holds the record's figures");
    }

    let (header, rows) = csv_of(&dir.join("summary.csv"));
    assert_eq!(rows.len(), 2, "ok_chat and ok_completion");
    let requests = column(&header, "requests");
    let total: u64 = rows
        .iter()
        .map(|r| r[requests].parse::<u64>().unwrap())
        .sum();
    assert_eq!(total, recs.len() as u64);
    column(&header, "p99_latency_ms");
    column(&header, "mean_tokens_per_sec");

    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("sim_results.json")).unwrap())
            .unwrap();
    assert_eq!(json["schema"], 1);
    assert_eq!(json["engine"], "sim");
    assert_eq!(json["trials"].as_array().unwrap().len(), 2);
    assert_eq!(json["requests"].as_array().unwrap().len(), recs.len());

    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.starts_with("# llmbench report\n"), "{md}");
    assert!(md.contains("\n## ok_chat\n"), "{md}");
    assert!(md.contains("| engine | ttft p50 |"), "{md}");
    assert!(md.contains("\n| sim | "), "{md}");
    assert!(md.contains("\n## Environment\n"), "{md}");

    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    assert_eq!(meta["schema"], 1);
    assert!(meta["ended_at"].is_string(), "{meta}");
    assert_eq!(meta["engines"][0]["name"], "sim");
    let names: Vec<&str> = meta["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ok_chat", "ok_completion"]);
    assert!(meta["host"]["cores"].as_u64().unwrap() >= 1);
    // This machine has no NVIDIA driver: run.json says so.
    assert!(
        meta["gpu"].as_str().unwrap().starts_with("no GPU ("),
        "{meta}"
    );
    // An OpenAI-compatible route has no version endpoint: null, not invented.
    assert!(meta["engines"][0]["version"].is_null(), "{meta}");
    std::fs::remove_dir_all(out_dir).unwrap();
}

#[cfg(unix)]
#[test]
fn the_reports_of_a_killed_run_are_rebuilt_from_its_records() {
    let out_dir = temp_dir("rebuild");
    let mut child = start_slow(&out_dir, 8);
    child.kill().unwrap(); // SIGKILL: no summary, no reports
    child.wait().unwrap();
    let dir = run_dir(&out_dir);
    assert!(!dir.join("summary.csv").exists());
    let written = llmbench::report::rebuild(&dir).unwrap();
    assert!(
        written
            .notes
            .iter()
            .any(|n| n.contains("scenario `slow` on `sim`")),
        "{:?}",
        written.notes
    );
    let recs = records(&dir);
    let (_, rows) = csv_of(&dir.join("sim_results.csv"));
    assert_eq!(rows.len(), recs.len());
    let (header, rows) = csv_of(&dir.join("summary.csv"));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][column(&header, "status")], "interrupted");
    assert_eq!(rows[0][column(&header, "requests")], recs.len().to_string());
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    assert!(md.contains("rebuilt from requests.jsonl"), "{md}");
    std::fs::remove_dir_all(out_dir).unwrap();
}

#[test]
fn a_planted_api_key_is_in_no_output_file() {
    const KEY: &str = "sk-planted-4f1d2c9e8b7a";
    let engine = Simulator::start(SimConfig::new()).unwrap();
    let out_dir = temp_dir("planted");
    let spec = format!(
        "openai={},name=keyed,api_key_env=LLMBENCH_PLANTED_KEY,price_per_hour=3.6",
        engine.url()
    );
    let out = fixture_command(&[
        "--bench",
        "ok_chat",
        "--engine",
        &spec,
        "--out",
        out_dir.to_str().unwrap(),
    ])
    .env("LLMBENCH_PLANTED_KEY", KEY)
    .output()
    .unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(!t.contains(KEY), "the key is not printed: {t}");
    let dir = run_dir(&out_dir);
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            files += 1;
            let content = std::fs::read(&path).unwrap();
            let found = content.windows(KEY.len()).any(|w| w == KEY.as_bytes());
            assert!(!found, "the key is in {}", path.display());
        }
    }
    assert!(files >= 7, "every output was checked ({files} files)");
    // The engine's price gives the cost of its output.
    let trial = &summary(&dir)["trials"][0];
    let cost = &trial["cost"];
    assert_eq!(cost["price_per_hour"], 3.6);
    let hours = trial["duration_s"].as_f64().unwrap() / 3600.0;
    assert!(
        (cost["run_cost"].as_f64().unwrap() - 3.6 * hours).abs() < 1e-9,
        "{cost}"
    );
    let tokens = trial["output_tokens"].as_f64().unwrap();
    let per_m = cost["per_million_output_tokens"].as_f64().unwrap();
    assert!(
        (per_m - 3.6 * hours / (tokens / 1e6)).abs() < 1e-6,
        "{cost}"
    );
    std::fs::remove_dir_all(out_dir).unwrap();
}
