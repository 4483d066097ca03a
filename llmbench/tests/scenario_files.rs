//! Scenario files as a user writes them: every file in `scenarios/` parses
//! and validates, a typo names its file, line and the fields allowed, and
//! `llmbench run` on a file writes a run directory.

#![allow(clippy::unwrap_used)] // a test that fails should panic

use std::path::{Path, PathBuf};
use std::process::Command;

use llmbench::prelude::*;
use llmbench::workload::Preset;

/// The repository's `scenarios/`.
fn library() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios")
}

/// Every scenario file under `dir`, sorted.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else if path
            .extension()
            .is_some_and(|e| e == "yaml" || e == "yml" || e == "toml")
        {
            found.push(path);
        }
    }
    found.sort();
    found
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("llmbench-scenfiles-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn every_file_in_the_library_parses_and_validates() {
    let files = files_under(&library());
    let mut names = Vec::new();
    let mut presets = Vec::new();
    let mut loads = Vec::new();
    for file in &files {
        let scenario = llmbench::scenario::load(file)
            .unwrap_or_else(|e| panic!("{}: {}", file.display(), e.chain()));
        let bench = scenario.bench().unwrap().validate().unwrap();
        names.push(scenario.name().to_string());
        presets.extend(bench.workload().preset_kind());
        loads.push(bench.load().clone());
    }
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "names repeat: {names:?}");
    for preset in [
        Preset::Chat,
        Preset::Creative,
        Preset::Rag,
        Preset::Document,
    ] {
        assert!(presets.contains(&preset), "no file uses {preset:?}");
    }
    for load in [
        Load::quick(),
        Load::stress(),
        Load::spike_test(),
        Load::endurance(),
    ] {
        assert!(loads.contains(&load), "no file uses {load:?}");
    }
}

/// `file`'s error, as the user sees it.
fn error_of(text: &str, file: &str) -> String {
    llmbench::scenario::parse(text, Path::new(file))
        .unwrap_err()
        .chain()
}

#[test]
fn a_typo_names_the_file_the_line_and_the_fields_allowed() {
    // A library file with one word mistyped, as a user would.
    let dir = temp_dir("typo");
    let chat = std::fs::read_to_string(library().join("chat.yaml")).unwrap();
    let typo = chat.replacen("  users:", "  userz:", 1);
    let line = typo.lines().position(|l| l.contains("userz")).unwrap() + 1;
    let path = dir.join("chat.yaml");
    std::fs::write(&path, &typo).unwrap();
    let err = llmbench::scenario::load(&path).unwrap_err().chain();
    let at = format!("{}:{line}:3: load: unknown field `userz`", path.display());
    assert!(err.contains(&at), "{err}");
    for allowed in ["`users`", "`rate`", "`for_secs`", "`requests`", "`preset`"] {
        assert!(err.contains(allowed), "{allowed} missing from: {err}");
    }

    let toml = "[workload]\npreset = \"chat\"\n\n[load]\nusers = 4\nfor_sec = 10\n";
    let err = error_of(toml, "chat.toml");
    assert!(
        err.contains("chat.toml:6:1: load: unknown field `for_sec`, expected one of"),
        "{err}"
    );
    assert!(err.contains("`for_secs`"), "{err}");

    let err = error_of("workload:\n  preset: chat\n  prompt_tokenz: 5\n", "a.yaml");
    assert!(
        err.contains("a.yaml:3:3: workload: unknown field `prompt_tokenz`"),
        "{err}"
    );
    assert!(err.contains("`prompt_tokens`"), "{err}");
    let err = error_of("workload:\n  preset: chatty\n", "a.yaml");
    assert!(
        err.contains("a.yaml:2:11: workload.preset: unknown variant `chatty`"),
        "{err}"
    );
    assert!(
        err.contains("`chat`, `creative`, `rag`, `document`"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_builders_checks_name_the_line_of_the_field() {
    let yaml = "workload:\n  preset: chat\nload:\n  rate: -1\n  for_secs: 10\n";
    let err = error_of(yaml, "s.yaml");
    assert!(
        err.contains("s.yaml:4:3: load.rate: must be positive (got -1)"),
        "{err}"
    );
    let toml = "[workload]\nprompts = [\"hi\"]\n[load]\nusers = 2\n";
    let err = error_of(toml, "s.toml");
    assert!(err.contains("s.toml:3:2: load: no end"), "{err}");
    let yaml = "workload:\n  preset: chat\n  prompts: [hi]\nload:\n  users: 1\n  requests: 1\n";
    let err = error_of(yaml, "s.yaml");
    assert!(
        err.contains("s.yaml:1:1: workload: give one of preset, prompts, template, jsonl, sharegpt, not preset and prompts"),
        "{err}"
    );
    let yaml = "workload:\n  preset: chat\nload:\n  users: 1\n  for_secs: -2\n";
    let err = error_of(yaml, "s.yaml");
    assert!(
        err.contains("s.yaml:5:13: load.for_secs: must be a number of seconds"),
        "{err}"
    );
    let yaml = "workload:\n  preset: chat\nload:\n  users: 1\n  requests: 2\nslo:\n  ttft_p95: 5\n";
    let err = error_of(yaml, "s.yaml");
    assert!(err.contains("unknown objective `ttft_p95`"), "{err}");
    assert!(err.contains("ttft_p95_ms"), "{err}");
}

#[test]
fn a_file_says_what_the_builder_says() {
    let yaml = "
name: long-chat
description: Chat with an objective.
seed: 7
workload:
  preset: rag
  prompt_tokens: [1024, 2048]
  exact_output: false
load:
  rate: 2.5
  poisson: true
  max_in_flight: 8
  for_secs: 30
  warmup_secs: 5
slo:
  ttft_p95_ms: 500
  itl_p99_9_ms: 40
fail_on_regression: [ttft p99]
";
    let scenario = llmbench::scenario::parse(yaml, Path::new("x/y.yaml")).unwrap();
    assert_eq!(scenario.name(), "long-chat");
    let got = scenario.bench().unwrap().validate().unwrap();
    let want = Bench::new()
        .workload(
            Workload::rag()
                .prompt_tokens([1024, 2048])
                .exact_output(false),
        )
        .load(
            Load::rate(2.5)
                .poisson()
                .max_in_flight(8)
                .for_secs(30)
                .warmup_secs(5),
        )
        .slo(Slo::ttft_p95_ms(500).itl_p99_9_ms(40))
        .seed(7)
        .validate()
        .unwrap();
    assert_eq!(got.load(), want.load());
    assert_eq!(got.slos(), want.slos());
    assert_eq!(got.seed(), 7);
    assert_eq!(
        got.workload().prompt_lengths(),
        want.workload().prompt_lengths()
    );
    assert_eq!(got.workload().preset_kind(), Some(Preset::Rag));

    let toml = "
[workload]
prompts = ['Say hello.']
max_tokens = 32
mode = 'completion'

[load]
users = 1
requests = 100
sweep = [1, 2, 4]
";
    let got = llmbench::scenario::parse(toml, Path::new("s.toml")).unwrap();
    let got = got.bench().unwrap().validate().unwrap();
    assert_eq!(got.load(), &Load::users(1).requests(100).sweep([1, 2, 4]));
    assert_eq!(got.workload().output_budget(), 32);
    assert_eq!(got.workload().mode(), llmbench::Mode::Completion);
}

#[test]
fn llmbench_run_writes_a_run_directory() {
    let out = temp_dir("run");
    let run = Command::new(env!("CARGO_BIN_EXE_llmbench"))
        .arg("run")
        .arg(library().join("chat.yaml"))
        .args(["--duration-scale", "0.2", "--no-monitor", "--out"])
        .arg(&out)
        .env_remove("LLMBENCH_ENGINE")
        .env_remove("LLMBENCH_ENGINES")
        .env_remove("LLMBENCH_DURATION_SCALE")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(run.status.success(), "{text}");
    assert!(text.contains("test chat/sim ... "), "{text}");
    let dirs: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "one run directory: {dirs:?}");
    let dir = &dirs[0];
    for file in ["requests.jsonl", "run.json", "report.md", "report.html"] {
        assert!(
            dir.join(file).is_file(),
            "{file} missing in {}",
            dir.display()
        );
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    let trial = &summary["trials"][0];
    assert_eq!(trial["scenario"], "chat");
    assert_eq!(trial["engine"], "sim");
    assert_eq!(trial["status"], "ok");
    assert_eq!(trial["workload"]["preset"], "chat");
    assert_eq!(trial["workload"]["primary_metric"], "ttft");
    assert!(trial["successes"].as_u64().unwrap() > 0, "{trial}");
    assert!(trial["description"].as_str().unwrap().starts_with("Chat"));
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn llmbench_run_refuses_a_bad_file_before_running_anything() {
    let dir = temp_dir("bad");
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[workload]\npreset = 'chat'\n[load]\nuserz = 2\n").unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_llmbench"))
        .arg("run")
        .arg(library().join("chat.yaml"))
        .arg(&bad)
        .arg(dir.join("missing.yaml"))
        .arg("--out")
        .arg(dir.join("out"))
        .env_remove("LLMBENCH_ENGINE")
        .env_remove("LLMBENCH_ENGINES")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(
        stderr.contains(&format!(
            "{}:4:1: load: unknown field `userz`",
            bad.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("missing.yaml"), "{stderr}");
    assert!(!dir.join("out").exists(), "nothing ran");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn steps_in_toml_and_a_dataset_beside_the_file() {
    let dir = temp_dir("dataset");
    std::fs::write(
        dir.join("prompts.jsonl"),
        "{\"prompt\": \"Say hello.\", \"max_tokens\": 8}\n{\"prompt\": \"Name a colour.\"}\n",
    )
    .unwrap();
    let file = dir.join("mine.toml");
    std::fs::write(
        &file,
        "[workload]\njsonl = 'prompts.jsonl'\n\n[[load.steps]]\nusers = 1\n\n[[load.steps]]\nusers = 4\n\n[load]\nrequests = 10\n",
    )
    .unwrap();
    let scenario = llmbench::scenario::load(&file).unwrap();
    let bench = scenario.bench().unwrap().validate().unwrap();
    assert_eq!(bench.workload().prompt_count(), 2);
    assert_eq!(
        bench.load(),
        &Load::steps([Load::users(1), Load::users(4)]).requests(10)
    );
    std::fs::write(
        &file,
        "[workload]\njsonl = 'missing.jsonl'\n[load]\nusers = 1\nrequests = 1\n",
    )
    .unwrap();
    let err = llmbench::scenario::load(&file).unwrap_err().chain();
    assert!(err.contains(&format!("{}:1:2", file.display())), "{err}");
    assert!(err.contains("missing.jsonl"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_template_with_cases_in_yaml_and_toml() {
    let yaml = "
workload:
  template: \"Write a story about {topic} in {style}, {{briefly}}.\"
  cases:
    - {topic: a lighthouse, style: verse}
    - topic: a night train
      style: prose
    - {topic: 42, style: true}
  prompt_tokens: 300
  shared_prefix_tokens: 200
load:
  users: 1
  requests: 3
";
    let bench = llmbench::scenario::parse(yaml, Path::new("t.yaml"))
        .unwrap()
        .bench()
        .unwrap()
        .validate()
        .unwrap();
    assert_eq!(bench.workload().prompt_count(), 3);
    assert_eq!(bench.workload().shared_prefix(), Some(200));
    assert_eq!(
        bench.workload().prompt_lengths(),
        Some(&llmbench::workload::Lengths::Fixed(300))
    );
    let toml = "
[workload]
template = 'About {topic}.'
cases = [{topic = 'bees'}, {topic = 'the sea'}]

[load]
users = 1
requests = 2
";
    let bench = llmbench::scenario::parse(toml, Path::new("t.toml"))
        .unwrap()
        .bench()
        .unwrap()
        .validate()
        .unwrap();
    assert_eq!(bench.workload().prompt_count(), 2);
}

#[test]
fn a_template_error_names_the_case_and_the_line() {
    let yaml = "
workload:
  template: About {topic} in {style}.
  cases:
    - {topic: bees, style: verse}
    - {topic: the sea}
load:
  users: 1
  requests: 1
";
    let err = error_of(yaml, "t.yaml");
    assert!(
        err.contains("t.yaml:4:3: workload.cases[1]: no value for `{style}`"),
        "{err}"
    );
    let toml = "[workload]\ntemplate = 'About {topic'\ncases = [{topic = 'x'}]\n[load]\nusers = 1\nrequests = 1\n";
    let err = error_of(toml, "t.toml");
    assert!(
        err.contains("t.toml:2:1: workload.template: unbalanced `{` at character 7"),
        "{err}"
    );
    let yaml = "workload:\n  template: About {topic}.\nload:\n  users: 1\n  requests: 1\n";
    let err = error_of(yaml, "t.yaml");
    assert!(err.contains("workload.template: needs `cases`"), "{err}");
    let yaml = "workload:\n  prompts: [hi]\n  multi_turn: true\nload:\n  users: 1\n  requests: 1\n";
    let err = error_of(yaml, "t.yaml");
    assert!(err.contains("t.yaml:3:3: workload.multi_turn"), "{err}");
}

#[test]
fn a_sharegpt_file_read_as_whole_conversations() {
    let dir = temp_dir("sharegpt");
    std::fs::write(
        dir.join("share.json"),
        r#"[{"conversations": [{"from": "human", "value": "Hi."},
                               {"from": "gpt", "value": "Hello."},
                               {"from": "human", "value": "Bye."}]}]"#,
    )
    .unwrap();
    let file = dir.join("s.yaml");
    std::fs::write(
        &file,
        "workload:\n  sharegpt: share.json\n  multi_turn: true\nload:\n  users: 1\n  requests: 1\n",
    )
    .unwrap();
    let bench = llmbench::scenario::load(&file)
        .unwrap()
        .bench()
        .unwrap()
        .validate()
        .unwrap();
    assert_eq!(bench.workload().prompt_count(), 1);
    // A conversation is not fitted to a length.
    std::fs::write(
        &file,
        "workload:\n  sharegpt: share.json\n  multi_turn: true\n  prompt_tokens: 64\nload:\n  users: 1\n  requests: 1\n",
    )
    .unwrap();
    let err = llmbench::scenario::load(&file).unwrap_err().chain();
    assert!(
        err.contains("workload.prompt_tokens: 1 of the 1 prompts are conversations"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn llmbench_run_of_the_template_file_records_its_shared_prefix() {
    let out = temp_dir("templates");
    let run = Command::new(env!("CARGO_BIN_EXE_llmbench"))
        .arg("run")
        .arg(library().join("templates.yaml"))
        .args(["--no-monitor", "--out"])
        .arg(&out)
        .env_remove("LLMBENCH_ENGINE")
        .env_remove("LLMBENCH_ENGINES")
        .env_remove("LLMBENCH_DURATION_SCALE")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(run.status.success(), "{text}");
    let dir = std::fs::read_dir(&out)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    let trial = &summary["trials"][0];
    assert_eq!(trial["scenario"], "templates");
    assert_eq!(trial["successes"], 12, "{trial}");
    let workload = &trial["workload"];
    assert_eq!(workload["shared_prefix_tokens"], 384, "{workload}");
    assert_eq!(workload["prompt_tokens"], "512");
    assert_eq!(workload["prompt_lengths"]["max_error"], 0, "{workload}");
    let _ = std::fs::remove_dir_all(&out);
}
