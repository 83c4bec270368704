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
    let cluster = view
        .state
        .cluster
        .as_ref()
        .ok_or_else(|| ConnError::Refused {
            address: address.clone(),
        })?;
    if let Some(ca) = ca_pem {
        if pki::pin(ca) != pki::pin(&cluster.ca_cert_pem) {
            return Err(ConnError::UnknownAuthority { address });
        }
    }
    if !view.serving(&host) {
        return Err(ConnError::EtcdTimeout);
    }
    Ok(host)
}
