//! Histograms read from Prometheus text: cumulative buckets, `_sum` and
//! `_count`, and quantiles estimated as Prometheus's `histogram_quantile` does.

/// A histogram's cumulative buckets, lowest bound first, with `_sum` and
/// `_count` where the text has them.
#[derive(Clone, Debug, PartialEq)]
pub struct Histogram {
    /// Buckets sorted by `le`; the last is `+Inf` in a complete histogram.
    pub buckets: Vec<Bucket>,
    /// The `_sum` sample.
    pub sum: Option<f64>,
    /// The `_count` sample.
    pub count: Option<f64>,
}

/// One cumulative bucket: `count` observations were at most `le`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bucket {
    /// The upper bound (the `le` label).
    pub le: f64,
    /// Observations at most `le`.
    pub count: f64,
}

impl Histogram {
    /// `_sum / _count`, when both exist and the count is not zero.
    pub fn mean(&self) -> Option<f64> {
        let (sum, count) = (self.sum?, self.count?);
        (count > 0.0).then(|| sum / count)
    }

    /// The `q` quantile (0 to 1) estimated as Prometheus's
    /// `histogram_quantile` does: linear within the bucket holding the rank,
    /// the first bucket starting at 0, the highest finite bound for a rank in
    /// the `+Inf` bucket. `None` where it gives NaN: fewer than two buckets,
    /// no `+Inf` bucket, no observations, or `q` outside 0..=1.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.buckets.len();
        if !(0.0..=1.0).contains(&q) || n < 2 || self.buckets.last()?.le != f64::INFINITY {
            return None;
        }
        // Counts scraped mid-update can dip; Prometheus forces them monotonic.
        let mut counts = Vec::with_capacity(n);
        for b in &self.buckets {
            counts.push(b.count.max(counts.last().copied().unwrap_or(0.0)));
        }
        let total = *counts.last()?;
        if total <= 0.0 {
            return None;
        }
        let rank = q * total;
        let b = counts.iter().take(n - 1).position(|&c| c >= rank);
        let Some(b) = b else {
            return Some(self.buckets.get(n - 2)?.le);
        };
        let end = self.buckets.get(b)?.le;
        if b == 0 && end <= 0.0 {
            return Some(end);
        }
        let (start, below) = match b.checked_sub(1) {
            Some(p) => (self.buckets.get(p)?.le, *counts.get(p)?),
            None => (0.0, 0.0),
        };
        let v = start + (end - start) * ((rank - below) / (counts.get(b)? - below));
        (!v.is_nan()).then_some(v)
    }
}
