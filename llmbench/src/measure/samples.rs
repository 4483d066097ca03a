//! The per-request samples a comparison needs, kept in bounded memory: a
//! seeded reservoir (at most [`RESERVOIR`] values per metric) of TTFT, ITL,
//! TPOT, e2e latency and per-request output rate; success and failure
//! counts; and per-second buckets of completions, output tokens and good
//! requests, from which rates get their confidence intervals. Baselines
//! store these; comparisons resample them.

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::RequestRecord;

/// The most values kept per metric: enough for a p99 to within a fraction
/// of a percent, small enough for a baseline file to stay a few MB.
pub const RESERVOIR: usize = 20_000;

/// A uniform random sample of at most [`RESERVOIR`] values (Algorithm R,
/// seeded, so the same stream keeps the same values).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Reservoir {
    /// Values offered so far.
    pub seen: u64,
    /// The sample.
    pub values: Vec<f64>,
}

impl Reservoir {
    fn add(&mut self, v: f64, rng: &mut ChaCha8Rng) {
        if !v.is_finite() {
            return;
        }
        self.seen += 1;
        if self.values.len() < RESERVOIR {
            self.values.push(v);
        } else {
            let j = rng.random_range(0..self.seen);
            if let Some(slot) = usize::try_from(j).ok().and_then(|j| self.values.get_mut(j)) {
                *slot = v;
            }
        }
    }
}

/// Completions in one second of a result set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Second {
    /// Successful requests that finished in it.
    pub completions: u64,
    /// Their output tokens.
    pub output_tokens: u64,
    /// Of them, those that met every SLO.
    pub good: u64,
}

/// The samples of one result set.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Samples {
    /// Time to first token (ms).
    pub ttft: Reservoir,
    /// Inter-token gaps (ms), pooled.
    pub itl: Reservoir,
    /// Time per output token (ms).
    pub tpot: Reservoir,
    /// End-to-end latency (ms).
    pub e2e: Reservoir,
    /// Per-request output tokens per second.
    pub output_tps: Reservoir,
    /// Requests that succeeded.
    pub successes: u64,
    /// Requests that failed.
    pub failures: u64,
    /// Per second from the trial's start (by completion time).
    pub seconds: BTreeMap<u64, Second>,
    #[serde(skip, default = "seeded")]
    rng: ChaCha8Rng,
}

fn seeded() -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(0x05A3_F1E5)
}

impl Default for Samples {
    fn default() -> Self {
        Samples {
            ttft: Reservoir::default(),
            itl: Reservoir::default(),
            tpot: Reservoir::default(),
            e2e: Reservoir::default(),
            output_tps: Reservoir::default(),
            successes: 0,
            failures: 0,
            seconds: BTreeMap::new(),
            rng: seeded(),
        }
    }
}

impl PartialEq for Samples {
    fn eq(&self, other: &Self) -> bool {
        self.ttft == other.ttft
            && self.itl == other.itl
            && self.tpot == other.tpot
            && self.e2e == other.e2e
            && self.output_tps == other.output_tps
            && self.successes == other.successes
            && self.failures == other.failures
            && self.seconds == other.seconds
    }
}

impl Samples {
    /// Add one record (warm-up left out, as in the summary).
    pub fn add(&mut self, r: &RequestRecord) {
        if r.warmup {
            return;
        }
        if !r.success {
            self.failures += 1;
            return;
        }
        self.successes += 1;
        let rng = &mut self.rng;
        for (res, v) in [
            (&mut self.ttft, r.ttft_ms),
            (&mut self.tpot, r.tpot_ms),
            (&mut self.e2e, Some(r.e2e_latency_ms)),
            (&mut self.output_tps, r.output_tps),
        ] {
            if let Some(v) = v {
                res.add(v, rng);
            }
        }
        for &gap in &r.itl_ms {
            self.itl.add(gap, rng);
        }
        let origin = if r.latency_from_schedule {
            r.scheduled_ms
        } else {
            r.sent_ms
        };
        let second = ((origin + r.e2e_latency_ms) / 1e3).max(0.0) as u64;
        let s = self.seconds.entry(second).or_default();
        s.completions += 1;
        s.output_tokens += u64::from(r.output_tokens.unwrap_or(0));
        s.good += u64::from(r.slo_met == Some(true));
    }

    /// Requests seen.
    pub fn requests(&self) -> u64 {
        self.successes + self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::test_support::record;

    #[test]
    fn the_reservoir_is_bounded_uniform_and_repeatable() {
        let mut a = Samples::default();
        let mut b = Samples::default();
        for i in 0..100_000u32 {
            let r = record(f64::from(i), f64::from(i), f64::from(i) + 10.0, &[1.0], 2);
            a.add(&r);
            b.add(&r);
        }
        assert_eq!(a, b, "seeded: the same stream keeps the same sample");
        assert_eq!(a.ttft.seen, 100_000);
        assert_eq!(a.ttft.values.len(), RESERVOIR);
        let mean = a.ttft.values.iter().sum::<f64>() / RESERVOIR as f64;
        assert!(
            (mean - 50_000.0).abs() < 1_000.0,
            "uniform over the stream: {mean}"
        );
        assert_eq!(a.successes, 100_000);
        let total: u64 = a.seconds.values().map(|s| s.completions).sum();
        assert_eq!(total, 100_000);
    }
}
