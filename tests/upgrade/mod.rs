//! Version upgrades end to end against the lab over SSH: goldentooth 1.32 →
//! 1.34 in one apply (two rungs), and on a small cluster the ways a rung
//! stops and resumes: a drain a budget blocks, a worker whose `kubeadm
//! upgrade node` fails, a kill -9 in the middle of the rung, an operator's
//! cordon that outlives it, the plan's refusals of a downgrade and of a
//! kubeadm that skips a minor, and a removal's drain predicted like an
//! upgrade's.

use crate::support::events::{
    apply_json, failure_of, node_result, read_until, recap_row, spawn_apply_json,
};
use crate::support::gt::{goldentooth, Test};
use crate::support::kube::KUBECTL;
use crate::support::lab::{Lab, Transport};
use crate::support::workloads;
use serde_json::Value;

/// goldentooth's cluster and defaults with only bettley (control plane)
/// and three workers: the smallest cluster with batches after a failure.
fn small_cluster() -> String {
    let text = std::fs::read_to_string(goldentooth()).unwrap();
    let head = text.split("\n[nodes.").next().unwrap().to_string();
    let node = |name: &str, role: &str, last: u8| {
        format!("\n[nodes.{name}]\nrole = \"{role}\"\naddress = \"10.4.0.{last}\"\n")
    };
    head + "\n[apply]\ndrain_timeout = \"1s\"\n"
        + &node("bettley", "control-plane", 11)
        + &node("fenn", "worker", 15)
        + &node("gardener", "worker", 16)
        + &node("harlton", "worker", 17)
}

/// cluster.toml's `kubernetes_version` set to `version`.
fn want_version(lab: &Lab, version: &str) {
    let config = lab.config();
    let text = std::fs::read_to_string(&config).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("kubernetes_version = "))
        .unwrap()
        .to_string();
    std::fs::write(
        &config,
        text.replace(&line, &format!("kubernetes_version = \"{version}\"")),
    )
    .unwrap();
}

/// Every Node's kubelet version and whether it is cordoned, by name.
fn nodes(lab: &Lab) -> Vec<(String, String, bool)> {
    let out = lab
        .run("bettley", &format!("{KUBECTL} get nodes -o json"))
        .success();
    let list: Value = serde_json::from_str(&out.stdout).unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["metadata"]["name"].as_str().unwrap().to_string(),
                n["status"]["nodeInfo"]["kubeletVersion"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                n["spec"]["unschedulable"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

fn kubelet_of(lab: &Lab, node: &str) -> String {
    nodes(lab)
        .into_iter()
        .find(|(n, _, _)| n == node)
        .unwrap_or_else(|| panic!("no Node {node}"))
        .1
}

fn cordoned(lab: &Lab, node: &str) -> bool {
    nodes(lab)
        .into_iter()
        .find(|(n, _, _)| n == node)
        .unwrap_or_else(|| panic!("no Node {node}"))
        .2
}

/// The ids of the plan's steps (the first event of `apply --json`).
fn planned_steps(events: &[Value]) -> Vec<String> {
    events[0]["plan"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

fn assert_converged(lab: &Lab) {
    let plan = lab.gt(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, Some(0), "{plan}");
    assert!(plan.stdout.contains("No changes."), "{plan}");
    let drift = lab.gt(&["drift"]);
    assert_eq!(drift.code, Some(0), "{drift}");
}

#[test]
fn goldentooth_goes_from_1_32_to_1_34_in_one_apply_of_two_rungs() {
    // Half the workers at a time: five batches of workers instead of eighteen.
    let toml = std::fs::read_to_string(goldentooth()).unwrap()
        + "\n[upgrade]\nmax_unavailable = \"50%\"\n";
    let lab = Lab::up(Transport::Ssh).topology_toml(toml).converged();
    want_version(&lab, "1.34.2");
    let (run, events) = apply_json(&lab.config(), &[]);
    assert_eq!(run.code, Some(0), "{run}");
    let steps = planned_steps(&events);
    // No host lists 1.33's patches before its rung: the plan names the
    // minor, bettley settles it once its repository is switched, and it is
    // the newest patch, not the first.
    let settled = events
        .iter()
        .filter(|e| e["event"] == "step_progress" && e["step"] == "upgrade/bettley@v1.33")
        .find_map(|e| {
            e["message"]
                .as_str()?
                .strip_prefix("the rung v1.33 is ")
                .map(|m| m.split(':').next().unwrap().to_string())
        })
        .unwrap_or_else(|| panic!("bettley settles the 1.33 rung: {events:?}"));
    assert!(
        settled.starts_with("v1.33.") && settled != "v1.33.0",
        "{settled}"
    );
    for rung in ["v1.33", "v1.34.2"] {
        for n in ["bettley", "cargyll", "dalt", "fenn", "velaryon"] {
            let id = format!("upgrade/{n}@{rung}");
            assert!(steps.contains(&id), "{id} planned: {steps:?}");
        }
    }
    for n in lab.node_names() {
        assert_eq!(kubelet_of(&lab, &n), "v1.34.2", "{n}");
        assert_eq!(
            recap_row(&events, &n),
            ("changed".to_string(), "upgraded to v1.34.2".to_string()),
            "{n}"
        );
        assert!(!cordoned(&lab, &n), "{n} is uncordoned");
    }
    let apiserver = lab.run(
        "dalt",
        "grep image: \"$GT_HOST_ROOT/etc/kubernetes/manifests/kube-apiserver.yaml\"",
    );
    assert!(
        apiserver.stdout.contains("kube-apiserver:v1.34.2"),
        "{apiserver}"
    );
    assert_converged(&lab);
}

/// A Pod of a ReplicaSet on fenn, and a budget that allows it no disruption.
fn guarded_pod() -> String {
    workloads::pod_and_budget("hr-app-7c9d4", "fenn", true)
}

fn kubectl_apply(lab: &Lab, manifest: &str) {
    let cmd = format!("printf '%s' '{manifest}' | {KUBECTL} apply -f -");
    lab.run("bettley", &cmd).success();
}

#[test]
fn a_rung_stops_where_a_worker_fails_resumes_after_kill_9_and_keeps_an_operators_cordon() {
    let lab = Lab::up(Transport::Ssh)
        .topology_toml(small_cluster())
        .converged();
    // harlton is the operator's: cordoned by hand before the upgrade.
    lab.run("bettley", &format!("{KUBECTL} cordon harlton"))
        .success();
    kubectl_apply(&lab, &guarded_pod());
    want_version(&lab, "1.33.3");

    // The drain fails naming the budget, and the batches after fenn's do
    // not start.
    let (run, events) = apply_json(&lab.config(), &[]);
    assert_eq!(run.code, Some(1), "{run}");
    let error = failure_of(&events, "upgrade/fenn@v1.33.3");
    assert!(
        error.contains(
            "PodDisruptionBudget default/hr (pod default/hr-app-7c9d4) allows no disruption"
        ),
        "{error}"
    );
    assert!(
        error.contains("within 1s (drain_timeout in [apply])"),
        "{error}"
    );
    assert_eq!(
        recap_row(&events, "bettley"),
        ("changed".into(), "upgraded to v1.33.3".into())
    );
    let (result, detail) = recap_row(&events, "fenn");
    assert_eq!(result, "failed");
    assert!(
        detail.starts_with("at v1.32.4; upgrade/fenn@v1.33.3: "),
        "{detail}"
    );
    for later in ["gardener", "harlton"] {
        assert_eq!(node_result(&events, later), "skipped", "{later}");
        assert_eq!(kubelet_of(&lab, later), "v1.32.4", "{later} not started");
    }
    assert!(
        cordoned(&lab, "fenn"),
        "fenn stays cordoned by gt until its upgrade ends"
    );

    // The budget relaxed, gardener's `kubeadm upgrade node` fails: fenn
    // finishes (and is uncordoned), harlton's batch does not start.
    kubectl_apply(
        &lab,
        &guarded_pod().replace("minAvailable: 1", "minAvailable: 0"),
    );
    lab.fault("gardener", &["fail-upgrade"]).success();
    let (run, events) = apply_json(&lab.config(), &[]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        !planned_steps(&events)
            .iter()
            .any(|s| s.starts_with("upgrade/bettley")),
        "bettley is done: {:?}",
        planned_steps(&events)
    );
    let error = failure_of(&events, "upgrade/gardener@v1.33.3");
    assert!(
        error.contains("kubeadm upgrade node on gardener exited"),
        "{error}"
    );
    assert_eq!(
        recap_row(&events, "fenn"),
        ("changed".into(), "upgraded to v1.33.3".into())
    );
    assert!(!cordoned(&lab, "fenn"));
    let (result, detail) = recap_row(&events, "gardener");
    assert_eq!(result, "failed");
    assert!(detail.starts_with("at v1.32.4; "), "{detail}");
    assert_eq!(node_result(&events, "harlton"), "skipped");

    // Healed; the apply is killed once harlton's upgrade started: the next
    // plan holds harlton's upgrade only, and the apply after it converges.
    lab.fault("gardener", &["heal"]).success();
    let (mut child, mut lines) = spawn_apply_json(&lab, &[]);
    read_until(&mut lines, |e| {
        e["event"] == "step_started" && e["step"] == "upgrade/harlton@v1.33.3"
    });
    child.kill().unwrap();
    child.wait().unwrap();
    drop(lines);
    lab.gt(&["unlock", "--yes"]).success();
    let (run, events) = apply_json(&lab.config(), &[]);
    assert_eq!(run.code, Some(0), "{run}");
    let upgrades: Vec<String> = planned_steps(&events)
        .into_iter()
        .filter(|s| s.starts_with("upgrade/"))
        .collect();
    assert_eq!(upgrades, ["upgrade/harlton@v1.33.3"]);
    for n in ["bettley", "fenn", "gardener", "harlton"] {
        assert_eq!(kubelet_of(&lab, n), "v1.33.3", "{n}");
    }
    assert!(!cordoned(&lab, "gardener"));
    assert!(cordoned(&lab, "harlton"), "the operator's cordon survives");
    assert_converged(&lab);

    // Refused at plan time, with the numbers: a downgrade, and a kubeadm a
    // minor past the next one.
    want_version(&lab, "1.32");
    let plan = lab.gt(&["plan"]);
    assert_eq!(plan.code, Some(1), "{plan}");
    for want in ["downgrade", "1.32", "v1.33.3"] {
        assert!(plan.stderr.contains(want), "{want}: {plan}");
    }
    want_version(&lab, "1.34.2");
    lab.run(
        "fenn",
        "sed -i 's|/v1\\.[0-9]*/|/v1.35/|' \"$GT_HOST_ROOT/etc/apt/sources.list.d/kubernetes.list\" && apt-get update -q && apt-mark unhold kubeadm && apt-get install -y -q kubeadm=1.35.1-1.1",
    )
    .success();
    let plan = lab.gt(&["plan"]);
    assert_eq!(plan.code, Some(1), "{plan}");
    for want in ["fenn", "v1.35.1", "v1.33.3"] {
        assert!(plan.stderr.contains(want), "{want}: {plan}");
    }

    // A removal's drain is predicted like an upgrade's: fenn set absent,
    // with a pod no controller owns on it and a budget that allows no
    // disruption of the two pods it guards.
    want_version(&lab, "1.33.3");
    kubectl_apply(
        &lab,
        &workloads::pod_and_budget("lone", "fenn", false)
            .replace("minAvailable: 1", "minAvailable: 2"),
    );
    let config = lab
        .variant("fenn-absent.toml")
        .state("fenn", "absent")
        .write();
    let plan = Test::new().config(&config).args(["plan", "--json"]).run();
    plan.status(0);
    let warnings: Vec<String> = plan.json()["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["node"] == "fenn" && w["kind"] == "drain")
        .map(|w| w["message"].as_str().unwrap().to_string())
        .collect();
    // The lab's scheduler may have put a CoreDNS pod on fenn as well.
    for (want, naming) in [
        ("draining fenn (removal) evicts ", "default/lone"),
        (
            "draining fenn stops at pods no controller owns: default/lone;",
            "",
        ),
        (
            "draining fenn is blocked by PodDisruptionBudget default/hr, which allows no disruption now, covering default/lone:",
            "",
        ),
    ] {
        assert!(
            warnings
                .iter()
                .any(|w| w.starts_with(want) && w.contains(naming)),
            "{want}: {warnings:#?}"
        );
    }
}
