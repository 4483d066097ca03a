//! The simulator in a child process (this bench binary run again with
//! `--sim-child`), for the cases where client and simulator must not share
//! one process: 10,000 streams need 10,000 sockets on each side, more than
//! the usual open-files limit of one process allows, and the client's memory
//! is only its own when the simulator's lives elsewhere.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use llmbench::sim::{Itl, SimConfig, Simulator};

/// What the child simulator is told on its command line.
#[derive(Clone, Copy, Debug)]
pub struct ChildConfig {
    pub ttft: Duration,
    pub itl: Duration,
    pub max_concurrency: usize,
}

impl ChildConfig {
    fn args(self) -> [String; 4] {
        [
            "--sim-child".into(),
            self.ttft.as_micros().to_string(),
            self.itl.as_micros().to_string(),
            self.max_concurrency.to_string(),
        ]
    }
}

/// The running child: its URL and model; dropping it ends the child.
pub struct SimProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    pub url: String,
    pub model: String,
}

impl SimProcess {
    /// Start the simulator in a child process and wait for its address;
    /// with `cpu`, pinned to that CPU (by `taskset`, when it is installed).
    pub fn start(config: ChildConfig, cpu: Option<&str>) -> Result<SimProcess, String> {
        let exe =
            std::env::current_exe().map_err(|e| format!("locating this bench binary: {e}"))?;
        let mut command = match cpu {
            Some(cpu) => {
                let mut c = Command::new("taskset");
                c.args(["-c", cpu]).arg(exe);
                c
            }
            None => Command::new(exe),
        };
        let mut child = command
            .args(config.args())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("starting the simulator process: {e}"))?;
        let stdin = child.stdin.take();
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            BufReader::new(stdout)
                .read_line(&mut line)
                .map_err(|e| format!("reading the simulator's address: {e}"))?;
        }
        let mut words = line.split_whitespace();
        let (Some(url), Some(model)) = (words.next(), words.next()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("the simulator process said `{}`", line.trim()));
        };
        Ok(SimProcess {
            url: url.to_string(),
            model: model.to_string(),
            child,
            stdin,
        })
    }

    /// The CPU time the child has used so far (user, system), in seconds.
    pub fn cpu_secs(&self) -> Option<(f64, f64)> {
        super::cpu_secs(&format!("/proc/{}/stat", self.child.id()))
    }

    /// The child's resident memory now, in MB.
    pub fn rss_mb(&self) -> Option<f64> {
        super::status_mb(&format!("/proc/{}/status", self.child.id()), "VmRSS:")
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        // Closing its stdin tells the child to stop; it exits at once.
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// The child's side: serve until stdin closes. Returns an exit message on
/// a bad command line or a simulator that cannot start.
pub fn child_main(args: &[String]) -> Result<(), String> {
    let num = |i: usize| -> Result<u64, String> {
        args.get(i)
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("--sim-child TTFT_US ITL_US SLOTS: bad argument {i}"))
    };
    let (ttft, itl, slots) = (num(0)?, num(1)?, num(2)?);
    let sim = Simulator::start(
        SimConfig::new()
            .ttft_base(Duration::from_micros(ttft))
            .per_prompt_token(Duration::ZERO)
            .itl(Itl::Constant(Duration::from_micros(itl)))
            .max_concurrency(usize::try_from(slots).unwrap_or(usize::MAX))
            .record_truth(false),
    )
    .map_err(|e| e.chain())?;
    let mut out = std::io::stdout();
    writeln!(out, "{} {}", sim.url(), sim.model())
        .and_then(|()| out.flush())
        .map_err(|e| format!("writing the address: {e}"))?;
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    sim.shutdown();
    Ok(())
}
