//! Which engines to benchmark: `--engine` specs and the `llmbench.toml` file,
//! whose entries may say how to start the engine (`[engine.launch]`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::engine::launch::LaunchSpec;
use crate::engine::Engine;
use crate::error::{Error, Result};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    engine: Vec<EngineEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EngineEntry {
    kind: String,
    url: String,
    model: Option<String>,
    name: Option<String>,
    api: Option<String>,
    api_key_env: Option<String>,
    price_per_hour: Option<f64>,
    pid: Option<u32>,
    launch: Option<LaunchEntry>,
}

/// `[engine.launch]`: how to start the engine. Every string may name
/// environment variables as `${VAR}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LaunchEntry {
    command: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    cwd: Option<String>,
    health_url: Option<String>,
    startup_timeout_s: Option<f64>,
    stop_timeout_s: Option<f64>,
}

/// How long a launched engine may take to become healthy, unless its entry says.
const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(120);

/// Parse an engines file's text; `origin` names it in errors.
pub(crate) fn parse_engines_toml(text: &str, origin: &str) -> Result<Vec<Engine>> {
    let file: File = toml::from_str(text)
        .map_err(|e| Error::config(format!("{origin}: {}", e.to_string().trim_end())))?;
    file.engine
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            let mut at = format!("{origin}: [[engine]] #{}", i + 1);
            if let Some(name) = &e.name {
                at.push_str(&format!(" (`{name}`)"));
            }
            let mut spec = format!("{}={}", e.kind, e.url);
            for (key, value) in [
                ("model", e.model),
                ("name", e.name),
                ("api", e.api),
                ("api_key_env", e.api_key_env),
            ] {
                if let Some(v) = value {
                    spec.push_str(&format!(",{key}={v}"));
                }
            }
            if let Some(p) = e.price_per_hour {
                spec.push_str(&format!(",price_per_hour={p}"));
            }
            if let Some(pid) = e.pid {
                spec.push_str(&format!(",pid={pid}"));
            }
            let engine = spec.parse::<Engine>().map_err(|err| err.context(&at))?;
            match e.launch {
                None => Ok(engine),
                Some(launch) => {
                    let spec = launch_spec(launch, engine.url(), &|var| std::env::var(var))
                        .map_err(|why| Error::config(format!("{at}: launch.{why}")))?;
                    Ok(engine.launch(spec))
                }
            }
        })
        .collect()
}

/// The [`LaunchSpec`] of an `[engine.launch]` table, its `${VAR}`s looked up
/// with `env`. The error starts with the field (`args[2]: ...`).
fn launch_spec(
    entry: LaunchEntry,
    url: &str,
    env: &dyn Fn(&str) -> std::result::Result<String, std::env::VarError>,
) -> std::result::Result<LaunchSpec, String> {
    let expand =
        |field: &str, value: &str| expand_vars(value, env).map_err(|why| format!("{field}: {why}"));
    let secs = |field: &str, value: Option<f64>, default: Duration| match value {
        None => Ok(default),
        Some(v) => Duration::try_from_secs_f64(v)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| format!("{field}: must be a positive number of seconds (got {v})")),
    };
    let health_url = match &entry.health_url {
        Some(u) => expand("health_url", u)?,
        None => format!("{url}/health"),
    };
    let mut spec = LaunchSpec::new(expand("command", &entry.command)?, health_url);
    for (i, arg) in entry.args.iter().enumerate() {
        spec = spec.arg(expand(&format!("args[{i}]"), arg)?);
    }
    for (key, value) in &entry.env {
        spec = spec.env(key, expand(&format!("env.{key}"), value)?);
    }
    if let Some(cwd) = &entry.cwd {
        spec = spec.current_dir(expand("cwd", cwd)?);
    }
    let startup = secs(
        "startup_timeout_s",
        entry.startup_timeout_s,
        DEFAULT_STARTUP_TIMEOUT,
    )?;
    let stop = secs("stop_timeout_s", entry.stop_timeout_s, spec.stop_timeout)?;
    Ok(spec.startup_timeout(startup).stop_timeout(stop))
}

/// `value` with every `${VAR}` replaced by the variable's value (`$${`
/// writes a literal `${`). An unset variable is an error naming it.
fn expand_vars(
    value: &str,
    env: &dyn Fn(&str) -> std::result::Result<String, std::env::VarError>,
) -> std::result::Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let end = tail
                .find('}')
                .ok_or_else(|| format!("`${{` without a closing `}}` in `{value}`"))?;
            let name = &tail[..end];
            let valid =
                !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(format!(
                    "`${{{name}}}` in `{value}` is not an environment variable name"
                ));
            }
            match env(name) {
                Ok(v) => out.push_str(&v),
                Err(std::env::VarError::NotPresent) => {
                    return Err(format!("environment variable `{name}` is not set"))
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(format!("environment variable `{name}` is not valid UTF-8"))
                }
            }
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Every configured engine: the file's (`--engines`), then the flags'
/// (`--engine` specs), checked for support and for unique labels. Empty means
/// "use the simulator".
pub fn configured_engines(specs: &[String], file: Option<&Path>) -> Result<Vec<Engine>> {
    let mut engines = Vec::new();
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading the engines file {}", path.display()), e))?;
        engines.extend(parse_engines_toml(&text, &path.display().to_string())?);
    }
    for spec in specs.iter().filter(|s| !s.trim().is_empty()) {
        engines.push(spec.parse::<Engine>()?);
    }
    for (i, e) in engines.iter().enumerate() {
        e.check_supported()?;
        if engines[..i].iter().any(|o| o.label() == e.label()) {
            return Err(Error::config(format!(
                "two engines are labelled `{}`; give each its own `name=`",
                e.label()
            )));
        }
    }
    Ok(engines)
}

/// The label the built-in simulator runs under.
pub(crate) const SIM_LABEL: &str = "sim";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_engines_parse() {
        let text = r#"
            [[engine]]
            kind = "openai"
            url = "http://127.0.0.1:8000"
            model = "qwen"
            name = "vllm"

            [[engine]]
            kind = "openai"
            url = "http://127.0.0.1:8080"
        "#;
        let engines = parse_engines_toml(text, "llmbench.toml").unwrap();
        assert_eq!(engines.len(), 2);
        assert_eq!(engines[0].label(), "vllm");
        assert_eq!(engines[1].model(), None);
    }

    #[test]
    fn toml_errors_name_the_file_and_the_problem() {
        let err = parse_engines_toml("[[engine]]\nkind = \"openai\"\n", "x.toml").unwrap_err();
        assert!(
            err.to_string().contains("x.toml") && err.to_string().contains("url"),
            "{err}"
        );
        let err = parse_engines_toml(
            "[[engine]]\nkind=\"openai\"\nurl=\"http://h\"\ncolour=1\n",
            "x.toml",
        )
        .unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
        let err = parse_engines_toml("[[engine]]\nkind=\"nope\"\nurl=\"http://h\"\n", "x.toml")
            .unwrap_err();
        assert!(
            err.to_string().contains("#1") && err.to_string().contains("nope"),
            "{err}"
        );
    }

    #[test]
    fn launch_tables_become_launch_specs() {
        std::env::set_var("LLMBENCH_TEST_LAUNCH_BIN", "/opt/llama");
        let text = r#"
            [[engine]]
            kind = "llamacpp"
            url = "http://127.0.0.1:18080/"
            name = "llama"
            api = "completion"
            [engine.launch]
            command = "${LLMBENCH_TEST_LAUNCH_BIN}/llama-server"
            args = ["-m", "model.gguf", "--port", "18080", "--api-key", "$${KEY}"]
            env = { LLAMA_ARG_THREADS = "1", HOME_BIN = "${LLMBENCH_TEST_LAUNCH_BIN}" }
            cwd = "/models"
            stop_timeout_s = 0.5

            [[engine]]
            kind = "openai"
            url = "http://127.0.0.1:8000"
            [engine.launch]
            command = "vllm"
            health_url = "http://127.0.0.1:8000/v1/models"
            startup_timeout_s = 600
        "#;
        let engines = parse_engines_toml(text, "llmbench.toml").unwrap();
        let llama = engines[0].launch_spec().unwrap();
        assert_eq!(llama.command, Path::new("/opt/llama/llama-server"));
        assert_eq!(
            llama.command_line(),
            "/opt/llama/llama-server -m model.gguf --port 18080 --api-key <redacted>"
        );
        assert_eq!(llama.args[5], "${KEY}");
        assert_eq!(llama.health_url, "http://127.0.0.1:18080/health");
        assert_eq!(llama.startup_timeout, Duration::from_secs(120));
        assert_eq!(llama.stop_timeout, Duration::from_millis(500));
        assert_eq!(llama.current_dir.as_deref(), Some(Path::new("/models")));
        assert!(llama
            .env
            .contains(&("HOME_BIN".into(), "/opt/llama".into())));
        assert!(llama
            .env
            .contains(&("LLAMA_ARG_THREADS".into(), "1".into())));
        assert_eq!(engines[0].api, Some(crate::Mode::Completion));
        let vllm = engines[1].launch_spec().unwrap();
        assert_eq!(vllm.health_url, "http://127.0.0.1:8000/v1/models");
        assert_eq!(vllm.startup_timeout, Duration::from_secs(600));
        assert!(vllm.args.is_empty());
    }

    #[test]
    fn launch_errors_name_the_file_the_entry_and_the_field() {
        let head = "[[engine]]\nkind=\"openai\"\nurl=\"http://h\"\nname=\"a\"\n";
        let cases = [
            (
                "[engine.launch]\ncommand=\"x\"\nargs=[\"-m\", \"${LLMBENCH_TEST_UNSET_VAR}\"]\n",
                "x.toml: [[engine]] #1 (`a`): launch.args[1]: environment variable `LLMBENCH_TEST_UNSET_VAR` is not set",
            ),
            (
                "[engine.launch]\ncommand=\"x\"\nenv={ T = \"${1-2}\" }\n",
                "launch.env.T: `${1-2}` in `${1-2}` is not an environment variable name",
            ),
            (
                "[engine.launch]\ncommand=\"${OPEN\"\n",
                "launch.command: `${` without a closing `}`",
            ),
            (
                "[engine.launch]\ncommand=\"x\"\nstartup_timeout_s=0\n",
                "launch.startup_timeout_s: must be a positive number of seconds (got 0)",
            ),
            ("[engine.launch]\ncommand=\"x\"\nport=1\n", "unknown field `port`"),
            ("[engine.launch]\nargs=[]\n", "missing field `command`"),
        ];
        for (launch, want) in cases {
            let err = parse_engines_toml(&format!("{head}{launch}"), "x.toml")
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "want `{want}` in: {err}");
            assert!(err.contains("x.toml"), "{err}");
        }
    }

    #[test]
    fn variables_expand_and_dollars_stay() {
        let env = |name: &str| match name {
            "A" => Ok("1".to_string()),
            _ => Err(std::env::VarError::NotPresent),
        };
        assert_eq!(expand_vars("x${A}y${A}", &env).unwrap(), "x1y1");
        assert_eq!(expand_vars("$HOME $ $${A}", &env).unwrap(), "$HOME $ ${A}");
        assert_eq!(
            expand_vars("${B}", &env).unwrap_err(),
            "environment variable `B` is not set"
        );
    }

    #[test]
    fn duplicate_labels_and_unknown_kinds_are_refused() {
        let specs = ["openai=http://a".to_string(), "openai=http://b".to_string()];
        let err = configured_engines(&specs, None).unwrap_err();
        assert!(
            err.to_string()
                .contains("two engines are labelled `openai`"),
            "{err}"
        );
        let err = configured_engines(&["vllm=http://a".to_string()], None).unwrap_err();
        assert!(
            err.to_string().contains("unknown engine kind `vllm`"),
            "{err}"
        );
    }
}
