//! A local `tokenizer.json` (Hugging Face's format) that counts prompt
//! tokens for an engine without a tokenize endpoint: the second source of
//! prompt lengths, after the engine's own tokenizer and before a
//! calibration. Behind the `tokenizer-json` feature (on by default); built
//! without it, a workload that names a file fails validation saying so.

use std::path::{Path, PathBuf};

use futures_util::future::BoxFuture;

use super::synth::Counter;
use crate::error::{Error, Result};

/// A tokenizer read from a `tokenizer.json`, counting the tokens of a text
/// without special tokens (the engine's BOS and chat template are measured
/// apart, by a probe request), plus `added` of them.
pub(crate) struct FileCounter {
    #[cfg(feature = "tokenizer-json")]
    tokenizer: tokenizers::Tokenizer,
    path: PathBuf,
    pub(crate) added: u32,
}

/// Whether this build can read a `tokenizer.json`; the error says how to
/// get one that can.
pub(crate) fn available(path: &Path) -> Result<()> {
    if cfg!(feature = "tokenizer-json") {
        Ok(())
    } else {
        Err(Error::scenario(format!(
            "workload.tokenizer_json: {}: this llmbench was built without its \
             `tokenizer-json` feature; build with `--features tokenizer-json` (it is on by default)",
            path.display()
        )))
    }
}

impl FileCounter {
    /// Read the tokenizer in the file at `path`; the error names the file
    /// and what is wrong with it.
    pub(crate) fn load(path: &Path) -> Result<FileCounter> {
        available(path)?;
        if !path.is_file() {
            return Err(Error::scenario(format!(
                "workload.tokenizer_json: {}: no such file",
                path.display()
            )));
        }
        Ok(FileCounter {
            #[cfg(feature = "tokenizer-json")]
            tokenizer: tokenizers::Tokenizer::from_file(path).map_err(|e| {
                Error::scenario(format!(
                    "workload.tokenizer_json: {}: not a tokenizer.json this llmbench can read: {e}",
                    path.display()
                ))
            })?,
            path: path.to_path_buf(),
            added: 0,
        })
    }

    /// The tokens of `text` by the file's tokenizer, special tokens left out.
    pub(crate) fn own_count(&self, text: &str) -> Result<u32> {
        #[cfg(feature = "tokenizer-json")]
        {
            let encoding = self.tokenizer.encode(text, false).map_err(|e| {
                Error::scenario(format!(
                    "counting a prompt's tokens with {}: {e}",
                    self.path.display()
                ))
            })?;
            Ok(u32::try_from(encoding.len()).unwrap_or(u32::MAX))
        }
        #[cfg(not(feature = "tokenizer-json"))]
        {
            let _ = text;
            Err(Error::scenario(format!(
                "{}: built without the `tokenizer-json` feature",
                self.path.display()
            )))
        }
    }
}

impl Counter for FileCounter {
    fn count<'a>(&'a self, text: &'a str) -> BoxFuture<'a, Result<u32>> {
        let n = self.own_count(text).map(|n| n.saturating_add(self.added));
        Box::pin(async move { n })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A word-level tokenizer that counts as the simulator does: each run
    /// of letters and digits one token, each other visible character one.
    #[cfg(feature = "tokenizer-json")]
    const SIM_LIKE: &str = r#"{
      "version": "1.0", "truncation": null, "padding": null, "added_tokens": [],
      "normalizer": null,
      "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "[\\p{L}\\p{N}]+|[^\\s\\p{L}\\p{N}]"},
                        "behavior": "Removed", "invert": true},
      "post_processor": null, "decoder": null,
      "model": {"type": "WordLevel", "vocab": {"[UNK]": 0}, "unk_token": "[UNK]"}
    }"#;

    #[cfg(feature = "tokenizer-json")]
    #[test]
    fn a_tokenizer_file_counts_and_a_bad_one_is_named() {
        let dir = std::env::temp_dir().join(format!("llmbench-tok-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let counter = FileCounter::load(&file("sim.json", SIM_LIKE)).unwrap();
        for text in [
            "Hello, world!",
            "don't stop",
            "2+2=4",
            "  spaced\n\tout  ",
            "",
        ] {
            assert_eq!(
                counter.own_count(text).unwrap(),
                crate::sim::model::count_tokens(text),
                "{text:?}"
            );
        }
        let bad = file("bad.json", "{\"model\": 7}");
        let err = FileCounter::load(&bad).err().unwrap().to_string();
        assert!(
            err.contains("bad.json") && err.contains("tokenizer.json"),
            "{err}"
        );
        let missing = bad.with_file_name("missing.json");
        let err = FileCounter::load(&missing).err().unwrap().to_string();
        assert!(err.contains("missing.json: no such file"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
