//! `gt lab status`: what the lab runs and what is wrong with its hosts.

use crate::fault::{describe, kubelet_marker};
use crate::procs;
use crate::state::{EndpointServer, LabState};
use crate::topology::{Faults, LabTopology};
use crate::LabError;
use std::path::Path;

#[derive(Debug, Clone)]
pub struct ProcessStatus {
    pub name: String,
    pub pid: i32,
    pub alive: bool,
}

#[derive(Debug, Clone)]
pub struct HostStatus {
    pub name: String,
    pub address: String,
    pub role: String,
    pub arch: String,
    /// Fault names, as `gt lab fault` takes them.
    pub faults: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct LabStatus {
    pub state: LabState,
    pub topology: LabTopology,
    pub processes: Vec<ProcessStatus>,
    pub hosts: Vec<HostStatus>,
}

impl LabStatus {
    pub fn endpoint_server(&self) -> &'static str {
        match self.state.endpoint_server {
            EndpointServer::Haproxy => "haproxy",
            EndpointServer::Daemon => "lab daemon",
            EndpointServer::ControlPlane => "a control plane",
        }
    }
}

pub fn status(dir: &Path) -> Result<LabStatus, LabError> {
    let dir = dir
        .canonicalize()
        .map_err(|_| LabError::NoLab(dir.to_path_buf()))?;
    let state = LabState::load(&dir)?;
    let topology = LabTopology::load(&dir).map_err(|_| LabError::NoLab(dir.clone()))?;
    let processes = procs::recorded(&dir)
        .into_iter()
        .map(|(name, pid)| ProcessStatus {
            alive: procs::is_lab_process(pid, &dir),
            name,
            pid,
        })
        .collect();
    let hosts = topology
        .nodes
        .iter()
        .map(|n| HostStatus {
            name: n.name.clone(),
            address: n.address.clone(),
            role: n.role.clone(),
            arch: n.arch.clone(),
            faults: describe(
                &Faults::load(&dir, &n.name),
                kubelet_marker(&dir, &n.name).exists(),
            ),
        })
        .collect();
    Ok(LabStatus {
        state,
        topology,
        processes,
        hosts,
    })
}
