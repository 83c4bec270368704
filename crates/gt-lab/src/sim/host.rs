//! The simulated host a tool runs on: found from `GT_HOST_ROOT`, with its
//! topology entry, its faults and its files under the root.

use crate::topology::{host_from_root, Faults, LabNode, LabTopology};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static STDIN_BYTES: AtomicU64 = AtomicU64::new(0);

/// Bytes read from stdin so far by this process (for the command log).
pub(crate) fn stdin_bytes() -> u64 {
    STDIN_BYTES.load(Ordering::Relaxed)
}

/// Reads all of stdin, counting it for the command log.
pub(crate) fn read_stdin_to_end() -> String {
    let mut buf = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut buf);
    STDIN_BYTES.fetch_add(buf.len() as u64, Ordering::Relaxed);
    String::from_utf8_lossy(&buf).into_owned()
}

/// Reads one line of stdin (empty at end of input), counting it.
pub(crate) fn read_stdin_line() -> String {
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    STDIN_BYTES.fetch_add(line.len() as u64, Ordering::Relaxed);
    line
}

#[derive(Debug, Clone)]
pub struct Host {
    pub(crate) lab_dir: PathBuf,
    /// The lab host name (`fenn`), also its hostname.
    pub(crate) name: String,
    /// `DIR/hosts/NODE`, absolute.
    pub(crate) root: PathBuf,
    pub(crate) topology: LabTopology,
    pub(crate) faults: Faults,
}

impl Host {
    pub(crate) fn from_env() -> Result<Host, String> {
        let root = std::env::var_os("GT_HOST_ROOT")
            .filter(|v| !v.is_empty())
            .ok_or("GT_HOST_ROOT is not set: run this inside a lab host (gt lab up)")?;
        Host::at(Path::new(&root))
    }

    pub fn at(root: &Path) -> Result<Host, String> {
        let (lab_dir, name) = host_from_root(root).ok_or_else(|| {
            format!(
                "GT_HOST_ROOT={} is not a lab host root (expected DIR/hosts/NODE)",
                root.display()
            )
        })?;
        let topology = LabTopology::load(&lab_dir)
            .map_err(|e| format!("cannot read {}: {e}", LabTopology::path(&lab_dir).display()))?;
        if topology.node(&name).is_none() {
            return Err(format!(
                "host {name:?} is not in {}",
                LabTopology::path(&lab_dir).display()
            ));
        }
        let faults = Faults::load(&lab_dir, &name);
        Ok(Host {
            lab_dir,
            name,
            root: root.to_path_buf(),
            topology,
            faults,
        })
    }

    /// What this process's tool reports as its version (its package's).
    pub(crate) fn set_kubernetes_version(&mut self, v: &str) {
        let name = self.name.clone();
        if let Some(n) = self.topology.nodes.iter_mut().find(|n| n.name == name) {
            n.kubernetes_version = v.to_string();
        }
    }

    pub(crate) fn node(&self) -> &LabNode {
        self.topology.node(&self.name).expect("checked in Host::at")
    }

    /// A host path (`/etc/kubernetes/admin.conf`) under this host's root.
    pub(crate) fn path(&self, logical: &str) -> PathBuf {
        self.root.join(logical.trim_start_matches('/'))
    }

    pub(crate) fn exists(&self, logical: &str) -> bool {
        self.path(logical).exists()
    }

    /// A directory that exists and has entries.
    pub(crate) fn dir_not_empty(&self, logical: &str) -> bool {
        std::fs::read_dir(self.path(logical))
            .map(|mut d| d.next().is_some())
            .unwrap_or(false)
    }

    pub(crate) fn write(&self, logical: &str, contents: &str) -> std::io::Result<()> {
        let p = self.path(logical);
        std::fs::create_dir_all(p.parent().expect("has parent"))?;
        std::fs::write(p, contents)
    }

    pub(crate) fn read(&self, logical: &str) -> Option<String> {
        std::fs::read_to_string(self.path(logical)).ok()
    }

    pub(crate) fn remove_file(&self, logical: &str) {
        let _ = std::fs::remove_file(self.path(logical));
    }

    /// Deletes what is inside a directory, keeping the directory (as kubeadm reset does).
    pub(crate) fn clear_dir(&self, logical: &str) {
        if let Ok(entries) = std::fs::read_dir(self.path(logical)) {
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    let _ = std::fs::remove_dir_all(&p);
                } else {
                    let _ = std::fs::remove_file(&p);
                }
            }
        }
    }
}

/// The uname form of a Kubernetes architecture name.
pub(crate) fn uname_machine(arch: &str) -> &str {
    match arch {
        "arm64" => "aarch64",
        "amd64" => "x86_64",
        "arm" => "armv7l",
        other => other,
    }
}

/// The kernel release a goldentooth host of this architecture runs.
pub(crate) fn kernel_release(arch: &str) -> &'static str {
    match arch {
        "arm64" | "arm" => "6.6.51+rpt-rpi-v8",
        _ => "6.1.0-28-amd64",
    }
}
