//! The machine's and the processes' resource use, read through sysinfo:
//! CPU (all cores and each), memory and swap, network and disk bytes/s,
//! the client's own CPU and memory, and the engine's when its process is
//! known.
//!
//! The client's CPU is split from the in-process simulator's by thread
//! name (`measure::client_cpu`, the same split `summary.json`'s
//! `client_cpu` uses); the simulator shares the client's memory, which
//! cannot be split, so `client_rss_mib` holds both.

use std::time::Instant;

use sysinfo::{
    CpuRefreshKind, DiskRefreshKind, Disks, MemoryRefreshKind, Networks, Pid, ProcessRefreshKind,
    ProcessesToUpdate, System,
};

use super::Readings;
use crate::measure::client_cpu::{self, CpuSample};

const MIB: f64 = 1024.0 * 1024.0;

/// The engine's process, as far as the monitor can see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineProcess {
    /// The built-in simulator, in this process: its CPU is the
    /// `llmbench-sim*` threads (`sim_cpu_pct`), its memory is inside
    /// `client_rss_mib`.
    InProcessSim,
    /// A process the harness launched, or one given with `pid=`, by PID.
    Launched(u32),
    /// An engine the harness did not start: its process is not sampled.
    Unknown,
}

impl EngineProcess {
    /// What `summary.json` says about the engine's process.
    pub fn describe(self) -> String {
        match self {
            EngineProcess::InProcessSim => "the built-in simulator, inside the client's process: \
                 its CPU is sim_cpu_pct (the llmbench-sim threads), its memory is inside \
                 client_rss_mib"
                .to_string(),
            EngineProcess::Launched(pid) => {
                format!("pid {pid}: engine_cpu_pct, engine_rss_mib")
            }
            EngineProcess::Unknown => {
                "not started by llmbench and no pid= given: its process is not sampled".to_string()
            }
        }
    }
}

/// The host's columns in `monitor.csv`, for a machine with `cores` CPUs.
pub(crate) fn columns(cores: usize) -> Vec<String> {
    let mut out = vec!["host_cpu_pct".to_string()];
    out.extend((0..cores).map(|i| format!("host_cpu{i}_pct")));
    out.extend(
        [
            "host_mem_used_mib",
            "host_mem_used_pct",
            "host_swap_used_mib",
            "host_net_rx_bytes_per_s",
            "host_net_tx_bytes_per_s",
            "host_disk_read_bytes_per_s",
            "host_disk_write_bytes_per_s",
            "client_cpu_pct",
            "client_rss_mib",
            "sim_cpu_pct",
            "engine_cpu_pct",
            "engine_rss_mib",
        ]
        .map(String::from),
    );
    out
}

/// `bytes` over `seconds`, as bytes per second; `None` over no time.
pub(crate) fn per_s(bytes: u64, seconds: f64) -> Option<f64> {
    (seconds > 0.0).then(|| bytes as f64 / seconds)
}

/// Reads the host and the processes; each [`HostSource::sample`] gives the
/// use since the one before (CPU shares and byte rates need two readings).
pub(crate) struct HostSource {
    system: System,
    networks: Networks,
    disks: Disks,
    self_pid: Pid,
    cpu: Option<CpuSample>,
    last: Instant,
    engine: EngineProcess,
}

impl HostSource {
    /// Take the first reading, which later samples count from.
    pub(crate) fn new() -> HostSource {
        let mut system = System::new();
        system.refresh_cpu_list(CpuRefreshKind::nothing().with_cpu_usage());
        let mut source = HostSource {
            system,
            networks: Networks::new_with_refreshed_list(),
            disks: Disks::new_with_refreshed_list_specifics(io_only()),
            self_pid: Pid::from_u32(std::process::id()),
            cpu: client_cpu::sample(),
            last: Instant::now(),
            engine: EngineProcess::Unknown,
        };
        source.refresh_processes();
        source
    }

    /// The number of CPUs sysinfo sees (one `host_cpu<i>_pct` column each).
    pub(crate) fn cores(&self) -> usize {
        self.system.cpus().len()
    }

    /// Sample `engine` from now on; restarts its CPU count.
    pub(crate) fn set_engine(&mut self, engine: EngineProcess) {
        self.engine = engine;
        self.refresh_processes();
    }

    fn refresh_processes(&mut self) {
        let mut pids = vec![self.self_pid];
        if let EngineProcess::Launched(pid) = self.engine {
            // Named twice, sysinfo would drop it as not refreshed.
            if Pid::from_u32(pid) != self.self_pid {
                pids.push(Pid::from_u32(pid));
            }
        }
        let kind = ProcessRefreshKind::nothing().with_cpu().with_memory();
        self.system
            .refresh_processes_specifics(ProcessesToUpdate::Some(&pids), true, kind);
    }

    /// The use since the last sample, into `out`. What cannot be read
    /// (a process gone, no `/proc`) is left out: an empty cell.
    pub(crate) fn sample(&mut self, out: &mut Readings) {
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.system
            .refresh_cpu_specifics(CpuRefreshKind::nothing().with_cpu_usage());
        self.system
            .refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram().with_swap());
        self.networks.refresh(true);
        self.disks.refresh_specifics(true, io_only());
        self.refresh_processes();

        out.set("host_cpu_pct", f64::from(self.system.global_cpu_usage()));
        for (i, cpu) in self.system.cpus().iter().enumerate() {
            out.set(&format!("host_cpu{i}_pct"), f64::from(cpu.cpu_usage()));
        }
        let (used, total) = (self.system.used_memory(), self.system.total_memory());
        out.set("host_mem_used_mib", used as f64 / MIB);
        if total > 0 {
            out.set("host_mem_used_pct", 100.0 * used as f64 / total as f64);
        }
        out.set("host_swap_used_mib", self.system.used_swap() as f64 / MIB);
        // Loopback is left out: it is the machine talking to itself (the
        // client and a local engine), not traffic in or out of it.
        let (mut rx, mut tx) = (0u64, 0u64);
        for (name, data) in self.networks.iter() {
            if name != "lo" {
                rx = rx.saturating_add(data.received());
                tx = tx.saturating_add(data.transmitted());
            }
        }
        out.set_some("host_net_rx_bytes_per_s", per_s(rx, elapsed));
        out.set_some("host_net_tx_bytes_per_s", per_s(tx, elapsed));
        let (mut read, mut written) = (0u64, 0u64);
        for disk in self.disks.list() {
            let usage = disk.usage();
            read = read.saturating_add(usage.read_bytes);
            written = written.saturating_add(usage.written_bytes);
        }
        out.set_some("host_disk_read_bytes_per_s", per_s(read, elapsed));
        out.set_some("host_disk_write_bytes_per_s", per_s(written, elapsed));

        if let Some(me) = self.system.process(self.self_pid) {
            out.set("client_rss_mib", me.memory() as f64 / MIB);
        }
        let cpu = client_cpu::sample();
        if let (Some(before), Some(after)) = (&self.cpu, &cpu) {
            let wall = after
                .at()
                .saturating_duration_since(before.at())
                .as_secs_f64();
            let (client_s, sim_s) = client_cpu::split_s(before, after);
            if wall > 0.0 {
                out.set("client_cpu_pct", 100.0 * client_s / wall);
                if self.engine == EngineProcess::InProcessSim {
                    out.set("sim_cpu_pct", 100.0 * sim_s / wall);
                }
            }
        }
        self.cpu = cpu;
        if let EngineProcess::Launched(pid) = self.engine {
            if let Some(engine) = self.system.process(Pid::from_u32(pid)) {
                out.set("engine_cpu_pct", f64::from(engine.cpu_usage()));
                out.set("engine_rss_mib", engine.memory() as f64 / MIB);
            }
        }
    }
}

fn io_only() -> DiskRefreshKind {
    DiskRefreshKind::nothing().with_io_usage()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_name_every_core_and_process() {
        let cols = columns(2);
        assert_eq!(
            cols[..3],
            ["host_cpu_pct", "host_cpu0_pct", "host_cpu1_pct"]
        );
        for name in ["client_cpu_pct", "sim_cpu_pct", "engine_rss_mib"] {
            assert!(cols.iter().any(|c| c == name), "{name} in {cols:?}");
        }
        assert_eq!(per_s(3000, 1.5), Some(2000.0));
        assert_eq!(per_s(3000, 0.0), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_real_sample_has_the_host_the_client_and_a_launched_engine() {
        let mut host = HostSource::new();
        // This test process stands in for a launched engine.
        host.set_engine(EngineProcess::Launched(std::process::id()));
        let mut readings = Readings::default();
        host.sample(&mut readings);
        for name in ["host_cpu_pct", "host_cpu0_pct", "host_swap_used_mib"] {
            assert!(readings.get(name).is_some(), "{name}: {readings:?}");
        }
        for name in ["host_mem_used_mib", "client_rss_mib", "engine_rss_mib"] {
            assert!(readings.get(name).is_some_and(|v| v > 0.0), "{name}");
        }
        assert!(readings.get("client_cpu_pct").is_some_and(|v| v >= 0.0));
        // Not the simulator: no simulator column.
        assert_eq!(readings.get("sim_cpu_pct"), None);
        host.set_engine(EngineProcess::Launched(u32::MAX - 1));
        let mut readings = Readings::default();
        host.sample(&mut readings);
        assert_eq!(readings.get("engine_rss_mib"), None, "no such process");
    }
}
