//! Planner semantics the snapshot matrix does not pin down.

use super::*;
use crate::facts::{HostFacts, ReadyStatus};
use std::path::Path;

pub(super) fn goldentooth() -> Spec {
    crate::spec::load_file(&Path::new(env!("CARGO_MANIFEST_DIR")).join("cluster.toml")).unwrap()
}

pub(super) fn facts(name: &str) -> Observed {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/facts")
        .join(format!("{name}.json"));
    Observed::from_json(&std::fs::read_to_string(p).unwrap()).unwrap()
}

pub(super) fn with_state(spec: &Spec, node: &str, state: crate::spec::NodeState) -> Spec {
    let mut s = spec.clone();
    s.nodes
        .iter_mut()
        .find(|n| n.name.as_str() == node)
        .unwrap()
        .state = state;
    s
}

pub(super) fn id(s: &str) -> StepId {
    s.parse().unwrap()
}

pub(super) fn deps(p: &Plan, step: &str) -> Vec<String> {
    p.graph
        .dependencies(&id(step))
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn position(p: &Plan, id: &str) -> usize {
    p.graph
        .ordered()
        .iter()
        .position(|s| s.id() == id)
        .unwrap_or_else(|| panic!("{id} not in plan"))
}

#[test]
fn full_bootstrap_orders_init_cni_gate_serial_control_planes_parallel_workers_revoke() {
    let p = bootstrap_plan(&goldentooth()).unwrap();
    assert_eq!(p.graph.ordered()[0].id(), "init/bettley");
    assert_eq!(deps(&p, "install-cni"), ["init/bettley"]);
    assert!(deps(&p, "gate/before-join-control-plane/cargyll").contains(&"install-cni".to_string()));
    // A gate before each control-plane join: etcd grows by one healthy member at a time.
    assert_eq!(
        deps(&p, "gate/before-join-control-plane/dalt"),
        ["join-control-plane/cargyll"]
    );
    assert_eq!(
        deps(&p, "join-control-plane/dalt"),
        [
            "gate/before-join-control-plane/dalt",
            "mint-token",
            "upload-certs"
        ]
    );
    match p
        .graph
        .step(&id("gate/before-join-control-plane/dalt"))
        .unwrap()
    {
        Step::GateControlPlaneReady { control_planes, .. } => {
            assert_eq!(
                control_planes
                    .iter()
                    .map(|n| n.as_str())
                    .collect::<Vec<_>>(),
                ["bettley", "cargyll"]
            )
        }
        s => panic!("{s:?}"),
    }
    for w in ["erenford", "fenn", "velaryon"] {
        assert_eq!(
            deps(&p, &format!("join-worker/{w}")),
            ["gate/before-worker-joins", "mint-token"],
            "{w} joins behind the gate with the one token"
        );
    }
    assert!(deps(&p, "gate/before-worker-joins").contains(&"join-control-plane/dalt".to_string()));
    assert_eq!(
        deps(&p, "revoke-token").len(),
        11,
        "revoked after every join"
    );
    assert_eq!(
        p.graph
            .ordered()
            .iter()
            .filter(|s| matches!(s, Step::MintToken))
            .count(),
        1
    );
    assert!(position(&p, "join-control-plane/dalt") < position(&p, "join-worker/erenford"));
    assert_eq!(
        p.summary(),
        Summary {
            add: 13,
            change: 0,
            destroy: 0
        }
    );
}

#[test]
fn only_workers_joining_needs_no_certificate_upload_and_one_gate() {
    let p = plan(
        &goldentooth(),
        &facts("control-planes-joined"),
        &PlanOptions::default(),
    )
    .unwrap();
    assert!(!p.graph.contains(&id("upload-certs")));
    assert!(!p.graph.ordered().iter().any(|s| s
        .id()
        .to_string()
        .starts_with("gate/before-join-control-plane/")));
    assert!(!p.graph.contains(&id("init/bettley")));
    match p.graph.step(&id("gate/before-worker-joins")).unwrap() {
        Step::GateControlPlaneReady { control_planes, .. } => {
            let names: Vec<&str> = control_planes.iter().map(|n| n.as_str()).collect();
            assert_eq!(names, ["bettley", "cargyll", "dalt"]);
        }
        s => panic!("{s:?}"),
    }
    assert_eq!(
        p.summary(),
        Summary {
            add: 9,
            change: 0,
            destroy: 0
        }
    );
}

#[test]
fn converged_cluster_has_no_changes_and_no_steps() {
    let p = plan(&goldentooth(), &facts("converged"), &PlanOptions::default()).unwrap();
    assert!(!p.has_changes());
    assert!(p.graph.is_empty());
    assert!(p.warnings.is_empty());
}

#[test]
fn removing_a_control_plane_while_another_is_not_ready_is_refused() {
    let spec = with_state(&goldentooth(), "cargyll", crate::spec::NodeState::Absent);
    // Validation would refuse 2 present control planes; the planner must refuse on its own too.
    let mut obs = facts("converged");
    let dalt = obs.cluster.nodes.get_mut("dalt").unwrap();
    dalt.ready = ReadyStatus::Unknown;
    dalt.ready_reason = Some("NodeStatusUnknown".into());
    let err = plan(&spec, &obs, &PlanOptions::default()).unwrap_err();
    assert_eq!(
        err,
        PlanError::WouldBreakQuorum {
            node: "cargyll".into(),
            healthy: 1,
            members: 2,
            quorum: 2,
            staying: "bettley, dalt".into(),
            unhealthy: "dalt is NotReady (Ready=Unknown, NodeStatusUnknown)".into(),
            advice: "heal dalt first and plan again, or join a new control plane in the same apply"
                .into(),
        }
    );
    assert_eq!(
        err.to_string(),
        "refusing to remove cargyll: etcd would have 1 healthy of 2 members, below its quorum of 2 (2/2+1); \
         the control planes that would stay: bettley, dalt; not healthy: dalt is NotReady (Ready=Unknown, NodeStatusUnknown). \
         To remove cargyll: heal dalt first and plan again, or join a new control plane in the same apply"
    );
}

#[test]
fn an_unreachable_control_plane_is_not_counted_healthy_though_its_node_still_says_ready() {
    let spec = with_state(&goldentooth(), "cargyll", crate::spec::NodeState::Absent);
    let mut obs = facts("converged");
    obs.hosts.insert(
        "dalt".into(),
        HostFacts::unreachable("connection refused after 5 s"),
    );
    let err = plan(&spec, &obs, &PlanOptions::default()).unwrap_err();
    assert!(
        err.to_string()
            .contains("not healthy: dalt is unreachable (connection refused after 5 s)"),
        "{err}"
    );
}

#[test]
fn a_control_plane_whose_own_api_server_fails_its_etcd_check_is_not_counted_healthy() {
    let spec = with_state(&goldentooth(), "cargyll", crate::spec::NodeState::Absent);
    let mut obs = facts("converged");
    obs.cluster.api_servers.insert(
        "dalt".into(),
        crate::facts::ApiReadiness {
            ready: false,
            failed_checks: vec!["etcd".into(), "etcd-readiness".into()],
            error: None,
        },
    );
    let err = plan(&spec, &obs, &PlanOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains(
            "not healthy: dalt's API server is not ready (failing checks: etcd, etcd-readiness)"
        ),
        "{err}"
    );
}

#[test]
fn two_healthy_control_planes_of_three_leave_one_at_a_time() {
    let spec = with_state(&goldentooth(), "cargyll", crate::spec::NodeState::Absent);
    let spec = with_state(&spec, "dalt", crate::spec::NodeState::Absent);
    let p = plan(&spec, &facts("converged"), &PlanOptions::default()).unwrap();
    // 3 → 2 (2 healthy of 2, quorum 2) → 1 (quorum 1): each step keeps a majority.
    assert_eq!(deps(&p, "drain/dalt"), ["delete-node/cargyll"]);
    assert_eq!(p.summary().destroy, 2);
}

#[test]
fn a_not_ready_control_plane_that_leaves_goes_first() {
    let spec = with_state(&goldentooth(), "cargyll", crate::spec::NodeState::Absent);
    let spec = with_state(&spec, "dalt", crate::spec::NodeState::Absent);
    let mut obs = facts("converged");
    obs.cluster.nodes.get_mut("dalt").unwrap().ready = ReadyStatus::False;
    // cargyll first would leave {bettley, dalt} with one healthy member: no quorum.
    let p = plan(&spec, &obs, &PlanOptions::default()).unwrap();
    assert_eq!(deps(&p, "drain/cargyll"), ["delete-node/dalt"]);
}

#[test]
fn a_healthy_control_plane_is_not_removed_while_the_one_that_stays_is_not_ready() {
    let spec = with_state(&goldentooth(), "bettley", crate::spec::NodeState::Absent);
    let spec = with_state(&spec, "dalt", crate::spec::NodeState::Absent);
    let mut obs = facts("converged");
    obs.cluster.nodes.get_mut("cargyll").unwrap().ready = ReadyStatus::False;
    let err = plan(&spec, &obs, &PlanOptions::default()).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("refusing to remove bettley: etcd would have 1 healthy of 2 members, below its quorum of 2"),
        "{text}"
    );
    assert!(
        text.contains("remove fewer control planes at once"),
        "{text}"
    );
}

#[test]
fn the_last_control_plane_is_never_removed() {
    let mut spec = goldentooth();
    for n in ["bettley", "cargyll", "dalt"] {
        spec = with_state(&spec, n, crate::spec::NodeState::Absent);
    }
    // fenn is a control plane in the file only: a worker in the cluster, it does not join.
    spec.nodes
        .iter_mut()
        .find(|n| n.name.as_str() == "fenn")
        .unwrap()
        .role = Role::ControlPlane;
    let err = plan(&spec, &facts("converged"), &PlanOptions::default()).unwrap_err();
    assert_eq!(
        err,
        PlanError::LastControlPlane {
            nodes: "bettley, cargyll, dalt".into()
        }
    );
}

#[test]
fn removing_a_control_plane_with_healthy_peers_drains_resets_and_deletes_in_kubeadms_order() {
    let spec = with_state(&goldentooth(), "cargyll", crate::spec::NodeState::Absent);
    let p = plan(&spec, &facts("converged"), &PlanOptions::default()).unwrap();
    // kubeadm reset removes the etcd member only while the Node is still there.
    assert_eq!(deps(&p, "reset/cargyll"), ["drain/cargyll"]);
    assert_eq!(deps(&p, "delete-node/cargyll"), ["reset/cargyll"]);
    assert_eq!(
        p.summary(),
        Summary {
            add: 0,
            change: 0,
            destroy: 1
        }
    );
}

#[test]
fn a_cluster_on_disk_that_did_not_answer_is_never_initialised_again() {
    let mut obs = facts("converged");
    obs.cluster = Default::default();
    obs.cluster.api.error = Some("connection refused".into());
    let err = plan(&goldentooth(), &obs, &PlanOptions::default()).unwrap_err();
    assert!(
        matches!(err, PlanError::ClusterUnobservable { .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("bettley, cargyll, dalt have a cluster's control-plane files"),
        "{err}"
    );
}

#[test]
fn an_unreachable_bootstrap_node_on_an_empty_cluster_cannot_be_planned() {
    let mut obs = facts("empty");
    obs.hosts.insert(
        "bettley".into(),
        HostFacts::unreachable("connection refused after 5 s"),
    );
    let err = plan(&goldentooth(), &obs, &PlanOptions::default()).unwrap_err();
    assert!(err
        .to_string()
        .contains("bootstrap node bettley is unreachable (connection refused after 5 s)"));
}

#[test]
fn a_host_with_this_clusters_state_but_no_node_object_is_reset_and_rejoined() {
    let mut obs = facts("converged");
    obs.cluster.nodes.remove("fenn");
    let p = plan(&goldentooth(), &obs, &PlanOptions::default()).unwrap();
    let c = &p.changes[0];
    assert_eq!(
        (c.resource.address().as_str(), c.action),
        ("node.fenn", Action::Replace)
    );
    assert_eq!(
        deps(&p, "join-worker/fenn"),
        ["gate/before-worker-joins", "mint-token", "reset/fenn"]
    );
}

#[test]
fn a_role_that_differs_needs_replace() {
    let mut obs = facts("converged");
    obs.cluster
        .nodes
        .get_mut("harlton")
        .unwrap()
        .labels
        .insert("node-role.kubernetes.io/master".into(), String::new());
    let p = plan(&goldentooth(), &obs, &PlanOptions::default()).unwrap();
    assert!(!p.has_changes());
    assert_eq!(p.warnings[0].kind, WarningKind::RoleMismatch);
    let opts = PlanOptions {
        replace: ["harlton".to_string()].into(),
        ..Default::default()
    };
    let p = plan(&goldentooth(), &obs, &opts).unwrap();
    assert_eq!(p.changes[0].action, Action::Replace);
    assert_eq!(
        p.changes[0].steps[..3],
        ["drain/harlton", "reset/harlton", "delete-node/harlton"]
    );
}

#[test]
fn a_control_plane_of_another_cluster_is_replaced_without_waiting_for_itself() {
    // dalt was re-initialised behind gt's back: its Node is still here, its CA is not.
    let mut obs = facts("converged");
    obs.hosts.get_mut("dalt").unwrap().ca_pin = Some(format!("sha256:{}", "e".repeat(64)));
    let opts = PlanOptions {
        replace: ["dalt".to_string()].into(),
        ..Default::default()
    };
    let p = plan(&goldentooth(), &obs, &opts).unwrap();
    assert_eq!(p.changes[0].action, Action::Replace);
    assert!(deps(&p, "join-control-plane/dalt").contains(&"delete-node/dalt".to_string()));
    // The gate before its join waits for the control planes that stay, not
    // for dalt's own API server, which the reset has just stopped.
    match p
        .graph
        .step(&id("gate/before-join-control-plane/dalt"))
        .unwrap()
    {
        Step::GateControlPlaneReady { control_planes, .. } => {
            let names: Vec<&str> = control_planes.iter().map(|n| n.as_str()).collect();
            assert_eq!(names, ["bettley", "cargyll"]);
        }
        s => panic!("{s:?}"),
    }
}

#[test]
fn control_planes_replaced_together_leave_one_at_a_time() {
    let mut spec = goldentooth();
    for n in ["fenn", "gardener"] {
        spec.nodes
            .iter_mut()
            .find(|x| x.name.as_str() == n)
            .unwrap()
            .role = Role::ControlPlane;
    }
    // Five control planes in the cluster; two of them carry another CA.
    let mut obs = facts("converged");
    for n in ["fenn", "gardener"] {
        obs.cluster.nodes.get_mut(n).unwrap().labels.insert(
            "node-role.kubernetes.io/control-plane".into(),
            String::new(),
        );
    }
    for n in ["dalt", "fenn"] {
        obs.hosts.get_mut(n).unwrap().ca_pin = Some(format!("sha256:{}", "e".repeat(64)));
    }
    let opts = PlanOptions {
        replace: ["dalt".to_string(), "fenn".to_string()].into(),
        ..Default::default()
    };
    let p = plan(&spec, &obs, &opts).unwrap();
    assert_eq!(deps(&p, "drain/fenn"), ["delete-node/dalt"]);
}

#[test]
fn replace_of_an_unknown_node_is_an_error() {
    let opts = PlanOptions {
        replace: ["nobody".to_string()].into(),
        ..Default::default()
    };
    let err = plan(&goldentooth(), &facts("converged"), &opts).unwrap_err();
    assert_eq!(
        err.to_string(),
        "--replace nobody: no node of that name in cluster.toml"
    );
}

#[test]
fn labels_gt_does_not_own_are_never_touched() {
    let mut obs = facts("converged");
    let fenn = obs.cluster.nodes.get_mut("fenn").unwrap();
    fenn.labels
        .insert("feature.node.kubernetes.io/cpu".into(), "a72".into());
    fenn.labels
        .insert("topology.kubernetes.io/zone".into(), "rack1".into());
    let p = plan(&goldentooth(), &obs, &PlanOptions::default()).unwrap();
    assert!(!p.has_changes());
}

#[test]
fn drift_by_node_reports_changes_and_warnings_per_node() {
    let d = drift_by_node(&goldentooth(), &facts("label-taint-drift"));
    assert_eq!(
        d.keys().collect::<Vec<_>>(),
        ["fenn", "harlton", "velaryon"]
    );
    assert!(d["fenn"].iter().all(|m| m.starts_with("label ")), "{d:?}");
    assert!(drift_by_node(&goldentooth(), &facts("converged")).is_empty());
    let d = drift_by_node(&goldentooth(), &facts("not-ready"));
    // The cause first (apply starts the kubelet), then what it causes.
    assert_eq!(d["inchfield"][0], "kubelet not active (gt apply starts it)");
    assert_eq!(
        d["inchfield"][1],
        "NotReady (Ready=Unknown, NodeStatusUnknown)"
    );
}

/// `(node, kind, message)` of every drift item, in report order.
fn drift_lines(name: &str) -> Vec<(String, &'static str, String)> {
    drift::drift(&goldentooth(), &facts(name))
        .unwrap()
        .items
        .into_iter()
        .map(|i| {
            (
                i.node.map_or_else(|| "-".into(), String::from),
                i.kind.as_str(),
                i.message,
            )
        })
        .collect()
}

#[test]
fn a_converged_cluster_has_no_drift_and_every_node_ready() {
    let r = drift::drift(&goldentooth(), &facts("converged")).unwrap();
    assert!(r.in_sync(), "{:?}", r.items);
    assert_eq!(r.nodes.len(), 12);
    assert!(r
        .nodes
        .iter()
        .all(|n| n.ready && n.reachable && n.in_config));
    assert!(r.by_kind().iter().all(|(_, n)| *n == 0));
    assert_eq!(r.by_kind().len(), drift::DriftKind::ALL.len());
}

#[test]
fn label_and_taint_drift_is_one_item_per_key() {
    let lines = drift_lines("label-taint-drift");
    let obs = facts("label-taint-drift");
    // Every item names a node of the fixture's label/taint changes.
    assert!(!lines.is_empty());
    for (node, kind, msg) in &lines {
        assert!(*kind == "label" || *kind == "taint", "{node} {kind} {msg}");
        assert!(obs.cluster.nodes.contains_key(node));
    }
    // Each differing key of the plan's SetDiffs shows up as its own line.
    let p = plan(&goldentooth(), &obs, &PlanOptions::default()).unwrap();
    let keys_changed: usize = p
        .changes
        .iter()
        .map(|c| {
            let key = |l: &Label| l.key.to_string();
            let b: BTreeSet<String> = c.labels.before.iter().map(key).collect();
            let a: BTreeSet<String> = c.labels.after.iter().map(key).collect();
            let label_keys = b
                .union(&a)
                .filter(|k| {
                    c.labels.before.iter().find(|l| key(l) == **k)
                        != c.labels.after.iter().find(|l| key(l) == **k)
                })
                .count();
            label_keys + c.taints.added().len() + c.taints.removed().len()
        })
        .sum();
    assert_eq!(lines.len(), keys_changed, "{lines:#?}");
}

#[test]
fn label_messages_say_what_is_there_and_what_is_wanted() {
    let spec = goldentooth();
    let mut obs = facts("converged");
    let fenn = obs.cluster.nodes.get_mut("fenn").unwrap();
    fenn.labels.remove("goldentooth.io/storage");
    fenn.labels
        .insert("goldentooth.io/hardware".into(), "raspberry-pi-5".into());
    fenn.labels
        .insert("goldentooth.io/extra".into(), "yes".into());
    let r = drift::drift(&spec, &obs).unwrap();
    let msgs: Vec<(&str, &str)> = r
        .items
        .iter()
        .map(|i| (i.node.as_ref().unwrap().as_str(), i.message.as_str()))
        .collect();
    assert_eq!(
        msgs,
        [
            ("fenn", "label goldentooth.io/extra=yes not in cluster.toml"),
            (
                "fenn",
                "label goldentooth.io/hardware is raspberry-pi-5 (want raspberry-pi-4b)"
            ),
            ("fenn", "label goldentooth.io/storage missing (want ceph)"),
        ]
    );
    assert!(r.items.iter().all(|i| i.kind == drift::DriftKind::Label));
    assert_eq!(r.drifted_nodes(), ["fenn"]);
}

#[test]
fn warnings_are_drift_with_their_kind() {
    let kinds = |name: &str| -> BTreeSet<&'static str> {
        drift_lines(name).into_iter().map(|(_, k, _)| k).collect()
    };
    assert!(kinds("not-ready").contains("not_ready"));
    assert!(kinds("unreachable").contains("unreachable"));
    assert!(kinds("kubelet-behind").contains("version"));
    assert!(kinds("other-cluster").contains("other_cluster"));
    assert!(kinds("node-not-in-file").contains("extra"));
    let lines = drift_lines("kubelet-behind");
    let (_, _, msg) = lines.iter().find(|(_, k, _)| *k == "version").unwrap();
    assert!(msg.starts_with("kubelet v1.31"), "{msg}");
}

#[test]
fn an_empty_cluster_is_one_cluster_item_and_every_node_missing() {
    let lines = drift_lines("empty");
    assert_eq!(
        lines[0],
        (
            "-".into(),
            "missing",
            "does not exist (no control plane has initialised it)".into()
        )
    );
    assert_eq!(
        lines.iter().filter(|(_, k, _)| *k == "missing").count(),
        13,
        "{lines:#?}"
    );
}

#[test]
fn a_control_planes_own_api_server_unready_is_drift_on_that_node() {
    let mut obs = facts("converged");
    obs.cluster.api_servers = ["bettley", "cargyll", "dalt"]
        .into_iter()
        .map(|n| {
            let ready = n != "cargyll";
            (
                n.to_string(),
                crate::facts::ApiReadiness {
                    ready,
                    failed_checks: if ready { vec![] } else { vec!["etcd".into()] },
                    error: None,
                },
            )
        })
        .collect();
    let r = drift::drift(&goldentooth(), &obs).unwrap();
    assert_eq!(r.items.len(), 1, "{:?}", r.items);
    let i = &r.items[0];
    assert_eq!(i.node.as_ref().map(NodeName::as_str), Some("cargyll"));
    assert_eq!(i.kind, drift::DriftKind::ApiNotReady);
    assert_eq!(i.message, "API server not ready: failing checks: etcd");
    assert!(i.detail.contains("10.4.0.12:6443"), "{}", i.detail);
    // The plan itself has nothing to change: a warning, not a change.
    let p = plan(&goldentooth(), &obs, &PlanOptions::default()).unwrap();
    assert!(!p.has_changes());
    assert_eq!(p.warnings.len(), 1);
}

#[test]
fn a_removal_the_plan_refuses_is_still_drift() {
    let spec = with_state(&goldentooth(), "cargyll", crate::spec::NodeState::Absent);
    let mut obs = facts("converged");
    let dalt = obs.cluster.nodes.get_mut("dalt").unwrap();
    dalt.ready = ReadyStatus::Unknown;
    dalt.ready_reason = Some("NodeStatusUnknown".into());
    assert!(plan(&spec, &obs, &PlanOptions::default()).is_err());
    let lines: Vec<(String, &str)> = drift::drift(&spec, &obs)
        .unwrap()
        .items
        .into_iter()
        .map(|i| {
            (
                i.node.map(String::from).unwrap_or_default(),
                i.kind.as_str(),
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            ("cargyll".to_string(), "extra"),
            ("dalt".to_string(), "not_ready")
        ]
    );
}

#[test]
fn every_plan_document_reads_back_as_the_same_typed_document() {
    // A saved plan's stale check compares the document read from the file
    // with a fresh one: what JSON loses would read as a change.
    let replace = PlanOptions {
        prune: true,
        replace: ["fenn".to_string(), "dalt".to_string()].into(),
        ..PlanOptions::default()
    };
    let mut checked = 0;
    for name in [
        "empty",
        "bootstrap-initialised",
        "control-planes-joined",
        "label-taint-drift",
        "node-not-in-file",
        "not-ready",
        "other-cluster",
        "unreachable",
    ] {
        for opts in [PlanOptions::default(), replace.clone()] {
            let Ok(p) = plan(&goldentooth(), &facts(name), &opts) else {
                continue;
            };
            let doc = p.document();
            let text = serde_json::to_string(&doc.to_sorted_value()).unwrap();
            let back: PlanDocument = serde_json::from_str(&text).unwrap();
            assert!(back.same_work(&doc), "{name}: {text}");
            assert_eq!(back.work_lines(), doc.work_lines(), "{name}");
            checked += 1;
        }
    }
    assert!(checked >= 8, "{checked}");
}

#[test]
fn labels_sort_as_their_key_value_lines_do() {
    let l = |k: &str, v: &str| Label::new(k, v).unwrap();
    let mut labels = [l("a", "x"), l("a.b", "x"), l("a", "w"), l("a-b", "z")];
    labels.sort();
    let lines: Vec<String> = labels.iter().map(ToString::to_string).collect();
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted);
    assert_eq!(lines, ["a-b=z", "a.b=x", "a=w", "a=x"]);
}

/// A node the rungs upgrade leaves its kube packages and repository to its
/// upgrade steps: its host plan installs neither (it would jump straight to
/// the file's release), and a node the rungs do not take keeps its own.
#[test]
fn an_upgraded_nodes_host_plan_leaves_its_kube_packages_to_the_rungs() {
    let mut spec = goldentooth();
    spec.cluster.kubernetes_version = crate::spec::KubeVersion::parse("1.32.9").unwrap();
    let mut o = facts("host-converged");
    o.cluster.kubernetes_version = Some("v1.32.4".into());
    let p = plan(&spec, &o, &PlanOptions::default()).unwrap();
    let upgraded: Vec<&str> = p
        .graph
        .ordered()
        .iter()
        .filter_map(|s| match s {
            Step::UpgradeNode { node, .. } => Some(node.as_str()),
            _ => None,
        })
        .collect();
    assert!(!upgraded.is_empty(), "{:#?}", p.changes);
    for c in &p.changes {
        if let Resource::Host(n) = &c.resource {
            assert!(
                !upgraded.contains(&n.as_str())
                    || c.host.iter().all(|h| h.kind != "apt_source"
                        && !(h.kind == "package"
                            && crate::kube::apt::KUBE_PACKAGES.contains(&h.name.as_str()))),
                "{n}: {:#?}",
                c.host
            );
        }
    }
}

#[test]
fn a_join_registers_its_labels_and_taints_and_kubectl_sets_only_what_a_kubelet_may_not() {
    // goldentooth's labels are all the kubelet's to set, and kubeadm
    // registers every node's taints: no step after any join.
    let p = bootstrap_plan(&goldentooth()).unwrap();
    assert!(
        !p.graph
            .ordered()
            .iter()
            .any(|s| matches!(s.id(), StepId::Update(_))),
        "{:?}",
        p.graph.ordered().iter().map(|s| s.id()).collect::<Vec<_>>()
    );
    let velaryon = p
        .changes
        .iter()
        .find(|c| c.resource == Resource::Node("velaryon".parse().unwrap()))
        .unwrap();
    assert_eq!(velaryon.labels.after.len(), 2, "the plan still shows them");
    assert_eq!(velaryon.taints.after.len(), 1);

    // One a kubelet may not set: kubectl after the join, that label alone.
    let p = bootstrap_plan(&crate::spec::goldentooth_labelled_after_join("velaryon")).unwrap();
    assert_eq!(deps(&p, "update/velaryon"), ["join-worker/velaryon"]);
    match p.graph.step(&id("update/velaryon")) {
        Some(Step::UpdateNode { labels, taints, .. }) => {
            let keys: Vec<&str> = labels.after.iter().map(|l| l.key.as_str()).collect();
            assert_eq!(keys, ["app.kubernetes.io/part-of"]);
            assert!(taints.is_empty(), "registered at the join");
        }
        other => panic!("{other:?}"),
    }
}
