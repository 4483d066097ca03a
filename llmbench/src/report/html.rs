//! `report.html`: one self-contained page (inline CSS and SVG, nothing
//! fetched) with, per scenario, the engines' table and charts (throughput
//! and TTFT by engine, the e2e latency distribution, TTFT by prompt length,
//! a timeline of throughput and TTFT), then sweeps (throughput and latency
//! against load). A short inline script checks on load that every chart
//! drew and writes the verdict into `#llmbench-check`, which the browser
//! test reads.

use std::collections::BTreeMap;
use std::io::{self, Write};

use super::analysis::Analyses;
use super::chart_data::{ChartData, SetData};
use super::markdown::Primary;
use super::meta::RunMeta;
use super::svg::{self, esc};
use super::{RunData, TrialSummary};

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#111}\
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #bbb;padding:4px 8px;text-align:right}\
th:first-child,td:first-child{text-align:left}figure.chart{margin:1em 0;page-break-inside:avoid}\
figure.chart svg{width:100%;max-width:640px;height:auto;border:1px solid #eee}\
figcaption{font-size:.85em;color:#444}.warn{color:#a00}";

/// Checks every chart on load: each must have a drawn mark and a size.
const CHECK: &str = r#"<pre id="llmbench-check" hidden></pre><script>
window.addEventListener('load', function () {
  var figs = document.querySelectorAll('figure.chart'), empty = [];
  figs.forEach(function (f) {
    var svg = f.querySelector('svg'), box = svg && svg.getBoundingClientRect();
    var marks = svg ? svg.querySelectorAll('.mark').length : 0;
    if (!svg || !box || box.width < 10 || box.height < 10 || marks === 0) { empty.push(f.dataset.chart); }
  });
  document.getElementById('llmbench-check').textContent =
    JSON.stringify({charts: figs.length, drawn: figs.length - empty.length, empty: empty});
  if (empty.length) { console.error('llmbench: charts without data: ' + empty.join(', ')); }
});
</script>"#;

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.1}"))
}

fn figure(out: &mut impl Write, id: &str, svg: &str, caption: &str) -> io::Result<()> {
    writeln!(
        out,
        "<figure class=\"chart\" data-chart=\"{}\">{svg}<figcaption>{}</figcaption></figure>",
        esc(id),
        esc(caption)
    )
}

fn set_name(t: &TrialSummary) -> String {
    match &t.step {
        Some(s) => format!("{} ({s})", t.engine),
        None => t.engine.clone(),
    }
}

/// Write `report.html` for `run`.
pub(crate) fn write(
    run: &RunData,
    meta: Option<&RunMeta>,
    charts: &ChartData,
    analyses: &Analyses,
    out: &mut impl Write,
) -> io::Result<()> {
    writeln!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>llmbench report</title><style>{STYLE}</style></head><body>"
    )?;
    writeln!(
        out,
        "<h1>llmbench report</h1><p>Run started {}, llmbench {}, {} result sets.</p>",
        esc(&run.started_at),
        esc(&run.llmbench_version),
        run.trials.len()
    )?;
    let mut scenarios: BTreeMap<&str, Vec<&TrialSummary>> = BTreeMap::new();
    for t in &run.trials {
        scenarios.entry(t.scenario.as_str()).or_default().push(t);
    }
    for (name, trials) in &scenarios {
        scenario(out, name, trials, charts, analyses)?;
    }
    sweeps(out, run)?;
    if let Some(meta) = meta {
        let mut md = Vec::new();
        meta.write_markdown(&mut md)?;
        let text = String::from_utf8_lossy(&md);
        writeln!(out, "<h2>Environment</h2><ul>")?;
        for line in text.lines().filter_map(|l| l.strip_prefix("- ")) {
            writeln!(out, "<li>{}</li>", esc(line))?;
        }
        writeln!(out, "</ul>")?;
    }
    writeln!(out, "{CHECK}</body></html>")
}

fn scenario(
    out: &mut impl Write,
    name: &str,
    trials: &[&TrialSummary],
    charts: &ChartData,
    analyses: &Analyses,
) -> io::Result<()> {
    writeln!(out, "<section><h2>{}</h2>", esc(name))?;
    if let Some(d) = trials
        .first()
        .map(|t| t.description.trim())
        .filter(|d| !d.is_empty())
    {
        writeln!(out, "<p>{}</p>", esc(d))?;
    }
    let primary = trials
        .first()
        .map(|t| Primary::of(t))
        .filter(Primary::marked);
    if let Some(p) = &primary {
        writeln!(
            out,
            "<p>Primary metric: <strong>{}</strong>.</p>",
            esc(&p.sentence())
        )?;
    }
    // (the column's name as report.md and `Primary` know it, its header)
    const COLUMNS: [(&str, &str); 7] = [
        ("ttft p50", "TTFT p50 (ms)"),
        ("ttft p99", "TTFT p99 (ms)"),
        ("e2e p50", "e2e p50 (ms)"),
        ("req/s", "req/s"),
        ("output tok/s", "output tok/s"),
        ("success", "success"),
        ("status", "status"),
    ];
    let first = primary.as_ref().filter(|p| p.needs_column());
    let is_primary = |key: &str| primary.as_ref().is_some_and(|p| p.column() == key);
    let mut head = String::from("<table><tr><th>engine</th>");
    if let Some(p) = first {
        head.push_str(&format!("<th><strong>{}</strong></th>", esc(p.column())));
    }
    for (key, label) in COLUMNS {
        match is_primary(key) {
            true => head.push_str(&format!("<th><strong>{label}</strong></th>")),
            false => head.push_str(&format!("<th>{label}</th>")),
        }
    }
    writeln!(out, "{head}</tr>")?;
    for t in trials {
        let s = &t.summary;
        let cells = [
            ms(s.ttft.as_ref().map(|d| d.p50)),
            ms(s.ttft.as_ref().map(|d| d.p99)),
            ms(s.e2e_latency.as_ref().map(|d| d.p50)),
            format!("{:.2}", s.request_throughput),
            format!("{:.0}", s.output_token_throughput),
            format!("{:.1}%", s.success_rate * 100.0),
            serde_json::to_value(t.status)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
        ];
        let mut row = format!("<tr><td>{}</td>", esc(&set_name(t)));
        if let Some(p) = first {
            row.push_str(&format!("<td><strong>{}</strong></td>", esc(&p.cell(s))));
        }
        for ((key, _), value) in COLUMNS.iter().zip(cells) {
            match is_primary(key) {
                true => row.push_str(&format!("<td><strong>{}</strong></td>", esc(&value))),
                false => row.push_str(&format!("<td>{}</td>", esc(&value))),
            }
        }
        writeln!(out, "{row}</tr>")?;
    }
    writeln!(out, "</table>")?;
    for t in trials {
        for w in &t.summary.warnings {
            writeln!(
                out,
                "<p class=\"warn\">{}: {}</p>",
                esc(&set_name(t)),
                esc(w)
            )?;
        }
        let key = (t.scenario.clone(), t.step.clone(), t.engine.clone());
        if let Some(a) = analyses.get(&key).filter(|_| t.summary.successes > 0) {
            writeln!(out, "<p>{}: {}</p>", esc(&set_name(t)), esc(&a.describe()))?;
            if !a.recommendations.is_empty() {
                writeln!(out, "<ul>")?;
                for r in &a.recommendations {
                    writeln!(out, "<li>{}</li>", esc(r))?;
                }
                writeln!(out, "</ul>")?;
            }
        }
    }
    let names: Vec<String> = trials.iter().map(|t| set_name(t)).collect();
    let tps: Vec<Option<f64>> = trials
        .iter()
        .map(|t| Some(t.summary.output_token_throughput))
        .collect();
    let bars = svg::grouped_bars(
        "Output throughput by engine",
        "output tokens/s",
        &names,
        &["output tokens/s".into()],
        &[tps],
    );
    figure(
        out,
        &format!("{name}/throughput"),
        &bars,
        "Output tokens per second of successful requests.",
    )?;
    let q = |f: fn(&crate::measure::Distribution) -> f64| -> Vec<Option<f64>> {
        trials
            .iter()
            .map(|t| t.summary.ttft.as_ref().map(f))
            .collect()
    };
    let bars = svg::grouped_bars(
        "TTFT by engine",
        "TTFT (ms)",
        &names,
        &["p50".into(), "p99".into()],
        &[q(|d| d.p50), q(|d| d.p99)],
    );
    figure(
        out,
        &format!("{name}/ttft"),
        &bars,
        "Time to first token, median and 99th percentile.",
    )?;
    let sets: Vec<(String, &SetData)> = trials
        .iter()
        .filter_map(|t| {
            let key = (t.scenario.clone(), t.step.clone(), t.engine.clone());
            Some((set_name(t), charts.sets.get(&key)?))
        })
        .collect();
    if sets.is_empty() {
        return writeln!(
            out,
            "<p>No successful request: no distribution to draw.</p></section>"
        );
    }
    let cdf: Vec<(String, Vec<(f64, f64)>)> =
        sets.iter().map(|(n, d)| (n.clone(), d.e2e_cdf())).collect();
    let svg = svg::lines(
        "End-to-end latency distribution",
        "e2e latency (ms)",
        "requests at or below (%)",
        &cdf,
    );
    figure(
        out,
        &format!("{name}/e2e-cdf"),
        &svg,
        "Cumulative distribution of end-to-end latency.",
    )?;
    let by_prompt: Vec<(String, Vec<(f64, f64)>)> = sets
        .iter()
        .map(|(n, d)| {
            let pts = d
                .ttft_by_prompt
                .iter()
                .map(|(&p, &(k, sum))| (f64::from(p), sum / k as f64))
                .collect();
            (n.clone(), pts)
        })
        .collect();
    let svg = svg::lines(
        "TTFT by prompt length",
        "prompt tokens (as the engine counted)",
        "mean TTFT (ms)",
        &by_prompt,
    );
    figure(
        out,
        &format!("{name}/ttft-by-prompt"),
        &svg,
        "Mean TTFT of the requests of each prompt length.",
    )?;
    timeline(out, name, &sets)?;
    for t in trials {
        let label = super::chart_data::monitor_label(&t.scenario, &t.engine, t.step.as_deref());
        let Some(series) = charts.monitor.get(&label).filter(|s| !s.is_empty()) else {
            continue;
        };
        let lines: Vec<(String, Vec<(f64, f64)>)> = series
            .iter()
            .map(|(n, pts)| (n.clone(), pts.clone()))
            .collect();
        let svg = svg::lines(
            &format!("Machine during the run: {}", set_name(t)),
            "time from the start (s)",
            "percent",
            &lines,
        );
        figure(
            out,
            &format!("{name}/monitor/{}", set_name(t)),
            &svg,
            "From monitor.csv: host CPU (all cores, 0-100), client and engine CPU (one core is 100), memory used, GPU use where there is a GPU.",
        )?;
    }
    writeln!(out, "</section>")
}

fn timeline(out: &mut impl Write, name: &str, sets: &[(String, &SetData)]) -> io::Result<()> {
    let per = |f: &dyn Fn(&SetData, &super::chart_data::Bucket) -> Option<f64>| {
        sets.iter()
            .map(|(n, d)| {
                let pts = d
                    .timeline
                    .iter()
                    .filter_map(|(&i, b)| Some(((i as f64 + 0.5) * d.width_ms / 1e3, f(d, b)?)))
                    .collect();
                (n.clone(), pts)
            })
            .collect::<Vec<_>>()
    };
    let tps = per(&|d, b| Some(b.output_tokens as f64 / (d.width_ms / 1e3)));
    let svg = svg::lines(
        "Output throughput over the run",
        "time from the start (s)",
        "output tokens/s",
        &tps,
    );
    figure(
        out,
        &format!("{name}/timeline-throughput"),
        &svg,
        "Output tokens of the requests that finished in each interval.",
    )?;
    let ttft = per(&|_, b| (b.ttft_n > 0).then(|| b.ttft_sum / b.ttft_n as f64));
    let svg = svg::lines(
        "TTFT over the run",
        "time from the start (s)",
        "mean TTFT (ms)",
        &ttft,
    );
    figure(
        out,
        &format!("{name}/timeline-ttft"),
        &svg,
        "Mean TTFT of the requests that finished in each interval.",
    )
}

fn sweeps(out: &mut impl Write, run: &RunData) -> io::Result<()> {
    for t in &run.scaling {
        writeln!(
            out,
            "<section><h2>Scaling: {} on {}</h2>",
            esc(&t.scenario),
            esc(&t.engine)
        )?;
        let x = format!("load ({})", t.unit);
        let thr = vec![(
            "requests/s".to_string(),
            t.rows
                .iter()
                .map(|r| (r.level, r.request_throughput))
                .collect(),
        )];
        let svg = svg::lines("Throughput against load", &x, "requests/s", &thr);
        figure(
            out,
            &format!("{}/scaling-throughput", t.scenario),
            &svg,
            "Successful requests per second at each step.",
        )?;
        let lat = vec![
            (
                "TTFT p50".to_string(),
                t.rows
                    .iter()
                    .filter_map(|r| Some((r.level, r.ttft_p50_ms?)))
                    .collect(),
            ),
            (
                "TTFT p99".to_string(),
                t.rows
                    .iter()
                    .filter_map(|r| Some((r.level, r.ttft_p99_ms?)))
                    .collect(),
            ),
        ];
        let svg = svg::lines("Latency against load", &x, "TTFT (ms)", &lat);
        figure(
            out,
            &format!("{}/scaling-latency", t.scenario),
            &svg,
            "TTFT at each step.",
        )?;
        if let Some(s) = &t.saturation {
            writeln!(out, "<p>Saturation: {} ({})</p>", esc(&s.step), esc(&s.why))?;
        }
        writeln!(out, "</section>")?;
    }
    Ok(())
}
