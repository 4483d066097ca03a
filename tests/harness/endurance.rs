//! A shortened endurance run through the harness: tens of thousands of
//! requests against a fast engine, with the client's memory sampled into
//! `monitor.csv`, stays flat once warm (records go to disk as they come,
//! aggregates are histograms of fixed size).

use llmbench::sim::Itl;

use super::*;

#[test]
fn an_endurance_run_keeps_the_clients_memory_flat() {
    // The engine lives in this process, so `client_rss_mib` is the
    // harness's alone; it keeps no per-request truth.
    let sim = Simulator::start(
        SimConfig::new()
            .ttft_base(Duration::from_micros(200))
            .per_prompt_token(Duration::ZERO)
            .itl(Itl::Constant(Duration::from_micros(100)))
            .record_truth(false),
    )
    .unwrap();
    let out_dir = temp_dir("endurance");
    let spec = format!("openai={},name=fast", sim.url());
    let out = fixture_command(&[
        "--bench",
        "--exact",
        "slow_endurance/fast",
        "--engine",
        &spec,
        "--monitor-interval",
        "0.25",
        "--out",
        out_dir.to_str().unwrap(),
    ])
    .env_remove("LLMBENCH_NO_MONITOR")
    .env_remove("LLMBENCH_MONITOR_INTERVAL")
    .output()
    .unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    let dir = run_dir(&out_dir);
    let requests = summary(&dir)["trials"][0]["requests"].as_u64().unwrap();
    assert_eq!(requests, sim.requests_seen());
    assert!(requests >= 10_000, "a long run: {requests} requests");

    let csv = std::fs::read_to_string(dir.join("monitor.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let column = header.iter().position(|h| *h == "client_rss_mib").unwrap();
    let rss: Vec<f64> = lines
        .filter_map(|l| l.split(',').nth(column)?.parse().ok())
        .collect();
    assert!(rss.len() >= 40, "{} samples", rss.len());
    // Warm after the first fifth; the rest must not climb.
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let n = rss.len();
    let early = median(&rss[n / 5..2 * n / 5]);
    let late = median(&rss[4 * n / 5..]);
    let peak = rss[n / 5..].iter().copied().fold(0.0, f64::max);
    let series: Vec<String> = rss.iter().step_by(4).map(|v| format!("{v:.1}")).collect();
    eprintln!("rss every second: {}", series.join(" "));
    eprintln!(
        "endurance: {requests} requests; client RSS early {early:.1} MiB, late {late:.1} MiB, peak {peak:.1} MiB"
    );
    // Keeping a few dozen bytes per request (as the correlation's request
    // times once did) grows it by about 4 MiB here.
    assert!(
        late - early < 2.0,
        "the client's memory grew from {early:.1} to {late:.1} MiB over {requests} requests"
    );
    std::fs::remove_dir_all(out_dir).unwrap();
}
