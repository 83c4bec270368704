//! The simulated `kubectl`: get (nodes, `--raw` health endpoints), label,
//! taint, cordon, uncordon, drain, delete node, apply (the CNI), version.
//! Outputs and errors are kubectl 1.32's.

use super::api::{self, Answer, View};
use super::client::{self, ConnError};
use super::clock;
use super::files;
use super::flags::{self, boolean, string, Flag, Parsed};
use super::host::{self, Host};
use super::latency::Op;
use super::pki::{self, KubeconfigInfo};
use super::state::{self, NodeObj, State, Taint};
use super::table::tabwrite;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::time::Duration;

const GLOBAL: &[Flag] = &[
    string("kubeconfig"),
    string("server").short('s'),
    string("request-timeout"),
    string("context"),
    string("cluster"),
    string("user"),
    string("token"),
    string("namespace").short('n'),
    boolean("insecure-skip-tls-verify"),
    string("certificate-authority"),
    string("v").short('v'),
];

const ADMIN_USERS: &[&str] = &["kubernetes-admin", "kubernetes-super-admin"];

fn err(msg: &str) -> u8 {
    eprintln!("error: {msg}");
    1
}

/// kubectl's error for an unknown flag of `sub`.
fn flag_err(sub: &str, msg: &str) -> u8 {
    eprintln!("error: {msg}\nSee 'kubectl {sub} --help' for usage.");
    1
}

fn command_flags(sub: &str) -> Option<Vec<Flag>> {
    let specific: &[Flag] = match sub {
        "get" => &[
            string("output").short('o'),
            string("raw"),
            string("selector").short('l'),
            boolean("show-labels"),
            boolean("no-headers"),
            boolean("all-namespaces").short('A'),
            boolean("watch").short('w'),
            string("sort-by"),
        ],
        "label" => &[
            boolean("overwrite"),
            boolean("all"),
            string("selector").short('l'),
            string("dry-run"),
            string("output").short('o'),
            boolean("list"),
        ],
        "taint" => &[
            boolean("overwrite"),
            boolean("all"),
            string("selector").short('l'),
            string("dry-run"),
            string("output").short('o'),
        ],
        "drain" => &[
            boolean("ignore-daemonsets"),
            boolean("delete-emptydir-data"),
            boolean("delete-local-data"),
            boolean("force"),
            string("timeout"),
            string("grace-period"),
            boolean("disable-eviction"),
            string("pod-selector"),
            string("selector").short('l'),
            string("skip-wait-for-delete-timeout"),
            string("chunk-size"),
            string("dry-run"),
        ],
        "cordon" | "uncordon" => &[string("selector").short('l'), string("dry-run")],
        "delete" => &[
            boolean("wait"),
            string("grace-period"),
            boolean("force"),
            boolean("ignore-not-found"),
            string("timeout"),
            string("output").short('o'),
            string("filename").short('f'),
        ],
        "apply" => &[
            string("filename").short('f'),
            boolean("recursive").short('R'),
            boolean("server-side"),
            boolean("force-conflicts"),
            string("field-manager"),
            string("dry-run"),
            string("output").short('o'),
            boolean("validate"),
        ],
        "version" => &[boolean("client"), string("output").short('o')],
        _ => return None,
    };
    let mut v = specific.to_vec();
    v.extend_from_slice(GLOBAL);
    Some(v)
}

/// The subcommand: the first argument that is neither a flag nor a global flag's value.
fn find_subcommand(args: &[String]) -> Option<usize> {
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if !a.starts_with('-') {
            return Some(i);
        }
        let name = a.trim_start_matches('-').split('=').next().unwrap_or("");
        let takes_value = GLOBAL.iter().any(|f| {
            f.value && (f.long == name || (a.len() == 2 && f.short == name.chars().next()))
        });
        i += if takes_value && !a.contains('=') {
            2
        } else {
            1
        };
    }
    None
}

pub(crate) fn run(host: &Host, args: &[String]) -> u8 {
    let Some(pos) = find_subcommand(args) else {
        if let Err(e) = flags::parse(args, GLOBAL) {
            eprintln!("error: {e}\nSee 'kubectl --help' for usage.");
            return 1;
        }
        println!("kubectl controls the Kubernetes cluster manager.\n\nFind more information at: https://kubernetes.io/docs/reference/kubectl/");
        return 0;
    };
    let sub = args[pos].clone();
    let Some(spec) = command_flags(&sub) else {
        eprintln!("error: unknown command \"{sub}\" for \"kubectl\"");
        return 1;
    };
    let mut rest = args[..pos].to_vec();
    rest.extend_from_slice(&args[pos + 1..]);
    let p = match flags::parse(&rest, &spec) {
        Ok(p) => p,
        Err(e) => return flag_err(&sub, &e),
    };
    // An explicit --kubeconfig must exist (clientcmd's explicit-path rule),
    // unlike $KUBECONFIG and ~/.kube/config, whose absence means "no config".
    if let Some(path) = p.get("kubeconfig") {
        if sub != "version" && !std::path::Path::new(path).exists() {
            eprintln!("error: stat {path}: no such file or directory");
            return 1;
        }
    }
    let ctx = Ctx::new(host, &p);
    match sub.as_str() {
        "get" => get(&ctx, &p),
        "label" => label(&ctx, &p),
        "taint" => taint(&ctx, &p),
        "cordon" => cordon(&ctx, &p, true),
        "uncordon" => cordon(&ctx, &p, false),
        "drain" => drain(&ctx, &p),
        "delete" => delete(&ctx, &p),
        "apply" => apply(&ctx, &p),
        "version" => version(&ctx, &p),
        _ => unreachable!("command_flags knows every command"),
    }
}

/// Where kubectl sends requests and as whom.
struct Ctx<'a> {
    host: &'a Host,
    /// Server URL (`--server` wins over the kubeconfig's).
    server: Option<String>,
    kubeconfig: Option<KubeconfigInfo>,
    request_timeout: Duration,
}

impl<'a> Ctx<'a> {
    fn new(host: &'a Host, p: &Parsed) -> Ctx<'a> {
        let path = p
            .get("kubeconfig")
            .map(std::path::PathBuf::from)
            .or_else(|| {
                std::env::var_os("KUBECONFIG")
                    .filter(|v| !v.is_empty())
                    .map(|v| {
                        std::path::PathBuf::from(
                            v.to_string_lossy()
                                .split(':')
                                .next()
                                .unwrap_or("")
                                .to_string(),
                        )
                    })
            })
            .unwrap_or_else(|| host.path("/root/.kube/config"));
        let kubeconfig = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| pki::read_kubeconfig(&t));
        let server = p
            .get("server")
            .map(str::to_string)
            .or_else(|| kubeconfig.as_ref().map(|k| k.server.clone()));
        let request_timeout = p
            .get("request-timeout")
            .and_then(|t| clock::parse_go_duration(t).or_else(|| t.parse::<f64>().ok()))
            .filter(|s| *s > 0.0)
            .map(Duration::from_secs_f64)
            .unwrap_or(Duration::from_secs(30));
        Ctx {
            host,
            server,
            kubeconfig,
            request_timeout,
        }
    }

    /// The identity requests run as.
    fn user(&self) -> String {
        let Some(k) = &self.kubeconfig else {
            return "system:anonymous".into();
        };
        if k.user == "default-auth" {
            // kubelet.conf: the identity is in the rotating client certificate.
            if let Some(cn) = self
                .host
                .read(files::KUBELET_CLIENT_PEM)
                .and_then(|pem| pki::common_name(&pem))
            {
                return cn;
            }
        }
        k.user.clone()
    }

    fn is_admin(&self) -> bool {
        ADMIN_USERS.contains(&self.user().as_str())
    }

    fn address(&self) -> Option<String> {
        self.server.as_deref().map(client::address_of)
    }

    /// Connects and returns the state the serving API server sees, or prints
    /// kubectl's connection error.
    fn connect(&self) -> Result<State, u8> {
        let Some(server) = &self.server else {
            eprintln!("The connection to the server localhost:8080 was refused - did you specify the right host or port?");
            return Err(1);
        };
        let st = state::read(&self.host.lab_dir).map_err(|e| err(&e.to_string()))?;
        let view = View {
            lab_dir: &self.host.lab_dir,
            state: &st,
            now: clock::now(),
        };
        let ca = self.kubeconfig.as_ref().and_then(|k| k.ca_pem.as_deref());
        match client::connect(&view, &self.host.topology, server, ca) {
            Ok(_) => Ok(st),
            Err(e) => Err(print_conn_error(&e)),
        }
    }

    /// Connects for a write: the user must be allowed to change nodes.
    fn connect_admin(&self, verb: &str, node: &str) -> Result<State, u8> {
        let st = self.connect()?;
        if !self.is_admin() {
            let user = self.user();
            let scope = if user.starts_with("system:node:") {
                format!(
                    ": node \"{}\" is not allowed to modify node \"{node}\"",
                    user.trim_start_matches("system:node:")
                )
            } else {
                String::new()
            };
            eprintln!("Error from server (Forbidden): nodes \"{node}\" is forbidden: User \"{user}\" cannot {verb} resource \"nodes\" in API group \"\" at the cluster scope{scope}");
            return Err(1);
        }
        Ok(st)
    }
}

fn print_conn_error(e: &ConnError) -> u8 {
    match e {
        ConnError::Refused { address } => eprintln!(
            "The connection to the server {address} was refused - did you specify the right host or port?"
        ),
        ConnError::UnknownAuthority { .. } => eprintln!(
            "Unable to connect to the server: tls: failed to verify certificate: x509: certificate signed by unknown authority"
        ),
        ConnError::EtcdTimeout => eprintln!("Error from server: etcdserver: request timed out"),
    }
    1
}

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

/// Node names from `node N`, `nodes N M`, `node/N`.
fn node_args(positional: &[String]) -> Result<Vec<String>, String> {
    let Some(first) = positional.first() else {
        return Err("You must provide one or more resources by argument or filename.".into());
    };
    if let Some((kind, name)) = first.split_once('/') {
        if !is_node_kind(kind) {
            return Err(unsupported_kind(kind));
        }
        let mut names = vec![name.to_string()];
        for more in &positional[1..] {
            match more.split_once('/') {
                Some((k, n)) if is_node_kind(k) => names.push(n.to_string()),
                _ => return Err("there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'kubectl get resource/<resource_name>' instead of 'kubectl get resource resource/<resource_name>'".into()),
            }
        }
        return Ok(names);
    }
    if !is_node_kind(first) {
        return Err(unsupported_kind(first));
    }
    Ok(positional[1..].to_vec())
}

fn is_node_kind(k: &str) -> bool {
    matches!(k, "node" | "nodes" | "no")
}

fn unsupported_kind(k: &str) -> String {
    format!("the lab's simulated kubectl serves only nodes (asked for {k:?})")
}

// ---------------------------------------------------------------------------
// get

fn get(ctx: &Ctx, p: &Parsed) -> u8 {
    if let Some(raw) = p.get("raw") {
        return get_raw(ctx, raw);
    }
    let names = match node_args(&p.positional) {
        Ok(n) => n,
        Err(m) => return err(&m),
    };
    let output = p.get("output").unwrap_or("");
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
            let wide = output == "wide";
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
            for n in nodes {
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
                        super::host::kernel_release(&n.arch).into(),
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
    }
    0
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
                "kernelVersion": super::host::kernel_release(&n.arch),
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
        let st = match state::read(&ctx.host.lab_dir) {
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
                let ca_ok = match (ca, st.cluster.as_ref()) {
                    (Some(ca), Some(c)) => pki::pin(ca) == pki::pin(&c.ca_cert_pem),
                    _ => true,
                };
                if !ca_ok {
                    return print_conn_error(&ConnError::UnknownAuthority { address });
                }
                match path {
                    "/readyz" => view.health_endpoint(&h, "readyz", verbose),
                    "/livez" => view.health_endpoint(&h, "livez", verbose),
                    "/healthz" => view.health_endpoint(&h, "livez", false),
                    "/version" => Answer::Http(
                        200,
                        serde_json::to_string_pretty(&json!({
                            "major": "1", "minor": "32",
                            "gitVersion": st.cluster.as_ref().map(|c| c.kubernetes_version.clone()).unwrap_or_default(),
                            "platform": format!("linux/{}", ctx.host.topology.node(&h).map(|n| n.arch.clone()).unwrap_or_default()),
                        }))
                        .expect("json"),
                    ),
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

// ---------------------------------------------------------------------------
// label / taint

fn valid_label_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars().last().is_some_and(|c| c.is_ascii_alphanumeric())
}

fn valid_label_key(k: &str) -> bool {
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

fn label(ctx: &Ctx, p: &Parsed) -> u8 {
    let pos = &p.positional;
    if pos.len() < 2 {
        return err(
            "one or more resources must be specified as <resource> <name> or <resource>/<name>",
        );
    }
    let (node, specs) = if let Some((kind, name)) = pos[0].split_once('/') {
        if !is_node_kind(kind) {
            return err(&unsupported_kind(kind));
        }
        (name.to_string(), &pos[1..])
    } else {
        if !is_node_kind(&pos[0]) {
            return err(&unsupported_kind(&pos[0]));
        }
        (pos[1].clone(), &pos[2..])
    };
    if specs.is_empty() {
        return err("at least one label update is required");
    }
    let mut add = Vec::new();
    let mut remove = Vec::new();
    for s in specs {
        if let Some(k) = s.strip_suffix('-') {
            remove.push(k.to_string());
        } else if let Some((k, v)) = s.split_once('=') {
            if !valid_label_key(k) {
                return err(&format!("invalid label spec: {s}"));
            }
            if !v.is_empty() && !valid_label_name(v) {
                return err(&format!("invalid label value: {s:?}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"));
            }
            add.push((k.to_string(), v.to_string()));
        } else {
            return err(&format!("invalid label spec: {s}"));
        }
    }
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
        Err(e) => err(&e.to_string()),
    }
}

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

fn taint(ctx: &Ctx, p: &Parsed) -> u8 {
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
        Err(e) => err(&e.to_string()),
    }
}

// ---------------------------------------------------------------------------
// cordon / uncordon / drain / delete

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
        Err(e) => Err(err(&e.to_string())),
    }
}

fn cordon(ctx: &Ctx, p: &Parsed, on: bool) -> u8 {
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

fn drain(ctx: &Ctx, p: &Parsed) -> u8 {
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
            Err(e) => return err(&e.to_string()),
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

fn delete(ctx: &Ctx, p: &Parsed) -> u8 {
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
            Err(e) => return err(&e.to_string()),
        }
    }
    0
}

// ---------------------------------------------------------------------------
// apply

/// The objects of Calico v3.29's manifest, as `kubectl apply` lists them.
const CALICO_OBJECTS: &[&str] = &[
    "poddisruptionbudget.policy/calico-kube-controllers",
    "serviceaccount/calico-kube-controllers",
    "serviceaccount/calico-node",
    "serviceaccount/calico-cni-plugin",
    "configmap/calico-config",
    "customresourcedefinition.apiextensions.k8s.io/bgpconfigurations.crd.projectcalico.org",
    "customresourcedefinition.apiextensions.k8s.io/bgpfilters.crd.projectcalico.org",
    "customresourcedefinition.apiextensions.k8s.io/bgppeers.crd.projectcalico.org",
    "customresourcedefinition.apiextensions.k8s.io/blockaffinities.crd.projectcalico.org",
    "customresourcedefinition.apiextensions.k8s.io/caliconodestatuses.crd.projectcalico.org",
    "customresourcedefinition.apiextensions.k8s.io/clusterinformations.crd.projectcalico.org",
    "customresourcedefinition.apiextensions.k8s.io/felixconfigurations.crd.projectcalico.org",
    "customresourcedefinition.apiextensions.k8s.io/globalnetworkpolicies.crd.projectcalico.org",
    "customresourcedefinition.apiextensions.k8s.io/globalnetworksets.crd.projectcalico.org",
    "customresourcedefinition.apiextensions.k8s.io/hostendpoints.crd.projectcalico.org",
    "customresourcedefinition.apiextensions.k8s.io/ipamblocks.crd.projectcalico.org",
    "customresourcedefinition.apiextensions.k8s.io/ipamconfigs.crd.projectcalico.org",
    "customresourcedefinition.apiextensions.k8s.io/ipamhandles.crd.projectcalico.org",
    "customresourcedefinition.apiextensions.k8s.io/ippools.crd.projectcalico.org",
    "customresourcedefinition.apiextensions.k8s.io/ipreservations.crd.projectcalico.org",
    "customresourcedefinition.apiextensions.k8s.io/kubecontrollersconfigurations.crd.projectcalico.org",
    "customresourcedefinition.apiextensions.k8s.io/networkpolicies.crd.projectcalico.org",
    "customresourcedefinition.apiextensions.k8s.io/networksets.crd.projectcalico.org",
    "customresourcedefinition.apiextensions.k8s.io/tiers.crd.projectcalico.org",
    "customresourcedefinition.apiextensions.k8s.io/adminnetworkpolicies.policy.networking.k8s.io",
    "clusterrole.rbac.authorization.k8s.io/calico-kube-controllers",
    "clusterrole.rbac.authorization.k8s.io/calico-node",
    "clusterrole.rbac.authorization.k8s.io/calico-cni-plugin",
    "clusterrolebinding.rbac.authorization.k8s.io/calico-kube-controllers",
    "clusterrolebinding.rbac.authorization.k8s.io/calico-node",
    "clusterrolebinding.rbac.authorization.k8s.io/calico-cni-plugin",
    "daemonset.apps/calico-node",
    "deployment.apps/calico-kube-controllers",
];

/// `kind/name` of each object in a manifest file (YAML or JSON), read loosely:
/// each document's top-level `kind:` and its metadata's `name:`.
fn manifest_objects(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for d in text.split("\n---") {
        if let Ok(v) = serde_json::from_str::<Value>(d) {
            if let (Some(k), Some(n)) = (v["kind"].as_str(), v["metadata"]["name"].as_str()) {
                out.push(format!("{}/{n}", k.to_lowercase()));
            }
            continue;
        }
        let kind = d
            .lines()
            .find_map(|l| l.strip_prefix("kind:"))
            .map(|k| k.trim().to_lowercase());
        let mut in_meta = false;
        let mut name = None;
        for l in d.lines() {
            if l.starts_with("metadata:") {
                in_meta = true;
            } else if in_meta && !l.starts_with(' ') && !l.trim().is_empty() {
                in_meta = false;
            } else if in_meta {
                if let Some(n) = l.trim_start().strip_prefix("name:") {
                    if l.len() - l.trim_start().len() == 2 {
                        name = Some(n.trim().trim_matches('"').to_string());
                    }
                }
            }
        }
        if let (Some(k), Some(n)) = (kind, name) {
            out.push(format!("{k}/{n}"));
        }
    }
    out
}

fn apply(ctx: &Ctx, p: &Parsed) -> u8 {
    let sources = p.values.get("filename").cloned().unwrap_or_default();
    if sources.is_empty() {
        return err("must specify one of -f and -k");
    }
    let mut objects = Vec::new();
    for src in &sources {
        if src.starts_with("https://") || src.starts_with("http://") {
            // The lab never fetches: a URL stands for the CNI manifest it names.
            objects.extend(CALICO_OBJECTS.iter().map(|s| s.to_string()));
        } else {
            let text = if src == "-" {
                host::read_stdin_to_end()
            } else {
                match std::fs::read_to_string(src) {
                    Ok(t) => t,
                    Err(_) => return err(&format!("the path {src:?} does not exist")),
                }
            };
            let found = manifest_objects(&text);
            if found.is_empty() {
                return err("no objects passed to apply");
            }
            objects.extend(found);
        }
    }
    ctx.host.pause(Op::Apply);
    if let Err(c) = ctx.connect_admin("create", "calico-node") {
        return c;
    }
    let now = clock::now();
    let cni_delay = ctx.host.latency(Op::CniReady);
    let manifest = sources.join(",");
    let first = state::update(&ctx.host.lab_dir, |s| {
        if s.cni.is_some() {
            return false;
        }
        s.cni = Some(state::Cni {
            manifest: manifest.clone(),
            applied_at: now,
        });
        for n in s.nodes.values_mut() {
            n.network_ready_at = Some(now + cni_delay);
        }
        s.start_coredns();
        true
    });
    let first = match first {
        Ok(f) => f,
        Err(e) => return err(&e.to_string()),
    };
    let verb = if first { "created" } else { "unchanged" };
    for o in objects {
        println!("{o} {verb}");
    }
    0
}

// ---------------------------------------------------------------------------
// version

fn version(ctx: &Ctx, p: &Parsed) -> u8 {
    ctx.host.pause(Op::Kubectl);
    let v = &ctx.host.node().kubernetes_version;
    println!("Client Version: {v}");
    println!("Kustomize Version: v5.5.0");
    if p.on("client") {
        return 0;
    }
    match ctx.connect() {
        Ok(st) => {
            let sv = st
                .cluster
                .map(|c| c.kubernetes_version)
                .unwrap_or_else(|| v.clone());
            println!("Server Version: {sv}");
            0
        }
        Err(c) => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_quote_escapes_like_percent_q() {
        assert_eq!(go_quote("a\n\"b\""), r#""a\n\"b\"""#);
    }

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

    #[test]
    fn manifest_objects_reads_yaml_kinds_and_names() {
        let y = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels:\n    name: x\n---\nkind: DaemonSet\nmetadata:\n  name: b\n";
        assert_eq!(manifest_objects(y), vec!["configmap/a", "daemonset/b"]);
    }
}
