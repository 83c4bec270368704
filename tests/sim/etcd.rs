//! The lab's real etcd: a member per control plane, reached through the
//! simulated `kubectl exec` into its static Pod, failing readiness for
//! real when quorum goes, and the simulated reset removing a member only
//! when kubeadm 1.32 would.

use crate::support::components::require_etcd;
use crate::support::gt::{goldentooth, Output, Test};
use crate::support::kube::KUBECTL;
use crate::support::lab::{processes_naming, Lab, LabLock, Transport};
use crate::support::sim::etcd_members;
use crate::support::wait::eventually;

/// etcdctl as gt runs it inside the etcd Pod, with kubeadm's certificate paths.
const ETCDCTL: &str = "etcdctl --endpoints=https://127.0.0.1:2379 \
    --cacert=/etc/kubernetes/pki/etcd/ca.crt \
    --cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt \
    --key=/etc/kubernetes/pki/etcd/healthcheck-client.key";

/// goldentooth's header and its nodes up to (not including) `before`.
fn topology_until(before: &str) -> String {
    let full = std::fs::read_to_string(goldentooth()).unwrap();
    let cut = full
        .find(&format!("[nodes.{before}]"))
        .expect("goldentooth lists the node");
    full[..cut].to_string()
}

/// A converged lab of the topology, on real etcd.
fn converged(topology: String) -> Lab {
    require_etcd();
    let lab = Lab::up(Transport::Local)
        .speed(0.01)
        .topology_toml(topology)
        .start();
    assert!(
        lab.dir().join("etcd/bin/etcd").is_file(),
        "gt lab up did not find etcd 3.5 (set GT_LAB_ETCD_DIR to the directory scripts/install-etcd.sh made)"
    );
    lab.gt(&["apply", "--auto-approve"]).success();
    lab
}

/// `etcdctl ARGS` in the etcd Pod of `pod_node`, through `via`'s admin.conf.
fn in_etcd_pod(lab: &Lab, via: &str, pod_node: &str, args: &str) -> Output {
    lab.run(
        via,
        &format!("{KUBECTL} -n kube-system exec etcd-{pod_node} -- {ETCDCTL} {args}"),
    )
}

fn readyz(lab: &Lab, via: &str) -> Output {
    lab.run(via, &format!("{KUBECTL} get --raw /readyz?verbose"))
}

#[test]
#[cfg_attr(
    not(any(has_etcd, ci)),
    ignore = "needs etcd 3.5: bash scripts/install-etcd.sh"
)]
fn init_runs_one_real_member_and_lab_down_stops_it() {
    let lab = converged(topology_until("cargyll"));
    let list = in_etcd_pod(&lab, "bettley", "bettley", "member list -w json").success();
    let json = list.json();
    let members = json["members"].as_array().unwrap();
    assert_eq!(members.len(), 1, "{json}");
    assert_eq!(members[0]["name"], "bettley");
    assert_eq!(
        members[0]["peerURLs"][0],
        format!("https://{}:2380", lab.address("bettley"))
    );
    in_etcd_pod(&lab, "bettley", "bettley", "endpoint health")
        .success()
        .stdout_contains("https://127.0.0.1:2379 is healthy: successfully committed proposal");
    // The Pod's /var/lib/etcd is the host's.
    in_etcd_pod(
        &lab,
        "bettley",
        "bettley",
        "snapshot save /var/lib/etcd/snap.db",
    )
    .success()
    .stdout_contains("Snapshot saved at /var/lib/etcd/snap.db");
    assert!(lab
        .host_root("bettley")
        .join("var/lib/etcd/snap.db")
        .is_file());
    lab.run(
        "bettley",
        &format!("{KUBECTL} -n kube-system exec etcd-erenford -- {ETCDCTL} member list"),
    )
    .status(1)
    .stderr_contains("Error from server (NotFound): pods \"etcd-erenford\" not found");
    lab.run(
        "bettley",
        &format!("{KUBECTL} -n kube-system exec etcd-bettley -- sh -c true"),
    )
    .status(1)
    .stderr_contains("exec: \"sh\": executable file not found in $PATH");
    let dir = lab.dir().to_path_buf();
    assert!(
        processes_naming(&dir)
            .iter()
            .any(|p| p.contains("/etcd/bin/etcd ")),
        "no etcd running: {:?}",
        processes_naming(&dir)
    );
    lab.down().success();
    assert_eq!(processes_naming(&dir), Vec::<String>::new());
}

#[test]
#[cfg_attr(
    not(any(has_etcd, ci)),
    ignore = "needs etcd 3.5: bash scripts/install-etcd.sh"
)]
fn joins_add_real_members_and_two_down_lose_quorum_for_real() {
    let lab = converged(topology_until("erenford"));
    assert_eq!(etcd_members(lab.dir()), ["bettley", "cargyll", "dalt"]);
    let json = in_etcd_pod(&lab, "bettley", "cargyll", "member list -w json")
        .success()
        .json();
    assert!(
        json["members"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m.get("isLearner").is_none()),
        "a learner was never promoted: {json}"
    );
    readyz(&lab, "bettley").success();

    // A down host's etcd is stopped and its Pod cannot be reached.
    lab.fault("cargyll", &["down"]).success();
    lab.run(
        "bettley",
        &format!("{KUBECTL} -n kube-system exec etcd-cargyll -- {ETCDCTL} member list"),
    )
    .status(1)
    .stderr_contains("Error from server (NotFound): pods \"etcd-cargyll\" not found");
    // Two of three keep a quorum. If cargyll led, the two elect a new leader
    // first (one to two election timeouts), and until then etcd's /health
    // says "no leader": readyz fails for that moment, then passes.
    eventually("two of three members keep a quorum", || {
        readyz(&lab, "bettley").succeeded()
    });
    lab.fault("dalt", &["down"]).success();
    eventually("bettley's API server fails its etcd check", || {
        let out = readyz(&lab, "bettley");
        !out.succeeded() && out.stderr.contains("[-]etcd failed: reason withheld")
    });

    lab.fault("cargyll", &["heal"]).success();
    lab.fault("dalt", &["heal"]).success();
    eventually("etcd has its quorum back", || {
        readyz(&lab, "bettley").succeeded()
    });
    eventually("every member is healthy again", || {
        in_etcd_pod(&lab, "bettley", "bettley", "endpoint health --cluster").succeeded()
    });
}

#[test]
#[cfg_attr(
    not(any(has_etcd, ci)),
    ignore = "needs etcd 3.5: bash scripts/install-etcd.sh"
)]
fn reset_before_the_node_is_deleted_removes_the_member() {
    let lab = converged(topology_until("erenford"));
    let reset = lab.run("dalt", "kubeadm reset -f").success();
    reset.stdout_contains("[reset] Deleted contents of the etcd data directory: /var/lib/etcd\n");
    assert!(!reset.stderr.contains("Unable to fetch"), "{reset}");
    assert!(!reset.stderr.contains("Failed to remove"), "{reset}");
    assert_eq!(etcd_members(lab.dir()), ["bettley", "cargyll"]);
    readyz(&lab, "bettley").success();
}

#[test]
#[cfg_attr(
    not(any(has_etcd, ci)),
    ignore = "needs etcd 3.5: bash scripts/install-etcd.sh"
)]
fn reset_after_the_node_is_deleted_keeps_the_member() {
    let lab = converged(topology_until("erenford"));
    lab.run("bettley", &format!("{KUBECTL} delete node dalt"))
        .success();
    lab.run("dalt", "kubeadm reset -f")
        .success()
        .stderr_contains("[reset] Unable to fetch the kubeadm-config ConfigMap from cluster: failed to get node registration: failed to get corresponding node: nodes \"dalt\" not found\n")
        .stderr_contains("[reset] No kubeadm config, using etcd pod spec to get data directory\n")
        .stdout_contains("[reset] Deleted contents of the etcd data directory: /var/lib/etcd\n");
    // A dead member: still listed, its data gone, two of three started.
    assert_eq!(etcd_members(lab.dir()), ["bettley", "cargyll", "dalt"]);
    let data = lab.host_root("dalt").join("var/lib/etcd");
    assert_eq!(std::fs::read_dir(data).unwrap().count(), 0);
    in_etcd_pod(&lab, "bettley", "bettley", "endpoint health --cluster")
        .status(1)
        .stderr_contains(&format!(
            "https://{}:2379 is unhealthy",
            lab.address("dalt")
        ));
}

#[test]
#[cfg_attr(
    not(any(has_etcd, ci)),
    ignore = "needs etcd 3.5: bash scripts/install-etcd.sh"
)]
fn reset_warns_when_etcd_refuses_to_remove_the_member() {
    let lab = converged(topology_until("erenford"));
    // dalt's member is dead but still a member: removing cargyll's would
    // leave one started of two, and etcd refuses.
    lab.fault("dalt", &["down"]).success();
    lab.run("cargyll", "kubeadm reset -f")
        .success()
        .stderr_contains("[reset] Failed to remove etcd member: etcdserver: ")
        .stderr_contains(", please manually remove this etcd member using etcdctl\n");
    // Only bettley's member runs now: dalt back gives etcd a quorum to answer with.
    lab.fault("dalt", &["heal"]).success();
    eventually("etcd answers again", || {
        in_etcd_pod(&lab, "bettley", "bettley", "endpoint health").succeeded()
    });
    assert_eq!(etcd_members(lab.dir()), ["bettley", "cargyll", "dalt"]);
    let dir = lab.dir().to_path_buf();
    lab.down().success();
    assert_eq!(processes_naming(&dir), Vec::<String>::new());
}

#[test]
fn without_etcd_binaries_the_lab_says_it_keeps_its_model() {
    let lock = LabLock::acquire();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("lab");
    let topology = tmp.path().join("topology.toml");
    std::fs::write(&topology, lock.relocate(&topology_until("cargyll"))).unwrap();
    let up = Test::new()
        .env("GT_LAB_ETCD_DIR", tmp.path().join("no-etcd-here"))
        .args(["lab", "up", "--dir"])
        .arg(&dir)
        .arg("--from")
        .arg(&topology)
        .args(["--speed", "0.01"])
        .run();
    let down = Test::new().args(["lab", "down", "--dir"]).arg(&dir).run();
    up.success().stdout_contains(&format!(
        "  etcd: GT_LAB_ETCD_DIR={}: {} has no etcd; the lab falls back to its model of etcd",
        tmp.path().join("no-etcd-here").display(),
        tmp.path().join("no-etcd-here").display()
    ));
    down.success();
}
