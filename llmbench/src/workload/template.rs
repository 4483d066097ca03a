//! Prompts from a template with parameters: `{name}` placeholders filled
//! from each case, one prompt per case; `{{` and `}}` are literal braces.
//! Filling is a pure function of the template and the cases, and every
//! error names the placeholder and the case it is about.

use super::{Prompt, Workload};

impl Workload {
    /// One prompt per case: `template` with each `{name}` replaced by the
    /// case's value for `name` (`{{` and `}}` write braces). Sent in a
    /// seeded order, each case once before any repeats, fitted to
    /// [`Workload::prompt_tokens`] like any prompt.
    ///
    /// A case is any list of `(name, value)` pairs: an array of tuples, a
    /// `Vec`, a `HashMap` or a `BTreeMap`. Each case must give every
    /// placeholder a value, and nothing else; that, and the braces, are
    /// checked when the scenario is validated, and the error names the
    /// placeholder and the case (``workload.cases[1]: no value for
    /// `{style}` ``).
    ///
    /// ```
    /// use llmbench::prelude::*;
    /// let w = Workload::template(
    ///     "Write a story about {topic} in {style}.",
    ///     [
    ///         [("topic", "a lighthouse"), ("style", "verse")],
    ///         [("topic", "a night train"), ("style", "prose")],
    ///     ],
    /// )
    /// .prompt_tokens(256);
    /// assert_eq!(w.prompt_count(), 2);
    /// let missing = Workload::template("About {topic} in {style}.", [[("topic", "bees")]]);
    /// let bench = Bench::new().workload(missing).load(Load::users(1).requests(1));
    /// let err = bench.validate().unwrap_err().to_string();
    /// assert!(err.contains("workload.cases[0]: no value for `{style}`"), "{err}");
    /// ```
    pub fn template<I, C, K, V>(template: &str, cases: I) -> Self
    where
        I: IntoIterator<Item = C>,
        C: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let cases: Vec<Vec<(String, String)>> = cases
            .into_iter()
            .map(|c| c.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
            .collect();
        match fill_all(template, &cases) {
            Ok(texts) => Workload::from_prompts(texts.into_iter().map(|text| Prompt {
                text,
                max_tokens: None,
                history: Default::default(),
            }))
            .seeded(),
            Err(why) => {
                let mut w = Workload::from_prompts([]);
                w.invalid = Some(why);
                w
            }
        }
    }
}

/// A piece of a parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Slot(String),
}

/// The pieces of `template`; the error names the brace at fault and its
/// position (1-based, in characters).
fn parse(template: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut chars = template.chars().enumerate().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' if chars.peek().is_some_and(|(_, n)| *n == '{') => {
                chars.next();
                text.push('{');
            }
            '}' if chars.peek().is_some_and(|(_, n)| *n == '}') => {
                chars.next();
                text.push('}');
            }
            '}' => {
                return Err(format!(
                    "workload.template: unbalanced `}}` at character {} (write `}}}}` for a \
                     literal brace)",
                    i + 1
                ))
            }
            '{' => {
                let mut name = String::new();
                let mut closed = false;
                for (_, n) in chars.by_ref() {
                    match n {
                        '}' => {
                            closed = true;
                            break;
                        }
                        '{' => break,
                        n => name.push(n),
                    }
                }
                if !closed {
                    return Err(format!(
                        "workload.template: unbalanced `{{` at character {}: no `}}` closes it \
                         (write `{{{{` for a literal brace)",
                        i + 1
                    ));
                }
                let ok = !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'));
                if !ok {
                    return Err(format!(
                        "workload.template: `{{{name}}}` at character {} is not a placeholder: \
                         a name is letters, digits, `_`, `-` and `.` (write `{{{{` and `}}}}` \
                         for literal braces)",
                        i + 1
                    ));
                }
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Slot(name));
            }
            c => text.push(c),
        }
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

/// The placeholders of `pieces`, each once, in order of appearance.
fn placeholders(pieces: &[Piece]) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    for p in pieces {
        if let Piece::Slot(n) = p {
            if !names.contains(&n.as_str()) {
                names.push(n);
            }
        }
    }
    names
}

/// `pieces` filled from case `index`.
fn fill(pieces: &[Piece], index: usize, case: &[(String, String)]) -> Result<String, String> {
    let at = format!("workload.cases[{index}]");
    for (k, (name, _)) in case.iter().enumerate() {
        if case[..k].iter().any(|(n, _)| n == name) {
            return Err(format!("{at}: `{name}` is given twice"));
        }
    }
    let names = placeholders(pieces);
    let value = |name: &str| case.iter().find_map(|(n, v)| (n == name).then_some(v));
    if let Some(missing) = names.iter().find(|n| value(n).is_none()) {
        return Err(format!("{at}: no value for `{{{missing}}}`"));
    }
    if let Some((unused, _)) = case.iter().find(|(n, _)| !names.contains(&n.as_str())) {
        let listed: Vec<String> = names.iter().map(|n| format!("`{{{n}}}`")).collect();
        let listed = if listed.is_empty() {
            "it has none".to_string()
        } else {
            format!("its placeholders: {}", listed.join(", "))
        };
        return Err(format!(
            "{at}: parameter `{unused}` is not in the template ({listed})"
        ));
    }
    let mut text = String::new();
    for p in pieces {
        match p {
            Piece::Text(t) => text.push_str(t),
            Piece::Slot(name) => text.push_str(value(name).map_or("", String::as_str)),
        }
    }
    Ok(text)
}

/// Every case of `cases` filled into `template`, in order.
fn fill_all(template: &str, cases: &[Vec<(String, String)>]) -> Result<Vec<String>, String> {
    let pieces = parse(template)?;
    if cases.is_empty() {
        return Err(
            "workload.cases: empty; give at least one case (the template's parameters and \
             their values)"
                .into(),
        );
    }
    cases
        .iter()
        .enumerate()
        .map(|(i, case)| fill(&pieces, i, case))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn each_case_fills_the_template_to_one_prompt() {
        let got = fill_all(
            "Write a story about {topic} in {style}; {topic} again.",
            &[
                case(&[("topic", "a lighthouse"), ("style", "verse")]),
                case(&[("style", "prose"), ("topic", "bees")]),
            ],
        )
        .unwrap();
        assert_eq!(
            got,
            [
                "Write a story about a lighthouse in verse; a lighthouse again.",
                "Write a story about bees in prose; bees again.",
            ]
        );
    }

    #[test]
    fn doubled_braces_are_literal_braces() {
        let got = fill_all(
            "Answer as JSON {{\"name\": \"{name}\"}}, {{{x}}}",
            &[case(&[("name", "Ada"), ("x", "1")])],
        )
        .unwrap();
        assert_eq!(got, ["Answer as JSON {\"name\": \"Ada\"}, {1}"]);
        assert_eq!(fill_all("No slots.", &[vec![]]).unwrap(), ["No slots."]);
    }

    #[test]
    fn a_missing_value_names_the_placeholder_and_the_case() {
        let e = fill_all(
            "About {topic} in {style}.",
            &[
                case(&[("topic", "a"), ("style", "b")]),
                case(&[("topic", "c")]),
            ],
        )
        .unwrap_err();
        assert_eq!(e, "workload.cases[1]: no value for `{style}`");
    }

    #[test]
    fn an_unknown_parameter_names_itself_the_case_and_the_placeholders() {
        let e = fill_all(
            "About {topic} in {style}.",
            &[case(&[("topic", "a"), ("style", "b"), ("colour", "red")])],
        )
        .unwrap_err();
        assert_eq!(
            e,
            "workload.cases[0]: parameter `colour` is not in the template \
             (its placeholders: `{topic}`, `{style}`)"
        );
        let e = fill_all("Plain.", &[case(&[("x", "1")])]).unwrap_err();
        assert!(e.contains("(it has none)"), "{e}");
        let e = fill_all("{a}", &[case(&[("a", "1"), ("a", "2")])]).unwrap_err();
        assert_eq!(e, "workload.cases[0]: `a` is given twice");
    }

    #[test]
    fn unbalanced_braces_and_bad_names_say_where() {
        let e = fill_all("About {topic in verse.", &[vec![]]).unwrap_err();
        assert!(
            e.starts_with("workload.template: unbalanced `{` at character 7"),
            "{e}"
        );
        let e = fill_all("About {a{b}.", &[vec![]]).unwrap_err();
        assert!(e.contains("unbalanced `{` at character 7"), "{e}");
        let e = fill_all("About topic} in verse.", &[vec![]]).unwrap_err();
        assert!(
            e.starts_with("workload.template: unbalanced `}` at character 12"),
            "{e}"
        );
        let e = fill_all("JSON: {\"a\": 1}", &[vec![]]).unwrap_err();
        assert!(
            e.contains("`{\"a\": 1}` at character 7 is not a placeholder"),
            "{e}"
        );
        assert!(fill_all("Empty {}.", &[vec![]]).is_err());
    }

    #[test]
    fn no_cases_is_an_error() {
        let e = fill_all("About {topic}.", &[]).unwrap_err();
        assert!(e.starts_with("workload.cases: empty"), "{e}");
    }

    #[test]
    fn the_builder_carries_its_error_to_validation() {
        let w = Workload::template("About {topic}.", [[("topic", "bees")]]);
        assert_eq!(w.prompt_count(), 1);
        assert!(w.validate().is_ok());
        let w = Workload::template("About {topic}.", [[("topc", "bees")]]);
        assert_eq!(w.prompt_count(), 0);
        let e = w.validate().unwrap_err().to_string();
        assert!(
            e.contains("workload.cases[0]: no value for `{topic}`"),
            "{e}"
        );
    }
}
