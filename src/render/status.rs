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
    /// A control plane's etcd member, when gt read etcd.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etcd: Option<EtcdRow>,
}

/// A control plane's etcd member as `gt status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EtcdRow {
    /// `leader`, `started`, `learner`, `unhealthy`, `absent` (no member), or
    /// `unknown` (etcd could not be read).
    pub state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub db_size: Option<u64>,
}

impl EtcdRow {
    fn of(observed: &Observed, name: &str, address: Option<&std::net::IpAddr>) -> EtcdRow {
        let Some(e) = observed.cluster.etcd.as_ref().filter(|e| e.readable()) else {
            return EtcdRow {
                state: "unknown",
                id: None,
                db_size: None,
            };
        };
        let Some(m) = e.member_of(name, address) else {
            return EtcdRow {
                state: "absent",
                id: None,
                db_size: None,
            };
        };
        let state = if m.learner {
            "learner"
        } else if !m.is_healthy() {
            "unhealthy"
        } else if m.leader {
            "leader"
        } else {
            "started"
        };
        EtcdRow {
            state,
            id: Some(m.id.clone()),
            db_size: m.db_size,
        }
    }

    fn cell(&self) -> String {
        match self.db_size {
            Some(b) => format!("{} {}", self.state, human_bytes(b)),
            None => self.state.to_string(),
        }
    }
}

/// etcd's quorum, leader and any member no row shows (sanitised: names come from etcd).
fn etcd_line(rows: &[StatusRow], e: &crate::facts::EtcdFacts) -> String {
    if let Some(error) = &e.error {
        return sanitize(&format!("etcd: could not be read: {error}")).into_owned() + "\n";
    }
    if let Some(why) = &e.unavailable {
        return sanitize(&format!("etcd: not read (no etcd pod ran etcdctl: {why})")).into_owned()
            + "\n";
    }
    let q = e.quorum();
    let mut s = format!(
        "etcd: {} of {} voting members healthy, quorum {} {}",
        q.healthy,
        q.voters,
        q.needed(),
        if q.holds() { "kept" } else { "LOST" }
    );
    if let Some(l) = e.leader() {
        s.push_str(&format!(", leader {}", l.label()));
    }
    if let Some(via) = &e.observed_via {
        s.push_str(&format!(" (read through etcd-{via})"));
    }
    let shown: Vec<&str> = rows
        .iter()
        .filter_map(|r| r.etcd.as_ref()?.id.as_deref())
        .collect();
    let others: Vec<String> = e
        .members
        .iter()
        .filter(|m| !shown.contains(&m.id.as_str()))
        .map(|m| format!("{} ({})", m.label(), m.id))
        .collect();
    if !others.is_empty() {
        s.push_str(&format!("; members of no node: {}", others.join(", ")));
    }
    sanitize(&s).into_owned() + "\n"
}

/// Bytes as etcd operators read them: `4.2 MB` (decimal, one decimal).
fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if b < 1000 {
        return format!("{b} B");
    }
    let mut v = b as f64 / 1000.0;
    let mut unit = 0;
    while v >= 1000.0 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
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
                etcd: (observed.cluster.etcd.is_some() && n.is_control_plane())
                    .then(|| EtcdRow::of(observed, name, Some(&n.address))),
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
            etcd: (observed.cluster.etcd.is_some() && k.is_control_plane())
                .then(|| EtcdRow::of(observed, name, None)),
        });
    }
    rows
}

/// The table, like `kubectl get nodes -o wide`, with a footer that explains
/// every mark: drift reasons, unreachable hosts, the API server.
pub fn status_table(rows: &[StatusRow], observed: &Observed) -> String {
    // The ETCD column only when gt read etcd (facts files from before it did lack it).
    let with_etcd = observed.cluster.etcd.is_some();
    let mut header = vec![
        "NAME", "ROLE", "ADDRESS", "ARCH", "JOINED", "READY", "KUBELET",
    ];
    if with_etcd {
        header.push("ETCD");
    }
    header.push("DRIFT");
    let cells: Vec<Vec<String>> = rows
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
            let mut row = vec![
                r.name.clone(),
                role,
                r.address.clone(),
                r.arch.clone().unwrap_or_else(|| "?".into()),
                joined.to_string(),
                ready,
                r.kubelet_version.clone().unwrap_or_else(|| "-".into()),
            ];
            if with_etcd {
                row.push(r.etcd.as_ref().map_or_else(|| "-".into(), EtcdRow::cell));
            }
            row.push(if r.drift.is_empty() {
                "-".to_string()
            } else {
                format!("*{}", r.drift.len())
            });
            // Each cell one line, as wide as it is shown.
            row.into_iter()
                .map(|cell| sanitize(&cell).into_owned())
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cols: &[String]| {
        let mut s = String::new();
        for (i, (c, w)) in cols.iter().zip(widths.iter().copied()).enumerate() {
            if i + 1 == cols.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}   "));
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(&header.iter().map(|h| h.to_string()).collect::<Vec<_>>());
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
    if let Some(e) = &observed.cluster.etcd {
        out.push_str(&etcd_line(rows, e));
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

    #[test]
    fn each_control_plane_shows_its_etcd_member_and_the_footer_the_quorum() {
        let mut o = observed();
        let plain = status_table(&status_rows(&spec(), &o, &BTreeMap::new()), &o);
        assert!(
            !plain.contains("ETCD"),
            "no column without etcd facts:\n{plain}"
        );
        let member = |id: &str, name: &str, healthy: bool| crate::facts::EtcdMember {
            id: id.into(),
            name: name.into(),
            healthy: Some(healthy),
            ..Default::default()
        };
        o.cluster.etcd = Some(crate::facts::EtcdFacts {
            observed_via: Some("bettley".into()),
            error: None,
            unavailable: None,
            members: vec![
                crate::facts::EtcdMember {
                    leader: true,
                    db_size: Some(4_194_304),
                    ..member("a1", "bettley", true)
                },
                member("ff", "eyrie", false),
            ],
        });
        let rows = status_rows(&spec(), &o, &BTreeMap::new());
        assert_eq!(
            rows[0].etcd,
            Some(EtcdRow {
                state: "leader",
                id: Some("a1".into()),
                db_size: Some(4_194_304)
            })
        );
        assert_eq!(rows[1].etcd, None, "a worker has no member");
        let table = status_table(&rows, &o);
        let header = table.lines().next().unwrap();
        assert!(header.contains("KUBELET   ETCD"), "{table}");
        assert!(
            table.lines().nth(1).unwrap().contains("leader 4.2 MB"),
            "{table}"
        );
        assert!(
            table.contains("etcd: 1 of 2 voting members healthy, quorum 2 LOST, leader bettley (read through etcd-bettley); members of no node: eyrie (ff)\n"),
            "{table}"
        );
        let json = serde_json::to_value(&rows).unwrap();
        assert_eq!(json[0]["etcd"]["state"], "leader");
        assert_eq!(json[0]["etcd"]["db_size"], 4_194_304);
        o.cluster.etcd = Some(crate::facts::EtcdFacts {
            error: Some("through etcd-bettley: context deadline exceeded (exit 1)".into()),
            ..Default::default()
        });
        let rows = status_rows(&spec(), &o, &BTreeMap::new());
        assert_eq!(rows[0].etcd.as_ref().unwrap().state, "unknown");
        assert!(status_table(&rows, &o).contains(
            "etcd: could not be read: through etcd-bettley: context deadline exceeded (exit 1)"
        ));
    }
}
