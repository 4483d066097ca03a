//! The Prometheus text parser against the four `/metrics` fixtures in
//! `../shared/fixtures/`, asserting what its README says a correct parser
//! extracts from each. A missing fixture fails the test.

use std::hint::black_box;
use std::time::{Duration, Instant};

use llmbench::monitor::prometheus::{parse, MetricType, Metrics};

const VLLM: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/fixtures/vllm/metrics_v0_engine.txt"
);
const LLAMACPP_AFTER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/fixtures/llamacpp/metrics_after_requests.txt"
);
const LLAMACPP_BUSY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/fixtures/llamacpp/metrics_busy.txt"
);
const TGI: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/fixtures/tgi/metrics_v3.prom"
);
const MODEL: &str = "/home/data/models/Meta-Llama-3-8B-Instruct";

/// A fixture's text and what it parses to; a missing or rejected one fails.
fn fixture(path: &str) -> (String, Metrics) {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{path}: {e} (../shared must sit beside the checkout)"));
    let metrics = parse(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    (text, metrics)
}

/// Families per type: counter, gauge, histogram, summary, untyped.
fn kinds(m: &Metrics) -> [usize; 5] {
    use MetricType::*;
    [Counter, Gauge, Histogram, Summary, Untyped]
        .map(|kind| m.families().iter().filter(|f| f.kind == kind).count())
}

fn value(m: &Metrics, name: &str) -> f64 {
    m.value(name, &[])
        .unwrap_or_else(|| panic!("no single sample `{name}`"))
}

fn label_names(m: &Metrics, name: &str) -> Vec<Vec<String>> {
    m.series(name, &[])
        .map(|s| s.labels.iter().map(|(n, _)| n.clone()).collect())
        .collect()
}

fn close(actual: f64, expected: f64, tolerance: f64) -> bool {
    (actual - expected).abs() <= tolerance
}

#[test]
fn vllm_v0_engine() {
    let (text, m) = fixture(VLLM);
    assert!(!text.ends_with('\n'), "the fixture has no final newline");
    let last = m.samples().last().expect("samples");
    assert_eq!(last.name, "vllm:avg_generation_throughput_toks_per_s");
    assert_eq!(last.value, 154.6386182404132, "the unterminated last line");

    assert_eq!(m.families().len(), 28);
    assert_eq!(kinds(&m), [7, 14, 7, 0, 0]);
    assert_eq!(m.samples().len(), 122);
    assert!(m.families().iter().all(|f| f.help.is_some()));

    assert_eq!(value(&m, "vllm:num_requests_running"), 2.0);
    let model = [("model_name", MODEL)];
    assert_eq!(m.value("vllm:num_requests_running", &model), Some(2.0));
    assert_eq!(
        m.value("vllm:num_requests_running", &[("model_name", "x")]),
        None
    );
    assert_eq!(value(&m, "vllm:num_requests_waiting"), 1.0);
    assert_eq!(value(&m, "vllm:gpu_cache_usage_perc"), 4.2);
    assert_eq!(value(&m, "vllm:time_to_first_token_seconds_count"), 53694.0);

    let order = label_names(&m, "vllm:time_to_first_token_seconds_bucket");
    assert_eq!(order.len(), 17);
    assert!(order.iter().all(|names| names == &["le", "model_name"]));

    let ttft = m
        .histogram("vllm:time_to_first_token_seconds", &model)
        .expect("TTFT histogram");
    assert_eq!(ttft.buckets.len(), 17);
    assert_eq!(ttft.buckets.last().map(|b| b.count), Some(53694.0));
    assert_eq!(ttft.count, Some(53694.0));
    assert_eq!(ttft.mean(), Some(149737.30035066605 / 53694.0));
    // Rank 26847 falls in (1.0, 2.5], whose counts run 20771 -> 32502.
    let p50 = 1.0 + 1.5 * ((26847.0 - 20771.0) / (32502.0 - 20771.0));
    assert_eq!(ttft.quantile(0.5), Some(p50));
}

#[test]
fn llamacpp_after_requests() {
    let (text, m) = fixture(LLAMACPP_AFTER);
    assert!(text.ends_with('\n') && !text.ends_with("\n\n"));
    assert_eq!(kinds(&m), [10, 5, 0, 0, 0]);
    assert_eq!(m.samples().len(), 15);
    assert!(m.families().iter().all(|f| f.help.is_some()));
    assert_eq!(value(&m, "llamacpp:prompt_tokens_total"), 4973.0);
    assert_eq!(value(&m, "llamacpp:tokens_predicted_total"), 680.0);
    assert_eq!(value(&m, "llamacpp:requests_processing"), 0.0);
    assert_eq!(value(&m, "llamacpp:requests_deferred"), 0.0);
    assert_eq!(value(&m, "llamacpp:n_busy_slots_per_decode"), 1.02719);
}

#[test]
fn llamacpp_busy() {
    let (_, m) = fixture(LLAMACPP_BUSY);
    assert_eq!(value(&m, "llamacpp:requests_processing"), 4.0);
    assert_eq!(value(&m, "llamacpp:requests_deferred"), 2.0, "queue depth");
}

#[test]
fn tgi_v3_structure() {
    let (text, m) = fixture(TGI);
    assert_eq!(m.families().len(), 24);
    assert_eq!(kinds(&m), [6, 3, 14, 1, 0]);
    assert_eq!(m.samples().len(), 1888);
    assert!(text.ends_with("\n\n"));
    assert_eq!(
        text.matches("\n\n").count(),
        24,
        "a blank line after each family"
    );
    let no_help: Vec<&str> = m
        .families()
        .iter()
        .filter(|f| f.help.is_none())
        .map(|f| f.name.as_str())
        .collect();
    let expected = [
        "tgi_batch_concat",
        "tgi_request_failure",
        "tgi_batch_concat_duration",
    ];
    assert_eq!(no_help, expected);
    assert!(
        text.contains("\ntgi_request_count 111\n"),
        "integers without .0"
    );
    let order = label_names(&m, "tgi_batch_forward_duration_bucket");
    assert_eq!(order.len(), 72);
    assert!(order.iter().all(|names| names == &["method", "le"]));
    let ttft = |f: &&llmbench::monitor::prometheus::Family| {
        f.name.contains("first_token") || f.name.contains("ttft")
    };
    assert!(!m.families().iter().any(|f| ttft(&f)), "no TTFT metric");
}

#[test]
fn tgi_v3_values() {
    let (_, m) = fixture(TGI);
    assert_eq!(value(&m, "tgi_request_count"), 111.0);
    assert_eq!(value(&m, "tgi_request_success"), 109.0);
    let validation = [("err", "validation")];
    assert_eq!(m.value("tgi_request_failure", &validation), Some(2.0));
    assert_eq!(value(&m, "tgi_queue_size"), 0.0);
    assert_eq!(value(&m, "tgi_batch_current_size"), 0.0);
    assert_eq!(value(&m, "tgi_batch_current_max_tokens"), 0.0);

    let histogram = |name: &str| m.histogram(name, &[]).expect(name);
    let duration = histogram("tgi_request_duration");
    assert_eq!(duration.sum, Some(541.2140316159999));
    assert_eq!(duration.count, Some(109.0));
    assert!(close(duration.mean().expect("mean"), 4.965, 5e-4));
    let queue = histogram("tgi_request_queue_duration");
    assert_eq!(queue.sum, Some(295.275961956));
    assert!(close(queue.mean().expect("mean"), 2.709, 5e-4));
    let inference = histogram("tgi_request_inference_duration");
    assert_eq!(inference.sum, Some(245.91743839099996));
    let per_token = histogram("tgi_request_mean_time_per_token_duration");
    assert_eq!(per_token.sum, Some(8.643160945));
    assert!(close(per_token.mean().expect("mean"), 0.0793, 5e-5));

    let generated = value(&m, "tgi_request_generated_tokens_sum");
    assert_eq!(generated, 3423.0);
    assert_eq!(generated, value(&m, "tgi_request_skipped_tokens_count"));
    let skipped = m.family("tgi_request_skipped_tokens").expect("summary");
    assert_eq!(skipped.kind, MetricType::Summary);
    assert_eq!(m.samples_of(skipped).count(), 9);

    let decode = [("method", "decode")];
    let forward = m
        .histogram("tgi_batch_forward_duration", &decode)
        .expect("decode forward");
    assert_eq!(forward.count, Some(1509.0));
    assert_eq!(forward.sum, Some(89.03133092599998));
}

#[test]
fn tgi_v3_buckets() {
    let (_, m) = fixture(TGI);
    let first = m.series("tgi_request_duration_bucket", &[]).next();
    assert_eq!(
        first.and_then(|s| s.label("le")),
        Some("0.00015000000000000001")
    );
    let durations: Vec<&str> = m
        .families()
        .iter()
        .filter(|f| f.kind == MetricType::Histogram && f.name.ends_with("_duration"))
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(durations.len(), 10);
    for name in durations {
        let bounds: Vec<f64> = (1..=35).map(|k| 0.0001 * 1.5f64.powi(k)).collect();
        assert_bounds(&m, name, &bounds);
    }
    let step = |size: f64| (1..=100).map(|i| size * f64::from(i)).collect::<Vec<_>>();
    assert_bounds(&m, "tgi_request_input_length", &step(5.11));
    assert_bounds(&m, "tgi_request_max_new_tokens", &step(5.12));
    assert_bounds(&m, "tgi_request_generated_tokens", &step(5.12));
    let next = m.histogram("tgi_batch_next_size", &[]).expect("next size");
    assert_eq!(next.buckets.len(), 1024 + 1, "1024 buckets and +Inf");
}

/// The histogram's finite bounds are `bounds` (to 1e-9 relative), then +Inf.
fn assert_bounds(m: &Metrics, name: &str, bounds: &[f64]) {
    let h = m.histogram(name, &[]).expect(name);
    let (last, finite) = h.buckets.split_last().expect(name);
    assert_eq!(last.le, f64::INFINITY, "{name}");
    assert_eq!(finite.len(), bounds.len(), "{name}");
    for (bucket, bound) in finite.iter().zip(bounds) {
        assert!(
            close(bucket.le, *bound, bound * 1e-9),
            "{name}: {}",
            bucket.le
        );
    }
}

/// Decode speed on the biggest fixture. Run with
/// `cargo test --release -p llmbench --test metrics_fixtures -- --ignored --nocapture`.
#[test]
#[ignore = "a timing, not a check"]
fn decode_speed() {
    let (text, m) = fixture(TGI);
    let samples = m.samples().len();
    let start = Instant::now();
    let mut rounds = 0u32;
    while start.elapsed() < Duration::from_secs(2) {
        let parsed = parse(black_box(&text)).expect("parses");
        black_box(parsed);
        rounds += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "tgi/metrics_v3.prom ({} bytes, {samples} samples): {:.0} µs a parse, \
         {:.2} M samples/s, {:.0} MB/s",
        text.len(),
        secs / f64::from(rounds) * 1e6,
        f64::from(rounds) * samples as f64 / secs / 1e6,
        f64::from(rounds) * text.len() as f64 / secs / 1e6,
    );
}
