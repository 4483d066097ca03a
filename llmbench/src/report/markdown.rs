//! `report.md`: per scenario, the engines side by side with the primary
//! metric first or in bold (a preset's own, else TTFT), the winner by it
//! and by how much, SLO verdicts and warnings;
//! then sweeps, capacity searches, streaming comparisons and the
//! environment. A pure writer to any `impl Write`.

use std::collections::BTreeMap;
use std::io::{self, Write};

use super::analysis::{Analyses, Analysis};
use super::meta::RunMeta;
use super::{RunData, TrialStatus, TrialSummary};
use crate::measure::{Distribution, Summary, TimingSource};

/// A latency cell: `12.3 ms`, or `-` when not measured.
fn ms(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v >= 1000.0 => format!("{:.2} s", v / 1e3),
        Some(v) if v >= 100.0 => format!("{v:.0} ms"),
        Some(v) => format!("{v:.1} ms"),
    }
}

fn p50(d: &Option<Distribution>) -> Option<f64> {
    d.as_ref().map(|d| d.p50)
}

fn p99(d: &Option<Distribution>) -> Option<f64> {
    d.as_ref().map(|d| d.p99)
}

fn status(s: TrialStatus) -> &'static str {
    match s {
        TrialStatus::Ok => "ok",
        TrialStatus::Failed => "FAILED",
        TrialStatus::Interrupted => "interrupted",
    }
}

/// Markdown table cells may not hold a `|` or a line break.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The name of a result set: the engine, and the step if there is one.
fn label(t: &TrialSummary) -> String {
    match &t.step {
        Some(step) => format!("{} ({step})", t.engine),
        None => t.engine.clone(),
    }
}

/// The metric a scenario is judged by: its preset's primary metric (from
/// `workload.primary_metric`), else TTFT p50.
pub(crate) struct Primary {
    /// Its column in the table.
    column: &'static str,
    /// How sentences name it.
    name: &'static str,
    /// Higher is better (a rate), else lower (a latency).
    higher: bool,
    value: fn(&Summary) -> Option<f64>,
    /// A value as a cell shows it.
    show: fn(Option<f64>) -> String,
    /// Marked by a preset (bold in the table), not the default.
    marked: bool,
}

fn per_sec(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.1}"))
}

impl Primary {
    pub(crate) fn of(t: &TrialSummary) -> Primary {
        let metric = t
            .workload
            .as_ref()
            .and_then(|w| w.primary_metric.as_deref());
        let (column, name, higher, value, show): (_, _, _, fn(&Summary) -> Option<f64>, _) =
            match metric {
                Some("e2e_latency") => (
                    "e2e p50",
                    "e2e latency p50",
                    false,
                    |s| p50(&s.e2e_latency),
                    ms as fn(Option<f64>) -> String,
                ),
                Some("output_tps") => (
                    "output tok/s per request p50",
                    "output tokens/s per request p50",
                    true,
                    |s| p50(&s.output_tps),
                    per_sec,
                ),
                Some("server.prompt_eval_duration") => (
                    "prompt eval p50",
                    "prompt processing time p50 (engine-reported)",
                    false,
                    |s| p50(&s.server.prompt_eval_duration),
                    ms,
                ),
                _ => ("ttft p50", "TTFT p50", false, |s| p50(&s.ttft), ms),
            };
        Primary {
            column,
            name,
            higher,
            value,
            show,
            marked: metric.is_some(),
        }
    }

    /// `column` as a header: bold when a preset marked it.
    fn header(&self, column: &str) -> String {
        if self.marked && column == self.column {
            format!("**{column}**")
        } else {
            column.to_string()
        }
    }

    /// Whether the table has no column of its own for it (one goes first).
    pub(crate) fn needs_column(&self) -> bool {
        !COLUMNS.contains(&self.column)
    }

    /// Its column's name in the tables (`e2e p50`).
    pub(crate) fn column(&self) -> &'static str {
        self.column
    }

    /// How sentences name it, and which way is better.
    pub(crate) fn sentence(&self) -> String {
        let better = if self.higher { "higher" } else { "lower" };
        format!("{} ({better} is better)", self.name)
    }

    /// Whether a preset marked it (else it is TTFT by default).
    pub(crate) fn marked(&self) -> bool {
        self.marked
    }

    /// Its value in `s`, as a cell shows it.
    pub(crate) fn cell(&self, s: &Summary) -> String {
        (self.show)((self.value)(s))
    }
}

/// "vllm: 15% lower TTFT p50 than ollama", for two or more engines that
/// both measured the primary metric.
pub(crate) fn winner(trials: &[&TrialSummary], primary: &Primary) -> Option<String> {
    let mut ranked: Vec<(&TrialSummary, f64)> = trials
        .iter()
        .filter(|t| t.summary.successes > 0)
        .filter_map(|t| Some((*t, (primary.value)(&t.summary)?)))
        .collect();
    if ranked.len() < 2 {
        return None;
    }
    ranked.sort_by(|a, b| a.1.total_cmp(&b.1));
    if primary.higher {
        ranked.reverse();
    }
    let (best, best_v) = ranked[0];
    let (next, next_v) = ranked[1];
    if next_v <= 0.0 {
        return None;
    }
    let (by, word) = if primary.higher {
        ((best_v / next_v - 1.0) * 100.0, "higher")
    } else {
        ((1.0 - best_v / next_v) * 100.0, "lower")
    };
    Some(format!(
        "{}: {by:.0}% {word} {} than {} ({} vs {})",
        label(best),
        primary.name,
        label(next),
        (primary.show)(Some(best_v)),
        (primary.show)(Some(next_v))
    ))
}

/// The figures' columns, in order (the primary metric's goes first when it
/// is not one of them).
const COLUMNS: [&str; 9] = [
    "ttft p50",
    "ttft p99",
    "itl p50",
    "e2e p50",
    "req/s",
    "output tok/s",
    "success",
    "goodput req/s",
    "status",
];

fn figures_row(t: &TrialSummary, primary: &Primary) -> String {
    let s: &Summary = &t.summary;
    let cells = [
        ms(p50(&s.ttft)),
        ms(p99(&s.ttft)),
        ms(p50(&s.itl)),
        ms(p50(&s.e2e_latency)),
        format!("{:.2}", s.request_throughput),
        format!("{:.0}", s.output_token_throughput),
        format!("{:.1}%", s.success_rate * 100.0),
        s.goodput.map_or_else(|| "-".into(), |g| format!("{g:.2}")),
        status(t.status).to_string(),
    ];
    let mut row = format!("| {} |", cell(&label(t)));
    if primary.needs_column() {
        row.push_str(&format!(" **{}** |", primary.cell(s)));
    }
    for (column, value) in COLUMNS.iter().zip(cells) {
        if primary.marked && *column == primary.column {
            row.push_str(&format!(" **{value}** |"));
        } else {
            row.push_str(&format!(" {value} |"));
        }
    }
    row
}

/// The table's header and alignment rows.
fn table_head(primary: &Primary) -> String {
    let mut head = String::from("| engine |");
    let mut align = String::from("| --- |");
    if primary.needs_column() {
        head.push_str(&format!(" **{}** |", primary.column));
        align.push_str(" ---: |");
    }
    for column in COLUMNS {
        head.push_str(&format!(" {} |", primary.header(column)));
        align.push_str(if column == "status" {
            " --- |"
        } else {
            " ---: |"
        });
    }
    format!("{head}\n{align}")
}

/// Write `report.md` for `run`, with the environment from `meta` if known.
pub(crate) fn write(
    run: &RunData,
    meta: Option<&RunMeta>,
    analyses: &Analyses,
    out: &mut impl Write,
) -> io::Result<()> {
    writeln!(out, "# llmbench report\n")?;
    writeln!(
        out,
        "Run started {}, llmbench {}, {} result sets.\n",
        run.started_at,
        run.llmbench_version,
        run.trials.len()
    )?;
    let mut scenarios: BTreeMap<&str, Vec<&TrialSummary>> = BTreeMap::new();
    for t in &run.trials {
        scenarios.entry(t.scenario.as_str()).or_default().push(t);
    }
    for (name, trials) in &scenarios {
        writeln!(out, "## {name}\n")?;
        if let Some(d) = trials
            .first()
            .map(|t| t.description.trim())
            .filter(|d| !d.is_empty())
        {
            writeln!(out, "{}\n", d.replace('\n', " "))?;
        }
        let Some(primary) = trials.first().map(|t| Primary::of(t)) else {
            continue;
        };
        writeln!(
            out,
            "Primary metric: {}.\n\n{}",
            primary.sentence(),
            table_head(&primary)
        )?;
        for t in trials {
            writeln!(out, "{}", figures_row(t, &primary))?;
        }
        writeln!(out)?;
        if let Some(w) = winner(trials, &primary) {
            writeln!(out, "**Winner:** {w}\n")?;
        }
        write_use_case(out, trials)?;
        for t in trials {
            let key = (t.scenario.clone(), t.step.clone(), t.engine.clone());
            write_verdicts(out, t, analyses.get(&key))?;
        }
    }
    write_sequences(run, out)?;
    if let Some(meta) = meta {
        meta.write_markdown(out)?;
    }
    Ok(())
}

/// The use-case figures of a preset's result sets, as a table.
fn write_use_case(out: &mut impl Write, trials: &[&TrialSummary]) -> io::Result<()> {
    let preset = |t: &&&TrialSummary| t.workload.as_ref().is_some_and(|w| w.preset.is_some());
    if !trials.iter().any(|t| preset(&t)) {
        return Ok(());
    }
    writeln!(
        out,
        "| result set | first sentence p50 | sustained tok/s p50 | drift | ITL p99/p50 | prompt processing p50 | TTFT per 1K prompt tokens |\n| --- | --- | --- | --- | --- | --- | --- |"
    )?;
    for t in trials.iter().filter(preset) {
        let u = &t.summary.use_case;
        let processing = u.prompt_processing.as_ref().map_or_else(
            || "-".to_string(),
            |p| {
                let by = match p.source {
                    TimingSource::Server => "engine",
                    TimingSource::ClientTtft => "TTFT",
                };
                format!("{} ({by})", ms(Some(p.duration_ms.p50)))
            },
        );
        writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            cell(&label(t)),
            ms(p50(&u.ttfs)),
            per_sec(p50(&u.sustained_output_tps)),
            u.drift
                .as_ref()
                .map_or_else(|| "-".into(), |d| format!("{:+.0}%", d.change * 100.0)),
            u.itl_jitter
                .as_ref()
                .map_or_else(|| "-".into(), |j| format!("{:.2}", j.p99_over_p50)),
            processing,
            u.ttft_vs_prompt_tokens
                .as_ref()
                .map_or_else(|| "-".into(), |s| format!("{:.1} ms", s.ms_per_1k_tokens)),
        )?;
    }
    writeln!(out)
}

/// SLO verdicts, errors and warnings of one result set, if it has any.
fn write_verdicts(out: &mut impl Write, t: &TrialSummary, a: Option<&Analysis>) -> io::Result<()> {
    let s = &t.summary;
    let mut lines = Vec::new();
    if let Some(a) = a.filter(|_| s.successes > 0) {
        lines.push(format!("- analysis: {}", a.describe()));
        for r in &a.recommendations {
            lines.push(format!("- recommendation: {r}"));
        }
    }
    for check in &s.slos {
        lines.push(match check.message() {
            Some(missed) => format!("- {missed}"),
            None => format!(
                "- slo {} p{} <= {}: met ({})",
                check.metric.as_str(),
                check.percentile,
                ms(Some(check.limit_ms)),
                ms(check.observed_ms)
            ),
        });
    }
    // A trial failed by its SLOs says so in the lines above already.
    let slo_only = |e: &str| e.lines().all(|l| l.starts_with("slo "));
    if let Some(e) = t.error.as_deref().filter(|e| !slo_only(e)) {
        lines.push(format!("- {}: {}", status(t.status), e.replace('\n', "; ")));
    }
    for w in &s.warnings {
        lines.push(format!("- warning: {w}"));
    }
    if !s.errors_by_kind.is_empty() {
        let kinds: Vec<String> = s
            .errors_by_kind
            .iter()
            .map(|(k, n)| format!("{k} x{n}"))
            .collect();
        lines.push(format!("- failed requests: {}", kinds.join(", ")));
    }
    if let Some(c) = &t.cost {
        lines.push(format!(
            "- cost: {:.4} for this run at {} per hour; {} per million output tokens, {} output tokens per unit",
            c.run_cost,
            c.price_per_hour,
            c.per_million_output_tokens
                .map_or_else(|| "-".into(), |v| format!("{v:.4}")),
            c.output_tokens_per_unit
                .map_or_else(|| "-".into(), |v| format!("{v:.0}"))
        ));
    }
    if let Some(r) = &s.recovery {
        lines.push(match r.recovery_s {
            Some(t) => format!(
                "- recovery: TTFT back to its pre-spike {} {t:.2} s after the spike",
                ms(Some(r.baseline_ttft_p50_ms))
            ),
            None => format!(
                "- recovery: TTFT never got back to its pre-spike {}",
                ms(Some(r.baseline_ttft_p50_ms))
            ),
        });
    }
    if lines.is_empty() {
        return Ok(());
    }
    writeln!(out, "{}:\n\n{}\n", label(t), lines.join("\n"))
}

fn write_sequences(run: &RunData, out: &mut impl Write) -> io::Result<()> {
    for t in &run.scaling {
        writeln!(out, "## Scaling: {} on {}\n", t.scenario, t.engine)?;
        writeln!(
            out,
            "| step | req/s | output tok/s | ttft p50 | ttft p99 | e2e p50 | goodput |\n\
             | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
        )?;
        for r in &t.rows {
            writeln!(
                out,
                "| {} | {:.2} | {:.0} | {} | {} | {} | {} |",
                cell(&r.step),
                r.request_throughput,
                r.output_token_throughput,
                ms(r.ttft_p50_ms),
                ms(r.ttft_p99_ms),
                ms(r.e2e_p50_ms),
                r.goodput.map_or_else(|| "-".into(), |g| format!("{g:.2}"))
            )?;
        }
        match &t.saturation {
            Some(s) => writeln!(out, "\nSaturation: {} ({}).\n", s.step, s.why)?,
            None => writeln!(out, "\nNo saturation within these steps.\n")?,
        }
    }
    for c in &run.capacity {
        writeln!(
            out,
            "## Capacity: {} on {}\n\n{}.\n",
            c.scenario,
            c.engine,
            c.result.describe()
        )?;
    }
    for p in &run.prompt_scaling {
        writeln!(
            out,
            "## Prompt length: {} on {}\n\n{}.\n",
            p.scenario,
            p.engine,
            p.describe()
        )?;
    }
    for c in &run.streaming {
        writeln!(
            out,
            "## Streaming: {} on {}\n\n{}.\n",
            c.scenario,
            c.engine,
            c.describe()
        )?;
    }
    Ok(())
}
