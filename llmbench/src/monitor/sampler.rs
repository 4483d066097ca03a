//! The sampler: during each trial, one thread of its own (never the
//! client's runtime) reads every source at an interval, writes a row of
//! `monitor.csv` per sample with its time since the trial's `t0` (the
//! instant the requests' offsets count from), and sums the trial up.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::correlation;
use super::csv::{self, CsvFile};
use super::engine_metrics::{self, Scraper};
use super::gpu::GpuMonitor;
use super::host::{self, EngineProcess, HostSource};
use super::summary::{Accumulator, MonitorSummary};
use super::Readings;
use crate::error::{Error, Result};

/// The longest a `/metrics` scrape may take.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(2);

/// The monitor of one run: its sources, and `monitor.csv`, whose columns
/// are fixed when the run starts.
pub struct Monitor {
    interval: Duration,
    host: HostSource,
    gpus: GpuMonitor,
    columns: Vec<String>,
    csv: Option<CsvFile>,
    scrapers: BTreeMap<String, Scraper>,
    runtime: tokio::runtime::Runtime,
}

/// The run's monitor between trials, handed to each trial's sampler thread
/// and back.
pub type Home = Arc<Mutex<Option<Monitor>>>;

impl Monitor {
    /// Start the run's monitor: sample every `interval` into
    /// `<dir>/monitor.csv`, with the GPUs of `gpus`.
    ///
    /// # Errors
    /// The sampler's runtime cannot start, or `monitor.csv` cannot be
    /// created.
    pub fn start(dir: &Path, interval: Duration, gpus: GpuMonitor) -> Result<Monitor> {
        let host = HostSource::new();
        let mut columns = host::columns(host.cores());
        columns.extend(gpus.columns());
        columns.extend(engine_metrics::columns());
        let csv = CsvFile::create(&dir.join("monitor.csv"), &columns)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io("starting the monitor's runtime", e))?;
        Ok(Monitor {
            interval,
            host,
            gpus,
            columns,
            csv: Some(csv),
            scrapers: BTreeMap::new(),
            runtime,
        })
    }

    /// The columns of `monitor.csv` after `trial` and `t_s`.
    #[cfg(test)]
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    fn sample(&mut self, trial: &Trial, t0: Instant, kept: &mut Kept) {
        let Kept { acc, notes, rows } = kept;
        let mut readings = Readings::default();
        self.host.sample(&mut readings);
        self.gpus.sample(&mut readings);
        if let Some(scraper) = self.scrapers.get_mut(&trial.engine_label) {
            notes.extend(scraper.scrape(&self.runtime, &mut readings));
        }
        notes.extend(self.gpus.take_notes());
        let t_s = Instant::now().saturating_duration_since(t0).as_secs_f64();
        acc.add(&readings);
        let mut correlated = Readings::default();
        for (column, v) in readings.iter().filter(|(c, _)| correlation::correlated(c)) {
            correlated.set(column, v);
        }
        rows.push((t_s, correlated));
        if let Some(csv) = self.csv.as_mut() {
            if let Err(e) = csv.write(&csv::row(&trial.name, t_s, &self.columns, &readings)) {
                notes.push(format!("monitor.csv is no longer written: {}", e.chain()));
                self.csv = None;
            }
        }
    }
}

/// What a trial's sampler keeps: the figures, the notes, and the rows of
/// the correlated series.
#[derive(Default)]
struct Kept {
    acc: Accumulator,
    notes: Vec<String>,
    rows: Rows,
}

/// The rows of the correlated series, `t_s` first, for
/// [`correlation::correlate`].
pub type Rows = Vec<(f64, Readings)>;

/// What a trial's sampler needs to know.
pub struct Trial {
    /// The trial's name in `monitor.csv` (`scenario/engine`).
    pub name: String,
    /// The engine's label (one `/metrics` source per engine and run).
    pub engine_label: String,
    /// The engine's base URL (`/metrics` is scraped under it).
    pub engine_url: String,
    /// The engine's process.
    pub engine: EngineProcess,
    /// An Ollama server: its `/api/ps` is read instead of `/metrics`.
    pub ollama: bool,
}

/// A trial's sampler thread.
pub struct Sampling {
    start: mpsc::Sender<Instant>,
    stop: mpsc::Sender<Instant>,
    thread: JoinHandle<Option<(MonitorSummary, Rows)>>,
}

/// Start the sampler thread of `trial`, with the run's monitor from
/// `home`; `None` when the run has no monitor. It samples from
/// [`Sampling::begin`] on.
pub fn spawn(home: &Home, trial: Trial) -> Option<Sampling> {
    let monitor = home.lock().unwrap_or_else(PoisonError::into_inner).take()?;
    let (start_tx, start_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = mpsc::channel();
    let back = Arc::clone(home);
    let thread = std::thread::Builder::new()
        // 15 characters: Linux keeps no more of a thread name.
        .name("llmbench-sample".into())
        .spawn(move || {
            let mut monitor = monitor;
            let summary = start_rx
                .recv()
                .ok()
                .map(|t0| run(&mut monitor, &trial, t0, &stop_rx));
            *back.lock().unwrap_or_else(PoisonError::into_inner) = Some(monitor);
            summary
        });
    match thread {
        Ok(thread) => Some(Sampling {
            start: start_tx,
            stop: stop_tx,
            thread,
        }),
        Err(e) => {
            eprintln!("llmbench: monitor off: cannot start its thread: {e}");
            None
        }
    }
}

impl Sampling {
    /// Sample from `t0` on.
    pub fn begin(&self, t0: Instant) {
        let _ = self.start.send(t0);
    }

    /// Take a last sample, stop, and sum the trial up; with the rows of
    /// the correlated series.
    pub fn finish(self) -> Option<(MonitorSummary, Rows)> {
        let _ = self.stop.send(Instant::now());
        drop(self.start);
        self.thread.join().ok().flatten()
    }
}

/// Sample every interval from `t0` until `stop`, then once more.
fn run(
    monitor: &mut Monitor,
    trial: &Trial,
    t0: Instant,
    stop: &mpsc::Receiver<Instant>,
) -> (MonitorSummary, Rows) {
    monitor.host.set_engine(trial.engine);
    let mut scratch = Readings::default();
    // Counts CPU and bytes from here on, not from the trial before.
    monitor.host.sample(&mut scratch);
    let scraper = monitor
        .scrapers
        .entry(trial.engine_label.clone())
        .or_insert_with(|| {
            if trial.ollama {
                Scraper::ollama(&trial.engine_url, SCRAPE_TIMEOUT)
            } else {
                Scraper::new(&trial.engine_url, SCRAPE_TIMEOUT)
            }
        });
    scraper.restart();
    let mut kept = Kept::default();
    let interval = monitor.interval;
    let mut next = t0 + interval;
    loop {
        let wait = next.saturating_duration_since(Instant::now());
        match stop.recv_timeout(wait) {
            Err(RecvTimeoutError::Timeout) => {
                monitor.sample(trial, t0, &mut kept);
                next += interval;
                // Fell behind (a slow scrape): skip, never burst.
                let now = Instant::now();
                if next < now {
                    next = now + interval;
                }
            }
            Ok(_) | Err(RecvTimeoutError::Disconnected) => {
                // The tail of the trial, unless it was just sampled.
                let since = next
                    .checked_sub(interval)
                    .map_or(interval, |at| at.elapsed());
                if kept.acc.samples() == 0 || since >= interval / 4 {
                    monitor.sample(trial, t0, &mut kept);
                }
                break;
            }
        }
    }
    let Kept { acc, notes, rows } = kept;
    for note in &notes {
        eprintln!("llmbench: {note}");
    }
    let engine_metrics = match monitor.scrapers.get(&trial.engine_label) {
        Some(s) => s.describe(),
        None => String::new(),
    };
    let summary = MonitorSummary {
        interval_s: interval.as_secs_f64(),
        samples: acc.samples(),
        gpu: monitor.gpus.status().to_string(),
        engine_process: trial.engine.describe(),
        engine_metrics,
        series: acc.stats(),
        correlation: BTreeMap::new(),
        notes,
    };
    (summary, rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::gpu::{GpuDevice, GpuError, GpuMetric, GpuSource};

    /// One GPU whose temperature is too high.
    struct HotGpu;

    impl GpuSource for HotGpu {
        fn devices(&mut self) -> std::result::Result<Vec<GpuDevice>, String> {
            Ok(vec![GpuDevice {
                index: 0,
                name: "fake".into(),
            }])
        }

        fn query(&mut self, _: u32, metric: GpuMetric) -> std::result::Result<f64, GpuError> {
            Ok(if metric == GpuMetric::Temperature {
                90.0
            } else {
                1.0
            })
        }
    }

    #[test]
    fn a_trial_writes_rows_of_every_source_and_sums_them_up() {
        // No simulator here: its threads would blur the CPU split that
        // `client_cpu`'s own tests check in this process. The simulator's
        // series are checked end to end (tests/harness/monitor.rs).
        let dir = std::env::temp_dir().join(format!("llmbench-sampler-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let interval = Duration::from_millis(20);
        let gpus = GpuMonitor::start(Ok(Box::new(HotGpu)));
        assert_eq!(gpus.status(), "1 GPU(s): 0 fake");
        let monitor = Monitor::start(&dir, interval, gpus).expect("monitor");
        let columns = monitor.columns().to_vec();
        let home: Home = Arc::new(Mutex::new(Some(monitor)));
        // Nothing listens on port 9 of loopback: no /metrics.
        let trial = |name: &str| Trial {
            name: name.into(),
            engine_label: "gone".into(),
            engine_url: "http://127.0.0.1:9".into(),
            engine: EngineProcess::Unknown,
            ollama: false,
        };
        let sampling = spawn(&home, trial("chat/gone")).expect("started");
        assert!(home.lock().expect("lock").is_none(), "the thread holds it");
        sampling.begin(Instant::now());
        let (m, rows) = sampling.finish().expect("summary");
        assert!(home.lock().expect("lock").is_some(), "handed back");
        assert_eq!(rows.len() as u64, m.samples);
        assert!(rows
            .iter()
            .all(|(_, r)| r.get("gpu0_util_pct") == Some(1.0)));
        assert!(rows.iter().all(|(_, r)| r.get("host_cpu_pct").is_none()));
        assert!(m.samples >= 1);
        for column in ["host_cpu_pct", "client_rss_mib", "gpu0_temp_c"] {
            assert!(m.series.contains_key(column), "{column}: {m:?}");
        }
        assert!(!m.series.contains_key("engine_requests_running"));
        assert!(m.engine_metrics.starts_with("engine metrics off"), "{m:?}");
        assert_eq!(m.notes.len(), 1, "{m:?}");
        assert!(m.engine_process.starts_with("not started by llmbench"));
        assert_eq!(crate::monitor::summary::alerts(&m).len(), 1, "the hot GPU");

        // A second trial of the same engine: same columns, no second warning.
        let sampling = spawn(&home, trial("rag/gone")).expect("started");
        sampling.begin(Instant::now());
        let (m, _) = sampling.finish().expect("summary");
        assert!(m.notes.is_empty(), "{m:?}");

        let text = std::fs::read_to_string(dir.join("monitor.csv")).expect("monitor.csv");
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some(csv::header(&columns).trim_end()));
        let rows: Vec<&str> = lines.collect();
        assert!(rows.iter().any(|r| r.starts_with("chat/gone,")));
        assert!(rows.iter().any(|r| r.starts_with("rag/gone,")));
        for row in rows {
            assert_eq!(row.split(',').count(), columns.len() + 2, "{row}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
