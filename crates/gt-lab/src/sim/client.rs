//! How the simulated clients (kubeadm's API calls, kubectl) reach an API server:
//! the kubeconfig's server is routed to the endpoint or one control plane, the
//! CA is checked against the cluster's, and the API server must be serving.

use super::api::{self, View};
use super::pki;
use crate::topology::LabTopology;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConnError {
    /// Nothing listens at the address.
    Refused { address: String },
    /// The cluster's CA is not the kubeconfig's (the cluster was re-initialised).
    UnknownAuthority { address: String },
    /// An API server answers but cannot reach etcd.
    EtcdTimeout,
}

/// The CA that signed `host`'s API server certificate: its own
/// /etc/kubernetes/pki/ca.crt (what serves TLS is on the host's disk, not
/// in etcd).
pub(crate) fn serving_ca(lab_dir: &std::path::Path, host: &str) -> Option<String> {
    std::fs::read_to_string(
        lab_dir
            .join("hosts")
            .join(host)
            .join(super::files::CA_CRT.trim_start_matches('/')),
    )
    .ok()
}

/// `https://127.4.0.10:6443` → `127.4.0.10:6443`.
pub(crate) fn address_of(server_url: &str) -> String {
    let s = server_url
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    s.split('/').next().unwrap_or(s).to_string()
}

/// The control plane whose API server serves a request to `server_url`.
pub(crate) fn connect(
    view: &View,
    topology: &LabTopology,
    server_url: &str,
    ca_pem: Option<&str>,
) -> Result<String, ConnError> {
    let address = address_of(server_url);
    let target = api::route(topology, &address);
    let host = view.pick(&target).ok_or_else(|| ConnError::Refused {
        address: address.clone(),
    })?;
    let serving_ca = serving_ca(view.lab_dir, &host).ok_or_else(|| ConnError::Refused {
        address: address.clone(),
    })?;
    if let Some(ca) = ca_pem {
        if pki::pin(ca) != pki::pin(&serving_ca) {
            return Err(ConnError::UnknownAuthority { address });
        }
    }
    if !view.serving(&host) {
        return Err(ConnError::EtcdTimeout);
    }
    Ok(host)
}
