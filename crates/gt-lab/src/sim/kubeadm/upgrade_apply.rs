//! `kubeadm upgrade apply VERSION` (the first control plane: checks, the
//! version skew policy, confirmation, this node's static Pods, the cluster's
//! recorded version, kubelet configuration, addons) and `kubeadm upgrade
//! node` (every other node: a control plane's static Pods to the cluster's
//! recorded version, or a worker's kubelet configuration). Neither restarts
//! the kubelet. Output is kubeadm 1.32/1.33's; 1.34's where it differs.

use super::upgrade::{
    behind, check_supported_cluster, cluster_version, connect, health_checks, injected_failure,
    kubeadm_version, print_config_read, version_arg, CONTROL_PLANE_COMPONENTS,
};
use super::{fail, with_global, EXIT_ERROR};
use crate::sim::clock;
use crate::sim::files;
use crate::sim::flags::{self, boolean, string, Flag, Parsed};
use crate::sim::host::{self, Host};
use crate::sim::latency::Op;
use crate::sim::state::{self, State};
use crate::sim::versions::{coredns_tag, etcd_tag, format_errors, policy, Version};
use crate::sim::workloads::{self, Addons};
use std::io::Write;

const APPLY_FLAGS: &[Flag] = &[
    boolean("yes").short('y'),
    boolean("force").short('f'),
    boolean("dry-run"),
    boolean("etcd-upgrade"),
    boolean("certificate-renewal"),
    string("config"),
    string("kubeconfig"),
    string("ignore-preflight-errors"),
    string("patches"),
    string("skip-phases"),
    string("feature-gates"),
    boolean("allow-experimental-upgrades"),
    boolean("allow-release-candidate-upgrades"),
    boolean("print-config"),
];

const NODE_FLAGS: &[Flag] = &[
    boolean("dry-run"),
    boolean("etcd-upgrade"),
    boolean("certificate-renewal"),
    string("config"),
    string("kubeconfig"),
    string("ignore-preflight-errors"),
    string("patches"),
    string("skip-phases"),
];

const BACKUP_DIR: &str = "/etc/kubernetes/tmp";

fn parse(args: &[String], spec: &[Flag]) -> Result<Parsed, u8> {
    flags::parse(args, &with_global(spec)).map_err(|e| super::fail(&e, EXIT_ERROR))
}

/// A flag defaulting to true (`--etcd-upgrade`, `--certificate-renewal`).
fn on_by_default(p: &Parsed, name: &str) -> bool {
    p.get(name) != Some("false")
}

pub(super) fn apply(host: &Host, args: &[String]) -> u8 {
    let p = match parse(args, APPLY_FLAGS) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let kubeadm = kubeadm_version(host);
    let target = match version_arg(&p.positional, "apply") {
        Ok(Some(t)) => t,
        Ok(None) => return fail("missing version argument", EXIT_ERROR),
        Err(c) => return c,
    };
    let st = match read_cluster(host, p.get("kubeconfig"), files::ADMIN_CONF) {
        Ok(s) => s,
        Err(c) => return c,
    };
    println!("[upgrade/preflight] Running preflight checks");
    if let Err(code) = health_checks(host, &st, &p, "error execution phase preflight") {
        return code;
    }
    let cluster = cluster_version(&st);
    println!("[upgrade/preflight] You have chosen to upgrade the cluster version to \"{target}\"");
    println!("[upgrade/versions] Cluster version: {cluster}");
    println!("[upgrade/versions] kubeadm version: {kubeadm}");
    let kubelets: Vec<String> = st
        .nodes
        .values()
        .map(|n| n.kubelet_version.clone())
        .collect();
    let errors = policy(cluster, kubeadm, target, &kubelets);
    let force = p.on("force");
    if !errors.mandatory.is_empty() {
        return fail(&format!("error execution phase preflight: the version argument is invalid due to these fatal errors:\n\n{}\nPlease fix the misalignments highlighted above and try upgrading again", format_errors(&errors.mandatory)), EXIT_ERROR);
    }
    if !errors.skippable.is_empty() {
        if !force {
            return fail(&format!("error execution phase preflight: the version argument is invalid due to these errors:\n\n{}\nCan be bypassed if you pass the --force flag", format_errors(&errors.skippable)), EXIT_ERROR);
        }
        print!("[upgrade/version] Found {} potential version compatibility errors but skipping since the --force flag is set: \n\n{}", errors.skippable.len(), format_errors(&errors.skippable));
    }
    let dry_run = p.on("dry-run");
    if !(p.on("yes") || force || dry_run) {
        print!("[upgrade] Are you sure you want to proceed? [y/N]: ");
        let _ = std::io::stdout().flush();
        let answer = host::read_stdin_line();
        if !matches!(answer.trim().to_lowercase().as_str(), "y" | "yes") {
            return fail("error execution phase preflight: won't proceed; the user didn't answer (Y|y) in order to continue", EXIT_ERROR);
        }
    }
    if dry_run {
        println!("[upgrade/preflight] Would pull the required images (like 'kubeadm config images pull')");
        println!("[dryrun] Finished dryrunning successfully!");
        return 0;
    }
    let announce = format!("[upgrade/control-plane] Upgrading your static Pod-hosted control plane to version \"{target}\" (timeout: 5m0s)...");
    if let Err(c) = upgrade_this_control_plane(host, &p, target, &announce, Op::UpgradeApply) {
        return c;
    }
    println!("[upload-config] Storing the configuration used in ConfigMap \"kubeadm-config\" in the \"kube-system\" Namespace");
    println!("[kubelet] Creating a ConfigMap \"kubelet-config\" in namespace kube-system with the configuration for the kubelets in the cluster");
    let recorded = state::update(&host.lab_dir, |s| {
        if let Some(c) = s.cluster.as_mut() {
            c.kubernetes_version = target.to_string();
        }
    });
    if let Err(e) = recorded {
        return fail(&e.to_string(), EXIT_ERROR);
    }
    print_kubeconfig_upgraded(kubeadm);
    print_kubelet_config_upgraded();
    println!("[upgrade/bootstrap-token] Configuring bootstrap token and cluster-info RBAC rules");
    println!("[bootstrap-token] Configured RBAC rules to allow Node Bootstrap tokens to get nodes");
    println!("[bootstrap-token] Configured RBAC rules to allow Node Bootstrap tokens to post CSRs in order for nodes to get long term certificate credentials");
    println!("[bootstrap-token] Configured RBAC rules to allow the csrapprover controller automatically approve CSRs from a Node Bootstrap Token");
    println!("[bootstrap-token] Configured RBAC rules to allow certificate rotation for all node client certificates in the cluster");
    if let Err(c) = addons(host, target, kubeadm) {
        return c;
    }
    println!();
    println!(
        "[upgrade] SUCCESS! A control plane node of your cluster was upgraded to \"{target}\"."
    );
    println!();
    println!("[upgrade] Now please proceed with upgrading the rest of the nodes by following the right order.");
    0
}

pub(super) fn node(host: &Host, args: &[String]) -> u8 {
    let p = match parse(args, NODE_FLAGS) {
        Ok(p) => p,
        Err(c) => return c,
    };
    if let Some(extra) = p.positional.first() {
        return fail(
            &format!("unknown command {extra:?} for \"kubeadm upgrade node\""),
            EXIT_ERROR,
        );
    }
    let control_plane = host.exists(&files::manifest_path("kube-apiserver"));
    // A worker has no admin.conf: kubeadm falls back to the kubelet's kubeconfig.
    let default = if host.exists(files::ADMIN_CONF) {
        files::ADMIN_CONF
    } else {
        files::KUBELET_CONF
    };
    let st = match read_cluster(host, p.get("kubeconfig"), default) {
        Ok(s) => s,
        Err(c) => return c,
    };
    let kubeadm = kubeadm_version(host);
    let target = cluster_version(&st);
    println!("[upgrade/preflight] Running pre-flight checks");
    if p.on("dry-run") {
        println!("[dryrun] Finished dryrunning successfully!");
        return 0;
    }
    if control_plane {
        let announce = format!("[upgrade/control-plane] Upgrading your Static Pod-hosted control plane instance to version \"{target}\"...");
        if let Err(c) =
            upgrade_this_control_plane(host, &p, target, &announce, Op::UpgradeNodeControlPlane)
        {
            return c;
        }
        print_kubeconfig_upgraded(kubeadm);
    } else {
        println!("[upgrade/preflight] Skipping prepull. Not a control plane node.");
        println!("[upgrade/control-plane] Skipping phase. Not a control plane node.");
        println!("[upgrade/kubeconfig] Skipping phase. Not a control plane node.");
        host.pause(Op::UpgradeNodeWorker);
    }
    print_kubelet_config_upgraded();
    if control_plane {
        if let Err(c) = addons(host, target, kubeadm) {
            return c;
        }
    } else {
        println!("[upgrade/addon] Skipping the addon/coredns phase. Not a control plane node.");
        println!("[upgrade/addon] Skipping the addon/kube-proxy phase. Not a control plane node.");
    }
    println!("[upgrade] The configuration for this node was successfully upgraded!");
    println!("[upgrade] Now you should go ahead and upgrade the kubelet package using your package manager.");
    0
}

/// The control-plane phase: images, then this node's static Pods.
/// What `upgrade apply` and `upgrade node` both do first: reach the
/// cluster, read kubeadm's configuration from it, and refuse a cluster this
/// kubeadm cannot handle.
fn read_cluster(host: &Host, kubeconfig: Option<&str>, default: &str) -> Result<State, u8> {
    let st = connect(host, kubeconfig, default)?;
    injected_failure(host)?;
    print_config_read(host, "upgrade");
    check_supported_cluster(host, &st)?;
    Ok(st)
}

fn upgrade_this_control_plane(
    host: &Host,
    p: &Parsed,
    target: Version,
    announce: &str,
    op: Op,
) -> Result<(), u8> {
    print_prepull();
    println!("{announce}");
    upgrade_static_pods(host, target, on_by_default(p, "etcd-upgrade"), op)?;
    println!("[upgrade/control-plane] The control plane instance for this node was successfully upgraded!");
    Ok(())
}

fn print_prepull() {
    println!("[upgrade/preflight] Pulling images required for setting up a Kubernetes cluster");
    println!("[upgrade/preflight] This might take a minute or two, depending on the speed of your internet connection");
    println!("[upgrade/preflight] You can also perform this action beforehand using 'kubeadm config images pull'");
}

fn print_kubeconfig_upgraded(kubeadm: Version) {
    // 1.32 and 1.33 print the phase as "upgrad/kubeconfig".
    let tag = if kubeadm.minor >= 34 {
        "upgrade/kubeconfig"
    } else {
        "upgrad/kubeconfig"
    };
    println!("[{tag}] The kubeconfig files for this node were successfully upgraded!");
}

fn print_kubelet_config_upgraded() {
    println!(
        "[kubelet-start] Writing kubelet configuration to file \"/var/lib/kubelet/config.yaml\""
    );
    println!("[upgrade/kubelet-config] The kubelet configuration for this node was successfully upgraded!");
}

/// Rewrites this control plane's static Pods to `target` (etcd to its
/// minor's tag unless `--etcd-upgrade=false` or it is already newer), backing
/// up the old manifests (and etcd's data) under /etc/kubernetes/tmp. The
/// kubelet restarts each Pod; this host's API server is unready meanwhile.
fn upgrade_static_pods(host: &Host, target: Version, etcd_upgrade: bool, op: Op) -> Result<(), u8> {
    let stamp = backup_stamp(clock::now());
    let manifests_backup = format!("{BACKUP_DIR}/kubeadm-backup-manifests-{stamp}");
    let etcd_backup = format!("{BACKUP_DIR}/kubeadm-backup-etcd-{stamp}");
    let tmp = format!(
        "{BACKUP_DIR}/kubeadm-upgraded-manifests{}",
        &state::random_hex(5)[..9]
    );
    println!("[upgrade/staticpods] Writing new Static Pod manifests to \"{tmp}\"");
    let etcd_tag_now = host
        .read(&files::manifest_path("etcd"))
        .and_then(|m| workloads::image_tag(&m));
    let etcd_target = etcd_tag(target.minor);
    let upgrade_etcd = etcd_upgrade
        && etcd_tag_now
            .as_deref()
            .is_some_and(|now| crate::sim::debver::compare(now, etcd_target).is_lt());
    let mut components: Vec<(&str, String)> = Vec::new();
    if upgrade_etcd {
        components.push(("etcd", etcd_target.to_string()));
    }
    for c in CONTROL_PLANE_COMPONENTS {
        components.push((c, target.to_string()));
    }
    let restart_delay = host.latency(Op::ApiReady);
    let now = clock::now();
    let _ = state::update(&host.lab_dir, |s| {
        let h = s.host_mut(&host.name);
        if h.api_ready_at.is_some() {
            h.api_ready_at = Some(now + restart_delay);
        }
    });
    let io = |e: std::io::Error| {
        fail(&format!("error execution phase control-plane: couldn't complete the static pod upgrade: {e}"), EXIT_ERROR)
    };
    // kubeadm backs etcd's data up within the operation, and the table's
    // latency includes it: copying a real etcd's data (its preallocated
    // WAL, 100 MB and more) takes the lab a third of a second, taken out
    // of the sleep rather than added to it.
    let copying = std::time::Instant::now();
    if upgrade_etcd {
        copy_dir(host, files::VAR_LIB_ETCD, &format!("{etcd_backup}/etcd")).map_err(io)?;
    }
    host.pause_rest(op, copying.elapsed());
    for (component, tag) in &components {
        let path = files::manifest_path(component);
        let Some(old) = host.read(&path) else {
            continue;
        };
        println!("[upgrade/staticpods] Preparing for \"{component}\" upgrade");
        let backup = format!("{manifests_backup}/{component}.yaml");
        host.write(&backup, &old).map_err(io)?;
        host.write(&path, &with_image_tag(&old, tag)).map_err(io)?;
        println!("[upgrade/staticpods] Moving new manifest to \"{path}\" and backing up old manifest to \"{backup}\"");
        println!("[upgrade/staticpods] Waiting for the kubelet to restart the component");
        println!("[upgrade/staticpods] This can take up to 5m0s");
        println!("[upgrade/staticpods] Component \"{component}\" upgraded successfully!");
        if *component == "etcd" {
            println!("[upgrade/etcd] Waiting for etcd to become available");
        }
    }
    Ok(())
}

/// A manifest with its container image's tag replaced.
fn with_image_tag(manifest: &str, tag: &str) -> String {
    let mut out = String::with_capacity(manifest.len());
    let mut done = false;
    for line in manifest.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let trimmed = trimmed.strip_prefix("- ").unwrap_or(trimmed);
        if !done && trimmed.starts_with("image: ") {
            if let Some((repo, _)) = line.trim_end_matches('\n').rsplit_once(':') {
                out.push_str(&format!("{repo}:{tag}\n"));
                done = true;
                continue;
            }
        }
        out.push_str(line);
    }
    out
}

/// kubeadm's backup directory suffix, `time.Now().Format("2006-01-02-15-04-05")`.
fn backup_stamp(now: f64) -> String {
    // rfc3339 is `2026-12-01T00:10:05Z`.
    let r = clock::rfc3339(now);
    r.trim_end_matches('Z').replace(['T', ':'], "-")
}

fn copy_dir(host: &Host, from: &str, to: &str) -> std::io::Result<()> {
    fn walk(src: &std::path::Path, dst: &std::path::Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dst)?;
        for e in std::fs::read_dir(src)?.flatten() {
            let p = e.path();
            let target = dst.join(e.file_name());
            if p.is_dir() {
                walk(&p, &target)?;
            } else {
                std::fs::copy(&p, &target)?;
            }
        }
        Ok(())
    }
    let src = host.path(from);
    if !src.is_dir() {
        return Ok(());
    }
    walk(&src, &host.path(to))
}

/// kubeadm's addon phase: CoreDNS and kube-proxy move to the new version
/// once every control plane's API server is at it.
fn addons(host: &Host, target: Version, kubeadm: Version) -> Result<(), u8> {
    let st: State = state::read(&host.lab_dir).map_err(|e| fail(&e.to_string(), EXIT_ERROR))?;
    let late = behind(host, &st, target);
    if !late.is_empty() {
        println!(
            "[upgrade/addon] Skipping upgrade of addons because control plane instances [{}] have not been upgraded",
            late.join(" ")
        );
        return Ok(());
    }
    state::update(&host.lab_dir, |s| {
        s.addons = Some(Addons {
            kube_proxy: target.to_string(),
            coredns: coredns_tag(kubeadm.minor).to_string(),
        });
    })
    .map_err(|e| fail(&e.to_string(), EXIT_ERROR))?;
    println!("[addons] Applied essential addon: CoreDNS");
    println!("[addons] Applied essential addon: kube-proxy");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_image_tag_changes() {
        let m = "spec:\n  containers:\n  - command:\n    - kube-apiserver\n    image: registry.k8s.io/kube-apiserver:v1.32.4\n    name: kube-apiserver\n";
        let out = with_image_tag(m, "v1.33.3");
        assert_eq!(out, m.replace(":v1.32.4", ":v1.33.3"));
        let etcd = "    image: registry.k8s.io/etcd:3.5.16-0\n";
        assert_eq!(
            with_image_tag(etcd, "3.5.21-0"),
            "    image: registry.k8s.io/etcd:3.5.21-0\n"
        );
    }

    #[test]
    fn the_backup_stamp_is_gos_layout() {
        assert_eq!(backup_stamp(0.0), "1970-01-01-00-00-00");
    }
}
