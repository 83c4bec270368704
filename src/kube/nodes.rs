//! `kubectl get nodes -o json`: a List of Node objects. Only the fields gt
//! uses are read; everything else (managedFields, images, capacity, ...) is
//! ignored, and absent fields take their defaults.

use std::collections::BTreeMap;

/// A Node object, reduced to what gt reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub labels: BTreeMap<String, String>,
    /// Sorted.
    pub taints: Vec<Taint>,
    /// Status of the `Ready` condition; `Unknown` when the node has none.
    pub ready: ConditionStatus,
    /// Reason of the Ready condition when not True (`KubeletNotReady`).
    pub ready_reason: Option<String>,
    /// Message of the Ready condition when not True.
    pub ready_message: Option<String>,
    pub kubelet_version: Option<String>,
    /// `status.nodeInfo.architecture`, else the `kubernetes.io/arch` label.
    pub arch: Option<String>,
    pub internal_ip: Option<String>,
    /// Cordoned (`spec.unschedulable`).
    pub unschedulable: bool,
    /// Carries gt's cordon annotation ([`CORDONED_BY_GT`]): gt cordoned it,
    /// and only then may gt uncordon it.
    pub cordoned_by_gt: bool,
}

/// The annotation gt puts on a node it cordons (before the cordon, so that
/// a crash between the two leaves a mark, never an unmarked cordon of gt's),
/// and removes with its uncordon. A node cordoned without it is the
/// operator's, and stays cordoned.
pub const CORDONED_BY_GT: &str = "gt.goldentooth/cordoned";

/// A taint as the API returns it; `value` is empty when absent.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Taint {
    pub key: String,
    pub value: String,
    pub effect: String,
}

/// A condition's `status`: the API's three strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

impl ConditionStatus {
    /// Anything but `True` or `False` counts as `Unknown`, as the API defines.
    fn parse(s: &str) -> ConditionStatus {
        match s {
            "True" => ConditionStatus::True,
            "False" => ConditionStatus::False,
            _ => ConditionStatus::Unknown,
        }
    }
}

/// Labels kubeadm puts on a control plane (`master` before 1.24).
pub fn has_control_plane_label(labels: &BTreeMap<String, String>) -> bool {
    labels.contains_key("node-role.kubernetes.io/control-plane")
        || labels.contains_key("node-role.kubernetes.io/master")
}

/// Whether a Ready condition's message says the pod network is not ready:
/// the kubelet's words when no CNI is installed yet.
pub fn message_means_no_cni(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("network plugin") || m.contains("networkpluginnotready") || m.contains("cni")
}

/// One line of the watch of Nodes (`kube::watch_node_readiness`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedNode {
    pub name: String,
    /// Its Ready condition says `True`, and the event is not its deletion
    /// (a deleted Node's line shows its last state).
    pub ready: bool,
    /// Its kubelet's version (`status.nodeInfo.kubeletVersion`), if any.
    pub kubelet_version: Option<String>,
}

/// An `ADDED`, `MODIFIED` or `DELETED` line of the watch; `None` for
/// anything else (an `ERROR` event, a line cut short).
pub fn parse_watch_line(line: &str) -> Option<WatchedNode> {
    let mut cols = line.split_whitespace();
    let (event, name, ready, version) = (cols.next()?, cols.next()?, cols.next()?, cols.next()?);
    if cols.next().is_some() || name == "<none>" {
        return None;
    }
    let ready = match event {
        "ADDED" | "MODIFIED" => ConditionStatus::parse(ready) == ConditionStatus::True,
        "DELETED" => false,
        _ => return None,
    };
    Some(WatchedNode {
        name: name.to_string(),
        ready,
        kubelet_version: (version != "<none>").then(|| version.to_string()),
    })
}

/// The Node objects by name.
pub fn parse(json: &str) -> Result<BTreeMap<String, Node>, serde_json::Error> {
    let list: wire::NodeList = serde_json::from_str(json)?;
    Ok(list
        .items
        .into_iter()
        .map(|n| (n.metadata.name.clone(), node_of(n)))
        .collect())
}

fn node_of(n: wire::Node) -> Node {
    let ready = n
        .status
        .conditions
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.kind == "Ready");
    let (ready, ready_reason, ready_message) = match ready {
        Some(c) => match ConditionStatus::parse(&c.status) {
            ConditionStatus::True => (ConditionStatus::True, None, None),
            status => (status, c.reason, c.message),
        },
        None => (ConditionStatus::Unknown, None, None),
    };
    let labels = n.metadata.labels.unwrap_or_default();
    let info = n.status.node_info;
    let arch = info
        .as_ref()
        .and_then(|i| i.architecture.clone())
        .or_else(|| labels.get("kubernetes.io/arch").cloned());
    let mut taints: Vec<Taint> = n
        .spec
        .taints
        .unwrap_or_default()
        .into_iter()
        .map(|t| Taint {
            key: t.key,
            value: t.value.unwrap_or_default(),
            effect: t.effect,
        })
        .collect();
    taints.sort();
    Node {
        labels,
        taints,
        ready,
        ready_reason,
        ready_message,
        kubelet_version: info.and_then(|i| i.kubelet_version),
        arch,
        internal_ip: n
            .status
            .addresses
            .unwrap_or_default()
            .into_iter()
            .find(|a| a.kind == "InternalIP")
            .map(|a| a.address),
        unschedulable: n.spec.unschedulable,
        cordoned_by_gt: n
            .metadata
            .annotations
            .is_some_and(|a| a.contains_key(CORDONED_BY_GT)),
    }
}

/// The JSON as the API server writes it.
mod wire {
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Deserialize)]
    pub(super) struct NodeList {
        #[serde(default)]
        pub(super) items: Vec<Node>,
    }

    #[derive(Deserialize)]
    pub(super) struct Node {
        pub(super) metadata: Metadata,
        #[serde(default)]
        pub(super) spec: NodeSpec,
        #[serde(default)]
        pub(super) status: NodeStatus,
    }

    #[derive(Deserialize)]
    pub(super) struct Metadata {
        pub(super) name: String,
        #[serde(default)]
        pub(super) labels: Option<BTreeMap<String, String>>,
        #[serde(default)]
        pub(super) annotations: Option<BTreeMap<String, String>>,
    }

    #[derive(Deserialize, Default)]
    pub(super) struct NodeSpec {
        #[serde(default)]
        pub(super) taints: Option<Vec<Taint>>,
        #[serde(default)]
        pub(super) unschedulable: bool,
    }

    #[derive(Deserialize)]
    pub(super) struct Taint {
        pub(super) key: String,
        #[serde(default)]
        pub(super) value: Option<String>,
        pub(super) effect: String,
    }

    #[derive(Deserialize, Default)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct NodeStatus {
        #[serde(default)]
        pub(super) conditions: Option<Vec<Condition>>,
        #[serde(default)]
        pub(super) node_info: Option<NodeInfo>,
        #[serde(default)]
        pub(super) addresses: Option<Vec<Address>>,
    }

    #[derive(Deserialize)]
    pub(super) struct Condition {
        #[serde(rename = "type")]
        pub(super) kind: String,
        pub(super) status: String,
        #[serde(default)]
        pub(super) reason: Option<String>,
        #[serde(default)]
        pub(super) message: Option<String>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct NodeInfo {
        #[serde(default)]
        pub(super) kubelet_version: Option<String>,
        #[serde(default)]
        pub(super) architecture: Option<String>,
    }

    #[derive(Deserialize)]
    pub(super) struct Address {
        #[serde(rename = "type")]
        pub(super) kind: String,
        pub(super) address: String,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of real 1.32 output (fields trimmed in number, not in kind):
    /// managedFields, annotations, capacity, images, daemonEndpoints...
    const NODES: &str = r#"{
    "apiVersion": "v1",
    "items": [
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "annotations": {
                    "kubeadm.alpha.kubernetes.io/cri-socket": "unix:///var/run/containerd/containerd.sock",
                    "node.alpha.kubernetes.io/ttl": "0",
                    "projectcalico.org/IPv4Address": "10.4.0.11/24",
                    "volumes.kubernetes.io/controller-managed-attach-detach": "true"
                },
                "creationTimestamp": "2025-01-12T18:02:44Z",
                "labels": {
                    "beta.kubernetes.io/arch": "arm64",
                    "beta.kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "arm64",
                    "kubernetes.io/hostname": "bettley",
                    "kubernetes.io/os": "linux",
                    "node-role.kubernetes.io/control-plane": "",
                    "node.kubernetes.io/exclude-from-external-load-balancers": ""
                },
                "managedFields": [
                    {
                        "apiVersion": "v1",
                        "fieldsType": "FieldsV1",
                        "fieldsV1": {"f:metadata": {"f:annotations": {".": {}, "f:volumes.kubernetes.io/controller-managed-attach-detach": {}}}},
                        "manager": "kubelet",
                        "operation": "Update",
                        "time": "2025-01-12T18:02:44Z"
                    }
                ],
                "name": "bettley",
                "resourceVersion": "8812345",
                "uid": "0b1f6a2e-3c51-4f1e-9d1a-6a3b2c1d0e9f"
            },
            "spec": {
                "podCIDR": "192.168.0.0/24",
                "podCIDRs": ["192.168.0.0/24"],
                "taints": [
                    {"effect": "NoSchedule", "key": "node-role.kubernetes.io/control-plane"}
                ]
            },
            "status": {
                "addresses": [
                    {"address": "10.4.0.11", "type": "InternalIP"},
                    {"address": "bettley", "type": "Hostname"}
                ],
                "allocatable": {"cpu": "4", "ephemeral-storage": "56911881538", "memory": "7898172Ki", "pods": "110"},
                "capacity": {"cpu": "4", "ephemeral-storage": "61752448Ki", "memory": "8000572Ki", "pods": "110"},
                "conditions": [
                    {"lastHeartbeatTime": "2025-03-01T10:00:00Z", "lastTransitionTime": "2025-01-12T18:02:44Z", "message": "kubelet has sufficient memory available", "reason": "KubeletHasSufficientMemory", "status": "False", "type": "MemoryPressure"},
                    {"lastHeartbeatTime": "2025-03-01T10:00:00Z", "lastTransitionTime": "2025-01-12T18:05:10Z", "message": "kubelet is posting ready status", "reason": "KubeletReady", "status": "True", "type": "Ready"}
                ],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "images": [
                    {"names": ["registry.k8s.io/etcd@sha256:d6a0", "registry.k8s.io/etcd:3.5.16-0"], "sizeBytes": 57680541}
                ],
                "nodeInfo": {
                    "architecture": "arm64",
                    "bootID": "6f7c1a2b-0000-4000-8000-000000000001",
                    "containerRuntimeVersion": "containerd://1.7.24",
                    "kernelVersion": "6.6.51+rpt-rpi-v8",
                    "kubeProxyVersion": "v1.32.4",
                    "kubeletVersion": "v1.32.4",
                    "machineID": "c0ffee",
                    "operatingSystem": "linux",
                    "osImage": "Debian GNU/Linux 12 (bookworm)",
                    "systemUUID": "c0ffee"
                }
            }
        },
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "labels": {
                    "kubernetes.io/arch": "amd64",
                    "kubernetes.io/hostname": "velaryon",
                    "goldentooth.io/gpu": "true"
                },
                "annotations": {"gt.goldentooth/cordoned": "true", "node.alpha.kubernetes.io/ttl": "0"},
                "name": "velaryon"
            },
            "spec": {
                "taints": [
                    {"effect": "NoSchedule", "key": "goldentooth.io/gpu", "value": "true"},
                    {"effect": "NoSchedule", "key": "node.kubernetes.io/not-ready", "timeAdded": "2025-03-01T10:00:00Z"}
                ],
                "unschedulable": true
            },
            "status": {
                "addresses": [{"address": "10.4.1.10", "type": "InternalIP"}],
                "conditions": [
                    {"message": "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized", "reason": "KubeletNotReady", "status": "False", "type": "Ready"}
                ],
                "nodeInfo": {"architecture": "amd64", "kubeletVersion": "v1.32.4"}
            }
        },
        {
            "kind": "Node",
            "metadata": {
                "labels": {"node-role.kubernetes.io/master": ""},
                "name": "oldmaster"
            },
            "spec": {"taints": [{"effect": "NoSchedule", "key": "node-role.kubernetes.io/master"}]},
            "status": {}
        }
    ],
    "kind": "List",
    "metadata": {"resourceVersion": ""}
}"#;

    #[test]
    fn a_ready_control_plane_is_read_from_real_shaped_output() {
        let nodes = parse(NODES).unwrap();
        let b = &nodes["bettley"];
        assert_eq!(b.ready, ConditionStatus::True);
        assert_eq!((&b.ready_reason, &b.ready_message), (&None, &None));
        assert_eq!(b.kubelet_version.as_deref(), Some("v1.32.4"));
        assert_eq!(b.arch.as_deref(), Some("arm64"));
        assert_eq!(b.internal_ip.as_deref(), Some("10.4.0.11"));
        assert!(has_control_plane_label(&b.labels));
        assert_eq!(
            b.labels
                .get("node-role.kubernetes.io/control-plane")
                .map(String::as_str),
            Some("")
        );
        assert_eq!(
            b.taints,
            vec![Taint {
                key: "node-role.kubernetes.io/control-plane".into(),
                value: String::new(),
                effect: "NoSchedule".into()
            }]
        );
        assert!(!b.unschedulable && !b.cordoned_by_gt);
    }

    #[test]
    fn a_not_ready_worker_keeps_its_reason_taints_and_cordon() {
        let v = &parse(NODES).unwrap()["velaryon"];
        assert_eq!(v.ready, ConditionStatus::False);
        assert_eq!(v.ready_reason.as_deref(), Some("KubeletNotReady"));
        assert!(
            message_means_no_cni(v.ready_message.as_deref().unwrap()),
            "{:?}",
            v.ready_message
        );
        assert_eq!(
            v.taints
                .iter()
                .map(|t| (t.key.as_str(), t.value.as_str(), t.effect.as_str()))
                .collect::<Vec<_>>(),
            vec![
                ("goldentooth.io/gpu", "true", "NoSchedule"),
                ("node.kubernetes.io/not-ready", "", "NoSchedule")
            ]
        );
        assert!(v.unschedulable && v.cordoned_by_gt);
        assert!(!has_control_plane_label(&v.labels));
    }

    #[test]
    fn an_old_master_node_with_no_status_is_kept_as_observed() {
        let m = &parse(NODES).unwrap()["oldmaster"];
        assert!(has_control_plane_label(&m.labels));
        assert_eq!(m.ready, ConditionStatus::Unknown);
        assert_eq!(m.taints[0].key, "node-role.kubernetes.io/master");
        assert_eq!(m.kubelet_version, None);
    }

    #[test]
    fn an_empty_list_is_no_nodes_and_garbage_is_an_error() {
        assert!(parse(r#"{"apiVersion":"v1","items":[],"kind":"List"}"#)
            .unwrap()
            .is_empty());
        assert!(parse("error: You must be logged in").is_err());
    }

    /// Lines as kubectl 1.32 printed them for `watch_node_readiness`
    /// against a server's watch stream (tests/cli/kubectl_watch.rs runs
    /// it): columns padded to varying widths, `<none>` for a missing field.
    #[test]
    fn watch_lines_say_each_nodes_ready_status_and_version_and_deletions_are_not_ready() {
        let read = |l: &str| parse_watch_line(l).map(|w| (w.name, w.ready, w.kubelet_version));
        let v = |s: &str| Some(s.to_string());
        assert_eq!(
            read("ADDED   bettley   True    v1.32.4"),
            Some(("bettley".into(), true, v("v1.32.4")))
        );
        assert_eq!(
            read("ADDED   fenn      False   v1.32.4"),
            Some(("fenn".into(), false, v("v1.32.4")))
        );
        assert_eq!(
            read("MODIFIED   fenn      True    v1.33.1"),
            Some(("fenn".into(), true, v("v1.33.1")))
        );
        assert_eq!(
            read("ADDED      jast      Unknown   v1.32.4"),
            Some(("jast".into(), false, v("v1.32.4")))
        );
        assert_eq!(
            read("DELETED    jast      True      v1.32.4"),
            Some(("jast".into(), false, v("v1.32.4")))
        );
        assert_eq!(
            read("ADDED      karstark   <none>    <none>"),
            Some(("karstark".into(), false, None))
        );
        for other in [
            "",
            "ERROR   <none>   <none>   <none>",
            "BOOKMARK   <none>   <none>   <none>",
            "ADDED   fenn   True",
            "ADDED   <none>   True   v1.32.4",
            "node/fenn",
            "MODIFIED fenn True v1.32.4 extra",
        ] {
            assert_eq!(read(other), None, "{other:?}");
        }
    }
}
