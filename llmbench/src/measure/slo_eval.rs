//! Judging a trial against its SLO thresholds: whether each request met
//! every one (goodput), and whether each threshold's percentile held over
//! the trial (the verdict, with a k6-style message for each miss).

use serde::{Deserialize, Serialize};

use super::{RequestRecord, Summary};
use crate::slo::{describe, SloMetric, SloThreshold};

/// One threshold and how the trial did against it: `summary.json`'s `slos`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SloCheck {
    /// Which metric.
    pub metric: SloMetric,
    /// Which percentile, in (0, 100].
    pub percentile: f64,
    /// The largest acceptable value (ms).
    pub limit_ms: f64,
    /// The metric's `percentile` over the trial's successful requests (for
    /// `itl`, over every gap pooled: the summary's `itl`); `None` when no
    /// successful request had the metric.
    pub observed_ms: Option<f64>,
    /// Whether `observed_ms <= limit_ms`; false when nothing was observed.
    pub passed: bool,
    /// `observed_ms - limit_ms` when the threshold was missed.
    pub missed_by_ms: Option<f64>,
    /// `missed_by_ms` as a percentage of the limit (absent for a limit of 0).
    pub missed_by_pct: Option<f64>,
}

impl SloCheck {
    /// The verdict on `threshold` given the percentile `observed` (ms).
    pub(crate) fn new(threshold: &SloThreshold, observed: Option<f64>) -> Self {
        let limit_ms = threshold.limit.as_secs_f64() * 1e3;
        let passed = observed.is_some_and(|v| v <= limit_ms);
        let missed_by_ms = observed.filter(|_| !passed).map(|v| v - limit_ms);
        SloCheck {
            metric: threshold.metric,
            percentile: threshold.percentile,
            limit_ms,
            observed_ms: observed,
            passed,
            missed_by_ms,
            missed_by_pct: missed_by_ms
                .filter(|_| limit_ms > 0.0)
                .map(|d| d / limit_ms * 100.0),
        }
    }

    /// For a missed threshold, one line saying which percentile missed and
    /// by how much: `slo ttft p95 <= 500 ms missed: 612.4 ms (+22.5%)`.
    pub fn message(&self) -> Option<String> {
        if self.passed {
            return None;
        }
        let what = describe(self.metric, self.percentile, self.limit_ms);
        let how = match (self.observed_ms, self.missed_by_pct) {
            (None, _) => format!(
                "not measured: no {} value from a successful request",
                self.metric.as_str()
            ),
            (Some(v), Some(pct)) => format!("{} ms ({pct:+.1}%)", fmt_observed(v)),
            (Some(v), None) => format!("{} ms", fmt_observed(v)),
        };
        Some(format!("slo {what} missed: {how}"))
    }
}

/// Enough digits to see how far from the limit a value is.
fn fmt_observed(ms: f64) -> String {
    if ms >= 100.0 {
        format!("{ms:.1}")
    } else if ms >= 1.0 {
        format!("{ms:.2}")
    } else {
        format!("{ms:.3}")
    }
}

impl Summary {
    /// One message per missed SLO threshold, in the scenario's order; empty
    /// when every threshold held (or none was stated).
    pub fn slo_misses(&self) -> Vec<String> {
        self.slos.iter().filter_map(SloCheck::message).collect()
    }
}

/// Whether `r` succeeded and its own value of each metric is within every
/// threshold's limit: the goodput rule of vLLM's `--goodput` and DistServe.
/// A request has one TTFT, TPOT and e2e latency, so their percentiles do not
/// apply per request; its ITL value is the threshold's percentile of its
/// own gaps (nearest rank). A request with no first token misses a TTFT
/// threshold; one with a single token (no gap, no TPOT) meets ITL and TPOT
/// thresholds, as in vLLM, where its TPOT counts as 0.
pub(crate) fn request_meets(thresholds: &[SloThreshold], r: &RequestRecord) -> bool {
    r.success
        && thresholds.iter().all(|t| {
            let value = match t.metric {
                SloMetric::Ttft => r.ttft_ms,
                SloMetric::E2eLatency => Some(r.e2e_latency_ms),
                SloMetric::Tpot => Some(r.tpot_ms.unwrap_or(0.0)),
                SloMetric::Itl => Some(nearest_rank(&r.itl_ms, t.percentile).unwrap_or(0.0)),
            };
            value.is_some_and(|v| v <= t.limit.as_secs_f64() * 1e3)
        })
}

/// The `percentile`-th of `values` by nearest rank: the smallest value with
/// at least that share of the values at or below it.
fn nearest_rank(values: &[f64], percentile: f64) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let rank = (percentile / 100.0 * n as f64).ceil() as usize;
    sorted.get(rank.clamp(1, n.max(1)) - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::{Aggregate, RequestError, RequestErrorKind};
    use crate::slo::{Slo, SloChain};
    use std::time::Duration;

    /// A record sent at 0 with the given figures (any token count).
    fn record(ttft: f64, e2e: f64, gaps: &[f64], tokens: u32) -> RequestRecord {
        crate::measure::test_support::record(0.0, ttft, e2e, gaps, tokens)
    }

    fn thresholds(slo: &Slo) -> Vec<SloThreshold> {
        slo.thresholds().to_vec()
    }

    #[test]
    fn a_request_is_judged_on_its_own_values() {
        let slo = thresholds(&Slo::ttft_p99_ms(50).tpot_p50_ms(10).e2e_p90_ms(200));
        assert!(request_meets(&slo, &record(50.0, 140.0, &[], 10)));
        assert!(!request_meets(&slo, &record(50.5, 140.0, &[], 10)), "ttft");
        assert!(
            !request_meets(&slo, &record(20.0, 200.0, &[], 10)),
            "tpot 20"
        );
        assert!(!request_meets(&slo, &record(20.0, 201.0, &[], 100)), "e2e");
        // One token: no tpot, counted as 0 (vLLM).
        assert!(request_meets(&slo, &record(20.0, 190.0, &[], 1)));
        let mut no_token = record(20.0, 30.0, &[], 0);
        no_token.ttft_ms = None;
        assert!(!request_meets(&slo, &no_token), "no first token");
        let mut failed = record(1.0, 2.0, &[], 2);
        failed.success = false;
        assert!(!request_meets(&slo, &failed), "failures are never good");
    }

    #[test]
    fn itl_per_request_is_the_percentile_of_its_own_gaps() {
        let gaps: Vec<f64> = (1..=100).map(f64::from).collect();
        let p90 = thresholds(&Slo::itl_p90_ms(90));
        assert!(request_meets(&p90, &record(1.0, 500.0, &gaps, 101)));
        let p99 = thresholds(&Slo::itl_p99_ms(98));
        assert!(!request_meets(&p99, &record(1.0, 500.0, &gaps, 101)));
        // Few gaps: the high percentiles are the largest gap.
        assert_eq!(nearest_rank(&[3.0, 1.0, 2.0], 99.0), Some(3.0));
        assert_eq!(nearest_rank(&[3.0, 1.0, 2.0], 50.0), Some(2.0));
        assert_eq!(nearest_rank(&[], 50.0), None);
        assert!(request_meets(&p99, &record(1.0, 5.0, &[], 1)), "no gap");
    }

    #[test]
    fn misses_say_which_percentile_missed_by_how_much() {
        let t = &thresholds(&Slo::ttft_p95_ms(500))[0];
        let miss = SloCheck::new(t, Some(612.4));
        assert!(!miss.passed);
        assert_eq!(
            miss.message().as_deref(),
            Some("slo ttft p95 <= 500 ms missed: 612.4 ms (+22.5%)")
        );
        assert!((miss.missed_by_ms.unwrap() - 112.4).abs() < 1e-9);
        let hit = SloCheck::new(t, Some(500.0));
        assert!(hit.passed && hit.message().is_none() && hit.missed_by_ms.is_none());
        let t = &thresholds(&Slo::new(SloMetric::Itl, 99.9, Duration::ZERO))[0];
        assert_eq!(
            SloCheck::new(t, Some(8.014)).message().as_deref(),
            Some("slo itl p99.9 <= 0 ms missed: 8.01 ms")
        );
        assert_eq!(
            SloCheck::new(t, None).message().as_deref(),
            Some("slo itl p99.9 <= 0 ms missed: not measured: no itl value from a successful request")
        );
    }

    #[test]
    fn goodput_counts_successes_meeting_every_threshold() {
        // TTFT 10, 20, .. 100 ms, e2e 100 ms more; a failure ends at 900 ms.
        let slos = [Slo::ttft_p50_ms(60), Slo::e2e_p99_ms(1_000).ttft_p90_ms(95)];
        let mut agg = Aggregate::with_slos(&slos);
        for i in 1..=10 {
            let ttft = f64::from(i) * 10.0;
            let r = record(ttft, ttft + 100.0, &[5.0], 2);
            assert_eq!(agg.slo_met(&r), Some(ttft <= 60.0));
            agg.add(&r);
        }
        let mut failed = record(1.0, 900.0, &[], 2);
        failed.success = false;
        failed.error = Some(RequestError {
            kind: RequestErrorKind::Timeout,
            status: None,
            message: "late".into(),
        });
        assert_eq!(agg.slo_met(&failed), Some(false), "failures are never good");
        agg.add(&failed);
        let s = agg.summary();
        assert_eq!(s.good_requests, Some(6));
        assert!((s.duration_s - 0.9).abs() < 1e-9);
        assert!((s.goodput.unwrap() - 6.0 / 0.9).abs() < 1e-9);
        assert!((s.slo_attainment.unwrap() - 6.0 / 11.0).abs() < 1e-12);
        for (check, want) in s.slos.iter().zip([50.0, 200.0, 90.0]) {
            let got = check.observed_ms.unwrap();
            assert!((got - want).abs() / want < 1e-3, "{got} vs {want}");
            assert!(check.passed);
        }
        assert_eq!(s.slos.len(), 3);
        assert!(s.slo_misses().is_empty());
    }
}
