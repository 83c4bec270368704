//! `gt apply` stopped by a signal or losing its stdout, over both
//! transports: TERM and HUP stop it as a first Ctrl-C does (running steps
//! finish, the token is revoked, the recap is printed, the lock released); a
//! second signal of any kind ends gt at once; a closed stdout does not stop
//! it at all. Whatever the way out, no SSH control directory of the run is
//! left in its TMPDIR.
//!
//! Each gt gets a TMPDIR of its own, set in its environment only: the test
//! process keeps the machine-wide lab lock in the shared one.

use crate::support::events::{apply_json, finished, node_result, read_until, recap};
use crate::support::lab::{Lab, Transport};
use crate::support::wait::eventually;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, ExitStatus};

fn send(child: &Child, signal: i32) {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, signal) };
}

/// What gt left in its TMPDIR: control directories are named `gt-ssh-*`.
fn left_in(tmp: &Path) -> Vec<String> {
    std::fs::read_dir(tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Successful `kubeadm token delete` runs: the revocation of this run's token.
fn token_deletes(lab: &Lab) -> usize {
    lab.log("bettley")
        .iter()
        .filter(|e| e["tool"] == "kubeadm" && e["argv"][1] == "delete" && e["exit"] == 0)
        .count()
}

fn lock_file(lab: &Lab) -> std::path::PathBuf {
    lab.host_root("bettley").join("var/lib/gt/apply.lock")
}

/// The lock was released, not left to its lease: the next apply takes it at
/// once and finishes the job.
#[track_caller]
fn next_apply_runs_at_once(lab: &Lab) {
    assert!(!lock_file(lab).exists(), "the lock is released");
    let (run, events) = apply_json(&lab.config(), &[]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(recap(&events)["failed_steps"], 0);
}

fn stops_like_a_first_ctrl_c(signal: i32, transport: Transport) {
    let lab = Lab::up(transport).speed(0.05).start();
    let tmp = tempfile::tempdir().unwrap();
    let mut child = lab
        .test()
        .env("TMPDIR", tmp.path())
        .args(["apply", "--auto-approve", "--json"])
        .spawn();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut events = read_until(&mut lines, |e| {
        e["event"] == "step_started" && e["step"] == "join-control-plane/cargyll"
    });
    send(&child, signal);
    for line in lines {
        events.push(serde_json::from_str(&line.unwrap()).unwrap());
    }
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "{status:?} {stderr}");
    assert!(events.iter().any(|e| e["event"] == "interrupted"));
    assert_eq!(
        finished(&events, "join-control-plane/cargyll")["status"],
        "succeeded",
        "the running join finished"
    );
    assert_eq!(finished(&events, "join-worker/fenn")["status"], "cancelled");
    assert_eq!(finished(&events, "revoke-token")["status"], "succeeded");
    assert_eq!(recap(&events)["interrupted"], true);
    assert_eq!(node_result(&events, "fenn"), "skipped");
    assert_eq!(token_deletes(&lab), 1, "the run's token is revoked");
    assert_eq!(left_in(tmp.path()), Vec::<String>::new());
    next_apply_runs_at_once(&lab);
}

#[test]
fn sigterm_stops_an_apply_like_a_first_ctrl_c() {
    stops_like_a_first_ctrl_c(libc::SIGTERM, Transport::Local);
}

#[test]
fn sigterm_stops_an_apply_like_a_first_ctrl_c_over_ssh() {
    stops_like_a_first_ctrl_c(libc::SIGTERM, Transport::Ssh);
}

#[test]
fn sighup_stops_an_apply_like_a_first_ctrl_c() {
    stops_like_a_first_ctrl_c(libc::SIGHUP, Transport::Local);
}

#[test]
fn sighup_stops_an_apply_like_a_first_ctrl_c_over_ssh() {
    stops_like_a_first_ctrl_c(libc::SIGHUP, Transport::Ssh);
}

#[test]
fn sigint_stops_an_apply_over_ssh_and_leaves_no_control_socket() {
    stops_like_a_first_ctrl_c(libc::SIGINT, Transport::Ssh);
}

#[test]
fn a_second_signal_of_another_kind_ends_gt_at_once_without_leaving_its_sockets() {
    let lab = Lab::up(Transport::Ssh).speed(0.05).start();
    let tmp = tempfile::tempdir().unwrap();
    let mut child = lab
        .test()
        .env("TMPDIR", tmp.path())
        .args(["apply", "--auto-approve", "--json"])
        .spawn();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    read_until(&mut lines, |e| {
        e["event"] == "step_started" && e["step"] == "init/bettley"
    });
    send(&child, libc::SIGTERM);
    // The second only once gt has taken the first.
    read_until(&mut lines, |e| e["event"] == "interrupted");
    send(&child, libc::SIGHUP);
    // Keep reading: a closed pipe is not what this test is about.
    for _ in lines {}
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(128 + libc::SIGHUP), "{stderr}");
    assert!(
        stderr.contains("Interrupted twice (then SIGHUP): exiting now"),
        "{stderr}"
    );
    assert_eq!(left_in(tmp.path()), Vec::<String>::new());
}

#[test]
fn a_signal_while_observing_cancels_and_removes_the_control_directory() {
    let lab = Lab::up(Transport::Ssh).speed(0.01).start();
    // jast answers its connection but never its probe: observing lasts as
    // long as --timeout.
    lab.fault("jast", &["hang"]);
    let tmp = tempfile::tempdir().unwrap();
    let child = lab
        .test()
        .env("TMPDIR", tmp.path())
        .args(["apply", "--auto-approve", "--timeout", "60s"])
        .spawn();
    eventually("gt observes the hosts", || {
        lab.node_names().iter().any(|n| !lab.log(n).is_empty())
    });
    send(&child, libc::SIGTERM);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("Interrupted (SIGTERM) while observing the cluster: nothing was changed."),
        "{stderr}"
    );
    assert!(!lock_file(&lab).exists(), "the lock is released");
    assert_eq!(left_in(tmp.path()), Vec::<String>::new());
}

#[test]
fn a_signal_ends_a_read_only_command_at_once_without_leaving_its_sockets() {
    let lab = Lab::up(Transport::Ssh).speed(0.01).start();
    lab.fault("jast", &["hang"]);
    let tmp = tempfile::tempdir().unwrap();
    let child = lab
        .test()
        .env("TMPDIR", tmp.path())
        .args(["status", "--timeout", "60s"])
        .spawn();
    // A connection is open: its socket is in the control directory.
    eventually("gt connects", || {
        lab.node_names().iter().any(|n| !lab.log(n).is_empty())
    });
    assert_eq!(left_in(tmp.path()).len(), 1, "one control directory");
    send(&child, libc::SIGTERM);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(128 + libc::SIGTERM));
    assert_eq!(left_in(tmp.path()), Vec::<String>::new());
}

#[test]
fn a_signal_that_ends_gt_at_once_ends_its_local_commands_too() {
    let dir = tempfile::tempdir().unwrap();
    let config =
        crate::cli::hostile_hosts::local_host_whose_uname_is(dir.path(), "echo fenn aarch64");
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let marker = dir.path().join("finished");
    let mut child = crate::support::gt::Test::new()
        .config(&config)
        .env("TMPDIR", &tmp)
        .args([
            "exec",
            "fenn",
            "--",
            &format!("echo started; sleep 2; touch {}", marker.display()),
        ])
        .spawn();
    let mut first = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first, "fenn | started\n");
    send(&child, libc::SIGTERM);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(128 + libc::SIGTERM));
    // Its own process group kept it from the signal; gt ended it on its way out.
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(!marker.exists(), "the command was stopped with gt");
    assert_eq!(left_in(&tmp), Vec::<String>::new());
}

/// Reads the first line of `child`'s stdout and closes it, as `| head -1`
/// does; then its whole stderr and how it ended.
pub(crate) fn read_one_line_and_close(mut child: Child) -> (String, String, ExitStatus) {
    let mut first = String::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdout.read_line(&mut first).unwrap();
    drop(stdout);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (first, stderr, child.wait().unwrap())
}

/// The first line read, then the reader gone: the apply goes on to its end.
fn survives_a_closed_stdout(transport: Transport, extra: &[&str]) {
    let lab = Lab::up(transport).speed(0.01).start();
    let tmp = tempfile::tempdir().unwrap();
    let child = lab
        .test()
        .env("TMPDIR", tmp.path())
        .args(["apply", "--auto-approve"])
        .args(extra)
        .spawn();
    let (first, stderr, status) = read_one_line_and_close(child);
    assert!(!first.is_empty());
    assert_eq!(status.code(), Some(0), "the walk's status: {stderr}");
    // The recap, which stdout could not take, is on stderr.
    assert!(stderr.contains("Recap:"), "{stderr}");
    assert!(
        stderr.contains("Apply complete! Nodes: 12 joined"),
        "{stderr}"
    );
    assert_eq!(token_deletes(&lab), 1, "the run's token is revoked");
    assert_eq!(left_in(tmp.path()), Vec::<String>::new());
    assert!(!lock_file(&lab).exists(), "the lock is released");
    let plan = lab.gt(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, Some(0), "the apply went to its end: {plan}");
}

#[test]
fn a_closed_stdout_does_not_stop_an_apply() {
    survives_a_closed_stdout(Transport::Local, &[]);
}

#[test]
fn a_closed_stdout_does_not_stop_a_json_apply_over_ssh() {
    survives_a_closed_stdout(Transport::Ssh, &["--json"]);
}
