//! The recap: per node, what the walk did to it, from the plan's changes
//! and each step's outcome.

use super::events::{Failure, NodeRecap, NodeResult, Recap, StepStatus};
use super::walker::{step_node, Walked};
use crate::facts::Observed;
use crate::plan::{Action, Plan, Resource};
use crate::spec::{Role, Spec};
use std::time::Duration;

pub fn recap(
    spec: &Spec,
    observed: &Observed,
    plan: &Plan,
    walked: &Walked,
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
                    step: id,
                    label: step.label(),
                    node: step_node(step),
                    error: f.reason.clone().unwrap_or_default(),
                });
            }
        }
    }
    let mut names: Vec<String> = spec.nodes.iter().map(|n| n.name.to_string()).collect();
    for c in &plan.changes {
        if let Resource::Node(n) = &c.resource {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
    }
    for name in names {
        let change = plan
            .changes
            .iter()
            .find(|c| c.resource == Resource::Node(name.clone()));
        let Some(change) = change else {
            let (result, detail) = match observed
                .hosts
                .get(&name)
                .and_then(|h| h.unreachable.clone())
            {
                Some(why) => (NodeResult::Unreachable, why),
                None => (NodeResult::Ok, String::new()),
            };
            r.nodes.push(NodeRecap {
                node: name,
                result,
                detail,
            });
            continue;
        };
        let outcomes: Vec<(&String, &super::walker::Finished)> = change
            .steps
            .iter()
            .filter_map(|id| walked.steps.get(id).map(|f| (id, f)))
            .collect();
        let failed = outcomes
            .iter()
            .find(|(_, f)| f.status == StepStatus::Failed);
        let not_run = outcomes
            .iter()
            .find(|(_, f)| matches!(f.status, StepStatus::Skipped | StepStatus::Cancelled));
        let (result, detail) = if let Some((id, f)) = failed {
            let why = f
                .reason
                .as_deref()
                .unwrap_or("")
                .lines()
                .next()
                .unwrap_or("");
            (NodeResult::Failed, format!("{id}: {why}"))
        } else if let Some((id, f)) = not_run {
            let done: Vec<&str> = outcomes
                .iter()
                .filter(|(_, f)| f.status == StepStatus::Succeeded)
                .map(|(id, _)| id.as_str())
                .collect();
            let why = f.reason.clone().unwrap_or_default();
            let detail = if done.is_empty() {
                why
            } else {
                format!("done: {}; not done: {id} ({why})", done.join(", "))
            };
            (NodeResult::Skipped, detail)
        } else {
            match change.action {
                Action::Create => r.joined += 1,
                Action::Update => r.changed += 1,
                Action::Delete => r.removed += 1,
                Action::Replace => r.joined += 1,
            }
            let done = match (change.action, change.role) {
                (Action::Create, _) if change.steps.iter().any(|s| s.starts_with("init/")) => {
                    "initialised the cluster".to_string()
                }
                (Action::Create, Some(Role::ControlPlane)) => "joined as a control plane".into(),
                (Action::Create, _) => "joined as a worker".into(),
                (Action::Update, _) => update_words(change),
                (Action::Delete, _) => removal_words(spec, observed, &name, change),
                (Action::Replace, _) => "reset and joined again".into(),
            };
            (NodeResult::Changed, done)
        };
        r.nodes.push(NodeRecap {
            node: name,
            result,
            detail,
        });
    }
    r
}

/// What a removal did, and what it left to do by hand: a host gt did not
/// reset still runs its kubelet with this cluster's credentials. Short: the
/// text recap cuts a row at 64 characters.
fn removal_words(
    spec: &Spec,
    observed: &Observed,
    name: &str,
    change: &crate::plan::Change,
) -> String {
    let has = |prefix: &str| change.steps.iter().any(|s| s.starts_with(prefix));
    match (has("delete-node/"), has("reset/")) {
        (true, true) => "removed".into(),
        (false, _) => "reset (its Node was already gone)".into(),
        (true, false) if spec.node(name).is_none() => {
            "removed, not reset (not in the file): run kubeadm reset -f on it".into()
        }
        (true, false) => match observed.hosts.get(name) {
            Some(h) if !h.is_reachable() => {
                "removed, not reset (unreachable): run kubeadm reset -f on it".into()
            }
            Some(h) if h.is_joined() => {
                "removed, not reset (its host is in another cluster)".into()
            }
            _ => "removed (its host had no kubeadm state to reset)".into(),
        },
    }
}

fn update_words(c: &crate::plan::Change) -> String {
    match (c.labels.is_empty(), c.taints.is_empty()) {
        (false, false) => "labels and taints updated".into(),
        (false, true) => "labels updated".into(),
        _ => "taints updated".into(),
    }
}
