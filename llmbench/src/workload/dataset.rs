//! Prompts from files: JSONL (`{"prompt": .., "max_tokens": ..}` or chat
//! `messages` per line) and ShareGPT-style JSON; parsing is a pure function
//! of the text, and every error names the file and, for JSONL, the line.

use std::path::Path;

use serde_json::Value;

use super::turns::{self, Role, Turn};
use super::{Prompt, Workload};
use crate::error::{Error, Result};

impl Workload {
    /// Prompts from a JSONL file, one object per line: `{"prompt": "..",
    /// "max_tokens": 64}` (`max_tokens` optional) or a conversation
    /// `{"messages": [{"role": "system", "content": ".."}, {"role": "user",
    /// "content": ".."}, ..]}` (roles `system`, `user`, `assistant`; a
    /// content string or an array of `text` parts), sent as it is, every
    /// turn in order, without its trailing assistant turns; it must then
    /// end with a user turn. In completion mode (and on a route forced to
    /// completion) a conversation is one text, each turn a `Role: content`
    /// paragraph, ending `Assistant:`. A conversation of several turns is
    /// not fitted to [`Workload::prompt_tokens`] (the scenario is refused).
    /// Blank lines are skipped. Sent in a seeded order, each once before
    /// any repeats; [`Workload::sample`] takes fewer.
    ///
    /// ```no_run
    /// use llmbench::prelude::*;
    /// let w = Workload::jsonl("prompts.jsonl")?.sample(100);
    /// # Ok::<(), llmbench::Error>(())
    /// ```
    pub fn jsonl(path: impl AsRef<Path>) -> Result<Workload> {
        let path = path.as_ref();
        let text = read(path)?;
        Ok(Workload::from_prompts(parse_jsonl(&text, &path.display().to_string())?).seeded())
    }

    /// Prompts from a ShareGPT-style JSON file: an array of `{"conversations":
    /// [{"from": "human", "value": ".."}, {"from": "gpt", "value": ".."}]}`.
    /// Each conversation's first human turn is sent, with an answer budget
    /// of its first reply's length (about 4 characters a token), as vLLM's
    /// benchmark does; conversations without a human turn are skipped.
    /// [`Workload::sharegpt_multi_turn`] sends whole conversations.
    pub fn sharegpt(path: impl AsRef<Path>) -> Result<Workload> {
        let path = path.as_ref();
        let text = read(path)?;
        let prompts = parse_sharegpt(&text, &path.display().to_string(), false)?;
        Ok(Workload::from_prompts(prompts).seeded())
    }

    /// As [`Workload::sharegpt`], but each conversation is sent whole, as
    /// chat messages up to its last human turn (`system`, `human`/`user`
    /// and `gpt`/`assistant` turns, in order), with an answer budget of the
    /// reply that followed it (about 4 characters a token). Like a JSONL
    /// conversation, it is joined as text in completion mode and not
    /// fitted to a length.
    pub fn sharegpt_multi_turn(path: impl AsRef<Path>) -> Result<Workload> {
        let path = path.as_ref();
        let text = read(path)?;
        let prompts = parse_sharegpt(&text, &path.display().to_string(), true)?;
        Ok(Workload::from_prompts(prompts).seeded())
    }

    /// Send only `n` of the prompts, a sample drawn by the scenario's seed.
    pub fn sample(mut self, n: usize) -> Self {
        self.sample = Some(n);
        self
    }

    /// Keep only prompts of `min..=max` tokens, estimated at 4 characters a
    /// token (a conversation's turns all count; the engine's count is in
    /// the results).
    pub fn keep_prompt_tokens(mut self, range: std::ops::RangeInclusive<u32>) -> Self {
        self.prompts = self
            .prompts
            .iter()
            .filter(|p| {
                let earlier = p.history.iter().map(|t| estimate_tokens(&t.content));
                range.contains(&earlier.fold(estimate_tokens(&p.text), u32::saturating_add))
            })
            .cloned()
            .collect();
        self
    }

    /// Send prompts in a prepared, seeded order (each once before repeats):
    /// a "sample" of all of them.
    pub(crate) fn seeded(mut self) -> Self {
        self.sample = Some(usize::MAX);
        self
    }
}

/// Tokens in `text` at about 4 characters a token.
fn estimate_tokens(text: &str) -> u32 {
    u32::try_from(text.chars().count().div_ceil(4)).unwrap_or(u32::MAX)
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("reading the dataset {}", path.display()), e))
}

fn empty(file: &str) -> Error {
    Error::scenario(format!(
        "{file}: the dataset is empty; it needs at least one prompt"
    ))
}

/// The prompts of JSONL `text` read from `file`.
pub(crate) fn parse_jsonl(text: &str, file: &str) -> Result<Vec<Prompt>> {
    let mut prompts = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let at = |why: String| Error::scenario(format!("{file}:{}: {why}", i + 1));
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line)
            .map_err(|e| at(format!("not a JSON object (column {}): {e}", e.column())))?;
        let max_tokens = match v.get("max_tokens") {
            None | Some(Value::Null) => None,
            Some(n) => Some(
                n.as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .filter(|n| *n > 0)
                    .ok_or_else(|| {
                        at(format!("`max_tokens` must be a positive integer (got {n})"))
                    })?,
            ),
        };
        let (history, text) =
            match (v.get("prompt"), v.get("messages")) {
                (Some(Value::String(p)), _) => (Vec::new(), p.clone()),
                (_, Some(messages)) => turns::from_messages(messages).map_err(at)?,
                _ => return Err(at(
                    "expected a `prompt` string or a `messages` array (of {\"role\", \"content\"})"
                        .into(),
                )),
            };
        prompts.push(Prompt {
            text,
            max_tokens,
            history: history.into(),
        });
    }
    if prompts.is_empty() {
        return Err(empty(file));
    }
    Ok(prompts)
}

/// The prompts of ShareGPT JSON `text` read from `file`: each
/// conversation's first human turn, or with `multi_turn` the conversation
/// up to its last human turn.
pub(crate) fn parse_sharegpt(text: &str, file: &str, multi_turn: bool) -> Result<Vec<Prompt>> {
    if text.trim().is_empty() {
        return Err(empty(file));
    }
    let v: Value = serde_json::from_str(text).map_err(|e| {
        Error::scenario(format!(
            "{file}:{}:{}: not valid JSON: {e}",
            e.line(),
            e.column()
        ))
    })?;
    let entries = v.as_array().ok_or_else(|| {
        Error::scenario(format!(
            "{file}: expected a JSON array of {{\"conversations\": [..]}} entries"
        ))
    })?;
    let mut prompts = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let turns = entry
            .get("conversations")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                Error::scenario(format!(
                    "{file}: entry {i}: expected a `conversations` array of {{\"from\", \"value\"}}"
                ))
            })?;
        if multi_turn {
            prompts.extend(conversation(turns));
            continue;
        }
        let turn = |who: &[&str], after: usize| {
            turns.iter().enumerate().skip(after).find_map(|(k, t)| {
                let from = t.get("from").and_then(Value::as_str)?;
                let value = t.get("value").and_then(Value::as_str)?;
                who.contains(&from).then(|| (k, value.to_string()))
            })
        };
        let Some((k, prompt)) = turn(HUMANS, 0) else {
            continue;
        };
        let reply = turn(ASSISTANTS, k + 1);
        prompts.push(Prompt {
            text: prompt,
            max_tokens: reply.map(|(_, r)| estimate_tokens(&r).max(1)),
            history: Vec::new().into(),
        });
    }
    if prompts.is_empty() {
        return Err(Error::scenario(format!(
            "{file}: no conversation has a human turn; nothing to send"
        )));
    }
    Ok(prompts)
}

/// The names ShareGPT files give the user's and the model's turns.
const HUMANS: &[&str] = &["human", "user"];
const ASSISTANTS: &[&str] = &["gpt", "assistant", "chatgpt", "bing", "bard"];

/// A ShareGPT conversation up to its last human turn, its earlier turns
/// as history, with the budget of the reply to that turn; `None` without
/// a human turn. Turns of other speakers are skipped, as the first-turn
/// reading skips them.
fn conversation(turns: &[Value]) -> Option<Prompt> {
    let mut said: Vec<Turn> = turns
        .iter()
        .filter_map(|t| {
            let from = t.get("from").and_then(Value::as_str)?;
            let value = t.get("value").and_then(Value::as_str)?;
            let role = if HUMANS.contains(&from) {
                Role::User
            } else if ASSISTANTS.contains(&from) {
                Role::Assistant
            } else if from == "system" {
                Role::System
            } else {
                return None;
            };
            Some(Turn::new(role, value))
        })
        .collect();
    let last = said.iter().rposition(|t| t.role == Role::User)?;
    let reply = said[last + 1..]
        .iter()
        .find(|t| t.role == Role::Assistant)
        .map(|t| estimate_tokens(&t.content).max(1));
    said.truncate(last + 1);
    let prompt = said.pop()?;
    Some(Prompt {
        text: prompt.content,
        max_tokens: reply,
        history: said.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(r: Result<Vec<Prompt>>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn jsonl_prompts_and_chat_messages() {
        let text = concat!(
            "{\"prompt\": \"Say hi.\", \"max_tokens\": 12}\n",
            "\n",
            "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, ",
            "{\"role\": \"user\", \"content\": \"First?\"}, {\"role\": \"assistant\", \"content\": \"A\"}, ",
            "{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"Second?\"}]}]}\n",
        );
        let p = parse_jsonl(text, "d.jsonl").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].text.as_str(), p[0].max_tokens), ("Say hi.", Some(12)));
        assert_eq!((p[1].text.as_str(), p[1].max_tokens), ("Second?", None));
        assert!(p[0].history.is_empty());
        let roles: Vec<Role> = p[1].history.iter().map(|t| t.role).collect();
        assert_eq!(roles, [Role::System, Role::User, Role::Assistant]);
        assert_eq!(p[1].history[1].content, "First?");
    }

    #[test]
    fn malformed_messages_name_the_file_and_line() {
        for (line, want) in [
            ("{\"messages\": \"hi\"}", "`messages` must be an array"),
            (
                "{\"messages\": [{\"content\": \"hi\"}]}",
                "`messages[0]` has no `role`",
            ),
            (
                "{\"messages\": [{\"role\": \"user\"}]}",
                "`messages[0]` has no `content`",
            ),
            (
                "{\"messages\": [{\"role\": \"robot\", \"content\": \"hi\"}]}",
                "`messages[0].role` must be system, user or assistant (got \"robot\")",
            ),
        ] {
            let text = format!("{{\"prompt\": \"fine\"}}\n{line}\n");
            let e = err(parse_jsonl(&text, "d.jsonl"));
            assert!(e.contains(&format!("d.jsonl:2: {want}")), "{e}");
        }
    }

    #[test]
    fn jsonl_errors_name_the_file_and_line() {
        let bad = "{\"prompt\": \"ok\"}\n{\"prompt\": \"cut\n";
        let e = err(parse_jsonl(bad, "d.jsonl"));
        assert!(e.contains("d.jsonl:2: not a JSON object"), "{e}");
        let e = err(parse_jsonl("\n{\"text\": \"x\"}\n", "d.jsonl"));
        assert!(
            e.contains("d.jsonl:2: expected a `prompt` string or a `messages` array"),
            "{e}"
        );
        let e = err(parse_jsonl(
            "{\"prompt\": \"x\", \"max_tokens\": -1}",
            "d.jsonl",
        ));
        assert!(
            e.contains("d.jsonl:1: `max_tokens` must be a positive integer (got -1)"),
            "{e}"
        );
        let e = err(parse_jsonl(
            "{\"messages\": [{\"role\": \"system\", \"content\": \"x\"}]}",
            "d.jsonl",
        ));
        assert!(
            e.contains("d.jsonl:1: `messages` has no user message"),
            "{e}"
        );
        let e = err(parse_jsonl("\n  \n", "d.jsonl"));
        assert!(e.contains("d.jsonl: the dataset is empty"), "{e}");
    }

    #[test]
    fn sharegpt_first_human_turn_with_its_reply_length() {
        let text = r#"[
            {"id": "a", "conversations": [{"from": "human", "value": "Tell me a joke."},
                                          {"from": "gpt", "value": "Why did the chicken cross the road?"}]},
            {"id": "b", "conversations": [{"from": "gpt", "value": "Hello"}]},
            {"id": "c", "conversations": [{"from": "human", "value": "Alone."}]}
        ]"#;
        let p = parse_sharegpt(text, "s.json", false).unwrap();
        assert_eq!(p.len(), 2, "a conversation without a human turn is skipped");
        assert_eq!(
            (p[0].text.as_str(), p[0].max_tokens),
            ("Tell me a joke.", Some(9))
        );
        assert_eq!(p[1].max_tokens, None);
    }

    #[test]
    fn sharegpt_multi_turn_sends_each_conversation_up_to_its_last_human_turn() {
        let text = r#"[
            {"conversations": [{"from": "system", "value": "Be kind."},
                               {"from": "human", "value": "Hi."},
                               {"from": "gpt", "value": "Hello!"},
                               {"from": "human", "value": "Tell me a joke."},
                               {"from": "gpt", "value": "Why did the chicken cross the road?"}]},
            {"conversations": [{"from": "gpt", "value": "Hello"}]}
        ]"#;
        let p = parse_sharegpt(text, "s.json", true).unwrap();
        assert_eq!(p.len(), 1, "a conversation without a human turn is skipped");
        assert_eq!(
            (p[0].text.as_str(), p[0].max_tokens),
            ("Tell me a joke.", Some(9))
        );
        assert_eq!(
            *p[0].history,
            [
                Turn::new(Role::System, "Be kind."),
                Turn::new(Role::User, "Hi."),
                Turn::new(Role::Assistant, "Hello!"),
            ]
        );
        let first = parse_sharegpt(text, "s.json", false).unwrap();
        assert_eq!(first[0].text, "Hi.", "by default, the first human turn");
        assert!(first[0].history.is_empty());
    }

    #[test]
    fn sharegpt_errors_name_the_file_and_where() {
        let e = err(parse_sharegpt(
            "[\n{\"conversations\": [}\n]",
            "s.json",
            false,
        ));
        assert!(e.contains("s.json:2:"), "{e}");
        let e = err(parse_sharegpt("[{\"id\": 1}]", "s.json", false));
        assert!(
            e.contains("s.json: entry 0: expected a `conversations` array"),
            "{e}"
        );
        let e = err(parse_sharegpt("", "s.json", false));
        assert!(e.contains("s.json: the dataset is empty"), "{e}");
        let e = err(parse_sharegpt("{}", "s.json", false));
        assert!(e.contains("s.json: expected a JSON array"), "{e}");
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let e = Workload::jsonl("/no/such/dir/prompts.jsonl").unwrap_err();
        assert!(
            e.chain()
                .contains("reading the dataset /no/such/dir/prompts.jsonl"),
            "{}",
            e.chain()
        );
        let e = Workload::sharegpt("/no/such/share.json").unwrap_err();
        assert!(e.chain().contains("/no/such/share.json"), "{}", e.chain());
    }

    #[test]
    fn an_empty_file_is_an_error_naming_it() {
        let path =
            std::env::temp_dir().join(format!("llmbench-empty-{}.jsonl", std::process::id()));
        std::fs::write(&path, "").unwrap();
        let e = Workload::jsonl(&path).unwrap_err().to_string();
        assert!(
            e.contains(&format!("{}: the dataset is empty", path.display())),
            "{e}"
        );
        std::fs::write(&path, "{\"prompt\": \"x\"}\n").unwrap();
        assert_eq!(Workload::jsonl(&path).unwrap().prompt_count(), 1);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn length_filters_and_samples() {
        let w = Workload::prompts(["short", "a somewhat longer prompt of many characters here"])
            .keep_prompt_tokens(1..=3);
        assert_eq!(w.prompt_count(), 1);
        assert_eq!(w.sample(5).sample, Some(5));
    }
}
