//! Taking a node out of service: `kubectl cordon`, `uncordon`, `drain` and
//! `delete node`. Drain follows kubectl's `pkg/drain`: mirror Pods are
//! skipped, DaemonSet Pods and Pods no controller owns block it unless
//! `--ignore-daemonsets` / `--force`, evictions honour PodDisruptionBudgets.

use super::request::{node_args, Ctx};
use super::{err, state_err};
use crate::sim::clock;
use crate::sim::flags::Parsed;
use crate::sim::latency::Op;
use crate::sim::state;
use crate::sim::workloads::{self, ListedPod};
use std::collections::BTreeMap;

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

/// Groups `(message, pod)` as kubectl's pod lists do: `MSG: ns/a, ns/b`,
/// by message.
fn grouped(items: &[(&str, String)]) -> Vec<String> {
    let mut by: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (msg, pod) in items {
        by.entry(msg).or_default().push(pod);
    }
    by.into_iter()
        .map(|(msg, pods)| format!("{msg}: {}", pods.join(", ")))
        .collect()
}

/// An aggregate error's one-line form: the error, or `[e1, e2]`.
fn aggregate(errors: &[String]) -> String {
    match errors {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

/// kubectl's report of a node it could not drain; the node stays cordoned.
fn drain_failed(node: &str, errors: &[String]) -> u8 {
    eprintln!(
        "error: unable to drain node \"{node}\" due to error: {}, continuing command...",
        aggregate(errors)
    );
    eprintln!("There are pending nodes to be drained:\n {node}");
    for e in errors {
        eprintln!("{e}");
    }
    1
}

const DAEMONSET_BLOCK: &str = "DaemonSet-managed Pods (use --ignore-daemonsets to ignore)";
const BARE_BLOCK: &str = "cannot delete Pods that declare no controller (use --force to override)";

pub(super) fn drain(ctx: &Ctx, p: &Parsed) -> u8 {
    let nodes = match node_args_or_bare(&p.positional) {
        Ok(n) => n,
        Err(m) => return err(&m),
    };
    let timeout = match p.get("timeout") {
        None => 0.0,
        Some(t) => match clock::parse_go_duration(t) {
            Some(d) => d,
            None => {
                return err(&format!(
                    "invalid argument {t:?} for \"--timeout\" flag: time: invalid duration {t:?}"
                ))
            }
        },
    };
    for node in &nodes {
        let st = match ctx.connect_admin("patch", node) {
            Ok(s) => s,
            Err(c) => return c,
        };
        if !st.nodes.contains_key(node) {
            eprintln!("Error from server (NotFound): nodes \"{node}\" not found");
            return 1;
        }
        match set_unschedulable(ctx, node, true) {
            Ok(true) => println!("node/{node} cordoned"),
            Ok(false) => println!("node/{node} already cordoned"),
            Err(c) => return c,
        }
        let on_node: Vec<ListedPod> = workloads::list(&ctx.host.lab_dir, &st, clock::now())
            .into_iter()
            .filter(|x| &x.node == node && !x.is_mirror())
            .collect();
        let mut blocks = Vec::new();
        let mut warnings = Vec::new();
        let mut evict: Vec<&ListedPod> = Vec::new();
        for x in &on_node {
            if x.is_daemonset() {
                if p.on("ignore-daemonsets") {
                    warnings.push(("ignoring DaemonSet-managed Pods", x.key()));
                } else {
                    blocks.push((DAEMONSET_BLOCK, x.key()));
                }
            } else if x.owner.is_none() {
                if p.on("force") {
                    warnings.push(("deleting Pods that declare no controller", x.key()));
                    evict.push(x);
                } else {
                    blocks.push((BARE_BLOCK, x.key()));
                }
            } else {
                evict.push(x);
            }
        }
        if !blocks.is_empty() {
            let errors: Vec<String> = grouped(&blocks)
                .into_iter()
                .map(|e| format!("cannot delete {e}"))
                .collect();
            return drain_failed(node, &errors);
        }
        if !warnings.is_empty() {
            eprintln!("Warning: {}", grouped(&warnings).join("; "));
        }
        ctx.host.pause(Op::Drain);
        match evict_all(ctx, &evict, timeout, p.on("disable-eviction")) {
            Ok(done) => {
                let word = if p.on("disable-eviction") {
                    "deleted"
                } else {
                    "evicted"
                };
                for name in done {
                    println!("pod/{name} {word}");
                }
                println!("node/{node} drained");
            }
            Err(errors) => return drain_failed(node, &errors),
        }
    }
    0
}

/// Evicts `pods` as kubectl does, one attempt each per round: a Pod whose
/// PodDisruptionBudget allows no disruption is refused (429) and retried
/// after kubectl's 5 s, until `--timeout` (0: forever). Both scale with the
/// lab's speed. The evicted Pods' names, or the errors.
fn evict_all(
    ctx: &Ctx,
    pods: &[&ListedPod],
    timeout: f64,
    delete: bool,
) -> Result<Vec<String>, Vec<String>> {
    let scale = ctx.host.latency(Op::EvictionRetry) / Op::EvictionRetry.default_seconds();
    let limit = timeout * scale;
    let started = std::time::Instant::now();
    let mut pending: Vec<&ListedPod> = pods.to_vec();
    let mut done = Vec::new();
    while !pending.is_empty() {
        if timeout > 0.0 && started.elapsed().as_secs_f64() >= limit {
            return Err(pending
                .iter()
                .map(|x| {
                    format!(
                        "error when evicting pods/\"{}\" -n \"{}\": global timeout reached: {}",
                        x.name,
                        x.namespace,
                        workloads::go_duration(timeout)
                    )
                })
                .collect());
        }
        let mut still = Vec::new();
        for x in pending {
            if !delete {
                println!("evicting pod {}/{}", x.namespace, x.name);
            }
            let refused = state::update(&ctx.host.lab_dir, |s| {
                let now = clock::now();
                let refusal = s
                    .pods
                    .iter()
                    .find(|q| q.namespace == x.namespace && q.name == x.name)
                    .and_then(|q| workloads::eviction_refusal(s, q, now));
                if refusal.is_none() || delete {
                    workloads::evict(s, &x.namespace, &x.name);
                    return None;
                }
                refusal
            })
            .map_err(|e| vec![e.to_string()])?;
            match refused.filter(|_| !delete) {
                Some(why) => {
                    eprintln!(
                        "error when evicting pods/\"{}\" -n \"{}\" (will retry after 5s): {why}",
                        x.name, x.namespace
                    );
                    still.push(x);
                }
                None => done.push(x.name.clone()),
            }
        }
        pending = still;
        if !pending.is_empty() {
            std::thread::sleep(std::time::Duration::from_secs_f64(
                ctx.host.latency(Op::EvictionRetry).max(0.001),
            ));
        }
    }
    Ok(done)
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
