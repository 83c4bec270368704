//! Removing nodes with `gt apply` against the lab, as a user does it: a
//! worker set `state = "absent"` (drain, reset, delete: kubeadm's order); a
//! Node that is not in the file (`--prune`); a host that is down (drained and
//! deleted, its reset left to the user and said so); control planes (etcd
//! keeps its quorum, or the plan refuses with the arithmetic); and a host
//! that joined another cluster (`--replace`).
//!
//! The labs are small (three control planes, two workers, and `eyrie`, a
//! spare control-plane host that starts absent) so that the file runs fast.

use crate::support::events::{apply_json, finished_at, recap, recap_row, started, started_at};
use crate::support::gt::{goldentooth, Output, Test};
use crate::support::lab::{Lab, Transport};
use crate::support::sim::etcd_members;
use crate::support::wait::eventually_some;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// goldentooth's header and first five nodes, plus a spare control plane.
pub(crate) fn small_topology() -> String {
    let full = std::fs::read_to_string(goldentooth()).unwrap();
    let cut = full
        .find("[nodes.gardener]")
        .expect("goldentooth lists gardener");
    format!(
        "{}[nodes.eyrie]\nrole = \"control-plane\"\naddress = \"10.4.0.22\"\nstate = \"absent\"\n",
        &full[..cut]
    )
}

/// A converged small lab.
fn converged(transport: Transport) -> Lab {
    let lab = Lab::up(transport)
        .speed(0.01)
        .topology_toml(small_topology())
        .start();
    apply_json(&lab.config(), &[]).0.success();
    lab
}

fn gt_with(config: &Path, args: &[&str]) -> Output {
    Test::new().config(config).args(args).run()
}

/// Node names, as `kubectl get nodes -o name` on `via` prints them.
fn kubectl_nodes(lab: &Lab, via: &str) -> Vec<String> {
    let r = lab.run(
        via,
        r#"kubectl --kubeconfig "${GT_HOST_ROOT}/etc/kubernetes/admin.conf" get nodes -o name"#,
    );
    r.success();
    r.stdout
        .lines()
        .map(|l| l.trim_start_matches("node/").to_string())
        .collect()
}

/// Files left under a host's /etc/kubernetes and /var/lib/etcd.
fn kubeadm_files(lab: &Lab, node: &str) -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p.display().to_string());
            }
        }
    }
    let mut out = vec![];
    for d in ["etc/kubernetes", "var/lib/etcd"] {
        walk(&lab.host_root(node).join(d), &mut out);
    }
    out
}

/// Simulated commands `node` ran whose argv starts with `words`.
fn calls(lab: &Lab, node: &str, tool: &str, words: &[&str]) -> Vec<Value> {
    lab.log(node)
        .into_iter()
        .filter(|e| {
            e["tool"] == tool
                && e["argv"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|a| !a.as_str().unwrap().starts_with("--kubeconfig"))
                    .filter(|a| !a.as_str().unwrap().ends_with("admin.conf"))
                    .zip(words)
                    .filter(|(a, w)| a.as_str() == Some(**w))
                    .count()
                    == words.len()
        })
        .collect()
}

/// No changes, and nothing gt would warn about: every control plane that
/// stays is Ready and its API server ready.
#[track_caller]
fn assert_converged_and_healthy(config: &Path) {
    let plan = gt_with(config, &["plan", "--detailed-exitcode"]);
    plan.status(0);
    assert!(
        plan.stdout
            .starts_with("No changes. Your cluster matches cluster.toml.")
            && !plan.stdout.contains("Warning"),
        "{plan}"
    );
}

/// `GET /readyz` through the control-plane endpoint, over TCP (HAProxy, or
/// the lab daemon), once it answers 200: a load balancer sees a backend go
/// and come only at its next health check.
fn endpoint_readyz(lab: &Lab) -> (u16, String) {
    eventually_some(
        "the endpoint answers /readyz with 200",
        Duration::from_secs(10),
        || {
            gt_lab::sim::api::http_get(&lab.endpoint(), "/readyz", Duration::from_secs(2))
                .ok()
                .filter(|(code, _)| *code == 200)
        },
    )
}

fn worker_set_absent_is_drained_reset_and_deleted(transport: Transport) {
    let lab = converged(transport);
    let config = lab
        .variant("fenn-absent.toml")
        .state("fenn", "absent")
        .append("\n[apply]\ndrain_timeout = \"45s\"\n")
        .write();
    let plan = gt_with(&config, &["plan", "--detailed-exitcode"]);
    plan.status(2)
        .stdout_contains("  - node \"fenn\" {")
        .stdout_contains("# (state = \"absent\" in cluster.toml: drain, reset, delete)")
        .stdout_contains("Plan: 0 to add, 0 to change, 1 to destroy.");

    let (run, events) = apply_json(&config, &[]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(
        started(&events),
        ["drain/fenn", "reset/fenn", "delete-node/fenn"]
    );
    // Each starts only after the one before it succeeded.
    assert!(finished_at(&events, "drain/fenn", "succeeded") < started_at(&events, "reset/fenn"));
    assert!(
        finished_at(&events, "reset/fenn", "succeeded") < started_at(&events, "delete-node/fenn")
    );
    finished_at(&events, "delete-node/fenn", "succeeded");
    assert_eq!(
        recap_row(&events, "fenn"),
        ("changed".into(), "removed".into())
    );
    assert_eq!(recap(&events)["removed"], 1);

    // What the hosts ran: drain (with the file's timeout) and delete through a
    // control plane, `kubeadm reset -f` on fenn itself.
    let admin: Vec<Value> = ["bettley", "cargyll", "dalt"]
        .iter()
        .flat_map(|cp| calls(&lab, cp, "kubectl", &["drain", "fenn"]))
        .collect();
    assert_eq!(admin.len(), 1, "one drain: {admin:?}");
    assert_eq!(
        admin[0]["argv"].as_array().unwrap()[2..],
        serde_json::json!([
            "drain",
            "fenn",
            "--ignore-daemonsets",
            "--delete-emptydir-data",
            "--timeout",
            "45s"
        ])
        .as_array()
        .unwrap()[..]
    );
    let resets = calls(&lab, "fenn", "kubeadm", &["reset"]);
    assert_eq!(resets.len(), 1);
    assert_eq!(resets[0]["argv"], serde_json::json!(["reset", "-f"]));
    assert_eq!(resets[0]["exit"], 0);

    assert!(!kubectl_nodes(&lab, "bettley").contains(&"fenn".to_string()));
    assert_eq!(kubeadm_files(&lab, "fenn"), Vec::<String>::new());
    gt_with(&config, &["plan", "--detailed-exitcode"]).status(0);
}

#[test]
fn a_worker_set_absent_is_drained_reset_and_deleted_in_kubeadms_order() {
    worker_set_absent_is_drained_reset_and_deleted(Transport::Local);
}

#[test]
#[cfg_attr(
    not(any(has_sshd, ci)),
    ignore = "needs sshd: apt-get install openssh-server"
)]
fn a_worker_set_absent_is_removed_over_real_ssh() {
    worker_set_absent_is_drained_reset_and_deleted(Transport::Ssh);
}

#[test]
fn a_node_not_in_the_file_is_only_warned_about_until_prune() {
    let lab = converged(Transport::Local);
    let config = lab.variant("without-fenn.toml").without("fenn").write();

    let plan = gt_with(&config, &["plan", "--detailed-exitcode"]);
    plan.status(0)
        .stdout_contains("fenn is in the cluster but not in cluster.toml; add it to the")
        .stdout_contains("--prune");
    let (run, events) = apply_json(&config, &[]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(started(&events).is_empty(), "{run}");
    assert!(kubectl_nodes(&lab, "bettley").contains(&"fenn".to_string()));

    gt_with(&config, &["plan", "--prune", "--detailed-exitcode"])
        .status(2)
        .stdout_contains("  - node \"fenn\" {")
        .stdout_contains("not in cluster.toml (--prune): drain and delete");
    let (run, events) = apply_json(&config, &["--prune"]);
    assert_eq!(run.code, Some(0), "{run}");
    // gt does not know how to reach a host that is not in the file: no reset.
    assert_eq!(started(&events), ["drain/fenn", "delete-node/fenn"]);
    assert_eq!(
        recap_row(&events, "fenn"),
        (
            "changed".into(),
            "removed, not reset (not in the file): run kubeadm reset -f on it".into()
        )
    );
    assert!(!kubectl_nodes(&lab, "bettley").contains(&"fenn".to_string()));
    assert!(calls(&lab, "fenn", "kubeadm", &["reset"]).is_empty());
    let after = gt_with(&config, &["plan", "--detailed-exitcode"]);
    after.status(0);
    assert!(!after.stdout.contains("fenn"), "{after}");
}

fn unreachable_host_is_drained_and_deleted_and_its_reset_left_to_the_user(transport: Transport) {
    let lab = converged(transport);
    lab.fault("erenford", &["down"]);
    let config = lab
        .variant("erenford-absent.toml")
        .state("erenford", "absent")
        .write();

    let plan = gt_with(&config, &["plan", "--detailed-exitcode"]);
    plan.status(2)
        .stdout_contains("drain and delete (no reset: its host is unreachable)")
        .stdout_contains("erenford will be drained and deleted, but not reset");

    // The Node is gone and the plan said the reset would wait: exit 0, and
    // the recap says what is left to do.
    let (run, events) = apply_json(&config, &[]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(started(&events), ["drain/erenford", "delete-node/erenford"]);
    // Its pods will never confirm they stopped: drain waits out their grace
    // period only, not its whole timeout.
    let drains: Vec<Value> = ["bettley", "cargyll", "dalt"]
        .iter()
        .flat_map(|cp| calls(&lab, cp, "kubectl", &["drain", "erenford"]))
        .collect();
    assert_eq!(drains.len(), 1, "{drains:?}");
    assert!(
        drains[0]["argv"]
            .to_string()
            .ends_with(r#""--timeout","5m0s","--skip-wait-for-delete-timeout","1"]"#),
        "{}",
        drains[0]["argv"]
    );
    assert_eq!(
        recap_row(&events, "erenford"),
        (
            "changed".into(),
            "removed, not reset (unreachable): run kubeadm reset -f on it".into()
        )
    );
    assert!(!kubectl_nodes(&lab, "bettley").contains(&"erenford".to_string()));
    let text = gt_with(&config, &["plan"]);
    text.success();
    assert!(
        !text.stdout.contains("- node \"erenford\""),
        "nothing more to do while it is down: {text}"
    );

    // Back up, it still carries the cluster's credentials: the next apply resets it.
    lab.fault("erenford", &["heal"]);
    assert!(!kubeadm_files(&lab, "erenford").is_empty());
    gt_with(&config, &["plan", "--detailed-exitcode"])
        .status(2)
        .stdout_contains("the host still carries kubeadm state: reset");
    let (run, events) = apply_json(&config, &[]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(started(&events), ["reset/erenford"]);
    assert_eq!(kubeadm_files(&lab, "erenford"), Vec::<String>::new());
    gt_with(&config, &["plan", "--detailed-exitcode"]).status(0);
}

#[test]
fn an_unreachable_host_is_drained_and_deleted_and_its_reset_left_to_the_user() {
    unreachable_host_is_drained_and_deleted_and_its_reset_left_to_the_user(Transport::Local);
}

#[test]
#[cfg_attr(
    not(any(has_sshd, ci)),
    ignore = "needs sshd: apt-get install openssh-server"
)]
fn an_unreachable_host_over_ssh_is_removed_and_reset_once_it_answers() {
    unreachable_host_is_drained_and_deleted_and_its_reset_left_to_the_user(Transport::Ssh);
}

#[test]
fn control_planes_leave_only_while_etcd_keeps_its_quorum() {
    let lab = converged(Transport::Local);
    assert_eq!(etcd_members(lab.dir()), ["bettley", "cargyll", "dalt"]);

    // bettley's kubelet is down: taking cargyll and dalt would leave etcd
    // one healthy member of two before the second removal.
    lab.fault("bettley", &["kubelet-stopped"]);
    let two_leave = lab
        .variant("two-leave.toml")
        .state("cargyll", "absent")
        .state("dalt", "absent")
        .write();
    let refused = gt_with(&two_leave, &["plan"]);
    refused.status(1).stderr_contains(
        "refusing to remove cargyll: etcd would have 1 healthy of 2 members, below its quorum of 2 (2/2+1); \
         the control planes that would stay: bettley, dalt; not healthy: bettley is NotReady (Ready=Unknown, NodeStatusUnknown). \
         To remove cargyll: heal bettley first and plan again",
    );
    let refused = gt_with(&two_leave, &["apply", "--auto-approve"]);
    refused
        .status(1)
        .stderr_contains("refusing to remove cargyll");
    for cp in ["bettley", "cargyll", "dalt"] {
        assert!(calls(&lab, cp, "kubectl", &["drain"]).is_empty(), "{cp}");
    }
    assert_eq!(etcd_members(lab.dir()), ["bettley", "cargyll", "dalt"]);
    lab.fault("bettley", &["heal"]);

    // Its kubelet fine and its Node Ready, but its own API server fails
    // the etcd check: not counted healthy either.
    lab.fault("bettley", &["apiserver-down"]);
    gt_with(&two_leave, &["plan"])
        .status(1)
        .stderr_contains("refusing to remove cargyll: etcd would have 1 healthy of 2 members")
        .stderr_contains(
            "not healthy: bettley's API server is not ready (failing checks: etcd, etcd-readiness)",
        );
    lab.fault("bettley", &["heal"]);

    // Every control plane leaving, and the one meant to stay cannot join.
    lab.fault("eyrie", &["down"]);
    let none_left = lab
        .variant("none-left.toml")
        .state("bettley", "absent")
        .state("cargyll", "absent")
        .state("dalt", "absent")
        .state("eyrie", "present")
        .write();
    let text = std::fs::read_to_string(&none_left)
        .unwrap()
        .replace("bootstrap = \"bettley\"", "bootstrap = \"eyrie\"");
    std::fs::write(&none_left, text).unwrap();
    gt_with(&none_left, &["plan"])
        .status(1)
        .stderr_contains(
            "refusing to remove bettley, cargyll, dalt: no control plane would be left in the cluster, and none joins in this plan",
        );
    lab.fault("eyrie", &["heal"]);

    // dalt's Pi is retired and eyrie takes its place, in one apply: eyrie
    // joins first, then dalt leaves (its reset removes its etcd member).
    let swapped = lab
        .variant("swapped.toml")
        .state("dalt", "absent")
        .state("eyrie", "present")
        .write();
    let (run, events) = apply_json(&swapped, &[]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        finished_at(&events, "join-control-plane/eyrie", "succeeded")
            < started_at(&events, "drain/dalt")
    );
    finished_at(&events, "reset/dalt", "succeeded");
    assert_eq!(etcd_members(lab.dir()), ["bettley", "cargyll", "eyrie"]);
    assert_eq!(kubeadm_files(&lab, "dalt"), Vec::<String>::new());
    assert_converged_and_healthy(&swapped);
    assert_eq!(endpoint_readyz(&lab), (200, "ok".to_string()));

    // Down to one: bettley (the control plane gt observed through and ran
    // drains on) and eyrie leave one after the other; cargyll stays.
    let one = lab
        .variant("one.toml")
        .state("dalt", "absent")
        .state("bettley", "absent")
        .state("eyrie", "absent")
        .write();
    let text = std::fs::read_to_string(&one)
        .unwrap()
        .replace("bootstrap = \"bettley\"", "bootstrap = \"cargyll\"");
    std::fs::write(&one, text).unwrap();
    let (run, events) = apply_json(&one, &[]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(
        started(&events),
        [
            // etcd's membership changes: a backup first.
            "backup-etcd",
            "drain/bettley",
            "reset/bettley",
            "delete-node/bettley",
            "drain/eyrie",
            "reset/eyrie",
            "delete-node/eyrie"
        ]
    );
    assert_eq!(recap(&events)["removed"], 2);
    assert_eq!(etcd_members(lab.dir()), ["cargyll"]);
    assert_eq!(
        kubectl_nodes(&lab, "cargyll"),
        ["cargyll", "erenford", "fenn"]
    );
    assert_converged_and_healthy(&one);
    assert_eq!(endpoint_readyz(&lab), (200, "ok".to_string()));
}

/// A worker `fenn` joined to another cluster (`othertooth`, its own lab and
/// CA, on other loopback addresses): the host's kubelet.conf, CA and kubelet
/// state, copied out before that lab goes down.
fn fenn_of_another_cluster() -> (tempfile::TempDir, PathBuf) {
    let full = std::fs::read_to_string(goldentooth()).unwrap();
    let header = &full[..full.find("# --- control planes").unwrap()];
    let topology = header
        .replace("name = \"goldentooth\"", "name = \"othertooth\"")
        .replace("10.4.0.10", "10.4.9.10")
        .replace("name = \"allyrion\"", "name = \"othlb\"")
        .replace("bootstrap = \"bettley\"", "bootstrap = \"rookery\"")
        + "[nodes.rookery]\nrole = \"control-plane\"\naddress = \"10.4.9.11\"\n\n\
           [nodes.fenn]\nrole = \"worker\"\naddress = \"10.4.9.15\"\n";
    let other = Lab::up(Transport::Local)
        .speed(0.01)
        .topology_toml(topology)
        .start();
    let (run, _) = apply_json(&other.config(), &[]);
    assert_eq!(run.code, Some(0), "{run}");
    let keep = tempfile::tempdir().unwrap();
    let copy = keep.path().join("fenn");
    let cp = std::process::Command::new("cp")
        .arg("-a")
        .arg(other.host_root("fenn"))
        .arg(&copy)
        .status()
        .unwrap();
    assert!(cp.success());
    assert!(copy.join("etc/kubernetes/kubelet.conf").exists());
    (keep, copy)
}

/// Puts the other cluster's fenn onto this lab's fenn host.
fn rejoin_elsewhere(lab: &Lab, other_fenn: &Path) {
    let cp = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", other_fenn.display()))
        .arg(lab.host_root("fenn"))
        .status()
        .unwrap();
    assert!(cp.success());
}

#[test]
fn a_host_of_another_cluster_is_left_alone_until_replace() {
    let (_keep, other_fenn) = fenn_of_another_cluster();
    let lab = Lab::up(Transport::Local)
        .speed(0.01)
        .topology_toml(small_topology())
        .start();
    rejoin_elsewhere(&lab, &other_fenn);
    let config = lab.config();

    // Everything else joins; fenn is warned about and not touched.
    let (run, events) = apply_json(&config, &[]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(!started(&events).iter().any(|s| s.ends_with("/fenn")));
    assert!(calls(&lab, "fenn", "kubeadm", &["reset"]).is_empty());
    assert!(calls(&lab, "fenn", "kubeadm", &["join"]).is_empty());
    let plan = gt_with(&config, &["plan", "--detailed-exitcode"]);
    plan.status(0)
        .stdout_contains("fenn belongs to another cluster (CA pin sha256:")
        .stdout_contains("To reset it and join it")
        .stdout_contains("--replace fenn");
    // Not a change the plan makes, but drift all the same.
    let drift = gt_with(&config, &["drift"]);
    drift
        .status(2)
        .stdout_contains("drift: fenn: joined to another cluster (its CA is sha256:");

    gt_with(
        &config,
        &["plan", "--replace", "fenn", "--detailed-exitcode"],
    )
    .status(2)
    .stdout_contains("-/+ node \"fenn\" {")
    .stdout_contains("reset and join here (--replace)")
    .stdout_contains("Plan: 1 to add, 0 to change, 1 to destroy.");
    let (run, events) = apply_json(&config, &["--replace", "fenn"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert!(
        finished_at(&events, "reset/fenn", "succeeded") < started_at(&events, "join-worker/fenn")
    );
    finished_at(&events, "join-worker/fenn", "succeeded");
    assert_eq!(
        recap_row(&events, "fenn"),
        ("changed".into(), "reset and joined again".into())
    );
    assert!(kubectl_nodes(&lab, "bettley").contains(&"fenn".to_string()));
    let clean = gt_with(&config, &["plan", "--detailed-exitcode"]);
    clean.status(0);
    assert!(!clean.stdout.contains("another cluster"), "{clean}");
    gt_with(&config, &["drift"]).status(0);

    // Joined here, then re-joined elsewhere behind gt's back: its Node is
    // still in this cluster. --replace drains and deletes it too.
    rejoin_elsewhere(&lab, &other_fenn);
    gt_with(&config, &["plan", "--detailed-exitcode"])
        .status(0)
        .stdout_contains("fenn now carries another cluster's CA");
    let (run, events) = apply_json(&config, &["--replace", "fenn"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(
        started(&events)
            .into_iter()
            .filter(|s| s.ends_with("/fenn"))
            .collect::<Vec<_>>(),
        [
            "drain/fenn",
            "reset/fenn",
            "delete-node/fenn",
            "join-worker/fenn",
        ]
    );
    gt_with(&config, &["plan", "--detailed-exitcode"]).status(0);
}

/// A control-plane Pi dies for good and no replacement exists yet: three to
/// two is allowed (a removal is under way), quorum permitting.
#[test]
fn a_dead_control_plane_is_taken_out_before_its_replacement_exists() {
    let lab = converged(Transport::Local);
    let two = lab.variant("two.toml").state("dalt", "absent").write();
    gt_with(&two, &["validate"]).success();
    lab.fault("dalt", &["kubelet-stopped"]);
    let (run, events) = apply_json(&two, &[]);
    assert_eq!(run.code, Some(0), "{run}");
    finished_at(&events, "delete-node/dalt", "succeeded");
    finished_at(&events, "reset/dalt", "succeeded");
    assert_eq!(etcd_members(lab.dir()), ["bettley", "cargyll"]);
    assert_converged_and_healthy(&two);
    assert_eq!(endpoint_readyz(&lab), (200, "ok".to_string()));
}
