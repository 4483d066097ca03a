//! What the machine and the engine did during a run: the host and the
//! processes ([`host`]), the GPUs ([`gpu`]) and the engine's own `/metrics`
//! ([`engine_metrics`], read with [`prometheus`]), sampled on one thread at
//! an interval into `monitor.csv` and summed up per trial in `summary.json`,
//! with how throughput and TTFT moved with them ([`correlation`]).

pub mod correlation;
mod csv;
pub mod engine_metrics;
pub mod gpu;
pub mod host;
pub mod prometheus;
pub(crate) mod sampler;
pub mod summary;

pub use summary::{MonitorSummary, SeriesStats};

use std::collections::BTreeMap;

/// The values of one sample, by column name. A value that is not a finite
/// number is left out: an empty cell.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Readings(BTreeMap<String, f64>);

impl Readings {
    /// Set `column` to `value` (left out when not finite).
    pub fn set(&mut self, column: &str, value: f64) {
        if value.is_finite() {
            self.0.insert(column.to_string(), value);
        }
    }

    /// Set `column` when there is a value.
    pub fn set_some(&mut self, column: &str, value: Option<f64>) {
        if let Some(v) = value {
            self.set(column, v);
        }
    }

    /// The value of `column`, if it has one.
    pub fn get(&self, column: &str) -> Option<f64> {
        self.0.get(column).copied()
    }

    /// Whether no column has a value.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every value, by column name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f64)> {
        self.0.iter().map(|(k, v)| (k.as_str(), *v))
    }
}
