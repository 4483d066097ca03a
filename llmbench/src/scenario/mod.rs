//! Scenario files: a [`Bench`] written in YAML or TOML instead of Rust,
//! for `llmbench run FILE...` (a module of its own because the CLI and
//! bench files both read them, and neither the builder nor the harness
//! should know file formats).
//!
//! The schema is the builder's: each field is a builder method of the same
//! name (`workload.preset: chat` is `Workload::chat()`, `load.for_secs: 30`
//! is `.for_secs(30)`), turned into a `Bench` by calling those methods and
//! checked by [`Bench::validate`]. Every error names the file, the line and
//! column, and the field; an unknown field also lists the fields allowed
//! there.
//!
//! ```
//! use std::path::Path;
//! let yaml = "
//! workload:
//!   preset: chat
//! load:
//!   users: 4
//!   for_secs: 10
//! slo:
//!   ttft_p95_ms: 500
//! ";
//! let chat = llmbench::scenario::parse(yaml, Path::new("scenarios/chat.yaml"))?;
//! assert_eq!(chat.name(), "chat");
//! let typo = yaml.replace("users", "userz");
//! let err = llmbench::scenario::parse(&typo, Path::new("chat.yaml")).unwrap_err();
//! assert!(err.to_string().contains("chat.yaml:5:3: load: unknown field `userz`"));
//! # Ok::<(), llmbench::Error>(())
//! ```

mod locate;
mod spec;
mod values;

use std::path::Path;

use crate::bench::Bench;
use crate::error::{Error, ErrorKind, Result};
use crate::harness::Scenario;

use spec::ScenarioSpec;

/// The formats a scenario file may be written in, by extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Yaml,
    Toml,
}

impl Format {
    fn of(path: &Path) -> Result<Format> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("yaml" | "yml") => Ok(Format::Yaml),
            Some("toml") => Ok(Format::Toml),
            other => Err(Error::config(format!(
                "{}: a scenario file ends in .yaml, .yml or .toml (got {})",
                path.display(),
                other.map_or_else(|| "no extension".to_string(), |e| format!(".{e}"))
            ))),
        }
    }
}

/// Read the scenario in the file at `path` (YAML or TOML, by extension) and
/// check it; its name is its `name` field, else the file's name without
/// its extension.
pub fn load(path: impl AsRef<Path>) -> Result<Scenario> {
    let path = path.as_ref();
    Format::of(path)?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("reading scenario file {}", path.display()), e))?;
    parse(&text, path)
}

/// Parse and check the scenario `text`, written in the file at `path`
/// (which gives its format, its default name, the folder that dataset paths
/// are relative to, and the name in errors).
pub fn parse(text: &str, path: &Path) -> Result<Scenario> {
    let file = path.display().to_string();
    let spec = match Format::of(path)? {
        Format::Yaml => from_yaml(text, &file)?,
        Format::Toml => from_toml(text, &file)?,
    };
    let name = spec.name.clone().unwrap_or_else(|| {
        path.file_stem()
            .map_or_else(|| file.clone(), |s| s.to_string_lossy().into_owned())
    });
    let description = spec.description.clone().unwrap_or_default();
    let dir = path.parent().unwrap_or_else(|| Path::new(""));
    let checked = spec
        .into_bench(dir)
        .and_then(|bench| bench.validate().map(|_| bench));
    let bench: Bench = checked.map_err(|e| placed(e, text, &file))?;
    Ok(Scenario::new(name, bench)
        .description(description)
        .origin(file))
}

fn from_yaml(text: &str, file: &str) -> Result<ScenarioSpec> {
    serde_norway::from_str(text).map_err(|e| {
        let mut message = e.to_string();
        let place = match e.location() {
            Some(at) => {
                let suffix = format!(" at line {} column {}", at.line(), at.column());
                if let Some(cut) = message.rfind(&suffix) {
                    message.truncate(cut);
                }
                format!("{file}:{}:{}", at.line(), at.column())
            }
            None => file.to_string(),
        };
        Error::scenario(format!("{place}: {message}"))
    })
}

fn from_toml(text: &str, file: &str) -> Result<ScenarioSpec> {
    toml::from_str(text).map_err(|e: toml::de::Error| {
        let message = e.message().trim_end();
        match e.span() {
            Some(span) => {
                let (line, col) = locate::line_col(text, span.start);
                // serde names the field's table in YAML, not in TOML.
                match locate::toml_table(text, span.start) {
                    Some(table) if message.starts_with("unknown field") => {
                        Error::scenario(format!("{file}:{line}:{col}: {table}: {message}"))
                    }
                    _ => Error::scenario(format!("{file}:{line}:{col}: {message}")),
                }
            }
            None => Error::scenario(format!("{file}: {message}")),
        }
    })
}

/// `e`, a check's error, with the file, line and column of the field it
/// names (or of the file, when it names none found there).
fn placed(e: Error, text: &str, file: &str) -> Error {
    let message = e.message().to_string();
    let field = match e.kind() {
        ErrorKind::Scenario => locate::field_of(&message),
        // Reading a dataset the workload names.
        _ => Some("workload"),
    };
    let at = field.and_then(|f| locate::find(text, f));
    let place = match at {
        Some(offset) => {
            let (line, col) = locate::line_col(text, offset);
            format!("{file}:{line}:{col}")
        }
        None => file.to_string(),
    };
    match e.kind() {
        ErrorKind::Scenario => Error::scenario(format!("{place}: {message}")),
        _ => e.context(place),
    }
}
