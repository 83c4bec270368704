//! `kubeadm upgrade plan|apply|node`: what they share. The kubeadm that runs
//! is the host's installed kubeadm package (its version decides what it can
//! upgrade to and how its messages read: 1.34 fixed 1.32's `[upgrad/kubeconfig]`
//! typo, names `upload-config kubeadm` and prefixes errors with `error: `).
//! The cluster's version is kubeadm-config's `kubernetesVersion`; each
//! control plane's is the image tags of its static Pod manifests.

use super::cluster::admin_client;
use super::preflight::{ignore_set, report_failure, run_checks, Check};
use super::{fail, EXIT_ERROR, EXIT_VALIDATION};
use crate::sim::clock;
use crate::sim::files;
use crate::sim::flags::Parsed;
use crate::sim::host::Host;
use crate::sim::latency::Op;
use crate::sim::state::{self, NodeObj, State};
use crate::sim::versions::Version;
use crate::sim::workloads;
use std::collections::{BTreeMap, BTreeSet};

/// The static Pods kubeadm upgrades besides etcd (`constants.ControlPlaneComponents`).
pub(super) const CONTROL_PLANE_COMPONENTS: &[&str] = &[
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
];

pub(super) fn upgrade(host: &Host, args: &[String]) -> u8 {
    let Some(pos) = args.iter().position(|a| !a.starts_with('-')) else {
        println!("Upgrade your cluster smoothly to a newer version with this command\n\nUsage:\n  kubeadm upgrade [flags]\n  kubeadm upgrade [command]\n\nAvailable Commands:\n  apply       Upgrade your Kubernetes cluster to the specified version\n  diff        Show what differences would be applied to existing static pod manifests. See also: kubeadm upgrade apply --dry-run\n  node        Upgrade commands for a node in the cluster\n  plan        Check which versions are available to upgrade to and validate whether your current cluster is upgradeable.");
        return 0;
    };
    let mut rest = args[..pos].to_vec();
    rest.extend_from_slice(&args[pos + 1..]);
    match args[pos].as_str() {
        "plan" => super::upgrade_plan::plan(host, &rest),
        "apply" => super::upgrade_apply::apply(host, &rest),
        "node" => super::upgrade_apply::node(host, &rest),
        other => fail(
            &format!("unknown command \"{other}\" for \"kubeadm upgrade\""),
            EXIT_ERROR,
        ),
    }
}

/// The kubeadm running: the installed package's version.
pub(super) fn kubeadm_version(host: &Host) -> Version {
    Version::parse(&host.node().kubernetes_version).unwrap_or(Version {
        major: 1,
        minor: 32,
        patch: 0,
    })
}

/// The `[version]` argument of `kubeadm upgrade plan|apply`.
pub(super) fn version_arg(positional: &[String], command: &str) -> Result<Option<Version>, u8> {
    match positional {
        [] => Ok(None),
        [v] => Version::parse(v).map(Some).ok_or_else(|| {
            fail(
                &format!(
                    "couldn't parse Kubernetes version {v:?}: could not parse {v:?} as version"
                ),
                EXIT_ERROR,
            )
        }),
        [_, extra, ..] => Err(fail(
            &format!("unknown command {extra:?} for \"kubeadm upgrade {command}\""),
            EXIT_ERROR,
        )),
    }
}

/// The two lines kubeadm prints when it reads its configuration from the cluster.
pub(super) fn print_config_read(host: &Host, prefix: &str) {
    println!("[{prefix}] Reading configuration from the \"kubeadm-config\" ConfigMap in namespace \"kube-system\"...");
    let phase = if kubeadm_version(host).minor >= 34 {
        "upload-config kubeadm"
    } else {
        "upload-config"
    };
    println!(
        "[{prefix}] Use 'kubeadm init phase {phase} --config your-config-file' to re-upload it."
    );
}

/// Connects with `--kubeconfig` (else the host's `default`, a host path) and
/// reads the cluster; prints kubeadm's error otherwise.
pub(super) fn connect(host: &Host, flag: Option<&str>, default: &str) -> Result<State, u8> {
    let (real, shown) = match flag {
        Some(p) => (p.to_string(), p.to_string()),
        None => (
            host.path(default).to_string_lossy().into_owned(),
            default.to_string(),
        ),
    };
    if let Err(e) = admin_client(
        host,
        Some(&real),
        "Get",
        "/api/v1/namespaces/kube-system/configmaps/kubeadm-config",
    ) {
        let msg = if e.starts_with("failed to load admin kubeconfig") {
            format!(
                "couldn't create a Kubernetes client from file \"{shown}\": {}",
                e.replace(&real, &shown)
            )
        } else {
            format!("unable to fetch the kubeadm-config ConfigMap: failed to get config map: {e}")
        };
        return Err(fail(&msg, EXIT_ERROR));
    }
    let st = state::read(&host.lab_dir).map_err(|e| fail(&e.to_string(), EXIT_ERROR))?;
    if st.cluster.is_none() {
        return Err(fail(
            "unable to fetch the kubeadm-config ConfigMap: configmaps \"kubeadm-config\" not found",
            EXIT_ERROR,
        ));
    }
    Ok(st)
}

/// The cluster's recorded version (kubeadm-config's `kubernetesVersion`).
pub(super) fn cluster_version(st: &State) -> Version {
    st.cluster
        .as_ref()
        .and_then(|c| Version::parse(&c.kubernetes_version))
        .unwrap_or(Version {
            major: 1,
            minor: 32,
            patch: 0,
        })
}

/// kubeadm refuses a cluster older than one minor below itself when it loads
/// the cluster's configuration (`NormalizeKubernetesVersion`).
pub(super) fn check_supported_cluster(host: &Host, st: &State) -> Result<(), u8> {
    let kubeadm = kubeadm_version(host);
    let minimum = Version {
        major: kubeadm.major,
        minor: kubeadm.minor.saturating_sub(1),
        patch: 0,
    };
    let cluster = cluster_version(st);
    if cluster < minimum {
        return Err(fail(&format!(
                "this version of kubeadm only supports deploying clusters with the control plane version >= {}. Current version: {cluster}",
                minimum.bare()
            ),
            EXIT_ERROR,
        ));
    }
    Ok(())
}

/// A `fail-upgrade` fault: the call for the cluster's configuration times out.
pub(super) fn injected_failure(host: &Host) -> Result<(), u8> {
    if !host.faults.fail_upgrade {
        return Ok(());
    }
    host.pause(Op::UpgradeHealthTimeout);
    Err(fail(&format!(
            "unable to fetch the kubeadm-config ConfigMap: failed to get config map: Get \"https://{}/api/v1/namespaces/kube-system/configmaps/kubeadm-config?timeout=10s\": net/http: request canceled while waiting for connection (Client.Timeout exceeded while awaiting headers)",
            host.topology.endpoint
        ),
        EXIT_ERROR,
    ))
}

/// Registered control-plane Nodes, by name.
pub(super) fn control_plane_nodes(st: &State) -> Vec<&NodeObj> {
    st.nodes
        .values()
        .filter(|n| n.labels.contains_key(super::CP_LABEL))
        .collect()
}

/// `tag → nodes` of a control-plane component's mirror Pods, as kubeadm's
/// version getter reads them (`component=NAME,tier=control-plane`).
pub(super) fn component_versions(
    host: &Host,
    st: &State,
    component: &str,
) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for n in control_plane_nodes(st) {
        if !st.kubelet_running(&n.host) {
            continue;
        }
        if let Some(tag) = workloads::static_pod_tag(&host.lab_dir, &n.host, component) {
            m.entry(tag).or_default().push(n.name.clone());
        }
    }
    m
}

/// The health checks `kubeadm upgrade plan|apply` run first
/// (`phases/upgrade/health.go`): the `upgrade-health-check` Job completes,
/// every control-plane Node is Ready, this host has its static Pod manifests.
/// A failure is reported under `context`, what wraps it: plan's
/// `[upgrade/health] FATAL` (`cmd/upgrade/common.go`), apply's phase.
pub(super) fn health_checks(host: &Host, st: &State, p: &Parsed, context: &str) -> Result<(), u8> {
    println!("[upgrade] Running cluster health checks");
    let ignore: BTreeSet<String> = ignore_set(&p.list("ignore-preflight-errors"), &[])
        .map_err(|e| fail(&e, EXIT_VALIDATION))?;
    let now = clock::now();
    let ready = |n: &NodeObj| st.readiness(n, now).status == "True";
    // The Job's Pod tolerates the control-plane taint and needs a pod network.
    let job_runs = st.nodes.values().any(|n| !n.unschedulable && ready(n));
    let mut checks = Vec::new();
    if job_runs {
        host.pause(Op::UpgradeHealthCheck);
    } else {
        host.pause(Op::UpgradeHealthTimeout);
        // Since 1.30 the Job has a generated name.
        checks.push(Some(Check::error(
            "CreateJob",
            &format!("Job \"upgrade-health-check-{}\" in the namespace \"kube-system\" did not complete in 15s: no condition of type Complete", state::random_pod_suffix()),
        )));
    }
    let not_ready: Vec<&str> = control_plane_nodes(st)
        .into_iter()
        .filter(|n| !ready(n))
        .map(|n| n.name.as_str())
        .collect();
    if !not_ready.is_empty() {
        checks.push(Some(Check::error(
            "ControlPlaneNodesReady",
            &format!(
                "there are NotReady control-planes in the cluster: [{}]",
                not_ready.join(" ")
            ),
        )));
    }
    let missing: Vec<String> = CONTROL_PLANE_COMPONENTS
        .iter()
        .map(|c| files::manifest_path(c))
        .filter(|m| !host.exists(m))
        .collect();
    if !missing.is_empty() {
        checks.push(Some(Check::error(
            "StaticPodManifest",
            &format!("The control plane seems to be Static Pod-hosted, but some of the manifests don't seem to exist on disk. This probably means you're running 'kubeadm upgrade' on a remote machine, which is not supported for a Static Pod-hosted cluster. Manifest files not found: [{}]", missing.join(" ")),
        )));
    }
    run_checks(checks, &ignore).map_err(|report| report_failure(context, &report))
}

/// The control planes whose API server is not yet at `target` (kubeadm's
/// addon phase waits for the last of them).
pub(super) fn behind(host: &Host, st: &State, target: Version) -> Vec<String> {
    control_plane_nodes(st)
        .into_iter()
        .filter(|n| {
            workloads::static_pod_tag(&host.lab_dir, &n.host, "kube-apiserver")
                .and_then(|t| Version::parse(&t))
                != Some(target)
        })
        .map(|n| n.name.clone())
        .collect()
}
