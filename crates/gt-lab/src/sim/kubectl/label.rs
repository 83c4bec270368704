//! `kubectl label node`: set, overwrite and remove labels, with kubectl's
//! validation of keys and values.

use super::request::{node_and_updates, Ctx};
use super::{err, state_err};
use crate::sim::flags::Parsed;
use crate::sim::latency::Op;
use crate::sim::state;

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

pub(super) fn label(ctx: &Ctx, p: &Parsed) -> u8 {
    let (node, specs) = match node_and_updates(&p.positional) {
        Ok(x) => x,
        Err(m) => return err(&m),
    };
    if specs.is_empty() {
        return err("at least one label update is required");
    }
    let (add, remove) = match label_updates(specs) {
        Ok(u) => u,
        Err(m) => return err(&m),
    };
    let overwrite = p.on("overwrite");
    ctx.host.pause(Op::Kubectl);
    if let Err(c) = ctx.connect_admin("patch", &node) {
        return c;
    }
    let r = state::update(
        &ctx.host.lab_dir,
        |s| -> Result<(String, Vec<String>), String> {
            let rv = s.resource_version + 1;
            let Some(n) = s.nodes.get_mut(&node) else {
                return Err(format!(
                    "Error from server (NotFound): nodes \"{node}\" not found"
                ));
            };
            if !overwrite {
                let clashes: Vec<String> = add
                    .iter()
                    .filter_map(|(k, v)| {
                        n.labels.get(k).filter(|cur| *cur != v).map(|cur| {
                            format!("'{k}' already has a value ({cur}), and --overwrite is false")
                        })
                    })
                    .collect();
                if !clashes.is_empty() {
                    return Err(format!(
                        "error: {}",
                        if clashes.len() == 1 {
                            clashes[0].clone()
                        } else {
                            format!("[{}]", clashes.join(", "))
                        }
                    ));
                }
            }
            let before = n.labels.clone();
            let mut notes = Vec::new();
            for k in &remove {
                if n.labels.remove(k).is_none() {
                    notes.push(format!("label {k:?} not found."));
                }
            }
            for (k, v) in &add {
                n.labels.insert(k.clone(), v.clone());
            }
            let msg = if n.labels == before {
                "not labeled"
            } else if !overwrite && n.labels.len() < before.len() {
                "unlabeled"
            } else {
                "labeled"
            };
            if n.labels != before {
                n.resource_version = rv;
            }
            Ok((msg.to_string(), notes))
        },
    );
    match r {
        Ok(Ok((msg, notes))) => {
            for note in notes {
                println!("{note}");
            }
            println!("node/{node} {msg}");
            0
        }
        Ok(Err(m)) => {
            eprintln!("{m}");
            1
        }
        Err(e) => state_err(&e),
    }
}

/// Labels to set, and keys to remove.
type LabelUpdates = (Vec<(String, String)>, Vec<String>);

/// `k=v` to set and `k-` to remove, validated as kubectl does.
fn label_updates(specs: &[String]) -> Result<LabelUpdates, String> {
    let mut add = Vec::new();
    let mut remove = Vec::new();
    for s in specs {
        if let Some(k) = s.strip_suffix('-') {
            remove.push(k.to_string());
        } else if let Some((k, v)) = s.split_once('=') {
            if !valid_label_key(k) {
                return Err(format!("invalid label spec: {s}"));
            }
            if !v.is_empty() && !valid_label_name(v) {
                return Err(format!("invalid label value: {s:?}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"));
            }
            add.push((k.to_string(), v.to_string()));
        } else {
            return Err(format!("invalid label spec: {s}"));
        }
    }
    Ok((add, remove))
}
