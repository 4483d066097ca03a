//! The scaling table of a sequence of steps (`Load::sweep`, `Load::steps`):
//! per level, the throughput and latency it gave, and the saturation point,
//! the level past which more load stopped buying throughput and only bought
//! latency.

use serde::{Deserialize, Serialize};

use super::Summary;
use crate::load::Level;

/// Throughput must grow by at least this share of the load's growth for a
/// step up to count as still scaling: doubling the load and gaining under
/// 25% more throughput is saturation.
pub const SCALING_EFFICIENCY: f64 = 0.25;

/// ...provided latency also climbed by at least this much (25%): a step
/// that gains little throughput at the same latency is not saturated, just
/// short of work (a closed loop whose users were already idle, say).
pub const LATENCY_CLIMB: f64 = 0.25;

/// One step of the table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScalingRow {
    /// The step, as written in `summary.json`'s `step` ("8 users", "4 req/s").
    pub step: String,
    /// Users, or requests per second, as the step asked.
    pub level: f64,
    /// Requests sent.
    pub requests: u64,
    /// `successes / requests`.
    pub success_rate: f64,
    /// Successful requests per second.
    pub request_throughput: f64,
    /// Output tokens per second.
    pub output_token_throughput: f64,
    /// TTFT median (ms).
    pub ttft_p50_ms: Option<f64>,
    /// TTFT 99th percentile (ms).
    pub ttft_p99_ms: Option<f64>,
    /// End-to-end latency median (ms).
    pub e2e_p50_ms: Option<f64>,
    /// Requests per second meeting every SLO; `None` without SLOs.
    pub goodput: Option<f64>,
}

/// Where a sequence stopped scaling.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Saturation {
    /// The last step whose throughput still grew with the load.
    pub step: String,
    /// Its throughput (requests per second).
    pub request_throughput: f64,
    /// What the next step up showed, in words.
    pub why: String,
}

/// A sequence's steps side by side, in order of level.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScalingTable {
    /// The scenario.
    pub scenario: String,
    /// The engine.
    pub engine: String,
    /// `users` or `req/s`: what the levels count.
    pub unit: String,
    /// One row per step, lowest level first.
    pub rows: Vec<ScalingRow>,
    /// The step with the highest request throughput.
    pub peak_step: Option<String>,
    /// Where throughput stopped growing while latency climbed; `None`
    /// when every step up still paid (or there was one step).
    pub saturation: Option<Saturation>,
}

/// The latency a step's saturation is judged by: TTFT median, else e2e.
fn latency(row: &ScalingRow) -> Option<f64> {
    row.ttft_p50_ms.or(row.e2e_p50_ms)
}

/// The table of `steps` (each a level, its label and its figures), sorted by
/// level, with its peak and saturation point.
pub fn scaling_table(
    scenario: &str,
    engine: &str,
    steps: &[(Level, String, Summary)],
) -> ScalingTable {
    let mut rows: Vec<ScalingRow> = steps
        .iter()
        .map(|(level, step, s)| ScalingRow {
            step: step.clone(),
            level: match *level {
                Level::Users(n) => f64::from(n),
                Level::Rate(r) => r,
            },
            requests: s.requests,
            success_rate: s.success_rate,
            request_throughput: s.request_throughput,
            output_token_throughput: s.output_token_throughput,
            ttft_p50_ms: s.ttft.as_ref().map(|d| d.p50),
            ttft_p99_ms: s.ttft.as_ref().map(|d| d.p99),
            e2e_p50_ms: s.e2e_latency.as_ref().map(|d| d.p50),
            goodput: s.goodput,
        })
        .collect();
    rows.sort_by(|a, b| a.level.total_cmp(&b.level));
    let unit = match steps.first().map(|s| s.0) {
        Some(Level::Rate(_)) => "req/s",
        _ => "users",
    };
    let peak_step = rows
        .iter()
        .max_by(|a, b| a.request_throughput.total_cmp(&b.request_throughput))
        .map(|r| r.step.clone());
    let saturation = rows.windows(2).find_map(|pair| {
        let [lo, hi] = pair else { return None };
        saturated(lo, hi).map(|why| Saturation {
            step: lo.step.clone(),
            request_throughput: lo.request_throughput,
            why,
        })
    });
    ScalingTable {
        scenario: scenario.to_string(),
        engine: engine.to_string(),
        unit: unit.to_string(),
        rows,
        peak_step,
        saturation,
    }
}

/// Why going from `lo` to `hi` shows saturation, if it does.
fn saturated(lo: &ScalingRow, hi: &ScalingRow) -> Option<String> {
    if lo.level <= 0.0 || lo.request_throughput <= 0.0 || hi.level <= lo.level {
        return None;
    }
    let load = hi.level / lo.level - 1.0;
    let gain = hi.request_throughput / lo.request_throughput - 1.0;
    let (l0, l1) = (latency(lo)?, latency(hi)?);
    let climb = l1 / l0 - 1.0;
    (gain < SCALING_EFFICIENCY * load && climb >= LATENCY_CLIMB).then(|| {
        let which = if lo.ttft_p50_ms.is_some() {
            "ttft p50"
        } else {
            "e2e p50"
        };
        format!(
            "{}: {:+.0}% load gave {:+.0}% throughput while {which} rose {:+.0}%",
            hi.step,
            load * 100.0,
            gain * 100.0,
            climb * 100.0
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::test_support::record;
    use crate::measure::Aggregate;

    /// A step's summary: `n` requests of `ttft` ms, finishing over `secs`.
    fn step(users: u32, n: u32, secs: f64, ttft: f64) -> (Level, String, Summary) {
        let mut agg = Aggregate::default();
        for i in 0..n {
            let sent = f64::from(i) * secs * 1e3 / f64::from(n);
            agg.add(&record(sent, ttft, ttft + 1.0, &[1.0], 2));
        }
        (Level::Users(users), format!("{users} users"), agg.summary())
    }

    #[test]
    fn throughput_that_stops_growing_while_latency_climbs_is_saturation() {
        // About 10 s each: 1 user -> 10 req/s, 2 -> 20, 4 -> 38, 8 -> 39.7 (ttft
        // 4.5 times higher), 16 -> 38.5.
        let steps = [
            step(8, 400, 10.0, 100.0),
            step(1, 100, 10.0, 20.0),
            step(2, 200, 10.0, 20.0),
            step(16, 390, 10.0, 400.0),
            step(4, 380, 10.0, 22.0),
        ];
        let t = scaling_table("chat", "sim", &steps);
        let levels: Vec<f64> = t.rows.iter().map(|r| r.level).collect();
        assert_eq!(levels, [1.0, 2.0, 4.0, 8.0, 16.0], "sorted by level");
        assert_eq!(t.unit, "users");
        assert_eq!(t.peak_step.as_deref(), Some("8 users"));
        let sat = t.saturation.unwrap();
        assert_eq!(sat.step, "4 users");
        assert!(
            sat.why
                .starts_with("8 users: +100% load gave +4% throughput while ttft p50 rose +355%"),
            "{}",
            sat.why
        );
    }

    #[test]
    fn a_sequence_that_keeps_scaling_has_no_saturation() {
        let steps = [step(1, 100, 10.0, 20.0), step(2, 190, 10.0, 21.0)];
        let t = scaling_table("chat", "sim", &steps);
        assert!(t.saturation.is_none());
        assert_eq!(t.rows[1].ttft_p50_ms.map(f64::round), Some(21.0));
        // Little gain at the same latency: short of work, not saturated.
        let idle = [step(1, 100, 10.0, 20.0), step(2, 101, 10.0, 20.0)];
        assert!(scaling_table("chat", "sim", &idle).saturation.is_none());
    }
}
