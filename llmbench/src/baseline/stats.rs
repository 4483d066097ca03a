//! The statistics behind a verdict: a seeded bootstrap confidence interval
//! of the relative change in a statistic, and significance tests (Mann-
//! Whitney U for latency samples, Welch's t for per-second rates, a
//! two-proportion z test for error rates), with statrs's distributions.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// Bootstrap resamples per interval.
pub const RESAMPLES: usize = 400;
/// At most this many values of each side enter one bootstrap resample:
/// beyond that, the interval narrows little and costs much.
const BOOT_CAP: usize = 4_000;

/// What a statistic is over a sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Statistic {
    /// The p-th percentile (0-100), nearest rank.
    Percentile(f64),
    /// The arithmetic mean.
    Mean,
}

impl Statistic {
    /// The statistic of `values` (which it may reorder); `None` if empty.
    pub fn of(self, values: &mut [f64]) -> Option<f64> {
        if values.is_empty() {
            return None;
        }
        match self {
            Statistic::Mean => Some(values.iter().sum::<f64>() / values.len() as f64),
            Statistic::Percentile(p) => {
                let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
                let i = rank.clamp(1, values.len()) - 1;
                let (_, v, _) = values.select_nth_unstable_by(i, f64::total_cmp);
                Some(*v)
            }
        }
    }
}

/// A random draw of `n` values from `values`, with replacement.
fn resample(values: &[f64], n: usize, rng: &mut ChaCha8Rng, out: &mut Vec<f64>) {
    out.clear();
    out.extend((0..n).map(|_| values[rng.random_range(0..values.len())]));
}

/// The 95% bootstrap interval of `stat(new) / stat(old) - 1`, seeded; `None`
/// when either side is empty or the old statistic is 0.
pub fn bootstrap_change(
    old: &[f64],
    new: &[f64],
    stat: Statistic,
    seed: u64,
) -> Option<(f64, f64)> {
    if old.is_empty() || new.is_empty() {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (n_old, n_new) = (old.len().min(BOOT_CAP), new.len().min(BOOT_CAP));
    let (mut a, mut b) = (Vec::with_capacity(n_old), Vec::with_capacity(n_new));
    let mut changes = Vec::with_capacity(RESAMPLES);
    for _ in 0..RESAMPLES {
        resample(old, n_old, &mut rng, &mut a);
        resample(new, n_new, &mut rng, &mut b);
        if let (Some(x), Some(y)) = (stat.of(&mut a), stat.of(&mut b)) {
            if x > 0.0 {
                changes.push(y / x - 1.0);
            }
        }
    }
    if changes.len() < RESAMPLES / 2 {
        return None;
    }
    changes.sort_by(f64::total_cmp);
    let at = |q: f64| changes[((changes.len() - 1) as f64 * q).round() as usize];
    Some((at(0.025), at(0.975)))
}

/// Two-sided p-value of the Mann-Whitney U test (normal approximation with
/// a tie correction) that `a` and `b` come from the same distribution.
pub fn mann_whitney(a: &[f64], b: &[f64]) -> Option<f64> {
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let mut all: Vec<(f64, bool)> = a
        .iter()
        .map(|&v| (v, true))
        .chain(b.iter().map(|&v| (v, false)))
        .collect();
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    let n = all.len();
    let (mut rank_a, mut ties) = (0.0, 0.0);
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        let t = (j - i + 1) as f64;
        ties += t * t * t - t;
        rank_a += all[i..=j].iter().filter(|x| x.1).count() as f64 * avg;
        i = j + 1;
    }
    let u = rank_a - n1 * (n1 + 1.0) / 2.0;
    let mean = n1 * n2 / 2.0;
    let total = n1 + n2;
    let var = n1 * n2 / 12.0 * ((total + 1.0) - ties / (total * (total - 1.0)));
    if var <= 0.0 {
        return Some(1.0); // every value equal: no evidence of a difference
    }
    let z = (u - mean).abs() / var.sqrt();
    Some(2.0 * (1.0 - Normal::standard().cdf(z)))
}

/// Two-sided p-value of Welch's t test that `a` and `b` have the same mean.
pub fn welch(a: &[f64], b: &[f64]) -> Option<f64> {
    let stats = |v: &[f64]| {
        let n = v.len() as f64;
        let m = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0);
        (n, m, var)
    };
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let ((n1, m1, v1), (n2, m2, v2)) = (stats(a), stats(b));
    let se2 = v1 / n1 + v2 / n2;
    if se2 <= 0.0 {
        return Some(if m1 == m2 { 1.0 } else { 0.0 });
    }
    let t = (m1 - m2).abs() / se2.sqrt();
    let df = se2 * se2 / ((v1 / n1).powi(2) / (n1 - 1.0) + (v2 / n2).powi(2) / (n2 - 1.0));
    let dist = StudentsT::new(0.0, 1.0, df.max(1.0)).ok()?;
    Some(2.0 * (1.0 - dist.cdf(t)))
}

/// Two-sided p-value of the two-proportion z test: `x1` of `n1` against
/// `x2` of `n2`.
pub fn two_proportions(x1: u64, n1: u64, x2: u64, n2: u64) -> Option<f64> {
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let (p1, p2) = (x1 as f64 / n1 as f64, x2 as f64 / n2 as f64);
    let p = (x1 + x2) as f64 / (n1 + n2) as f64;
    let se = (p * (1.0 - p) * (1.0 / n1 as f64 + 1.0 / n2 as f64)).sqrt();
    if se <= 0.0 {
        return Some(if p1 == p2 { 1.0 } else { 0.0 });
    }
    let z = (p1 - p2).abs() / se;
    Some(2.0 * (1.0 - Normal::standard().cdf(z)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalish(n: usize, mean: f64, seed: u64) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        // Sum of 12 uniforms: close to normal, sd 1.
        (0..n)
            .map(|_| mean + (0..12).map(|_| rng.random::<f64>()).sum::<f64>() - 6.0)
            .collect()
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(Statistic::Percentile(50.0).of(&mut v), Some(50.0));
        assert_eq!(Statistic::Percentile(99.0).of(&mut v), Some(99.0));
        assert_eq!(Statistic::Mean.of(&mut v), Some(50.5));
        assert_eq!(Statistic::Mean.of(&mut []), None);
    }

    #[test]
    fn the_same_distribution_is_not_significant_and_a_shift_is() {
        let a = normalish(2000, 100.0, 1);
        let b = normalish(2000, 100.0, 2);
        let c = normalish(2000, 101.0, 3);
        assert!(mann_whitney(&a, &b).unwrap() > 0.01);
        assert!(mann_whitney(&a, &c).unwrap() < 1e-6);
        assert!(welch(&a, &b).unwrap() > 0.01);
        assert!(welch(&a, &c).unwrap() < 1e-6);
        let (lo, hi) = bootstrap_change(&a, &c, Statistic::Percentile(50.0), 7).unwrap();
        assert!(
            lo > 0.005 && hi < 0.015 && lo < 0.01 && 0.01 < hi,
            "[{lo}, {hi}]"
        );
        let (lo, hi) = bootstrap_change(&a, &b, Statistic::Mean, 7).unwrap();
        assert!(lo < 0.0 && 0.0 < hi, "[{lo}, {hi}]");
    }

    #[test]
    fn proportions() {
        assert!(two_proportions(10, 1000, 12, 1000).unwrap() > 0.5);
        assert!(two_proportions(10, 1000, 80, 1000).unwrap() < 1e-6);
        assert_eq!(two_proportions(0, 100, 0, 100), Some(1.0));
        assert_eq!(two_proportions(0, 0, 0, 100), None);
    }
}
