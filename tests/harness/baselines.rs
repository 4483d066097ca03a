//! Baselines end to end, as CI would use them: save one, compare an
//! unchanged engine with it (exit 0), compare a slower one with
//! `--fail-on-regression` (exit non-zero, the regressed metrics named), and
//! a baseline damaged by hand (a clear error, the run's results still
//! written).

use super::*;

/// A simulator with this TTFT and 20 ms between tokens, always serving
/// model `sim-model`: delays well above the machine's own jitter, so an
/// unchanged engine stays inside the 5% noise threshold even on a busy
/// machine.
fn engine(ttft_ms: u64) -> Simulator {
    Simulator::start(
        SimConfig::new()
            .model("sim-model")
            .ttft_base(Duration::from_millis(ttft_ms))
            .per_prompt_token(Duration::ZERO)
            .itl(llmbench::sim::Itl::Constant(Duration::from_millis(20))),
    )
    .unwrap()
}

fn bench_against(sim: &Simulator, out: &Path, baselines: &Path, more: &[&str]) -> Output {
    let spec = format!("openai={},name=x", sim.url());
    fixture_command(&["--bench", "--exact", "cmp_chat/x", "--engine", &spec])
        .args(["--out", out.to_str().unwrap()])
        .args(more)
        .env("LLMBENCH_BASELINE_DIR", baselines)
        .output()
        .unwrap()
}

#[test]
fn a_baseline_gates_a_slowdown_and_passes_an_unchanged_engine() {
    let root = temp_dir("baselines");
    let baselines = root.join("baselines");
    let fast = engine(60);
    let out = bench_against(
        &fast,
        &root.join("a"),
        &baselines,
        &["--save-baseline", "main"],
    );
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("llmbench: baseline `main` saved (1 result sets)"),
        "{t}"
    );

    let listed = fixture_command(&["--list-baselines"])
        .env("LLMBENCH_BASELINE_DIR", &baselines)
        .output()
        .unwrap();
    assert!(text(&listed).starts_with("main\t"), "{}", text(&listed));

    let out = bench_against(
        &fast,
        &root.join("b"),
        &baselines,
        &["--baseline", "main", "--fail-on-regression"],
    );
    let t = text(&out);
    assert!(out.status.success(), "an unchanged engine passes: {t}");
    assert!(
        t.contains("\n      ttft p50 "),
        "the verdicts are under the trial: {t}"
    );
    let dir = run_dir(&root.join("b"));
    let c: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("comparison.json")).unwrap())
            .unwrap();
    assert_eq!(c["baseline"], "main");
    assert!(
        c["sets"][0]["metrics"].as_array().unwrap().len() >= 8,
        "{c}"
    );
    let md = std::fs::read_to_string(dir.join("comparison.md")).unwrap();
    assert!(md.contains("| cmp_chat / x | ttft p50 |"), "{md}");

    let slow = engine(120);
    let out = bench_against(
        &slow,
        &root.join("c"),
        &baselines,
        &["--baseline", "main", "--fail-on-regression"],
    );
    let t = text(&out);
    assert_eq!(out.status.code(), Some(101), "a slowdown fails: {t}");
    assert!(
        t.contains("regressed against baseline `main`: ttft p50 "),
        "{t}"
    );
    // Without the flag the verdict is printed but does not fail the run.
    let out = bench_against(&slow, &root.join("d"), &baselines, &["--baseline", "main"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("  regressed"), "{}", text(&out));

    let file = baselines.join("main/baseline.json");
    let whole = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, &whole[..whole.len() / 3]).unwrap();
    let out = bench_against(&fast, &root.join("e"), &baselines, &["--baseline", "main"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(101), "{t}");
    assert!(
        t.contains("baseline.json: truncated"),
        "the file and what is wrong: {t}"
    );
    let dir = run_dir(&root.join("e"));
    assert_eq!(
        records(&dir).len(),
        160,
        "the run's own results are still written"
    );
    assert!(dir.join("summary.json").is_file() && dir.join("report.md").is_file());
    std::fs::remove_dir_all(root).unwrap();
}
