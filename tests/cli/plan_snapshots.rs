//! Snapshots (insta, in snapshots/) of the rendered plan, text and JSON, over
//! the matrix of recorded observations in tests/fixtures/facts/.

use crate::support::gt::{fixture, root};
use crate::support::secrets::has_secret;
use gt::facts::Observed;
use gt::plan::{plan, PlanOptions};
use gt::render::{plan_json, plan_text, Style};

fn spec(config: &str) -> gt::spec::Spec {
    gt::spec::load_file(&root().join(config)).expect("config is valid")
}

fn facts(name: &str) -> Observed {
    Observed::from_json(&std::fs::read_to_string(fixture(name)).unwrap()).unwrap()
}

/// Renders both forms and snapshots them under `snapshots/`.
fn check(snapshot: &str, config: &str, facts_name: &str, opts: PlanOptions) {
    let spec = spec(config);
    let p = plan(&spec, &facts(facts_name), &opts).expect("plan");
    let text = plan_text(&p, Style { color: false });
    let json = plan_json(&p);
    // Deterministic to the byte: a second run renders the same.
    let again = plan(&spec, &facts(facts_name), &opts).unwrap();
    assert_eq!(text, plan_text(&again, Style { color: false }));
    assert_eq!(json, plan_json(&again));
    // Plans never carry secrets: no bootstrap token, no certificate key.
    assert!(!has_secret(&text) && !has_secret(&json));
    let mut settings = insta::Settings::clone_current();
    // The snapshots live at the repository root whatever this module is named.
    settings.set_snapshot_path(root().join("snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| {
        insta::assert_snapshot!(format!("{snapshot}.txt"), text);
        insta::assert_snapshot!(format!("{snapshot}.json"), json);
    });
}

fn none() -> PlanOptions {
    PlanOptions::default()
}

const GT: &str = "cluster.toml";

#[test]
fn empty_cluster_plans_a_full_bootstrap() {
    check("empty", GT, "empty", none());
}

#[test]
fn bootstrap_node_initialised_only() {
    check("bootstrap-initialised", GT, "bootstrap-initialised", none());
}

#[test]
fn control_planes_joined_no_workers() {
    check("control-planes-joined", GT, "control-planes-joined", none());
}

#[test]
fn fully_converged_has_no_changes() {
    check("converged", GT, "converged", none());
}

#[test]
fn label_and_taint_drift() {
    check("label-taint-drift", GT, "label-taint-drift", none());
}

#[test]
fn node_not_in_file_without_prune_is_a_warning() {
    check("node-not-in-file", GT, "node-not-in-file", none());
}

#[test]
fn node_not_in_file_with_prune_is_removed() {
    check(
        "node-not-in-file-prune",
        GT,
        "node-not-in-file",
        PlanOptions {
            prune: true,
            ..none()
        },
    );
}

#[test]
fn state_absent_removes_the_node() {
    check(
        "absent",
        "examples/goldentooth-remove-lipps.toml",
        "converged",
        none(),
    );
}

#[test]
fn node_joined_to_another_cluster_is_left_alone() {
    check("other-cluster", GT, "other-cluster", none());
}

#[test]
fn node_joined_to_another_cluster_is_replaced_with_consent() {
    check(
        "other-cluster-replace",
        GT,
        "other-cluster",
        PlanOptions {
            replace: ["karstark".to_string()].into(),
            ..none()
        },
    );
}

#[test]
fn unreachable_hosts() {
    check("unreachable", GT, "unreachable", none());
}

#[test]
fn not_ready_node() {
    check("not-ready", GT, "not-ready", none());
}

#[test]
fn kubelet_version_behind_the_file() {
    check("kubelet-behind", GT, "kubelet-behind", none());
}

#[test]
fn a_dead_control_plane_loses_its_etcd_member_through_a_healthy_one() {
    check(
        "etcd-dead-control-plane",
        "tests/fixtures/goldentooth-dalt-absent.toml",
        "etcd-dead-control-plane",
        none(),
    );
}

#[test]
fn an_etcd_member_no_control_plane_owns_is_removed_with_prune() {
    check(
        "etcd-leftover-member-prune",
        GT,
        "etcd-leftover-member",
        PlanOptions {
            prune: true,
            ..none()
        },
    );
}

const TO_1_33: &str = "tests/fixtures/goldentooth-1.33.3.toml";
const TO_1_34: &str = "tests/fixtures/goldentooth-1.34.2.toml";

#[test]
fn an_upgrade_of_one_minor_is_one_rung() {
    check("upgrade-one-rung", TO_1_33, "upgrade-at-1.32", none());
}

#[test]
fn an_upgrade_of_two_minors_is_two_rungs_with_workers_in_batches() {
    check("upgrade-two-rungs", TO_1_34, "upgrade-at-1.32", none());
}

#[test]
fn an_interrupted_upgrade_plans_only_the_rest() {
    check("upgrade-resumed", TO_1_33, "upgrade-interrupted", none());
}

/// What `gt plan` refuses with, snapshotted: the numbers and what to do.
fn refusal(snapshot: &str, config: &str, observed: &Observed) {
    let e = plan(&spec(config), observed, &none()).expect_err("a refusal");
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(root().join("snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| insta::assert_snapshot!(format!("{snapshot}.txt"), e.to_string()));
}

#[test]
fn upgrades_that_break_the_skew_policy_are_refused_with_the_numbers() {
    // The file older than the cluster's record.
    refusal(
        "upgrade-refused-downgrade",
        GT,
        &facts("upgrade-interrupted"),
    );
    // A kubeadm two minors ahead of the cluster.
    let mut o = facts("upgrade-at-1.32");
    o.hosts.get_mut("fenn").unwrap().kubeadm_version = Some("v1.34.2".into());
    refusal("upgrade-refused-kubeadm-skips-a-minor", TO_1_33, &o);
    // A kubelet newer than the API server.
    let mut o = facts("upgrade-at-1.32");
    o.cluster.nodes.get_mut("jast").unwrap().kubelet_version = Some("v1.33.3".into());
    refusal("upgrade-refused-kubelet-ahead", TO_1_33, &o);
}
