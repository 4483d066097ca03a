//! What a trial prints and how it ends: the verdict of a run, the figures
//! on its line, its phases and the scaling table of a sequence of steps.

use super::TrialRun;
use crate::measure::{warnings, ScalingTable, Summary};
use crate::monitor::summary::alerts;
use crate::report::TrialStatus;

/// How a trial ended and, if it failed, why; `judge_slos`: whether a missed
/// SLO threshold fails it (one line per miss).
pub(super) fn verdict(run: &TrialRun, judge_slos: bool) -> (TrialStatus, Option<String>) {
    let s = &run.summary;
    let first = || {
        run.first_errors
            .iter()
            .map(|(kind, msg)| {
                format!(
                    "{kind} x{}: {msg}",
                    s.errors_by_kind.get(kind).unwrap_or(&0)
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    if run.stopped {
        let msg = format!(
            "interrupted after {} requests ({} succeeded); every finished request is in requests.jsonl",
            s.requests, s.successes
        );
        return (TrialStatus::Interrupted, Some(msg));
    }
    if s.requests == 0 {
        return (TrialStatus::Failed, Some("no request was sent".into()));
    }
    if s.successes == 0 {
        return (
            TrialStatus::Failed,
            Some(format!("all {} requests failed: {}", s.requests, first())),
        );
    }
    let misses = s.slo_misses();
    if judge_slos && !misses.is_empty() {
        return (TrialStatus::Failed, Some(misses.join("\n")));
    }
    (TrialStatus::Ok, None)
}

/// A duration in milliseconds, to three significant figures or so.
pub(super) fn fmt_ms(ms: f64) -> String {
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
    let alerts = s.monitor.as_ref().map_or(0, |m| alerts(m).len());
    if alerts > 0 {
        parts.push(format!(
            "WARNING: {alerts} monitor alert(s) (memory, swap, GPU heat, KV cache); see \
             summary.json warnings"
        ));
    }
    format!("[{}]", parts.join(" | "))
}

/// The phases of a ramp or spike on one line, with the recovery after a
/// spike; `None` for a steady load.
pub(super) fn phase_line(s: &Summary) -> Option<String> {
    if s.phases.is_empty() {
        return None;
    }
    let phases: Vec<String> = s
        .phases
        .iter()
        .map(|p| {
            let ttft = p.summary.ttft.as_ref().map_or_else(
                || "no ttft".to_string(),
                |d| format!("ttft p50 {}", fmt_ms(d.p50)),
            );
            format!(
                "{} {ttft}, {:.1} req/s ({} req)",
                p.phase, p.summary.request_throughput, p.summary.requests
            )
        })
        .collect();
    let mut line = phases.join(" | ");
    if let Some(r) = &s.recovery {
        line.push_str(&match r.recovery_s {
            Some(0.0) => format!(
                " | ttft back to its pre-spike {} at once",
                fmt_ms(r.baseline_ttft_p50_ms)
            ),
            Some(t) => format!(
                " | ttft back to its pre-spike {} {:.2} s after the spike (+/- {:.2} s)",
                fmt_ms(r.baseline_ttft_p50_ms),
                t,
                r.resolution_s
            ),
            None => format!(
                " | ttft never got back to its pre-spike {} (worst {})",
                fmt_ms(r.baseline_ttft_p50_ms),
                r.worst_ttft_p50_ms.map_or_else(|| "unknown".into(), fmt_ms)
            ),
        });
    }
    Some(line)
}

/// The scaling table of a sequence, a header and one line per step, then
/// the saturation point.
pub(super) fn scaling_lines(t: &ScalingTable) -> String {
    let opt = |v: Option<f64>| v.map_or_else(|| "-".to_string(), fmt_ms);
    let mut out = vec![format!(
        "    {:>16} {:>9} {:>10} {:>9} {:>9} {:>9} {:>9}",
        "scaling", "req/s", "tok/s", "ttft p50", "ttft p99", "e2e p50", "goodput"
    )];
    for r in &t.rows {
        out.push(format!(
            "    {:>16} {:>9.2} {:>10.0} {:>9} {:>9} {:>9} {:>9}",
            r.step,
            r.request_throughput,
            r.output_token_throughput,
            opt(r.ttft_p50_ms),
            opt(r.ttft_p99_ms),
            opt(r.e2e_p50_ms),
            r.goodput
                .map_or_else(|| "-".to_string(), |g| format!("{g:.2}")),
        ));
    }
    out.push(match &t.saturation {
        Some(sat) => format!(
            "    saturation: {} ({:.2} req/s); {}",
            sat.step, sat.request_throughput, sat.why
        ),
        None => format!(
            "    no saturation: throughput kept growing with the load (peak at {})",
            t.peak_step.as_deref().unwrap_or("-")
        ),
    });
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::Aggregate;

    fn busy(cores_share: f64, busiest: f64) -> crate::measure::ClientCpu {
        crate::measure::test_support::client_cpu(cores_share, busiest, 10.0)
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
