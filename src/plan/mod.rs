//! Diff Spec × Observed into resource changes and a DAG of steps. A pure
//! function: the same inputs give the same plan, byte for byte.

mod backup;
mod cni;
mod diff;
mod document;
mod drains;
pub mod drift;
mod etcd;
mod graph;
pub mod host;
mod node_change;
pub mod restore;
mod rung_release;
pub mod saved;
mod seen;
mod step;
mod upgrade;

pub use document::{ChangeEntry, PlanDocument, SetChange, StepEntry, PLAN_FORMAT_VERSION};
pub use graph::{GraphError, StepGraph};
pub use host::{HostItem, HostWork};
pub use rung_release::RungRelease;
pub use step::{BadStepId, GateBefore, Step, StepId, UpgradeRole};

use crate::facts::Observed;
use crate::spec::{LabelKey, NodeName, Role, Spec, Taint};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// What the user asked for beyond the file.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Remove Nodes that are in the cluster but not in cluster.toml.
    pub prune: bool,
    /// Nodes that may be reset and rejoined although they belong to another cluster.
    pub replace: BTreeSet<String>,
    /// No etcd backup before a control-plane join or removal (`--no-backup`).
    pub no_backup: bool,
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
    /// Whether a step drains a node (the pods and budgets are then worth
    /// reading, for the drains' warnings).
    pub fn drains(&self) -> bool {
        self.graph
            .ordered()
            .iter()
            .any(|s| matches!(s, Step::Drain { .. } | Step::UpgradeNode { .. }))
    }

    /// THE predicate behind "No changes." and `--detailed-exitcode`.
    pub fn has_changes(&self) -> bool {
        !self.changes.is_empty()
    }

    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        // The cluster's version change is carried out by its nodes' upgrade
        // steps, each counted with its node: not counted twice.
        let carried_by_nodes = |c: &Change| {
            matches!(c.resource, Resource::Cluster(_))
                && !c.steps.is_empty()
                && c.steps.iter().all(|id| {
                    self.changes
                        .iter()
                        .any(|o| matches!(o.resource, Resource::Node(_)) && o.steps.contains(id))
                })
        };
        for c in self.changes.iter().filter(|c| !carried_by_nodes(c)) {
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

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
}

/// Terraform's four actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Delete,
    Replace,
}

impl Action {
    /// As plan JSON writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Replace => "replace",
        }
    }

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
    Node(NodeName),
    /// A node's host software and kernel settings.
    Host(NodeName),
    /// An etcd member no control plane owns, by its name (or hex ID when it has none).
    #[serde(rename = "etcd_member")]
    EtcdMember(String),
}

impl Resource {
    /// Terraform-style address: `cluster.goldentooth`, `node.fenn`.
    pub fn address(&self) -> String {
        format!("{}.{}", self.kind(), self.name())
    }

    /// `cluster`, `node` or `etcd_member`.
    pub fn kind(&self) -> &'static str {
        match self {
            Resource::Cluster(_) => "cluster",
            Resource::Node(_) => "node",
            Resource::Host(_) => "host",
            Resource::EtcdMember(_) => "etcd_member",
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Resource::Cluster(n) | Resource::EtcdMember(n) => n,
            Resource::Node(n) | Resource::Host(n) => n.as_str(),
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
    pub labels: SetDiff<Label>,
    /// Taints: observed → desired (only managed keys).
    #[serde(skip_serializing_if = "SetDiff::is_empty")]
    pub taints: SetDiff<Taint>,
    /// For hosts: one item per difference (`+ package kubelet 1.32.4-1.1 (held)`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub host: Vec<HostItem>,
    /// Steps that carry this change out, in order (ids of `Plan::graph`).
    pub steps: Vec<StepId>,
}

/// Before and after of a set of labels or taints (labels sorted as their
/// `key=value` lines sort, observed taints sorted, desired ones in file order).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SetDiff<T> {
    pub before: Vec<T>,
    pub after: Vec<T>,
}

impl<T> Default for SetDiff<T> {
    fn default() -> Self {
        SetDiff {
            before: vec![],
            after: vec![],
        }
    }
}

impl<T: PartialEq> SetDiff<T> {
    pub fn is_empty(&self) -> bool {
        self.before == self.after
    }
    pub fn added(&self) -> Vec<&T> {
        self.after
            .iter()
            .filter(|a| !self.before.contains(a))
            .collect()
    }
    pub fn removed(&self) -> Vec<&T> {
        self.before
            .iter()
            .filter(|b| !self.after.contains(b))
            .collect()
    }
}

/// One label, `key=value`: a key of cluster.toml's syntax and its value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Label {
    pub key: LabelKey,
    pub value: String,
}

impl Label {
    /// `None` when `key` is not a label key gt would accept in cluster.toml.
    pub fn new(key: &str, value: &str) -> Option<Label> {
        Some(Label {
            key: LabelKey::try_from(key.to_string()).ok()?,
            value: value.to_string(),
        })
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.key, self.value)
    }
}

/// Labels sort as their `key=value` lines do, which is the order the plan
/// shows them in (`a.b=x` before `a=x`).
impl Ord for Label {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let k = self.key.as_str().bytes().chain([b'=']);
        let ko = other.key.as_str().bytes().chain([b'=']);
        k.chain(self.value.bytes())
            .cmp(ko.chain(other.value.bytes()))
    }
}

impl PartialOrd for Label {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl TryFrom<String> for Label {
    type Error = String;
    fn try_from(s: String) -> Result<Label, String> {
        let (k, v) = s
            .split_once('=')
            .ok_or_else(|| format!("label {s:?} is not key=value"))?;
        Label::new(k, v).ok_or_else(|| format!("label {s:?}: bad key"))
    }
}

impl From<Label> for String {
    fn from(l: Label) -> String {
        l.to_string()
    }
}

/// Something gt noticed that the plan does not change (it shows as drift).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Warning {
    /// The node concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<NodeName>,
    pub kind: WarningKind,
    pub message: String,
    /// The fact in a few words, without the node's name or advice (a `gt
    /// drift` line); not part of the plan's JSON.
    #[serde(skip)]
    pub short: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
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
    /// An etcd member no control plane owns, one stuck as a learner, or unhealthy.
    EtcdMember,
    /// etcd has lost its quorum, or no control plane could read it.
    EtcdQuorum,
    /// What a drain of the plan would evict, and what would stop it (only
    /// when the plan drains nodes and the pods were read).
    Drain,
}

/// A plan that cannot be made; exit 1 with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("cannot plan: the bootstrap node {node} is unreachable ({reason}) and there is no cluster yet; make {node} reachable or name another control plane in [cluster] bootstrap")]
    BootstrapUnreachable { node: NodeName, reason: String },
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
    #[error("cannot plan: etcd has lost its quorum ({why}), so no API server could answer ({api}); bring a majority of etcd's members back (`gt exec k8s_control_plane -- crictl ps --name etcd`) or restore etcd from a snapshot, then plan again")]
    EtcdDown { why: String, api: String },
    #[error("refusing to {what}: {why}. etcd must have a healthy majority before gt changes its membership or joins a node; {advice}")]
    EtcdQuorumLost {
        what: String,
        why: String,
        advice: String,
    },
    #[error("refusing to remove {nodes}: no control plane would be left in the cluster, and none joins in this plan; keep at least one control plane (state = \"present\", reachable)")]
    LastControlPlane { nodes: String },
    #[error("refusing to prepare {node}: its memory cgroup is off, which kubeadm's preflight refuses; gt would add `{params}` to {file} and reboot {node}, and cluster.toml does not allow that. Add `allow_reboot = true` under [nodes.{node}.host] ({config}:{line}) or [defaults.host], or add `{params}` to the line of {file} on {node} and reboot it yourself")]
    RebootNotAllowed {
        node: String,
        file: String,
        params: String,
        config: String,
        line: usize,
    },
    #[error("refusing to downgrade: cluster.toml's kubernetes_version {file} is older than the cluster's {cluster} (kube-system/kubeadm-config), and kubeadm cannot downgrade a cluster; set kubernetes_version to \"{minor}\" or newer (or restore an etcd backup taken before the upgrade)")]
    UpgradeDowngrade {
        file: String,
        cluster: String,
        minor: String,
    },
    #[error("refusing to upgrade: the kubelet on {node} is {kubelet}, newer than the API server's {api}, and the version skew policy allows no kubelet newer than the API server; install kubelet {api} on {node} and restart it, or set kubernetes_version to \"{minor}\" to bring the cluster to it")]
    UpgradeKubeletAhead {
        node: String,
        kubelet: String,
        api: String,
        minor: String,
    },
    #[error("refusing to upgrade: kubeadm on {node} is {kubeadm}, {minors} minors ahead of the cluster's {cluster}, and kubeadm upgrades a cluster one minor at a time (it refuses a target more than one minor above the cluster's); install kubeadm {next} on {node} (`apt-get install --allow-downgrades kubeadm={next}.*`), then plan again")]
    UpgradeKubeadmSkipsMinor {
        node: String,
        kubeadm: String,
        cluster: String,
        minors: u32,
        next: String,
    },
    #[error("refusing to upgrade to {target}: the kubelet on {node} is {kubelet}, which would be {behind} minors behind the API server (the version skew policy allows 3), and gt does not upgrade it: {why}; upgrade {node}'s kubelet to {}.{} or newer first, or let gt manage its packages", target.0, target.1.saturating_sub(3))]
    UpgradeKubeletTooOld {
        node: String,
        kubelet: String,
        target: crate::kube::kubeadm::Release,
        behind: u32,
        why: String,
    },
    #[error("--replace {node}: no node of that name in cluster.toml")]
    UnknownReplace { node: String },
    #[error("internal error: the plan's graph is invalid: {0}")]
    InvalidGraph(#[from] GraphError),
}

/// Computes the plan.
pub fn plan(spec: &Spec, observed: &Observed, opts: &PlanOptions) -> Result<Plan, PlanError> {
    for r in &opts.replace {
        if spec.node(r).is_none() {
            return Err(PlanError::UnknownReplace { node: r.clone() });
        }
    }
    let d = diff::diff(spec, observed, opts)?;
    let graph = graph::build(&d)?;
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
            out.entry(n.to_string()).or_default().push(item.message);
        }
    }
    out
}

#[cfg(test)]
mod etcd_tests;
#[cfg(test)]
mod tests;
