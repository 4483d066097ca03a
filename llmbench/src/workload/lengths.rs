//! Token-length distributions (fixed, uniform, normal, or a list whose
//! values each become a result set), drawn as a pure function of a seed.

use std::fmt;
use std::ops::RangeInclusive;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};

/// How many tokens a prompt or an answer has: one value, or a seeded draw
/// per request.
///
/// `512`, `100..=200` and `[1024, 2048, 4096]` convert into one, so
/// `Workload::rag().prompt_tokens([1024, 2048, 4096])` reads as it runs:
/// under `cargo bench` a list becomes one result set per value.
///
/// ```
/// use llmbench::workload::Lengths;
/// let l = Lengths::uniform(10, 20);
/// let n = l.draw(7, 0);
/// assert!((10..=20).contains(&n));
/// assert_eq!(n, l.draw(7, 0), "the same seed and index draw the same length");
/// assert_eq!(Lengths::from([1024, 2048]).to_string(), "one of [1024, 2048]");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum Lengths {
    /// Always this many.
    Fixed(u32),
    /// Uniformly between `min` and `max`, both included.
    Uniform {
        /// The smallest length drawn.
        min: u32,
        /// The largest length drawn.
        max: u32,
    },
    /// Normally distributed, rounded, and kept between `min` and `max`.
    Normal {
        /// The mean.
        mean: f64,
        /// The standard deviation.
        std_dev: f64,
        /// The smallest length drawn.
        min: u32,
        /// The largest length drawn.
        max: u32,
    },
    /// Each of these values: one result set per value under `cargo bench`;
    /// drawn uniformly from the list where one load runs them all.
    List(Vec<u32>),
}

impl Lengths {
    /// Always `n`.
    pub fn fixed(n: u32) -> Self {
        Lengths::Fixed(n)
    }

    /// Uniformly between `min` and `max`, both included.
    pub fn uniform(min: u32, max: u32) -> Self {
        Lengths::Uniform { min, max }
    }

    /// Normally distributed around `mean`, kept between 1 and four standard
    /// deviations above the mean.
    pub fn normal(mean: f64, std_dev: f64) -> Self {
        let max = (mean + 4.0 * std_dev.abs())
            .ceil()
            .clamp(1.0, f64::from(u32::MAX));
        Lengths::Normal {
            mean,
            std_dev,
            min: 1,
            max: max as u32,
        }
    }

    /// Each of `values` in turn (one result set per value).
    pub fn list(values: impl IntoIterator<Item = u32>) -> Self {
        Lengths::List(values.into_iter().collect())
    }

    /// The length for draw `index` under `seed`: a pure function of the two.
    pub fn draw(&self, seed: u64, index: u64) -> u32 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(index);
        match self {
            Lengths::Fixed(n) => *n,
            Lengths::Uniform { min, max } => rng.random_range(*min.min(max)..=*max.max(min)),
            Lengths::Normal {
                mean,
                std_dev,
                min,
                max,
            } => {
                // Box-Muller: two uniforms in (0, 1] give one standard normal.
                let u1: f64 = 1.0 - rng.random::<f64>();
                let u2: f64 = rng.random::<f64>();
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                let v = (mean + std_dev * z).round();
                v.clamp(f64::from(*min), f64::from((*max).max(*min))) as u32
            }
            Lengths::List(values) => match values.len() {
                0 => 0,
                n => values[rng.random_range(0..n)],
            },
        }
    }

    /// The values of a list of two or more, which run as one result set
    /// each; `None` for any other distribution.
    pub fn steps(&self) -> Option<&[u32]> {
        match self {
            Lengths::List(values) if values.len() > 1 => Some(values),
            _ => None,
        }
    }

    /// The smallest length this can draw.
    pub fn smallest(&self) -> u32 {
        match self {
            Lengths::Fixed(n) => *n,
            Lengths::Uniform { min, max } => *min.min(max),
            Lengths::Normal { min, .. } => *min,
            Lengths::List(values) => values.iter().copied().min().unwrap_or(0),
        }
    }

    /// The largest length this can draw.
    pub fn largest(&self) -> u32 {
        match self {
            Lengths::Fixed(n) => *n,
            Lengths::Uniform { min, max } | Lengths::Normal { min, max, .. } => *max.max(min),
            Lengths::List(values) => values.iter().copied().max().unwrap_or(0),
        }
    }

    /// Every length at most `cap` (smoke runs keep answers short).
    pub(crate) fn capped(&self, cap: u32) -> Self {
        match self {
            Lengths::Fixed(n) => Lengths::Fixed((*n).min(cap)),
            Lengths::Uniform { min, max } => Lengths::Uniform {
                min: (*min).min(cap),
                max: (*max).min(cap),
            },
            Lengths::Normal {
                mean,
                std_dev,
                min,
                max,
            } => Lengths::Normal {
                mean: *mean,
                std_dev: *std_dev,
                min: (*min).min(cap),
                max: (*max).min(cap),
            },
            Lengths::List(values) => Lengths::List(values.iter().map(|v| (*v).min(cap)).collect()),
        }
    }

    /// Check the distribution can draw at least one token; `field` names it
    /// in the error (`workload.prompt_tokens`).
    pub(crate) fn validate(&self, field: &str) -> Result<()> {
        let bad = |why: String| Err(Error::scenario(format!("{field}: {why}")));
        match self {
            Lengths::Fixed(0) => bad("must be at least 1 (got 0)".into()),
            Lengths::Uniform { min, max } if min > max => bad(format!(
                "uniform range {min}..={max} is empty; give min <= max"
            )),
            Lengths::Uniform { min: 0, .. } => bad("uniform range must start at 1 or more".into()),
            Lengths::Normal { mean, std_dev, .. }
                if !(mean.is_finite()
                    && *mean >= 1.0
                    && std_dev.is_finite()
                    && *std_dev >= 0.0) =>
            {
                bad(format!(
                    "normal({mean}, {std_dev}): the mean must be 1 or more and the standard \
                     deviation 0 or more"
                ))
            }
            Lengths::List(values) if values.is_empty() => {
                bad("the list is empty; give at least one length".into())
            }
            Lengths::List(values) if values.contains(&0) => {
                bad(format!("every length must be at least 1 (got {values:?})"))
            }
            _ => Ok(()),
        }
    }
}

impl fmt::Display for Lengths {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lengths::Fixed(n) => write!(f, "{n}"),
            Lengths::Uniform { min, max } => write!(f, "uniform {min}..={max}"),
            Lengths::Normal { mean, std_dev, .. } => write!(f, "normal({mean}, {std_dev})"),
            Lengths::List(values) => write!(f, "one of {values:?}"),
        }
    }
}

impl From<u32> for Lengths {
    fn from(n: u32) -> Self {
        Lengths::Fixed(n)
    }
}

impl From<RangeInclusive<u32>> for Lengths {
    fn from(range: RangeInclusive<u32>) -> Self {
        Lengths::Uniform {
            min: *range.start(),
            max: *range.end(),
        }
    }
}

impl<const N: usize> From<[u32; N]> for Lengths {
    fn from(values: [u32; N]) -> Self {
        Lengths::List(values.to_vec())
    }
}

impl From<Vec<u32>> for Lengths {
    fn from(values: Vec<u32>) -> Self {
        Lengths::List(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_repeat_by_seed_and_index_and_stay_in_range() {
        let dists = [
            Lengths::fixed(9),
            Lengths::uniform(5, 50),
            Lengths::normal(100.0, 20.0),
            Lengths::from([1, 2, 3]),
        ];
        for d in &dists {
            let a: Vec<u32> = (0..200).map(|i| d.draw(3, i)).collect();
            let b: Vec<u32> = (0..200).map(|i| d.draw(3, i)).collect();
            assert_eq!(a, b, "{d}");
            assert!(a.iter().all(|&n| n >= 1 && n <= d.largest()), "{d}: {a:?}");
        }
        let u: Vec<u32> = (0..500)
            .map(|i| Lengths::uniform(5, 50).draw(1, i))
            .collect();
        assert!(u.contains(&5) && u.contains(&50), "both ends are drawn");
        let n: Vec<f64> = (0..2000)
            .map(|i| f64::from(Lengths::normal(100.0, 20.0).draw(1, i)))
            .collect();
        let mean = n.iter().sum::<f64>() / n.len() as f64;
        assert!((95.0..105.0).contains(&mean), "mean {mean}");
        let other: Vec<u32> = (0..50)
            .map(|i| Lengths::uniform(5, 50).draw(2, i))
            .collect();
        assert_ne!(&u[..50], &other[..], "another seed draws other lengths");
    }

    #[test]
    fn a_list_of_two_or_more_is_steps() {
        assert_eq!(Lengths::from([1024, 2048]).steps(), Some(&[1024, 2048][..]));
        assert_eq!(Lengths::from([1024]).steps(), None);
        assert_eq!(Lengths::from(7).steps(), None);
        assert_eq!(Lengths::from(3..=9), Lengths::uniform(3, 9));
    }

    #[test]
    fn invalid_distributions_name_the_field() {
        for (d, why) in [
            (Lengths::fixed(0), "at least 1"),
            (Lengths::uniform(9, 3), "is empty"),
            (Lengths::uniform(0, 3), "start at 1"),
            (Lengths::normal(f64::NAN, 1.0), "the mean must be"),
            (Lengths::list([]), "the list is empty"),
            (Lengths::list([4, 0]), "at least 1"),
        ] {
            let err = d
                .validate("workload.prompt_tokens")
                .unwrap_err()
                .to_string();
            assert!(err.contains("workload.prompt_tokens: "), "{err}");
            assert!(err.contains(why), "{err}");
        }
    }
}
