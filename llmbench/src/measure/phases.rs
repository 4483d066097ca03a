//! Results per phase of a ramp or spike (before, during, after the spike;
//! the ramp and the hold after it) and, for a spike, how long the engine
//! took to recover its pre-spike TTFT once the spike was over.
//!
//! Requests belong to the phase in which they were *scheduled*, so the
//! backlog a spike leaves behind shows in the phase after it. Recovery is
//! read off fixed windows after the spike: the first window whose median
//! TTFT is back within [`RECOVERED_WITHIN`] of the median before the spike.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::summary::{Aggregate, Metric, Summary};
use super::RequestRecord;
use crate::load::{Load, Profile};

/// How close to its pre-spike median TTFT a window must be to count as
/// recovered: 10% of it, and never closer than 1 ms (timer noise).
pub const RECOVERED_WITHIN: f64 = 0.10;

/// The fewest successful requests a window needs before its median says
/// anything; a sparser window is merged with the next.
const MIN_WINDOW_REQUESTS: u64 = 3;

/// How many windows the time after a spike is cut into (each at least
/// [`MIN_WINDOW`] long).
const WINDOWS_AFTER: u32 = 30;

/// The shortest recovery window.
const MIN_WINDOW: Duration = Duration::from_millis(100);

/// The figures of one phase of a ramp or spike.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhaseSummary {
    /// `before`, `spike` or `after` for a spike; `ramp` or `hold` for a ramp.
    pub phase: String,
    /// Where the phase starts, in seconds from the start of the trial.
    pub start_s: f64,
    /// Where it ends; `None` when it lasts until the run ends.
    pub end_s: Option<f64>,
    /// The figures of the requests scheduled in the phase.
    pub summary: Summary,
}

/// How long the engine took to return to its pre-spike TTFT.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Recovery {
    /// The median TTFT of the requests scheduled before the spike (ms).
    pub baseline_ttft_p50_ms: f64,
    /// From the end of the spike to the start of the first window whose
    /// median TTFT was back within 10% of the baseline (0: at once);
    /// `None` when no window after the spike got back there.
    pub recovery_s: Option<f64>,
    /// The width of the widest window (sparse windows are merged until
    /// they hold 3 requests): `recovery_s` is exact to this much.
    pub resolution_s: f64,
    /// The highest window median TTFT after the spike (ms); `None` when
    /// too few requests followed the spike to tell.
    pub worst_ttft_p50_ms: Option<f64>,
}

/// A phase's time span, from the start of the trial.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PhaseSpan {
    pub name: &'static str,
    pub start: Duration,
    pub end: Option<Duration>,
}

/// The phases of `load`'s ramp or spike; empty for a steady load.
pub(crate) fn phase_spans(load: &Load) -> Vec<PhaseSpan> {
    let end = load.duration();
    let span = |name, start, end| PhaseSpan { name, start, end };
    match load.profile() {
        Profile::Steady => Vec::new(),
        Profile::Ramp { over, .. } => {
            let mut spans = vec![span("ramp", Duration::ZERO, Some(over))];
            if end.is_none_or(|e| e > over) {
                spans.push(span("hold", over, end));
            }
            spans
        }
        Profile::Spike { at, hold, .. } => {
            let stop = at.saturating_add(hold);
            let mut spans = vec![
                span("before", Duration::ZERO, Some(at)),
                span("spike", at, Some(stop)),
            ];
            if end.is_none_or(|e| e > stop) {
                spans.push(span("after", stop, end));
            }
            spans
        }
    }
}

/// Aggregates per phase, and the windows recovery is read from.
#[derive(Clone, Debug)]
pub(crate) struct Phases {
    spans: Vec<PhaseSpan>,
    aggregates: Vec<Aggregate>,
    recovery: Option<RecoveryWindows>,
}

#[derive(Clone, Debug)]
struct RecoveryWindows {
    /// The end of the spike, in ms from the start.
    from_ms: f64,
    width_ms: f64,
    windows: Vec<Metric>,
}

impl Phases {
    /// The phases of `load`, each judged like the whole by `template` (an
    /// empty aggregate carrying the SLOs); `None` for a steady load.
    pub(crate) fn new(load: &Load, template: &Aggregate) -> Option<Self> {
        let spans = phase_spans(load);
        if spans.is_empty() {
            return None;
        }
        let recovery = match load.profile() {
            Profile::Spike { at, hold, .. } => {
                let from = at.saturating_add(hold);
                let after = load
                    .duration()
                    .map_or(hold.saturating_mul(2), |end| end.saturating_sub(from));
                let width = (after / WINDOWS_AFTER).max(MIN_WINDOW);
                let count = after.as_secs_f64() / width.as_secs_f64();
                Some(RecoveryWindows {
                    from_ms: super::ms(from),
                    width_ms: super::ms(width),
                    windows: vec![Metric::new(1e3); (count.ceil() as usize).max(1)],
                })
            }
            _ => None,
        };
        Some(Phases {
            aggregates: vec![template.clone(); spans.len()],
            spans,
            recovery,
        })
    }

    /// Add `r` to the phase it was scheduled in.
    pub(crate) fn add(&mut self, r: &RequestRecord) {
        let at = r.scheduled_ms;
        let phase = self.spans.iter().rposition(|s| super::ms(s.start) <= at);
        if let Some(agg) = phase.and_then(|i| self.aggregates.get_mut(i)) {
            agg.add(r);
        }
        if let (Some(rec), Some(ttft)) = (&mut self.recovery, r.ttft_ms) {
            if r.success && at >= rec.from_ms {
                let i = ((at - rec.from_ms) / rec.width_ms) as usize;
                if let Some(w) = rec.windows.get_mut(i) {
                    w.add(ttft);
                }
            }
        }
    }

    /// The figures of every phase.
    pub(crate) fn summaries(&self) -> Vec<PhaseSummary> {
        self.spans
            .iter()
            .zip(&self.aggregates)
            .map(|(span, agg)| PhaseSummary {
                phase: span.name.to_string(),
                start_s: span.start.as_secs_f64(),
                end_s: span.end.map(|e| e.as_secs_f64()),
                summary: agg.summary(),
            })
            .collect()
    }

    /// The recovery after a spike; `None` for a ramp, or when no request
    /// before the spike had a TTFT to compare with.
    pub(crate) fn recovery(&self) -> Option<Recovery> {
        let rec = self.recovery.as_ref()?;
        let before = self.aggregates.first()?.ttft_quantile(0.5)?;
        let slack = (before * RECOVERED_WITHIN).max(1.0);
        // Windows too sparse to have a median are merged with the next:
        // each group starts where its first window does.
        let mut medians: Vec<(usize, f64)> = Vec::new();
        let mut widest = 1usize;
        let mut group: Option<(usize, Metric)> = None;
        for (i, w) in rec.windows.iter().enumerate() {
            let (start, acc) = group.get_or_insert_with(|| (i, Metric::new(1e3)));
            acc.merge(w);
            if acc.count() >= MIN_WINDOW_REQUESTS {
                if let Some(m) = acc.quantile(0.5) {
                    medians.push((*start, m));
                }
                widest = widest.max(i + 1 - *start);
                group = None;
            }
        }
        let recovered = medians.iter().find(|&&(_, m)| m <= before + slack);
        Some(Recovery {
            baseline_ttft_p50_ms: before,
            recovery_s: recovered.map(|&(i, _)| i as f64 * rec.width_ms / 1e3),
            resolution_s: widest as f64 * rec.width_ms / 1e3,
            worst_ttft_p50_ms: medians.iter().map(|&(_, m)| m).reduce(f64::max),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::test_support::record_at;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn spans_follow_the_shape() {
        let spike = Load::users(10).spike_to(100, s(60), s(30)).for_secs(180);
        let names: Vec<_> = phase_spans(&spike).iter().map(|p| p.name).collect();
        assert_eq!(names, ["before", "spike", "after"]);
        assert_eq!(phase_spans(&spike)[2].start, s(90));
        assert_eq!(phase_spans(&spike)[2].end, Some(s(180)));
        let ramp = Load::rate(1.0).ramp_to(10.0, s(30)).for_secs(60);
        let names: Vec<_> = phase_spans(&ramp).iter().map(|p| p.name).collect();
        assert_eq!(names, ["ramp", "hold"]);
        let whole_ramp = Load::rate(1.0).ramp_to(10.0, s(30)).for_secs(30);
        assert_eq!(phase_spans(&whole_ramp).len(), 1);
        assert!(phase_spans(&Load::users(4).for_secs(30)).is_empty());
    }

    /// A spike from 10 s to 20 s of a 40 s run; TTFT 20 ms before it, 300
    /// ms during it, then falling back by 60 ms a second until it is 20 ms
    /// again at 25 s.
    fn spike_run() -> Phases {
        let load = Load::rate(10.0).spike_to(50.0, s(10), s(10)).for_secs(40);
        let mut phases = Phases::new(&load, &Aggregate::default()).unwrap();
        for i in 0..4000 {
            let at = f64::from(i) * 10.0; // one request every 10 ms
            let ttft = match at {
                t if t < 10_000.0 => 20.0,
                t if t < 20_000.0 => 300.0,
                t => (300.0 - (t - 20_000.0) * 0.06).max(20.0),
            };
            phases.add(&record_at(at, ttft));
        }
        phases
    }

    #[test]
    fn each_phase_gets_the_requests_scheduled_in_it() {
        let summaries = spike_run().summaries();
        let counts: Vec<u64> = summaries.iter().map(|p| p.summary.requests).collect();
        assert_eq!(counts, [1000, 1000, 2000]);
        let p50 = |i: usize| summaries[i].summary.ttft.as_ref().unwrap().p50;
        assert!((p50(0) - 20.0).abs() < 0.1);
        assert!((p50(1) - 300.0).abs() < 0.5);
        assert_eq!(summaries[2].start_s, 20.0);
    }

    #[test]
    fn recovery_is_when_the_median_ttft_is_back() {
        let rec = spike_run().recovery().unwrap();
        assert!((rec.baseline_ttft_p50_ms - 20.0).abs() < 0.1);
        // The 20 s after the spike are cut into 30 windows of 0.667 s.
        // TTFT is under 22 ms from 4.63 s on; the first window whose median
        // is, window 7, starts at 4.67 s.
        assert!((rec.resolution_s - 20.0 / 30.0).abs() < 1e-6);
        let got = rec.recovery_s.unwrap();
        assert!((got - 7.0 * 20.0 / 30.0).abs() < 1e-6, "{got}");
        assert!(rec.worst_ttft_p50_ms.unwrap() > 250.0);
    }

    #[test]
    fn an_engine_that_never_recovers_says_so() {
        let load = Load::users(2).spike_to(8, s(1), s(1)).for_secs(4);
        let mut phases = Phases::new(&load, &Aggregate::default()).unwrap();
        for i in 0..400 {
            let at = f64::from(i) * 10.0;
            phases.add(&record_at(at, if at < 1000.0 { 20.0 } else { 200.0 }));
        }
        let rec = phases.recovery().unwrap();
        assert_eq!(rec.recovery_s, None);
        assert!((rec.worst_ttft_p50_ms.unwrap() - 200.0).abs() < 0.5);
    }

    #[test]
    fn sparse_windows_are_merged_until_they_have_a_median() {
        // Spike from 1 s to 2 s of 5 s: 3 s after it, windows of 100 ms,
        // one request every 150 ms, TTFT back to normal 1 s after the spike.
        let load = Load::rate(5.0).spike_to(20.0, s(1), s(1)).for_secs(5);
        let mut phases = Phases::new(&load, &Aggregate::default()).unwrap();
        for i in 0..33 {
            let at = f64::from(i) * 150.0;
            let slow = (1000.0..3000.0).contains(&at);
            phases.add(&record_at(at, if slow { 200.0 } else { 20.0 }));
        }
        let rec = phases.recovery().unwrap();
        // Groups of 4 or 5 windows (3 requests each): 0-0.5 s and 0.5-0.9 s
        // after the spike are slow; the next group, from 0.9 s (its first
        // window empty), holds the fast requests from 1.0 s on.
        assert!((rec.recovery_s.unwrap() - 0.9).abs() < 1e-6, "{rec:?}");
        assert!((rec.resolution_s - 0.5).abs() < 1e-6, "{rec:?}");
        let empty = Phases::new(&load, &Aggregate::default()).unwrap();
        assert!(empty.recovery().is_none(), "nothing before the spike");
    }

    #[test]
    fn a_ramp_has_phases_and_no_recovery() {
        let load = Load::users(1).ramp_to(4, s(2)).for_secs(4);
        let mut phases = Phases::new(&load, &Aggregate::default()).unwrap();
        phases.add(&record_at(500.0, 10.0));
        phases.add(&record_at(3000.0, 10.0));
        assert!(phases.recovery().is_none());
        let counts: Vec<u64> = phases
            .summaries()
            .iter()
            .map(|p| p.summary.requests)
            .collect();
        assert_eq!(counts, [1, 1]);
    }
}
