//! Streamed against unstreamed answers on one engine
//! (`Bench::compare_streaming`): the same load run both ways, and what
//! streaming changed in end-to-end latency and throughput.

use serde::{Deserialize, Serialize};

use super::Summary;

/// The figures compared, for one of the two runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamingFigures {
    /// Requests sent.
    pub requests: u64,
    /// `successes / requests`.
    pub success_rate: f64,
    /// Successful requests per second.
    pub request_throughput: f64,
    /// Output tokens per second.
    pub output_token_throughput: f64,
    /// End-to-end latency median (ms).
    pub e2e_p50_ms: Option<f64>,
    /// End-to-end latency 99th percentile (ms).
    pub e2e_p99_ms: Option<f64>,
    /// TTFT median (ms): for an unstreamed answer, the whole answer's arrival.
    pub ttft_p50_ms: Option<f64>,
}

impl From<&Summary> for StreamingFigures {
    fn from(s: &Summary) -> Self {
        StreamingFigures {
            requests: s.requests,
            success_rate: s.success_rate,
            request_throughput: s.request_throughput,
            output_token_throughput: s.output_token_throughput,
            e2e_p50_ms: s.e2e_latency.as_ref().map(|d| d.p50),
            e2e_p99_ms: s.e2e_latency.as_ref().map(|d| d.p99),
            ttft_p50_ms: s.ttft.as_ref().map(|d| d.p50),
        }
    }
}

/// One scenario x engine run streamed and not.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamingComparison {
    /// The scenario.
    pub scenario: String,
    /// The engine.
    pub engine: String,
    /// Answers streamed.
    pub stream: StreamingFigures,
    /// Answers in one piece.
    pub no_stream: StreamingFigures,
    /// Unstreamed over streamed e2e p50, minus 1 (-0.05: 5% faster unstreamed).
    pub e2e_p50_change: Option<f64>,
    /// Unstreamed over streamed request throughput, minus 1.
    pub request_throughput_change: Option<f64>,
}

fn change(new: Option<f64>, old: Option<f64>) -> Option<f64> {
    match (new, old) {
        (Some(n), Some(o)) if o > 0.0 => Some(n / o - 1.0),
        _ => None,
    }
}

impl StreamingComparison {
    /// Compare the streamed run `stream` with the unstreamed `no_stream`.
    pub fn new(scenario: &str, engine: &str, stream: &Summary, no_stream: &Summary) -> Self {
        let (a, b) = (
            StreamingFigures::from(stream),
            StreamingFigures::from(no_stream),
        );
        StreamingComparison {
            scenario: scenario.to_string(),
            engine: engine.to_string(),
            e2e_p50_change: change(b.e2e_p50_ms, a.e2e_p50_ms),
            request_throughput_change: change(
                Some(b.request_throughput),
                Some(a.request_throughput),
            ),
            stream: a,
            no_stream: b,
        }
    }

    /// The comparison in one line.
    pub fn describe(&self) -> String {
        let pct =
            |c: Option<f64>| c.map_or_else(|| "n/a".into(), |c| format!("{:+.1}%", c * 100.0));
        let ms = |v: Option<f64>| v.map_or_else(|| "-".into(), |v| format!("{v:.1} ms"));
        format!(
            "no stream vs stream: e2e p50 {} vs {} ({}), {:.2} vs {:.2} req/s ({})",
            ms(self.no_stream.e2e_p50_ms),
            ms(self.stream.e2e_p50_ms),
            pct(self.e2e_p50_change),
            self.no_stream.request_throughput,
            self.stream.request_throughput,
            pct(self.request_throughput_change),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::test_support::record;
    use crate::measure::Aggregate;

    fn run(e2e: f64) -> Summary {
        let mut agg = Aggregate::default();
        for i in 0..10 {
            agg.add(&record(f64::from(i) * 100.0, e2e / 2.0, e2e, &[1.0], 2));
        }
        agg.summary()
    }

    #[test]
    fn changes_are_unstreamed_over_streamed() {
        let c = StreamingComparison::new("chat", "sim", &run(100.0), &run(90.0));
        assert!((c.e2e_p50_change.unwrap() + 0.10).abs() < 1e-3, "{c:?}");
        assert!(c.request_throughput_change.unwrap() > 0.0);
        assert!(
            c.describe()
                .starts_with("no stream vs stream: e2e p50 90.0 ms vs 100.0 ms (-10.0%)"),
            "{}",
            c.describe()
        );
        let empty = Aggregate::default().summary();
        let none = StreamingComparison::new("chat", "sim", &empty, &empty);
        assert_eq!(none.e2e_p50_change, None);
    }
}
