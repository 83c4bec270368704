//! A strict reader of the Prometheus text exposition format (0.0.4), as
//! node_exporter's textfile collector reads it: it fails on anything the
//! format does not allow, so that a test can say "this file is valid".

use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

fn is_metric_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(f) if f.is_ascii_alphabetic() || f == '_' || f == ':')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(f) if f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
        && !s.starts_with("__")
}

fn value(s: &str) -> Result<f64, String> {
    match s {
        "NaN" => Ok(f64::NAN),
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => s.parse::<f64>().map_err(|e| format!("value {s:?}: {e}")),
    }
}

/// `{a="x",b="y"}` → labels and the rest of the line.
fn labels(s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut out = BTreeMap::new();
    let mut rest = s.strip_prefix('{').expect("called on '{'");
    loop {
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((out, r));
        }
        let eq = rest.find('=').ok_or("label without '='")?;
        let name = rest[..eq].trim();
        if !is_label_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        rest = rest[eq + 1..].trim_start();
        rest = rest.strip_prefix('"').ok_or("label value not quoted")?;
        let mut v = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => v.push('\\'),
                    Some((_, '"')) => v.push('"'),
                    Some((_, 'n')) => v.push('\n'),
                    other => return Err(format!("bad escape {other:?} in a label value")),
                },
                Some((_, '\n')) | None => return Err("unterminated label value".into()),
                Some((_, c)) => v.push(c),
            }
        };
        if out.insert(name.to_string(), v).is_some() {
            return Err(format!("label {name} twice"));
        }
        rest = rest[end + 1..].trim_start();
        if let Some(r) = rest.strip_prefix(',') {
            rest = r;
        } else if !rest.starts_with('}') {
            return Err(format!("expected ',' or '}}' at {rest:?}"));
        }
    }
}

/// Every sample of `text`, or the first rule it breaks (with its line).
pub fn parse(text: &str) -> Result<Vec<Sample>, String> {
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("the last line does not end with a newline".into());
    }
    let mut samples = Vec::new();
    let mut typed: BTreeMap<String, String> = BTreeMap::new();
    let mut helped: BTreeSet<String> = BTreeSet::new();
    let mut closed: BTreeSet<String> = BTreeSet::new();
    let mut current: Option<String> = None;
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for (n, line) in text.lines().enumerate() {
        let at = |e: String| format!("line {}: {e}: {line:?}", n + 1);
        if line.trim().is_empty() {
            continue;
        }
        if let Some(c) = line.strip_prefix('#') {
            let words: Vec<&str> = c.trim_start().splitn(3, ' ').collect();
            match words.as_slice() {
                ["HELP", name, ..] | ["TYPE", name, ..] if !is_metric_name(name) => {
                    return Err(at(format!("bad metric name {name:?}")))
                }
                ["HELP", name, ..] if !helped.insert(name.to_string()) => {
                    return Err(at(format!("second HELP for {name}")));
                }
                ["TYPE", name, t] => {
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(t) {
                        return Err(at(format!("unknown type {t}")));
                    }
                    if samples.iter().any(|s: &Sample| &s.name == name) {
                        return Err(at(format!("TYPE for {name} after its samples")));
                    }
                    if typed.insert(name.to_string(), t.to_string()).is_some() {
                        return Err(at(format!("second TYPE for {name}")));
                    }
                }
                ["TYPE", ..] => return Err(at("TYPE without a type".into())),
                _ => {}
            }
            continue;
        }
        let name_end = line
            .find(['{', ' '])
            .ok_or_else(|| at("a sample without a value".into()))?;
        let name = &line[..name_end];
        if !is_metric_name(name) {
            return Err(at(format!("bad metric name {name:?}")));
        }
        let (labels, rest) = if line[name_end..].starts_with('{') {
            labels(&line[name_end..]).map_err(at)?
        } else {
            (BTreeMap::new(), &line[name_end..])
        };
        let parts: Vec<&str> = rest.split_whitespace().collect();
        let v = match parts.as_slice() {
            [v] => value(v).map_err(at)?,
            [v, ts] => {
                ts.parse::<i64>()
                    .map_err(|e| at(format!("timestamp {ts:?}: {e}")))?;
                value(v).map_err(at)?
            }
            _ => return Err(at("expected a value and an optional timestamp".into())),
        };
        if current.as_deref() != Some(name) {
            if closed.contains(name) {
                return Err(at(format!("samples of {name} are not together")));
            }
            if let Some(prev) = current.replace(name.to_string()) {
                closed.insert(prev);
            }
        }
        let key = format!("{name}{labels:?}");
        if !seen.insert(key) {
            return Err(at("the same series twice".into()));
        }
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value: v,
        });
    }
    Ok(samples)
}

/// The value of the one sample of `name` whose labels include `with`.
pub fn value_of(samples: &[Sample], name: &str, with: &[(&str, &str)]) -> Option<f64> {
    let found: Vec<&Sample> = samples
        .iter()
        .filter(|s| {
            s.name == name
                && with
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect();
    match found.as_slice() {
        [one] => Some(one.value),
        _ => None,
    }
}

/// What the tests that read textfiles rely on.
#[test]
fn the_reader_refuses_what_the_format_forbids() {
    assert!(parse("a 1\n").is_ok());
    assert!(parse("a{b=\"x\\\"y\"} 1\n").is_ok());
    assert!(parse("a 1").is_err(), "no final newline");
    assert!(parse("1a 1\n").is_err(), "bad name");
    assert!(parse("a{b=x} 1\n").is_err(), "unquoted value");
    assert!(parse("a one\n").is_err(), "bad value");
    assert!(parse("a 1\nb 1\na{x=\"1\"} 1\n").is_err(), "family split");
    assert!(parse("a 1\na 1\n").is_err(), "duplicate series");
    assert!(
        parse("a 1\n# TYPE a gauge\n").is_err(),
        "TYPE after samples"
    );
    assert!(parse("a{b=\"\\t\"} 1\n").is_err(), "bad escape");
}
