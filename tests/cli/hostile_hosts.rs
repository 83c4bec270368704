//! Hosts that say hostile things. A facts file (or a host) whose node
//! names, labels and architectures carry terminal escape sequences: `gt
//! plan` and `gt drift` show them escaped, never raw; JSON output escapes
//! them as JSON does. A host that prints without end: gt reads a bounded
//! amount, stops the command and says so. And a reader of `gt exec` that
//! goes away: the commands on the hosts still run to their end.

use crate::support::gt::{fixture, Output, Test};
use serde_json::{json, Value};

const HOSTILE: &str = "\x1b[31mred\x1b]0;pwned\x07\u{9b}2J";

/// converged.json with hostile text wherever a host or the cluster speaks:
/// a Node not in the file, a label value, an architecture, a NotReady reason.
fn hostile_facts(dir: &std::path::Path) -> String {
    let text = std::fs::read_to_string(fixture("converged")).unwrap();
    let mut facts: Value = serde_json::from_str(&text).unwrap();
    let nodes = &mut facts["cluster"]["nodes"];
    let mut stranger = nodes["fenn"].clone();
    stranger["internal_ip"] = json!("10.4.9.9");
    nodes[format!("stranger{HOSTILE}")] = stranger;
    nodes["fenn"]["labels"]["goldentooth.io/storage"] = json!(format!("ceph{HOSTILE}"));
    nodes["jast"]["ready"] = json!("False");
    nodes["jast"]["ready_reason"] = json!(format!("KubeletNotReady{HOSTILE}"));
    facts["hosts"]["velaryon"]["arch"] = json!(format!("amd64{HOSTILE}"));
    let path = dir.join("hostile.json");
    std::fs::write(&path, serde_json::to_string(&facts).unwrap()).unwrap();
    path.to_string_lossy().into_owned()
}

#[track_caller]
fn no_raw_controls(run: &Output) {
    for (stream, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
        let raw: Vec<char> = text
            .chars()
            .filter(|c| c.is_control() && *c != '\n' && *c != '\t')
            .collect();
        assert!(raw.is_empty(), "raw {raw:?} on {stream}: {run}");
    }
}

#[test]
fn plan_shows_what_hosts_said_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let facts = hostile_facts(dir.path());
    let run = Test::new().args(["plan", "--facts", &facts]).run();
    run.status(0);
    no_raw_controls(&run);
    assert!(
        run.stdout
            .contains("ceph\\x1b[31mred\\x1b]0;pwned\\x07\\u{9b}2J"),
        "{run}"
    );
    assert!(run.stdout.contains("KubeletNotReady\\x1b[31mred"), "{run}");
}

#[test]
fn drift_shows_what_hosts_said_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let facts = hostile_facts(dir.path());
    let run = Test::new()
        .args(["drift", "--verbose", "--facts", &facts])
        .run();
    run.status(2);
    no_raw_controls(&run);
    assert!(run.stdout.contains("\\x1b[31mred"), "{run}");
}

#[test]
fn json_output_escapes_every_control_character() {
    let dir = tempfile::tempdir().unwrap();
    let facts = hostile_facts(dir.path());
    for args in [
        ["plan", "--json", "--facts", &facts],
        ["drift", "--json", "--facts", &facts],
    ] {
        let run = Test::new().args(args).run();
        no_raw_controls(&run);
        // And it still reads back as what the host said.
        let doc: Value = serde_json::from_str(&run.stdout).unwrap();
        assert!(doc.to_string().contains("pwned"), "{run}");
    }
}

/// A one-node cluster run as local processes, whose `uname` is `script`
/// and whose files are under `dir/root`.
pub(crate) fn local_host_whose_uname_is(dir: &std::path::Path, script: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    std::fs::create_dir(&bin).unwrap();
    let uname = bin.join("uname");
    std::fs::write(&uname, format!("#!/bin/sh\n{script}\n")).unwrap();
    std::fs::set_permissions(&uname, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = dir.join("cluster.toml");
    std::fs::write(
        &config,
        format!(
            r#"[cluster]
name = "flood"
kubernetes_version = "1.32"
endpoint = "10.53.0.10:6443"
pod_cidr = "192.168.0.0/16"
service_cidr = "172.16.0.0/20"
[cluster.cni]
name = "calico"
manifest = "https://example.invalid/calico.yaml"
[defaults]
arch = "arm64"
connection = "local"
[defaults.local]
env = {{ PATH = "{}:/usr/bin:/bin", GT_HOST_ROOT = "{}" }}
[nodes.fenn]
role = "control-plane"
address = "10.53.0.15"
"#,
            bin.display(),
            dir.join("root").display()
        ),
    )
    .unwrap();
    config
}

#[test]
fn a_host_that_prints_without_end_is_stopped_and_said_so() {
    let dir = tempfile::tempdir().unwrap();
    // The probe's `uname` floods its stderr: 200 MB, far past the 16 MiB gt
    // reads, then it hangs.
    let config =
        local_host_whose_uname_is(dir.path(), "yes flood | head -c 200000000 >&2; sleep 30");
    let (status, status_peak) = Test::new()
        .config(&config)
        .args(["status", "--timeout", "20s"])
        .run_peak_rss_kib();
    status.status(0);
    assert!(
        status.stdout.contains(
            "fenn: the output of `gt probe` exceeded 16 MiB on stderr; gt stopped the command"
        ),
        "{status}"
    );
    let (exec, exec_peak) = Test::new()
        .config(&config)
        .args([
            "exec",
            "fenn",
            "--",
            "head -c 200000000 /dev/zero; sleep 30",
        ])
        .run_peak_rss_kib();
    exec.status(1);
    assert!(
        exec.stderr
            .contains("fenn | error: the output of `head` exceeded 16 MiB on stdout"),
        "{exec}"
    );
    // Short lines, each a message of its own, are bounded by their count.
    let (lines, lines_peak) = Test::new()
        .config(&config)
        .args([
            "exec",
            "fenn",
            "--group-output",
            "--",
            "yes | head -c 200000000",
        ])
        .run_peak_rss_kib();
    lines.status(1);
    assert!(
        lines
            .stderr
            .contains("fenn | error: the output of `yes` exceeded 262144 lines on stdout"),
        "{}",
        lines.stderr
    );
    // Not the 200 MB (and copies of it) that reading it all would take.
    for (what, peak) in [
        ("status", status_peak),
        ("exec", exec_peak),
        ("exec --group-output", lines_peak),
    ] {
        assert!(peak > 0, "gt {what}: no memory figure read");
        assert!(peak < 150 * 1024, "gt {what} peaked at {peak} KiB");
    }
}

#[test]
fn unlock_shows_a_hostile_lock_file_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let config = local_host_whose_uname_is(dir.path(), "echo fenn aarch64");
    let lock = dir.path().join("root/var/lib/gt");
    std::fs::create_dir_all(&lock).unwrap();
    std::fs::write(lock.join("apply.lock"), format!("not json{HOSTILE}\n")).unwrap();
    let run = Test::new().config(&config).args(["unlock"]).run();
    run.status(1);
    no_raw_controls(&run);
    assert!(run.stdout.contains("  not json\\x1b[31mred"), "{run}");
}

#[test]
fn exec_runs_its_commands_to_their_end_when_its_stdout_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let config = local_host_whose_uname_is(dir.path(), "echo fenn aarch64");
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let marker = dir.path().join("finished");
    let child = Test::new()
        .config(&config)
        .env("TMPDIR", &tmp)
        .args([
            "exec",
            "fenn",
            "--",
            &format!(
                "echo first; sleep 0.5; echo second; echo done > {}",
                marker.display()
            ),
        ])
        .spawn();
    let (first, stderr, status) = crate::apply::signals::read_one_line_and_close(child);
    assert_eq!(first, "fenn | first\n");
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("1 host: 1 ok, 0 failed"), "{stderr}");
    assert!(marker.exists(), "the command ran to its end");
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "no control directory left"
    );
}

#[test]
fn over_ssh_a_flooding_command_is_stopped_and_the_connection_closed() {
    use crate::support::lab::{Lab, Transport};
    let lab = Lab::up(Transport::Ssh).model_etcd().speed(0.01).start();
    let tmp = tempfile::tempdir().unwrap();
    let run = lab
        .test()
        .env("TMPDIR", tmp.path())
        .args([
            "exec",
            "fenn",
            "--",
            "head -c 200000000 /dev/zero; sleep 30",
        ])
        .timeout(std::time::Duration::from_secs(25))
        .run();
    run.status(1);
    assert!(
        run.stderr
            .contains("fenn | error: the output of `head` exceeded 16 MiB on stdout"),
        "{run}"
    );
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}
