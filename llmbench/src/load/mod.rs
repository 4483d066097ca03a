//! Load shapes: how requests are offered to the engine over time.
//!
//! A closed loop ([`Load::users`]) keeps a number of users busy, each sending
//! its next request when the previous one finished; an open loop
//! ([`Load::rate`]) sends at scheduled times whatever the engine does, so its
//! queueing shows in the latency. Either can ramp, spike, or run as a sequence
//! of steps. Arrival times and user counts over time come from [`schedule`],
//! pure functions of a shape and a seed; [`Load::validate`] checks a shape.

mod capacity;
pub(crate) mod executor;
mod open_loop;
pub mod schedule;
mod shard;
mod validate;

use std::fmt;
use std::time::Duration;

pub use capacity::{Capacity, CapacityResult, CapacityRun, Search};
pub use shard::Shard;

/// How hard a load runs: a number of users or a rate.
///
/// ```
/// use llmbench::load::Level;
/// use llmbench::prelude::*;
/// assert_eq!(Load::users(4).level(), Some(Level::Users(4)));
/// assert_eq!(Load::rate(2.5).level().map(|l| l.to_string()), Some("2.5 req/s".into()));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Level {
    /// A closed loop of this many concurrent users.
    Users(u32),
    /// An open loop of this many requests per second.
    Rate(f64),
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Level::Users(1) => write!(f, "1 user"),
            Level::Users(n) => write!(f, "{n} users"),
            Level::Rate(r) => write!(f, "{r} req/s"),
        }
    }
}

/// How an open loop spaces its arrivals around its rate.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum Arrivals {
    /// Evenly spaced: `1 / rate` apart (the default).
    Constant,
    /// A Poisson process: exponential gaps with mean `1 / rate`.
    Poisson,
    /// Gamma-distributed gaps with shape `burstiness` and mean `1 / rate`, as
    /// vLLM's `--burstiness`: below 1 burstier than Poisson, above 1 more
    /// regular, 1 is Poisson.
    Gamma {
        /// The gamma shape; must be positive.
        burstiness: f64,
    },
}

/// How a load's level changes during its run.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum Profile {
    /// The same level throughout.
    Steady,
    /// From the load's level to `to`, linearly over `over` from the start,
    /// then `to` until the end.
    Ramp {
        /// The level at the end of the ramp (users or requests/s).
        to: f64,
        /// How long the ramp takes.
        over: Duration,
    },
    /// The load's level, then `peak` from `at` for `hold`, then the load's
    /// level again.
    Spike {
        /// The level during the spike (users or requests/s).
        peak: f64,
        /// When the spike starts, from the start of the run.
        at: Duration,
        /// How long the spike lasts.
        hold: Duration,
    },
}

/// The load a scenario offers.
///
/// Build one from a closed loop ([`Load::users`]), an open loop
/// ([`Load::rate`]), a sequence of steps ([`Load::steps`], [`Load::sweep`]) or
/// a preset ([`Load::quick`], ...). A builder call that does not fit the shape
/// (`.poisson()` on users, say) is kept and reported by [`Load::validate`].
///
/// ```
/// use std::time::Duration;
/// use llmbench::prelude::*;
/// let load = Load::users(10).for_secs(30);
/// assert_eq!(load.user_count(), 10);
/// let smoke = Load::users(2).requests(4);
/// assert_eq!(smoke.request_limit(), Some(4));
/// let open = Load::rate(20.0).poisson().max_in_flight(256).for_secs(60).warmup_secs(10);
/// assert!(open.is_open_loop() && open.validate().is_ok());
/// let ramp = Load::users(1).ramp_to(50, Duration::from_secs(120)).for_secs(300);
/// assert!(ramp.validate().is_ok());
/// ```
#[must_use]
#[derive(Clone, Debug, PartialEq)]
pub struct Load {
    /// Closed loop: the users at the start; 0 in an open loop or steps.
    pub(crate) users: u32,
    /// Open loop: requests per second at the start.
    pub(crate) rate: Option<f64>,
    pub(crate) arrivals: Arrivals,
    pub(crate) max_in_flight: Option<u32>,
    pub(crate) think_time: Option<Duration>,
    pub(crate) profile: Profile,
    pub(crate) warmup: Option<Duration>,
    pub(crate) duration: Option<Duration>,
    pub(crate) requests: Option<u64>,
    /// `Some`: a sequence of loads run one after another, one result set each.
    pub(crate) steps: Option<Vec<Load>>,
    /// `Some`: run this open loop at the rates a capacity search picks.
    pub(crate) capacity: Option<Capacity>,
    /// The first builder call that did not fit: (field, why).
    pub(crate) misuse: Option<(&'static str, String)>,
}

const OPEN_ONLY: &str = "applies to an open loop (Load::rate(r)), not to Load::users(n)";

impl Load {
    fn empty() -> Self {
        Load {
            users: 0,
            rate: None,
            arrivals: Arrivals::Constant,
            max_in_flight: None,
            think_time: None,
            profile: Profile::Steady,
            warmup: None,
            duration: None,
            requests: None,
            steps: None,
            capacity: None,
            misuse: None,
        }
    }

    /// A closed loop of `n` concurrent users, each sending its next request
    /// as soon as its previous one finished (after any think time).
    pub fn users(n: u32) -> Self {
        Load {
            users: n,
            ..Self::empty()
        }
    }

    /// An open loop of `per_sec` requests per second, evenly spaced unless
    /// [`poisson`](Load::poisson) or [`gamma`](Load::gamma) says otherwise.
    /// Requests go out on schedule whether or not earlier ones finished.
    ///
    /// ```
    /// use llmbench::prelude::*;
    /// let load = Load::rate(2.0).poisson().requests(60);
    /// assert!(load.is_open_loop() && load.validate().is_ok());
    /// assert!(Load::rate(-1.0).requests(1).validate().is_err());
    /// ```
    pub fn rate(per_sec: f64) -> Self {
        Load {
            rate: Some(per_sec),
            ..Self::empty()
        }
    }

    /// Loads run one after another, each giving its own result set. Builder
    /// calls on the sequence apply to every step.
    ///
    /// ```
    /// use llmbench::prelude::*;
    /// let load = Load::steps([Load::users(1), Load::users(8)]).for_secs(30);
    /// assert_eq!(load.phases().len(), 2);
    /// assert_eq!(load.phases()[1].duration().map(|d| d.as_secs()), Some(30));
    /// ```
    pub fn steps(steps: impl IntoIterator<Item = Load>) -> Self {
        Load {
            steps: Some(steps.into_iter().collect()),
            ..Self::empty()
        }
    }

    /// This load once per level (users for a closed loop, requests/s for an
    /// open one), as a sequence of steps: the scaling table.
    ///
    /// ```
    /// use llmbench::load::Level;
    /// use llmbench::prelude::*;
    /// let load = Load::users(1).for_secs(60).sweep([1, 2, 4, 8]);
    /// let levels: Vec<_> = load.phases().iter().filter_map(Load::level).collect();
    /// assert_eq!(levels[3], Level::Users(8));
    /// let rates = Load::rate(1.0).poisson().requests(100).sweep([1.0, 2.5, 5.0]);
    /// assert_eq!(rates.phases()[1].level(), Some(Level::Rate(2.5)));
    /// ```
    pub fn sweep<T: Into<f64>>(mut self, levels: impl IntoIterator<Item = T>) -> Self {
        if self.steps.is_some() {
            self.note_misuse("sweep", "sweeps one load, not a sequence of steps".into());
            return self;
        }
        let steps: Vec<Load> = levels
            .into_iter()
            .map(|level| {
                let level = level.into();
                let mut step = self.clone();
                if step.rate.is_some() {
                    step.rate = Some(level);
                } else if let Some(n) = whole_users(level) {
                    step.users = n;
                } else {
                    step.note_misuse(
                        "sweep",
                        format!("a closed loop sweeps whole numbers of users (got {level})"),
                    );
                }
                step
            })
            .collect();
        Load::steps(steps)
    }

    /// Search for the highest rate at which a share of requests (90% by
    /// default) meets every SLO of the scenario, by bisection: this open
    /// loop (its arrivals, duration or request count) runs once per rate
    /// tried, each run its own result set, and the summary gives the
    /// capacity. The scenario needs an SLO.
    ///
    /// ```
    /// use llmbench::load::Capacity;
    /// use llmbench::prelude::*;
    /// let load = Load::rate(1.0).poisson().for_secs(20).find_capacity(Capacity::between(1.0, 64.0));
    /// assert!(load.validate().is_ok());
    /// assert!(Load::users(4).for_secs(20).find_capacity(Capacity::between(1.0, 8.0)).validate().is_err());
    /// ```
    pub fn find_capacity(mut self, search: Capacity) -> Self {
        if self.rate.is_none() || self.steps.is_some() {
            self.note_misuse(
                "find_capacity",
                "searches the rate of one open loop (Load::rate(r)...)".into(),
            );
        } else if self.profile != Profile::Steady {
            self.note_misuse(
                "find_capacity",
                "searches a steady rate; a ramp or spike has no single rate".into(),
            );
        }
        self.capacity = Some(search);
        self
    }

    /// The capacity search this load runs, if any.
    pub fn capacity_search(&self) -> Option<Capacity> {
        self.capacity
    }

    /// Closed loop: each user waits `pause` after an answer before sending
    /// its next request.
    pub fn think_time(self, pause: Duration) -> Self {
        self.each(|l| {
            if l.rate.is_some() {
                l.note_misuse(
                    "think_time",
                    "applies to a closed loop (Load::users(n)); an open loop's arrivals \
                     do not wait for answers"
                        .into(),
                );
            }
            l.think_time = Some(pause);
        })
    }

    /// Open loop: Poisson arrivals (exponential gaps) at the rate.
    pub fn poisson(self) -> Self {
        self.arrival_process("poisson", Arrivals::Poisson)
    }

    /// Open loop: gamma-distributed gaps with shape `burstiness` and mean
    /// `1 / rate` (vLLM's `--burstiness`; 1 is Poisson, below 1 burstier).
    pub fn gamma(self, burstiness: f64) -> Self {
        self.arrival_process("gamma", Arrivals::Gamma { burstiness })
    }

    fn arrival_process(self, field: &'static str, arrivals: Arrivals) -> Self {
        self.each(|l| {
            if l.rate.is_none() {
                l.note_misuse(field, OPEN_ONLY.into());
            }
            l.arrivals = arrivals;
        })
    }

    /// Open loop: at most `n` requests in flight. An arrival beyond the cap
    /// is not sent and is counted as dropped, never silently lost.
    pub fn max_in_flight(self, n: u32) -> Self {
        self.each(|l| {
            if l.rate.is_none() {
                l.note_misuse("max_in_flight", OPEN_ONLY.into());
            }
            l.max_in_flight = Some(n);
        })
    }

    /// Move the level (users or requests/s) linearly from this load's to
    /// `to` over `over` from the start, then hold `to` until the end. A user
    /// ramp adds or removes one user at a time, evenly spaced; a rate ramp's
    /// arrivals follow the integrated rate.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llmbench::prelude::*;
    /// let users = Load::users(1).ramp_to(50, Duration::from_secs(60)).for_secs(90);
    /// let rate = Load::rate(1.0).ramp_to(20.0, Duration::from_secs(60)).for_secs(90);
    /// assert!(users.validate().is_ok() && rate.validate().is_ok());
    /// ```
    pub fn ramp_to(self, to: impl Into<f64>, over: Duration) -> Self {
        self.with_profile(
            "ramp",
            Profile::Ramp {
                to: to.into(),
                over,
            },
        )
    }

    /// Jump to `peak` (users or requests/s) at `at` from the start, hold it
    /// for `hold`, then return to this load's level. Needs a duration that
    /// holds the whole spike.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llmbench::prelude::*;
    /// let s = Duration::from_secs;
    /// let load = Load::users(10).spike_to(100, s(60), s(30)).for_secs(180);
    /// assert!(load.validate().is_ok());
    /// assert!(Load::users(10).spike_to(100, s(60), s(30)).for_secs(80).validate().is_err());
    /// ```
    pub fn spike_to(self, peak: impl Into<f64>, at: Duration, hold: Duration) -> Self {
        let peak = peak.into();
        self.with_profile("spike", Profile::Spike { peak, at, hold })
    }

    fn with_profile(self, field: &'static str, profile: Profile) -> Self {
        self.each(|l| {
            if l.profile != Profile::Steady {
                l.note_misuse(
                    field,
                    "a load has at most one ramp or spike; use Load::steps for more".into(),
                );
            }
            l.profile = profile;
        })
    }

    /// Exclude requests scheduled in the first `secs` seconds from the
    /// results (they are still sent and recorded as warm-up). The warm-up is
    /// part of the duration.
    pub fn warmup_secs(self, secs: u64) -> Self {
        self.warmup_for(Duration::from_secs(secs))
    }

    /// [`warmup_secs`](Load::warmup_secs) with any duration.
    pub fn warmup_for(self, warmup: Duration) -> Self {
        self.each(|l| l.warmup = Some(warmup))
    }

    /// Keep starting requests for `secs` seconds.
    pub fn for_secs(self, secs: u64) -> Self {
        self.for_duration(Duration::from_secs(secs))
    }

    /// Keep starting requests for `duration`.
    pub fn for_duration(self, duration: Duration) -> Self {
        self.each(|l| l.duration = Some(duration))
    }

    /// Stop after `n` requests in all (across every user). With a duration
    /// too, whichever comes first ends the run.
    pub fn requests(self, n: u64) -> Self {
        self.each(|l| l.requests = Some(n))
    }

    /// Preset: 5 users for 60 s, a quick look.
    pub fn quick() -> Self {
        Load::users(5).for_secs(60)
    }

    /// Preset: 50 users for 300 s.
    pub fn stress() -> Self {
        Load::users(50).for_secs(300)
    }

    /// Preset: 10 users, a burst to 100 users at 60 s held for 30 s, then 10
    /// users again until 180 s (time to see the recovery).
    pub fn spike_test() -> Self {
        let s = Duration::from_secs;
        Load::users(10).spike_to(100, s(60), s(30)).for_secs(180)
    }

    /// Preset: 10 users for 1,800 s, for drift and leaks.
    pub fn endurance() -> Self {
        Load::users(10).for_secs(1800)
    }

    /// Closed loop: the number of users at the start; 0 for an open loop or
    /// a sequence of steps.
    pub fn user_count(&self) -> u32 {
        self.users
    }

    /// The level at the start; `None` for a sequence of steps.
    pub fn level(&self) -> Option<Level> {
        match (&self.steps, self.rate) {
            (Some(_), _) => None,
            (None, Some(rate)) => Some(Level::Rate(rate)),
            (None, None) => Some(Level::Users(self.users)),
        }
    }

    /// Whether this is an open loop ([`Load::rate`]).
    pub fn is_open_loop(&self) -> bool {
        self.steps.is_none() && self.rate.is_some()
    }

    /// Open loop: how arrivals are spaced; `None` for a closed loop.
    pub fn arrivals(&self) -> Option<Arrivals> {
        self.is_open_loop().then_some(self.arrivals)
    }

    /// Open loop: the cap on requests in flight, if one is set.
    pub fn in_flight_cap(&self) -> Option<u32> {
        self.max_in_flight
    }

    /// Closed loop: each user's pause between an answer and its next request.
    pub fn think_duration(&self) -> Option<Duration> {
        self.think_time
    }

    /// The ramp or spike, if any.
    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// The warm-up excluded from the results, if one is set.
    pub fn warmup(&self) -> Option<Duration> {
        self.warmup
    }

    /// The duration, if one is set.
    pub fn duration(&self) -> Option<Duration> {
        self.duration
    }

    /// The request count, if one is set.
    pub fn request_limit(&self) -> Option<u64> {
        self.requests
    }

    /// The loads to run one after another, each with its own result set:
    /// the steps of a sequence, or this load alone.
    pub fn phases(&self) -> &[Load] {
        match &self.steps {
            Some(steps) => steps,
            None => std::slice::from_ref(self),
        }
    }

    /// Shrink every duration and time in the shape by `factor`
    /// (`--duration-scale`): the run, ramps, spikes and warm-ups, never below
    /// 1 ms for the run, and keeping a valid shape valid. Rates, user counts,
    /// request counts and think time are the shape's intensity, not its
    /// length, and stay as they are.
    pub(crate) fn scaled(self, factor: f64) -> Self {
        if !(factor.is_finite() && factor > 0.0) {
            return self;
        }
        self.each(|l| l.scale_times(factor))
    }

    fn scale_times(&mut self, factor: f64) {
        let scale = |d: Duration| {
            Duration::try_from_secs_f64(d.as_secs_f64() * factor).unwrap_or(Duration::MAX)
        };
        let tiny = Duration::from_nanos(1);
        let duration = self
            .duration
            .map(|d| scale(d).max(Duration::from_millis(1)));
        self.duration = duration;
        let end = duration.unwrap_or(Duration::MAX);
        self.profile = match self.profile {
            Profile::Steady => Profile::Steady,
            Profile::Ramp { to, over } => Profile::Ramp {
                to,
                over: scale(over).max(tiny).min(end),
            },
            Profile::Spike { peak, at, hold } => {
                // Scale the end, not the hold, so the spike stays inside.
                let stop = scale(at.saturating_add(hold)).min(end);
                let hold = stop.saturating_sub(scale(at)).max(tiny);
                Profile::Spike {
                    peak,
                    at: stop.saturating_sub(hold),
                    hold,
                }
            }
        };
        self.warmup = self.warmup.map(|w| scale(w).min(end.saturating_sub(tiny)));
    }

    /// The smoke-test version of this load, whatever its shape: one user,
    /// two requests.
    pub(crate) fn smoke(&self) -> Self {
        Load::users(1).requests(2)
    }

    /// Apply `f` to this load, or to every step of a sequence.
    fn each(mut self, f: impl Fn(&mut Load)) -> Self {
        match &mut self.steps {
            Some(steps) => steps.iter_mut().for_each(f),
            None => f(&mut self),
        }
        self
    }

    fn note_misuse(&mut self, field: &'static str, why: String) {
        if self.misuse.is_none() {
            self.misuse = Some((field, why));
        }
    }
}

/// `x` as a user count if it is a whole number a `u32` holds.
pub(crate) fn whole_users(x: f64) -> Option<u32> {
    let fits = x.is_finite() && x >= 0.0 && x.fract() == 0.0 && x <= f64::from(u32::MAX);
    fits.then_some(x as u32)
}

#[cfg(test)]
#[path = "mod_tests.rs"]
mod tests;
