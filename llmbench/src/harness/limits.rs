//! The open-files limit: every stream a load holds open needs a file
//! descriptor, so the harness raises the soft `RLIMIT_NOFILE` to the hard
//! limit before it runs anything, and refuses, before sending a request, a
//! load that certainly needs more descriptors than the limit allows.
//!
//! The decision ([`decide`]) is pure; reading and raising the limit, and
//! counting the descriptors already open, sit at the edge.

use std::fmt;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::load::schedule::user_curve;
use crate::load::{Load, Profile};

/// The soft and hard open-files limits of the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NoFile {
    /// The limit in force.
    pub soft: u64,
    /// The most the soft limit may be raised to without privileges.
    pub hard: u64,
}

/// How many streams a load may hold open at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Streams {
    /// It holds this many at its peak, whatever the engine does: a closed
    /// loop keeps one request in flight per user.
    Certain(u64),
    /// It holds at most about this many, depending on how fast the engine
    /// answers: an open loop's in-flight cap, or, without one, the arrivals
    /// of one request timeout at the peak rate.
    AtMost(u64),
}

impl Streams {
    fn count(self) -> u64 {
        match self {
            Streams::Certain(n) | Streams::AtMost(n) => n,
        }
    }
}

/// The streams `load` (one load, not a sequence) may hold open at once,
/// when a request may last up to `request_timeout`.
pub(crate) fn streams(load: &Load, request_timeout: Duration) -> Streams {
    let limit = load.requests.unwrap_or(u64::MAX);
    let Some(rate) = load.rate else {
        let peak = user_curve(load).map_or(load.users, |c| c.peak());
        return Streams::Certain(u64::from(peak).min(limit));
    };
    if let Some(cap) = load.max_in_flight {
        return Streams::AtMost(u64::from(cap).min(limit));
    }
    let peak_rate = match load.profile {
        Profile::Steady => rate,
        Profile::Ramp { to, .. } => rate.max(to),
        Profile::Spike { peak, .. } => rate.max(peak),
    };
    // Each request ends by its timeout, so those in flight arrived within
    // the last timeout; a bursty process may beat the mean, hence "about".
    let window = (peak_rate * request_timeout.as_secs_f64()).ceil() + 1.0;
    let window = if window.is_finite() && window < u64::MAX as f64 {
        window as u64
    } else {
        u64::MAX
    };
    Streams::AtMost(window.min(limit))
}

/// What one trial needs from the open-files limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Need {
    /// The streams the load may hold open at once.
    pub streams: Streams,
    /// Descriptors per stream in this process: 1 for the client's socket,
    /// 2 when the in-process simulator holds the other end.
    pub per_stream: u64,
    /// Descriptors already open (files, sockets, the runtime's).
    pub in_use: u64,
}

impl Need {
    fn descriptors(&self) -> u64 {
        self.streams
            .count()
            .saturating_mul(self.per_stream)
            .saturating_add(self.in_use)
    }
}

/// What to do about the open-files limit before a trial.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// The soft limit already allows what the load needs.
    Fine,
    /// Raise the soft limit to the hard limit, which allows it.
    Raise {
        /// The soft limit now.
        from: u64,
        /// The hard limit.
        to: u64,
    },
    /// The hard limit is too low: fail the trial when the load certainly
    /// needs more (`certain`), warn when it only may.
    TooLow {
        /// Why, and what to do.
        message: String,
        /// Whether the load certainly needs more than the limit.
        certain: bool,
    },
}

/// Decide what `need` asks of `limits`.
pub(crate) fn decide(limits: NoFile, need: Need) -> Decision {
    let wanted = need.descriptors();
    if wanted <= limits.soft {
        return Decision::Fine;
    }
    if wanted <= limits.hard {
        return Decision::Raise {
            from: limits.soft,
            to: limits.hard,
        };
    }
    Decision::TooLow {
        message: too_low(limits, need, None),
        certain: matches!(need.streams, Streams::Certain(_)),
    }
}

/// The message for a limit that does not allow `need`; `why`: why it
/// could not be raised, if raising it failed.
fn too_low(limits: NoFile, need: Need, why: Option<&str>) -> String {
    let wanted = need.descriptors();
    let streams = match need.streams {
        Streams::Certain(n) => format!("needs {n} streams open at once"),
        Streams::AtMost(n) => format!(
            "may hold up to about {n} streams open at once (set load.max_in_flight to bound it)"
        ),
    };
    let per = match need.per_stream {
        1 => "one descriptor each".to_string(),
        n => format!("{n} descriptors each, the in-process simulator's included"),
    };
    let raise = match why {
        Some(why) => format!("; raising it failed: {why}"),
        None => String::new(),
    };
    format!(
        "the load {streams} ({per}, {wanted} with the {} already open) but the open-files \
         limit is {} (hard {}){raise}; raise it with `ulimit -n {wanted}` (the hard limit \
         may need root or /etc/security/limits.conf)",
        need.in_use, limits.soft, limits.hard
    )
}

/// What raising the soft limit to the hard limit did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RaiseOutcome {
    /// The soft limit already was the hard limit.
    Unchanged(u64),
    /// The soft limit was raised.
    Raised {
        /// The soft limit before.
        from: u64,
        /// The soft limit now.
        to: u64,
    },
    /// The limits could not be read or set.
    Failed(String),
    /// Not a Unix system: the limit was not checked.
    NotChecked,
}

impl fmt::Display for RaiseOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RaiseOutcome::Unchanged(n) => write!(f, "open-files limit {n}"),
            RaiseOutcome::Raised { from, to } => {
                write!(f, "open-files limit raised from {from} to {to}")
            }
            RaiseOutcome::Failed(why) => write!(f, "open-files limit not raised: {why}"),
            RaiseOutcome::NotChecked => {
                write!(f, "open-files limit not checked (not a Unix system)")
            }
        }
    }
}

/// The process's open-files limits; `None` where there are none to read.
#[cfg(unix)]
fn read() -> std::io::Result<Option<NoFile>> {
    let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
    Ok(Some(NoFile { soft, hard }))
}

#[cfg(not(unix))]
fn read() -> std::io::Result<Option<NoFile>> {
    Ok(None)
}

/// Set the soft limit to `to`, keeping the hard limit.
#[cfg(unix)]
fn set_soft(to: u64, hard: u64) -> std::io::Result<()> {
    rlimit::setrlimit(rlimit::Resource::NOFILE, to, hard)
}

#[cfg(not(unix))]
fn set_soft(_to: u64, _hard: u64) -> std::io::Result<()> {
    Ok(())
}

/// Raise the soft open-files limit to the hard limit, as servers do: a
/// benchmark's streams each hold a descriptor, and the usual soft limit of
/// 1,024 is far below what 10,000 streams need.
pub(crate) fn raise_to_hard() -> RaiseOutcome {
    match read() {
        Ok(None) => RaiseOutcome::NotChecked,
        Err(e) => RaiseOutcome::Failed(format!("reading RLIMIT_NOFILE: {e}")),
        Ok(Some(NoFile { soft, hard })) if soft >= hard => RaiseOutcome::Unchanged(soft),
        Ok(Some(NoFile { soft, hard })) => match set_soft(hard, hard) {
            Ok(()) => RaiseOutcome::Raised {
                from: soft,
                to: hard,
            },
            Err(e) => RaiseOutcome::Failed(format!("setting RLIMIT_NOFILE to {hard}: {e}")),
        },
    }
}

/// How many descriptors the process has open now; 0 where that cannot be
/// counted (the check then only counts the load's streams).
fn open_descriptors() -> u64 {
    ["/proc/self/fd", "/dev/fd"]
        .iter()
        .find_map(|dir| std::fs::read_dir(dir).ok())
        .map_or(0, |entries| entries.count() as u64)
}

/// Make sure the open-files limit allows `load`: raise it if need be.
/// `Ok(None)`: it does (or cannot be checked here); `Ok(Some(note))`: it may
/// not, depending on the engine's speed; `Err`: it certainly does not.
pub(crate) fn ensure(
    load: &Load,
    request_timeout: Duration,
    in_process_sim: bool,
) -> Result<Option<String>> {
    let limits = match read() {
        Ok(Some(limits)) => limits,
        // Not Unix, or unreadable: nothing to check against.
        Ok(None) | Err(_) => return Ok(None),
    };
    let need = Need {
        streams: streams(load, request_timeout),
        per_stream: if in_process_sim { 2 } else { 1 },
        in_use: open_descriptors(),
    };
    let (message, certain) = match decide(limits, need) {
        Decision::Fine => return Ok(None),
        Decision::Raise { from, to } => match set_soft(to, limits.hard) {
            Ok(()) => return Ok(None),
            Err(e) => {
                let why = format!("setting it from {from} to {to}: {e}");
                let certain = matches!(need.streams, Streams::Certain(_));
                (too_low(limits, need, Some(&why)), certain)
            }
        },
        Decision::TooLow { message, certain } => (message, certain),
    };
    if certain {
        Err(Error::config(message))
    } else {
        Ok(Some(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    const LIMITS: NoFile = NoFile {
        soft: 1024,
        hard: 4096,
    };

    fn need(streams: Streams, per_stream: u64) -> Need {
        Need {
            streams,
            per_stream,
            in_use: 20,
        }
    }

    #[test]
    fn a_closed_loop_needs_one_stream_per_user_at_its_peak() {
        assert_eq!(
            streams(&Load::users(10).for_secs(5), s(300)),
            Streams::Certain(10)
        );
        let spike = Load::users(10).spike_to(300, s(5), s(5)).for_secs(20);
        assert_eq!(streams(&spike, s(300)), Streams::Certain(300));
        let ramp = Load::users(50).ramp_to(5, s(10)).for_secs(20);
        assert_eq!(streams(&ramp, s(300)), Streams::Certain(50));
        // Never more streams than requests.
        assert_eq!(
            streams(&Load::users(100).requests(3), s(300)),
            Streams::Certain(3)
        );
    }

    #[test]
    fn an_open_loop_may_hold_its_cap_or_one_timeout_of_arrivals() {
        let capped = Load::rate(100.0).max_in_flight(256).for_secs(60);
        assert_eq!(streams(&capped, s(300)), Streams::AtMost(256));
        assert_eq!(
            streams(&Load::rate(10.0).for_secs(60), s(30)),
            Streams::AtMost(301)
        );
        let spike = Load::rate(10.0).spike_to(50.0, s(10), s(5)).for_secs(60);
        assert_eq!(streams(&spike, s(30)), Streams::AtMost(1501));
        assert_eq!(
            streams(&Load::rate(10.0).requests(40), s(30)),
            Streams::AtMost(40)
        );
    }

    #[test]
    fn within_the_soft_limit_nothing_changes() {
        assert_eq!(
            decide(LIMITS, need(Streams::Certain(1000), 1)),
            Decision::Fine
        );
    }

    #[test]
    fn within_the_hard_limit_the_soft_limit_is_raised() {
        assert_eq!(
            decide(LIMITS, need(Streams::Certain(2000), 1)),
            Decision::Raise {
                from: 1024,
                to: 4096
            }
        );
        // The in-process simulator holds the other end of each stream.
        assert_eq!(
            decide(LIMITS, need(Streams::Certain(1000), 2)),
            Decision::Raise {
                from: 1024,
                to: 4096
            }
        );
    }

    #[test]
    fn a_load_that_certainly_needs_more_is_refused_with_the_fix() {
        let Decision::TooLow { message, certain } =
            decide(LIMITS, need(Streams::Certain(10_000), 1))
        else {
            panic!("10,000 streams do not fit 4,096 descriptors");
        };
        assert!(certain);
        assert_eq!(
            message,
            "the load needs 10000 streams open at once (one descriptor each, 10020 with the 20 \
             already open) but the open-files limit is 1024 (hard 4096); raise it with \
             `ulimit -n 10020` (the hard limit may need root or /etc/security/limits.conf)"
        );
        let Decision::TooLow { message, .. } = decide(LIMITS, need(Streams::Certain(3000), 2))
        else {
            panic!("3,000 streams of 2 descriptors do not fit 4,096");
        };
        assert!(
            message.contains("2 descriptors each, the in-process simulator's included"),
            "{message}"
        );
    }

    #[test]
    fn a_load_that_only_may_need_more_is_not_refused() {
        let Decision::TooLow { message, certain } =
            decide(LIMITS, need(Streams::AtMost(30_000), 1))
        else {
            panic!("30,000 streams do not fit 4,096 descriptors");
        };
        assert!(!certain);
        assert!(
            message.contains("may hold up to about 30000 streams"),
            "{message}"
        );
        assert!(message.contains("load.max_in_flight"), "{message}");
    }

    #[test]
    fn the_raise_brings_the_soft_limit_to_the_hard_limit() {
        let raised = raise_to_hard();
        if cfg!(unix) {
            let Ok(Some(now)) = read() else {
                panic!("the limits are readable on Unix");
            };
            assert_eq!(now.soft, now.hard, "{raised}");
            assert!(
                matches!(raised, RaiseOutcome::Raised { to, .. } | RaiseOutcome::Unchanged(to) if to == now.hard),
                "{raised}"
            );
        } else {
            assert_eq!(raised, RaiseOutcome::NotChecked);
        }
    }

    #[test]
    fn a_load_beyond_the_hard_limit_fails_up_front() {
        let Ok(Some(limits)) = read() else {
            return; // not Unix: nothing to check
        };
        let Ok(users) = u32::try_from(limits.hard) else {
            return; // no hard limit a load could pass
        };
        let load = Load::users(users).for_secs(1);
        let e = ensure(&load, Duration::from_secs(1), true).expect_err("twice the hard limit");
        assert!(e.is_config(), "{e}");
        let msg = e.to_string();
        assert!(msg.contains(&format!("needs {users} streams")), "{msg}");
        assert!(msg.contains("ulimit -n"), "{msg}");
    }

    /// Set in the child process of the test below.
    const CHILD: &str = "LLMBENCH_TEST_LOWERED_NOFILE";

    /// Runs this test binary again, its soft limit lowered to 256 by the
    /// shell, so the raise is seen doing its work on any Unix box without
    /// lowering the limit under the other tests of this process.
    #[cfg(unix)]
    #[test]
    fn a_lowered_soft_limit_is_raised_to_the_hard_limit() {
        let exe = std::env::current_exe().expect("the test binary knows its path");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(r#"ulimit -Sn 256 && exec "$0" "$@""#)
            .arg(exe)
            .args(["--exact", "harness::limits::tests::lowered_limit_child"])
            .args(["--nocapture", "--test-threads", "1"])
            .env(CHILD, "1")
            .output()
            .expect("sh runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{text}");
        assert!(text.contains("1 passed"), "the child ran its test: {text}");
    }

    /// The child's half of the test above; does nothing in a plain run.
    #[cfg(unix)]
    #[test]
    fn lowered_limit_child() {
        if std::env::var_os(CHILD).is_none() {
            return;
        }
        let Ok(Some(before)) = read() else {
            panic!("the limits are readable on Unix");
        };
        assert_eq!(before.soft, 256, "the shell lowered the soft limit");
        // 200 users with the simulator in process need over 400
        // descriptors: the check raises the limit (any Linux box allows
        // 4,096 or more).
        let load = Load::users(200).for_secs(1);
        assert_eq!(ensure(&load, Duration::from_secs(1), true).ok(), Some(None));
        let Ok(Some(after)) = read() else {
            panic!("the limits are readable on Unix");
        };
        assert_eq!(after.soft, before.hard);
        // And the harness's raise at the start of a run does the same.
        set_soft(256, before.hard).expect("lowering the soft limit is allowed");
        assert_eq!(
            raise_to_hard(),
            RaiseOutcome::Raised {
                from: 256,
                to: before.hard
            }
        );
        let Ok(Some(after)) = read() else {
            panic!("the limits are readable on Unix");
        };
        assert_eq!(after.soft, before.hard);
    }
}
