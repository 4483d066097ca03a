//! The figures printed on a trial's line, after libtest's `test name ...`.

use crate::measure::Summary;

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
    if let (false, Some(lag)) = (s.warnings.is_empty(), &s.schedule_lag) {
        parts.push(format!(
            "WARNING: the client fell behind its schedule (send lag p99 {})",
            fmt_ms(lag.p99)
        ));
    }
    format!("[{}]", parts.join(" | "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_with_sensible_precision() {
        assert_eq!(fmt_ms(0.4234), "0.42 ms");
        assert_eq!(fmt_ms(21.349), "21.3 ms");
        assert_eq!(fmt_ms(151.6), "152 ms");
        assert_eq!(fmt_ms(3_216.0), "3.22 s");
        assert_eq!(fmt_ms(12_345.0), "12.3 s");
    }
}
