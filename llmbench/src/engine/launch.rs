//! Starting an engine for a run: spawn its command with stdout and stderr in
//! log files, wait until its health URL answers 200, and stop it (SIGTERM,
//! then SIGKILL after a grace period) when asked or when dropped.
//!
//! ```no_run
//! use std::time::Duration;
//! use llmbench::engine::launch::{LaunchSpec, Launched};
//!
//! # async fn demo() -> llmbench::Result<()> {
//! let spec = LaunchSpec::new("llama-server", "http://127.0.0.1:8080/health")
//!     .args(["-m", "model.gguf", "--host", "127.0.0.1", "--port", "8080"])
//!     .current_dir("/models")
//!     .startup_timeout(Duration::from_secs(120))
//!     .log_dir("target/llmbench/runs/now");
//! let engine = Launched::start(&spec).await?;
//! println!("llama-server is pid {}", engine.pid());
//! // ... benchmark http://127.0.0.1:8080 ...
//! engine.stop()?;
//! # Ok(())
//! # }
//! ```
//!
//! On Unix the engine leads its own process group and signals go to the
//! group, so an engine started through a wrapper script stops with its
//! children. The terminal's Ctrl-C therefore does not reach it directly: the
//! harness stops it (through [`Launched::stop`] or `Drop`) when it handles the
//! signal. An engine outlives a harness killed with SIGKILL.

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};

/// How often the health URL is asked while the engine starts.
const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// How long one health request may take.
const HEALTH_REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// How many lines of the engine's log an error quotes.
const LOG_TAIL_LINES: usize = 20;

/// How to start an engine and know that it is ready.
#[must_use]
#[derive(Clone, Debug, PartialEq)]
pub struct LaunchSpec {
    /// The program to run (a path, or a name looked up in `PATH`).
    pub command: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Environment variables set for it, on top of the inherited ones. Their
    /// values never appear in messages.
    pub env: Vec<(OsString, OsString)>,
    /// The folder it runs in (default: the current one).
    pub current_dir: Option<PathBuf>,
    /// The URL that answers HTTP 200 once the engine is ready to serve
    /// (llama-server's `/health` answers 503 while the model loads).
    pub health_url: String,
    /// The longest wait for the health URL to answer 200.
    pub startup_timeout: Duration,
    /// How long [`Launched::stop`] waits after SIGTERM before SIGKILL.
    pub stop_timeout: Duration,
    /// The folder for `<name>.stdout.log` and `<name>.stderr.log`.
    pub log_dir: PathBuf,
    /// The name in log file names and messages (default: the command's file name).
    pub name: Option<String>,
}

impl LaunchSpec {
    /// Run `command`, ready when `health_url` answers 200. Defaults: no
    /// arguments, a 60 s start-up timeout, 5 s to stop, logs in the current folder.
    pub fn new(command: impl Into<PathBuf>, health_url: impl Into<String>) -> Self {
        LaunchSpec {
            command: command.into(),
            args: Vec::new(),
            env: Vec::new(),
            current_dir: None,
            health_url: health_url.into(),
            startup_timeout: Duration::from_secs(60),
            stop_timeout: Duration::from_secs(5),
            log_dir: PathBuf::from("."),
            name: None,
        }
    }

    /// Add one argument.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Add arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Set an environment variable for the engine.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Run the engine in `dir`.
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.current_dir = Some(dir.into());
        self
    }

    /// Wait at most `timeout` for the engine to become healthy.
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }

    /// Wait at most `timeout` after SIGTERM before killing the engine.
    pub fn stop_timeout(mut self, timeout: Duration) -> Self {
        self.stop_timeout = timeout;
        self
    }

    /// Keep the engine's stdout and stderr in `dir` (created if missing).
    pub fn log_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.log_dir = dir.into();
        self
    }

    /// Name the engine in log file names and messages.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The name used in log file names and messages.
    pub fn display_name(&self) -> String {
        if let Some(name) = &self.name {
            return name.clone();
        }
        self.command
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "engine".to_string())
    }

    /// Fail if something already answers at the health URL: a server left
    /// running on the engine's port would pass the health check while the
    /// new engine fails to bind, and be benchmarked in its place.
    pub async fn check_address_free(&self) -> Result<()> {
        match health_client()?.get(&self.health_url).send().await {
            Err(_) => Ok(()),
            Ok(resp) => Err(Error::new(
                ErrorKind::Engine,
                format!(
                    "engine `{}`: {} already answers (HTTP {}) before `{}` was started; \
                     another server holds its address: stop it or choose another port",
                    self.display_name(),
                    self.health_url,
                    resp.status(),
                    self.command_line()
                ),
            )),
        }
    }

    /// The command line as a message shows it, with the value of any
    /// argument that looks like a secret (`--api-key X`) redacted.
    pub fn command_line(&self) -> String {
        let mut out = self.command.display().to_string();
        for (arg, secret) in self.args.iter().zip(secret_starts(&self.args)) {
            let arg = arg.to_string_lossy();
            out.push(' ');
            match secret {
                None => out.push_str(&shell_word(&arg)),
                Some(at) => {
                    out.push_str(&arg[..at]);
                    out.push_str(secrets::REDACTED);
                }
            }
        }
        out
    }
}

/// For each of `args`, where a secret value starts in it: at 0 for the
/// argument after a secret-looking flag (`--api-key X`), after the `=` of
/// one (`--api-key=X`); `None` for the others. The one reading of which
/// arguments are secret, for messages and for scrubbing logs alike.
fn secret_starts(args: &[OsString]) -> Vec<Option<usize>> {
    let mut out = Vec::with_capacity(args.len());
    let mut hide_next = false;
    for arg in args {
        let arg = arg.to_string_lossy();
        if hide_next {
            out.push(Some(0));
            hide_next = false;
        } else if let Some((flag, _)) = arg.split_once('=').filter(|(f, _)| is_secret_flag(f)) {
            out.push(Some(flag.len() + 1));
        } else {
            hide_next = is_secret_flag(&arg);
            out.push(None);
        }
    }
    out
}

/// `arg` as a shell would need it, shortened when long (a message is for
/// reading, not pasting: an inline script shows as its start).
fn shell_word(arg: &str) -> String {
    const MAX: usize = 60;
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,+@%".contains(c));
    if plain {
        return arg.to_string();
    }
    let flat = arg.split_whitespace().collect::<Vec<_>>().join(" ");
    let shown = match flat.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &flat[..cut]),
        None => flat,
    };
    format!("'{}'", shown.replace('\'', "'\\''"))
}

fn is_secret_flag(arg: &str) -> bool {
    arg.starts_with('-') && names_a_secret(arg)
}

/// Whether `name` (a flag, an environment variable) says key, token,
/// secret or password, in any case.
fn names_a_secret(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    ["key", "token", "secret", "password"]
        .iter()
        .any(|s| lower.contains(s))
}

/// A running engine started from a [`LaunchSpec`]. Dropping it stops the
/// engine, as [`Launched::stop`] does.
#[derive(Debug)]
pub struct Launched {
    child: Option<Child>,
    pid: u32,
    name: String,
    command_line: String,
    stdout_log: PathBuf,
    stderr_log: PathBuf,
    stop_timeout: Duration,
    /// What the engine was given that must not reach its logs' readers.
    secrets: Vec<String>,
}

impl Launched {
    /// Start the engine and wait until its health URL answers 200.
    ///
    /// Fails, with the engine stopped, when something else already answers
    /// at the health URL, when the command cannot be run, when
    /// it exits first, or when it is not healthy within the start-up timeout;
    /// the message names the command, the URL, the time waited, the last
    /// answer and the last lines of the engine's log.
    pub async fn start(spec: &LaunchSpec) -> Result<Launched> {
        spec.check_address_free().await?;
        let mut engine = Self::spawn(spec)?;
        match engine.wait_ready(spec).await {
            Ok(()) => Ok(engine),
            Err(e) => {
                engine.shutdown();
                Err(e)
            }
        }
    }

    /// Start the engine's process without waiting for it to be ready: the
    /// first half of [`Launched::start`], for a caller that wants the PID
    /// at once (to kill the engine if it must quit during the wait). Follow
    /// it with [`Launched::wait_ready`].
    pub fn spawn(spec: &LaunchSpec) -> Result<Launched> {
        let name = spec.display_name();
        let command_line = spec.command_line();
        std::fs::create_dir_all(&spec.log_dir).map_err(|e| {
            Error::io(
                format!(
                    "engine `{name}`: creating its log folder {}",
                    spec.log_dir.display()
                ),
                e,
            )
        })?;
        let stdout_log = spec.log_dir.join(format!("{name}.stdout.log"));
        let stderr_log = spec.log_dir.join(format!("{name}.stderr.log"));
        let open = |path: &Path| {
            File::create(path).map_err(|e| {
                Error::io(
                    format!("engine `{name}`: creating its log {}", path.display()),
                    e,
                )
            })
        };
        let mut command = Command::new(&spec.command);
        command
            .args(&spec.args)
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(open(&stdout_log)?)
            .stderr(open(&stderr_log)?);
        if let Some(dir) = &spec.current_dir {
            command.current_dir(dir);
        }
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            command.process_group(0);
        }
        let child = command.spawn().map_err(|e| {
            let dir = spec
                .current_dir
                .as_ref()
                .map(|d| format!(" in {}", d.display()))
                .unwrap_or_default();
            Error::new(
                ErrorKind::Engine,
                format!("engine `{name}`: cannot run `{command_line}`{dir}"),
            )
            .with_source(e)
        })?;
        Ok(Launched {
            pid: child.id(),
            child: Some(child),
            name,
            command_line,
            stdout_log,
            stderr_log,
            stop_timeout: spec.stop_timeout,
            secrets: secrets::secrets_of(spec),
        })
    }

    /// Wait until `spec`'s health URL answers 200 (the second half of
    /// [`Launched::start`]). Fails when the engine exits first or the
    /// start-up timeout passes; the engine is left running then, for the
    /// caller to stop (dropping it does).
    pub async fn wait_ready(&mut self, spec: &LaunchSpec) -> Result<()> {
        let started = Instant::now();
        let http = health_client()?;
        let mut last = String::from("no answer yet");
        loop {
            if let Some(status) = self.try_wait()? {
                return Err(self.startup_error(format!(
                    "exited ({status}) after {:.1} s, before {} answered 200 (last answer: {last})",
                    started.elapsed().as_secs_f64(),
                    spec.health_url
                )));
            }
            match http.get(&spec.health_url).send().await {
                Ok(resp) if resp.status() == reqwest::StatusCode::OK => return Ok(()),
                Ok(resp) => {
                    let status = resp.status();
                    let body = resp.text().await.unwrap_or_default();
                    last = format!("HTTP {status} {}", one_line(&body, 200));
                }
                Err(e) => last = format!("{}", ErrorChain(&e)),
            }
            if started.elapsed() >= spec.startup_timeout {
                return Err(self.startup_error(format!(
                    "not healthy at {} after {:.1} s (startup timeout {:.1} s; last answer: {last})",
                    spec.health_url,
                    started.elapsed().as_secs_f64(),
                    spec.startup_timeout.as_secs_f64()
                )));
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    fn startup_error(&self, what: String) -> Error {
        let mut message = format!("engine `{}` (`{}`) {what}", self.name, self.command_line);
        for path in [&self.stderr_log, &self.stdout_log] {
            let tail = secrets::redact(&log_tail(path, LOG_TAIL_LINES), &self.secrets);
            if !tail.is_empty() {
                message.push_str(&format!("\nlast lines of {}:\n{tail}", path.display()));
            }
        }
        if !message.contains("last lines of") {
            message.push_str(&format!(
                "\n(its logs {} and {} are empty)",
                self.stderr_log.display(),
                self.stdout_log.display()
            ));
        }
        Error::new(ErrorKind::Engine, message)
    }

    /// The engine's process id (on Unix also its process group id).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The name used in log file names and messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The command line it was started with, secrets redacted
    /// ([`LaunchSpec::command_line`]).
    pub fn command_line(&self) -> &str {
        &self.command_line
    }

    /// The file holding the engine's stdout.
    pub fn stdout_log(&self) -> &Path {
        &self.stdout_log
    }

    /// The file holding the engine's stderr.
    pub fn stderr_log(&self) -> &Path {
        &self.stderr_log
    }

    /// The engine's exit status if it has exited (it died, or was stopped).
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        let Some(child) = self.child.as_mut() else {
            return Ok(None);
        };
        child.try_wait().map_err(|e| {
            Error::io(
                format!(
                    "engine `{}` (pid {}): checking whether it runs",
                    self.name, self.pid
                ),
                e,
            )
        })
    }

    /// Stop the engine: SIGTERM to its process group, up to the stop timeout
    /// for it to exit, then SIGKILL. Blocks until it has exited and returns
    /// its exit status.
    pub fn stop(mut self) -> Result<ExitStatus> {
        let Some(mut child) = self.child.take() else {
            return Err(Error::new(
                ErrorKind::Engine,
                format!("engine `{}`: already stopped", self.name),
            ));
        };
        let status = stop_child(&mut child, self.pid, self.stop_timeout).map_err(|e| {
            Error::io(
                format!("engine `{}` (pid {}): stopping it", self.name, self.pid),
                e,
            )
        });
        self.scrub_logs();
        status
    }

    /// Stop the engine, ignoring failures (it may be gone already).
    fn shutdown(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = stop_child(&mut child, self.pid, self.stop_timeout);
            self.scrub_logs();
        }
    }

    /// Replace every secret the engine was given in its stopped logs; a log
    /// that cannot be rewritten is named on stderr.
    fn scrub_logs(&self) {
        for path in [&self.stdout_log, &self.stderr_log] {
            if let Err(e) = secrets::scrub_file(path, &self.secrets) {
                eprintln!(
                    "llmbench: warning: engine `{}`: could not redact the secrets in its log {}: {e}",
                    self.name,
                    path.display()
                );
            }
        }
    }
}

impl Drop for Launched {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn health_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(HEALTH_REQUEST_TIMEOUT)
        .no_proxy()
        .build()
        .map_err(|e| {
            Error::new(ErrorKind::Engine, "building the health-check HTTP client").with_source(e)
        })
}

/// SIGTERM, wait up to `grace`, SIGKILL; then reap.
fn stop_child(child: &mut Child, pid: u32, grace: Duration) -> std::io::Result<ExitStatus> {
    if let Some(status) = child.try_wait()? {
        // Already gone; its group may still hold children it started.
        signal_group(pid, "KILL");
        return Ok(status);
    }
    if signal_group(pid, "TERM") {
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait()? {
                signal_group(pid, "KILL");
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    signal_group(pid, "KILL");
    match child.kill() {
        Ok(()) => {}
        // InvalidInput: it exited between the checks; wait() reaps it.
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {}
        Err(e) => return Err(e),
    }
    child.wait()
}

/// Kill the process group `pgid` at once (SIGKILL), without waiting or
/// reaping: for a harness that must quit now (a second Ctrl-C). Only for
/// the PID of a [`Launched`] engine that has not been stopped yet.
pub(crate) fn kill_group(pgid: u32) {
    signal_group(pgid, "KILL");
}

/// Send `signal` to the process group `pgid` with kill(1), which keeps this
/// crate free of unsafe code. Returns whether the signal was delivered.
#[cfg(unix)]
fn signal_group(pgid: u32, signal: &str) -> bool {
    Command::new("kill")
        .arg(format!("-{signal}"))
        .arg("--")
        .arg(format!("-{pgid}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Without process groups, `Child::kill` is the only way.
#[cfg(not(unix))]
fn signal_group(_pgid: u32, _signal: &str) -> bool {
    false
}

/// The last `lines` lines of the file at `path` (read from its last 16 KiB).
fn log_tail(path: &Path, lines: usize) -> String {
    const WINDOW: u64 = 16 * 1024;
    let Ok(mut file) = File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if file
        .seek(SeekFrom::Start(len.saturating_sub(WINDOW)))
        .is_err()
    {
        return String::new();
    }
    let mut bytes = Vec::new();
    if file.read_to_end(&mut bytes).is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.trim_end().lines().collect();
    all[all.len().saturating_sub(lines)..]
        .iter()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn one_line(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(max) {
        Some((cut, _)) => format!("{}...", &flat[..cut]),
        None => flat,
    }
}

/// An error and its causes on one line (reqwest's own message alone says
/// only "error sending request").
struct ErrorChain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(c) = cause {
            write!(f, ": {c}")?;
            cause = c.source();
        }
        Ok(())
    }
}

mod secrets;
#[cfg(test)]
mod tests;
