//! The harness's side of the monitor: the GPUs found (and said) once before
//! the trials, the run's monitor started with the run directory, and what
//! each trial's sampler needs to know about its engine.

use std::path::Path;

use super::{lock, Shared};
use crate::engine::{Engine, EngineKind};
use crate::monitor::gpu::{self, GpuMonitor};
use crate::monitor::host::EngineProcess;
use crate::monitor::sampler;

impl Shared {
    /// Look for GPUs and say once what was found, or that there is none
    /// and why, before the first trial; nothing with `--no-monitor`.
    pub(super) fn find_gpus(&self) {
        let Some(interval) = self.monitor_interval else {
            return;
        };
        let gpus = GpuMonitor::start(gpu::nvml());
        eprintln!(
            "llmbench: monitor: {}; sampling every {} s into monitor.csv",
            gpus.status(),
            interval.as_secs_f64()
        );
        *lock(&self.gpu_status) = Some(gpus.status().to_string());
        *lock(&self.gpus) = Some(gpus);
    }

    /// Start the run's monitor, writing `<dir>/monitor.csv`, unless it
    /// started already or is off. A monitor that cannot start is a
    /// warning, not a failed run.
    pub(super) fn start_monitor(&self, dir: &Path) {
        let (Some(interval), Some(gpus)) = (self.monitor_interval, lock(&self.gpus).take()) else {
            return;
        };
        match sampler::Monitor::start(dir, interval, gpus) {
            Ok(monitor) => *lock(&self.monitor) = Some(monitor),
            Err(e) => eprintln!("llmbench: monitor off: {}", e.chain()),
        }
    }

    /// What the sampler of a trial of `scenario` on `engine` needs.
    pub(super) fn monitor_trial(
        &self,
        scenario: &str,
        step: Option<&str>,
        engine: &Engine,
        engine_pid: Option<u32>,
    ) -> sampler::Trial {
        let in_process = lock(&self.sim)
            .as_ref()
            .is_some_and(|sim| sim.url() == engine.url());
        let process = match engine_pid {
            Some(pid) => EngineProcess::Launched(pid),
            None if in_process => EngineProcess::InProcessSim,
            None => EngineProcess::Unknown,
        };
        let name = match step {
            Some(step) => format!("{scenario}/{} [{step}]", engine.label()),
            None => format!("{scenario}/{}", engine.label()),
        };
        sampler::Trial {
            name,
            engine_label: engine.label().to_string(),
            engine_url: engine.url().to_string(),
            engine: process,
            ollama: engine.kind() == EngineKind::Ollama,
        }
    }
}
