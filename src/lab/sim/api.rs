//! The simulated API server's HTTP answers, shared by the simulated kubectl
//! and the lab daemon's listeners.

use std::path::Path;

/// `GET /readyz` (or `/readyz?verbose`) of one control plane's API server
/// (`node = Some`) or through the endpoint (`None`): HTTP status and body,
/// exactly as KUBEADM.md gives them.
pub fn readyz(_lab_dir: &Path, _node: Option<&str>, _verbose: bool) -> (u16, String) {
    (503, "not implemented".into())
}
