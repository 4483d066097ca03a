//! A lossless snapshot of an [`Aggregate`]: counts, exact moments and each
//! latency histogram in HDR's own V2 encoding (base64), kept in a run
//! directory's `histograms.json` so shards of one run merge exactly.

use std::collections::BTreeMap;

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::super::LineFit;
use super::{Aggregate, Metric, COVERED_METRICS};
use crate::error::{Error, ErrorKind, Result};

/// One metric: its exact moments and its histogram.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricState {
    /// Values are stored in the histogram as integers of `1 / scale` units.
    pub scale: f64,
    /// How many values.
    pub count: u64,
    /// Their mean.
    pub mean: f64,
    /// Their sum of squared deviations from the mean (Welford's `m2`).
    pub m2: f64,
    /// The smallest.
    pub min: f64,
    /// The largest.
    pub max: f64,
    /// The histogram, HDR V2 encoding, base64.
    pub hdr_v2: String,
}

/// Everything an [`Aggregate`] needs to be merged with another, except
/// its SLO thresholds and phases.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AggregateState {
    /// Requests counted.
    pub requests: u64,
    /// Those that succeeded.
    pub successes: u64,
    /// Retries sent.
    pub retries: u64,
    /// Failures by kind.
    pub errors: BTreeMap<String, u64>,
    /// The first send, ms after the trial's t0; `None` without requests.
    pub first_sent_ms: Option<f64>,
    /// The last completion, ms after the trial's t0.
    pub last_end_ms: Option<f64>,
    /// Prompt tokens of successful requests.
    pub prompt_tokens: u64,
    /// Output tokens of successful requests.
    pub output_tokens: u64,
    /// Some output counts are estimates.
    pub output_tokens_estimated: bool,
    /// Successful requests that met every SLO threshold.
    pub good: u64,
    /// How many successful requests had each covered metric.
    pub coverage: BTreeMap<String, u64>,
    /// Each metric with at least one value, by its name in `summary.json`.
    pub metrics: BTreeMap<String, MetricState>,
    /// The sums of the TTFT-per-prompt-length line.
    #[serde(default)]
    pub ttft_fit: LineFit,
}

impl Metric {
    fn state(&self) -> Result<Option<MetricState>> {
        if self.count == 0 {
            return Ok(None);
        }
        let mut bytes = Vec::new();
        V2Serializer::new()
            .serialize(&self.hist, &mut bytes)
            .map_err(|e| Error::new(ErrorKind::Io, format!("encoding a histogram: {e:?}")))?;
        Ok(Some(MetricState {
            scale: self.scale,
            count: self.count,
            mean: self.mean,
            m2: self.m2,
            min: self.min,
            max: self.max,
            hdr_v2: base64::engine::general_purpose::STANDARD.encode(bytes),
        }))
    }

    fn from_state(name: &str, s: &MetricState) -> Result<Metric> {
        let bad = |why: String| Error::new(ErrorKind::Io, format!("histogram `{name}`: {why}"));
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&s.hdr_v2)
            .map_err(|e| bad(format!("not base64: {e}")))?;
        let mut hist: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| bad(format!("not an HDR V2 histogram: {e:?}")))?;
        hist.auto(true);
        if hist.len() != s.count {
            return Err(bad(format!(
                "holds {} values but says {}",
                hist.len(),
                s.count
            )));
        }
        Ok(Metric {
            hist,
            scale: s.scale,
            count: s.count,
            mean: s.mean,
            m2: s.m2,
            min: s.min,
            max: s.max,
        })
    }
}

impl Aggregate {
    fn named_metrics(&mut self) -> [(&'static str, &mut Metric); 17] {
        let srv = &mut self.server;
        let [a, b, c, d] = self.use_case.named();
        [
            a,
            b,
            c,
            d,
            ("ttfb", &mut self.ttfb),
            ("ttft", &mut self.ttft),
            ("itl", &mut self.itl),
            ("tpot", &mut self.tpot),
            ("e2e_latency", &mut self.e2e),
            ("output_tps", &mut self.output_tps),
            ("schedule_lag", &mut self.schedule_lag),
            ("load_duration", &mut srv.load_duration),
            ("queue_duration", &mut srv.queue_duration),
            ("prompt_eval_duration", &mut srv.prompt_eval_duration),
            ("prompt_tps", &mut srv.prompt_tps),
            ("eval_duration", &mut srv.eval_duration),
            ("eval_tps", &mut srv.eval_tps),
        ]
    }

    /// The lossless snapshot of everything added so far.
    pub fn state(&self) -> Result<AggregateState> {
        let mut copy = self.clone();
        let mut metrics = BTreeMap::new();
        for (name, metric) in copy.named_metrics() {
            if let Some(s) = metric.state()? {
                metrics.insert(name.to_string(), s);
            }
        }
        Ok(AggregateState {
            requests: self.requests,
            successes: self.successes,
            retries: self.retries,
            errors: self.errors.clone(),
            first_sent_ms: self.first_sent_ms.is_finite().then_some(self.first_sent_ms),
            last_end_ms: self.last_end_ms.is_finite().then_some(self.last_end_ms),
            prompt_tokens: self.prompt_tokens,
            output_tokens: self.output_tokens,
            output_tokens_estimated: self.estimated,
            good: self.good,
            coverage: self
                .coverage
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            metrics,
            ttft_fit: self.use_case.fit.clone(),
        })
    }

    /// The aggregate `state` was taken of, its times shifted by
    /// `offset_ms` (to put shards on one timeline).
    pub fn from_state(state: &AggregateState, offset_ms: f64) -> Result<Aggregate> {
        let mut agg = Aggregate {
            requests: state.requests,
            successes: state.successes,
            retries: state.retries,
            errors: state.errors.clone(),
            first_sent_ms: state.first_sent_ms.map_or(f64::INFINITY, |t| t + offset_ms),
            last_end_ms: state
                .last_end_ms
                .map_or(f64::NEG_INFINITY, |t| t + offset_ms),
            prompt_tokens: state.prompt_tokens,
            output_tokens: state.output_tokens,
            estimated: state.output_tokens_estimated,
            good: state.good,
            coverage: COVERED_METRICS
                .iter()
                .filter_map(|&name| state.coverage.get(name).map(|&n| (name, n)))
                .collect(),
            ..Aggregate::default()
        };
        for (name, metric) in agg.named_metrics() {
            if let Some(s) = state.metrics.get(name) {
                *metric = Metric::from_state(name, s)?;
            }
        }
        agg.use_case.fit = state.ttft_fit.clone();
        Ok(agg)
    }

    /// Fold `other` into this aggregate: counts summed, moments combined,
    /// histograms added (SLO thresholds and phases are this one's).
    pub fn merge(&mut self, other: &Aggregate) {
        self.requests += other.requests;
        self.successes += other.successes;
        self.retries += other.retries;
        for (kind, n) in &other.errors {
            *self.errors.entry(kind.clone()).or_default() += n;
        }
        self.first_sent_ms = self.first_sent_ms.min(other.first_sent_ms);
        self.last_end_ms = self.last_end_ms.max(other.last_end_ms);
        self.prompt_tokens += other.prompt_tokens;
        self.output_tokens += other.output_tokens;
        self.estimated |= other.estimated;
        self.good += other.good;
        for (name, n) in &other.coverage {
            *self.coverage.entry(name).or_default() += n;
        }
        let mut other = other.clone();
        for ((_, mine), (_, theirs)) in self.named_metrics().into_iter().zip(other.named_metrics())
        {
            mine.merge(theirs);
        }
        self.use_case.fit.merge(&other.use_case.fit);
    }
}

#[cfg(test)]
mod tests {
    use crate::measure::test_support::record;
    use crate::measure::{Aggregate, RequestRecord};

    fn records(n: u32) -> Vec<RequestRecord> {
        (0..n)
            .map(|i| {
                let f = f64::from(i);
                let ttft = 20.0 + (f * 7.3) % 400.0;
                record(f * 10.0, ttft, ttft + 100.0 + f, &[5.0 + f % 9.0, 6.0], 3)
            })
            .collect()
    }

    #[test]
    fn a_snapshot_round_trips_and_merged_halves_equal_the_whole() {
        let records = records(200);
        let mut whole = Aggregate::default();
        let (mut a, mut b) = (Aggregate::default(), Aggregate::default());
        for (i, r) in records.iter().enumerate() {
            whole.add(r);
            if i % 3 == 0 {
                a.add(r)
            } else {
                b.add(r)
            }
        }
        let text = serde_json::to_string(&a.state().unwrap()).unwrap();
        let back = Aggregate::from_state(&serde_json::from_str(&text).unwrap(), 0.0).unwrap();
        // JSON keeps the histograms exactly; floats to their last bit or so.
        let (bs, as_) = (back.summary(), a.summary());
        assert_eq!(
            (bs.requests, bs.output_tokens),
            (as_.requests, as_.output_tokens)
        );
        let (bt, at) = (bs.e2e_latency.unwrap(), as_.e2e_latency.unwrap());
        assert_eq!(
            (bt.p50, bt.p90, bt.p99, bt.count),
            (at.p50, at.p90, at.p99, at.count)
        );
        let mut merged = back;
        merged.merge(&Aggregate::from_state(&b.state().unwrap(), 0.0).unwrap());
        let (m, w) = (merged.summary(), whole.summary());
        assert_eq!(m.requests, w.requests);
        let (mt, wt) = (m.ttft.unwrap(), w.ttft.unwrap());
        assert_eq!((mt.p50, mt.p99, mt.max), (wt.p50, wt.p99, wt.max));
        assert!((mt.mean - wt.mean).abs() < 1e-9 && (mt.std_dev - wt.std_dev).abs() < 1e-9);
        assert_eq!(m.itl.map(|d| d.p99), w.itl.map(|d| d.p99));
    }

    #[test]
    fn a_corrupt_histogram_is_named() {
        let mut a = Aggregate::default();
        for r in records(5) {
            a.add(&r);
        }
        let mut state = a.state().unwrap();
        if let Some(m) = state.metrics.get_mut("ttft") {
            m.hdr_v2 = "AAAA".into();
        }
        let err = Aggregate::from_state(&state, 0.0).unwrap_err().to_string();
        assert!(err.contains("ttft"), "{err}");
    }
}
