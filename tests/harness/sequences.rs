//! Trials of several runs: a spike's phases and recovery, and a capacity
//! search against an engine that serves one request at a time.

use super::*;

#[test]
fn a_spike_reports_its_phases_and_the_recovery() {
    let out_dir = temp_dir("spike");
    let out = fixture(&[
        "--bench",
        "--exact",
        "seq_spike/sim",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("      phases: before ttft p50 "), "{t}");
    assert!(t.contains(" | spike ttft p50 "), "{t}");
    let s = summary(&run_dir(&out_dir));
    let trial = &s["trials"][0];
    let phases = trial["phases"].as_array().unwrap();
    let names: Vec<&str> = phases
        .iter()
        .map(|p| p["phase"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["before", "spike", "after"]);
    let counts: Vec<u64> = phases
        .iter()
        .map(|p| p["summary"]["requests"].as_u64().unwrap())
        .collect();
    assert_eq!(
        counts.iter().sum::<u64>(),
        trial["requests"].as_u64().unwrap()
    );
    // 6 arrivals before the spike, 20 in it, 10 after (give or take the one
    // on each edge).
    assert!((19..=21).contains(&counts[1]), "{counts:?}");
    assert!(trial["recovery"]["baseline_ttft_p50_ms"].as_f64().unwrap() > 0.0);
    std::fs::remove_dir_all(out_dir).unwrap();
}

#[test]
fn a_capacity_search_brackets_the_rate_the_engine_can_serve_within_its_slo() {
    // One request at a time, about 30 ms each: at most about 33 requests/s.
    // Below 20/s nothing queues (TTFT 20 ms, the SLO is 100 ms at p90);
    // above 66/s the 20th request waits over 300 ms.
    let engine = Simulator::start(
        SimConfig::new()
            .ttft_base(Duration::from_millis(20))
            .per_prompt_token(Duration::ZERO)
            .itl(llmbench::sim::Itl::Constant(Duration::from_millis(5)))
            .max_concurrency(1),
    )
    .unwrap();
    let out_dir = temp_dir("capacity");
    let spec = format!("openai={},name=one-slot", engine.url());
    let out = fixture(&[
        "--bench",
        "--exact",
        "seq_capacity/one-slot",
        "--engine",
        &spec,
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let t = text(&out);
    assert!(
        out.status.success(),
        "runs that miss the SLO do not fail the search: {t}"
    );
    assert!(t.contains("capacity 10.000 req/s: [20/20 ok"), "{t}");
    assert!(t.contains("    capacity "), "{t}");
    let s = summary(&run_dir(&out_dir));
    let found = &s["capacity"][0];
    assert_eq!(found["scenario"], "seq_capacity");
    assert_eq!(found["target_attainment"], 0.9);
    let ok = found["capacity_rate"].as_f64().unwrap();
    let bad = found["lowest_failing_rate"].as_f64().unwrap();
    assert!((20.0..=66.0).contains(&ok) && ok < bad, "{found}");
    let runs = found["runs"].as_array().unwrap();
    assert!(runs.len() <= 6, "{found}");
    assert_eq!(runs[0]["rate"], 10.0);
    assert_eq!(runs[1]["rate"], 200.0);
    assert_eq!(runs[1]["passed"], false);
    // Each run is a result set of its own.
    let trials = s["trials"].as_array().unwrap();
    assert_eq!(trials.len(), runs.len());
    assert_eq!(trials[0]["step"], "capacity 10.000 req/s");
    assert_eq!(engine.requests_seen(), 20 * runs.len() as u64);
    std::fs::remove_dir_all(out_dir).unwrap();
}

#[test]
fn compare_streaming_runs_both_ways_and_compares() {
    let out_dir = temp_dir("streaming");
    let out = fixture(&[
        "--bench",
        "--exact",
        "seq_streaming/sim",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("      stream: [6/6 ok"), "{t}");
    assert!(t.contains("   no stream: [6/6 ok"), "{t}");
    assert!(t.contains("    no stream vs stream: e2e p50 "), "{t}");
    let dir = run_dir(&out_dir);
    let s = summary(&dir);
    let c = &s["streaming"][0];
    assert_eq!(c["scenario"], "seq_streaming");
    assert_eq!(c["stream"]["requests"], 6);
    assert_eq!(c["no_stream"]["requests"], 6);
    assert!(c["e2e_p50_change"].is_f64(), "{c}");
    let recs = records(&dir);
    let whole: Vec<_> = recs
        .iter()
        .filter(|r| r.step.as_deref() == Some("no stream"))
        .collect();
    assert_eq!(whole.len(), 6);
    // An unstreamed answer arrives in one piece.
    assert!(whole.iter().all(|r| r.content_chunks == 1), "{whole:?}");
    std::fs::remove_dir_all(out_dir).unwrap();
}

#[test]
fn a_list_of_prompt_lengths_runs_one_exact_result_set_per_length() {
    let out_dir = temp_dir("prompt-lengths");
    let out = fixture(&[
        "--bench",
        "--exact",
        "seq_prompt_lengths/sim",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("64 prompt tokens: "), "{t}");
    let s = summary(&run_dir(&out_dir));
    let trials = s["trials"].as_array().unwrap();
    let steps: Vec<&str> = trials.iter().map(|t| t["step"].as_str().unwrap()).collect();
    assert_eq!(steps, ["64 prompt tokens", "128 prompt tokens"]);
    for (trial, want) in trials.iter().zip([64.0, 128.0]) {
        let w = &trial["workload"];
        assert_eq!(w["preset"], "rag", "{w}");
        assert_eq!(
            w["primary_metric"], "ttft",
            "the simulator's /v1 reports no prompt time"
        );
        let lengths = &w["prompt_lengths"];
        assert_eq!(lengths["source"], "tokenizer", "{lengths}");
        assert_eq!(lengths["requests"], 4, "{lengths}");
        assert_eq!(lengths["requested_mean"], want, "{lengths}");
        assert_eq!(lengths["reported_mean"], want, "{lengths}");
        assert_eq!(lengths["max_error"], 0, "{lengths}");
        let processing = &trial["use_case"]["prompt_processing"];
        assert_eq!(processing["source"], "client_ttft", "{processing}");
    }
    // TTFT against prompt length across the two result sets.
    assert!(t.contains("TTFT p50 grows"), "{t}");
    let scaling = &s["prompt_scaling"][0];
    assert_eq!(scaling["scenario"], "seq_prompt_lengths", "{scaling}");
    let points = scaling["points"].as_array().unwrap();
    let reported: Vec<f64> = points
        .iter()
        .map(|p| p["prompt_tokens"].as_f64().unwrap())
        .collect();
    assert_eq!(reported, [64.0, 128.0], "{scaling}");
    let line = &scaling["ttft_p50_vs_prompt_tokens"];
    assert_eq!(line["points"], 2, "{scaling}");
    assert!(line["ms_per_1k_tokens"].is_number(), "{scaling}");
    std::fs::remove_dir_all(out_dir).unwrap();
}
