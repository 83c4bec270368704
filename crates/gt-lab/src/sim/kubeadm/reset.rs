//! `kubeadm reset`: the host's kubeadm files go, and a control plane leaves
//! etcd only when reset could read its configuration from the cluster (its
//! Node still registered, an API server answering) and etcd agrees; its Node
//! stays in the cluster (deleting it is `kubectl delete node`), as with the
//! real tool.

use super::cluster::admin_client;
use super::preflight::ignore_set;
use super::{fail, parse_flags, EXIT_ERROR, EXIT_VALIDATION};
use crate::sim::api::View;
use crate::sim::clock;
use crate::sim::etcd::{self, kubeadm::Removal};
use crate::sim::files;
use crate::sim::flags::{boolean, string, Flag};
use crate::sim::host::{self, Host};
use crate::sim::latency::Op;
use crate::sim::pki;
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
    let cfg = cluster_configuration(host);
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
    // The kubelet stops (cleanup-node) before the lab stops the etcd it
    // ran, so that nothing starts it again while its data goes.
    let stopped = state::update_hosts(&host.lab_dir, |s| {
        let hs = s.host_mut(&host.name);
        hs.kubelet_running = false;
        hs.api_ready_at = None;
    });
    if let Err(e) = stopped {
        return fail(&e.to_string(), EXIT_ERROR);
    }
    crate::sim::services::stopped_kubelet(host);
    if let Err(e) = remove_etcd_member_phase(host, cfg.as_ref()) {
        return fail(&e.to_string(), EXIT_ERROR);
    }
    println!("[reset] Stopping the kubelet service");
    println!("[reset] Unmounting mounted directories in \"/var/lib/kubelet\"");
    for d in [files::MANIFESTS, files::VAR_LIB_KUBELET, files::PKI] {
        host.clear_dir(d);
    }
    // Removing the containers stops the etcd the manifest ran.
    if etcd::real(&host.lab_dir) {
        if let Err(e) = etcd::member::stop(&host.lab_dir, &host.name) {
            return fail(&e.to_string(), EXIT_ERROR);
        }
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

/// What reset knows from the cluster: this host's advertise address, read
/// with the node's registration. `None` when kubeadm 1.32 has no
/// configuration: no admin.conf, no API server answering, or no Node of
/// this host's name (already deleted); it then warns as upstream's reset.go
/// does and goes on.
fn cluster_configuration(host: &Host) -> Option<String> {
    if !host.exists(files::ADMIN_CONF) {
        return None;
    }
    println!("[reset] Reading configuration from the \"kubeadm-config\" ConfigMap in namespace \"kube-system\"...");
    println!(
        "[reset] Use 'kubeadm init phase upload-config --config your-config.yaml' to re-upload it."
    );
    let unable = |why: String| {
        eprintln!("W1123 00:00:00.000000       1 reset.go:120] [reset] Unable to fetch the kubeadm-config ConfigMap from cluster: {why}");
        None
    };
    if let Err(e) = admin_client(
        host,
        None,
        "Get",
        "/api/v1/namespaces/kube-system/configmaps/kubeadm-config",
    ) {
        return unable(format!("failed to get config map: {e}"));
    }
    let node = host
        .read(files::KUBELET_CLIENT_PEM)
        .filter(|_| host.exists(files::KUBELET_CONF))
        .and_then(|pem| pki::common_name(&pem))
        .and_then(|cn| cn.strip_prefix("system:node:").map(str::to_string));
    let Some(node) = node else {
        return unable(format!("failed to get node registration: failed to get node name from kubelet config: open {}: no such file or directory", files::KUBELET_CONF));
    };
    let registered = match state::read(&host.lab_dir) {
        Ok(s) => s.nodes.contains_key(&node),
        Err(e) => return unable(e.to_string()),
    };
    if !registered {
        return unable(format!(
            "failed to get node registration: failed to get corresponding node: nodes \"{node}\" not found"
        ));
    }
    Some(host.node().address.clone())
}

/// Upstream's remove-etcd-member phase (removeetcdmember.go, kubeadm 1.32):
/// with a configuration, the member leaves the cluster (a warning when etcd
/// refuses); without one, only a warning; in both, a non-empty data
/// directory is emptied.
fn remove_etcd_member_phase(host: &Host, cfg: Option<&String>) -> std::io::Result<()> {
    if cfg.is_none() {
        eprintln!("W1123 00:00:00.000000       1 removeetcdmember.go:106] [reset] No kubeadm config, using etcd pod spec to get data directory");
    }
    let data_dir = match etcd_data_dir(host, cfg.is_some()) {
        Some(d) => d,
        None => {
            println!("[reset] No etcd config found. Assuming external etcd");
            println!("[reset] Please, manually reset etcd to prevent further issues");
            return Ok(());
        }
    };
    if let Some(advertise) = cfg {
        if let Removal::Failed(e) = remove_member(host, advertise)? {
            eprintln!("W1123 00:00:00.000000       1 removeetcdmember.go:71] [reset] Failed to remove etcd member: {e}, please manually remove this etcd member using etcdctl");
        }
    }
    clean_etcd_data(host, &data_dir)
}

/// The data directory: the configuration's default, or the manifest's
/// `etcd-data` hostPath; `None` when the manifest has no such volume.
fn etcd_data_dir(host: &Host, has_config: bool) -> Option<String> {
    let default = files::VAR_LIB_ETCD.to_string();
    if has_config {
        return Some(default);
    }
    let Some(text) = host.read(&files::manifest_path("etcd")) else {
        return Some(default);
    };
    etcd::manifest::parse(&text)
        .host_paths
        .into_iter()
        .find(|(name, _)| name == "etcd-data")
        .map(|(_, path)| path)
}

fn clean_etcd_data(host: &Host, data_dir: &str) -> std::io::Result<()> {
    if !host.dir_not_empty(data_dir) {
        return Ok(());
    }
    // The member must not write into what is being deleted (a real one runs
    // on, unlinked, until its container is removed).
    if etcd::real(&host.lab_dir) {
        etcd::member::stop(&host.lab_dir, &host.name)?;
    }
    host.clear_dir(data_dir);
    println!("[reset] Deleted contents of the etcd data directory: {data_dir}");
    Ok(())
}

/// The member of this host leaves etcd: through the real cluster, or in the
/// model, where etcd refuses when the members left would not have a quorum
/// started (its strict reconfiguration check).
fn remove_member(host: &Host, advertise: &str) -> std::io::Result<Removal> {
    if etcd::real(&host.lab_dir) {
        return Ok(etcd::kubeadm::remove_member(host, advertise));
    }
    state::update(&host.lab_dir, |s| {
        if !s.etcd_members.iter().any(|m| m.host == host.name) {
            return Removal::NotAMember;
        }
        let rest: Vec<_> = s
            .etcd_members
            .iter()
            .filter(|m| m.host != host.name)
            .cloned()
            .collect();
        if rest.is_empty() {
            return Removal::LastMember;
        }
        let view = View {
            lab_dir: &host.lab_dir,
            state: s,
            now: clock::now(),
        };
        let started = rest.iter().filter(|m| view.etcd_started(&m.host)).count();
        if started * 2 <= rest.len() {
            return Removal::Failed(
                "etcdserver: re-configuration failed due to not enough started members".into(),
            );
        }
        s.etcd_members = rest;
        Removal::Removed
    })
}
