//! `kubectl get pods` and `kubectl get pdb` (`-A`, `-n`, `-o json|name`,
//! `-l`, `--field-selector spec.nodeName=N`, tables).

use super::err;
use super::request::Ctx;
use crate::sim::clock;
use crate::sim::flags::Parsed;
use crate::sim::latency::Op;
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

/// How `kubectl get` prints one namespaced kind; [`list`] does the rest.
struct Printer<'a, T> {
    /// The kind in a NotFound error (`pods "x" not found`).
    resource: &'static str,
    /// `-o name`'s prefix (`pod/x`).
    prefix: &'static str,
    /// The table's columns after NAMESPACE.
    columns: Vec<&'static str>,
    name: fn(&T) -> &str,
    namespace: fn(&T) -> &str,
    json: Render<'a, T, Value>,
    /// The table's cells after NAMESPACE.
    row: Render<'a, T, Vec<String>>,
}

type Render<'a, T, Out> = Box<dyn Fn(&T) -> Out + 'a>;

/// `kubectl get KIND [NAME...]` over `objs` (sorted): the namespace
/// (`-n`, `-A`), the names asked for, then json, name or a table.
fn list<T>(objs: Vec<T>, p: &Parsed, output: &str, printer: Printer<T>) -> u8 {
    let ns = namespace(p);
    let wanted = names(p);
    let mut objs: Vec<T> = objs
        .into_iter()
        .filter(|x| ns.as_ref().is_none_or(|n| (printer.namespace)(x) == n))
        .collect();
    if !wanted.is_empty() {
        for w in &wanted {
            if !objs.iter().any(|x| (printer.name)(x) == w) {
                eprintln!(
                    "Error from server (NotFound): {} \"{w}\" not found",
                    printer.resource
                );
                return 1;
            }
        }
        objs.retain(|x| wanted.iter().any(|w| (printer.name)(x) == w));
    }
    match output {
        "json" => print_json(
            objs.iter().map(|x| (printer.json)(x)).collect(),
            wanted.len(),
        ),
        "name" => {
            for x in &objs {
                println!("{}/{}", printer.prefix, (printer.name)(x));
            }
        }
        _ => {
            if objs.is_empty() {
                no_resources(&ns);
                return 0;
            }
            let all = ns.is_none();
            let header = all
                .then_some("NAMESPACE")
                .into_iter()
                .chain(printer.columns.iter().copied())
                .map(String::from)
                .collect();
            let mut rows = vec![header];
            for x in &objs {
                let namespace = all.then(|| (printer.namespace)(x).to_string());
                rows.push(namespace.into_iter().chain((printer.row)(x)).collect());
            }
            print!("{}", tabwrite(&rows, 0, 3));
        }
    }
    0
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
    let pods: Vec<ListedPod> = workloads::list(&ctx.host.lab_dir, &st, now)
        .into_iter()
        .filter(|x| node_field.as_ref().is_none_or(|n| &x.node == n))
        .filter(|x| p.get("selector").is_none_or(|s| selected(&x.labels, s)))
        .collect();
    let wide = output == "wide";
    let mut columns = vec!["NAME", "READY", "STATUS", "RESTARTS", "AGE"];
    if wide {
        columns.extend(["IP", "NODE", "NOMINATED NODE", "READINESS GATES"]);
    }
    let printer = Printer {
        resource: "pods",
        prefix: "pod",
        columns,
        name: |x: &ListedPod| &x.name,
        namespace: |x: &ListedPod| &x.namespace,
        json: Box::new(|x: &ListedPod| workloads::pod_json(x, &st)),
        row: Box::new(|x: &ListedPod| {
            let mut r = vec![
                x.name.clone(),
                if x.running { "1/1" } else { "0/1" }.to_string(),
                if x.running { "Running" } else { "Pending" }.to_string(),
                "0".to_string(),
                clock::human_duration(now - x.created),
            ];
            if wide {
                let node = if x.node.is_empty() { "<none>" } else { &x.node };
                r.extend([
                    "<none>".to_string(),
                    node.to_string(),
                    "<none>".to_string(),
                    "<none>".to_string(),
                ]);
            }
            r
        }),
    };
    list(pods, p, output, printer)
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
    let mut pdbs: Vec<&workloads::Pdb> = st.pdbs.iter().collect();
    pdbs.sort_by(|a, b| a.namespace.cmp(&b.namespace).then(a.name.cmp(&b.name)));
    let printer = Printer {
        resource: "poddisruptionbudgets.policy",
        prefix: "poddisruptionbudget.policy",
        columns: vec![
            "NAME",
            "MIN AVAILABLE",
            "MAX UNAVAILABLE",
            "ALLOWED DISRUPTIONS",
            "AGE",
        ],
        name: |b: &&workloads::Pdb| &b.name,
        namespace: |b: &&workloads::Pdb| &b.namespace,
        json: Box::new(|b: &&workloads::Pdb| workloads::pdb_json(b, &st, now)),
        row: Box::new(|b: &&workloads::Pdb| {
            vec![
                b.name.clone(),
                b.min_available.clone().unwrap_or_else(|| "N/A".into()),
                b.max_unavailable.clone().unwrap_or_else(|| "N/A".into()),
                b.status(&st, now).disruptions_allowed.to_string(),
                clock::human_duration(now - b.created),
            ]
        }),
    };
    list(pdbs, p, output, printer)
}
