//! The run directory and the files in it: `requests.jsonl` (one record per
//! request, appended and flushed as each finishes) and `summary.json`
//! (rewritten aside and renamed after every trial, so it is never half
//! written).

mod clock;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;

pub(crate) use clock::{rfc3339, run_stamp};

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

    /// Write `summary.json` aside, then rename it into place.
    pub(crate) fn write_summary(&self, summary: &RunSummary<'_>) -> Result<()> {
        let path = self.path.join("summary.json");
        write_atomically(&path, |w| {
            serde_json::to_writer_pretty(&mut *w, summary).map_err(io::Error::from)?;
            w.write_all(b"\n")
        })
    }
}

/// Write `path` by writing a temporary file beside it and renaming it over.
pub(crate) fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut io::BufWriter<File>) -> io::Result<()>,
) -> Result<()> {
    let tmp = path.with_extension("tmp");
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
/// of a complete line, so a crash leaves only whole lines behind.
#[derive(Debug)]
pub(crate) struct JsonlWriter {
    file: File,
    path: PathBuf,
    line: Vec<u8>,
}

impl JsonlWriter {
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        Ok(JsonlWriter {
            file,
            path: path.to_path_buf(),
            line: Vec::with_capacity(4096),
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
        self.file
            .write_all(&self.line)
            .and_then(|()| self.file.flush())
            .map_err(|e| Error::io(format!("appending to {}", self.path.display()), e))
    }
}

/// How a trial ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
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
#[derive(Clone, Debug, Serialize)]
pub(crate) struct TrialSummary {
    pub scenario: String,
    /// The step of a sequence (`Load::steps`, `.sweep`) these figures are
    /// for, as its level ("4 users", "2 req/s"); absent for a single load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    pub description: String,
    pub engine: String,
    pub engine_kind: &'static str,
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
    /// The figures, with the SLO thresholds (`slos`), each with its verdict,
    /// and `goodput`.
    #[serde(flatten)]
    pub summary: Summary,
}

/// What a capacity search of one scenario x engine found.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct CapacityEntry {
    pub scenario: String,
    pub engine: String,
    #[serde(flatten)]
    pub result: crate::load::CapacityResult,
}

/// The whole of `summary.json`.
#[derive(Debug, Serialize)]
pub(crate) struct RunSummary<'a> {
    pub schema: u32,
    pub llmbench_version: &'static str,
    pub started_at: &'a str,
    pub trials: &'a [TrialSummary],
    /// Per sequence of steps, the steps side by side and the saturation point.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub scaling: &'a [crate::measure::ScalingTable],
    /// Per capacity search, what it found.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub capacity: &'a [CapacityEntry],
    /// Per scenario run streamed and not (`Bench::compare_streaming`).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub streaming: &'a [crate::measure::StreamingComparison],
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
        assert!(!path.with_extension("tmp").exists());
        fs::remove_dir_all(root).unwrap();
    }
}
