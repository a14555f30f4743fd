//! Jepsen interop: a history as EDN, one op map per line, the way Jepsen's tools read
//! histories (`jepsen.history`): op fields and the values of `:type` and `:f` as keywords,
//! micro-op tags (`:send`, `:poll`) as keywords, everything else as EDN strings, numbers,
//! vectors and maps. The history is validated first (`history::parse_jsonl`), so only a
//! history the checker accepts is exported.

use serde_json::Value;
use std::fmt::Write as _;

/// The EDN text of a history.jsonl, or why it cannot be exported (line and field).
pub fn history_to_edn(history_jsonl: &str) -> Result<String, String> {
    crate::history::parse_jsonl(history_jsonl).map_err(|error| error.to_string())?;
    let mut out = String::new();
    for (number, line) in history_jsonl.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let op: Value =
            serde_json::from_str(line).map_err(|e| format!("line {}: {e}", number + 1))?;
        let Value::Object(fields) = op else {
            return Err(format!("line {}: not an op object", number + 1));
        };
        out.push('{');
        for (i, (key, value)) in fields.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            let _ = write!(out, ":{key} ");
            match (key.as_str(), value) {
                ("type" | "f", Value::String(word)) => {
                    let _ = write!(out, ":{word}");
                }
                ("value", value) => micro_ops(value, &mut out),
                (_, value) => edn(value, &mut out),
            }
        }
        out.push_str("}\n");
    }
    Ok(out)
}

/// An op's value: `[["send", key, v], ...]` with the tags as keywords.
fn micro_ops(value: &Value, out: &mut String) {
    let Value::Array(items) = value else { return edn(value, out) };
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        match item {
            Value::Array(parts) if matches!(parts.first(), Some(Value::String(t)) if t == "send" || t == "poll") =>
            {
                out.push('[');
                for (j, part) in parts.iter().enumerate() {
                    if j > 0 {
                        out.push(' ');
                    }
                    match (j, part) {
                        (0, Value::String(tag)) => {
                            let _ = write!(out, ":{tag}");
                        }
                        _ => edn(part, out),
                    }
                }
                out.push(']');
            }
            other => edn(other, out),
        }
    }
    out.push(']');
}

fn edn(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("nil"),
        Value::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => {
            out.push('"');
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    c => out.push(c),
                }
            }
            out.push('"');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                edn(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                edn(&Value::String(key.clone()), out);
                out.push(' ');
                edn(item, out);
            }
            out.push('}');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_become_edn_maps_with_keyword_types_and_tags() {
        let history = concat!(
            "{\"index\":0,\"time\":5,\"process\":0,\"type\":\"invoke\",\"f\":\"send\",\"value\":[[\"send\",\"events-0\",7]]}\n",
            "{\"index\":1,\"time\":9,\"process\":0,\"type\":\"ok\",\"f\":\"send\",\"value\":[[\"send\",\"events-0\",[3,7]]]}\n",
            "{\"index\":2,\"time\":10,\"process\":1,\"type\":\"invoke\",\"f\":\"poll\",\"value\":[[\"poll\"]]}\n",
            "{\"index\":3,\"time\":12,\"process\":1,\"type\":\"ok\",\"f\":\"poll\",\"value\":[[\"poll\",{\"events-0\":[[3,7]]}]]}\n",
        );
        let edn = history_to_edn(history).expect("exports");
        let lines: Vec<&str> = edn.lines().collect();
        assert_eq!(lines[1], "{:f :send, :index 1, :process 0, :time 9, :type :ok, :value [[:send \"events-0\" [3 7]]]}");
        assert_eq!(lines[3], "{:f :poll, :index 3, :process 1, :time 12, :type :ok, :value [[:poll {\"events-0\" [[3 7]]}]]}");
    }

    #[test]
    fn a_malformed_history_is_refused_with_its_line() {
        let error = history_to_edn("{\"index\":0}\n").expect_err("no time");
        assert!(error.contains("line 1"), "{error}");
    }
}
