//! `llmbench check` and `llmbench models`: which engines are up, and what
//! they serve.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use llmbench::engine::launch::Launched;
use llmbench::engine::{client, ModelInfo};
use llmbench::Engine;

/// Where engines come from: the same flags, file and environment as the
/// bench harness.
#[derive(clap::Args, Debug)]
pub(crate) struct EngineArgs {
    /// An engine: KIND=URL[,model=NAME][,name=LABEL][,api=ROUTE][,api_key_env=VAR].
    #[arg(
        long = "engine",
        value_name = "SPEC",
        env = "LLMBENCH_ENGINE",
        value_delimiter = ';'
    )]
    pub engines: Vec<String>,
    /// A TOML file of engines (`[[engine]]` tables).
    #[arg(long = "engines", value_name = "FILE", env = "LLMBENCH_ENGINES")]
    pub engines_file: Option<PathBuf>,
}

impl EngineArgs {
    /// The configured engines; on a terminal with none configured, ask for one.
    pub(crate) fn resolve(&self) -> Result<Vec<Engine>, String> {
        let engines =
            llmbench::harness::configured_engines(&self.engines, self.engines_file.as_deref())
                .map_err(|e| e.chain())?;
        if !engines.is_empty() {
            return Ok(engines);
        }
        if std::io::stdin().is_terminal() {
            eprint!(
                "engine (e.g. openai=http://127.0.0.1:8000 or llamacpp=http://127.0.0.1:8080): "
            );
            let _ = std::io::stderr().flush();
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .map_err(|e| format!("reading the engine: {e}"))?;
            let engine: Engine = line
                .trim()
                .parse()
                .map_err(|e: llmbench::Error| e.chain())?;
            return Ok(vec![engine]);
        }
        Err(
            "no engine configured: pass --engine KIND=URL, --engines FILE, or set LLMBENCH_ENGINE"
                .into(),
        )
    }
}

/// Start `engine` as the bench harness would when it has an
/// `[engine.launch]` table and does not answer yet (its logs in a
/// temporary folder); `None` when it needs no start. Dropping the guard
/// stops it.
pub(crate) async fn start_if_launched(engine: &Engine) -> Result<Option<Launched>, String> {
    let Some(spec) = engine.launch_spec() else {
        return Ok(None);
    };
    let c = client(engine).map_err(|e| e.chain())?;
    if c.health().await.is_ok() {
        return Ok(None);
    }
    let spec = spec
        .clone()
        .log_dir(std::env::temp_dir().join(format!("llmbench-engines-{}", std::process::id())));
    eprintln!(
        "llmbench: starting `{}`: {} (up to {:.0} s)",
        engine.label(),
        spec.command_line(),
        spec.startup_timeout.as_secs_f64()
    );
    let launched = Launched::start(&spec).await.map_err(|e| e.chain())?;
    Ok(Some(launched))
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting a runtime: {e}"))
}

/// One engine's state as `check` reports it.
struct Checked {
    health: Result<Duration, String>,
    version: Option<String>,
    models: Result<Vec<ModelInfo>, String>,
}

async fn check_one(engine: &Engine) -> Checked {
    let client = match client(engine) {
        Ok(c) => c,
        Err(e) => {
            return Checked {
                health: Err(e.chain()),
                version: None,
                models: Err(String::new()),
            }
        }
    };
    let started = Instant::now();
    let health = client
        .health()
        .await
        .map(|()| started.elapsed())
        .map_err(|e| e.chain());
    let version = client.version().await.ok().flatten();
    let models = client.models().await.map_err(|e| e.chain());
    Checked {
        health,
        version,
        models,
    }
}

/// Print rows as left-aligned columns.
pub(crate) fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, cell)| format!("{cell:<w$}", w = widths[i]))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

pub(crate) fn check(args: EngineArgs) -> Result<ExitCode, String> {
    let engines = args.resolve()?;
    let rt = runtime()?;
    let mut rows = vec![[
        "ENGINE", "KIND", "URL", "STATUS", "HEALTH", "VERSION", "MODELS",
    ]
    .map(String::from)
    .to_vec()];
    let mut problems = Vec::new();
    for engine in &engines {
        let launched = match rt.block_on(start_if_launched(engine)) {
            Ok(l) => l,
            Err(e) => {
                problems.push(format!("{}: {e}", engine.label()));
                rows.push(vec![
                    engine.label().to_string(),
                    engine.kind().as_str().to_string(),
                    engine.url().to_string(),
                    "DOWN (launch failed)".to_string(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                ]);
                continue;
            }
        };
        let c = rt.block_on(check_one(engine));
        let up = if launched.is_some() {
            "up (launched)"
        } else {
            "up"
        };
        // Stopped here (SIGTERM, then SIGKILL after its stop timeout).
        drop(launched);
        let (status, latency) = match &c.health {
            Ok(d) => (up.to_string(), format!("{:.1} ms", d.as_secs_f64() * 1e3)),
            Err(e) => {
                problems.push(format!("{}: {e}", engine.label()));
                ("DOWN".to_string(), "-".to_string())
            }
        };
        let models = match &c.models {
            Ok(m) if m.is_empty() => "0".to_string(),
            Ok(m) => format!("{} ({})", m.len(), m[0].id),
            Err(_) => "-".to_string(),
        };
        rows.push(vec![
            engine.label().to_string(),
            engine.kind().as_str().to_string(),
            engine.url().to_string(),
            status,
            latency,
            c.version.unwrap_or_else(|| "-".into()),
            models,
        ]);
    }
    print!("{}", table(&rows));
    if problems.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    for p in &problems {
        eprintln!("down: {p}");
    }
    Ok(ExitCode::FAILURE)
}

/// Bytes as a short human figure (GB/MB with one decimal).
fn bytes(n: Option<u64>) -> String {
    match n {
        None => "-".into(),
        Some(n) if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / f64::from(1u32 << 30)),
        Some(n) => format!("{:.1} MiB", n as f64 / f64::from(1u32 << 20)),
    }
}

pub(crate) fn models(args: EngineArgs) -> Result<ExitCode, String> {
    let engines = args.resolve()?;
    let rt = runtime()?;
    let mut failed = false;
    for engine in &engines {
        println!(
            "{} ({} at {})",
            engine.label(),
            engine.kind().as_str(),
            engine.url()
        );
        let listed = rt.block_on(async {
            let _launched = start_if_launched(engine)
                .await
                .map_err(|e| llmbench::Error::new(llmbench::ErrorKind::Engine, e))?;
            client(engine)?.models().await
        });
        let models = match listed {
            Ok(m) => m,
            Err(e) => {
                failed = true;
                println!("  cannot list models: {}", e.chain());
                continue;
            }
        };
        let mut families: BTreeMap<String, Vec<&ModelInfo>> = BTreeMap::new();
        for m in &models {
            families
                .entry(
                    m.family
                        .clone()
                        .unwrap_or_else(|| "(family not reported)".into()),
                )
                .or_default()
                .push(m);
        }
        for (family, list) in families {
            println!("  {family}");
            let mut rows = vec![["    MODEL", "PARAMS", "QUANT", "SIZE", "VRAM", "CONTEXT"]
                .map(String::from)
                .to_vec()];
            for m in list {
                let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
                rows.push(vec![
                    format!("    {}", m.id),
                    dash(&m.parameter_size),
                    dash(&m.quantization),
                    bytes(m.size_bytes),
                    bytes(m.vram_bytes),
                    m.context_length
                        .map_or_else(|| "-".into(), |c| c.to_string()),
                ]);
            }
            print!("{}", table(&rows));
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
