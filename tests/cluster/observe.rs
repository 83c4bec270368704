//! `gt observe`, `gt status` and `gt exec` against the lab over real sshd:
//! one connection per host, unreachable, hanging and misconfigured hosts as
//! facts with their reasons, jump hosts, output of exec.

use crate::support::wait::eventually_within;

/// How long this file waits for the lab to get somewhere.
const PATIENCE: Duration = Duration::from_secs(60);

use crate::support::gt::{Output, Test};
use crate::support::kube::{apply_cni, kubeadm_init, KUBECTL};
use crate::support::lab::{Lab, Transport};
use crate::support::sim::WORKERS;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

fn ssh_lab() -> Lab {
    Lab::up(Transport::Ssh).model_etcd().speed(0.001).start()
}

fn facts(run: &Output) -> serde_json::Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not facts JSON ({e}): {run}"))
}

fn gt_with(config: &Path, args: &[&str]) -> Output {
    Test::new().config(config).args(args).run()
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
#[cfg_attr(
    not(any(has_sshd, ci)),
    ignore = "needs sshd: apt-get install openssh-server"
)]
fn observe_probes_every_host_over_one_ssh_connection_each() {
    let lab = ssh_lab();
    let run = lab.gt(&["observe"]);
    run.success();
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
#[cfg_attr(
    not(any(has_sshd, ci)),
    ignore = "needs sshd: apt-get install openssh-server"
)]
fn observe_writes_the_facts_file_that_plan_reads() {
    let lab = ssh_lab();
    let out = lab.dir().join("facts.json");
    lab.gt(&["observe", "--out", out.to_str().unwrap()])
        .success()
        .stderr_contains("reachable, 0 unreachable");
    let text = std::fs::read_to_string(&out).unwrap();
    let observed = gt::facts::Observed::from_json(&text).expect("the facts format");
    assert_eq!(observed.hosts.len(), lab.node_names().len());
    let bad = lab.gt(&["observe", "--out", "/nonexistent-dir/facts.json"]);
    bad.status(1)
        .stderr_contains("cannot write the facts to /nonexistent-dir/facts.json");
}

#[test]
#[cfg_attr(
    not(any(has_sshd, ci)),
    ignore = "needs sshd: apt-get install openssh-server"
)]
fn a_down_host_and_a_hanging_host_are_facts_and_gt_returns() {
    let lab = ssh_lab();
    lab.fault("fenn", &["down"]);
    lab.fault("harlton", &["hang"]);
    // Long enough for a healthy host on a loaded machine, short for a test.
    let run = lab.gt(&["observe", "--timeout", "5s"]);
    run.success()
        .stderr_contains("2 unreachable (fenn, harlton)");
    let f = facts(&run);
    let fenn = f["hosts"]["fenn"]["unreachable"].as_str().unwrap();
    assert!(
        fenn.starts_with(&format!("connection refused by {}:", lab.address("fenn"))),
        "{fenn}"
    );
    assert!(fenn.contains(" after "), "{fenn}");
    let harlton = f["hosts"]["harlton"]["unreachable"].as_str().unwrap();
    assert!(
        harlton.contains("`gt probe` did not finish within 5.0 s"),
        "{harlton}"
    );
    assert!(f["hosts"]["gardener"].get("unreachable").is_none());
}

#[test]
#[cfg_attr(
    not(any(has_sshd, ci)),
    ignore = "needs sshd: apt-get install openssh-server"
)]
fn a_changed_host_key_is_refused_naming_the_known_hosts_line() {
    let lab = ssh_lab();
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
    run.success();
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
#[cfg_attr(
    not(any(has_sshd, ci)),
    ignore = "needs sshd: apt-get install openssh-server"
)]
fn a_key_the_host_does_not_accept_is_an_authentication_failure() {
    let lab = ssh_lab();
    let stranger = lab.dir().join("stranger");
    keygen(&stranger);
    let config = lab
        .variant("wrong-key.toml")
        .append(&format!(
            "\n[nodes.fenn.ssh]\nidentity_file = \"{}\"\n",
            stranger.display()
        ))
        .write();
    let run = gt_with(&config, &["exec", "fenn", "--", "true"]);
    run.status(1)
        .stderr_contains(&format!(
            "authentication failed for root@{}:",
            lab.address("fenn")
        ))
        .stderr_contains("permission denied (publickey)")
        .stderr_contains("1 host: 0 ok, 1 failed (fenn: unreachable)");
}

#[test]
#[cfg_attr(
    not(any(has_sshd, ci)),
    ignore = "needs sshd: apt-get install openssh-server"
)]
fn a_jump_host_carries_the_connection() {
    let lab = ssh_lab();
    let port = lab.ssh_port().unwrap();
    let user = crate::support::lab::whoami();
    let config = lab
        .variant("jump.toml")
        .append(&format!(
            "\n[nodes.fenn.ssh]\njump_hosts = [\"{user}@{}:{port}\"]\n",
            lab.address("bettley")
        ))
        .write();
    gt_with(&config, &["exec", "fenn", "--", "echo $GT_HOST_ROOT"])
        .success()
        .stdout_contains(&format!("fenn | {}", lab.host_root("fenn").display()));
    // fenn's session came from bettley's address (the jump host's forward), not from gt.
    let logins = logins_per_address(&lab);
    assert_eq!(logins.get(&lab.address("bettley")), Some(&1), "{logins:?}");
    assert_eq!(logins.get(&lab.address("fenn")), Some(&1), "{logins:?}");
}

#[test]
#[cfg_attr(
    not(any(has_sshd, ci)),
    ignore = "needs sshd: apt-get install openssh-server"
)]
fn exec_prefixes_lines_per_host_and_summarises_failures() {
    let lab = ssh_lab();
    let run = lab.gt(&[
        "exec",
        "k8s_control_plane",
        "--",
        "echo \"hello from $(basename $GT_HOST_ROOT)\"; case $GT_HOST_ROOT in *cargyll) exit 3;; esac",
    ]);
    run.status(1)
        .stdout_contains("bettley | hello from bettley\n")
        .stdout_contains("cargyll | hello from cargyll\n")
        .stdout_contains("dalt    | hello from dalt\n")
        .stderr_contains("3 hosts: 2 ok, 1 failed (cargyll: exit 3)");
}

#[test]
#[cfg_attr(
    not(any(has_sshd, ci)),
    ignore = "needs sshd: apt-get install openssh-server"
)]
fn exec_quotes_each_word_and_groups_output_in_file_order() {
    let lab = ssh_lab();
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
    run.success();
    let workers: Vec<String> = run
        .stdout
        .lines()
        .map(|l| l.split(" | ").next().unwrap().trim().to_string())
        .collect();
    assert_eq!(workers, WORKERS, "goldentooth's workers, in file order");
    assert!(
        run.stdout.lines().all(|l| l.ends_with(" | a b|$HOME")),
        "{run}"
    );
    run.stderr_contains("9 hosts: 9 ok, 0 failed");
}

#[test]
#[cfg_attr(
    not(any(has_sshd, ci)),
    ignore = "needs sshd: apt-get install openssh-server"
)]
fn exec_says_which_program_is_not_installed_where() {
    let lab = ssh_lab();
    lab.gt(&["exec", "fenn", "--", "PATH=/usr/bin:/bin; kubeadm version"])
        .status(1)
        .stderr_contains("kubeadm is not installed on fenn (exit 127")
        .stderr_contains("(fenn: kubeadm not installed)");
}

#[test]
#[cfg_attr(
    not(any(has_sshd, ci)),
    ignore = "needs sshd: apt-get install openssh-server"
)]
fn exec_refuses_an_unknown_target_listing_the_valid_ones() {
    let lab = ssh_lab();
    lab.gt(&["exec", "k8s_workers", "--", "true"])
        .status(1)
        .stderr_contains("no node or group named \"k8s_workers\"")
        .stderr_contains("did you mean \"k8s_worker\"?")
        .stderr_contains(
            "groups: ceph, gpu, k8s_cluster, k8s_control_plane, k8s_worker, ray, seaweedfs, zfs",
        );
}

#[test]
#[cfg_attr(
    not(any(has_sshd, ci)),
    ignore = "needs sshd: apt-get install openssh-server"
)]
fn status_shows_every_node_in_file_order_with_unreachable_ones_explained() {
    let lab = ssh_lab();
    lab.fault("jast", &["down"]);
    let run = lab.gt(&["status"]);
    run.success();
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
    run.stdout_contains(&format!(
        "Unreachable:\n  jast: connection refused by {}:",
        lab.address("jast")
    ));
    let json = lab.gt(&["status", "--json"]);
    json.success();
    let rows: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), lab.node_names().len());
    assert_eq!(rows[0]["name"], "bettley");
    assert_eq!(rows[0]["role"], "control-plane");
    assert_eq!(rows[0]["address"], lab.address("bettley"));
}

#[test]
fn observe_over_the_local_transport_reads_the_same_facts() {
    let lab = Lab::up(Transport::Local).model_etcd().speed(0.001).start();
    lab.fault("fenn", &["down"]);
    let run = lab.gt(&["observe"]);
    run.success();
    let f = facts(&run);
    assert_eq!(
        f["hosts"].as_object().unwrap().len(),
        lab.node_names().len()
    );
    let fenn = f["hosts"]["fenn"]["unreachable"].as_str().unwrap();
    assert!(fenn.contains("host fenn is down"), "{fenn}");
    assert!(f["hosts"]["gardener"].get("unreachable").is_none());
}

/// Polls `cond` (bounded): simulated kubelets become Ready on their own time.
fn status_json(lab: &Lab) -> Vec<serde_json::Value> {
    let run = lab.gt(&["status", "--json"]);
    run.success();
    serde_json::from_str::<serde_json::Value>(&run.stdout)
        .unwrap_or_else(|e| panic!("{e}: {run}"))
        .as_array()
        .unwrap()
        .clone()
}

/// Runs a join; again (bounded) when the endpoint refused the connection: the
/// lab's endpoint has been seen refusing for a moment while control planes join.
fn join_retrying(lab: &Lab, node: &str, join: &str) {
    eventually_within(&format!("{node} joins"), Duration::from_secs(5), || {
        let r = lab.ssh(node, join);
        if !r.succeeded() {
            assert!(r.stderr.contains("connection refused"), "{node}: {r}");
        }
        r.succeeded()
    });
}

/// `gt status` shows every node correctly before and after a bootstrap done
/// by hand over ssh, with the simulated kubeadm.
#[test]
#[cfg_attr(
    not(any(has_sshd, ci)),
    ignore = "needs sshd: apt-get install openssh-server"
)]
fn status_follows_a_manual_bootstrap_over_ssh() {
    let lab = ssh_lab();
    let nodes = lab.node_names();
    let before = status_json(&lab);
    assert_eq!(before.len(), nodes.len());
    for row in &before {
        let name = row["name"].as_str().unwrap();
        assert_eq!(row["joined"], false, "{row}");
        assert_eq!(row["ready"], serde_json::Value::Null, "{row}");
        assert_eq!(row["unreachable"], serde_json::Value::Null, "{row}");
        let arch = if name == "velaryon" { "amd64" } else { "arm64" };
        assert_eq!(row["arch"], arch, "{row}");
    }

    let endpoint = lab.endpoint();
    lab.ssh("bettley", &kubeadm_init(&endpoint)).success();
    eventually_within("the API server answers", PATIENCE, || {
        lab.ssh("bettley", &format!("{KUBECTL} get --raw /readyz"))
            .succeeded()
    });
    let key_out = lab.ssh("bettley", "kubeadm init phase upload-certs --upload-certs");
    key_out.success();
    let key = key_out.stdout.lines().nth(2).unwrap().trim().to_string();
    let cp_join = lab.ssh(
        "bettley",
        &format!("kubeadm token create --print-join-command --certificate-key {key}"),
    );
    cp_join.success();
    for cp in ["cargyll", "dalt"] {
        join_retrying(&lab, cp, cp_join.stdout.trim());
    }
    let join = lab.ssh(
        "bettley",
        "kubeadm token create --ttl 15m --print-join-command",
    );
    join.success();
    for w in nodes
        .iter()
        .filter(|n| !["bettley", "cargyll", "dalt"].contains(&n.as_str()))
    {
        join_retrying(&lab, w, join.stdout.trim());
    }
    lab.ssh("bettley", &apply_cni()).success();

    eventually_within("every node is Ready in gt status", PATIENCE, || {
        status_json(&lab).iter().all(|r| r["ready"] == "True")
    });
    let after = status_json(&lab);
    assert_eq!(
        after
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        nodes.iter().map(String::as_str).collect::<Vec<_>>(),
        "file order, and no node that the file lacks"
    );
    for row in &after {
        let name = row["name"].as_str().unwrap();
        assert_eq!(row["joined"], true, "{row}");
        assert_eq!(row["kubelet_version"], "v1.32.4", "{row}");
        let role = if ["bettley", "cargyll", "dalt"].contains(&name) {
            "control-plane"
        } else {
            "worker"
        };
        assert_eq!(row["role"], role, "{row}");
    }
    let table = lab.gt(&["status"]);
    table
        .success()
        .stdout_contains("API server: ready (read through bettley)");
    for name in &nodes {
        let line = table
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap();
        assert!(line.contains(" yes ") && line.contains(" Ready "), "{line}");
    }
}

#[test]
#[cfg_attr(
    not(any(has_sshd, ci)),
    ignore = "needs sshd: apt-get install openssh-server"
)]
fn exec_uname_on_the_workers_prints_each_ones_architecture() {
    let lab = ssh_lab();
    let run = lab.gt(&["exec", "k8s_worker", "--", "uname", "-m"]);
    run.success().stderr_contains("9 hosts: 9 ok, 0 failed");
    let mut lines: Vec<&str> = run.stdout.lines().collect();
    lines.sort();
    // Every worker but velaryon is an arm64 Pi.
    let expected: Vec<String> = WORKERS
        .iter()
        .map(|n| {
            let arch = if *n == "velaryon" {
                "x86_64"
            } else {
                "aarch64"
            };
            format!("{n:<9} | {arch}")
        })
        .collect();
    assert_eq!(lines, expected);
}

#[test]
fn a_host_without_kubeadm_is_a_fact_and_exec_names_the_missing_program() {
    let lab = Lab::up(Transport::Local).model_etcd().speed(0.001).start();
    // fenn's kubeadm and kubelet packages are removed: the programs are gone.
    lab.run(
        "fenn",
        "apt-get remove -y --allow-change-held-packages kubeadm kubelet",
    )
    .success();
    let config = lab.config();
    let run = gt_with(&config, &["observe"]);
    run.success();
    let f = facts(&run);
    let fenn = &f["hosts"]["fenn"];
    assert!(fenn.get("unreachable").is_none(), "{fenn}");
    assert!(fenn.get("kubeadm_version").is_none(), "{fenn}");
    assert!(fenn.get("kubelet_version").is_none(), "{fenn}");
    assert_eq!(f["hosts"]["gardener"]["kubeadm_version"], "v1.32.4");
    gt_with(&config, &["exec", "fenn", "--", "kubeadm", "version"])
        .status(1)
        .stderr_contains("kubeadm is not installed on fenn (exit 127");
}
