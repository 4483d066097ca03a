//! Snapshots of `summary.json` and `report.md` for a run built from fixed
//! records: any change to either layout shows up as a diff to review
//! (`cargo insta review`, or delete the `.snap` file and rerun).

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
