//! When a plan takes an etcd backup first: before any step that changes
//! etcd's membership (a control plane joining, leaving or being replaced, a
//! member no control plane owns removed) or upgrades the cluster (kubeadm
//! upgrades etcd with the control plane)
//! on a cluster that has etcd already, unless the user said not to.

use super::diff::{Diff, Removal};
use super::{PlanOptions, StepId};
use crate::spec::Spec;

pub(super) fn wanted(d: &Diff, spec: &Spec, opts: &PlanOptions) -> bool {
    let risky_removal = |r: &Removal| r.control_plane && !r.step_ids().is_empty();
    d.init.is_none()
        && spec.backup.before_risky_steps
        && !opts.no_backup
        && (!d.control_plane_joins.is_empty()
            || !d.member_removals.is_empty()
            || d.removals.iter().any(risky_removal)
            || d.replacements.iter().any(risky_removal)
            || d.upgrade.touches_etcd())
}

/// The steps that must wait for the backup: each control-plane join's gate
/// (the first one suffices, joins are serial) and the first step of each
/// control plane's removal or replacement, and of each member removal.
pub(super) fn guarded(d: &Diff) -> Vec<StepId> {
    let first_steps = d
        .removals
        .iter()
        .chain(&d.replacements)
        .filter(|r| r.control_plane)
        .filter_map(|r| r.step_ids().into_iter().next());
    d.control_plane_joins
        .iter()
        .map(|n| StepId::JoinControlPlane(n.clone()))
        .chain(first_steps)
        .chain(d.member_removals.iter().map(|m| m.step().id()))
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::plan::tests::{facts, goldentooth};
    use crate::plan::{bootstrap_plan, plan, Plan, PlanOptions, StepId};
    use crate::spec::{NodeState, Spec};

    fn absent(spec: &Spec, node: &str) -> Spec {
        let mut s = spec.clone();
        s.nodes
            .iter_mut()
            .find(|n| n.name.as_str() == node)
            .unwrap()
            .state = NodeState::Absent;
        s
    }

    fn backs_up(p: &Plan) -> bool {
        p.graph.contains(&StepId::BackupEtcd)
    }

    fn after_backup(p: &Plan, step: &str) -> bool {
        let order: Vec<String> = p
            .graph
            .ordered()
            .iter()
            .map(|s| s.id().to_string())
            .collect();
        let at = |id: &str| order.iter().position(|s| s == id).unwrap();
        p.graph
            .dependencies(&step.parse().unwrap())
            .contains(&StepId::BackupEtcd)
            && at("backup-etcd") < at(step)
    }

    #[test]
    fn a_control_plane_join_waits_for_a_backup_first() {
        let spec = goldentooth();
        let p = plan(
            &spec,
            &facts("bootstrap-initialised"),
            &PlanOptions::default(),
        )
        .unwrap();
        assert!(backs_up(&p));
        assert!(after_backup(&p, "gate/before-join-control-plane/cargyll"));
        assert!(p.graph.dependencies(&StepId::BackupEtcd).is_empty());
    }

    #[test]
    fn a_control_plane_removal_waits_for_a_backup_a_worker_removal_does_not() {
        let spec = absent(&goldentooth(), "dalt");
        let p = plan(&spec, &facts("converged"), &PlanOptions::default()).unwrap();
        assert!(after_backup(&p, "drain/dalt"));
        let spec = absent(&goldentooth(), "lipps");
        let p = plan(&spec, &facts("converged"), &PlanOptions::default()).unwrap();
        assert!(!backs_up(&p));
    }

    #[test]
    fn no_backup_when_told_not_to_or_when_there_is_no_etcd_yet() {
        let no_backup = PlanOptions {
            no_backup: true,
            ..PlanOptions::default()
        };
        let spec = goldentooth();
        assert!(!backs_up(
            &plan(&spec, &facts("bootstrap-initialised"), &no_backup).unwrap()
        ));
        let mut off = goldentooth();
        off.backup.before_risky_steps = false;
        let p = plan(
            &off,
            &facts("bootstrap-initialised"),
            &PlanOptions::default(),
        )
        .unwrap();
        assert!(!backs_up(&p));
        assert!(!backs_up(&bootstrap_plan(&spec).unwrap()));
        let p = plan(&spec, &facts("converged"), &PlanOptions::default()).unwrap();
        assert!(!backs_up(&p));
    }
}
