//! etcd backups on the operator's machine: what one holds, how it is
//! written (a private directory of private files, whole or not at all), the
//! retention count, the newest one's age, and the check a restore starts
//! from. `take` collects one from a control plane through `transport`.
//!
//! A backup is a directory `CLUSTER-YYYYMMDDTHHMMSSZ` under the backup
//! directory (`[backup] dir`, `--out`), holding the snapshot, the PKI a
//! control plane is rebuilt from, the kubeadm configuration and a
//! SHA256SUMS file that `sha256sum -c` reads. A snapshot holds every
//! Secret of the cluster: the directories are 0700 and the files 0600.

pub mod take;

use crate::kube::etcd_snapshot::{check_snapshot, sha256_hex, SnapshotError, SnapshotInfo};
use crate::plan::drift::{DriftItem, DriftKind, NewestBackup};
use crate::spec::{BackupSettings, NodeName};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

pub const SNAPSHOT_FILE: &str = "etcd-snapshot.db";
pub const PKI_FILE: &str = "pki.tar";
pub const KUBEADM_CONFIG_FILE: &str = "kubeadm-config.yaml";
pub const SUMS_FILE: &str = "SHA256SUMS";

/// The biggest snapshot gt reads back (etcd's own default quota is 2 GiB;
/// a kubeadm cluster's database is a few hundred MiB at most).
pub const MAX_SNAPSHOT_BYTES: u64 = 4 << 30;

/// What a backup is made of, as collected from a control plane.
#[derive(Clone)]
pub struct Collected {
    /// The control plane whose etcd member gave the snapshot.
    pub node: NodeName,
    pub snapshot: Vec<u8>,
    pub info: SnapshotInfo,
    pub pki_tar: Vec<u8>,
    pub kubeadm_config: String,
}

impl std::fmt::Debug for Collected {
    // Key material stays out of any debug print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collected")
            .field("node", &self.node)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// A backup written to disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    pub path: PathBuf,
    pub info: SnapshotInfo,
    /// Older backups removed to keep the retention count.
    pub removed: Vec<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{}: {what}: {source}", path.display())]
    Io {
        path: PathBuf,
        what: &'static str,
        source: std::io::Error,
    },
    #[error("{} is readable by others (mode {mode:o}): a backup holds every Secret of the cluster; run `chmod 700 {}` or choose another directory", path.display(), path.display())]
    OpenDirectory { path: PathBuf, mode: u32 },
    #[error("{} is not a gt backup: no {SUMS_FILE} in it (give the backup's directory, or its {SNAPSHOT_FILE})", path.display())]
    NotABackup { path: PathBuf },
    #[error("{}: {SUMS_FILE} line {line} is not `SHA256  FILE`", path.display())]
    BadSums { path: PathBuf, line: usize },
    #[error("{}: its sha256 is not the one in {SUMS_FILE}: the backup was altered or damaged; use another backup", path.display())]
    ChecksumMismatch { path: PathBuf },
    #[error("{}: {SUMS_FILE} does not list {SNAPSHOT_FILE}", path.display())]
    SnapshotNotListed { path: PathBuf },
    #[error("{} cannot be restored: {source}; use another backup", path.display())]
    BadSnapshot {
        path: PathBuf,
        source: SnapshotError,
    },
}

fn io<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(std::io::Error) -> BackupError + 'a {
    move |source| BackupError::Io {
        path: path.to_path_buf(),
        what,
        source,
    }
}

/// The name part of a backup that comes from the cluster's name: characters
/// a file name may hold; anything else becomes `_`.
fn name_prefix(cluster: &str) -> String {
    cluster
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `20261130T204500Z`.
pub fn stamp(at: SystemTime) -> String {
    let t = time::OffsetDateTime::from(at);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The time in a backup's name, if it is one of `cluster`'s: `PREFIX-STAMP`
/// or `PREFIX-STAMP-N` (a second backup within the same second).
fn taken_at(name: &str, cluster: &str) -> Option<SystemTime> {
    let rest = name
        .strip_prefix(&name_prefix(cluster))?
        .strip_prefix('-')?;
    let (stamp, suffix) = rest.split_at_checked(16)?;
    if !(suffix.is_empty()
        || suffix
            .strip_prefix('-')
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())))
    {
        return None;
    }
    let b = stamp.as_bytes();
    if b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let s = stamp.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let date = time::Date::from_calendar_date(
        num(0..4)? as i32,
        time::Month::try_from(num(4..6)? as u8).ok()?,
        num(6..8)? as u8,
    )
    .ok()?;
    let t = time::Time::from_hms(num(9..11)? as u8, num(11..13)? as u8, num(13..15)? as u8).ok()?;
    Some(time::PrimitiveDateTime::new(date, t).assume_utc().into())
}

/// Creates the backup directory private, or checks that it is.
fn private_dir(dir: &Path) -> Result<(), BackupError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io(dir, "cannot create the backup directory"))?;
    let mode = fs::metadata(dir)
        .map_err(io(dir, "cannot read the backup directory"))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(BackupError::OpenDirectory {
            path: dir.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), BackupError> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io(path, "cannot create"))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(io(path, "cannot write"))
}

/// Writes `c` as a new backup of `cluster` under `dir`, then removes the
/// oldest of the cluster's backups beyond `keep`. The backup appears whole
/// (written under a hidden name, then renamed) or not at all.
pub fn save(
    dir: &Path,
    cluster: &str,
    at: SystemTime,
    c: &Collected,
    keep: usize,
) -> Result<Saved, BackupError> {
    private_dir(dir)?;
    let base = format!("{}-{}", name_prefix(cluster), stamp(at));
    let mut name = base.clone();
    let mut n = 1;
    while dir.join(&name).exists() {
        n += 1;
        name = format!("{base}-{n}");
    }
    let partial = dir.join(format!(".{name}.partial"));
    let written = (|| {
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&partial)
            .map_err(io(&partial, "cannot create"))?;
        let files: [(&str, &[u8]); 3] = [
            (SNAPSHOT_FILE, &c.snapshot),
            (PKI_FILE, &c.pki_tar),
            (KUBEADM_CONFIG_FILE, c.kubeadm_config.as_bytes()),
        ];
        let mut sums = String::new();
        for (file, bytes) in files {
            write_private(&partial.join(file), bytes)?;
            sums.push_str(&format!("{}  {file}\n", sha256_hex(bytes)));
        }
        write_private(&partial.join(SUMS_FILE), sums.as_bytes())?;
        let path = dir.join(&name);
        fs::rename(&partial, &path).map_err(io(&path, "cannot move the finished backup here"))?;
        Ok(path)
    })();
    let path = match written {
        Ok(p) => p,
        Err(e) => {
            let _ = fs::remove_dir_all(&partial);
            return Err(e);
        }
    };
    let removed = retain(dir, cluster, keep)?;
    Ok(Saved {
        path,
        info: c.info.clone(),
        removed,
    })
}

/// The cluster's backups under `dir`, oldest first (by the time in their
/// names; a directory without SHA256SUMS is not counted).
pub fn list(dir: &Path, cluster: &str) -> Result<Vec<(PathBuf, SystemTime)>, BackupError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(io(dir, "cannot list the backup directory")(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io(dir, "cannot list the backup directory"))?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if let Some(at) = taken_at(&name, cluster) {
            let path = entry.path();
            if path.join(SUMS_FILE).is_file() {
                out.push((path, at));
            }
        }
    }
    out.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    Ok(out)
}

/// The newest backup of the cluster and how old it is.
pub fn newest(
    dir: &Path,
    cluster: &str,
    now: SystemTime,
) -> Result<Option<(PathBuf, Duration)>, BackupError> {
    Ok(list(dir, cluster)?
        .pop()
        .map(|(p, at)| (p, now.duration_since(at).unwrap_or_default())))
}

fn retain(dir: &Path, cluster: &str, keep: usize) -> Result<Vec<PathBuf>, BackupError> {
    let all = list(dir, cluster)?;
    let surplus = all.len().saturating_sub(keep.max(1));
    let mut removed = Vec::new();
    for (path, _) in all.into_iter().take(surplus) {
        fs::remove_dir_all(&path).map_err(io(&path, "cannot remove this old backup"))?;
        removed.push(path);
    }
    Ok(removed)
}

/// A backup's snapshot, checked: every file against SHA256SUMS, and the
/// snapshot's own integrity hash. `path` is a backup directory or the
/// snapshot file in one.
pub fn verified_snapshot(path: &Path) -> Result<(Vec<u8>, SnapshotInfo), BackupError> {
    let dir = if path.is_dir() {
        path.to_path_buf()
    } else {
        path.parent().unwrap_or(Path::new(".")).to_path_buf()
    };
    let sums_path = dir.join(SUMS_FILE);
    if !sums_path.is_file() {
        return Err(BackupError::NotABackup {
            path: path.to_path_buf(),
        });
    }
    let sums = crate::fsutil::read_regular_string(&sums_path, 64 << 10)
        .map_err(io(&sums_path, "cannot read"))?;
    let mut snapshot = None;
    for (i, line) in sums.lines().enumerate() {
        let bad = || BackupError::BadSums {
            path: sums_path.clone(),
            line: i + 1,
        };
        let (sum, file) = line.split_once("  ").ok_or_else(bad)?;
        if file.contains('/') || file.starts_with('.') || sum.len() != 64 {
            return Err(bad());
        }
        let file_path = dir.join(file);
        let bytes = crate::fsutil::read_regular(&file_path, MAX_SNAPSHOT_BYTES)
            .map_err(io(&file_path, "cannot read"))?;
        if sha256_hex(&bytes) != sum {
            return Err(BackupError::ChecksumMismatch { path: file_path });
        }
        if file == SNAPSHOT_FILE {
            snapshot = Some(bytes);
        }
    }
    let snapshot = snapshot.ok_or(BackupError::SnapshotNotListed {
        path: sums_path.clone(),
    })?;
    let info = check_snapshot(&snapshot).map_err(|source| BackupError::BadSnapshot {
        path: dir.join(SNAPSHOT_FILE),
        source,
    })?;
    Ok((snapshot, info))
}

/// What `gt drift` reports of the backups: the newest one, and an item of
/// kind `backup` when `max_age` is set and it is older (or there is none).
pub fn drift(
    settings: &BackupSettings,
    cluster: &str,
    now: SystemTime,
) -> (Option<NewestBackup>, Option<DriftItem>) {
    let newest = newest(&settings.dir, cluster, now);
    let found = match &newest {
        Ok(Some((path, age))) => Some(NewestBackup {
            path: path.display().to_string(),
            age_seconds: age.as_secs(),
        }),
        _ => None,
    };
    let Some(max_age) = settings.max_age else {
        return (found, None);
    };
    let limit = crate::spec::format_duration(max_age);
    let take_one = "take one with `gt backup` (from cron, as examples/drift does for drift)";
    let (message, detail) = match newest {
        Ok(Some((_, age))) if age <= max_age => return (found, None),
        Ok(Some((path, age))) => (
            format!(
                "newest etcd backup is {} old (max_age {limit})",
                crate::duration::compact(age)
            ),
            format!(
                "the newest etcd backup, {}, is older than [backup] max_age = \"{limit}\"; {take_one}",
                path.display()
            ),
        ),
        Ok(None) => (
            format!("no etcd backup (max_age {limit})"),
            format!(
                "{} holds no etcd backup of {cluster}; {take_one}",
                settings.dir.display()
            ),
        ),
        Err(e) => (
            "cannot read the backup directory".to_string(),
            format!("{e}; fix [backup] dir, then {take_one}"),
        ),
    };
    let item = DriftItem {
        node: None,
        kind: DriftKind::Backup,
        message,
        detail,
    };
    (found, Some(item))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collected() -> Collected {
        let snapshot = std::fs::read(format!(
            "{}/tests/fixtures/etcd/snapshot-rev8.db",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        Collected {
            node: "bettley".parse().unwrap(),
            info: check_snapshot(&snapshot).unwrap(),
            snapshot,
            pki_tar: b"tar".to_vec(),
            kubeadm_config: "apiVersion: v1\n".into(),
        }
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_backup_is_a_private_directory_of_private_files_with_their_sums() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("backups");
        let saved = save(&dir, "goldentooth", at(1_796_071_500), &collected(), 7).unwrap();
        assert_eq!(saved.path, dir.join("goldentooth-20261130T204500Z"));
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&saved.path), 0o700);
        let mut names: Vec<String> = fs::read_dir(&saved.path)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [SUMS_FILE, SNAPSHOT_FILE, KUBEADM_CONFIG_FILE, PKI_FILE]
        );
        for n in &names {
            assert_eq!(mode(&saved.path.join(n)), 0o600, "{n}");
        }
        let check = std::process::Command::new("sha256sum")
            .arg("-c")
            .arg("--quiet")
            .arg(SUMS_FILE)
            .current_dir(&saved.path)
            .status()
            .unwrap();
        assert!(check.success(), "sha256sum -c reads SHA256SUMS");
        let (snapshot, info) = verified_snapshot(&saved.path).unwrap();
        assert_eq!(snapshot, collected().snapshot);
        assert_eq!(info.revision, 8);
    }

    #[test]
    fn a_directory_others_can_read_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let e = save(tmp.path(), "gt", at(0), &collected(), 7).unwrap_err();
        assert!(
            e.to_string().contains("is readable by others (mode 755)"),
            "{e}"
        );
        assert!(e.to_string().contains("chmod 700"), "{e}");
    }

    #[test]
    fn retention_keeps_the_newest_of_this_cluster_and_touches_nothing_else() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).unwrap();
        fs::create_dir(dir.join("notes")).unwrap();
        save(dir, "other", at(10), &collected(), 1).unwrap();
        for t in [100, 200, 300] {
            save(dir, "gt", at(t), &collected(), 2).unwrap();
        }
        // Two within the same second: both kept apart.
        let same = save(dir, "gt", at(300), &collected(), 2).unwrap();
        assert_eq!(same.path, dir.join("gt-19700101T000500Z-2"));
        assert_eq!(same.removed, [dir.join("gt-19700101T000320Z")]);
        let kept: Vec<PathBuf> = list(dir, "gt").unwrap().into_iter().map(|x| x.0).collect();
        assert_eq!(
            kept,
            [
                dir.join("gt-19700101T000500Z"),
                dir.join("gt-19700101T000500Z-2")
            ]
        );
        assert!(dir.join("notes").is_dir());
        assert_eq!(list(dir, "other").unwrap().len(), 1);
        let (newest, age) = newest(dir, "gt", at(360)).unwrap().unwrap();
        assert_eq!(newest, dir.join("gt-19700101T000500Z-2"));
        assert_eq!(age, Duration::from_secs(60));
        assert_eq!(newest_of_nothing(), None);
    }

    fn newest_of_nothing() -> Option<(PathBuf, Duration)> {
        let tmp = tempfile::tempdir().unwrap();
        newest(&tmp.path().join("none"), "gt", at(0)).unwrap()
    }

    #[test]
    fn a_damaged_backup_is_refused_naming_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("b");
        let saved = save(&dir, "gt", at(0), &collected(), 7).unwrap();
        let snap = saved.path.join(SNAPSHOT_FILE);
        let mut bytes = fs::read(&snap).unwrap();
        bytes[100] ^= 0xff;
        fs::write(&snap, &bytes).unwrap();
        let e = verified_snapshot(&snap).unwrap_err();
        assert!(
            matches!(e, BackupError::ChecksumMismatch { ref path } if *path == snap),
            "{e}"
        );
        // Sums made to match: the snapshot's own hash still catches it.
        let sums = fs::read_to_string(saved.path.join(SUMS_FILE)).unwrap();
        let fixed = sums
            .lines()
            .map(|l| match l.split_once("  ") {
                Some((_, f)) if f == SNAPSHOT_FILE => format!("{}  {f}", sha256_hex(&bytes)),
                _ => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        fs::write(saved.path.join(SUMS_FILE), fixed).unwrap();
        let e = verified_snapshot(&saved.path).unwrap_err();
        assert!(
            matches!(
                e,
                BackupError::BadSnapshot {
                    source: SnapshotError::HashMismatch,
                    ..
                }
            ),
            "{e}"
        );
        let e = verified_snapshot(tmp.path()).unwrap_err();
        assert!(matches!(e, BackupError::NotABackup { .. }), "{e}");
    }

    #[test]
    fn only_names_of_the_form_gt_writes_count_as_backups() {
        assert!(taken_at("gt-19700101T000000Z", "gt").is_some());
        assert!(taken_at("gt-19700101T000000Z-12", "gt").is_some());
        for other in [
            "gt-19700101T000000Z-",
            "gt-19700101T000000Zx",
            "gt-19701301T000000Z",
            "gtx-19700101T000000Z",
            ".gt-19700101T000000Z.partial",
            "gt-1970010100000000",
        ] {
            assert!(taken_at(other, "gt").is_none(), "{other}");
        }
        assert_eq!(name_prefix("gold/en tooth"), "gold_en_tooth");
    }
}
