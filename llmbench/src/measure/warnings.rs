//! Signs that the client itself limited a run: when llmbench could not send
//! requests on schedule, the figures describe the client as much as the
//! engine, and the run says so instead of passing them off as the engine's.

use super::Summary;

/// Schedule lag (actual minus scheduled send) at p99 beyond which the client
/// is said to have fallen behind: a tenth of a typical 100 ms TTFT budget.
pub const LAG_P99_WARN_MS: f64 = 10.0;

/// The warnings `summary` deserves, in words a user can act on.
pub fn client_warnings(summary: &Summary) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(lag) = &summary.schedule_lag {
        if lag.p99 > LAG_P99_WARN_MS {
            out.push(format!(
                "the client fell behind its schedule: send lag p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms \
                 (over {LAG_P99_WARN_MS} ms at p99); latencies include that delay, and the load \
                 offered was lower than asked, so the client, not the engine, may be the limit",
                lag.p50, lag.p99, lag.max
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::measure::{Aggregate, Exchange, RecordContext, RequestRecord};
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
