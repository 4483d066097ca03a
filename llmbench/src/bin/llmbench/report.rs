//! `llmbench report RUN_DIR`: write a run directory's reports again from
//! its records, for a run that crashed, was interrupted, or was made by an
//! older llmbench.

use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `llmbench report`.
#[derive(clap::Args)]
pub struct ReportArgs {
    /// The run directory (`target/llmbench/runs/<stamp>`).
    run_dir: PathBuf,
    /// Print only the path of `report.html`, to open it (`xdg-open "$(llmbench report --open DIR)"`).
    #[arg(long)]
    open: bool,
}

pub fn run(args: ReportArgs) -> Result<ExitCode, String> {
    let written = llmbench::report::rebuild(&args.run_dir).map_err(|e| e.chain())?;
    for note in &written.notes {
        eprintln!("note: {note}");
    }
    if args.open {
        let html = written.files.iter().find(|f| f.ends_with("report.html"));
        let html = html.ok_or("report.html was not written")?;
        let html = html.canonicalize().unwrap_or_else(|_| html.clone());
        println!("{}", html.display());
        return Ok(ExitCode::SUCCESS);
    }
    for file in &written.files {
        println!("{}", file.display());
    }
    Ok(ExitCode::SUCCESS)
}
