//! `llmbench compare A B`: compare two runs or baselines, metric by metric,
//! as `--baseline` does (A is the baseline, B the new one).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use llmbench::baseline::{self, Baseline, BaselineSet, CompareConfig, Comparison, SetComparison};

/// Arguments of `llmbench compare`.
#[derive(clap::Args)]
pub struct CompareArgs {
    /// The baseline: a run directory, a baseline directory, or a baseline name.
    a: String,
    /// The new one: a run directory, a baseline directory, or a baseline name.
    b: String,
    /// Where baseline names are looked up.
    #[arg(
        long,
        value_name = "DIR",
        env = "LLMBENCH_BASELINE_DIR",
        default_value = "target/llmbench/baselines"
    )]
    baseline_dir: PathBuf,
    /// A relative change smaller than this is noise.
    #[arg(
        long,
        value_name = "F",
        env = "LLMBENCH_NOISE_THRESHOLD",
        default_value_t = 0.05
    )]
    noise_threshold: f64,
    /// Print the comparison as a Markdown table (for a pull-request comment).
    #[arg(long)]
    markdown: bool,
    /// Exit 1 when a metric regressed.
    #[arg(long, env = "LLMBENCH_FAIL_ON_REGRESSION")]
    fail_on_regression: bool,
}

/// A baseline from `what`: a run directory, a baseline directory or a name.
fn open(what: &str, root: &Path) -> Result<Baseline, String> {
    let path = Path::new(what);
    if path.join("baseline.json").is_file() {
        let text = std::fs::read_to_string(path.join("baseline.json"))
            .map_err(|e| format!("reading {}: {e}", path.join("baseline.json").display()))?;
        return baseline::parse(&text, &path.join("baseline.json")).map_err(|e| e.chain());
    }
    if path.join("requests.jsonl").is_file() {
        let sets: Vec<BaselineSet> = baseline::sets_of_run(path).map_err(|e| e.chain())?;
        return Ok(Baseline {
            schema: baseline::BASELINE_SCHEMA,
            name: what.to_string(),
            saved_at: String::new(),
            llmbench_version: String::new(),
            git: None,
            sets,
        });
    }
    baseline::load(root, what).map_err(|e| e.chain())
}

pub fn run(args: CompareArgs) -> Result<ExitCode, String> {
    let old = open(&args.a, &args.baseline_dir)?;
    let new = open(&args.b, &args.baseline_dir)?;
    let cfg = CompareConfig {
        noise: args.noise_threshold,
        ..CompareConfig::default()
    };
    let sets: Vec<SetComparison> = new
        .sets
        .iter()
        .map(|s| SetComparison::of(&old, s, &cfg))
        .collect();
    let comparison = Comparison {
        schema: baseline::BASELINE_SCHEMA,
        baseline: old.name.clone(),
        baseline_saved_at: old.saved_at.clone(),
        noise_threshold: cfg.noise,
        significance: cfg.significance,
        sets,
    };
    if args.markdown {
        print!("{}", comparison.markdown());
    } else {
        for s in &comparison.sets {
            match &s.step {
                Some(step) => println!("{}/{} ({step})", s.scenario, s.engine),
                None => println!("{}/{}", s.scenario, s.engine),
            }
            for line in s.lines() {
                println!("    {line}");
            }
        }
    }
    let regressed = comparison
        .sets
        .iter()
        .any(|s| s.regressions().next().is_some());
    Ok(if regressed && args.fail_on_regression {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
