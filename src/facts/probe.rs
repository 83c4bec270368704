//! The probe each host runs (one POSIX sh script, one round trip) and the
//! cluster query run through one control plane; parsing what comes back.
//!
//! Both print sections opened by `@@gt NAME` lines and closed by `@@gt end`,
//! so that a cut-short answer is told apart from a host that has nothing.

use super::{ApiReadiness, HostFacts, NodeFacts};
use crate::kube;
use crate::spec::Arch;
use std::collections::BTreeMap;

/// The probe script (src/facts/probe.sh).
pub const PROBE_SCRIPT: &str = include_str!("probe.sh");

pub const MARK: &str = "@@gt ";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    #[error("the probe's answer was cut short (no end marker): {0}")]
    Truncated(String),
}

/// Why the cluster query gave no Node list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterQueryError {
    /// The answer itself could not be read (cut short).
    #[error("{cause}; stderr: {stderr}")]
    Unreadable { cause: ProbeError, stderr: String },
    #[error("kubectl get nodes failed (exit {code}): {stderr}")]
    GetNodes { code: i32, stderr: String },
    /// kubectl succeeded but printed something else (the parser's reason).
    #[error("kubectl get nodes -o json printed what is not a node list: {0}")]
    NotANodeList(String),
}

/// Splits sectioned output into (name, body) in order. Text before the first
/// marker (a login banner, a warning) is ignored.
pub fn sections(text: &str) -> Result<BTreeMap<String, String>, ProbeError> {
    let mut out = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in text.split_inclusive('\n') {
        if let Some(name) = line.trim_end().strip_prefix(MARK) {
            if let Some((n, body)) = current.take() {
                out.insert(n, body);
            }
            if name == "end" {
                return Ok(out);
            }
            current = Some((name.to_string(), String::new()));
        } else if let Some((_, body)) = current.as_mut() {
            body.push_str(line);
        }
    }
    let tail: String = text
        .chars()
        .rev()
        .take(200)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    Err(ProbeError::Truncated(tail.trim().to_string()))
}

/// A sectioned answer read back (`kube::script::sections_at_once`, the
/// cluster, etcd and workloads queries): each section's text on stdout and
/// on stderr, and the exit status the script printed after it (a section
/// named `NAME.exit`).
#[derive(Debug, Default)]
pub struct Answers {
    stdout: BTreeMap<String, String>,
    stderr: BTreeMap<String, String>,
}

impl Answers {
    /// A whole answer: `stdout` must end with the end marker (else the
    /// session was cut short: `Truncated`); `stderr` only explains failures
    /// and is read as far as it goes.
    pub fn read(stdout: &str, stderr: &str) -> Result<Answers, ProbeError> {
        Ok(Answers {
            stdout: sections(stdout)?,
            stderr: Answers::as_far_as_it_goes(stderr),
        })
    }

    /// Both read as far as they go: a session cut short keeps the sections
    /// it finished (a section without its exit status has no `exit`).
    pub fn read_partial(stdout: &str, stderr: &str) -> Answers {
        Answers {
            stdout: Answers::as_far_as_it_goes(stdout),
            stderr: Answers::as_far_as_it_goes(stderr),
        }
    }

    fn as_far_as_it_goes(text: &str) -> BTreeMap<String, String> {
        sections(&format!("{text}\n{MARK}end\n")).unwrap_or_default()
    }

    /// The exit status `name` printed, if it printed one.
    pub fn exit(&self, name: &str) -> Option<i32> {
        self.stdout
            .get(&format!("{name}.exit"))
            .and_then(|c| c.trim().parse().ok())
    }

    /// What `name` printed on stdout (empty when it printed nothing).
    pub fn stdout(&self, name: &str) -> &str {
        self.stdout.get(name).map_or("", String::as_str)
    }

    /// What `name` printed on stderr.
    pub fn stderr(&self, name: &str) -> &str {
        self.stderr.get(name).map_or("", String::as_str)
    }

    /// The sections that answered on stdout, in name order (not their
    /// `.exit` sections).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.stdout
            .keys()
            .map(String::as_str)
            .filter(|k| !k.ends_with(".exit"))
    }
}

/// A host's facts from the probe's stdout.
pub fn parse_probe(stdout: &str) -> Result<HostFacts, ProbeError> {
    let s = sections(stdout)?;
    let mut f = HostFacts::default();
    for line in s.get("host").map(String::as_str).unwrap_or("").lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        match key {
            "hostname" if !value.is_empty() => f.hostname = Some(value.to_string()),
            "machine" if !value.is_empty() => {
                f.arch = Some(
                    Arch::parse(value)
                        .map(|a| a.as_str().to_string())
                        .unwrap_or_else(|| value.to_string()),
                )
            }
            // Installed but silent about its version: still installed.
            "kubeadm" => {
                f.kubeadm_version = Some(version_in(value).unwrap_or_else(|| "unknown".into()))
            }
            "kubelet" => {
                f.kubelet_version = Some(version_in(value).unwrap_or_else(|| "unknown".into()))
            }
            "kubelet_active" => f.kubelet_active = value == "active",
            "admin_conf" => f.admin_conf = value == "yes",
            "kubelet_conf" => f.kubelet_conf = value == "yes",
            "kubelet_server" if !value.is_empty() => f.kubelet_server = Some(value.to_string()),
            "manifest" if !value.is_empty() => f.manifests.push(value.to_string()),
            "static_pod" => {
                let (component, image) = value.split_once(' ').unwrap_or((value, ""));
                if let Some(tag) = kube::versions::image_tag(image) {
                    f.static_pods.insert(component.to_string(), tag.to_string());
                }
            }
            _ => {}
        }
    }
    f.manifests.sort();
    f.manifests.dedup();
    if let Some(software) = s.get("software") {
        f.software = Some(Box::new(super::HostSoftware::parse(
            software,
            s.get("containerd.toml").map(String::as_str),
            s.get("madison").map(String::as_str),
        )));
    }
    if let Some(pem) = s.get("ca.crt").filter(|p| p.contains("BEGIN CERTIFICATE")) {
        f.ca_pin = kube::pin::ca_pin_from_pem(pem).ok();
    }
    Ok(f)
}

/// `v1.32.4` out of `v1.32.4` or `Kubernetes v1.32.4`.
fn version_in(text: &str) -> Option<String> {
    text.split_whitespace()
        .find(|w| w.starts_with('v') && w[1..].starts_with(|c: char| c.is_ascii_digit()))
        .map(str::to_string)
}

/// Nodes and readiness in one round trip and one session, through a
/// control plane's admin kubeconfig: the nodes, the endpoint's `/readyz`,
/// kube-system/kubeadm-config, then each control plane's own `/readyz`
/// (`api_servers`: name and address; each bounded by `per_server`). The
/// kubectls run at once (`kube::script::sections_at_once`): each is a slow
/// start on a Pi, so the answer takes the slowest, not their sum. Prints
/// nothing on a host without an admin kubeconfig, so that it can start
/// before the probe has said whether there is one.
pub fn cluster_query_script(
    api_servers: &[(String, std::net::IpAddr)],
    per_server: std::time::Duration,
) -> String {
    let mut queries = vec![
        ("nodes".to_string(), kube::get_nodes_json()),
        ("readyz".to_string(), kube::get_readyz_verbose()),
        (
            KUBEADM_CONFIG.to_string(),
            kube::etcd_snapshot::get_kubeadm_config(),
        ),
    ];
    for (name, address) in api_servers {
        queries.push((
            format!("{API_SERVER}{name}"),
            kube::readyz_verbose_of(address, per_server),
        ));
    }
    format!(
        "{NOTHING_WITHOUT_ADMIN_CONF}{}",
        kube::script::sections_at_once(&queries, MARK)
    )
}

/// Starts a script that may run before the probe has said whether the host
/// has an admin kubeconfig (the file probe.sh reports as `admin_conf`): on a
/// host without one it ends at once, having run nothing.
pub const NOTHING_WITHOUT_ADMIN_CONF: &str =
    "[ -f \"${GT_HOST_ROOT}/etc/kubernetes/admin.conf\" ] || exit 0\n";

/// The cluster query's answer from its (stdout, stderr), each complete:
/// their sections one after the other, then the end marker.
pub fn join_cluster_answers<'a>(
    answers: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> (String, String) {
    let (mut stdout, mut stderr) = (String::new(), String::new());
    for (out, err) in answers {
        for (joined, part) in [(&mut stdout, out), (&mut stderr, err)] {
            joined.push_str(part);
            if !joined.is_empty() && !joined.ends_with('\n') {
                joined.push('\n');
            }
        }
    }
    stdout.push_str(&format!("{MARK}end\n"));
    stderr.push_str(&format!("{MARK}end\n"));
    (stdout, stderr)
}

/// The section of kube-system/kubeadm-config (the cluster's version record).
const KUBEADM_CONFIG: &str = "kubeadm-config";

/// Section prefix of a control plane's own `/readyz` in the cluster query.
const API_SERVER: &str = "readyz@";

/// What the cluster query found: the nodes (or why they could not be read),
/// the API server's readiness through the endpoint, and each control
/// plane's own (only those whose section came back).
pub fn parse_cluster_query(stdout: &str, stderr: &str) -> ClusterQuery {
    let a = match Answers::read(stdout, stderr) {
        Ok(a) => a,
        Err(cause) => {
            let reason = ClusterQueryError::Unreadable {
                cause,
                stderr: stderr.trim().to_string(),
            };
            let api = ApiReadiness {
                ready: false,
                error: Some(reason.to_string()),
                ..Default::default()
            };
            return ClusterQuery {
                nodes: Err(reason),
                api,
                api_servers: BTreeMap::new(),
                kubernetes_version: None,
            };
        }
    };
    let exit = |k: &str| a.exit(k).unwrap_or(-1);
    let nodes = match exit("nodes") {
        0 => kube::nodes::parse(a.stdout("nodes"))
            .map(|nodes| {
                nodes
                    .into_iter()
                    .map(|(name, node)| (name, NodeFacts::from(node)))
                    .collect()
            })
            .map_err(|e| ClusterQueryError::NotANodeList(e.to_string())),
        code => Err(ClusterQueryError::GetNodes {
            code,
            stderr: a.stderr("nodes").trim().to_string(),
        }),
    };
    let api = kube::readyz::parse(exit("readyz"), a.stdout("readyz"), a.stderr("readyz")).into();
    let api_servers = a
        .names()
        .filter(|k| k.starts_with(API_SERVER))
        .map(|key| {
            let readiness = kube::readyz::parse(exit(key), a.stdout(key), a.stderr(key));
            (key[API_SERVER.len()..].to_string(), readiness.into())
        })
        .collect();
    let kubernetes_version = (exit(KUBEADM_CONFIG) == 0)
        .then(|| kube::versions::cluster_configuration_version(a.stdout(KUBEADM_CONFIG)))
        .flatten();
    ClusterQuery {
        nodes,
        api,
        api_servers,
        kubernetes_version,
    }
}

/// What the cluster query found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterQuery {
    /// The Node objects, or why they could not be read.
    pub nodes: Result<BTreeMap<String, NodeFacts>, ClusterQueryError>,
    /// `/readyz` through the endpoint.
    pub api: ApiReadiness,
    /// Each control plane's own `/readyz`, by node name.
    pub api_servers: BTreeMap<String, ApiReadiness>,
    /// The ClusterConfiguration's `kubernetesVersion`, when it could be read.
    pub kubernetes_version: Option<String>,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::process::Command;

    fn run_probe(root: &std::path::Path) -> String {
        // A PATH without kubeadm, kubelet or systemctl (missing tools are facts).
        run_probe_with(root, "/usr/bin:/bin", "")
    }

    /// The probe under `root` with `path` and `prelude` (the variables gt
    /// sets before it); its stdout.
    pub(crate) fn run_probe_with(root: &std::path::Path, path: &str, prelude: &str) -> String {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("{prelude}\n{PROBE_SCRIPT}"))
            .env("GT_HOST_ROOT", root)
            .env("PATH", path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn a_bare_host_has_no_kubernetes_files_and_no_tools() {
        let root = tempfile::tempdir().unwrap();
        let f = parse_probe(&run_probe(root.path())).unwrap();
        assert!(f.hostname.is_some());
        assert!(f.arch.is_some());
        assert_eq!(f.kubeadm_version, None);
        assert_eq!(f.kubelet_version, None);
        assert!(!f.kubelet_active && !f.admin_conf && !f.kubelet_conf);
        assert!(f.manifests.is_empty());
        assert!(!f.is_joined());
    }

    #[test]
    fn a_control_planes_files_are_read_under_the_host_root() {
        let root = tempfile::tempdir().unwrap();
        let k = root.path().join("etc/kubernetes");
        std::fs::create_dir_all(k.join("manifests")).unwrap();
        std::fs::create_dir_all(k.join("pki")).unwrap();
        std::fs::write(k.join("admin.conf"), "apiVersion: v1\n").unwrap();
        std::fs::write(
            k.join("kubelet.conf"),
            "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: AAAA\n    tls-server-name: kubernetes\n    server: https://10.4.0.10:6443\n  name: default-cluster\n",
        )
        .unwrap();
        for m in ["kube-scheduler.yaml", "etcd.yaml", "kube-apiserver.yaml"] {
            std::fs::write(k.join("manifests").join(m), "").unwrap();
        }
        // As kubeadm writes them: `image:` under the container's list item.
        std::fs::write(
            k.join("manifests/kube-apiserver.yaml"),
            "spec:\n  containers:\n  - command:\n    - kube-apiserver\n    image: registry.k8s.io/kube-apiserver:v1.33.2\n    name: kube-apiserver\n",
        )
        .unwrap();
        std::fs::write(
            k.join("manifests/kube-scheduler.yaml"),
            "spec:\n  containers:\n  - image: registry.k8s.io/kube-scheduler:v1.32.4\n    name: kube-scheduler\n",
        )
        .unwrap();
        let ca = rcgen::generate_simple_self_signed(vec!["kubernetes".into()]).unwrap();
        std::fs::write(k.join("pki/ca.crt"), ca.cert.pem()).unwrap();

        let f = parse_probe(&run_probe(root.path())).unwrap();
        assert!(f.admin_conf && f.kubelet_conf);
        assert_eq!(f.kubelet_server.as_deref(), Some("https://10.4.0.10:6443"));
        assert_eq!(
            f.manifests,
            vec!["etcd.yaml", "kube-apiserver.yaml", "kube-scheduler.yaml"]
        );
        assert!(f.has_control_plane_manifests());
        assert_eq!(
            f.static_pods,
            BTreeMap::from([
                ("kube-apiserver".to_string(), "v1.33.2".to_string()),
                ("kube-scheduler".to_string(), "v1.32.4".to_string()),
            ])
        );
        let expected = kube::pin::pin_of_spki(&rcgen::PublicKeyData::subject_public_key_info(
            &ca.signing_key,
        ));
        assert_eq!(f.ca_pin, Some(expected));
    }

    #[test]
    fn versions_and_arch_are_normalised() {
        let out = "banner\n@@gt host\nhostname=fenn\nmachine=aarch64\nkubeadm=v1.32.4\nkubelet=Kubernetes v1.32.4\n\
                   kubelet_active=active\n@@gt ca.crt\n@@gt end\n";
        let f = parse_probe(out).unwrap();
        assert_eq!(f.hostname.as_deref(), Some("fenn"));
        assert_eq!(f.arch.as_deref(), Some("arm64"));
        assert_eq!(f.kubeadm_version.as_deref(), Some("v1.32.4"));
        assert_eq!(f.kubelet_version.as_deref(), Some("v1.32.4"));
        assert!(f.kubelet_active);
    }

    #[test]
    fn a_cut_short_answer_is_an_error_not_an_empty_host() {
        let e = parse_probe("@@gt host\nhostname=fenn\n").unwrap_err();
        assert!(e.to_string().contains("cut short"), "{e}");
    }

    #[test]
    fn answers_keep_each_sections_output_streams_and_exit_status() {
        // What `sections_at_once` prints, run by a real sh.
        let script = kube::script::sections_at_once(
            &[
                (
                    "a".to_string(),
                    "echo one; echo oops >&2; (exit 3)".to_string(),
                ),
                ("b".to_string(), "printf 'no newline'".to_string()),
            ],
            MARK,
        );
        let out = std::process::Command::new("sh")
            .args(["-c", &format!("( {script} ); echo '{MARK}end'")])
            .output()
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        );
        let a = Answers::read(&stdout, &stderr).unwrap();
        assert_eq!(a.names().collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(
            (a.exit("a"), a.stdout("a"), a.stderr("a")),
            (Some(3), "one\n\n", "oops\n")
        );
        assert_eq!((a.exit("b"), a.stdout("b")), (Some(0), "no newline\n"));
        assert_eq!(a.stderr("b").trim(), "");
        assert_eq!((a.exit("c"), a.stdout("c")), (None, ""));
        // Cut short before b's status: whole, it is an error; partial keeps a.
        let cut = &stdout[..stdout.find("@@gt b.exit").unwrap()];
        assert!(Answers::read(cut, &stderr).is_err());
        let p = Answers::read_partial(cut, &stderr);
        assert_eq!((p.exit("a"), p.exit("b")), (Some(3), None));
        assert_eq!(p.stdout("b").trim_end(), "no newline");
    }

    #[test]
    fn the_cluster_query_splits_every_kubectl_answer() {
        let script = cluster_query_script(
            &[
                ("bettley".into(), "10.4.0.11".parse().unwrap()),
                ("cargyll".into(), "10.4.0.12".parse().unwrap()),
            ],
            std::time::Duration::from_secs(5),
        );
        // Stand-in kubectl: nodes from a list; the endpoint failing on etcd;
        // bettley's own API server fine, cargyll's refusing connections.
        let kubectl = "kubectl() { case \"$*\" in *'get nodes'*) echo '{\"items\":[{\"metadata\":{\"name\":\"bettley\"}}]}';; \
                       *kubeadm-config*) printf 'data:\\n  ClusterConfiguration: |\\n    kubernetesVersion: v1.32.4\\n';; \
                       *10.4.0.11:6443*) echo '[+]ping ok'; echo '[+]etcd ok'; echo 'readyz check passed';; \
                       *10.4.0.12:6443*) echo 'The connection to the server 10.4.0.12:6443 was refused - did you specify the right host or port?' >&2; return 1;; \
                       *) echo '[+]ping ok'; echo '[-]etcd failed: reason withheld'; echo 'readyz check failed'; echo 'warn' >&2; return 1;; esac; }\n";
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("etc/kubernetes")).unwrap();
        std::fs::write(root.path().join("etc/kubernetes/admin.conf"), "").unwrap();
        let run = |root: &std::path::Path, script: &str| {
            let out = Command::new("sh")
                .arg("-c")
                .arg(format!("{kubectl}{script}"))
                .env("GT_HOST_ROOT", root)
                .output()
                .unwrap();
            (
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        };
        let (out, err) = run(root.path(), &script);
        let (stdout, stderr) = join_cluster_answers([(out.as_str(), err.as_str())]);
        let q = parse_cluster_query(&stdout, &stderr);
        assert_eq!(q.nodes.unwrap().keys().collect::<Vec<_>>(), vec!["bettley"]);
        assert!(!q.api.ready);
        assert_eq!(q.api.failed_checks, vec!["etcd"]);
        assert_eq!(q.api_servers.len(), 2, "{:?}", q.api_servers);
        assert_eq!(q.kubernetes_version.as_deref(), Some("v1.32.4"));
        assert!(q.api_servers["bettley"].ready);
        let cargyll = &q.api_servers["cargyll"];
        assert!(!cargyll.ready);
        assert!(
            cargyll
                .error
                .as_deref()
                .unwrap()
                .contains("10.4.0.12:6443 was refused"),
            "{cargyll:?}"
        );
        assert!(script.contains("--server https://10.4.0.12:6443 --request-timeout=5s"));
        // Without an admin kubeconfig no kubectl runs.
        let bare = tempfile::tempdir().unwrap();
        assert_eq!(run(bare.path(), &script), (String::new(), String::new()));
    }

    #[test]
    fn the_cluster_query_asks_each_kubectl_once_all_at_once() {
        let servers: Vec<(String, std::net::IpAddr)> = (1..=7)
            .map(|i| (format!("cp{i}"), format!("10.4.0.{i}").parse().unwrap()))
            .collect();
        let script = cluster_query_script(&servers, std::time::Duration::from_secs(5));
        assert_eq!(script.matches("kubectl ").count(), 3 + servers.len());
        for (name, _) in &servers {
            assert_eq!(
                script
                    .matches(&format!("echo '@@gt readyz@{name}'; "))
                    .count(),
                1
            );
        }
        // Each in its own background job.
        assert_eq!(script.matches("\" &\n").count(), 3 + servers.len());
    }

    #[test]
    fn joined_answers_keep_every_section_and_end_once() {
        let (out, err) = join_cluster_answers([
            ("@@gt nodes\n{}\n@@gt nodes.exit\n0", "@@gt nodes\n"),
            (
                "@@gt readyz\nok\n@@gt readyz.exit\n0\n",
                "@@gt readyz\nwarn",
            ),
        ]);
        assert_eq!(
            out,
            "@@gt nodes\n{}\n@@gt nodes.exit\n0\n@@gt readyz\nok\n@@gt readyz.exit\n0\n@@gt end\n"
        );
        assert_eq!(err, "@@gt nodes\n@@gt readyz\nwarn\n@@gt end\n");
    }

    #[test]
    fn a_failing_get_nodes_keeps_kubectls_reason() {
        let stdout =
            "@@gt nodes\n\n@@gt nodes.exit\n1\n@@gt readyz\n\n@@gt readyz.exit\n1\n@@gt end\n";
        let stderr = "@@gt nodes\nThe connection to the server 10.4.0.10:6443 was refused\n@@gt readyz\nThe connection to the server 10.4.0.10:6443 was refused\n@@gt end\n";
        let q = parse_cluster_query(stdout, stderr);
        assert!(q
            .nodes
            .unwrap_err()
            .to_string()
            .contains("exit 1): The connection to the server"));
        assert!(q.api.error.unwrap().contains("was refused"));
        assert!(q.api_servers.is_empty());
    }
}
