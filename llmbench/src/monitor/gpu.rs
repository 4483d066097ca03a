//! The GPUs: every device's utilisation, memory, temperature, power and SM
//! clock, read through a [`GpuSource`] (NVML on a real machine, a scripted
//! fake in tests) by a [`GpuMonitor`] that turns a missing library, a failing
//! query or a vanished device into one note each, never a failed run.

use std::collections::BTreeSet;
use std::fmt;

use super::Readings;

/// What is read from each device, each a `gpu<i>_<suffix>` column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GpuMetric {
    /// Share of the last sample period a kernel ran, 0–100.
    Utilisation,
    /// Device memory in use, MiB.
    MemoryUsed,
    /// Device memory in all, MiB.
    MemoryTotal,
    /// Core temperature, °C.
    Temperature,
    /// Power draw, W.
    Power,
    /// The enforced power limit, W.
    PowerLimit,
    /// The SM clock, MHz.
    SmClock,
}

impl GpuMetric {
    /// Every metric, in column order.
    pub const ALL: [GpuMetric; 7] = [
        GpuMetric::Utilisation,
        GpuMetric::MemoryUsed,
        GpuMetric::MemoryTotal,
        GpuMetric::Temperature,
        GpuMetric::Power,
        GpuMetric::PowerLimit,
        GpuMetric::SmClock,
    ];

    /// The column suffix, with its unit.
    pub fn suffix(self) -> &'static str {
        match self {
            GpuMetric::Utilisation => "util_pct",
            GpuMetric::MemoryUsed => "mem_used_mib",
            GpuMetric::MemoryTotal => "mem_total_mib",
            GpuMetric::Temperature => "temp_c",
            GpuMetric::Power => "power_w",
            GpuMetric::PowerLimit => "power_limit_w",
            GpuMetric::SmClock => "sm_clock_mhz",
        }
    }

    /// The column of this metric on device `index`.
    pub fn column(self, index: u32) -> String {
        format!("gpu{index}_{}", self.suffix())
    }
}

/// A device found when monitoring started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GpuDevice {
    /// Its index (NVML's, as `nvidia-smi` numbers it).
    pub index: u32,
    /// Its product name.
    pub name: String,
}

/// Why a query gave no value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GpuError {
    /// The device is no longer there (fell off the bus, reset, unplugged):
    /// it is not asked again.
    Gone(String),
    /// This one query failed (not supported, no permission, ...).
    Query(String),
}

impl fmt::Display for GpuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GpuError::Gone(why) | GpuError::Query(why) => f.write_str(why),
        }
    }
}

/// Where GPU readings come from: NVML, or a fake in tests.
pub trait GpuSource: Send {
    /// The devices on the machine.
    ///
    /// # Errors
    /// Why they cannot be listed.
    fn devices(&mut self) -> Result<Vec<GpuDevice>, String>;

    /// One metric of device `index`.
    ///
    /// # Errors
    /// Why it could not be read, and whether the device is gone.
    fn query(&mut self, index: u32, metric: GpuMetric) -> Result<f64, GpuError>;
}

/// The GPUs of one run: the devices found at its start (their columns are
/// fixed for the run), and what went wrong, said once each.
pub struct GpuMonitor {
    source: Option<Box<dyn GpuSource>>,
    devices: Vec<GpuDevice>,
    gone: BTreeSet<u32>,
    failed: BTreeSet<(u32, GpuMetric)>,
    status: String,
    notes: Vec<String>,
}

impl GpuMonitor {
    /// Start from `source`, or from why there is none (`no GPU (…)` then
    /// becomes the status, said once by the caller).
    pub fn start(source: Result<Box<dyn GpuSource>, String>) -> GpuMonitor {
        let mut monitor = GpuMonitor {
            source: None,
            devices: Vec::new(),
            gone: BTreeSet::new(),
            failed: BTreeSet::new(),
            status: String::new(),
            notes: Vec::new(),
        };
        let listed = source.and_then(|mut s| s.devices().map(|d| (s, d)));
        match listed {
            Ok((_, devices)) if devices.is_empty() => {
                monitor.status = "no GPU (NVML found no device)".to_string();
            }
            Ok((source, devices)) => {
                let names: Vec<String> = devices
                    .iter()
                    .map(|d| format!("{} {}", d.index, d.name))
                    .collect();
                monitor.status = format!("{} GPU(s): {}", devices.len(), names.join(", "));
                monitor.source = Some(source);
                monitor.devices = devices;
            }
            Err(why) => monitor.status = format!("no GPU ({why})"),
        }
        monitor
    }

    /// `no GPU (…)`, or the devices found.
    pub fn status(&self) -> &str {
        &self.status
    }

    /// Whether any device is sampled.
    pub fn has_devices(&self) -> bool {
        !self.devices.is_empty()
    }

    /// The devices found at the start.
    pub fn devices(&self) -> &[GpuDevice] {
        &self.devices
    }

    /// The columns: every metric of every device found at the start.
    pub fn columns(&self) -> Vec<String> {
        self.devices
            .iter()
            .flat_map(|d| GpuMetric::ALL.map(|m| m.column(d.index)))
            .collect()
    }

    /// Read every metric of every device still there into `out`; a failure
    /// leaves its cell empty and adds a note the first time.
    pub fn sample(&mut self, out: &mut Readings) {
        let Some(source) = self.source.as_mut() else {
            return;
        };
        for device in &self.devices {
            if self.gone.contains(&device.index) {
                continue;
            }
            for metric in GpuMetric::ALL {
                match source.query(device.index, metric) {
                    Ok(v) => out.set(&metric.column(device.index), v),
                    Err(GpuError::Gone(why)) => {
                        self.gone.insert(device.index);
                        self.notes.push(format!(
                            "GPU {} ({}) disappeared during the run ({why}); its columns are \
                             empty from then on",
                            device.index, device.name
                        ));
                        break;
                    }
                    Err(GpuError::Query(why)) => {
                        if self.failed.insert((device.index, metric)) {
                            self.notes.push(format!(
                                "GPU {} ({}): cannot read {}: {why}",
                                device.index,
                                device.name,
                                metric.suffix()
                            ));
                        }
                    }
                }
            }
        }
    }

    /// The notes since the last call.
    pub fn take_notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }
}

/// The machine's GPUs through NVML, or why not (`NVML not found: …`).
pub fn nvml() -> Result<Box<dyn GpuSource>, String> {
    #[cfg(feature = "nvml")]
    {
        nvml_source::Nvml::init().map(|n| Box::new(n) as Box<dyn GpuSource>)
    }
    #[cfg(not(feature = "nvml"))]
    {
        Err("llmbench was built without its `nvml` feature".to_string())
    }
}

#[cfg(feature = "nvml")]
mod nvml_source {
    //! The NVML calls, and nothing above them.
    use nvml_wrapper::enum_wrappers::device::{Clock, TemperatureSensor};
    use nvml_wrapper::error::NvmlError;

    use super::{GpuDevice, GpuError, GpuMetric, GpuSource};

    pub(super) struct Nvml(nvml_wrapper::Nvml);

    impl Nvml {
        pub(super) fn init() -> Result<Nvml, String> {
            nvml_wrapper::Nvml::init().map(Nvml).map_err(|e| match e {
                NvmlError::LibloadingError(e) => format!("NVML not found: {e}"),
                NvmlError::LibraryNotFound => "NVML not found: no libnvidia-ml".into(),
                NvmlError::DriverNotLoaded => "NVML: the NVIDIA driver is not loaded".into(),
                e => format!("NVML did not start: {e}"),
            })
        }
    }

    const MIB: f64 = 1024.0 * 1024.0;

    impl GpuSource for Nvml {
        fn devices(&mut self) -> Result<Vec<GpuDevice>, String> {
            let count = self
                .0
                .device_count()
                .map_err(|e| format!("NVML cannot count devices: {e}"))?;
            Ok((0..count)
                .map(|index| GpuDevice {
                    index,
                    name: self
                        .0
                        .device_by_index(index)
                        .and_then(|d| d.name())
                        .unwrap_or_else(|e| format!("unnamed ({e})")),
                })
                .collect())
        }

        fn query(&mut self, index: u32, metric: GpuMetric) -> Result<f64, GpuError> {
            let fail = |e: NvmlError| match e {
                NvmlError::GpuLost | NvmlError::InvalidArg | NvmlError::NotFound => {
                    GpuError::Gone(e.to_string())
                }
                e => GpuError::Query(e.to_string()),
            };
            let device = self.0.device_by_index(index).map_err(fail)?;
            let value = match metric {
                GpuMetric::Utilisation => device.utilization_rates().map(|u| f64::from(u.gpu)),
                GpuMetric::MemoryUsed => device.memory_info().map(|m| m.used as f64 / MIB),
                GpuMetric::MemoryTotal => device.memory_info().map(|m| m.total as f64 / MIB),
                GpuMetric::Temperature => device.temperature(TemperatureSensor::Gpu).map(f64::from),
                GpuMetric::Power => device.power_usage().map(|mw| f64::from(mw) / 1000.0),
                GpuMetric::PowerLimit => device
                    .enforced_power_limit()
                    .map(|mw| f64::from(mw) / 1000.0),
                GpuMetric::SmClock => device.clock_info(Clock::SM).map(f64::from),
            };
            value.map_err(fail)
        }
    }
}

#[cfg(test)]
#[path = "gpu_tests.rs"]
mod tests;
