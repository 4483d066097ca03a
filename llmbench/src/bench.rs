//! `Bench`: the scenario builder a `#[llm_bench]` function returns, and its
//! validation.

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::load::Load;
use crate::slo::Slo;
use crate::workload::Workload;

/// Seed used when a scenario does not set one, so runs repeat by default.
pub const DEFAULT_SEED: u64 = 0x11E_BE4C;

/// A benchmark scenario: what to send, how hard, and what counts as good.
///
/// ```
/// use llmbench::prelude::*;
/// let bench = Bench::new()
///     .workload(Workload::prompts(["Say hello."]).max_tokens(16))
///     .load(Load::users(4).for_secs(10))
///     .slo(Slo::ttft_p95_ms(500))
///     .seed(7);
/// assert!(bench.validate().is_ok());
/// ```
#[must_use]
#[derive(Clone, Debug, Default)]
pub struct Bench {
    pub(crate) workload: Option<Workload>,
    pub(crate) load: Option<Load>,
    pub(crate) slos: Vec<Slo>,
    pub(crate) engine: Option<Engine>,
    pub(crate) seed: Option<u64>,
    pub(crate) compare_streaming: bool,
    pub(crate) fail_on_regression: Vec<String>,
}

impl Bench {
    /// An empty scenario; give it at least a workload and a load.
    pub fn new() -> Self {
        Self::default()
    }

    /// What each request asks for.
    pub fn workload(mut self, workload: Workload) -> Self {
        self.workload = Some(workload);
        self
    }

    /// How requests are offered over time.
    pub fn load(mut self, load: Load) -> Self {
        self.load = Some(load);
        self
    }

    /// Add a service-level objective (recorded with the results).
    pub fn slo(mut self, slo: Slo) -> Self {
        self.slos.push(slo);
        self
    }

    /// Run this scenario against `engine` only, whatever is configured.
    pub fn engine(mut self, engine: Engine) -> Self {
        self.engine = Some(engine);
        self
    }

    /// Seed for every random choice (prompt order, ...); default [`DEFAULT_SEED`].
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Run the scenario twice, streamed and then with answers in one piece
    /// (`Workload::stream(false)`), each its own result set, and compare
    /// the two: what streaming costs or saves in end-to-end latency and
    /// throughput on this engine. Not for a sequence of steps or a
    /// capacity search.
    ///
    /// ```
    /// use llmbench::prelude::*;
    /// let bench = Bench::new()
    ///     .workload(Workload::prompts(["Say hello."]).max_tokens(16))
    ///     .load(Load::users(4).requests(40))
    ///     .compare_streaming();
    /// assert!(bench.validate().is_ok());
    /// ```
    pub fn compare_streaming(mut self) -> Self {
        self.compare_streaming = true;
        self
    }

    /// Fail this scenario's trial when one of `metrics` regresses against
    /// the `--baseline` (as `--fail-on-regression` does for every metric):
    /// `ttft p50`, `ttft p99`, `itl p50`, `itl p99`, `tpot p50`, `tpot p99`,
    /// `e2e p50`, `e2e p99`, `output tok/s`, `requests/s`, `goodput`.
    ///
    /// ```
    /// use llmbench::prelude::*;
    /// let bench = Bench::new()
    ///     .workload(Workload::prompts(["Say hello."]))
    ///     .load(Load::users(4).requests(40))
    ///     .fail_on_regression(["ttft p99", "output tok/s"]);
    /// assert!(bench.validate().is_ok());
    /// let typo = Bench::new()
    ///     .workload(Workload::prompts(["Say hello."]))
    ///     .load(Load::users(4).requests(40))
    ///     .fail_on_regression(["ttft p95"]);
    /// assert!(typo.validate().unwrap_err().to_string().contains("fail_on_regression"));
    /// ```
    pub fn fail_on_regression<S: Into<String>>(
        mut self,
        metrics: impl IntoIterator<Item = S>,
    ) -> Self {
        self.fail_on_regression
            .extend(metrics.into_iter().map(Into::into));
        self
    }

    /// The pinned engine, if any.
    pub fn pinned_engine(&self) -> Option<&Engine> {
        self.engine.as_ref()
    }

    /// Check every field; the error names the field and what is wrong.
    pub fn validate(&self) -> Result<ValidBench> {
        let workload = self
            .workload
            .clone()
            .ok_or_else(|| Error::scenario("workload: not set; call .workload(..)"))?;
        workload.validate()?;
        if workload.prompts.is_empty() {
            return Err(Error::scenario(
                "workload.prompts: empty; give at least one prompt (or loosen the length filter)",
            ));
        }
        if workload.max_tokens == 0 {
            return Err(Error::scenario(
                "workload.max_tokens: must be at least 1 (got 0)",
            ));
        }
        let load = self.load.clone().ok_or_else(|| {
            Error::scenario("load: not set; call .load(Load::users(n).for_secs(s))")
        })?;
        load.validate()?;
        for slo in &self.slos {
            slo.validate()?;
        }
        if load.capacity_search().is_some() && self.slos.is_empty() {
            return Err(Error::scenario(
                "load.find_capacity: searches for the rate that meets the SLOs, and the \
                 scenario has none; add one with .slo(Slo::ttft_p95_ms(..))",
            ));
        }
        if let Some(engine) = &self.engine {
            engine.check_supported()?;
        }
        let prompt_steps = workload.prompt_tokens.as_ref().and_then(|l| l.steps());
        if prompt_steps.is_some() && (load.phases().len() > 1 || load.capacity_search().is_some()) {
            return Err(Error::scenario(
                "workload.prompt_tokens: a list of prompt lengths runs one result set per \
                 length, and so does the load's sequence of steps or capacity search; vary \
                 one of them per scenario",
            ));
        }
        if self.compare_streaming
            && (prompt_steps.is_some()
                || load.phases().len() > 1
                || load.capacity_search().is_some())
        {
            return Err(Error::scenario(
                "compare_streaming: compares one load streamed and not; a sequence of steps \
                 or a capacity search would multiply the runs (set Workload::stream(false) \
                 on a copy of the scenario instead)",
            ));
        }
        const GATED: [&str; 11] = [
            "ttft p50",
            "ttft p99",
            "itl p50",
            "itl p99",
            "tpot p50",
            "tpot p99",
            "e2e p50",
            "e2e p99",
            "output tok/s",
            "requests/s",
            "goodput",
        ];
        if let Some(bad) = self
            .fail_on_regression
            .iter()
            .find(|m| !GATED.contains(&m.as_str()))
        {
            return Err(Error::scenario(format!(
                "fail_on_regression: no metric `{bad}`; the metrics are {}",
                GATED.join(", ")
            )));
        }
        Ok(ValidBench {
            workload,
            load,
            slos: self.slos.clone(),
            engine: self.engine.clone(),
            seed: self.seed.unwrap_or(DEFAULT_SEED),
            compare_streaming: self.compare_streaming,
            fail_on_regression: self.fail_on_regression.clone(),
        })
    }
}

/// A scenario that passed [`Bench::validate`]: every field present and in range.
#[derive(Clone, Debug)]
pub struct ValidBench {
    pub(crate) workload: Workload,
    pub(crate) load: Load,
    pub(crate) slos: Vec<Slo>,
    pub(crate) engine: Option<Engine>,
    pub(crate) seed: u64,
    /// Run streamed and not, and compare.
    pub(crate) compare_streaming: bool,
    /// Metrics whose regression fails the trial.
    pub(crate) fail_on_regression: Vec<String>,
}

impl ValidBench {
    /// The load, after any scaling.
    pub fn load(&self) -> &Load {
        &self.load
    }

    /// The workload.
    pub fn workload(&self) -> &Workload {
        &self.workload
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The pinned engine, if any.
    pub fn engine(&self) -> Option<&Engine> {
        self.engine.as_ref()
    }

    /// The service-level objectives.
    pub fn slos(&self) -> &[Slo] {
        &self.slos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok() -> Bench {
        Bench::new()
            .workload(Workload::prompts(["hi"]))
            .load(Load::users(1).requests(1))
    }

    fn err(b: Bench) -> String {
        b.validate().unwrap_err().to_string()
    }

    #[test]
    fn each_invalid_field_is_named() {
        assert!(ok().validate().is_ok());
        assert!(err(Bench::new()).contains("workload: not set"));
        assert!(err(ok().workload(Workload::prompts(Vec::<String>::new())))
            .contains("workload.prompts"));
        assert!(err(ok().workload(Workload::prompts(["x"]).max_tokens(0)))
            .contains("workload.max_tokens"));
        assert!(err(Bench::new().workload(Workload::prompts(["x"]))).contains("load: not set"));
        assert!(err(ok().load(Load::users(0).requests(1))).contains("load.users"));
        assert!(err(ok().load(Load::users(1).for_secs(0))).contains("load.duration"));
        assert!(err(ok().load(Load::users(1).requests(0))).contains("load.requests"));
        assert!(err(ok().load(Load::users(1))).contains("load: no end"));
        assert!(err(ok().load(Load::rate(-1.0).requests(1)))
            .contains("load.rate: must be positive (got -1)"));
        assert!(ok().load(Load::rate(2.0).requests(1)).validate().is_ok());
        assert!(err(ok().slo(Slo::new(
            crate::slo::SloMetric::Ttft,
            0.0,
            Default::default()
        )))
        .contains("slo.percentile"));
        let sweep = ok().load(Load::users(1).requests(1).sweep([1, 2]));
        assert!(err(sweep.compare_streaming()).starts_with("invalid scenario: compare_streaming: "));
    }

    #[test]
    fn seed_defaults_to_a_fixed_value() {
        assert_eq!(ok().validate().unwrap().seed(), DEFAULT_SEED);
        assert_eq!(ok().seed(9).validate().unwrap().seed(), 9);
    }
}
