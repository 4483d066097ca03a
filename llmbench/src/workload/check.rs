//! How close the prompts came to their requested lengths: requested vs
//! reported prompt tokens over a result set, and the use case's entry in
//! `summary.json`.

use serde::{Deserialize, Serialize};

use super::{LengthSource, Preset};
use crate::measure::RequestRecord;

/// Requested vs reported prompt tokens over the requests that have both.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PromptLengths {
    /// How the requested lengths were measured (`tokenizer`: exact;
    /// `tokenizer_file`: exact when the file is the engine's tokenizer;
    /// `calibrated`, `estimate`: client-side estimates).
    pub source: Option<LengthSource>,
    /// True unless a tokenizer (the engine's, or a file) measured the
    /// lengths.
    pub estimated: bool,
    /// Requests with both a requested and a reported prompt length.
    pub requests: u64,
    /// Mean requested prompt tokens.
    pub requested_mean: Option<f64>,
    /// Mean prompt tokens the engine reported.
    pub reported_mean: Option<f64>,
    /// Mean of reported minus requested (signed).
    pub mean_error: Option<f64>,
    /// The largest difference either way, in tokens.
    pub max_error: Option<u32>,
    /// `max_error` as a share of its request's requested length.
    pub max_error_ratio: Option<f64>,
}

impl PromptLengths {
    /// An empty check of lengths measured by `source`.
    pub(crate) fn new(source: Option<LengthSource>) -> Self {
        PromptLengths {
            source,
            estimated: !matches!(
                source,
                Some(LengthSource::Tokenizer | LengthSource::TokenizerFile)
            ),
            ..PromptLengths::default()
        }
    }

    /// Count `record` in, if it has both lengths.
    pub(crate) fn add(&mut self, record: &RequestRecord) {
        let (Some(want), Some(got)) = (record.requested_prompt_tokens, record.prompt_tokens) else {
            return;
        };
        let n = self.requests as f64;
        let mean = |old: Option<f64>, v: f64| (old.unwrap_or(0.0) * n + v) / (n + 1.0);
        self.requested_mean = Some(mean(self.requested_mean, f64::from(want)));
        self.reported_mean = Some(mean(self.reported_mean, f64::from(got)));
        self.mean_error = Some(mean(self.mean_error, f64::from(got) - f64::from(want)));
        let error = got.abs_diff(want);
        if self.max_error.is_none_or(|m| error > m) {
            self.max_error = Some(error);
            self.max_error_ratio = Some(f64::from(error) / f64::from(want.max(1)));
        }
        self.requests += 1;
    }
}

/// The workload of a result set in `summary.json`: its use case and the
/// metric it is judged by, and how close its prompts came to their lengths.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkloadSummary {
    /// The use case, for a preset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<Preset>,
    /// The field of this entry the use case is judged by (`ttft`,
    /// `output_tps`, `server.prompt_eval_duration`, `e2e_latency`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_metric: Option<String>,
    /// The prompt lengths asked for, as the workload states them
    /// (`uniform 1000..=4000`, `2048`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<String>,
    /// The answer lengths asked for, where the workload draws them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<String>,
    /// Requested vs reported prompt tokens, where prompts were fitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_lengths: Option<PromptLengths>,
    /// The tokens every prompt began with, where they shared a prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_prefix_tokens: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::test_support::record;

    #[test]
    fn the_check_reports_mean_and_largest_error() {
        let mut c = PromptLengths::new(Some(LengthSource::Tokenizer));
        assert!(!c.estimated);
        for (want, got) in [(100, 100), (200, 202), (50, 47)] {
            let mut r = record(0.0, 10.0, 20.0, &[1.0], 2);
            r.requested_prompt_tokens = Some(want);
            r.prompt_tokens = Some(got);
            c.add(&r);
        }
        c.add(&record(0.0, 10.0, 20.0, &[1.0], 2)); // nothing requested
        assert_eq!(c.requests, 3);
        assert_eq!(c.max_error, Some(3));
        assert!((c.max_error_ratio.unwrap() - 0.06).abs() < 1e-9);
        assert!((c.mean_error.unwrap() + 1.0 / 3.0).abs() < 1e-9);
        assert!((c.requested_mean.unwrap() - 350.0 / 3.0).abs() < 1e-9);
        assert!(PromptLengths::new(None).estimated);
    }
}
