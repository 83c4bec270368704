//! What init and join share: the admin client, the Kubernetes version, the
//! Node a kubelet registers, etcd members and the printed join command.

use super::{CP_LABEL, EXCLUDE_LB_LABEL};
use crate::sim::api::View;
use crate::sim::client::{self, ConnError};
use crate::sim::clock;
use crate::sim::files;
use crate::sim::host::Host;
use crate::sim::latency::Op;
use crate::sim::pki::{self, KubeconfigInfo};
use crate::sim::state::{self, EtcdMember, NodeObj, State, Taint};
use std::collections::BTreeMap;

/// The message of a failed API call from kubeadm.
fn conn_error_text(e: &ConnError, verb: &str, url_path: &str) -> String {
    match e {
        ConnError::Refused { address } => format!(
            "{verb} \"https://{address}{url_path}?timeout=10s\": dial tcp {address}: connect: connection refused"
        ),
        ConnError::UnknownAuthority { address } => format!(
            "{verb} \"https://{address}{url_path}?timeout=10s\": tls: failed to verify certificate: x509: certificate signed by unknown authority"
        ),
        ConnError::EtcdTimeout => "etcdserver: request timed out".to_string(),
    }
}

/// Loads the admin kubeconfig (`--kubeconfig`, default /etc/kubernetes/admin.conf
/// on this host) and checks that its API server is serving.
pub(super) fn admin_client(
    host: &Host,
    kubeconfig: Option<&str>,
    verb: &str,
    url_path: &str,
) -> Result<KubeconfigInfo, String> {
    let (path, shown) = match kubeconfig {
        Some(p) => (std::path::PathBuf::from(p), p.to_string()),
        None => (host.path(files::ADMIN_CONF), files::ADMIN_CONF.to_string()),
    };
    let text = std::fs::read_to_string(&path).map_err(|_| {
        format!("failed to load admin kubeconfig: open {shown}: no such file or directory")
    })?;
    let info = pki::read_kubeconfig(&text)
        .ok_or_else(|| format!("failed to load admin kubeconfig: {shown}: no server found"))?;
    let st = state::read(&host.lab_dir).map_err(|e| e.to_string())?;
    let view = View {
        lab_dir: &host.lab_dir,
        state: &st,
        now: clock::now(),
    };
    client::connect(&view, &host.topology, &info.server, info.ca_pem.as_deref())
        .map_err(|e| conn_error_text(&e, verb, url_path))?;
    Ok(info)
}
/// Resolves `--kubernetes-version` as kubeadm does without network access to
/// dl.k8s.io: `stable-1.32` and friends become the host's own patch release.
pub(super) fn resolve_version(requested: Option<&str>, own: &str) -> Result<String, String> {
    let own_minor = own
        .trim_start_matches('v')
        .split('.')
        .take(2)
        .collect::<Vec<_>>()
        .join(".");
    let r = match requested {
        None | Some("stable") | Some("latest") | Some("stable-1") | Some("latest-1") => {
            return Ok(own.to_string())
        }
        Some(r) => r,
    };
    let label = r
        .strip_prefix("stable-")
        .or_else(|| r.strip_prefix("latest-"));
    let v = match label {
        Some(minor) if minor == own_minor => own.to_string(),
        Some(minor) => format!("v{minor}.0"),
        None => format!("v{}", r.trim_start_matches('v')),
    };
    let parts: Vec<u32> = v
        .trim_start_matches('v')
        .split('.')
        .map(|p| p.parse().ok())
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| format!("unable to parse version {r:?}"))?;
    let own_parts: Vec<u32> = own_minor
        .split('.')
        .filter_map(|p| p.parse().ok())
        .collect();
    if parts.len() < 2 || own_parts.len() < 2 {
        return Err(format!("unable to parse version {r:?}"));
    }
    if parts[1] + 1 < own_parts[1] {
        return Err(format!(
            "this version of kubeadm only supports deploying clusters with the control plane version >= {}.{}.0. Current version: {v}",
            own_parts[0],
            own_parts[1] - 1
        ));
    }
    Ok(if parts.len() == 2 {
        format!("{v}.0")
    } else {
        v
    })
}

/// Registers (or re-registers) a Node as the kubelet does, with the kubelet's
/// own labels; `control_plane` adds what kubeadm's mark-control-plane sets.
#[allow(clippy::too_many_arguments)]
pub(crate) fn register_node(
    state: &mut State,
    host: &Host,
    node_name: &str,
    control_plane: bool,
    taints: Option<Vec<Taint>>,
    extra_labels: &BTreeMap<String, String>,
    cri_socket: &str,
    now: f64,
) {
    let lab = host.node();
    let cni_delay = host.latency(Op::CniReady);
    let network_ready_at = state.cni.as_ref().map(|_| now + cni_delay);
    // The kubelet registers with its own version, whichever tool started it.
    let kubelet_version = crate::sim::kubelet::installed_version(host)
        .unwrap_or_else(|| lab.kubernetes_version.clone());
    if let Some(existing) = state.nodes.get_mut(node_name) {
        // The kubelet takes over the existing object: labels and taints stay.
        existing.host = host.name.clone();
        existing.network_ready_at = network_ready_at;
        existing.kubelet_version = kubelet_version.clone();
        if control_plane {
            existing.labels.insert(CP_LABEL.into(), String::new());
            existing
                .labels
                .insert(EXCLUDE_LB_LABEL.into(), String::new());
        }
        return;
    }
    let mut labels = BTreeMap::new();
    labels.insert("beta.kubernetes.io/arch".to_string(), lab.arch.clone());
    labels.insert("beta.kubernetes.io/os".to_string(), "linux".to_string());
    labels.insert("kubernetes.io/arch".to_string(), lab.arch.clone());
    labels.insert("kubernetes.io/hostname".to_string(), node_name.to_string());
    labels.insert("kubernetes.io/os".to_string(), "linux".to_string());
    labels.extend(extra_labels.clone());
    if control_plane {
        labels.insert(CP_LABEL.into(), String::new());
        labels.insert(EXCLUDE_LB_LABEL.into(), String::new());
    }
    let taints = taints.unwrap_or_else(|| {
        if control_plane {
            vec![Taint {
                key: CP_LABEL.into(),
                value: None,
                effect: "NoSchedule".into(),
            }]
        } else {
            vec![]
        }
    });
    let mut annotations = BTreeMap::new();
    annotations.insert(
        "kubeadm.alpha.kubernetes.io/cri-socket".to_string(),
        cri_socket.to_string(),
    );
    annotations.insert("node.alpha.kubernetes.io/ttl".to_string(), "0".to_string());
    annotations.insert(
        "volumes.kubernetes.io/controller-managed-attach-detach".to_string(),
        "true".to_string(),
    );
    let pod_cidr = state.allocate_pod_cidr();
    let rv = state.resource_version + 1;
    state.nodes.insert(
        node_name.to_string(),
        NodeObj {
            name: node_name.to_string(),
            uid: state::random_uuid(),
            created: now,
            resource_version: rv,
            labels,
            annotations,
            taints,
            unschedulable: false,
            host: host.name.clone(),
            arch: lab.arch.clone(),
            internal_ip: lab.address.clone(),
            kubelet_version,
            pod_cidr,
            network_ready_at,
            kubelet_ready_at: None,
        },
    );
    for i in 0..state.pods.len() {
        if state.pods[i].node.is_empty() {
            state.pods[i].node = state.schedule("");
        }
    }
}

/// Labels a kubelet may not set on itself (NodeRestriction), from `--node-labels`.
pub(super) fn restricted_labels(labels: &BTreeMap<String, String>) -> Vec<String> {
    const ALLOWED_PREFIXES: &[&str] = &["kubelet.kubernetes.io/", "node.kubernetes.io/"];
    const ALLOWED: &[&str] = &[
        "kubernetes.io/hostname",
        "kubernetes.io/arch",
        "kubernetes.io/os",
        "beta.kubernetes.io/arch",
        "beta.kubernetes.io/os",
        "node.kubernetes.io/instance-type",
        "topology.kubernetes.io/region",
        "topology.kubernetes.io/zone",
    ];
    labels
        .keys()
        .filter(|k| {
            let prefix = k.split_once('/').map(|(p, _)| p).unwrap_or("");
            let kube = prefix == "kubernetes.io"
                || prefix.ends_with(".kubernetes.io")
                || prefix == "k8s.io"
                || prefix.ends_with(".k8s.io");
            kube && !ALLOWED.contains(&k.as_str())
                && !ALLOWED_PREFIXES.iter().any(|p| k.starts_with(p))
        })
        .cloned()
        .collect()
}

pub(super) fn etcd_member_for(host: &Host, name: &str, advertise: &str) -> EtcdMember {
    EtcdMember {
        id: state::random_hex(8),
        name: name.to_string(),
        host: host.name.clone(),
        peer_url: format!("https://{advertise}:2380"),
        client_url: format!("https://{advertise}:2379"),
    }
}

pub(super) fn initial_cluster(members: &[EtcdMember]) -> String {
    members
        .iter()
        .map(|m| format!("{}={}", m.name, m.peer_url))
        .collect::<Vec<_>>()
        .join(",")
}

pub(super) fn join_command(
    endpoint: &str,
    token: &str,
    pin: &str,
    cp: Option<Option<&str>>,
    multiline: bool,
) -> String {
    let mut s = format!(
        "kubeadm join {endpoint} --token {token} \\\n\t--discovery-token-ca-cert-hash {pin} "
    );
    match cp {
        Some(Some(key)) => s.push_str(&format!("\\\n\t--control-plane --certificate-key {key}")),
        Some(None) => s.push_str("\\\n\t--control-plane "),
        None => {}
    }
    if multiline {
        s
    } else {
        s.replace("\\\n", "").replace('\t', "")
    }
}
