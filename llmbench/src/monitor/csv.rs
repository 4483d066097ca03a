//! `monitor.csv`: a header naming every column, then one row per sample
//! (`trial`, `t_s`, then each series; an empty cell where a source had no
//! value), each row flushed as it is written.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::Readings;
use crate::error::{Error, Result};

/// The header line for `columns` (after `trial` and `t_s`).
pub(crate) fn header(columns: &[String]) -> String {
    let mut line = String::from("trial,t_s");
    for c in columns {
        line.push(',');
        line.push_str(&field(c));
    }
    line.push('\n');
    line
}

/// One row: the trial, seconds since its `t0`, and each column's value.
pub(crate) fn row(trial: &str, t_s: f64, columns: &[String], readings: &Readings) -> String {
    let mut line = field(trial);
    line.push(',');
    line.push_str(&number(t_s));
    for c in columns {
        line.push(',');
        if let Some(v) = readings.get(c) {
            line.push_str(&number(v));
        }
    }
    line.push('\n');
    line
}

/// A number with at most three decimals and no trailing zeros.
fn number(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// `monitor.csv` being written.
pub(crate) struct CsvFile {
    path: PathBuf,
    out: BufWriter<File>,
}

impl CsvFile {
    /// Create `path` and write the header for `columns`.
    pub(crate) fn create(path: &Path, columns: &[String]) -> Result<CsvFile> {
        let file =
            File::create(path).map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
        let mut csv = CsvFile {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
        };
        csv.write(&header(columns))?;
        Ok(csv)
    }

    /// Append `line` and flush it.
    pub(crate) fn write(&mut self, line: &str) -> Result<()> {
        self.out
            .write_all(line.as_bytes())
            .and_then(|()| self.out.flush())
            .map_err(|e| Error::io(format!("writing {}", self.path.display()), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_follow_the_header_with_empty_cells_for_missing_values() {
        let columns: Vec<String> = ["host_cpu_pct", "gpu0_util_pct", "engine_requests_waiting"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            header(&columns),
            "trial,t_s,host_cpu_pct,gpu0_util_pct,engine_requests_waiting\n"
        );
        let mut r = Readings::default();
        r.set("host_cpu_pct", 12.3456);
        r.set("engine_requests_waiting", 3.0);
        r.set("not_a_column", 1.0);
        r.set("gpu0_util_pct", f64::NAN);
        assert_eq!(
            row("chat/sim", 1.0004, &columns, &r),
            "chat/sim,1,12.346,,3\n"
        );
        assert_eq!(
            row("a,\"b\"", 0.25, &columns, &Readings::default()),
            "\"a,\"\"b\"\"\",0.25,,,\n"
        );
        assert_eq!(number(-0.0001), "0");
        assert_eq!(number(1048576.0), "1048576");
    }

    #[test]
    fn the_file_is_readable_after_every_row() {
        let dir = std::env::temp_dir().join(format!("llmbench-csv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("monitor.csv");
        let columns = vec!["host_cpu_pct".to_string()];
        let mut csv = CsvFile::create(&path, &columns).expect("created");
        let mut r = Readings::default();
        r.set("host_cpu_pct", 50.0);
        csv.write(&row("t", 1.0, &columns, &r)).expect("written");
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text, "trial,t_s,host_cpu_pct\nt,1,50\n");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
