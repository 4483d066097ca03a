//! `llmbench sim`: the built-in simulated engine in the foreground, speaking
//! the protocols, delays and faults chosen on the command line.

use std::net::SocketAddr;
use std::time::Duration;

use llmbench::sim::{Fault, Itl, Protocol, SimConfig, Simulator};

#[derive(clap::Args)]
pub(crate) struct SimArgs {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8000, env = "LLMBENCH_SIM_PORT")]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1", env = "LLMBENCH_SIM_HOST")]
    host: std::net::IpAddr,
    /// Protocol to speak: openai, ollama, tgi or llamacpp; repeat it (or
    /// separate with commas) for several. Default: all four at once.
    #[arg(
        long = "protocol",
        value_name = "PROTOCOL",
        value_delimiter = ',',
        env = "LLMBENCH_SIM_PROTOCOL"
    )]
    protocols: Vec<Protocol>,
    /// Model name the simulator reports.
    #[arg(long, default_value = "llmbench-sim", env = "LLMBENCH_SIM_MODEL")]
    model: String,
    /// Fixed part of time to first token, in milliseconds.
    #[arg(long, default_value_t = 20.0, env = "LLMBENCH_SIM_TTFT_MS")]
    ttft_ms: f64,
    /// Prefill cost per prompt token, in microseconds.
    #[arg(long, default_value_t = 50.0, env = "LLMBENCH_SIM_PREFILL_US")]
    prefill_us: f64,
    /// Gap between tokens, in milliseconds.
    #[arg(long, default_value_t = 8.0, env = "LLMBENCH_SIM_ITL_MS")]
    itl_ms: f64,
    /// Requests served at once; more wait in a queue.
    #[arg(long, default_value_t = 64, env = "LLMBENCH_SIM_CONCURRENCY")]
    concurrency: usize,
    /// Seed for generated text, sampled gaps and which requests fail.
    #[arg(long, default_value_t = 0, env = "LLMBENCH_SIM_SEED")]
    seed: u64,
    /// Share of generation requests (0 to 1) that get the `--fault`.
    #[arg(long, default_value_t = 0.0, env = "LLMBENCH_SIM_FAULT_RATE")]
    fault_rate: f64,
    /// The fault `--fault-rate` injects: `status` (an HTTP error, see
    /// `--fault-status`), `drop` (close before answering), `stall` (headers,
    /// then nothing), `cut:N`, `malformed:N` or `error:N` (after N tokens).
    #[arg(long, default_value = "status", env = "LLMBENCH_SIM_FAULT")]
    fault: String,
    /// The HTTP status of `--fault status` (429, 500, 503, ...).
    #[arg(long, default_value_t = 503, env = "LLMBENCH_SIM_FAULT_STATUS")]
    fault_status: u16,
    /// Pretend to load the model for this many seconds after start:
    /// `/health` and generation requests answer 503 until then.
    #[arg(long, default_value_t = 0.0, env = "LLMBENCH_SIM_LOADING_SECS")]
    loading_secs: f64,
}

fn millis(ms: f64, flag: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(ms / 1e3)
        .map_err(|_| format!("--{flag}: not a valid duration: {ms}"))
}

/// `--fault` as a [`Fault`].
fn parse_fault(text: &str, status: u16) -> Result<Fault, String> {
    let (kind, n) = match text.split_once(':') {
        Some((kind, n)) => {
            let n = n
                .trim()
                .parse::<u32>()
                .map_err(|_| format!("--fault {text}: `{n}` is not a token count"))?;
            (kind.trim(), Some(n))
        }
        None => (text.trim(), None),
    };
    match (kind, n) {
        ("status", None) => Ok(Fault::Status(status)),
        ("drop", None) => Ok(Fault::Drop),
        ("stall", None) => Ok(Fault::Stall),
        ("cut", n) => Ok(Fault::CutAfter(n.unwrap_or(0))),
        ("malformed", n) => Ok(Fault::MalformedAfter(n.unwrap_or(0))),
        ("error", n) => Ok(Fault::ErrorEventAfter(n.unwrap_or(0))),
        _ => Err(format!(
            "--fault {text}: expected status, drop, stall, cut:N, malformed:N or error:N"
        )),
    }
}

/// The configuration the arguments describe.
fn config(args: &SimArgs) -> Result<SimConfig, String> {
    if !(0.0..=1.0).contains(&args.fault_rate) {
        return Err(format!(
            "--fault-rate {}: must be between 0 and 1",
            args.fault_rate
        ));
    }
    let fault = parse_fault(&args.fault, args.fault_status)?;
    let loading = Duration::try_from_secs_f64(args.loading_secs).map_err(|_| {
        format!(
            "--loading-secs: not a valid duration: {}",
            args.loading_secs
        )
    })?;
    let mut config = SimConfig::new()
        .protocols(&args.protocols)
        .model(args.model.clone())
        .ttft_base(millis(args.ttft_ms, "ttft-ms")?)
        .per_prompt_token(millis(args.prefill_us / 1e3, "prefill-us")?)
        .itl(Itl::Constant(millis(args.itl_ms, "itl-ms")?))
        .max_concurrency(args.concurrency)
        .seed(args.seed)
        .loading_for(loading)
        // A foreground server runs for hours: keep no per-request truth.
        .record_truth(false);
    if args.fault_rate > 0.0 {
        config = config.fault_rate(args.fault_rate, fault);
    }
    Ok(config)
}

pub(crate) fn run(args: SimArgs) -> Result<(), String> {
    let config = config(&args)?;
    let sim = Simulator::start_on(config, SocketAddr::new(args.host, args.port))
        .map_err(|e| e.chain())?;
    let names: Vec<&str> = sim.protocols().iter().map(|p| p.as_str()).collect();
    println!(
        "llmbench sim: simulated engine at {} (model `{}`), speaking {}; Ctrl-C stops it",
        sim.url(),
        sim.model(),
        names.join(", ")
    );
    if args.loading_secs > 0.0 {
        println!(
            "  loading for {} s: /health and generation answer 503 until then",
            args.loading_secs
        );
    }
    if args.fault_rate > 0.0 {
        println!(
            "  injecting {} into {:.1} % of generation requests (seed {})",
            args.fault,
            args.fault_rate * 100.0,
            args.seed
        );
    }
    for protocol in sim.protocols() {
        let label = format!("{protocol}:");
        println!(
            "  {label:<9} cargo bench -- --engine {protocol}={},model={}",
            sim.url(),
            sim.model()
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting a runtime: {e}"))?;
    runtime
        .block_on(tokio::signal::ctrl_c())
        .map_err(|e| format!("waiting for Ctrl-C: {e}"))?;
    println!("llmbench sim: served {} requests", sim.requests_seen());
    sim.shutdown();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        sim: SimArgs,
    }

    fn args(argv: &[&str]) -> SimArgs {
        Cli::try_parse_from(std::iter::once("sim").chain(argv.iter().copied()))
            .expect("valid arguments")
            .sim
    }

    #[test]
    fn protocols_repeat_or_split_on_commas() {
        assert!(args(&[]).protocols.is_empty(), "default: all");
        let a = args(&["--protocol", "ollama", "--protocol", "tgi,llamacpp"]);
        assert_eq!(
            a.protocols,
            [Protocol::Ollama, Protocol::Tgi, Protocol::LlamaCpp]
        );
        assert!(Cli::try_parse_from(["sim", "--protocol", "grpc"]).is_err());
    }

    #[test]
    fn faults_and_loading_are_checked() {
        assert_eq!(parse_fault("status", 429), Ok(Fault::Status(429)));
        assert_eq!(parse_fault("drop", 0), Ok(Fault::Drop));
        assert_eq!(parse_fault("cut:3", 0), Ok(Fault::CutAfter(3)));
        assert_eq!(parse_fault("error:0", 0), Ok(Fault::ErrorEventAfter(0)));
        assert!(parse_fault("cut:x", 0).is_err());
        assert!(parse_fault("boom", 0).is_err());
        assert!(config(&args(&["--fault-rate", "1.5"])).is_err());
        assert!(config(&args(&["--loading-secs=-1"])).is_err());
        assert!(config(&args(&[
            "--fault-rate",
            "0.1",
            "--fault",
            "stall",
            "--loading-secs",
            "2"
        ]))
        .is_ok());
    }
}
