//! Shards: one of N parts of a load, for running a scenario from N
//! processes or machines at once (`--shard I/N`) and merging the results.
//!
//! A closed loop's users are divided as evenly as possible: shard `I` of
//! `N` gets `users / N` users, plus one when `I < users % N` (so 10 users
//! over 4 shards are 3, 3, 2, 2). An open loop's rates (and a ramp's or
//! spike's target) are divided by N, and each shard draws its arrivals from
//! its own seed, derived from the scenario's seed and `I`: the union of N
//! independent Poisson streams of rate `r / N` is a Poisson stream of rate
//! `r`, and no two shards share a schedule. Request counts and the
//! in-flight cap are divided like users. Indexes count from 0, as
//! Kubernetes' `JOB_COMPLETION_INDEX` does.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{Load, Profile};
use crate::error::{Error, Result};

/// Shard `index` of `count` (`0 <= index < count`).
///
/// ```
/// use llmbench::load::Shard;
/// let s: Shard = "1/4".parse()?;
/// assert_eq!((s.index, s.count), (1, 4));
/// assert_eq!(s.part(10), 3);
/// assert_eq!("2/4".parse::<Shard>()?.part(10), 2);
/// assert!("4/4".parse::<Shard>().is_err());
/// # Ok::<(), llmbench::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// Which part, from 0.
    pub index: u32,
    /// How many parts.
    pub count: u32,
}

impl FromStr for Shard {
    type Err = Error;

    fn from_str(s: &str) -> Result<Shard> {
        let bad = |why: &str| Error::config(format!("--shard {s:?}: {why}"));
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| bad("expected INDEX/COUNT, e.g. 0/4"))?;
        let index: u32 = i
            .trim()
            .parse()
            .map_err(|_| bad("INDEX is not a whole number"))?;
        let count: u32 = n
            .trim()
            .parse()
            .map_err(|_| bad("COUNT is not a whole number"))?;
        if count == 0 {
            return Err(bad("COUNT must be at least 1"));
        }
        if index >= count {
            return Err(bad(&format!(
                "INDEX counts from 0, so it must be below COUNT ({count})"
            )));
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// This shard's part of `total` whole things (users, requests).
    pub fn part(&self, total: u64) -> u64 {
        let (n, i) = (u64::from(self.count), u64::from(self.index));
        total / n + u64::from(i < total % n)
    }

    /// This shard's seed: the scenario's own for a single shard, else a
    /// mix of it and the index (SplitMix64), so shards draw different
    /// arrivals and prompts.
    pub fn seed(&self, base: u64) -> u64 {
        if self.count == 1 {
            return base;
        }
        let mut z = base ^ u64::from(self.index + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl Load {
    /// This shard's part of the load, or why the load cannot be split that
    /// finely: closed-loop users, request counts and the in-flight cap are
    /// divided as evenly as possible (10 users over 4 shards are 3, 3, 2,
    /// 2), open-loop rates (and ramp and spike targets) divided by N, and
    /// each shard draws its arrivals from a seed of its own ([`Shard`]).
    pub fn shard(self, shard: Shard) -> Result<Load> {
        let mut load = self;
        match &mut load.steps {
            Some(steps) => {
                for step in steps.iter_mut() {
                    shard_one(step, shard)?;
                }
            }
            None => shard_one(&mut load, shard)?,
        }
        Ok(load)
    }
}

fn shard_one(load: &mut Load, shard: Shard) -> Result<()> {
    let n = f64::from(shard.count);
    let too_few = |what: &str, total: u64| {
        Error::config(format!(
            "--shard {shard}: {total} {what} cannot be split into {} shards; \
             use at most {total} shards or raise the {what}",
            shard.count
        ))
    };
    if load.capacity.is_some() {
        return Err(Error::config(format!(
            "--shard {shard}: a capacity search picks its rates from what it measures, \
             so it runs from one machine; drop --shard for this scenario"
        )));
    }
    let whole = |total: u64, what: &str| -> Result<u64> {
        match shard.part(total) {
            0 => Err(too_few(what, total)),
            part => Ok(part),
        }
    };
    if let Some(rate) = load.rate {
        load.rate = Some(rate / n);
        load.profile = match load.profile {
            Profile::Ramp { to, over } => Profile::Ramp { to: to / n, over },
            Profile::Spike { peak, at, hold } => Profile::Spike {
                peak: peak / n,
                at,
                hold,
            },
            Profile::Steady => Profile::Steady,
        };
    } else {
        let users = whole(u64::from(load.users), "users")?;
        load.users = u32::try_from(users).unwrap_or(u32::MAX);
        // A ramp's or spike's users split like the starting users.
        load.profile = match load.profile {
            Profile::Ramp { to, over } => Profile::Ramp {
                to: shard.part(to as u64).max(1) as f64,
                over,
            },
            Profile::Spike { peak, at, hold } => Profile::Spike {
                peak: shard.part(peak as u64).max(1) as f64,
                at,
                hold,
            },
            Profile::Steady => Profile::Steady,
        };
    }
    if let Some(requests) = load.requests {
        load.requests = Some(whole(requests, "requests")?);
    }
    if let Some(cap) = load.max_in_flight {
        let part = shard.part(u64::from(cap)).max(1);
        load.max_in_flight = Some(u32::try_from(part).unwrap_or(u32::MAX));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::schedule::arrival_times;

    fn shard(s: &str) -> Shard {
        s.parse().unwrap()
    }

    #[test]
    fn users_and_requests_split_as_evenly_as_possible() {
        let parts: Vec<u64> = (0..4)
            .map(|i| Shard { index: i, count: 4 }.part(10))
            .collect();
        assert_eq!(parts, [3, 3, 2, 2]);
        let loads: Vec<Load> = (0..4)
            .map(|i| {
                Load::users(10)
                    .requests(7)
                    .shard(Shard { index: i, count: 4 })
                    .unwrap()
            })
            .collect();
        assert_eq!(loads.iter().map(|l| l.users).sum::<u32>(), 10);
        assert_eq!(loads.iter().filter_map(|l| l.requests).sum::<u64>(), 7);
        assert!(loads.iter().all(|l| l.validate().is_ok()));
    }

    #[test]
    fn a_load_too_small_to_split_says_so() {
        let err = Load::users(2)
            .for_secs(5)
            .shard(shard("3/4"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--shard 3/4") && err.contains("2 users"),
            "{err}"
        );
        let err = Load::rate(1.0)
            .requests(3)
            .shard(shard("3/4"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("3 requests"), "{err}");
        for bad in ["4/4", "1", "a/2", "0/0"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn open_loop_shards_divide_the_rate_and_never_share_a_schedule() {
        let load = Load::rate(40.0).poisson().for_secs(50);
        let mut all = Vec::new();
        let mut firsts = Vec::new();
        for i in 0..4 {
            let s = Shard { index: i, count: 4 };
            let part = load.clone().shard(s).unwrap();
            assert_eq!(part.rate, Some(10.0));
            let times: Vec<_> = arrival_times(&part, s.seed(7)).unwrap().collect();
            firsts.push(times[1..6].to_vec());
            all.extend(times);
        }
        firsts.sort();
        firsts.dedup();
        assert_eq!(firsts.len(), 4, "every shard has its own schedule");
        // The union: about 40/s over 50 s (2,000 arrivals, sd ~45).
        assert!((1850..2150).contains(&all.len()), "{}", all.len());
        assert_eq!(shard("0/1").seed(7), 7);
    }
}
