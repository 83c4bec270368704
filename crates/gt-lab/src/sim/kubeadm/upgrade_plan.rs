//! `kubeadm upgrade plan [VERSION]` as kubeadm 1.32 computes and prints it
//! (`cmd/upgrade/plan.go`, `phases/upgrade/compute.go`). With a version the
//! version getter is offline and answers that version for every release
//! label; without one the lab, like a host without internet, falls back to
//! kubeadm's own version. Plan runs the health checks but not the version
//! skew policy: a target apply would refuse still gets a table and exit 0.

use super::upgrade::{
    check_supported_cluster, component_versions, connect, health_checks, kubeadm_version,
    print_config_read, version_arg, CONTROL_PLANE_COMPONENTS,
};
use super::{fail, with_global, EXIT_ERROR};
use crate::sim::files;
use crate::sim::flags::{self, boolean, string, Flag};
use crate::sim::host::Host;
use crate::sim::state::State;
use crate::sim::table::tabwrite;
use crate::sim::versions::{coredns_tag, etcd_tag, Version};
use crate::sim::workloads;
use std::collections::BTreeMap;

const PLAN_FLAGS: &[Flag] = &[
    string("config"),
    string("kubeconfig"),
    string("ignore-preflight-errors"),
    string("feature-gates"),
    boolean("allow-experimental-upgrades"),
    boolean("allow-release-candidate-upgrades"),
    boolean("print-config"),
    string("output").short('o'),
    boolean("show-managed-fields"),
];

const SEPARATOR: &str = "_____________________________________________________________________";

pub(super) fn plan(host: &Host, args: &[String]) -> u8 {
    let p = match flags::parse(args, &with_global(PLAN_FLAGS)) {
        Ok(p) => p,
        Err(e) => return super::fail(&e, EXIT_ERROR),
    };
    if let Some(o) = p.get("output").filter(|o| *o != "text") {
        return fail(&format!("could not construct output printer: unable to match a printer suitable for the output format {o:?}, allowed formats are: text"), EXIT_ERROR);
    }
    let kubeadm = kubeadm_version(host);
    let requested = match version_arg(&p.positional, "plan") {
        Ok(v) => v,
        Err(c) => return c,
    };
    println!("[preflight] Running pre-flight checks.");
    let st = match connect(host, p.get("kubeconfig"), files::ADMIN_CONF) {
        Ok(s) => s,
        Err(c) => return c,
    };
    print_config_read(host, "upgrade/config");
    if let Err(c) = check_supported_cluster(host, &st) {
        return c;
    }
    if let Err(code) = health_checks(host, &st, &p, "[upgrade/health] FATAL") {
        return code;
    }
    println!("[upgrade] Fetching available versions to upgrade to");
    let api_servers = component_versions(host, &st, "kube-apiserver");
    let Some(cluster) = api_servers.keys().filter_map(|v| Version::parse(v)).max() else {
        return fail(
            "[upgrade/versions] FATAL: couldn't find any kube-apiserver Pod in the cluster",
            EXIT_ERROR,
        );
    };
    println!("[upgrade/versions] Cluster version: {}", cluster.bare());
    println!("[upgrade/versions] kubeadm version: {kubeadm}");
    let target = requested.unwrap_or_else(|| {
        offline_fallback(kubeadm, "stable");
        kubeadm
    });
    println!("[upgrade/versions] Target version: {target}");
    let mut upgrade = None;
    if target >= cluster {
        let branch = format!("{}.{}", cluster.major, cluster.minor);
        if requested.is_none() {
            offline_fallback(kubeadm, &format!("stable-{branch}"));
        }
        let description = format!("version in the v{branch} series");
        println!("[upgrade/versions] Latest {description}: {target}");
        if cluster < target {
            let kubeadm_after = if kubeadm >= target { kubeadm } else { target };
            upgrade = Some((description, kubeadm_after));
        }
    }
    println!();
    let Some((description, kubeadm_after)) = upgrade else {
        return 0;
    };
    print!(
        "{}",
        table(
            host,
            &st,
            cluster,
            target,
            kubeadm,
            kubeadm_after,
            &description
        )
    );
    print!("{}", component_configs());
    0
}

/// What a host without internet prints when kubeadm looks a release label up.
pub(super) fn offline_fallback(kubeadm: Version, label: &str) {
    let url = format!("https://dl.k8s.io/release/{label}.txt");
    eprintln!("W1201 00:00:00.000000    4242 version.go:104] could not fetch a Kubernetes version from the internet: unable to get URL \"{url}\": Get \"{url}\": dial tcp: lookup dl.k8s.io on 127.0.0.53:53: server misbehaving");
    eprintln!("W1201 00:00:00.000000    4242 version.go:105] falling back to the local client version: {kubeadm}");
}

fn row(cells: [&str; 4]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

/// The two tables of one available upgrade, and the command that applies it.
fn table(
    host: &Host,
    st: &State,
    cluster: Version,
    target: Version,
    kubeadm: Version,
    kubeadm_after: Version,
    description: &str,
) -> String {
    let target_s = target.to_string();
    let header = row(["COMPONENT", "NODE", "CURRENT", "TARGET"]);
    let mut kubelets: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for n in st.nodes.values() {
        kubelets
            .entry(n.kubelet_version.clone())
            .or_default()
            .push(n.name.clone());
    }
    let can_upgrade_kubelets =
        kubelets.len() > 1 || (kubelets.len() == 1 && !kubelets.contains_key(&target_s));
    let mut first = vec![header.clone()];
    if can_upgrade_kubelets {
        for (version, nodes) in &kubelets {
            for n in nodes {
                first.push(row(["kubelet", n, version, &target_s]));
            }
        }
    }
    let mut second = vec![header];
    for component in CONTROL_PLANE_COMPONENTS {
        for (version, nodes) in component_versions(host, st, component) {
            for n in nodes {
                second.push(row([component, &n, &version, &target_s]));
            }
        }
    }
    second.push(row(["kube-proxy", "", &cluster.bare(), &target_s]));
    let addons = workloads::addons(st);
    second.push(row([
        "CoreDNS",
        "",
        &addons.coredns,
        coredns_tag(kubeadm.minor),
    ]));
    for (version, nodes) in component_versions(host, st, "etcd") {
        for n in nodes {
            second.push(row(["etcd", &n, &version, etcd_tag(target.minor)]));
        }
    }
    let mut out = String::from("Components that must be upgraded manually after you have upgraded the control plane with 'kubeadm upgrade apply':\n");
    out.push_str(&tabwrite(&first, 10, 3));
    out.push_str(&format!("\nUpgrade to the latest {description}:\n\n"));
    out.push_str(&tabwrite(&second, 10, 3));
    out.push_str("\nYou can now apply the upgrade by executing the following command:\n\n");
    out.push_str(&format!("\tkubeadm upgrade apply {target}\n\n"));
    if kubeadm_after != kubeadm {
        out.push_str(&format!(
            "Note: Before you can perform this upgrade, you have to update kubeadm to {kubeadm_after}.\n\n"
        ));
    }
    out.push_str(&format!("{SEPARATOR}\n\n"));
    out
}

/// The component-config table (kube-proxy's and the kubelet's config API versions).
fn component_configs() -> String {
    let rows = vec![
        vec![
            "API GROUP".to_string(),
            "CURRENT VERSION".into(),
            "PREFERRED VERSION".into(),
            "MANUAL UPGRADE REQUIRED".into(),
        ],
        vec![
            "kubeproxy.config.k8s.io".to_string(),
            "v1alpha1".into(),
            "v1alpha1".into(),
            "no".into(),
        ],
        vec![
            "kubelet.config.k8s.io".to_string(),
            "v1beta1".into(),
            "v1beta1".into(),
            "no".into(),
        ],
    ];
    format!(
        "\nThe table below shows the current state of component configs as understood by this version of kubeadm.\n\
         Configs that have a \"yes\" mark in the \"MANUAL UPGRADE REQUIRED\" column require manual config upgrade or\n\
         resetting to kubeadm defaults before a successful upgrade can be performed. The version to manually\n\
         upgrade to is denoted in the \"PREFERRED VERSION\" column.\n\n{}{SEPARATOR}\n\n",
        tabwrite(&rows, 10, 3)
    )
}
