//! Shards: four processes each send a quarter of an open loop to one
//! simulator, starting together (`--shard I/4 --start-at T`), and
//! `llmbench::report::merge` makes one run of them whose figures are those
//! of every record together.

use super::*;

use std::time::{SystemTime, UNIX_EPOCH};

use llmbench::measure::Aggregate;

/// The value at `q` of `values` by nearest rank.
fn exact_quantile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let rank = (q * values.len() as f64).ceil().max(1.0) as usize;
    values[rank - 1]
}

/// Run the fixture as shard `shard` of scenario `scenario` into `out`.
fn shard_command(scenario: &str, shard: &str, engine: &str, start_at: f64, out: &Path) -> Command {
    let mut command = fixture_command(&[
        "--bench",
        scenario,
        "--engine",
        engine,
        "--shard",
        shard,
        "--start-at",
        &format!("{start_at:.3}"),
        "--no-monitor",
        "--out",
        out.to_str().unwrap(),
    ]);
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    command
}

#[test]
fn four_shards_against_one_simulator_merge_into_one_exact_run() {
    let sim = Simulator::start(SimConfig::new()).unwrap();
    let engine = format!("openai={},model={},name=one-sim", sim.url(), sim.model());
    let root = temp_dir("shards");
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let start_at = now.as_secs_f64() + 1.5;
    let children: Vec<_> = (0..4)
        .map(|i| {
            let out = root.join(format!("shard-{i}"));
            shard_command("shard_open", &format!("{i}/4"), &engine, start_at, &out)
                .spawn()
                .unwrap()
        })
        .collect();
    let mut dirs = Vec::new();
    for (i, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "shard {i}: {}", text(&out));
        assert!(text(&out).contains("waiting"), "{}", text(&out));
        dirs.push(run_dir(&root.join(format!("shard-{i}"))));
    }
    // Each shard says which it was, its seed and when its clock started.
    for (i, dir) in dirs.iter().enumerate() {
        let trial = &summary(dir)["trials"][0];
        assert_eq!(trial["requests"], 15, "{trial}");
        assert_eq!(trial["shards"][0]["index"], i, "{trial}");
        assert_eq!(trial["shards"][0]["count"], 4);
        assert!(trial["shards"][0]["t0_unix_ms"].as_f64().unwrap() >= start_at * 1e3 - 1.0);
        let meta: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
        assert_eq!(
            meta["shards"][0]["start_at"].as_f64(),
            Some((start_at * 1e3).round() / 1e3)
        );
        assert!(dir.join("histograms.json").is_file());
    }
    let seeds: std::collections::BTreeSet<_> = dirs
        .iter()
        .map(|d| {
            summary(d)["trials"][0]["shards"][0]["seed"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(seeds.len(), 4, "every shard draws its own schedule");

    let merged_dir = root.join("merged");
    let merged = llmbench::report::merge(&dirs, &merged_dir).unwrap();
    assert_eq!(merged.shards, 4);
    assert_eq!(merged.requests, sim.requests_seen());
    assert_eq!(merged.requests, 60);
    assert!(merged.start_spread_s < 1.0, "{}", merged.start_spread_s);
    assert!(merged_dir.join("report.md").is_file() && merged_dir.join("report.html").is_file());

    // The merged figures are those of every record together.
    let all: Vec<RequestRecord> = dirs.iter().flat_map(|d| records(d)).collect();
    assert_eq!(records(&merged_dir).len(), all.len());
    let mut whole = Aggregate::default();
    all.iter().for_each(|r| whole.add(r));
    let whole = whole.summary();
    let trial = &summary(&merged_dir)["trials"][0];
    assert_eq!(trial["requests"], 60, "{trial}");
    assert_eq!(trial["shards"].as_array().unwrap().len(), 4);
    for metric in ["ttft", "e2e_latency"] {
        let mut values: Vec<f64> = all
            .iter()
            .filter_map(|r| match metric {
                "ttft" => r.ttft_ms,
                _ => r.success.then_some(r.e2e_latency_ms),
            })
            .collect();
        let want = match metric {
            "ttft" => whole.ttft.clone().unwrap(),
            _ => whole.e2e_latency.clone().unwrap(),
        };
        for (q, key, of_whole) in [(0.5, "p50", want.p50), (0.99, "p99", want.p99)] {
            let got = trial[metric][key].as_f64().unwrap();
            assert_eq!(got, of_whole, "{metric} {key}: merged vs one aggregate");
            let exact = exact_quantile(&mut values, q);
            // HDR keeps 3 significant digits: within 0.1% (plus the 1 µs unit).
            assert!(
                (got - exact).abs() <= exact * 1e-3 + 1e-3,
                "{metric} {key}: merged {got} vs exact {exact}"
            );
        }
    }

    // A shard of another scenario is refused, by name.
    let other_out = root.join("other");
    let out = shard_command("ok_chat", "1/4", &engine, start_at, &other_out)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let mixed = [dirs[0].clone(), run_dir(&other_out)];
    let err = llmbench::report::merge(&mixed, &root.join("mixed"))
        .unwrap_err()
        .chain();
    assert!(
        err.contains("`ok_chat` on `one-sim`") && err.contains("`shard_open` on `one-sim`"),
        "{err}"
    );
    assert!(err.contains("same scenarios"), "{err}");
    // Two copies of one shard are refused too.
    let twice = [dirs[0].clone(), dirs[0].clone()];
    let err = llmbench::report::merge(&twice, &root.join("twice"))
        .unwrap_err()
        .chain();
    assert!(err.contains("are both shard 0/4"), "{err}");
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn a_start_time_long_past_is_refused_before_anything_runs() {
    let root = temp_dir("stale-start");
    let out = fixture(&[
        "--bench",
        "--start-at",
        "1000",
        "--out",
        root.to_str().unwrap(),
        "ok_chat",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("--start-at 1000: that is"),
        "{}",
        text(&out)
    );
    assert!(!root.exists(), "nothing ran");
}
