//! The bench binary's command line: libtest's flags (so `cargo bench -- chat`,
//! `--list`, `--exact`, `--ignored` behave as users expect) plus llmbench's
//! own, each with an `LLMBENCH_*` environment twin.

use std::path::PathBuf;
use std::time::Duration;

use crate::engine::Timeouts;

use clap::Parser;

/// Arguments of a bench binary (`cargo bench -- [ARGS]`).
#[derive(Parser, Debug, Clone, Default)]
#[command(
    name = "llmbench",
    about = "Run llmbench scenarios against engines",
    after_help = "Without --engine/--engines, scenarios run against the built-in simulated engine."
)]
pub struct Args {
    /// libtest's own arguments (filter, --list, --exact, --ignored, ...).
    #[command(flatten)]
    pub libtest: libtest_mimic::Arguments,

    /// An engine to benchmark: `KIND=URL[,model=NAME][,name=LABEL][,api=ROUTE][,api_key_env=VAR][,price_per_hour=P]`.
    /// KIND is openai, ollama, tgi or llamacpp. Repeatable. Replaces the simulator.
    #[arg(
        long = "engine",
        value_name = "SPEC",
        env = "LLMBENCH_ENGINE",
        value_delimiter = ';'
    )]
    pub engines: Vec<String>,

    /// A TOML file of engines (`[[engine]]` tables with kind, url, model, name,
    /// api, api_key_env, and `[engine.launch]` to have the harness start the
    /// engine). `LLMBENCH_ENGINES` holds its path.
    #[arg(long = "engines", value_name = "FILE", env = "LLMBENCH_ENGINES")]
    pub engines_file: Option<PathBuf>,

    /// Save this run's results as baseline NAME (`<target dir>/llmbench/baselines/NAME`).
    #[arg(long, value_name = "NAME", env = "LLMBENCH_SAVE_BASELINE")]
    pub save_baseline: Option<String>,

    /// Compare every result set with baseline NAME, metric by metric.
    #[arg(long, value_name = "NAME", env = "LLMBENCH_BASELINE")]
    pub baseline: Option<String>,

    /// List the saved baselines and exit.
    #[arg(long, env = "LLMBENCH_LIST_BASELINES")]
    pub list_baselines: bool,

    /// Fail a trial whose comparison with the baseline shows a regression
    /// (a rise in the error rate always fails it).
    #[arg(long, env = "LLMBENCH_FAIL_ON_REGRESSION")]
    pub fail_on_regression: bool,

    /// A relative change smaller than this is noise (default 0.05: 5%).
    #[arg(
        long,
        value_name = "F",
        env = "LLMBENCH_NOISE_THRESHOLD",
        default_value_t = 0.05
    )]
    pub noise_threshold: f64,

    /// Where baselines live (default: `<target dir>/llmbench/baselines`).
    #[arg(long, value_name = "DIR", env = "LLMBENCH_BASELINE_DIR")]
    pub baseline_dir: Option<PathBuf>,

    /// Directory for run directories (default: `<target dir>/llmbench/runs`).
    #[arg(long, value_name = "DIR", env = "LLMBENCH_OUT")]
    pub out: Option<PathBuf>,

    /// Multiply every scenario's duration by F (e.g. 0.1 for a quick run).
    #[arg(long, value_name = "F", env = "LLMBENCH_DURATION_SCALE")]
    pub duration_scale: Option<f64>,

    /// Give up on a request after this many seconds.
    #[arg(
        long,
        value_name = "SECS",
        env = "LLMBENCH_REQUEST_TIMEOUT",
        default_value_t = 300.0
    )]
    pub request_timeout: f64,

    /// Give up on connecting to an engine after this many seconds.
    #[arg(
        long,
        value_name = "SECS",
        env = "LLMBENCH_CONNECT_TIMEOUT",
        default_value_t = 10.0
    )]
    pub connect_timeout: f64,

    /// Give up on a request whose first token has not come after this many
    /// seconds (default: only the request timeout applies).
    #[arg(long, value_name = "SECS", env = "LLMBENCH_FIRST_TOKEN_TIMEOUT")]
    pub first_token_timeout: Option<f64>,

    /// Give up on a stream that sends nothing for this many seconds once
    /// tokens flow.
    #[arg(
        long,
        value_name = "SECS",
        env = "LLMBENCH_IDLE_TIMEOUT",
        default_value_t = 60.0
    )]
    pub idle_timeout: f64,

    /// Send a request again, up to N times, when it failed before any token
    /// (refused, connection dropped, 429 or 5xx); each record counts its
    /// retries. Off by default: retries change what latency means.
    #[arg(long, value_name = "N", env = "LLMBENCH_RETRIES", default_value_t = 0)]
    pub retries: u32,

    /// Sample the host, the client, the engine's process, the GPUs and the
    /// engine's /metrics every SECS seconds into monitor.csv.
    #[arg(
        long,
        value_name = "SECS",
        env = "LLMBENCH_MONITOR_INTERVAL",
        default_value_t = 1.0
    )]
    pub monitor_interval: f64,

    /// Do not sample anything during the run (no monitor.csv, no `monitor`
    /// in summary.json).
    #[arg(long, env = "LLMBENCH_NO_MONITOR")]
    pub no_monitor: bool,

    /// Run part I (from 0) of N of every scenario, for a load sent from N
    /// machines: users and request counts divided, rates divided by N with
    /// a seed per shard. `llmbench merge` combines the N run directories.
    #[arg(long, value_name = "I/N", env = "LLMBENCH_SHARD", value_parser = parse_shard)]
    pub shard: Option<crate::load::Shard>,

    /// Wait until this wall-clock time (seconds since the Unix epoch)
    /// before the first trial, so shards start together.
    #[arg(long, value_name = "UNIX_TIME", env = "LLMBENCH_START_AT")]
    pub start_at: Option<f64>,
}

fn parse_shard(s: &str) -> Result<crate::load::Shard, String> {
    s.parse().map_err(|e: crate::Error| e.to_string())
}

impl Args {
    /// The whole-request timeout and the per-stage timeouts, each checked to
    /// be a positive number of seconds.
    pub fn timeouts(&self) -> crate::Result<(Duration, Timeouts)> {
        let secs = |flag: &str, v: f64| {
            Duration::try_from_secs_f64(v)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    crate::Error::new(
                        crate::ErrorKind::Config,
                        format!("--{flag}: must be a positive number of seconds (got {v})"),
                    )
                })
        };
        let timeouts = Timeouts {
            connect: secs("connect-timeout", self.connect_timeout)?,
            first_token: self
                .first_token_timeout
                .map(|v| secs("first-token-timeout", v))
                .transpose()?,
            idle: Some(secs("idle-timeout", self.idle_timeout)?),
        };
        Ok((secs("request-timeout", self.request_timeout)?, timeouts))
    }

    /// How often to sample, or `None` with `--no-monitor`.
    pub fn monitor_interval(&self) -> crate::Result<Option<Duration>> {
        if self.no_monitor {
            return Ok(None);
        }
        let v = self.monitor_interval;
        Duration::try_from_secs_f64(v)
            .ok()
            .filter(|d| *d >= Duration::from_millis(10))
            .map(Some)
            .ok_or_else(|| {
                crate::Error::new(
                    crate::ErrorKind::Config,
                    format!("--monitor-interval: must be at least 0.01 seconds (got {v})"),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libtest_and_llmbench_flags_mix() {
        let args = Args::try_parse_from([
            "bench",
            "--bench",
            "chat",
            "--exact",
            "--engine",
            "openai=http://127.0.0.1:9,model=m",
            "--engine",
            "openai=http://127.0.0.1:10",
            "--duration-scale",
            "0.5",
        ])
        .unwrap();
        assert!(args.libtest.bench);
        assert!(args.libtest.exact);
        assert_eq!(args.libtest.filter.as_deref(), Some("chat"));
        assert_eq!(args.engines.len(), 2);
        assert_eq!(args.duration_scale, Some(0.5));
    }

    #[test]
    fn every_llmbench_flag_has_an_environment_twin() {
        use clap::CommandFactory;
        let cmd = Args::command();
        let libtest = libtest_mimic::Arguments::command();
        let ours: Vec<_> = cmd
            .get_arguments()
            .filter(|a| libtest.get_arguments().all(|l| l.get_id() != a.get_id()))
            .collect();
        assert_eq!(ours.len(), 19);
        for arg in ours {
            let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
            assert!(
                env.as_deref().is_some_and(|e| e.starts_with("LLMBENCH_")),
                "--{:?} has no LLMBENCH_ twin",
                arg.get_long()
            );
        }
    }

    #[test]
    fn timeouts_must_be_positive() {
        let args = Args::try_parse_from(["bench", "--idle-timeout", "0"]).unwrap();
        let err = args.timeouts().unwrap_err().to_string();
        assert!(err.contains("--idle-timeout"), "{err}");
        let args = Args::try_parse_from(["bench", "--first-token-timeout", "2.5"]).unwrap();
        let (total, t) = args.timeouts().unwrap();
        assert_eq!(total, Duration::from_secs(300));
        assert_eq!(t.first_token, Some(Duration::from_millis(2500)));
    }

    #[test]
    fn the_monitor_samples_every_second_unless_told_otherwise() {
        let args = Args::try_parse_from(["bench"]).unwrap();
        assert_eq!(
            args.monitor_interval().unwrap(),
            Some(Duration::from_secs(1))
        );
        let args = Args::try_parse_from(["bench", "--monitor-interval", "0.25"]).unwrap();
        assert_eq!(
            args.monitor_interval().unwrap(),
            Some(Duration::from_millis(250))
        );
        let args = Args::try_parse_from(["bench", "--no-monitor"]).unwrap();
        assert_eq!(args.monitor_interval().unwrap(), None);
        let args = Args::try_parse_from(["bench", "--monitor-interval", "0"]).unwrap();
        let err = args.monitor_interval().unwrap_err().to_string();
        assert!(err.contains("--monitor-interval"), "{err}");
    }

    #[test]
    fn a_shard_is_index_slash_count() {
        let args =
            Args::try_parse_from(["bench", "--shard", "2/4", "--start-at", "1.5e9"]).unwrap();
        let shard = args.shard.unwrap();
        assert_eq!((shard.index, shard.count), (2, 4));
        assert_eq!(args.start_at, Some(1.5e9));
        let err = Args::try_parse_from(["bench", "--shard", "4/4"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("below COUNT"), "{err}");
    }

    #[test]
    fn unknown_flags_are_rejected() {
        assert!(Args::try_parse_from(["bench", "--no-such-flag"]).is_err());
    }
}
