//! The CSV files: `summary.csv` (one row per scenario x engine x step) and
//! `<engine>_results.csv` (one row per request). Pure writers to any
//! `impl Write`; the csv crate quotes prompts and messages with commas,
//! quotes and newlines. Units are in the header names (`_ms`, `_per_sec`).

use std::io::Write;

use super::TrialSummary;
use crate::error::{Error, Result};
use crate::measure::RequestRecord;

/// The columns of `summary.csv`.
pub const SUMMARY_COLUMNS: [&str; 33] = [
    "engine",
    "model",
    "scenario",
    "step",
    "status",
    "requests",
    "successes",
    "success_rate",
    "mean_latency_ms",
    "p50_latency_ms",
    "p95_latency_ms",
    "p99_latency_ms",
    "mean_ttft_ms",
    "p50_ttft_ms",
    "p99_ttft_ms",
    "mean_itl_ms",
    "p50_itl_ms",
    "mean_tpot_ms",
    "mean_tokens_per_sec",
    "total_tokens",
    "prompt_tokens",
    "output_tokens",
    "request_throughput_per_sec",
    "output_token_throughput_per_sec",
    "goodput_per_sec",
    "slo_attainment",
    "duration_s",
    "errors",
    "cost_per_million_output_tokens",
    "output_tokens_per_unit_cost",
    "p50_ttfs_ms",
    "p50_sustained_tokens_per_sec",
    "ttft_ms_per_1k_prompt_tokens",
];

/// The columns of `<engine>_results.csv`.
pub const RESULT_COLUMNS: [&str; 32] = [
    "request_id",
    "engine",
    "model",
    "scenario",
    "step",
    "prompt_tokens",
    "completion_tokens",
    "total_duration_ms",
    "ttft_ms",
    "tokens_per_sec",
    "success",
    "error_message",
    "error_kind",
    "http_status",
    "itl_mean_ms",
    "tpot_ms",
    "ttfb_ms",
    "scheduled_ms",
    "sent_ms",
    "schedule_lag_ms",
    "completion_tokens_estimated",
    "content_chunks",
    "finish_reason",
    "slo_met",
    "warmup",
    "retries",
    "server_queue_ms",
    "server_prompt_eval_ms",
    "server_eval_ms",
    "server_load_ms",
    "cached_prompt_tokens",
    "ttfs_ms",
];

fn csv_error(what: &str, e: csv::Error) -> Error {
    Error::io(
        format!("writing {what}"),
        std::io::Error::other(e.to_string()),
    )
}

/// A number, or an empty cell for a missing one.
fn num(v: Option<f64>) -> String {
    v.map(|v| format!("{v}")).unwrap_or_default()
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// Write `summary.csv` for `trials`.
pub fn write_summary<W: Write>(trials: &[TrialSummary], out: W) -> Result<()> {
    let mut w = csv::Writer::from_writer(out);
    let err = |e| csv_error("summary.csv", e);
    w.write_record(SUMMARY_COLUMNS).map_err(err)?;
    for t in trials {
        let s = &t.summary;
        let e2e = s.e2e_latency.as_ref();
        let ttft = s.ttft.as_ref();
        let errors: Vec<String> = s
            .errors_by_kind
            .iter()
            .map(|(k, n)| format!("{k}={n}"))
            .collect();
        let status = serde_json::to_value(t.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let row = [
            t.engine.clone(),
            t.model.clone(),
            t.scenario.clone(),
            t.step.clone().unwrap_or_default(),
            status,
            s.requests.to_string(),
            s.successes.to_string(),
            format!("{}", s.success_rate),
            num(e2e.map(|d| d.mean)),
            num(e2e.map(|d| d.p50)),
            num(e2e.map(|d| d.p95)),
            num(e2e.map(|d| d.p99)),
            num(ttft.map(|d| d.mean)),
            num(ttft.map(|d| d.p50)),
            num(ttft.map(|d| d.p99)),
            num(s.itl.as_ref().map(|d| d.mean)),
            num(s.itl.as_ref().map(|d| d.p50)),
            num(s.tpot.as_ref().map(|d| d.mean)),
            num(s.output_tps.as_ref().map(|d| d.mean)),
            (s.prompt_tokens + s.output_tokens).to_string(),
            s.prompt_tokens.to_string(),
            s.output_tokens.to_string(),
            format!("{}", s.request_throughput),
            format!("{}", s.output_token_throughput),
            num(s.goodput),
            num(s.slo_attainment),
            format!("{}", s.duration_s),
            errors.join(" "),
            num(t.cost.as_ref().and_then(|c| c.per_million_output_tokens)),
            num(t.cost.as_ref().and_then(|c| c.output_tokens_per_unit)),
            num(s.use_case.ttfs.as_ref().map(|d| d.p50)),
            num(s.use_case.sustained_output_tps.as_ref().map(|d| d.p50)),
            num(s
                .use_case
                .ttft_vs_prompt_tokens
                .as_ref()
                .map(|l| l.ms_per_1k_tokens)),
        ];
        w.write_record(&row).map_err(err)?;
    }
    w.flush().map_err(|e| Error::io("writing summary.csv", e))
}

/// Writes `<engine>_results.csv` one record at a time.
pub struct ResultsCsv<W: Write> {
    w: csv::Writer<W>,
    name: String,
}

impl<W: Write> ResultsCsv<W> {
    /// Start the file `name` (for messages) on `out`, header first.
    pub fn new(out: W, name: &str) -> Result<Self> {
        let mut w = csv::Writer::from_writer(out);
        w.write_record(RESULT_COLUMNS)
            .map_err(|e| csv_error(name, e))?;
        Ok(ResultsCsv {
            w,
            name: name.to_string(),
        })
    }

    /// One row for `r`.
    pub fn add(&mut self, r: &RequestRecord) -> Result<()> {
        let err = r.error.as_ref();
        let sv = &r.server;
        let row = [
            r.request_id.to_string(),
            r.engine.clone(),
            r.model.clone(),
            r.scenario.clone(),
            r.step.clone().unwrap_or_default(),
            opt(r.prompt_tokens),
            opt(r.output_tokens),
            format!("{}", r.e2e_latency_ms),
            num(r.ttft_ms),
            num(r.output_tps),
            r.success.to_string(),
            err.map(|e| e.message.clone()).unwrap_or_default(),
            err.map(|e| e.kind.as_str().to_string()).unwrap_or_default(),
            opt(err.and_then(|e| e.status)),
            num(r.itl_mean_ms),
            num(r.tpot_ms),
            num(r.ttfb_ms),
            format!("{}", r.scheduled_ms),
            format!("{}", r.sent_ms),
            format!("{}", r.schedule_lag_ms),
            r.output_tokens_estimated.to_string(),
            r.content_chunks.to_string(),
            r.finish_reason.clone().unwrap_or_default(),
            opt(r.slo_met),
            r.warmup.to_string(),
            r.retries.to_string(),
            num(sv.queue_duration_ms),
            num(sv.prompt_eval_duration_ms),
            num(sv.eval_duration_ms),
            num(sv.load_duration_ms),
            opt(sv.cached_prompt_tokens),
            num(r.ttfs_ms),
        ];
        self.w
            .write_record(&row)
            .map_err(|e| csv_error(&self.name, e))
    }

    /// Flush and hand back the writer.
    pub fn finish(self) -> Result<W> {
        let name = self.name;
        self.w
            .into_inner()
            .map_err(|e| Error::io(format!("writing {name}"), e.into_error()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::{Exchange, RecordContext, RequestError, RequestErrorKind};
    use std::time::{Duration, Instant};

    #[test]
    fn messages_with_commas_quotes_and_newlines_survive_a_round_trip() {
        let t0 = Instant::now();
        let mut ex = Exchange::started(t0);
        ex.ended_at = t0 + Duration::from_millis(3);
        let message = "engine said \"no\", then:\nclosed, at byte 12";
        ex.error = Some(RequestError {
            kind: RequestErrorKind::EngineError,
            status: Some(500),
            message: message.into(),
        });
        let ctx = RecordContext {
            scenario: "chat, long",
            engine: "e",
            model: "m",
            request_id: 7,
            user: 0,
            t0,
            scheduled_at: t0,
            latency_from_schedule: false,
        };
        let record = RequestRecord::from_exchange(&ctx, ex);
        let mut out = ResultsCsv::new(Vec::new(), "e_results.csv").unwrap();
        out.add(&record).unwrap();
        let bytes = out.finish().unwrap();
        let mut reader = ::csv::Reader::from_reader(bytes.as_slice());
        let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(header, RESULT_COLUMNS);
        let rows: Vec<::csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
        assert_eq!(rows.len(), 1);
        let cell = |name: &str| {
            let i = RESULT_COLUMNS.iter().position(|c| *c == name).unwrap();
            rows[0][i].to_string()
        };
        assert_eq!(cell("error_message"), message);
        assert_eq!(cell("scenario"), "chat, long");
        assert_eq!(cell("success"), "false");
        assert_eq!(cell("http_status"), "500");
        assert_eq!(cell("ttft_ms"), "", "a missing figure is an empty cell");
        assert_eq!(cell("request_id"), "7");
    }
}
