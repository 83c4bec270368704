//! The private directory that holds a run's SSH control sockets and ssh's
//! logs. It is removed when its `Hosts` is dropped, and also by
//! `remove_control_dirs`, which gt calls before a signal ends it at once
//! (no destructor runs then): a socket left in /tmp would outlive the run.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The directories of the live runs of this process, for
/// `remove_control_dirs`.
static LIVE: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

fn live() -> std::sync::MutexGuard<'static, BTreeSet<PathBuf>> {
    // Poisoned only if a panic happened while the set was edited: the set
    // itself is still whole.
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// A fresh `gt-ssh-XXXXXX` under the system's temporary directory, mode 0700.
pub(crate) struct ControlDir {
    dir: Option<tempfile::TempDir>,
}

impl ControlDir {
    pub(crate) fn new() -> std::io::Result<ControlDir> {
        let dir = tempfile::Builder::new()
            .prefix("gt-ssh-")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir_in(std::env::temp_dir())?;
        live().insert(dir.path().to_path_buf());
        Ok(ControlDir { dir: Some(dir) })
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.as_ref().expect("present until dropped").path()
    }
}

impl Drop for ControlDir {
    fn drop(&mut self) {
        let mut live = live();
        if let Some(dir) = self.dir.take() {
            // Removed under the lock, so that `remove_control_dirs` never
            // races a drop over the same path.
            if live.remove(dir.path()) {
                let _ = dir.close();
            } else {
                // Already removed by `remove_control_dirs`.
                let _ = dir.keep();
            }
        }
    }
}

/// Removes the control directories of every run of this process: for a
/// process about to exit without unwinding (a signal). The directories stay
/// registered as gone, so a connection being opened meanwhile cannot
/// recreate them (a connection only makes files in its run's directory,
/// never the directory).
pub fn remove_control_dirs() {
    let mut live = live();
    for dir in std::mem::take(&mut *live) {
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_directory_is_private_and_goes_with_its_owner_and_its_files() {
        let d = ControlDir::new().unwrap();
        let path = d.path().to_path_buf();
        std::fs::write(path.join("0.log"), "").unwrap();
        assert_eq!(mode(&path), 0o700);
        drop(d);
        assert!(!path.exists());
    }

    #[test]
    fn removing_every_live_directory_leaves_nothing_and_nothing_comes_back() {
        let d = ControlDir::new().unwrap();
        let path = d.path().to_path_buf();
        std::fs::write(path.join("0.log"), "").unwrap();
        remove_control_dirs();
        assert!(!path.exists());
        // A connection opened meanwhile makes files in it, which fails.
        assert!(std::fs::write(path.join("1.log"), "").is_err());
        assert!(!path.exists());
        // Its owner dropping later is harmless.
        drop(d);
        assert!(!path.exists());
    }
}
