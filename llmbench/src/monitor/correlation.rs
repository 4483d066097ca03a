//! Whether throughput and TTFT moved with the GPUs' utilisation, the KV
//! cache and the engine's queue: Pearson's r over the sampling intervals of
//! a trial, each interval's output tokens/s and mean TTFT against the
//! series' value sampled at its end. Pure: rows and request points in,
//! figures out.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Readings;
use crate::measure::RequestRecord;

/// Fewer intervals than this give no figure.
pub const MIN_INTERVALS: usize = 3;

/// When one request's output arrived, on the trial's clock.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RequestPoint {
    /// Its first token, seconds since `t0`.
    pub first_token_s: Option<f64>,
    /// Its TTFT, ms.
    pub ttft_ms: Option<f64>,
    /// Its end, seconds since `t0`.
    pub end_s: f64,
    /// Its output tokens (0 for a failure).
    pub output_tokens: u32,
}

impl RequestPoint {
    /// The point of `record`.
    pub fn of(record: &RequestRecord) -> RequestPoint {
        let origin = if record.latency_from_schedule {
            record.scheduled_ms
        } else {
            record.sent_ms
        };
        RequestPoint {
            first_token_s: record.ttft_ms.map(|t| (origin + t) / 1e3),
            ttft_ms: record.ttft_ms,
            end_s: (origin + record.e2e_latency_ms) / 1e3,
            output_tokens: if record.success {
                record.output_tokens.unwrap_or(0)
            } else {
                0
            },
        }
    }
}

/// The first width of a [`Timeline`]'s bins, seconds.
const FIRST_BIN_S: f64 = 0.01;
/// The most bins a [`Timeline`] holds; past it, neighbours merge and the
/// width doubles, so its memory is bounded however long the run.
const MOST_BINS: usize = 1 << 15;

/// The requests' output over the trial's time, in bins: tokens by when
/// their request ended, TTFTs by when their first token came. Its size
/// depends on the trial's length, never on its number of requests (an
/// endurance run's memory stays flat).
#[derive(Clone, Debug)]
pub struct Timeline {
    width_s: f64,
    bins: Vec<Bin>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Bin {
    tokens: u64,
    ttft_sum_ms: f64,
    firsts: u64,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline {
            width_s: FIRST_BIN_S,
            bins: Vec::new(),
        }
    }
}

impl Timeline {
    /// Count `record` in.
    pub fn add(&mut self, record: &RequestRecord) {
        self.add_point(RequestPoint::of(record));
    }

    /// Count `p` in.
    pub fn add_point(&mut self, p: RequestPoint) {
        if let Some(bin) = self.bin(p.end_s) {
            bin.tokens += u64::from(p.output_tokens);
        }
        if let (Some(t), Some(ttft)) = (p.first_token_s, p.ttft_ms) {
            if let Some(bin) = self.bin(t) {
                bin.ttft_sum_ms += ttft;
                bin.firsts += 1;
            }
        }
    }

    /// The bin of time `t_s`, made (and the bins widened) as needed.
    fn bin(&mut self, t_s: f64) -> Option<&mut Bin> {
        if !t_s.is_finite() || t_s < 0.0 {
            return None;
        }
        let mut index = (t_s / self.width_s) as usize;
        while index >= MOST_BINS {
            self.widen();
            index = (t_s / self.width_s) as usize;
        }
        if index >= self.bins.len() {
            self.bins.resize(index + 1, Bin::default());
        }
        self.bins.get_mut(index)
    }

    /// Merge neighbouring bins: twice the width, half the bins.
    fn widen(&mut self) {
        self.bins = self
            .bins
            .chunks(2)
            .map(|pair| {
                pair.iter().fold(Bin::default(), |a, b| Bin {
                    tokens: a.tokens + b.tokens,
                    ttft_sum_ms: a.ttft_sum_ms + b.ttft_sum_ms,
                    firsts: a.firsts + b.firsts,
                })
            })
            .collect();
        self.width_s *= 2.0;
    }

    /// Each bin with its middle, seconds since `t0`.
    fn by_time(&self) -> impl Iterator<Item = (f64, &Bin)> {
        let w = self.width_s;
        self.bins
            .iter()
            .enumerate()
            .map(move |(i, b)| ((i as f64 + 0.5) * w, b))
    }
}

/// How one series moved with the requests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Correlation {
    /// r with each interval's output tokens per second; `None` with fewer
    /// than three intervals or a series that did not vary.
    pub output_tps: Option<f64>,
    /// r with each interval's mean TTFT (intervals where a first token
    /// arrived).
    pub ttft: Option<f64>,
    /// Intervals with a value of the series.
    pub intervals: u64,
}

/// Whether `column` is correlated: GPU utilisation, KV cache, queue depth.
pub fn correlated(column: &str) -> bool {
    (column.starts_with("gpu") && column.ends_with("_util_pct"))
        || column == "engine_kv_cache_usage"
        || column == "engine_requests_waiting"
}

/// The correlations of every [`correlated`] series in `rows` (`t_s` and
/// the sample) with the requests' output in `timeline`. Each interval
/// counts the bins whose middle falls in it.
pub fn correlate(rows: &[(f64, Readings)], timeline: &Timeline) -> BTreeMap<String, Correlation> {
    // Interval i runs from the sample before (or t0) to sample i.
    let mut tps = Vec::with_capacity(rows.len());
    let mut ttft = Vec::with_capacity(rows.len());
    let mut start = 0.0;
    let mut bins = timeline.by_time().peekable();
    for (end, _) in rows {
        let (mut tokens, mut ttft_sum, mut firsts) = (0u64, 0.0, 0u64);
        // Bins come in time order: each is counted once, in the first
        // interval that ends after its middle.
        while let Some((_, bin)) = bins.next_if(|(mid, _)| *mid <= *end) {
            tokens += bin.tokens;
            ttft_sum += bin.ttft_sum_ms;
            firsts += bin.firsts;
        }
        let span = end - start;
        tps.push((span > 0.0).then(|| tokens as f64 / span));
        ttft.push((firsts > 0).then(|| ttft_sum / firsts as f64));
        start = *end;
    }
    let mut columns: Vec<&str> = rows
        .iter()
        .flat_map(|(_, r)| r.iter().map(|(c, _)| c))
        .filter(|c| correlated(c))
        .collect();
    columns.sort_unstable();
    columns.dedup();
    columns
        .into_iter()
        .map(|column| {
            let values: Vec<Option<f64>> = rows.iter().map(|(_, r)| r.get(column)).collect();
            let figure = Correlation {
                output_tps: pearson(&values, &tps),
                ttft: pearson(&values, &ttft),
                intervals: values.iter().flatten().count() as u64,
            };
            (column.to_string(), figure)
        })
        .collect()
}

/// Pearson's r over the pairs where both have a value.
fn pearson(xs: &[Option<f64>], ys: &[Option<f64>]) -> Option<f64> {
    let pairs: Vec<(f64, f64)> = xs
        .iter()
        .zip(ys)
        .filter_map(|(x, y)| Some(((*x)?, (*y)?)))
        .collect();
    if pairs.len() < MIN_INTERVALS {
        return None;
    }
    let n = pairs.len() as f64;
    let mx = pairs.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pairs.iter().map(|p| p.1).sum::<f64>() / n;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in &pairs {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx) * (x - mx);
        syy += (y - my) * (y - my);
    }
    let r = sxy / (sxx * syy).sqrt();
    r.is_finite().then_some(r.clamp(-1.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(t: f64, waiting: f64) -> (f64, Readings) {
        let mut r = Readings::default();
        r.set("engine_requests_waiting", waiting);
        r.set("host_cpu_pct", 10.0);
        (t, r)
    }

    fn point(first: f64, ttft_ms: f64, end: f64, tokens: u32) -> RequestPoint {
        RequestPoint {
            first_token_s: Some(first),
            ttft_ms: Some(ttft_ms),
            end_s: end,
            output_tokens: tokens,
        }
    }

    fn timeline(points: &[RequestPoint]) -> Timeline {
        let mut t = Timeline::default();
        for p in points {
            t.add_point(*p);
        }
        t
    }

    #[test]
    fn a_long_timeline_widens_its_bins_and_keeps_every_token() {
        let mut t = Timeline::default();
        let mut total = 0;
        for i in 0..2_000u32 {
            let at = f64::from(i); // 2,000 s: far past the first bins
            t.add_point(point(at, 10.0, at + 0.5, 3));
            total += 3;
        }
        assert!(t.bins.len() <= MOST_BINS);
        assert!(t.width_s > FIRST_BIN_S);
        assert_eq!(t.bins.iter().map(|b| b.tokens).sum::<u64>(), total);
        assert_eq!(t.bins.iter().map(|b| b.firsts).sum::<u64>(), 2_000);
    }

    #[test]
    fn a_growing_queue_goes_with_slower_first_tokens_and_fewer_tokens() {
        let rows = [row(1.0, 0.0), row(2.0, 2.0), row(3.0, 4.0), row(4.0, 6.0)];
        let points = [
            point(0.5, 100.0, 0.9, 400),
            point(1.5, 200.0, 1.9, 300),
            point(2.5, 300.0, 2.9, 200),
            point(3.5, 400.0, 3.9, 100),
        ];
        let c = correlate(&rows, &timeline(&points));
        assert_eq!(c.keys().collect::<Vec<_>>(), ["engine_requests_waiting"]);
        let waiting = &c["engine_requests_waiting"];
        assert_eq!(waiting.intervals, 4);
        assert!((waiting.ttft.unwrap() - 1.0).abs() < 1e-9, "{waiting:?}");
        assert!(
            (waiting.output_tps.unwrap() + 1.0).abs() < 1e-9,
            "{waiting:?}"
        );
    }

    #[test]
    fn too_few_intervals_or_a_flat_series_give_no_figure() {
        let rows = [row(1.0, 1.0), row(2.0, 2.0)];
        let points = [point(0.5, 100.0, 0.9, 4), point(1.5, 200.0, 1.9, 3)];
        let c = correlate(&rows, &timeline(&points));
        assert_eq!(c["engine_requests_waiting"].ttft, None);
        let flat = [row(1.0, 3.0), row(2.0, 3.0), row(3.0, 3.0)];
        let c = correlate(&flat, &timeline(&points));
        assert_eq!(c["engine_requests_waiting"].output_tps, None);
        assert!(correlate(&[], &timeline(&points)).is_empty());
    }

    #[test]
    fn the_series_that_are_correlated() {
        assert!(correlated("gpu3_util_pct"));
        assert!(correlated("engine_kv_cache_usage"));
        assert!(!correlated("gpu0_temp_c"));
        assert!(!correlated("host_cpu_pct"));
    }
}
