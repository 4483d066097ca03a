//! The figures printed on a trial's line, after libtest's `test name ...`.

use crate::measure::{warnings, Summary};

/// A duration in milliseconds, to three significant figures or so.
fn fmt_ms(ms: f64) -> String {
    if ms >= 10_000.0 {
        format!("{:.1} s", ms / 1e3)
    } else if ms >= 1_000.0 {
        format!("{:.2} s", ms / 1e3)
    } else if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

/// The figures printed on a trial's line.
pub(super) fn headline(s: &Summary) -> String {
    let mut parts = vec![format!(
        "{}/{} ok in {:.1} s, {:.1} req/s",
        s.successes, s.requests, s.duration_s, s.request_throughput
    )];
    if let Some(d) = &s.ttft {
        parts.push(format!("ttft p50 {} p99 {}", fmt_ms(d.p50), fmt_ms(d.p99)));
    }
    if let Some(d) = &s.itl {
        parts.push(format!("itl p50 {}", fmt_ms(d.p50)));
    }
    if let Some(d) = &s.e2e_latency {
        parts.push(format!("e2e p50 {}", fmt_ms(d.p50)));
    }
    parts.push(format!("{:.0} tok/s", s.output_token_throughput));
    if let (Some(goodput), Some(share)) = (s.goodput, s.slo_attainment) {
        parts.push(format!(
            "goodput {goodput:.1} req/s, {:.0}% met slo",
            share * 100.0
        ));
    }
    if let (true, Some(lag)) = (warnings::lag_exceeded(s), &s.schedule_lag) {
        parts.push(format!(
            "WARNING: the client fell behind its schedule (send lag p99 {})",
            fmt_ms(lag.p99)
        ));
    }
    if let Some(cpu) = s.client_cpu.as_ref().filter(|c| warnings::cpu_exceeded(c)) {
        let busiest = match (&cpu.busiest_thread, cpu.busiest_thread_share) {
            (Some(name), Some(share)) => format!(", {name} {:.0}% of a core", share * 100.0),
            _ => String::new(),
        };
        parts.push(format!(
            "WARNING: the client was busy ({:.0}% of {} cores{busiest}); see summary.json warnings",
            cpu.cores_share * 100.0,
            cpu.cores
        ));
    }
    format!("[{}]", parts.join(" | "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::{Aggregate, ClientCpu};

    fn busy(cores_share: f64, busiest: f64) -> ClientCpu {
        ClientCpu {
            cpu_s: 2.0 * cores_share * 10.0,
            wall_s: 10.0,
            cores: 2,
            cores_share,
            busiest_thread: Some("llmbench-client".into()),
            busiest_thread_share: Some(busiest),
            threads: Default::default(),
        }
    }

    #[test]
    fn a_busy_client_shows_on_the_trial_line() {
        let calm = Aggregate::default()
            .summary()
            .with_client_cpu(Some(busy(0.4, 0.5)));
        assert!(!headline(&calm).contains("WARNING"), "{}", headline(&calm));
        let busy = Aggregate::default()
            .summary()
            .with_client_cpu(Some(busy(0.92, 0.97)));
        let line = headline(&busy);
        assert!(
            line.contains(
                "WARNING: the client was busy (92% of 2 cores, llmbench-client 97% of a core)"
            ),
            "{line}"
        );
        assert!(
            !line.contains("fell behind"),
            "no lag, no lag warning: {line}"
        );
    }

    #[test]
    fn durations_print_with_sensible_precision() {
        assert_eq!(fmt_ms(0.4234), "0.42 ms");
        assert_eq!(fmt_ms(21.349), "21.3 ms");
        assert_eq!(fmt_ms(151.6), "152 ms");
        assert_eq!(fmt_ms(3_216.0), "3.22 s");
        assert_eq!(fmt_ms(12_345.0), "12.3 s");
    }
}
