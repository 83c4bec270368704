//! The observed state. Serialises to and from JSON: `gt observe` writes it,
//! `gt plan --facts FILE` reads it. An unreachable host is a fact.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version of the facts JSON format. Bump on incompatible changes.
pub const FACTS_FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Observed {
    pub format_version: u32,
    /// Per host, keyed by node name (as in cluster.toml).
    #[serde(default)]
    pub hosts: BTreeMap<String, HostFacts>,
    #[serde(default)]
    pub cluster: ClusterFacts,
}

impl Observed {
    pub fn empty() -> Observed {
        Observed {
            format_version: FACTS_FORMAT_VERSION,
            ..Default::default()
        }
    }

    pub fn from_json(s: &str) -> Result<Observed, serde_json::Error> {
        serde_json::from_str(s)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("facts serialise")
    }
}

/// What one host's probe reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct HostFacts {
    /// `None` when the host answered; the reason when it did not
    /// (`"connection refused after 5 s"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreachable: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Kubernetes name (`arm64`, `amd64`), from `uname -m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// `kubeadm version -o short`, e.g. `v1.32.4`; `None` when not installed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeadm_version: Option<String>,
    /// `kubelet --version`, e.g. `v1.32.4`; `None` when not installed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubelet_version: Option<String>,
    #[serde(default)]
    pub kubelet_active: bool,
    /// `/etc/kubernetes/admin.conf` exists.
    #[serde(default)]
    pub admin_conf: bool,
    /// `/etc/kubernetes/kubelet.conf` exists (the host has joined a cluster).
    #[serde(default)]
    pub kubelet_conf: bool,
    /// The `server:` in kubelet.conf (`https://10.4.0.10:6443`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubelet_server: Option<String>,
    /// Static pod manifests present in /etc/kubernetes/manifests, sorted
    /// (`etcd.yaml`, `kube-apiserver.yaml`, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub manifests: Vec<String>,
    /// The image tag of each control-plane static pod (`kube-apiserver` →
    /// `v1.32.4`): the release this control plane runs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub static_pods: BTreeMap<String, String>,
    /// `sha256:<hex>` of /etc/kubernetes/pki/ca.crt's SubjectPublicKeyInfo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pin: Option<String>,
    /// Packages and kernel settings; `None` where there is no dpkg database
    /// (and in facts recorded before gt observed them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub software: Option<Box<super::HostSoftware>>,
}

impl HostFacts {
    pub fn unreachable(reason: impl Into<String>) -> HostFacts {
        HostFacts {
            unreachable: Some(reason.into()),
            ..Default::default()
        }
    }

    pub fn is_reachable(&self) -> bool {
        self.unreachable.is_none()
    }

    /// The host carries a control plane's static pods.
    pub fn has_control_plane_manifests(&self) -> bool {
        self.manifests.iter().any(|m| m == "kube-apiserver.yaml")
    }

    /// The host has joined (or initialised) some cluster.
    pub fn is_joined(&self) -> bool {
        self.kubelet_conf || self.admin_conf || self.has_control_plane_manifests()
    }
}

/// What the API server said, through one healthy control plane.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ClusterFacts {
    /// The control plane the cluster was observed through; `None` when no
    /// control plane had an admin kubeconfig and answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_via: Option<String>,
    /// The cluster's CA pin (that of the control plane observed through).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pin: Option<String>,
    #[serde(default)]
    pub api: ApiReadiness,
    /// Each control plane's own API server (`/readyz?verbose` with `--server
    /// https://ADDRESS:6443`, bypassing the load balancer), by node name; only
    /// control planes of cluster.toml. Empty in facts recorded before gt 0.1.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub api_servers: BTreeMap<String, ApiReadiness>,
    /// Node objects by name (`kubectl get nodes -o json`).
    #[serde(default)]
    pub nodes: BTreeMap<String, NodeFacts>,
    /// `kubernetesVersion` of the ClusterConfiguration in
    /// kube-system/kubeadm-config (`v1.32.4`): the release kubeadm last
    /// initialised or upgraded the cluster to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_version: Option<String>,
    /// Pods and PodDisruptionBudgets, read only when the plan drains nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workloads: Option<super::Workloads>,
    /// etcd's own view (members, health, leader, size); `None` when it was not asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etcd: Option<super::EtcdFacts>,
}

impl ClusterFacts {
    /// Whether a cluster exists at all (some control plane answered).
    pub fn exists(&self) -> bool {
        self.observed_via.is_some()
    }
}

/// `/readyz?verbose` of an API server (through the endpoint, or one control plane's own).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ApiReadiness {
    pub ready: bool,
    /// Failing checks (`etcd`), empty when ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_checks: Vec<String>,
    /// Why readiness could not be read at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct NodeFacts {
    #[serde(default)]
    pub labels: super::NodeLabels,
    #[serde(default)]
    pub taints: Vec<ObservedTaint>,
    pub ready: ReadyStatus,
    /// Reason of the Ready condition when not True (`KubeletNotReady`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_reason: Option<String>,
    /// Message of the Ready condition when not True (tells a missing CNI from a dead kubelet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubelet_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_ip: Option<String>,
    #[serde(default)]
    pub unschedulable: bool,
    /// Carries gt's cordon annotation: gt cordoned it (and may uncordon it).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cordoned_by_gt: bool,
}

impl NodeFacts {
    /// The kubelet reports the pod network as not ready: no CNI installed yet.
    pub fn waits_for_cni(&self) -> bool {
        self.ready != ReadyStatus::True
            && self
                .ready_message
                .as_deref()
                .is_some_and(crate::kube::nodes::message_means_no_cni)
    }

    /// Whether the node carries the control-plane role (or the pre-1.24
    /// `master` one): the keys `kube::nodes::has_control_plane_label` reads
    /// in a parsed Node (a test below holds the two alike).
    pub fn is_control_plane(&self) -> bool {
        [
            "node-role.kubernetes.io/control-plane",
            "node-role.kubernetes.io/master",
        ]
        .iter()
        .any(|k| self.labels.contains_key(k))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObservedTaint {
    pub key: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
    pub effect: String,
}

impl std::fmt::Display for ObservedTaint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.value.is_empty() {
            write!(f, "{}:{}", self.key, self.effect)
        } else {
            write!(f, "{}={}:{}", self.key, self.value, self.effect)
        }
    }
}

/// The node's Ready condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum ReadyStatus {
    True,
    False,
    #[default]
    Unknown,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_control_plane_is_told_by_the_same_labels_as_kube_tells_it() {
        for key in [
            "node-role.kubernetes.io/control-plane",
            "node-role.kubernetes.io/master",
            "node-role.kubernetes.io/worker",
            "node-role.kubernetes.io",
            "kubernetes.io/hostname",
        ] {
            let map = BTreeMap::from([(key.to_string(), String::new())]);
            let node = NodeFacts {
                labels: map.clone().into(),
                ..Default::default()
            };
            assert_eq!(
                node.is_control_plane(),
                crate::kube::nodes::has_control_plane_label(&map),
                "{key}"
            );
        }
        assert!(!NodeFacts::default().is_control_plane());
    }
}
