//! Snapshots of `summary.json` and `report.md` for a run built from fixed
//! records: any change to either layout shows up as a diff to review
//! (`cargo insta review`, or delete the `.snap` file and rerun).
// Compiled only under #[cfg(test)], from the module that includes this file.

use super::meta::{EngineMeta, HostInfo, RunMeta};
use super::*;
use crate::measure::test_support::record;
use crate::measure::Aggregate;
use crate::slo::Slo;

fn trial(engine: &str, ttft: f64, status: TrialStatus, error: Option<&str>) -> TrialSummary {
    let mut agg = Aggregate::with_slos(&[Slo::ttft_p95_ms(100)]);
    for i in 0..20 {
        let i = f64::from(i);
        let mut r = record(i * 50.0, ttft + i, ttft + i + 200.0, &[10.0, 12.0], 3);
        r.slo_met = agg.slo_met(&r);
        agg.add(&r);
    }
    TrialSummary {
        scenario: "chat".into(),
        step: None,
        description: "Chat: short questions, short answers.".into(),
        engine: engine.into(),
        engine_kind: "openai".into(),
        engine_url: "http://127.0.0.1:8000".into(),
        engine_command: None,
        engine_pid: None,
        model: "m".into(),
        mode: crate::Mode::Chat,
        max_tokens: 64,
        users: 4,
        duration_limit_s: None,
        request_limit: Some(20),
        seed: 7,
        started_at: "2026-12-07T12:00:00Z".into(),
        status,
        error: error.map(str::to_string),
        cost: (engine == "vllm").then(|| Cost::new(2.5, &agg.summary())),
        workload: None,
        shards: Vec::new(),
        summary: agg.summary(),
    }
}

fn run() -> RunData {
    let mut run = RunData::new("2026-12-07T12:00:00Z".into());
    run.llmbench_version = "0.0.0-snapshot".into();
    run.trials = vec![
        trial("vllm", 40.0, TrialStatus::Ok, None),
        trial(
            "ollama",
            90.0,
            TrialStatus::Failed,
            Some("slo ttft p95 <= 100 ms missed: 108.0 ms (+8.0%)"),
        ),
    ];
    run
}

fn meta() -> RunMeta {
    RunMeta {
        schema: SCHEMA,
        llmbench_version: "0.0.0-snapshot".into(),
        started_at: "2026-12-07T12:00:00Z".into(),
        ended_at: Some("2026-12-07T12:01:00Z".into()),
        git: None,
        host: HostInfo {
            hostname: Some("bench-host".into()),
            os: "linux".into(),
            arch: "x86_64".into(),
            cpu_model: Some("Some CPU".into()),
            cores: 2,
            memory_mib: Some(24_000),
        },
        gpu: Some("no GPU (NVML not found)".into()),
        engines: vec![EngineMeta {
            name: "vllm".into(),
            kind: "openai".into(),
            url: "http://127.0.0.1:8000".into(),
            model: Some("m".into()),
            command: None,
            version: Some("0.9.2".into()),
        }],
        scenarios: Vec::new(),
        shards: Vec::new(),
    }
}

#[test]
fn summary_json_layout() {
    let text = serde_json::to_string_pretty(&run()).unwrap();
    insta::assert_snapshot!("summary_json", text);
}

#[test]
fn report_md_layout() {
    let mut out = Vec::new();
    let run = run();
    let analyses = super::analysis::analyse_run(&run, &Default::default());
    markdown::write(&run, Some(&meta()), &analyses, &mut out).unwrap();
    let md = String::from_utf8(out).unwrap();
    assert!(
        md.contains("**Winner:** vllm: 50% lower TTFT p50 than ollama (49.0 ms vs 99.0 ms)"),
        "{md}"
    );
    insta::assert_snapshot!("report_md", md);
}

#[test]
fn a_presets_primary_metric_is_in_bold_and_picks_the_winner() {
    let marked = |engine: &str, ttft: f64, metric: &str| {
        let mut t = trial(engine, ttft, TrialStatus::Ok, None);
        t.scenario = "uses".into();
        t.workload = Some(crate::workload::WorkloadSummary {
            preset: None,
            primary_metric: Some(metric.into()),
            prompt_tokens: None,
            output_tokens: None,
            prompt_lengths: None,
            shared_prefix_tokens: None,
        });
        t
    };
    let render = |trials: Vec<TrialSummary>| {
        let mut run = RunData::new("2026-12-07T12:00:00Z".into());
        run.trials = trials;
        let analyses = super::analysis::analyse_run(&run, &Default::default());
        let mut out = Vec::new();
        markdown::write(&run, None, &analyses, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    };
    // Document work: e2e latency, a column of the table, in bold.
    let md = render(vec![
        marked("a", 40.0, "e2e_latency"),
        marked("b", 90.0, "e2e_latency"),
    ]);
    assert!(
        md.contains("Primary metric: e2e latency p50 (lower is better)."),
        "{md}"
    );
    assert!(
        md.contains("| engine | ttft p50 | ttft p99 | itl p50 | **e2e p50** |"),
        "{md}"
    );
    assert!(
        md.contains("| a | 49.0 ms | 59.0 ms | 10.0 ms | **249 ms** |"),
        "{md}"
    );
    assert!(md.contains("**Winner:** a: "), "{md}");
    assert!(md.contains("lower e2e latency p50 than b"), "{md}");
    // Creative writing: output tokens/s per request, a column of its own,
    // first; higher is better.
    let md = render(vec![
        marked("slow", 90.0, "output_tps"),
        marked("fast", 40.0, "output_tps"),
    ]);
    assert!(
        md.contains("Primary metric: output tokens/s per request p50 (higher is better)."),
        "{md}"
    );
    assert!(
        md.contains("| engine | **output tok/s per request p50** | ttft p50 |"),
        "{md}"
    );
    assert!(md.contains("| --- | ---: | ---: |"), "{md}");
    assert!(md.contains("**Winner:** fast: "), "{md}");
    assert!(
        md.contains("higher output tokens/s per request p50 than slow"),
        "{md}"
    );
    // report.html marks it the same way.
    let mut run = RunData::new("2026-12-07T12:00:00Z".into());
    run.trials = vec![marked("a", 40.0, "e2e_latency")];
    let charts = super::chart_data::ChartData::new(&run);
    let analyses = super::analysis::analyse_run(&run, &charts);
    let mut out = Vec::new();
    super::html::write(&run, None, &charts, &analyses, &mut out).unwrap();
    let html = String::from_utf8(out).unwrap();
    assert!(
        html.contains("<p>Primary metric: <strong>e2e latency p50 (lower is better)</strong>.</p>"),
        "{html}"
    );
    assert!(
        html.contains("<th>TTFT p99 (ms)</th><th><strong>e2e p50 (ms)</strong></th>"),
        "{html}"
    );
    assert!(
        html.contains("<td>59.0</td><td><strong>249.1</strong></td>"),
        "{html}"
    );
}
