//! Swarm testing: a scenario's `[swarm]` table names configuration knobs by the dotted paths
//! a variant's `set` uses, each with choices instead of one value:
//!
//! ```toml
//! [swarm]
//! "topics.0.min_insync_replicas" = { one_of = [1, 2, 3] }
//! "producer.linger_ms" = { range = [0, 50] }          # integers: both ends included
//! "nemesis.interval_s.0" = { range = [0.3, 2.0] }     # floats: rounded to 0.001
//! "nemesis.kinds" = { subset_of = ["crash", "pause", "isolate"], min = 1, max = 3 }
//! ```
//!
//! Each seed draws its own point from its own sub-stream (`seed::substream(seed, "swarm")`),
//! knob by knob in key order, applies it over the base scenario (after the variant, if any)
//! and validates the result. A point that makes an invalid scenario (min.insync above RF,
//! idempotence with acks=1, ...) is redrawn whole from the same stream, up to
//! `DRAW_ATTEMPTS_MAX` times: rejection sampling, deterministic per seed, so the points of
//! a seed are a function of (scenario, variant, seed) and the reproduce line stays one
//! command. A knob the chosen variant sets itself (in `set` or its tables) is pinned: it is
//! not drawn. The drawn scenario is what the run, the nemesis and the judge see, so the
//! promises follow the draw.
//!
//! Owns the `[swarm]` model, its shape checks and the draw; `parse` calls it and turns a
//! `Problem` into a file line; the runner calls `resolve` per seed.

use super::model::Scenario;
use super::source_map::FieldPath;
use super::validate::{validate, Problem};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// The seed sub-stream the points are drawn from.
pub const SWARM_STREAM: &str = "swarm";
/// Whole-point redraws before a seed gives up; with the swarm scenario's constraints about
/// half of the draws are valid, so giving up is a spec that (almost) never validates.
pub const DRAW_ATTEMPTS_MAX: u32 = 64;
/// Seeds a load draws to check that every listed value is reachable.
const PROBE_SEEDS: u64 = 32;
/// Float knobs are rounded to this many decimals, so points print (and read back) exactly.
const FLOAT_DECIMALS: i32 = 3;
/// Top-level keys that are not configuration: the expectation is per scenario, not per draw.
const NOT_KNOBS: &[&str] = &["name", "description", "expect", "swarm", "variants"];

/// The knobs of a scenario, in key (and draw) order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Swarm {
    pub knobs: BTreeMap<String, Choice>,
}

/// The values one knob may take.
#[derive(Clone, Debug, PartialEq)]
pub enum Choice {
    /// One of the listed values, uniformly.
    OneOf(Vec<toml::Value>),
    /// An integer in lo..=hi, uniformly.
    IntRange(i64, i64),
    /// A float in lo..=hi, uniformly, rounded to `FLOAT_DECIMALS`.
    FloatRange(f64, f64),
    /// A sub-list of `items` (kept in their order) of `min..=max` distinct positions.
    SubsetOf { items: Vec<toml::Value>, min: usize, max: usize },
}

/// One seed's drawn values, by knob.
pub type Point = BTreeMap<String, toml::Value>;

/// A seed's scenario after the draw.
#[derive(Clone, Debug)]
pub struct Drawn {
    pub scenario: Scenario,
    pub point: Point,
    /// Which draw (1-based) made a valid scenario.
    pub attempts: u32,
}

impl Swarm {
    /// The knobs' values for `seed`, applied over `base`, redrawn until valid.
    pub fn draw(&self, base: &Scenario, seed: u64) -> Result<Drawn, Problem> {
        let doc = base_table(base)?;
        let mut rng = crate::seed::substream(seed, SWARM_STREAM);
        let mut last = None;
        for attempts in 1..=DRAW_ATTEMPTS_MAX {
            let point: Point = self
                .knobs
                .iter()
                .map(|(key, choice)| (key.clone(), draw_value(choice, &mut rng)))
                .collect();
            match build(&doc, &point) {
                Ok(scenario) => return Ok(Drawn { scenario, point, attempts }),
                Err(problem) => last = Some(problem),
            }
        }
        let last = last.expect("DRAW_ATTEMPTS_MAX is at least 1");
        Err(Problem {
            message: format!(
                "no valid draw for seed {seed} in {DRAW_ATTEMPTS_MAX} attempts; the last broke \
                 `{}`: {}",
                last.field, last.message
            ),
            field: self.knob_of(&last.field).unwrap_or(last.field),
        })
    }

    /// Err when no seed can draw a valid point, or when a listed `one_of` value appears in
    /// none of `PROBE_SEEDS` valid draws (a value validation always refuses, such as an
    /// assignor misspelt, would otherwise be redrawn away in silence).
    fn check_reachable(&self, base: &Scenario, doc: &toml::Table) -> Result<(), Problem> {
        let mut seen: BTreeMap<&str, Vec<&toml::Value>> = BTreeMap::new();
        for seed in 1..=PROBE_SEEDS {
            let drawn = self.draw(base, seed)?;
            for (key, value) in &drawn.point {
                let (key, choice) = self.knobs.get_key_value(key).expect("drawn from the knobs");
                if let Choice::OneOf(values) = choice {
                    let listed = values.iter().find(|v| *v == value).expect("drawn from the list");
                    seen.entry(key.as_str()).or_default().push(listed);
                }
            }
        }
        for (key, choice) in &self.knobs {
            let Choice::OneOf(values) = choice else { continue };
            let drawn = seen.get(key.as_str()).map(Vec::as_slice).unwrap_or_default();
            let Some((i, missing)) = values.iter().enumerate().find(|(_, v)| !drawn.contains(v))
            else {
                continue;
            };
            let alone = Point::from([(key.clone(), missing.clone())]);
            let why = match build(doc, &alone) {
                Err(problem) => {
                    format!(": alone it breaks `{}`: {}", problem.field, problem.message)
                }
                Ok(_) => String::new(),
            };
            return Err(Problem {
                field: swarm_field(key).key("one_of").index(i),
                message: format!(
                    "{} is in no valid draw of seeds 1..={PROBE_SEEDS}{why}",
                    inline(missing)
                ),
            });
        }
        Ok(())
    }

    /// The `[swarm]` entry whose knob is `field` or holds it, as a field of the file.
    fn knob_of(&self, field: &FieldPath) -> Option<FieldPath> {
        self.knobs
            .keys()
            .filter(|key| {
                let knob = FieldPath::from_dotted(key);
                field.starts_with(&knob) || knob.starts_with(field)
            })
            .max_by_key(|key| key.len())
            .map(|key| swarm_field(key))
    }
}

/// The scenario a seed runs: the draw when the scenario has a swarm, else itself.
pub fn resolve(
    scenario: &Scenario,
    seed: u64,
) -> Result<(Cow<'_, Scenario>, Option<Point>), String> {
    let Some(swarm) = &scenario.swarm else { return Ok((Cow::Borrowed(scenario), None)) };
    match swarm.draw(scenario, seed) {
        Ok(drawn) => Ok((Cow::Owned(drawn.scenario), Some(drawn.point))),
        Err(problem) => Err(format!("swarm: field `{}`: {}", problem.field, problem.message)),
    }
}

/// The scenario `seed` runs, as a scenario file that `load` reads back: a swarm's point
/// written in (no `[swarm]` left to draw), the variant already applied; a header names where
/// it came from and the point. Run with the same seed, it replays the seed's run, which a
/// regression keeps when the swarm's ranges later change and redraw every seed.
pub fn drawn_file(
    scenario: &Scenario,
    origin: &str,
    variant: Option<&str>,
    seed: u64,
) -> Result<String, String> {
    let (drawn, point) = resolve(scenario, seed)?;
    let from = match variant {
        Some(variant) => format!("{origin} --variant {variant}"),
        None => origin.to_string(),
    };
    let mut text = format!(
        "# The scenario seed {seed} of {from} runs, drawn by `kafkasim draw` ({}).\n\
         # Run it with --seed {seed}: the other sub-streams still come from the seed.\n",
        crate::runner::build_id()
    );
    for line in point.iter().flat_map(point_lines) {
        text.push_str(&format!("#   {line}\n"));
    }
    text.push('\n');
    text.push_str(&super::to_toml(&drawn));
    Ok(text)
}

/// The drawn point as `key = value` lines (TOML values), in key order.
pub fn point_lines(point: &Point) -> Vec<String> {
    point.iter().map(|(key, value)| format!("{key} = {}", inline(value))).collect()
}

/// The point as a JSON object (results.json).
pub fn point_json(point: &Point) -> serde_json::Value {
    serde_json::to_value(point).expect("TOML values serialize to JSON")
}

/// Reads a `[swarm]` table against the (validated) base scenario: the shape of every entry,
/// each candidate value fitting its field, and a first draw that validates. Knobs under a
/// path in `pinned` (what the variant sets) are dropped.
pub fn parse(raw: toml::Value, base: &Scenario, pinned: &[FieldPath]) -> Result<Swarm, Problem> {
    let toml::Value::Table(table) = raw else {
        return Err(problem(
            FieldPath::root().key("swarm"),
            "must be a table of \"dotted.path\" = { one_of | range | subset_of = ... }",
        ));
    };
    let doc = base_table(base)?;
    let mut swarm = Swarm::default();
    for (key, entry) in table {
        check_key(&key)?;
        let choice = parse_choice(&key, entry)?;
        let knob = FieldPath::from_dotted(&key);
        if pinned.iter().any(|pin| knob.starts_with(pin) || pin.starts_with(&knob)) {
            continue;
        }
        for candidate in candidates(&choice) {
            fits(&doc, &key, candidate)?;
        }
        swarm.knobs.insert(key, choice);
    }
    swarm.check_reachable(base, &doc)?;
    Ok(swarm)
}

/// The leaf paths a variant sets (its `set` keys and the leaves of its tables): the knobs
/// it pins.
pub fn pinned_paths(variant: &toml::Table) -> Vec<FieldPath> {
    let mut pins = Vec::new();
    for (key, value) in variant {
        match (key.as_str(), value) {
            ("description" | "swarm", _) => {}
            ("set", toml::Value::Table(set)) => {
                pins.extend(set.keys().map(|dotted| FieldPath::from_dotted(dotted)))
            }
            _ => leaves(&FieldPath::root().key(key), value, &mut pins),
        }
    }
    pins
}

/// Per knob and drawn value, how many seeds drew it and how many of those failed their
/// expectation: the sweep's view of where failures cluster. Subsets count each member;
/// ranges count quarters of the range.
#[derive(Clone, Debug, Default)]
pub struct DrawTally {
    counts: BTreeMap<String, BTreeMap<String, (u64, u64)>>,
}

impl DrawTally {
    pub fn add(&mut self, swarm: &Swarm, point: &Point, failed: bool) {
        for (key, value) in point {
            let Some(choice) = swarm.knobs.get(key) else { continue };
            for bucket in buckets(choice, value) {
                let entry = self.counts.entry(key.clone()).or_default().entry(bucket).or_default();
                entry.0 += 1;
                entry.1 += u64::from(failed);
            }
        }
    }

    /// One line per knob: `key: value seeds[/failed], ...`.
    pub fn lines(&self) -> Vec<String> {
        self.counts
            .iter()
            .map(|(key, values)| {
                let shown: Vec<String> = values
                    .iter()
                    .map(|(value, (seeds, failed))| match failed {
                        0 => format!("{value} {seeds}"),
                        failed => format!("{value} {seeds} ({failed} failed)"),
                    })
                    .collect();
                format!("{key}: {}", shown.join(", "))
            })
            .collect()
    }
}

fn problem(field: FieldPath, message: &str) -> Problem {
    Problem { field, message: message.to_string() }
}

fn swarm_field(key: &str) -> FieldPath {
    FieldPath::root().key("swarm").key(key)
}

/// A value on one line, as TOML writes it inline.
fn inline(value: &toml::Value) -> String {
    value.to_string()
}

/// The base scenario as a TOML table, without its swarm.
fn base_table(base: &Scenario) -> Result<toml::Table, Problem> {
    let mut base = base.clone();
    base.swarm = None;
    match toml::Value::try_from(&base) {
        Ok(toml::Value::Table(table)) => Ok(table),
        Ok(_) | Err(_) => {
            Err(problem(FieldPath::root(), "the base scenario does not serialize to TOML"))
        }
    }
}

/// `doc` with `point` set, as a validated scenario.
fn build(doc: &toml::Table, point: &Point) -> Result<Scenario, Problem> {
    let mut doc = doc.clone();
    for (key, value) in point {
        super::parse::set_path(&mut doc, &FieldPath::from_dotted(key), value.clone())
            .map_err(|message| Problem { field: swarm_field(key), message })?;
    }
    let scenario: Scenario = toml::Value::Table(doc)
        .try_into()
        .map_err(|error: toml::de::Error| problem(FieldPath::root(), error.message().trim()))?;
    match validate(&scenario).into_iter().next() {
        Some(problem) => Err(problem),
        None => Ok(scenario),
    }
}

/// Err when `value` set at `key` does not make a well-typed scenario.
fn fits(doc: &toml::Table, key: &str, value: toml::Value) -> Result<(), Problem> {
    let mut doc = doc.clone();
    let shown = inline(&value);
    let field = swarm_field(key);
    super::parse::set_path(&mut doc, &FieldPath::from_dotted(key), value)
        .map_err(|message| Problem { field: field.clone(), message })?;
    toml::Value::Table(doc).try_into::<Scenario>().map(|_| ()).map_err(|error| Problem {
        field,
        message: format!("{shown} does not fit `{key}`: {}", error.message().trim()),
    })
}

fn check_key(key: &str) -> Result<(), Problem> {
    let field = swarm_field(key);
    if key.is_empty() || key.split('.').any(str::is_empty) {
        return Err(problem(field, "is not a dotted path like \"producer.linger_ms\""));
    }
    let first = key.split('.').next().unwrap_or_default();
    if NOT_KNOBS.contains(&first) {
        return Err(Problem {
            field,
            message: format!("`{first}` is not a configuration knob: a swarm cannot draw it"),
        });
    }
    Ok(())
}

fn parse_choice(key: &str, entry: toml::Value) -> Result<Choice, Problem> {
    let field = swarm_field(key);
    let toml::Value::Table(mut entry) = entry else {
        return Err(problem(
            field,
            "must be { one_of = [...] }, { range = [lo, hi] } or { subset_of = [...] }",
        ));
    };
    if let Some(unknown) =
        entry.keys().find(|k| !["one_of", "range", "subset_of", "min", "max"].contains(&k.as_str()))
    {
        return Err(Problem {
            field: field.key(unknown),
            message: "unknown: use one_of, range, or subset_of with min and max".into(),
        });
    }
    let given: Vec<&str> =
        ["one_of", "range", "subset_of"].into_iter().filter(|k| entry.contains_key(*k)).collect();
    if given.len() != 1 {
        return Err(problem(field, "needs exactly one of one_of, range and subset_of"));
    }
    if given[0] != "subset_of" {
        if let Some(bound) = ["min", "max"].into_iter().find(|k| entry.contains_key(*k)) {
            return Err(problem(field.key(bound), "only a subset_of takes min and max"));
        }
    }
    let value = entry.remove(given[0]).expect("present: just checked");
    match given[0] {
        "one_of" => non_empty(value, &field.key("one_of")).map(Choice::OneOf),
        "range" => parse_range(value, &field.key("range")),
        _ => {
            let items = non_empty(value, &field.key("subset_of"))?;
            let bound = |name: &str, default: usize| match entry.get(name) {
                None => Ok(default),
                Some(toml::Value::Integer(n)) if *n >= 0 && *n as usize <= items.len() => {
                    Ok(*n as usize)
                }
                Some(_) => Err(Problem {
                    field: field.key(name),
                    message: format!("must be an integer in 0..={}", items.len()),
                }),
            };
            let (min, max) = (bound("min", 1)?, bound("max", items.len())?);
            if min > max {
                return Err(problem(field.key("min"), "is above max"));
            }
            Ok(Choice::SubsetOf { items, min, max })
        }
    }
}

fn non_empty(value: toml::Value, field: &FieldPath) -> Result<Vec<toml::Value>, Problem> {
    match value {
        toml::Value::Array(items) if !items.is_empty() => Ok(items),
        _ => Err(problem(field.clone(), "must be a non-empty array of values")),
    }
}

fn parse_range(value: toml::Value, field: &FieldPath) -> Result<Choice, Problem> {
    let shape = || problem(field.clone(), "must be [lo, hi]: two integers or two numbers");
    let toml::Value::Array(ends) = value else { return Err(shape()) };
    let [lo, hi] = ends.as_slice() else { return Err(shape()) };
    let choice = match (lo, hi) {
        (toml::Value::Integer(lo), toml::Value::Integer(hi)) => Choice::IntRange(*lo, *hi),
        _ => match (number(lo), number(hi)) {
            (Some(lo), Some(hi)) if lo.is_finite() && hi.is_finite() => Choice::FloatRange(lo, hi),
            _ => return Err(shape()),
        },
    };
    let ordered = match choice {
        Choice::IntRange(lo, hi) => lo <= hi,
        Choice::FloatRange(lo, hi) => lo <= hi,
        _ => true,
    };
    if !ordered {
        return Err(problem(field.clone(), "lo is above hi"));
    }
    Ok(choice)
}

fn number(value: &toml::Value) -> Option<f64> {
    match value {
        toml::Value::Integer(n) => Some(*n as f64),
        toml::Value::Float(x) => Some(*x),
        _ => None,
    }
}

/// The values whose type a load checks: every listed value, both ends of a range, the
/// whole of a subset (smaller subsets have the same type).
fn candidates(choice: &Choice) -> Vec<toml::Value> {
    match choice {
        Choice::OneOf(values) => values.clone(),
        Choice::IntRange(lo, hi) => vec![toml::Value::Integer(*lo), toml::Value::Integer(*hi)],
        Choice::FloatRange(lo, hi) => vec![toml::Value::Float(*lo), toml::Value::Float(*hi)],
        Choice::SubsetOf { items, .. } => vec![toml::Value::Array(items.clone())],
    }
}

fn draw_value(choice: &Choice, rng: &mut ChaCha8Rng) -> toml::Value {
    match choice {
        Choice::OneOf(values) => values[rng.gen_range(0..values.len())].clone(),
        Choice::IntRange(lo, hi) => toml::Value::Integer(rng.gen_range(*lo..=*hi)),
        Choice::FloatRange(lo, hi) => {
            let scale = 10f64.powi(FLOAT_DECIMALS);
            let x = (rng.gen_range(*lo..=*hi) * scale).round() / scale;
            toml::Value::Float(x.clamp(*lo, *hi))
        }
        Choice::SubsetOf { items, min, max } => {
            let size = rng.gen_range(*min..=*max);
            let mut positions: Vec<usize> = (0..items.len()).collect();
            for i in 0..size {
                let j = rng.gen_range(i..positions.len());
                positions.swap(i, j);
            }
            let mut chosen = positions[..size].to_vec();
            chosen.sort_unstable();
            toml::Value::Array(chosen.into_iter().map(|i| items[i].clone()).collect())
        }
    }
}

/// The tally buckets of a drawn value.
fn buckets(choice: &Choice, value: &toml::Value) -> Vec<String> {
    const QUARTERS: f64 = 4.0;
    let quarter = |lo: f64, hi: f64, x: f64| {
        let width = (hi - lo) / QUARTERS;
        if width <= 0.0 {
            return format!("{lo}");
        }
        let q = (((x - lo) / width).floor()).clamp(0.0, QUARTERS - 1.0);
        let (from, to) = (lo + q * width, lo + (q + 1.0) * width);
        format!("[{from:.3}, {to:.3}{}", if q == QUARTERS - 1.0 { "]" } else { ")" })
    };
    match (choice, value) {
        (Choice::SubsetOf { .. }, toml::Value::Array(members)) => {
            let mut names: Vec<String> = members.iter().map(inline).collect();
            names.dedup();
            names
        }
        (Choice::IntRange(lo, hi), _) if hi - lo < 8 => vec![inline(value)],
        (Choice::IntRange(lo, hi), _) => {
            vec![quarter(*lo as f64, *hi as f64, number(value).unwrap_or(*lo as f64))]
        }
        (Choice::FloatRange(lo, hi), _) => vec![quarter(*lo, *hi, number(value).unwrap_or(*lo))],
        _ => vec![inline(value)],
    }
}

fn leaves(path: &FieldPath, value: &toml::Value, out: &mut Vec<FieldPath>) {
    match value {
        toml::Value::Table(table) => {
            for (key, child) in table {
                leaves(&path.key(key), child, out);
            }
        }
        _ => out.push(path.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{parse as parse_scenario, with_variant, AcksSetting, ScenarioError};

    const QUICKSTART: &str = include_str!("../../../scenarios/quickstart.toml");
    const SWARM: &str = include_str!("../../../scenarios/swarm.toml");

    /// The quickstart with `swarm` appended as its `[swarm]` table (and a variant).
    fn fixture(swarm: &str) -> String {
        format!(
            "{QUICKSTART}\n[variants.pinned]\ndescription = \"Pins the linger.\"\n\
             [variants.pinned.set]\n\"producer.linger_ms\" = 7\n\n[swarm]\n{swarm}"
        )
    }

    fn refused(swarm: &str) -> ScenarioError {
        parse_scenario(&fixture(swarm), "f.toml").expect_err("the swarm must be refused")
    }

    /// The 1-based line of the first line of the fixture that contains `needle`.
    fn line_of(swarm: &str, needle: &str) -> usize {
        let text = fixture(swarm);
        text.lines().position(|l| l.contains(needle)).expect("needle in the fixture") + 1
    }

    const GOOD: &str = r#""producer.linger_ms" = { range = [0, 50] }
"topics.0.partitions" = { one_of = [1, 2, 4] }
"workload.send_ops_per_sec" = { range = [10, 60] }
"disk.crash_drop_pct" = { one_of = [40] }
"#;

    #[test]
    fn swarm_tables_parse_into_knobs() {
        let scenario = parse_scenario(&fixture(GOOD), "f.toml").expect("valid swarm");
        let swarm = scenario.swarm.as_ref().expect("a swarm");
        assert_eq!(swarm.knobs.len(), 4);
        assert_eq!(swarm.knobs["producer.linger_ms"], Choice::IntRange(0, 50));
        let kinds = "\"nemesis.kinds\" = { subset_of = [\"crash\", \"pause\"], min = 1 }";
        let text = SWARM.replace("[swarm]\n", &format!("[swarm]\n{kinds}\n")).replace(
            "\"nemesis.kinds\" = { subset_of = [\"crash\", \"pause\", \"isolate\", ",
            "\"nemesis.kinds.unused\" = { subset_of = [\"crash\", \"pause\", \"isolate\", ",
        );
        let error = parse_scenario(&text, "swarm.toml").expect_err("kinds.unused is no field");
        assert_eq!(error.field.as_deref(), Some("swarm.nemesis.kinds.unused"), "{error}");
        let shipped = parse_scenario(SWARM, "swarm.toml").expect("the shipped swarm is valid");
        let float = &shipped.swarm.as_ref().expect("a swarm").knobs["nemesis.interval_s.0"];
        assert_eq!(*float, Choice::FloatRange(0.5, 2.0));
    }

    #[test]
    fn malformed_entries_name_file_line_and_field() {
        let cases = [
            ("\"producer.linger_ms\" = 5", "swarm.producer.linger_ms", "must be"),
            (
                "\"producer.linger_ms\" = { range = [0, 5], one_of = [1] }",
                "swarm.producer.linger_ms",
                "exactly one",
            ),
            (
                "\"producer.linger_ms\" = { range = [9, 5] }",
                "swarm.producer.linger_ms.range",
                "lo is above hi",
            ),
            (
                "\"producer.linger_ms\" = { range = [1, 2, 3] }",
                "swarm.producer.linger_ms.range",
                "[lo, hi]",
            ),
            (
                "\"producer.linger_ms\" = { one_of = [] }",
                "swarm.producer.linger_ms.one_of",
                "non-empty",
            ),
            (
                "\"producer.linger_ms\" = { one_of = [1], min = 1 }",
                "swarm.producer.linger_ms.min",
                "only a subset_of",
            ),
            (
                "\"producer.linger_ms\" = { choose = [1] }",
                "swarm.producer.linger_ms.choose",
                "unknown",
            ),
            (
                "\"cluster.brokers\" = { one_of = [1, \"two\"] }",
                "swarm.cluster.brokers",
                "\"two\" does not fit",
            ),
            (
                "\"expect.verdict\" = { one_of = [\"pass\"] }",
                "swarm.expect.verdict",
                "not a configuration knob",
            ),
            ("\"producer..acks\" = { one_of = [\"1\"] }", "swarm.producer..acks", "dotted path"),
            ("\"topics.3.partitions\" = { one_of = [1] }", "swarm.topics.3.partitions", "no [3]"),
            (
                "\"producer.acks\" = { subset_of = [\"1\"], min = 2 }",
                "swarm.producer.acks.min",
                "0..=1",
            ),
        ];
        for (entry, field, message) in cases {
            let error = refused(entry);
            assert_eq!(error.field.as_deref(), Some(field), "{entry}: {error}");
            assert_eq!(error.line, Some(line_of(entry, entry)), "{entry}: {error}");
            assert!(error.message.contains(message), "{entry}: {error}");
            assert!(error.to_string().starts_with("f.toml:"), "{error}");
        }
    }

    #[test]
    fn values_no_draw_can_use_are_refused() {
        // Every draw breaks min.insync <= RF (1): nothing to run.
        let entry = "\"topics.0.min_insync_replicas\" = { one_of = [2, 3] }";
        let error = refused(entry);
        assert_eq!(error.field.as_deref(), Some("swarm.topics.0.min_insync_replicas"), "{error}");
        assert_eq!(error.line, Some(line_of(entry, entry)), "{error}");
        assert!(error.message.contains("no valid draw"), "{error}");
        // "all" with idempotence off is valid; the assignor is misspelt, never valid.
        let entry = "\"producer.partitioner\" = { one_of = [\"default\", \"sticky\"] }";
        let error = refused(entry);
        assert_eq!(error.field.as_deref(), Some("swarm.producer.partitioner.one_of[1]"), "{error}");
        assert!(error.message.contains("is not a partitioner"), "{error}");
    }

    #[test]
    fn a_seed_draws_the_same_point_every_time_and_seeds_differ() {
        let scenario = parse_scenario(SWARM, "swarm.toml").expect("valid");
        let swarm = scenario.swarm.as_ref().expect("a swarm");
        let first = swarm.draw(&scenario, 7).expect("a draw");
        let again = swarm.draw(&scenario, 7).expect("a draw");
        assert_eq!(first.point, again.point);
        assert_eq!(first.scenario, again.scenario);
        assert!(first.scenario.swarm.is_none(), "a drawn scenario draws no more");
        let points: Vec<Point> =
            (1..=8).map(|seed| swarm.draw(&scenario, seed).expect("a draw").point).collect();
        for (i, point) in points.iter().enumerate() {
            assert!(points[i + 1..].iter().all(|other| other != point), "seed {} repeats", i + 1);
        }
        // The draw is what runs: every drawn knob reads back from the drawn scenario.
        let drawn = toml::Value::try_from(&first.scenario).expect("serializes");
        for (key, value) in &first.point {
            let mut here = &drawn;
            for part in key.split('.') {
                here = match part.parse::<usize>() {
                    Ok(i) => &here[i],
                    Err(_) => &here[part],
                };
            }
            assert_eq!(here, value, "{key}");
        }
        let topic = &first.scenario.topics[0];
        assert!(topic.min_insync_replicas <= topic.replication_factor, "redrawn until valid");
        if first.scenario.producer.idempotence {
            assert_eq!(first.scenario.producer.acks, AcksSetting::All);
        }
    }

    #[test]
    fn a_variant_pins_the_knobs_it_sets() {
        let base = parse_scenario(&fixture(GOOD), "f.toml").expect("valid");
        assert!(base.swarm.as_ref().expect("a swarm").knobs.contains_key("producer.linger_ms"));
        let pinned = with_variant(&fixture(GOOD), "f.toml", "pinned").expect("valid");
        let swarm = pinned.swarm.as_ref().expect("a swarm");
        assert!(!swarm.knobs.contains_key("producer.linger_ms"));
        for seed in 1..=5 {
            let (drawn, _) = resolve(&pinned, seed).expect("a draw");
            assert_eq!(drawn.producer.linger_ms, 7, "seed {seed}");
        }
        let quickstart = parse_scenario(QUICKSTART, "q").expect("valid");
        let (plain, point) = resolve(&quickstart, 1).expect("no swarm, no draw");
        assert!(point.is_none());
        assert_eq!(plain.name, "quickstart");
    }

    #[test]
    fn draws_are_uniform_enough_and_subsets_respect_their_bounds() {
        let choice = Choice::SubsetOf {
            items: ["a", "b", "c", "d"].map(|s| toml::Value::String(s.into())).to_vec(),
            min: 1,
            max: 3,
        };
        let mut rng = crate::seed::substream(1, SWARM_STREAM);
        let mut members: BTreeMap<String, u32> = BTreeMap::new();
        for _ in 0..400 {
            let toml::Value::Array(drawn) = draw_value(&choice, &mut rng) else {
                panic!("a subset is an array")
            };
            assert!((1..=3).contains(&drawn.len()), "{drawn:?}");
            let mut sorted = drawn.clone();
            sorted.dedup();
            assert_eq!(sorted, drawn, "distinct members in list order");
            for member in drawn {
                *members.entry(member.to_string()).or_default() += 1;
            }
        }
        assert_eq!(members.len(), 4);
        assert!(members.values().all(|n| *n > 100), "{members:?}");
        let float = draw_value(&Choice::FloatRange(0.5, 2.0), &mut rng);
        let x = float.as_float().expect("a float");
        assert!((0.5..=2.0).contains(&x) && (x * 1000.0).fract() == 0.0, "{x}");
    }

    #[test]
    fn the_tally_counts_values_members_and_quarters() {
        let scenario = parse_scenario(SWARM, "swarm.toml").expect("valid");
        let swarm = scenario.swarm.as_ref().expect("a swarm");
        let mut tally = DrawTally::default();
        for seed in 1..=20 {
            let point = swarm.draw(&scenario, seed).expect("a draw").point;
            tally.add(swarm, &point, seed == 3);
        }
        let lines = tally.lines();
        assert_eq!(lines.len(), swarm.knobs.len());
        let acks = lines.iter().find(|l| l.starts_with("producer.acks:")).expect("acks line");
        assert!(acks.contains("\"all\""), "{acks}");
        assert!(lines.iter().any(|l| l.contains("(1 failed)")), "{lines:?}");
        let linger = lines.iter().find(|l| l.starts_with("producer.linger_ms:")).expect("linger");
        assert!(linger.contains("[0.000, 12.500)"), "{linger}");
    }
}
