//! Analytics over a result set, pure functions of its summary and chart
//! data: predictability (coefficient of variation), tail ratios, ITL
//! jitter, throughput drift over the run, anomalies by a robust rule
//! (median absolute deviation), how TTFT follows prompt length, and
//! recommendations in plain words derived from those figures.

use hdrhistogram::Histogram;
use serde::Serialize;

use std::collections::BTreeMap;

use super::chart_data::{ChartData, SetData, SetKey};
use super::RunData;
use crate::measure::Summary;

/// The analysis of every result set of a run.
pub(crate) type Analyses = BTreeMap<SetKey, Analysis>;

/// Analyse every result set of `run`.
pub(crate) fn analyse_run(run: &RunData, charts: &ChartData) -> Analyses {
    run.trials
        .iter()
        .map(|t| {
            let key = (t.scenario.clone(), t.step.clone(), t.engine.clone());
            let a = analyse(&t.summary, charts.sets.get(&key));
            (key, a)
        })
        .collect()
}

impl Analysis {
    /// The figures in one line.
    pub(crate) fn describe(&self) -> String {
        let f = |v: Option<f64>, fmt: &dyn Fn(f64) -> String| v.map_or_else(|| "-".into(), fmt);
        format!(
            "e2e CV {}, TTFT p99/p50 {}, e2e p99/p50 {}, ITL jitter (p99 - p50) {}, throughput drift {}, {} anomalies, TTFT~prompt r {}",
            f(self.e2e_cv, &|v| format!("{v:.2}")),
            f(self.ttft_tail_ratio, &|v| format!("{v:.2}")),
            f(self.e2e_tail_ratio, &|v| format!("{v:.2}")),
            f(self.itl_jitter_ms, &|v| format!("{v:.2} ms")),
            f(self.throughput_drift, &|v| format!("{:+.0}%", v * 100.0)),
            self.anomalies,
            f(self.ttft_prompt_correlation, &|v| format!("{v:.2}")),
        )
    }
}

/// A request is an anomaly when its e2e latency is more than this many
/// (scaled) median absolute deviations above the median.
pub const ANOMALY_MADS: f64 = 5.0;

/// The analysis of one result set.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Analysis {
    /// e2e latency std dev / mean: 0 is perfectly predictable.
    pub e2e_cv: Option<f64>,
    /// TTFT p99 / p50.
    pub ttft_tail_ratio: Option<f64>,
    /// e2e latency p99 / p50.
    pub e2e_tail_ratio: Option<f64>,
    /// ITL jitter: p99 - p50 of the pooled gaps (ms).
    pub itl_jitter_ms: Option<f64>,
    /// Output throughput at the end of the run against its start, from a
    /// least-squares line through the timeline (-0.1: 10% lower at the end).
    pub throughput_drift: Option<f64>,
    /// Requests whose e2e latency is beyond `ANOMALY_MADS` MADs above the median.
    pub anomalies: u64,
    /// The e2e latency beyond which a request is an anomaly (ms).
    pub anomaly_threshold_ms: Option<f64>,
    /// Timeline intervals whose output throughput fell below half the median interval's.
    pub slow_intervals: u64,
    /// Pearson correlation of TTFT with prompt length, over requests.
    pub ttft_prompt_correlation: Option<f64>,
    /// What the figures suggest, in words.
    pub recommendations: Vec<String>,
}

/// The median and the scaled MAD (x 1.4826, a standard deviation for a
/// normal distribution) of the values in `h`, which are in `1/scale` units.
fn median_mad(h: &Histogram<u64>, scale: f64) -> Option<(f64, f64)> {
    if h.is_empty() {
        return None;
    }
    let median = h.value_at_quantile(0.5) as f64 / scale;
    let mut devs: Vec<(f64, u64)> = h
        .iter_recorded()
        .map(|v| {
            (
                (v.value_iterated_to() as f64 / scale - median).abs(),
                v.count_at_value(),
            )
        })
        .collect();
    devs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let half = h.len().div_ceil(2);
    let mut seen = 0;
    let mad = devs
        .iter()
        .find(|(_, n)| {
            seen += n;
            seen >= half
        })
        .map_or(0.0, |d| d.0);
    Some((median, mad * 1.4826))
}

/// Slope of the least-squares line through `points`, and its value at the
/// first and last x.
fn fit(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = points.len() as f64;
    if points.len() < 3 {
        return None;
    }
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |a, p| (a.0 + p.0, a.1 + p.1));
    let (mx, my) = (sx / n, sy / n);
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let slope = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum::<f64>() / sxx;
    let at = |x: f64| my + slope * (x - mx);
    Some((at(points[0].0), at(points[points.len() - 1].0)))
}

/// Analyse a result set from its summary and (if it had successful
/// requests) its chart data.
pub(crate) fn analyse(s: &Summary, data: Option<&SetData>) -> Analysis {
    let ratio = |a: f64, b: f64| (b > 0.0).then(|| a / b);
    let mut a = Analysis {
        e2e_cv: s
            .e2e_latency
            .as_ref()
            .and_then(|d| ratio(d.std_dev, d.mean)),
        ttft_tail_ratio: s.ttft.as_ref().and_then(|d| ratio(d.p99, d.p50)),
        e2e_tail_ratio: s.e2e_latency.as_ref().and_then(|d| ratio(d.p99, d.p50)),
        itl_jitter_ms: s.itl.as_ref().map(|d| d.p99 - d.p50),
        ..Analysis::default()
    };
    if let Some(d) = data {
        // The timeline without its last interval, which the run's end cuts short.
        let mut tps: Vec<(f64, f64)> = d
            .timeline
            .iter()
            .map(|(&i, b)| {
                (
                    i as f64 * d.width_ms / 1e3,
                    b.output_tokens as f64 / (d.width_ms / 1e3),
                )
            })
            .collect();
        tps.pop();
        if let Some((first, last)) = fit(&tps) {
            a.throughput_drift = ratio(last - first, first);
        }
        let mut rates: Vec<f64> = tps.iter().map(|p| p.1).collect();
        rates.sort_by(f64::total_cmp);
        if let Some(&mid) = rates.get(rates.len() / 2) {
            a.slow_intervals = rates.iter().filter(|&&r| r < mid / 2.0).count() as u64;
        }
        if let Some((median, mad)) = median_mad(&d.e2e_us, 1e3) {
            let limit = median + ANOMALY_MADS * mad.max(median * 0.01);
            a.anomaly_threshold_ms = Some(limit);
            a.anomalies = d
                .e2e_us
                .iter_recorded()
                .filter(|v| v.value_iterated_to() as f64 / 1e3 > limit)
                .map(|v| v.count_at_value())
                .sum();
        }
        a.ttft_prompt_correlation = d.ttft_prompt.correlation();
    }
    a.recommendations = recommend(s, &a);
    a
}

/// The recommendations the figures support.
fn recommend(s: &Summary, a: &Analysis) -> Vec<String> {
    let mut out = Vec::new();
    if s.requests > 0 && s.success_rate < 0.99 {
        out.push(format!(
            "{:.1}% of requests failed: the figures describe the ones that succeeded; see errors_by_kind and requests.jsonl",
            (1.0 - s.success_rate) * 100.0
        ));
    }
    if let Some(r) = a.ttft_tail_ratio.filter(|r| *r > 3.0) {
        out.push(format!(
            "TTFT has a long tail (p99 is {r:.1} times p50): some requests wait in a queue; fewer concurrent requests or a larger batch budget would shorten it"
        ));
    }
    if let Some(cv) = a.e2e_cv.filter(|cv| *cv > 0.5) {
        out.push(format!(
            "end-to-end latency is unpredictable (coefficient of variation {cv:.2}): look at the spread of output lengths and at queueing"
        ));
    }
    if let Some(d) = a.throughput_drift.filter(|d| *d < -0.1) {
        out.push(format!(
            "output throughput fell {:.0}% from the start of the run to its end: thermal throttling, memory growth or a filling cache; a longer warm-up or an endurance run would tell",
            -d * 100.0
        ));
    }
    let share = |n: u64| n as f64 / s.successes.max(1) as f64;
    if a.anomalies > 0 && share(a.anomalies) > 0.01 {
        out.push(format!(
            "{} requests ({:.1}%) took far longer than the rest (over {:.0} ms end to end): find them in requests.jsonl by e2e_latency_ms",
            a.anomalies,
            share(a.anomalies) * 100.0,
            a.anomaly_threshold_ms.unwrap_or(0.0)
        ));
    }
    if let Some(r) = a.ttft_prompt_correlation.filter(|r| *r > 0.8) {
        out.push(format!(
            "TTFT grows with prompt length (r = {r:.2}): prefill dominates time to first token; prompt caching or chunked prefill would help"
        ));
    }
    if !s.warnings.is_empty() {
        out.push(
            "the client may have been the limit (see warnings): run the client on a separate machine or with fewer streams"
                .into(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::test_support::record;
    use crate::measure::Aggregate;
    use crate::report::chart_data::ChartData;
    use crate::report::RunData;

    /// `n` requests 10 ms apart; request `i` has prompt length `prompt(i)`,
    /// TTFT `ttft(i)` and e2e `e2e(i)`.
    fn set(
        n: u32,
        prompt: impl Fn(u32) -> u32,
        ttft: impl Fn(u32) -> f64,
        e2e: impl Fn(u32) -> f64,
    ) -> (Summary, ChartData) {
        let mut agg = Aggregate::default();
        let mut charts = ChartData::new(&RunData::default());
        for i in 0..n {
            let mut r = record(f64::from(i) * 10.0, ttft(i), e2e(i), &[5.0, 5.0], 3);
            r.prompt_tokens = Some(prompt(i));
            agg.add(&r);
            charts.add(&r);
        }
        (agg.summary(), charts)
    }

    fn only(charts: &ChartData) -> &SetData {
        charts.sets.values().next().unwrap()
    }

    #[test]
    fn a_steady_set_has_no_recommendation() {
        let (s, c) = set(1000, |_| 20, |_| 20.0, |i| 100.0 + f64::from(i % 3));
        let a = analyse(&s, Some(only(&c)));
        assert_eq!(a.anomalies, 0);
        assert!(a.e2e_cv.unwrap() < 0.05);
        assert!(a.recommendations.is_empty(), "{:?}", a.recommendations);
    }

    #[test]
    fn outliers_are_counted_by_the_mad_rule() {
        // 2% of requests take 10 times as long.
        let (s, c) = set(
            1000,
            |_| 20,
            |_| 20.0,
            |i| {
                if i % 50 == 0 {
                    1000.0
                } else {
                    100.0 + f64::from(i % 5)
                }
            },
        );
        let a = analyse(&s, Some(only(&c)));
        assert_eq!(a.anomalies, 20);
        assert!(
            a.recommendations
                .iter()
                .any(|r| r.starts_with("20 requests (2.0%) took far longer")),
            "{:?}",
            a.recommendations
        );
    }

    #[test]
    fn ttft_following_prompt_length_and_a_long_tail_are_named() {
        let square = |i: u32| f64::from(i * i) / 100.0;
        let (s, c) = set(
            1000,
            |i| 10 + i,
            |i| 10.0 + square(i),
            |i| 200.0 + square(i),
        );
        let a = analyse(&s, Some(only(&c)));
        assert!(a.ttft_prompt_correlation.unwrap() > 0.95);
        assert!(a.ttft_tail_ratio.unwrap() > 3.0);
        let text = a.recommendations.join("\n");
        assert!(
            text.contains("TTFT grows with prompt length (r = 0.9"),
            "{text}"
        );
        assert!(text.contains("TTFT has a long tail"), "{text}");
    }

    #[test]
    fn falling_throughput_is_drift() {
        // Requests 10 ms apart at first, 40 ms apart at the end: the same
        // tokens each, so output tokens/s falls.
        let mut agg = Aggregate::default();
        let mut charts = ChartData::new(&RunData::default());
        let mut t = 0.0;
        for i in 0..2000 {
            t += 10.0 + 30.0 * f64::from(i) / 2000.0;
            let r = record(t, 20.0, 50.0, &[5.0], 2);
            agg.add(&r);
            charts.add(&r);
        }
        let a = analyse(&agg.summary(), Some(only(&charts)));
        assert!(a.throughput_drift.unwrap() < -0.5, "{a:?}");
        assert!(a
            .recommendations
            .iter()
            .any(|r| r.starts_with("output throughput fell")));
    }
}
