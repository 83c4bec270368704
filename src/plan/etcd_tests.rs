//! etcd in the plan: what etcd's own member list and health change.

use super::tests::{deps, facts, goldentooth, with_state};
use super::*;
use crate::facts::{EtcdFacts, EtcdMember, HostFacts, ReadyStatus};
use crate::spec::NodeState;

/// A member as etcd lists it; healthy or with etcd's reason.
fn member(name: &str, id: &str, address: &str, health: Result<(), &str>) -> EtcdMember {
    EtcdMember {
        id: id.into(),
        name: name.into(),
        peer_urls: vec![format!("https://{address}:2380")],
        client_urls: vec![format!("https://{address}:2379")],
        healthy: Some(health.is_ok()),
        health_error: health.err().map(str::to_string),
        leader: name == "bettley",
        db_size: Some(4_194_304),
        ..Default::default()
    }
}

const DEAD: Result<(), &str> = Err("context deadline exceeded");

/// goldentooth converged, etcd's three members as given.
fn with_members(members: Vec<EtcdMember>) -> Observed {
    let mut obs = facts("converged");
    obs.cluster.etcd = Some(EtcdFacts {
        observed_via: Some("bettley".into()),
        members,
        ..Default::default()
    });
    obs
}

fn three(dalt: Result<(), &'static str>) -> Vec<EtcdMember> {
    vec![
        member("bettley", "a1", "10.4.0.11", Ok(())),
        member("cargyll", "b2", "10.4.0.12", Ok(())),
        member("dalt", "c3", "10.4.0.13", dalt),
    ]
}

/// dalt's host is down: its Node NotReady, its member unhealthy.
fn dalt_down(obs: &mut Observed) {
    obs.hosts.insert(
        "dalt".into(),
        HostFacts::unreachable("connection refused by 10.4.0.13:22 after 0.1 s"),
    );
    obs.cluster.nodes.get_mut("dalt").unwrap().ready = ReadyStatus::Unknown;
}

#[test]
fn a_dead_control_plane_loses_its_member_through_a_healthy_one_before_its_node() {
    let spec = with_state(&goldentooth(), "dalt", NodeState::Absent);
    let mut obs = with_members(three(DEAD));
    dalt_down(&mut obs);
    let p = plan(&spec, &obs, &PlanOptions::default()).unwrap();
    assert_eq!(deps(&p, "remove-etcd-member/c3"), ["drain/dalt"]);
    assert_eq!(deps(&p, "delete-node/dalt"), ["remove-etcd-member/c3"]);
    match p
        .graph
        .step(&"remove-etcd-member/c3".parse().unwrap())
        .unwrap()
    {
        Step::RemoveEtcdMember { via, name, .. } => {
            assert_eq!(via.as_str(), "bettley");
            assert_eq!(name, "dalt");
        }
        s => panic!("{s:?}"),
    }
    let c = &p.changes[0];
    assert!(
        c.reason
            .contains("its etcd member c3 is removed through bettley"),
        "{}",
        c.reason
    );
    assert_eq!(
        c.steps,
        ["drain/dalt", "remove-etcd-member/c3", "delete-node/dalt"]
    );
}

#[test]
fn a_reachable_control_plane_is_left_to_kubeadm_reset() {
    let spec = with_state(&goldentooth(), "cargyll", NodeState::Absent);
    let p = plan(&spec, &with_members(three(Ok(()))), &PlanOptions::default()).unwrap();
    assert_eq!(
        p.changes[0].steps,
        ["drain/cargyll", "reset/cargyll", "delete-node/cargyll"]
    );
}

#[test]
fn removing_a_healthy_control_plane_while_another_is_dead_is_refused_with_the_numbers() {
    let spec = with_state(&goldentooth(), "cargyll", NodeState::Absent);
    let mut obs = with_members(three(DEAD));
    dalt_down(&mut obs);
    let err = plan(&spec, &obs, &PlanOptions::default()).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("refusing to remove cargyll: etcd would have 1 healthy of 2 members, below its quorum of 2 (2/2+1); the control planes that would stay: bettley, dalt; not healthy: dalt is unreachable"),
        "{text}"
    );
    assert!(text.contains("etcd: context deadline exceeded"), "{text}");
}

#[test]
fn etcds_own_health_counts_even_when_the_node_looks_ready() {
    // The Node is Ready (kubelet fine) but etcd on dalt does not answer.
    let spec = with_state(&goldentooth(), "cargyll", NodeState::Absent);
    let obs = with_members(three(DEAD));
    assert!(matches!(
        plan(&spec, &obs, &PlanOptions::default()),
        Err(PlanError::WouldBreakQuorum {
            healthy: 1,
            members: 2,
            quorum: 2,
            ..
        })
    ));
}

#[test]
fn a_member_no_control_plane_owns_is_drift_and_removed_only_with_prune() {
    let mut members = three(Ok(()));
    members.push(member("eyrie", "d4", "10.4.0.22", DEAD));
    let obs = with_members(members);
    let p = plan(&goldentooth(), &obs, &PlanOptions::default()).unwrap();
    assert!(!p.has_changes());
    let w = p
        .warnings
        .iter()
        .find(|w| w.kind == WarningKind::EtcdMember)
        .unwrap();
    assert!(
        w.message
            .contains("etcd member eyrie (d4) has no control plane"),
        "{}",
        w.message
    );
    let report = drift::drift(&goldentooth(), &obs).unwrap();
    assert!(report
        .items
        .iter()
        .any(|i| i.kind == drift::DriftKind::EtcdMember && i.message.contains("eyrie")));

    let prune = PlanOptions {
        prune: true,
        ..Default::default()
    };
    let p = plan(&goldentooth(), &obs, &prune).unwrap();
    let c = &p.changes[0];
    assert_eq!(c.resource, Resource::EtcdMember("eyrie".into()));
    assert_eq!(c.resource.address(), "etcd_member.eyrie");
    assert_eq!(c.action, Action::Delete);
    assert_eq!(c.steps, ["remove-etcd-member/d4"]);
    assert!(c.attributes.contains(&("through".into(), "bettley".into())));
    assert_eq!(p.summary().destroy, 1);
}

#[test]
fn a_member_of_a_node_the_file_marks_absent_is_removed_without_prune() {
    let mut members = three(Ok(()));
    members.push(member("eyrie", "d4", "10.4.0.22", DEAD));
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("cluster.toml");
    let text = std::fs::read_to_string(&path).unwrap()
        + "\n[nodes.eyrie]\nrole = \"control-plane\"\naddress = \"10.4.0.22\"\nstate = \"absent\"\n";
    let spec = crate::spec::load_str(&text, &path).unwrap();
    let mut obs = with_members(members);
    obs.hosts
        .insert("eyrie".into(), HostFacts::unreachable("no route to host"));
    let p = plan(&spec, &obs, &PlanOptions::default()).unwrap();
    assert_eq!(p.changes.len(), 1, "{:?} {:?}", p.changes, p.warnings);
    assert_eq!(p.changes[0].steps, ["remove-etcd-member/d4"]);
    assert!(p.changes[0]
        .reason
        .starts_with("state = \"absent\" in cluster.toml"));
    let report = drift::drift(&spec, &obs).unwrap();
    assert_eq!(
        report.items[0].message,
        "etcd member eyrie is still in etcd, and its node is state = \"absent\" in cluster.toml"
    );
}

#[test]
fn lost_quorum_is_a_warning_and_refuses_joins_and_removals() {
    let mut members = three(DEAD);
    members[1].healthy = Some(false);
    let obs = with_members(members);
    let p = plan(&goldentooth(), &obs, &PlanOptions::default()).unwrap();
    let w = p
        .warnings
        .iter()
        .find(|w| w.kind == WarningKind::EtcdQuorum)
        .unwrap();
    assert_eq!(
        w.short,
        "etcd has lost quorum: 1 of 3 voting members healthy, 2 needed"
    );
    // A worker the cluster does not have yet: a join.
    let mut without_fenn = obs.clone();
    without_fenn.cluster.nodes.remove("fenn");
    without_fenn
        .hosts
        .insert("fenn".into(), HostFacts::default());
    let err = plan(&goldentooth(), &without_fenn, &PlanOptions::default()).unwrap_err();
    assert!(
        err.to_string().starts_with("refusing to join fenn: etcd has lost quorum: 1 of 3 voting members are healthy, 2 needed (3/2+1); not healthy: cargyll (unhealthy); dalt (context deadline exceeded)"),
        "{err}"
    );
    let spec = with_state(&goldentooth(), "fenn", NodeState::Absent);
    let err = plan(&spec, &obs, &PlanOptions::default()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("refusing to remove fenn: etcd has lost quorum"),
        "{err}"
    );
    let report = drift::drift(&goldentooth(), &obs).unwrap();
    assert!(report
        .items
        .iter()
        .any(|i| i.kind == drift::DriftKind::EtcdQuorum));
}

#[test]
fn etcd_that_no_pod_could_read_refuses_joins_and_removals() {
    let mut obs = facts("converged");
    obs.cluster.etcd = Some(EtcdFacts {
        error: Some("through etcd-bettley: context deadline exceeded (exit 1)".into()),
        ..Default::default()
    });
    let spec = with_state(&goldentooth(), "fenn", NodeState::Absent);
    let err = plan(&spec, &obs, &PlanOptions::default()).unwrap_err();
    assert!(
        err.to_string().starts_with("refusing to remove fenn: no control plane's etcd pod could list etcd's members (through etcd-bettley: context deadline exceeded (exit 1))"),
        "{err}"
    );
    let p = plan(&goldentooth(), &obs, &PlanOptions::default()).unwrap();
    assert!(p.warnings.iter().any(|w| w.kind == WarningKind::EtcdQuorum));
}

#[test]
fn a_learner_that_stayed_a_learner_is_drift_of_its_node() {
    let mut members = three(Ok(()));
    members[2].learner = true;
    let obs = with_members(members);
    let report = drift::drift(&goldentooth(), &obs).unwrap();
    let item = report
        .items
        .iter()
        .find(|i| i.kind == drift::DriftKind::EtcdMember)
        .unwrap();
    assert_eq!(item.node.as_ref().map(NodeName::as_str), Some("dalt"));
    assert_eq!(item.message, "etcd member c3 is still a learner");
}

#[test]
fn without_an_etcd_pod_to_ask_the_nodes_are_counted_as_before() {
    let mut obs = facts("converged");
    obs.cluster.etcd = Some(EtcdFacts {
        unavailable: Some("through etcd-bettley: Error from server (NotFound): pods \"etcd-bettley\" not found (exit 1)".into()),
        ..Default::default()
    });
    let spec = with_state(&goldentooth(), "cargyll", NodeState::Absent);
    let p = plan(&spec, &obs, &PlanOptions::default()).unwrap();
    assert_eq!(
        p.changes[0].steps,
        ["drain/cargyll", "reset/cargyll", "delete-node/cargyll"]
    );
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
}

#[test]
fn a_converged_cluster_with_healthy_etcd_has_no_changes_and_no_warnings() {
    let p = plan(
        &goldentooth(),
        &with_members(three(Ok(()))),
        &PlanOptions::default(),
    )
    .unwrap();
    assert!(!p.has_changes());
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
}

#[test]
fn etcd_without_quorum_and_no_api_is_said_so_and_is_drift() {
    // No API server answers without etcd's quorum: only etcd's own answer is left.
    let mut obs = facts("converged");
    obs.cluster = crate::facts::ClusterFacts {
        api: crate::facts::ApiReadiness {
            ready: false,
            error: Some("through bettley: kubectl get nodes failed (exit 1): Error from server: etcdserver: request timed out".into()),
            ..Default::default()
        },
        etcd: Some(EtcdFacts {
            error: Some("through etcd-bettley: context deadline exceeded (exit 1)".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let err = plan(&goldentooth(), &obs, &PlanOptions::default()).unwrap_err();
    assert!(
        err.to_string().starts_with("cannot plan: etcd has lost its quorum (no control plane's etcd pod could list its members: through etcd-bettley: context deadline exceeded (exit 1)), so no API server could answer (through bettley: kubectl get nodes failed"),
        "{err}"
    );
    let report = drift::drift(&goldentooth(), &obs).unwrap();
    assert_eq!(report.items.len(), 1);
    assert_eq!(report.items[0].kind, drift::DriftKind::EtcdQuorum);
    assert!(report.items[0]
        .message
        .starts_with("etcd has lost quorum: no control plane's etcd pod could list its members"));
    // Without etcd's answer it stays what it was: the API could not be read.
    obs.cluster.etcd = None;
    assert!(matches!(
        plan(&goldentooth(), &obs, &PlanOptions::default()),
        Err(PlanError::ClusterUnobservable { .. })
    ));
}

#[test]
fn a_healthy_member_on_a_node_that_is_not_ready_counts_out() {
    // bettley's kubelet stopped: its etcd container runs on, its Node is NotReady.
    let spec = with_state(&goldentooth(), "cargyll", NodeState::Absent);
    let spec = with_state(&spec, "dalt", NodeState::Absent);
    let mut obs = with_members(three(Ok(())));
    obs.cluster.nodes.get_mut("bettley").unwrap().ready = ReadyStatus::Unknown;
    let err = plan(&spec, &obs, &PlanOptions::default()).unwrap_err();
    assert!(
        err.to_string()
            .contains("etcd would have 1 healthy of 2 members"),
        "{err}"
    );
}
