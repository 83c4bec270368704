//! `kubectl label node` and `kubectl annotate node`: set, overwrite and
//! remove labels or annotations, with kubectl's validation of keys and
//! (labels') values. gt annotates the nodes it cordons.

use super::request::{node_and_updates, Ctx};
use super::{err, state_err};
use crate::sim::flags::Parsed;
use crate::sim::latency::Op;
use crate::sim::state::{self, NodeObj};
use std::collections::BTreeMap;

pub(super) fn valid_label_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars().last().is_some_and(|c| c.is_ascii_alphanumeric())
}

pub(super) fn valid_label_key(k: &str) -> bool {
    match k.split_once('/') {
        Some((prefix, name)) => {
            !prefix.is_empty()
                && prefix.len() <= 253
                && prefix.split('.').all(|p| {
                    !p.is_empty()
                        && p.chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                })
                && valid_label_name(name)
        }
        None => valid_label_name(k),
    }
}

/// What `kubectl label node` and `kubectl annotate node` differ in; the
/// rest (the node, the `k=v` and `k-` updates, `--overwrite`, the update
/// under the state lock) is one path.
struct MetadataKind {
    /// `label`, `annotation`: in kubectl's words for an empty or bad update.
    noun: &'static str,
    map: fn(&mut NodeObj) -> &mut BTreeMap<String, String>,
    /// A value's own check (labels have one, annotations none).
    value_error: fn(&str, &str) -> Option<String>,
    /// kubectl's error for keys that already hold another value (`(key, current)`).
    clash_error: fn(&[(String, String)]) -> String,
    /// What kubectl prints: lines before, then `node/N WORD`.
    report: fn(&Change) -> (Vec<String>, &'static str),
}

/// One update of a node's labels or annotations.
struct Change {
    changed: bool,
    /// Fewer keys afterwards.
    shrank: bool,
    overwrite: bool,
    /// Keys asked to be removed that were not there.
    absent: Vec<String>,
}

const LABEL: MetadataKind = MetadataKind {
    noun: "label",
    map: |n| &mut n.labels,
    value_error: |spec, v| {
        (!v.is_empty() && !valid_label_name(v)).then(|| format!("invalid label value: {spec:?}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"))
    },
    clash_error: |clashes| {
        let each: Vec<String> = clashes
            .iter()
            .map(|(k, cur)| format!("'{k}' already has a value ({cur}), and --overwrite is false"))
            .collect();
        if each.len() == 1 {
            format!("error: {}", each[0])
        } else {
            format!("error: [{}]", each.join(", "))
        }
    },
    report: |c| {
        let notes = c
            .absent
            .iter()
            .map(|k| format!("label {k:?} not found."))
            .collect();
        let word = if !c.changed {
            "not labeled"
        } else if !c.overwrite && c.shrank {
            "unlabeled"
        } else {
            "labeled"
        };
        (notes, word)
    },
};

const ANNOTATION: MetadataKind = MetadataKind {
    noun: "annotation",
    map: |n| &mut n.annotations,
    value_error: |_, _| None,
    clash_error: |clashes| {
        let each: Vec<String> = clashes
            .iter()
            .map(|(k, cur)| format!("'{k}' already has a value ({cur})"))
            .collect();
        format!(
            "error: --overwrite is false but found the following declared annotation(s): {}",
            each.join("; ")
        )
    },
    report: |_| (Vec::new(), "annotated"),
};

/// `kubectl label node N k=v k2-` (`--overwrite` to change a value).
pub(super) fn label(ctx: &Ctx, p: &Parsed) -> u8 {
    update_node(ctx, p, &LABEL)
}

/// `kubectl annotate node N k=v k2-` (`--overwrite` to change a value).
pub(super) fn annotate(ctx: &Ctx, p: &Parsed) -> u8 {
    update_node(ctx, p, &ANNOTATION)
}

fn update_node(ctx: &Ctx, p: &Parsed, kind: &MetadataKind) -> u8 {
    let (node, specs) = match node_and_updates(&p.positional) {
        Ok(x) => x,
        Err(m) => return err(&m),
    };
    if specs.is_empty() {
        return err(&format!("at least one {} update is required", kind.noun));
    }
    let (add, remove) = match updates(specs, kind) {
        Ok(u) => u,
        Err(m) => return err(&m),
    };
    let overwrite = p.on("overwrite");
    ctx.host.pause(Op::Kubectl);
    if let Err(c) = ctx.connect_admin("patch", &node) {
        return c;
    }
    let r = state::update(&ctx.host.lab_dir, |s| -> Result<Change, String> {
        let rv = s.resource_version + 1;
        let Some(n) = s.nodes.get_mut(&node) else {
            return Err(format!(
                "Error from server (NotFound): nodes \"{node}\" not found"
            ));
        };
        let map = (kind.map)(n);
        if !overwrite {
            let clashes: Vec<(String, String)> = add
                .iter()
                .filter_map(|(k, v)| {
                    map.get(k)
                        .filter(|cur| *cur != v)
                        .map(|cur| (k.clone(), cur.clone()))
                })
                .collect();
            if !clashes.is_empty() {
                return Err((kind.clash_error)(&clashes));
            }
        }
        let before = map.clone();
        let absent = remove
            .iter()
            .filter(|k| map.remove(*k).is_none())
            .cloned()
            .collect();
        for (k, v) in &add {
            map.insert(k.clone(), v.clone());
        }
        let change = Change {
            changed: *map != before,
            shrank: map.len() < before.len(),
            overwrite,
            absent,
        };
        if change.changed {
            n.resource_version = rv;
        }
        Ok(change)
    });
    match r {
        Ok(Ok(change)) => {
            let (notes, word) = (kind.report)(&change);
            for note in notes {
                println!("{note}");
            }
            println!("node/{node} {word}");
            0
        }
        Ok(Err(m)) => {
            eprintln!("{m}");
            1
        }
        Err(e) => state_err(&e),
    }
}

/// Keys and values to set, and keys to remove.
type Updates = (Vec<(String, String)>, Vec<String>);

/// `k=v` to set and `k-` to remove, validated as kubectl does.
fn updates(specs: &[String], kind: &MetadataKind) -> Result<Updates, String> {
    let mut add = Vec::new();
    let mut remove = Vec::new();
    for s in specs {
        if let Some(k) = s.strip_suffix('-') {
            remove.push(k.to_string());
        } else if let Some((k, v)) = s.split_once('=') {
            if !valid_label_key(k) {
                return Err(format!("invalid {} spec: {s}", kind.noun));
            }
            if let Some(e) = (kind.value_error)(s, v) {
                return Err(e);
            }
            add.push((k.to_string(), v.to_string()));
        } else {
            return Err(format!("invalid {} spec: {s}", kind.noun));
        }
    }
    Ok((add, remove))
}
