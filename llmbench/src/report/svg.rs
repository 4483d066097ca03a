//! Small SVG chart generators for `report.html`: bar charts, grouped bars
//! and line charts with axes, ticks at round numbers, units on the axis
//! titles and a legend. Pure functions from data to markup; no script, no
//! fonts to fetch, black on white so they print.

use std::fmt::Write;

/// Width and height of every chart, in SVG units.
const W: f64 = 640.0;
const H: f64 = 320.0;
/// Margins: left (tick labels), right, top (title), bottom (axis title).
const ML: f64 = 64.0;
const MR: f64 = 16.0;
const MT: f64 = 36.0;
const MB: f64 = 48.0;

/// The Okabe-Ito palette: distinguishable with any colour vision.
const COLOURS: [&str; 8] = [
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000",
];

/// The colour of series `i`.
pub(crate) fn colour(i: usize) -> &'static str {
    COLOURS[i % COLOURS.len()]
}

/// Text made safe for XML.
pub(crate) fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Round tick positions covering `[lo, hi]`: steps of 1, 2 or 5 x 10^k.
pub(crate) fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
        return vec![lo];
    }
    let raw = (hi - lo) / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let start = (lo / step).floor() * step;
    (0..=12)
        .map(|i| start + step * f64::from(i))
        .take_while(|t| *t <= hi + step * 1e-9)
        .filter(|t| *t >= lo - step * 1e-9)
        .collect()
}

/// A tick label: few digits, no trailing zeros.
pub(crate) fn label(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// The frame of a chart: title, axes, ticks and axis titles, for y from
/// 0 to `y_max` and the given x ticks (already placed).
fn frame(out: &mut String, title: &str, x_title: &str, y_title: &str, y_max: f64) -> f64 {
    let top = ticks(0.0, y_max)
        .last()
        .copied()
        .unwrap_or(y_max)
        .max(y_max);
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" role="img" aria-label="{t}"><title>{t}</title><rect width="{W}" height="{H}" fill="white"/><text x="{cx}" y="20" text-anchor="middle" font-size="15" font-weight="bold">{t}</text>"#,
        t = esc(title),
        cx = W / 2.0
    );
    for t in ticks(0.0, top) {
        let y = y_at(t, top);
        let _ = write!(
            out,
            r##"<line x1="{ML}" x2="{x2}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{lx}" y="{ty:.1}" text-anchor="end" font-size="11">{l}</text>"##,
            x2 = W - MR,
            lx = ML - 6.0,
            ty = y + 4.0,
            l = label(t)
        );
    }
    let _ = write!(
        out,
        r##"<line x1="{ML}" x2="{ML}" y1="{MT}" y2="{yb}" stroke="#333"/><line x1="{ML}" x2="{xr}" y1="{yb}" y2="{yb}" stroke="#333"/><text x="{cx}" y="{xt}" text-anchor="middle" font-size="12">{xtitle}</text><text transform="translate(14 {cy}) rotate(-90)" text-anchor="middle" font-size="12">{ytitle}</text>"##,
        yb = H - MB,
        xr = W - MR,
        cx = ML + (W - ML - MR) / 2.0,
        xt = H - 10.0,
        xtitle = esc(x_title),
        cy = MT + (H - MT - MB) / 2.0,
        ytitle = esc(y_title)
    );
    top
}

fn y_at(v: f64, top: f64) -> f64 {
    let plot = H - MT - MB;
    H - MB - if top > 0.0 { v / top * plot } else { 0.0 }
}

/// A legend in the top right corner, on white so it reads over the marks.
fn legend(out: &mut String, names: &[String]) {
    let _ = write!(
        out,
        r##"<rect x="{x}" y="{MT}" width="150" height="{h}" fill="white" fill-opacity="0.85" stroke="#ccc"/>"##,
        x = W - MR - 154.0,
        h = 16.0 * names.len() as f64 + 6.0
    );
    for (i, name) in names.iter().enumerate() {
        let y = MT + 4.0 + 16.0 * i as f64;
        let x = W - MR - 150.0;
        let _ = write!(
            out,
            r#"<rect x="{x}" y="{y}" width="10" height="10" fill="{c}"/><text x="{tx}" y="{ty}" font-size="11">{n}</text>"#,
            c = colour(i),
            tx = x + 14.0,
            ty = y + 9.0,
            n = esc(name)
        );
    }
}

/// Bars in groups: one group per category, one bar per series in each.
/// `values[s][g]` is series `s` in group `g`; a missing value draws no bar.
pub(crate) fn grouped_bars(
    title: &str,
    y_title: &str,
    groups: &[String],
    series: &[String],
    values: &[Vec<Option<f64>>],
) -> String {
    let y_max = values
        .iter()
        .flatten()
        .flatten()
        .copied()
        .fold(0.0, f64::max);
    let mut out = String::new();
    let top = frame(&mut out, title, "", y_title, y_max);
    let slot = (W - ML - MR) / groups.len().max(1) as f64;
    let bar = (slot * 0.8) / series.len().max(1) as f64;
    for (g, name) in groups.iter().enumerate() {
        let x0 = ML + slot * g as f64 + slot * 0.1;
        for (s, row) in values.iter().enumerate() {
            if let Some(Some(v)) = row.get(g) {
                let (y, x) = (y_at(*v, top), x0 + bar * s as f64);
                let _ = write!(
                    out,
                    r#"<rect class="mark" x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="{c}"><title>{n}: {v}</title></rect>"#,
                    w = (bar - 2.0).max(1.0),
                    h = (H - MB - y).max(0.0),
                    c = colour(s),
                    n = esc(&series[s]),
                    v = label(*v)
                );
            }
        }
        let _ = write!(
            out,
            r#"<text x="{x:.1}" y="{y}" text-anchor="middle" font-size="11">{n}</text>"#,
            x = x0 + slot * 0.4,
            y = H - MB + 16.0,
            n = esc(name)
        );
    }
    if series.len() > 1 {
        legend(&mut out, series);
    }
    out.push_str("</svg>");
    out
}

/// One line per series through its (x, y) points, x increasing.
pub(crate) fn lines(
    title: &str,
    x_title: &str,
    y_title: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> String {
    let all = || series.iter().flat_map(|s| s.1.iter());
    let y_max = all().map(|p| p.1).fold(0.0, f64::max);
    let (x_lo, x_hi) = all().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
        (lo.min(p.0), hi.max(p.0))
    });
    let (x_lo, x_hi) = match (x_lo.is_finite(), x_hi > x_lo) {
        (false, _) => (0.0, 1.0),
        (true, false) => (x_lo - 1.0, x_hi + 1.0),
        (true, true) => (x_lo, x_hi),
    };
    let x_at = |x: f64| ML + (x - x_lo) / (x_hi - x_lo) * (W - ML - MR);
    let mut out = String::new();
    let top = frame(&mut out, title, x_title, y_title, y_max);
    for t in ticks(x_lo, x_hi) {
        let _ = write!(
            out,
            r#"<text x="{x:.1}" y="{y}" text-anchor="middle" font-size="11">{l}</text>"#,
            x = x_at(t),
            y = H - MB + 16.0,
            l = label(t)
        );
    }
    for (i, (name, points)) in series.iter().enumerate() {
        let path: Vec<String> = points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", x_at(x), y_at(y, top)))
            .collect();
        let c = colour(i);
        if path.len() == 1 {
            let _ = write!(
                out,
                r#"<circle class="mark" cx="{p}" r="4" fill="{c}"><title>{n}</title></circle>"#,
                p = path[0].replace(',', "\" cy=\""),
                n = esc(name)
            );
        } else if !path.is_empty() {
            let _ = write!(
                out,
                r#"<polyline class="mark" points="{p}" fill="none" stroke="{c}" stroke-width="2"><title>{n}</title></polyline>"#,
                p = path.join(" "),
                n = esc(name)
            );
        }
    }
    let names: Vec<String> = series.iter().map(|s| s.0.clone()).collect();
    legend(&mut out, &names);
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(ticks(0.0, 10.0), [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(ticks(0.0, 0.9), [0.0, 0.2, 0.4, 0.6000000000000001, 0.8]);
        let t = ticks(0.0, 1234.0);
        assert_eq!(t.first(), Some(&0.0));
        assert!(
            t.windows(2).all(|w| (w[1] - w[0] - 500.0).abs() < 1e-9),
            "{t:?}"
        );
        assert_eq!(ticks(5.0, 5.0), [5.0]);
    }

    #[test]
    fn charts_have_their_marks_title_and_legend() {
        let svg = grouped_bars(
            "TTFT by engine",
            "TTFT (ms)",
            &["vllm".into(), "ollama <b>".into()],
            &["p50".into(), "p99".into()],
            &[vec![Some(20.0), Some(40.0)], vec![Some(30.0), None]],
        );
        assert_eq!(svg.matches("class=\"mark\"").count(), 3);
        assert!(svg.contains("TTFT (ms)") && svg.contains("ollama &lt;b&gt;"));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        let svg = lines(
            "CDF",
            "latency (ms)",
            "share (%)",
            &[
                ("a".into(), vec![(1.0, 0.0), (2.0, 100.0)]),
                ("b".into(), vec![(1.5, 50.0)]),
            ],
        );
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert_eq!(svg.matches("<circle").count(), 1);
        assert!(svg.contains(">latency (ms)</text>"));
    }
}
