//! Signs that the client itself limited a run: when llmbench could not send
//! requests on schedule, the figures describe the client as much as the
//! engine, and the run says so instead of passing them off as the engine's.

use super::{ClientCpu, Summary};

/// Schedule lag (actual minus scheduled send) at p99 beyond which the client
/// is said to have fallen behind: a tenth of a typical 100 ms TTFT budget.
pub const LAG_P99_WARN_MS: f64 = 10.0;

/// The share of the available cores at or above which the client is said
/// to have been busy enough to slow its own sends and timestamps.
pub const CPU_SHARE_WARN: f64 = 0.90;

/// The share of one core at or above which the client's busiest thread is
/// said to have been saturated (a runtime worker, the record writer).
pub const THREAD_SHARE_WARN: f64 = 0.95;

/// Trials shorter than this are not judged by their CPU use: the kernel
/// charges CPU time in whole clock ticks (10 ms), too coarse to tell a
/// busy thread from an idle one over a few hundred milliseconds.
pub const CPU_MIN_WALL_S: f64 = 1.0;

/// Whether the client fell behind its schedule (send lag p99 over
/// [`LAG_P99_WARN_MS`]).
pub fn lag_exceeded(summary: &Summary) -> bool {
    summary
        .schedule_lag
        .as_ref()
        .is_some_and(|lag| lag.p99 > LAG_P99_WARN_MS)
}

/// Whether the client's own CPU use may have limited the run: its share of
/// the available cores reached [`CPU_SHARE_WARN`], or its busiest thread
/// (the open loop's pacer, which spins on purpose, is never that thread)
/// reached [`THREAD_SHARE_WARN`] of a core, over at least
/// [`CPU_MIN_WALL_S`].
pub fn cpu_exceeded(cpu: &ClientCpu) -> bool {
    cpu.wall_s >= CPU_MIN_WALL_S
        && (cpu.cores_share >= CPU_SHARE_WARN
            || cpu
                .busiest_thread_share
                .is_some_and(|s| s >= THREAD_SHARE_WARN))
}

/// The warnings `summary` deserves, in words a user can act on.
pub fn client_warnings(summary: &Summary) -> Vec<String> {
    let mut out = Vec::new();
    if let (true, Some(lag)) = (lag_exceeded(summary), &summary.schedule_lag) {
        out.push(format!(
            "the client fell behind its schedule: send lag p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms \
             (over {LAG_P99_WARN_MS} ms at p99); latencies include that delay, and the load \
             offered was lower than asked, so the client, not the engine, may be the limit",
            lag.p50, lag.p99, lag.max
        ));
    }
    if let Some(cpu) = summary.client_cpu.as_ref().filter(|c| cpu_exceeded(c)) {
        let busiest = match (&cpu.busiest_thread, cpu.busiest_thread_share) {
            (Some(name), Some(share)) => {
                format!(
                    " (busiest thread `{name}`: {:.0}% of one core)",
                    share * 100.0
                )
            }
            _ => String::new(),
        };
        out.push(format!(
            "the client used {:.0}% of {} cores over {:.1} s{busiest}: at or over {:.0}% of the \
             cores, or {:.0}% of one core for a thread, its own work may delay sends and \
             timestamps, so the client, not the engine, may be the limit",
            cpu.cores_share * 100.0,
            cpu.cores,
            cpu.wall_s,
            CPU_SHARE_WARN * 100.0,
            THREAD_SHARE_WARN * 100.0,
        ));
    }
    out
}

impl Summary {
    /// This summary with the client's CPU use, and the warnings it then
    /// deserves.
    pub(crate) fn with_client_cpu(mut self, cpu: Option<ClientCpu>) -> Summary {
        self.client_cpu = cpu;
        self.warnings = client_warnings(&self);
        self
    }
}

impl Summary {
    /// This summary with what the monitor saw, and the alerts its
    /// thresholds raise added to the warnings.
    pub(crate) fn with_monitor(
        mut self,
        monitor: Option<crate::monitor::MonitorSummary>,
    ) -> Summary {
        if let Some(m) = &monitor {
            self.warnings.extend(crate::monitor::summary::alerts(m));
        }
        self.monitor = monitor;
        self
    }
}

#[cfg(test)]
mod tests {
    use crate::measure::{Aggregate, ClientCpu, Exchange, RecordContext, RequestRecord};
    use std::time::{Duration, Instant};

    fn record(lag_ms: u64) -> RequestRecord {
        let t0 = Instant::now();
        let scheduled_at = t0;
        let sent = t0 + Duration::from_millis(lag_ms);
        let mut ex = Exchange::started(sent);
        ex.content_at = vec![sent + Duration::from_millis(5)];
        ex.ended_at = sent + Duration::from_millis(6);
        let ctx = RecordContext {
            scenario: "s",
            engine: "e",
            model: "m",
            request_id: 0,
            user: 0,
            t0,
            scheduled_at,
            latency_from_schedule: true,
        };
        RequestRecord::from_exchange(&ctx, ex)
    }

    use crate::measure::test_support::client_cpu as cpu;

    #[test]
    fn a_busy_client_warns() {
        let summary = |c: ClientCpu| Aggregate::default().summary().with_client_cpu(Some(c));
        assert!(summary(cpu(0.5, 0.6, 10.0)).warnings.is_empty());
        let all_cores = summary(cpu(0.93, 0.94, 10.0)).warnings;
        assert_eq!(
            all_cores,
            [
                "the client used 93% of 2 cores over 10.0 s (busiest thread `llmbench-client`: \
              94% of one core): at or over 90% of the cores, or 95% of one core for a thread, \
              its own work may delay sends and timestamps, so the client, not the engine, may \
              be the limit"
            ]
        );
        let one_thread = summary(cpu(0.5, 0.97, 10.0)).warnings;
        assert_eq!(one_thread.len(), 1, "{one_thread:?}");
        assert!(one_thread[0].contains("`llmbench-client`: 97% of one core"));
        // Too short to judge from whole clock ticks.
        assert!(summary(cpu(1.0, 1.0, 0.5)).warnings.is_empty());
        assert!(Aggregate::default()
            .summary()
            .with_client_cpu(None)
            .warnings
            .is_empty());
    }

    #[test]
    fn lag_beyond_the_threshold_warns() {
        let mut on_time = Aggregate::default();
        let mut late = Aggregate::default();
        for _ in 0..100 {
            on_time.add(&record(0));
            late.add(&record(50));
        }
        assert!(on_time.summary().warnings.is_empty());
        let warnings = late.summary().warnings;
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].contains("the client fell behind its schedule"),
            "{warnings:?}"
        );
        assert!(warnings[0].contains("p99 50.00 ms"), "{warnings:?}");
    }
}
