//! The GPU monitor driven by a scripted fake source: two devices, a query
//! that fails, a device that disappears mid-run, and no NVML at all.
// Compiled only under #[cfg(test)], from the module that includes this file.

use super::*;

/// A fake machine: each device answers `base + sample number` for every
/// metric, except what the script says.
struct Fake {
    devices: Vec<GpuDevice>,
    /// (device, metric) that always fails.
    failing: Option<(u32, GpuMetric)>,
    /// (device, from which sample) it is gone.
    vanishes: Option<(u32, u32)>,
    samples: u32,
}

impl GpuSource for Fake {
    fn devices(&mut self) -> Result<Vec<GpuDevice>, String> {
        Ok(self.devices.clone())
    }

    fn query(&mut self, index: u32, metric: GpuMetric) -> Result<f64, GpuError> {
        if metric == GpuMetric::Utilisation && index == 0 {
            self.samples += 1;
        }
        if let Some((gone, from)) = self.vanishes {
            if index == gone && self.samples >= from {
                return Err(GpuError::Gone("GPU is lost".into()));
            }
        }
        if self.failing == Some((index, metric)) {
            return Err(GpuError::Query("Not Supported".into()));
        }
        Ok(f64::from(index * 100 + self.samples))
    }
}

fn two_gpus(failing: Option<(u32, GpuMetric)>, vanishes: Option<(u32, u32)>) -> GpuMonitor {
    let devices = (0..2)
        .map(|index| GpuDevice {
            index,
            name: "NVIDIA H100 80GB HBM3".into(),
        })
        .collect();
    let fake = Fake {
        devices,
        failing,
        vanishes,
        samples: 0,
    };
    GpuMonitor::start(Ok(Box::new(fake)))
}

fn sample(monitor: &mut GpuMonitor) -> Readings {
    let mut out = Readings::default();
    monitor.sample(&mut out);
    out
}

#[test]
fn two_devices_give_every_column_of_each() {
    let mut gpus = two_gpus(None, None);
    assert_eq!(
        gpus.status(),
        "2 GPU(s): 0 NVIDIA H100 80GB HBM3, 1 NVIDIA H100 80GB HBM3"
    );
    let columns = gpus.columns();
    assert_eq!(columns.len(), 14);
    assert_eq!(columns[0], "gpu0_util_pct");
    assert_eq!(columns[7], "gpu1_util_pct");
    assert!(columns.contains(&"gpu1_power_limit_w".to_string()));
    let row = sample(&mut gpus);
    assert_eq!(row.get("gpu0_temp_c"), Some(1.0));
    assert_eq!(row.get("gpu1_sm_clock_mhz"), Some(101.0));
    assert!(gpus.take_notes().is_empty());
}

#[test]
fn a_failing_query_leaves_its_cell_empty_and_is_said_once() {
    let mut gpus = two_gpus(Some((1, GpuMetric::Power)), None);
    for _ in 0..3 {
        let row = sample(&mut gpus);
        assert_eq!(row.get("gpu1_power_w"), None);
        assert!(row.get("gpu1_power_limit_w").is_some(), "the others go on");
        assert!(row.get("gpu0_power_w").is_some());
    }
    assert_eq!(
        gpus.take_notes(),
        ["GPU 1 (NVIDIA H100 80GB HBM3): cannot read power_w: Not Supported"]
    );
    sample(&mut gpus);
    assert!(gpus.take_notes().is_empty());
}

#[test]
fn a_device_that_disappears_keeps_its_columns_empty() {
    let mut gpus = two_gpus(None, Some((1, 2)));
    let columns = gpus.columns();
    let first = sample(&mut gpus);
    assert!(first.get("gpu1_util_pct").is_some());
    let second = sample(&mut gpus);
    assert_eq!(second.get("gpu1_util_pct"), None);
    assert_eq!(second.get("gpu0_util_pct"), Some(2.0), "device 0 goes on");
    let third = sample(&mut gpus);
    assert_eq!(third.get("gpu1_mem_used_mib"), None);
    assert_eq!(gpus.columns(), columns, "columns stay for the whole run");
    assert_eq!(
        gpus.take_notes(),
        [
            "GPU 1 (NVIDIA H100 80GB HBM3) disappeared during the run (GPU is lost); its \
          columns are empty from then on"
        ]
    );
}

#[test]
fn no_nvml_means_no_gpu_columns_and_a_clear_status() {
    let mut gpus = GpuMonitor::start(Err(
        "NVML not found: libnvidia-ml.so: cannot open shared object file".into(),
    ));
    assert_eq!(
        gpus.status(),
        "no GPU (NVML not found: libnvidia-ml.so: cannot open shared object file)"
    );
    assert!(!gpus.has_devices() && gpus.columns().is_empty());
    assert!(sample(&mut gpus).is_empty());
    let none = Fake {
        devices: Vec::new(),
        failing: None,
        vanishes: None,
        samples: 0,
    };
    let gpus = GpuMonitor::start(Ok(Box::new(none)));
    assert_eq!(gpus.status(), "no GPU (NVML found no device)");
}

#[test]
fn this_machine_either_has_nvml_or_says_why_not() {
    match nvml() {
        Ok(_) => {}
        Err(why) => assert!(why.contains("NVML") || why.contains("nvml"), "{why}"),
    }
}
