//! A lab's whole life, over both transports: bring a lab up, `kubeadm init`
//! on bettley, mint a join command, join fenn with it, see fenn in
//! `kubectl get nodes`, take the lab down and find nothing left behind.

use crate::support::kube::kubeadm_init;
use crate::support::lab::{pid_alive, processes_naming, recorded_pids, Lab, Transport};

const GET_NODES: &str =
    "kubectl --kubeconfig \"$GT_HOST_ROOT/etc/kubernetes/admin.conf\" get nodes -o json";

fn init_join_and_see_the_node(transport: Transport) {
    let lab = Lab::up(transport).model_etcd().speed(0.001).start();
    lab.run("bettley", &kubeadm_init(&lab.endpoint())).success();

    let minted = lab.run("bettley", "kubeadm token create --print-join-command");
    minted.success();
    let join = minted.stdout.trim_end_matches('\n');
    assert!(
        join.starts_with(&format!("kubeadm join {} --token ", lab.endpoint())),
        "{join:?}"
    );

    lab.run("fenn", join)
        .success()
        .stdout_contains("This node has joined the cluster:");

    let nodes = lab.run("bettley", GET_NODES);
    nodes.success();
    let list: serde_json::Value = serde_json::from_str(&nodes.stdout).expect("JSON node list");
    let names: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|n| n["metadata"]["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"fenn"), "{names:?}");
    assert!(names.contains(&"bettley"), "{names:?}");

    let dir = lab.dir().to_path_buf();
    let pids = recorded_pids(&dir);
    lab.down().success();
    assert!(pids.iter().all(|p| !pid_alive(*p)), "{pids:?} survived");
    assert_eq!(processes_naming(&dir), Vec::<String>::new());
    assert!(!dir.exists(), "{} left behind", dir.display());
}

#[test]
fn init_join_and_get_nodes_over_local_processes() {
    init_join_and_see_the_node(Transport::Local);
}

#[test]
#[cfg_attr(
    not(any(has_sshd, ci)),
    ignore = "needs sshd: apt-get install openssh-server"
)]
fn init_join_and_get_nodes_over_ssh() {
    init_join_and_see_the_node(Transport::Ssh);
}
