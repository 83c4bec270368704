//! Finding the config file.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// The config file: `--config`, then `$GT_CONFIG`, then `./cluster.toml`.
pub fn find_config(flag: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(p) = flag {
        return there(p, " (from --config)").map(|()| p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("GT_CONFIG").filter(|v| !v.is_empty()) {
        let p = PathBuf::from(p);
        return there(&p, " (from $GT_CONFIG)").map(|()| p);
    }
    let p = PathBuf::from("cluster.toml");
    match std::fs::symlink_metadata(&p) {
        Err(e) if e.kind() == ErrorKind::NotFound => Err(
            "no cluster.toml in the current directory; pass --config FILE or set GT_CONFIG".into(),
        ),
        _ => there(&p, "").map(|()| p),
    }
}

/// Whether `p` leads to something to read, and if not, why: a symlink loop
/// and a dangling symlink are not "does not exist" to someone who sees the
/// link in `ls`.
fn there(p: &Path, from: &str) -> Result<(), String> {
    let e = match std::fs::metadata(p) {
        Ok(_) => return Ok(()),
        Err(e) => e,
    };
    let shown = p.display();
    if e.raw_os_error() == Some(libc::ELOOP) {
        return Err(format!(
            "config file {shown}{from} is a symlink loop (following its links leads back to them); point the link at the real file"
        ));
    }
    if e.kind() == ErrorKind::NotFound {
        if let Ok(target) = std::fs::read_link(p) {
            return Err(format!(
                "config file {shown}{from} is a symlink to {}, which does not exist; point the link at the real file",
                target.display()
            ));
        }
        return Err(format!("config file {shown}{from} does not exist"));
    }
    Err(format!("config file {shown}{from} cannot be read: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlink_loop_and_a_dangling_link_are_named_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.toml"), dir.path().join("b.toml"));
        std::os::unix::fs::symlink(&b, &a).unwrap();
        std::os::unix::fs::symlink(&a, &b).unwrap();
        let e = find_config(Some(&a)).unwrap_err();
        assert!(e.contains("is a symlink loop"), "{e}");
        let dangling = dir.path().join("c.toml");
        std::os::unix::fs::symlink(dir.path().join("gone.toml"), &dangling).unwrap();
        let e = find_config(Some(&dangling)).unwrap_err();
        assert!(
            e.contains("is a symlink to") && e.contains("gone.toml"),
            "{e}"
        );
        let e = find_config(Some(&dir.path().join("none.toml"))).unwrap_err();
        assert!(e.ends_with("(from --config) does not exist"), "{e}");
    }
}
