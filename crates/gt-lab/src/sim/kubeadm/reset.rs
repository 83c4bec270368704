//! `kubeadm reset`: the host's kubeadm files go, and a control plane leaves
//! etcd when the remaining members keep quorum; its Node stays in the cluster
//! (deleting it is `kubectl delete node`), as with the real tool.

use super::preflight::ignore_set;
use super::{fail, parse_flags, EXIT_ERROR, EXIT_VALIDATION};
use crate::sim::api::View;
use crate::sim::clock;
use crate::sim::files;
use crate::sim::flags::{boolean, string, Flag};
use crate::sim::host::{self, Host};
use crate::sim::latency::Op;
use crate::sim::state;

const RESET_FLAGS: &[Flag] = &[
    boolean("force").short('f'),
    string("cri-socket"),
    string("ignore-preflight-errors"),
    string("cert-dir"),
    boolean("cleanup-tmp-dir"),
    string("kubeconfig"),
    string("skip-phases"),
    string("config"),
    boolean("dry-run"),
];

pub(super) fn reset(host: &Host, args: &[String]) -> u8 {
    let p = match parse_flags(args, RESET_FLAGS, "kubeadm reset") {
        Ok(p) => p,
        Err(code) => return code,
    };
    if let Err(e) = ignore_set(&p.list("ignore-preflight-errors"), &[]) {
        return fail(&e, EXIT_VALIDATION);
    }
    let control_plane =
        host.exists(&files::manifest_path("etcd")) || host.dir_not_empty(files::VAR_LIB_ETCD);
    if control_plane {
        println!("[reset] Reading configuration from the \"kubeadm-config\" ConfigMap in namespace \"kube-system\"...");
        println!("[reset] Use 'kubeadm init phase upload-config --config your-config.yaml' to re-upload it.");
    }
    if !p.on("force") {
        println!("[reset] WARNING: Changes made to this host by 'kubeadm init' or 'kubeadm join' will be reverted.");
        print!("[reset] Are you sure you want to proceed? [y/N]: ");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let answer = host::read_stdin_line();
        if !matches!(answer.trim().to_lowercase().as_str(), "y" | "yes") {
            return fail(
                "error execution phase preflight: won't proceed; the user didn't answer (Y|y) in order to continue",
                EXIT_ERROR,
            );
        }
    }
    println!("[preflight] Running pre-flight checks");
    host.pause(Op::Reset);
    // `etcdctl member remove` is a membership change: etcd commits it only
    // with a quorum of started members (this one included, still running).
    let member = state::update(&host.lab_dir, |s| {
        let is_member = s.etcd_members.iter().any(|m| m.host == host.name);
        let quorum = View {
            lab_dir: &host.lab_dir,
            state: s,
            now: clock::now(),
        }
        .etcd_quorum();
        if quorum {
            s.etcd_members.retain(|m| m.host != host.name);
        }
        let hs = s.host_mut(&host.name);
        hs.kubelet_running = false;
        hs.api_ready_at = None;
        (is_member, quorum)
    });
    crate::sim::services::stopped_kubelet(host);
    let (is_member, quorum) = match member {
        Ok(r) => r,
        Err(e) => return fail(&e.to_string(), EXIT_ERROR),
    };
    if control_plane {
        if is_member {
            println!("[reset] Removing info for node {:?} from the ConfigMap \"kubeadm-config\" in the \"kube-system\" Namespace", host.name);
        }
        if is_member && !quorum {
            // kubeadm warns and goes on, and keeps the etcd data of the member it could not remove.
            eprintln!("W1123 00:00:00.000000       1 removeetcdmember.go:71] [reset] Failed to remove etcd member: etcdserver: re-configuration failed due to not enough started members, please manually remove this etcd member using etcdctl");
        } else {
            host.clear_dir(files::VAR_LIB_ETCD);
            println!("[reset] Deleted contents of the etcd data directory: /var/lib/etcd");
        }
    } else {
        println!("W1123 00:00:00.000000       1 removeetcdmember.go:106] [reset] No kubeadm config, using etcd pod spec to get data directory");
    }
    println!("[reset] Stopping the kubelet service");
    println!("[reset] Unmounting mounted directories in \"/var/lib/kubelet\"");
    for d in [files::MANIFESTS, files::VAR_LIB_KUBELET, files::PKI] {
        host.clear_dir(d);
    }
    println!("[reset] Deleting contents of directories: [/etc/kubernetes/manifests /var/lib/kubelet /etc/kubernetes/pki]");
    for f in files::RESET_CONF_FILES {
        host.remove_file(f);
    }
    println!(
        "[reset] Deleting files: [{}]",
        files::RESET_CONF_FILES.join(" ")
    );
    println!();
    println!("The reset process does not clean CNI configuration. To do so, you must remove /etc/cni/net.d");
    println!();
    println!("The reset process does not reset or clean up iptables rules or IPVS tables.");
    println!(
        "If you wish to reset iptables, you must do so manually by using the \"iptables\" command."
    );
    println!();
    println!("If your cluster was setup to utilize IPVS, run ipvsadm --clear (or similar)");
    println!("to reset your system's IPVS tables.");
    println!();
    println!(
        "The reset process does not clean your kubeconfig files and you must remove them manually."
    );
    println!("Please, check the contents of the $HOME/.kube/config file.");
    0
}
