//! Where a field is written in a scenario file: the line and column of a
//! dotted path (`load.steps[1].rate`) that a check after parsing names, so
//! its error points into the file as a parse error does.

/// The builder's field names in validation messages that a file spells
/// otherwise (`load.duration` is written `for_secs`).
const SPELLED: &[(&str, &str)] = &[
    ("duration", "for_secs"),
    ("warmup", "warmup_secs"),
    ("think_time", "think_time_secs"),
    ("ramp", "ramp_to"),
    ("spike", "spike_to"),
    ("over", "over_secs"),
    ("at", "at_secs"),
    ("hold", "hold_secs"),
    ("burstiness", "gamma"),
    ("percentile", ""),
];

/// The 1-based line and column of `offset` in `text`.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[start..].chars().count() + 1)
}

/// The field path a check's message starts with (`load.rate` in
/// `load.rate: must be positive`), if it starts with one.
pub(crate) fn field_of(message: &str) -> Option<&str> {
    let (path, _) = message.split_once(": ")?;
    let ok = !path.is_empty()
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']'));
    ok.then_some(path)
}

/// The offset in `text` of the key `path` names, or of the deepest part of
/// it found: each part is looked for after the one before it. `None` when
/// not even the first part is found.
pub(crate) fn find(text: &str, path: &str) -> Option<usize> {
    let mut from = 0;
    let mut found = None;
    for part in path.split('.') {
        let name = part.split('[').next().unwrap_or(part);
        let name = SPELLED
            .iter()
            .find(|(builder, _)| *builder == name)
            .map_or(name, |(_, file)| *file);
        if name.is_empty() {
            break;
        }
        match key_at(text, from, name) {
            Some(at) => {
                found = Some(at);
                from = at + name.len();
            }
            None => break,
        }
    }
    found
}

/// The first place at or after `from` where `name` is written as a key:
/// followed by `:` (YAML) or `=` (TOML), or inside a table header, and not
/// in a comment.
fn key_at(text: &str, from: usize, name: &str) -> Option<usize> {
    let mut start = from;
    while let Some(i) = text.get(start..)?.find(name) {
        let at = start + i;
        start = at + name.len();
        let line_start = text[..at].rfind('\n').map_or(0, |n| n + 1);
        if text[line_start..at].contains('#') {
            continue;
        }
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        let after = text[start..].trim_start_matches(['"', '\'']).trim_start();
        if after.starts_with([':', '=', ']', '.']) {
            return Some(at);
        }
    }
    None
}

/// The TOML table (`load`, `load.ramp_to`) whose header is the last one
/// before `offset`; `None` at the top level.
pub(crate) fn toml_table(text: &str, offset: usize) -> Option<&str> {
    text[..offset.min(text.len())]
        .lines()
        .rev()
        .find_map(|line| {
            let line = line.split('#').next().unwrap_or(line).trim();
            let inner = line.strip_prefix('[')?.strip_suffix(']')?;
            let inner = inner.trim_start_matches('[').trim_end_matches(']').trim();
            let key = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '"');
            (!inner.is_empty() && inner.chars().all(key)).then_some(inner)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "\
# load: not this one
workload:
  preset: chat
load:
  users: 4
  steps_note: x
  ramp_to: {to: 8, over_secs: 60}
  for_secs: 30
";

    const TOML: &str = "\
[workload]
preset = \"chat\"

[load]
rate = -1.0
for_secs = 10
";

    fn at(text: &str, path: &str) -> Option<(usize, usize)> {
        find(text, path).map(|o| line_col(text, o))
    }

    #[test]
    fn finds_each_part_after_the_one_before() {
        assert_eq!(at(YAML, "load.users"), Some((5, 3)));
        assert_eq!(at(YAML, "load.duration"), Some((8, 3)));
        assert_eq!(at(YAML, "load.ramp.over"), Some((7, 20)));
        assert_eq!(
            at(YAML, "load.max_in_flight"),
            Some((4, 1)),
            "the deepest found"
        );
        assert_eq!(at(YAML, "slo.percentile"), None);
        assert_eq!(at(TOML, "load.rate"), Some((5, 1)));
        assert_eq!(at(TOML, "workload.prompts"), Some((1, 2)));
    }

    #[test]
    fn the_toml_table_is_the_last_header_before() {
        let text = "seed = 1\n[load]\nsweep = [\n[1, 2],\n]\n[[load.steps]]\nusers = 1\n";
        assert_eq!(toml_table(text, 3), None);
        assert_eq!(toml_table(text, text.find("sweep").unwrap()), Some("load"));
        assert_eq!(toml_table(text, text.find("],").unwrap()), Some("load"));
        assert_eq!(toml_table(text, text.len()), Some("load.steps"));
    }

    #[test]
    fn a_message_starts_with_its_field() {
        assert_eq!(
            field_of("load.rate: must be positive (got -1)"),
            Some("load.rate")
        );
        assert_eq!(
            field_of("load.steps[1].rate: must"),
            Some("load.steps[1].rate")
        );
        assert_eq!(field_of("load: no end; set a duration"), Some("load"));
        assert_eq!(field_of("two words: here"), None);
    }
}
