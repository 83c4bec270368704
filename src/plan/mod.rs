//! Diff Spec × Observed into resource changes and a DAG of steps. A pure
//! function: the same inputs give the same plan, byte for byte.

mod diff;
pub mod drift;
mod graph;
pub mod saved;

pub use graph::{StepGraph, StepId};

use crate::facts::Observed;
use crate::spec::{NodeName, Role, Spec};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// What the user asked for beyond the file.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Remove Nodes that are in the cluster but not in cluster.toml.
    pub prune: bool,
    /// Nodes that may be reset and rejoined although they belong to another cluster.
    pub replace: BTreeSet<String>,
}

/// A computed plan: the changes a user reviews, the steps apply walks, and
/// what gt noticed but will not change.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub cluster: String,
    pub changes: Vec<Change>,
    #[serde(skip)]
    pub graph: StepGraph,
    pub warnings: Vec<Warning>,
}

impl Plan {
    /// THE predicate behind "No changes." and `--detailed-exitcode`.
    pub fn has_changes(&self) -> bool {
        !self.changes.is_empty()
    }

    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.changes {
            match c.action {
                Action::Create => s.add += 1,
                Action::Update => s.change += 1,
                Action::Delete => s.destroy += 1,
                Action::Replace => {
                    s.add += 1;
                    s.destroy += 1;
                }
            }
        }
        s
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
}

/// Terraform's four actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Delete,
    Replace,
}

impl Action {
    /// `+`, `~`, `-`, `-/+`.
    pub fn symbol(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update => "~",
            Action::Delete => "-",
            Action::Replace => "-/+",
        }
    }
}

/// The resources gt manages.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "type", content = "name", rename_all = "lowercase")]
pub enum Resource {
    Cluster(String),
    Node(String),
}

impl Resource {
    /// Terraform-style address: `cluster.goldentooth`, `node.fenn`.
    pub fn address(&self) -> String {
        match self {
            Resource::Cluster(n) => format!("cluster.{n}"),
            Resource::Node(n) => format!("node.{n}"),
        }
    }
}

/// One resource-level change, with its reason and what it sets.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub resource: Resource,
    pub action: Action,
    /// Why, in words: "not in the cluster", "labels differ from cluster.toml".
    pub reason: String,
    /// For nodes: the role it has (or will have).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Attributes shown for a create/replace (`address`, `arch`, ...), in display order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<(String, String)>,
    /// Labels: observed → desired (only managed keys).
    #[serde(skip_serializing_if = "SetDiff::is_empty")]
    pub labels: SetDiff,
    /// Taints: observed → desired (only managed keys).
    #[serde(skip_serializing_if = "SetDiff::is_empty")]
    pub taints: SetDiff,
    /// Steps that carry this change out, in order (ids of `Plan::graph`).
    pub steps: Vec<String>,
}

/// Before and after of a set rendered as sorted lines (`key=value`, taints as written).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct SetDiff {
    pub before: Vec<String>,
    pub after: Vec<String>,
}

impl SetDiff {
    pub fn is_empty(&self) -> bool {
        self.before == self.after
    }
    pub fn added(&self) -> Vec<&str> {
        self.after
            .iter()
            .filter(|a| !self.before.contains(a))
            .map(String::as_str)
            .collect()
    }
    pub fn removed(&self) -> Vec<&str> {
        self.before
            .iter()
            .filter(|b| !self.after.contains(b))
            .map(String::as_str)
            .collect()
    }
}

/// Something gt noticed that the plan does not change (it shows as drift).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Warning {
    /// The node concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    pub kind: WarningKind,
    pub message: String,
    /// The fact in a few words, without the node's name or advice (a `gt
    /// drift` line); not part of the plan's JSON.
    #[serde(skip)]
    pub short: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    Unreachable,
    NotReady,
    VersionSkew,
    ArchMismatch,
    OtherCluster,
    NotInFile,
    RoleMismatch,
    ApiNotReady,
}

/// What a step does. Internal steps (token, certs, gates) appear in the DAG,
/// not in the change list.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Step {
    /// `kubeadm init` on the bootstrap node.
    Init {
        node: NodeName,
    },
    /// `kubectl apply -f` of the CNI manifest.
    InstallCni,
    /// `kubeadm init phase upload-certs --upload-certs`: a fresh certificate key.
    UploadCerts,
    /// `kubeadm token create`: the one short-lived join token of this apply.
    MintToken,
    /// Wait until these control planes' API servers are ready, `/readyz`
    /// through the endpoint is ok, and their Nodes are Ready. One stands
    /// before each control-plane join (etcd grows by one healthy member at a
    /// time) and one before the worker joins.
    GateControlPlaneReady {
        before: GateBefore,
        control_planes: Vec<NodeName>,
    },
    JoinControlPlane {
        node: NodeName,
    },
    JoinWorker {
        node: NodeName,
    },
    /// `systemctl start kubelet` on a joined host whose kubelet is not
    /// active, then wait for its Node to be Ready.
    StartKubelet {
        node: NodeName,
    },
    /// `kubectl label` / `kubectl taint` with the admin kubeconfig.
    UpdateNode {
        node: String,
        labels: SetDiff,
        taints: SetDiff,
    },
    Drain {
        node: String,
    },
    DeleteNode {
        node: String,
    },
    /// `kubeadm reset -f` on the host.
    Reset {
        node: NodeName,
    },
    /// `kubeadm token delete`.
    RevokeToken,
}

impl Step {
    /// Stable id, unique in a plan: `join-worker/fenn`.
    pub fn id(&self) -> String {
        match self {
            Step::Init { node } => format!("init/{node}"),
            Step::InstallCni => "install-cni".into(),
            Step::UploadCerts => "upload-certs".into(),
            Step::MintToken => "mint-token".into(),
            Step::GateControlPlaneReady { before, .. } => match before {
                GateBefore::ControlPlaneJoin(n) => format!("gate/before-join-control-plane/{n}"),
                GateBefore::WorkerJoins => "gate/before-worker-joins".into(),
            },
            Step::JoinControlPlane { node } => format!("join-control-plane/{node}"),
            Step::JoinWorker { node } => format!("join-worker/{node}"),
            Step::StartKubelet { node } => format!("start-kubelet/{node}"),
            Step::UpdateNode { node, .. } => format!("update/{node}"),
            Step::Drain { node } => format!("drain/{node}"),
            Step::DeleteNode { node } => format!("delete-node/{node}"),
            Step::Reset { node } => format!("reset/{node}"),
            Step::RevokeToken => "revoke-token".into(),
        }
    }

    /// A short human label (graphs, progress lines). Never contains a secret.
    pub fn label(&self) -> String {
        match self {
            Step::Init { node } => format!("kubeadm init on {node}"),
            Step::InstallCni => "install CNI".into(),
            Step::UploadCerts => "upload control-plane certs".into(),
            Step::MintToken => "mint join token".into(),
            Step::GateControlPlaneReady { control_planes, .. } => format!(
                "gate: control plane ready ({})",
                control_planes
                    .iter()
                    .map(NodeName::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Step::JoinControlPlane { node } => format!("join control plane {node}"),
            Step::JoinWorker { node } => format!("join worker {node}"),
            Step::StartKubelet { node } => format!("start the kubelet on {node}"),
            Step::UpdateNode { node, .. } => format!("update labels/taints of {node}"),
            Step::Drain { node } => format!("drain {node}"),
            Step::DeleteNode { node } => format!("delete node {node}"),
            Step::Reset { node } => format!("kubeadm reset on {node}"),
            Step::RevokeToken => "revoke join token".into(),
        }
    }

    /// The host the step runs on, when it is bound to one (others run
    /// through a healthy control plane).
    pub fn host(&self) -> Option<&str> {
        match self {
            Step::Init { node }
            | Step::JoinControlPlane { node }
            | Step::JoinWorker { node }
            | Step::StartKubelet { node }
            | Step::Reset { node } => Some(node.as_str()),
            _ => None,
        }
    }
}

/// Which joins a readiness gate stands before.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GateBefore {
    /// The join of this control plane.
    ControlPlaneJoin(NodeName),
    /// Every worker join.
    WorkerJoins,
}

/// A plan that cannot be made; exit 1 with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("cannot plan: the bootstrap node {node} is unreachable ({reason}) and there is no cluster yet; make {node} reachable or name another control plane in [cluster] bootstrap")]
    BootstrapUnreachable { node: String, reason: String },
    #[error("cannot plan: {hosts} {have} a cluster's control-plane files, but no control plane's API answered ({error}); check the API servers (`gt exec k8s_control_plane -- systemctl status kubelet`) before planning")]
    ClusterUnobservable {
        hosts: String,
        have: &'static str,
        error: String,
    },
    #[error("refusing to remove {node}: etcd would have {healthy} healthy of {members} members, below its quorum of {quorum} ({members}/2+1); the control planes that would stay: {staying}; not healthy: {unhealthy}. To remove {node}: {advice}")]
    WouldBreakQuorum {
        node: String,
        healthy: usize,
        members: usize,
        quorum: usize,
        staying: String,
        unhealthy: String,
        advice: String,
    },
    #[error("refusing to remove {nodes}: no control plane would be left in the cluster, and none joins in this plan; keep at least one control plane (state = \"present\", reachable)")]
    LastControlPlane { nodes: String },
    #[error("--replace {node}: no node of that name in cluster.toml")]
    UnknownReplace { node: String },
    #[error("internal error: the plan's graph is invalid: {0}")]
    InvalidGraph(String),
}

/// Computes the plan.
pub fn plan(spec: &Spec, observed: &Observed, opts: &PlanOptions) -> Result<Plan, PlanError> {
    for r in &opts.replace {
        if spec.node(r).is_none() {
            return Err(PlanError::UnknownReplace { node: r.clone() });
        }
    }
    let d = diff::diff(spec, observed, opts)?;
    let graph = graph::build(&d).map_err(PlanError::InvalidGraph)?;
    let mut changes = d.changes;
    for c in &mut changes {
        c.steps.retain(|id| graph.contains(id));
    }
    Ok(Plan {
        cluster: spec.cluster.name.clone(),
        changes,
        graph,
        warnings: d.warnings,
    })
}

/// The plan of a full bootstrap from an empty cluster (`gt graph` without facts).
/// Every host is assumed reachable and clean: nothing is contacted.
pub fn bootstrap_plan(spec: &Spec) -> Result<Plan, PlanError> {
    let mut observed = Observed::empty();
    for n in &spec.nodes {
        observed
            .hosts
            .insert(n.name.to_string(), crate::facts::HostFacts::default());
    }
    plan(spec, &observed, &PlanOptions::default())
}

/// Per node name, what differs from cluster.toml, in few words (empty map:
/// in sync). `gt status`'s drift column: the same items `gt drift` reports.
pub fn drift_by_node(spec: &Spec, observed: &Observed) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let Ok(report) = drift::drift(spec, observed) else {
        return out;
    };
    for item in report.items {
        if let Some(n) = item.node {
            out.entry(n).or_default().push(item.message);
        }
    }
    out
}

#[cfg(test)]
mod tests;
