//! Capacity search: the highest request rate at which a target share of
//! requests (90% by default) meets every SLO, DistServe's definition of
//! capacity, found by bisection over rates with a bounded number of runs.
//!
//! The search is a pure state machine ([`Search`]): it proposes a rate, is
//! told the share of requests that met every SLO there, and proposes the
//! next, so it is tested without an engine; the harness runs each proposal
//! as one open-loop run of the scenario.

use serde::{Deserialize, Serialize};

/// How to search for a scenario's capacity (see [`Load::find_capacity`](super::Load::find_capacity)).
///
/// ```
/// use llmbench::load::Capacity;
/// let c = Capacity::between(1.0, 64.0).attainment(0.95).max_runs(6);
/// assert_eq!(c.range(), (1.0, 64.0));
/// ```
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Capacity {
    pub(crate) low: f64,
    pub(crate) high: f64,
    pub(crate) attainment: f64,
    pub(crate) max_runs: u32,
    pub(crate) precision: f64,
}

impl Capacity {
    /// Search rates from `low` to `high` requests per second.
    pub fn between(low: f64, high: f64) -> Self {
        Capacity {
            low,
            high,
            attainment: 0.9,
            max_runs: 8,
            precision: 0.05,
        }
    }

    /// The share of requests that must meet every SLO (default 0.9).
    pub fn attainment(mut self, share: f64) -> Self {
        self.attainment = share;
        self
    }

    /// The most runs the search makes, the two ends included (default 8).
    pub fn max_runs(mut self, runs: u32) -> Self {
        self.max_runs = runs;
        self
    }

    /// Stop once the passing and failing rates are this close, relatively
    /// (default 0.05: within 5%).
    pub fn precision(mut self, relative: f64) -> Self {
        self.precision = relative;
        self
    }

    /// The rates searched, requests per second.
    pub fn range(&self) -> (f64, f64) {
        (self.low, self.high)
    }

    /// The first field out of range: (field, why).
    pub(crate) fn problem(&self) -> Option<(&'static str, String)> {
        let (lo, hi) = (self.low, self.high);
        if !(lo.is_finite() && lo > 0.0) {
            return Some((
                "find_capacity.low",
                format!("must be a positive rate (got {lo})"),
            ));
        }
        if !(hi.is_finite() && hi > lo) {
            return Some((
                "find_capacity.high",
                format!("must be a rate above low = {lo} (got {hi})"),
            ));
        }
        let share = self.attainment;
        if !(share > 0.0 && share <= 1.0) {
            return Some((
                "find_capacity.attainment",
                format!("must be a share in (0, 1] (got {share})"),
            ));
        }
        if self.max_runs < 2 {
            return Some((
                "find_capacity.max_runs",
                format!(
                    "must be at least 2, one run per end (got {})",
                    self.max_runs
                ),
            ));
        }
        let p = self.precision;
        if !(p.is_finite() && p > 0.0) {
            return Some((
                "find_capacity.precision",
                format!("must be a positive share (got {p})"),
            ));
        }
        None
    }
}

/// One run of a search.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CapacityRun {
    /// The rate offered (requests per second).
    pub rate: f64,
    /// The share of requests sent that succeeded and met every SLO.
    pub attainment: f64,
    /// Whether `attainment` reached the target.
    pub passed: bool,
}

/// What a capacity search found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CapacityResult {
    /// The share of requests that had to meet every SLO.
    pub target_attainment: f64,
    /// The highest rate that passed; `None` when even the lowest failed.
    pub capacity_rate: Option<f64>,
    /// The lowest rate that failed; `None` when even the highest passed
    /// (the capacity is then at least `capacity_rate`).
    pub lowest_failing_rate: Option<f64>,
    /// Every run, in the order made.
    pub runs: Vec<CapacityRun>,
}

impl CapacityResult {
    /// The finding in one line.
    pub fn describe(&self) -> String {
        let share = self.target_attainment * 100.0;
        match (self.capacity_rate, self.lowest_failing_rate) {
            (Some(ok), Some(bad)) => format!(
                "capacity {ok:.3} req/s: {share:.0}% of requests met every slo there, not at {bad:.3} req/s ({} runs)",
                self.runs.len()
            ),
            (Some(ok), None) => format!(
                "capacity at least {ok:.3} req/s: the top of the range still met every slo for {share:.0}% of requests"
            ),
            (None, Some(bad)) => format!(
                "capacity below {bad:.3} req/s: the bottom of the range already missed (fewer than {share:.0}% met every slo)"
            ),
            (None, None) => "no capacity found: no run finished".to_string(),
        }
    }
}

/// The search in progress.
#[derive(Clone, Debug)]
pub struct Search {
    spec: Capacity,
    runs: Vec<CapacityRun>,
}

impl Search {
    /// A search by `spec` (which must have passed validation).
    pub fn new(spec: Capacity) -> Self {
        Search {
            spec,
            runs: Vec::new(),
        }
    }

    fn best_pass(&self) -> Option<f64> {
        self.runs
            .iter()
            .filter(|r| r.passed)
            .map(|r| r.rate)
            .reduce(f64::max)
    }

    fn lowest_fail(&self) -> Option<f64> {
        self.runs
            .iter()
            .filter(|r| !r.passed)
            .map(|r| r.rate)
            .reduce(f64::min)
    }

    /// The next rate to run, or `None` when the search is over: the
    /// bottom of the range, then the top, then the geometric middle of the
    /// highest pass and the lowest failure, until they are within the
    /// precision or the runs are spent.
    pub fn next_rate(&self) -> Option<f64> {
        let spec = &self.spec;
        if self.runs.len() >= spec.max_runs as usize {
            return None;
        }
        match (self.runs.first(), self.runs.get(1)) {
            (None, _) => return Some(spec.low),
            (Some(first), _) if !first.passed => return None,
            (Some(_), None) => return Some(spec.high),
            (Some(_), Some(top)) if top.passed => return None,
            _ => {}
        }
        let (ok, bad) = (self.best_pass()?, self.lowest_fail()?);
        if bad / ok <= 1.0 + spec.precision {
            return None;
        }
        Some((ok * bad).sqrt())
    }

    /// Record the share of requests that met every SLO at `rate`.
    pub fn record(&mut self, rate: f64, attainment: f64) {
        self.runs.push(CapacityRun {
            rate,
            attainment,
            passed: attainment >= self.spec.attainment,
        });
    }

    /// What the search found so far.
    pub fn result(&self) -> CapacityResult {
        CapacityResult {
            target_attainment: self.spec.attainment,
            capacity_rate: self.best_pass(),
            lowest_failing_rate: self.lowest_fail(),
            runs: self.runs.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run a search against an engine whose attainment is `curve(rate)`.
    fn search(spec: Capacity, curve: impl Fn(f64) -> f64) -> CapacityResult {
        let mut s = Search::new(spec);
        while let Some(rate) = s.next_rate() {
            s.record(rate, curve(rate));
        }
        s.result()
    }

    /// 100% of requests meet the SLOs up to 10 req/s, then fewer and fewer:
    /// 90% at 12.5 req/s.
    fn engine(rate: f64) -> f64 {
        if rate <= 10.0 {
            1.0
        } else {
            (1.0 - (rate - 10.0) * 0.04).max(0.0)
        }
    }

    #[test]
    fn bisection_closes_in_on_the_rate_where_attainment_crosses_the_target() {
        let r = search(Capacity::between(1.0, 64.0).max_runs(20), engine);
        let (ok, bad) = (r.capacity_rate.unwrap(), r.lowest_failing_rate.unwrap());
        assert!(ok <= 12.5 && 12.5 < bad, "{ok} {bad}");
        assert!(bad / ok <= 1.05, "within the precision: {ok} {bad}");
        assert_eq!(r.runs[0].rate, 1.0);
        assert_eq!(r.runs[1].rate, 64.0);
        assert!(r.runs.len() <= 20);
        assert!(r.describe().starts_with("capacity 12."), "{}", r.describe());
    }

    #[test]
    fn the_run_budget_bounds_the_search() {
        let r = search(Capacity::between(1.0, 64.0), engine);
        assert_eq!(r.runs.len(), 8);
        let (ok, bad) = (r.capacity_rate.unwrap(), r.lowest_failing_rate.unwrap());
        assert!(ok <= 12.5 && 12.5 < bad && bad / ok < 1.2, "{ok} {bad}");
    }

    #[test]
    fn a_stricter_target_finds_a_lower_capacity() {
        let loose = search(Capacity::between(1.0, 64.0).max_runs(20), engine);
        let strict = search(
            Capacity::between(1.0, 64.0).attainment(0.99).max_runs(20),
            engine,
        );
        assert!(strict.capacity_rate < loose.capacity_rate);
        assert!(strict.capacity_rate.unwrap() <= 10.25);
    }

    #[test]
    fn the_ends_of_the_range_stop_the_search() {
        let below = search(Capacity::between(20.0, 64.0), engine);
        assert_eq!(below.runs.len(), 1);
        assert_eq!(below.capacity_rate, None);
        assert_eq!(below.lowest_failing_rate, Some(20.0));
        assert!(below.describe().starts_with("capacity below 20.000"));
        let above = search(Capacity::between(1.0, 5.0), engine);
        assert_eq!(above.runs.len(), 2);
        assert_eq!(above.capacity_rate, Some(5.0));
        assert!(above.describe().starts_with("capacity at least 5.000"));
    }

    #[test]
    fn bad_specs_name_the_field() {
        let field = |c: Capacity| c.problem().map(|p| p.0);
        assert_eq!(
            field(Capacity::between(0.0, 4.0)),
            Some("find_capacity.low")
        );
        assert_eq!(
            field(Capacity::between(4.0, 4.0)),
            Some("find_capacity.high")
        );
        assert_eq!(
            field(Capacity::between(1.0, 4.0).attainment(1.5)),
            Some("find_capacity.attainment")
        );
        assert_eq!(
            field(Capacity::between(1.0, 4.0).max_runs(1)),
            Some("find_capacity.max_runs")
        );
        assert_eq!(
            field(Capacity::between(1.0, 4.0).precision(0.0)),
            Some("find_capacity.precision")
        );
        assert_eq!(field(Capacity::between(1.0, 4.0)), None);
    }
}
