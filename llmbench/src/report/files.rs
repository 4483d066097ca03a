//! Writing every report of a run directory from its `summary.json`,
//! `requests.jsonl` and `run.json`: at the end of a run, and again with
//! `llmbench report DIR` for a run that crashed or was interrupted (the
//! writers themselves are in `writers.rs`). Every file is written aside and
//! renamed, and the records are streamed (never all in memory), so a run of
//! a million requests reports in constant memory.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::analysis::analyse_run;
use super::chart_data::ChartData;
use super::csv::ResultsCsv;
use super::meta::RunMeta;
use super::writers::{Report, ReportInput, Reports};
use super::{RunData, TrialStatus, TrialSummary};
use crate::error::{Error, Result};
use crate::measure::{Aggregate, RequestRecord};

/// What writing the reports did.
#[derive(Debug, Default)]
pub struct Written {
    /// Every file written.
    pub files: Vec<PathBuf>,
    /// Things the user should know: lines skipped, figures rebuilt.
    pub notes: Vec<String>,
}

/// `<engine>_results`: the engine's label with anything but letters,
/// digits, `-`, `_` and `.` made `_`, so it is a safe file name.
pub(crate) fn engine_file_stem(engine: &str) -> String {
    let safe: String = engine
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{}_results", safe.trim_start_matches('.'))
}

/// Each line of `requests.jsonl` in order: the record, or why line `n`
/// could not be read.
fn records(dir: &Path) -> Result<impl Iterator<Item = std::result::Result<RequestRecord, String>>> {
    let path = dir.join("requests.jsonl");
    let file = match File::open(&path) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(Error::io(format!("opening {}", path.display()), e)),
    };
    let lines = file.into_iter().flat_map(|f| BufReader::new(f).lines());
    Ok(lines.enumerate().filter_map(move |(i, line)| match line {
        Ok(l) if l.trim().is_empty() => None,
        Ok(l) => Some(
            serde_json::from_str(&l)
                .map_err(|e| format!("requests.jsonl line {}: not a record ({e}); skipped", i + 1)),
        ),
        Err(e) => Some(Err(format!("requests.jsonl line {}: {e}; skipped", i + 1))),
    }))
}

/// Temporary per-engine outputs, renamed into place when all is written.
pub(crate) struct EngineFiles {
    csv: ResultsCsv<BufWriter<File>>,
    json: BufWriter<File>,
    first: bool,
    paths: [(PathBuf, PathBuf); 2],
    /// Removes the temporaries a failed write (disk full) leaves.
    _temporaries: Temporaries,
}

/// Files removed when dropped, if still there: the temporaries of a write
/// that did not reach its rename.
struct Temporaries(Vec<PathBuf>);

impl Drop for Temporaries {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = fs::remove_file(path);
        }
    }
}

fn create(path: &Path) -> Result<BufWriter<File>> {
    File::create(path)
        .map(BufWriter::new)
        .map_err(|e| Error::io(format!("creating {}", path.display()), e))
}

impl EngineFiles {
    pub(crate) fn open(dir: &Path, engine: &str, trials: &[&TrialSummary]) -> Result<Self> {
        let stem = engine_file_stem(engine);
        let csv_path = dir.join(format!("{stem}.csv"));
        let json_path = dir.join(format!("{stem}.json"));
        // `sim_results.csv.tmp`: the two files' temporaries must differ.
        let tmp = |p: &Path| {
            let mut name = p.as_os_str().to_owned();
            name.push(".tmp");
            PathBuf::from(name)
        };
        let temporaries = Temporaries(vec![tmp(&csv_path), tmp(&json_path)]);
        let csv = ResultsCsv::new(create(&tmp(&csv_path))?, &format!("{stem}.csv"))?;
        let mut json = create(&tmp(&json_path))?;
        let head = serde_json::json!({
            "schema": super::SCHEMA,
            "engine": engine,
            "trials": trials,
        })
        .to_string();
        // The head object without its closing brace, then the records.
        let head = head.strip_suffix('}').unwrap_or(&head);
        write!(json, "{head},\"requests\":[")
            .map_err(|e| Error::io(format!("writing {}", json_path.display()), e))?;
        Ok(EngineFiles {
            csv,
            json,
            first: true,
            paths: [(tmp(&csv_path), csv_path), (tmp(&json_path), json_path)],
            _temporaries: temporaries,
        })
    }

    pub(crate) fn add(&mut self, r: &RequestRecord) -> Result<()> {
        self.csv.add(r)?;
        let sep = if self.first { "\n" } else { ",\n" };
        self.first = false;
        let path = &self.paths[1].1;
        self.json
            .write_all(sep.as_bytes())
            .and_then(|()| serde_json::to_writer(&mut self.json, r).map_err(io::Error::from))
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))
    }

    pub(crate) fn finish(mut self) -> Result<Vec<PathBuf>> {
        let json_path = self.paths[1].1.clone();
        let io_err = |e| Error::io(format!("writing {}", json_path.display()), e);
        self.json.write_all(b"\n]}\n").map_err(io_err)?;
        let json = self.json.into_inner().map_err(|e| io_err(e.into_error()))?;
        let csv = self.csv.finish()?;
        let csv = csv
            .into_inner()
            .map_err(|e| Error::io("writing the results CSV", e.into_error()))?;
        for file in [csv, json] {
            file.sync_all().map_err(io_err)?;
        }
        let mut done = Vec::new();
        for (tmp, path) in self.paths {
            fs::rename(&tmp, &path)
                .map_err(|e| Error::io(format!("renaming {} into place", path.display()), e))?;
            done.push(path);
        }
        Ok(done)
    }
}

/// Write every report of `dir` ([`Reports::standard`]) from `run`, the
/// records in `dir/requests.jsonl`, `dir/monitor.csv` and `meta`.
pub(crate) fn write_reports(dir: &Path, run: &RunData, meta: Option<&RunMeta>) -> Result<Written> {
    let mut written = Written::default();
    let mut reports = Reports::standard(dir, run);
    let mut charts = ChartData::new(run);
    for rec in records(dir)? {
        match rec {
            Ok(r) => {
                reports.record(&r)?;
                charts.add(&r);
            }
            Err(note) => written.notes.push(note),
        }
    }
    if let Ok(text) = fs::read_to_string(dir.join("monitor.csv")) {
        charts.add_monitor(&text);
    }
    let analyses = analyse_run(run, &charts);
    let input = ReportInput {
        run,
        meta,
        charts: &charts,
        analyses: &analyses,
    };
    written.files = reports.finish(&input)?;
    Ok(written)
}

/// The run in `dir` as its `summary.json` says, with a result set rebuilt
/// from `requests.jsonl` for each scenario x step x engine the summary does
/// not have (the trial that was running when the process died, or all of
/// them when `summary.json` is missing or unreadable). Rebuilt result sets
/// are marked interrupted and carry no SLO verdict.
pub(crate) fn load_run(dir: &Path) -> Result<(RunData, Vec<String>)> {
    let mut notes = Vec::new();
    let path = dir.join("summary.json");
    let mut run = match fs::read_to_string(&path) {
        Ok(text) => match serde_json::from_str::<RunData>(&text) {
            Ok(run) => run,
            Err(e) => {
                notes.push(format!(
                    "{} is unreadable ({e}); every figure is rebuilt from requests.jsonl",
                    path.display()
                ));
                RunData::new(String::new())
            }
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            notes.push(format!(
                "{} is missing; every figure is rebuilt from requests.jsonl",
                path.display()
            ));
            RunData::new(String::new())
        }
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
    };
    if run.schema > super::SCHEMA {
        return Err(Error::io(
            format!("reading {}", path.display()),
            io::Error::other(format!(
                "schema {} is newer than this llmbench reads ({}); use a newer llmbench",
                run.schema,
                super::SCHEMA
            )),
        ));
    }
    type Key = (String, Option<String>, String);
    let known: Vec<Key> = run
        .trials
        .iter()
        .map(|t| (t.scenario.clone(), t.step.clone(), t.engine.clone()))
        .collect();
    let mut rebuilt: BTreeMap<Key, (String, Aggregate)> = BTreeMap::new();
    for rec in records(dir)? {
        let Ok(r) = rec else { continue };
        let key = (r.scenario.clone(), r.step.clone(), r.engine.clone());
        if known.contains(&key) {
            continue;
        }
        let entry = rebuilt
            .entry(key)
            .or_insert_with(|| (r.model.clone(), Aggregate::default()));
        entry.1.add(&r);
    }
    for ((scenario, step, engine), (model, agg)) in rebuilt {
        notes.push(format!(
            "scenario `{scenario}` on `{engine}`{}: not in summary.json; its figures are \
             rebuilt from {} records in requests.jsonl (no SLO verdict)",
            step.as_ref()
                .map_or_else(String::new, |s| format!(" ({s})")),
            agg.requests()
        ));
        run.trials.push(TrialSummary {
            scenario,
            step,
            description: String::new(),
            engine,
            engine_kind: String::new(),
            engine_url: String::new(),
            engine_command: None,
            engine_pid: None,
            model,
            mode: Default::default(),
            max_tokens: 0,
            users: 0,
            duration_limit_s: None,
            request_limit: None,
            seed: 0,
            started_at: String::new(),
            status: TrialStatus::Interrupted,
            error: Some("rebuilt from requests.jsonl: the run ended before its summary".into()),
            cost: None,
            workload: None,
            shards: Vec::new(),
            summary: agg.summary(),
        });
    }
    Ok((run, notes))
}

/// Read `run.json` in `dir`, if it is there and readable.
pub(crate) fn load_meta(dir: &Path) -> Option<RunMeta> {
    let text = fs::read_to_string(dir.join("run.json")).ok()?;
    serde_json::from_str(&text).ok()
}
