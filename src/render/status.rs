//! `gt status`: one row per node (file order, then Nodes the file lacks),
//! as a table or JSON, with the API server's readiness, the unreachable
//! hosts and the drift below.

use super::sanitize::{lines, sanitize};
use crate::facts::{Observed, ReadyStatus};
use crate::spec::Spec;
use serde::Serialize;
use std::collections::BTreeMap;

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
            // Each cell one line, as wide as it is shown.
            .map(|cell| sanitize(&cell).into_owned())
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
    // The footer quotes hosts and the API server (errors, reasons).
    lines(&out).into_owned()
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
    fn what_hosts_and_the_cluster_said_is_shown_escaped() {
        let mut o = observed();
        let evil = "\x1b[31m\x07";
        o.hosts.get_mut("velaryon").unwrap().arch = Some(format!("amd64{evil}"));
        o.hosts.insert(
            "fenn".into(),
            HostFacts::unreachable(format!("refused{evil}\nsecond line")),
        );
        let stray = o.cluster.nodes.remove("stray").unwrap();
        o.cluster.nodes.insert(format!("stray{evil}"), stray);
        let rows = status_rows(&spec(), &o, &BTreeMap::new());
        let table = status_table(&rows, &o);
        assert!(
            !table.contains('\x1b') && !table.contains('\x07'),
            "{table}"
        );
        assert!(table.contains("amd64\\x1b[31m\\x07   "), "{table}");
        assert!(
            table.contains("\nstray\\x1b[31m\\x07   worker (not in file)"),
            "{table}"
        );
        assert!(
            table.contains("  fenn: refused\\x1b[31m\\x07\nsecond line\n"),
            "{table}"
        );
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
}
