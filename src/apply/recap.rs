//! The recap: per node, what the walk did to it, from the plan's changes
//! and each step's outcome. Typed: the UI words it.

use super::events::{Failure, NodeOutcome, NodeRecap, Recap, Removal, StepStatus};
use super::walker::{Finished, Walked};
use crate::facts::Observed;
use crate::kube::kubeadm::Release;
use crate::plan::{Action, Change, Plan, Resource, RungRelease, StepId};
use crate::spec::{NodeName, Role, Spec};
use std::collections::BTreeMap;
use std::time::Duration;

pub fn recap(
    spec: &Spec,
    observed: &Observed,
    plan: &Plan,
    walked: &Walked,
    rung_releases: &BTreeMap<(u32, u32), Release>,
    run_id: &str,
    elapsed: Duration,
) -> Recap {
    let count = |s: StepStatus| walked.steps.values().filter(|f| f.status == s).count();
    let mut r = Recap {
        run_id: run_id.to_string(),
        cluster: plan.cluster.clone(),
        nodes: vec![],
        joined: 0,
        changed: 0,
        removed: 0,
        succeeded_steps: count(StepStatus::Succeeded),
        failed_steps: count(StepStatus::Failed),
        skipped_steps: count(StepStatus::Skipped),
        cancelled_steps: count(StepStatus::Cancelled),
        failures: vec![],
        interrupted: walked.interrupted,
        elapsed,
    };
    // Root causes in the plan's order.
    for step in plan.graph.ordered() {
        let id = step.id();
        if let Some(f) = walked.steps.get(&id) {
            if f.status == StepStatus::Failed {
                r.failures.push(Failure {
                    label: step.label(),
                    node: step.node().cloned(),
                    error: f.reason.clone().unwrap_or_default(),
                    step: id,
                });
            }
        }
    }
    let mut names: Vec<NodeName> = spec.nodes.iter().map(|n| n.name.clone()).collect();
    for c in &plan.changes {
        if let Resource::Node(n) = &c.resource {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
    }
    for name in names {
        let node_change = plan
            .changes
            .iter()
            .find(|c| matches!(&c.resource, Resource::Node(n) if *n == name));
        let host_change = plan
            .changes
            .iter()
            .find(|c| matches!(&c.resource, Resource::Host(n) if *n == name));
        // The host is prepared first: its steps come before the node's.
        let host_steps: Vec<StepId> = host_change.map(|c| c.steps.clone()).unwrap_or_default();
        let change = node_change.or(host_change);
        let outcome = match change {
            None => match observed
                .hosts
                .get(name.as_str())
                .and_then(|h| h.unreachable.clone())
            {
                Some(why) => NodeOutcome::Unreachable { why },
                None => NodeOutcome::InSync,
            },
            Some(change) => {
                let outcome = change_outcome(
                    spec,
                    observed,
                    &name,
                    change,
                    &host_steps,
                    walked,
                    rung_releases,
                );
                if !matches!(
                    outcome,
                    NodeOutcome::Failed { .. } | NodeOutcome::NotRun { .. }
                ) {
                    match change.action {
                        Action::Create | Action::Replace => r.joined += 1,
                        Action::Update => r.changed += 1,
                        Action::Delete => r.removed += 1,
                    }
                }
                outcome
            }
        };
        let version = upgraded_to(observed, &name, node_change, walked, rung_releases);
        r.nodes.push(NodeRecap {
            node: name,
            outcome,
            version,
        });
    }
    r
}

/// A node with a change: its first failed step, else its first step that
/// did not run, else what the change did.
fn change_outcome(
    spec: &Spec,
    observed: &Observed,
    name: &NodeName,
    change: &Change,
    host_steps: &[StepId],
    walked: &Walked,
    rung_releases: &BTreeMap<(u32, u32), Release>,
) -> NodeOutcome {
    let outcomes: Vec<(&StepId, &Finished)> = host_steps
        .iter()
        .chain(change.steps.iter().filter(|s| !host_steps.contains(s)))
        .filter_map(|id| walked.steps.get(id).map(|f| (id, f)))
        .collect();
    if let Some((id, f)) = outcomes
        .iter()
        .find(|(_, f)| f.status == StepStatus::Failed)
    {
        return NodeOutcome::Failed {
            step: (*id).clone(),
            error: f.reason.clone().unwrap_or_default(),
        };
    }
    if let Some((id, f)) = outcomes
        .iter()
        .find(|(_, f)| matches!(f.status, StepStatus::Skipped | StepStatus::Cancelled))
    {
        return NodeOutcome::NotRun {
            step: (*id).clone(),
            reason: f.reason.clone().unwrap_or_default(),
            done: outcomes
                .iter()
                .filter(|(_, f)| f.status == StepStatus::Succeeded)
                .map(|(id, _)| (*id).clone())
                .collect(),
        };
    }
    if matches!(change.resource, Resource::Host(_)) {
        return NodeOutcome::HostPrepared;
    }
    let newest_rung = change
        .steps
        .iter()
        .filter_map(|s| match s {
            StepId::UpgradeNode(_, rung) => exact(rung, rung_releases),
            _ => None,
        })
        .max();
    if let Some(to) = newest_rung {
        return NodeOutcome::Upgraded { to };
    }
    if change
        .steps
        .iter()
        .all(|s| matches!(s, StepId::Uncordon(_)))
        && !change.steps.is_empty()
    {
        return NodeOutcome::Uncordoned;
    }
    match (change.action, change.role) {
        (Action::Create, _) if change.steps.iter().any(|s| matches!(s, StepId::Init(_))) => {
            NodeOutcome::Initialised
        }
        (Action::Create, Some(Role::ControlPlane)) => NodeOutcome::JoinedControlPlane,
        (Action::Create, _) => NodeOutcome::JoinedWorker,
        (Action::Update, _)
            if change
                .steps
                .iter()
                .any(|s| matches!(s, StepId::RestoreEtcd(_))) =>
        {
            NodeOutcome::EtcdRestored
        }
        (Action::Update, _) => NodeOutcome::Updated {
            labels: !change.labels.is_empty(),
            taints: !change.taints.is_empty(),
        },
        (Action::Delete, _) => NodeOutcome::Removed(removal(spec, observed, name, change)),
        (Action::Replace, _) => NodeOutcome::Replaced,
    }
}

/// The release a node with upgrade steps is at after the walk: the newest
/// rung it finished, else what its kubelet reported when gt observed.
fn upgraded_to(
    observed: &Observed,
    name: &NodeName,
    change: Option<&Change>,
    walked: &Walked,
    rung_releases: &BTreeMap<(u32, u32), Release>,
) -> Option<Release> {
    let rungs: Vec<(Option<Release>, bool)> = change?
        .steps
        .iter()
        .filter_map(|id| match id {
            StepId::UpgradeNode(_, rung) => Some((
                exact(rung, rung_releases),
                walked
                    .steps
                    .get(id)
                    .is_some_and(|f| f.status == StepStatus::Succeeded),
            )),
            _ => None,
        })
        .collect();
    if rungs.is_empty() {
        return None;
    }
    rungs
        .iter()
        .filter(|(_, done)| *done)
        .filter_map(|(r, _)| *r)
        .max()
        .or_else(|| {
            observed
                .cluster
                .nodes
                .get(name.as_str())?
                .kubelet_version
                .as_deref()
                .and_then(crate::kube::kubeadm::parse_version)
        })
}

/// A rung's exact release: its own, or the patch its newest-patch rung
/// came to in this walk.
fn exact(rung: &RungRelease, rung_releases: &BTreeMap<(u32, u32), Release>) -> Option<Release> {
    rung.exact()
        .or_else(|| rung_releases.get(&rung.minor()).copied())
}

/// What a removal did, and why a host it did not reset was left alone.
fn removal(spec: &Spec, observed: &Observed, name: &NodeName, change: &Change) -> Removal {
    let deleted = change
        .steps
        .iter()
        .any(|s| matches!(s, StepId::DeleteNode(_)));
    let reset = change.steps.iter().any(|s| matches!(s, StepId::Reset(_)));
    match (deleted, reset) {
        (true, true) => Removal::Complete,
        (false, _) => Removal::NodeWasGone,
        (true, false) if spec.node(name.as_str()).is_none() => Removal::NotResetNotInFile,
        (true, false) => match observed.hosts.get(name.as_str()) {
            Some(h) if !h.is_reachable() => Removal::NotResetUnreachable,
            Some(h) if h.is_joined() => Removal::NotResetOtherCluster,
            _ => Removal::NothingToReset,
        },
    }
}
