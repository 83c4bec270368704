//! `gt observe`, `gt status` and `gt exec` against the lab over real sshd:
//! one connection per host, unreachable, hanging and misconfigured hosts as
//! facts with their reasons, jump hosts, output of exec.

#[path = "support/lab.rs"]
mod lab_support;

use lab_support::{Lab, Transport};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn ssh_lab() -> Option<Lab> {
    Lab::up(Transport::Ssh).speed(0.001).start_or_skip()
}

fn facts(run: &lab_support::Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not facts JSON ({e}): {run}"))
}

/// The lab's cluster.toml with `extra` appended, as another config file.
fn variant(lab: &Lab, name: &str, extra: &str) -> PathBuf {
    let mut text = std::fs::read_to_string(lab.config()).unwrap();
    text.push_str(extra);
    let path = lab.dir().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn gt_with(config: &Path, args: &[&str]) -> lab_support::Run {
    let mut all = vec!["--config", config.to_str().unwrap()];
    all.extend_from_slice(args);
    lab_support::gt(&all)
}

/// Successful logins per lab address, from the lab's sshd logs: sshd logs
/// `Connection from C port P on ADDR port N`, then `Accepted publickey ...
/// from C port P`; the client port ties them together.
fn logins_per_address(lab: &Lab) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for entry in std::fs::read_dir(lab.dir().join("logs")).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if !(name.starts_with("sshd") && name.ends_with(".log")) {
            continue;
        }
        let mut address_of_port: BTreeMap<String, String> = BTreeMap::new();
        for line in std::fs::read_to_string(entry.path()).unwrap().lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            if let Some(i) = words.iter().position(|w| *w == "Connection") {
                if words.get(i + 1) == Some(&"from") && words.get(i + 5) == Some(&"on") {
                    address_of_port.insert(words[i + 4].to_string(), words[i + 6].to_string());
                }
            }
            if line.contains("Accepted publickey") {
                let port = words
                    .iter()
                    .position(|w| *w == "port")
                    .map(|i| words[i + 1]);
                if let Some(addr) = port.and_then(|p| address_of_port.get(p)) {
                    *counts.entry(addr.clone()).or_insert(0) += 1;
                }
            }
        }
    }
    counts
}

#[test]
fn observe_probes_every_host_over_one_ssh_connection_each() {
    let Some(lab) = ssh_lab() else { return };
    let run = lab.gt(&["observe"]);
    run.assert_ok();
    let f = facts(&run);
    let hosts = f["hosts"].as_object().unwrap();
    assert_eq!(hosts.len(), lab.node_names().len());
    for (name, h) in hosts {
        assert!(h.get("unreachable").is_none(), "{name}: {h}");
    }
    let logins = logins_per_address(&lab);
    for node in lab.node_names() {
        assert_eq!(
            logins.get(&lab.address(&node)),
            Some(&1),
            "{node}: {logins:?}"
        );
    }
}

#[test]
fn observe_writes_the_facts_file_that_plan_reads() {
    let Some(lab) = ssh_lab() else { return };
    let out = lab.dir().join("facts.json");
    lab.gt(&["observe", "--out", out.to_str().unwrap()])
        .assert_ok()
        .assert_stderr_contains("reachable, 0 unreachable");
    let text = std::fs::read_to_string(&out).unwrap();
    let observed = gt::facts::Observed::from_json(&text).expect("the facts format");
    assert_eq!(observed.hosts.len(), lab.node_names().len());
    let bad = lab.gt(&["observe", "--out", "/nonexistent-dir/facts.json"]);
    bad.assert_code(1)
        .assert_stderr_contains("cannot write the facts to /nonexistent-dir/facts.json");
}

#[test]
fn a_down_host_and_a_hanging_host_are_facts_and_gt_returns() {
    let Some(lab) = ssh_lab() else { return };
    lab.fault("fenn", &["down"]);
    lab.fault("harlton", &["hang"]);
    let run = lab.gt(&["observe", "--timeout", "1s"]);
    run.assert_ok()
        .assert_stderr_contains("2 unreachable (fenn, harlton)");
    let f = facts(&run);
    let fenn = f["hosts"]["fenn"]["unreachable"].as_str().unwrap();
    assert!(
        fenn.starts_with("connection refused by 127.4.0.15:"),
        "{fenn}"
    );
    assert!(fenn.contains(" after "), "{fenn}");
    let harlton = f["hosts"]["harlton"]["unreachable"].as_str().unwrap();
    assert!(harlton.contains("did not finish within 1.0 s"), "{harlton}");
    assert!(f["hosts"]["gardener"].get("unreachable").is_none());
}

#[test]
fn a_changed_host_key_is_refused_naming_the_known_hosts_line() {
    let Some(lab) = ssh_lab() else { return };
    let known_hosts = lab.dir().join("ssh/known_hosts");
    let text = std::fs::read_to_string(&known_hosts).unwrap();
    let fenn_at = format!("[{}]:", lab.address("fenn"));
    let line_no = text
        .lines()
        .position(|l| l.starts_with(&fenn_at))
        .expect("fenn is known")
        + 1;
    let impostor = lab.dir().join("impostor");
    keygen(&impostor);
    let impostor_pub = std::fs::read_to_string(impostor.with_extension("pub")).unwrap();
    let rewritten: String = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i + 1 == line_no {
                let host = l.split_whitespace().next().unwrap();
                let key: Vec<&str> = impostor_pub.split_whitespace().take(2).collect();
                format!("{host} {}\n", key.join(" "))
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(&known_hosts, rewritten).unwrap();

    let run = lab.gt(&["observe"]);
    run.assert_ok();
    let f = facts(&run);
    let fenn = f["hosts"]["fenn"]["unreachable"].as_str().unwrap();
    assert!(fenn.contains("has CHANGED"), "{fenn}");
    assert!(
        fenn.contains(&format!(
            "ED25519 key in {}:{line_no}",
            known_hosts.display()
        )),
        "{fenn}"
    );
    assert!(f["hosts"]["gardener"].get("unreachable").is_none());
}

fn keygen(path: &Path) {
    let st = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn a_key_the_host_does_not_accept_is_an_authentication_failure() {
    let Some(lab) = ssh_lab() else { return };
    let stranger = lab.dir().join("stranger");
    keygen(&stranger);
    let config = variant(
        &lab,
        "wrong-key.toml",
        &format!(
            "\n[nodes.fenn.ssh]\nidentity_file = \"{}\"\n",
            stranger.display()
        ),
    );
    let run = gt_with(&config, &["exec", "fenn", "--", "true"]);
    run.assert_code(1)
        .assert_stderr_contains("authentication failed for root@127.4.0.15:")
        .assert_stderr_contains("permission denied (publickey)")
        .assert_stderr_contains("1 host: 0 ok, 1 failed (fenn: unreachable)");
}

#[test]
fn a_jump_host_carries_the_connection() {
    let Some(lab) = ssh_lab() else { return };
    let port = lab.ssh_port().unwrap();
    let user = lab_support::whoami();
    let config = variant(
        &lab,
        "jump.toml",
        &format!(
            "\n[nodes.fenn.ssh]\njump_hosts = [\"{user}@{}:{port}\"]\n",
            lab.address("bettley")
        ),
    );
    gt_with(&config, &["exec", "fenn", "--", "echo $GT_HOST_ROOT"])
        .assert_ok()
        .assert_stdout_contains(&format!("fenn | {}", lab.host_root("fenn").display()));
    // fenn's session came from bettley's address (the jump host's forward), not from gt.
    let logins = logins_per_address(&lab);
    assert_eq!(logins.get(&lab.address("bettley")), Some(&1), "{logins:?}");
    assert_eq!(logins.get(&lab.address("fenn")), Some(&1), "{logins:?}");
}

#[test]
fn exec_prefixes_lines_per_host_and_summarises_failures() {
    let Some(lab) = ssh_lab() else { return };
    let run = lab.gt(&[
        "exec",
        "k8s_control_plane",
        "--",
        "echo \"hello from $(basename $GT_HOST_ROOT)\"; case $GT_HOST_ROOT in *cargyll) exit 3;; esac",
    ]);
    run.assert_code(1)
        .assert_stdout_contains("bettley | hello from bettley\n")
        .assert_stdout_contains("cargyll | hello from cargyll\n")
        .assert_stdout_contains("dalt    | hello from dalt\n")
        .assert_stderr_contains("3 hosts: 2 ok, 1 failed (cargyll: exit 3)");
}

#[test]
fn exec_quotes_each_word_and_groups_output_in_file_order() {
    let Some(lab) = ssh_lab() else { return };
    let run = lab.gt(&[
        "exec",
        "--group-output",
        "k8s_worker",
        "--",
        "printf",
        "%s|%s\\n",
        "a b",
        "$HOME",
    ]);
    run.assert_ok();
    let workers: Vec<String> = run
        .stdout
        .lines()
        .map(|l| l.split(" | ").next().unwrap().trim().to_string())
        .collect();
    assert_eq!(
        workers,
        vec![
            "erenford",
            "fenn",
            "gardener",
            "harlton",
            "inchfield",
            "jast",
            "karstark",
            "lipps",
            "velaryon"
        ]
    );
    assert!(
        run.stdout.lines().all(|l| l.ends_with(" | a b|$HOME")),
        "{run}"
    );
    run.assert_stderr_contains("9 hosts: 9 ok, 0 failed");
}

#[test]
fn exec_says_which_program_is_not_installed_where() {
    let Some(lab) = ssh_lab() else { return };
    lab.gt(&["exec", "fenn", "--", "PATH=/usr/bin:/bin; kubeadm version"])
        .assert_code(1)
        .assert_stderr_contains("kubeadm is not installed on fenn (exit 127")
        .assert_stderr_contains("(fenn: kubeadm not installed)");
}

#[test]
fn exec_refuses_an_unknown_target_listing_the_valid_ones() {
    let Some(lab) = ssh_lab() else { return };
    lab.gt(&["exec", "k8s_workers", "--", "true"])
        .assert_code(1)
        .assert_stderr_contains("no node or group named \"k8s_workers\"")
        .assert_stderr_contains("did you mean \"k8s_worker\"?")
        .assert_stderr_contains(
            "groups: ceph, gpu, k8s_cluster, k8s_control_plane, k8s_worker, ray, seaweedfs, zfs",
        );
}

#[test]
fn status_shows_every_node_in_file_order_with_unreachable_ones_explained() {
    let Some(lab) = ssh_lab() else { return };
    lab.fault("jast", &["down"]);
    let run = lab.gt(&["status"]);
    run.assert_ok();
    let names: Vec<&str> = run
        .stdout
        .lines()
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        names,
        lab.node_names()
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );
    run.assert_stdout_contains("Unreachable:\n  jast: connection refused by 127.4.0.19:");
    let json = lab.gt(&["status", "--json"]);
    json.assert_ok();
    let rows: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), lab.node_names().len());
    assert_eq!(rows[0]["name"], "bettley");
    assert_eq!(rows[0]["role"], "control-plane");
    assert_eq!(rows[0]["address"], "127.4.0.11");
}

#[test]
fn observe_over_the_local_transport_reads_the_same_facts() {
    let Some(lab) = Lab::up(Transport::Local).speed(0.001).start_or_skip() else {
        return;
    };
    lab.fault("fenn", &["down"]);
    let run = lab.gt(&["observe"]);
    run.assert_ok();
    let f = facts(&run);
    assert_eq!(
        f["hosts"].as_object().unwrap().len(),
        lab.node_names().len()
    );
    let fenn = f["hosts"]["fenn"]["unreachable"].as_str().unwrap();
    assert!(fenn.contains("host fenn is down"), "{fenn}");
    assert!(f["hosts"]["gardener"].get("unreachable").is_none());
}
