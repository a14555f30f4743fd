//! Where each key of a scenario file sits in its text, so that an error about a field can
//! name the line it was written on. Owns the field path type (`topics[0].flush`) and the
//! key tree with spans; it does not judge values (that is `validate`) nor read files.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;
use std::ops::Range;

/// One step of a field path: a table key or an array index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// A field inside a scenario, written as in error messages: `topics[0].replication_factor`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldPath(pub Vec<Segment>);

impl FieldPath {
    pub fn root() -> FieldPath {
        FieldPath(Vec::new())
    }

    /// Parses the dotted form of a variant's `set` keys: `topics.0.flush`, where a segment
    /// made only of digits is an array index.
    pub fn from_dotted(dotted: &str) -> FieldPath {
        let segments = dotted
            .split('.')
            .map(|part| match part.parse::<usize>() {
                Ok(index) if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) => {
                    Segment::Index(index)
                }
                _ => Segment::Key(part.to_string()),
            })
            .collect();
        FieldPath(segments)
    }

    pub fn key(&self, key: &str) -> FieldPath {
        let mut segments = self.0.clone();
        segments.push(Segment::Key(key.to_string()));
        FieldPath(segments)
    }

    pub fn index(&self, index: usize) -> FieldPath {
        let mut segments = self.0.clone();
        segments.push(Segment::Index(index));
        FieldPath(segments)
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    pub fn starts_with(&self, prefix: &FieldPath) -> bool {
        self.0.starts_with(&prefix.0)
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if i == 0 => write!(f, "{key}")?,
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// A TOML document reduced to its keys and their byte spans.
#[derive(Clone, Debug, Default)]
pub struct KeyTree {
    root: Node,
}

#[derive(Clone, Debug, Default)]
enum Node {
    Table(Vec<(SpannedKey, Node)>),
    Array(Vec<Node>),
    #[default]
    Leaf,
}

#[derive(Clone, Debug)]
struct SpannedKey {
    name: String,
    span: Range<usize>,
}

/// What a lookup found: the line of the deepest key on the path, and whether the whole path
/// was present.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Located {
    pub offset: usize,
    /// Every segment of the path was found (not just a prefix).
    pub complete: bool,
    /// The walk stopped at, or passed through, a value that is not a table (an array or a
    /// scalar): in a variant, that value replaced the base's wholesale.
    pub through_value: bool,
}

impl KeyTree {
    /// The key tree of `text`, or an empty tree when the text does not parse (the caller
    /// reports the syntax error; this only serves locations).
    pub fn parse(text: &str) -> KeyTree {
        match toml::from_str::<Node>(text) {
            Ok(root) => KeyTree { root },
            Err(_) => KeyTree::default(),
        }
    }

    /// Where `path` (or its longest present prefix) was written.
    pub fn locate(&self, path: &FieldPath) -> Option<Located> {
        let mut node = &self.root;
        let mut found: Option<usize> = None;
        let mut through_value = false;
        for segment in &path.0 {
            let next = match (segment, node) {
                (Segment::Key(name), Node::Table(entries)) => {
                    entries.iter().find(|(key, _)| &key.name == name).map(|(key, child)| {
                        found = Some(key.span.start);
                        child
                    })
                }
                (Segment::Index(index), Node::Array(items)) => items.get(*index).inspect(|item| {
                    if let Some(offset) = first_key_offset(item) {
                        found = Some(offset);
                    }
                }),
                _ => None,
            };
            match next {
                Some(child) => {
                    if !matches!(child, Node::Table(_)) {
                        through_value = true;
                    }
                    node = child;
                }
                None => {
                    return found.map(|offset| Located { offset, complete: false, through_value })
                }
            }
        }
        let offset = found.or_else(|| first_key_offset(&self.root))?;
        Some(Located { offset, complete: true, through_value })
    }

    /// The sub-tree under `path` (for a variant's section), empty when absent.
    pub fn subtree(&self, path: &FieldPath) -> KeyTree {
        let mut node = &self.root;
        for segment in &path.0 {
            let next = match (segment, node) {
                (Segment::Key(name), Node::Table(entries)) => {
                    entries.iter().find(|(key, _)| &key.name == name).map(|(_, child)| child)
                }
                (Segment::Index(index), Node::Array(items)) => items.get(*index),
                _ => None,
            };
            match next {
                Some(child) => node = child,
                None => return KeyTree::default(),
            }
        }
        KeyTree { root: node.clone() }
    }

    /// The keys directly under the root with their offsets, in file order.
    pub fn top_keys(&self) -> Vec<(String, usize)> {
        match &self.root {
            Node::Table(entries) => {
                entries.iter().map(|(key, _)| (key.name.clone(), key.span.start)).collect()
            }
            _ => Vec::new(),
        }
    }

    /// The field path of an error span reported by toml for this text: the key the span
    /// names, the table a "missing field" error is about, or the key a bad value belongs to.
    pub fn path_at(&self, text: &str, span: &Range<usize>, missing_field: bool) -> FieldPath {
        let mut keys = Vec::new();
        collect_keys(&self.root, &FieldPath::root(), &mut keys);
        if missing_field {
            return table_path_of_span(text, span, &keys);
        }
        keys.iter()
            .filter(|(_, key_span)| key_span.start <= span.start)
            .max_by_key(|(_, key_span)| key_span.start)
            .map(|(path, _)| path.clone())
            .unwrap_or_default()
    }
}

/// 1-based line number of a byte offset.
pub fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

/// A "missing field" span covers a whole table: from its `[header]`, its `{`, or (for the
/// root) the start of the file.
fn table_path_of_span(
    text: &str,
    span: &Range<usize>,
    keys: &[(FieldPath, Range<usize>)],
) -> FieldPath {
    let start = span.start.min(text.len());
    let end = span.end.clamp(start, text.len());
    let body = text.get(start..end).unwrap_or("");
    let trimmed = body.trim_start();
    let first_char = start + (body.len() - trimmed.len());
    let inside: Vec<&(FieldPath, Range<usize>)> = keys
        .iter()
        .filter(|(_, key_span)| key_span.start >= first_char && key_span.start < end)
        .collect();
    let header_end = first_char + trimmed.find('\n').unwrap_or(trimmed.len());
    if trimmed.starts_with("[[") {
        // An item of an array of tables: the parent of its first key (`faults[1]`).
        let first_key = inside
            .iter()
            .filter(|(_, key_span)| key_span.start >= header_end)
            .min_by_key(|(_, key_span)| key_span.start);
        if let Some((path, _)) = first_key {
            return FieldPath(path.0[..path.0.len() - 1].to_vec());
        }
    }
    if trimmed.starts_with('[') {
        // The deepest key written in the header names the table; an array-of-tables header
        // after the first one has no key of its own: use the parent of its first key.
        let header_key = inside
            .iter()
            .filter(|(_, key_span)| key_span.start < header_end)
            .max_by_key(|(path, _)| path.0.len());
        if let Some((path, _)) = header_key {
            return path.clone();
        }
    } else if !trimmed.starts_with('{') {
        return FieldPath::root();
    }
    match inside.iter().min_by_key(|(_, key_span)| key_span.start) {
        Some((path, _)) => {
            let mut segments = path.0.clone();
            segments.pop();
            FieldPath(segments)
        }
        None => FieldPath::root(),
    }
}

fn collect_keys(node: &Node, path: &FieldPath, out: &mut Vec<(FieldPath, Range<usize>)>) {
    match node {
        Node::Table(entries) => {
            for (key, child) in entries {
                let child_path = path.key(&key.name);
                out.push((child_path.clone(), key.span.clone()));
                collect_keys(child, &child_path, out);
            }
        }
        Node::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                collect_keys(item, &path.index(index), out);
            }
        }
        Node::Leaf => {}
    }
}

fn first_key_offset(node: &Node) -> Option<usize> {
    match node {
        Node::Table(entries) => entries.iter().map(|(key, _)| key.span.start).min(),
        Node::Array(items) => items.iter().filter_map(first_key_offset).min(),
        Node::Leaf => None,
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any TOML value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some((key, child)) = map.next_entry::<toml::Spanned<String>, Node>()? {
            let span = key.span();
            entries.push((SpannedKey { name: key.into_inner(), span }, child));
        }
        Ok(Node::Table(entries))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
    fn visit_str<E>(self, _: &str) -> Result<Node, E> {
        Ok(Node::Leaf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "name = \"x\"\n[cluster]\nbrokers = 3\n\n[[topics]]\nname = \"a\"\n\n[[topics]]\nname = \"b\"\npartitions = 2\n";

    #[test]
    fn paths_display_like_the_file() {
        let path = FieldPath::root().key("topics").index(0).key("replication_factor");
        assert_eq!(path.to_string(), "topics[0].replication_factor");
        assert_eq!(
            FieldPath::from_dotted("topics.0.flush"),
            FieldPath::root().key("topics").index(0).key("flush")
        );
    }

    #[test]
    fn locates_keys_and_array_items() {
        let tree = KeyTree::parse(TEXT);
        let at = |path: FieldPath| line_of(TEXT, tree.locate(&path).expect("present").offset);
        assert_eq!(at(FieldPath::root().key("cluster").key("brokers")), 3);
        assert_eq!(at(FieldPath::root().key("topics").index(1).key("partitions")), 10);
        assert_eq!(at(FieldPath::root().key("topics").index(1)), 9);
        let partial =
            tree.locate(&FieldPath::root().key("cluster").key("controllers")).expect("prefix");
        assert!(!partial.complete);
        assert_eq!(line_of(TEXT, partial.offset), 2);
    }

    #[test]
    fn missing_field_spans_name_their_table() {
        let tree = KeyTree::parse(TEXT);
        let second = TEXT.find("[[topics]]\nname = \"b\"").expect("second header");
        let path = tree.path_at(TEXT, &(second..TEXT.len()), true);
        assert_eq!(path.to_string(), "topics[1]");
        let cluster = TEXT.find("[cluster]").expect("cluster");
        assert_eq!(tree.path_at(TEXT, &(cluster..cluster + 22), true).to_string(), "cluster");
        assert!(tree.path_at(TEXT, &(0..5), true).is_root());
    }
}
