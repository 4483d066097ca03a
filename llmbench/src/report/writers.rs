//! The report writers behind one [`Report`] trait, as criterion's: every
//! hook does nothing by default, and [`Reports`] fans one stream of events
//! out to every writer. A writer sees each record of `requests.jsonl` in
//! order (`record`), then the run's figures (`finish`), and writes its
//! file(s) aside before renaming them into place.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};

use super::analysis::Analyses;
use super::chart_data::ChartData;
use super::csv::write_summary as write_summary_csv;
use super::files::EngineFiles;
use super::meta::RunMeta;
use super::{html, markdown, write_atomically, RunData, TrialSummary};
use crate::error::Result;
use crate::measure::RequestRecord;

/// Everything the end-of-run writers read.
pub(crate) struct ReportInput<'a> {
    pub run: &'a RunData,
    pub meta: Option<&'a RunMeta>,
    pub charts: &'a ChartData,
    pub analyses: &'a Analyses,
}

/// One report writer.
pub(crate) trait Report {
    /// One record of `requests.jsonl`, in file order.
    fn record(&mut self, _r: &RequestRecord) -> Result<()> {
        Ok(())
    }

    /// The run is complete: write the file(s) and say which.
    fn finish(&mut self, _input: &ReportInput<'_>) -> Result<Vec<PathBuf>> {
        Ok(Vec::new())
    }
}

/// Every writer at once.
pub(crate) struct Reports(Vec<Box<dyn Report>>);

impl Reports {
    /// The writers of a run directory: per-engine results, `summary.csv`,
    /// `report.md` and `report.html`.
    pub(crate) fn standard(dir: &Path, run: &RunData) -> Self {
        Reports(vec![
            Box::new(EngineResults::new(dir, run)),
            Box::new(Whole::new(dir, "summary.csv", |input, w| {
                write_summary_csv(&input.run.trials, w).map_err(|e| io::Error::other(e.to_string()))
            })),
            Box::new(Whole::new(dir, "report.md", |input, w| {
                markdown::write(input.run, input.meta, input.analyses, w)
            })),
            Box::new(Whole::new(dir, "report.html", |input, w| {
                html::write(input.run, input.meta, input.charts, input.analyses, w)
            })),
        ])
    }
}

impl Report for Reports {
    fn record(&mut self, r: &RequestRecord) -> Result<()> {
        self.0.iter_mut().try_for_each(|w| w.record(r))
    }

    fn finish(&mut self, input: &ReportInput<'_>) -> Result<Vec<PathBuf>> {
        let mut files = Vec::new();
        for w in &mut self.0 {
            files.extend(w.finish(input)?);
        }
        Ok(files)
    }
}

type WriteFn = fn(&ReportInput<'_>, &mut io::BufWriter<std::fs::File>) -> io::Result<()>;

/// A report written whole at the end from the run's figures.
struct Whole {
    path: PathBuf,
    write: WriteFn,
}

impl Whole {
    fn new(dir: &Path, name: &str, write: WriteFn) -> Self {
        Whole {
            path: dir.join(name),
            write,
        }
    }
}

impl Report for Whole {
    fn finish(&mut self, input: &ReportInput<'_>) -> Result<Vec<PathBuf>> {
        let write = self.write;
        write_atomically(&self.path, |w| write(input, w))?;
        Ok(vec![self.path.clone()])
    }
}

/// `<engine>_results.csv` and `.json`, streamed record by record.
struct EngineResults {
    dir: PathBuf,
    trials: BTreeMap<String, Vec<TrialSummary>>,
    open: HashMap<String, EngineFiles>,
}

impl EngineResults {
    fn new(dir: &Path, run: &RunData) -> Self {
        let mut trials: BTreeMap<String, Vec<TrialSummary>> = BTreeMap::new();
        for t in &run.trials {
            trials.entry(t.engine.clone()).or_default().push(t.clone());
        }
        EngineResults {
            dir: dir.to_path_buf(),
            trials,
            open: HashMap::new(),
        }
    }
}

impl Report for EngineResults {
    fn record(&mut self, r: &RequestRecord) -> Result<()> {
        if !self.open.contains_key(&r.engine) {
            let trials: Vec<&TrialSummary> = self
                .trials
                .get(&r.engine)
                .map(|t| t.iter().collect())
                .unwrap_or_default();
            let files = EngineFiles::open(&self.dir, &r.engine, &trials)?;
            self.open.insert(r.engine.clone(), files);
        }
        match self.open.get_mut(&r.engine) {
            Some(files) => files.add(r),
            None => Ok(()),
        }
    }

    fn finish(&mut self, _input: &ReportInput<'_>) -> Result<Vec<PathBuf>> {
        let mut names: Vec<String> = self.open.keys().cloned().collect();
        names.sort();
        let mut done = Vec::new();
        for name in names {
            if let Some(files) = self.open.remove(&name) {
                done.extend(files.finish()?);
            }
        }
        Ok(done)
    }
}
