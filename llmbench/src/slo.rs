//! Service-level objectives a scenario states: thresholds on latency
//! percentiles, checked after the trial (a miss fails it) and per request
//! (goodput counts the requests that met every one).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A latency metric an objective can bound (defined in `docs/metrics.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SloMetric {
    /// Time to first token.
    Ttft,
    /// Inter-token latency: the gaps between content chunks.
    Itl,
    /// Time per output token.
    Tpot,
    /// End-to-end latency.
    E2eLatency,
}

impl SloMetric {
    /// The metric's name in every output.
    pub fn as_str(self) -> &'static str {
        match self {
            SloMetric::Ttft => "ttft",
            SloMetric::Itl => "itl",
            SloMetric::Tpot => "tpot",
            SloMetric::E2eLatency => "e2e_latency",
        }
    }
}

/// One threshold: "`metric` at percentile `percentile` must not exceed
/// `limit`".
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SloThreshold {
    /// Which metric.
    pub metric: SloMetric,
    /// Which percentile, in (0, 100].
    pub percentile: f64,
    /// The largest acceptable value.
    #[serde(rename = "limit_ms", serialize_with = "crate::measure::ser_ms")]
    pub limit: Duration,
}

impl SloThreshold {
    fn check(&self) -> Result<()> {
        if self.percentile > 0.0 && self.percentile <= 100.0 {
            Ok(())
        } else {
            Err(Error::scenario(format!(
                "slo.percentile: must be in (0, 100] (got {}) in `{self}`",
                self.percentile
            )))
        }
    }
}

/// A number in milliseconds as a user wrote it: no trailing zeros, at most
/// three decimals.
fn fmt_limit_ms(ms: f64) -> String {
    let s = format!("{ms:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// `ttft p95 <= 500 ms`: how a threshold is written in every message.
pub(crate) fn describe(metric: SloMetric, percentile: f64, limit_ms: f64) -> String {
    format!(
        "{} p{percentile} <= {} ms",
        metric.as_str(),
        fmt_limit_ms(limit_ms)
    )
}

impl std::fmt::Display for SloThreshold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = self.limit.as_secs_f64() * 1000.0;
        f.write_str(&describe(self.metric, self.percentile, ms))
    }
}

/// Service-level objectives: one or more thresholds, all of which must hold.
///
/// Start with a constructor and chain more thresholds onto it (the chaining
/// methods come from [`SloChain`], in the prelude); `Bench::slo` may also be
/// called several times, and the thresholds add up.
///
/// ```
/// use llmbench::prelude::*;
/// let slo = Slo::ttft_p95_ms(500).tpot_p99_ms(50).e2e_p99_ms(3_000);
/// assert_eq!(
///     slo.to_string(),
///     "ttft p95 <= 500 ms, tpot p99 <= 50 ms, e2e_latency p99 <= 3000 ms"
/// );
/// let bench = Bench::new()
///     .workload(Workload::prompts(["Say hello."]))
///     .load(Load::users(4).for_secs(10))
///     .slo(slo)
///     .slo(Slo::itl_p99_9_ms(200));
/// assert!(bench.validate().is_ok());
/// ```
///
/// A trial misses an objective when the metric's percentile over its
/// successful requests exceeds the limit; a request meets the objectives when
/// its own value of every metric is within every limit. `docs/metrics.md`
/// ("SLOs and goodput") gives the exact rules.
#[must_use]
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Slo {
    thresholds: Vec<SloThreshold>,
}

impl Slo {
    /// One threshold: `metric` at `percentile` (in (0, 100]) at most `limit`.
    /// A percentile out of range is reported when the scenario is validated.
    ///
    /// ```
    /// use llmbench::prelude::*;
    /// use std::time::Duration;
    /// let slo = Slo::new(SloMetric::Itl, 97.5, Duration::from_micros(500));
    /// assert_eq!(slo.to_string(), "itl p97.5 <= 0.5 ms");
    /// ```
    pub fn new(metric: SloMetric, percentile: f64, limit: Duration) -> Self {
        Slo {
            thresholds: vec![SloThreshold {
                metric,
                percentile,
                limit,
            }],
        }
    }

    /// These thresholds and those of `other`.
    pub fn and(mut self, other: Slo) -> Self {
        self.thresholds.extend(other.thresholds);
        self
    }

    /// Every threshold, in the order they were given.
    pub fn thresholds(&self) -> &[SloThreshold] {
        &self.thresholds
    }

    /// Check every threshold; the error names the field and the threshold.
    pub fn validate(&self) -> Result<()> {
        self.thresholds.iter().try_for_each(SloThreshold::check)
    }
}

impl std::fmt::Display for Slo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, t) in self.thresholds.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{t}")?;
        }
        Ok(())
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Slo {}
}

/// One builder per metric and percentile: the constructor on [`Slo`], and
/// the chaining method of the same name on [`SloChain`].
macro_rules! thresholds {
    ($($name:ident: $metric:ident, $p:literal, $label:literal;)*) => {
        impl Slo {
            $(
                #[doc = concat!($label, " at most `ms` milliseconds.")]
                pub fn $name(ms: u64) -> Slo {
                    Slo::new(SloMetric::$metric, $p, Duration::from_millis(ms))
                }
            )*
        }

        /// Chaining more thresholds onto an [`Slo`]:
        /// `Slo::ttft_p95_ms(500).tpot_p99_ms(50)`. Each method is the
        /// constructor of the same name, added to the thresholds so far.
        /// In the prelude; implemented for [`Slo`] only.
        pub trait SloChain: sealed::Sealed + Sized {
            $(
                #[doc = concat!("Also: ", $label, " at most `ms` milliseconds.")]
                fn $name(self, ms: u64) -> Slo;
            )*
        }

        impl SloChain for Slo {
            $(
                fn $name(self, ms: u64) -> Slo {
                    self.and(<Slo>::$name(ms))
                }
            )*
        }
    };
}

thresholds! {
    ttft_p50_ms: Ttft, 50.0, "TTFT p50";
    ttft_p90_ms: Ttft, 90.0, "TTFT p90";
    ttft_p95_ms: Ttft, 95.0, "TTFT p95";
    ttft_p99_ms: Ttft, 99.0, "TTFT p99";
    ttft_p99_9_ms: Ttft, 99.9, "TTFT p99.9";
    itl_p50_ms: Itl, 50.0, "ITL p50";
    itl_p90_ms: Itl, 90.0, "ITL p90";
    itl_p95_ms: Itl, 95.0, "ITL p95";
    itl_p99_ms: Itl, 99.0, "ITL p99";
    itl_p99_9_ms: Itl, 99.9, "ITL p99.9";
    tpot_p50_ms: Tpot, 50.0, "TPOT p50";
    tpot_p90_ms: Tpot, 90.0, "TPOT p90";
    tpot_p95_ms: Tpot, 95.0, "TPOT p95";
    tpot_p99_ms: Tpot, 99.0, "TPOT p99";
    tpot_p99_9_ms: Tpot, 99.9, "TPOT p99.9";
    e2e_p50_ms: E2eLatency, 50.0, "End-to-end latency p50";
    e2e_p90_ms: E2eLatency, 90.0, "End-to-end latency p90";
    e2e_p95_ms: E2eLatency, 95.0, "End-to-end latency p95";
    e2e_p99_ms: E2eLatency, 99.0, "End-to-end latency p99";
    e2e_p99_9_ms: E2eLatency, 99.9, "End-to-end latency p99.9";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_and_chains_add_thresholds_in_order() {
        let slo = Slo::ttft_p95_ms(500).tpot_p99_ms(50).itl_p99_9_ms(20);
        let got: Vec<(SloMetric, f64, u128)> = slo
            .thresholds()
            .iter()
            .map(|t| (t.metric, t.percentile, t.limit.as_millis()))
            .collect();
        assert_eq!(
            got,
            [
                (SloMetric::Ttft, 95.0, 500),
                (SloMetric::Tpot, 99.0, 50),
                (SloMetric::Itl, 99.9, 20)
            ]
        );
        assert_eq!(
            Slo::e2e_p50_ms(1).and(Slo::ttft_p90_ms(2)).to_string(),
            "e2e_latency p50 <= 1 ms, ttft p90 <= 2 ms"
        );
    }

    #[test]
    fn out_of_range_percentiles_are_named() {
        let bad = Slo::ttft_p95_ms(500).and(Slo::new(SloMetric::Itl, 0.0, Duration::ZERO));
        let err = bad.validate().unwrap_err().to_string();
        assert!(
            err.contains("slo.percentile: must be in (0, 100] (got 0)"),
            "{err}"
        );
        assert!(err.contains("`itl p0 <= 0 ms`"), "{err}");
        assert!(Slo::new(SloMetric::Tpot, f64::NAN, Duration::ZERO)
            .validate()
            .is_err());
        assert!(Slo::new(SloMetric::Tpot, 100.0, Duration::ZERO)
            .validate()
            .is_ok());
    }

    #[test]
    fn serialized_as_a_list_of_thresholds() {
        let json = serde_json::to_value(Slo::ttft_p95_ms(500).itl_p99_ms(20)).unwrap();
        assert_eq!(
            json,
            serde_json::json!([
                {"metric": "ttft", "percentile": 95.0, "limit_ms": 500.0},
                {"metric": "itl", "percentile": 99.0, "limit_ms": 20.0}
            ])
        );
    }

    #[test]
    fn limits_print_as_written() {
        assert_eq!(fmt_limit_ms(500.0), "500");
        assert_eq!(fmt_limit_ms(0.5), "0.5");
        assert_eq!(fmt_limit_ms(1.0 / 3.0), "0.333");
    }
}
