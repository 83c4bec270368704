//! Taking a node out of service: `kubectl cordon`, `uncordon`, `drain` and
//! `delete node`.

use super::request::{node_args, Ctx};
use super::{err, state_err};
use crate::sim::clock;
use crate::sim::flags::Parsed;
use crate::sim::latency::Op;
use crate::sim::state::{self, NodeObj};
use sha2::{Digest, Sha256};

fn set_unschedulable(ctx: &Ctx, node: &str, value: bool) -> Result<bool, u8> {
    let r = state::update(&ctx.host.lab_dir, |s| {
        let rv = s.resource_version + 1;
        let n = s.nodes.get_mut(node)?;
        let changed = n.unschedulable != value;
        n.unschedulable = value;
        if changed {
            n.resource_version = rv;
        }
        Some(changed)
    });
    match r {
        Ok(Some(changed)) => Ok(changed),
        Ok(None) => {
            eprintln!("Error from server (NotFound): nodes \"{node}\" not found");
            Err(1)
        }
        Err(e) => Err(state_err(&e)),
    }
}

pub(super) fn cordon(ctx: &Ctx, p: &Parsed, on: bool) -> u8 {
    let nodes = match node_args_or_bare(&p.positional) {
        Ok(n) => n,
        Err(m) => return err(&m),
    };
    ctx.host.pause(Op::Kubectl);
    for node in &nodes {
        if let Err(c) = ctx.connect_admin("patch", node) {
            return c;
        }
        match set_unschedulable(ctx, node, on) {
            Ok(changed) => {
                let word = if on { "cordoned" } else { "uncordoned" };
                if changed {
                    println!("node/{node} {word}");
                } else {
                    println!("node/{node} already {word}");
                }
            }
            Err(c) => return c,
        }
    }
    0
}

/// `kubectl cordon fenn` takes node names directly.
fn node_args_or_bare(pos: &[String]) -> Result<Vec<String>, String> {
    if pos.is_empty() {
        return Err(
            "USAGE: cordon NODE [flags]\nSee 'kubectl cordon -h' for help and examples".into(),
        );
    }
    Ok(pos
        .iter()
        .map(|a| {
            a.split_once('/')
                .map(|(_, n)| n.to_string())
                .unwrap_or_else(|| a.clone())
        })
        .collect())
}

/// A DaemonSet pod's name on this node (stable per node object).
fn ds_pod(ds: &str, n: &NodeObj) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let d = Sha256::digest(format!("{ds}{}", n.uid).as_bytes());
    let suffix: String = d
        .iter()
        .take(5)
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect();
    format!("{ds}-{suffix}")
}

pub(super) fn drain(ctx: &Ctx, p: &Parsed) -> u8 {
    let nodes = match node_args_or_bare(&p.positional) {
        Ok(n) => n,
        Err(m) => return err(&m),
    };
    if let Some(t) = p.get("timeout") {
        if clock::parse_go_duration(t).is_none() {
            return err(&format!(
                "invalid argument {t:?} for \"--timeout\" flag: time: invalid duration {t:?}"
            ));
        }
    }
    for node in &nodes {
        let st = match ctx.connect_admin("patch", node) {
            Ok(s) => s,
            Err(c) => return c,
        };
        let Some(obj) = st.nodes.get(node).cloned() else {
            eprintln!("Error from server (NotFound): nodes \"{node}\" not found");
            return 1;
        };
        match set_unschedulable(ctx, node, true) {
            Ok(true) => println!("node/{node} cordoned"),
            Ok(false) => println!("node/{node} already cordoned"),
            Err(c) => return c,
        }
        let mut ds: Vec<String> = Vec::new();
        if st.cni.is_some() {
            ds.push(format!("kube-system/{}", ds_pod("calico-node", &obj)));
        }
        ds.push(format!("kube-system/{}", ds_pod("kube-proxy", &obj)));
        let list = ds.join(", ");
        if !p.on("ignore-daemonsets") {
            let why = format!(
                "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): {list}"
            );
            eprintln!(
                "error: unable to drain node \"{node}\" due to error: {why}, continuing command..."
            );
            eprintln!("There are pending nodes to be drained:\n {node}\n{why}");
            return 1;
        }
        eprintln!("Warning: ignoring DaemonSet-managed Pods: {list}");
        ctx.host.pause(Op::Drain);
        let evicted = match state::update(&ctx.host.lab_dir, |s| s.evict_from(node)) {
            Ok(e) => e,
            Err(e) => return state_err(&e),
        };
        for pod in &evicted {
            println!("evicting pod {}/{}", pod.namespace, pod.name);
        }
        for pod in &evicted {
            println!("pod/{} evicted", pod.name);
        }
        println!("node/{node} drained");
    }
    0
}

pub(super) fn delete(ctx: &Ctx, p: &Parsed) -> u8 {
    if p.has("filename") {
        return err("the lab's simulated kubectl deletes nodes by name only");
    }
    let names = match node_args(&p.positional) {
        Ok(n) if !n.is_empty() => n,
        Ok(_) => return err("resource(s) were provided, but no name was specified"),
        Err(m) => return err(&m),
    };
    ctx.host.pause(Op::Kubectl);
    for node in &names {
        if let Err(c) = ctx.connect_admin("delete", node) {
            return c;
        }
        let removed = state::update(&ctx.host.lab_dir, |s| {
            let found = s.nodes.remove(node).is_some();
            // The pod garbage collector deletes its pods; their ReplicaSets replace them.
            s.evict_from(node);
            found
        });
        match removed {
            Ok(true) => println!("node \"{node}\" deleted"),
            Ok(false) if p.on("ignore-not-found") => {}
            Ok(false) => {
                eprintln!("Error from server (NotFound): nodes \"{node}\" not found");
                return 1;
            }
            Err(e) => return state_err(&e),
        }
    }
    0
}
