//! Conversations: the turns of a multi-turn chat prompt (role and text),
//! read and checked from a dataset's `messages`, and joined as text for a
//! route that takes no messages.

use serde_json::Value;

/// Who speaks a turn of a conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Instructions to the model (`"system"`).
    System,
    /// The user (`"user"`).
    User,
    /// The model's earlier answers (`"assistant"`).
    Assistant,
}

impl Role {
    /// The role as chat APIs write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }

    /// How a completion prompt labels the role's turns.
    fn label(self) -> &'static str {
        match self {
            Role::System => "System",
            Role::User => "User",
            Role::Assistant => "Assistant",
        }
    }
}

/// One turn of a conversation.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Turn {
    /// Who speaks it.
    pub role: Role,
    /// What is said.
    pub content: String,
}

impl Turn {
    /// A turn of `role` saying `content`.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Turn {
            role,
            content: content.into(),
        }
    }
}

/// A conversation as a completion route sends it: each turn on its own
/// paragraph as `Role: content`, the prompt last as the user's, and an
/// `Assistant:` cue for the answer. A prompt without earlier turns is sent
/// as it is.
pub(crate) fn joined(history: &[Turn], prompt: &str) -> String {
    if history.is_empty() {
        return prompt.to_string();
    }
    let mut text = String::new();
    for turn in history {
        text.push_str(turn.role.label());
        text.push_str(": ");
        text.push_str(&turn.content);
        text.push_str("\n\n");
    }
    text.push_str("User: ");
    text.push_str(prompt);
    text.push_str("\n\nAssistant:");
    text
}

/// A dataset's `messages`, checked: the earlier turns and the last user
/// message, after dropping trailing assistant turns (an answer already
/// given is not asked for again). The error says what is wrong, naming the
/// turn (`messages[2].role`), for the caller to place in its file.
pub(crate) fn from_messages(messages: &Value) -> Result<(Vec<Turn>, String), String> {
    let Value::Array(items) = messages else {
        return Err(format!(
            "`messages` must be an array of {{\"role\", \"content\"}} (got {})",
            kind_of(messages)
        ));
    };
    let mut turns = Vec::with_capacity(items.len());
    for (i, m) in items.iter().enumerate() {
        let Value::Object(m) = m else {
            return Err(format!(
                "`messages[{i}]` must be an object with `role` and `content` (got {})",
                kind_of(m)
            ));
        };
        let role = match m.get("role") {
            None | Some(Value::Null) => return Err(format!("`messages[{i}]` has no `role`")),
            Some(Value::String(r)) => match r.as_str() {
                "system" => Role::System,
                "user" => Role::User,
                "assistant" => Role::Assistant,
                other => {
                    return Err(format!(
                        "`messages[{i}].role` must be system, user or assistant (got \"{other}\")"
                    ))
                }
            },
            Some(other) => {
                return Err(format!(
                    "`messages[{i}].role` must be system, user or assistant (got {other})"
                ))
            }
        };
        let content = match m.get("content") {
            None | Some(Value::Null) => {
                return Err(format!("`messages[{i}]` has no `content`"));
            }
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(parts)) => {
                let text: Vec<&str> = parts
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .collect();
                if text.is_empty() {
                    return Err(format!("`messages[{i}].content` has no text part"));
                }
                text.join("\n")
            }
            Some(other) => {
                return Err(format!(
                    "`messages[{i}].content` must be a string or an array of text parts (got {})",
                    kind_of(other)
                ))
            }
        };
        turns.push(Turn { role, content });
    }
    if !turns.iter().any(|t| t.role == Role::User) {
        return Err("`messages` has no user message".into());
    }
    while turns.last().is_some_and(|t| t.role == Role::Assistant) {
        turns.pop();
    }
    match turns.pop() {
        Some(Turn {
            role: Role::User,
            content,
        }) => Ok((turns, content)),
        Some(Turn { role, .. }) => Err(format!(
            "`messages` must end with a user message (after its trailing assistant \
             messages), not a {} message",
            role.as_str()
        )),
        None => Err("`messages` has no user message".into()),
    }
}

/// A JSON value's kind, for errors.
fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_keep_every_turn_in_order_and_drop_trailing_answers() {
        let m = json!([
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "First?"},
            {"role": "assistant", "content": "One."},
            {"role": "user", "content": [{"type": "text", "text": "Second?"}]},
            {"role": "assistant", "content": "Two."},
        ]);
        let (history, last) = from_messages(&m).unwrap();
        assert_eq!(last, "Second?");
        assert_eq!(
            history,
            [
                Turn::new(Role::System, "Be brief."),
                Turn::new(Role::User, "First?"),
                Turn::new(Role::Assistant, "One."),
            ]
        );
    }

    #[test]
    fn malformed_messages_say_which_turn() {
        let cases = [
            (json!({"role": "user"}), "`messages` must be an array"),
            (json!(["hi"]), "`messages[0]` must be an object"),
            (json!([{"content": "x"}]), "`messages[0]` has no `role`"),
            (json!([{"role": "user"}]), "`messages[0]` has no `content`"),
            (
                json!([{"role": "user", "content": "a"}, {"role": "tool", "content": "b"}]),
                "`messages[1].role` must be system, user or assistant (got \"tool\")",
            ),
            (
                json!([{"role": "user", "content": 5}]),
                "`messages[0].content` must be a string or an array of text parts (got a number)",
            ),
            (
                json!([{"role": "user", "content": [{"type": "image_url"}]}]),
                "`messages[0].content` has no text part",
            ),
            (
                json!([{"role": "user", "content": "a"}, {"role": "system", "content": "b"}]),
                "must end with a user message",
            ),
            (json!([]), "`messages` has no user message"),
            (
                json!([{"role": "assistant", "content": "a"}]),
                "`messages` has no user message",
            ),
        ];
        for (m, want) in cases {
            let e = from_messages(&m).unwrap_err();
            assert!(e.contains(want), "{m}: {e}");
        }
    }

    #[test]
    fn a_completion_route_gets_the_turns_as_labelled_paragraphs() {
        assert_eq!(joined(&[], "Just this."), "Just this.");
        let history = [
            Turn::new(Role::System, "Be brief."),
            Turn::new(Role::User, "First?"),
            Turn::new(Role::Assistant, "One."),
        ];
        assert_eq!(
            joined(&history, "Second?"),
            "System: Be brief.\n\nUser: First?\n\nAssistant: One.\n\nUser: Second?\n\nAssistant:"
        );
    }
}
