//! The figures that judge a use case beyond the common ones: time to first
//! sentence (chat), the sustained output rate and its drift over a long
//! generation (creative writing, documents), ITL jitter, prompt processing
//! apart from generation, and TTFT as a function of prompt length (RAG).
//! They sit under `use_case` in each result set of `summary.json`.

use serde::{Deserialize, Serialize};

use super::summary::{Distribution, Metric, ServerSummary};
use super::RequestRecord;

/// A generation with at least this many gaps between content chunks is
/// long enough to compare its first quarter with its last.
pub const LONG_GENERATION_GAPS: usize = 16;

/// The fewest prompt tokens a result set's prompt lengths must span for
/// its TTFT-per-length line.
pub const MIN_FIT_SPAN: f64 = 100.0;

/// What a result set's records add up to for the use-case figures.
#[derive(Clone, Debug)]
pub(super) struct UseCaseMetrics {
    pub(super) ttfs: Metric,
    pub(super) sustained_tps: Metric,
    pub(super) late_vs_early: Metric,
    pub(super) client_prompt_tps: Metric,
    pub(super) fit: LineFit,
}

impl Default for UseCaseMetrics {
    fn default() -> Self {
        UseCaseMetrics {
            ttfs: Metric::new(1e3),
            sustained_tps: Metric::new(1e3),
            late_vs_early: Metric::new(1e4),
            client_prompt_tps: Metric::new(1e3),
            fit: LineFit::default(),
        }
    }
}

impl UseCaseMetrics {
    /// Count in one successful record.
    pub(super) fn add(&mut self, r: &RequestRecord) {
        if let Some(t) = r.ttfs_ms {
            self.ttfs.add(t);
        }
        if let Some(rate) = sustained_rate(r) {
            self.sustained_tps.add(rate);
        }
        if let Some(ratio) = late_vs_early(&r.itl_ms) {
            self.late_vs_early.add(ratio);
        }
        if let (Some(prompt), Some(ttft)) = (r.prompt_tokens, r.ttft_ms) {
            if prompt > 0 && ttft > 0.0 {
                self.client_prompt_tps.add(f64::from(prompt) / (ttft / 1e3));
                self.fit.add(f64::from(prompt), ttft);
            }
        }
    }

    /// The metrics with a histogram, by their names in `histograms.json`.
    pub(super) fn named(&mut self) -> [(&'static str, &mut Metric); 4] {
        [
            ("ttfs", &mut self.ttfs),
            ("sustained_output_tps", &mut self.sustained_tps),
            ("late_vs_early_rate", &mut self.late_vs_early),
            ("client_prompt_tps", &mut self.client_prompt_tps),
        ]
    }

    /// The `use_case` entry, given the rest of the summary (its ITL and the
    /// engine's own prompt timings).
    pub(super) fn summary(
        &self,
        ttft: Option<&Distribution>,
        itl: Option<&Distribution>,
        server: &ServerSummary,
    ) -> UseCaseSummary {
        let drift = self.late_vs_early.distribution().map(|ratio| Drift {
            requests: ratio.count,
            change: ratio.p50 - 1.0,
            late_vs_early: ratio,
        });
        let prompt_processing = match (&server.prompt_eval_duration, ttft) {
            (Some(d), _) => Some(PromptProcessing {
                source: TimingSource::Server,
                duration_ms: d.clone(),
                prompt_tps: server.prompt_tps.clone(),
            }),
            (None, Some(t)) => Some(PromptProcessing {
                source: TimingSource::ClientTtft,
                duration_ms: t.clone(),
                prompt_tps: self.client_prompt_tps.distribution(),
            }),
            (None, None) => None,
        };
        UseCaseSummary {
            ttfs: self.ttfs.distribution(),
            sustained_output_tps: self.sustained_tps.distribution(),
            drift,
            itl_jitter: itl.and_then(Jitter::of),
            prompt_processing,
            ttft_vs_prompt_tokens: self.fit.slope(),
        }
    }
}

/// Output tokens per second from the first content chunk to the last: the
/// rate the reader sees once text flows, the wait for it left out.
fn sustained_rate(r: &RequestRecord) -> Option<f64> {
    let tokens = f64::from(r.output_tokens?);
    let chunks = f64::from(r.content_chunks);
    let span_ms: f64 = r.itl_ms.iter().sum();
    if r.itl_ms.is_empty() || span_ms <= 0.0 || chunks < 2.0 {
        return None;
    }
    // The first chunk's tokens arrive at the start of the span.
    Some(tokens * (chunks - 1.0) / chunks / (span_ms / 1e3))
}

/// The chunk rate of the last quarter of a long generation over that of
/// its first quarter (1 = steady, below 1 = slowing down).
fn late_vs_early(gaps: &[f64]) -> Option<f64> {
    if gaps.len() < LONG_GENERATION_GAPS {
        return None;
    }
    let quarter = gaps.len() / 4;
    let early: f64 = gaps[..quarter].iter().sum();
    let late: f64 = gaps[gaps.len() - quarter..].iter().sum();
    (early > 0.0 && late > 0.0).then(|| early / late)
}

/// The figures of a result set that judge its use case, in `summary.json`
/// under `use_case`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UseCaseSummary {
    /// Send to the end of the answer's first sentence (first `.`, `!`, `?`
    /// or newline after some text), ms: when a chat user can start reading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttfs: Option<Distribution>,
    /// Output tokens per second from the first content chunk to the last,
    /// per request (the wait for the first token left out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sustained_output_tps: Option<Distribution>,
    /// How the output rate changed from the first to the last quarter of
    /// each long generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<Drift>,
    /// How uneven the gaps between chunks are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub itl_jitter: Option<Jitter>,
    /// Prompt processing (prefill), apart from generation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_processing: Option<PromptProcessing>,
    /// TTFT as a straight line in the prompt's length, where lengths vary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_vs_prompt_tokens: Option<Slope>,
}

impl UseCaseSummary {
    /// Whether nothing was measured.
    pub fn is_empty(&self) -> bool {
        *self == UseCaseSummary::default()
    }
}

/// Generation drift over long generations (at least
/// [`LONG_GENERATION_GAPS`] gaps between chunks).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    /// Long generations measured.
    pub requests: u64,
    /// The median change of the output rate from the first quarter to the
    /// last (`-0.2`: a fifth slower by the end).
    pub change: f64,
    /// Per request, the last quarter's rate over the first quarter's.
    pub late_vs_early: Distribution,
}

/// How uneven the gaps between content chunks are.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Jitter {
    /// The standard deviation of the gaps, ms.
    pub std_dev_ms: f64,
    /// p99 over p50 of the gaps (1 = perfectly even).
    pub p99_over_p50: f64,
}

impl Jitter {
    fn of(itl: &Distribution) -> Option<Jitter> {
        (itl.p50 > 0.0).then(|| Jitter {
            std_dev_ms: itl.std_dev,
            p99_over_p50: itl.p99 / itl.p50,
        })
    }
}

/// Where a timing came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimingSource {
    /// The engine's own figures (llama.cpp `timings`, Ollama's durations).
    Server,
    /// The client's TTFT, which also holds queueing and the network: an
    /// upper bound on prompt processing.
    ClientTtft,
}

/// Prompt processing, apart from generation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PromptProcessing {
    /// Where the figures come from.
    pub source: TimingSource,
    /// Time to process each prompt, ms.
    pub duration_ms: Distribution,
    /// Prompt tokens per second, per request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tps: Option<Distribution>,
}

/// A least-squares line through (prompt tokens, TTFT ms).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Slope {
    /// Requests (or points) fitted.
    pub points: u64,
    /// TTFT added per 1,000 prompt tokens, ms.
    pub ms_per_1k_tokens: f64,
    /// The line's TTFT at zero prompt tokens, ms.
    pub intercept_ms: f64,
    /// Pearson's r of the points (1: on the line).
    pub r: f64,
    /// The shortest and longest prompts fitted, tokens.
    pub prompt_tokens: [f64; 2],
}

/// Running sums for a least-squares line; mergeable, constant memory.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LineFit {
    n: u64,
    sx: f64,
    sy: f64,
    sxx: f64,
    sxy: f64,
    syy: f64,
    min_x: Option<f64>,
    max_x: Option<f64>,
}

impl LineFit {
    /// Add the point (`x`, `y`).
    pub fn add(&mut self, x: f64, y: f64) {
        if !x.is_finite() || !y.is_finite() {
            return;
        }
        self.n += 1;
        self.sx += x;
        self.sy += y;
        self.sxx += x * x;
        self.sxy += x * y;
        self.syy += y * y;
        self.min_x = Some(self.min_x.map_or(x, |m| m.min(x)));
        self.max_x = Some(self.max_x.map_or(x, |m| m.max(x)));
    }

    /// Fold `other`'s points in.
    pub fn merge(&mut self, other: &LineFit) {
        self.n += other.n;
        self.sx += other.sx;
        self.sy += other.sy;
        self.sxx += other.sxx;
        self.sxy += other.sxy;
        self.syy += other.syy;
        for x in [other.min_x, other.max_x].into_iter().flatten() {
            self.min_x = Some(self.min_x.map_or(x, |m| m.min(x)));
            self.max_x = Some(self.max_x.map_or(x, |m| m.max(x)));
        }
    }

    /// The line, with y per 1,000 x; `None` with fewer than three points
    /// or prompts whose lengths span less than [`MIN_FIT_SPAN`] tokens
    /// (over a narrower span, a millisecond of noise moves the slope by
    /// tens of ms per 1K tokens).
    pub fn slope(&self) -> Option<Slope> {
        self.slope_of(3, MIN_FIT_SPAN)
    }

    /// The line through at least `min_points` points spanning `min_span`.
    fn slope_of(&self, min_points: u64, min_span: f64) -> Option<Slope> {
        let (min, max) = (self.min_x?, self.max_x?);
        if self.n < min_points.max(2) || max - min < min_span.max(1.0) {
            return None;
        }
        let n = self.n as f64;
        let vx = self.sxx - self.sx * self.sx / n;
        let vy = self.syy - self.sy * self.sy / n;
        let cov = self.sxy - self.sx * self.sy / n;
        if vx <= 0.0 {
            return None;
        }
        let b = cov / vx;
        let r = if vy > 0.0 {
            (cov / (vx * vy).sqrt()).clamp(-1.0, 1.0)
        } else {
            0.0
        };
        Some(Slope {
            points: self.n,
            ms_per_1k_tokens: b * 1e3,
            intercept_ms: (self.sy - b * self.sx) / n,
            r,
            prompt_tokens: [min, max],
        })
    }
}

/// TTFT against prompt length across the result sets of a list of prompt
/// lengths (`Workload::prompt_tokens([1024, 2048, 4096])`), in
/// `summary.json` under `prompt_scaling`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PromptScaling {
    /// The scenario.
    pub scenario: String,
    /// The engine's label.
    pub engine: String,
    /// One point per prompt length that produced a TTFT.
    pub points: Vec<PromptPoint>,
    /// The line through the points' TTFT p50; `None` with fewer than two
    /// points.
    pub ttft_p50_vs_prompt_tokens: Option<Slope>,
}

/// One prompt length's figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PromptPoint {
    /// The prompt tokens asked for.
    pub requested: u32,
    /// The mean prompt tokens the engine reported.
    pub prompt_tokens: f64,
    /// TTFT p50, ms.
    pub ttft_p50_ms: f64,
    /// Prompt processing p50 (see [`PromptProcessing`]), ms.
    pub prompt_processing_p50_ms: Option<f64>,
}

impl PromptScaling {
    /// The points and line of `steps`: each prompt length asked for, with
    /// its result set's figures.
    pub fn new(scenario: &str, engine: &str, steps: &[(u32, super::Summary)]) -> PromptScaling {
        let points: Vec<PromptPoint> = steps
            .iter()
            .filter_map(|(requested, s)| {
                let ttft = s.ttft.as_ref()?;
                let prompt_tokens = if s.successes > 0 {
                    s.prompt_tokens as f64 / s.successes as f64
                } else {
                    f64::from(*requested)
                };
                Some(PromptPoint {
                    requested: *requested,
                    // No prompt counts reported: the lengths asked for.
                    prompt_tokens: if prompt_tokens > 0.0 {
                        prompt_tokens
                    } else {
                        f64::from(*requested)
                    },
                    ttft_p50_ms: ttft.p50,
                    prompt_processing_p50_ms: s
                        .use_case
                        .prompt_processing
                        .as_ref()
                        .map(|p| p.duration_ms.p50),
                })
            })
            .collect();
        let mut fit = LineFit::default();
        for p in &points {
            fit.add(p.prompt_tokens, p.ttft_p50_ms);
        }
        PromptScaling {
            scenario: scenario.to_string(),
            engine: engine.to_string(),
            // Lengths the user chose: any two of them make a line.
            ttft_p50_vs_prompt_tokens: fit.slope_of(2, 1.0),
            points,
        }
    }

    /// One line for the terminal.
    pub fn describe(&self) -> String {
        match &self.ttft_p50_vs_prompt_tokens {
            Some(s) => format!(
                "TTFT p50 grows {:.1} ms per 1K prompt tokens ({:.0} ms at none; r = {:.2}, {} lengths)",
                s.ms_per_1k_tokens, s.intercept_ms, s.r, s.points
            ),
            None => format!(
                "TTFT per prompt length: {} lengths measured, too few for a slope",
                self.points.len()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::test_support::record;

    #[test]
    fn a_line_is_fitted_exactly_and_merges() {
        let mut whole = LineFit::default();
        let (mut a, mut b) = (LineFit::default(), LineFit::default());
        for (i, x) in [1000.0, 2000.0, 3000.0, 4000.0].into_iter().enumerate() {
            let y = 30.0 + 0.05 * x; // 50 ms per 1K tokens
            whole.add(x, y);
            if i % 2 == 0 {
                a.add(x, y)
            } else {
                b.add(x, y)
            }
        }
        a.merge(&b);
        for fit in [whole, a] {
            let s = fit.slope().unwrap();
            assert!((s.ms_per_1k_tokens - 50.0).abs() < 1e-9, "{s:?}");
            assert!((s.intercept_ms - 30.0).abs() < 1e-9, "{s:?}");
            assert!((s.r - 1.0).abs() < 1e-9);
            assert_eq!((s.points, s.prompt_tokens), (4, [1000.0, 4000.0]));
        }
        let mut flat = LineFit::default();
        for y in [10.0, 20.0, 30.0] {
            flat.add(512.0, y);
        }
        assert_eq!(flat.slope(), None, "one length has no slope");
        let mut narrow = LineFit::default();
        for (x, y) in [(5.0, 20.0), (12.0, 21.0), (20.0, 20.5)] {
            narrow.add(x, y);
        }
        assert_eq!(narrow.slope(), None, "15 tokens are too narrow a span");
    }

    #[test]
    fn drift_compares_the_first_quarter_with_the_last() {
        let mut gaps = vec![10.0; 8];
        gaps.extend([20.0; 8]); // the second half twice as slow
        assert_eq!(late_vs_early(&gaps), Some(0.5));
        assert_eq!(late_vs_early(&gaps[..15]), None, "too short to judge");
    }

    #[test]
    fn the_sustained_rate_leaves_the_wait_out() {
        // 5 tokens in 5 chunks: 4 gaps of 10 ms after a 100 ms TTFT.
        let r = record(0.0, 100.0, 140.0, &[10.0; 4], 5);
        assert!((sustained_rate(&r).unwrap() - 100.0).abs() < 1e-9);
        let mut m = UseCaseMetrics::default();
        m.add(&r);
        let s = m.summary(None, None, &ServerSummary::default());
        assert!(s.ttft_vs_prompt_tokens.is_none() && s.drift.is_none());
        assert_eq!(s.sustained_output_tps.map(|d| d.count), Some(1));
    }
}
