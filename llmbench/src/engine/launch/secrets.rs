//! Secrets a launched engine was given (the value of `--api-key X`, of an
//! environment variable named like a key), kept out of its logs: quoted
//! tails are redacted, and once the engine has stopped its log files are
//! rewritten (aside, then renamed) with every secret replaced.

use std::path::Path;

use super::{names_a_secret, secret_starts, LaunchSpec};

/// What replaces a secret.
pub(super) const REDACTED: &str = "<redacted>";

/// Values shorter than this are not treated as secrets: redacting `1` or
/// `on` from a log would hide everything and protect nothing.
const SHORTEST_SECRET: usize = 4;

/// The secrets `spec` hands its engine: the value after a secret-looking
/// flag (`--api-key X`, `--api-key=X`), and the value of each environment
/// variable whose name says key, token, secret or password.
pub(super) fn secrets_of(spec: &LaunchSpec) -> Vec<String> {
    let mut out: Vec<String> = spec
        .args
        .iter()
        .zip(secret_starts(&spec.args))
        .filter_map(|(arg, at)| Some(arg.to_string_lossy()[at?..].to_string()))
        .collect();
    out.extend(
        spec.env
            .iter()
            .filter(|(key, _)| names_a_secret(&key.to_string_lossy()))
            .map(|(_, value)| value.to_string_lossy().to_string()),
    );
    out.retain(|s| s.len() >= SHORTEST_SECRET);
    out.sort_unstable_by_key(|s| std::cmp::Reverse(s.len()));
    out.dedup();
    out
}

/// `text` with every secret replaced.
pub(super) fn redact(text: &str, secrets: &[String]) -> String {
    secrets
        .iter()
        .fold(text.to_string(), |t, s| t.replace(s.as_str(), REDACTED))
}

/// Rewrite the file at `path` with every secret replaced, if it holds any:
/// written aside and renamed, so a crash leaves the old or the new file,
/// never half of one. A log that cannot be read or rewritten is left as
/// it is; the error says which.
pub(super) fn scrub_file(path: &Path, secrets: &[String]) -> std::io::Result<bool> {
    if secrets.is_empty() {
        return Ok(false);
    }
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let mut out = bytes.clone();
    for s in secrets {
        out = replace_bytes(&out, s.as_bytes(), REDACTED.as_bytes());
    }
    if out == bytes {
        return Ok(false);
    }
    let aside = path.with_extension("log.redacting");
    std::fs::write(&aside, &out)?;
    std::fs::rename(&aside, path)?;
    Ok(true)
}

fn replace_bytes(hay: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(hay.len());
    let mut rest = hay;
    while let Some(at) = memchr::memmem::find(rest, needle) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(with);
        rest = &rest[at + needle.len()..];
    }
    out.extend_from_slice(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_values_and_key_variables_are_secrets_and_are_replaced() {
        let spec = LaunchSpec::new("llama-server", "http://127.0.0.1:1/health")
            .args(["--api-key", "sk-one-1234", "--port", "8080"])
            .arg("--hf-token=hf_two_5678")
            .env("OPENAI_API_KEY", "sk-three-9")
            .env("CUDA_VISIBLE_DEVICES", "0")
            .env("SHORT_TOKEN", "ab");
        let secrets = secrets_of(&spec);
        assert_eq!(secrets.len(), 3, "{secrets:?}");
        let dir = std::env::temp_dir().join(format!("llmbench-scrub-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("engine.stderr.log");
        std::fs::write(
            &log,
            "listening on 8080\nkey sk-one-1234, token hf_two_5678\n",
        )
        .unwrap();
        assert!(scrub_file(&log, &secrets).unwrap());
        let text = std::fs::read_to_string(&log).unwrap();
        assert_eq!(
            text,
            "listening on 8080\nkey <redacted>, token <redacted>\n"
        );
        assert!(
            !scrub_file(&log, &secrets).unwrap(),
            "nothing left to scrub"
        );
        assert!(!scrub_file(&dir.join("missing.log"), &secrets).unwrap());
        assert_eq!(redact("x sk-three-9 y", &secrets), "x <redacted> y");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
