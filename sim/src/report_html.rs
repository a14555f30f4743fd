//! `report.html`: one self-contained page per run (inline SVG and CSS, no script, no
//! network) that a person looks at: the verdict and judgement; a timeline with one lane per
//! client process (each op a bar from invocation to completion, green ok, amber info, red
//! fail, its value on hover) above a band of faults per node, with every anomaly drawn at the
//! time it became visible and linked to its ops; leadership per partition over time; latency
//! quantiles per op kind and acked records per second; per-partition offset plots of sends
//! and polls in the style of Jepsen's Kafka plots; the node events around the first anomaly.
//! Pure: renders a finished outcome to a string; `report` writes it.

use crate::runner::{Event, RunOutcome};
use crate::scenario::Scenario;
use std::collections::BTreeMap;
use std::fmt::Write as _;

const WIDTH: f64 = 1100.0;
const LEFT: f64 = 110.0;
const LANE: f64 = 14.0;
/// Ops drawn at most per lane (a page stays light; the rest are counted).
const OPS_PER_LANE_MAX: usize = 4000;
/// Points per offset plot at most.
const POINTS_MAX: usize = 6000;
/// Anomalies listed (and drawn) per kind.
const ANOMALIES_PER_KIND_MAX: usize = 8;

/// One op from invocation to completion.
struct Bar {
    process: u64,
    start: u64,
    end: u64,
    kind: String,
    f: String,
    index: u64,
    value: String,
}

/// An anomaly as the page draws it.
struct Mark {
    name: String,
    judged: String,
    explanation: String,
    ops: Vec<u64>,
    time: Option<u64>,
}

/// The page for one run.
pub fn render(outcome: &RunOutcome, scenario: &Scenario, reproduce: &str) -> String {
    let ops: Vec<serde_json::Value> =
        outcome.history_jsonl.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let bars = bars(&ops);
    let times: BTreeMap<u64, u64> = ops
        .iter()
        .filter_map(|op| Some((op.get("index")?.as_u64()?, op.get("time")?.as_u64()?)))
        .collect();
    let marks = marks(&outcome.check_report, &times);
    let end_ns = (outcome.stats.simulated_secs * 1e9) as u64;
    let end_ns = end_ns.max(outcome.events.last().map_or(1, |e| e.time_ns)).max(1);
    let x = |t: u64| LEFT + (t as f64 / end_ns as f64) * (WIDTH - LEFT - 10.0);
    let mut html = String::new();
    head(&mut html, outcome, scenario, reproduce);
    timeline(&mut html, &bars, &outcome.events, &marks, end_ns, &x);
    anomaly_list(&mut html, &marks);
    leadership(&mut html, &outcome.events, end_ns, &x);
    latency_and_throughput(&mut html, &bars, &ops, end_ns, &x);
    offset_plots(&mut html, &ops, &marks, end_ns, &x);
    events_around(&mut html, &outcome.events, &marks);
    html.push_str("</body></html>\n");
    html
}

fn head(html: &mut String, outcome: &RunOutcome, scenario: &Scenario, reproduce: &str) {
    let verdict = crate::report::verdict_name(outcome.verdict);
    let _ = write!(
        html,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{} seed {} \
         ({verdict})</title><style>{CSS}</style></head><body>\n<h1>{} <small>seed {}{}</small> \
         <span class=\"verdict {verdict}\">{verdict}</span></h1>\n<p>{}</p>\n<p><code>{}</code> \
         &middot; trace hash <code>{}</code> &middot; {}</p>\n<ul class=\"judgement\">",
        esc(&scenario.name),
        outcome.seed,
        esc(&scenario.name),
        outcome.seed,
        outcome.variant.as_deref().map(|v| format!(", variant {}", esc(v))).unwrap_or_default(),
        esc(&scenario.description),
        esc(reproduce),
        crate::report::trace_hash_hex(outcome.trace_hash),
        esc(&outcome.build),
    );
    for line in crate::report::judgement_lines(&outcome.judgement) {
        let class = if line.starts_with("forbidden anomalies: none") {
            "ok"
        } else if line.starts_with("forbidden") || line.starts_with("problem") {
            "bad"
        } else {
            ""
        };
        let _ = write!(html, "<li class=\"{class}\">{}</li>", esc(&line));
    }
    html.push_str("</ul>\n");
}

fn bars(ops: &[serde_json::Value]) -> Vec<Bar> {
    let mut open: BTreeMap<u64, u64> = BTreeMap::new();
    let mut bars = Vec::new();
    for op in ops {
        let (Some(process), Some(time), Some(kind)) = (
            op.get("process").and_then(|p| p.as_u64()),
            op.get("time").and_then(|t| t.as_u64()),
            op.get("type").and_then(|t| t.as_str()),
        ) else {
            continue;
        };
        if kind == "invoke" {
            open.insert(process, time);
            continue;
        }
        let start = open.remove(&process).unwrap_or(time);
        let value = op.get("value").map(|v| v.to_string()).unwrap_or_default();
        bars.push(Bar {
            process,
            start,
            end: time,
            kind: kind.to_string(),
            f: op.get("f").and_then(|f| f.as_str()).unwrap_or("?").to_string(),
            index: op.get("index").and_then(|i| i.as_u64()).unwrap_or(0),
            value: value.chars().take(300).collect(),
        });
    }
    bars
}

fn marks(check_report: &serde_json::Value, times: &BTreeMap<u64, u64>) -> Vec<Mark> {
    let Some(anomalies) = check_report.get("anomalies").and_then(|a| a.as_object()) else {
        return Vec::new();
    };
    let mut marks = Vec::new();
    for (name, entries) in anomalies {
        for entry in entries.as_array().into_iter().flatten() {
            let ops: Vec<u64> = entry
                .get("ops")
                .and_then(|o| o.as_array())
                .map(|o| o.iter().filter_map(|i| i.as_u64()).collect())
                .unwrap_or_default();
            let own = entry.get("time").and_then(|t| t.as_u64());
            let time = own.or_else(|| ops.iter().filter_map(|i| times.get(i)).max().copied());
            marks.push(Mark {
                name: name.clone(),
                judged: entry.get("judged").and_then(|j| j.as_str()).unwrap_or("").to_string(),
                explanation: entry
                    .get("explanation")
                    .and_then(|e| e.as_str())
                    .unwrap_or("")
                    .to_string(),
                ops,
                time,
            });
        }
    }
    marks
}

/// Fault intervals per node: (node, kind, from, to).
fn faults(events: &[Event], end_ns: u64) -> Vec<(String, String, u64, u64)> {
    let mut open: BTreeMap<(String, String), Vec<u64>> = BTreeMap::new();
    let mut done = Vec::new();
    for event in events {
        if let Some(kind) = event.kind.strip_prefix("fault-").filter(|k| *k != "skipped") {
            let from = event.time_ns;
            let duration = event.fields.get("duration_ms").and_then(|d| d.parse::<u64>().ok());
            match duration {
                Some(0) | None => done.push((event.node.clone(), kind.into(), from, from)),
                Some(_) => open.entry((event.node.clone(), kind.into())).or_default().push(from),
            }
        } else if let Some(kind) = event.kind.strip_prefix("heal-") {
            let key = (event.node.clone(), kind.to_string());
            if let Some(from) = open.get_mut(&key).and_then(|starts| starts.pop()) {
                done.push((key.0, key.1, from, event.time_ns));
            }
        } else if event.kind == "healed" {
            for ((node, kind), starts) in std::mem::take(&mut open) {
                done.extend(
                    starts
                        .into_iter()
                        .map(|from| (node.clone(), kind.clone(), from, event.time_ns)),
                );
            }
        }
    }
    for ((node, kind), starts) in open {
        done.extend(starts.into_iter().map(|from| (node.clone(), kind.clone(), from, end_ns)));
    }
    done
}

fn timeline(
    html: &mut String,
    bars: &[Bar],
    events: &[Event],
    marks: &[Mark],
    end_ns: u64,
    x: &dyn Fn(u64) -> f64,
) {
    let mut processes: Vec<u64> = bars.iter().map(|b| b.process).collect();
    processes.sort_unstable();
    processes.dedup();
    let faults = faults(events, end_ns);
    let mut nodes: Vec<&str> = faults.iter().map(|f| f.0.as_str()).collect();
    nodes.sort_unstable();
    nodes.dedup();
    let height = 30.0 + LANE * (processes.len() + nodes.len()) as f64 + 20.0;
    let _ = write!(
        html,
        "<h2>Timeline</h2><p class=\"legend\"><span class=\"ok\">ok</span> <span \
         class=\"info\">info</span> <span class=\"fail\">fail</span> ops per process; faults per \
         node below; red lines: anomalies (hover for the explanation)</p>\n<svg \
         class=\"timeline\" width=\"{WIDTH}\" height=\"{height}\" \
         xmlns=\"http://www.w3.org/2000/svg\">"
    );
    axis(html, end_ns, x, height - 4.0);
    for (lane, process) in processes.iter().enumerate() {
        let y = 20.0 + LANE * lane as f64;
        let _ = write!(
            html,
            "<g class=\"lane\" id=\"process-{process}\"><text x=\"4\" y=\"{}\">process {process}</text>",
            y + 10.0
        );
        for bar in bars.iter().filter(|b| b.process == *process).take(OPS_PER_LANE_MAX) {
            let (x0, x1) = (x(bar.start), x(bar.end));
            let _ = write!(
                html,
                "<rect id=\"op-{}\" class=\"op {}\" x=\"{x0:.1}\" y=\"{}\" width=\"{:.1}\" \
                 height=\"{}\"><title>op {} {} {} {}</title></rect>",
                bar.index,
                esc(&bar.kind),
                y + 1.0,
                (x1 - x0).max(1.0),
                LANE - 3.0,
                bar.index,
                esc(&bar.f),
                esc(&bar.kind),
                esc(&bar.value)
            );
        }
        html.push_str("</g>");
    }
    let base = 20.0 + LANE * processes.len() as f64 + 6.0;
    for (lane, node) in nodes.iter().enumerate() {
        let y = base + LANE * lane as f64;
        let _ = write!(
            html,
            "<g class=\"faults\"><text x=\"4\" y=\"{}\">{}</text>",
            y + 10.0,
            esc(node)
        );
        for (_, kind, from, to) in faults.iter().filter(|f| f.0 == *node) {
            let (x0, x1) = (x(*from), x(*to));
            let _ = write!(
                html,
                "<rect class=\"fault\" x=\"{x0:.1}\" y=\"{}\" width=\"{:.1}\" height=\"{}\"><title>{} \
                 on {} {}..{}</title></rect>",
                y + 1.0,
                (x1 - x0).max(2.0),
                LANE - 3.0,
                esc(kind),
                esc(node),
                crate::report::format_sim_time(*from),
                crate::report::format_sim_time(*to)
            );
        }
        html.push_str("</g>");
    }
    let mut drawn: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, mark) in marks.iter().enumerate() {
        let Some(time) = mark.time else { continue };
        let count = drawn.entry(mark.name.as_str()).or_insert(0);
        *count += 1;
        if *count > ANOMALIES_PER_KIND_MAX {
            continue;
        }
        let _ = write!(
            html,
            "<a href=\"#anomaly-{i}\"><line class=\"anomaly {}\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"14\" \
             y2=\"{}\"><title>{}: {}</title></line></a>",
            esc(&mark.judged),
            height - 16.0,
            esc(&mark.name),
            esc(&mark.explanation),
            x = x(time)
        );
    }
    html.push_str("</svg>\n");
}

fn axis(html: &mut String, end_ns: u64, x: &dyn Fn(u64) -> f64, y: f64) {
    let secs = end_ns / 1_000_000_000;
    let step = [1, 2, 5, 10, 20, 30, 60, 120].into_iter().find(|s| secs / s <= 12).unwrap_or(300);
    let mut s = 0;
    while s <= secs {
        let at = x(s * 1_000_000_000);
        let _ = write!(
            html,
            "<line class=\"tick\" x1=\"{at:.1}\" x2=\"{at:.1}\" y1=\"12\" y2=\"{y}\"/><text class=\"tick\" \
             x=\"{at:.1}\" y=\"10\">{s} s</text>"
        );
        s += step;
    }
}

/// Anomaly kinds in the order a reader wants them: forbidden, then expected, then allowed.
fn kinds_in_order(marks: &[Mark]) -> Vec<&str> {
    let rank = |judged: &str| match judged {
        j if j.starts_with("forbidden") => 0,
        j if j.starts_with("expected") => 1,
        _ => 2,
    };
    let mut kinds: Vec<(usize, &str)> =
        marks.iter().map(|m| (rank(&m.judged), m.name.as_str())).collect();
    kinds.sort_unstable();
    kinds.dedup_by(|a, b| a.1 == b.1);
    kinds.into_iter().map(|(_, name)| name).collect()
}

fn anomaly_list(html: &mut String, marks: &[Mark]) {
    html.push_str("<h2>Anomalies</h2>\n");
    if marks.is_empty() {
        html.push_str("<p>none</p>\n");
        return;
    }
    for kind in kinds_in_order(marks) {
        let of_kind: Vec<(usize, &Mark)> =
            marks.iter().enumerate().filter(|(_, m)| m.name == kind).collect();
        let judged = of_kind.first().map_or("", |(_, m)| m.judged.as_str());
        let _ = write!(
            html,
            "<h3 class=\"{}\">{} <small>{} &middot; {} listed</small></h3><ol class=\"anomalies\">",
            esc(judged),
            esc(kind),
            esc(judged),
            of_kind.len()
        );
        for (i, mark) in of_kind.iter().take(ANOMALIES_PER_KIND_MAX) {
            let at = mark.time.map(crate::report::format_sim_time).unwrap_or_else(|| "-".into());
            let ops: Vec<String> =
                mark.ops.iter().map(|op| format!("<a href=\"#op-{op}\">op {op}</a>")).collect();
            let _ = write!(
                html,
                "<li id=\"anomaly-{i}\">at {at}: {} {}</li>",
                esc(&mark.explanation),
                ops.join(" ")
            );
        }
        html.push_str("</ol>");
        if of_kind.len() > ANOMALIES_PER_KIND_MAX {
            let _ = write!(
                html,
                "<p class=\"more\">and {} more in results.json</p>",
                of_kind.len() - ANOMALIES_PER_KIND_MAX
            );
        }
    }
}

fn leadership(html: &mut String, events: &[Event], end_ns: u64, x: &dyn Fn(u64) -> f64) {
    let mut spans: BTreeMap<&str, Vec<(u64, &str, &str)>> = BTreeMap::new();
    for event in events.iter().filter(|e| e.kind == "became-leader") {
        let (Some(tp), Some(epoch)) = (event.fields.get("tp"), event.fields.get("epoch")) else {
            continue;
        };
        spans.entry(tp.as_str()).or_default().push((event.time_ns, &event.node, epoch));
    }
    if spans.is_empty() {
        return;
    }
    let height = 24.0 + LANE * spans.len() as f64;
    let _ = write!(
        html,
        "<h2>Leadership per partition</h2><svg width=\"{WIDTH}\" height=\"{height}\" \
         xmlns=\"http://www.w3.org/2000/svg\">"
    );
    axis(html, end_ns, x, height);
    for (lane, (tp, changes)) in spans.iter().enumerate() {
        let y = 16.0 + LANE * lane as f64;
        let _ = write!(
            html,
            "<g class=\"leaders\"><text x=\"4\" y=\"{}\">{}</text>",
            y + 10.0,
            esc(tp)
        );
        for (i, (from, node, epoch)) in changes.iter().enumerate() {
            let to = changes.get(i + 1).map_or(end_ns, |next| next.0);
            let broker: u64 = node.rsplit('-').next().and_then(|n| n.parse().ok()).unwrap_or(0);
            let (x0, x1) = (x(*from), x(to));
            let _ = write!(
                html,
                "<rect class=\"leader b{}\" x=\"{x0:.1}\" y=\"{}\" width=\"{:.1}\" height=\"{}\"><title>{} \
                 leads {} in {} from {}</title></rect><text class=\"epoch\" x=\"{:.1}\" y=\"{}\">{}</text>",
                broker % 6,
                y + 1.0,
                (x1 - x0).max(1.0),
                LANE - 3.0,
                esc(node),
                esc(tp),
                esc(epoch),
                crate::report::format_sim_time(*from),
                x0 + 2.0,
                y + 10.0,
                esc(epoch)
            );
        }
        html.push_str("</g>");
    }
    html.push_str("</svg>\n");
}

fn latency_and_throughput(
    html: &mut String,
    bars: &[Bar],
    ops: &[serde_json::Value],
    end_ns: u64,
    x: &dyn Fn(u64) -> f64,
) {
    html.push_str("<h2>Latency and throughput</h2><table><tr><th>op</th><th>ok ops</th><th>p50</th><th>p90</th><th>p99</th><th>max</th></tr>");
    let mut by_f: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for bar in bars.iter().filter(|b| b.kind == "ok") {
        by_f.entry(bar.f.as_str()).or_default().push(bar.end - bar.start);
    }
    for (f, latencies) in &mut by_f {
        latencies.sort_unstable();
        let q = |p: f64| {
            let at = ((latencies.len() as f64 - 1.0) * p).round() as usize;
            format!("{:.1} ms", latencies[at] as f64 / 1e6)
        };
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(f),
            latencies.len(),
            q(0.5),
            q(0.9),
            q(0.99),
            q(1.0)
        );
    }
    html.push_str("</table>\n");
    // Acked records per simulated second.
    let secs = (end_ns / 1_000_000_000 + 1) as usize;
    let mut acked = vec![0u64; secs];
    for op in ops.iter().filter(|op| op["type"] == "ok" && op["f"] == "send") {
        let second = (op["time"].as_u64().unwrap_or(0) / 1_000_000_000) as usize;
        let records = op["value"].as_array().map_or(0, |v| v.len() as u64);
        if let Some(slot) = acked.get_mut(second) {
            *slot += records;
        }
    }
    let top = acked.iter().copied().max().unwrap_or(0).max(1) as f64;
    let height = 80.0;
    let _ = write!(
        html,
        "<p>acked records per simulated second (peak {top})</p><svg width=\"{WIDTH}\" \
         height=\"{}\" xmlns=\"http://www.w3.org/2000/svg\">",
        height + 16.0
    );
    axis(html, end_ns, x, height + 14.0);
    for (second, count) in acked.iter().enumerate() {
        let x0 = x(second as u64 * 1_000_000_000);
        let x1 = x((second as u64 + 1) * 1_000_000_000);
        let h = *count as f64 / top * height;
        let _ = write!(
            html,
            "<rect class=\"throughput\" x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\"><title>{second} s: {count}</title></rect>",
            14.0 + height - h,
            (x1 - x0 - 1.0).max(1.0)
        );
    }
    html.push_str("</svg>\n");
}

/// Per key: acked sends (offset at completion time) and polled records (offset at the poll's
/// completion), Jepsen's "offsets over time" view: a cut and refill shows as sends falling
/// back to lower offsets, a skip as a gap in a process's polls.
fn offset_plots(
    html: &mut String,
    ops: &[serde_json::Value],
    marks: &[Mark],
    end_ns: u64,
    x: &dyn Fn(u64) -> f64,
) {
    let mut points: BTreeMap<String, Vec<(u64, u64, bool)>> = BTreeMap::new();
    for op in ops.iter().filter(|op| op["type"] == "ok") {
        let time = op["time"].as_u64().unwrap_or(0);
        for micro in op["value"].as_array().into_iter().flatten() {
            match (micro.get(0).and_then(|f| f.as_str()), micro.get(1), micro.get(2)) {
                (Some("send"), Some(key), Some(pair)) => {
                    if let (Some(key), Some(offset)) =
                        (key.as_str(), pair.get(0).and_then(|o| o.as_u64()))
                    {
                        points.entry(key.to_string()).or_default().push((time, offset, true));
                    }
                }
                (Some("poll"), Some(records), _) => {
                    for (key, records) in records.as_object().into_iter().flatten() {
                        for record in records.as_array().into_iter().flatten() {
                            if let Some(offset) = record.get(0).and_then(|o| o.as_u64()) {
                                points.entry(key.clone()).or_default().push((time, offset, false));
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }
    if points.is_empty() {
        return;
    }
    html.push_str("<h2>Offsets over time</h2><p class=\"legend\"><span class=\"send\">acked sends</span> <span class=\"poll\">polled records</span>; red lines: anomalies on the key</p>\n");
    for (key, pts) in &points {
        let top = pts.iter().map(|p| p.1).max().unwrap_or(0).max(1) as f64;
        let height = 120.0;
        let _ = write!(
            html,
            "<h3>{}</h3><svg class=\"offsets\" width=\"{WIDTH}\" height=\"{}\" xmlns=\"http://www.w3.org/2000/svg\"><text x=\"4\" y=\"24\">offset {top}</text><text x=\"4\" y=\"{}\">0</text>",
            esc(key),
            height + 20.0,
            height + 14.0
        );
        axis(html, end_ns, x, height + 18.0);
        let step = (pts.len() / POINTS_MAX).max(1);
        for (time, offset, send) in pts.iter().step_by(step) {
            let y = 14.0 + height - (*offset as f64 / top) * height;
            let _ = write!(
                html,
                "<circle class=\"{}\" cx=\"{:.1}\" cy=\"{y:.1}\" r=\"1.6\"/>",
                if *send { "send" } else { "poll" },
                x(*time)
            );
        }
        for mark in marks.iter().filter(|m| m.explanation.contains(key.as_str())) {
            if let Some(time) = mark.time {
                let at = x(time);
                let _ = write!(
                    html,
                    "<line class=\"anomaly {}\" x1=\"{at:.1}\" x2=\"{at:.1}\" y1=\"14\" y2=\"{}\"><title>{}: {}</title></line>",
                    esc(&mark.judged),
                    height + 14.0,
                    esc(&mark.name),
                    esc(&mark.explanation)
                );
            }
        }
        html.push_str("</svg>\n");
    }
}

fn events_around(html: &mut String, events: &[Event], marks: &[Mark]) {
    let first = marks.iter().filter_map(|m| m.time).min();
    let split = first.map_or(events.len(), |t| events.partition_point(|e| e.time_ns <= t));
    let from = split.saturating_sub(40);
    let to = if first.is_some() { (split + 10).min(events.len()) } else { split };
    let title = match first {
        Some(t) => {
            format!("Node events around the first anomaly ({})", crate::report::format_sim_time(t))
        }
        None => "The last node events".to_string(),
    };
    let _ = write!(html, "<h2>{}</h2><pre class=\"events\">", esc(&title));
    for (i, event) in events[from..to].iter().enumerate() {
        if from + i == split && first.is_some() {
            html.push_str("<b>---- first anomaly visible ----</b>\n");
        }
        let mut line = format!(
            "{} {} {}",
            crate::report::format_sim_time(event.time_ns),
            event.node,
            event.kind
        );
        for (key, value) in &event.fields {
            let _ = write!(line, " {key}={value}");
        }
        let _ = writeln!(html, "{}", esc(&line));
    }
    html.push_str("</pre>\n");
}

/// A sweep's index page (`index.html` beside sweep.json): the verdict, the failures by
/// signature, and every failing seed linked to its report.
pub fn sweep_index(file: &crate::sweep_files::SweepFile) -> String {
    let verdict = if file.met { "pass" } else { "safety" };
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>sweep {} \
         {}</title><style>{CSS}</style></head><body><h1>{}{} <small>seeds {}</small> <span \
         class=\"verdict {verdict}\">{}</span></h1><p>{} seeds run, {} failed &middot; {} \
         &middot; {:.1} s wall</p>",
        esc(&file.scenario),
        esc(&file.seeds),
        esc(&file.scenario),
        file.variant.as_deref().map(|v| format!(" --variant {}", esc(v))).unwrap_or_default(),
        esc(&file.seeds),
        if file.met { "expectation met" } else { "expectation NOT met" },
        file.seeds_run,
        file.seeds_failed,
        esc(&file.build),
        file.wall_secs
    );
    for (name, first) in &file.first_found {
        let found = first.map_or("NOT found within the seed budget".to_string(), |s| {
            format!("first on seed {s}")
        });
        let _ = write!(html, "<p>must find <b>{}</b>: {}</p>", esc(name), esc(&found));
    }
    html.push_str("<h2>Failures by signature</h2>");
    if file.signatures.is_empty() {
        html.push_str("<p>none</p>");
    } else {
        html.push_str("<table><tr><th>seeds</th><th>smallest</th><th>signature</th></tr>");
        for group in &file.signatures {
            let _ = write!(
                html,
                "<tr><td>{}</td><td><a href=\"{}/report.html\">{}</a></td><td style=\"text-align:left\">{}</td></tr>",
                group.seeds,
                group.smallest_seed,
                group.smallest_seed,
                esc(&group.signature.to_string())
            );
        }
        html.push_str("</table>");
    }
    html.push_str("<h2>Failing seeds</h2><p>");
    let failing: Vec<String> = file
        .runs
        .iter()
        .filter(|run| !run.met)
        .map(|run| format!("<a href=\"{0}/report.html\">{0}</a>", run.seed))
        .collect();
    html.push_str(if failing.is_empty() { "none" } else { "" });
    html.push_str(&failing.join(" "));
    html.push_str("</p></body></html>\n");
    html
}

/// Escapes text for HTML and SVG (one rule with the JUnit XML's).
fn esc(text: &str) -> String {
    crate::sweep_files::escape(text)
}

const CSS: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:20px;color:#222}\
h1 small{color:#666;font-weight:normal}code{background:#f3f3f3;padding:1px 3px}\
.verdict{font-size:60%;padding:2px 8px;border-radius:4px;color:#fff;vertical-align:middle}\
.verdict.pass{background:#2a8a3e}.verdict.safety{background:#c0392b}\
.verdict.liveness{background:#d68910}.verdict.crash,.verdict.non-determinism{background:#6c3483}\
ul.judgement li.bad{color:#c0392b;font-weight:bold}ul.judgement li.ok{color:#2a8a3e}\
svg{display:block;margin:6px 0;border:1px solid #ddd;background:#fcfcfc}\
svg text{font-size:10px;fill:#444}text.tick{fill:#999}line.tick{stroke:#eee}\
rect.op.ok{fill:#4caf50}rect.op.info{fill:#f5a623}rect.op.fail{fill:#e74c3c}\
rect.fault{fill:#8e44ad;opacity:.55}line.anomaly{stroke:#e74c3c;stroke-width:1.5;opacity:.8}\
line.anomaly.allowed,line.anomaly.expected{stroke:#e67e22;opacity:.5}\
rect.throughput{fill:#3498db}circle.send{fill:#2980b9}circle.poll{fill:#27ae60;opacity:.6}\
rect.leader{opacity:.8}rect.b0{fill:#3498db}rect.b1{fill:#e67e22}rect.b2{fill:#1abc9c}\
rect.b3{fill:#9b59b6}rect.b4{fill:#f1c40f}rect.b5{fill:#95a5a6}text.epoch{fill:#fff;font-size:9px}\
.legend span{padding:0 6px;border-radius:3px;color:#fff}.legend .ok{background:#4caf50}\
.legend .info{background:#f5a623}.legend .fail{background:#e74c3c}\
.legend .send{background:#2980b9}.legend .poll{background:#27ae60}\
h3.forbidden{color:#c0392b}h3 small{color:#777;font-weight:normal}p.more{color:#777}table{border-collapse:collapse}\
td,th{border:1px solid #ddd;padding:2px 8px;text-align:right}pre.events{font-size:12px;background:#f7f7f7;padding:8px}";
