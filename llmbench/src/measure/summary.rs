//! Aggregation of request records into a per-trial [`Summary`]: exact
//! count, mean, standard deviation, min and max, percentiles from HDR
//! histograms (3 significant digits), and goodput under the scenario's SLOs.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::phases::{PhaseSummary, Phases, Recovery};
use super::slo_eval::{self, SloCheck};
use super::use_case::{UseCaseMetrics, UseCaseSummary};
use super::RequestRecord;
use crate::slo::{Slo, SloMetric, SloThreshold};

/// Distribution of one metric. Latencies are in milliseconds; `output_tps`
/// in tokens per second.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Distribution {
    /// How many values.
    pub count: u64,
    /// Arithmetic mean (exact).
    pub mean: f64,
    /// Population standard deviation (exact).
    pub std_dev: f64,
    /// Smallest value (exact).
    pub min: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p99_9: f64,
    /// Largest value (exact).
    pub max: f64,
}

/// Accumulates one metric: exact moments, HDR percentiles.
#[derive(Clone, Debug)]
pub(super) struct Metric {
    hist: Histogram<u64>,
    /// Values are stored as integers of `1 / scale` units.
    scale: f64,
    count: u64,
    mean: f64,
    m2: f64,
    min: f64,
    max: f64,
}

impl Metric {
    pub(super) fn new(scale: f64) -> Self {
        Metric {
            // `new` only fails for more than 5 significant digits; 3 is fixed here.
            hist: Histogram::new(3)
                .unwrap_or_else(|_| unreachable!("3 significant digits is valid")),
            scale,
            count: 0,
            mean: 0.0,
            m2: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }

    pub(super) fn add(&mut self, value: f64) {
        if !value.is_finite() || value < 0.0 {
            return;
        }
        // Welford's online mean and variance.
        self.count += 1;
        let delta = value - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (value - self.mean);
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        let scaled = (value * self.scale).round().max(1.0) as u64;
        // Auto-resize is on, so recording never fails for a finite value.
        let _ = self.hist.record(scaled);
    }

    /// Fold `other`'s values into this one (moments by Chan's rule).
    pub(super) fn merge(&mut self, other: &Metric) {
        if other.count == 0 {
            return;
        }
        let n = (self.count + other.count) as f64;
        let delta = other.mean - self.mean;
        self.mean += delta * other.count as f64 / n;
        self.m2 += other.m2 + delta * delta * self.count as f64 * other.count as f64 / n;
        self.count += other.count;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        // Same precision both sides, auto-resize on: adding cannot fail.
        let _ = self.hist.add(&other.hist);
    }

    /// How many values were added.
    pub(super) fn count(&self) -> u64 {
        self.count
    }

    /// The value at `quantile` (in [0, 1]), within HDR precision.
    pub(super) fn quantile(&self, quantile: f64) -> Option<f64> {
        (self.count > 0).then(|| {
            (self.hist.value_at_quantile(quantile) as f64 / self.scale).clamp(self.min, self.max)
        })
    }

    pub(super) fn distribution(&self) -> Option<Distribution> {
        if self.count == 0 {
            return None;
        }
        let q = |p: f64| self.quantile(p).unwrap_or(self.min);
        Some(Distribution {
            count: self.count,
            mean: self.mean,
            std_dev: (self.m2 / self.count as f64).sqrt(),
            min: self.min,
            p50: q(0.50),
            p90: q(0.90),
            p95: q(0.95),
            p99: q(0.99),
            p99_9: q(0.999),
            max: self.max,
        })
    }
}

/// Running aggregation of one trial's records.
#[derive(Clone, Debug)]
pub struct Aggregate {
    retries: u64,
    requests: u64,
    successes: u64,
    errors: BTreeMap<String, u64>,
    first_sent_ms: f64,
    last_end_ms: f64,
    prompt_tokens: u64,
    output_tokens: u64,
    estimated: bool,
    ttfb: Metric,
    ttft: Metric,
    itl: Metric,
    tpot: Metric,
    e2e: Metric,
    output_tps: Metric,
    schedule_lag: Metric,
    server: ServerMetrics,
    coverage: BTreeMap<&'static str, u64>,
    /// The scenario's SLO thresholds, all of them.
    slos: Vec<SloThreshold>,
    /// Successful requests that met every threshold.
    good: u64,
    /// Per phase of a ramp or spike, when the load has one.
    phases: Option<Box<Phases>>,
    /// The use-case figures (first sentence, drift, prompt length fit).
    use_case: UseCaseMetrics,
}

/// Distributions of what the engine reported about itself.
#[derive(Clone, Debug)]
struct ServerMetrics {
    load_duration: Metric,
    queue_duration: Metric,
    prompt_eval_duration: Metric,
    prompt_tps: Metric,
    eval_duration: Metric,
    eval_tps: Metric,
}

impl Default for ServerMetrics {
    fn default() -> Self {
        let m = || Metric::new(1e3);
        ServerMetrics {
            load_duration: m(),
            queue_duration: m(),
            prompt_eval_duration: m(),
            prompt_tps: m(),
            eval_duration: m(),
            eval_tps: m(),
        }
    }
}

/// Server-reported figures in `summary.json`: each present only when the
/// engine reported it for at least one successful request.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerSummary {
    /// Model load time per request (ms).
    pub load_duration: Option<Distribution>,
    /// Time queued in the engine (ms).
    pub queue_duration: Option<Distribution>,
    /// Prompt evaluation (prefill) time (ms).
    pub prompt_eval_duration: Option<Distribution>,
    /// Prompt tokens per second, by the engine's figures.
    pub prompt_tps: Option<Distribution>,
    /// Generation (decode) time (ms).
    pub eval_duration: Option<Distribution>,
    /// Output tokens per second, by the engine's figures.
    pub eval_tps: Option<Distribution>,
}

/// The per-request metrics whose coverage the summary reports, in order:
/// the client-side ones, then those only an engine can report.
pub const COVERED_METRICS: [&str; 14] = [
    "ttft",
    "itl",
    "tpot",
    "e2e_latency",
    "prompt_tokens",
    "output_tokens",
    "output_tps",
    "load_duration",
    "queue_duration",
    "prompt_eval_duration",
    "prompt_tps",
    "eval_duration",
    "eval_tps",
    "cached_prompt_tokens",
];

impl Default for Aggregate {
    fn default() -> Self {
        // Latencies in ms kept to the microsecond; rates to 1/1000 token/s.
        let ms = || Metric::new(1e3);
        Aggregate {
            retries: 0,
            requests: 0,
            successes: 0,
            errors: BTreeMap::new(),
            first_sent_ms: f64::INFINITY,
            last_end_ms: f64::NEG_INFINITY,
            prompt_tokens: 0,
            output_tokens: 0,
            estimated: false,
            ttfb: ms(),
            ttft: ms(),
            itl: ms(),
            tpot: ms(),
            e2e: ms(),
            output_tps: Metric::new(1e3),
            schedule_lag: ms(),
            server: ServerMetrics::default(),
            coverage: BTreeMap::new(),
            slos: Vec::new(),
            good: 0,
            phases: None,
            use_case: UseCaseMetrics::default(),
        }
    }
}

/// The per scenario x engine figures written to `summary.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Requests sent (finished, failed or interrupted).
    pub requests: u64,
    /// Requests that succeeded.
    pub successes: u64,
    /// Requests that failed.
    pub failures: u64,
    /// `successes / requests`.
    pub success_rate: f64,
    /// Failures counted by kind.
    pub errors_by_kind: BTreeMap<String, u64>,
    /// First send to last completion, in seconds.
    pub duration_s: f64,
    /// Successful requests per second.
    pub request_throughput: f64,
    /// Output tokens of successful requests per second.
    pub output_token_throughput: f64,
    /// Prompt plus output tokens of successful requests per second.
    pub total_token_throughput: f64,
    /// Prompt tokens of successful requests (as the engine reported them).
    pub prompt_tokens: u64,
    /// Output tokens of successful requests.
    pub output_tokens: u64,
    /// True when some output token counts are chunk counts, not the engine's.
    pub output_tokens_estimated: bool,
    /// Time to first byte.
    pub ttfb: Option<Distribution>,
    /// Time to first token.
    pub ttft: Option<Distribution>,
    /// Inter-token latency, every gap pooled.
    pub itl: Option<Distribution>,
    /// Time per output token.
    pub tpot: Option<Distribution>,
    /// End-to-end latency.
    pub e2e_latency: Option<Distribution>,
    /// Per-request output tokens per second.
    pub output_tps: Option<Distribution>,
    /// Actual minus scheduled send time (the client's own lag).
    pub schedule_lag: Option<Distribution>,
    /// What the engine reported about its own work.
    pub server: ServerSummary,
    /// For each metric of [`COVERED_METRICS`], the share of successful
    /// requests that have it (1.0: all; 0.0: the engine never reports it).
    /// Output tokens counted from chunks do not count as covered.
    pub metric_coverage: BTreeMap<String, f64>,
    /// Successful requests that met every SLO threshold, per second of
    /// `duration_s`; `None` when the scenario states no SLO.
    #[serde(default)]
    pub goodput: Option<f64>,
    /// How many requests `goodput` counts; `None` without SLOs.
    #[serde(default)]
    pub good_requests: Option<u64>,
    /// `good_requests / requests`: the share of all requests sent that
    /// succeeded and met every threshold; `None` without SLOs.
    #[serde(default)]
    pub slo_attainment: Option<f64>,
    /// Each SLO threshold with the percentile observed and whether it held,
    /// in the order the scenario states them; empty without SLOs.
    #[serde(default)]
    pub slos: Vec<SloCheck>,
    /// Retries sent in all (only with `--retries`).
    #[serde(default)]
    pub retries: u64,
    /// The client's own CPU use over the trial (the in-process
    /// simulator's threads left out); `None` off Linux, or when not
    /// measured (an aggregate of records alone).
    #[serde(default)]
    pub client_cpu: Option<super::ClientCpu>,
    /// Signs that the client, not the engine, limited the run (see
    /// `measure::warnings`); empty when there are none.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// What the machine, the GPUs and the engine did during the trial
    /// (mean and max of each `monitor.csv` series); `None` with
    /// `--no-monitor`, in smoke runs, or from records alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor: Option<crate::monitor::MonitorSummary>,
    /// For a ramp or spike, the figures of each phase (`before`, `spike`,
    /// `after`; `ramp`, `hold`), by the time requests were scheduled;
    /// empty for a steady load.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<PhaseSummary>,
    /// For a spike: how long the engine took to get its pre-spike TTFT back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<Recovery>,
    /// The figures that judge a use case (time to first sentence, the
    /// sustained output rate and its drift, ITL jitter, prompt processing,
    /// TTFT per 1K prompt tokens); see `docs/metrics.md`.
    #[serde(default, skip_serializing_if = "UseCaseSummary::is_empty")]
    pub use_case: UseCaseSummary,
}

impl Aggregate {
    /// An aggregate that also judges records against `slos` (every
    /// threshold of every one): goodput and the per-threshold verdicts.
    pub fn with_slos(slos: &[Slo]) -> Self {
        Aggregate {
            slos: slos
                .iter()
                .flat_map(|s| s.thresholds().iter().cloned())
                .collect(),
            ..Aggregate::default()
        }
    }

    /// This aggregate judged by `thresholds` from now on: for an aggregate
    /// rebuilt from states (shards), whose good-request counts were judged
    /// by the same thresholds when its records were added.
    pub fn judged_by(mut self, thresholds: Vec<SloThreshold>) -> Self {
        self.slos = thresholds;
        self
    }

    /// This aggregate, also split by the phases of `load`'s ramp or spike
    /// (each phase judged by the same SLOs), with the recovery after a
    /// spike; a steady load has no phases.
    pub fn with_phases(mut self, load: &crate::Load) -> Self {
        self.phases = Phases::new(load, &self).map(Box::new);
        self
    }

    /// The median (or any quantile) TTFT so far, in ms.
    pub(super) fn ttft_quantile(&self, q: f64) -> Option<f64> {
        self.ttft.quantile(q)
    }

    /// Whether `r` succeeded and met every threshold; `None` without SLOs.
    /// What [`RequestRecord::slo_met`] holds.
    pub fn slo_met(&self, r: &RequestRecord) -> Option<bool> {
        (!self.slos.is_empty()).then(|| slo_eval::request_meets(&self.slos, r))
    }

    /// Add one record.
    pub fn add(&mut self, r: &RequestRecord) {
        if r.warmup {
            return; // kept in requests.jsonl, left out of the figures
        }
        if let Some(phases) = &mut self.phases {
            phases.add(r);
        }
        self.requests += 1;
        self.retries += u64::from(r.retries);
        self.first_sent_ms = self.first_sent_ms.min(r.sent_ms);
        let origin = if r.latency_from_schedule {
            r.scheduled_ms
        } else {
            r.sent_ms
        };
        self.last_end_ms = self.last_end_ms.max(origin + r.e2e_latency_ms);
        self.schedule_lag.add(r.schedule_lag_ms);
        if let Some(err) = &r.error {
            *self
                .errors
                .entry(err.kind.as_str().to_string())
                .or_default() += 1;
            return;
        }
        self.successes += 1;
        if self.slo_met(r) == Some(true) {
            self.good += 1;
        }
        self.prompt_tokens += u64::from(r.prompt_tokens.unwrap_or(0));
        self.output_tokens += u64::from(r.output_tokens.unwrap_or(0));
        self.estimated |= r.output_tokens_estimated;
        for (metric, value) in [
            (&mut self.ttfb, r.ttfb_ms),
            (&mut self.ttft, r.ttft_ms),
            (&mut self.tpot, r.tpot_ms),
            (&mut self.e2e, Some(r.e2e_latency_ms)),
            (&mut self.output_tps, r.output_tps),
        ] {
            if let Some(v) = value {
                metric.add(v);
            }
        }
        for &gap in &r.itl_ms {
            self.itl.add(gap);
        }
        self.use_case.add(r);
        let v = &r.server;
        let srv = &mut self.server;
        for (metric, value) in [
            (&mut srv.load_duration, v.load_duration_ms),
            (&mut srv.queue_duration, v.queue_duration_ms),
            (&mut srv.prompt_eval_duration, v.prompt_eval_duration_ms),
            (&mut srv.prompt_tps, v.prompt_tps),
            (&mut srv.eval_duration, v.eval_duration_ms),
            (&mut srv.eval_tps, v.eval_tps),
        ] {
            if let Some(x) = value {
                metric.add(x);
            }
        }
        let has = [
            r.ttft_ms.is_some(),
            !r.itl_ms.is_empty(),
            r.tpot_ms.is_some(),
            true,
            r.prompt_tokens.is_some(),
            r.output_tokens.is_some() && !r.output_tokens_estimated,
            r.output_tps.is_some(),
            v.load_duration_ms.is_some(),
            v.queue_duration_ms.is_some(),
            v.prompt_eval_duration_ms.is_some(),
            v.prompt_tps.is_some(),
            v.eval_duration_ms.is_some(),
            v.eval_tps.is_some(),
            v.cached_prompt_tokens.is_some(),
        ];
        for (name, present) in COVERED_METRICS.iter().zip(has) {
            *self.coverage.entry(name).or_default() += u64::from(present);
        }
    }

    /// Requests added so far.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    fn metric(&self, metric: SloMetric) -> &Metric {
        match metric {
            SloMetric::Ttft => &self.ttft,
            SloMetric::Itl => &self.itl,
            SloMetric::Tpot => &self.tpot,
            SloMetric::E2eLatency => &self.e2e,
        }
    }

    /// The summary of everything added so far.
    pub fn summary(&self) -> Summary {
        let mut summary = self.summary_figures();
        summary.use_case =
            self.use_case
                .summary(summary.ttft.as_ref(), summary.itl.as_ref(), &summary.server);
        summary.warnings = super::warnings::client_warnings(&summary);
        if let Some(phases) = &self.phases {
            summary.phases = phases.summaries();
            summary.recovery = phases.recovery();
        }
        summary
    }

    fn summary_figures(&self) -> Summary {
        let duration_s = if self.requests == 0 {
            0.0
        } else {
            ((self.last_end_ms - self.first_sent_ms) / 1e3).max(0.0)
        };
        let per_s = |n: u64| {
            if duration_s > 0.0 {
                n as f64 / duration_s
            } else {
                0.0
            }
        };
        let judged = !self.slos.is_empty();
        Summary {
            requests: self.requests,
            successes: self.successes,
            failures: self.requests - self.successes,
            success_rate: if self.requests == 0 {
                0.0
            } else {
                self.successes as f64 / self.requests as f64
            },
            errors_by_kind: self.errors.clone(),
            duration_s,
            request_throughput: per_s(self.successes),
            output_token_throughput: per_s(self.output_tokens),
            total_token_throughput: per_s(self.output_tokens + self.prompt_tokens),
            prompt_tokens: self.prompt_tokens,
            output_tokens: self.output_tokens,
            output_tokens_estimated: self.estimated,
            ttfb: self.ttfb.distribution(),
            ttft: self.ttft.distribution(),
            itl: self.itl.distribution(),
            tpot: self.tpot.distribution(),
            e2e_latency: self.e2e.distribution(),
            output_tps: self.output_tps.distribution(),
            schedule_lag: self.schedule_lag.distribution(),
            server: ServerSummary {
                load_duration: self.server.load_duration.distribution(),
                queue_duration: self.server.queue_duration.distribution(),
                prompt_eval_duration: self.server.prompt_eval_duration.distribution(),
                prompt_tps: self.server.prompt_tps.distribution(),
                eval_duration: self.server.eval_duration.distribution(),
                eval_tps: self.server.eval_tps.distribution(),
            },
            metric_coverage: COVERED_METRICS
                .iter()
                .map(|&name| {
                    let n = self.coverage.get(name).copied().unwrap_or(0);
                    let share = if self.successes == 0 {
                        0.0
                    } else {
                        n as f64 / self.successes as f64
                    };
                    (name.to_string(), share)
                })
                .collect(),
            goodput: judged.then(|| per_s(self.good)),
            good_requests: judged.then_some(self.good),
            slo_attainment: judged.then(|| {
                if self.requests == 0 {
                    0.0
                } else {
                    self.good as f64 / self.requests as f64
                }
            }),
            slos: self
                .slos
                .iter()
                .map(|t| SloCheck::new(t, self.metric(t.metric).quantile(t.percentile / 100.0)))
                .collect(),
            client_cpu: None,
            warnings: Vec::new(),
            monitor: None,
            retries: self.retries,
            phases: Vec::new(),
            recovery: None,
            use_case: UseCaseSummary::default(),
        }
    }
}

#[path = "summary_state.rs"]
mod state;
pub use state::{AggregateState, MetricState};

#[cfg(test)]
#[path = "summary_tests.rs"]
mod tests;
