//! `kubectl taint node`: add, replace and remove taints.

use super::label::{valid_label_key, valid_label_name};
use super::request::{is_node_kind, unsupported_kind, Ctx};
use super::{err, state_err};
use crate::sim::flags::Parsed;
use crate::sim::latency::Op;
use crate::sim::state::{self, Taint};

const EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];

/// One taint argument: to add (`k=v:E`, `k:E`) or to remove (`k:E-`, `k-`).
enum TaintArg {
    Add(Taint),
    Remove { key: String, effect: Option<String> },
}

fn parse_taint_arg(s: &str) -> Result<TaintArg, String> {
    let invalid = |why: &str| format!("invalid taint spec: {s}, {why}");
    if let Some(body) = s.strip_suffix('-') {
        let (key, effect) = match body.split_once(':') {
            Some((k, e)) => (k, Some(e.to_string())),
            None => (body, None),
        };
        if let Some(e) = &effect {
            if !EFFECTS.contains(&e.as_str()) {
                return Err(invalid(&format!(
                    "invalid taint effect: {e}, unsupported taint effect"
                )));
            }
        }
        if !valid_label_key(key) {
            return Err(invalid("invalid taint key"));
        }
        return Ok(TaintArg::Remove {
            key: key.to_string(),
            effect,
        });
    }
    let (kv, effect) = s
        .rsplit_once(':')
        .ok_or_else(|| invalid("missing taint effect"))?;
    if !EFFECTS.contains(&effect) {
        return Err(invalid(&format!(
            "invalid taint effect: {effect}, unsupported taint effect"
        )));
    }
    let (key, value) = match kv.split_once('=') {
        Some((k, v)) => (k, Some(v.to_string())),
        None => (kv, None),
    };
    if !valid_label_key(key) {
        return Err(invalid("invalid taint key"));
    }
    if let Some(v) = &value {
        if !v.is_empty() && !valid_label_name(v) {
            return Err(invalid("invalid taint value"));
        }
    }
    Ok(TaintArg::Add(Taint {
        key: key.to_string(),
        value: value.filter(|v| !v.is_empty()),
        effect: effect.to_string(),
    }))
}

pub(super) fn taint(ctx: &Ctx, p: &Parsed) -> u8 {
    let pos = &p.positional;
    let (node, specs) = match pos.first().map(|f| f.split_once('/')) {
        Some(Some((kind, name))) if is_node_kind(kind) => (name.to_string(), &pos[1..]),
        Some(None) if is_node_kind(&pos[0]) && pos.len() >= 2 => (pos[1].clone(), &pos[2..]),
        Some(Some((kind, _))) => return err(&unsupported_kind(kind)),
        Some(None) if !is_node_kind(&pos[0]) => return err(&unsupported_kind(&pos[0])),
        _ => return err("at least one taint update is required"),
    };
    if specs.is_empty() {
        return err("at least one taint update is required");
    }
    let mut args = Vec::new();
    for s in specs {
        match parse_taint_arg(s) {
            Ok(a) => args.push(a),
            Err(m) => return err(&m),
        }
    }
    let overwrite = p.on("overwrite");
    ctx.host.pause(Op::Kubectl);
    if let Err(c) = ctx.connect_admin("patch", &node) {
        return c;
    }
    let r = state::update(&ctx.host.lab_dir, |s| -> Result<String, String> {
        let rv = s.resource_version + 1;
        let Some(n) = s.nodes.get_mut(&node) else {
            return Err(format!(
                "Error from server (NotFound): nodes \"{node}\" not found"
            ));
        };
        let mut taints = n.taints.clone();
        let (mut added, mut removed) = (false, false);
        for a in &args {
            match a {
                TaintArg::Remove { key, effect } => {
                    let before = taints.len();
                    taints.retain(|t| {
                        !(t.key == *key && effect.as_ref().is_none_or(|e| *e == t.effect))
                    });
                    if taints.len() == before {
                        let shown = match effect {
                            Some(e) => format!("{key}:{e}"),
                            None => key.clone(),
                        };
                        return Err(format!("error: taint {shown:?} not found"));
                    }
                    removed = true;
                }
                TaintArg::Add(t) => {
                    if let Some(existing) = taints
                        .iter_mut()
                        .find(|x| x.key == t.key && x.effect == t.effect)
                    {
                        if !overwrite {
                            return Err(format!("error: node {node} already has {} taint(s) with same effect(s) and --overwrite is false", t.key));
                        }
                        *existing = t.clone();
                    } else {
                        taints.push(t.clone());
                    }
                    added = true;
                }
            }
        }
        n.taints = taints;
        n.resource_version = rv;
        Ok(match (added, removed) {
            (true, true) => "modified",
            (false, true) => "untainted",
            _ => "tainted",
        }
        .to_string())
    });
    match r {
        Ok(Ok(op)) => {
            println!("node/{node} {op}");
            0
        }
        Ok(Err(m)) => {
            eprintln!("{m}");
            1
        }
        Err(e) => state_err(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taint_args_parse_like_kubectl() {
        assert!(
            matches!(parse_taint_arg("gpu=true:NoSchedule"), Ok(TaintArg::Add(t)) if t.value.as_deref() == Some("true"))
        );
        assert!(matches!(
            parse_taint_arg("gpu:NoSchedule-"),
            Ok(TaintArg::Remove {
                effect: Some(_),
                ..
            })
        ));
        assert!(matches!(
            parse_taint_arg("gpu-"),
            Ok(TaintArg::Remove { effect: None, .. })
        ));
        assert!(parse_taint_arg("gpu=true:Sometimes").is_err());
    }
}
