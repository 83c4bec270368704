//! etcd, observed and protected by gt, against the lab's real etcd 3.5 over
//! SSH: a control plane removed in kubeadm's order leaves etcd's own member
//! list; a dead one's member is removed through a healthy control plane; a
//! leftover member is drift until `--prune`; two members stopped is lost
//! quorum, which refuses joins and removals.

use crate::apply::remove::small_topology;
use crate::support::events::{apply_json, finished_at, kubeadm_calls, started, started_at};
use crate::support::gt::{Output, Test};
use crate::support::lab::{Lab, Transport};
use crate::support::sim::etcd_members;
use std::path::Path;

fn converged() -> Lab {
    let lab = Lab::up(Transport::Ssh)
        .speed(0.01)
        .topology_toml(small_topology())
        .start();
    apply_json(&lab.config(), &[]).0.success();
    lab
}

fn gt(config: &Path, args: &[&str]) -> Output {
    Test::new().config(config).args(args).run()
}

/// The facts gt observed, as JSON.
fn facts(config: &Path) -> serde_json::Value {
    gt(config, &["observe"]).success().json()
}

#[test]
#[cfg_attr(
    not(any(all(has_sshd, has_etcd), ci)),
    ignore = "needs sshd and etcd 3.5: apt-get install openssh-server; scripts/install-etcd.sh"
)]
fn etcd_is_observed_and_a_removed_control_plane_leaves_its_member_list() {
    let lab = converged();
    let config = lab.config();
    let f = facts(&config);
    let etcd = &f["cluster"]["etcd"];
    assert_eq!(etcd["observed_via"], "bettley", "{etcd}");
    let members = etcd["members"].as_array().unwrap();
    assert_eq!(members.len(), 3, "{etcd}");
    assert!(members.iter().all(|m| m["healthy"] == true), "{etcd}");
    assert_eq!(members.iter().filter(|m| m["leader"] == true).count(), 1);
    assert!(members.iter().all(|m| m["db_size"].as_u64().unwrap() > 0));
    // Certificate paths cross the command line, never key material.
    let out = gt(&config, &["observe"]);
    assert!(!out.stdout.contains("PRIVATE KEY") && !out.stderr.contains("PRIVATE KEY"));
    gt(&config, &["status"])
        .success()
        .stdout_contains("ETCD")
        .stdout_contains("etcd: 3 of 3 voting members healthy, quorum 2 kept");
    // plan asks etcd its members and their health, not who leads: that
    // status is for `gt status` and `gt observe`.
    let asked = |verb: &str| {
        lab.log("bettley")
            .iter()
            .filter(|e| {
                e["argv"].as_array().is_some_and(|a| {
                    a.iter().any(|x| x == "etcdctl")
                        && a.windows(2).any(|w| w[0] == "endpoint" && w[1] == verb)
                })
            })
            .count()
    };
    let before = (asked("status"), asked("health"));
    assert!(before.0 > 0 && before.1 > 0, "{before:?}");
    gt(&config, &["plan"]).success();
    assert_eq!(asked("status"), before.0);
    assert_eq!(asked("health"), before.1 + 1);

    let without_dalt = lab
        .variant("dalt-absent.toml")
        .state("dalt", "absent")
        .write();
    gt(&without_dalt, &["plan"])
        .success()
        .stdout_contains("# (state = \"absent\" in cluster.toml: drain, reset, delete)");
    let (run, events) = apply_json(&without_dalt, &["--no-backup"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(
        started(&events),
        ["drain/dalt", "reset/dalt", "delete-node/dalt"]
    );
    assert!(
        finished_at(&events, "reset/dalt", "succeeded") < started_at(&events, "delete-node/dalt")
    );
    // Reset ran while the Node was there: kubeadm removed the member itself.
    assert_eq!(etcd_members(lab.dir()), ["bettley", "cargyll"]);
    gt(&without_dalt, &["drift"]).status(0);
}

#[test]
#[cfg_attr(
    not(any(all(has_sshd, has_etcd), ci)),
    ignore = "needs sshd and etcd 3.5: apt-get install openssh-server; scripts/install-etcd.sh"
)]
fn a_dead_control_plane_is_removed_through_a_healthy_one_and_quorum_guards_the_rest() {
    let lab = converged();
    lab.fault("dalt", &["down"]);

    // cargyll is healthy, but with dalt dead its removal would leave etcd
    // one healthy member of two.
    let cargyll_leaves = lab
        .variant("cargyll-absent.toml")
        .state("cargyll", "absent")
        .write();
    gt(&cargyll_leaves, &["plan"]).status(1).stderr_contains(
        "refusing to remove cargyll: etcd would have 1 healthy of 2 members, below its quorum of 2 (2/2+1); the control planes that would stay: bettley, dalt; not healthy: dalt is unreachable",
    );
    gt(&cargyll_leaves, &["apply", "--auto-approve"])
        .status(1)
        .stderr_contains("refusing to remove cargyll");
    assert_eq!(etcd_members(lab.dir()), ["bettley", "cargyll", "dalt"]);

    let dalt_leaves = lab
        .variant("dalt-absent.toml")
        .state("dalt", "absent")
        .write();
    gt(&dalt_leaves, &["plan"])
        .success()
        .stdout_contains("drain and delete (no reset: its host is unreachable); its etcd member")
        .stdout_contains("is removed through bettley (`etcdctl member remove`)");
    let (run, events) = apply_json(&dalt_leaves, &["--no-backup"]);
    assert_eq!(run.code, Some(0), "{run}");
    let steps = started(&events);
    assert_eq!(steps.len(), 3, "{steps:?}");
    assert_eq!(steps[0], "drain/dalt");
    assert!(steps[1].starts_with("remove-etcd-member/"), "{steps:?}");
    assert_eq!(steps[2], "delete-node/dalt");
    assert_eq!(etcd_members(lab.dir()), ["bettley", "cargyll"]);
    let status = gt(&dalt_leaves, &["status"]);
    status
        .success()
        .stdout_contains("etcd: 2 of 2 voting members healthy, quorum 2 kept");
}

#[test]
#[cfg_attr(
    not(any(all(has_sshd, has_etcd), ci)),
    ignore = "needs sshd and etcd 3.5: apt-get install openssh-server; scripts/install-etcd.sh"
)]
fn a_member_left_behind_is_drift_until_prune_removes_it() {
    let lab = converged();
    // The order kubeadm warns against: the Node deleted first, then reset.
    // reset can no longer read dalt's registration and keeps its member.
    lab.run(
        "bettley",
        r#"kubectl --kubeconfig "${GT_HOST_ROOT}/etc/kubernetes/admin.conf" delete node dalt"#,
    )
    .success();
    lab.run("dalt", "kubeadm reset -f").success();
    assert_eq!(etcd_members(lab.dir()), ["bettley", "cargyll", "dalt"]);

    let without_dalt = lab.variant("without-dalt.toml").without("dalt").write();
    let drift = gt(&without_dalt, &["drift", "--json"]);
    drift.status(2);
    let items = drift.json()["items"].as_array().unwrap().clone();
    let leftover: Vec<_> = items
        .iter()
        .filter(|i| i["kind"] == "etcd_member")
        .collect();
    assert_eq!(leftover.len(), 1, "{items:?}");
    assert!(
        leftover[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("etcd member dalt ("),
        "{leftover:?}"
    );
    gt(&without_dalt, &["plan", "--detailed-exitcode"]).status(0);
    gt(&without_dalt, &["plan", "--prune", "--detailed-exitcode"])
        .status(2)
        .stdout_contains("  - etcd_member \"dalt\" {")
        .stdout_contains("(--prune): etcdctl member remove through bettley");
    let (run, events) = apply_json(&without_dalt, &["--prune", "--no-backup"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(started(&events).len(), 1);
    assert_eq!(etcd_members(lab.dir()), ["bettley", "cargyll"]);
    gt(&without_dalt, &["drift"]).status(0);
}

#[test]
#[cfg_attr(
    not(any(all(has_sshd, has_etcd), ci)),
    ignore = "needs sshd and etcd 3.5: apt-get install openssh-server; scripts/install-etcd.sh"
)]
fn two_members_stopped_is_lost_quorum_and_refuses_joins_and_removals() {
    let lab = converged();
    let config = lab.config();
    // Every API server down, etcd fine: etcd is read in bettley's own
    // container through its container runtime (crictl), no API needed.
    for cp in ["bettley", "cargyll", "dalt"] {
        lab.fault(cp, &["apiserver-down"]);
    }
    gt(&config, &["status"])
        .stdout_contains("etcd: 3 of 3 voting members healthy, quorum 2 kept, leader ");
    let crictl_execs = lab
        .log("bettley")
        .iter()
        .filter(|e| {
            e["tool"] == "crictl"
                && e["argv"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == "exec"))
        })
        .count();
    assert!(crictl_execs > 0, "etcd was not read through crictl");
    for cp in ["bettley", "cargyll", "dalt"] {
        lab.fault(cp, &["heal"]);
    }
    lab.fault("cargyll", &["down"]);
    lab.fault("dalt", &["down"]);
    // Without quorum no API server answers either: etcd's answer says why
    // (etcdctl in bettley's container, through crictl).
    let drift = gt(&config, &["drift", "--json"]);
    drift.status(2);
    let items = drift.json()["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["kind"], "etcd_quorum");
    gt(&config, &["drift"])
        .status(2)
        .stdout_contains("drift: cluster goldentooth: etcd has lost quorum: ");
    // etcdctl's own words: `rpc error: code = Unknown desc = context
    // deadline exceeded` from a member without a leader.
    gt(&config, &["status"])
        .success()
        .stdout_contains("etcd: could not be read: through etcd-bettley: ")
        .stdout_contains("context deadline exceeded (exit 1)\n");

    let lost = "cannot plan: etcd has lost its quorum (no control plane's etcd pod could list its members: through etcd-bettley: ";
    let why = "context deadline exceeded (exit 1)), so no API server could answer";
    let fenn_leaves = lab
        .variant("fenn-absent.toml")
        .state("fenn", "absent")
        .write();
    gt(&fenn_leaves, &["plan"])
        .status(1)
        .stderr_contains(lost)
        .stderr_contains(why);
    gt(&fenn_leaves, &["apply", "--auto-approve"])
        .status(1)
        .stderr_contains(lost)
        .stderr_contains(why);
    let eyrie_joins = lab
        .variant("eyrie-for-dalt.toml")
        .state("eyrie", "present")
        .state("dalt", "absent")
        .write();
    gt(&eyrie_joins, &["apply", "--auto-approve"])
        .status(1)
        .stderr_contains(lost)
        .stderr_contains(why);
    // Nothing was changed: no join on eyrie, no reset on fenn.
    assert_eq!(kubeadm_calls(&lab, "eyrie", "join"), 0);
    assert_eq!(kubeadm_calls(&lab, "fenn", "reset"), 0);
}
