//! Parse the Prometheus text format (0.0.4) that engines serve at `/metrics`
//! into families and samples, with lookups and histogram quantiles.
//!
//! ```
//! use llmbench::monitor::prometheus::parse;
//!
//! let text = "# TYPE vllm:num_requests_running gauge\n\
//!             vllm:num_requests_running{model_name=\"m\"} 2.0";
//! let metrics = parse(text)?;
//! assert_eq!(metrics.value("vllm:num_requests_running", &[]), Some(2.0));
//! # Ok::<(), llmbench::monitor::prometheus::ParseError>(())
//! ```
//!
//! ## Why our own parser, not a crate
//!
//! The issue asks for a maintained crate if one fits; none does.
//! `prometheus-parse`, the most used, pulls `regex`, `chrono`, `once_cell` and
//! `itertools`, wants owned `io::Result<String>` lines and reports no line
//! numbers; `openmetrics-parser` is LGPL-3.0 (we are MIT OR Apache-2.0) on
//! `pest`; `prometheus-exposition-format-rs` (nom 5) rejects a text without a
//! final newline, which is how vLLM's ends; `prom_text_format_parser` had one
//! release, in 2023. The format is small and line-based: this file needs no
//! dependency, names the line of every error, and never panics.
//!
//! ## What is accepted
//!
//! `# HELP` (unescaping `\\` and `\n`, other escapes kept as written),
//! `# TYPE` (OpenMetrics' `unknown` reads as untyped), other comments, blank
//! lines, `\r\n`, no final newline, and `# EOF` (nothing may follow it).
//! Samples: `name{labels} value [timestamp_ms]`, names with `:`, label values
//! unescaping `\\`, `\"` and `\n`, labels kept in written order, `NaN` and
//! `±Inf` values. A sample joins the family of its exact name, else the one
//! whose type allows its `_bucket`/`_sum`/`_count`/`_total`/`_created` suffix
//! (so the counter `tgi_request_count` keeps its samples). No renderer on
//! purpose: the simulator writes `/metrics` with its own code (DESIGN rule 8).

use std::collections::HashMap;
use std::fmt;

#[path = "prometheus_histogram.rs"]
mod histogram;
pub use histogram::{Bucket, Histogram};

/// The type a `# TYPE` line gives a family; `Untyped` when it has none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetricType {
    /// Only goes up (resets on restart).
    Counter,
    /// Goes up and down.
    Gauge,
    /// Cumulative `_bucket{le=..}` counts, `_sum` and `_count`.
    Histogram,
    /// `{quantile=..}` values, `_sum` and `_count`.
    Summary,
    /// No `# TYPE` line, `untyped` or OpenMetrics' `unknown`.
    Untyped,
}

impl MetricType {
    fn from_token(token: &str) -> Option<Self> {
        Some(match token {
            "counter" => Self::Counter,
            "gauge" => Self::Gauge,
            "histogram" => Self::Histogram,
            "summary" => Self::Summary,
            "untyped" | "unknown" => Self::Untyped,
            _ => return None,
        })
    }

    /// The suffixes a sample of this type may add to its family's name.
    fn suffixes(self) -> &'static [&'static str] {
        match self {
            Self::Counter => &["_total", "_created"],
            Self::Histogram => &["_bucket", "_sum", "_count", "_created"],
            Self::Summary => &["_sum", "_count", "_created"],
            Self::Gauge | Self::Untyped => &[],
        }
    }
}

/// A metric family: the name of its `# HELP`/`# TYPE` lines, or of a sample
/// that had none.
#[derive(Clone, Debug, PartialEq)]
pub struct Family {
    /// The family name (samples may add a suffix to it).
    pub name: String,
    /// Its type.
    pub kind: MetricType,
    /// Its `# HELP` text, unescaped; `None` when it has no HELP line.
    pub help: Option<String>,
    declared: bool,
    samples: Vec<usize>,
}

/// One sample line.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The sample's own name, suffix included (`x_bucket`).
    pub name: String,
    /// Labels in the order written, values unescaped.
    pub labels: Vec<(String, String)>,
    /// The value (may be NaN or infinite).
    pub value: f64,
    /// The optional timestamp, in milliseconds since the Unix epoch.
    pub timestamp_ms: Option<i64>,
}

impl Sample {
    /// The value of label `name`, if the sample has it.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the sample has every `(name, value)` pair (in any order).
    pub fn matches(&self, matchers: &[(&str, &str)]) -> bool {
        matchers.iter().all(|(n, v)| self.label(n) == Some(v))
    }
}

/// One parsed `/metrics` text: families and samples, in the order written.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    families: Vec<Family>,
    by_name: HashMap<String, usize>,
    samples: Vec<Sample>,
}

/// A line that is not valid Prometheus text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    line: usize,
    text: String,
    message: String,
}

impl ParseError {
    /// The line number, from 1.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The offending line as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// What is wrong with it.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}: `{}`", self.line, self.message, self.text)
    }
}

impl std::error::Error for ParseError {}

impl From<ParseError> for crate::Error {
    fn from(e: ParseError) -> Self {
        crate::Error::new(
            crate::ErrorKind::Engine,
            "the engine's /metrics is not valid Prometheus text",
        )
        .with_source(e)
    }
}

/// Parse a whole `/metrics` body.
///
/// # Errors
/// The first malformed line, with its number, its text and what is wrong.
pub fn parse(text: &str) -> Result<Metrics, ParseError> {
    let mut metrics = Metrics::default();
    let mut eof = false;
    for (i, raw) in text.split('\n').enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let fail = |message: String| ParseError {
            line: i + 1,
            text: line.to_owned(),
            message,
        };
        let trimmed = line.trim_matches([' ', '\t']);
        if trimmed.is_empty() {
            continue;
        }
        if eof {
            return Err(fail("text after `# EOF`".into()));
        }
        match trimmed.strip_prefix('#') {
            Some(comment) => eof = metrics.comment(comment).map_err(fail)?,
            None => metrics.sample_line(trimmed).map_err(fail)?,
        }
    }
    Ok(metrics)
}

impl Metrics {
    /// Every family, in the order first seen.
    pub fn families(&self) -> &[Family] {
        &self.families
    }

    /// The family named `name` exactly.
    pub fn family(&self, name: &str) -> Option<&Family> {
        self.by_name.get(name).and_then(|&i| self.families.get(i))
    }

    /// Every sample, in the order written.
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// The samples of `family`, suffixed ones included.
    pub fn samples_of<'a>(&'a self, family: &'a Family) -> impl Iterator<Item = &'a Sample> + 'a {
        family.samples.iter().filter_map(|&i| self.samples.get(i))
    }

    /// The samples named `name` that carry every label in `matchers`.
    pub fn series<'a>(
        &'a self,
        name: &'a str,
        matchers: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        let exact = self.by_name.get(name).copied();
        let base = self.base_family(name).filter(|&b| Some(b) != exact);
        [exact, base]
            .into_iter()
            .flatten()
            .filter_map(|f| self.families.get(f))
            .flat_map(|f| f.samples.iter())
            .filter_map(|&i| self.samples.get(i))
            .filter(move |s| s.name == name && s.matches(matchers))
    }

    /// The value of the one sample named `name` that carries `matchers`;
    /// `None` if there is none or more than one (use [`Metrics::sum`] or
    /// [`Metrics::series`] then). `&[]` matches any labels.
    pub fn value(&self, name: &str, matchers: &[(&str, &str)]) -> Option<f64> {
        let mut found = self.series(name, matchers);
        let first = found.next()?;
        found.next().is_none().then_some(first.value)
    }

    /// The sum of every sample named `name` that carries `matchers`, `None`
    /// if there is none: a counter over all engines, models or methods.
    pub fn sum(&self, name: &str, matchers: &[(&str, &str)]) -> Option<f64> {
        self.series(name, matchers)
            .map(|s| s.value)
            .reduce(|a, b| a + b)
    }

    /// The histogram family `name` (without `_bucket`) restricted to
    /// `matchers`; series that still differ are added up per `le`, as
    /// `sum by (le)` does. `None` without buckets or with a bad `le`.
    pub fn histogram(&self, name: &str, matchers: &[(&str, &str)]) -> Option<Histogram> {
        let mut buckets = Vec::new();
        for s in self.series(&format!("{name}_bucket"), matchers) {
            let le = parse_le(s.label("le")?)?;
            buckets.push(Bucket { le, count: s.value });
        }
        if buckets.is_empty() {
            return None;
        }
        buckets.sort_by(|a, b| a.le.total_cmp(&b.le));
        buckets.dedup_by(|next, kept| {
            let same = next.le == kept.le;
            if same {
                kept.count += next.count;
            }
            same
        });
        Some(Histogram {
            buckets,
            sum: self.sum(&format!("{name}_sum"), matchers),
            count: self.sum(&format!("{name}_count"), matchers),
        })
    }

    /// The family that `name` belongs to by a suffix its type allows.
    fn base_family(&self, name: &str) -> Option<usize> {
        ["_bucket", "_count", "_sum", "_total", "_created"]
            .iter()
            .find_map(|suffix| {
                let index = *self.by_name.get(name.strip_suffix(suffix)?)?;
                let family = self.families.get(index)?;
                family.kind.suffixes().contains(suffix).then_some(index)
            })
    }

    fn family_index(&mut self, name: &str) -> usize {
        if let Some(&i) = self.by_name.get(name) {
            return i;
        }
        self.families.push(Family {
            name: name.to_owned(),
            kind: MetricType::Untyped,
            help: None,
            declared: false,
            samples: Vec::new(),
        });
        self.by_name
            .insert(name.to_owned(), self.families.len() - 1);
        self.families.len() - 1
    }

    /// A line after its `#`: HELP, TYPE, `EOF` (returns true) or a comment.
    fn comment(&mut self, body: &str) -> Result<bool, String> {
        let mut c = Cursor::new(body);
        c.skip_blank();
        let keyword = c.token();
        if keyword == "EOF" && c.rest().trim().is_empty() {
            return Ok(true);
        }
        if keyword != "HELP" && keyword != "TYPE" {
            return Ok(false);
        }
        c.skip_blank();
        let name = c.metric_name();
        if name.is_empty() || !(c.at_end() || c.skip_blank()) {
            return Err(format!("{keyword} needs a valid metric name"));
        }
        let rest = c.rest();
        let index = self.family_index(name);
        let family = self.families.get_mut(index).ok_or("lost family")?;
        if keyword == "HELP" {
            if family.help.is_some() {
                return Err(format!("second HELP line for `{name}`"));
            }
            family.help = Some(unescape_help(rest));
        } else {
            let kind = MetricType::from_token(rest)
                .ok_or_else(|| format!("unknown metric type `{rest}`"))?;
            if family.declared {
                return Err(format!("second TYPE line for `{name}`"));
            }
            if !family.samples.is_empty() {
                return Err(format!("TYPE line for `{name}` after its samples"));
            }
            family.kind = kind;
            family.declared = true;
        }
        Ok(false)
    }

    fn sample_line(&mut self, line: &str) -> Result<(), String> {
        let mut c = Cursor::new(line);
        let name = c.metric_name();
        if name.is_empty() {
            return Err("expected a metric name".into());
        }
        let blank = c.skip_blank();
        let labels = if c.eat(b'{') {
            let labels = c.labels()?;
            c.skip_blank();
            labels
        } else if blank || c.at_end() {
            Vec::new()
        } else {
            return Err(format!(
                "invalid character `{}` in metric name",
                c.next_char()
            ));
        };
        let token = c.token();
        if token.is_empty() {
            return Err("missing value".into());
        }
        let value = token
            .parse::<f64>()
            .map_err(|_| format!("invalid value `{token}`"))?;
        c.skip_blank();
        let token = c.token();
        let timestamp_ms = match token {
            "" => None,
            t => Some(t.parse().map_err(|_| format!("invalid timestamp `{t}`"))?),
        };
        c.skip_blank();
        if !c.at_end() {
            return Err(format!("unexpected `{}` after the value", c.rest()));
        }
        let index = match self.by_name.get(name) {
            Some(&exact) => exact,
            None => match self.base_family(name) {
                Some(base) => base,
                None => self.family_index(name),
            },
        };
        let family = self.families.get_mut(index).ok_or("lost family")?;
        let needed = match family.kind {
            MetricType::Histogram if name.ends_with("_bucket") => Some("le"),
            MetricType::Summary if name == family.name => Some("quantile"),
            _ => None,
        };
        if let Some(label) = needed {
            let found = labels.iter().find(|(n, _)| n == label);
            if found.and_then(|(_, v)| parse_le(v)).is_none() {
                return Err(format!("{name} needs a numeric `{label}` label"));
            }
        }
        family.samples.push(self.samples.len());
        self.samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
            timestamp_ms,
        });
        Ok(())
    }
}

/// A bucket bound or quantile: a number, not NaN.
fn parse_le(text: &str) -> Option<f64> {
    text.parse::<f64>().ok().filter(|v| !v.is_nan())
}

fn unescape_help(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(ch) = chars.next() {
        match (ch, chars.clone().next()) {
            ('\\', Some('\\')) => out.push('\\'),
            ('\\', Some('n')) => out.push('\n'),
            _ => {
                out.push(ch);
                continue;
            }
        }
        chars.next();
    }
    out
}

/// A byte position in one line; every stop is at an ASCII byte, so every
/// slice falls on a character boundary.
struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a str) -> Self {
        Cursor { s, pos: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    fn rest(&self) -> &'a str {
        self.s.get(self.pos..).unwrap_or_default()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn next_char(&self) -> char {
        self.rest().chars().next().unwrap_or(' ')
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        self.pos += usize::from(found);
        found
    }

    fn take_while(&mut self, keep: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&keep) {
            self.pos += 1;
        }
        self.s.get(start..self.pos).unwrap_or_default()
    }

    /// Skips blanks and tabs; whether there were any.
    fn skip_blank(&mut self) -> bool {
        !self.take_while(|b| b == b' ' || b == b'\t').is_empty()
    }

    fn token(&mut self) -> &'a str {
        self.take_while(|b| b != b' ' && b != b'\t')
    }

    fn metric_name(&mut self) -> &'a str {
        if self.peek().is_some_and(|b| b.is_ascii_digit()) {
            return "";
        }
        self.take_while(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
    }

    /// The labels after `{`, through the closing `}`.
    fn labels(&mut self) -> Result<Vec<(String, String)>, String> {
        let mut out: Vec<(String, String)> = Vec::new();
        loop {
            self.skip_blank();
            if self.eat(b'}') {
                return Ok(out);
            }
            if self.peek().is_some_and(|b| b.is_ascii_digit()) {
                return Err("a label name cannot start with a digit".into());
            }
            let name = self.take_while(|b| b.is_ascii_alphanumeric() || b == b'_');
            if name.is_empty() {
                return Err(if self.at_end() {
                    "unterminated label set".into()
                } else {
                    format!("expected a label name, found `{}`", self.next_char())
                });
            }
            self.skip_blank();
            if !self.eat(b'=') {
                return Err(format!("expected `=` after label `{name}`"));
            }
            self.skip_blank();
            if !self.eat(b'"') {
                return Err(format!("the value of label `{name}` must be quoted"));
            }
            let value = self.quoted()?;
            if out.iter().any(|(n, _)| n == name) {
                return Err(format!("duplicate label `{name}`"));
            }
            out.push((name.to_owned(), value));
            self.skip_blank();
            if !self.eat(b',') && self.peek() != Some(b'}') {
                return Err("expected `,` or `}` after a label value".into());
            }
        }
    }

    /// A label value after its opening quote, through the closing one.
    fn quoted(&mut self) -> Result<String, String> {
        let rest = self.rest();
        if let Some(end) = rest.find(['"', '\\']) {
            if rest.as_bytes().get(end) == Some(&b'"') {
                self.pos += end + 1;
                return Ok(rest.get(..end).unwrap_or_default().to_owned());
            }
        }
        let mut out = String::new();
        let mut chars = rest.char_indices();
        while let Some((i, ch)) = chars.next() {
            match ch {
                '"' => {
                    self.pos += i + 1;
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, '\\')) => out.push('\\'),
                    Some((_, '"')) => out.push('"'),
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, other)) => {
                        return Err(format!("unknown escape `\\{other}` in a label value"))
                    }
                    None => break,
                },
                _ => out.push(ch),
            }
        }
        Err("unterminated label value".into())
    }
}

#[cfg(test)]
#[path = "prometheus_tests.rs"]
mod tests;
