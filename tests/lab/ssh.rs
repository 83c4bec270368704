//! The lab's ssh transport: real sshd processes on the hosts' loopback
//! addresses, reached with plain `ssh` and the lab's keys.

use crate::support::lab::{pid_alive, recorded_pids, Lab, Transport};
use std::time::Duration;

#[test]
#[cfg_attr(
    not(any(has_sshd, ci)),
    ignore = "needs sshd: apt-get install openssh-server"
)]
fn each_address_lands_on_its_own_host() {
    let lab = Lab::up(Transport::Ssh).start();
    for node in ["bettley", "fenn", "velaryon"] {
        lab.ssh(node, "echo $GT_HOST_ROOT; command -v kubeadm")
            .success()
            .stdout_contains(&format!(
                "{}\n{}/usr/bin/kubeadm\n",
                lab.host_root(node).display(),
                lab.host_root(node).display()
            ));
    }
}

#[test]
#[cfg_attr(
    not(any(has_sshd, ci)),
    ignore = "needs sshd: apt-get install openssh-server"
)]
fn uname_reports_each_hosts_architecture() {
    let lab = Lab::up(Transport::Ssh).start();
    lab.ssh("bettley", "uname -m")
        .success()
        .stdout_contains("aarch64");
    lab.ssh("velaryon", "uname -m")
        .success()
        .stdout_contains("x86_64");
}

#[test]
#[cfg_attr(
    not(any(has_sshd, ci)),
    ignore = "needs sshd: apt-get install openssh-server"
)]
fn the_lab_config_reaches_the_hosts_with_the_labs_keys_and_strict_host_keys() {
    let lab = Lab::up(Transport::Ssh).start();
    lab.gt(&["validate"]).success();
    let config = std::fs::read_to_string(lab.config()).unwrap();
    let port = lab.ssh_port().unwrap();
    assert!(config.contains(&format!("port = {port}")), "{config}");
    assert!(config.contains("known_hosts = \"strict\""));
    assert!(config.contains(&format!(
        "identity_file = \"{}/ssh/id_ecdsa\"",
        lab.dir().display()
    )));
    let known = std::fs::read_to_string(lab.dir().join("ssh/known_hosts")).unwrap();
    assert_eq!(known.lines().count(), lab.node_names().len());
    assert!(known.contains(&format!(
        "[{}]:{port} ecdsa-sha2-nistp256 ",
        lab.address("bettley")
    )));
}

#[test]
#[cfg_attr(
    not(any(has_sshd, ci)),
    ignore = "needs sshd: apt-get install openssh-server"
)]
fn a_down_host_refuses_connections_until_healed() {
    let lab = Lab::up(Transport::Ssh).start();
    lab.fault("fenn", &["down"]);
    lab.ssh("fenn", "true")
        .status(255)
        .stderr_contains("Connection refused");
    // Its neighbours on the same sshd are unaffected.
    lab.ssh("gardener", "true").success();
    lab.fault("fenn", &["heal"]);
    lab.ssh("fenn", "echo back")
        .success()
        .stdout_contains("back");
}

#[test]
#[cfg_attr(
    not(any(has_sshd, ci)),
    ignore = "needs sshd: apt-get install openssh-server"
)]
fn a_hung_host_accepts_but_never_answers_and_down_leaves_nothing() {
    let lab = Lab::up(Transport::Ssh).start();
    lab.fault("harlton", &["hang"]);
    let r = lab.ssh_timeout("harlton", "echo never", Duration::from_secs(2));
    assert!(r.timed_out, "{r}");
    let dir = lab.dir().to_path_buf();
    let pids = recorded_pids(&dir);
    assert!(
        !lab.processes().is_empty(),
        "the hung session is still there"
    );
    lab.down().success();
    assert!(pids.iter().all(|p| !pid_alive(*p)), "{pids:?}");
    assert_eq!(
        crate::support::lab::processes_naming(&dir),
        Vec::<String>::new()
    );
    assert!(!dir.exists());
}

/// 20 hosts: more listen addresses than one sshd takes (16).
fn twenty_hosts() -> String {
    let mut t = String::from(
        r#"[cluster]
name = "twenty"
kubernetes_version = "1.32.4"
endpoint = "10.9.0.10:6443"
pod_cidr = "192.168.0.0/16"
service_cidr = "172.16.0.0/20"

[cluster.cni]
name = "calico"
manifest = "https://example.invalid/calico.yaml"

[defaults]
arch = "arm64"
"#,
    );
    for i in 1..=20 {
        let role = if i <= 3 { "control-plane" } else { "worker" };
        t.push_str(&format!(
            "\n[nodes.n{i:02}]\nrole = \"{role}\"\naddress = \"10.9.0.{}\"\n",
            10 + i
        ));
    }
    t
}

#[test]
#[cfg_attr(
    not(any(has_sshd, ci)),
    ignore = "needs sshd: apt-get install openssh-server"
)]
fn twenty_hosts_are_served_by_two_sshds_and_faults_touch_only_their_host() {
    let lab = Lab::up(Transport::Ssh)
        .topology_toml(twenty_hosts())
        .start();
    let status = lab.gt_lab("status", &[]);
    status
        .success()
        .stdout_contains("sshd-0")
        .stdout_contains("sshd-1");
    for node in lab.node_names() {
        lab.ssh(&node, "echo $GT_HOST_ROOT")
            .success()
            .stdout_contains(lab.host_root(&node).to_str().unwrap());
    }
    // n18 is served by the second sshd.
    lab.fault("n18", &["down"]);
    lab.ssh("n18", "true").status(255);
    lab.ssh("n17", "true").success();
    lab.ssh("n02", "true").success();
    lab.fault("n18", &["heal"]);
    lab.ssh("n18", "true").success();
}
