//! The `llmbench` command line: the jobs that need no bench file (check
//! engines, list models, send one request, run scenario files, serve the
//! simulator, write a run's reports again, compare two runs, merge a run's
//! shards).
//! A thin shell over the library; everything here is reachable from code.

mod compare;
mod engines;
mod merge;
mod report;
mod request;
mod run;
mod sim;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "llmbench", version, about = "Benchmark LLM serving engines")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check each configured engine: reachable, healthy, version, models.
    Check(engines::EngineArgs),
    /// List the models each configured engine serves.
    Models(engines::EngineArgs),
    /// Send one streaming request and print the answer as it arrives.
    Request(request::RequestArgs),
    /// Run scenario files (YAML or TOML) as `cargo bench` runs bench files:
    /// same engines, flags, run directory and baselines.
    Run(Box<run::RunArgs>),
    /// Serve the built-in simulated engine until Ctrl-C.
    Sim(sim::SimArgs),
    /// Compare two runs or baselines metric by metric (A is the baseline).
    Compare(compare::CompareArgs),
    /// Write a run directory's reports again from its records (also for a
    /// run that crashed or was interrupted).
    Report(report::ReportArgs),
    /// Merge the run directories of a run's shards (`--shard I/N`) into one
    /// run: counts summed, percentiles from the added histograms, every
    /// report written.
    Merge(merge::MergeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check(args) => engines::check(args),
        Command::Models(args) => engines::models(args),
        Command::Request(args) => request::run(args),
        Command::Run(args) => run::run(*args),
        Command::Sim(args) => sim::run(args).map(|()| ExitCode::SUCCESS),
        Command::Report(args) => report::run(args),
        Command::Compare(args) => compare::run(args),
        Command::Merge(args) => merge::run(args),
    };
    result.unwrap_or_else(|msg| {
        eprintln!("error: {msg}");
        ExitCode::FAILURE
    })
}
