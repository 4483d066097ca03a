//! Verdicts, criterion-style, per metric of a result set against its
//! baseline: the change in the statistic that matters (p50 and p99 for
//! latencies, the mean per-second rate for throughputs), its 95% bootstrap
//! interval, a significance test, and one of improved, regressed, no change
//! or within noise. Pure functions of two sets of samples.

use serde::{Deserialize, Serialize};

use super::stats::{bootstrap_change, mann_whitney, two_proportions, welch, Statistic};
use crate::measure::Samples;

/// How a metric moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Significantly better, by more than the noise threshold.
    Improved,
    /// Significantly worse, by more than the noise threshold.
    Regressed,
    /// No significant difference.
    NoChange,
    /// Significant, but within the noise threshold.
    WithinNoise,
}

impl Verdict {
    /// The verdict in words.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Improved => "improved",
            Verdict::Regressed => "regressed",
            Verdict::NoChange => "no change",
            Verdict::WithinNoise => "within noise",
        }
    }
}

/// How a comparison judges.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CompareConfig {
    /// A relative change smaller than this is noise (default 0.05).
    pub noise: f64,
    /// p-values at or above this are not significant (default 0.05).
    pub significance: f64,
    /// The error rate must move by more than this many percentage points
    /// (default 1) to count.
    pub error_rate_points: f64,
    /// Seed of the bootstrap.
    pub seed: u64,
}

impl Default for CompareConfig {
    fn default() -> Self {
        CompareConfig {
            noise: 0.05,
            significance: 0.05,
            error_rate_points: 1.0,
            seed: 0xBA5E,
        }
    }
}

/// One metric, baseline against now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricChange {
    /// `ttft p99`, `output tok/s`, `error rate`, ...
    pub metric: String,
    /// Its unit: `ms`, `tok/s`, `req/s`, `%`.
    pub unit: String,
    /// The baseline's value.
    pub old: f64,
    /// This run's value.
    pub new: f64,
    /// `new / old - 1` (for the error rate: `new - old` in percentage points).
    pub change: f64,
    /// The 95% bootstrap interval of `change`, when there is one.
    pub ci: Option<[f64; 2]>,
    /// The significance test's p-value, when one could be made.
    pub p_value: Option<f64>,
    /// The verdict.
    pub verdict: Verdict,
}

impl MetricChange {
    /// A criterion-style line: `ttft p99  412 ms -> 461 ms  +11.9% [+8.1%, +15.6%]  regressed`.
    pub fn line(&self) -> String {
        let v = |x: f64| match self.unit.as_str() {
            "%" => format!("{x:.2}%"),
            u if x >= 100.0 => format!("{x:.0} {u}"),
            u => format!("{x:.2} {u}"),
        };
        let change = if self.unit == "%" {
            format!("{:+.2} points", self.change)
        } else {
            format!("{:+.1}%", self.change * 100.0)
        };
        let ci = self.ci.map_or_else(String::new, |[lo, hi]| {
            format!(" [{:+.1}%, {:+.1}%]", lo * 100.0, hi * 100.0)
        });
        format!(
            "{:<12} {} -> {}  {change}{ci}  {}",
            self.metric,
            v(self.old),
            v(self.new),
            self.verdict.as_str()
        )
    }
}

fn verdict(
    change: f64,
    ci: Option<(f64, f64)>,
    p: Option<f64>,
    higher_is_better: bool,
    cfg: &CompareConfig,
) -> Verdict {
    if p.is_some_and(|p| p >= cfg.significance) {
        return Verdict::NoChange;
    }
    let (lo, hi) = ci.unwrap_or((change, change));
    let (up, down) = (lo > cfg.noise, hi < -cfg.noise);
    match (up, down, higher_is_better) {
        (true, _, false) | (_, true, true) => Verdict::Regressed,
        (true, _, true) | (_, true, false) => Verdict::Improved,
        _ => Verdict::WithinNoise,
    }
}

/// Per-second rates of the interior seconds (the first and last are cut
/// short by the run's start and end) when there are enough, else all.
fn rates(s: &Samples, f: impl Fn(&crate::measure::Second) -> u64) -> Vec<f64> {
    let all: Vec<f64> = s.seconds.values().map(|x| f(x) as f64).collect();
    if all.len() >= 5 {
        all[1..all.len() - 1].to_vec()
    } else {
        all
    }
}

/// Compare `new` against the baseline `old`, metric by metric.
pub fn compare(old: &Samples, new: &Samples, cfg: &CompareConfig) -> Vec<MetricChange> {
    let mut out = Vec::new();
    let latencies = [
        ("ttft", &old.ttft, &new.ttft),
        ("itl", &old.itl, &new.itl),
        ("tpot", &old.tpot, &new.tpot),
        ("e2e", &old.e2e, &new.e2e),
    ];
    for (name, a, b) in latencies {
        if a.values.is_empty() || b.values.is_empty() {
            continue;
        }
        let p = mann_whitney(&a.values, &b.values);
        for pct in [50.0, 99.0] {
            let stat = Statistic::Percentile(pct);
            let (Some(x), Some(y)) = (
                stat.of(&mut a.values.clone()),
                stat.of(&mut b.values.clone()),
            ) else {
                continue;
            };
            if x <= 0.0 {
                continue;
            }
            let change = y / x - 1.0;
            let ci = bootstrap_change(&a.values, &b.values, stat, cfg.seed);
            out.push(MetricChange {
                metric: format!("{name} p{pct:.0}"),
                unit: "ms".into(),
                old: x,
                new: y,
                change,
                ci: ci.map(|(l, h)| [l, h]),
                p_value: p,
                verdict: verdict(change, ci, p, false, cfg),
            });
        }
    }
    type Rate = fn(&crate::measure::Second) -> u64;
    let per_second: [(&str, &str, Rate); 3] = [
        ("output tok/s", "tok/s", |s| s.output_tokens),
        ("requests/s", "req/s", |s| s.completions),
        ("goodput", "req/s", |s| s.good),
    ];
    for (name, unit, f) in per_second {
        let (a, b) = (rates(old, f), rates(new, f));
        let (Some(x), Some(y)) = (
            Statistic::Mean.of(&mut a.clone()),
            Statistic::Mean.of(&mut b.clone()),
        ) else {
            continue;
        };
        if x <= 0.0 {
            continue; // no goodput without SLOs, nothing to compare
        }
        let change = y / x - 1.0;
        let p = welch(&a, &b);
        let ci = bootstrap_change(&a, &b, Statistic::Mean, cfg.seed);
        out.push(MetricChange {
            metric: name.into(),
            unit: unit.into(),
            old: x,
            new: y,
            change,
            ci: ci.map(|(l, h)| [l, h]),
            p_value: p,
            verdict: verdict(change, ci, p, true, cfg),
        });
    }
    let (n1, n2) = (old.requests(), new.requests());
    if n1 > 0 && n2 > 0 {
        let (e1, e2) = (
            old.failures as f64 / n1 as f64 * 100.0,
            new.failures as f64 / n2 as f64 * 100.0,
        );
        let p = two_proportions(old.failures, n1, new.failures, n2);
        let points = e2 - e1;
        let verdict = match p {
            Some(p) if p < cfg.significance && points > cfg.error_rate_points => Verdict::Regressed,
            Some(p) if p < cfg.significance && points < -cfg.error_rate_points => Verdict::Improved,
            Some(p) if p < cfg.significance => Verdict::WithinNoise,
            _ => Verdict::NoChange,
        };
        out.push(MetricChange {
            metric: "error rate".into(),
            unit: "%".into(),
            old: e1,
            new: e2,
            change: points,
            ci: None,
            p_value: p,
            verdict,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::test_support::record;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// 600 requests over 30 s, TTFT around `ttft` ms with some spread.
    fn run(ttft: f64, seed: u64, fail_every: u32) -> Samples {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut s = Samples::default();
        for i in 0..600u32 {
            let t = ttft * (0.9 + 0.2 * rng.random::<f64>());
            let mut r = record(f64::from(i) * 50.0, t, t + 100.0, &[8.0, 9.0], 3);
            if fail_every > 0 && i % fail_every == 0 {
                r.success = false;
            }
            s.add(&r);
        }
        s
    }

    fn verdict_of(changes: &[MetricChange], metric: &str) -> Verdict {
        changes
            .iter()
            .find(|c| c.metric == metric)
            .map(|c| c.verdict)
            .unwrap()
    }

    #[test]
    fn the_same_engine_shows_no_change_and_a_slower_one_regresses() {
        let cfg = CompareConfig::default();
        let base = run(100.0, 1, 0);
        let same = compare(&base, &run(100.0, 2, 0), &cfg);
        for c in &same {
            assert!(
                matches!(c.verdict, Verdict::NoChange | Verdict::WithinNoise),
                "{}",
                c.line()
            );
        }
        let slower = compare(&base, &run(120.0, 3, 0), &cfg);
        assert_eq!(verdict_of(&slower, "ttft p50"), Verdict::Regressed);
        assert_eq!(verdict_of(&slower, "ttft p99"), Verdict::Regressed);
        let faster = compare(&base, &run(80.0, 4, 0), &cfg);
        assert_eq!(verdict_of(&faster, "ttft p50"), Verdict::Improved);
        let line = slower
            .iter()
            .find(|c| c.metric == "ttft p50")
            .unwrap()
            .line();
        assert!(
            line.starts_with("ttft p50     99.88 ms -> 120 ms  +20.4% [+"),
            "{line}"
        );
        assert!(line.ends_with("  regressed"), "{line}");
    }

    #[test]
    fn rising_errors_regress() {
        let cfg = CompareConfig::default();
        let changes = compare(&run(100.0, 1, 0), &run(100.0, 2, 10), &cfg);
        let e = changes.iter().find(|c| c.metric == "error rate").unwrap();
        assert_eq!(e.verdict, Verdict::Regressed);
        assert!((e.new - 10.0).abs() < 1e-9, "{e:?}");
        assert!(
            e.line().contains("0.00% -> 10.00%  +10.00 points"),
            "{}",
            e.line()
        );
    }
}
