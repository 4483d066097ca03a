//! `llmbench run FILE...`: run scenario files (YAML or TOML) through the
//! bench harness, with its flags, engines, run directory and baselines.

use std::path::PathBuf;
use std::process::ExitCode;

use llmbench::harness::{self, Scenario};

/// Arguments of `llmbench run`: the files, then every flag a bench binary
/// takes (`cargo bench -- --help`). libtest's FILTER is `--filter` here.
#[derive(clap::Args)]
#[command(
    mut_arg("filter", |a| a.index(None).long("filter").value_name("FILTER")
        .help("Run only the trials whose name (scenario/engine) contains FILTER")),
    mut_arg("bench", |a| a.hide(true)),
    mut_arg("include_ignored", |a| a.hide(true)),
    mut_arg("ignored", |a| a.hide(true)),
    mut_arg("nocapture", |a| a.hide(true)),
    mut_arg("show_output", |a| a.hide(true)),
    mut_arg("unstable_flags", |a| a.hide(true)),
    mut_arg("test", |a| a.help("Smoke-test each scenario (two short requests) instead of measuring it")),
    help_template = "{about-with-newline}\n{usage-heading} {usage}\n\n{all-args}{after-help}",
    after_help = "A file's name (without .yaml, .yml or .toml) is its scenario's name unless it \
                  sets `name`. Without --engine/--engines the scenarios run against the \
                  built-in simulated engine. Examples are in scenarios/."
)]
pub(crate) struct RunArgs {
    /// Scenario files: YAML (.yaml, .yml) or TOML (.toml).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    #[command(flatten)]
    harness: harness::Args,
}

pub(crate) fn run(args: RunArgs) -> Result<ExitCode, String> {
    let mut errors = Vec::new();
    let mut scenarios: Vec<Scenario> = Vec::new();
    for file in &args.files {
        match llmbench::scenario::load(file) {
            Ok(scenario) => scenarios.push(scenario),
            Err(e) => errors.push(e.chain()),
        }
    }
    if !errors.is_empty() {
        // Every file's problems at once, before anything runs.
        return Err(errors.join("\nerror: "));
    }
    let mut harness = args.harness;
    // Measure, as `cargo bench` does; `--test` asks for a smoke test.
    harness.libtest.bench = !harness.libtest.test;
    Ok(harness::run_scenarios(harness, scenarios))
}
