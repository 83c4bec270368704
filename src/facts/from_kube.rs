//! What `kube`'s parsers return, recorded as facts. The facts JSON keeps its
//! own types so that its format does not follow kube's internals.

use super::{ApiReadiness, NodeFacts, ObservedTaint, ReadyStatus};
use crate::kube::nodes::{ConditionStatus, Node, Taint};
use crate::kube::readyz::Readyz;

impl From<Node> for NodeFacts {
    fn from(n: Node) -> Self {
        NodeFacts {
            labels: n.labels.into(),
            taints: n.taints.into_iter().map(ObservedTaint::from).collect(),
            ready: n.ready.into(),
            ready_reason: n.ready_reason,
            ready_message: n.ready_message,
            kubelet_version: n.kubelet_version,
            arch: n.arch,
            internal_ip: n.internal_ip,
            unschedulable: n.unschedulable,
            cordoned_by_gt: n.cordoned_by_gt,
        }
    }
}

impl From<Taint> for ObservedTaint {
    fn from(t: Taint) -> Self {
        ObservedTaint {
            key: t.key,
            value: t.value,
            effect: t.effect,
        }
    }
}

impl From<ConditionStatus> for ReadyStatus {
    fn from(s: ConditionStatus) -> Self {
        match s {
            ConditionStatus::True => ReadyStatus::True,
            ConditionStatus::False => ReadyStatus::False,
            ConditionStatus::Unknown => ReadyStatus::Unknown,
        }
    }
}

impl From<Readyz> for ApiReadiness {
    fn from(r: Readyz) -> Self {
        ApiReadiness {
            ready: r.ready,
            failed_checks: r.failed_checks,
            error: r.error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn a_parsed_node_keeps_every_field_it_had() {
        let node = Node {
            labels: BTreeMap::from([(
                "node-role.kubernetes.io/control-plane".into(),
                String::new(),
            )]),
            taints: vec![Taint {
                key: "goldentooth.io/gpu".into(),
                value: "true".into(),
                effect: "NoSchedule".into(),
            }],
            ready: ConditionStatus::False,
            ready_reason: Some("KubeletNotReady".into()),
            ready_message: Some("cni plugin not initialized".into()),
            kubelet_version: Some("v1.32.4".into()),
            arch: Some("arm64".into()),
            internal_ip: Some("10.4.0.11".into()),
            unschedulable: true,
            cordoned_by_gt: true,
        };
        let f = NodeFacts::from(node);
        assert_eq!(f.ready, ReadyStatus::False);
        assert_eq!(
            f.taints[0].to_string(),
            "goldentooth.io/gpu=true:NoSchedule"
        );
        assert!(f.is_control_plane() && f.waits_for_cni() && f.unschedulable && f.cordoned_by_gt);
        assert_eq!(
            (f.ready_reason.as_deref(), f.kubelet_version.as_deref()),
            (Some("KubeletNotReady"), Some("v1.32.4"))
        );
        assert_eq!(
            (f.arch.as_deref(), f.internal_ip.as_deref()),
            (Some("arm64"), Some("10.4.0.11"))
        );
    }
}
