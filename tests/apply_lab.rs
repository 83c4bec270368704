//! `gt apply` against the lab, as a user runs it: an empty goldentooth to
//! twelve Ready nodes in one apply, over both transports; a node added to
//! the file; a failing join; a gate that times out naming what was not
//! ready; Ctrl-C; and no secret anywhere a user or another user could see.

#[path = "support/lab.rs"]
mod lab_support;

use lab_support::{Lab, Run, Transport};
#[path = "support/secrets.rs"]
mod secrets;
use secrets::secrets_in;
use serde_json::Value;
use std::io::{BufRead, BufReader, Lines};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};

/// `gt apply --auto-approve --json` with the given config; its events.
fn apply_json(config: &Path) -> (Run, Vec<Value>) {
    let run = lab_support::gt(&[
        "--config",
        config.to_str().unwrap(),
        "apply",
        "--auto-approve",
        "--json",
    ]);
    let events = run
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON event ({e}): {l}\n{run}"))
        })
        .collect();
    (run, events)
}

/// `gt apply --auto-approve --json` running in the background, and its
/// event lines. Keep reading them to the end: a closed pipe ends gt with SIGPIPE.
fn spawn_apply_json(lab: &Lab) -> (Child, Lines<BufReader<ChildStdout>>) {
    let mut child = Command::new(lab_support::GT)
        .args([
            "--config",
            lab.config().to_str().unwrap(),
            "apply",
            "--auto-approve",
            "--json",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    (child, lines)
}

fn recap(events: &[Value]) -> &Value {
    let last = events.last().expect("some events");
    assert_eq!(last["event"], "recap", "the recap is the last event");
    last
}

fn node_result<'a>(recap: &'a Value, node: &str) -> &'a str {
    recap["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == node)
        .unwrap_or_else(|| panic!("{node} not in the recap: {recap}"))["result"]
        .as_str()
        .unwrap()
}

fn finished<'a>(events: &'a [Value], step: &str) -> &'a Value {
    events
        .iter()
        .find(|e| e["event"] == "step_finished" && e["step"] == step)
        .unwrap_or_else(|| panic!("{step} never finished"))
}

fn started_steps(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["event"] == "step_started")
        .map(|e| e["step"].as_str().unwrap().to_string())
        .collect()
}

/// The lab's cluster.toml with a node's table cut out, or text appended.
fn variant(lab: &Lab, name: &str, without: Option<&str>, extra: &str) -> PathBuf {
    let mut text = std::fs::read_to_string(lab.config()).unwrap();
    if let Some(node) = without {
        let start = text.find(&format!("[nodes.{node}]")).expect("node table");
        let end = text[start + 1..]
            .find("\n[")
            .map_or(text.len(), |i| start + 1 + i + 1);
        text.replace_range(start..end, "");
    }
    text.push_str(extra);
    let path = lab.dir().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Every argv the simulated hosts recorded, as text.
fn recorded_argv(lab: &Lab) -> String {
    lab.node_names()
        .iter()
        .flat_map(|n| lab.log(n))
        .map(|entry| entry["argv"].to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// `kubeadm SUB ...` runs on `node` (`init` does not count `init phase ...`).
fn kubeadm_calls(lab: &Lab, node: &str, sub: &str) -> usize {
    lab.log(node)
        .iter()
        .filter(|e| e["tool"] == "kubeadm" && e["argv"][0] == sub && e["argv"][1] != "phase")
        .count()
}

fn empty_to_converged(transport: Transport) {
    let Some(lab) = Lab::up(transport).speed(0.01).start_or_skip() else {
        return;
    };
    let config = lab.config();
    let (run, events) = apply_json(&config);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(events[0]["event"], "plan");
    assert_eq!(events[0]["plan"]["summary"]["add"], 13, "{}", events[0]);
    let r = recap(&events);
    assert_eq!(r["joined"], 12, "{r}");
    assert_eq!(r["failed_steps"], 0);
    for n in lab.node_names() {
        assert_eq!(node_result(r, &n), "changed", "{n}");
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
    let ready = serde_json::from_str::<Value>(&status.stdout)
        .unwrap()
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
fn one_apply_converges_over_real_ssh() {
    empty_to_converged(Transport::Ssh);
}

#[test]
fn a_node_added_to_the_file_is_the_only_one_that_joins() {
    let lab = Lab::up(Transport::Local).speed(0.01).start();
    let without = variant(&lab, "without-lipps.toml", Some("lipps"), "");
    let (run, events) = apply_json(&without);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(recap(&events)["joined"], 11);
    assert_eq!(kubeadm_calls(&lab, "lipps", "join"), 0);

    let (run, events) = apply_json(&lab.config());
    assert_eq!(run.code, Some(0), "{run}");
    let mut started = started_steps(&events);
    started.sort();
    assert_eq!(
        started,
        [
            "gate/before-worker-joins",
            "join-worker/lipps",
            "mint-token",
            "revoke-token",
            "update/lipps"
        ]
    );
    let r = recap(&events);
    assert_eq!(r["joined"], 1);
    assert_eq!(node_result(r, "lipps"), "changed");
    assert_eq!(node_result(r, "fenn"), "ok");
    assert_eq!(kubeadm_calls(&lab, "bettley", "init"), 1);
    assert_eq!(lab.gt(&["plan", "--detailed-exitcode"]).code, Some(0));
}

#[test]
fn a_failed_worker_join_is_reported_once_the_others_join_and_a_reapply_converges() {
    let lab = Lab::up(Transport::Local).speed(0.01).start();
    lab.fault("jast", &["fail-join"]);
    let (run, events) = apply_json(&lab.config());
    assert_eq!(run.code, Some(1), "{run}");
    let r = recap(&events);
    assert_eq!(node_result(r, "jast"), "failed");
    assert_eq!(r["failures"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(r["failures"][0]["step"], "join-worker/jast");
    assert!(
        r["failures"][0]["error"]
            .as_str()
            .unwrap()
            .starts_with("kubeadm join on jast exited 1: error execution phase preflight"),
        "{r}"
    );
    let skipped = finished(&events, "update/jast");
    assert_eq!(skipped["status"], "skipped");
    assert_eq!(skipped["reason"], "upstream failed (join-worker/jast)");
    for n in ["erenford", "fenn", "velaryon", "cargyll"] {
        assert_eq!(node_result(r, n), "changed", "{n}");
    }
    assert_eq!(finished(&events, "revoke-token")["status"], "succeeded");
    assert_eq!(r["joined"], 11);

    // The next plan tells the truth: jast, and only jast, still to join.
    let plan = lab.gt(&["plan", "--json"]);
    let plan: Value = serde_json::from_str(&plan.stdout).unwrap();
    let changed: Vec<&str> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["address"].as_str().unwrap())
        .collect();
    assert_eq!(changed, ["node.jast"]);

    // The fault was one-shot (healed): re-applying converges without redoing the rest.
    let (run, events) = apply_json(&lab.config());
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(recap(&events)["joined"], 1);
    assert_eq!(lab.gt(&["plan", "--detailed-exitcode"]).code, Some(0));
    assert_eq!(kubeadm_calls(&lab, "fenn", "join"), 1);
}

#[test]
fn the_gate_waits_for_an_api_server_then_fails_naming_it() {
    let lab = Lab::up(Transport::Local).speed(0.01).start();
    let without = variant(&lab, "without-lipps.toml", Some("lipps"), "");
    assert_eq!(apply_json(&without).0.code, Some(0));
    lab.fault("cargyll", &["apiserver-down"]);
    let impatient = variant(
        &lab,
        "impatient.toml",
        None,
        "\n[apply]\ngate_timeout = \"2s\"\n",
    );
    let (run, events) = apply_json(&impatient);
    assert_eq!(run.code, Some(1), "{run}");
    let gate = finished(&events, "gate/before-worker-joins");
    assert_eq!(gate["status"], "failed");
    let why = gate["reason"].as_str().unwrap();
    assert!(
        why.starts_with("the control plane was not ready within 2s (gate_timeout in [apply]): API server on cargyll not ready"),
        "{why}"
    );
    assert!(why.contains(" for 2."), "says for how long: {why}");
    assert!(!why.contains("bettley"), "only what was not ready: {why}");
    assert_eq!(finished(&events, "join-worker/lipps")["status"], "skipped");
    assert_eq!(finished(&events, "revoke-token")["status"], "succeeded");
    assert_eq!(kubeadm_calls(&lab, "lipps", "join"), 0);

    lab.fault("cargyll", &["heal"]);
    let (run, _) = apply_json(&impatient);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(kubeadm_calls(&lab, "lipps", "join"), 1);
}

#[test]
fn ctrl_c_lets_the_running_join_finish_revokes_the_token_and_recaps() {
    // Slow enough that the walk is caught mid-way.
    let lab = Lab::up(Transport::Local).speed(0.05).start();
    let (mut child, mut lines) = spawn_apply_json(&lab);
    let mut events: Vec<Value> = vec![];
    for line in lines.by_ref() {
        let e: Value = serde_json::from_str(&line.unwrap()).unwrap();
        let at_cp_join = e["event"] == "step_started" && e["step"] == "join-control-plane/cargyll";
        events.push(e);
        if at_cp_join {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
            break;
        }
    }
    for line in lines {
        events.push(serde_json::from_str(&line.unwrap()).unwrap());
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1));
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
    // cargyll joined; its labels were not set: partly done, and said so.
    assert_eq!(node_result(r, "cargyll"), "skipped");
    let cargyll = r["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == "cargyll")
        .unwrap();
    assert_eq!(
        cargyll["detail"],
        "done: join-control-plane/cargyll; not done: update/cargyll (interrupted before it started)"
    );
    assert_eq!(node_result(r, "fenn"), "skipped");
    let deletes = lab
        .log("bettley")
        .iter()
        .filter(|e| e["tool"] == "kubeadm" && e["argv"][1] == "delete" && e["exit"] == 0)
        .count();
    assert_eq!(deletes, 1, "the token init made for this run is revoked");

    // Nothing half-applied: the next apply picks up where this one stopped.
    let (run, events) = apply_json(&lab.config());
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(recap(&events)["joined"], 10);
    assert_eq!(kubeadm_calls(&lab, "cargyll", "join"), 1);
}

#[test]
fn a_saved_plan_is_applied_as_reviewed_and_refused_once_stale() {
    let lab = Lab::up(Transport::Local).speed(0.01).start();
    let file = lab.dir().join("bootstrap.plan");
    let file = file.to_str().unwrap();
    lab.gt(&["plan", "--out", file]).assert_ok();

    // gardener goes away after the plan was reviewed: refused, nothing done.
    lab.fault("gardener", &["down"]);
    let refused = lab_support::gt(&["apply", file]);
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
    let applied = lab_support::gt(&["apply", file]);
    assert_eq!(applied.code, Some(0), "{applied}");
    assert!(applied.stdout.contains("12 joined"), "{applied}");
    assert_eq!(lab.gt(&["plan", "--detailed-exitcode"]).code, Some(0));
    let text = std::fs::read_to_string(file).unwrap();
    assert_eq!(secrets_in(&text), Vec::<String>::new());

    // A plan file with flags that would change it is refused, not half-honoured.
    let mixed = lab_support::gt(&["apply", "--prune", file]);
    assert_eq!(mixed.code, Some(1));
    assert!(
        mixed.stderr.contains("drop --config/--prune/--replace"),
        "{mixed}"
    );
}

#[test]
fn without_a_terminal_apply_refuses_unless_approved() {
    let lab = Lab::up(Transport::Local).speed(0.01).start();
    let r = lab.gt(&["apply"]);
    assert_eq!(r.code, Some(1), "{r}");
    assert!(r.stderr.contains("gt apply --auto-approve"), "{r}");
    assert_eq!(kubeadm_calls(&lab, "bettley", "init"), 0);
}

#[test]
fn a_second_ctrl_c_exits_at_once() {
    let lab = Lab::up(Transport::Local).speed(0.05).start();
    let (child, mut lines) = spawn_apply_json(&lab);
    for line in lines.by_ref() {
        let e: Value = serde_json::from_str(&line.unwrap()).unwrap();
        if e["event"] == "step_started" && e["step"] == "init/bettley" {
            break;
        }
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    std::thread::sleep(std::time::Duration::from_millis(200));
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
    let lab = Lab::up(Transport::Local).speed(0.05).start();
    let (mut first, mut lines) = spawn_apply_json(&lab);
    // The walk has started: the lock is held.
    for line in lines.by_ref() {
        let e: Value = serde_json::from_str(&line.unwrap()).unwrap();
        if e["event"] == "step_started" {
            break;
        }
    }
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
    let lab = Lab::up(Transport::Local).speed(0.01).start();
    // jast answers its connection but never its probe: observing takes as
    // long as --timeout, which leaves time to press Ctrl-C.
    lab.fault("jast", &["hang"]);
    let child = Command::new(lab_support::GT)
        .args([
            "--config",
            lab.config().to_str().unwrap(),
            "apply",
            "--auto-approve",
            "--timeout",
            "60s",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lock = lab.host_root("bettley").join("var/lib/gt/apply.lock");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !lock.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the lock was never taken"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
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
