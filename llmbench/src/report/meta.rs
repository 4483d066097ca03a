//! `run.json`: what a run was, beside what it measured: llmbench's
//! version, the user's git commit, the host, the engines (with launched
//! engines' command lines, secrets redacted) and every scenario's
//! definition and seed. API keys are never here: engines name the
//! environment variable that holds one, never its value.

use std::io::{self, Write};
use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::engine::Engine;
use crate::ValidBench;

/// The user's repository at the time of the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GitState {
    /// `git rev-parse HEAD`.
    pub commit: String,
    /// Whether the work tree had uncommitted changes.
    pub dirty: bool,
}

/// The machine the client ran on.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HostInfo {
    /// The host name, if known.
    pub hostname: Option<String>,
    /// `linux`, `macos`, ...
    pub os: String,
    /// `x86_64`, `aarch64`, ...
    pub arch: String,
    /// The CPU model, if known.
    pub cpu_model: Option<String>,
    /// Cores available to the process.
    pub cores: usize,
    /// Physical memory, MiB, if known.
    pub memory_mib: Option<u64>,
}

/// One engine the run used.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EngineMeta {
    /// Its label in every output.
    pub name: String,
    /// `openai`, `llamacpp`, `ollama` or `tgi`.
    pub kind: String,
    /// Its base URL.
    pub url: String,
    /// The model asked for, if named.
    pub model: Option<String>,
    /// The command line the harness started it with (secrets redacted).
    pub command: Option<String>,
    /// The version the engine reported, if it reports one.
    #[serde(default)]
    pub version: Option<String>,
}

/// One scenario as it was defined for this run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScenarioMeta {
    /// Its name.
    pub name: String,
    /// Its doc comment.
    pub description: String,
    /// How many prompts it draws from.
    pub prompts: usize,
    /// `chat` or `completion`.
    pub mode: String,
    /// Output budget per request.
    pub max_tokens: u32,
    /// Whether answers are streamed.
    pub stream: bool,
    /// The load, as written in Rust (after `--duration-scale`).
    pub load: String,
    /// Every SLO threshold.
    pub slos: Vec<String>,
    /// The seed of every random choice.
    pub seed: u64,
}

/// One shard of a run (`--shard I/N`), in `run.json` and in each result
/// set of `summary.json`: a shard's run has one, a merged run one per shard.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardInfo {
    /// Which part, from 0.
    pub index: u32,
    /// How many parts.
    pub count: u32,
    /// The seed this shard drew its arrivals and prompts from (derived
    /// from the scenario's `seed` and `index`); absent in `run.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// `--start-at`: the wall-clock time every shard was to start at, in
    /// seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<f64>,
    /// The wall-clock time of the monotonic t0 the records' offsets
    /// (`sent_ms`, ...) count from, in ms since the Unix epoch (in
    /// `run.json`: the first result set's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t0_unix_ms: Option<f64>,
}

/// The whole of `run.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    /// Layout version of this file.
    pub schema: u32,
    /// llmbench's version.
    pub llmbench_version: String,
    /// When the run started (RFC 3339, UTC).
    pub started_at: String,
    /// When it ended; `None` while it runs (or when it was killed).
    pub ended_at: Option<String>,
    /// The git commit of the directory the run started in, if it is a repository.
    pub git: Option<GitState>,
    /// The client's machine.
    pub host: HostInfo,
    /// The GPUs found (`no GPU (...)` and why, when none); `None` with
    /// monitoring off.
    #[serde(default)]
    pub gpu: Option<String>,
    /// Every engine a trial used.
    pub engines: Vec<EngineMeta>,
    /// Every scenario that ran.
    pub scenarios: Vec<ScenarioMeta>,
    /// The shard this run was (`--shard`), or, merged, every shard.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<ShardInfo>,
}

impl RunMeta {
    /// The metadata of a run starting now at `started_at`.
    pub(crate) fn collect(started_at: String) -> Self {
        RunMeta {
            schema: super::SCHEMA,
            llmbench_version: env!("CARGO_PKG_VERSION").to_string(),
            started_at,
            ended_at: None,
            git: git_state(Path::new(".")),
            host: host_info(),
            gpu: None,
            engines: Vec::new(),
            scenarios: Vec::new(),
            shards: Vec::new(),
        }
    }

    /// Add `engine` unless it is there already.
    pub(crate) fn add_engine(&mut self, engine: &Engine) {
        if self.engines.iter().any(|e| e.name == engine.label()) {
            return;
        }
        self.engines.push(EngineMeta {
            name: engine.label().to_string(),
            kind: engine.kind().as_str().to_string(),
            url: engine.url().to_string(),
            model: engine.model().map(str::to_string),
            command: engine.launch_spec().map(|s| s.command_line()),
            version: None,
        });
    }

    /// Record the version engine `name` reported.
    pub(crate) fn set_engine_version(&mut self, name: &str, version: Option<String>) {
        if let Some(e) = self.engines.iter_mut().find(|e| e.name == name) {
            if version.is_some() {
                e.version = version;
            }
        }
    }

    /// Add scenario `name` unless it is there already.
    pub(crate) fn add_scenario(&mut self, name: &str, description: &str, bench: &ValidBench) {
        if self.scenarios.iter().any(|s| s.name == name) {
            return;
        }
        let w = bench.workload();
        self.scenarios.push(ScenarioMeta {
            name: name.to_string(),
            description: description.trim().to_string(),
            prompts: w.prompts.len(),
            mode: serde_json::to_value(w.mode)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            max_tokens: w.max_tokens,
            stream: w.stream,
            load: format!("{:?}", bench.load()),
            slos: bench.slos().iter().map(ToString::to_string).collect(),
            seed: bench.seed(),
        });
    }

    /// The environment section of `report.md`.
    pub(crate) fn write_markdown(&self, out: &mut impl Write) -> io::Result<()> {
        let h = &self.host;
        let or = |v: &Option<String>| v.clone().unwrap_or_else(|| "unknown".into());
        writeln!(out, "## Environment\n")?;
        writeln!(
            out,
            "- host: {} ({} {}), {} cores, {}",
            or(&h.hostname),
            h.os,
            h.arch,
            h.cores,
            h.memory_mib
                .map_or_else(|| "memory unknown".into(), |m| format!("{m} MiB"))
        )?;
        writeln!(out, "- cpu: {}", or(&h.cpu_model))?;
        if let Some(gpu) = &self.gpu {
            writeln!(out, "- gpu: {gpu}")?;
        }
        match &self.git {
            Some(g) => writeln!(
                out,
                "- git: {}{}",
                g.commit,
                if g.dirty {
                    " (uncommitted changes)"
                } else {
                    ""
                }
            )?,
            None => writeln!(out, "- git: not a repository")?,
        }
        for e in &self.engines {
            writeln!(
                out,
                "- engine {}: {} at {}{}{}{}",
                e.name,
                e.kind,
                e.url,
                e.model
                    .as_ref()
                    .map_or_else(String::new, |m| format!(", model {m}")),
                e.version
                    .as_ref()
                    .map_or_else(String::new, |v| format!(", version {v}")),
                e.command
                    .as_ref()
                    .map_or_else(String::new, |c| format!(", started as `{c}`"))
            )?;
        }
        writeln!(
            out,
            "- started {}, ended {}",
            self.started_at,
            or(&self.ended_at)
        )
    }
}

/// The commit and dirtiness of the repository at `dir`, if git runs there.
fn git_state(dir: &Path) -> Option<GitState> {
    let run = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = run(&["rev-parse", "HEAD"])?;
    let dirty =
        run(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    Some(GitState { commit, dirty })
}

/// What can be read of the host without privileges.
fn host_info() -> HostInfo {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    let cpu_model = read("/proc/cpuinfo").and_then(|text| {
        text.lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    });
    let memory_mib = read("/proc/meminfo").and_then(|text| {
        let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024)
    });
    HostInfo {
        hostname: read("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .or_else(|| std::env::var("HOSTNAME").ok()),
        os: std::env::consts::OS.to_string(),
        arch: std::env::consts::ARCH.to_string(),
        cpu_model,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory_mib,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_is_described_and_the_repository_found() {
        let meta = RunMeta::collect("2026-01-01T00:00:00Z".into());
        assert_eq!(meta.host.os, std::env::consts::OS);
        assert!(meta.host.cores >= 1);
        // The tests run inside llmbench's own repository (or an export of
        // it without .git, where there is no commit to give).
        if let Some(git) = &meta.git {
            assert_eq!(git.commit.len(), 40, "{git:?}");
        }
        let mut md = Vec::new();
        meta.write_markdown(&mut md).unwrap();
        let md = String::from_utf8(md).unwrap();
        assert!(md.starts_with("## Environment\n"), "{md}");
        assert!(
            md.contains("- started 2026-01-01T00:00:00Z, ended unknown"),
            "{md}"
        );
    }
}
