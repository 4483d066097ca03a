//! What the HTML report's charts need from the records, gathered in one
//! pass over `requests.jsonl` in bounded memory: per result set (scenario,
//! step, engine) histograms of e2e latency and TTFT for the distribution
//! charts, mean TTFT per prompt length, and a timeline of completions,
//! output tokens and TTFT in fixed buckets.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use super::RunData;
use crate::measure::RequestRecord;

/// A result set: (scenario, step, engine).
pub(crate) type SetKey = (String, Option<String>, String);

/// The buckets a timeline is cut into, about.
const TIMELINE_BUCKETS: f64 = 40.0;

/// One timeline bucket.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Bucket {
    pub completions: u64,
    pub output_tokens: u64,
    pub ttft_sum: f64,
    pub ttft_n: u64,
}

/// Running sums for the Pearson correlation of two variables.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Pearson {
    n: f64,
    sx: f64,
    sy: f64,
    sxx: f64,
    syy: f64,
    sxy: f64,
}

impl Pearson {
    fn add(&mut self, x: f64, y: f64) {
        self.n += 1.0;
        self.sx += x;
        self.sy += y;
        self.sxx += x * x;
        self.syy += y * y;
        self.sxy += x * y;
    }

    /// The correlation, or `None` with fewer than 3 pairs or a constant side.
    pub(crate) fn correlation(&self) -> Option<f64> {
        let n = self.n;
        let cov = n * self.sxy - self.sx * self.sy;
        let vx = n * self.sxx - self.sx * self.sx;
        let vy = n * self.syy - self.sy * self.sy;
        // Relative to the sums' size: below this, the variance is rounding.
        let tiny = |v: f64, s: f64| v <= 1e-9 * n * s.max(1.0);
        (n >= 3.0 && !tiny(vx, self.sxx) && !tiny(vy, self.syy))
            .then(|| (cov / (vx.sqrt() * vy.sqrt())).clamp(-1.0, 1.0))
    }
}

/// The chart data of one result set.
#[derive(Debug)]
pub(crate) struct SetData {
    /// Successful requests' e2e latency, microseconds.
    pub e2e_us: Histogram<u64>,
    /// Prompt length -> (requests, sum of TTFT in ms).
    pub ttft_by_prompt: BTreeMap<u32, (u64, f64)>,
    /// Bucket width, ms.
    pub width_ms: f64,
    pub timeline: BTreeMap<u64, Bucket>,
    /// TTFT against prompt length, request by request.
    pub ttft_prompt: Pearson,
}

impl SetData {
    fn new(width_ms: f64) -> Self {
        SetData {
            // 3 significant digits always fit; auto-resize keeps any value.
            e2e_us: Histogram::new(3).unwrap_or_else(|_| unreachable!("3 digits is valid")),
            ttft_by_prompt: BTreeMap::new(),
            width_ms,
            timeline: BTreeMap::new(),
            ttft_prompt: Pearson::default(),
        }
    }

    /// The e2e latency CDF as (ms, percent of requests at or below), at
    /// 101 quantiles.
    pub(crate) fn e2e_cdf(&self) -> Vec<(f64, f64)> {
        if self.e2e_us.is_empty() {
            return Vec::new();
        }
        (0..=100)
            .map(|p| {
                let q = f64::from(p) / 100.0;
                (self.e2e_us.value_at_quantile(q) as f64 / 1e3, f64::from(p))
            })
            .collect()
    }
}

/// One result set's rows of `monitor.csv`: per series, (t_s, value) points.
pub(crate) type MonitorSeries = BTreeMap<String, Vec<(f64, f64)>>;

/// Chart data of every result set of a run.
#[derive(Debug, Default)]
pub(crate) struct ChartData {
    pub sets: BTreeMap<SetKey, SetData>,
    widths: BTreeMap<SetKey, f64>,
    /// `monitor.csv`'s percentage series, by its `trial` column
    /// (`scenario/engine` or `scenario/engine [step]`).
    pub monitor: BTreeMap<String, MonitorSeries>,
}

/// The `trial` label `monitor.csv` gives a result set.
pub(crate) fn monitor_label(scenario: &str, engine: &str, step: Option<&str>) -> String {
    match step {
        Some(step) => format!("{scenario}/{engine} [{step}]"),
        None => format!("{scenario}/{engine}"),
    }
}

/// Whether a `monitor.csv` column goes on the report's machine chart: the
/// percentages, without the per-core ones.
fn charted(column: &str) -> bool {
    let per_core = column.starts_with("host_cpu") && column != "host_cpu_pct";
    column.ends_with("_pct") && !per_core && column != "engine_model_vram_pct"
}

impl ChartData {
    /// Ready to take `run`'s records: the timeline of each result set is
    /// cut into about 40 buckets of its duration (at least 50 ms each).
    pub(crate) fn new(run: &RunData) -> Self {
        let widths = run
            .trials
            .iter()
            .map(|t| {
                let key = (t.scenario.clone(), t.step.clone(), t.engine.clone());
                (
                    key,
                    (t.summary.duration_s * 1e3 / TIMELINE_BUCKETS).max(50.0),
                )
            })
            .collect();
        ChartData {
            sets: BTreeMap::new(),
            widths,
            monitor: BTreeMap::new(),
        }
    }

    /// Read the percentage series of `monitor.csv` (a few columns, a row a
    /// second); a missing file is no monitor, an unreadable row is skipped.
    pub(crate) fn add_monitor(&mut self, csv_text: &str) {
        let mut reader = ::csv::Reader::from_reader(csv_text.as_bytes());
        let Ok(header) = reader.headers().cloned() else {
            return;
        };
        for row in reader.records().flatten() {
            let (Some(trial), Some(t)) =
                (row.get(0), row.get(1).and_then(|t| t.parse::<f64>().ok()))
            else {
                continue;
            };
            let series = self.monitor.entry(trial.to_string()).or_default();
            for (name, cell) in header.iter().zip(row.iter()).skip(2) {
                if let (true, Ok(v)) = (charted(name), cell.parse::<f64>()) {
                    series.entry(name.to_string()).or_default().push((t, v));
                }
            }
        }
    }

    /// Add one record (warm-up and failed requests stay out, as they stay
    /// out of the summary's distributions).
    pub(crate) fn add(&mut self, r: &RequestRecord) {
        if r.warmup || !r.success {
            return;
        }
        let key = (r.scenario.clone(), r.step.clone(), r.engine.clone());
        let width = self.widths.get(&key).copied().unwrap_or(1000.0);
        let set = self.sets.entry(key).or_insert_with(|| SetData::new(width));
        let _ = set
            .e2e_us
            .record((r.e2e_latency_ms * 1e3).round().max(1.0) as u64);
        let origin = if r.latency_from_schedule {
            r.scheduled_ms
        } else {
            r.sent_ms
        };
        let end = origin + r.e2e_latency_ms;
        let bucket = set.timeline.entry((end / set.width_ms) as u64).or_default();
        bucket.completions += 1;
        bucket.output_tokens += u64::from(r.output_tokens.unwrap_or(0));
        if let Some(ttft) = r.ttft_ms {
            bucket.ttft_sum += ttft;
            bucket.ttft_n += 1;
            if let Some(p) = r.prompt_tokens {
                let e = set.ttft_by_prompt.entry(p).or_insert((0, 0.0));
                e.0 += 1;
                e.1 += ttft;
                set.ttft_prompt.add(f64::from(p), ttft);
            }
        }
    }
}
