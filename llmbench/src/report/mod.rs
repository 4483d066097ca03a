//! The run directory and the files in it: `requests.jsonl` (one record per
//! request, appended and flushed as each finishes), `summary.json`
//! (rewritten aside and renamed after every trial, so it is never half
//! written), `run.json` (what the run was) and the reports written from
//! them at the end: `summary.csv`, `<engine>_results.csv` and `.json`,
//! `report.md`, `report.html`. [`rebuild`] writes the reports again for any run
//! directory, one whose process died included.

mod analysis;
mod chart_data;
mod clock;
mod csv;
mod files;
pub mod histograms;
mod html;
mod markdown;
mod merge;
pub mod meta;
#[cfg(test)]
mod snapshot_tests;
mod svg;
mod writers;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

pub(crate) use clock::{rfc3339, run_stamp};
pub use files::Written;
pub(crate) use files::{load_meta, load_run, write_reports};
pub use histograms::{HistogramFile, HistogramSet};
pub use merge::{merge, Merged, START_SPREAD_WARNING_S};

use crate::error::{Error, Result};
use crate::measure::{RequestRecord, Summary};

/// Version of the JSON outputs' layout; bumped on any incompatible change.
pub const SCHEMA: u32 = 1;

/// Where the outputs of one run go.
#[derive(Debug)]
pub(crate) struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// Make a new, unique `<root>/<YYYYMMDD_HHMMSS>[_N]` directory.
    pub(crate) fn create(root: &Path, now: SystemTime) -> Result<RunDir> {
        fs::create_dir_all(root).map_err(|e| {
            Error::io(
                format!("creating the output directory {}", root.display()),
                e,
            )
        })?;
        let stamp = run_stamp(now);
        for n in 1u32.. {
            let name = if n == 1 {
                stamp.clone()
            } else {
                format!("{stamp}_{n}")
            };
            let path = root.join(name);
            match fs::create_dir(&path) {
                Ok(()) => return Ok(RunDir { path }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 1000 => continue,
                Err(e) => {
                    return Err(Error::io(
                        format!("creating the run directory {}", path.display()),
                        e,
                    ))
                }
            }
        }
        unreachable!("the loop returns within 1000 attempts")
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Open `requests.jsonl` for appending.
    pub(crate) fn requests(&self) -> Result<JsonlWriter> {
        JsonlWriter::open(&self.path.join("requests.jsonl"))
    }

    /// Write `run.json` aside, then rename it into place.
    pub(crate) fn write_meta(&self, meta: &meta::RunMeta) -> Result<()> {
        write_atomically(&self.path.join("run.json"), |w| {
            serde_json::to_writer_pretty(&mut *w, meta).map_err(io::Error::from)?;
            w.write_all(b"\n")
        })
    }

    /// Write `summary.json` aside, then rename it into place.
    pub(crate) fn write_summary(&self, summary: &RunData) -> Result<()> {
        let path = self.path.join("summary.json");
        write_atomically(&path, |w| {
            serde_json::to_writer_pretty(&mut *w, summary).map_err(io::Error::from)?;
            w.write_all(b"\n")
        })
    }
}

/// Write every report of the run directory `dir` again from its
/// `summary.json`, `requests.jsonl` and `run.json` (`llmbench report`). A
/// run whose process died still gets the reports of what it completed: a
/// result set missing from `summary.json` is rebuilt from its records, and
/// the notes say so.
///
/// ```no_run
/// let written = llmbench::report::rebuild(std::path::Path::new("target/llmbench/runs/20261207_120000"))?;
/// for note in &written.notes {
///     eprintln!("note: {note}");
/// }
/// # Ok::<(), llmbench::Error>(())
/// ```
pub fn rebuild(dir: &Path) -> Result<Written> {
    if !dir.join("requests.jsonl").is_file() && !dir.join("summary.json").is_file() {
        return Err(Error::io(
            format!("reading the run directory {}", dir.display()),
            io::Error::new(
                io::ErrorKind::NotFound,
                "neither requests.jsonl nor summary.json is there; is it a run directory?",
            ),
        ));
    }
    let (run, mut notes) = load_run(dir)?;
    let meta = load_meta(dir);
    let mut written = write_reports(dir, &run, meta.as_ref())?;
    notes.append(&mut written.notes);
    written.notes = notes;
    Ok(written)
}

/// Write `path` by writing a temporary file beside it and renaming it over.
pub(crate) fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut io::BufWriter<File>) -> io::Result<()>,
) -> Result<()> {
    // `summary.json.tmp`: appended, so summary.json and summary.csv never
    // share a temporary.
    let tmp = {
        let mut name = path.as_os_str().to_owned();
        name.push(".tmp");
        PathBuf::from(name)
    };
    let result = (|| {
        let mut w = io::BufWriter::new(File::create(&tmp)?);
        write(&mut w)?;
        w.into_inner()
            .map_err(io::IntoInnerError::into_error)?
            .sync_all()?;
        fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        Error::io(format!("writing {}", path.display()), e)
    })
}

/// Appends one JSON line per record; each line is written with one `write`
/// of a complete line, so a crash leaves only whole lines behind, and a
/// write that fails part way (disk full) is cut back to the last whole line.
#[derive(Debug)]
pub(crate) struct JsonlWriter {
    file: File,
    path: PathBuf,
    line: Vec<u8>,
    /// The file's length after the last whole line: a failed write (disk
    /// full, file too large) is cut back to it.
    len: u64,
}

impl JsonlWriter {
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        // A device (`/dev/full`) or a file whose length cannot be read:
        // nothing to cut back to.
        let len = file.metadata().map_or(0, |m| m.len());
        Ok(JsonlWriter {
            file,
            path: path.to_path_buf(),
            line: Vec::with_capacity(4096),
            len,
        })
    }

    /// Append `record` as one line and hand it to the OS.
    pub(crate) fn append(&mut self, record: &RequestRecord) -> Result<()> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, record).map_err(|e| {
            Error::io(
                format!("encoding a record for {}", self.path.display()),
                e.into(),
            )
        })?;
        self.line.push(b'\n');
        match self
            .file
            .write_all(&self.line)
            .and_then(|()| self.file.flush())
        {
            Ok(()) => {
                self.len += self.line.len() as u64;
                Ok(())
            }
            Err(e) => {
                // A full disk takes part of the line: cut it off, so the
                // file still holds only whole records (best effort: on a
                // device there is nothing to cut).
                let _ = self.file.set_len(self.len);
                Err(Error::io(
                    format!("appending to {}", self.path.display()),
                    e,
                ))
            }
        }
    }
}

/// How a trial ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TrialStatus {
    /// It ran to the end, at least one request succeeded and every SLO
    /// threshold held.
    Ok,
    /// It could not run, every request failed, or an SLO threshold missed.
    Failed,
    /// Ctrl-C or SIGTERM stopped it.
    Interrupted,
}

/// One scenario x engine in `summary.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct TrialSummary {
    pub scenario: String,
    /// The step of a sequence (`Load::steps`, `.sweep`) these figures are
    /// for, as its level ("4 users", "2 req/s"); absent for a single load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    pub description: String,
    pub engine: String,
    pub engine_kind: String,
    pub engine_url: String,
    /// The command line the harness started the engine with (secrets
    /// redacted); absent for an engine it did not start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine_command: Option<String>,
    /// The started engine's process id; absent for an engine the harness
    /// did not start or could not start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine_pid: Option<u32>,
    pub model: String,
    pub mode: crate::workload::Mode,
    pub max_tokens: u32,
    pub users: u32,
    pub duration_limit_s: Option<f64>,
    pub request_limit: Option<u64>,
    pub seed: u64,
    pub started_at: String,
    pub status: TrialStatus,
    /// Why the trial failed or was interrupted: for missed SLOs, one line
    /// per missed threshold.
    pub error: Option<String>,
    /// What the output cost, when the engine has a `price_per_hour`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<Cost>,
    /// The use case and how close prompts came to their lengths, for a
    /// preset or a workload with fitted lengths.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<crate::workload::WorkloadSummary>,
    /// The shard these figures are from (`--shard`), or, merged, every
    /// shard's; `seed` above is then the scenario's own, before deriving.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<meta::ShardInfo>,
    /// The figures, with the SLO thresholds (`slos`), each with its verdict,
    /// and `goodput`.
    #[serde(flatten)]
    pub summary: Summary,
}

/// Cost figures from an engine's price per hour and a result set's output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    /// The engine's price per hour (any currency).
    pub price_per_hour: f64,
    /// The price of the result set's duration (`duration_s`).
    pub run_cost: f64,
    /// `run_cost` per million output tokens; `None` without output.
    pub per_million_output_tokens: Option<f64>,
    /// Output tokens per unit of money; `None` for a free engine.
    pub output_tokens_per_unit: Option<f64>,
}

impl Cost {
    /// The cost of `summary`'s output at `price_per_hour`.
    pub fn new(price_per_hour: f64, summary: &Summary) -> Self {
        let run_cost = price_per_hour * summary.duration_s / 3600.0;
        let tokens = summary.output_tokens as f64;
        Cost {
            price_per_hour,
            run_cost,
            per_million_output_tokens: (tokens > 0.0).then(|| run_cost / (tokens / 1e6)),
            output_tokens_per_unit: (run_cost > 0.0).then(|| tokens / run_cost),
        }
    }
}

/// What a capacity search of one scenario x engine found.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct CapacityEntry {
    pub scenario: String,
    pub engine: String,
    #[serde(flatten)]
    pub result: crate::load::CapacityResult,
}

/// The whole of `summary.json`, and what every report is written from.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct RunData {
    pub schema: u32,
    pub llmbench_version: String,
    pub started_at: String,
    pub trials: Vec<TrialSummary>,
    /// Per sequence of steps, the steps side by side and the saturation point.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scaling: Vec<crate::measure::ScalingTable>,
    /// Per capacity search, what it found.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capacity: Vec<CapacityEntry>,
    /// Per scenario run streamed and not (`Bench::compare_streaming`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub streaming: Vec<crate::measure::StreamingComparison>,
    /// Per list of prompt lengths, TTFT against the length.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prompt_scaling: Vec<crate::measure::PromptScaling>,
}

impl RunData {
    /// An empty run started at `started_at`.
    pub(crate) fn new(started_at: String) -> Self {
        RunData {
            schema: SCHEMA,
            llmbench_version: env!("CARGO_PKG_VERSION").to_string(),
            started_at,
            ..RunData::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_root(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("llmbench-report-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn run_dirs_are_unique_within_one_second() {
        let root = temp_root("unique");
        let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_764_000_000);
        let a = RunDir::create(&root, now).unwrap();
        let b = RunDir::create(&root, now).unwrap();
        assert_ne!(a.path(), b.path());
        assert!(
            a.path().ends_with("20251124_160000"),
            "{}",
            a.path().display()
        );
        assert!(b.path().ends_with("20251124_160000_2"));
        fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn failed_atomic_write_leaves_the_old_file() {
        let root = temp_root("atomic");
        fs::create_dir_all(&root).unwrap();
        let path = root.join("summary.json");
        write_atomically(&path, |w| w.write_all(b"old")).unwrap();
        let err = write_atomically(&path, |w| {
            w.write_all(b"half")?;
            Err(io::Error::other("disk full"))
        })
        .unwrap_err();
        assert!(err.chain().contains("disk full"), "{}", err.chain());
        assert!(err.to_string().contains("summary.json"));
        assert_eq!(fs::read_to_string(&path).unwrap(), "old");
        assert!(!root.join("summary.json.tmp").exists());
        assert_eq!(fs::read_dir(&root).unwrap().count(), 1, "no temporary left");
        fs::remove_dir_all(root).unwrap();
    }
}
