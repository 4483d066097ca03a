//! `llmbench merge`: the run directories of a run's shards (`--shard I/N`)
//! combined into one run directory whose counts are the sums and whose
//! percentiles come from the shards' histograms added together, exactly
//! as if one client had sent every request. Shards of different scenarios,
//! engines or seeds, or two copies of one shard, are refused.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::histograms::{self, HistogramFile, HistogramSet};
use super::meta::{RunMeta, ShardInfo};
use super::{load_meta, load_run, Cost, RunData, TrialStatus, TrialSummary, Written};
use crate::error::{Error, Result};
use crate::measure::Aggregate;
use crate::slo::SloThreshold;

/// Shard start times further apart than this make the merged timeline
/// (throughput, duration) doubtful; the merge warns.
pub const START_SPREAD_WARNING_S: f64 = 1.0;

/// One shard's run directory, read.
#[derive(Clone, Debug)]
pub(crate) struct ShardRun {
    pub dir: PathBuf,
    pub data: RunData,
    pub meta: Option<RunMeta>,
    pub histograms: HistogramFile,
}

/// What a merge did.
#[derive(Debug)]
pub struct Merged {
    /// How many shards were merged.
    pub shards: usize,
    /// Requests in all result sets.
    pub requests: u64,
    /// Latest minus earliest shard start (wall clock), in seconds.
    pub start_spread_s: f64,
    /// Warnings and notes for the user.
    pub notes: Vec<String>,
    /// The reports written.
    pub written: Written,
}

/// A result set's key: scenario, step, engine.
type Key = (String, Option<String>, String);

fn key(t: &TrialSummary) -> Key {
    (t.scenario.clone(), t.step.clone(), t.engine.clone())
}

fn show(k: &Key) -> String {
    match &k.1 {
        Some(step) => format!("`{}` ({step}) on `{}`", k.0, k.2),
        None => format!("`{}` on `{}`", k.0, k.2),
    }
}

/// The shard a run directory was.
fn shard_of(run: &ShardRun) -> Result<ShardInfo> {
    let from_meta = run.meta.as_ref().and_then(|m| m.shards.first().cloned());
    let from_trials = run
        .data
        .trials
        .iter()
        .find_map(|t| t.shards.first().cloned());
    from_meta.or(from_trials).ok_or_else(|| {
        Error::config(format!(
            "{}: not a shard (its run.json and summary.json name none); \
             run each part with --shard I/N",
            run.dir.display()
        ))
    })
}

/// Check that `runs` are distinct shards of one run: same shard count,
/// distinct indexes, the same result sets, the same seeds.
pub(crate) fn check(runs: &[ShardRun]) -> Result<Vec<ShardInfo>> {
    let first = runs
        .first()
        .ok_or_else(|| Error::config("merge: name at least one run directory"))?;
    let shards = runs.iter().map(shard_of).collect::<Result<Vec<_>>>()?;
    let mut seen: BTreeMap<u32, &Path> = BTreeMap::new();
    for (run, shard) in runs.iter().zip(&shards) {
        if shard.count != shards[0].count {
            return Err(Error::config(format!(
                "{} is shard {}/{} but {} is shard {}/{}: shards of one run share a count",
                run.dir.display(),
                shard.index,
                shard.count,
                first.dir.display(),
                shards[0].index,
                shards[0].count
            )));
        }
        if let Some(other) = seen.insert(shard.index, &run.dir) {
            return Err(Error::config(format!(
                "{} and {} are both shard {}/{}: each shard is merged once",
                other.display(),
                run.dir.display(),
                shard.index,
                shard.count
            )));
        }
    }
    let sets = |r: &ShardRun| r.data.trials.iter().map(key).collect::<Vec<_>>();
    let want = sets(first);
    for run in &runs[1..] {
        let got = sets(run);
        let mut a = want.clone();
        let mut b = got.clone();
        a.sort();
        b.sort();
        if a != b {
            let list = |v: &[Key]| v.iter().map(show).collect::<Vec<_>>().join(", ");
            return Err(Error::config(format!(
                "{} ran {} but {} ran {}: shards of one run run the same scenarios on the \
                 same engines",
                run.dir.display(),
                list(&got),
                first.dir.display(),
                list(&want)
            )));
        }
        for t in &run.data.trials {
            let Some(t0) = first.data.trials.iter().find(|f| key(f) == key(t)) else {
                continue;
            };
            if t.seed != t0.seed {
                return Err(Error::config(format!(
                    "{}: {} ran with seed {} but {} with seed {}: shards of one run share \
                     the scenario's seed (each derives its own from it)",
                    run.dir.display(),
                    show(&key(t)),
                    t.seed,
                    first.dir.display(),
                    t0.seed
                )));
            }
        }
    }
    Ok(shards)
}

fn histogram_set<'a>(run: &'a ShardRun, k: &Key) -> Result<&'a HistogramSet> {
    run.histograms
        .sets
        .iter()
        .find(|s| s.scenario == k.0 && s.step == k.1 && s.engine == k.2)
        .ok_or_else(|| {
            Error::config(format!(
                "{}: histograms.json has no result set for {}, so it cannot be merged exactly",
                run.dir.display(),
                show(k)
            ))
        })
}

/// The merged run: one result set per key, figures from the added
/// histograms, and every shard listed. Pure: reads nothing.
pub(crate) fn merge_runs(
    runs: &[ShardRun],
) -> Result<(RunData, RunMeta, Vec<HistogramSet>, Vec<String>)> {
    let shards = check(runs)?;
    let mut notes = Vec::new();
    let count = shards[0].count as usize;
    if runs.len() != count {
        let mut have: Vec<u32> = shards.iter().map(|s| s.index).collect();
        have.sort_unstable();
        notes.push(format!(
            "warning: merging {} of {count} shards (indexes {have:?}); the figures are those \
             of the shards given, not of the whole load",
            runs.len()
        ));
    }
    let first = &runs[0];
    let mut data = RunData::new(first.data.started_at.clone());
    let mut sets = Vec::new();
    for template in &first.data.trials {
        let k = key(template);
        let parts = runs
            .iter()
            .map(|r| histogram_set(r, &k))
            .collect::<Result<Vec<_>>>()?;
        let t0 = parts
            .iter()
            .map(|p| p.t0_unix_ms)
            .fold(f64::INFINITY, f64::min);
        let mut agg: Option<Aggregate> = None;
        for p in &parts {
            let one = Aggregate::from_state(&p.aggregate, p.t0_unix_ms - t0)
                .map_err(|e| e.context(format!("merging {}", show(&k))))?;
            match &mut agg {
                Some(a) => a.merge(&one),
                None => agg = Some(one),
            }
        }
        // Every shard judged its requests by the scenario's thresholds (its
        // good-request counts are summed): the merged figures are judged
        // by them too.
        let agg = agg.unwrap_or_default().judged_by(thresholds(template));
        let trials: Vec<&TrialSummary> = runs
            .iter()
            .filter_map(|r| r.data.trials.iter().find(|t| key(t) == k))
            .collect();
        let mut merged = template.clone();
        merged.summary = agg.summary();
        merged.users = trials.iter().map(|t| t.users).sum();
        merged.request_limit = trials.iter().map(|t| t.request_limit).sum::<Option<u64>>();
        merged.started_at = trials
            .iter()
            .map(|t| t.started_at.clone())
            .min()
            .unwrap_or_default();
        merged.engine_pid = None;
        // A shard that failed only its SLOs is judged again, merged.
        let own_status = |t: &TrialSummary| {
            if failed_only_slos(t) {
                TrialStatus::Ok
            } else {
                t.status
            }
        };
        merged.status = trials
            .iter()
            .map(|t| own_status(t))
            .max_by_key(|s| match s {
                TrialStatus::Ok => 0,
                TrialStatus::Interrupted => 1,
                TrialStatus::Failed => 2,
            })
            .unwrap_or(TrialStatus::Ok);
        let mut errors: Vec<String> = trials
            .iter()
            .filter(|t| !failed_only_slos(t))
            .filter_map(|t| {
                let shard = t
                    .shards
                    .first()
                    .map_or_else(String::new, |s| format!("shard {}/{}: ", s.index, s.count));
                t.error.as_ref().map(|e| format!("{shard}{e}"))
            })
            .collect();
        let misses = merged.summary.slo_misses();
        if !misses.is_empty() {
            merged.status = TrialStatus::Failed;
            errors.extend(misses);
        }
        merged.error = (!errors.is_empty()).then(|| errors.join("\n"));
        merged.cost = template
            .cost
            .as_ref()
            .map(|c| Cost::new(c.price_per_hour, &merged.summary));
        merged.shards = trials
            .iter()
            .flat_map(|t| t.shards.iter().cloned())
            .collect();
        data.trials.push(merged);
        sets.push(HistogramSet {
            scenario: k.0,
            step: k.1,
            engine: k.2,
            t0_unix_ms: t0,
            aggregate: agg.state()?,
        });
    }
    let starts: Vec<f64> = shards.iter().filter_map(|s| s.t0_unix_ms).collect();
    let spread = spread_s(&starts);
    if spread > START_SPREAD_WARNING_S {
        notes.push(format!(
            "warning: the shards started {spread:.2} s apart (over {START_SPREAD_WARNING_S} s): \
             their loads overlapped only in part, so throughput and duration describe a \
             longer, thinner run; give every shard the same --start-at"
        ));
    }
    let mut meta = first.meta.clone().unwrap_or_default();
    meta.shards = shards;
    meta.shards.sort_by_key(|s| s.index);
    meta.started_at = data.started_at.clone();
    meta.ended_at = runs
        .iter()
        .filter_map(|r| r.meta.as_ref().and_then(|m| m.ended_at.clone()))
        .max();
    Ok((data, meta, sets, notes))
}

/// The SLO thresholds `t` was judged by, from its verdicts.
fn thresholds(t: &TrialSummary) -> Vec<SloThreshold> {
    t.summary
        .slos
        .iter()
        .map(|c| SloThreshold {
            metric: c.metric,
            percentile: c.percentile,
            limit: Duration::from_secs_f64(c.limit_ms.max(0.0) / 1e3),
        })
        .collect()
}

/// Whether `t` failed for its missed SLOs alone (its error is their lines).
fn failed_only_slos(t: &TrialSummary) -> bool {
    let misses = t.summary.slo_misses();
    t.status == TrialStatus::Failed
        && !misses.is_empty()
        && t.error.as_deref() == Some(misses.join("\n").as_str())
}

/// Latest minus earliest of `starts` (ms since the epoch), in seconds.
fn spread_s(starts: &[f64]) -> f64 {
    let min = starts.iter().copied().fold(f64::INFINITY, f64::min);
    let max = starts.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if starts.is_empty() {
        0.0
    } else {
        (max - min) / 1e3
    }
}

/// Merge the shards' run directories `dirs` into the new run directory
/// `out`: `summary.json`, `run.json`, `histograms.json`, `requests.jsonl`
/// (the shards' records one after another; each record's times count
/// from its own shard's t0) and every report.
///
/// ```no_run
/// use std::path::PathBuf;
/// let dirs: Vec<PathBuf> = (0..4).map(|i| PathBuf::from(format!("results/shard-{i}"))).collect();
/// let merged = llmbench::report::merge(&dirs, std::path::Path::new("results/merged"))?;
/// println!("{} requests from {} shards", merged.requests, merged.shards);
/// # Ok::<(), llmbench::Error>(())
/// ```
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<Merged> {
    let mut runs = Vec::new();
    let mut notes = Vec::new();
    for dir in dirs {
        let (data, mut read_notes) = load_run(dir)?;
        notes.extend(
            read_notes
                .drain(..)
                .map(|n| format!("note: {}: {n}", dir.display())),
        );
        runs.push(ShardRun {
            dir: dir.clone(),
            data,
            meta: load_meta(dir),
            histograms: histograms::load(dir)?,
        });
    }
    let (data, meta, sets, mut merge_notes) = merge_runs(&runs)?;
    notes.append(&mut merge_notes);
    if out.join("summary.json").exists() || out.join("requests.jsonl").exists() {
        return Err(Error::config(format!(
            "{} already holds a run; merge into a new directory",
            out.display()
        )));
    }
    fs::create_dir_all(out).map_err(|e| Error::io(format!("creating {}", out.display()), e))?;
    let jsonl = out.join("requests.jsonl");
    let mut w =
        File::create(&jsonl).map_err(|e| Error::io(format!("creating {}", jsonl.display()), e))?;
    for run in &runs {
        let path = run.dir.join("requests.jsonl");
        match File::open(&path) {
            Ok(mut r) => {
                io::copy(&mut r, &mut w)
                    .map_err(|e| Error::io(format!("copying {}", path.display()), e))?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format!("opening {}", path.display()), e)),
        }
    }
    drop(w);
    let dir = super::RunDir {
        path: out.to_path_buf(),
    };
    dir.write_summary(&data)?;
    dir.write_meta(&meta)?;
    dir.write_histograms(&sets)?;
    let mut written = super::rebuild(out)?;
    notes.append(&mut written.notes);
    written.notes = Vec::new();
    let starts: Vec<f64> = meta.shards.iter().filter_map(|s| s.t0_unix_ms).collect();
    Ok(Merged {
        shards: runs.len(),
        requests: data.trials.iter().map(|t| t.summary.requests).sum(),
        start_spread_s: spread_s(&starts),
        notes,
        written,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::test_support::record;

    /// Shard `index` of `count` of `scenario` on `sim`: `n` requests whose
    /// TTFTs step by `index`, its clock started `t0_ms` after the epoch.
    fn shard(scenario: &str, index: u32, count: u32, seed: u64, t0_ms: f64) -> ShardRun {
        judged_shard(scenario, (index, count), seed, t0_ms, None, 0.0)
    }

    /// [`shard`] judged by `slo` as the harness judges a trial, its TTFTs
    /// `slower` ms later.
    fn judged_shard(
        scenario: &str,
        (index, count): (u32, u32),
        seed: u64,
        t0_ms: f64,
        slo: Option<crate::Slo>,
        slower: f64,
    ) -> ShardRun {
        let mut agg = Aggregate::with_slos(slo.as_slice());
        for i in 0..10 {
            let f = f64::from(i * count + index);
            agg.add(&record(f, 10.0 + f + slower, 50.0 + f + slower, &[4.0], 2));
        }
        let misses = agg.summary().slo_misses();
        let (status, error) = if misses.is_empty() {
            ("ok", None)
        } else {
            ("failed", Some(misses.join("\n")))
        };
        let info = ShardInfo {
            index,
            count,
            seed: Some(seed + u64::from(index)),
            start_at: None,
            t0_unix_ms: Some(t0_ms),
        };
        let mut summary = serde_json::to_value(agg.summary()).unwrap();
        let fields = serde_json::json!({
            "scenario": scenario, "description": "", "engine": "sim", "engine_kind": "openai",
            "engine_url": "http://sim", "model": "m", "mode": "chat", "max_tokens": 8,
            "users": 1, "duration_limit_s": null, "request_limit": 10, "seed": seed,
            "started_at": "2026-12-07T12:00:00Z", "status": status, "error": error,
            "shards": [info],
        });
        summary
            .as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        let trial: TrialSummary = serde_json::from_value(summary).unwrap();
        let mut data = RunData::new("2026-12-07T12:00:00Z".into());
        data.trials.push(trial);
        ShardRun {
            dir: PathBuf::from(format!("runs/{scenario}-{index}")),
            data,
            meta: None,
            histograms: HistogramFile {
                schema: 1,
                sets: vec![HistogramSet {
                    scenario: scenario.into(),
                    step: None,
                    engine: "sim".into(),
                    t0_unix_ms: t0_ms,
                    aggregate: agg.state().unwrap(),
                }],
            },
        }
    }

    #[test]
    fn merged_counts_are_sums_and_percentiles_those_of_the_union() {
        let runs: Vec<_> = (0..3).map(|i| shard("chat", i, 3, 7, 1000.0)).collect();
        let (data, meta, _, notes) = merge_runs(&runs).unwrap();
        assert!(notes.is_empty(), "{notes:?}");
        let t = &data.trials[0];
        assert_eq!(
            (t.summary.requests, t.users, t.request_limit),
            (30, 3, Some(30))
        );
        assert_eq!(t.seed, 7);
        let ttft = t.summary.ttft.clone().unwrap();
        assert_eq!((ttft.min, ttft.max), (10.0, 39.0));
        // The 15th of 10..=39 is 24; HDR keeps 3 significant digits.
        assert!((ttft.p50 - 24.0).abs() <= 24.0 * 1e-3, "{}", ttft.p50);
        assert_eq!(meta.shards.len(), 3);
    }

    #[test]
    fn merged_figures_are_judged_by_the_shards_slos_again() {
        // Shard 1's first tokens come 40 ms later: it misses TTFT p50 <= 35
        // ms alone (p50 59 ms), but the union's p50 is 28 ms.
        let slo = || Some(crate::Slo::ttft_p50_ms(35));
        let runs = vec![
            judged_shard("chat", (0, 2), 7, 1000.0, slo(), 0.0),
            judged_shard("chat", (1, 2), 7, 1000.0, slo(), 40.0),
        ];
        assert_eq!(runs[1].data.trials[0].status, TrialStatus::Failed);
        let (data, _, _, notes) = merge_runs(&runs).unwrap();
        assert!(notes.is_empty(), "{notes:?}");
        let t = &data.trials[0];
        let check = &t.summary.slos[0];
        assert!(check.passed, "{check:?}");
        assert!((check.observed_ms.unwrap() - 28.0).abs() < 0.1, "{check:?}");
        assert_eq!((t.status, t.error.as_deref()), (TrialStatus::Ok, None));
        // Shard 0's ten requests met it, shard 1's none.
        assert_eq!(t.summary.good_requests, Some(10));
        assert_eq!(t.summary.slo_attainment, Some(0.5));

        // Both slow: the merged run misses too, and says so.
        let runs = vec![
            judged_shard("chat", (0, 2), 7, 1000.0, slo(), 40.0),
            judged_shard("chat", (1, 2), 7, 1000.0, slo(), 40.0),
        ];
        let (data, _, _, _) = merge_runs(&runs).unwrap();
        let t = &data.trials[0];
        assert_eq!(t.status, TrialStatus::Failed);
        assert_eq!(
            t.error.as_deref(),
            t.summary.slo_misses().first().map(String::as_str)
        );
        assert_eq!(t.summary.good_requests, Some(0));
    }

    #[test]
    fn shards_of_other_runs_or_twice_the_same_are_refused_by_name() {
        let err = |runs: Vec<ShardRun>| merge_runs(&runs).unwrap_err().to_string();
        let e = err(vec![
            shard("chat", 0, 2, 7, 0.0),
            shard("rag", 1, 2, 7, 0.0),
        ]);
        assert!(
            e.contains("`rag` on `sim`") && e.contains("same scenarios"),
            "{e}"
        );
        let e = err(vec![
            shard("chat", 0, 2, 7, 0.0),
            shard("chat", 1, 2, 8, 0.0),
        ]);
        assert!(e.contains("seed 8") && e.contains("seed 7"), "{e}");
        let e = err(vec![
            shard("chat", 0, 2, 7, 0.0),
            shard("chat", 1, 3, 7, 0.0),
        ]);
        assert!(e.contains("share a count"), "{e}");
        let e = err(vec![
            shard("chat", 1, 2, 7, 0.0),
            shard("chat", 1, 2, 7, 0.0),
        ]);
        assert!(e.contains("are both shard 1/2"), "{e}");
    }

    #[test]
    fn shards_started_apart_or_missing_are_warned_about() {
        let runs = vec![
            shard("chat", 0, 3, 7, 1000.0),
            shard("chat", 1, 3, 7, 3500.0),
        ];
        let (data, _, _, notes) = merge_runs(&runs).unwrap();
        assert!(
            notes.iter().any(|n| n.contains("merging 2 of 3 shards")),
            "{notes:?}"
        );
        assert!(
            notes.iter().any(|n| n.contains("2.50 s apart")),
            "{notes:?}"
        );
        // On one timeline: the second shard's records start 2.5 s later.
        assert!(data.trials[0].summary.duration_s > 2.5);
    }
}
