//! The files that tie the lab together: `DIR/lab.json` (the topology, written
//! by `gt lab up`, read by every simulated tool) and `DIR/faults/NODE.json`
//! (written by `gt lab fault`, read by the simulated tools and the lab shell).
//!
//! A simulated host's commands run with `GT_HOST_ROOT=DIR/hosts/NODE`; the
//! tools derive the lab directory (two levels up) and the node name from it.

use serde::{Deserialize, Serialize};
use std::io;
use std::path::{Path, PathBuf};

pub const LAB_FILE: &str = "lab.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabTopology {
    pub cluster_name: String,
    /// The control-plane endpoint on loopback, `127.4.0.10:6443`.
    pub endpoint: String,
    /// `ssh` or `local`.
    pub transport: String,
    /// Multiplies every simulated latency (1.0 = realistic defaults; tests use ~0.01).
    pub speed: f64,
    /// Simulated API servers and the endpoint answer real HTTP (lab daemon, HAProxy when installed).
    #[serde(default)]
    pub api_listeners: bool,
    pub nodes: Vec<LabNode>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabNode {
    pub name: String,
    /// Loopback address, `127.4.0.11`.
    pub address: String,
    /// `control-plane` or `worker`.
    pub role: String,
    /// Kubernetes arch name, `arm64`.
    pub arch: String,
    /// What the simulated kubelet and kubeadm report, `v1.32.4`.
    pub kubernetes_version: String,
}

impl LabTopology {
    pub fn path(lab_dir: &Path) -> PathBuf {
        lab_dir.join(LAB_FILE)
    }
    pub fn load(lab_dir: &Path) -> io::Result<LabTopology> {
        let s = std::fs::read_to_string(Self::path(lab_dir))?;
        serde_json::from_str(&s).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
    pub fn save(&self, lab_dir: &Path) -> io::Result<()> {
        write_atomic(
            &Self::path(lab_dir),
            &serde_json::to_string_pretty(self).expect("serialise"),
        )
    }
    pub(crate) fn node(&self, name: &str) -> Option<&LabNode> {
        self.nodes.iter().find(|n| n.name == name)
    }
}

/// Faults injected on one simulated host (`gt lab fault NODE KIND`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Faults {
    /// Connections refused (ssh) / the lab shell fails to start (local).
    #[serde(default)]
    pub down: bool,
    /// Connections accepted, commands never answer.
    #[serde(default)]
    pub hang: bool,
    /// The next `kubeadm join` on this host fails with a real kubeadm error (then clears).
    #[serde(default)]
    pub fail_join: bool,
    /// Every `kubeadm upgrade apply|node` on this host fails (until `heal`).
    #[serde(default)]
    pub fail_upgrade: bool,
    /// This control plane's API server is unready (`[-]etcd failed`).
    #[serde(default)]
    pub apiserver_down: bool,
    /// Multiplies this host's latencies (`slow`: 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow: Option<f64>,
}

impl Faults {
    pub fn path(lab_dir: &Path, node: &str) -> PathBuf {
        lab_dir.join("faults").join(format!("{node}.json"))
    }
    /// No file means no faults.
    pub fn load(lab_dir: &Path, node: &str) -> Faults {
        std::fs::read_to_string(Self::path(lab_dir, node))
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default()
    }
    pub fn save(&self, lab_dir: &Path, node: &str) -> io::Result<()> {
        let p = Self::path(lab_dir, node);
        std::fs::create_dir_all(p.parent().expect("has parent"))?;
        write_atomic(&p, &serde_json::to_string_pretty(self).expect("serialise"))
    }
}

/// The lab directory and node name of a simulated host, from `GT_HOST_ROOT=DIR/hosts/NODE`.
pub(crate) fn host_from_root(root: &Path) -> Option<(PathBuf, String)> {
    let node = root.file_name()?.to_str()?.to_string();
    let hosts = root.parent()?;
    if hosts.file_name()? != "hosts" {
        return None;
    }
    Some((hosts.parent()?.to_path_buf(), node))
}

/// Write to a temporary file beside `path`, then rename: readers never see half a file.
pub(crate) fn write_atomic(path: &Path, contents: &str) -> io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, contents)?;
    std::fs::rename(&tmp, path)
}
