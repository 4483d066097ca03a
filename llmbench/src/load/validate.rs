//! Checks a load shape before it runs: every field in range, every option on
//! a shape it applies to, and (for now) whether this version can run it.

use std::time::Duration;

use crate::error::{Error, Result};

use super::{whole_users, Arrivals, Load, Profile};

impl Load {
    /// Check every field; the error names the field and what is wrong, as
    /// in `load.rate: must be positive (got -1)`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llmbench::prelude::*;
    /// assert!(Load::users(4).for_secs(10).validate().is_ok());
    /// let err = Load::rate(-1.0).for_secs(10).validate().unwrap_err();
    /// assert_eq!(err.to_string(), "invalid scenario: load.rate: must be positive (got -1)");
    /// let err = Load::rate(1.0).ramp_to(5.0, Duration::ZERO).for_secs(10).validate();
    /// assert!(err.unwrap_err().to_string().contains("load.ramp.over"));
    /// ```
    pub fn validate(&self) -> Result<()> {
        check(self, "load").map_err(Error::scenario)
    }
}

fn secs(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

/// Check `load`, naming fields under `at` (`load`, `load.steps[2]`).
fn check(load: &Load, at: &str) -> std::result::Result<(), String> {
    if let Some((field, why)) = &load.misuse {
        return Err(format!("{at}.{field}: {why}"));
    }
    if let Some(steps) = &load.steps {
        if steps.is_empty() {
            return Err(format!(
                "{at}.steps: empty; give at least one step (Load::steps([..]) or .sweep([..]))"
            ));
        }
        for (i, step) in steps.iter().enumerate() {
            let at = format!("{at}.steps[{i}]");
            if step.steps.is_some() {
                return Err(format!("{at}: a step cannot be a sequence of steps itself"));
            }
            if step.capacity.is_some() {
                return Err(format!(
                    "{at}.find_capacity: a sequence of steps cannot also search for capacity"
                ));
            }
            check(step, &at)?;
        }
        return Ok(());
    }
    if let Some((field, why)) = load.capacity.as_ref().and_then(|c| c.problem()) {
        return Err(format!("{at}.{field}: {why}"));
    }
    match load.rate {
        None if load.users == 0 => {
            return Err(format!("{at}.users: must be at least 1 (got 0)"));
        }
        None => {}
        Some(rate) => check_level(load, rate, &format!("{at}.rate"))?,
    }
    if let Arrivals::Gamma { burstiness } = load.arrivals {
        check_positive(burstiness, &format!("{at}.burstiness"))?;
    }
    if load.max_in_flight == Some(0) {
        return Err(format!("{at}.max_in_flight: must be at least 1 (got 0)"));
    }
    match (load.duration, load.requests) {
        (None, None) => {
            return Err(format!(
                "{at}: no end; set a duration (.for_secs(s)) or a request count (.requests(n))"
            ))
        }
        (Some(d), _) if d.is_zero() => {
            return Err(format!("{at}.duration: must be longer than 0 s"));
        }
        (_, Some(0)) => return Err(format!("{at}.requests: must be at least 1 (got 0)")),
        _ => {}
    }
    check_profile(load, at)?;
    if let (Some(warmup), Some(d)) = (load.warmup, load.duration) {
        if warmup >= d {
            return Err(format!(
                "{at}.warmup: must be shorter than {at}.duration (got {} of {})",
                secs(warmup),
                secs(d)
            ));
        }
    }
    Ok(())
}

fn check_profile(load: &Load, at: &str) -> std::result::Result<(), String> {
    match load.profile {
        Profile::Steady => Ok(()),
        Profile::Ramp { to, over } => {
            check_level(load, to, &format!("{at}.ramp.to"))?;
            if over.is_zero() {
                return Err(format!("{at}.ramp.over: must be longer than 0 s"));
            }
            match load.duration {
                Some(d) if over > d => Err(format!(
                    "{at}.ramp.over: {} is longer than {at}.duration ({})",
                    secs(over),
                    secs(d)
                )),
                _ => Ok(()),
            }
        }
        Profile::Spike {
            peak,
            at: start,
            hold,
        } => {
            check_level(load, peak, &format!("{at}.spike.peak"))?;
            if hold.is_zero() {
                return Err(format!("{at}.spike.hold: must be longer than 0 s"));
            }
            let Some(d) = load.duration else {
                return Err(format!(
                    "{at}.spike: needs a duration (.for_secs(s)) to place the spike in"
                ));
            };
            let end = start.saturating_add(hold);
            if end > d {
                return Err(format!(
                    "{at}.spike: ends at {}, beyond {at}.duration ({})",
                    secs(end),
                    secs(d)
                ));
            }
            Ok(())
        }
    }
}

/// A level of `load`'s kind: whole users of at least 1, or a positive rate.
fn check_level(load: &Load, level: f64, field: &str) -> std::result::Result<(), String> {
    if load.rate.is_some() {
        return check_positive(level, field);
    }
    match whole_users(level) {
        Some(n) if n >= 1 => Ok(()),
        _ => Err(format!(
            "{field}: must be a whole number of users, at least 1 (got {level})"
        )),
    }
}

fn check_positive(x: f64, field: &str) -> std::result::Result<(), String> {
    if x.is_nan() || x <= 0.0 {
        Err(format!("{field}: must be positive (got {x})"))
    } else if !x.is_finite() {
        Err(format!("{field}: must be finite (got {x})"))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(load: Load) -> String {
        match load.validate() {
            Ok(()) => format!("accepted: {load:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases: Vec<(Load, &str)> = vec![
            (
                Load::rate(-1.0).for_secs(1),
                "load.rate: must be positive (got -1)",
            ),
            (
                Load::rate(0.0).for_secs(1),
                "load.rate: must be positive (got 0)",
            ),
            (
                Load::rate(f64::NAN).for_secs(1),
                "load.rate: must be positive (got NaN)",
            ),
            (
                Load::rate(f64::INFINITY).for_secs(1),
                "load.rate: must be finite (got inf)",
            ),
            (
                Load::rate(1.0).gamma(0.0).for_secs(1),
                "load.burstiness: must be positive (got 0)",
            ),
            (
                Load::rate(1.0).max_in_flight(0).for_secs(1),
                "load.max_in_flight: must be at least 1 (got 0)",
            ),
            (
                Load::rate(1.0).ramp_to(2.0, Duration::ZERO).for_secs(1),
                "load.ramp.over: must be longer than 0 s",
            ),
            (
                Load::rate(1.0).ramp_to(2.0, s(20)).for_secs(10),
                "load.ramp.over: 20 s is longer than load.duration (10 s)",
            ),
            (
                Load::rate(1.0).ramp_to(-2.0, s(5)).for_secs(10),
                "load.ramp.to: must be positive (got -2)",
            ),
            (
                Load::users(1).ramp_to(2.5, s(5)).for_secs(10),
                "load.ramp.to: must be a whole number of users, at least 1 (got 2.5)",
            ),
            (
                Load::users(1).spike_to(9, s(5), s(10)).for_secs(10),
                "load.spike: ends at 15 s, beyond load.duration (10 s)",
            ),
            (
                Load::users(1).spike_to(9, s(5), s(1)).requests(10),
                "load.spike: needs a duration",
            ),
            (
                Load::users(1)
                    .spike_to(9, s(5), Duration::ZERO)
                    .for_secs(10),
                "load.spike.hold: must be longer than 0 s",
            ),
            (
                Load::users(1).spike_to(0, s(5), s(1)).for_secs(10),
                "load.spike.peak: must be a whole number of users, at least 1 (got 0)",
            ),
            (Load::steps([]), "load.steps: empty"),
            (
                Load::users(1).for_secs(1).sweep(Vec::<u32>::new()),
                "load.steps: empty",
            ),
            (
                Load::users(1).for_secs(1).sweep([1.5]),
                "load.steps[0].sweep: a closed loop sweeps whole numbers of users (got 1.5)",
            ),
            (
                Load::steps([Load::users(1).for_secs(1), Load::rate(-3.0).for_secs(1)]),
                "load.steps[1].rate: must be positive (got -3)",
            ),
            (
                Load::steps([Load::steps([Load::users(1).for_secs(1)])]),
                "load.steps[0]: a step cannot be",
            ),
            (
                Load::users(1).for_secs(10).warmup_secs(10),
                "load.warmup: must be shorter than load.duration (got 10 s of 10 s)",
            ),
            (
                Load::users(1).poisson().for_secs(1),
                "load.poisson: applies to an open loop",
            ),
            (
                Load::users(1).gamma(2.0).for_secs(1),
                "load.gamma: applies to an open loop",
            ),
            (
                Load::users(1).max_in_flight(4).for_secs(1),
                "load.max_in_flight: applies to an open loop",
            ),
            (
                Load::rate(1.0).think_time(s(1)).for_secs(1),
                "load.think_time: applies to a closed loop",
            ),
            (
                Load::users(1)
                    .ramp_to(5, s(1))
                    .spike_to(9, s(1), s(1))
                    .for_secs(9),
                "load.spike: a load has at most one ramp or spike",
            ),
            (Load::rate(1.0), "load: no end"),
            (
                Load::users(0).for_secs(1),
                "load.users: must be at least 1 (got 0)",
            ),
        ];
        for (load, want) in cases {
            let got = err(load);
            assert!(got.contains(want), "want `{want}`, got `{got}`");
        }
    }
}
