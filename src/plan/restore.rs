//! `gt restore`'s plan: every control plane's etcd replaced by the same
//! snapshot, as etcd's disaster recovery asks (docs/kubeadm.md, "Restoring
//! etcd"): copy and check the snapshot everywhere before anything stops;
//! stop every API server and etcd member; restore each member into a fresh
//! data directory under its own name and peer URL, one new cluster token
//! for all; start every etcd before any API server; wait for the control
//! plane to be ready. A pure function of the file and what was observed.

use super::graph::StepGraph;
use super::{Action, Change, GateBefore, Plan, PlanError, Resource, Step, StepId};
use crate::facts::Observed;
use crate::spec::{NodeName, Role, Spec};

/// What the user asked of the restore beyond the file.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// Restore even though etcd answers (its quorum holds).
    pub force: bool,
    /// Names the fresh data directories and the new cluster token: the
    /// restore's start, `20261130T210000Z`.
    pub stamp: String,
}

/// A restore gt will not plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    #[error("refusing to restore: etcd still has quorum ({via}). A restore throws away every write since the snapshot and must stop every API server; when etcd is merely degraded, remove or replace the failed members instead (`gt plan`). If you mean to roll the cluster back, run gt restore again with --force")]
    QuorumHolds { via: String },
    #[error("cannot restore: {nodes} {are} unreachable ({reasons}); every control plane of cluster.toml gets the snapshot, or etcd would come back with members that never restored it. Make {them} reachable, or set state = \"absent\" for a control plane that is gone for good (etcd then restores without it)")]
    Unreachable {
        nodes: String,
        are: &'static str,
        them: &'static str,
        reasons: String,
    },
    #[error("cannot restore: cluster.toml has no control plane that is present")]
    NoControlPlane,
    #[error(transparent)]
    Plan(#[from] PlanError),
}

/// The fresh data directory of a restore started at `stamp`.
pub fn data_dir(stamp: &str) -> String {
    format!("/var/lib/etcd-restored-{stamp}")
}

/// The restore plan: one change per control plane, the steps above.
pub fn plan(spec: &Spec, observed: &Observed, opts: &RestoreOptions) -> Result<Plan, RestoreError> {
    let cps: Vec<&crate::spec::Node> = spec.control_planes().collect();
    if cps.is_empty() {
        return Err(RestoreError::NoControlPlane);
    }
    let down: Vec<(&NodeName, String)> = cps
        .iter()
        .filter_map(|n| match observed.hosts.get(n.name.as_str()) {
            Some(h) if h.is_reachable() => None,
            Some(h) => Some((&n.name, h.unreachable.clone().unwrap_or_default())),
            None => Some((&n.name, "not observed".to_string())),
        })
        .collect();
    if !down.is_empty() {
        let one = down.len() == 1;
        return Err(RestoreError::Unreachable {
            nodes: down
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            are: if one { "is" } else { "are" },
            them: if one { "it" } else { "them" },
            reasons: down
                .iter()
                .map(|(n, r)| format!("{n}: {r}"))
                .collect::<Vec<_>>()
                .join("; "),
        });
    }
    if let Some(why) = quorum_holds(observed) {
        if !opts.force {
            return Err(RestoreError::QuorumHolds { via: why });
        }
    }
    let initial_cluster = cps
        .iter()
        .map(|n| format!("{}={}", n.name, peer_url(n)))
        .collect::<Vec<_>>()
        .join(",");
    let token = format!("gt-restore-{}", opts.stamp);
    let dir = data_dir(&opts.stamp);
    let names: Vec<NodeName> = cps.iter().map(|n| n.name.clone()).collect();
    let each = |f: fn(NodeName) -> StepId| names.iter().cloned().map(f).collect::<Vec<_>>();

    let mut g = StepGraph::default();
    let mut changes = Vec::new();
    for n in &cps {
        g.add(
            Step::RestorePrepare {
                node: n.name.clone(),
            },
            &[],
        )
        .map_err(PlanError::from)?;
    }
    for n in &cps {
        g.add(
            Step::StopControlPlane {
                node: n.name.clone(),
            },
            &each(StepId::RestorePrepare),
        )
        .map_err(PlanError::from)?;
    }
    for n in &cps {
        g.add(
            Step::RestoreEtcd {
                node: n.name.clone(),
                initial_cluster: initial_cluster.clone(),
                peer_url: peer_url(n),
                token: token.clone(),
                data_dir: dir.clone(),
            },
            &each(StepId::StopControlPlane),
        )
        .map_err(PlanError::from)?;
        g.add(
            Step::CleanRestore {
                node: n.name.clone(),
            },
            &[StepId::RestoreEtcd(n.name.clone())],
        )
        .map_err(PlanError::from)?;
    }
    for n in &cps {
        g.add(
            Step::StartEtcd {
                node: n.name.clone(),
            },
            &each(StepId::RestoreEtcd),
        )
        .map_err(PlanError::from)?;
    }
    for n in &cps {
        g.add(
            Step::StartApiServer {
                node: n.name.clone(),
            },
            &each(StepId::StartEtcd),
        )
        .map_err(PlanError::from)?;
    }
    g.add(
        Step::GateControlPlaneReady {
            before: GateBefore::RestoreDone,
            control_planes: names.clone(),
        },
        &each(StepId::StartApiServer),
    )
    .map_err(PlanError::from)?;
    for n in &cps {
        let name = n.name.clone();
        changes.push(Change {
            resource: Resource::Node(name.clone()),
            action: Action::Update,
            reason: format!(
                "etcd restored from the snapshot as member {name} ({}) into {dir}",
                peer_url(n)
            ),
            role: Some(Role::ControlPlane),
            attributes: vec![],
            labels: Default::default(),
            taints: Default::default(),
            host: Vec::new(),
            steps: vec![
                StepId::RestorePrepare(name.clone()),
                StepId::StopControlPlane(name.clone()),
                StepId::RestoreEtcd(name.clone()),
                StepId::StartEtcd(name.clone()),
                StepId::StartApiServer(name.clone()),
                StepId::CleanRestore(name),
            ],
        });
    }
    Ok(Plan {
        cluster: spec.cluster.name.clone(),
        changes,
        graph: g,
        warnings: vec![],
    })
}

/// Why etcd still has quorum, if it does: etcd's own members and health
/// when gt could read them, else an API server that listed the Nodes (a
/// quorum read).
fn quorum_holds(observed: &Observed) -> Option<String> {
    if let Some(e) = observed.cluster.etcd.as_ref().filter(|e| e.readable()) {
        let q = e.quorum();
        return q.holds().then(|| {
            format!(
                "{} of {} voting members healthy, {} needed",
                q.healthy,
                q.voters,
                q.needed()
            )
        });
    }
    observed
        .cluster
        .observed_via
        .as_ref()
        .map(|via| format!("the API server on {via} answered, which takes etcd's quorum"))
}

/// The member's peer URL: kubeadm advertises the node's address on 2380.
fn peer_url(n: &crate::spec::Node) -> String {
    match n.address {
        std::net::IpAddr::V6(a) => format!("https://[{a}]:2380"),
        a => format!("https://{a}:2380"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::HostFacts;
    use crate::plan::tests::{facts, goldentooth};

    /// converged, with no API server answering: etcd has lost quorum.
    fn quorum_lost() -> Observed {
        let mut o = facts("converged");
        o.cluster.observed_via = None;
        o.cluster.etcd = None;
        o
    }

    fn opts(force: bool) -> RestoreOptions {
        RestoreOptions {
            force,
            stamp: "20261130T210000Z".into(),
        }
    }

    fn deps(p: &Plan, id: &str) -> Vec<String> {
        p.graph
            .dependencies(&id.parse().unwrap())
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn every_member_restores_the_same_snapshot_after_every_control_plane_stopped() {
        let p = plan(&goldentooth(), &quorum_lost(), &opts(false)).unwrap();
        assert_eq!(p.changes.len(), 3);
        assert_eq!(
            deps(&p, "stop-control-plane/bettley"),
            [
                "restore-prepare/bettley",
                "restore-prepare/cargyll",
                "restore-prepare/dalt"
            ]
        );
        assert_eq!(
            deps(&p, "restore-etcd/dalt"),
            [
                "stop-control-plane/bettley",
                "stop-control-plane/cargyll",
                "stop-control-plane/dalt"
            ]
        );
        assert_eq!(
            deps(&p, "start-api-server/cargyll"),
            [
                "start-etcd/bettley",
                "start-etcd/cargyll",
                "start-etcd/dalt"
            ]
        );
        assert_eq!(deps(&p, "clean-restore/dalt"), ["restore-etcd/dalt"]);
        assert_eq!(deps(&p, "gate/after-restore").len(), 3);
        let Some(Step::RestoreEtcd {
            initial_cluster,
            peer_url,
            token,
            data_dir,
            ..
        }) = p.graph.step(&"restore-etcd/cargyll".parse().unwrap())
        else {
            panic!("no restore step");
        };
        assert_eq!(
            initial_cluster,
            "bettley=https://10.4.0.11:2380,cargyll=https://10.4.0.12:2380,dalt=https://10.4.0.13:2380"
        );
        assert_eq!(peer_url, "https://10.4.0.12:2380");
        assert_eq!(token, "gt-restore-20261130T210000Z");
        assert_eq!(data_dir, "/var/lib/etcd-restored-20261130T210000Z");
        assert!(p
            .graph
            .step(&"clean-restore/bettley".parse().unwrap())
            .unwrap()
            .always_runs());
    }

    #[test]
    fn a_cluster_whose_etcd_answers_is_restored_only_with_force() {
        let e = plan(&goldentooth(), &facts("converged"), &opts(false)).unwrap_err();
        assert!(matches!(e, RestoreError::QuorumHolds { .. }));
        let text = e.to_string();
        assert!(
            text.contains("etcd still has quorum (the API server on"),
            "{text}"
        );
        assert!(text.contains("--force"), "{text}");
        assert!(plan(&goldentooth(), &facts("converged"), &opts(true)).is_ok());
    }

    #[test]
    fn etcds_own_health_decides_when_gt_could_read_it() {
        let mut o = facts("converged");
        let etcd = crate::facts::EtcdFacts {
            observed_via: Some("bettley".into()),
            members: ["bettley", "cargyll", "dalt"]
                .iter()
                .enumerate()
                .map(|(i, n)| crate::facts::EtcdMember {
                    id: format!("{i:016x}"),
                    name: n.to_string(),
                    healthy: Some(i == 0),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        o.cluster.etcd = Some(etcd.clone());
        // One healthy of three: quorum is gone though an API server answered.
        assert!(plan(&goldentooth(), &o, &opts(false)).is_ok());
        let mut healthy = etcd;
        for m in &mut healthy.members {
            m.healthy = Some(true);
        }
        o.cluster.etcd = Some(healthy);
        let e = plan(&goldentooth(), &o, &opts(false)).unwrap_err();
        assert!(
            e.to_string()
                .contains("etcd still has quorum (3 of 3 voting members healthy, 2 needed)"),
            "{e}"
        );
    }

    #[test]
    fn an_unreachable_control_plane_stops_the_restore_before_anything_is_planned() {
        let mut o = quorum_lost();
        o.hosts
            .insert("dalt".into(), HostFacts::unreachable("connection refused"));
        let e = plan(&goldentooth(), &o, &opts(true)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot restore: dalt is unreachable (dalt: connection refused); every control plane of \
             cluster.toml gets the snapshot, or etcd would come back with members that never restored it. \
             Make it reachable, or set state = \"absent\" for a control plane that is gone for good \
             (etcd then restores without it)"
        );
    }
}
