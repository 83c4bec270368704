//! `gt lab fault NODE KIND`: what can go wrong on a real host, on demand.

use crate::procs;
use crate::session::node_path;
use crate::ssh;
use crate::state::{LabState, Transport};
use crate::topology::{Faults, LabTopology};
use crate::LabError;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FaultKind {
    /// Unreachable: ssh refuses connections, the lab shell exits 255.
    Down,
    /// Reachable, but commands never answer.
    Hang,
    /// The next `kubeadm join` fails.
    FailJoin,
    /// Every `kubeadm upgrade apply|node` fails until healed.
    FailUpgrade,
    /// This control plane's API server is unready.
    ApiserverDown,
    /// `systemctl stop kubelet` on the host.
    KubeletStopped,
    /// Latencies multiplied by the factor.
    Slow(f64),
    /// Clear every fault (and start a kubelet this command stopped).
    Heal,
}

impl FaultKind {
    pub fn name(&self) -> &'static str {
        match self {
            FaultKind::Down => "down",
            FaultKind::Hang => "hang",
            FaultKind::FailJoin => "fail-join",
            FaultKind::FailUpgrade => "fail-upgrade",
            FaultKind::ApiserverDown => "apiserver-down",
            FaultKind::KubeletStopped => "kubelet-stopped",
            FaultKind::Slow(_) => "slow",
            FaultKind::Heal => "heal",
        }
    }
}

pub const DEFAULT_SLOW_FACTOR: f64 = 10.0;

#[derive(Debug, Clone)]
pub struct FaultReport {
    pub node: String,
    pub kind: FaultKind,
    /// The node's faults after the change.
    pub faults: Faults,
    /// The node's faults after the change, as `gt lab fault` names them.
    pub now: Vec<String>,
    /// Commands of the host that were stopped because it went down.
    pub killed: usize,
}

/// The faults a host has, as the names `gt lab fault` takes.
pub(crate) fn describe(f: &Faults, kubelet_stopped: bool) -> Vec<String> {
    let mut v = Vec::new();
    if f.down {
        v.push("down".to_string());
    }
    if f.hang {
        v.push("hang".to_string());
    }
    if f.fail_join {
        v.push("fail-join".to_string());
    }
    if f.fail_upgrade {
        v.push("fail-upgrade".to_string());
    }
    if f.apiserver_down {
        v.push("apiserver-down".to_string());
    }
    if kubelet_stopped {
        v.push("kubelet-stopped".to_string());
    }
    if let Some(x) = f.slow {
        v.push(format!("slow x{x}"));
    }
    v
}

/// Marks a kubelet that `gt lab fault` stopped, so that `heal` starts it again
/// (and only then: a kubelet stopped by gt itself is none of heal's business).
pub(crate) fn kubelet_marker(dir: &Path, node: &str) -> PathBuf {
    dir.join("faults").join(format!("{node}.kubelet-stopped"))
}

fn systemctl(dir: &Path, node: &str, verb: &str) -> Result<(), LabError> {
    let out = Command::new(dir.join("bin").join("systemctl"))
        .args([verb, "kubelet"])
        .env("GT_HOST_ROOT", dir.join("hosts").join(node))
        .env("PATH", node_path(dir, node))
        .output()
        .map_err(|e| {
            LabError::Process(format!("cannot run the simulated systemctl on {node}: {e}"))
        })?;
    if !out.status.success() {
        return Err(LabError::Process(format!(
            "`systemctl {verb} kubelet` on {node} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

fn unknown_node(dir: &Path, topo: &LabTopology, node: &str) -> LabError {
    let best = topo
        .nodes
        .iter()
        .map(|n| (strsim::levenshtein(node, &n.name), &n.name))
        .min();
    let names: Vec<&str> = topo.nodes.iter().map(|n| n.name.as_str()).collect();
    let hint = match best {
        Some((d, n)) if d <= 2 => format!("; did you mean {n}?"),
        _ => format!("; its hosts are {}", names.join(", ")),
    };
    LabError::UnknownNode {
        node: node.to_string(),
        dir: dir.to_path_buf(),
        hint,
    }
}

pub fn fault(dir: &Path, node: &str, kind: FaultKind) -> Result<FaultReport, LabError> {
    let dir = dir
        .canonicalize()
        .map_err(|_| LabError::NoLab(dir.to_path_buf()))?;
    let state = LabState::load(&dir)?;
    let topo = LabTopology::load(&dir).map_err(|_| LabError::NoLab(dir.clone()))?;
    let Some(host) = topo.node(node) else {
        return Err(unknown_node(&dir, &topo, node));
    };
    let mut faults = Faults::load(&dir, node);
    let was_down = faults.down;
    let mut killed = 0;
    match kind {
        FaultKind::Down => faults.down = true,
        FaultKind::Hang => faults.hang = true,
        FaultKind::FailJoin => faults.fail_join = true,
        FaultKind::FailUpgrade => faults.fail_upgrade = true,
        FaultKind::ApiserverDown => {
            if host.role != "control-plane" {
                return Err(LabError::Usage(format!(
                    "{node} is a worker: apiserver-down applies to control planes, which run an API server"
                )));
            }
            faults.apiserver_down = true;
        }
        FaultKind::KubeletStopped => {
            systemctl(&dir, node, "stop")?;
            std::fs::write(kubelet_marker(&dir, node), "")
                .map_err(LabError::io("recording the stopped kubelet"))?;
        }
        FaultKind::Slow(f) => {
            if !(f.is_finite() && f > 0.0) {
                return Err(LabError::Usage(format!(
                    "slow factor {f} must be a positive number (10 = ten times slower)"
                )));
            }
            faults.slow = Some(f);
        }
        FaultKind::Heal => {
            faults = Faults::default();
            let marker = kubelet_marker(&dir, node);
            if marker.exists() {
                systemctl(&dir, node, "start")?;
                let _ = std::fs::remove_file(marker);
            }
        }
    }
    if faults == Faults::default() {
        // No file means no faults: a healed host looks like one never faulted.
        let _ = std::fs::remove_file(Faults::path(&dir, node));
    } else {
        faults.save(&dir, node).map_err(LabError::io(format!(
            "writing {}",
            Faults::path(&dir, node).display()
        )))?;
    }
    if kind == FaultKind::Down {
        // A host that goes down takes its running commands with it.
        let pids = procs::host_processes(&dir, Some(node));
        killed = pids.len();
        procs::stop(&pids, Duration::from_secs(2));
    }
    if state.transport == Transport::Ssh && was_down != faults.down {
        if let Some(s) = &state.ssh {
            ssh::reconfigure_for(&dir, &topo, s, node)?;
        }
    }
    Ok(FaultReport {
        node: node.to_string(),
        kind,
        now: describe(&faults, kubelet_marker(&dir, node).exists()),
        faults,
        killed,
    })
}

/// Takes a host off the network or puts it back, as the `down` fault does
/// (a reboot's way down and up): a host going down takes its commands with it.
pub(crate) fn set_down(dir: &Path, node: &str, down: bool) -> Result<(), LabError> {
    let state = LabState::load(dir)?;
    let topo = LabTopology::load(dir).map_err(|_| LabError::NoLab(dir.to_path_buf()))?;
    let mut faults = Faults::load(dir, node);
    if faults.down == down {
        return Ok(());
    }
    faults.down = down;
    if faults == Faults::default() {
        let _ = std::fs::remove_file(Faults::path(dir, node));
    } else {
        faults.save(dir, node).map_err(LabError::io(format!(
            "writing {}",
            Faults::path(dir, node).display()
        )))?;
    }
    if down {
        let pids = procs::host_processes(dir, Some(node));
        procs::stop(&pids, Duration::from_secs(2));
    }
    if let (Transport::Ssh, Some(s)) = (state.transport, &state.ssh) {
        ssh::reconfigure_for(dir, &topo, s, node)?;
    }
    Ok(())
}
