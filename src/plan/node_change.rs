//! One change per node of the file: what else the plan does to a node whose
//! labels or taints it updates (start its kubelet, upgrade it, uncordon it)
//! joins that update's change rather than listing the node twice.
//!
//! The node's update is found through an index by the node's place in the
//! file, not by a scan of the changes: a plan that touches every node of a
//! large cluster (an upgrade) would otherwise cost the square of its nodes
//! (and an index by name, a hash of every name in a table out of the cache).

use super::diff::Cx;
use super::*;
use crate::spec::Node;

/// Where a node's new steps go among those its update change has already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StepsGo {
    /// Before them: what the update needs done first (its kubelet started).
    First,
    /// After them, in the order given.
    Last,
}

impl Cx<'_> {
    /// The update change of the file's node at `at`, pushed;
    /// [`Cx::merge_node_change`] finds it.
    pub(super) fn push_node_update(&mut self, at: usize, change: Change) {
        debug_assert!(
            change.resource == Resource::Node(self.spec.nodes[at].name.clone())
                && change.action == Action::Update
        );
        self.node_updates[at] = Some(self.out.changes.len());
        self.out.changes.push(change);
    }

    /// A change put at `at` among the changes (the cluster's, ahead of the
    /// nodes'): the nodes' updates after it move one place on.
    pub(super) fn insert_change(&mut self, at: usize, change: Change) {
        for i in self.node_updates.iter_mut().flatten() {
            if *i >= at {
                *i += 1;
            }
        }
        self.out.changes.insert(at, change);
    }

    /// Into the update change of `node` (the file's node at `at`) when it
    /// has one (its reason, its attributes and its steps extended), else as
    /// the node's update.
    pub(super) fn merge_node_change(
        &mut self,
        at: usize,
        node: &Node,
        reason: &str,
        attributes: Vec<(String, String)>,
        steps: Vec<StepId>,
        go: StepsGo,
    ) {
        if let Some(i) = self.node_updates[at] {
            let c = &mut self.out.changes[i];
            debug_assert!(c.resource == Resource::Node(node.name.clone()));
            c.reason.push_str("; ");
            c.reason.push_str(reason);
            c.attributes.extend(attributes);
            match go {
                StepsGo::First => {
                    c.steps.splice(0..0, steps);
                }
                StepsGo::Last => c.steps.extend(steps),
            }
            return;
        }
        self.push_node_update(
            at,
            Change {
                resource: Resource::Node(node.name.clone()),
                action: Action::Update,
                reason: reason.to_string(),
                role: Some(node.role),
                attributes,
                labels: SetDiff::default(),
                taints: SetDiff::default(),
                host: vec![],
                steps,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::plan::tests::{facts, goldentooth};
    use crate::plan::{plan, PlanOptions, Resource};

    /// A node's label drift, its stopped kubelet and its upgrade are one
    /// change; the cluster's version change goes ahead of it.
    #[test]
    fn what_else_a_node_needs_joins_its_update_in_order() {
        let mut spec = goldentooth();
        spec.cluster.kubernetes_version = crate::spec::KubeVersion::parse("1.33.3").unwrap();
        let mut o = facts("upgrade-at-1.32");
        o.cluster
            .nodes
            .get_mut("fenn")
            .unwrap()
            .labels
            .insert("goldentooth.io/storage".into(), "moved".into());
        for name in ["fenn", "gardener"] {
            o.hosts.get_mut(name).unwrap().kubelet_active = false;
        }
        let p = plan(&spec, &o, &PlanOptions::default()).unwrap();
        assert!(matches!(p.changes[0].resource, Resource::Cluster(_)));
        let of = |name: &str| {
            let mine: Vec<_> = p
                .changes
                .iter()
                .filter(|c| c.resource == Resource::Node(name.parse().unwrap()))
                .collect();
            assert_eq!(mine.len(), 1, "{name}: {mine:#?}");
            let steps: Vec<String> = mine[0].steps.iter().map(ToString::to_string).collect();
            (mine[0].reason.clone(), steps)
        };
        let (reason, steps) = of("fenn");
        assert!(
            reason.starts_with(
                "labels differ from cluster.toml; kubelet not active: start it; kubelet v1.32.4, behind v1.33.3"
            ),
            "{reason}"
        );
        assert_eq!(
            steps,
            ["start-kubelet/fenn", "update/fenn", "upgrade/fenn@v1.33.3"]
        );
        let (reason, steps) = of("gardener");
        assert!(
            reason.starts_with("kubelet not active: start it; kubelet v1.32.4"),
            "{reason}"
        );
        assert_eq!(
            steps,
            ["start-kubelet/gardener", "upgrade/gardener@v1.33.3"]
        );
    }
}
