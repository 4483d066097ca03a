//! Engines: where requests go. [`Engine`] is configuration (kind, URL, model);
//! each wire protocol has a client in its own file.

mod client;
pub mod decode;
pub mod launch;
pub(crate) mod llamacpp;
pub(crate) mod ollama;
pub(crate) mod openai;
pub(crate) mod tgi;
pub mod wire;

pub use client::{
    client, connect, connect_with, ClientConfig, EngineClient, GenRequest, ModelInfo, Timeouts,
};

use crate::error::{Error, Result};
use crate::workload::Mode;
use launch::LaunchSpec;

/// The wire protocol an engine speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EngineKind {
    /// OpenAI-compatible: vLLM, SGLang, llama.cpp `/v1`, Ollama `/v1`, any.
    OpenAi,
    /// Ollama's native API (not yet supported).
    Ollama,
    /// HuggingFace TGI's native API (not yet supported).
    Tgi,
    /// llama.cpp `llama-server`'s native API (not yet supported).
    LlamaCpp,
}

impl EngineKind {
    /// The name used on the command line and in `llmbench.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::OpenAi => "openai",
            EngineKind::Ollama => "ollama",
            EngineKind::Tgi => "tgi",
            EngineKind::LlamaCpp => "llamacpp",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        match s {
            "openai" => Ok(EngineKind::OpenAi),
            "ollama" => Ok(EngineKind::Ollama),
            "tgi" => Ok(EngineKind::Tgi),
            "llamacpp" => Ok(EngineKind::LlamaCpp),
            other => Err(Error::config(format!(
                "unknown engine kind `{other}`; expected one of: openai, ollama, tgi, llamacpp"
            ))),
        }
    }

    /// The route names `api=` accepts for this kind: the chat route, then
    /// the raw-prompt route.
    pub fn api_names(self) -> [&'static str; 2] {
        match self {
            EngineKind::OpenAi | EngineKind::LlamaCpp => ["chat", "completion"],
            EngineKind::Ollama | EngineKind::Tgi => ["chat", "generate"],
        }
    }

    fn parse_api(self, value: &str) -> std::result::Result<Mode, String> {
        let [chat, raw] = self.api_names();
        if value == chat {
            Ok(Mode::Chat)
        } else if value == raw {
            Ok(Mode::Completion)
        } else {
            Err(format!(
                "`api={value}` is not a route of {} engines (allowed: {chat}, {raw})",
                self.as_str()
            ))
        }
    }

    /// Whether this build can talk to engines of this kind.
    pub fn is_supported(self) -> bool {
        matches!(
            self,
            EngineKind::OpenAi | EngineKind::Ollama | EngineKind::Tgi | EngineKind::LlamaCpp
        )
    }
}

/// One engine to benchmark.
///
/// ```
/// use llmbench::prelude::*;
/// let e: Engine = "openai=http://127.0.0.1:8000,model=qwen,name=vllm".parse()?;
/// assert_eq!(e.label(), "vllm");
/// assert_eq!(e.model(), Some("qwen"));
/// # Ok::<(), llmbench::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Engine {
    pub(crate) kind: EngineKind,
    pub(crate) url: String,
    pub(crate) model: Option<String>,
    pub(crate) name: Option<String>,
    /// The name of the environment variable holding the API key; the key
    /// itself is read when requests are sent and never stored.
    pub(crate) api_key_env: Option<String>,
    /// The route to use (`api=`): chat, or completion/generate. `None`
    /// follows the workload's mode.
    pub(crate) api: Option<Mode>,
    /// How the harness starts this engine (`[engine.launch]`); `None`: it
    /// is already running.
    #[serde(skip)]
    pub(crate) launch: Option<Box<LaunchSpec>>,
    /// What the engine costs per hour (any currency), for cost per token
    /// in the reports.
    pub(crate) price_per_hour: Option<f64>,
    /// The process id of an engine running on this machine that the
    /// harness did not start, so the monitor samples its CPU and memory.
    pub(crate) pid: Option<u32>,
}

impl Engine {
    /// An OpenAI-compatible server at `url` (scheme, host and port; the
    /// `/v1/...` paths are added), serving `model`.
    pub fn openai(url: impl Into<String>, model: impl Into<String>) -> Self {
        Engine {
            kind: EngineKind::OpenAi,
            url: url.into(),
            model: Some(model.into()),
            name: None,
            api_key_env: None,
            api: None,
            launch: None,
            price_per_hour: None,
            pid: None,
        }
    }

    /// Label this engine in trial names and reports (default: the kind).
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Use the chat route (`Mode::Chat`) or the raw-prompt route
    /// (`Mode::Completion`: `/v1/completions`, llama.cpp `/completion`,
    /// Ollama `/api/generate`, TGI `/generate_stream`) whatever the workload's mode.
    #[must_use]
    pub fn api(mut self, route: Mode) -> Self {
        self.api = Some(route);
        self
    }

    /// What running the engine costs per hour (in any currency, the same
    /// for every engine compared): the reports then give cost per million
    /// output tokens and output tokens per unit of money.
    #[must_use]
    pub fn price_per_hour(mut self, price: f64) -> Self {
        self.price_per_hour = Some(price);
        self
    }

    /// Sample the CPU and memory of process `pid` as this engine's (an
    /// engine on this machine the harness did not start; a launched one is
    /// sampled by itself).
    #[must_use]
    pub fn pid(mut self, pid: u32) -> Self {
        self.pid = Some(pid);
        self
    }

    /// The process id given with [`Engine::pid`], if any.
    pub fn process_id(&self) -> Option<u32> {
        self.pid
    }

    /// The price per hour, if one is set.
    pub fn hourly_price(&self) -> Option<f64> {
        self.price_per_hour
    }

    /// Read the API key from environment variable `var` when sending.
    #[must_use]
    pub fn api_key_env(mut self, var: impl Into<String>) -> Self {
        self.api_key_env = Some(var.into());
        self
    }

    /// Let the harness start this engine: it runs `spec` when the first
    /// trial that uses the engine runs, waits until `spec`'s health URL
    /// answers 200, keeps the engine's stdout and stderr in the run
    /// directory (`engines/<label>.stdout.log`, `.stderr.log`) and stops it
    /// when the run ends. The spec's log folder and name are the harness's
    /// to set.
    ///
    /// ```
    /// use llmbench::prelude::*;
    /// use llmbench::engine::launch::LaunchSpec;
    /// let engine = Engine::openai("http://127.0.0.1:18080", "model.gguf")
    ///     .name("llama")
    ///     .launch(
    ///         LaunchSpec::new("llama-server", "http://127.0.0.1:18080/health")
    ///             .args(["-m", "model.gguf", "--port", "18080"]),
    ///     );
    /// assert!(engine.launch_spec().is_some());
    /// ```
    #[must_use]
    pub fn launch(mut self, spec: LaunchSpec) -> Self {
        self.launch = Some(Box::new(spec));
        self
    }

    /// How the harness starts this engine, if it does.
    pub fn launch_spec(&self) -> Option<&LaunchSpec> {
        self.launch.as_deref()
    }

    /// The label used in trial names (`scenario/label`) and reports.
    pub fn label(&self) -> &str {
        self.name.as_deref().unwrap_or(self.kind.as_str())
    }

    /// The wire protocol.
    pub fn kind(&self) -> EngineKind {
        self.kind
    }

    /// The base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The model, if one was named (otherwise the engine's first is asked for).
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    /// Check that this engine can be used by this build.
    pub(crate) fn check_supported(&self) -> Result<()> {
        if self.kind.is_supported() {
            Ok(())
        } else {
            Err(Error::config(format!(
                "engine `{}`: kind `{}` is not yet supported by this version of llmbench \
                 (supported: openai; use `openai=URL` for any OpenAI-compatible server)",
                self.label(),
                self.kind.as_str()
            )))
        }
    }
}

impl std::str::FromStr for Engine {
    type Err = Error;

    /// Parse `KIND=URL[,model=NAME][,name=LABEL][,api=ROUTE][,api_key_env=VAR][,price_per_hour=P][,pid=PID]`.
    fn from_str(spec: &str) -> Result<Self> {
        let bad = |why: String| {
            Error::config(format!(
                "--engine `{spec}`: {why}; expected KIND=URL[,model=NAME][,name=LABEL][,api=ROUTE][,api_key_env=VAR][,price_per_hour=P][,pid=PID]"
            ))
        };
        let mut parts = spec.split(',');
        let head = parts.next().unwrap_or_default();
        let (kind, url) = head
            .split_once('=')
            .ok_or_else(|| bad("missing `=` between kind and URL".into()))?;
        let kind = EngineKind::parse(kind.trim()).map_err(|e| bad(e.to_string()))?;
        let url = url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(bad(format!(
                "URL `{url}` must start with http:// or https://"
            )));
        }
        let mut engine = Engine {
            kind,
            url: url.trim_end_matches('/').to_string(),
            model: None,
            name: None,
            api_key_env: None,
            api: None,
            launch: None,
            price_per_hour: None,
            pid: None,
        };
        for part in parts {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| bad(format!("option `{part}` has no `=`")))?;
            let value = value.trim().to_string();
            match key.trim() {
                "model" => engine.model = Some(value),
                "name" => engine.name = Some(value),
                "api_key_env" => engine.api_key_env = Some(value),
                "api" => engine.api = Some(kind.parse_api(&value).map_err(bad)?),
                "pid" => match value.parse::<u32>() {
                    Ok(pid) if pid > 0 => engine.pid = Some(pid),
                    _ => return Err(bad(format!("pid `{value}` must be a process id"))),
                },
                "price_per_hour" => match value.parse::<f64>() {
                    Ok(p) if p.is_finite() && p >= 0.0 => engine.price_per_hour = Some(p),
                    _ => {
                        return Err(bad(format!(
                            "price_per_hour `{value}` must be a number, 0 or more"
                        )))
                    }
                },
                other => {
                    return Err(bad(format!(
                        "unknown option `{other}` (allowed: model, name, api, api_key_env, price_per_hour, pid)"
                    )))
                }
            }
        }
        Ok(engine)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_spec() {
        let e: Engine = "openai=http://h:1/,model=m,name=n,api_key_env=KEY"
            .parse()
            .unwrap();
        assert_eq!(e.kind(), EngineKind::OpenAi);
        assert_eq!(e.url(), "http://h:1");
        assert_eq!(e.model(), Some("m"));
        assert_eq!(e.label(), "n");
        assert_eq!(e.api_key_env.as_deref(), Some("KEY"));
        let priced: Engine = "openai=http://h:1,price_per_hour=2.5".parse().unwrap();
        assert_eq!(priced.hourly_price(), Some(2.5));
        let local: Engine = "openai=http://h:1,pid=4242".parse().unwrap();
        assert_eq!(local.process_id(), Some(4242));
        assert!("openai=http://h:1,pid=x".parse::<Engine>().is_err());
        let err = "openai=http://h:1,price_per_hour=-1"
            .parse::<Engine>()
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("price_per_hour `-1` must be a number, 0 or more"),
            "{err}"
        );
    }

    #[test]
    fn rejects_bad_specs_with_the_reason() {
        let e: Engine = "ollama=http://h,api=generate".parse().unwrap();
        assert_eq!(e.api, Some(Mode::Completion));
        let cases = [
            (
                "openai=http://h,api=generate",
                "not a route of openai engines",
            ),
            ("openai", "missing `=`"),
            ("bogus=http://h", "unknown engine kind `bogus`"),
            ("openai=h:1", "must start with http://"),
            ("openai=http://h,colour=red", "unknown option `colour`"),
            ("openai=http://h,model", "option `model` has no `=`"),
        ];
        for (spec, why) in cases {
            let err = spec.parse::<Engine>().unwrap_err().to_string();
            assert!(err.contains(why), "{spec}: {err}");
            assert!(err.contains(spec), "{spec}: {err}");
        }
    }

    #[test]
    fn every_kind_parses_with_its_routes() {
        for (kind, routes) in [
            ("openai", ["chat", "completion"]),
            ("llamacpp", ["chat", "completion"]),
            ("ollama", ["chat", "generate"]),
            ("tgi", ["chat", "generate"]),
        ] {
            for route in routes {
                let e: Engine = format!("{kind}=http://h:1,api={route}").parse().unwrap();
                assert!(e.check_supported().is_ok());
                assert_eq!(e.kind().as_str(), kind);
            }
        }
    }
}
