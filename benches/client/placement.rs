//! Where the client and the simulator run: on a machine with two CPUs or
//! more, the simulator gets the last one and the client the others (on 2
//! cores, one each), as the targets ask ("client pinned to one core"), so
//! neither takes the other's CPU. Pinning uses `taskset`; where it is
//! missing or refused, or with `--no-pin`, nothing is pinned and the
//! figures say so.

use std::process::{Command, Stdio};

/// A split of this process's CPUs, applied; dropping it gives every thread
/// all of them back.
pub struct Placement {
    all: String,
    pub client: String,
    pub sim: String,
}

fn taskset(args: &[&str]) -> bool {
    Command::new("taskset")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The CPUs this process may run on, as `taskset` writes them (`0-1`).
fn allowed_cpus() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status
        .lines()
        .find(|l| l.starts_with("Cpus_allowed_list:"))?;
    Some(line.split_whitespace().nth(1)?.to_string())
}

impl Placement {
    /// Pin every thread of this process (and those it starts later) to the
    /// client's CPUs; `None` when there is one CPU, or no `taskset`.
    pub fn pin_client() -> Option<Placement> {
        if std::env::args().any(|a| a == "--no-pin") {
            return None;
        }
        let all = allowed_cpus()?;
        let (first, last) = all.split_once('-')?;
        let (first, last): (u32, u32) = (first.parse().ok()?, last.parse().ok()?);
        if last <= first {
            return None;
        }
        let client = if last - first == 1 {
            first.to_string()
        } else {
            format!("{first}-{}", last - 1)
        };
        let pid = std::process::id().to_string();
        taskset(&["-a", "-p", "-c", &client, &pid]).then(|| Placement {
            all,
            client,
            sim: last.to_string(),
        })
    }

    /// Move the in-process simulator's threads (`llmbench-sim-*`) to the
    /// simulator's CPU; how many were moved.
    pub fn move_sim_threads(&self) -> usize {
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return 0;
        };
        tasks
            .filter_map(|t| t.ok())
            .filter(|t| {
                std::fs::read_to_string(t.path().join("comm"))
                    .is_ok_and(|name| name.starts_with("llmbench-sim"))
            })
            .filter(|t| {
                let tid = t.file_name().to_string_lossy().into_owned();
                taskset(&["-p", "-c", &self.sim, &tid])
            })
            .count()
    }

    /// For the figures' labels.
    pub fn describe(placement: Option<&Placement>) -> String {
        match placement {
            Some(p) => format!("client on CPU {}, simulator on CPU {}", p.client, p.sim),
            None => "not pinned".to_string(),
        }
    }
}

impl Drop for Placement {
    fn drop(&mut self) {
        let pid = std::process::id().to_string();
        taskset(&["-a", "-p", "-c", &self.all, &pid]);
    }
}

/// How much CPU the rest of the machine used while a case ran: other
/// programs on these cores delay the client's timestamps as much as its own
/// work does, so every timing figure is printed with it.
pub struct OtherLoad {
    at: std::time::Instant,
    busy: f64,
    own: f64,
}

/// Busy CPU seconds of the whole machine, from `/proc/stat`.
fn machine_busy_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu = stat.lines().next()?;
    let ticks: Vec<f64> = cpu
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...: all but idle and
    // iowait are busy.
    let busy: f64 = ticks
        .iter()
        .take(8)
        .enumerate()
        .filter(|&(i, _)| i != 3 && i != 4)
        .map(|(_, t)| t)
        .sum();
    Some(busy / 100.0)
}

impl OtherLoad {
    /// Start counting; `own` is this case's CPU seconds so far (this
    /// process and, where it runs apart, the simulator's).
    pub fn start(own: f64) -> OtherLoad {
        OtherLoad {
            at: std::time::Instant::now(),
            busy: machine_busy_secs().unwrap_or(f64::NAN),
            own,
        }
    }

    /// The CPUs others kept busy on average since `start`, given this
    /// case's CPU seconds now.
    pub fn cpus(&self, own: f64) -> f64 {
        let busy = machine_busy_secs().unwrap_or(f64::NAN) - self.busy;
        ((busy - (own - self.own)) / self.at.elapsed().as_secs_f64()).max(0.0)
    }
}
