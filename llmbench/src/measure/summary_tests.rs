//! Unit tests of the aggregation into a summary.
// Compiled only under #[cfg(test)], from the module that includes this file.

use super::*;
use crate::measure::test_support::record;
use crate::measure::{RequestError, RequestErrorKind};

#[test]
fn moments_are_exact_and_percentiles_within_hdr_precision() {
    let mut agg = Aggregate::default();
    for i in 1..=1000 {
        let v = f64::from(i);
        agg.add(&record(0.0, v, v + 100.0, &[v / 10.0], 2));
    }
    let s = agg.summary();
    let ttft = s.ttft.unwrap();
    assert_eq!(ttft.count, 1000);
    assert!((ttft.mean - 500.5).abs() < 1e-9);
    assert!((ttft.std_dev - 288.6749902572095).abs() < 1e-6);
    assert_eq!((ttft.min, ttft.max), (1.0, 1000.0));
    for (p, want) in [
        (ttft.p50, 500.0),
        (ttft.p90, 900.0),
        (ttft.p99, 990.0),
        (ttft.p99_9, 999.0),
    ] {
        assert!((p - want).abs() / want < 1e-3, "{p} vs {want}");
    }
    assert_eq!(s.itl.unwrap().count, 1000);
    // Span: first send (0) to last end (1100 ms).
    assert!((s.duration_s - 1.1).abs() < 1e-9);
    assert!((s.request_throughput - 1000.0 / 1.1).abs() < 1e-6);
    assert_eq!(s.output_tokens, 2000);
    assert!((s.total_token_throughput - 12000.0 / 1.1).abs() < 1e-6);
}

#[test]
fn failures_count_but_stay_out_of_latencies() {
    let mut agg = Aggregate::default();
    agg.add(&record(0.0, 10.0, 50.0, &[5.0], 2));
    let mut bad = record(0.0, 1.0, 2.0, &[], 2);
    bad.success = false;
    bad.error = Some(RequestError {
        kind: RequestErrorKind::HttpStatus,
        status: Some(503),
        message: "busy".into(),
    });
    agg.add(&bad);
    let s = agg.summary();
    assert_eq!((s.requests, s.successes, s.failures), (2, 1, 1));
    assert_eq!(s.success_rate, 0.5);
    assert_eq!(s.errors_by_kind.get("http_status"), Some(&1));
    assert_eq!(s.ttft.unwrap().count, 1);
}

#[test]
fn server_figures_and_their_coverage() {
    let mut agg = Aggregate::default();
    let mut with = record(0.0, 10.0, 50.0, &[5.0], 2);
    with.server.eval_duration_ms = Some(40.0);
    with.server.eval_tps = Some(25.0);
    agg.add(&with);
    let mut estimated = record(0.0, 10.0, 50.0, &[5.0], 2);
    estimated.output_tokens_estimated = true;
    agg.add(&estimated);
    let s = agg.summary();
    assert_eq!(s.server.eval_duration.as_ref().map(|d| d.count), Some(1));
    assert!(
        s.server.load_duration.is_none(),
        "never reported: absent, not zero"
    );
    assert_eq!(s.metric_coverage["eval_duration"], 0.5);
    assert_eq!(
        s.metric_coverage["output_tokens"], 0.5,
        "chunk counts are not coverage"
    );
    assert_eq!(s.metric_coverage["ttft"], 1.0);
    assert_eq!(s.metric_coverage["load_duration"], 0.0);
    assert_eq!(s.metric_coverage.len(), COVERED_METRICS.len());
}

#[test]
fn empty_aggregate_has_no_distributions() {
    let s = Aggregate::default().summary();
    assert_eq!(s.requests, 0);
    assert!(s.ttft.is_none());
    assert_eq!(s.request_throughput, 0.0);
    assert_eq!((s.goodput, s.slo_attainment), (None, None));
    assert!(s.slos.is_empty());
}
