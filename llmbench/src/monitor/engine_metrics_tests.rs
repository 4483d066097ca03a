//! Series selection from every engine's metrics fixture, counter rates, and
//! the scraper's one warning for a `/metrics` that is not there.
// Compiled only under #[cfg(test)], from the module that includes this file.

use super::*;

fn fixture(path: &str) -> Metrics {
    let full = format!(
        "{}/../../shared/fixtures/{path}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"));
    prometheus::parse(&text).unwrap_or_else(|e| panic!("{full}: {e}"))
}

#[test]
fn vllm_v0_gives_running_waiting_and_its_older_kv_cache_name() {
    let s = select(&fixture("vllm/metrics_v0_engine.txt"));
    assert_eq!(s.gauges.get("engine_requests_running"), Some(2.0));
    assert_eq!(s.gauges.get("engine_requests_waiting"), Some(1.0));
    // As the engine wrote it (this capture says 4.2 for a fraction).
    assert_eq!(s.gauges.get("engine_kv_cache_usage"), Some(4.2));
    assert_eq!(
        s.counters.get("engine_generated_tokens_per_s"),
        Some(3.12679e6)
    );
    assert!(s
        .sources
        .contains(&("engine_kv_cache_usage", "vllm:gpu_cache_usage_perc")));
}

#[test]
fn vllm_v1_uses_the_newer_kv_cache_name_and_adds_up_engines() {
    let text = "# TYPE vllm:kv_cache_usage_perc gauge\n\
        vllm:kv_cache_usage_perc{engine=\"0\",model_name=\"m\"} 0.25\n\
        vllm:kv_cache_usage_perc{engine=\"1\",model_name=\"m\"} 0.75\n\
        # TYPE vllm:num_requests_running gauge\n\
        vllm:num_requests_running{engine=\"0\",model_name=\"m\"} 3.0\n\
        vllm:num_requests_running{engine=\"1\",model_name=\"m\"} 4.0\n";
    let s = select(&prometheus::parse(text).expect("valid"));
    assert_eq!(
        s.gauges.get("engine_kv_cache_usage"),
        Some(0.75),
        "the fullest"
    );
    assert_eq!(s.gauges.get("engine_requests_running"), Some(7.0));
    assert_eq!(s.gauges.get("engine_requests_waiting"), None);
}

#[test]
fn tgi_gives_its_queue_and_batch() {
    let s = select(&fixture("tgi/metrics_v3.prom"));
    assert_eq!(s.gauges.get("engine_requests_waiting"), Some(0.0));
    assert_eq!(s.gauges.get("engine_requests_running"), Some(0.0));
    assert_eq!(s.gauges.get("engine_kv_cache_usage"), None, "TGI has none");
    assert_eq!(
        s.counters.get("engine_generated_tokens_per_s"),
        Some(3423.0)
    );
}

#[test]
fn llamacpp_gives_processing_and_deferred() {
    let busy = select(&fixture("llamacpp/metrics_busy.txt"));
    assert_eq!(busy.gauges.get("engine_requests_running"), Some(4.0));
    assert_eq!(busy.gauges.get("engine_requests_waiting"), Some(2.0));
    let idle = select(&fixture("llamacpp/metrics_after_requests.txt"));
    assert_eq!(idle.gauges.get("engine_requests_running"), Some(0.0));
    assert_eq!(
        idle.counters.get("engine_generated_tokens_per_s"),
        Some(680.0)
    );
}

#[test]
fn counters_become_rates_and_a_reset_gives_none() {
    let mut before = Readings::default();
    before.set("engine_generated_tokens_per_s", 680.0);
    let mut now = Readings::default();
    now.set("engine_generated_tokens_per_s", 929.0);
    let mut out = Readings::default();
    rates(&before, &now, 0.5, &mut out);
    assert_eq!(out.get("engine_generated_tokens_per_s"), Some(498.0));
    let mut out = Readings::default();
    rates(&now, &before, 0.5, &mut out);
    assert!(out.is_empty(), "restarted engine: no rate");
}

#[test]
fn every_column_is_listed() {
    assert_eq!(
        columns(),
        [
            "engine_requests_running",
            "engine_requests_waiting",
            "engine_kv_cache_usage",
            "engine_generated_tokens_per_s",
            "engine_ttft_p50_ms",
            "engine_ttft_p99_ms",
            "engine_models_loaded",
            "engine_vram_mib",
            "engine_model_vram_pct"
        ]
    );
}

fn ollama_fixture(name: &str) -> serde_json::Value {
    let full = format!(
        "{}/../../shared/fixtures/ollama/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{full}: {e}"))
}

#[test]
fn ollama_ps_gives_models_vram_and_what_spilled_to_the_cpu() {
    let two = select_ollama(&ollama_fixture("ps.json"));
    assert_eq!(two.get("engine_models_loaded"), Some(2.0));
    let mib = (2_686_878_533.0 + 6_781_644_800.0) / 1024.0 / 1024.0;
    assert_eq!(two.get("engine_vram_mib"), Some(mib));
    assert_eq!(
        two.get("engine_model_vram_pct"),
        Some(100.0),
        "all on the GPU"
    );
    let forever = select_ollama(&ollama_fixture("ps_keep_alive_forever.json"));
    assert_eq!(forever.get("engine_models_loaded"), Some(1.0));
    let spilled = serde_json::json!({"models": [
        {"name": "a", "size": 1000, "size_vram": 1000},
        {"name": "b", "size": 2000, "size_vram": 500},
    ]});
    assert_eq!(
        select_ollama(&spilled).get("engine_model_vram_pct"),
        Some(25.0)
    );
    let none = select_ollama(&serde_json::json!({"models": []}));
    assert_eq!(none.get("engine_models_loaded"), Some(0.0));
    assert_eq!(none.get("engine_model_vram_pct"), None);
}

#[test]
fn a_missing_metrics_route_warns_once_and_stops() {
    // Nothing listens on port 9 of loopback (discard, never served here).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut scraper = Scraper::new("http://127.0.0.1:9/", Duration::from_secs(2));
    assert_eq!(scraper.url(), "http://127.0.0.1:9/metrics");
    let mut out = Readings::default();
    let warning = scraper.scrape(&runtime, &mut out).expect("a warning");
    assert!(
        warning.starts_with("engine metrics off: http://127.0.0.1:9/metrics answered unreachable"),
        "{warning}"
    );
    assert_eq!(scraper.scrape(&runtime, &mut out), None, "said once");
    assert!(out.is_empty() && scraper.disabled().is_some());
}

#[test]
fn the_ttft_of_each_interval_comes_from_the_histogram_growth() {
    let s = select(&fixture("vllm/metrics_v0_engine.txt"));
    let ttft = s.ttft.expect("vLLM's TTFT histogram");
    assert!(s
        .sources
        .contains(&("engine_ttft_p50_ms", "vllm:time_to_first_token_seconds")));
    let h = |counts: [f64; 4]| Histogram {
        buckets: [0.01, 0.05, 0.1, f64::INFINITY]
            .iter()
            .zip(counts)
            .map(|(&le, count)| Bucket { le, count })
            .collect(),
        sum: None,
        count: None,
    };
    // 8 requests in the interval: 2 at most 50 ms, 6 between 50 and 100 ms.
    let (p50, p99) = interval_ttft(&h([0.0, 1.0, 2.0, 2.0]), &h([0.0, 3.0, 10.0, 10.0])).unwrap();
    assert!((p50 - (50.0 + 50.0 / 3.0)).abs() < 1e-9, "{p50}");
    assert!((p99 - (50.0 + 50.0 * 5.92 / 6.0)).abs() < 1e-9, "{p99}");
    // Nothing new, or a restart: no figure.
    assert_eq!(interval_ttft(&ttft, &ttft), None);
    assert_eq!(
        interval_ttft(&h([0.0, 3.0, 10.0, 10.0]), &h([0.0, 1.0, 2.0, 2.0])),
        None
    );
}
