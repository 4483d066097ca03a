//! Engines the harness starts itself (`[engine.launch]`, [`Engine::launch`]):
//! each is started when the first trial that uses it runs, stopped after a
//! trial of it fails (the next trial starts it afresh) and when the run
//! ends, and killed at once on a second Ctrl-C.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::lock;
use crate::engine::launch::{self, Launched};
use crate::engine::Engine;

/// One launched engine, by label.
#[derive(Default)]
struct Slot {
    running: Option<Launched>,
    /// The first start's failure: later trials of the engine fail with it
    /// rather than wait out the start-up timeout again.
    failed: Option<String>,
    /// How many times it was started (names the logs of a restart).
    starts: u32,
    /// Trials using it now (more than one only with `--test-threads`).
    users: u32,
}

/// The harness's launched engines.
#[derive(Default)]
pub(crate) struct Launcher {
    slots: Mutex<BTreeMap<String, Arc<Mutex<Slot>>>>,
    /// Process groups of engines started and not yet stopped: what a second
    /// Ctrl-C kills before the harness exits.
    live: Arc<Mutex<BTreeSet<u32>>>,
}

impl Launcher {
    fn slot(&self, label: &str) -> Arc<Mutex<Slot>> {
        lock(&self.slots)
            .entry(label.to_string())
            .or_default()
            .clone()
    }

    /// Make sure `engine` runs if the harness is to start it: start it (its
    /// logs in `log_dir`) unless it already runs, and return its PID.
    /// `Ok(None)` for an engine the harness does not start. Waits for the start-up on `runtime`,
    /// giving up when `stop` turns true. The error says why it could not
    /// start (command, URL, time waited, log tail) or that the run was
    /// interrupted meanwhile.
    pub(crate) fn ensure(
        &self,
        engine: &Engine,
        log_dir: &Path,
        runtime: &tokio::runtime::Runtime,
        mut stop: watch::Receiver<bool>,
    ) -> Result<Option<u32>, String> {
        let Some(spec) = engine.launch_spec() else {
            return Ok(None);
        };
        let label = engine.label();
        let slot = self.slot(label);
        let mut slot = lock(&slot);
        if let Some(why) = &slot.failed {
            return Err(format!(
                "engine `{label}` is not started again in this run; its start failed: {why}"
            ));
        }
        if let Some(running) = slot.running.as_mut() {
            // Still up since an earlier trial? If it died in between, start it again.
            if matches!(running.try_wait(), Ok(None)) {
                let pid = running.pid();
                slot.users += 1;
                return Ok(Some(pid));
            }
            if let Some(gone) = slot.running.take() {
                self.forget(gone.pid());
            }
        }
        slot.starts += 1;
        let name = match slot.starts {
            1 => label.to_string(),
            n => format!("{label}.{n}"),
        };
        let spec = spec.clone().name(name).log_dir(log_dir);
        let fail = |slot: &mut Slot, e: crate::Error| {
            let why = e.chain();
            slot.failed = Some(why.clone());
            why
        };
        if let Err(e) = runtime.block_on(spec.check_address_free()) {
            return Err(fail(&mut slot, e));
        }
        let mut launched = Launched::spawn(&spec).map_err(|e| fail(&mut slot, e))?;
        lock(&self.live).insert(launched.pid());
        let ready = runtime.block_on(async {
            tokio::select! {
                ready = launched.wait_ready(&spec) => Some(ready),
                () = async {
                    if stop.wait_for(|s| *s).await.is_err() {
                        std::future::pending::<()>().await;
                    }
                } => None,
            }
        });
        let pid = launched.pid();
        match ready {
            Some(Ok(())) => {
                slot.running = Some(launched);
                slot.users += 1;
                Ok(Some(pid))
            }
            Some(Err(e)) => {
                drop(launched); // stops it
                self.forget(pid);
                Err(fail(&mut slot, e))
            }
            None => {
                drop(launched);
                self.forget(pid);
                Err(format!(
                    "not run: the run was interrupted while engine `{label}` (`{}`) started",
                    spec.command_line()
                ))
            }
        }
    }

    /// A trial that [`Launcher::ensure`] gave the engine labelled `label`
    /// has ended. After a failed one, stop the engine (unless another trial
    /// still uses it), so the next trial starts it afresh; the result is a
    /// note for the trial's message when it had exited by itself (a crash
    /// is often the cause of the failure).
    pub(crate) fn release(&self, label: &str, failed: bool) -> Option<String> {
        let slot = lock(&self.slots).get(label).cloned()?;
        let mut slot = lock(&slot);
        slot.users = slot.users.saturating_sub(1);
        if !failed || slot.users > 0 {
            return None;
        }
        let mut launched = slot.running.take()?;
        let pid = launched.pid();
        let note = match launched.try_wait() {
            Ok(Some(status)) => Some(format!(
                "engine `{}` (pid {pid}) exited during the trial ({status}); its output is in {} and {}",
                launched.name(),
                launched.stderr_log().display(),
                launched.stdout_log().display()
            )),
            _ => None,
        };
        self.stop(launched);
        note
    }

    /// Stop every engine still running (the run has ended).
    pub(crate) fn stop_all(&self) {
        let slots: Vec<_> = lock(&self.slots).values().cloned().collect();
        for slot in slots {
            let running = lock(&slot).running.take();
            if let Some(launched) = running {
                self.stop(launched);
            }
        }
    }

    fn stop(&self, launched: Launched) {
        let pid = launched.pid();
        let name = launched.name().to_string();
        if let Err(e) = launched.stop() {
            eprintln!("llmbench: engine `{name}` (pid {pid}): {}", e.chain());
        }
        // Only now: a second Ctrl-C while it stops must still kill it.
        self.forget(pid);
    }

    fn forget(&self, pid: u32) {
        lock(&self.live).remove(&pid);
    }

    /// The process groups a second Ctrl-C must kill (see [`kill_live`]).
    pub(crate) fn live(&self) -> Arc<Mutex<BTreeSet<u32>>> {
        self.live.clone()
    }
}

/// Kill every engine in `live` at once (SIGKILL to its process group): the
/// harness is about to exit without running destructors.
pub(crate) fn kill_live(live: &Mutex<BTreeSet<u32>>) {
    for pid in lock(live).iter() {
        launch::kill_group(*pid);
    }
}
