//! The files gt reads from its user and the files it writes for them.
//!
//! Reading: only a regular file, checked on the opened descriptor (so that
//! nothing can be swapped in between the check and the read), and at most a
//! stated number of bytes: a FIFO would hang gt and `/dev/zero` would fill
//! its memory. Writing: atomically, and only over a regular file (or through
//! a symlink to one), never over the files the command reads: a rename
//! replaces whatever is at the path, and as root a device, a FIFO or a
//! symlink replaced by a text file breaks whatever used it.

use std::fs::Metadata;
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The most gt reads of a config file (README "cluster.toml").
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;
/// The most gt reads of a plan file (README "Saved plans").
pub const MAX_PLAN_BYTES: u64 = 64 << 20;
/// The most gt reads of a facts file (README "Facts JSON"): room for the
/// Node objects of far more nodes than a cluster may have.
pub const MAX_FACTS_BYTES: u64 = 256 << 20;

/// What a file that is not a regular file is, in a few words.
fn kind_of(m: &Metadata) -> &'static str {
    let t = m.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_symlink() {
        "a symbolic link"
    } else if t.is_file() {
        "a regular file"
    } else {
        "not a regular file"
    }
}

fn size(n: u64) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else {
        format!("{n} bytes")
    }
}

/// Reads the regular file at `path`, at most `limit` bytes of it. The error
/// says what the path is instead (a FIFO, a device, ...) or how much larger
/// than the limit it is; callers put the file's name before it.
pub fn read_regular(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let not_regular = |m: &Metadata| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "it is {}, not a regular file; gt reads only regular files",
                kind_of(m)
            ),
        )
    };
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
    // writer. It changes nothing for a regular file.
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
    {
        Ok(f) => f,
        // A socket cannot be opened (ENXIO): say what it is rather than
        // "no such device or address".
        Err(e) => {
            return Err(match std::fs::metadata(path) {
                Ok(m) if !m.is_file() => not_regular(&m),
                _ => e,
            })
        }
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(not_regular(&meta));
    }
    let too_large = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "it is larger than {}, the most gt reads of such a file",
                size(limit)
            ),
        )
    };
    if meta.len() > limit {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // The file may grow between the fstat and the read.
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(bytes)
}

/// `read_regular`, as UTF-8 text (the error as `std::fs::read_to_string`'s).
pub fn read_regular_string(path: &Path, limit: u64) -> io::Result<String> {
    String::from_utf8(read_regular(path, limit)?).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        )
    })
}

/// Why an output file was not written. Display is what follows
/// "cannot write ... to PATH: ".
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// What is at the path is not a file gt may replace.
    #[error("{0}")]
    Refused(String),
    #[error("{0}; check that its directory exists and is writable by this user")]
    Io(#[from] io::Error),
}

/// A file the command reads, which its output must never replace.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// `the config`, `the facts file`.
    pub role: &'a str,
    pub path: &'a Path,
}

/// Where an output goes: `path` itself, or the regular file a symlink at
/// `path` points to. Refuses anything else, and any of `inputs`.
fn output_target(path: &Path, inputs: &[Input<'_>]) -> Result<PathBuf, WriteError> {
    let refuse = |why: String| {
        Err(WriteError::Refused(format!(
            "{why}; gt writes its output only to a regular file (or through a symlink to one)"
        )))
    };
    let target = match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(path.to_path_buf()),
        Err(e) => return Err(e.into()),
        Ok(m) if m.file_type().is_symlink() => match std::fs::canonicalize(path) {
            Ok(t) => match std::fs::metadata(&t) {
                Ok(tm) if tm.is_file() => t,
                Ok(tm) => {
                    return refuse(format!(
                        "it is a symbolic link to {}, which is {}",
                        t.display(),
                        kind_of(&tm)
                    ))
                }
                Err(e) => return Err(e.into()),
            },
            Err(_) => {
                let to = std::fs::read_link(path)
                    .map(|t| t.display().to_string())
                    .unwrap_or_default();
                return refuse(format!(
                    "it is a symbolic link to {to}, which does not exist (or is a symlink loop)"
                ));
            }
        },
        Ok(m) if m.is_file() => path.to_path_buf(),
        Ok(m) => return refuse(format!("it is {}", kind_of(&m))),
    };
    let meta = std::fs::metadata(&target)?;
    for input in inputs {
        let same = std::fs::metadata(input.path)
            .is_ok_and(|m| m.dev() == meta.dev() && m.ino() == meta.ino());
        if same {
            return Err(WriteError::Refused(format!(
                "it is {} this command reads ({}); write to another file",
                input.role,
                input.path.display()
            )));
        }
    }
    Ok(target)
}

/// Writes `contents` to `path` atomically: a temporary file in the same
/// directory (named `.PREFIX-XXXXXX`, so that collectors that read `*.prom`
/// or `*.json` never pick it up), synced, given `mode`, then renamed over
/// `path`. A reader sees the old file or the new one, never a mix; a failure
/// leaves no temporary file behind. Only a regular file is replaced (through
/// a symlink: the file it points to, the link kept), never one of `inputs`.
pub fn write_atomic(
    path: &Path,
    contents: &[u8],
    mode: u32,
    prefix: &str,
    inputs: &[Input<'_>],
) -> Result<(), WriteError> {
    use std::os::unix::fs::PermissionsExt;
    let target = output_target(path, inputs)?;
    let dir = match target.parent() {
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
    tmp.persist(&target).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn names(dir: &Path) -> Vec<std::ffi::OsString> {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        v.sort();
        v
    }

    /// The other end of a FIFO, opened without waiting for a reader.
    fn open_fifo_writer(path: &Path) -> std::fs::File {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap()
    }

    fn mkfifo(p: &Path) {
        let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    }

    fn write(p: &Path, text: &[u8], inputs: &[Input<'_>]) -> Result<(), WriteError> {
        write_atomic(p, text, 0o644, ".gt.prom-", inputs)
    }

    #[test]
    fn the_file_is_replaced_whole_with_the_mode_asked_and_no_temp_file_left() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("gt.prom");
        std::fs::write(&p, "old\n").unwrap();
        write(&p, b"new\n", &[]).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "new\n");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        assert_eq!(names(dir.path()), ["gt.prom"]);
    }

    #[test]
    fn a_missing_directory_is_an_error_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nope/gt.prom");
        assert!(matches!(write(&p, b"x", &[]), Err(WriteError::Io(_))));
        assert!(!p.exists());
    }

    #[test]
    fn a_fifo_a_directory_a_socket_and_a_device_are_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        mkfifo(&fifo);
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let sock = dir.path().join("sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        for (p, kind) in [
            (fifo.as_path(), "a FIFO (named pipe)"),
            (&sub, "a directory"),
            (&sock, "a socket"),
            (Path::new("/dev/null"), "a character device"),
        ] {
            let before = std::fs::symlink_metadata(p).unwrap();
            let e = write(p, b"x", &[]).unwrap_err();
            assert!(matches!(e, WriteError::Refused(_)), "{e:?}");
            assert!(
                e.to_string()
                    .starts_with(&format!("it is {kind}; gt writes")),
                "{e}"
            );
            let after = std::fs::symlink_metadata(p).unwrap();
            assert_eq!(before.ino(), after.ino(), "{} was replaced", p.display());
            assert_eq!(before.file_type(), after.file_type());
        }
        assert_eq!(names(dir.path()), ["fifo", "sock", "sub"]);
    }

    #[test]
    fn a_symlink_to_a_regular_file_is_followed_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.prom");
        std::fs::write(&real, "old\n").unwrap();
        let link = dir.path().join("link.prom");
        std::os::unix::fs::symlink("real.prom", &link).unwrap();
        write(&link, b"new\n", &[]).unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "new\n");
        assert_eq!(names(dir.path()), ["link.prom", "real.prom"]);
    }

    #[test]
    fn a_symlink_to_a_device_or_to_nothing_is_refused_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let to_dev = dir.path().join("stdout");
        std::os::unix::fs::symlink("/dev/null", &to_dev).unwrap();
        let e = write(&to_dev, b"x", &[]).unwrap_err().to_string();
        assert!(
            e.starts_with("it is a symbolic link to /dev/null, which is a character device; "),
            "{e}"
        );
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink("nowhere", &dangling).unwrap();
        let e = write(&dangling, b"x", &[]).unwrap_err().to_string();
        assert!(
            e.starts_with("it is a symbolic link to nowhere, which does not exist"),
            "{e}"
        );
        assert!(!dir.path().join("nowhere").exists());
        for l in [&to_dev, &dangling] {
            assert!(std::fs::symlink_metadata(l)
                .unwrap()
                .file_type()
                .is_symlink());
        }
    }

    #[test]
    fn an_input_of_the_command_is_refused_by_any_name() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("cluster.toml");
        std::fs::write(&config, "[cluster]\n").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&config, &link).unwrap();
        let hard = dir.path().join("hard");
        std::fs::hard_link(&config, &hard).unwrap();
        let dotted = dir.path().join(".").join("cluster.toml");
        let inputs = [Input {
            role: "the config",
            path: Path::new(&config),
        }];
        for p in [&config, &link, &hard, &dotted] {
            let e = write(p, b"x", &inputs).unwrap_err().to_string();
            assert_eq!(
                e,
                format!(
                    "it is the config this command reads ({}); write to another file",
                    config.display()
                )
            );
        }
        assert_eq!(std::fs::read_to_string(&config).unwrap(), "[cluster]\n");
    }

    #[test]
    fn reading_refuses_what_is_not_a_regular_file_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        mkfifo(&fifo);
        // Even with a writer on the other end, a FIFO is refused.
        let _writer = open_fifo_writer(&fifo);
        let sock = dir.path().join("sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        for (p, kind) in [
            (fifo.as_path(), "a FIFO (named pipe)"),
            (dir.path(), "a directory"),
            (&sock, "a socket"),
            (Path::new("/dev/zero"), "a character device"),
        ] {
            let e = read_regular(p, 1024).unwrap_err().to_string();
            assert_eq!(
                e,
                format!("it is {kind}, not a regular file; gt reads only regular files")
            );
        }
    }

    #[test]
    fn reading_stops_at_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big");
        std::fs::write(&p, vec![b'x'; 2 << 20]).unwrap();
        assert_eq!(read_regular(&p, 2 << 20).unwrap().len(), 2 << 20);
        let e = read_regular(&p, 1 << 20).unwrap_err().to_string();
        assert_eq!(
            e,
            "it is larger than 1 MiB, the most gt reads of such a file"
        );
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        assert_eq!(read_regular(&link, 2 << 20).unwrap().len(), 2 << 20);
    }
}
