//! `llmbench sim`: the built-in simulated engine in the foreground.

use std::net::SocketAddr;
use std::time::Duration;

use llmbench::sim::{Itl, SimConfig, Simulator};

#[derive(clap::Args)]
pub(crate) struct SimArgs {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8000, env = "LLMBENCH_SIM_PORT")]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1", env = "LLMBENCH_SIM_HOST")]
    host: std::net::IpAddr,
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
    /// Seed for generated text and sampled gaps.
    #[arg(long, default_value_t = 0, env = "LLMBENCH_SIM_SEED")]
    seed: u64,
}

fn millis(ms: f64, flag: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(ms / 1e3)
        .map_err(|_| format!("--{flag}: not a valid duration: {ms}"))
}

pub(crate) fn run(args: SimArgs) -> Result<(), String> {
    let config = SimConfig::new()
        .model(args.model)
        .ttft_base(millis(args.ttft_ms, "ttft-ms")?)
        .per_prompt_token(millis(args.prefill_us / 1e3, "prefill-us")?)
        .itl(Itl::Constant(millis(args.itl_ms, "itl-ms")?))
        .max_concurrency(args.concurrency)
        .seed(args.seed);
    let sim = Simulator::start_on(config, SocketAddr::new(args.host, args.port))
        .map_err(|e| e.chain())?;
    println!(
        "llmbench sim: OpenAI-compatible engine at {} (model `{}`); Ctrl-C stops it",
        sim.url(),
        sim.model()
    );
    println!(
        "  try: cargo bench -- --engine openai={},model={}",
        sim.url(),
        sim.model()
    );
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
