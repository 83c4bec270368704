//! `DIR/lab-state.json`: how the lab was started, for `status`, `fault` and
//! `down` (the simulated tools read only lab.json).

use crate::topology::write_atomic;
use crate::LabError;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub(crate) const STATE_FILE: &str = "lab-state.json";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Local,
    Ssh,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Local => "local",
            Transport::Ssh => "ssh",
        }
    }
}

impl std::str::FromStr for Transport {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "local" => Ok(Transport::Local),
            "ssh" => Ok(Transport::Ssh),
            _ => Err(format!("unknown transport {s:?}: use local or ssh")),
        }
    }
}

/// Who answers on the control-plane endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EndpointServer {
    /// A real HAProxy in front of the daemon's control-plane listeners.
    Haproxy,
    /// The lab daemon itself (haproxy is not installed).
    Daemon,
    /// The endpoint is a control plane's own address (no load balancer).
    ControlPlane,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SshState {
    pub port: u16,
    pub user: String,
    /// Node names served by each sshd (`sshd-N`), at most 16 each.
    pub groups: Vec<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabState {
    /// Absolute lab directory.
    pub dir: PathBuf,
    pub transport: Transport,
    /// The topology the lab was made from.
    pub source: PathBuf,
    pub ssh: Option<SshState>,
    pub endpoint_server: EndpointServer,
}

impl LabState {
    pub(crate) fn path(dir: &Path) -> PathBuf {
        dir.join(STATE_FILE)
    }

    pub(crate) fn load(dir: &Path) -> Result<LabState, LabError> {
        let p = Self::path(dir);
        let s = std::fs::read_to_string(&p).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                LabError::NoLab(dir.to_path_buf())
            } else {
                LabError::Io {
                    what: format!("reading {}", p.display()),
                    source: e,
                }
            }
        })?;
        serde_json::from_str(&s).map_err(|e| {
            LabError::Process(format!(
                "{} is damaged ({e}); run `gt lab down --dir {}` and start again",
                p.display(),
                dir.display()
            ))
        })
    }

    pub(crate) fn save(&self) -> Result<(), LabError> {
        let p = Self::path(&self.dir);
        write_atomic(&p, &serde_json::to_string_pretty(self).expect("serialise"))
            .map_err(LabError::io(format!("writing {}", p.display())))
    }
}
