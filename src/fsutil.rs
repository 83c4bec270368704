//! Writing files that readers must never see half-written.

use std::io::Write;
use std::path::Path;

/// Writes `contents` to `path` atomically: a temporary file in the same
/// directory (named `.PREFIX-XXXXXX`, so that collectors that read `*.prom`
/// or `*.json` never pick it up), synced, given `mode`, then renamed over
/// `path`. A reader sees the old file or the new one, never a mix; a failure
/// leaves no temporary file behind.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32, prefix: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(prefix)
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    tmp.write_all(contents)?;
    // The umask may have narrowed the mode at creation: set it as asked.
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_file_is_replaced_whole_with_the_mode_asked_and_no_temp_file_left() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("gt.prom");
        std::fs::write(&p, "old\n").unwrap();
        write_atomic(&p, b"new\n", 0o644, ".gt.prom-").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "new\n");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["gt.prom"]);
    }

    #[test]
    fn a_missing_directory_is_an_error_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nope/gt.prom");
        assert!(write_atomic(&p, b"x", 0o644, ".gt.prom-").is_err());
        assert!(!p.exists());
    }
}
