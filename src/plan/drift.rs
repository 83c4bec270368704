//! Drift: every way the cluster differs from cluster.toml, one item each,
//! for `gt drift` (cron, Prometheus) and `gt status`. Read from the same diff
//! the plan is made of, so that drift and plan never disagree: whatever the
//! plan would change is drift, and so is everything it only warns about.

use super::diff::{self, Diff};
use super::*;
use std::collections::HashMap;

/// One way the cluster differs from the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DriftItem {
    /// The node concerned; `None` for the cluster itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<NodeName>,
    pub kind: DriftKind,
    /// The fact in a few words: `label goldentooth.io/storage missing (want ceph)`.
    pub message: String,
    /// The whole story, with what to do about it.
    pub detail: String,
}

/// What kind of difference (the `kind` label of `gt_drift_items`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    /// A node of the file is not in the cluster (or the cluster does not exist).
    Missing,
    /// A node is in the cluster but not in the file, or marked `state = "absent"`.
    Extra,
    Unreachable,
    /// The kubelet of a joined host is not running (apply starts it).
    Kubelet,
    NotReady,
    /// A managed label is missing, differs, or is not in the file.
    Label,
    /// A managed taint is missing or not in the file.
    Taint,
    /// The node's architecture is not the file's.
    Arch,
    /// The kubelet's version is not the file's kubernetes_version.
    Version,
    /// The node carries another cluster's CA.
    OtherCluster,
    /// A control plane in the cluster is a worker in the file, or the reverse.
    Role,
    /// An API server is not ready (one control plane's own, or through the endpoint).
    ApiNotReady,
    /// The pod network (CNI) is not installed.
    Cni,
    /// A managed host's packages, holds, container runtime or kernel
    /// settings differ from cluster.toml (one item per difference).
    Host,
    /// An etcd member no control plane owns, stuck as a learner, or unhealthy.
    EtcdMember,
    /// etcd has lost its quorum (or no control plane could read it).
    EtcdQuorum,
    /// The newest etcd backup is older than `[backup] max_age`, or there is none.
    Backup,
}

impl DriftKind {
    pub const ALL: [DriftKind; 17] = [
        DriftKind::Missing,
        DriftKind::Extra,
        DriftKind::Unreachable,
        DriftKind::Kubelet,
        DriftKind::NotReady,
        DriftKind::Label,
        DriftKind::Taint,
        DriftKind::Arch,
        DriftKind::Version,
        DriftKind::OtherCluster,
        DriftKind::Role,
        DriftKind::ApiNotReady,
        DriftKind::Cni,
        DriftKind::Host,
        DriftKind::EtcdMember,
        DriftKind::EtcdQuorum,
        DriftKind::Backup,
    ];

    /// The name in JSON and in metrics: `not_ready`.
    pub fn as_str(self) -> &'static str {
        match self {
            DriftKind::Missing => "missing",
            DriftKind::Extra => "extra",
            DriftKind::NotReady => "not_ready",
            DriftKind::Unreachable => "unreachable",
            DriftKind::Kubelet => "kubelet",
            DriftKind::Label => "label",
            DriftKind::Taint => "taint",
            DriftKind::Arch => "arch",
            DriftKind::Version => "version",
            DriftKind::OtherCluster => "other_cluster",
            DriftKind::Role => "role",
            DriftKind::ApiNotReady => "api_not_ready",
            DriftKind::Cni => "cni",
            DriftKind::Host => "host",
            DriftKind::EtcdMember => "etcd_member",
            DriftKind::EtcdQuorum => "etcd_quorum",
            DriftKind::Backup => "backup",
        }
    }

    /// `None` for what is a prediction about the plan, not a difference.
    fn of_warning(w: WarningKind) -> Option<DriftKind> {
        Some(match w {
            WarningKind::Unreachable => DriftKind::Unreachable,
            WarningKind::NotReady => DriftKind::NotReady,
            WarningKind::VersionSkew => DriftKind::Version,
            WarningKind::ArchMismatch => DriftKind::Arch,
            WarningKind::OtherCluster => DriftKind::OtherCluster,
            WarningKind::NotInFile => DriftKind::Extra,
            WarningKind::RoleMismatch => DriftKind::Role,
            WarningKind::ApiNotReady => DriftKind::ApiNotReady,
            WarningKind::EtcdMember => DriftKind::EtcdMember,
            WarningKind::EtcdQuorum => DriftKind::EtcdQuorum,
            WarningKind::Drain => return None,
        })
    }
}

/// A node's health, for `gt_node_ready` and the JSON's `nodes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeHealth {
    pub name: String,
    /// In cluster.toml (and not `state = "absent"`).
    pub in_config: bool,
    /// Its Node object says Ready=True.
    pub ready: bool,
    /// gt reached its host (false for nodes not in the file: gt has no address).
    pub reachable: bool,
    /// How many drift items name it.
    pub drift_items: usize,
}

/// Everything `gt drift` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DriftReport {
    pub cluster: String,
    /// Cluster-level items first, then nodes in file order, then nodes not in
    /// the file by name; within a node, by kind.
    pub items: Vec<DriftItem>,
    /// Nodes of the file in file order, then cluster nodes not in the file.
    pub nodes: Vec<NodeHealth>,
    /// The newest etcd backup on this machine, if any (filled in by the command).
    pub newest_backup: Option<NewestBackup>,
    /// The cluster (no node) and each node behind cluster.toml's
    /// kubernetes_version, with both versions (`gt_version_drift`).
    pub versions: Vec<VersionDrift>,
}

/// A version behind the file's: the cluster's (kubeadm-config) or a node's
/// kubelet, and the release the plan brings it to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionDrift {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<NodeName>,
    pub observed: String,
    pub wanted: String,
}

/// The newest etcd backup in `[backup] dir`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewestBackup {
    pub path: String,
    pub age_seconds: u64,
}

impl DriftReport {
    pub fn in_sync(&self) -> bool {
        self.items.is_empty()
    }

    /// Items per kind, every kind present (zeros included).
    pub fn by_kind(&self) -> Vec<(DriftKind, usize)> {
        DriftKind::ALL
            .iter()
            .map(|k| (*k, self.items.iter().filter(|i| i.kind == *k).count()))
            .collect()
    }

    /// Names of the nodes with drift, in report order.
    pub fn drifted_nodes(&self) -> Vec<&str> {
        let mut seen = std::collections::HashSet::new();
        self.items
            .iter()
            .filter_map(|i| i.node.as_ref().map(NodeName::as_str))
            .filter(|n| seen.insert(*n))
            .collect()
    }
}

/// The drift of `observed` against `spec`. Errors are those of observing:
/// no cluster to compare with (no control plane answered). A removal that
/// `gt plan` refuses (etcd's quorum) is still drift.
pub fn drift(spec: &Spec, observed: &Observed) -> Result<DriftReport, PlanError> {
    let d = match diff::differences(spec, observed, &PlanOptions::default()) {
        // etcd without quorum takes the API down with it: nothing else can
        // be compared, and that is the one thing to report.
        Err(PlanError::EtcdDown { why, api }) => {
            let message = format!("etcd has lost quorum: {why}");
            let items = vec![DriftItem {
                node: None,
                kind: DriftKind::EtcdQuorum,
                message,
                detail: PlanError::EtcdDown { why, api }.to_string(),
            }];
            let nodes = node_health(spec, observed, &items);
            return Ok(DriftReport {
                cluster: spec.cluster.name.clone(),
                items,
                nodes,
                newest_backup: None,
                versions: vec![],
            });
        }
        d => d?,
    };
    let mut items = items_of(&d);
    let versions = versions_of(&d);
    let file_order: HashMap<&str, usize> = spec
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.as_str(), i))
        .collect();
    let rank = |node: &Option<NodeName>| -> (usize, String) {
        match node {
            None => (0, String::new()),
            Some(n) => match file_order.get(n.as_str()) {
                Some(i) => (1 + i, String::new()),
                None => (usize::MAX, n.to_string()),
            },
        }
    };
    // Stable: the diff's order within a kind (labels sorted by key) is kept.
    items.sort_by_cached_key(|i| (rank(&i.node), i.kind));
    let nodes = node_health(spec, observed, &items);
    Ok(DriftReport {
        cluster: spec.cluster.name.clone(),
        items,
        nodes,
        newest_backup: None,
        versions,
    })
}

/// `observed -> wanted` of the version attributes of the upgrade's changes.
fn versions_of(d: &Diff) -> Vec<VersionDrift> {
    d.changes
        .iter()
        .filter_map(|c| {
            let node = match &c.resource {
                Resource::Node(n) => Some(n.clone()),
                Resource::Cluster(_) => None,
                _ => return None,
            };
            let (_, v) = c
                .attributes
                .iter()
                .find(|(k, _)| k == "kubernetes_version" || k == "kubelet_version")?;
            let (observed, wanted) = v.split_once(" -> ")?;
            Some(VersionDrift {
                node,
                observed: observed.to_string(),
                wanted: wanted.to_string(),
            })
        })
        .collect()
}

fn items_of(d: &Diff) -> Vec<DriftItem> {
    let mut items = Vec::new();
    for c in &d.changes {
        let node = match &c.resource {
            Resource::Node(n) | Resource::Host(n) => Some(n.clone()),
            Resource::Cluster(_) | Resource::EtcdMember(_) => None,
        };
        let item = |kind: DriftKind, message: String| DriftItem {
            node: node.clone(),
            kind,
            message,
            detail: c.reason.clone(),
        };
        match (&c.resource, c.action) {
            (Resource::Host(_), _) => {
                for h in &c.host {
                    items.push(item(DriftKind::Host, h.text.clone()));
                }
            }
            (Resource::EtcdMember(name), _) => items.push(item(
                DriftKind::EtcdMember,
                if c.reason.starts_with("state = \"absent\"") {
                    format!("etcd member {name} is still in etcd, and its node is state = \"absent\" in cluster.toml")
                } else {
                    format!("etcd member {name} has no control plane in cluster.toml or the cluster")
                },
            )),
            (Resource::Cluster(_), Action::Create) => items.push(item(
                DriftKind::Missing,
                "does not exist (no control plane has initialised it)".into(),
            )),
            (Resource::Cluster(_), _) if attribute(c, "kubernetes_version").is_some() => {
                let v = attribute(c, "kubernetes_version").unwrap_or_default();
                items.push(item(
                    DriftKind::Version,
                    format!("kubernetes version {v} (cluster.toml wants the newer)"),
                ))
            }
            (Resource::Cluster(_), _) => items.push(item(
                DriftKind::Cni,
                "pod network (CNI) not installed".into(),
            )),
            (Resource::Node(_), Action::Create) => {
                items.push(item(DriftKind::Missing, "not in the cluster".into()))
            }
            // A replace is planned only with --replace, which drift never passes:
            // what remains is a host with this cluster's files but no Node.
            (Resource::Node(_), Action::Replace) => items.push(item(
                DriftKind::Missing,
                "not in the cluster (its host has stale kubeadm state)".into(),
            )),
            (Resource::Node(_), Action::Delete) => items.push(item(
                DriftKind::Extra,
                "state = \"absent\" in cluster.toml but still in the cluster".into(),
            )),
            (Resource::Node(_), Action::Update) => {
                if c.attributes.iter().any(|(k, _)| k == "kubelet") {
                    items.push(item(
                        DriftKind::Kubelet,
                        "kubelet not active (gt apply starts it)".into(),
                    ));
                }
                if let Some(v) = attribute(c, "kubelet_version") {
                    items.push(item(
                        DriftKind::Version,
                        format!("kubelet {v} (between rungs of an upgrade, or behind cluster.toml)"),
                    ));
                }
                if attribute(c, "schedulable").is_some() {
                    items.push(item(
                        DriftKind::Version,
                        "cordoned by gt (an interrupted upgrade left it so; apply uncordons it)".into(),
                    ));
                }
                for message in label_items(&c.labels) {
                    items.push(item(DriftKind::Label, message));
                }
                for message in taint_items(&c.taints) {
                    items.push(item(DriftKind::Taint, message));
                }
            }
        }
    }
    for (w, kind) in d
        .warnings
        .iter()
        .filter_map(|w| Some((w, DriftKind::of_warning(w.kind)?)))
    {
        items.push(DriftItem {
            node: w.node.clone(),
            kind,
            message: w.short.clone(),
            detail: w.message.clone(),
        });
    }
    items
}

fn attribute<'c>(c: &'c Change, key: &str) -> Option<&'c str> {
    c.attributes
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// One message per label key that differs, sorted by key.
fn label_items(labels: &SetDiff<Label>) -> Vec<String> {
    let by_key = |set: &[Label]| -> BTreeMap<String, String> {
        set.iter()
            .map(|l| (l.key.to_string(), l.value.clone()))
            .collect()
    };
    let before = by_key(&labels.before);
    let after = by_key(&labels.after);
    let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    keys.into_iter()
        .filter_map(|k| match (before.get(k), after.get(k)) {
            (None, Some(want)) => Some(format!("label {k} missing (want {want})")),
            (Some(got), Some(want)) if got != want => {
                Some(format!("label {k} is {got} (want {want})"))
            }
            (Some(got), None) => Some(format!("label {k}={got} not in cluster.toml")),
            _ => None,
        })
        .collect()
}

/// One message per taint missing or not in the file.
fn taint_items(taints: &SetDiff<Taint>) -> Vec<String> {
    let mut out: Vec<String> = taints
        .added()
        .into_iter()
        .map(|t| format!("taint {t} missing"))
        .collect();
    out.extend(
        taints
            .removed()
            .into_iter()
            .map(|t| format!("taint {t} not in cluster.toml")),
    );
    out
}

fn node_health(spec: &Spec, observed: &Observed, items: &[DriftItem]) -> Vec<NodeHealth> {
    // Counted once: a cluster may have many Nodes, each with items.
    let mut per_node: HashMap<&str, usize> = HashMap::new();
    for n in items.iter().filter_map(|i| i.node.as_ref()) {
        *per_node.entry(n.as_str()).or_default() += 1;
    }
    let count = |name: &str| per_node.get(name).copied().unwrap_or(0);
    let ready = |name: &str| {
        observed
            .cluster
            .nodes
            .get(name)
            .is_some_and(|n| n.ready == crate::facts::ReadyStatus::True)
    };
    let mut out: Vec<NodeHealth> = spec
        .nodes
        .iter()
        .map(|n| {
            let name = n.name.as_str();
            NodeHealth {
                name: name.to_string(),
                in_config: n.is_present(),
                ready: ready(name),
                reachable: observed.hosts.get(name).is_some_and(|h| h.is_reachable()),
                drift_items: count(name),
            }
        })
        .collect();
    for name in observed.cluster.nodes.keys() {
        if spec.node(name).is_none() {
            out.push(NodeHealth {
                name: name.clone(),
                in_config: false,
                ready: ready(name),
                reachable: false,
                drift_items: count(name),
            });
        }
    }
    out
}
