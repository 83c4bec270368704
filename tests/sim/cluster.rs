//! Whole-cluster behaviour of the simulated tools: a full manual bootstrap of
//! goldentooth, concurrency under the state lock, faults, delays.

use crate::support::sim::{SimLab, CONTROL_PLANES, WORKERS};
use crate::support::wait::eventually;
use gt_lab::sim::host::Host;
use gt_lab::sim::latency::Op;

use crate::support::kube::KUBECTL;
use std::io::{BufRead, BufReader, Read};

fn state(lab: &SimLab) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(lab.dir().join("state.json")).unwrap()).unwrap()
}

#[test]
fn a_manual_bootstrap_ends_with_twelve_ready_nodes() {
    let started = std::time::Instant::now();
    let lab = SimLab::goldentooth();
    lab.init();
    for cp in ["cargyll", "dalt"] {
        lab.on(cp).run(&lab.control_plane_join_command()).success();
        eventually("the new API server is ready", || {
            lab.on("bettley")
                .run(&format!("{KUBECTL} get --raw /readyz"))
                .succeeded()
        });
    }
    let join = lab.join_command();
    std::thread::scope(|s| {
        for w in WORKERS {
            let (lab, join) = (&lab, &join);
            s.spawn(move || lab.on(w).run(join).success());
        }
    });
    lab.apply_cni();
    eventually("12 Ready nodes", || {
        let v = lab.nodes_json();
        let items = v["items"].as_array().unwrap().clone();
        items.len() == 12
            && items.iter().all(|n| {
                n["status"]["conditions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
    });
    eprintln!(
        "full bootstrap at speed {}: {:?}",
        crate::support::sim::SPEED,
        started.elapsed()
    );
    let v = lab.nodes_json();
    let names: Vec<&str> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["metadata"]["name"].as_str().unwrap())
        .collect();
    let mut expected: Vec<&str> = CONTROL_PLANES.iter().chain(WORKERS).copied().collect();
    expected.sort();
    assert_eq!(names, expected);
    for n in v["items"].as_array().unwrap() {
        let name = n["metadata"]["name"].as_str().unwrap();
        let is_cp = n["metadata"]["labels"]
            .get("node-role.kubernetes.io/control-plane")
            .is_some();
        assert_eq!(is_cp, CONTROL_PLANES.contains(&name), "{name}");
        let arch = n["status"]["nodeInfo"]["architecture"].as_str().unwrap();
        assert_eq!(arch, if name == "velaryon" { "amd64" } else { "arm64" });
    }
    let members: Vec<String> = state(&lab)["etcd_members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(members, vec!["bettley", "cargyll", "dalt"]);
    let table = lab
        .on("dalt")
        .run(&format!("{KUBECTL} get nodes"))
        .success();
    assert_eq!(
        table
            .stdout
            .lines()
            .filter(|l| l.contains(" Ready "))
            .count(),
        12,
        "{}",
        table.stdout
    );
}

#[test]
fn concurrent_joins_and_token_creates_never_lose_an_update() {
    let lab = SimLab::goldentooth();
    lab.init();
    let join = lab.join_command();
    let before = state(&lab)["tokens"].as_array().unwrap().len();
    std::thread::scope(|s| {
        for w in WORKERS {
            let (lab, join) = (&lab, &join);
            s.spawn(move || lab.on(w).run(join).success());
            s.spawn(move || lab.on("bettley").run("kubeadm token create").success());
        }
    });
    let st = state(&lab);
    assert_eq!(st["nodes"].as_object().unwrap().len(), 1 + WORKERS.len());
    assert_eq!(
        st["tokens"].as_array().unwrap().len(),
        before + WORKERS.len()
    );
    let cidrs: std::collections::BTreeSet<&str> = st["nodes"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n["pod_cidr"].as_str().unwrap())
        .collect();
    assert_eq!(cidrs.len(), 1 + WORKERS.len(), "each node its own pod CIDR");
    let leftovers: Vec<_> = std::fs::read_dir(lab.dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn fail_join_fails_the_next_join_once() {
    let lab = SimLab::goldentooth();
    lab.init();
    let join = lab.join_command();
    lab.set_fault("fenn", |f| f.fail_join = true);
    lab.on("fenn")
        .run(&join)
        .status(1)
        .stderr_contains("error execution phase preflight: couldn't validate the identity of the API Server: Get \"https://127.4.0.10:6443/api/v1/namespaces/kube-public/configmaps/cluster-info?timeout=10s\": net/http: request canceled while waiting for connection");
    assert!(!lab.faults("fenn").fail_join, "the fault clears itself");
    assert!(
        !lab.host_file("fenn", "/etc/kubernetes/kubelet.conf")
            .exists(),
        "nothing left to reset"
    );
    lab.on("fenn").run(&join).success();
}

#[test]
fn slow_multiplies_a_hosts_latencies() {
    let lab = SimLab::goldentooth();
    let fenn = Host::at(&lab.root("fenn")).unwrap();
    let base = fenn.latency(Op::JoinWorker);
    assert!(
        (base - 20.0 * crate::support::sim::SPEED).abs() < 1e-9,
        "{base}"
    );
    lab.set_fault("fenn", |f| f.slow = Some(10.0));
    let slowed = Host::at(&lab.root("fenn")).unwrap().latency(Op::JoinWorker);
    assert!((slowed - 10.0 * base).abs() < 1e-9, "{slowed}");
    assert_eq!(
        Host::at(&lab.root("gardener"))
            .unwrap()
            .latency(Op::JoinWorker),
        base
    );
}

#[test]
fn the_api_server_is_unready_until_its_start_up_delay_passes() {
    let lab = SimLab::goldentooth();
    lab.init();
    // Seen from a moment before the delay ends: still starting.
    lab.on("bettley")
        .env("GT_LAB_NOW_OFFSET", "-5")
        .run(&format!("{KUBECTL} get --raw '/readyz?verbose'"))
        .status(1)
        .stderr_contains("[-]informer-sync failed: reason withheld");
    lab.on("bettley")
        .run(&format!("{KUBECTL} get --raw /readyz"))
        .success();
}

#[test]
fn nodes_stay_not_ready_until_the_cni_delay_passes() {
    let lab = SimLab::goldentooth();
    lab.init();
    lab.apply_cni();
    let earlier = lab
        .on("bettley")
        .env("GT_LAB_NOW_OFFSET", "-1")
        .run(&format!("{KUBECTL} get nodes"))
        .success();
    assert!(
        earlier.stdout.contains("bettley   NotReady"),
        "{}",
        earlier.stdout
    );
    eventually("bettley Ready", || lab.ready_status("bettley") == "True");
}

#[test]
fn init_on_another_host_starts_a_new_cluster_the_old_members_do_not_belong_to() {
    let lab = SimLab::goldentooth();
    lab.init();
    let old_pin = lab
        .join_command()
        .split_whitespace()
        .nth(6)
        .unwrap()
        .to_string();
    lab.on("cargyll")
        .run("kubeadm init --control-plane-endpoint=127.4.0.10:6443 --pod-network-cidr=192.168.0.0/16")
        .success();
    eventually("cargyll's API server is ready", || {
        lab.on("cargyll")
            .run(&format!("{KUBECTL} get --raw /readyz"))
            .succeeded()
    });
    let new_pin = lab
        .on("cargyll")
        .run("kubeadm token create --print-join-command")
        .success()
        .stdout
        .split_whitespace()
        .nth(6)
        .unwrap()
        .to_string();
    assert_ne!(old_pin, new_pin);
    // bettley's admin.conf trusts the old CA.
    lab.on("bettley")
        .run(&format!("{KUBECTL} get nodes"))
        .status(1)
        .stderr_is("Unable to connect to the server: tls: failed to verify certificate: x509: certificate signed by unknown authority\n");
}

#[test]
fn a_join_that_starts_before_the_api_server_is_up_waits_for_it_as_kubeadm_retries_discovery() {
    let lab = SimLab::goldentooth();
    lab.init();
    let join = lab.join_command();
    lab.set_fault("bettley", |f| f.apiserver_down = true);
    // Discovery times out after 300 s × 0.01 = 3 s and retries every 50 ms;
    // the API server comes back once the join is under way.
    let mut joining = lab.on("fenn").env("GT_LAB_SPEED", "0.01").spawn(&join);
    let mut stdout = BufReader::new(joining.stdout.take().unwrap());
    let mut line = String::new();
    while !line.starts_with("[preflight] Running pre-flight checks") {
        line.clear();
        let n = stdout.read_line(&mut line).unwrap();
        assert!(n > 0, "the join ended before its preflight");
    }
    lab.set_fault("bettley", |f| f.apiserver_down = false);
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let mut stderr = String::new();
    joining
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = joining.wait().unwrap();
    assert!(
        status.success() && rest.contains("This node has joined the cluster:"),
        "{rest}\n{stderr}"
    );
}
