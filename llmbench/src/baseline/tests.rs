//! Saving, loading and listing baselines, and what a damaged one says.
// Compiled only under #[cfg(test)], from the module that includes this file.

use super::*;
use crate::measure::test_support::record;
use crate::measure::Aggregate;

fn temp_root(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("llmbench-baselines-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir
}

fn set(ttft: f64) -> BaselineSet {
    let mut agg = Aggregate::default();
    let mut samples = Samples::default();
    for i in 0..200 {
        let r = record(f64::from(i) * 20.0, ttft, ttft + 50.0, &[5.0], 2);
        agg.add(&r);
        samples.add(&r);
    }
    BaselineSet {
        scenario: "chat".into(),
        step: None,
        engine: "sim".into(),
        engine_kind: "openai".into(),
        model: "m".into(),
        definition: None,
        summary: agg.summary(),
        samples,
    }
}

fn baseline(name: &str, ttft: f64) -> Baseline {
    Baseline {
        schema: BASELINE_SCHEMA,
        name: name.into(),
        saved_at: "2026-12-07T12:00:00Z".into(),
        llmbench_version: "0".into(),
        git: None,
        sets: vec![set(ttft)],
    }
}

#[test]
fn a_saved_baseline_loads_back_and_is_listed() {
    let root = temp_root("roundtrip");
    let dir = save(&root, &baseline("main", 20.0)).unwrap();
    assert!(dir.ends_with("main"));
    let back = load(&root, "main").unwrap();
    let want = baseline("main", 20.0);
    // JSON keeps floats to their shortest form; the samples come back whole.
    assert!(
        back.sets[0].samples == want.sets[0].samples,
        "samples survive"
    );
    assert_eq!(back.sets[0].summary.requests, 200);
    assert_eq!((back.name.as_str(), back.sets.len()), ("main", 1));
    // Saving again replaces it whole.
    save(&root, &baseline("main", 30.0)).unwrap();
    assert_eq!(
        load(&root, "main").unwrap().sets[0]
            .summary
            .ttft
            .as_ref()
            .unwrap()
            .p50,
        30.0
    );
    save(&root, &baseline("pr-1", 20.0)).unwrap();
    let names: Vec<String> = list(&root).unwrap().into_iter().map(|b| b.0).collect();
    assert_eq!(names, ["main", "pr-1"]);
    let leftovers: Vec<_> = fs::read_dir(&root)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "no temporary left: {leftovers:?}");
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn missing_truncated_corrupt_and_newer_baselines_say_what_is_wrong() {
    let root = temp_root("damaged");
    let err = load(&root, "main").unwrap_err().to_string();
    assert!(
        err.contains("no baseline `main`") && err.contains("saved baselines: none"),
        "{err}"
    );
    save(&root, &baseline("main", 20.0)).unwrap();
    let file = root.join("main/baseline.json");
    let text = fs::read_to_string(&file).unwrap();
    fs::write(&file, &text[..text.len() / 2]).unwrap();
    let err = load(&root, "main").unwrap_err().to_string();
    assert!(err.contains("baseline.json: truncated (line 1"), "{err}");
    fs::write(&file, "{\"schema\": 1, \"name\": 5}").unwrap();
    let err = load(&root, "main").unwrap_err().to_string();
    assert!(err.contains("baseline.json: not a baseline"), "{err}");
    fs::write(&file, "{\"schema\": 99}").unwrap();
    let err = load(&root, "main").unwrap_err().to_string();
    assert!(
        err.contains("schema 99 is newer than this llmbench reads (1)"),
        "{err}"
    );
    let listed = list(&root).unwrap();
    assert!(listed[0].1.starts_with("unreadable: "), "{listed:?}");
    assert!(check_name("../x").is_err() && check_name(".hidden").is_err());
    fs::remove_dir_all(root).unwrap();
}

#[test]
fn a_changed_model_or_scenario_is_not_comparable() {
    let base = baseline("main", 20.0);
    let mut now = set(20.0);
    now.model = "other".into();
    let c = SetComparison::of(&base, &now, &CompareConfig::default());
    assert_eq!(
        c.not_comparable.as_deref(),
        Some("the model changed: `m` then, `other` now")
    );
    assert!(c.metrics.is_empty());
    let mut elsewhere = set(20.0);
    elsewhere.scenario = "rag".into();
    let c = SetComparison::of(&base, &elsewhere, &CompareConfig::default());
    assert_eq!(c.not_comparable.as_deref(), Some("not in baseline `main`"));
    let slower = SetComparison::of(&base, &set(30.0), &CompareConfig::default());
    assert!(
        slower.regressions().any(|m| m.metric == "ttft p50"),
        "{:?}",
        slower.lines()
    );
    let table = Comparison {
        schema: BASELINE_SCHEMA,
        baseline: "main".into(),
        baseline_saved_at: "then".into(),
        noise_threshold: 0.05,
        significance: 0.05,
        sets: vec![slower],
    }
    .markdown();
    assert!(
        table.contains("| chat / sim | ttft p50 | 20.00 ms | 30.00 ms | +50.0% |"),
        "{table}"
    );
    assert!(table.contains("**regressed**"), "{table}");
}

#[test]
fn comparison_json_layout() {
    let base = baseline("main", 20.0);
    let now = set(26.0);
    let c = Comparison {
        schema: BASELINE_SCHEMA,
        baseline: "main".into(),
        baseline_saved_at: base.saved_at.clone(),
        noise_threshold: 0.05,
        significance: 0.05,
        sets: vec![SetComparison::of(&base, &now, &CompareConfig::default())],
    };
    insta::assert_snapshot!("comparison_json", serde_json::to_string_pretty(&c).unwrap());
}
