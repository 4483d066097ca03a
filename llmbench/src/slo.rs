//! Service-level objectives a scenario states. Recorded with the result; not
//! yet enforced (goodput arrives with the load issue).

use std::time::Duration;

/// A latency metric an objective can bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SloMetric {
    /// Time to first token.
    Ttft,
    /// Inter-token latency.
    Itl,
    /// Time per output token.
    Tpot,
    /// End-to-end latency.
    E2eLatency,
}

/// "`metric` at percentile `percentile` must not exceed `limit`".
///
/// ```
/// use llmbench::prelude::*;
/// let slo = Slo::ttft_p95_ms(500);
/// assert_eq!(slo.to_string(), "ttft p95 <= 500 ms");
/// ```
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Slo {
    /// Which metric.
    pub metric: SloMetric,
    /// Which percentile (0-100].
    pub percentile: f64,
    /// The largest acceptable value.
    #[serde(rename = "limit_ms", serialize_with = "crate::measure::ser_ms")]
    pub limit: Duration,
}

impl Slo {
    /// A bound on `metric` at `percentile`.
    pub fn new(metric: SloMetric, percentile: f64, limit: Duration) -> Self {
        Slo {
            metric,
            percentile,
            limit,
        }
    }

    /// TTFT p95 at most `ms` milliseconds.
    pub fn ttft_p95_ms(ms: u64) -> Self {
        Self::new(SloMetric::Ttft, 95.0, Duration::from_millis(ms))
    }

    /// TTFT p99 at most `ms` milliseconds.
    pub fn ttft_p99_ms(ms: u64) -> Self {
        Self::new(SloMetric::Ttft, 99.0, Duration::from_millis(ms))
    }

    /// TPOT p95 at most `ms` milliseconds.
    pub fn tpot_p95_ms(ms: u64) -> Self {
        Self::new(SloMetric::Tpot, 95.0, Duration::from_millis(ms))
    }

    /// ITL p99 at most `ms` milliseconds.
    pub fn itl_p99_ms(ms: u64) -> Self {
        Self::new(SloMetric::Itl, 99.0, Duration::from_millis(ms))
    }

    /// End-to-end latency p95 at most `ms` milliseconds.
    pub fn e2e_p95_ms(ms: u64) -> Self {
        Self::new(SloMetric::E2eLatency, 95.0, Duration::from_millis(ms))
    }
}

impl std::fmt::Display for Slo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self.metric {
            SloMetric::Ttft => "ttft",
            SloMetric::Itl => "itl",
            SloMetric::Tpot => "tpot",
            SloMetric::E2eLatency => "e2e_latency",
        };
        let ms = self.limit.as_secs_f64() * 1000.0;
        write!(f, "{name} p{} <= {ms} ms", self.percentile)
    }
}
