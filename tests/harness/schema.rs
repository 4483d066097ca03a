//! `summary.json` against its documented schema (`docs/summary.schema.json`):
//! a run of every kind of trial is checked by a small checker that follows
//! the schema's `$ref`, `allOf`, `type`, `enum`, `const`, `required`,
//! `items` and `properties`, and holds every object closed: a field the
//! schema does not document fails, so the page and the file cannot drift.

use super::*;

fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => {
            let name = r.strip_prefix("#/$defs/").expect("local refs only");
            resolve(root, &root["$defs"][name])
        }
        None => schema,
    }
}

fn type_ok(value: &Value, ty: &str) -> bool {
    match ty {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => value.is_u64() || value.is_i64(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        other => panic!("schema type {other} not handled"),
    }
}

/// Every property schema of `schema` and the schemas it includes (`allOf`).
fn properties<'a>(root: &'a Value, schema: &'a Value, out: &mut Vec<(&'a str, &'a Value)>) {
    if let Some(props) = schema["properties"].as_object() {
        out.extend(props.iter().map(|(k, v)| (k.as_str(), v)));
    }
    for part in schema["allOf"].as_array().into_iter().flatten() {
        properties(root, resolve(root, part), out);
    }
}

fn check(root: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    let schema = resolve(root, schema);
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !types.is_empty() && !types.iter().any(|t| type_ok(value, t)) {
        errors.push(format!("{at}: {value} is not {types:?}"));
        return;
    }
    if let Some(options) = schema["enum"].as_array() {
        if !options.contains(value) {
            errors.push(format!("{at}: {value} is not one of {options:?}"));
        }
    }
    if !schema["const"].is_null() && &schema["const"] != value {
        errors.push(format!("{at}: {value} is not {}", schema["const"]));
    }
    if let Some(items) = value.as_array() {
        for (i, item) in items.iter().enumerate() {
            check(root, &schema["items"], item, &format!("{at}[{i}]"), errors);
        }
    }
    let Some(object) = value.as_object() else {
        return;
    };
    let mut required: Vec<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for part in schema["allOf"].as_array().into_iter().flatten() {
        let part = resolve(root, part);
        required.extend(
            part["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str),
        );
    }
    for key in required {
        if !object.contains_key(key) {
            errors.push(format!("{at}: `{key}` is required"));
        }
    }
    let mut props = Vec::new();
    properties(root, schema, &mut props);
    let extra = &schema["additionalProperties"];
    for (key, v) in object {
        let at = format!("{at}.{key}");
        match props.iter().find(|(k, _)| *k == key) {
            Some((_, sub)) => check(root, sub, v, &at, errors),
            None if extra.is_object() => check(root, extra, v, &at, errors),
            None if props.is_empty() && !extra.is_boolean() => {}
            None => errors.push(format!("{at}: not in the schema")),
        }
    }
}

#[test]
fn summary_json_follows_its_documented_schema() {
    let out_dir = temp_dir("schema");
    let out = fixture(&[
        "--bench",
        "--skip",
        "bad_",
        "--skip",
        "slow",
        "--skip",
        "streams",
        "--skip",
        "cmp_throughput",
        "--skip",
        "shard_",
        "--skip",
        "in_flight",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    // slo_missed fails its trial by design; the run still writes everything.
    assert_eq!(out.status.code(), Some(101), "{}", text(&out));
    let s = summary(&run_dir(&out_dir));
    for part in ["scaling", "capacity", "streaming"] {
        assert!(s[part].is_array(), "the run has {part}: {s}");
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/summary.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut errors = Vec::new();
    check(&schema, &schema, &s, "summary", &mut errors);
    assert!(
        errors.is_empty(),
        "summary.json and its schema disagree:\n{}",
        errors.join("\n")
    );
    std::fs::remove_dir_all(out_dir).unwrap();
}
