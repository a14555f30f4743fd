//! Reading a scenario file: TOML syntax, the typed model (unknown fields rejected), named
//! variants merged over the base, and semantic validation, with every error naming the
//! file, line and field. Owns `ScenarioError`; the rules themselves live in `validate`, key
//! locations in `source_map`.
//!
//! Variants: `[variants.<name>]` holds a `description`, tables that deep-merge over the base
//! (tables merge key by key; arrays and scalars replace), and an optional `set` table of
//! dotted paths (`"topics.0.flush" = "every-batch"`) applied after the merge.
//! `[swarm]` (knobs drawn per seed) is read by `swarm` against the validated scenario.

use super::model::Scenario;
use super::source_map::{line_of, FieldPath, KeyTree, Segment};
use super::validate::validate;
use std::fmt;
use std::path::Path;

/// A scenario file that cannot be used, with where and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    /// The file (or `<embedded ...>`) the text came from.
    pub origin: String,
    /// 1-based line of the offending key or syntax, when known.
    pub line: Option<usize>,
    /// The variant being applied, when the error is about one.
    pub variant: Option<String>,
    /// The field, as `topics[0].replication_factor`, when the error is about one.
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(variant) = &self.variant {
            write!(f, ": variant `{variant}`")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": field `{field}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ScenarioError {}

/// Reads and validates the base scenario of a file.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    load_variant(path, None)
}

/// Reads a scenario file and applies `variant` (when given) before validating.
pub fn load_variant(path: &Path, variant: Option<&str>) -> Result<Scenario, ScenarioError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|error| ScenarioError {
        origin: origin.clone(),
        line: None,
        variant: None,
        field: None,
        message: format!("cannot read the file: {error}"),
    })?;
    parse_variant(&text, &origin, variant)
}

/// Parses and validates the base scenario of `text`; `origin` names it in errors.
pub fn parse(text: &str, origin: &str) -> Result<Scenario, ScenarioError> {
    parse_variant(text, origin, None)
}

/// Parses `text`, applies the variant `name`, and validates the result.
pub fn with_variant(text: &str, origin: &str, name: &str) -> Result<Scenario, ScenarioError> {
    parse_variant(text, origin, Some(name))
}

/// Parses `text` with an optional variant applied.
pub fn parse_variant(
    text: &str,
    origin: &str,
    variant: Option<&str>,
) -> Result<Scenario, ScenarioError> {
    let source = Source { text, origin, tree: KeyTree::parse(text), variant };
    let mut doc: toml::Table = toml::from_str(text).map_err(|error| source.syntax_error(&error))?;
    let variants = doc.remove("variants");
    let variants = check_variants(&source, variants)?;
    let had_variants = !variants.is_empty();
    let mut pins = Vec::new();
    if let Some(name) = variant {
        let Some(over) = variants.into_iter().find(|(n, _)| n == name).map(|(_, t)| t) else {
            let names: Vec<String> = self::variants(text).into_iter().map(|(n, _)| n).collect();
            let message = match names.is_empty() {
                true => "no such variant: the file has no variants".to_string(),
                false => format!("no such variant: the file has {}", names.join(", ")),
            };
            return Err(source.error(None, None, message));
        };
        pins = super::swarm::pinned_paths(&over);
        apply_variant(&source, name, &mut doc, over)?;
    }
    check_ranges(&source, &doc)?;
    let swarm = doc.remove("swarm");
    let mut scenario = match (variant, had_variants || swarm.is_some()) {
        (None, false) => deserialize_located(&source, text, true)?,
        _ => {
            let rewritten = toml::to_string(&doc).map_err(|error| {
                source.error(None, None, format!("cannot rewrite the merged scenario: {error}"))
            })?;
            deserialize_located(&source, &rewritten, false)?
        }
    };
    if let Some(problem) = validate(&scenario).into_iter().next() {
        return Err(source.at(&problem.field, problem.message));
    }
    if let Some(raw) = swarm {
        let swarm = super::swarm::parse(raw, &scenario, &pins)
            .map_err(|problem| source.at(&problem.field, problem.message))?;
        scenario.swarm = Some(swarm);
    }
    Ok(scenario)
}

/// The variants a scenario file declares: (name, description), in name order. Empty when
/// the file has none or does not parse.
pub fn variants(text: &str) -> Vec<(String, String)> {
    let Ok(mut doc) = toml::from_str::<toml::Table>(text) else { return Vec::new() };
    let Some(toml::Value::Table(variants)) = doc.remove("variants") else { return Vec::new() };
    variants
        .into_iter()
        .map(|(name, body)| {
            let description =
                body.get("description").and_then(|d| d.as_str()).unwrap_or("").to_string();
            (name, description)
        })
        .collect()
}

/// The text being parsed and what an error needs to name its line.
struct Source<'a> {
    text: &'a str,
    origin: &'a str,
    tree: KeyTree,
    variant: Option<&'a str>,
}

impl Source<'_> {
    fn error(
        &self,
        line: Option<usize>,
        field: Option<&FieldPath>,
        message: String,
    ) -> ScenarioError {
        ScenarioError {
            origin: self.origin.to_string(),
            line,
            variant: self.variant.map(str::to_string),
            field: field.filter(|f| !f.is_root()).map(FieldPath::to_string),
            message,
        }
    }

    fn syntax_error(&self, error: &toml::de::Error) -> ScenarioError {
        let line = error.span().map(|span| line_of(self.text, span.start));
        let mut e = self.error(line, None, error.message().trim().to_string());
        e.variant = None;
        e
    }

    /// An error about `field`, on the line where the field (or its closest written parent)
    /// was set: the variant's `set` entry, the variant's own tables, or the base.
    fn at(&self, field: &FieldPath, message: String) -> ScenarioError {
        let offset = self.offset_of(field);
        self.error(offset.map(|o| line_of(self.text, o)), Some(field), message)
    }

    fn offset_of(&self, field: &FieldPath) -> Option<usize> {
        if let Some(name) = self.variant {
            let section = FieldPath::root().key("variants").key(name);
            let set = self.tree.subtree(&section.key("set"));
            let set_hit = set
                .top_keys()
                .into_iter()
                .filter(|(dotted, _)| field.starts_with(&FieldPath::from_dotted(dotted)))
                .max_by_key(|(dotted, _)| dotted.len());
            if let Some((_, offset)) = set_hit {
                return Some(offset);
            }
            if let Some(found) = self.tree.subtree(&section).locate(field) {
                if found.complete || found.through_value {
                    return Some(found.offset);
                }
            }
        }
        self.tree.locate(field).map(|found| found.offset)
    }
}

/// Deserializes the typed scenario from `text` (the original, or the merged document
/// rewritten), turning toml's span into a field and a line of the original file.
fn deserialize_located(
    source: &Source<'_>,
    text: &str,
    is_original: bool,
) -> Result<Scenario, ScenarioError> {
    toml::from_str::<Scenario>(text).map_err(|error| {
        let message = error.message().trim().to_string();
        let Some(span) = error.span() else { return source.error(None, None, message) };
        // A tagged table (a fault step) is judged whole: its errors span the table.
        let whole_table = spans_a_table(text, &span);
        let missing = message.starts_with("missing field") || whole_table;
        let path = if is_original {
            source.tree.path_at(text, &span, missing)
        } else {
            KeyTree::parse(text).path_at(text, &span, missing)
        };
        // Within a tagged table, point at the refused field, or at the tag.
        let refused = match whole_table {
            true => refused_field(&message).map(|name| path.key(name)),
            false => None,
        };
        if let Some(field) = refused {
            if let Some(offset) = source.offset_of(&field) {
                return source.error(Some(line_of(source.text, offset)), Some(&field), message);
            }
        }
        let line = match is_original {
            true => Some(line_of(text, first_visible(text, span.start, span.end))),
            false => source.offset_of(&path).map(|offset| line_of(source.text, offset)),
        };
        source.error(line, Some(&path), message)
    })
}

/// Whether an error's span covers a whole table (from its header or brace), not one key.
fn spans_a_table(text: &str, span: &std::ops::Range<usize>) -> bool {
    let start = span.start.min(text.len());
    let end = span.end.clamp(start, text.len());
    let body = text.get(start..end).unwrap_or("").trim_start();
    body.starts_with('[') || body.starts_with('{')
}

/// The field an error inside a tagged table is about: the refused field of serde's
/// "unknown field `x`, expected ..."; the tag `kind` of "unknown variant".
fn refused_field(message: &str) -> Option<&str> {
    if message.starts_with("unknown variant") {
        return Some("kind");
    }
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

/// The variants table, checked for shape: each variant a table with a description.
fn check_variants(
    source: &Source<'_>,
    variants: Option<toml::Value>,
) -> Result<Vec<(String, toml::Table)>, ScenarioError> {
    let base = FieldPath::root().key("variants");
    let plain = |field: &FieldPath, message: String| {
        let mut error = source.at(field, message);
        error.variant = None;
        error
    };
    let variants = match variants {
        None => return Ok(Vec::new()),
        Some(toml::Value::Table(table)) => table,
        Some(_) => return Err(plain(&base, "must be a table of [variants.<name>] tables".into())),
    };
    let mut out = Vec::new();
    for (name, body) in variants {
        let field = base.key(&name);
        if let Some(message) = super::validate::name_problem(&name, super::validate::NAME_CHARS_MAX)
        {
            return Err(plain(&field, format!("a variant name {message}")));
        }
        let toml::Value::Table(body) = body else {
            return Err(plain(&field, "must be a table ([variants.<name>])".into()));
        };
        match body.get("description") {
            Some(toml::Value::String(d)) if !d.trim().is_empty() => {}
            Some(_) => {
                return Err(plain(&field.key("description"), "must be a non-empty string".into()))
            }
            None => return Err(plain(&field, "a variant needs a `description`".into())),
        }
        if body.get("set").is_some_and(|set| !set.is_table()) {
            return Err(plain(
                &field.key("set"),
                "must be a table of \"dotted.path\" = value".into(),
            ));
        }
        out.push((name, body));
    }
    Ok(out)
}

/// Merges the variant's tables over `doc`, then applies its `set` entries.
fn apply_variant(
    source: &Source<'_>,
    name: &str,
    doc: &mut toml::Table,
    mut over: toml::Table,
) -> Result<(), ScenarioError> {
    let section = FieldPath::root().key("variants").key(name);
    over.remove("description");
    let set = over.remove("set");
    if over.contains_key("name") {
        return Err(source.at(&section.key("name"), "a variant cannot rename the scenario".into()));
    }
    let remove = over.remove("remove_faults");
    let add = over.remove("add_faults");
    merge(doc, over);
    edit_faults(source, &section, doc, remove, add)?;
    let Some(toml::Value::Table(set)) = set else { return Ok(()) };
    for (dotted, value) in set {
        let path = FieldPath::from_dotted(&dotted);
        let located = || {
            let offset = source
                .tree
                .subtree(&section.key("set"))
                .top_keys()
                .into_iter()
                .find(|(k, _)| k == &dotted);
            offset.map(|(_, offset)| line_of(source.text, offset))
        };
        if path.0.first() == Some(&Segment::Key("name".to_string())) {
            return Err(source.error(
                located(),
                Some(&path),
                "a variant cannot rename the scenario".into(),
            ));
        }
        if let Err(message) = set_path(doc, &path, value) {
            return Err(source.error(located(), Some(&path), message));
        }
    }
    Ok(())
}

/// A variant's edits of the fault steps: `remove_faults` (indices into the base file's
/// `[[faults]]`) goes first, then `add_faults` (steps, as `[[faults]]` entries) is appended.
fn edit_faults(
    source: &Source<'_>,
    section: &FieldPath,
    doc: &mut toml::Table,
    remove: Option<toml::Value>,
    add: Option<toml::Value>,
) -> Result<(), ScenarioError> {
    let steps = doc.entry("faults").or_insert_with(|| toml::Value::Array(Vec::new()));
    let toml::Value::Array(steps) = steps else {
        return Err(source.at(&FieldPath::root().key("faults"), "must be an array of steps".into()));
    };
    if let Some(remove) = remove {
        let field = section.key("remove_faults");
        let indices: Option<Vec<usize>> = remove.as_array().and_then(|items| {
            items.iter().map(|i| i.as_integer().and_then(|i| usize::try_from(i).ok())).collect()
        });
        let Some(mut indices) = indices else {
            return Err(
                source.at(&field, "must be an array of step indices (0 = the first)".into())
            );
        };
        indices.sort_unstable();
        indices.dedup();
        if let Some(bad) = indices.iter().find(|&&i| i >= steps.len()) {
            let message = format!("step {bad} does not exist: the file has {} steps", steps.len());
            return Err(source.at(&field, message));
        }
        for i in indices.into_iter().rev() {
            steps.remove(i);
        }
    }
    if let Some(add) = add {
        let field = section.key("add_faults");
        let Some(added) = add.as_array().filter(|items| items.iter().all(toml::Value::is_table))
        else {
            return Err(
                source.at(&field, "must be an array of steps ({ at_s = ..., kind = ... })".into())
            );
        };
        steps.extend(added.iter().cloned());
    }
    Ok(())
}

/// Tables merge key by key; arrays and scalars replace.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(base_table)), toml::Value::Table(over_table)) => {
                merge(base_table, over_table)
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// Sets the value at a dotted path; missing tables are created, array indices must exist
/// (or be one past the end, which appends).
pub(super) fn set_path(
    doc: &mut toml::Table,
    path: &FieldPath,
    value: toml::Value,
) -> Result<(), String> {
    if path.is_root() {
        return Err("empty path".into());
    }
    let mut root = toml::Value::Table(std::mem::take(doc));
    let result = set_in_value(&mut root, &path.0, value, FieldPath::root());
    let toml::Value::Table(table) = root else {
        unreachable!("a non-empty path never replaces the root")
    };
    *doc = table;
    result
}

/// Walks `rest` from `here`, creating missing tables, and sets the value at its end.
fn set_in_value(
    here: &mut toml::Value,
    rest: &[Segment],
    value: toml::Value,
    walked: FieldPath,
) -> Result<(), String> {
    let Some((first, tail)) = rest.split_first() else {
        *here = value;
        return Ok(());
    };
    match (here, first) {
        (toml::Value::Array(items), Segment::Index(i)) => {
            let len = items.len();
            if tail.is_empty() && *i == len {
                items.push(value);
                return Ok(());
            }
            let item = items
                .get_mut(*i)
                .ok_or_else(|| format!("`{walked}` has {len} entries, no [{i}]"))?;
            set_in_value(item, tail, value, walked.index(*i))
        }
        (toml::Value::Table(table), Segment::Key(key)) => {
            if tail.is_empty() {
                table.insert(key.clone(), value);
                return Ok(());
            }
            let child =
                table.entry(key.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            set_in_value(child, tail, value, walked.key(key))
        }
        (toml::Value::Array(_), Segment::Key(key)) => {
            Err(format!("`{walked}` is an array: use an index, not `{key}`"))
        }
        (toml::Value::Table(_), Segment::Index(i)) => {
            Err(format!("`{walked}` is a table, not an array (index {i})"))
        }
        (_, _) => Err(format!("`{walked}` is a value, not a table or array")),
    }
}

/// `[lo, hi]` ranges must have exactly two values (serde would silently drop extras).
fn check_ranges(source: &Source<'_>, doc: &toml::Table) -> Result<(), ScenarioError> {
    const RANGES: &[(&str, &str)] = &[
        ("disk", "write_latency_us"),
        ("disk", "sync_latency_us"),
        ("disk", "read_latency_us"),
        ("network", "latency_us"),
        ("nemesis", "interval_s"),
        ("nemesis", "duration_s"),
    ];
    for (table, key) in RANGES {
        let value = doc.get(*table).and_then(|t| t.get(*key));
        if let Some(toml::Value::Array(items)) = value {
            if items.len() != 2 {
                let field = FieldPath::root().key(table).key(key);
                return Err(source.at(
                    &field,
                    format!("needs exactly two values [lo, hi], not {}", items.len()),
                ));
            }
        }
    }
    Ok(())
}

/// The first non-whitespace byte of a span (toml's table spans start at a blank line).
fn first_visible(text: &str, start: usize, end: usize) -> usize {
    let start = start.min(text.len());
    let end = end.clamp(start, text.len());
    match text.get(start..end) {
        Some(body) => start + (body.len() - body.trim_start().len()),
        None => start,
    }
}

/// A scenario as a TOML file that `load` reads back (generated schedules, shrunk failures).
pub fn to_toml(scenario: &Scenario) -> String {
    toml::to_string(scenario).expect("every scenario field serializes to TOML")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::model::{AcksSetting, ExpectedVerdict, FlushSetting};
    use proptest::prelude::*;

    const QUICKSTART: &str = include_str!("../../../scenarios/quickstart.toml");

    /// A richer fixture; line numbers in the tests below refer to it.
    const BASE: &str = r#"name = "fixture"
description = "A three-broker cluster for the parser's tests."

[cluster]
brokers = 3
controllers = 3

[[topics]]
name = "events"
partitions = 4
replication_factor = 3
min_insync_replicas = 2

[[topics]]
name = "audit"
partitions = 1
replication_factor = 2

[producer]
count = 2
acks = "all"
idempotence = true
max_in_flight = 5
linger_ms = 5
request_timeout_ms = 5000
delivery_timeout_ms = 30000

[consumer]
count = 1

[disk]
write_latency_us = [5, 50]
sync_latency_us = [200, 2000]
read_latency_us = [5, 100]
crash_drop_pct = 40
crash_keep_pct = 30
crash_torn_pct = 30

[network]
latency_us = [100, 2000]

[phases]
setup_s = 1
faulty_s = 20
quiet_s = 15

[[faults]]
at_s = 8.0
kind = "crash"
target = "broker-1"
duration_s = 2.0

[[faults]]
at_s = 12.0
kind = "slow-disk"
target = "any-broker"
duration_s = 4.0
factor = 10

[nemesis]
interval_s = [1.0, 3.0]
duration_s = [0.5, 2.0]
kinds = ["pause", "isolate"]
targets = ["any-broker", "consumer-0"]

[expect]
verdict = "find"
must_find = ["lost-write"]
may_show = ["duplicate"]

[variants.acks1]
description = "acks = 1 instead of all"
producer = { acks = "1", idempotence = false }

[variants.flushed]
description = "Flush every batch, and expect a pass."
[variants.flushed.set]
"topics.0.flush" = "every-batch"
"expect.verdict" = "pass"
"expect.must_find" = []
"#;

    /// The error of BASE with `from` (which must occur exactly once) replaced by `to`.
    fn broken(from: &str, to: &str) -> ScenarioError {
        assert_eq!(BASE.matches(from).count(), 1, "fixture text `{from}` must be unique");
        let text = BASE.replacen(from, to, 1);
        parse(&text, "scenarios/fixture.toml").expect_err("the change must be rejected")
    }

    fn assert_at(error: &ScenarioError, line: usize, field: &str) {
        assert_eq!(error.line, Some(line), "wrong line in: {error}");
        assert_eq!(error.field.as_deref(), Some(field), "wrong field in: {error}");
    }

    #[test]
    fn valid_scenarios_parse() {
        let quickstart =
            parse(QUICKSTART, "scenarios/quickstart.toml").expect("quickstart is valid");
        assert_eq!(quickstart.name, "quickstart");
        assert_eq!(quickstart.topics[0].flush, FlushSetting::EveryBatch);
        assert_eq!(quickstart.faults.len(), 3);
        let fixture = parse(BASE, "fixture").expect("fixture is valid");
        assert_eq!(fixture.topics.len(), 2);
        assert_eq!(fixture.expect.verdict, ExpectedVerdict::Find);
        assert_eq!(fixture.topics[1].min_insync_replicas, 1, "default");
    }

    #[test]
    fn error_display_names_file_line_and_field() {
        let error = broken("replication_factor = 3", "replication_factor = 4");
        assert_eq!(
            error.to_string(),
            "scenarios/fixture.toml:11: field `topics[0].replication_factor`: 4 is larger than the broker count (3)"
        );
    }

    #[test]
    fn cluster_rules() {
        assert_at(&broken("brokers = 3", "brokers = 0"), 5, "cluster.brokers");
        assert_at(&broken("controllers = 3", "controllers = 2"), 6, "cluster.controllers");
        assert_at(&broken("controllers = 3", "controllers = 0"), 6, "cluster.controllers");
    }

    #[test]
    fn topic_rules() {
        assert_at(&broken("name = \"audit\"", "name = \"events\""), 15, "topics[1].name");
        assert_at(&broken("partitions = 4", "partitions = 0"), 10, "topics[0].partitions");
        assert_at(
            &broken("replication_factor = 2", "replication_factor = 0"),
            17,
            "topics[1].replication_factor",
        );
        assert_at(
            &broken("min_insync_replicas = 2", "min_insync_replicas = 4"),
            12,
            "topics[0].min_insync_replicas",
        );
        let no_topics = BASE.replace("[[topics]]", "[[unused]]");
        let error = parse(&no_topics, "f").expect_err("unknown table");
        assert_eq!(error.field.as_deref(), Some("unused"), "{error}");
    }

    #[test]
    fn client_rules() {
        assert_at(&broken("acks = \"all\"", "acks = \"1\""), 22, "producer.idempotence");
        assert_at(&broken("max_in_flight = 5", "max_in_flight = 6"), 23, "producer.max_in_flight");
        assert_at(
            &broken("delivery_timeout_ms = 30000", "delivery_timeout_ms = 5001"),
            26,
            "producer.delivery_timeout_ms",
        );
        assert_at(
            &broken("request_timeout_ms = 5000", "request_timeout_ms = 0"),
            25,
            "producer.request_timeout_ms",
        );
        let none = BASE.replacen("count = 2\n", "count = 0\n", 1).replacen(
            "count = 1\n",
            "count = 0\n",
            1,
        );
        let error = parse(&none.replace("idempotence = true", "idempotence = false"), "f")
            .expect_err("no clients");
        assert_eq!(error.field.as_deref(), Some("producer.count"), "{error}");
        assert_eq!(error.line, Some(20), "{error}");
    }

    #[test]
    fn io_and_phase_rules() {
        assert_at(
            &broken("sync_latency_us = [200, 2000]", "sync_latency_us = [200, 20]"),
            33,
            "disk.sync_latency_us",
        );
        assert_at(
            &broken("latency_us = [100, 2000]", "latency_us = [3000, 2000]"),
            40,
            "network.latency_us",
        );
        assert_at(
            &broken("write_latency_us = [5, 50]", "write_latency_us = [5, 50, 7]"),
            32,
            "disk.write_latency_us",
        );
        assert_at(&broken("crash_keep_pct = 30", "crash_keep_pct = 31"), 35, "disk.crash_drop_pct");
        assert_at(&broken("faulty_s = 20", "faulty_s = 0"), 44, "phases.faulty_s");
        assert_at(&broken("quiet_s = 15", "quiet_s = 0"), 45, "phases.quiet_s");
    }

    #[test]
    fn fault_rules() {
        assert_at(
            &broken("target = \"broker-1\"", "target = \"broker-3\""),
            50,
            "faults[0].target",
        );
        assert_at(
            &broken("target = \"broker-1\"", "target = \"zookeeper\""),
            50,
            "faults[0].target",
        );
        assert_at(&broken("at_s = 8.0", "at_s = 25.0"), 48, "faults[0].at_s");
        assert_at(&broken("duration_s = 2.0\n", ""), 48, "faults[0]");
        assert_at(&broken("duration_s = 2.0\n", "duration_s = 0.0\n"), 51, "faults[0].duration_s");
        assert_at(&broken("factor = 10", "factor = 0"), 58, "faults[1].factor");
        assert_at(&broken("factor = 10", "rate = 0.5"), 58, "faults[1].rate");
        assert_at(
            &broken("duration_s = 2.0\n", "duration_s = 2.0\ncount = 3\n"),
            52,
            "faults[0].count",
        );
    }

    #[test]
    fn nemesis_rules() {
        assert_at(
            &broken("interval_s = [1.0, 3.0]", "interval_s = [3.0, 1.0]"),
            61,
            "nemesis.interval_s",
        );
        assert_at(&broken("kinds = [\"pause\", \"isolate\"]", "kinds = []"), 63, "nemesis.kinds");
        assert_at(&broken("\"consumer-0\"]", "\"consumer-1\"]"), 64, "nemesis.targets[1]");
    }

    #[test]
    fn expectation_rules() {
        assert_at(
            &broken("must_find = [\"lost-write\"]", "must_find = []"),
            68,
            "expect.must_find",
        );
        assert_at(
            &broken("may_show = [\"duplicate\"]", "may_show = [\"dupes\"]"),
            69,
            "expect.may_show[0]",
        );
        assert_at(
            &broken("must_find = [\"lost-write\"]", "must_find = [\"lost\"]"),
            68,
            "expect.must_find[0]",
        );
    }

    #[test]
    fn reaches_names_coverage_marks() {
        let listed = "may_show = [\"duplicate\"]\nreaches = [\"unclean-election\", \"rebalance\"]";
        let text = BASE.replacen("may_show = [\"duplicate\"]", listed, 1);
        let scenario = parse(&text, "fixture").expect("known marks are valid");
        assert_eq!(scenario.expect.reaches, vec!["unclean-election", "rebalance"]);
        let unknown = broken(
            "may_show = [\"duplicate\"]",
            "may_show = [\"duplicate\"]\nreaches = [\"rebalance\", \"no-such-mark\"]",
        );
        assert_at(&unknown, 70, "expect.reaches[1]");
        assert!(unknown.message.contains("`no-such-mark` is not a coverage mark"), "{unknown}");
        assert!(unknown.to_string().contains("scenarios/fixture.toml"), "{unknown}");
    }

    #[test]
    fn type_errors_and_unknown_fields_name_their_line() {
        assert_at(&broken("partitions = 4", "partitons = 4"), 10, "topics[0].partitons");
        assert_at(&broken("brokers = 3", "brokers = \"three\""), 5, "cluster.brokers");
        assert_at(&broken("acks = \"all\"", "acks = \"2\""), 21, "producer.acks");
        let missing = broken("name = \"audit\"\n", "");
        assert_at(&missing, 15, "topics[1]");
        assert!(missing.message.contains("missing field `name`"), "{missing}");
        let missing = broken("[consumer]\ncount = 1\n", "[consumer]\n");
        assert_at(&missing, 28, "consumer");
    }

    #[test]
    fn malformed_toml_has_a_line() {
        let error = broken("partitions = 4", "partitions = = 4");
        assert_eq!(error.line, Some(10), "{error}");
        assert_eq!(error.field, None);
        let error = parse("name = \"x\"\n[cluster\nbrokers = 1\n", "f").expect_err("bad header");
        assert_eq!(error.line, Some(2), "{error}");
    }

    #[test]
    fn variants_override_the_base() {
        let listed = variants(BASE);
        assert_eq!(
            listed.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            vec!["acks1", "flushed"]
        );
        let acks1 = with_variant(BASE, "f", "acks1").expect("acks1 is valid");
        assert_eq!(acks1.producer.acks, AcksSetting::One);
        assert_eq!(acks1.producer.count, 2, "tables merge key by key");
        assert_eq!(acks1.name, "fixture");
        let flushed = with_variant(BASE, "f", "flushed").expect("flushed is valid");
        assert_eq!(flushed.topics[0].flush, FlushSetting::EveryBatch);
        assert_eq!(flushed.topics[1].flush, FlushSetting::Never);
        assert_eq!(flushed.expect.verdict, ExpectedVerdict::Pass);
        let base = parse(BASE, "f").expect("base ignores variants");
        assert_eq!(base.producer.acks, AcksSetting::All);
    }

    #[test]
    fn variant_errors_name_the_variant_and_line() {
        let error = with_variant(BASE, "f", "nope").expect_err("unknown variant");
        assert!(error.to_string().contains("acks1, flushed"), "{error}");
        let text = BASE.replace("\"expect.must_find\" = []", "\"topics.1.replication_factor\" = 7");
        let error = with_variant(&text, "f", "flushed").expect_err("rf 7");
        assert_eq!(error.variant.as_deref(), Some("flushed"));
        assert_at(&error, 80, "topics[1].replication_factor");
        let text = BASE.replace(
            "producer = { acks = \"1\", idempotence = false }",
            "producer = { acks = \"1\" }",
        );
        let error = with_variant(&text, "f", "acks1").expect_err("idempotence with acks 1");
        assert_at(&error, 22, "producer.idempotence");
        let text = BASE.replace("idempotence = false }", "idempotence = false, bogus = 1 }");
        let error = with_variant(&text, "f", "acks1").expect_err("unknown field in variant");
        assert_at(&error, 73, "producer.bogus");
        let text = BASE.replace("description = \"acks = 1 instead of all\"\n", "");
        let error = parse(&text, "f").expect_err("variant without description");
        assert_eq!(error.field.as_deref(), Some("variants.acks1"), "{error}");
        let text = BASE.replace("\"topics.0.flush\"", "\"topics.5.flush\"");
        let error = with_variant(&text, "f", "flushed").expect_err("index out of range");
        assert_eq!(error.line, Some(78), "{error}");
    }

    #[test]
    fn a_variant_removes_and_adds_fault_steps() {
        let variant = "\n[variants.edited]\ndescription = \"Another schedule.\"\n\
            remove_faults = [0]\n\
            add_faults = [{ at_s = 3.0, kind = \"pause\", target = \"broker-0\", duration_s = 1.0 }]\n";
        let text = format!("{BASE}{variant}");
        let edited = with_variant(&text, "f", "edited").expect("the edit is valid");
        let kinds: Vec<String> = edited.faults.iter().map(|s| s.fault.kind().name()).collect();
        assert_eq!(kinds, ["slow-disk", "pause"]);
        assert_eq!(edited.faults[1].at_s, 3.0);
        assert_eq!(parse(&text, "f").expect("base").faults.len(), 2, "the base keeps its steps");
        let error =
            with_variant(&text.replace("[0]", "[2]"), "f", "edited").expect_err("no step 2");
        assert_eq!(error.field.as_deref(), Some("variants.edited.remove_faults"), "{error}");
        assert!(error.to_string().contains("the file has 2 steps"), "{error}");
        let error = with_variant(&text.replace("[0]", "[\"a\"]"), "f", "edited").expect_err("text");
        assert_eq!(error.field.as_deref(), Some("variants.edited.remove_faults"), "{error}");
        let bogus = text.replace("duration_s = 1.0 }", "duration_s = 1.0, factor = 3 }");
        let error = with_variant(&bogus, "f", "edited").expect_err("pause takes no factor");
        assert!(error.to_string().contains("factor"), "{error}");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let text = String::from_utf8_lossy(&bytes);
            let _ = parse(&text, "random");
            let _ = with_variant(&text, "random", "flushed");
            let _ = variants(&text);
        }

        #[test]
        fn mutations_never_panic(
            edits in proptest::collection::vec((0usize..4096, any::<u8>(), 0u8..3), 1..8),
            variant in proptest::option::of(prop_oneof![Just("acks1"), Just("flushed")]),
        ) {
            let mut bytes = BASE.as_bytes().to_vec();
            for (position, byte, op) in edits {
                let at = position % (bytes.len() + 1);
                match op {
                    0 => bytes.insert(at, byte),
                    1 if at < bytes.len() => { bytes.remove(at); }
                    _ if at < bytes.len() => {
                        const ALPHABET: &[u8] = b" =[]{}\".,0123456789abcxyz\n";
                        bytes[at] = ALPHABET[usize::from(byte) % ALPHABET.len()];
                    }
                    _ => {}
                }
            }
            let text = String::from_utf8_lossy(&bytes);
            let _ = parse_variant(&text, "mutated", variant);
            let _ = variants(&text);
        }
    }
}
