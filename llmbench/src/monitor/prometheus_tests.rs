//! Unit tests of the Prometheus text parser.
// Compiled only under #[cfg(test)], from the module that includes this file.

use super::*;

fn err(text: &str) -> ParseError {
    parse(text).expect_err(text)
}

#[test]
fn families_help_types_and_suffixes() {
    let m = parse(
        "# A comment\n\n# HELP a:b_total Tokens \\\\ with\\nnewline \\t kept\n\
         # TYPE a:b_total counter\na:b_total 3\n#TYPE tgi_request_count counter\n\
         tgi_request_count 111\n# TYPE req counter\nreq_total 5\nreq_created 1e9\n\
         # TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\n\
         h_count 2\n# TYPE s summary\ns{quantile=\"0.5\"} 1\ns_sum 4\ns_count 3\nloose 7\n",
    )
    .expect("valid");
    let kinds: Vec<_> = m
        .families()
        .iter()
        .map(|f| (f.name.as_str(), f.kind))
        .collect();
    use MetricType as T;
    let want = [("a:b_total", T::Counter), ("tgi_request_count", T::Counter)];
    assert_eq!(kinds[..2], want);
    let want = [("req", T::Counter), ("h", T::Histogram), ("s", T::Summary)];
    assert_eq!(kinds[2..5], want);
    assert_eq!(kinds[5..], [("loose", T::Untyped)]);
    let help = m.family("a:b_total").and_then(|f| f.help.clone());
    assert_eq!(help.as_deref(), Some("Tokens \\ with\nnewline \\t kept"));
    assert_eq!(m.family("loose").map(|f| f.help.is_none()), Some(true));
    let h = m.family("h").expect("h");
    assert_eq!(m.samples_of(h).count(), 4);
    assert_eq!(m.value("req_total", &[]), Some(5.0));
    assert_eq!(m.value("req_created", &[]), Some(1e9));
    assert_eq!(m.value("tgi_request_count", &[]), Some(111.0));
    assert_eq!(m.value("s_count", &[]), Some(3.0));
    assert_eq!(m.value("s", &[("quantile", "0.5")]), Some(1.0));
    assert_eq!(m.samples().len(), 12);
}

#[test]
fn labels_escapes_order_and_values() {
    let m = parse(
        "x{le=\"0.5\",model_name=\"a\\\\b\\\"c\\nd\"} NaN\n\
         x { b = \"é\" , a=\"\" , } +Inf 1700000000000\n\
         x{} -Inf -5\ny 1.06314989568e+011\t\n",
    )
    .expect("valid");
    let s = m.samples();
    let labels = vec![
        ("le".to_owned(), "0.5".to_owned()),
        ("model_name".to_owned(), "a\\b\"c\nd".to_owned()),
    ];
    assert_eq!(s[0].labels, labels);
    assert!(s[0].value.is_nan());
    assert_eq!(s[1].label("b"), Some("é"));
    assert_eq!(
        (s[1].labels[0].0.as_str(), s[1].label("a")),
        ("b", Some(""))
    );
    assert_eq!(
        (s[1].value, s[1].timestamp_ms),
        (f64::INFINITY, Some(1_700_000_000_000))
    );
    assert_eq!(
        (s[2].value, s[2].timestamp_ms),
        (f64::NEG_INFINITY, Some(-5))
    );
    assert_eq!(m.value("y", &[]), Some(1.06314989568e11));
}

#[test]
fn line_ends_blank_lines_and_eof() {
    let m = parse("  # TYPE g gauge\r\n\r\n\tg 1\r\ng2 2").expect("no final newline");
    assert_eq!(
        (m.value("g", &[]), m.value("g2", &[])),
        (Some(1.0), Some(2.0))
    );
    assert_eq!(parse("a 1\n# EOF").expect("eof").samples().len(), 1);
    assert_eq!(parse("a 1\n# EOF\n\n").expect("eof").samples().len(), 1);
    assert_eq!(parse("").expect("empty").families().len(), 0);
}

#[test]
fn lookups_by_labels() {
    let m = parse("r{model=\"a\",engine=\"0\"} 1\nr{model=\"a\",engine=\"1\"} 2\n").expect("valid");
    assert_eq!(m.value("r", &[]), None, "ambiguous");
    assert_eq!(m.value("r", &[("engine", "1"), ("model", "a")]), Some(2.0));
    assert_eq!(m.value("r", &[("engine", "2")]), None);
    assert_eq!(m.sum("r", &[("model", "a")]), Some(3.0));
    assert_eq!(m.sum("missing", &[]), None);
    assert_eq!(m.series("r", &[("model", "a")]).count(), 2);
}

#[test]
fn malformed_lines_name_their_line() {
    let cases = [
        ("ok 1\nbad\n", 2, "missing value"),
        ("x abc", 1, "invalid value `abc`"),
        ("x 1 1.5", 1, "invalid timestamp `1.5`"),
        ("x 1 2 3", 1, "unexpected `3`"),
        ("x{a=\"b} 1", 1, "unterminated label value"),
        ("x{a=\"\\t\"} 1", 1, "unknown escape `\\t`"),
        ("x{a=\"1\",a=\"2\"} 1", 1, "duplicate label `a`"),
        ("x{a=1} 1", 1, "must be quoted"),
        ("x{a \"1\"} 1", 1, "expected `=`"),
        ("x{a=\"1\" b=\"2\"} 1", 1, "expected `,` or `}`"),
        ("x{1a=\"1\"} 1", 1, "cannot start with a digit"),
        ("x{a=\"1\",", 1, "unterminated label set"),
        ("x{-=\"1\"} 1", 1, "found `-`"),
        ("foo-bar 1", 1, "invalid character `-`"),
        ("9x 1", 1, "expected a metric name"),
        ("# TYPE x countr", 1, "unknown metric type `countr`"),
        ("# TYPE x gauge\n# TYPE x gauge", 2, "second TYPE"),
        ("# HELP x a\n# HELP x b", 2, "second HELP"),
        ("x 1\n# TYPE x gauge", 2, "after its samples"),
        ("# HELP\n", 1, "HELP needs a valid metric name"),
        ("# TYPE x-y gauge", 1, "TYPE needs a valid metric name"),
        ("# TYPE h histogram\nh_bucket 1", 2, "needs a numeric `le`"),
        (
            "# TYPE h histogram\nh_bucket{le=\"x\"} 1",
            2,
            "numeric `le`",
        ),
        ("# TYPE s summary\ns 1", 2, "needs a numeric `quantile`"),
        ("a 1\n# EOF\nb 2", 3, "text after `# EOF`"),
    ];
    for (text, line, fragment) in cases {
        let e = err(text);
        assert_eq!(e.line(), line, "{text:?}: {e}");
        assert!(e.message().contains(fragment), "{text:?}: {e}");
        assert_eq!(Some(e.text()), text.split('\n').nth(line - 1));
    }
    let e = crate::Error::from(err("x{a=\"\\q\"} 1"));
    assert!(e.is_engine());
    assert!(
        e.chain().contains("line 1: unknown escape `\\q`"),
        "{}",
        e.chain()
    );
}

#[test]
fn arbitrary_bytes_never_panic() {
    let base = "# HELP a_b x\\n\n# TYPE a_b histogram\na_b_bucket{le=\"1\",m=\"é\\\"\"} 2 17\n";
    let alphabet = [
        '{', '}', '"', '\\', '=', ',', ' ', '\n', '#', 'é', 'e', '1', '_',
    ];
    let mut seed = 0x9e37_79b9_u64;
    for _ in 0..3000 {
        let mut chars: Vec<char> = base.chars().collect();
        for _ in 0..3 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let at = (seed % chars.len() as u64) as usize;
            chars[at] = alphabet[(seed >> 32) as usize % alphabet.len()];
        }
        let text: String = chars.into_iter().collect();
        if let Ok(m) = parse(&text) {
            let _ = m.histogram("a_b", &[]).map(|h| h.quantile(0.5));
        }
    }
    for end in (0..=base.len()).filter(|&i| base.is_char_boundary(i)) {
        let _ = parse(&base[..end]);
    }
}

fn hist(bounds: &[(&str, f64)]) -> Histogram {
    let text: String = bounds
        .iter()
        .map(|(le, c)| format!("h_bucket{{le=\"{le}\"}} {c}\n"))
        .collect();
    parse(&format!("# TYPE h histogram\n{text}h_sum 9\nh_count 40\n"))
        .expect("valid")
        .histogram("h", &[])
        .expect("buckets")
}

#[test]
fn histogram_quantiles_follow_prometheus() {
    let h = hist(&[("+Inf", 40.0), ("1", 10.0), ("2", 20.0), ("4", 40.0)]);
    assert_eq!(h.buckets.first().map(|b| b.le), Some(1.0), "sorted by le");
    assert_eq!(
        (h.sum, h.count, h.mean()),
        (Some(9.0), Some(40.0), Some(9.0 / 40.0))
    );
    assert_eq!(h.quantile(0.1), Some(0.4));
    assert_eq!(h.quantile(0.5), Some(2.0));
    assert_eq!(h.quantile(0.75), Some(3.0));
    assert_eq!(h.quantile(1.0), Some(4.0));
    assert_eq!(
        (h.quantile(-0.1), h.quantile(1.5), h.quantile(f64::NAN)),
        (None, None, None)
    );
    let tail = hist(&[("1", 10.0), ("4", 40.0), ("+Inf", 50.0)]);
    assert_eq!(
        tail.quantile(0.99),
        Some(4.0),
        "rank in +Inf: highest finite bound"
    );
    let dips = hist(&[("1", 10.0), ("2", 8.0), ("+Inf", 20.0)]);
    assert_eq!(dips.quantile(0.5), Some(1.0), "forced monotonic");
    assert_eq!(
        hist(&[("1", 1.0), ("2", 2.0)]).quantile(0.5),
        None,
        "no +Inf"
    );
    assert_eq!(hist(&[("1", 0.0), ("+Inf", 0.0)]).quantile(0.5), None);
    assert_eq!(
        hist(&[("-1", 5.0), ("+Inf", 10.0)]).quantile(0.2),
        Some(-1.0)
    );
    let m = parse("h_bucket{m=\"a\",le=\"1\"} 1\nh_bucket{m=\"b\",le=\"1.0\"} 2\n").expect("valid");
    let merged = m.histogram("h", &[]).expect("merged");
    assert_eq!(
        merged.buckets,
        [Bucket {
            le: 1.0,
            count: 3.0
        }]
    );
    assert_eq!(
        m.histogram("h", &[("m", "b")]).map(|h| h.buckets[0].count),
        Some(2.0)
    );
    assert_eq!(m.histogram("nope", &[]), None);
}
