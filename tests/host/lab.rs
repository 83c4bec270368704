//! Host software end to end against the lab (bare hosts by default), over
//! both transports: bare goldentooth to converged in one apply, the Pi
//! refused without the reboot opt-in, host drift repaired, a failed install
//! isolated to its host, and an unmanaged unprepared host failing at
//! kubeadm's own preflight.

use crate::support::events::{apply_json, failure_of, node_result, recap, recap_row};
use crate::support::gt::goldentooth;
use crate::support::lab::{Lab, Transport};

/// goldentooth's cluster.toml with `extra` appended, as a lab topology.
fn goldentooth_with(extra: &str) -> String {
    std::fs::read_to_string(goldentooth()).unwrap() + extra
}

const REBOOTS: &str = "\n[defaults.host]\nallow_reboot = true\n";

/// A CNI manifest of the operator's own, in a file on their machine.
const OWN_MANIFEST: &str = "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: calico-node\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: calico-config\n";

fn bare_to_converged(transport: Transport) {
    let operator = tempfile::tempdir().unwrap();
    let manifest = operator.path().join("calico.yaml");
    std::fs::write(&manifest, OWN_MANIFEST).unwrap();
    let topology = goldentooth_with(REBOOTS).replace(
        "manifest = \"https://raw.githubusercontent.com/projectcalico/calico/v3.29.1/manifests/calico.yaml\"",
        &format!("manifest = \"{}\"", manifest.display()),
    );
    let lab = Lab::up(transport)
        .model_etcd()
        .bare()
        .topology_toml(topology)
        .start();
    let (run, events) = apply_json(&lab.config(), &[]);
    assert_eq!(run.code, Some(0), "{run}");
    // The file went to `kubectl apply -f -` on the bootstrap control plane's
    // stdin, as the plan's digest of it says.
    let cluster = &events[0]["plan"]["changes"][0];
    assert_eq!(cluster["address"], "cluster.goldentooth", "{cluster}");
    assert_eq!(
        cluster["attributes"]["manifest_sha256"],
        gt::plan::saved::sha256(OWN_MANIFEST.as_bytes()),
        "{cluster}"
    );
    let applied: Vec<u64> = lab
        .log("bettley")
        .iter()
        .filter(|e| {
            e["tool"] == "kubectl"
                && e["argv"].as_array().unwrap().ends_with(&[
                    "apply".into(),
                    "-f".into(),
                    "-".into(),
                ])
        })
        .map(|e| e["stdin_bytes"].as_u64().unwrap())
        .collect();
    assert_eq!(applied, vec![OWN_MANIFEST.len() as u64]);
    // 12 hosts, the cluster and 12 nodes.
    assert_eq!(events[0]["plan"]["summary"]["add"], 25, "{}", events[0]);
    assert_eq!(recap(&events)["joined"], 12);
    // The packages are held at one exact patch everywhere, and kubeadm
    // initialised the cluster at that patch.
    for n in ["bettley", "fenn", "velaryon"] {
        let out = lab.run(n, "dpkg-query -W -f='${Package} ${Version} ${db:Status-Abbrev}\\n' kubeadm kubelet kubectl");
        for p in ["kubeadm", "kubelet", "kubectl"] {
            assert!(
                out.stdout.contains(&format!("{p} 1.32.4-1.1 hi")),
                "{n}: {out}"
            );
        }
    }
    let plan = lab.gt(&["plan", "--detailed-exitcode"]);
    assert_eq!(
        plan.code,
        Some(0),
        "a converged cluster plans no changes: {plan}"
    );
    assert!(plan.stdout.contains("No changes."), "{plan}");
}

#[test]
fn bare_goldentooth_to_converged_in_one_apply_locally() {
    bare_to_converged(Transport::Local);
}

#[test]
fn bare_goldentooth_to_converged_in_one_apply_over_ssh() {
    bare_to_converged(Transport::Ssh);
}

#[test]
fn a_pi_is_refused_without_the_reboot_opt_in_with_the_line_to_add() {
    let lab = Lab::up(Transport::Local).model_etcd().bare().start();
    let plan = lab.gt(&["plan"]);
    assert_eq!(plan.code, Some(1), "{plan}");
    for want in [
        "refusing to prepare bettley",
        "`cgroup_enable=memory cgroup_memory=1`",
        "/boot/firmware/cmdline.txt",
        "`allow_reboot = true` under [nodes.bettley.host]",
    ] {
        assert!(plan.stderr.contains(want), "{want}: {plan}");
    }
    // Nothing was changed on the hosts.
    let out = lab.run("bettley", "cat \"$GT_HOST_ROOT/boot/firmware/cmdline.txt\"");
    assert!(!out.stdout.contains("cgroup_enable=memory"), "{out}");
}

fn drift_repaired(transport: Transport) {
    let lab = Lab::up(transport).model_etcd().converged();
    lab.run(
        "fenn",
        "systemctl enable --now dphys-swapfile && apt-mark unhold kubelet",
    )
    .success();
    let drift = lab.gt(&["drift"]);
    assert_eq!(drift.code, Some(2), "{drift}");
    assert!(drift.stdout.contains("fenn: swap on -> off"), "{drift}");
    assert!(
        drift.stdout.contains("fenn: package kubelet hold"),
        "{drift}"
    );
    lab.gt(&["apply", "--auto-approve"]).success();
    let drift = lab.gt(&["drift"]);
    assert_eq!(drift.code, Some(0), "repaired: {drift}");
    let swaps = lab.run("fenn", "cat \"$GT_HOST_ROOT/proc/swaps\"");
    assert_eq!(swaps.stdout.lines().count(), 1, "only the header: {swaps}");
}

#[test]
fn swap_on_and_a_hold_removed_behind_gts_back_are_drift_that_apply_repairs_locally() {
    drift_repaired(Transport::Local);
}

#[test]
fn swap_on_and_a_hold_removed_behind_gts_back_are_drift_that_apply_repairs_over_ssh() {
    drift_repaired(Transport::Ssh);
}

#[test]
fn a_host_whose_install_fails_stays_out_while_the_others_converge() {
    // velaryon's mirror is the 1.31 repository: it has no 1.32 packages.
    let mirror =
        "\n[nodes.velaryon.host]\nmirror = \"https://pkgs.k8s.io/core:/stable:/v1.31/deb/\"\n";
    let toml = goldentooth_with(REBOOTS) + mirror;
    let lab = Lab::up(Transport::Local)
        .model_etcd()
        .bare()
        .topology_toml(toml)
        .start();
    let (run, events) = apply_json(&lab.config(), &[]);
    assert_eq!(run.code, Some(1), "{run}");
    let (result, detail) = recap_row(&events, "velaryon");
    assert_eq!(result, "failed", "{detail}");
    let error = failure_of(&events, "prepare-host/velaryon");
    assert!(
        error.contains("kubeadm"),
        "the recap names the package: {error}"
    );
    // The command that failed, not the others sent in the same round trip.
    assert!(!error.contains("SystemdCgroup"), "{error}");
    for n in ["bettley", "dalt", "fenn", "lipps"] {
        assert_eq!(node_result(&events, n), "changed", "{n}");
    }
    // Healed (the mirror line removed): the next apply converges.
    let config = lab.config();
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace(
            "mirror = \"https://pkgs.k8s.io/core:/stable:/v1.31/deb/\"",
            "",
        ),
    )
    .unwrap();
    lab.gt(&["apply", "--auto-approve"]).success();
    let plan = lab.gt(&["plan", "--detailed-exitcode"]);
    assert_eq!(plan.code, Some(0), "{plan}");
}

#[test]
fn an_unprepared_host_gt_does_not_manage_fails_at_kubeadms_preflight() {
    let toml =
        std::fs::read_to_string(goldentooth()).unwrap() + "\n[nodes.fenn.host]\nmanage = false\n";
    let lab = Lab::up(Transport::Local)
        .model_etcd()
        .topology_toml(toml)
        .start();
    // IPv4 forwarding off, as on a fresh install: gt leaves fenn alone.
    lab.run("fenn", "sysctl -w net.ipv4.ip_forward=0").success();
    let (run, events) = apply_json(&lab.config(), &[]);
    assert_eq!(run.code, Some(1), "{run}");
    let (result, detail) = recap_row(&events, "fenn");
    assert_eq!(result, "failed", "{detail}");
    let error = failure_of(&events, "join-worker/fenn");
    assert!(
        error.contains("[ERROR FileContent--proc-sys-net-ipv4-ip_forward]: /proc/sys/net/ipv4/ip_forward contents are not set to 1"),
        "{error}"
    );
    assert!(events[0]["plan"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["address"] != "host.fenn"));
    assert_eq!(node_result(&events, "lipps"), "changed");
}
