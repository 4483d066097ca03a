//! How requests are offered to the engine over time.
//!
//! For now: a closed loop of concurrent users, each sending its next request
//! as soon as the previous one finished, for a duration or a request count.

pub(crate) mod executor;

use std::time::Duration;

/// The load a scenario offers.
///
/// ```
/// use llmbench::prelude::*;
/// let load = Load::users(10).for_secs(30);
/// assert_eq!(load.user_count(), 10);
/// let smoke = Load::users(2).requests(4);
/// assert_eq!(smoke.request_limit(), Some(4));
/// ```
#[must_use]
#[derive(Clone, Debug, PartialEq)]
pub struct Load {
    pub(crate) users: u32,
    pub(crate) duration: Option<Duration>,
    pub(crate) requests: Option<u64>,
}

impl Load {
    /// A closed loop of `n` concurrent users.
    pub fn users(n: u32) -> Self {
        Load {
            users: n,
            duration: None,
            requests: None,
        }
    }

    /// Keep starting requests for `secs` seconds.
    pub fn for_secs(self, secs: u64) -> Self {
        self.for_duration(Duration::from_secs(secs))
    }

    /// Keep starting requests for `duration`.
    pub fn for_duration(mut self, duration: Duration) -> Self {
        self.duration = Some(duration);
        self
    }

    /// Stop after `n` requests in all (across every user). With a duration
    /// too, whichever comes first ends the run.
    pub fn requests(mut self, n: u64) -> Self {
        self.requests = Some(n);
        self
    }

    /// The number of concurrent users.
    pub fn user_count(&self) -> u32 {
        self.users
    }

    /// The duration, if one is set.
    pub fn duration(&self) -> Option<Duration> {
        self.duration
    }

    /// The request count, if one is set.
    pub fn request_limit(&self) -> Option<u64> {
        self.requests
    }

    /// Shrink the duration by `factor` (`--duration-scale`); never below 1 ms.
    pub(crate) fn scaled(mut self, factor: f64) -> Self {
        if let Some(d) = self.duration {
            let scaled = d.as_secs_f64() * factor;
            self.duration = Some(Duration::from_secs_f64(scaled.max(0.001)));
        }
        self
    }

    /// The smoke-test version of this load: one user, two requests.
    pub(crate) fn smoke(&self) -> Self {
        Load {
            users: self.users.min(1),
            duration: None,
            requests: Some(2),
        }
    }
}
