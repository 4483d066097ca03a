//! Which engines to benchmark: `--engine` specs and the `llmbench.toml` file.

use std::path::Path;

use serde::Deserialize;

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
    api_key_env: Option<String>,
}

/// Parse an engines file's text; `origin` names it in errors.
pub(crate) fn parse_engines_toml(text: &str, origin: &str) -> Result<Vec<Engine>> {
    let file: File = toml::from_str(text)
        .map_err(|e| Error::config(format!("{origin}: {}", e.to_string().trim_end())))?;
    file.engine
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            let mut spec = format!("{}={}", e.kind, e.url);
            for (key, value) in [
                ("model", e.model),
                ("name", e.name),
                ("api_key_env", e.api_key_env),
            ] {
                if let Some(v) = value {
                    spec.push_str(&format!(",{key}={v}"));
                }
            }
            spec.parse::<Engine>()
                .map_err(|err| err.context(format!("{origin}: [[engine]] #{}", i + 1)))
        })
        .collect()
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
