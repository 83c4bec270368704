//! The desired state: cluster.toml's schema, its defaults, and validation
//! into typed values. Knows nothing of hosts or SSH.
//!
//! Reading a file: `discovery` finds it, `load` parses it (`plain`, or
//! toml_edit, into a `tree`) and collects problems, `walk` reads it table
//! by table into a `Spec`, `checks` compares
//! the tables with each other, and `diagnostic` renders each problem with
//! its file:line:column. `suggest` is gt's one "did you mean" rule.

mod checks;
mod diagnostic;
mod discovery;
mod host;
mod load;
mod ownership;
mod plain;
pub mod suggest;
mod tree;
mod types;
mod walk;

pub use diagnostic::{Diagnostic, Diagnostics};
pub use discovery::find_config;
pub use host::*;
pub use load::{load_bytes, load_file, load_str, parse_only};
pub use ownership::KeyOwnership;
pub use types::*;

use serde::Serialize;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The whole desired state, validated.
#[derive(Debug, Clone, Serialize)]
pub struct Spec {
    /// The file it was read from (for messages).
    pub source: PathBuf,
    pub cluster: Cluster,
    pub load_balancer: Option<LoadBalancer>,
    pub tokens: Tokens,
    pub preflight: Preflight,
    pub apply: ApplySettings,
    pub backup: BackupSettings,
    pub upgrade: UpgradeSettings,
    pub drain: DrainSettings,
    /// Every node, in file order (file order decides the default bootstrap node).
    pub nodes: Vec<Node>,
    /// Position of each node in `nodes`, by name.
    #[serde(skip)]
    pub(crate) index: BTreeMap<NodeName, usize>,
    /// The label and taint keys `nodes` name, as owned keys (gathered as
    /// the file is read).
    #[serde(skip)]
    pub(crate) owned_keys: KeyOwnership,
}

#[derive(Debug, Clone, Serialize)]
pub struct Cluster {
    pub name: String,
    pub kubernetes_version: KubeVersion,
    pub endpoint: Endpoint,
    pub pod_cidr: ipnet::IpNet,
    pub service_cidr: ipnet::IpNet,
    pub cri_socket: String,
    pub cni: Cni,
    /// The control plane that runs `kubeadm init` on an empty cluster.
    pub bootstrap: NodeName,
}

#[derive(Debug, Clone, Serialize)]
pub struct Cni {
    pub name: String,
    /// Read on the operator's machine and piped to `kubectl apply -f -` on
    /// a control plane (see `crate::cni`).
    pub manifest: ManifestSource,
    /// cluster.toml's line of `manifest` (0: the default, not in the file).
    pub line: usize,
}

/// Where the CNI manifest comes from. Hosts never fetch it: gt reads the
/// file or fetches the URL itself, so that hosts need no internet for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManifestSource {
    /// An `http://` or `https://` URL.
    Url(String),
    /// A file on the operator's machine (`~/` and relative paths resolved).
    File(PathBuf),
}

impl std::fmt::Display for ManifestSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ManifestSource::Url(u) => f.write_str(u),
            ManifestSource::File(p) => write!(f, "{}", p.display()),
        }
    }
}

impl Serialize for ManifestSource {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The load balancer in front of the API servers (not a Kubernetes node;
/// gt does not manage it, but the lab simulates it and status shows it).
#[derive(Debug, Clone, Serialize)]
pub struct LoadBalancer {
    pub name: String,
    pub address: IpAddr,
}

#[derive(Debug, Clone, Serialize)]
pub struct Tokens {
    /// TTL of the one bootstrap token an apply mints.
    pub ttl: TokenTtl,
}

/// `[apply]`: how long apply waits for things.
#[derive(Debug, Clone, Serialize)]
pub struct ApplySettings {
    /// The readiness gate before joins: every control plane ready.
    pub gate_timeout: Duration,
    /// Any one kubeadm/kubectl step (init, a join, a label).
    pub step_timeout: Duration,
    /// `kubectl drain --timeout` when a node is removed.
    pub drain_timeout: Duration,
    /// A host gt rebooted (kernel command line) answers SSH again within this.
    pub reboot_timeout: Duration,
}

impl ApplySettings {
    /// Below a second, `kubectl drain --timeout` would be written `0s`: wait forever.
    pub const MIN_TIMEOUT: Duration = Duration::from_secs(1);
    pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
    pub const DEFAULT_GATE_TIMEOUT: Duration = Duration::from_secs(5 * 60);
    pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(10 * 60);
    pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(5 * 60);
    pub const DEFAULT_REBOOT_TIMEOUT: Duration = Duration::from_secs(10 * 60);
}

impl Default for ApplySettings {
    fn default() -> Self {
        ApplySettings {
            gate_timeout: Self::DEFAULT_GATE_TIMEOUT,
            step_timeout: Self::DEFAULT_STEP_TIMEOUT,
            drain_timeout: Self::DEFAULT_DRAIN_TIMEOUT,
            reboot_timeout: Self::DEFAULT_REBOOT_TIMEOUT,
        }
    }
}

/// `[upgrade]`: how a version upgrade walks the workers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct UpgradeSettings {
    /// Workers upgraded (drained) at once in each rung.
    pub max_unavailable: MaxUnavailable,
}

/// How many workers may be out at once: a count, or a percentage of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MaxUnavailable {
    Count(u32),
    /// 1 to 100.
    Percent(u32),
}

impl Default for MaxUnavailable {
    fn default() -> Self {
        MaxUnavailable::Count(1)
    }
}

impl MaxUnavailable {
    /// `"25%"` (a count is written as a TOML integer). The error is "what is
    /// wrong; what to write".
    pub fn parse(s: &str) -> Result<MaxUnavailable, String> {
        let t = s.trim();
        let Some(p) = t.strip_suffix('%') else {
            return Err(format!(
                "{s:?} is not a percentage; write a number of workers without quotes (`max_unavailable = 2`) or a percentage such as \"25%\""
            ));
        };
        match p.trim().parse::<u32>() {
            Ok(n) if (1..=100).contains(&n) => Ok(MaxUnavailable::Percent(n)),
            _ => Err(format!(
                "{s:?} is not a percentage from 1% to 100%; write e.g. \"25%\""
            )),
        }
    }

    /// Workers per batch out of `workers`: a percentage rounds down, as
    /// Kubernetes rounds maxUnavailable, but never below one.
    pub fn batch_size(self, workers: usize) -> usize {
        let n = match self {
            MaxUnavailable::Count(n) => n as usize,
            MaxUnavailable::Percent(p) => workers * p as usize / 100,
        };
        n.max(1)
    }
}

impl std::fmt::Display for MaxUnavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MaxUnavailable::Count(n) => write!(f, "{n}"),
            MaxUnavailable::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// `[drain]`: how gt drains a node (its timeout is `drain_timeout` in `[apply]`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct DrainSettings {
    /// `kubectl drain --force`: evict pods no controller owns (they are
    /// gone for good). Off by default: the drain refuses them.
    pub force: bool,
}

/// `[backup]`: etcd backups (README "Backups and restore").
#[derive(Debug, Clone, Serialize)]
pub struct BackupSettings {
    /// Where backups go; relative paths are relative to cluster.toml.
    pub dir: PathBuf,
    /// How many of this cluster's backups `gt backup` keeps (newest first).
    pub keep: usize,
    /// `gt apply` takes a backup before a control-plane join or removal.
    pub before_risky_steps: bool,
    /// `gt drift` reports the newest backup once it is older than this.
    pub max_age: Option<Duration>,
}

impl BackupSettings {
    /// Beside cluster.toml.
    pub const DEFAULT_DIR: &'static str = "backups";
    pub const DEFAULT_KEEP: usize = 7;
    pub const MAX_KEEP: usize = 1000;
    pub const MIN_MAX_AGE: Duration = Duration::from_secs(60);

    /// The defaults, with backups in `dir`.
    pub fn default_beside(dir: &std::path::Path) -> BackupSettings {
        BackupSettings {
            dir: dir.to_path_buf(),
            keep: Self::DEFAULT_KEEP,
            before_risky_steps: true,
            max_age: None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Preflight {
    /// Check names passed to `--ignore-preflight-errors` (lowercased).
    pub ignore: Vec<String>,
}

/// Whether the node should be in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    Present,
    Absent,
}

#[derive(Debug, Clone, Serialize)]
pub struct Node {
    pub name: NodeName,
    pub role: Role,
    pub address: IpAddr,
    pub arch: Arch,
    /// Labels gt manages on this node (system-managed keys are refused at load).
    pub labels: BTreeMap<LabelKey, String>,
    /// Taints gt manages, sorted.
    pub taints: Vec<Taint>,
    /// Implicit (`k8s_cluster`, `k8s_control_plane`/`k8s_worker`) and the node's own.
    /// The implicit ones borrowed, not copied into each of thousands of nodes.
    pub groups: Vec<Cow<'static, str>>,
    pub state: NodeState,
    pub connection: Connection,
    /// The host's software and kernel settings (`[nodes.NAME.host]` over
    /// `[defaults.host]`). Nodes without a host table of their own share
    /// one: thousands of copies of the defaults cost a plan its cache.
    #[serde(serialize_with = "serialize_shared")]
    pub host: Arc<HostSettings>,
    /// 1-based line of the node's table in the file (for messages).
    pub line: usize,
}

/// A shared value serialized as the value itself.
fn serialize_shared<T: Serialize, S: serde::Serializer>(
    value: &Arc<T>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    T::serialize(value, serializer)
}

impl Node {
    pub fn is_control_plane(&self) -> bool {
        self.role == Role::ControlPlane
    }
    pub fn is_present(&self) -> bool {
        self.state == NodeState::Present
    }
}

/// How a node is reached is transport's description, filled in from the file.
pub use crate::transport::{Connection, KnownHostsPolicy, LocalSettings, SshSettings};

impl From<&Node> for crate::transport::Target {
    fn from(n: &Node) -> Self {
        crate::transport::Target {
            name: n.name.to_string(),
            connection: n.connection.clone(),
        }
    }
}

/// Implicit group names (goldentooth's inventory).
pub const GROUP_ALL_NODES: &str = "k8s_cluster";
pub const GROUP_CONTROL_PLANE: &str = "k8s_control_plane";
pub const GROUP_WORKER: &str = "k8s_worker";

impl Spec {
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.index.get(name).map(|&i| &self.nodes[i])
    }

    /// Nodes that should be in the cluster, in file order.
    pub fn present_nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| n.is_present())
    }

    pub fn control_planes(&self) -> impl Iterator<Item = &Node> {
        self.present_nodes().filter(|n| n.is_control_plane())
    }

    pub fn workers(&self) -> impl Iterator<Item = &Node> {
        self.present_nodes().filter(|n| !n.is_control_plane())
    }

    pub fn bootstrap_node(&self) -> &Node {
        self.node(self.cluster.bootstrap.as_str())
            .expect("validated: the bootstrap node exists")
    }

    /// Nodes a target names: a node, a group, or `all`; in file order.
    pub fn select(&self, target: &str) -> Vec<&Node> {
        if target == "all" {
            return self.nodes.iter().collect();
        }
        if let Some(n) = self.node(target) {
            return vec![n];
        }
        self.nodes
            .iter()
            .filter(|n| n.groups.iter().any(|g| g == target))
            .collect()
    }

    /// Every group name any node is in, sorted.
    pub fn groups(&self) -> Vec<String> {
        let mut g: Vec<String> = self
            .nodes
            .iter()
            .flat_map(|n| n.groups.iter().map(|g| g.to_string()))
            .collect();
        g.sort();
        g.dedup();
        g
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod proptests;

/// goldentooth as cluster.toml has it, with `node` also labelled
/// `app.kubernetes.io/part-of=goldentooth`: a label its kubelet may not set
/// on itself, so that its join is followed by a step of kubectl's (tests of
/// what depends on a join).
#[cfg(test)]
pub(crate) fn goldentooth_labelled_after_join(node: &str) -> Spec {
    let mut spec =
        load_file(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("cluster.toml"))
            .expect("goldentooth loads");
    let n = spec
        .nodes
        .iter_mut()
        .find(|n| n.name.as_str() == node)
        .expect("a node of goldentooth");
    n.labels.insert(
        LabelKey::try_from("app.kubernetes.io/part-of".to_string()).expect("a valid key"),
        "goldentooth".into(),
    );
    spec
}
