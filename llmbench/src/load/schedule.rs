//! Pure, seeded schedules: a load shape and a seed give the same arrival
//! times (open loop) or user counts over time (closed loop) on every run.
//!
//! Arrival times come from a unit-rate process (gaps of mean 1: constant,
//! exponential or gamma) mapped through the inverse of the cumulative
//! intensity `Λ(t) = ∫₀ᵗ rate(u) du` (time rescaling): arrival `k` is at the
//! time `t` where `Λ(t)` reaches the `k`-th point of the unit process. A
//! steady rate gives `t = s / rate`; a ramp or spike changes the rate and
//! keeps the process's character. The first arrival is at 0.

use std::iter::FusedIterator;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};

use super::{whole_users, Arrivals, Load, Profile};

/// The ChaCha stream arrival gaps are drawn from: apart from the streams
/// prompt choice uses (one per request id, counting from 0).
const ARRIVAL_STREAM: u64 = u64::MAX;

/// The arrival times of an open-loop load and seed, as offsets from the start
/// of the run, in order. Lazy, so a long run never holds its whole schedule.
/// A sequence of steps is scheduled phase by phase ([`Load::phases`]).
///
/// ```
/// use std::time::Duration;
/// use llmbench::load::schedule::arrival_times;
/// use llmbench::prelude::*;
/// let even: Vec<Duration> = arrival_times(&Load::rate(4.0).for_secs(1), 7)?.collect();
/// assert_eq!(even, [0, 250, 500, 750].map(Duration::from_millis));
/// let load = Load::rate(100.0).poisson().requests(1000);
/// let a: Vec<Duration> = arrival_times(&load, 7)?.collect();
/// assert_eq!(a, arrival_times(&load, 7)?.collect::<Vec<_>>());
/// assert_eq!(a.len(), 1000);
/// # Ok::<(), llmbench::Error>(())
/// ```
pub fn arrival_times(load: &Load, seed: u64) -> Result<ArrivalTimes> {
    load.validate()?;
    if load.steps.is_some() {
        return Err(Error::scenario(
            "load.steps: a sequence has no schedule of its own; schedule each of Load::phases()",
        ));
    }
    let Some(rate) = load.rate else {
        return Err(Error::scenario(
            "load: a closed loop (Load::users) has no arrival times; see schedule::user_curve",
        ));
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(ARRIVAL_STREAM);
    Ok(ArrivalTimes {
        rng,
        arrivals: load.arrivals,
        intensity: Intensity::new(&breakpoints(rate, load.profile)),
        next: 0.0,
        sent: 0,
        limit: load.requests,
        end: load.duration,
        done: false,
    })
}

/// The number of users a closed-loop load keeps busy over time.
///
/// ```
/// use std::time::Duration;
/// use llmbench::load::schedule::user_curve;
/// use llmbench::prelude::*;
/// let s = Duration::from_secs;
/// let curve = user_curve(&Load::spike_test())?;
/// assert_eq!((curve.at(s(59)), curve.at(s(60)), curve.at(s(90))), (10, 100, 10));
/// let ramp = user_curve(&Load::users(1).ramp_to(5, s(8)).for_secs(10))?;
/// let changes: Vec<_> = ramp.changes().collect();
/// assert_eq!(changes, [(s(0), 1), (s(2), 2), (s(4), 3), (s(6), 4), (s(8), 5)]);
/// # Ok::<(), llmbench::Error>(())
/// ```
pub fn user_curve(load: &Load) -> Result<UserCurve> {
    load.validate()?;
    if load.steps.is_some() {
        return Err(Error::scenario(
            "load.steps: a sequence has no user curve of its own; take each of Load::phases()",
        ));
    }
    if load.rate.is_some() {
        return Err(Error::scenario(
            "load: an open loop (Load::rate) has no user curve; see schedule::arrival_times",
        ));
    }
    let points = breakpoints(f64::from(load.users), load.profile)
        .into_iter()
        .map(|(t, level)| (t.as_nanos(), whole_users(level).unwrap_or(0)))
        .collect();
    Ok(UserCurve { points })
}

/// The level over time as the corners of a piecewise-linear function; two
/// corners at one time are a jump; after the last corner the level holds.
fn breakpoints(base: f64, profile: Profile) -> Vec<(Duration, f64)> {
    let zero = Duration::ZERO;
    let mut points = match profile {
        Profile::Steady => vec![(zero, base)],
        Profile::Ramp { to, over } => vec![(zero, base), (over, to)],
        Profile::Spike { peak, at, hold } => {
            let end = at.saturating_add(hold);
            vec![
                (zero, base),
                (at, base),
                (at, peak),
                (end, peak),
                (end, base),
            ]
        }
    };
    // A jump at 0 has no "before": the run starts at the level after it.
    while matches!(points.as_slice(), [a, b, ..] if a.0 == b.0 && a.0.is_zero()) {
        points.remove(0);
    }
    points
}

/// Arrival times from [`arrival_times`]: offsets from the start, in order.
#[derive(Clone, Debug)]
pub struct ArrivalTimes {
    rng: ChaCha8Rng,
    arrivals: Arrivals,
    intensity: Intensity,
    /// The cumulative intensity at which the next arrival falls.
    next: f64,
    sent: u64,
    limit: Option<u64>,
    end: Option<Duration>,
    done: bool,
}

impl ArrivalTimes {
    /// The next gap of the unit-rate process (mean 1).
    fn gap(&mut self) -> f64 {
        match self.arrivals {
            Arrivals::Constant => 1.0,
            Arrivals::Poisson => exponential(&mut self.rng),
            Arrivals::Gamma { burstiness } => gamma(&mut self.rng, burstiness) / burstiness,
        }
    }
}

impl Iterator for ArrivalTimes {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if self.done || self.limit.is_some_and(|n| self.sent >= n) {
            return None;
        }
        let t = self.intensity.inverse(self.next);
        let at = Duration::try_from_secs_f64(t)
            .ok()
            .filter(|at| self.end.is_none_or(|end| *at < end));
        let Some(at) = at else {
            self.done = true;
            return None;
        };
        self.sent += 1;
        self.next += self.gap();
        Some(at)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.limit.map(|n| n.saturating_sub(self.sent));
        (0, left.and_then(|n| usize::try_from(n).ok()))
    }
}

impl FusedIterator for ArrivalTimes {}

/// One linear piece of the rate: `rate + slope·τ` for `τ = t - t0 ≥ 0`.
#[derive(Clone, Copy, Debug)]
struct Segment {
    t0: f64,
    rate: f64,
    slope: f64,
    /// `Λ(t0)`.
    cum: f64,
}

/// The cumulative intensity of a piecewise-linear rate, inverted.
#[derive(Clone, Debug)]
struct Intensity {
    segments: Vec<Segment>,
    /// The segment the last inverse fell in (arrivals only move forward).
    at: usize,
}

impl Intensity {
    fn new(points: &[(Duration, f64)]) -> Self {
        let mut segments = Vec::new();
        let mut cum = 0.0;
        for pair in points.windows(2) {
            let [(ta, ra), (tb, rb)] = pair else { continue };
            let (t0, len) = (ta.as_secs_f64(), tb.as_secs_f64() - ta.as_secs_f64());
            if len <= 0.0 {
                continue; // a jump takes no time and holds no arrivals
            }
            let slope = (rb - ra) / len;
            segments.push(Segment {
                t0,
                rate: *ra,
                slope,
                cum,
            });
            cum += (ra + rb) / 2.0 * len;
        }
        if let Some((t, rate)) = points.last() {
            let t0 = t.as_secs_f64();
            segments.push(Segment {
                t0,
                rate: *rate,
                slope: 0.0,
                cum,
            });
        }
        Intensity { segments, at: 0 }
    }

    /// The time `t` at which `Λ(t) = s`; `s` must not decrease between calls.
    fn inverse(&mut self, s: f64) -> f64 {
        while self.segments.get(self.at + 1).is_some_and(|n| n.cum <= s) {
            self.at += 1;
        }
        let Some(seg) = self.segments.get(self.at) else {
            return f64::INFINITY;
        };
        let d = s - seg.cum;
        // Solve rate·τ + slope·τ²/2 = d for τ ≥ 0, in the form that has no
        // cancellation and also holds for slope 0 (τ = d / rate).
        let root = (seg.rate * seg.rate + 2.0 * seg.slope * d).max(0.0).sqrt();
        seg.t0 + 2.0 * d / (seg.rate + root)
    }
}

/// A closed loop's user count over time, from [`user_curve`].
///
/// A ramp adds (or removes) one user at a time: over a ramp from `a` to `b`
/// users lasting `L`, change `j` of `|b - a|` happens at `⌊L·j / |b - a|⌋`
/// (nanoseconds) from its start; a spike jumps at its edges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserCurve {
    /// Corners: (nanoseconds from the start, users).
    points: Vec<(u128, u32)>,
}

impl UserCurve {
    /// The number of users at `t` from the start (a change at `t` counts).
    pub fn at(&self, t: Duration) -> u32 {
        let t = t.as_nanos();
        let mut users = self.points.first().map_or(0, |p| p.1);
        for pair in self.points.windows(2) {
            let [(ta, ua), (tb, ub)] = *pair else {
                continue;
            };
            if t < ta {
                break;
            }
            if t >= tb {
                users = ub;
                continue;
            }
            // Part way along a ramp: count the changes at or before t, i.e.
            // the j with ⌊L·j/n⌋ <= x, which is j <= ((x + 1)·n - 1) / L.
            let n = ua.abs_diff(ub);
            let (len, x) = (tb - ta, t - ta);
            let done = match n {
                0 => 0,
                n => (((x + 1) * u128::from(n) - 1) / len).min(u128::from(n)),
            };
            let done = u32::try_from(done).unwrap_or(n);
            users = if ub > ua { ua + done } else { ua - done };
            break;
        }
        users
    }

    /// Every change, in order, as (time from the start, users from then
    /// on); the first is `(0, users at the start)`.
    pub fn changes(&self) -> impl Iterator<Item = (Duration, u32)> + '_ {
        let first = self.points.first().map(|&(t, u)| (nanos(t), u));
        let rest = self.points.windows(2).flat_map(|pair| {
            let (ta, ua, tb, ub) = match *pair {
                [(ta, ua), (tb, ub)] => (ta, ua, tb, ub),
                _ => (0, 0, 0, 0),
            };
            let n = ua.abs_diff(ub);
            let len = tb - ta;
            // A jump is one change; a ramp is n changes, one user each.
            let count = if len == 0 { n.min(1) } else { n };
            (1..=count).map(move |j| {
                let t = ta + len * u128::from(j) / u128::from(n.max(1));
                let users = match (len, ub > ua) {
                    (0, _) => ub,
                    (_, true) => ua + j,
                    (_, false) => ua - j,
                };
                (nanos(t), users)
            })
        });
        first.into_iter().chain(rest)
    }

    /// The most users at any time.
    pub fn peak(&self) -> u32 {
        self.points.iter().map(|p| p.1).max().unwrap_or(0)
    }
}

fn nanos(ns: u128) -> Duration {
    let secs = u64::try_from(ns / 1_000_000_000).unwrap_or(u64::MAX);
    // The remainder is below 10^9, so it fits.
    let sub = u32::try_from(ns % 1_000_000_000).unwrap_or(0);
    Duration::new(secs, sub)
}

/// Uniform on (0, 1]: never 0, so its logarithm is finite.
fn uniform(rng: &mut ChaCha8Rng) -> f64 {
    1.0 - rng.random::<f64>()
}

/// Exponential with mean 1, by inverting its CDF `1 - e^-x`.
fn exponential(rng: &mut ChaCha8Rng) -> f64 {
    -uniform(rng).ln()
}

/// Standard normal by Box–Muller (one of the pair; a fixed two draws each).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let radius = (-2.0 * uniform(rng).ln()).sqrt();
    radius * (std::f64::consts::TAU * rng.random::<f64>()).cos()
}

/// Gamma with shape `shape > 0` and scale 1, by Marsaglia and Tsang (2000);
/// below shape 1 through `Gamma(a) = Gamma(a + 1) · U^(1/a)`.
fn gamma(rng: &mut ChaCha8Rng, shape: f64) -> f64 {
    if shape < 1.0 {
        let boost = uniform(rng).powf(1.0 / shape);
        return gamma(rng, shape + 1.0) * boost;
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = normal(rng);
        let v = 1.0 + c * x;
        if v <= 0.0 {
            continue;
        }
        let v = v * v * v;
        let u = uniform(rng);
        let x2 = x * x;
        // The squeeze first; the exact test only when it fails.
        if u < 1.0 - 0.0331 * x2 * x2 || u.ln() < 0.5 * x2 + d * (1.0 - v + v.ln()) {
            return d * v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn the_inverse_intensity_undoes_the_intensity() {
        // Rate 2 for 5 s, 10 from 5 s to 7 s, 2 after: Λ(5) = 10, Λ(7) = 30.
        let mut i = Intensity::new(&breakpoints(
            2.0,
            Profile::Spike {
                peak: 10.0,
                at: s(5),
                hold: s(2),
            },
        ));
        for (cum, t) in [
            (0.0, 0.0),
            (5.0, 2.5),
            (10.0, 5.0),
            (20.0, 6.0),
            (30.0, 7.0),
            (34.0, 9.0),
        ] {
            assert!((i.inverse(cum) - t).abs() < 1e-12, "Λ⁻¹({cum})");
        }
        // Rate 4 falling to 2 over 2 s: Λ(t) = 4t - t²/2, Λ(2) = 6.
        let mut down = Intensity::new(&breakpoints(
            4.0,
            Profile::Ramp {
                to: 2.0,
                over: s(2),
            },
        ));
        for t in [0.0, 0.5, 1.0, 1.999] {
            let cum: f64 = 4.0 * t - t * t / 2.0;
            assert!((down.inverse(cum) - t).abs() < 1e-12, "t = {t}");
        }
        assert!((down.inverse(8.0) - 3.0).abs() < 1e-12);
    }

    #[test]
    fn a_spike_at_zero_starts_at_its_peak() {
        let load = Load::users(2).spike_to(7, Duration::ZERO, s(3)).for_secs(5);
        let curve = user_curve(&load).map_err(|e| e.to_string());
        let changes: Vec<_> = curve.iter().flat_map(UserCurve::changes).collect();
        assert_eq!(changes, [(s(0), 7), (s(3), 2)]);
    }

    #[test]
    fn at_agrees_with_changes_on_both_sides_of_each_change() {
        let loads = [
            Load::users(3)
                .ramp_to(10, Duration::from_nanos(1_000_000_007))
                .for_secs(2),
            Load::users(40).ramp_to(1, s(13)).for_secs(20),
            Load::spike_test(),
        ];
        for load in loads {
            let Ok(curve) = user_curve(&load) else {
                panic!("{load:?}")
            };
            let changes: Vec<_> = curve.changes().collect();
            for pair in changes.windows(2) {
                let [(_, before), (t, after)] = *pair else {
                    continue;
                };
                assert_eq!(curve.at(t), after, "at {t:?}");
                assert_eq!(
                    curve.at(t - Duration::from_nanos(1)),
                    before,
                    "before {t:?}"
                );
            }
            let last = changes.last().map(|c| c.1);
            assert_eq!(Some(curve.at(s(3600))), last);
        }
    }

    #[test]
    fn schedules_refuse_the_other_loop_and_bad_shapes() {
        let msg = |r: Result<()>| r.err().map(|e| e.to_string()).unwrap_or_default();
        let users = Load::users(2).for_secs(1);
        assert!(msg(arrival_times(&users, 1).map(drop)).contains("closed loop"));
        assert!(msg(user_curve(&Load::rate(1.0).for_secs(1)).map(drop)).contains("open loop"));
        let steps = users.clone().sweep([1, 2]);
        assert!(msg(arrival_times(&steps, 1).map(drop)).contains("Load::phases"));
        assert!(
            msg(arrival_times(&Load::rate(-1.0).for_secs(1), 1).map(drop)).contains("load.rate")
        );
    }

    #[test]
    fn samplers_repeat_for_a_seed() {
        let draw = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            [
                exponential(&mut rng),
                normal(&mut rng),
                gamma(&mut rng, 0.3),
                gamma(&mut rng, 4.0),
            ]
        };
        assert_eq!(draw(1), draw(1));
        assert_ne!(draw(1), draw(2));
        assert!(draw(3).iter().all(|x| x.is_finite()));
    }
}
