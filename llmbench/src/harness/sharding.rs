//! The harness's side of shards: applying `--shard` to a scenario,
//! waiting for `--start-at`, and keeping each result set's lossless
//! histograms in `histograms.json` for `llmbench merge`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::TrialRun;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::load::Shard;
use crate::report::meta::ShardInfo;
use crate::report::HistogramSet;
use crate::ValidBench;

/// A `--start-at` more than this far in the past is a mistake (a stale
/// environment variable, a time in ms), not a start that is running late.
const STALE_START: Duration = Duration::from_secs(60);

/// How long to wait from `now` until `start_at` (seconds since the Unix
/// epoch): zero for a time just past, an error for one long past.
pub(crate) fn start_delay(start_at: f64, now: SystemTime) -> Result<Duration> {
    let now_s = now
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    if !start_at.is_finite() {
        return Err(Error::config(format!(
            "--start-at: expected seconds since the Unix epoch (got {start_at})"
        )));
    }
    let ahead = start_at - now_s;
    if ahead < -STALE_START.as_secs_f64() {
        return Err(Error::config(format!(
            "--start-at {start_at}: that is {:.0} s in the past (now is {now_s:.0}); give every \
             shard the same time a little in the future, e.g. `date -d +30sec +%s`",
            -ahead
        )));
    }
    if ahead > 7.0 * 86_400.0 {
        return Err(Error::config(format!(
            "--start-at {start_at}: that is {:.0} days away; is it in milliseconds? \
             it takes seconds since the Unix epoch",
            ahead / 86_400.0
        )));
    }
    Ok(Duration::try_from_secs_f64(ahead.max(0.0)).unwrap_or_default())
}

/// Sleep until `start_at`, saying so first.
pub(crate) fn wait_for_start(start_at: f64, shard: Option<Shard>) -> Result<()> {
    let delay = start_delay(start_at, SystemTime::now())?;
    let who = shard.map_or_else(String::new, |s| format!(" (shard {s})"));
    if delay.is_zero() {
        eprintln!("llmbench: --start-at {start_at} has passed{who}; starting now");
    } else {
        eprintln!(
            "llmbench: waiting {:.1} s for --start-at {start_at}{who}",
            delay.as_secs_f64()
        );
        std::thread::sleep(delay);
    }
    Ok(())
}

/// `bench` as shard `shard` runs it: its load's part, and its own seed.
pub(crate) fn shard_bench(bench: &mut ValidBench, shard: Shard) -> Result<()> {
    bench.load = bench.load.clone().shard(shard)?;
    bench.seed = shard.seed(bench.seed);
    Ok(())
}

/// What `summary.json` and `run.json` record of a shard's trial.
pub(crate) fn shard_info(
    shard: Shard,
    seed: Option<u64>,
    start_at: Option<f64>,
    t0: SystemTime,
) -> ShardInfo {
    ShardInfo {
        index: shard.index,
        count: shard.count,
        seed,
        start_at,
        t0_unix_ms: Some(unix_ms(t0)),
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn unix_ms(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

impl super::Shared {
    /// Keep `run`'s lossless aggregate in `histograms.json`, and, the first
    /// time, the shard in `run.json`.
    pub(super) fn keep_histograms(
        &self,
        scenario: &str,
        step: &Option<String>,
        engine: &Engine,
        run: &TrialRun,
    ) -> Result<()> {
        let set = HistogramSet {
            scenario: scenario.to_string(),
            step: step.clone(),
            engine: engine.label().to_string(),
            t0_unix_ms: unix_ms(run.t0_wall),
            aggregate: run.aggregate.state()?,
        };
        let mut guard = super::lock(&self.run);
        let Some(state) = guard.as_mut() else {
            return Ok(());
        };
        state.histograms.push(set);
        state.dir.write_histograms(&state.histograms)?;
        if let (Some(shard), true) = (self.shard, state.meta.shards.is_empty()) {
            let info = shard_info(shard, None, self.start_at, run.t0_wall);
            state.meta.shards.push(info);
            state.dir.write_meta(&state.meta)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_time_long_past_is_refused_and_one_just_past_starts_now() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let err = start_delay(1_700_000_000.0, now).unwrap_err().to_string();
        assert!(err.contains("in the past"), "{err}");
        assert_eq!(start_delay(1_799_999_990.0, now).unwrap(), Duration::ZERO);
        assert_eq!(
            start_delay(1_800_000_002.5, now).unwrap(),
            Duration::from_millis(2500)
        );
        let err = start_delay(1_800_000_000_000.0, now)
            .unwrap_err()
            .to_string();
        assert!(err.contains("milliseconds"), "{err}");
    }
}
