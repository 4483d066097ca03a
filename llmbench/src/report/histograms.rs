//! `histograms.json`: each result set's lossless aggregate (exact counts
//! and moments, HDR V2 histograms) beside `summary.json`, so the run
//! directories of shards merge into figures equal to those of one run.

use std::io::{self, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{write_atomically, RunDir, SCHEMA};
use crate::error::{Error, Result};
use crate::measure::AggregateState;

/// The file's name in a run directory.
pub const FILE: &str = "histograms.json";

/// One result set's aggregate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistogramSet {
    /// The scenario.
    pub scenario: String,
    /// The step of a sequence, if it is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// The engine's label.
    pub engine: String,
    /// The wall-clock time of the trial's t0, ms since the Unix epoch:
    /// `aggregate`'s times count from it.
    pub t0_unix_ms: f64,
    /// Counts, moments and histograms.
    pub aggregate: AggregateState,
}

/// The whole of `histograms.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HistogramFile {
    /// Layout version.
    pub schema: u32,
    /// One per result set, in the order they ran.
    pub sets: Vec<HistogramSet>,
}

impl RunDir {
    /// Write `histograms.json` aside, then rename it into place.
    pub(crate) fn write_histograms(&self, sets: &[HistogramSet]) -> Result<()> {
        write_file(self.path(), sets)
    }
}

/// Write `dir/histograms.json` of `sets`.
pub(crate) fn write_file(dir: &Path, sets: &[HistogramSet]) -> Result<()> {
    let file = HistogramFile {
        schema: SCHEMA,
        sets: sets.to_vec(),
    };
    write_atomically(&dir.join(FILE), |w| {
        serde_json::to_writer(&mut *w, &file).map_err(io::Error::from)?;
        w.write_all(b"\n")
    })
}

/// Read `dir/histograms.json`.
pub fn load(dir: &Path) -> Result<HistogramFile> {
    let path = dir.join(FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Error::io(
            format!(
                "reading {} (a run directory that never finished a trial in bench mode \
                 has none, and cannot be merged exactly)",
                path.display()
            ),
            e,
        )
    })?;
    serde_json::from_str(&text).map_err(|e| {
        Error::io(
            format!("reading {}: not a histograms file", path.display()),
            e.into(),
        )
    })
}
