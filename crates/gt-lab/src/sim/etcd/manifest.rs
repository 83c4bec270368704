//! The etcd static Pod manifest kubeadm 1.32 writes (its flags and its two
//! hostPath volumes), and the lab's reader for it: the lab runs whatever the
//! manifest on the host says, as a kubelet does, so an edited manifest (a
//! restored data directory) is what runs.

use super::{CLIENT_PORT, METRICS_PORT, PEER_PORT};
use std::path::{Path, PathBuf};

pub(crate) const ETCD_IMAGE: &str = "registry.k8s.io/etcd:3.5.16-0";
pub(crate) const DATA_DIR: &str = "/var/lib/etcd";
pub(crate) const CERTS_DIR: &str = "/etc/kubernetes/pki/etcd";

/// What the manifest is written from.
pub(crate) struct EtcdManifest<'a> {
    pub(crate) node_name: &'a str,
    pub(crate) advertise_address: &'a str,
    /// `--initial-cluster`: `NAME=https://ADDR:2380,...`.
    pub(crate) initial_cluster: &'a str,
    /// A joining member: `--initial-cluster-state=existing`.
    pub(crate) existing: bool,
}

/// The manifest's YAML, in the layout kubeadm writes (keys sorted).
pub(crate) fn render(m: &EtcdManifest) -> String {
    let a = m.advertise_address;
    let mut flags = vec![
        format!("--advertise-client-urls=https://{a}:{CLIENT_PORT}"),
        format!("--cert-file={CERTS_DIR}/server.crt"),
        "--client-cert-auth=true".to_string(),
        format!("--data-dir={DATA_DIR}"),
        "--experimental-initial-corrupt-check=true".to_string(),
        "--experimental-watch-progress-notify-interval=5s".to_string(),
        format!("--initial-advertise-peer-urls=https://{a}:{PEER_PORT}"),
        format!("--initial-cluster={}", m.initial_cluster),
    ];
    if m.existing {
        flags.push("--initial-cluster-state=existing".into());
    }
    flags.extend([
        format!("--key-file={CERTS_DIR}/server.key"),
        format!("--listen-client-urls=https://127.0.0.1:{CLIENT_PORT},https://{a}:{CLIENT_PORT}"),
        format!("--listen-metrics-urls=http://127.0.0.1:{METRICS_PORT}"),
        format!("--listen-peer-urls=https://{a}:{PEER_PORT}"),
        format!("--name={}", m.node_name),
        format!("--peer-cert-file={CERTS_DIR}/peer.crt"),
        "--peer-client-cert-auth=true".to_string(),
        format!("--peer-key-file={CERTS_DIR}/peer.key"),
        format!("--peer-trusted-ca-file={CERTS_DIR}/ca.crt"),
        "--snapshot-count=10000".to_string(),
        format!("--trusted-ca-file={CERTS_DIR}/ca.crt"),
    ]);
    let mut s = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  annotations:\n    kubeadm.kubernetes.io/etcd.advertise-client-urls: https://{a}:{CLIENT_PORT}\n  creationTimestamp: null\n  labels:\n    component: etcd\n    tier: control-plane\n  name: etcd\n  namespace: kube-system\nspec:\n  containers:\n  - command:\n    - etcd\n"
    );
    for f in flags {
        s.push_str(&format!("    - {f}\n"));
    }
    s.push_str(&format!(
        "    image: {ETCD_IMAGE}\n    imagePullPolicy: IfNotPresent\n    name: etcd\n    resources:\n      requests:\n        cpu: 100m\n        memory: 100Mi\n    volumeMounts:\n    - mountPath: {DATA_DIR}\n      name: etcd-data\n    - mountPath: {CERTS_DIR}\n      name: etcd-certs\n  hostNetwork: true\n  priority: 2000001000\n  priorityClassName: system-node-critical\n  securityContext:\n    seccompProfile:\n      type: RuntimeDefault\n  volumes:\n  - hostPath:\n      path: {CERTS_DIR}\n      type: DirectoryOrCreate\n    name: etcd-certs\n  - hostPath:\n      path: {DATA_DIR}\n      type: DirectoryOrCreate\n    name: etcd-data\nstatus: {{}}\n"
    ));
    s
}

/// The parts of a static Pod the lab acts on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Pod {
    /// The container's command, `etcd --flag=...`.
    pub(crate) command: Vec<String>,
    /// `(volume name, mountPath)` of the container.
    pub(crate) mounts: Vec<(String, String)>,
    /// `(volume name, hostPath path)`.
    pub(crate) host_paths: Vec<(String, String)>,
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// Items of the YAML sequence under `key:` (each item's `k: v` lines, `- `
/// stripped), read as kubeadm and kubectl lay them out.
fn sequence(text: &str, key: &str) -> Vec<Vec<(String, String)>> {
    let lines: Vec<&str> = text.lines().collect();
    let Some(start) = lines.iter().position(|l| l.trim() == format!("{key}:")) else {
        return Vec::new();
    };
    let header = indent(lines[start]);
    let mut items: Vec<Vec<(String, String)>> = Vec::new();
    for l in &lines[start + 1..] {
        let t = l.trim();
        if t.is_empty() {
            continue;
        }
        if indent(l) < header || (indent(l) == header && !t.starts_with("- ")) {
            break;
        }
        let (new_item, body) = match t.strip_prefix("- ") {
            Some(rest) if indent(l) == header || items.is_empty() => (true, rest),
            _ => (false, t),
        };
        if new_item {
            items.push(Vec::new());
        }
        if let (Some(item), Some((k, v))) = (items.last_mut(), body.split_once(':')) {
            item.push((k.trim().to_string(), v.trim().trim_matches('"').to_string()));
        }
    }
    items
}

/// Reads the container command and the volumes of a static Pod manifest.
pub(crate) fn parse(text: &str) -> Pod {
    let lines: Vec<&str> = text.lines().collect();
    let mut command = Vec::new();
    if let Some(start) = lines.iter().position(|l| l.trim() == "- command:") {
        let item_indent = indent(lines[start]) + 2;
        for l in &lines[start + 1..] {
            match l.trim().strip_prefix("- ") {
                Some(arg) if indent(l) == item_indent || indent(l) == item_indent - 2 => {
                    command.push(arg.trim().trim_matches('"').to_string())
                }
                _ => break,
            }
        }
    }
    let field = |item: &Vec<(String, String)>, k: &str| {
        item.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let mounts = sequence(text, "volumeMounts")
        .iter()
        .filter_map(|i| Some((field(i, "name")?, field(i, "mountPath")?)))
        .collect();
    let host_paths = sequence(text, "volumes")
        .iter()
        .filter_map(|i| Some((field(i, "name")?, field(i, "path")?)))
        .collect();
    Pod {
        command,
        mounts,
        host_paths,
    }
}

/// etcd 3.5's flag for writing without fsync.
const NO_FSYNC: &str = "--unsafe-no-fsync";

impl Pod {
    /// The value of `--name=` etc. in the command.
    pub(crate) fn flag(&self, name: &str) -> Option<&str> {
        let prefix = format!("--{name}=");
        self.command.iter().find_map(|a| a.strip_prefix(&prefix))
    }

    /// A path inside the container as a path on the lab machine: through
    /// the hostPath volume mounted there into the host's root; a path no
    /// volume covers lands in the container's own scratch root, which the
    /// host does not see.
    pub(crate) fn host_path(
        &self,
        container_path: &str,
        host_root: &Path,
        scratch: &Path,
    ) -> PathBuf {
        let mut best: Option<(&str, &str)> = None;
        for (name, mount) in &self.mounts {
            let under = container_path == mount
                || container_path.starts_with(&format!("{}/", mount.trim_end_matches('/')));
            if under && best.is_none_or(|(m, _)| mount.len() > m.len()) {
                if let Some((_, hp)) = self.host_paths.iter().find(|(n, _)| n == name) {
                    best = Some((mount, hp));
                }
            }
        }
        match best {
            Some((mount, hp)) => {
                let rest = container_path[mount.len()..].trim_start_matches('/');
                let on_host = host_root.join(hp.trim_start_matches('/'));
                if rest.is_empty() {
                    on_host
                } else {
                    on_host.join(rest)
                }
            }
            None => scratch.join(container_path.trim_start_matches('/')),
        }
    }

    /// One argument as the process on the lab machine needs it: every
    /// absolute path mapped through the volumes, and the loopback the pod
    /// shares with its host (127.0.0.1, localhost) as the host's own address.
    pub(crate) fn host_arg(
        &self,
        arg: &str,
        address: &str,
        host_root: &Path,
        scratch: &Path,
    ) -> String {
        let map_value = |v: &str| -> String {
            if v.starts_with('/') {
                return self.host_path(v, host_root, scratch).display().to_string();
            }
            let mut seen = Vec::new();
            for part in v.split(',') {
                let p = part
                    .replace("://127.0.0.1:", &format!("://{address}:"))
                    .replace("://localhost:", &format!("://{address}:"));
                let p = match p
                    .strip_prefix("127.0.0.1:")
                    .or(p.strip_prefix("localhost:"))
                {
                    Some(port) => format!("{address}:{port}"),
                    None => p,
                };
                if !seen.contains(&p) {
                    seen.push(p);
                }
            }
            seen.join(",")
        };
        match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with('-') => format!("{flag}={}", map_value(value)),
            _ => map_value(arg),
        }
    }

    /// The command's arguments (without the program) as run on the lab machine.
    ///
    /// The lab adds `--unsafe-no-fsync`: every member of a lab shares one
    /// disk, and a write's three fsyncs (leader and followers) took ~50 ms
    /// there, which the latency table already counts in each command's row
    /// and which the lab's state lock made every concurrent command wait
    /// for in turn. Killing a member (a `down` fault, `lab down`) still
    /// keeps what it wrote: the page cache outlives the process.
    pub(crate) fn host_args(&self, address: &str, host_root: &Path, scratch: &Path) -> Vec<String> {
        let mut args: Vec<String> = self
            .command
            .iter()
            .skip(1)
            .map(|a| self.host_arg(a, address, host_root, scratch))
            .collect();
        if !args.iter().any(|a| a.starts_with(NO_FSYNC)) {
            args.push(NO_FSYNC.to_string());
        }
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(existing: bool) -> String {
        render(&EtcdManifest {
            node_name: "cargyll",
            advertise_address: "127.4.0.12",
            initial_cluster: "bettley=https://127.4.0.11:2380,cargyll=https://127.4.0.12:2380",
            existing,
        })
    }

    #[test]
    fn the_manifest_carries_kubeadms_flags_and_volumes() {
        let text = sample(true);
        let pod = parse(&text);
        assert_eq!(pod.command[0], "etcd");
        assert_eq!(pod.flag("name"), Some("cargyll"));
        assert_eq!(pod.flag("data-dir"), Some("/var/lib/etcd"));
        assert_eq!(pod.flag("initial-cluster-state"), Some("existing"));
        assert_eq!(
            pod.flag("initial-advertise-peer-urls"),
            Some("https://127.4.0.12:2380")
        );
        assert_eq!(
            pod.mounts,
            [
                ("etcd-data".to_string(), "/var/lib/etcd".to_string()),
                (
                    "etcd-certs".to_string(),
                    "/etc/kubernetes/pki/etcd".to_string()
                )
            ]
        );
        assert_eq!(
            pod.host_paths,
            [
                (
                    "etcd-certs".to_string(),
                    "/etc/kubernetes/pki/etcd".to_string()
                ),
                ("etcd-data".to_string(), "/var/lib/etcd".to_string())
            ]
        );
        assert_eq!(parse(&sample(false)).flag("initial-cluster-state"), None);
    }

    #[test]
    fn arguments_map_to_the_hosts_root_and_address() {
        let text = sample(false).replace("path: /var/lib/etcd\n", "path: /var/lib/etcd-restored\n");
        let pod = parse(&text);
        let root = Path::new("/lab/hosts/cargyll");
        let scratch = Path::new("/lab/etcd/cargyll-container");
        let args = pod.host_args("127.4.0.12", root, scratch);
        assert!(
            args.contains(&"--data-dir=/lab/hosts/cargyll/var/lib/etcd-restored".to_string()),
            "{args:?}"
        );
        assert!(
            args.contains(&"--listen-client-urls=https://127.4.0.12:2379".to_string()),
            "{args:?}"
        );
        assert!(
            args.contains(&"--listen-metrics-urls=http://127.4.0.12:2381".to_string()),
            "{args:?}"
        );
        assert_eq!(
            args.iter().filter(|a| *a == "--unsafe-no-fsync").count(),
            1,
            "{args:?}"
        );
        assert!(args.contains(
            &"--trusted-ca-file=/lab/hosts/cargyll/etc/kubernetes/pki/etcd/ca.crt".to_string()
        ));
        assert_eq!(
            pod.host_arg("/tmp/snap.db", "127.4.0.12", root, scratch),
            "/lab/etcd/cargyll-container/tmp/snap.db"
        );
        assert_eq!(
            pod.host_arg(
                "--endpoints=https://127.0.0.1:2379",
                "127.4.0.12",
                root,
                scratch
            ),
            "--endpoints=https://127.4.0.12:2379"
        );
        assert_eq!(
            pod.host_arg("member", "127.4.0.12", root, scratch),
            "member"
        );
    }
}
