//! etcd snapshots: the command lines that take one on a control plane and
//! carry it (and what a rebuild needs besides) back to the operator, the
//! check of a snapshot file, and the command lines of a restore
//! (docs/kubeadm.md, "Backups and restore").
//!
//! A kubeadm host has no etcdctl of its own: it runs in the etcd static
//! pod's container (`kubectl exec etcd-NODE -- etcdctl ...`), with kubeadm's
//! certificate paths. The snapshot is written into the pod's data directory,
//! which is the host's /var/lib/etcd, read from there base64-encoded (the
//! transport carries text) and removed whatever happens.

use super::etcd;
use crate::transport::{shell_join, shell_quote};
use sha2::{Digest, Sha256};

/// The data directory kubeadm gives etcd, the same path in the pod and on the host.
pub const ETCD_DATA_DIR: &str = "/var/lib/etcd";

/// The PKI a control plane is rebuilt from (what `kubeadm init phase
/// upload-certs` shares between control planes), relative to /etc/kubernetes.
pub const REBUILD_PKI: &[&str] = &[
    "pki/ca.crt",
    "pki/ca.key",
    "pki/sa.key",
    "pki/sa.pub",
    "pki/front-proxy-ca.crt",
    "pki/front-proxy-ca.key",
    "pki/etcd/ca.crt",
    "pki/etcd/ca.key",
];

/// `etcdctl snapshot save PATH` in `node`'s etcd pod. Without
/// `--command-timeout`, unlike every other etcdctl call: etcdctl applies
/// that timeout to the whole stream of a snapshot, and without it sets none.
pub fn snapshot_save(node: &str, path: &str) -> String {
    let pod = etcd::pod_of(node);
    let mut w: Vec<&str> = vec!["-n", "kube-system", "exec", &pod, "--", "etcdctl"];
    w.extend(etcd::ETCDCTL_CLIENT);
    w.extend(["snapshot", "save", path]);
    super::kubectl_admin(&shell_join(&w))
}

/// The name of the snapshot file a backup leaves for a moment in the data
/// directory; `nonce` (hex) keeps two backups from sharing it.
pub fn remote_snapshot_name(nonce: &str) -> String {
    format!("gt-snapshot-{nonce}.db")
}

/// Run on control plane `node`: checks its member commits a proposal (a
/// member cut off from quorum would hand out a stale snapshot), saves a
/// snapshot into the data directory, prints it base64-encoded on stdout, and
/// removes it (and etcdctl's `.part`) on every way out. Tool messages go to
/// stderr, so stdout is the snapshot alone.
pub fn take_snapshot(node: &str, file_name: &str) -> String {
    let in_pod = format!("{ETCD_DATA_DIR}/{file_name}");
    format!(
        "snap=\"${{GT_HOST_ROOT}}{in_pod}\"\n\
         trap 'rm -f \"$snap\" \"$snap.part\"' EXIT\n\
         {health} >&2 && {save} >&2 && base64 \"$snap\"\n",
        health = etcd::etcdctl(node, &["endpoint", "health"]),
        save = snapshot_save(node, &in_pod),
    )
}

/// Prints the rebuild PKI as a tar archive, base64-encoded; refuses (exit 3,
/// naming the file) when one is missing rather than archive part of it.
pub fn read_rebuild_pki() -> String {
    let files = REBUILD_PKI.join(" ");
    format!(
        "cd \"${{GT_HOST_ROOT}}/etc/kubernetes\" || exit 3\n\
         for f in {files}; do [ -f \"$f\" ] || {{ echo \"/etc/kubernetes/$f: no such file\" >&2; exit 3; }}; done\n\
         tar -cf - {files} | base64\n"
    )
}

/// The kubeadm-config ConfigMap (the ClusterConfiguration kubeadm upgrades and joins read).
pub fn get_kubeadm_config() -> String {
    super::kubectl_admin("-n kube-system get configmap kubeadm-config -o yaml")
}

/// Bytes a host printed with `base64` (line-wrapped).
pub fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    use base64::Engine;
    let compact: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|e| format!("not base64 ({e})"))
}

/// Bytes as base64 with no line breaks (for a host's `base64 -d`).
pub fn encode_base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// What gt knows of a snapshot file it checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// The file's size, integrity hash included.
    pub bytes: u64,
    /// The newest revision of any key in it (what `etcdutl snapshot status` calls its revision).
    pub revision: u64,
    /// sha256 of the whole file, lowercase hex (for SHA256SUMS).
    pub sha256: String,
}

/// Why a file is not a snapshot etcd would restore.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("it has no integrity hash: {bytes} bytes is not a whole number of 512-byte blocks plus etcd's 32-byte sha256 (a truncated or altered file, or not an etcdctl snapshot)")]
    NoIntegrityHash { bytes: u64 },
    #[error("its integrity hash does not match its contents (the file was altered or damaged after etcd wrote it)")]
    HashMismatch,
    #[error("it is not an etcd database: {0}")]
    NotEtcdDatabase(String),
}

/// Checks a snapshot as etcd's restore does (the sha256 etcd appends to the
/// bolt database it streams, present when the size is 32 past a multiple of
/// 512), then reads the database's newest key revision.
pub fn check_snapshot(file: &[u8]) -> Result<SnapshotInfo, SnapshotError> {
    const HASH: usize = 32;
    let bytes = file.len() as u64;
    if file.len() < HASH || file.len() % 512 != HASH {
        return Err(SnapshotError::NoIntegrityHash { bytes });
    }
    let (db, trailer) = file.split_at(file.len() - HASH);
    if Sha256::digest(db).as_slice() != trailer {
        return Err(SnapshotError::HashMismatch);
    }
    let revision = bolt::newest_revision(db).map_err(SnapshotError::NotEtcdDatabase)?;
    Ok(SnapshotInfo {
        bytes,
        revision,
        sha256: sha256_hex(file),
    })
}

/// Lowercase hex sha256, as `sha256sum` prints it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Just enough of bbolt's file format (etcd's backend) to find the newest
/// revision: the meta page, the root bucket, and the rightmost key of the
/// `key` bucket, whose first 8 bytes are the revision, big-endian (so the
/// last key in byte order holds the newest).
mod bolt {
    const MAGIC: u32 = 0xED0C_DAED;
    const PAGE_HEADER: usize = 16;
    const ELEMENT: usize = 16;
    const BRANCH: u16 = 0x01;
    const LEAF: u16 = 0x02;
    const BUCKET_ENTRY: u32 = 0x01;
    /// No real tree is this deep; a cycle in a damaged file is.
    const MAX_DEPTH: usize = 64;

    fn u16_at(b: &[u8], at: usize) -> Result<u16, String> {
        b.get(at..at + 2)
            .map(|s| u16::from_le_bytes([s[0], s[1]]))
            .ok_or_else(|| format!("offset {at} is past the end"))
    }
    fn u32_at(b: &[u8], at: usize) -> Result<u32, String> {
        b.get(at..at + 4)
            .map(|s| u32::from_le_bytes(s.try_into().expect("4 bytes")))
            .ok_or_else(|| format!("offset {at} is past the end"))
    }
    fn u64_at(b: &[u8], at: usize) -> Result<u64, String> {
        b.get(at..at + 8)
            .map(|s| u64::from_le_bytes(s.try_into().expect("8 bytes")))
            .ok_or_else(|| format!("offset {at} is past the end"))
    }

    fn fnv64a(bytes: &[u8]) -> u64 {
        bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        })
    }

    /// (page size, root bucket's root page) of the newest valid meta page.
    fn meta(db: &[u8]) -> Result<(usize, u64), String> {
        let page_size = u32_at(db, PAGE_HEADER + 8)? as usize;
        if !(512..=1 << 20).contains(&page_size) {
            return Err(format!("no bolt meta page (page size {page_size})"));
        }
        let mut best: Option<(u64, u64)> = None;
        for page in [0, page_size] {
            let m = page + PAGE_HEADER;
            let Some(fields) = db.get(m..m + 64) else {
                continue;
            };
            let valid = u32_at(fields, 0)? == MAGIC && u64_at(fields, 56)? == fnv64a(&fields[..56]);
            if valid {
                let (root, txid) = (u64_at(fields, 16)?, u64_at(fields, 48)?);
                if best.is_none_or(|(t, _)| txid > t) {
                    best = Some((txid, root));
                }
            }
        }
        let (_, root) = best.ok_or("no valid bolt meta page")?;
        Ok((page_size, root))
    }

    /// A page's bytes (from its header on), checked to be one.
    fn page(db: &[u8], page_size: usize, id: u64) -> Result<&[u8], String> {
        let start = usize::try_from(id)
            .ok()
            .and_then(|i| i.checked_mul(page_size))
            .filter(|s| *s < db.len())
            .ok_or_else(|| format!("page {id} is past the end"))?;
        Ok(&db[start..])
    }

    /// Element `i` of a page (leaf or branch): its key, and for a leaf its
    /// flags and value, for a branch its child page.
    struct Element<'a> {
        key: &'a [u8],
        flags: u32,
        value: &'a [u8],
        child: u64,
    }

    fn element(page: &[u8], i: usize) -> Result<Element<'_>, String> {
        let flags_of_page = u16_at(page, 8)?;
        let at = PAGE_HEADER + i * ELEMENT;
        let slice = |from: usize, len: usize| {
            page.get(from..from + len)
                .ok_or_else(|| format!("element {i} points past the end"))
        };
        if flags_of_page & BRANCH != 0 {
            let (pos, ksize) = (u32_at(page, at)? as usize, u32_at(page, at + 4)? as usize);
            Ok(Element {
                key: slice(at + pos, ksize)?,
                flags: 0,
                value: &[],
                child: u64_at(page, at + 8)?,
            })
        } else {
            let flags = u32_at(page, at)?;
            let (pos, ksize, vsize) = (
                u32_at(page, at + 4)? as usize,
                u32_at(page, at + 8)? as usize,
                u32_at(page, at + 12)? as usize,
            );
            Ok(Element {
                key: slice(at + pos, ksize)?,
                flags,
                value: slice(at + pos + ksize, vsize)?,
                child: 0,
            })
        }
    }

    fn count(page: &[u8]) -> Result<usize, String> {
        let flags = u16_at(page, 8)?;
        if flags & (BRANCH | LEAF) == 0 {
            return Err(format!("page of kind {flags:#x} where a tree page belongs"));
        }
        Ok(usize::from(u16_at(page, 10)?))
    }

    /// The leaf element of `name` in the tree rooted at `root`, if any.
    fn find<'a>(
        db: &'a [u8],
        page_size: usize,
        root: &'a [u8],
        name: &[u8],
    ) -> Result<Option<Element<'a>>, String> {
        let mut page = root;
        for _ in 0..MAX_DEPTH {
            let n = count(page)?;
            if u16_at(page, 8)? & LEAF != 0 {
                for i in 0..n {
                    let e = element(page, i)?;
                    if e.key == name {
                        return Ok(Some(e));
                    }
                }
                return Ok(None);
            }
            let mut child = None;
            for i in 0..n {
                let e = element(page, i)?;
                if e.key <= name || child.is_none() {
                    child = Some(e.child);
                }
            }
            let Some(child) = child else {
                return Ok(None);
            };
            page = self::page(db, page_size, child)?;
        }
        Err("the tree is deeper than any bolt database".into())
    }

    /// The root page of a bucket whose entry is `value` (inline buckets
    /// carry their page in the value).
    fn bucket_root<'a>(
        db: &'a [u8],
        page_size: usize,
        value: &'a [u8],
    ) -> Result<&'a [u8], String> {
        let root = u64_at(value, 0)?;
        if root == 0 {
            value
                .get(16..)
                .ok_or_else(|| "an inline bucket without its page".to_string())
        } else {
            page(db, page_size, root)
        }
    }

    pub(super) fn newest_revision(db: &[u8]) -> Result<u64, String> {
        let (page_size, root) = meta(db)?;
        let root = page(db, page_size, root)?;
        let entry = find(db, page_size, root, b"key")?
            .filter(|e| e.flags & BUCKET_ENTRY != 0)
            .ok_or("no \"key\" bucket")?;
        let mut page = bucket_root(db, page_size, entry.value)?;
        for _ in 0..MAX_DEPTH {
            let n = count(page)?;
            if n == 0 {
                return Ok(0);
            }
            let last = element(page, n - 1)?;
            if u16_at(page, 8)? & LEAF != 0 {
                let main = last.key.get(..8).ok_or("a key shorter than a revision")?;
                return Ok(u64::from_be_bytes(main.try_into().expect("8 bytes")));
            }
            page = self::page(db, page_size, last.child)?;
        }
        Err("the tree is deeper than any bolt database".into())
    }
}

/// Where a restore keeps its copy of the snapshot (and a shipped etcdutl)
/// on a control plane: root's, 0700, emptied by the restore's last step.
pub const RESTORE_WORK_DIR: &str = "/var/lib/gt-restore";
/// Where a restore parks the static Pod manifests of etcd and the API
/// server while they must not run (outside the directory the kubelet watches).
pub const STOPPED_MANIFESTS_DIR: &str = "/etc/kubernetes/gt-restore-stopped";
const MANIFESTS_DIR: &str = "/etc/kubernetes/manifests";
/// The manifests a restore stops, in the order they stop; they start in reverse.
pub const STOPPED_MANIFESTS: [&str; 2] = ["kube-apiserver.yaml", "etcd.yaml"];

/// How a restore runs etcdutl on a host: the one gt copied there, or the
/// host's own on its PATH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreTool {
    Shipped,
    OnPath,
}

impl RestoreTool {
    fn invocation(self) -> String {
        match self {
            RestoreTool::Shipped => format!("\"${{GT_HOST_ROOT}}{RESTORE_WORK_DIR}/etcdutl\""),
            RestoreTool::OnPath => "etcdutl".into(),
        }
    }
}

/// Writes stdin (base64) to `RESTORE_WORK_DIR/name` with `mode`, and keeps
/// it only when its sha256 is `sha256`: what arrived is what was sent.
pub fn receive_file(name: &str, sha256: &str, mode: &str) -> String {
    format!(
        "umask 077\n\
         w=\"${{GT_HOST_ROOT}}{RESTORE_WORK_DIR}\"\n\
         mkdir -p \"$w\" && chmod 700 \"$w\" || exit 3\n\
         base64 -d > \"$w/{name}.part\" || {{ rm -f \"$w/{name}.part\"; exit 3; }}\n\
         got=$(sha256sum < \"$w/{name}.part\" | cut -d ' ' -f 1)\n\
         if [ \"$got\" != {sha256} ]; then rm -f \"$w/{name}.part\"; echo \"{RESTORE_WORK_DIR}/{name}: sha256 $got after the copy, not {sha256}\" >&2; exit 3; fi\n\
         chmod {mode} \"$w/{name}.part\" && mv \"$w/{name}.part\" \"$w/{name}\"\n",
    )
}

/// Checks a host can restore: etcdutl runs, and both manifests are where a
/// restore finds them (in place, or parked by an earlier attempt).
pub fn check_restore_host(tool: RestoreTool) -> String {
    let mut s = format!(
        "{} version >/dev/null || {{ echo 'etcdutl does not run here' >&2; exit 3; }}\n",
        tool.invocation()
    );
    for m in STOPPED_MANIFESTS {
        s.push_str(&format!(
            "[ -f \"${{GT_HOST_ROOT}}{MANIFESTS_DIR}/{m}\" ] || [ -f \"${{GT_HOST_ROOT}}{STOPPED_MANIFESTS_DIR}/{m}\" ] || {{ echo '{MANIFESTS_DIR}/{m}: no such file' >&2; exit 3; }}\n"
        ));
    }
    s
}

/// Parks the API server's and etcd's manifests: the kubelet stops both
/// pods. Repeatable: what is parked already stays parked.
pub fn stop_control_plane() -> String {
    let mut s = format!(
        "s=\"${{GT_HOST_ROOT}}{STOPPED_MANIFESTS_DIR}\"\nmkdir -p \"$s\" && chmod 700 \"$s\" || exit 3\n"
    );
    for m in STOPPED_MANIFESTS {
        s.push_str(&format!(
            "if [ -f \"${{GT_HOST_ROOT}}{MANIFESTS_DIR}/{m}\" ]; then mv \"${{GT_HOST_ROOT}}{MANIFESTS_DIR}/{m}\" \"$s/{m}\" || exit 3; fi\n\
             [ -f \"$s/{m}\" ] || {{ echo '{m}: neither in {MANIFESTS_DIR} nor parked' >&2; exit 3; }}\n"
        ));
    }
    s
}

/// Waits until the host's container runtime runs no etcd container (the
/// kubelet stops a static Pod some seconds after its manifest goes: its
/// file check, then the container's graceful stop), at most `within`: a
/// member restored while the old one still runs would race it for its
/// ports. crictl comes with kubeadm (cri-tools).
pub fn wait_etcd_stopped(cri_socket: &str, within: std::time::Duration) -> String {
    let tenths = within.as_millis().div_ceil(100).max(1);
    let ps = shell_join(&[
        "crictl",
        "--runtime-endpoint",
        cri_socket,
        "ps",
        "-q",
        "--name",
        "^etcd$",
    ]);
    format!(
        "command -v crictl >/dev/null || {{ echo 'crictl: not found; gt waits with it for the old etcd container to stop (it comes with kubeadm: package cri-tools)' >&2; exit 3; }}\n\
         i=0\n\
         while running=$({ps}) && [ -n \"$running\" ]; do\n\
         i=$((i + 1))\n\
         if [ \"$i\" -gt {tenths} ]; then echo 'the old etcd container still runs {secs} after its manifest was parked (see crictl ps --name etcd, and the kubelet log)' >&2; exit 3; fi\n\
         sleep 0.1\n\
         done\n",
        secs = crate::duration::compact(within),
    )
}

/// What a restored member is: its name, the whole cluster, its peer URL,
/// the new cluster's token, the fresh data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoredMember<'a> {
    pub name: &'a str,
    /// `NAME=https://ADDRESS:2380,...`, every control plane.
    pub initial_cluster: &'a str,
    pub peer_url: &'a str,
    pub token: &'a str,
    pub data_dir: &'a str,
}

/// Restores the copied snapshot into a fresh data directory and points the
/// parked etcd manifest's data volume at it (the container still mounts it
/// at /var/lib/etcd, so `--data-dir` stays). The old data stays where it was.
pub fn restore_member(tool: RestoreTool, m: &RestoredMember) -> String {
    let q = |s: &str| shell_quote(s);
    format!(
        "{tool} snapshot restore \"${{GT_HOST_ROOT}}{RESTORE_WORK_DIR}/snapshot.db\" --name {name} --initial-cluster {cluster} --initial-cluster-token {token} --initial-advertise-peer-urls {peer} --data-dir \"${{GT_HOST_ROOT}}\"{dir} || exit 3\n\
         f=\"${{GT_HOST_ROOT}}{STOPPED_MANIFESTS_DIR}/etcd.yaml\"\n\
         sed -e 's#^\\( *path: \\)/var/lib/etcd[A-Za-z0-9._-]*$#\\1'{dir}'#' \"$f\" > \"$f.new\" || exit 3\n\
         if [ \"$(grep -c \"^ *path: \"{dir}'$' \"$f.new\")\" != 1 ]; then rm -f \"$f.new\"; echo \"etcd.yaml: no one hostPath under /var/lib/etcd to point at \"{dir} >&2; exit 3; fi\n\
         mv \"$f.new\" \"$f\"\n",
        tool = tool.invocation(),
        name = q(m.name),
        cluster = q(m.initial_cluster),
        token = q(m.token),
        peer = q(m.peer_url),
        dir = q(m.data_dir),
    )
}

/// Puts a parked manifest back where the kubelet runs it.
pub fn start_manifest(name: &str) -> String {
    format!(
        "s=\"${{GT_HOST_ROOT}}{STOPPED_MANIFESTS_DIR}/{name}\"\n\
         if [ -f \"$s\" ]; then mv \"$s\" \"${{GT_HOST_ROOT}}{MANIFESTS_DIR}/{name}\" || exit 3; fi\n\
         [ -f \"${{GT_HOST_ROOT}}{MANIFESTS_DIR}/{name}\" ] || {{ echo '{MANIFESTS_DIR}/{name}: missing' >&2; exit 3; }}\n"
    )
}

/// Removes the restore's copy of the snapshot and the shipped etcdutl.
pub fn clean_restore_work_dir() -> String {
    format!("rm -rf \"${{GT_HOST_ROOT}}{RESTORE_WORK_DIR}\"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/tests/fixtures/etcd/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn snapshots_saved_by_etcdctl_check_out_with_the_revision_etcdutl_reports() {
        // Both were saved by etcdctl 3.5 from a real etcd; `etcdutl snapshot
        // status` said revision 8 (one leaf) and 1503 (a branch above leaves).
        let small = check_snapshot(&fixture("snapshot-rev8.db")).unwrap();
        assert_eq!((small.bytes, small.revision), (20512, 8));
        let big = check_snapshot(&fixture("snapshot-rev1503.db")).unwrap();
        assert_eq!((big.bytes, big.revision), (135200, 1503));
        assert_eq!(big.sha256, sha256_hex(&fixture("snapshot-rev1503.db")));
    }

    #[test]
    fn a_flipped_byte_or_a_truncated_file_is_refused() {
        let mut snap = fixture("snapshot-rev8.db");
        snap[5000] ^= 1;
        assert_eq!(check_snapshot(&snap), Err(SnapshotError::HashMismatch));
        let snap = fixture("snapshot-rev8.db");
        assert_eq!(
            check_snapshot(&snap[..snap.len() - 1]),
            Err(SnapshotError::NoIntegrityHash { bytes: 20511 })
        );
        assert_eq!(
            check_snapshot(b""),
            Err(SnapshotError::NoIntegrityHash { bytes: 0 })
        );
    }

    #[test]
    fn a_file_with_a_good_hash_but_no_etcd_inside_is_refused() {
        let mut junk = vec![7u8; 1024];
        junk.extend_from_slice(&Sha256::digest(&junk));
        assert!(matches!(
            check_snapshot(&junk),
            Err(SnapshotError::NotEtcdDatabase(_))
        ));
    }

    #[test]
    fn the_snapshot_command_checks_health_saves_streams_and_always_cleans_up() {
        assert_eq!(
            take_snapshot("bettley", "gt-snapshot-00ff.db"),
            "snap=\"${GT_HOST_ROOT}/var/lib/etcd/gt-snapshot-00ff.db\"\n\
             trap 'rm -f \"$snap\" \"$snap.part\"' EXIT\n\
             kubectl --kubeconfig \"${GT_HOST_ROOT}/etc/kubernetes/admin.conf\" -n kube-system exec etcd-bettley -- etcdctl \
             --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt \
             --cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt \
             --key=/etc/kubernetes/pki/etcd/healthcheck-client.key --command-timeout=3s endpoint health >&2 \
             && kubectl --kubeconfig \"${GT_HOST_ROOT}/etc/kubernetes/admin.conf\" -n kube-system exec etcd-bettley -- etcdctl \
             --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt \
             --cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt \
             --key=/etc/kubernetes/pki/etcd/healthcheck-client.key snapshot save /var/lib/etcd/gt-snapshot-00ff.db >&2 \
             && base64 \"$snap\"\n"
        );
    }

    #[test]
    fn the_pki_is_archived_whole_or_not_at_all() {
        let script = read_rebuild_pki();
        assert!(script.contains("tar -cf - pki/ca.crt pki/ca.key pki/sa.key pki/sa.pub pki/front-proxy-ca.crt pki/front-proxy-ca.key pki/etcd/ca.crt pki/etcd/ca.key | base64"));
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc/kubernetes/pki/etcd")).unwrap();
        for f in REBUILD_PKI.iter().skip(1) {
            std::fs::write(dir.path().join("etc/kubernetes").join(f), f).unwrap();
        }
        let run = || {
            std::process::Command::new("sh")
                .arg("-c")
                .arg(&script)
                .env("GT_HOST_ROOT", dir.path())
                .output()
                .unwrap()
        };
        let out = run();
        assert_eq!(out.status.code(), Some(3));
        assert!(out.stdout.is_empty());
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "/etc/kubernetes/pki/ca.crt: no such file\n"
        );
        std::fs::write(dir.path().join("etc/kubernetes/pki/ca.crt"), "ca").unwrap();
        let out = run();
        assert!(out.status.success());
        let tar = decode_base64(&String::from_utf8_lossy(&out.stdout)).unwrap();
        assert_eq!(tar.len() % 512, 0, "a tar archive is whole blocks");
    }

    #[test]
    fn base64_as_a_host_prints_it_decodes() {
        assert_eq!(decode_base64("aGVs\nbG8=\n").unwrap(), b"hello");
        assert!(decode_base64("not*base64").is_err());
        assert_eq!(encode_base64(b"hello"), "aGVsbG8=");
    }

    fn sh(script: &str, root: &std::path::Path, stdin: &[u8]) -> std::process::Output {
        use std::io::Write;
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .env("GT_HOST_ROOT", root)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child.wait_with_output().unwrap()
    }

    #[test]
    fn a_copy_is_kept_only_when_its_checksum_is_the_one_sent() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let bytes = b"snapshot bytes";
        let sum = sha256_hex(bytes);
        let out = sh(
            &receive_file("snapshot.db", &sum, "600"),
            root.path(),
            encode_base64(bytes).as_bytes(),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let f = root.path().join("var/lib/gt-restore/snapshot.db");
        assert_eq!(std::fs::read(&f).unwrap(), bytes);
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let wrong = sha256_hex(b"other");
        let out = sh(
            &receive_file("x.db", &wrong, "600"),
            root.path(),
            encode_base64(bytes).as_bytes(),
        );
        assert_eq!(out.status.code(), Some(3));
        assert!(String::from_utf8_lossy(&out.stderr).contains("/var/lib/gt-restore/x.db: sha256"));
        assert!(!root.path().join("var/lib/gt-restore/x.db").exists());
        assert!(!root.path().join("var/lib/gt-restore/x.db.part").exists());
    }

    const ETCD_YAML: &str = "spec:\n  containers:\n  - command:\n    - etcd\n    - --data-dir=/var/lib/etcd\n    volumeMounts:\n    - mountPath: /var/lib/etcd\n      name: etcd-data\n    - mountPath: /etc/kubernetes/pki/etcd\n      name: etcd-certs\n  volumes:\n  - hostPath:\n      path: /etc/kubernetes/pki/etcd\n      type: DirectoryOrCreate\n    name: etcd-certs\n  - hostPath:\n      path: /var/lib/etcd\n      type: DirectoryOrCreate\n    name: etcd-data\n";

    /// `script` run as sh with a `crictl` whose body is given.
    fn sh_with_crictl(script: &str, crictl: &str) -> std::process::Output {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("crictl");
        std::fs::write(&p, format!("#!/bin/sh\n{crictl}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .env("PATH", format!("{}:/usr/bin:/bin", dir.path().display()))
            .env("COUNT", dir.path().join("count"))
            .output()
            .unwrap()
    }

    #[test]
    fn the_restore_waits_until_the_old_etcd_container_is_gone() {
        let sock = "unix:///var/run/containerd/containerd.sock";
        let wait = wait_etcd_stopped(sock, std::time::Duration::from_secs(5));
        assert!(wait.contains("crictl --runtime-endpoint unix:///var/run/containerd/containerd.sock ps -q --name '^etcd$'"));
        // Running for three looks, then gone.
        let stops = r#"n=$(cat "$COUNT" 2>/dev/null || echo 0); echo $((n + 1)) > "$COUNT"; [ "$n" -ge 3 ] || echo 3f2a9c1d"#;
        let out = sh_with_crictl(&wait, stops);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let short = wait_etcd_stopped(sock, std::time::Duration::from_secs(1));
        let out = sh_with_crictl(&short, "echo 3f2a9c1d");
        assert_eq!(out.status.code(), Some(3));
        assert!(String::from_utf8_lossy(&out.stderr)
            .contains("the old etcd container still runs 1s after"));
    }

    #[test]
    fn stopping_parks_both_manifests_and_starting_puts_them_back_repeatably() {
        let root = tempfile::tempdir().unwrap();
        let m = root.path().join("etc/kubernetes/manifests");
        std::fs::create_dir_all(&m).unwrap();
        std::fs::write(m.join("etcd.yaml"), ETCD_YAML).unwrap();
        std::fs::write(m.join("kube-apiserver.yaml"), "api").unwrap();
        std::fs::write(m.join("kube-scheduler.yaml"), "sched").unwrap();
        for _ in 0..2 {
            let out = sh(&stop_control_plane(), root.path(), b"");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let parked = root.path().join("etc/kubernetes/gt-restore-stopped");
        assert!(parked.join("etcd.yaml").is_file() && parked.join("kube-apiserver.yaml").is_file());
        assert!(!m.join("etcd.yaml").exists() && m.join("kube-scheduler.yaml").exists());
        for _ in 0..2 {
            assert!(sh(&start_manifest("etcd.yaml"), root.path(), b"")
                .status
                .success());
        }
        assert!(m.join("etcd.yaml").is_file());
        let out = sh(&start_manifest("nothing.yaml"), root.path(), b"");
        assert_eq!(out.status.code(), Some(3));
    }

    #[test]
    fn a_restore_points_only_the_data_volume_at_the_fresh_directory() {
        let script = restore_member(
            RestoreTool::Shipped,
            &RestoredMember {
                name: "bettley",
                initial_cluster: "bettley=https://10.4.0.11:2380,cargyll=https://10.4.0.12:2380",
                peer_url: "https://10.4.0.11:2380",
                token: "gt-restore-20261130T210000Z",
                data_dir: "/var/lib/etcd-restored-20261130T210000Z",
            },
        );
        assert!(script.starts_with(
            "\"${GT_HOST_ROOT}/var/lib/gt-restore/etcdutl\" snapshot restore \"${GT_HOST_ROOT}/var/lib/gt-restore/snapshot.db\" \
             --name bettley --initial-cluster bettley=https://10.4.0.11:2380,cargyll=https://10.4.0.12:2380 \
             --initial-cluster-token gt-restore-20261130T210000Z --initial-advertise-peer-urls https://10.4.0.11:2380 \
             --data-dir \"${GT_HOST_ROOT}\"/var/lib/etcd-restored-20261130T210000Z || exit 3\n"
        ));
        // The manifest part, with a stand-in etcdutl that only makes the directory.
        let root = tempfile::tempdir().unwrap();
        let parked = root.path().join("etc/kubernetes/gt-restore-stopped");
        std::fs::create_dir_all(&parked).unwrap();
        std::fs::write(parked.join("etcd.yaml"), ETCD_YAML).unwrap();
        let work = root.path().join("var/lib/gt-restore");
        std::fs::create_dir_all(&work).unwrap();
        std::fs::write(work.join("etcdutl"), "#!/bin/sh\nexit 0\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(work.join("etcdutl"), std::fs::Permissions::from_mode(0o700))
            .unwrap();
        let out = sh(&script, root.path(), b"");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let yaml = std::fs::read_to_string(parked.join("etcd.yaml")).unwrap();
        assert_eq!(
            yaml,
            ETCD_YAML.replace(
                "      path: /var/lib/etcd\n",
                "      path: /var/lib/etcd-restored-20261130T210000Z\n"
            )
        );
        // Again, from a manifest an earlier restore repointed: still one volume.
        let out = sh(
            &script.replace("20261130T210000Z", "20261201T000000Z"),
            root.path(),
            b"",
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(std::fs::read_to_string(parked.join("etcd.yaml"))
            .unwrap()
            .contains("      path: /var/lib/etcd-restored-20261201T000000Z\n      type: DirectoryOrCreate\n    name: etcd-data"));
    }
}
