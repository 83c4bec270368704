//! Which release the cluster and each node run, read from the facts: the
//! cluster's record (kubeadm-config), each control plane's static pods, each
//! Node's kubelet and each host's kubeadm. An upgrade is planned from these.

use super::{HostFacts, NodeFacts, Observed};
use crate::kube::kubeadm::Release;
use crate::kube::versions::CONTROL_PLANE_COMPONENTS;

/// An exact release out of `v1.32.4` (a build suffix is dropped, as
/// `kubelet --version` may carry one); `None` without a patch.
pub fn release_of(version: &str) -> Option<Release> {
    crate::kube::kubeadm::parse_version(version)
}

/// What one node runs, each part as far as it was observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeVersions {
    /// The running kubelet (its Node's `kubeletVersion`).
    pub kubelet: Option<Release>,
    /// The installed kubeadm (`kubeadm version -o short`).
    pub kubeadm: Option<Release>,
    /// The oldest of its control-plane static pods; `None` on a worker or
    /// where the manifests carried no image tag gt could read.
    pub control_plane: Option<Release>,
}

impl NodeVersions {
    /// Every observed part is at `release` or newer.
    pub fn at_least(&self, release: Release) -> bool {
        [self.kubelet, self.kubeadm, self.control_plane]
            .into_iter()
            .flatten()
            .all(|v| v >= release)
            && self.kubelet.is_some()
    }

    /// The oldest observed part: where the node stands.
    pub fn oldest(&self) -> Option<Release> {
        [self.kubelet, self.kubeadm, self.control_plane]
            .into_iter()
            .flatten()
            .min()
    }
}

impl HostFacts {
    /// The oldest control-plane component's static pod release.
    pub fn control_plane_release(&self) -> Option<Release> {
        CONTROL_PLANE_COMPONENTS
            .iter()
            .filter_map(|c| release_of(self.static_pods.get(*c)?))
            .min()
    }
}

impl Observed {
    /// The release kubeadm last brought the cluster to: kubeadm-config's
    /// record; without it (older facts), the oldest control plane's static
    /// pods; without those, the newest control-plane kubelet.
    pub fn cluster_release(&self) -> Option<Release> {
        if let Some(r) = self
            .cluster
            .kubernetes_version
            .as_deref()
            .and_then(release_of)
        {
            return Some(r);
        }
        // Found once: telling a control plane costs a look into every
        // Node's labels.
        let control_planes: Vec<(&String, &NodeFacts)> = self
            .cluster
            .nodes
            .iter()
            .filter(|(_, n)| n.is_control_plane())
            .collect();
        control_planes
            .iter()
            .filter_map(|(name, _)| self.hosts.get(*name)?.control_plane_release())
            .min()
            .or_else(|| {
                control_planes
                    .iter()
                    .filter_map(|(_, n)| release_of(n.kubelet_version.as_deref()?))
                    .max()
            })
    }

    /// What node `name` runs.
    pub fn node_versions(&self, name: &str) -> NodeVersions {
        NodeVersions::of(self.cluster.nodes.get(name), self.hosts.get(name))
    }
}

impl NodeVersions {
    /// What a node runs, from its Node object and its host's facts (those
    /// of an unreachable host say nothing of it).
    pub fn of(node: Option<&NodeFacts>, host: Option<&HostFacts>) -> NodeVersions {
        let host = host.filter(|h| h.is_reachable());
        NodeVersions {
            kubelet: node
                .and_then(|n| n.kubelet_version.as_deref())
                .and_then(release_of),
            kubeadm: host
                .and_then(|h| h.kubeadm_version.as_deref())
                .and_then(release_of),
            control_plane: host.and_then(HostFacts::control_plane_release),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::ClusterFacts;
    use std::collections::BTreeMap;

    fn control_plane(kubelet: &str) -> NodeFacts {
        NodeFacts {
            labels: [("node-role.kubernetes.io/control-plane", "")].into(),
            kubelet_version: Some(kubelet.into()),
            ..Default::default()
        }
    }

    #[test]
    fn the_clusters_record_wins_then_static_pods_then_kubelets() {
        let mut o = Observed {
            cluster: ClusterFacts {
                nodes: BTreeMap::from([
                    ("a".to_string(), control_plane("v1.33.2")),
                    ("b".to_string(), control_plane("v1.32.4")),
                ]),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(o.cluster_release(), Some(Release(1, 33, 2)));
        let pods = |v: &str| HostFacts {
            static_pods: CONTROL_PLANE_COMPONENTS
                .iter()
                .map(|c| (c.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        };
        o.hosts.insert("a".into(), pods("v1.33.2"));
        o.hosts.insert("b".into(), pods("v1.32.4"));
        assert_eq!(o.cluster_release(), Some(Release(1, 32, 4)));
        o.cluster.kubernetes_version = Some("v1.33.2".into());
        assert_eq!(o.cluster_release(), Some(Release(1, 33, 2)));
    }

    #[test]
    fn a_node_is_at_a_release_when_every_observed_part_is() {
        let v = NodeVersions {
            kubelet: Some(Release(1, 33, 2)),
            kubeadm: Some(Release(1, 33, 2)),
            control_plane: Some(Release(1, 32, 4)),
        };
        assert!(!v.at_least(Release(1, 33, 2)));
        assert_eq!(v.oldest(), Some(Release(1, 32, 4)));
        let worker = NodeVersions {
            control_plane: None,
            ..v
        };
        assert!(worker.at_least(Release(1, 33, 2)));
        assert!(!NodeVersions::default().at_least(Release(1, 0, 0)));
    }
}
