//! Each trial's monitor figures for `summary.json`: min, mean and max of
//! every series, what each source was, and the alerts a threshold raises
//! (memory over 90%, the host swapping, a GPU over 85 °C, a full KV cache).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Readings;

/// Host memory use, in percent, above which a trial gets a warning.
pub const MEMORY_PCT_WARN: f64 = 90.0;
/// Change in swap use, in MiB, over a trial from which the host is said to
/// have swapped (a constant amount swapped out before the run is not).
pub const SWAP_CHANGE_WARN_MIB: f64 = 1.0;
/// GPU temperature, in °C, above which a trial gets a warning.
pub const GPU_TEMP_WARN_C: f64 = 85.0;
/// KV-cache use (a fraction) at or above which the cache is said to be
/// full.
pub const KV_CACHE_FULL: f64 = 0.99;
/// The share of an Ollama model's memory on the GPU, in percent, under
/// which part of it is said to run on the CPU.
pub const MODEL_VRAM_PCT_WARN: f64 = 99.5;

/// One series over a trial.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeriesStats {
    /// The smallest value.
    pub min: f64,
    /// The mean of the samples that had a value.
    pub mean: f64,
    /// The largest value.
    pub max: f64,
    /// How many samples had a value.
    pub samples: u64,
}

/// What the monitor saw during one trial (`monitor` in `summary.json`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MonitorSummary {
    /// The sampling interval, in seconds.
    pub interval_s: f64,
    /// Rows written to `monitor.csv` for this trial.
    pub samples: u64,
    /// The GPUs sampled, or `no GPU (…)` and why.
    pub gpu: String,
    /// What is known of the engine's process (the in-process simulator,
    /// a launched PID, or not sampled).
    pub engine_process: String,
    /// The engine's `/metrics`: which metric fed each `engine_*` column,
    /// or why the source is off.
    pub engine_metrics: String,
    /// Every series with at least one value, by `monitor.csv` column.
    pub series: BTreeMap<String, SeriesStats>,
    /// Pearson's r of each interval's output tokens/s and mean TTFT with
    /// GPU utilisation, KV-cache use and queue depth, where sampled.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub correlation: BTreeMap<String, super::correlation::Correlation>,
    /// What went wrong with a source during the trial (a failing GPU
    /// query, a vanished device, `/metrics` switched off), once each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Running min, sum and max of each series.
#[derive(Clone, Debug, Default)]
pub(crate) struct Accumulator {
    series: BTreeMap<String, (f64, f64, f64, u64)>,
    samples: u64,
}

impl Accumulator {
    /// Count one sample.
    pub(crate) fn add(&mut self, readings: &Readings) {
        self.samples += 1;
        for (column, v) in readings.iter() {
            let e = self
                .series
                .entry(column.to_string())
                .or_insert((v, 0.0, v, 0));
            e.0 = e.0.min(v);
            e.1 += v;
            e.2 = e.2.max(v);
            e.3 += 1;
        }
    }

    /// Samples counted.
    pub(crate) fn samples(&self) -> u64 {
        self.samples
    }

    /// The figures of every series.
    pub(crate) fn stats(&self) -> BTreeMap<String, SeriesStats> {
        self.series
            .iter()
            .map(|(column, &(min, sum, max, n))| {
                let stats = SeriesStats {
                    min,
                    mean: sum / n.max(1) as f64,
                    max,
                    samples: n,
                };
                (column.clone(), stats)
            })
            .collect()
    }
}

/// The alerts `m` deserves, in words a user can act on.
pub fn alerts(m: &MonitorSummary) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(mem) = m.series.get("host_mem_used_pct") {
        if mem.max > MEMORY_PCT_WARN {
            out.push(format!(
                "host memory reached {:.0}% in use (over {MEMORY_PCT_WARN:.0}%): the engine or \
                 the client may be near swapping or being killed for memory",
                mem.max
            ));
        }
    }
    if let Some(swap) = m.series.get("host_swap_used_mib") {
        if swap.max - swap.min >= SWAP_CHANGE_WARN_MIB {
            out.push(format!(
                "the host swapped during the trial (swap in use between {:.0} and {:.0} MiB): \
                 latencies may include paging",
                swap.min, swap.max
            ));
        }
    }
    for (column, stats) in &m.series {
        let gpu = column
            .strip_prefix("gpu")
            .and_then(|rest| rest.strip_suffix("_temp_c"));
        if let Some(index) = gpu.filter(|_| stats.max > GPU_TEMP_WARN_C) {
            out.push(format!(
                "GPU {index} reached {:.0} °C (over {GPU_TEMP_WARN_C:.0} °C): it may throttle its \
                 clocks",
                stats.max
            ));
        }
    }
    if let Some(vram) = m.series.get("engine_model_vram_pct") {
        if vram.min < MODEL_VRAM_PCT_WARN {
            out.push(format!(
                "an Ollama model had only {:.0}% of its memory on the GPU: the rest ran on the \
                 CPU, which slows every token (ollama ps shows the split)",
                vram.min
            ));
        }
    }
    if let Some(kv) = m.series.get("engine_kv_cache_usage") {
        if kv.max >= KV_CACHE_FULL {
            out.push(format!(
                "the engine's KV cache was full (usage {:.2}, mean {:.2}): requests queue or are \
                 preempted, which shows in TTFT",
                kv.max, kv.mean
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(rows: &[&[(&str, f64)]]) -> MonitorSummary {
        let mut acc = Accumulator::default();
        for row in rows {
            let mut r = Readings::default();
            for &(c, v) in *row {
                r.set(c, v);
            }
            acc.add(&r);
        }
        MonitorSummary {
            samples: acc.samples(),
            series: acc.stats(),
            ..MonitorSummary::default()
        }
    }

    #[test]
    fn stats_count_only_samples_with_a_value() {
        let m = summary(&[
            &[("host_cpu_pct", 10.0), ("gpu0_temp_c", 60.0)],
            &[("host_cpu_pct", 30.0)],
        ]);
        assert_eq!(m.samples, 2);
        let cpu = &m.series["host_cpu_pct"];
        assert_eq!(
            (cpu.min, cpu.mean, cpu.max, cpu.samples),
            (10.0, 20.0, 30.0, 2)
        );
        assert_eq!(m.series["gpu0_temp_c"].samples, 1);
        assert!(alerts(&m).is_empty());
    }

    #[test]
    fn thresholds_raise_alerts() {
        let m = summary(&[
            &[
                ("host_mem_used_pct", 85.0),
                ("host_swap_used_mib", 512.0),
                ("gpu1_temp_c", 80.0),
                ("engine_kv_cache_usage", 0.5),
                ("engine_model_vram_pct", 100.0),
            ],
            &[
                ("host_mem_used_pct", 93.4),
                ("host_swap_used_mib", 700.0),
                ("gpu1_temp_c", 88.0),
                ("engine_kv_cache_usage", 1.0),
                ("engine_model_vram_pct", 60.0),
            ],
        ]);
        let alerts = alerts(&m);
        assert_eq!(alerts.len(), 5, "{alerts:?}");
        assert!(alerts[0].starts_with("host memory reached 93% in use"));
        assert!(alerts[1].contains("swap in use between 512 and 700 MiB"));
        assert!(alerts[2].starts_with("GPU 1 reached 88 °C"));
        assert!(alerts[3].starts_with("an Ollama model had only 60% of its memory on the GPU"));
        assert!(alerts[4].starts_with("the engine's KV cache was full (usage 1.00, mean 0.75)"));
    }

    #[test]
    fn swap_that_stays_put_is_not_swapping() {
        let m = summary(&[
            &[("host_swap_used_mib", 512.0)],
            &[("host_swap_used_mib", 512.2)],
        ]);
        assert!(alerts(&m).is_empty());
    }
}
