//! `kubectl get nodes` (tables, `-o json|name|wide`, selectors, `--watch`
//! with `-o name` or the name and Ready columns) and `kubectl get --raw` (the API server's health
//! endpoints).

use super::err;
use super::request::{node_args, print_conn_error, Ctx};
use crate::sim::api::{self, Answer, View};
use crate::sim::client::{self, ConnError};
use crate::sim::clock;
use crate::sim::flags::Parsed;
use crate::sim::latency::Op;
use crate::sim::pki;
use crate::sim::state::{self, NodeObj, State};
use crate::sim::table::tabwrite;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Go's `%q` for the messages kubectl quotes server bodies with.
fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub(super) fn get(ctx: &Ctx, p: &Parsed) -> u8 {
    if let Some(raw) = p.get("raw") {
        return get_raw(ctx, raw);
    }
    let kind = p
        .positional
        .first()
        .map(|f| f.split('/').next().unwrap_or(f));
    if kind.is_some_and(super::configmap::is_configmap_kind) {
        return super::configmap::get_configmap(ctx, p);
    }
    if kind.is_some_and(super::pods::is_pod_kind) {
        return super::pods::get_pods(ctx, p);
    }
    if kind.is_some_and(super::pods::is_pdb_kind) {
        return super::pods::get_pdbs(ctx, p);
    }
    let names = match node_args(&p.positional) {
        Ok(n) => n,
        Err(m) => return err(&m),
    };
    let output = p.get("output").unwrap_or("");
    if p.on("watch") || p.on("watch-only") {
        return watch(ctx, p, &names, output);
    }
    if !matches!(output, "" | "json" | "wide" | "name") {
        return err(&format!("unable to match a printer suitable for the output format {output:?}; the lab's simulated kubectl prints json, wide and name"));
    }
    ctx.host.pause(Op::Kubectl);
    let st = match ctx.connect() {
        Ok(s) => s,
        Err(c) => return c,
    };
    let now = clock::now();
    let mut nodes: Vec<&NodeObj> = Vec::new();
    for n in &names {
        match st.nodes.get(n) {
            Some(obj) => nodes.push(obj),
            None => {
                eprintln!("Error from server (NotFound): nodes \"{n}\" not found");
                return 1;
            }
        }
    }
    if names.is_empty() {
        nodes = st.nodes.values().collect();
        if let Some(sel) = p.get("selector") {
            nodes.retain(|n| matches_selector(n, sel));
        }
    }
    match output {
        "json" => {
            let objs: Vec<Value> = nodes.iter().map(|n| node_json(&st, n, now)).collect();
            let v = if names.len() == 1 {
                objs.into_iter().next().expect("one node")
            } else {
                json!({"apiVersion": "v1", "items": objs, "kind": "List", "metadata": {"resourceVersion": ""}})
            };
            println!("{}", serde_json::to_string_pretty(&v).expect("json"));
        }
        "name" => {
            for n in nodes {
                println!("node/{}", n.name);
            }
        }
        _ => {
            if nodes.is_empty() {
                eprintln!("No resources found");
                return 0;
            }
            print_table(&st, &nodes, p, output == "wide", now);
        }
    }
    0
}

/// How often the watch looks at the cluster: what a real API server sends
/// at once reaches the lab's watchers this much later at most.
const WATCH_TICK: std::time::Duration = std::time::Duration::from_millis(20);

/// The one custom-columns spec the lab's watch prints: each Node's name,
/// its Ready condition's status and its kubelet's version (`<none>` for
/// what it lacks), with `--output-watch-events` the event's type first (the
/// columns then read the event: `.type`, `.object....`).
pub const WATCH_READY_COLUMNS: &str = "custom-columns=NAME:.metadata.name,READY:.status.conditions[?(@.type==\"Ready\")].status,VERSION:.status.nodeInfo.kubeletVersion";
pub const WATCH_EVENT_READY_COLUMNS: &str = "custom-columns=EVENT:.type,NAME:.object.metadata.name,READY:.object.status.conditions[?(@.type==\"Ready\")].status,VERSION:.object.status.nodeInfo.kubeletVersion";

/// What one watch line shows of a Node, by the output asked for.
#[derive(Clone, Copy, PartialEq)]
enum WatchOutput {
    Name,
    /// Name, Ready status and kubelet version; `events`: the event's type first.
    Ready {
        events: bool,
    },
}

/// `kubectl get nodes --watch` (or `--watch-only`) with `-o name`, or with
/// `-o custom-columns` of the name, Ready status and kubelet version
/// (`WATCH_READY_COLUMNS`;
/// `WATCH_EVENT_READY_COLUMNS` with `--output-watch-events`): every Node as
/// listed (not with `--watch-only`; an `ADDED` event each), then one line
/// each time a Node is added, changed or deleted (`MODIFIED`, `DELETED`:
/// a deleted Node's line shows its last state, as kubectl prints the
/// deleted object), until the API server the watch's connection reached
/// stops (through the endpoint too: the load balancer does not move an open
/// connection) or nobody reads (SIGPIPE's exit). Real kubectl 1.32 ends a
/// watch whose connection breaks as one the server ended: exit 0, nothing
/// on stderr (seen against a server that cut the stream). A change is
/// anything a `get` would print differently, but the conditions' times.
/// Columns are padded to each line's own widths (kubectl's tabwriter pads
/// to widths it carries across lines; readers split on whitespace).
fn watch(ctx: &Ctx, p: &Parsed, names: &[String], output: &str) -> u8 {
    use std::io::Write;
    let events = p.on("output-watch-events");
    let shape = match output {
        "name" if !events => WatchOutput::Name,
        o if o == WATCH_READY_COLUMNS && !events => WatchOutput::Ready { events },
        o if o == WATCH_EVENT_READY_COLUMNS && events => WatchOutput::Ready { events },
        _ => {
            return err(&format!(
                "the lab's simulated kubectl watches every Node with -o name, -o {WATCH_READY_COLUMNS:?} --no-headers, or --output-watch-events -o {WATCH_EVENT_READY_COLUMNS:?} --no-headers only"
            ))
        }
    };
    if !names.is_empty() || p.get("selector").is_some() {
        return err("the lab's simulated kubectl watches every Node, without names or selectors");
    }
    if matches!(shape, WatchOutput::Ready { .. }) && !p.on("no-headers") {
        return err("the lab's simulated kubectl watches custom columns with --no-headers only");
    }
    ctx.host.pause(Op::Kubectl);
    // Each Node's view (what tells a change) and its Ready and version columns.
    let mut seen: std::collections::BTreeMap<String, (String, String)> = Default::default();
    let mut first = true;
    let mut out = std::io::stdout().lock();
    let mut reached: Option<String> = None;
    let line = |event: &str, name: &str, columns: &str| match shape {
        WatchOutput::Name => format!("node/{name}\n"),
        WatchOutput::Ready { events } => {
            let mut cols = vec![];
            if events {
                cols.push(event);
            }
            cols.push(name);
            cols.extend(columns.split(' '));
            let mut l = cols
                .iter()
                .map(|c| format!("{c:<width$}", width = c.len() + 3))
                .collect::<String>()
                .trim_end()
                .to_string();
            l.push('\n');
            l
        }
    };
    loop {
        if let Some(server) = &reached {
            if !ctx.server_running(server) {
                return 0;
            }
        }
        let st = match ctx.connect_server() {
            Ok((s, server)) => {
                reached.get_or_insert(server);
                s
            }
            Err(c) => return c,
        };
        let now = clock::now();
        let current: std::collections::BTreeMap<String, (String, String)> = st
            .nodes
            .values()
            .map(|n| {
                let view = watched_view(&st, n, now);
                let version = view["status"]["nodeInfo"]["kubeletVersion"]
                    .as_str()
                    .unwrap_or("<none>");
                let columns = format!("{} {version}", st.readiness(n, now).status);
                (n.name.clone(), (view.to_string(), columns))
            })
            .collect();
        let mut lines = String::new();
        for (name, (view, ready)) in &current {
            let event = match seen.get(name) {
                Some((v, _)) if v == view => continue,
                Some(_) => "MODIFIED",
                None => "ADDED",
            };
            if !(first && p.on("watch-only")) {
                lines.push_str(&line(event, name, ready));
            }
        }
        for (name, (_, ready)) in seen.iter().filter(|(n, _)| !current.contains_key(*n)) {
            lines.push_str(&line("DELETED", name, ready));
        }
        if !lines.is_empty() && (out.write_all(lines.as_bytes()).is_err() || out.flush().is_err()) {
            // kubectl dies of SIGPIPE: 128 + 13.
            return 141;
        }
        seen = current;
        first = false;
        std::thread::sleep(WATCH_TICK);
    }
}

/// A Node as a watch tells its changes apart: what `get -o json` prints,
/// but the conditions' times (the lab derives them from the clock; a real
/// kubelet posts heartbeats every few minutes at most, not at every look,
/// and a transition changes the condition's status too).
fn watched_view(st: &State, n: &NodeObj, now: f64) -> Value {
    let mut v = node_json(st, n, now);
    if let Some(conds) = v["status"]["conditions"].as_array_mut() {
        for c in conds {
            if let Some(o) = c.as_object_mut() {
                o.remove("lastHeartbeatTime");
                o.remove("lastTransitionTime");
            }
        }
    }
    v
}

/// kubectl's node table (`-o wide`, `--show-labels`, `--no-headers`).
fn print_table(st: &State, nodes: &[&NodeObj], p: &Parsed, wide: bool, now: f64) {
    let mut rows = Vec::new();
    if !p.on("no-headers") {
        let mut h = vec!["NAME", "STATUS", "ROLES", "AGE", "VERSION"];
        if wide {
            h.extend([
                "INTERNAL-IP",
                "EXTERNAL-IP",
                "OS-IMAGE",
                "KERNEL-VERSION",
                "CONTAINER-RUNTIME",
            ]);
        }
        if p.on("show-labels") {
            h.push("LABELS");
        }
        rows.push(h.into_iter().map(String::from).collect());
    }
    for n in nodes.iter().copied() {
        let r = st.readiness(n, now);
        let mut status = match r.status {
            "True" => "Ready",
            "False" => "NotReady",
            _ => "NotReady",
        }
        .to_string();
        if n.unschedulable {
            status.push_str(",SchedulingDisabled");
        }
        let mut row = vec![
            n.name.clone(),
            status,
            roles(n),
            clock::human_duration(now - n.created),
            n.kubelet_version.clone(),
        ];
        if wide {
            row.extend([
                n.internal_ip.clone(),
                "<none>".into(),
                OS_IMAGE.into(),
                crate::sim::host::kernel_release(&n.arch).into(),
                CONTAINER_RUNTIME.into(),
            ]);
        }
        if p.on("show-labels") {
            row.push(
                n.labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(","),
            );
        }
        rows.push(row);
    }
    print!("{}", tabwrite(&rows, 6, 3));
}

fn matches_selector(n: &NodeObj, sel: &str) -> bool {
    sel.split(',').all(|term| {
        let term = term.trim();
        if let Some((k, v)) = term.split_once("!=") {
            n.labels.get(k).map(String::as_str) != Some(v)
        } else if let Some((k, v)) = term.split_once('=') {
            n.labels.get(k.trim_end_matches('=')).map(String::as_str) == Some(v)
        } else if let Some(k) = term.strip_prefix('!') {
            !n.labels.contains_key(k)
        } else {
            n.labels.contains_key(term)
        }
    })
}

const OS_IMAGE: &str = "Debian GNU/Linux 12 (bookworm)";
const CONTAINER_RUNTIME: &str = "containerd://1.7.24";

fn roles(n: &NodeObj) -> String {
    let mut r: Vec<&str> = n
        .labels
        .keys()
        .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/"))
        .filter(|r| !r.is_empty())
        .collect();
    if let Some(role) = n.labels.get("kubernetes.io/role") {
        r.push(role);
    }
    r.sort();
    r.dedup();
    if r.is_empty() {
        "<none>".into()
    } else {
        r.join(",")
    }
}

/// Taints as the API server shows them: the stored ones plus those the node
/// lifecycle controller adds for cordoned, NotReady and unreachable nodes.
fn effective_taints(st: &State, n: &NodeObj, now: f64) -> Vec<Value> {
    let mut out: Vec<Value> = n
        .taints
        .iter()
        .map(|t| {
            let mut v = json!({"effect": t.effect, "key": t.key});
            if let Some(val) = &t.value {
                v["value"] = json!(val);
            }
            v
        })
        .collect();
    let since = clock::rfc3339(n.created);
    match st.readiness(n, now).status {
        "False" => out.push(json!({"effect": "NoSchedule", "key": "node.kubernetes.io/not-ready"})),
        "Unknown" => {
            out.push(json!({"effect": "NoSchedule", "key": "node.kubernetes.io/unreachable", "timeAdded": since}));
            out.push(json!({"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "timeAdded": since}));
        }
        _ => {}
    }
    if n.unschedulable {
        out.push(json!({"effect": "NoSchedule", "key": "node.kubernetes.io/unschedulable", "timeAdded": since}));
    }
    out
}

fn node_json(st: &State, n: &NodeObj, now: f64) -> Value {
    let r = st.readiness(n, now);
    let heartbeat = clock::rfc3339(now - 7.0);
    let created = clock::rfc3339(n.created);
    let ready_since = clock::rfc3339(
        n.network_ready_at
            .filter(|t| *t <= now)
            .unwrap_or(n.created),
    );
    let unknown = r.status == "Unknown";
    let pressure = |ty: &str, reason: &str, msg: &str| {
        if unknown {
            json!({"lastHeartbeatTime": heartbeat, "lastTransitionTime": heartbeat, "message": state::UNKNOWN_MESSAGE, "reason": "NodeStatusUnknown", "status": "Unknown", "type": ty})
        } else {
            json!({"lastHeartbeatTime": heartbeat, "lastTransitionTime": created, "message": msg, "reason": reason, "status": "False", "type": ty})
        }
    };
    let (cpu, mem) = if n.arch == "amd64" {
        ("16", "65756276Ki")
    } else {
        ("4", "7998736Ki")
    };
    let mut spec = json!({"taints": effective_taints(st, n, now)});
    if let Some(c) = &n.pod_cidr {
        spec["podCIDR"] = json!(c);
        spec["podCIDRs"] = json!([c]);
    }
    if n.unschedulable {
        spec["unschedulable"] = json!(true);
    }
    if spec["taints"].as_array().is_some_and(|t| t.is_empty()) {
        spec.as_object_mut().expect("object").remove("taints");
    }
    let boot = hex_digest(&format!("boot{}", n.uid));
    let machine = hex_digest(&format!("machine{}", n.name));
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "annotations": n.annotations,
            "creationTimestamp": created,
            "labels": n.labels,
            "name": n.name,
            "resourceVersion": n.resource_version.max(1).to_string(),
            "uid": n.uid,
        },
        "spec": spec,
        "status": {
            "addresses": [
                {"address": n.internal_ip, "type": "InternalIP"},
                {"address": n.name, "type": "Hostname"},
            ],
            "allocatable": {"cpu": cpu, "ephemeral-storage": "56888916381", "hugepages-1Gi": "0", "hugepages-2Mi": "0", "memory": mem, "pods": "110"},
            "capacity": {"cpu": cpu, "ephemeral-storage": "61727720Ki", "hugepages-1Gi": "0", "hugepages-2Mi": "0", "memory": mem, "pods": "110"},
            "conditions": [
                pressure("MemoryPressure", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                pressure("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                pressure("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                {"lastHeartbeatTime": heartbeat, "lastTransitionTime": if r.status == "True" { ready_since } else { created.clone() }, "message": r.message, "reason": r.reason, "status": r.status, "type": "Ready"},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "images": [
                {"names": [format!("registry.k8s.io/kube-proxy:{}", n.kubelet_version)], "sizeBytes": 26_800_000},
                {"names": ["registry.k8s.io/pause:3.10"], "sizeBytes": 268_000},
            ],
            "nodeInfo": {
                "architecture": n.arch,
                "bootID": uuid_from_hex(&boot),
                "containerRuntimeVersion": CONTAINER_RUNTIME,
                "kernelVersion": crate::sim::host::kernel_release(&n.arch),
                "kubeProxyVersion": n.kubelet_version,
                "kubeletVersion": n.kubelet_version,
                "machineID": &machine[..32],
                "operatingSystem": "linux",
                "osImage": OS_IMAGE,
                "systemUUID": uuid_from_hex(&machine),
            },
        },
    })
}

fn hex_digest(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn uuid_from_hex(h: &str) -> String {
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn get_raw(ctx: &Ctx, raw: &str) -> u8 {
    ctx.host.pause(Op::Kubectl);
    let Some(address) = ctx.address() else {
        eprintln!("The connection to the server localhost:8080 was refused - did you specify the right host or port?");
        return 1;
    };
    let (path, query) = raw.split_once('?').unwrap_or((raw, ""));
    let verbose = query
        .split('&')
        .any(|q| q == "verbose" || q == "verbose=true" || q == "verbose=1");
    let answer = if ctx.host.topology.api_listeners {
        match api::http_get(&address, raw, ctx.request_timeout) {
            Ok((code, body)) => Answer::Http(code, body),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Answer::Refused,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                eprintln!("Unable to connect to the server: EOF");
                return 1;
            }
            Err(e) => {
                eprintln!("Unable to connect to the server: dial tcp {address}: {e}");
                return 1;
            }
        }
    } else {
        let st = match state::read_hosts(&ctx.host.lab_dir) {
            Ok(s) => s,
            Err(e) => return err(&e.to_string()),
        };
        let view = View {
            lab_dir: &ctx.host.lab_dir,
            state: &st,
            now: clock::now(),
        };
        let target = api::route(&ctx.host.topology, &address);
        match view.pick(&target) {
            None => Answer::Refused,
            Some(h) => {
                let ca = ctx.kubeconfig.as_ref().and_then(|k| k.ca_pem.as_deref());
                let ca_ok = match (ca, client::serving_ca(&ctx.host.lab_dir, &h)) {
                    (Some(ca), Some(serving)) => pki::pin(ca) == pki::pin(&serving),
                    _ => true,
                };
                if !ca_ok {
                    return print_conn_error(&ConnError::UnknownAuthority { address });
                }
                match path {
                    "/readyz" => view.health_endpoint(&h, "readyz", verbose),
                    "/livez" => view.health_endpoint(&h, "livez", verbose),
                    "/healthz" => view.health_endpoint(&h, "livez", false),
                    "/version" => {
                        let git_version = st
                            .cluster
                            .as_ref()
                            .map(|c| c.kubernetes_version.clone())
                            .unwrap_or_default();
                        let minor = crate::sim::versions::Version::parse(&git_version)
                            .map(|v| v.minor.to_string())
                            .unwrap_or_default();
                        Answer::Http(
                        200,
                        serde_json::to_string_pretty(&json!({
                            "major": "1", "minor": minor,
                            "gitVersion": git_version,
                            "platform": format!("linux/{}", ctx.host.topology.node(&h).map(|n| n.arch.clone()).unwrap_or_default()),
                        }))
                        .expect("json"),
                    )
                    }
                    _ => Answer::Http(404, "404 page not found\n".into()),
                }
            }
        }
    };
    match answer {
        Answer::Refused => print_conn_error(&ConnError::Refused { address }),
        Answer::Http(code, body) if (200..300).contains(&code) => {
            print!("{body}");
            0
        }
        Answer::Http(code, body) => {
            let msg = body.trim();
            let msg: String = msg.chars().take(2048).collect();
            match code {
                500 => eprintln!("Error from server (InternalError): an error on the server ({}) has prevented the request from succeeding", go_quote(&msg)),
                503 => eprintln!("Error from server (ServiceUnavailable): the server is currently unable to handle the request"),
                404 => eprintln!("Error from server (NotFound): the server could not find the requested resource"),
                403 => eprintln!("Error from server (Forbidden): {msg}"),
                _ => eprintln!("Error from server: an error on the server ({}) has prevented the request from succeeding", go_quote(&msg)),
            }
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_quote_escapes_like_percent_q() {
        assert_eq!(go_quote("a\n\"b\""), r#""a\n\"b\"""#);
    }
}
