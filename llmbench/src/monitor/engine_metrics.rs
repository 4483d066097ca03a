//! The engine's own view of its load, scraped from its `/metrics`: requests
//! running and waiting, KV-cache use, generated tokens per second and, from
//! its TTFT histogram, the TTFT of the requests it answered in each
//! interval, under the same column names whichever engine (vLLM, SGLang,
//! TGI, llama.cpp, the simulator) wrote them.
//!
//! [`select`] is pure (tested on every metrics fixture); [`Scraper`] does
//! the HTTP and turns a 404, an unreachable engine or unreadable text into
//! one warning and a disabled source, never a failed run.

use std::time::{Duration, Instant};

use super::prometheus::{self, Bucket, Histogram, Metrics};
use super::Readings;

/// How a column combines the samples of its metric (over `model_name`,
/// `engine` and other labels).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Combine {
    /// Add them: requests across engines and models.
    Sum,
    /// Take the largest: the fullest KV cache.
    Max,
}

/// One column and the metric names that feed it, first found wins.
struct Series {
    column: &'static str,
    names: &'static [&'static str],
    combine: Combine,
    /// A counter: the column is its rate per second between scrapes.
    counter: bool,
}

/// Every engine-metrics column, in `monitor.csv` order.
const SERIES: &[Series] = &[
    Series {
        column: "engine_requests_running",
        names: &[
            "vllm:num_requests_running",
            "sglang:num_running_reqs",
            "tgi_batch_current_size",
            "llamacpp:requests_processing",
            "llmbench_sim_requests_running",
        ],
        combine: Combine::Sum,
        counter: false,
    },
    Series {
        column: "engine_requests_waiting",
        names: &[
            "vllm:num_requests_waiting",
            "sglang:num_queue_reqs",
            "tgi_queue_size",
            "llamacpp:requests_deferred",
            "llmbench_sim_requests_waiting",
        ],
        combine: Combine::Sum,
        counter: false,
    },
    Series {
        column: "engine_kv_cache_usage",
        // vLLM renamed gpu_cache_usage_perc to kv_cache_usage_perc (V1);
        // both are a fraction, 1 = full, despite the name.
        names: &[
            "vllm:kv_cache_usage_perc",
            "vllm:gpu_cache_usage_perc",
            "sglang:token_usage",
            "llamacpp:kv_cache_usage_ratio",
        ],
        combine: Combine::Max,
        counter: false,
    },
    Series {
        column: "engine_generated_tokens_per_s",
        names: &[
            "vllm:generation_tokens_total",
            "sglang:generation_tokens_total",
            "tgi_request_generated_tokens_sum",
            "llamacpp:tokens_predicted_total",
        ],
        combine: Combine::Sum,
        counter: true,
    },
];

/// The engines' TTFT histograms (seconds), first found wins; each interval's
/// TTFT p50 and p99 (ms) come from the buckets' growth between scrapes.
const TTFT_HISTOGRAMS: &[&str] = &[
    "vllm:time_to_first_token_seconds",
    "sglang:time_to_first_token_seconds",
];

/// The columns the TTFT histogram fills.
const TTFT_COLUMNS: [&str; 2] = ["engine_ttft_p50_ms", "engine_ttft_p99_ms"];

/// The TTFT p50 and p99 (ms) of the requests the engine counted between
/// `before` and `now` (the difference of two scrapes of a cumulative
/// histogram), `None` when none finished in between, the buckets differ or
/// a count went down (the engine restarted).
pub fn interval_ttft(before: &Histogram, now: &Histogram) -> Option<(f64, f64)> {
    if before.buckets.len() != now.buckets.len() {
        return None;
    }
    let mut buckets = Vec::with_capacity(now.buckets.len());
    for (b, n) in before.buckets.iter().zip(&now.buckets) {
        if b.le != n.le || n.count < b.count {
            return None;
        }
        buckets.push(Bucket {
            le: n.le,
            count: n.count - b.count,
        });
    }
    let delta = Histogram {
        buckets,
        sum: None,
        count: None,
    };
    Some((delta.quantile(0.5)? * 1e3, delta.quantile(0.99)? * 1e3))
}

/// Ollama's columns, from `/api/ps` (it serves no `/metrics`).
const OLLAMA_COLUMNS: [&str; 3] = [
    "engine_models_loaded",
    "engine_vram_mib",
    "engine_model_vram_pct",
];

/// The columns [`select`] and [`select_ollama`] can fill, in order.
pub fn columns() -> Vec<String> {
    SERIES
        .iter()
        .map(|s| s.column)
        .chain(TTFT_COLUMNS)
        .chain(OLLAMA_COLUMNS)
        .map(String::from)
        .collect()
}

/// What Ollama's `/api/ps` says: models loaded, their memory on the GPU
/// (`size_vram`), and the smallest share of a model's memory (`size`)
/// that is on the GPU, in percent: under 100, part of that model runs on
/// the CPU, which explains slow numbers.
pub fn select_ollama(ps: &serde_json::Value) -> Readings {
    let mut out = Readings::default();
    let models = ps
        .get("models")
        .and_then(serde_json::Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let bytes = |m: &serde_json::Value, key: &str| m.get(key).and_then(serde_json::Value::as_u64);
    out.set("engine_models_loaded", models.len() as f64);
    let vram: u64 = models.iter().filter_map(|m| bytes(m, "size_vram")).sum();
    out.set("engine_vram_mib", vram as f64 / (1024.0 * 1024.0));
    let share = models
        .iter()
        .filter_map(|m| {
            let size = bytes(m, "size").filter(|&s| s > 0)?;
            Some(100.0 * bytes(m, "size_vram").unwrap_or(0) as f64 / size as f64)
        })
        .reduce(f64::min);
    out.set_some("engine_model_vram_pct", share);
    out
}

/// What one scrape gives: gauge values by column, counters' raw totals by
/// column (a rate needs two scrapes), and which metric fed each column.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Selected {
    /// Gauges, ready for `monitor.csv`.
    pub gauges: Readings,
    /// Counter totals, for [`rates`].
    pub counters: Readings,
    /// `(column, metric name)` for every column found.
    pub sources: Vec<(&'static str, &'static str)>,
    /// The TTFT histogram, cumulative, for [`interval_ttft`].
    pub ttft: Option<Histogram>,
}

/// The engine series in one `/metrics` text.
pub fn select(metrics: &Metrics) -> Selected {
    let mut out = Selected::default();
    for series in SERIES {
        let found = series.names.iter().find_map(|&name| {
            let values = metrics.series(name, &[]).map(|s| s.value);
            let value = match series.combine {
                Combine::Sum => values.reduce(|a, b| a + b),
                Combine::Max => values.reduce(f64::max),
            }?;
            Some((name, value))
        });
        if let Some((name, value)) = found {
            let into = if series.counter {
                &mut out.counters
            } else {
                &mut out.gauges
            };
            into.set(series.column, value);
            out.sources.push((series.column, name));
        }
    }
    let ttft = TTFT_HISTOGRAMS
        .iter()
        .find_map(|&name| Some((name, metrics.histogram(name, &[])?)));
    if let Some((name, histogram)) = ttft {
        out.sources.extend(TTFT_COLUMNS.map(|c| (c, name)));
        out.ttft = Some(histogram);
    }
    out
}

/// Counters' rates per second from `before` to `now`, `seconds` apart; a
/// counter that went down (the engine restarted) gives no rate.
pub fn rates(before: &Readings, now: &Readings, seconds: f64, out: &mut Readings) {
    if seconds <= 0.0 {
        return;
    }
    for (column, value) in now.iter() {
        if let Some(earlier) = before.get(column).filter(|&e| value >= e) {
            out.set(column, (value - earlier) / seconds);
        }
    }
}

/// Why a scrape gave nothing.
enum Failure {
    /// No answer in time: try again next sample.
    TimedOut,
    /// No `/metrics` to read: stop.
    Off(String),
}

/// Scrapes one engine's `/metrics` on the sampler's own runtime.
pub struct Scraper {
    url: String,
    client: reqwest::Client,
    timeout: Duration,
    disabled: Option<String>,
    timed_out: bool,
    last: Option<(Instant, Readings)>,
    last_ttft: Option<Histogram>,
    sources: Vec<(&'static str, &'static str)>,
}

impl Scraper {
    /// A scraper of `<base_url>/metrics`, each scrape given at most
    /// `timeout`.
    pub fn new(base_url: &str, timeout: Duration) -> Scraper {
        Scraper::at(base_url, "/metrics", timeout)
    }

    /// A scraper of an Ollama server's `<base_url>/api/ps`.
    pub fn ollama(base_url: &str, timeout: Duration) -> Scraper {
        Scraper::at(base_url, "/api/ps", timeout)
    }

    fn at(base_url: &str, path: &str, timeout: Duration) -> Scraper {
        Scraper {
            url: format!("{}{path}", base_url.trim_end_matches('/')),
            client: reqwest::Client::new(),
            timeout,
            disabled: None,
            timed_out: false,
            last: None,
            last_ttft: None,
            sources: Vec::new(),
        }
    }

    /// Forget the last counters: rates count from the next scrape.
    pub fn restart(&mut self) {
        self.last = None;
        self.last_ttft = None;
    }

    /// Which metric fed each column at the last scrape, or why the source
    /// is off.
    pub fn describe(&self) -> String {
        if let Some(why) = &self.disabled {
            return why.clone();
        }
        if self.sources.is_empty() {
            return format!("{}: no series llmbench knows", self.url);
        }
        let fed: Vec<String> = self
            .sources
            .iter()
            .map(|(column, name)| format!("{column} from {name}"))
            .collect();
        format!("{}: {}", self.url, fed.join(", "))
    }

    /// The URL it scrapes.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Why it stopped, if it did.
    pub fn disabled(&self) -> Option<&str> {
        self.disabled.as_deref()
    }

    /// Scrape once into `out`. A 404, an unreachable engine or text that
    /// is not Prometheus disables the scraper: the reason is returned, to
    /// be said once, and later calls do nothing. A scrape that times out
    /// (a busy engine) only leaves its cells empty, said the first time.
    pub fn scrape(
        &mut self,
        runtime: &tokio::runtime::Runtime,
        out: &mut Readings,
    ) -> Option<String> {
        if self.disabled.is_some() {
            return None;
        }
        let at = Instant::now();
        let text = match runtime.block_on(self.fetch()) {
            Ok(text) => text,
            Err(Failure::TimedOut) => {
                let first = !std::mem::replace(&mut self.timed_out, true);
                return first.then(|| {
                    format!(
                        "engine metrics: {} took over {:.1} s to answer; that sample's \
                         engine_* cells are empty",
                        self.url,
                        self.timeout.as_secs_f64()
                    )
                });
            }
            Err(Failure::Off(why)) => return self.disable(why),
        };
        if self.url.ends_with("/api/ps") {
            return self.read_ollama(&text, out);
        }
        let metrics = match prometheus::parse(&text) {
            Ok(m) => m,
            Err(e) => return self.disable(format!("not Prometheus text: {e}")),
        };
        let selected = select(&metrics);
        self.sources.clone_from(&selected.sources);
        for (column, value) in selected.gauges.iter() {
            out.set(column, value);
        }
        if let Some((then, before)) = &self.last {
            let seconds = at.saturating_duration_since(*then).as_secs_f64();
            rates(before, &selected.counters, seconds, out);
        }
        self.last = Some((at, selected.counters));
        if let (Some(before), Some(now)) = (&self.last_ttft, &selected.ttft) {
            if let Some((p50, p99)) = interval_ttft(before, now) {
                out.set(TTFT_COLUMNS[0], p50);
                out.set(TTFT_COLUMNS[1], p99);
            }
        }
        self.last_ttft = selected.ttft;
        None
    }

    fn read_ollama(&mut self, text: &str, out: &mut Readings) -> Option<String> {
        let ps = match serde_json::from_str(text) {
            Ok(ps) => ps,
            Err(e) => return self.disable(format!("not JSON: {e}")),
        };
        for (column, value) in select_ollama(&ps).iter() {
            out.set(column, value);
        }
        self.sources = OLLAMA_COLUMNS.iter().map(|&c| (c, "/api/ps")).collect();
        None
    }

    async fn fetch(&self) -> Result<String, Failure> {
        let failed = |e: reqwest::Error, what: &str| {
            if e.is_timeout() {
                Failure::TimedOut
            } else {
                Failure::Off(format!("{what}: {e}"))
            }
        };
        let response = self
            .client
            .get(&self.url)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| failed(e, "unreachable"))?;
        let status = response.status();
        if !status.is_success() {
            return Err(Failure::Off(format!("HTTP {status}")));
        }
        response
            .text()
            .await
            .map_err(|e| failed(e, "cannot read the body"))
    }

    fn disable(&mut self, why: String) -> Option<String> {
        let message = format!(
            "engine metrics off: {} answered {why}; its engine_* series stay empty",
            self.url
        );
        self.disabled = Some(message.clone());
        Some(message)
    }
}

#[cfg(test)]
#[path = "engine_metrics_tests.rs"]
mod tests;
