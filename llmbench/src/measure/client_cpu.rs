//! The client's own CPU use over a trial, so a run can say when the client,
//! not the engine, was busy: every thread of the process except the
//! in-process simulator's, read from `/proc` on Linux (`null` elsewhere).
//!
//! Two samples bracket the load; [`between`] turns them into a
//! [`ClientCpu`] and is pure, as is the parsing of `/proc` text.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// Threads whose names start with this are the in-process simulator's
/// (`llmbench-sim-worker`, `llmbench-sim-<port>`): the engine, not the
/// client.
const SIM_PREFIX: &str = "llmbench-sim";

/// The open loop's pacing thread, which spins on purpose for the last
/// 200 µs before each arrival, so it looks busy at high rates without
/// being a bottleneck: it is left out of the busiest thread.
const PACER: &str = "llmbench-pacer";

/// Clock ticks per second when the kernel does not say (`USER_HZ`, 100 on
/// every Linux architecture llmbench runs on).
const DEFAULT_TICKS_PER_S: u64 = 100;

/// How busy the client was during a trial: the CPU time of every thread of
/// the process except the in-process simulator's, over the trial's load.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClientCpu {
    /// CPU time (user + system) the client used, in seconds.
    pub cpu_s: f64,
    /// The wall time it was measured over, in seconds: from just before the
    /// first request to just after the last record.
    pub wall_s: f64,
    /// Cores available to the process (its CPU affinity and quota).
    pub cores: u32,
    /// `cpu_s / (wall_s × cores)`: the share of the available cores the
    /// client kept busy, 0 to 1.
    pub cores_share: f64,
    /// The name of the client's busiest thread (the open loop's pacer left
    /// out, since it spins on purpose); `None` when no thread ran.
    pub busiest_thread: Option<String>,
    /// That thread's CPU time over `wall_s`: its share of one core, 0 to 1.
    pub busiest_thread_share: Option<f64>,
    /// CPU seconds by thread name, for the threads alive at the end of the
    /// trial (`cpu_s` also counts those that ended during it).
    pub threads: BTreeMap<String, f64>,
}

/// CPU time read at one instant.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CpuSample {
    at: Instant,
    /// The whole process's user + system ticks, ended threads included.
    process: u64,
    /// Each live thread: id -> (name, user + system ticks).
    threads: BTreeMap<u64, (String, u64)>,
    ticks_per_s: u64,
}

/// The name and user + system ticks in one `/proc/.../stat` line. The
/// name sits in parentheses and may itself hold spaces and parentheses,
/// so the fields after it are counted from the last `)`.
pub(crate) fn parse_stat(text: &str) -> Option<(String, u64)> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let name = text.get(open + 1..close)?.to_string();
    // After the name: state (field 3), ..., utime (14), stime (15).
    let mut fields = text.get(close + 1..)?.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((name, utime.saturating_add(stime)))
}

/// The clock tick rate (`AT_CLKTCK`) in the process's auxiliary vector
/// (`/proc/self/auxv`: pairs of native-endian words, ending at type 0).
pub(crate) fn clock_ticks(auxv: &[u8]) -> Option<u64> {
    const AT_NULL: usize = 0;
    const AT_CLKTCK: usize = 17;
    let word = std::mem::size_of::<usize>();
    let read = |b: &[u8]| b.try_into().ok().map(usize::from_ne_bytes);
    for pair in auxv.chunks_exact(2 * word) {
        let (key, value) = (read(&pair[..word])?, read(&pair[word..])?);
        match key {
            AT_NULL => return None,
            AT_CLKTCK if value > 0 => return u64::try_from(value).ok(),
            _ => {}
        }
    }
    None
}

/// Read the process's CPU time now; `None` where `/proc` cannot tell
/// (not Linux, or unreadable).
pub(crate) fn sample() -> Option<CpuSample> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    let at = Instant::now();
    let read = |path: &std::path::Path| std::fs::read_to_string(path).ok();
    let (_, process) = parse_stat(&read("/proc/self/stat".as_ref())?)?;
    let mut threads = BTreeMap::new();
    for entry in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        // A thread that ended since the listing has no stat: skip it.
        if let Some(stat) = read(&entry.path().join("stat")).and_then(|t| parse_stat(&t)) {
            threads.insert(tid, stat);
        }
    }
    let ticks_per_s = std::fs::read("/proc/self/auxv")
        .ok()
        .and_then(|auxv| clock_ticks(&auxv))
        .unwrap_or(DEFAULT_TICKS_PER_S);
    Some(CpuSample {
        at,
        process,
        threads,
        ticks_per_s,
    })
}

/// CPU seconds from `before` to `after`: (the client's, the in-process
/// simulator's `llmbench-sim*` threads'), the two adding up to the
/// process's. What the monitor samples each interval.
pub(crate) fn split_s(before: &CpuSample, after: &CpuSample) -> (f64, f64) {
    let hz = after.ticks_per_s.max(1) as f64;
    let sim = sim_ticks(before, after);
    let process = after.process.saturating_sub(before.process);
    (process.saturating_sub(sim) as f64 / hz, sim as f64 / hz)
}

/// Ticks the simulator's threads used from `before` to `after`.
fn sim_ticks(before: &CpuSample, after: &CpuSample) -> u64 {
    after
        .threads
        .iter()
        .filter(|(_, (name, _))| name.starts_with(SIM_PREFIX))
        .map(|(tid, (_, ticks))| {
            let earlier = before.threads.get(tid).map_or(0, |(_, t)| *t);
            ticks.saturating_sub(earlier)
        })
        .sum()
}

impl CpuSample {
    /// When it was read.
    pub(crate) fn at(&self) -> Instant {
        self.at
    }
}

/// The client's CPU use from `before` to `after`, on `cores` cores.
pub(crate) fn between(before: &CpuSample, after: &CpuSample, cores: u32) -> ClientCpu {
    let hz = after.ticks_per_s.max(1) as f64;
    let wall_s = after.at.saturating_duration_since(before.at).as_secs_f64();
    // Ticks each live thread used: all of them for one born since `before`.
    let used = |tid: &u64, ticks: u64| {
        let earlier = before.threads.get(tid).map_or(0, |(_, t)| *t);
        ticks.saturating_sub(earlier)
    };
    let sim = sim_ticks(before, after);
    let mut threads: BTreeMap<String, f64> = BTreeMap::new();
    let mut busiest: Option<(&str, u64)> = None;
    for (tid, (name, ticks)) in &after.threads {
        let ticks = used(tid, *ticks);
        if name.starts_with(SIM_PREFIX) {
            continue;
        }
        *threads.entry(name.clone()).or_default() += ticks as f64 / hz;
        if name != PACER && ticks > busiest.map_or(0, |(_, most)| most) {
            busiest = Some((name, ticks));
        }
    }
    let cpu_s = after
        .process
        .saturating_sub(before.process)
        .saturating_sub(sim) as f64
        / hz;
    let share = |cpu: f64, of: f64| {
        if of > 0.0 {
            (cpu / of).clamp(0.0, 1.0)
        } else {
            0.0
        }
    };
    ClientCpu {
        cpu_s,
        wall_s,
        cores,
        cores_share: share(cpu_s, wall_s * f64::from(cores.max(1))),
        busiest_thread: busiest.map(|(name, _)| name.to_string()),
        busiest_thread_share: busiest.map(|(_, ticks)| share(ticks as f64 / hz, wall_s)),
        threads,
    }
}

/// The cores available to this process: its affinity mask and CPU quota,
/// as the standard library reads them; 1 when it cannot tell.
pub(crate) fn available_cores() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A thread's stat line as Linux writes it (from a real
    /// `/proc/self/task/<tid>/stat`, with the name and times changed).
    fn stat_line(name: &str, utime: u64, stime: u64) -> String {
        format!(
            "4242 ({name}) S 4200 4200 4200 34816 4200 4194368 1234 0 5 0 {utime} {stime} \
             0 0 20 0 9 0 123456 987654321 2345 18446744073709551615 1 1 0 0 0 0 0 4096 \
             17664 0 0 0 -1 3 0 0 0 0 0 0 0 0 0 0 0 0 0"
        )
    }

    #[test]
    fn stat_lines_give_the_name_and_cpu_ticks() {
        assert_eq!(
            parse_stat(&stat_line("llmbench-client", 120, 30)),
            Some(("llmbench-client".to_string(), 150))
        );
        // Names may hold spaces and parentheses: fields count from the last ')'.
        assert_eq!(
            parse_stat(&stat_line("a) (b c) 7 8", 5, 6)),
            Some(("a) (b c) 7 8".to_string(), 11))
        );
        assert_eq!(parse_stat("4242 (cut) S 1 2"), None);
        assert_eq!(parse_stat("no parentheses"), None);
        assert_eq!(parse_stat(""), None);
    }

    fn auxv(pairs: &[(usize, usize)]) -> Vec<u8> {
        pairs
            .iter()
            .flat_map(|(k, v)| [k.to_ne_bytes(), v.to_ne_bytes()])
            .flatten()
            .collect()
    }

    #[test]
    fn the_clock_tick_comes_from_the_auxiliary_vector() {
        assert_eq!(clock_ticks(&auxv(&[(33, 7), (17, 100), (0, 0)])), Some(100));
        assert_eq!(
            clock_ticks(&auxv(&[(6, 4096), (17, 250), (0, 0)])),
            Some(250)
        );
        assert_eq!(clock_ticks(&auxv(&[(6, 4096), (0, 0), (17, 250)])), None);
        assert_eq!(clock_ticks(&[1, 2, 3]), None);
    }

    fn sample(at: Instant, process: u64, threads: &[(u64, &str, u64)]) -> CpuSample {
        CpuSample {
            at,
            process,
            threads: threads
                .iter()
                .map(|&(tid, name, ticks)| (tid, (name.to_string(), ticks)))
                .collect(),
            ticks_per_s: 100,
        }
    }

    #[test]
    fn the_simulator_is_left_out_and_the_busiest_thread_named() {
        let t0 = Instant::now();
        let before = sample(
            t0,
            1_000,
            &[
                (1, "main", 10),
                (2, "llmbench-client", 100),
                (3, "llmbench-client", 50),
                (4, "llmbench-sim-wo", 300),
                (5, "llmbench-sim-41", 20),
            ],
        );
        // Over 2 s: the process used 500 ticks, 150 of them the simulator's;
        // the pacer (born since) spun for 190, and a writer ran and ended.
        let after = sample(
            t0 + Duration::from_secs(2),
            1_500,
            &[
                (1, "main", 10),
                (2, "llmbench-client", 180),
                (3, "llmbench-client", 60),
                (4, "llmbench-sim-wo", 440),
                (5, "llmbench-sim-41", 30),
                (6, "llmbench-pacer", 190),
            ],
        );
        let cpu = between(&before, &after, 4);
        assert!((cpu.cpu_s - 3.5).abs() < 1e-9, "{cpu:?}");
        assert!((cpu.wall_s - 2.0).abs() < 1e-9, "{cpu:?}");
        assert_eq!(cpu.cores, 4);
        assert!((cpu.cores_share - 3.5 / 8.0).abs() < 1e-9, "{cpu:?}");
        assert_eq!(cpu.busiest_thread.as_deref(), Some("llmbench-client"));
        assert_eq!(cpu.busiest_thread_share, Some(0.4));
        let names: Vec<&str> = cpu.threads.keys().map(String::as_str).collect();
        assert_eq!(names, ["llmbench-client", "llmbench-pacer", "main"]);
        assert!((cpu.threads["llmbench-client"] - 0.9).abs() < 1e-9);
        let (client_s, sim_s) = split_s(&before, &after);
        assert!((client_s - 3.5).abs() < 1e-9 && (sim_s - 1.5).abs() < 1e-9);
    }

    #[test]
    fn no_time_passing_gives_no_shares() {
        let t0 = Instant::now();
        let s = sample(t0, 10, &[(1, "main", 10)]);
        let cpu = between(&s, &s, 2);
        assert_eq!((cpu.cpu_s, cpu.cores_share), (0.0, 0.0));
        assert_eq!((cpu.busiest_thread, cpu.busiest_thread_share), (None, None));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_busy_thread_shows_in_a_real_sample() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let before = super::sample().expect("/proc is readable on Linux");
        let stop = Arc::new(AtomicBool::new(false));
        let spin = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("busy-test".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                })
                .unwrap()
        };
        // Sample until the spinner has been charged a tick (no fixed sleep).
        let cpu = loop {
            let after = super::sample().expect("/proc is readable on Linux");
            let cpu = between(&before, &after, available_cores());
            if cpu.threads.get("busy-test").is_some_and(|&s| s > 0.0) {
                break cpu;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        stop.store(true, Ordering::Relaxed);
        spin.join().unwrap();
        assert!(cpu.cpu_s >= cpu.threads["busy-test"], "{cpu:?}");
        assert!(cpu.wall_s > 0.0 && cpu.cores >= 1, "{cpu:?}");
    }
}
