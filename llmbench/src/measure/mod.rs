//! What was measured: one [`RequestRecord`] per request, and their
//! aggregation into a [`Summary`] per scenario and engine. Definitions of every
//! metric are in `docs/metrics.md`.

pub(crate) mod client_cpu;
mod phases;
mod record;
mod samples;
mod scaling;
mod slo_eval;
mod streaming;
mod summary;
#[cfg(test)]
pub(crate) mod test_support;
mod use_case;
pub mod warnings;

pub use client_cpu::ClientCpu;
pub use phases::{PhaseSummary, Recovery, RECOVERED_WITHIN};
pub use record::{
    Exchange, LiveText, RecordContext, RequestError, RequestErrorKind, RequestRecord, ServerTimings,
};
pub use samples::{Reservoir, Samples, Second, RESERVOIR};
pub use scaling::{scaling_table, Saturation, ScalingRow, ScalingTable};
pub use slo_eval::SloCheck;
pub use streaming::{StreamingComparison, StreamingFigures};
pub use summary::{
    Aggregate, AggregateState, Distribution, MetricState, ServerSummary, Summary, COVERED_METRICS,
};
pub use use_case::{
    Drift, Jitter, LineFit, PromptPoint, PromptProcessing, PromptScaling, Slope, TimingSource,
    UseCaseSummary, LONG_GENERATION_GAPS, MIN_FIT_SPAN,
};

use std::time::Duration;

/// Serialize a duration as milliseconds (a float), the unit of every output.
pub(crate) fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(ms(*d))
}

/// A duration in milliseconds as a float.
pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
