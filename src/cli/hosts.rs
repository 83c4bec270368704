//! `gt observe`, `gt status`, `gt exec` (issue 4).

use super::{exit, Context};
use crate::facts::observe::{observe as observe_live, runtime, ObserveOptions};
use crate::facts::{Observed, ReadyStatus};
use crate::spec::{Node, Spec};
use crate::transport::{
    shell_join, Cmd, Hosts, OutputLine, Stream, TransportError, TransportOptions,
};
use clap::Args;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// How hosts are observed: shared by observe, status and plan.
#[derive(Debug, Args, Clone)]
pub struct ObserveFlags {
    /// At most this many hosts at once.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
    pub parallelism: u16,
    /// Deadline of each host's probe (a hanging host becomes a fact after it).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

impl ObserveFlags {
    pub fn options(&self) -> ObserveOptions {
        ObserveOptions {
            parallelism: self.parallelism as usize,
            timeout: self.timeout,
            transport: TransportOptions::default(),
        }
    }
}

#[derive(Debug, Args)]
pub struct ObserveArgs {
    /// Write the facts JSON here instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub observe: ObserveFlags,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// A JSON array instead of the table, one object per node: name, in_config,
    /// role, address, arch, joined, ready ("True"/"False"/"Unknown"/null when
    /// not in the cluster), ready_reason, kubelet_version, unreachable (the
    /// reason, or null), drift (the reasons, empty when in sync).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub observe: ObserveFlags,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// A node, a group (k8s_cluster, k8s_control_plane, k8s_worker, or a node's own) or `all`.
    pub target: String,
    /// The command, after `--`. Several words are each shell-quoted; a single
    /// word is a shell command line as it is (`gt exec all -- 'df -h | tail -1'`).
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
    /// At most this many hosts at once.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
    pub parallelism: u16,
    /// Deadline of the command on each host.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Print each host's output together, in file order, once all are done
    /// (instead of lines as they come).
    #[arg(long)]
    pub group_output: bool,
}

/// Prints why gt could not observe; the exit code.
fn observe_or_report(spec: &Spec, opts: &ObserveOptions) -> Result<Observed, u8> {
    observe_live(spec, opts).map_err(|e| {
        eprintln!("error: {e}");
        exit::ERROR
    })
}

pub fn observe(ctx: &Context, a: ObserveArgs) -> u8 {
    let spec = match ctx.load_spec() {
        Ok(s) => s,
        Err(code) => return code,
    };
    let observed = match observe_or_report(&spec, &a.observe.options()) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let json = observed.to_json();
    match &a.out {
        Some(path) => {
            if let Err(e) = std::fs::write(path, format!("{json}\n")) {
                eprintln!("error: cannot write the facts to {}: {e}", path.display());
                return exit::ERROR;
            }
        }
        None => println!("{json}"),
    }
    let unreachable: Vec<&str> = observed
        .hosts
        .iter()
        .filter(|(_, h)| !h.is_reachable())
        .map(|(n, _)| n.as_str())
        .collect();
    eprintln!(
        "observed {} hosts: {} reachable, {} unreachable{}",
        observed.hosts.len(),
        observed.hosts.len() - unreachable.len(),
        unreachable.len(),
        if unreachable.is_empty() {
            String::new()
        } else {
            format!(" ({})", unreachable.join(", "))
        }
    );
    exit::OK
}

/// One row of `gt status` (and one object of `gt status --json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusRow {
    pub name: String,
    /// The node is in cluster.toml (false: a Node of the cluster only).
    pub in_config: bool,
    /// `control-plane` / `worker`; for nodes not in the file, from their labels.
    pub role: String,
    /// The address in cluster.toml, or the Node's InternalIP.
    pub address: String,
    /// Observed architecture (host probe, else the Node object).
    pub arch: Option<String>,
    /// A Node object of this name is in the cluster.
    pub joined: bool,
    pub ready: Option<ReadyStatus>,
    pub ready_reason: Option<String>,
    pub kubelet_version: Option<String>,
    pub unreachable: Option<String>,
    pub drift: Vec<String>,
    /// `state = "absent"` in cluster.toml.
    pub absent: bool,
}

/// The rows in file order, then Nodes of the cluster that the file lacks.
pub fn status_rows(
    spec: &Spec,
    observed: &Observed,
    drift: &BTreeMap<String, Vec<String>>,
) -> Vec<StatusRow> {
    let mut rows: Vec<StatusRow> = spec
        .nodes
        .iter()
        .map(|n| {
            let name = n.name.as_str();
            let host = observed.hosts.get(name);
            let node = observed.cluster.nodes.get(name);
            StatusRow {
                name: name.to_string(),
                in_config: true,
                role: n.role.to_string(),
                address: n.address.to_string(),
                arch: host
                    .and_then(|h| h.arch.clone())
                    .or_else(|| node.and_then(|k| k.arch.clone())),
                joined: node.is_some(),
                ready: node.map(|k| k.ready),
                ready_reason: node.and_then(|k| k.ready_reason.clone()),
                kubelet_version: node
                    .and_then(|k| k.kubelet_version.clone())
                    .or_else(|| host.and_then(|h| h.kubelet_version.clone())),
                unreachable: host.and_then(|h| h.unreachable.clone()),
                drift: drift.get(name).cloned().unwrap_or_default(),
                absent: !n.is_present(),
            }
        })
        .collect();
    for (name, k) in &observed.cluster.nodes {
        if spec.node(name).is_some() {
            continue;
        }
        rows.push(StatusRow {
            name: name.clone(),
            in_config: false,
            role: if k.is_control_plane() {
                "control-plane".into()
            } else {
                "worker".into()
            },
            address: k.internal_ip.clone().unwrap_or_default(),
            arch: k.arch.clone(),
            joined: true,
            ready: Some(k.ready),
            ready_reason: k.ready_reason.clone(),
            kubelet_version: k.kubelet_version.clone(),
            unreachable: None,
            drift: drift.get(name).cloned().unwrap_or_default(),
            absent: false,
        });
    }
    rows
}

/// The table, like `kubectl get nodes -o wide`, with a footer that explains
/// every mark: drift reasons, unreachable hosts, the API server.
pub fn status_table(rows: &[StatusRow], observed: &Observed) -> String {
    let header = [
        "NAME", "ROLE", "ADDRESS", "ARCH", "JOINED", "READY", "KUBELET", "DRIFT",
    ];
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            let ready = match (&r.ready, &r.unreachable) {
                (Some(ReadyStatus::True), _) => "Ready".to_string(),
                (Some(ReadyStatus::False), _) => match &r.ready_reason {
                    Some(why) => format!("NotReady ({why})"),
                    None => "NotReady".to_string(),
                },
                (Some(ReadyStatus::Unknown), _) => "Unknown".to_string(),
                (None, _) => "-".to_string(),
            };
            let joined = match (r.joined, &r.unreachable) {
                (true, _) => "yes",
                (false, Some(_)) => "?",
                (false, None) => "no",
            };
            let mut role = r.role.clone();
            if r.absent {
                role.push_str(" (absent)");
            }
            if !r.in_config {
                role.push_str(" (not in file)");
            }
            [
                r.name.clone(),
                role,
                r.address.clone(),
                r.arch.clone().unwrap_or_else(|| "?".into()),
                joined.to_string(),
                ready,
                r.kubelet_version.clone().unwrap_or_else(|| "-".into()),
                if r.drift.is_empty() {
                    "-".to_string()
                } else {
                    format!("*{}", r.drift.len())
                },
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cols: &[String]| {
        let mut s = String::new();
        for (i, (c, w)) in cols.iter().zip(widths).enumerate() {
            if i + 1 == cols.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}   "));
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(&header.map(String::from));
    for row in &cells {
        out.push_str(&line(row));
    }
    out.push('\n');
    let api = &observed.cluster.api;
    match (&observed.cluster.observed_via, api.ready) {
        (Some(via), true) => out.push_str(&format!("API server: ready (read through {via})\n")),
        (Some(via), false) => out.push_str(&format!(
            "API server: NOT ready (read through {via}){}\n",
            if api.failed_checks.is_empty() {
                api.error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            } else {
                format!(": failed checks {}", api.failed_checks.join(", "))
            }
        )),
        (None, _) => {
            out.push_str(&format!(
            "API server: no cluster found (no control plane answered with an admin kubeconfig){}\n",
            api.error.as_deref().map(|e| format!("; last error {e}")).unwrap_or_default()
        ))
        }
    }
    let unreachable: Vec<&StatusRow> = rows.iter().filter(|r| r.unreachable.is_some()).collect();
    if !unreachable.is_empty() {
        out.push_str("\nUnreachable:\n");
        for r in unreachable {
            out.push_str(&format!(
                "  {}: {}\n",
                r.name,
                r.unreachable.as_deref().unwrap_or("")
            ));
        }
    }
    let drifted: Vec<&StatusRow> = rows.iter().filter(|r| !r.drift.is_empty()).collect();
    if drifted.is_empty() {
        out.push_str("\nDrift: none (DRIFT - : the node matches cluster.toml)\n");
    } else {
        out.push_str("\nDrift (DRIFT *N: N differences from cluster.toml):\n");
        for r in drifted {
            for reason in &r.drift {
                out.push_str(&format!("  {}: {reason}\n", r.name));
            }
        }
    }
    out
}

pub fn status(ctx: &Context, a: StatusArgs) -> u8 {
    let spec = match ctx.load_spec() {
        Ok(s) => s,
        Err(code) => return code,
    };
    let observed = match observe_or_report(&spec, &a.observe.options()) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let drift = crate::plan::drift_by_node(&spec, &observed);
    let rows = status_rows(&spec, &observed, &drift);
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&rows).expect("rows serialise")
        );
    } else {
        print!("{}", status_table(&rows, &observed));
    }
    exit::OK
}

/// The nodes a target names, or an error that lists the valid targets.
pub fn select_target<'a>(spec: &'a Spec, target: &str) -> Result<Vec<&'a Node>, String> {
    let nodes = spec.select(target);
    if !nodes.is_empty() {
        return Ok(nodes);
    }
    let groups = spec.groups();
    let names: Vec<&str> = spec.nodes.iter().map(|n| n.name.as_str()).collect();
    let closest = groups
        .iter()
        .map(String::as_str)
        .chain(names.iter().copied())
        .chain(["all"])
        .map(|c| (strsim::levenshtein(c, target), c))
        .filter(|(d, _)| *d <= 3)
        .min();
    Err(format!(
        "no node or group named {target:?} in {}{}\n  groups: {}\n  nodes:  {}\n  or `all`",
        spec.source.display(),
        closest
            .map(|(_, c)| format!(" (did you mean {c:?}?)"))
            .unwrap_or_default(),
        groups.join(", "),
        names.join(", ")
    ))
}

/// The shell command line of `gt exec`'s words.
pub fn exec_command_line(words: &[String]) -> String {
    match words {
        [one] => one.clone(),
        many => shell_join(many),
    }
}

/// How one host's run ended, for the summary.
enum Outcome {
    Ok,
    Exit(i32),
    Error(TransportError),
}

pub fn exec(ctx: &Context, a: ExecArgs) -> u8 {
    let spec = match ctx.load_spec() {
        Ok(s) => s,
        Err(code) => return code,
    };
    let targets = match select_target(&spec, &a.target) {
        Ok(t) => t,
        Err(msg) => {
            eprintln!("error: {msg}");
            return exit::ERROR;
        }
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::ERROR;
        }
    };
    let hosts = match Hosts::new(targets.iter().copied(), &TransportOptions::default()) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::ERROR;
        }
    };
    let cmd = Cmd::new(exec_command_line(&a.command)).timeout(a.timeout);
    let width = targets
        .iter()
        .map(|n| n.name.as_str().len())
        .max()
        .unwrap_or(0);
    let outcomes = rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<OutputLine>();
        let group = a.group_output;
        let printer = tokio::spawn(async move {
            let mut held: BTreeMap<String, Vec<OutputLine>> = BTreeMap::new();
            while let Some(l) = rx.recv().await {
                if group {
                    held.entry(l.host.clone()).or_default().push(l);
                } else {
                    print_line(&l, width);
                }
            }
            held
        });
        let permits = tokio::sync::Semaphore::new(a.parallelism as usize);
        let runs = futures_util::future::join_all(targets.iter().map(|node| {
            let (hosts, cmd, tx, permits) = (&hosts, &cmd, tx.clone(), &permits);
            async move {
                let _permit = permits.acquire().await.expect("never closed");
                let name = node.name.as_str();
                let result = match hosts.get(name).await {
                    Ok(h) => h
                        .run(cmd, Some(&tx))
                        .await
                        .and_then(|o| o.check_installed(name, cmd)),
                    Err(e) => Err(e),
                };
                let outcome = match result {
                    Ok(o) if o.success() => Outcome::Ok,
                    Ok(o) => Outcome::Exit(o.code),
                    Err(e) => {
                        // The error reads as one more line of the host's output.
                        let _ = tx.send(OutputLine {
                            host: name.to_string(),
                            stream: Stream::Stderr,
                            line: format!("error: {}", e.reason()),
                        });
                        Outcome::Error(e)
                    }
                };
                (name.to_string(), outcome)
            }
        }));
        let outcomes = runs.await;
        hosts.close().await;
        drop(tx);
        let mut held = printer.await.unwrap_or_default();
        for node in &targets {
            for l in held.remove(node.name.as_str()).unwrap_or_default() {
                print_line(&l, width);
            }
        }
        outcomes
    });
    let failed: Vec<String> = outcomes
        .iter()
        .filter_map(|(name, o)| match o {
            Outcome::Ok => None,
            Outcome::Exit(code) => Some(format!("{name}: exit {code}")),
            Outcome::Error(TransportError::CommandNotFound { command, .. }) => {
                Some(format!("{name}: {command} not installed"))
            }
            Outcome::Error(TransportError::CommandTimeout { after, .. }) => {
                Some(format!("{name}: timed out after {after}"))
            }
            Outcome::Error(_) => Some(format!("{name}: unreachable")),
        })
        .collect();
    let total = outcomes.len();
    eprintln!(
        "{total} host{}: {} ok, {} failed{}",
        if total == 1 { "" } else { "s" },
        total - failed.len(),
        failed.len(),
        if failed.is_empty() {
            String::new()
        } else {
            format!(" ({})", failed.join("; "))
        }
    );
    if failed.is_empty() {
        exit::OK
    } else {
        exit::ERROR
    }
}

fn print_line(l: &OutputLine, width: usize) {
    match l.stream {
        Stream::Stdout => println!("{:<width$} | {}", l.host, l.line),
        Stream::Stderr => eprintln!("{:<width$} | {}", l.host, l.line),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::{ClusterFacts, HostFacts, NodeFacts};
    use std::path::Path;

    const SPEC: &str = r#"
[cluster]
name = "goldentooth"
kubernetes_version = "1.32"
endpoint = "10.4.0.10:6443"
pod_cidr = "192.168.0.0/16"
service_cidr = "172.16.0.0/20"
[cluster.cni]
name = "calico"
manifest = "https://example.invalid/calico.yaml"
[defaults]
arch = "arm64"
[nodes.bettley]
role = "control-plane"
address = "10.4.0.11"
[nodes.fenn]
role = "worker"
address = "10.4.0.15"
groups = ["ceph"]
[nodes.velaryon]
role = "worker"
address = "10.4.1.10"
arch = "amd64"
"#;

    fn spec() -> Spec {
        crate::spec::load_str(SPEC, Path::new("cluster.toml")).expect("valid")
    }

    fn observed() -> Observed {
        let mut o = Observed::empty();
        o.hosts.insert(
            "bettley".into(),
            HostFacts {
                arch: Some("arm64".into()),
                kubelet_version: Some("v1.32.4".into()),
                admin_conf: true,
                ..Default::default()
            },
        );
        o.hosts.insert(
            "fenn".into(),
            HostFacts::unreachable("connection refused by 10.4.0.15:22 after 0.0 s"),
        );
        o.hosts.insert(
            "velaryon".into(),
            HostFacts {
                arch: Some("amd64".into()),
                ..Default::default()
            },
        );
        let ready = |r| NodeFacts {
            ready: r,
            kubelet_version: Some("v1.32.4".into()),
            ..Default::default()
        };
        let mut stray = ready(ReadyStatus::False);
        stray.ready_reason = Some("NodeStatusUnknown".into());
        stray.internal_ip = Some("10.4.0.99".into());
        o.cluster = ClusterFacts {
            observed_via: Some("bettley".into()),
            ca_pin: None,
            api: crate::facts::ApiReadiness {
                ready: true,
                ..Default::default()
            },
            nodes: [
                ("bettley".to_string(), ready(ReadyStatus::True)),
                ("stray".to_string(), stray),
            ]
            .into_iter()
            .collect(),
            ..Default::default()
        };
        o
    }

    #[test]
    fn status_lists_file_nodes_in_order_then_cluster_only_nodes() {
        let drift = BTreeMap::from([("velaryon".to_string(), vec!["not joined".to_string()])]);
        let rows = status_rows(&spec(), &observed(), &drift);
        assert_eq!(
            rows.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            vec!["bettley", "fenn", "velaryon", "stray"]
        );
        let table = status_table(&rows, &observed());
        let expected = "\
NAME       ROLE                   ADDRESS     ARCH    JOINED   READY                          KUBELET   DRIFT
bettley    control-plane          10.4.0.11   arm64   yes      Ready                          v1.32.4   -
fenn       worker                 10.4.0.15   ?       ?        -                              -         -
velaryon   worker                 10.4.1.10   amd64   no       -                              -         *1
stray      worker (not in file)   10.4.0.99   ?       yes      NotReady (NodeStatusUnknown)   v1.32.4   -

API server: ready (read through bettley)

Unreachable:
  fenn: connection refused by 10.4.0.15:22 after 0.0 s

Drift (DRIFT *N: N differences from cluster.toml):
  velaryon: not joined
";
        assert_eq!(table, expected);
    }

    #[test]
    fn status_json_is_an_array_of_documented_objects() {
        let rows = status_rows(&spec(), &observed(), &BTreeMap::new());
        let v: serde_json::Value = serde_json::to_value(&rows).unwrap();
        let fenn = &v[1];
        assert_eq!(fenn["name"], "fenn");
        assert_eq!(fenn["in_config"], true);
        assert_eq!(fenn["joined"], false);
        assert_eq!(fenn["ready"], serde_json::Value::Null);
        assert!(fenn["unreachable"]
            .as_str()
            .unwrap()
            .starts_with("connection refused"));
        assert_eq!(v[0]["ready"], "True");
        assert_eq!(v[0]["drift"], serde_json::json!([]));
    }

    #[test]
    fn exec_targets_are_nodes_groups_or_all() {
        let s = spec();
        let names = |t: &str| -> Vec<String> {
            select_target(&s, t)
                .unwrap()
                .iter()
                .map(|n| n.name.to_string())
                .collect()
        };
        assert_eq!(names("k8s_worker"), vec!["fenn", "velaryon"]);
        assert_eq!(names("ceph"), vec!["fenn"]);
        assert_eq!(names("bettley"), vec!["bettley"]);
        assert_eq!(names("all").len(), 3);
    }

    #[test]
    fn an_unknown_target_lists_the_valid_ones_and_suggests_the_closest() {
        let e = select_target(&spec(), "k8s_workers").unwrap_err();
        assert!(e.contains("(did you mean \"k8s_worker\"?)"), "{e}");
        assert!(
            e.contains("groups: ceph, k8s_cluster, k8s_control_plane, k8s_worker"),
            "{e}"
        );
        assert!(e.contains("nodes:  bettley, fenn, velaryon"), "{e}");
    }

    #[test]
    fn exec_words_are_quoted_and_a_single_word_is_a_command_line() {
        let w = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            exec_command_line(&w(&["systemctl", "status", "kubelet"])),
            "systemctl status kubelet"
        );
        assert_eq!(
            exec_command_line(&w(&["echo", "a b", "$HOME"])),
            "echo 'a b' '$HOME'"
        );
        assert_eq!(
            exec_command_line(&w(&["df -h | tail -1"])),
            "df -h | tail -1"
        );
    }
}
