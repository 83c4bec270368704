//! `kubectl get nodes -o json`: a List of Node objects. Only the fields gt
//! uses are read; everything else (managedFields, images, capacity, ...) is
//! ignored, and absent fields take their defaults.

use crate::facts::{NodeFacts, ObservedTaint, ReadyStatus};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Deserialize)]
struct NodeList {
    #[serde(default)]
    items: Vec<Node>,
}

#[derive(Deserialize)]
struct Node {
    metadata: Metadata,
    #[serde(default)]
    spec: NodeSpec,
    #[serde(default)]
    status: NodeStatus,
}

#[derive(Deserialize)]
struct Metadata {
    name: String,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, Default)]
struct NodeSpec {
    #[serde(default)]
    taints: Option<Vec<Taint>>,
    #[serde(default)]
    unschedulable: bool,
}

#[derive(Deserialize)]
struct Taint {
    key: String,
    #[serde(default)]
    value: Option<String>,
    effect: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct NodeStatus {
    #[serde(default)]
    conditions: Option<Vec<Condition>>,
    #[serde(default)]
    node_info: Option<NodeInfo>,
    #[serde(default)]
    addresses: Option<Vec<Address>>,
}

#[derive(Deserialize)]
struct Condition {
    #[serde(rename = "type")]
    kind: String,
    status: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NodeInfo {
    #[serde(default)]
    kubelet_version: Option<String>,
    #[serde(default)]
    architecture: Option<String>,
}

#[derive(Deserialize)]
struct Address {
    #[serde(rename = "type")]
    kind: String,
    address: String,
}

/// The Node objects by name.
pub fn parse(json: &str) -> Result<BTreeMap<String, NodeFacts>, serde_json::Error> {
    let list: NodeList = serde_json::from_str(json)?;
    Ok(list
        .items
        .into_iter()
        .map(|n| (n.metadata.name.clone(), facts_of(n)))
        .collect())
}

fn facts_of(n: Node) -> NodeFacts {
    let ready = n
        .status
        .conditions
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.kind == "Ready");
    let (ready, ready_reason, ready_message) = match ready {
        Some(c) => {
            let status = match c.status.as_str() {
                "True" => ReadyStatus::True,
                "False" => ReadyStatus::False,
                _ => ReadyStatus::Unknown,
            };
            if status == ReadyStatus::True {
                (status, None, None)
            } else {
                (status, c.reason, c.message)
            }
        }
        None => (ReadyStatus::Unknown, None, None),
    };
    let labels = n.metadata.labels.unwrap_or_default();
    let info = n.status.node_info;
    let arch = info
        .as_ref()
        .and_then(|i| i.architecture.clone())
        .or_else(|| labels.get("kubernetes.io/arch").cloned());
    let mut taints: Vec<ObservedTaint> = n
        .spec
        .taints
        .unwrap_or_default()
        .into_iter()
        .map(|t| ObservedTaint {
            key: t.key,
            value: t.value.unwrap_or_default(),
            effect: t.effect,
        })
        .collect();
    taints.sort();
    NodeFacts {
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
        assert_eq!(b.ready, ReadyStatus::True);
        assert_eq!((&b.ready_reason, &b.ready_message), (&None, &None));
        assert_eq!(b.kubelet_version.as_deref(), Some("v1.32.4"));
        assert_eq!(b.arch.as_deref(), Some("arm64"));
        assert_eq!(b.internal_ip.as_deref(), Some("10.4.0.11"));
        assert!(b.is_control_plane());
        assert_eq!(
            b.labels
                .get("node-role.kubernetes.io/control-plane")
                .map(String::as_str),
            Some("")
        );
        assert_eq!(
            b.taints.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
            vec!["node-role.kubernetes.io/control-plane:NoSchedule"]
        );
        assert!(!b.unschedulable);
    }

    #[test]
    fn a_not_ready_worker_keeps_its_reason_taints_and_cordon() {
        let v = &parse(NODES).unwrap()["velaryon"];
        assert_eq!(v.ready, ReadyStatus::False);
        assert_eq!(v.ready_reason.as_deref(), Some("KubeletNotReady"));
        assert!(v.waits_for_cni(), "{:?}", v.ready_message);
        assert_eq!(
            v.taints.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
            vec![
                "goldentooth.io/gpu=true:NoSchedule",
                "node.kubernetes.io/not-ready:NoSchedule"
            ]
        );
        assert!(v.unschedulable);
        assert!(!v.is_control_plane());
    }

    #[test]
    fn an_old_master_node_with_no_status_is_kept_as_observed() {
        let m = &parse(NODES).unwrap()["oldmaster"];
        assert!(m.is_control_plane());
        assert_eq!(m.ready, ReadyStatus::Unknown);
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
}
