//! `llmbench merge DIR... --out DIR`: one run from the run directories of
//! its shards (`--shard I/N`), by `llmbench::report::merge`.

use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `llmbench merge`.
#[derive(clap::Args)]
pub struct MergeArgs {
    /// The shards' run directories.
    #[arg(required = true, value_name = "DIR")]
    dirs: Vec<PathBuf>,
    /// The new run directory to write the merged run to.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

pub fn run(args: MergeArgs) -> Result<ExitCode, String> {
    let merged = llmbench::report::merge(&args.dirs, &args.out).map_err(|e| e.chain())?;
    for note in &merged.notes {
        eprintln!("{note}");
    }
    println!(
        "merged {} shards: {} requests; shards started within {:.3} s of each other",
        merged.shards, merged.requests, merged.start_spread_s
    );
    for file in &merged.written.files {
        println!("{}", file.display());
    }
    Ok(ExitCode::SUCCESS)
}
