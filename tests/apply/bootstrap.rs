//! `gt apply` against the lab, as a user runs it: an empty goldentooth to
//! twelve Ready nodes in one apply, over both transports; a node added to
//! the file; a failing join; a gate that times out naming what was not
//! ready; a gate that waits for the CNI without asking every 0.1 s;
//! Ctrl-C; and no secret anywhere a user or another user could see.

use crate::support::events::{
    apply_json, finished, kubeadm_calls, node_result, read_until, recap, recap_row,
    spawn_apply_json, started,
};
use crate::support::gt::Test;
use crate::support::lab::{Lab, Transport};
use crate::support::secrets::secrets_in;
use crate::support::wait::eventually;

/// Every argv the simulated hosts recorded, as text.
fn recorded_argv(lab: &Lab) -> String {
    lab.node_names()
        .iter()
        .flat_map(|n| lab.log(n))
        .map(|entry| entry["argv"].to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn empty_to_converged(transport: Transport) {
    let lab = Lab::up(transport).speed(0.01).start();
    let config = lab.config();
    let (run, events) = apply_json(&config, &[]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(events[0]["event"], "plan");
    assert_eq!(events[0]["plan"]["summary"]["add"], 13, "{}", events[0]);
    let r = recap(&events);
    assert_eq!(r["joined"], 12, "{r}");
    assert_eq!(r["failed_steps"], 0);
    for n in lab.node_names() {
        assert_eq!(node_result(&events, &n), "changed", "{n}");
    }
    // The DAG's guarantees, seen from outside: a worker joined only after
    // the last control plane and the gate; the token revoked last.
    let pos = |id: &str| {
        events
            .iter()
            .position(|e| e["step"] == id && e["event"] == "step_started")
            .unwrap()
    };
    let done = |id: &str| {
        events
            .iter()
            .position(|e| e["step"] == id && e["event"] == "step_finished")
            .unwrap()
    };
    assert!(done("join-control-plane/dalt") < pos("gate/before-worker-joins"));
    assert!(done("gate/before-worker-joins") < pos("join-worker/fenn"));
    assert!(done("join-worker/velaryon") < pos("revoke-token"));

    let plan = lab.gt(&["plan", "--detailed-exitcode"]);
    assert_eq!(
        plan.code,
        Some(0),
        "a converged cluster plans no changes: {plan}"
    );
    let status = lab.gt(&["status", "--json"]);
    let ready = status
        .json()
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["ready"] == "True")
        .count();
    assert_eq!(ready, 12, "{status}");

    // A second apply does nothing, and runs no kubeadm anywhere.
    let joins_before: usize = lab
        .node_names()
        .iter()
        .map(|n| kubeadm_calls(&lab, n, "join"))
        .sum();
    let again = lab.gt(&["apply", "--auto-approve"]);
    assert_eq!(again.code, Some(0), "{again}");
    assert!(again.stdout.contains("No changes."), "{again}");
    let joins_after: usize = lab
        .node_names()
        .iter()
        .map(|n| kubeadm_calls(&lab, n, "join"))
        .sum();
    assert_eq!(joins_before, joins_after);
    assert_eq!(kubeadm_calls(&lab, "bettley", "init"), 1);

    // No secret in what gt printed, nor in any process's argv on the hosts.
    for text in [
        &run.stdout,
        &run.stderr,
        &again.stdout,
        &recorded_argv(&lab),
    ] {
        assert_eq!(secrets_in(text), Vec::<String>::new());
    }
    let join_argv: Vec<String> = lab
        .log("fenn")
        .iter()
        .filter(|e| e["tool"] == "kubeadm" && e["argv"][0] == "join")
        .map(|e| e["argv"].to_string())
        .collect();
    assert_eq!(join_argv, vec![r#"["join","--config=/dev/stdin"]"#]);
}

#[test]
fn one_apply_takes_an_empty_goldentooth_to_twelve_ready_nodes() {
    empty_to_converged(Transport::Local);
}

#[test]
#[cfg_attr(
    not(any(has_sshd, ci)),
    ignore = "needs sshd: apt-get install openssh-server"
)]
fn one_apply_converges_over_real_ssh() {
    empty_to_converged(Transport::Ssh);
}

#[test]
fn a_node_added_to_the_file_is_the_only_one_that_joins() {
    let lab = Lab::up(Transport::Local).model_etcd().speed(0.01).start();
    let without = lab.variant("without-lipps.toml").without("lipps").write();
    let (run, events) = apply_json(&without, &[]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(recap(&events)["joined"], 11);
    assert_eq!(kubeadm_calls(&lab, "lipps", "join"), 0);

    let (run, events) = apply_json(&lab.config(), &[]);
    assert_eq!(run.code, Some(0), "{run}");
    let mut started = started(&events);
    started.sort();
    assert_eq!(
        started,
        [
            "gate/before-worker-joins",
            "join-worker/lipps",
            "mint-token",
            "revoke-token",
        ]
    );
    let r = recap(&events);
    assert_eq!(r["joined"], 1);
    assert_eq!(node_result(&events, "lipps"), "changed");
    assert_eq!(node_result(&events, "fenn"), "ok");
    assert_eq!(kubeadm_calls(&lab, "bettley", "init"), 1);
    assert_eq!(lab.gt(&["plan", "--detailed-exitcode"]).code, Some(0));
}

/// The lab's simulated tools run at `speed` from now on (each reads
/// lab.json as it starts).
fn set_speed(lab: &Lab, speed: f64) {
    let path = lab.dir().join("lab.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    v["speed"] = serde_json::json!(speed);
    std::fs::write(&path, v.to_string()).unwrap();
}

/// `kubectl get nodes -o json` runs on the control planes so far: the
/// shared poll of Nodes that every wait reads.
fn node_polls(lab: &Lab) -> usize {
    ["bettley", "cargyll", "dalt"]
        .iter()
        .flat_map(|n| lab.log(n))
        .filter(|e| {
            e["tool"] == "kubectl"
                && e["argv"]
                    .to_string()
                    .contains(r#""get","nodes","-o","json""#)
        })
        .count()
}

#[test]
fn a_joining_workers_wait_follows_a_watch_of_nodes_that_ends_with_the_apply() {
    let lab = Lab::up(Transport::Ssh).model_etcd().speed(0.01).start();
    let without = lab.variant("without-lipps.toml").without("lipps").write();
    let (run, _) = apply_json(&without, &[]);
    assert_eq!(run.code, Some(0), "{run}");
    // lipps's join takes 4 s, and its Node is Ready 3 s after it registers.
    set_speed(&lab, 0.2);
    let before = node_polls(&lab);
    let (run, events) = apply_json(&lab.config(), &[]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(recap(&events)["joined"], 1);
    // Polled every 0.1 s, the 3 s wait for Ready alone reads Nodes some 30
    // times; with the watch gt reads them when one changes (lipps
    // registered), at each wait's first look, and every 2 s; the watch's
    // line saying lipps is Ready ends its wait (5 reads in all here).
    let polls = node_polls(&lab) - before;
    assert!(polls < 15, "{polls} reads of every Node");
    // The watch's kubectl ends with gt's hold on it, not 30 minutes later.
    eventually("the kubectl watch ends with the apply", || {
        !lab.processes().iter().any(|p| p.contains("--watch"))
    });
}

/// goldentooth's header, bettley and erenford: one control plane, one worker.
fn one_control_plane_and_one_worker() -> String {
    let full = std::fs::read_to_string(crate::support::gt::goldentooth()).unwrap();
    let section = |name: &str| {
        let start = full.find(&format!("[nodes.{name}]")).unwrap();
        let end = full[start + 1..]
            .find("[nodes.")
            .map_or(full.len(), |i| start + 1 + i);
        full[start..end].to_string()
    };
    let header = &full[..full.find("[nodes.").unwrap()];
    format!("{header}{}{}", section("bettley"), section("erenford"))
}

/// `kubectl get --raw /readyz…` runs on bettley.
fn readyz_queries(lab: &Lab) -> usize {
    lab.log("bettley")
        .iter()
        .filter(|e| e["tool"] == "kubectl" && e["argv"].to_string().contains("/readyz"))
        .count()
}

#[test]
fn a_gate_waiting_for_the_cni_waits_for_the_watchs_word_instead_of_looking_every_poll() {
    // Speed 0.1: the CNI is ready 1.5 s after its manifest is applied, and
    // the gate before erenford's join waits for bettley's Node that long.
    let lab = Lab::up(Transport::Ssh)
        .model_etcd()
        .speed(0.1)
        .topology_toml(one_control_plane_and_one_worker())
        .start();
    let (run, events) = apply_json(&lab.config(), &[]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(recap(&events)["joined"], 2);
    let gate = finished(&events, "gate/before-worker-joins");
    assert!(
        gate["elapsed"].as_f64().unwrap() >= 1.0,
        "the gate did not wait for the CNI: {gate}"
    );
    // Looks every 0.1 s, each reading every Node and asking two /readyz
    // (bettley's own and the endpoint's), were some 15 for the CNI alone
    // and 10 more while bettley's API server finished starting. Now a look
    // reads Nodes from the watch once it is live (3 reads in all here:
    // the observation, the gate's first look, erenford's wait), and while
    // only bettley's Node keeps the gate shut nothing is asked until the
    // watch's line: 20 /readyz here, 32 when the gate looks every 0.1 s
    // through the CNI's wait instead (a loaded machine makes fewer looks
    // of either kind: waits_tests.rs pins the looks exactly).
    let polls = node_polls(&lab);
    assert!(polls <= 8, "{polls} reads of every Node");
    let readyz = readyz_queries(&lab);
    assert!(readyz <= 26, "{readyz} /readyz on bettley");
}

#[test]
fn a_failed_worker_join_is_reported_once_the_others_join_and_a_reapply_converges() {
    let lab = Lab::up(Transport::Local).model_etcd().speed(0.01).start();
    lab.fault("jast", &["fail-join"]);
    let (run, events) = apply_json(&lab.config(), &[]);
    assert_eq!(run.code, Some(1), "{run}");
    let r = recap(&events);
    assert_eq!(node_result(&events, "jast"), "failed");
    assert_eq!(r["failures"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(r["failures"][0]["step"], "join-worker/jast");
    assert!(
        r["failures"][0]["error"]
            .as_str()
            .unwrap()
            .starts_with("kubeadm join on jast exited 1: error execution phase preflight"),
        "{r}"
    );
    for n in ["erenford", "fenn", "velaryon", "cargyll"] {
        assert_eq!(node_result(&events, n), "changed", "{n}");
    }
    assert_eq!(finished(&events, "revoke-token")["status"], "succeeded");
    assert_eq!(r["joined"], 11);

    // The next plan tells the truth: jast, and only jast, still to join.
    let plan = lab.gt(&["plan", "--json"]).json();
    let changed: Vec<&str> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["address"].as_str().unwrap())
        .collect();
    assert_eq!(changed, ["node.jast"]);

    // The fault was one-shot (healed): re-applying converges without redoing the rest.
    let (run, events) = apply_json(&lab.config(), &[]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(recap(&events)["joined"], 1);
    assert_eq!(lab.gt(&["plan", "--detailed-exitcode"]).code, Some(0));
    assert_eq!(kubeadm_calls(&lab, "fenn", "join"), 1);
}

/// `gt apply --json` on `lab`, one Ctrl-C once an event satisfies `when`:
/// its exit code and every event.
fn ctrl_c_once(
    lab: &Lab,
    when: impl FnMut(&serde_json::Value) -> bool,
) -> (Option<i32>, Vec<serde_json::Value>) {
    let (mut child, mut lines) = spawn_apply_json(lab, &[]);
    let mut events = read_until(&mut lines, when);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    for line in lines {
        events.push(serde_json::from_str(&line.unwrap()).unwrap());
    }
    (child.wait().unwrap().code(), events)
}

#[test]
fn the_gate_waits_for_an_api_server_then_fails_naming_it() {
    // The gate's 2 s timeout is wall time: no other lab loads the machine.
    let lab = Lab::up(Transport::Local)
        .model_etcd()
        .speed(0.01)
        .alone()
        .start();
    let without = lab.variant("without-lipps.toml").without("lipps").write();
    assert_eq!(apply_json(&without, &[]).0.code, Some(0));
    lab.fault("cargyll", &["apiserver-down"]);
    let impatient = lab
        .variant("impatient.toml")
        .append("\n[apply]\ngate_timeout = \"2s\"\n")
        .write();
    let (run, events) = apply_json(&impatient, &[]);
    assert_eq!(run.code, Some(1), "{run}");
    let gate = finished(&events, "gate/before-worker-joins");
    assert_eq!(gate["status"], "failed");
    let why = gate["reason"].as_str().unwrap();
    assert!(
        why.starts_with("the control plane was not ready within 2s (gate_timeout in [apply]): API server on cargyll not ready"),
        "{why}"
    );
    // For how long it saw the API server down: up to the gate's 2 s, less
    // when its first query came late (a loaded machine).
    let seconds: f64 = why
        .rsplit_once(" for ")
        .and_then(|(_, rest)| rest.strip_suffix(" s"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("says for how long: {why}"));
    assert!(seconds > 0.0 && seconds < 3.0, "{seconds} s: {why}");
    assert!(!why.contains("bettley"), "only what was not ready: {why}");
    assert_eq!(finished(&events, "join-worker/lipps")["status"], "skipped");
    assert_eq!(finished(&events, "revoke-token")["status"], "succeeded");
    assert_eq!(kubeadm_calls(&lab, "lipps", "join"), 0);

    // Ctrl-C while the gate waits (5 minutes by default): a wait has nothing
    // to finish, so it is cancelled at once rather than timing out.
    let (code, events) = ctrl_c_once(&lab, |e| {
        e["event"] == "step_progress" && e["step"] == "gate/before-worker-joins"
    });
    assert_eq!(code, Some(1));
    let gate = finished(&events, "gate/before-worker-joins");
    assert_eq!(gate["status"], "cancelled", "{gate}");
    assert_eq!(gate["reason"], "interrupted while waiting");
    assert_eq!(
        finished(&events, "join-worker/lipps")["status"],
        "cancelled"
    );
    assert_eq!(finished(&events, "revoke-token")["status"], "succeeded");
    assert_eq!(recap(&events)["interrupted"], true);
    assert_eq!(kubeadm_calls(&lab, "lipps", "join"), 0);

    lab.fault("cargyll", &["heal"]);
    let (run, _) = apply_json(&impatient, &[]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(kubeadm_calls(&lab, "lipps", "join"), 1);
}

#[test]
fn ctrl_c_lets_the_running_join_finish_revokes_the_token_and_recaps() {
    // cargyll carries a label its kubelet may not set on itself: kubectl
    // sets it after the join, in a step the interruption leaves undone.
    let full = std::fs::read_to_string(crate::support::gt::goldentooth()).unwrap();
    let own =
        "address = \"10.4.0.12\"\nlabels = { \"goldentooth.io/hardware\" = \"raspberry-pi-4b\" }";
    assert!(full.contains(own), "goldentooth's cargyll changed");
    let topology = full.replace(
        own,
        "address = \"10.4.0.12\"\nlabels = { \"goldentooth.io/hardware\" = \"raspberry-pi-4b\", \"app.kubernetes.io/part-of\" = \"goldentooth\" }",
    );
    // Slow enough that the walk is caught mid-way.
    let lab = Lab::up(Transport::Local)
        .speed(0.05)
        .topology_toml(topology)
        .start();
    let (code, events) = ctrl_c_once(&lab, |e| {
        e["event"] == "step_started" && e["step"] == "join-control-plane/cargyll"
    });
    assert_eq!(code, Some(1));
    assert!(events.iter().any(|e| e["event"] == "interrupted"));
    assert_eq!(
        finished(&events, "join-control-plane/cargyll")["status"],
        "succeeded"
    );
    assert_eq!(
        finished(&events, "join-control-plane/dalt")["status"],
        "cancelled"
    );
    assert_eq!(finished(&events, "join-worker/fenn")["status"], "cancelled");
    assert_eq!(finished(&events, "revoke-token")["status"], "succeeded");
    let r = recap(&events);
    assert_eq!(r["interrupted"], true);
    // cargyll joined; the label kubectl sets was not set: partly done, and
    // said so.
    assert_eq!(node_result(&events, "cargyll"), "skipped");
    assert_eq!(
        recap_row(&events, "cargyll").1,
        "done: join-control-plane/cargyll; not done: update/cargyll (interrupted before it started)"
    );
    assert_eq!(node_result(&events, "fenn"), "skipped");
    let deletes = lab
        .log("bettley")
        .iter()
        .filter(|e| e["tool"] == "kubeadm" && e["argv"][1] == "delete" && e["exit"] == 0)
        .count();
    assert_eq!(deletes, 1, "the token init made for this run is revoked");

    // Nothing half-applied: the next apply picks up where this one stopped.
    let (run, events) = apply_json(&lab.config(), &[]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(recap(&events)["joined"], 10);
    assert_eq!(kubeadm_calls(&lab, "cargyll", "join"), 1);
}

#[test]
fn a_saved_plan_is_applied_as_reviewed_and_refused_once_stale() {
    let lab = Lab::up(Transport::Local).model_etcd().speed(0.01).start();
    let file = lab.dir().join("bootstrap.plan");
    let file = file.to_str().unwrap();
    lab.gt(&["plan", "--out", file]).success();

    // gardener goes away after the plan was reviewed: refused, nothing done.
    lab.fault("gardener", &["down"]);
    let refused = Test::new().args(["apply", file]).run();
    assert_eq!(refused.code, Some(1), "{refused}");
    assert!(
        refused.stderr.contains("host gardener"),
        "says what changed: {refused}"
    );
    assert!(
        refused.stderr.contains("gt plan --out"),
        "says what to do: {refused}"
    );
    assert_eq!(kubeadm_calls(&lab, "bettley", "init"), 0);

    // Back as it was: the plan is current again and applies without a question.
    lab.fault("gardener", &["heal"]);
    let applied = Test::new().args(["apply", file]).run();
    assert_eq!(applied.code, Some(0), "{applied}");
    assert!(applied.stdout.contains("12 joined"), "{applied}");
    assert_eq!(lab.gt(&["plan", "--detailed-exitcode"]).code, Some(0));
    let text = std::fs::read_to_string(file).unwrap();
    assert_eq!(secrets_in(&text), Vec::<String>::new());

    // A plan file with flags that would change it is refused, not half-honoured.
    let mixed = Test::new().args(["apply", "--prune", file]).run();
    assert_eq!(mixed.code, Some(1));
    assert!(
        mixed.stderr.contains("drop --config/--prune/--replace"),
        "{mixed}"
    );
}

#[test]
fn without_a_terminal_apply_refuses_unless_approved() {
    let lab = Lab::up(Transport::Local).model_etcd().speed(0.01).start();
    let r = lab.gt(&["apply"]);
    assert_eq!(r.code, Some(1), "{r}");
    assert!(r.stderr.contains("gt apply --auto-approve"), "{r}");
    assert_eq!(kubeadm_calls(&lab, "bettley", "init"), 0);
}

#[test]
fn a_second_ctrl_c_exits_at_once() {
    let lab = Lab::up(Transport::Local).model_etcd().speed(0.05).start();
    let (child, mut lines) = spawn_apply_json(&lab, &[]);
    read_until(&mut lines, |e| {
        e["event"] == "step_started" && e["step"] == "init/bettley"
    });
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    // The second only once gt has taken the first: two pending SIGINTs are one.
    read_until(&mut lines, |e| e["event"] == "interrupted");
    // SAFETY: as above.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    // Keep reading: a closed pipe would end gt with SIGPIPE instead.
    for _ in lines {}
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Interrupted twice: exiting now"),
        "{stderr}"
    );
}

#[test]
fn a_second_apply_refuses_naming_the_first_and_unlock_is_not_needed_after() {
    let lab = Lab::up(Transport::Local).model_etcd().speed(0.05).start();
    let (mut first, mut lines) = spawn_apply_json(&lab, &[]);
    // The walk has started: the lock is held.
    read_until(&mut lines, |e| e["event"] == "step_started");
    let second = lab.gt(&["apply", "--auto-approve"]);
    assert_eq!(second.code, Some(1), "{second}");
    let who = format!("(pid {}, ", first.id());
    assert!(
        second
            .stderr
            .contains("another gt apply holds the lock of cluster goldentooth on bettley")
            && second.stderr.contains(&who),
        "names the holder {who}: {second}"
    );
    for _ in lines {}
    assert_eq!(first.wait().unwrap().code(), Some(0));
    assert_eq!(
        kubeadm_calls(&lab, "bettley", "init"),
        1,
        "the second apply did nothing"
    );
    // Released at the end: the next apply takes it (and has nothing to do).
    let again = lab.gt(&["apply", "--auto-approve"]);
    assert_eq!(again.code, Some(0), "{again}");
    assert!(!lab
        .host_root("bettley")
        .join("var/lib/gt/apply.lock")
        .exists());
}

#[test]
fn ctrl_c_while_observing_changes_nothing_and_releases_the_lock() {
    let lab = Lab::up(Transport::Local).model_etcd().speed(0.01).start();
    // jast answers its connection but never its probe: observing takes as
    // long as --timeout, which leaves time to press Ctrl-C.
    lab.fault("jast", &["hang"]);
    let child = lab
        .test()
        .args(["apply", "--auto-approve", "--timeout", "60s"])
        .spawn();
    let lock = lab.host_root("bettley").join("var/lib/gt/apply.lock");
    eventually("gt takes the lock", || lock.exists());
    // Observing has begun once a host has run one of the probe's tools; gt
    // handles Ctrl-C from before it starts observing.
    eventually("gt observes the hosts", || {
        lab.node_names().iter().any(|n| !lab.log(n).is_empty())
    });
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("Interrupted while observing the cluster: nothing was changed."),
        "{stderr}"
    );
    assert!(
        !lock.exists(),
        "the lock is released, not left to its lease"
    );
    assert_eq!(kubeadm_calls(&lab, "bettley", "init"), 0);
}
