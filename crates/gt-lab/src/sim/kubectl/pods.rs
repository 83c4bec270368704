//! `kubectl get pods` and `kubectl get pdb` (`-A`, `-n`, `-o json|name`,
//! `-l`, `--field-selector spec.nodeName=N`, tables), and `kubectl annotate
//! node` (gt marks the nodes it cordons).

use super::label::valid_label_key;
use super::request::{node_and_updates, Ctx};
use super::{err, state_err};
use crate::sim::clock;
use crate::sim::flags::Parsed;
use crate::sim::latency::Op;
use crate::sim::state;
use crate::sim::table::tabwrite;
use crate::sim::workloads::{self, ListedPod};
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub(super) fn is_pod_kind(k: &str) -> bool {
    matches!(k, "pods" | "pod" | "po")
}

pub(super) fn is_pdb_kind(k: &str) -> bool {
    matches!(
        k,
        "pdb" | "pdbs" | "poddisruptionbudget" | "poddisruptionbudgets"
    ) || k.starts_with("poddisruptionbudget.")
        || k.starts_with("poddisruptionbudgets.")
}

/// `-l a=b,c!=d,e,!f` over labels.
fn selected(labels: &BTreeMap<String, String>, sel: &str) -> bool {
    sel.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .all(|term| {
            if let Some((k, v)) = term.split_once("!=") {
                labels.get(k).map(String::as_str) != Some(v)
            } else if let Some((k, v)) = term.split_once('=') {
                labels.get(k.trim_end_matches('=')).map(String::as_str) == Some(v)
            } else if let Some(k) = term.strip_prefix('!') {
                !labels.contains_key(k)
            } else {
                labels.contains_key(term)
            }
        })
}

/// The namespace a namespaced `get` lists (`None`: every namespace).
fn namespace(p: &Parsed) -> Option<String> {
    if p.on("all-namespaces") {
        None
    } else {
        Some(p.get("namespace").unwrap_or("default").to_string())
    }
}

fn names(p: &Parsed) -> Vec<String> {
    match p.positional.first().and_then(|f| f.split_once('/')) {
        Some((_, n)) => vec![n.to_string()],
        None => p.positional[1..].to_vec(),
    }
}

fn no_resources(ns: &Option<String>) {
    match ns {
        Some(n) => eprintln!("No resources found in {n} namespace."),
        None => eprintln!("No resources found"),
    }
}

/// One object when one was asked for by name, else a List.
fn print_json(objs: Vec<Value>, named: usize) {
    if named == 1 {
        println!("{}", serde_json::to_string_pretty(&objs[0]).expect("json"));
    } else {
        println!("{}", list_json(objs));
    }
}

fn list_json(items: Vec<Value>) -> String {
    serde_json::to_string_pretty(
        &json!({"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}),
    )
    .expect("json")
}

pub(super) fn get_pods(ctx: &Ctx, p: &Parsed) -> u8 {
    let output = p.get("output").unwrap_or("");
    if !matches!(output, "" | "json" | "name" | "wide") {
        return err(&format!("unable to match a printer suitable for the output format {output:?}; the lab's simulated kubectl prints pods as json, name, wide and tables"));
    }
    let node_field = match p.get("field-selector") {
        None => None,
        Some(f) => match f.strip_prefix("spec.nodeName=") {
            Some(n) => Some(n.to_string()),
            None => {
                eprintln!("Error from server (BadRequest): Unable to find {{\"\" \"v1\" \"pods\"}} that match label selector \"{}\", field selector \"{f}\": field label not supported: {}", p.get("selector").unwrap_or(""), f.split(['=', '!']).next().unwrap_or(f));
                return 1;
            }
        },
    };
    ctx.host.pause(Op::Kubectl);
    let st = match ctx.connect() {
        Ok(s) => s,
        Err(c) => return c,
    };
    let now = clock::now();
    let ns = namespace(p);
    let wanted = names(p);
    let mut pods: Vec<ListedPod> = workloads::list(&ctx.host.lab_dir, &st, now)
        .into_iter()
        .filter(|x| ns.as_ref().is_none_or(|n| &x.namespace == n))
        .filter(|x| node_field.as_ref().is_none_or(|n| &x.node == n))
        .filter(|x| p.get("selector").is_none_or(|s| selected(&x.labels, s)))
        .collect();
    if !wanted.is_empty() {
        for w in &wanted {
            if !pods.iter().any(|x| &x.name == w) {
                eprintln!("Error from server (NotFound): pods \"{w}\" not found");
                return 1;
            }
        }
        pods.retain(|x| wanted.contains(&x.name));
    }
    match output {
        "json" => {
            print_json(
                pods.iter().map(|x| workloads::pod_json(x, &st)).collect(),
                wanted.len(),
            );
        }
        "name" => {
            for x in &pods {
                println!("pod/{}", x.name);
            }
        }
        _ => {
            if pods.is_empty() {
                no_resources(&ns);
                return 0;
            }
            let mut rows = Vec::new();
            let mut header = Vec::new();
            if ns.is_none() {
                header.push("NAMESPACE");
            }
            header.extend(["NAME", "READY", "STATUS", "RESTARTS", "AGE"]);
            if output == "wide" {
                header.extend(["IP", "NODE", "NOMINATED NODE", "READINESS GATES"]);
            }
            rows.push(header.into_iter().map(String::from).collect::<Vec<_>>());
            for x in &pods {
                let mut r = Vec::new();
                if ns.is_none() {
                    r.push(x.namespace.clone());
                }
                r.extend([
                    x.name.clone(),
                    if x.running { "1/1" } else { "0/1" }.to_string(),
                    if x.running { "Running" } else { "Pending" }.to_string(),
                    "0".to_string(),
                    clock::human_duration(now - x.created),
                ]);
                if output == "wide" {
                    let node = if x.node.is_empty() { "<none>" } else { &x.node };
                    r.extend([
                        "<none>".to_string(),
                        node.to_string(),
                        "<none>".to_string(),
                        "<none>".to_string(),
                    ]);
                }
                rows.push(r);
            }
            print!("{}", tabwrite(&rows, 0, 3));
        }
    }
    0
}

pub(super) fn get_pdbs(ctx: &Ctx, p: &Parsed) -> u8 {
    let output = p.get("output").unwrap_or("");
    if !matches!(output, "" | "json" | "name") {
        return err(&format!("unable to match a printer suitable for the output format {output:?}; the lab's simulated kubectl prints PodDisruptionBudgets as json, name and tables"));
    }
    ctx.host.pause(Op::Kubectl);
    let st = match ctx.connect() {
        Ok(s) => s,
        Err(c) => return c,
    };
    let now = clock::now();
    let ns = namespace(p);
    let wanted = names(p);
    let mut pdbs: Vec<&workloads::Pdb> = st
        .pdbs
        .iter()
        .filter(|b| ns.as_ref().is_none_or(|n| &b.namespace == n))
        .collect();
    pdbs.sort_by(|a, b| a.namespace.cmp(&b.namespace).then(a.name.cmp(&b.name)));
    if !wanted.is_empty() {
        for w in &wanted {
            if !pdbs.iter().any(|b| &b.name == w) {
                eprintln!(
                    "Error from server (NotFound): poddisruptionbudgets.policy \"{w}\" not found"
                );
                return 1;
            }
        }
        pdbs.retain(|b| wanted.contains(&b.name));
    }
    match output {
        "json" => {
            print_json(
                pdbs.iter()
                    .map(|b| workloads::pdb_json(b, &st, now))
                    .collect(),
                wanted.len(),
            );
        }
        "name" => {
            for b in &pdbs {
                println!("poddisruptionbudget.policy/{}", b.name);
            }
        }
        _ => {
            if pdbs.is_empty() {
                no_resources(&ns);
                return 0;
            }
            let mut header = Vec::new();
            if ns.is_none() {
                header.push("NAMESPACE");
            }
            header.extend([
                "NAME",
                "MIN AVAILABLE",
                "MAX UNAVAILABLE",
                "ALLOWED DISRUPTIONS",
                "AGE",
            ]);
            let mut rows = vec![header.into_iter().map(String::from).collect::<Vec<_>>()];
            for b in &pdbs {
                let mut r = Vec::new();
                if ns.is_none() {
                    r.push(b.namespace.clone());
                }
                r.extend([
                    b.name.clone(),
                    b.min_available.clone().unwrap_or_else(|| "N/A".into()),
                    b.max_unavailable.clone().unwrap_or_else(|| "N/A".into()),
                    b.status(&st, now).disruptions_allowed.to_string(),
                    clock::human_duration(now - b.created),
                ]);
                rows.push(r);
            }
            print!("{}", tabwrite(&rows, 0, 3));
        }
    }
    0
}

/// `kubectl annotate node N k=v k2-` (`--overwrite` to change a value).
pub(super) fn annotate(ctx: &Ctx, p: &Parsed) -> u8 {
    let (node, specs) = match node_and_updates(&p.positional) {
        Ok(x) => x,
        Err(m) => return err(&m),
    };
    if specs.is_empty() {
        return err("at least one annotation update is required");
    }
    let mut add = Vec::new();
    let mut remove = Vec::new();
    for s in specs {
        if let Some(k) = s.strip_suffix('-') {
            remove.push(k.to_string());
        } else if let Some((k, v)) = s.split_once('=') {
            if !valid_label_key(k) {
                return err(&format!("invalid annotation spec: {s}"));
            }
            add.push((k.to_string(), v.to_string()));
        } else {
            return err(&format!("invalid annotation spec: {s}"));
        }
    }
    let overwrite = p.on("overwrite");
    ctx.host.pause(Op::Kubectl);
    if let Err(c) = ctx.connect_admin("patch", &node) {
        return c;
    }
    let r = state::update(&ctx.host.lab_dir, |s| -> Result<(), String> {
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
                    n.annotations
                        .get(k)
                        .filter(|cur| *cur != v)
                        .map(|cur| format!("'{k}' already has a value ({cur})"))
                })
                .collect();
            if !clashes.is_empty() {
                return Err(format!(
                    "error: --overwrite is false but found the following declared annotation(s): {}",
                    clashes.join("; ")
                ));
            }
        }
        let before = n.annotations.clone();
        for k in &remove {
            n.annotations.remove(k);
        }
        for (k, v) in &add {
            n.annotations.insert(k.clone(), v.clone());
        }
        if n.annotations != before {
            n.resource_version = rv;
        }
        Ok(())
    });
    match r {
        Ok(Ok(())) => {
            println!("node/{node} annotated");
            0
        }
        Ok(Err(m)) => {
            eprintln!("{m}");
            1
        }
        Err(e) => state_err(&e),
    }
}
