//! The lab's etcd: real etcd 3.5 members when the binaries are there, the
//! model in `state.json` otherwise.
//!
//! `gt lab up` looks for a directory holding etcd 3.5's `etcd`, `etcdctl`
//! and `etcdutl` ([`find`]: `GT_LAB_ETCD_DIR`, then PATH, then
//! `target/gt-test/etcd-3.5` beside the gt binary, where
//! scripts/install-etcd.sh puts them) and links them into `DIR/etcd/bin/`.
//! That directory is what every simulated tool checks ([`real`]): with it,
//! each control plane runs a real member, started from its static Pod
//! manifest as a kubelet would ([`member`]); without it the lab keeps the
//! member list in `state.json` as before.
//!
//! A member listens on its host's loopback address (client 2379, peer 2380,
//! metrics 2381 in plain HTTP), never on 127.0.0.1, which the simulated hosts
//! share: the manifest says 127.0.0.1 as kubeadm writes it, and the lab maps
//! it to the host's own address when it starts the process or runs etcdctl
//! inside the "pod" ([`manifest::Pod::host_args`]).

pub(crate) mod ctl;
pub(crate) mod gateway;
pub(crate) mod kubeadm;
pub(crate) mod manifest;
pub(crate) mod member;
pub(crate) mod pki;

use std::path::{Path, PathBuf};

pub(crate) const CLIENT_PORT: u16 = 2379;
pub(crate) const PEER_PORT: u16 = 2380;
pub(crate) const METRICS_PORT: u16 = 2381;

/// The three programs the lab needs from an etcd release.
const PROGRAMS: &[&str] = &["etcd", "etcdctl", "etcdutl"];

/// The environment variable naming the directory of etcd's binaries.
pub const ETCD_DIR_ENV: &str = "GT_LAB_ETCD_DIR";

/// `DIR/etcd/bin`: links to the binaries the lab runs; absent = the model.
pub(crate) fn bin_dir(lab_dir: &Path) -> PathBuf {
    lab_dir.join("etcd").join("bin")
}

/// This lab runs real etcd members.
pub(crate) fn real(lab_dir: &Path) -> bool {
    bin_dir(lab_dir).join("etcd").is_file()
}

pub(crate) fn program(lab_dir: &Path, name: &str) -> PathBuf {
    bin_dir(lab_dir).join(name)
}

/// What `gt lab up` decided about etcd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EtcdMode {
    /// Real members, from the binaries in this directory (and this version).
    Real { dir: PathBuf, version: String },
    /// The model, and why.
    Model { reason: String },
}

/// `etcd --version`'s version when it is a 3.5 release.
fn version_35(dir: &Path) -> Result<String, String> {
    for p in PROGRAMS {
        if !dir.join(p).is_file() {
            return Err(format!("{} has no {p}", dir.display()));
        }
    }
    let out = std::process::Command::new(dir.join("etcd"))
        .arg("--version")
        .output()
        .map_err(|e| format!("{} does not run: {e}", dir.join("etcd").display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text
        .lines()
        .find_map(|l| l.strip_prefix("etcd Version: "))
        .unwrap_or("")
        .trim()
        .to_string();
    if version.starts_with("3.5.") {
        Ok(version)
    } else {
        Err(format!(
            "{} is etcd {:?}, not 3.5 (kubeadm 1.32 runs etcd 3.5)",
            dir.join("etcd").display(),
            version
        ))
    }
}

/// Where etcd 3.5 is: `GT_LAB_ETCD_DIR` (and nowhere else when it is set),
/// then each PATH directory, then `gt-test/etcd-3.5` under an ancestor of
/// the running binary (scripts/install-etcd.sh's place in target/).
pub(crate) fn find() -> EtcdMode {
    if let Some(d) = std::env::var_os(ETCD_DIR_ENV).filter(|v| !v.is_empty()) {
        let dir = PathBuf::from(d);
        return match version_35(&dir) {
            Ok(version) => EtcdMode::Real { dir, version },
            Err(why) => EtcdMode::Model {
                reason: format!("{ETCD_DIR_ENV}={}: {why}", dir.display()),
            },
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let beside_exe: Vec<PathBuf> = std::env::current_exe()
        .ok()
        .map(|exe| {
            exe.ancestors()
                .skip(1)
                .map(|a| a.join("gt-test").join("etcd-3.5"))
                .collect()
        })
        .unwrap_or_default();
    let candidates = std::env::split_paths(&path)
        .filter(|d| d.join("etcd").is_file())
        .chain(beside_exe.into_iter().filter(|d| d.join("etcd").is_file()));
    let mut rejected = Vec::new();
    for dir in candidates {
        match version_35(&dir) {
            Ok(version) => return EtcdMode::Real { dir, version },
            Err(why) => rejected.push(why),
        }
    }
    let reason = if rejected.is_empty() {
        format!("no etcd 3.5 found ({ETCD_DIR_ENV} unset, none on PATH, none installed by scripts/install-etcd.sh)")
    } else {
        rejected.join("; ")
    };
    EtcdMode::Model { reason }
}

/// Links the binaries into `DIR/etcd/bin` when there are any.
pub(crate) fn install(lab_dir: &Path) -> std::io::Result<EtcdMode> {
    let mode = find();
    if let EtcdMode::Real { dir, .. } = &mode {
        let bin = bin_dir(lab_dir);
        std::fs::create_dir_all(&bin)?;
        let dir = std::path::absolute(dir)?;
        for p in PROGRAMS {
            std::os::unix::fs::symlink(dir.join(p), bin.join(p))?;
        }
    }
    Ok(mode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A directory whose `etcd --version` says `version`, beside empty etcdctl and etcdutl.
    fn fake_release(name: &str, version: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("gt-lab-etcd-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for p in PROGRAMS {
            let script = format!("#!/bin/sh\necho 'etcd Version: {version}'\n");
            std::fs::write(dir.join(p), script).unwrap();
            std::fs::set_permissions(dir.join(p), std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        dir
    }

    #[test]
    fn only_an_etcd_35_release_is_taken() {
        let ok = fake_release("ok", "3.5.1");
        assert_eq!(version_35(&ok), Ok("3.5.1".to_string()));
        let old = fake_release("old", "3.4.30");
        let err = version_35(&old).unwrap_err();
        assert!(err.contains("is etcd \"3.4.30\", not 3.5"), "{err}");
        std::fs::remove_file(old.join("etcdutl")).unwrap();
        let err = version_35(&old).unwrap_err();
        assert_eq!(err, format!("{} has no etcdutl", old.display()));
        for d in [ok, old] {
            std::fs::remove_dir_all(d).unwrap();
        }
    }
}
