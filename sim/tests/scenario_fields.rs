//! docs/SCENARIO-FIELDS.md against the code: every field of every shipped scenario and
//! variant (as the parser fills it in) has a row, and each default the page gives is the
//! value the parser fills into a minimal scenario.

use sim::scenario::{load_variant, parse, to_toml, variants};
use std::collections::BTreeMap;
use std::path::Path;

/// Dotted path -> the value as TOML writes it inline; arrays of tables as `name[]`.
fn fields(scenario_toml: &str) -> BTreeMap<String, String> {
    let table: toml::Table = toml::from_str(scenario_toml).expect("to_toml reads back");
    let mut out = BTreeMap::new();
    walk(&toml::Value::Table(table), "", &mut out);
    out
}

fn walk(value: &toml::Value, path: &str, out: &mut BTreeMap<String, String>) {
    let join = |key: &str| if path.is_empty() { key.to_string() } else { format!("{path}.{key}") };
    match value {
        toml::Value::Table(table) => {
            for (key, child) in table {
                walk(child, &join(key), out);
            }
        }
        toml::Value::Array(items) if items.iter().any(toml::Value::is_table) => {
            for item in items {
                walk(item, &format!("{path}[]"), out);
            }
        }
        other => {
            out.insert(path.to_string(), inline(other));
        }
    }
}

fn inline(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => format!("\"{s}\""),
        toml::Value::Array(items) => {
            let items: Vec<String> = items.iter().map(inline).collect();
            format!("[{}]", items.join(", "))
        }
        other => other.to_string(),
    }
}

fn doc() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/SCENARIO-FIELDS.md");
    std::fs::read_to_string(path).expect("docs/SCENARIO-FIELDS.md")
}

#[test]
fn every_field_of_every_shipped_scenario_has_a_row() {
    let doc = doc();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
    let mut missing = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).expect("scenarios/") {
        let path = entry.expect("an entry").path();
        if path.extension().is_none_or(|ext| ext != "toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable");
        let mut runs = vec![None];
        runs.extend(variants(&text).into_iter().map(|(name, _)| Some(name)));
        for variant in runs {
            let scenario = load_variant(&path, variant.as_deref()).expect("loads");
            for field in fields(&to_toml(&scenario)).into_keys() {
                if !doc.contains(&format!("| `{field}` |")) {
                    missing.insert(field, path.display().to_string());
                }
            }
        }
    }
    assert!(missing.is_empty(), "fields without a row in docs/SCENARIO-FIELDS.md: {missing:?}");
}

#[test]
fn the_defaults_on_the_page_are_the_parsers() {
    let minimal = r#"name = "minimal"
description = "The defaults."
[cluster]
brokers = 1
[[topics]]
name = "events"
partitions = 1
[producer]
count = 1
acks = "all"
[consumer]
count = 1
[expect]
verdict = "pass"
"#;
    let scenario = parse(minimal, "minimal.toml").expect("the minimal scenario parses");
    let doc = doc();
    let required = ["name", "description", "cluster.brokers", "topics[].name"];
    let required = required.iter().chain(&["topics[].partitions", "producer.count"]);
    let required: Vec<&str> =
        required.chain(&["producer.acks", "consumer.count", "expect.verdict"]).copied().collect();
    for (field, value) in fields(&to_toml(&scenario)) {
        if required.contains(&field.as_str()) {
            assert!(doc.contains(&format!("| `{field}` | (required) |")), "{field}: (required)");
            continue;
        }
        let row = format!("| `{field}` | `{value}` |");
        assert!(doc.contains(&row), "docs/SCENARIO-FIELDS.md: expected the row to start {row}");
    }
}
