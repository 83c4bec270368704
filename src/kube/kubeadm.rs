//! kubeadm command lines and configuration documents (docs/kubeadm.md). Secrets
//! travel only in the documents, which apply sends on stdin: every command
//! line here is safe to log and to show in a remote process list.

use super::secret::{BootstrapToken, CertificateKey};
use crate::spec::{Node, Spec, Taint, TokenTtl};
use crate::transport::shell_join;
use serde_json::{json, Value};
use std::time::Duration;

pub const API_VERSION: &str = "kubeadm.k8s.io/v1beta4";
/// kubeadm reads its config from a file; `/dev/stdin` keeps it off disk and out of argv.
const CONFIG_FROM_STDIN: &str = "--config=/dev/stdin";

/// `--ignore-preflight-errors=a,b` when the file names checks to ignore.
fn ignore_flag(spec: &Spec) -> Vec<String> {
    if spec.preflight.ignore.is_empty() {
        vec![]
    } else {
        vec![format!(
            "--ignore-preflight-errors={}",
            spec.preflight.ignore.join(",")
        )]
    }
}

/// `kubeadm init` reading Init- and ClusterConfiguration from stdin. The
/// token comes from the config (so gt knows it); nothing secret is printed.
pub fn init_command(spec: &Spec) -> String {
    let mut w = vec![
        "kubeadm".to_string(),
        "init".into(),
        CONFIG_FROM_STDIN.into(),
        "--skip-token-print".into(),
    ];
    w.extend(ignore_flag(spec));
    shell_join(&w)
}

/// `kubeadm join` reading a JoinConfiguration from stdin.
pub fn join_command(spec: &Spec) -> String {
    let mut w = vec![
        "kubeadm".to_string(),
        "join".into(),
        CONFIG_FROM_STDIN.into(),
    ];
    w.extend(ignore_flag(spec));
    shell_join(&w)
}

/// A Go duration kubeadm and kubectl accept: `15m0s`. Whole seconds (a
/// fraction is dropped) and never below `1s`: both tools read `0s` as "no
/// limit" (a token that never expires, a drain that waits forever).
pub fn go_duration(d: Duration) -> String {
    let s = d.as_secs().max(1);
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

/// `kubernetesVersion`: always one exact release, the one installed on
/// every host (never `stable-1.32`, which kubeadm would resolve on its own
/// through dl.k8s.io, to a patch the hosts may not have).
pub fn kubernetes_version(release: &Release) -> String {
    format!("v{}.{}.{}", release.0, release.1, release.2)
}

/// An exact Kubernetes release, `(1, 32, 4)`. Displays, serialises and
/// parses as `v1.32.4` (the leading `v` optional when parsed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Release(pub u32, pub u32, pub u32);

impl Release {
    /// `(1, 32)`.
    pub fn minor(&self) -> (u32, u32) {
        (self.0, self.1)
    }
}

impl std::fmt::Display for Release {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "v{}.{}.{}", self.0, self.1, self.2)
    }
}

impl std::str::FromStr for Release {
    type Err = String;
    fn from_str(s: &str) -> Result<Release, String> {
        let bad = || format!("{s:?} is not a release like v1.33.2");
        let mut parts = s.strip_prefix('v').unwrap_or(s).split('.');
        let mut next = || -> Result<u32, String> {
            let p = parts.next().ok_or_else(bad)?;
            if p.is_empty() || p.len() > 9 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            p.parse().map_err(|_| bad())
        };
        let r = Release(next()?, next()?, next()?);
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(r)
    }
}

impl serde::Serialize for Release {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Release {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Release, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// `kubeadm version -o short`: what init's `kubernetesVersion` is when the
/// file gives only a minor (the installed kubeadm is the resolved patch).
pub fn version_command() -> String {
    "kubeadm version -o short".into()
}

/// `v1.32.4` (kubeadm version -o short) as a release.
pub fn parse_version(out: &str) -> Option<Release> {
    let v = crate::spec::KubeVersion::parse(out.trim())?;
    Some(Release(v.major, v.minor, v.patch?))
}

fn taints_json(taints: &[Taint]) -> Vec<Value> {
    taints
        .iter()
        .map(|t| {
            let mut v = json!({"key": t.key, "effect": t.effect.as_str()});
            if !t.value.is_empty() {
                v["value"] = json!(t.value);
            }
            v
        })
        .collect()
}

fn node_registration(spec: &Spec, node: &Node, taints: &[Taint]) -> Value {
    let mut reg = json!({
        "name": node.name.as_str(),
        "criSocket": spec.cluster.cri_socket,
        // Registered with its taints: no window in which pods land on a GPU node untainted.
        "taints": taints_json(taints),
    });
    // And with the labels its kubelet may set on itself (kubeadm passes
    // them as `--node-labels`, which the kubelet applies when it registers
    // the Node, never again): no kubectl after the join for them.
    let labels = registered_labels(node);
    if !labels.is_empty() {
        reg["kubeletExtraArgs"] = json!([{"name": "node-labels", "value": labels}]);
    }
    reg
}

/// `--node-labels`' value for `node`: its labels its kubelet may set
/// (`LabelKey::kubelet_may_set`), `key=value` joined by commas (valid label
/// keys and values hold no comma or `=`), in key order.
fn registered_labels(node: &Node) -> String {
    node.labels
        .iter()
        .filter(|(k, _)| k.kubelet_may_set())
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Documents separated by `---` lines: YAML multi-document, and JSON is YAML.
fn documents(docs: &[Value]) -> Vec<u8> {
    docs.iter()
        .map(|d| serde_json::to_string_pretty(d).expect("JSON values serialize"))
        .collect::<Vec<_>>()
        .join("\n---\n")
        .into_bytes()
}

/// What `kubeadm init` reads on stdin. `nodeRegistration.taints` REPLACES
/// kubeadm's default control-plane taint, so it is listed with the node's own.
pub fn init_config(
    spec: &Spec,
    node: &Node,
    token: &BootstrapToken,
    ttl: TokenTtl,
    description: &str,
    release: &Release,
) -> Vec<u8> {
    let mut taints = vec![Taint::control_plane()];
    taints.extend(node.taints.iter().cloned());
    let init = json!({
        "apiVersion": API_VERSION,
        "kind": "InitConfiguration",
        "bootstrapTokens": [{
            "token": token.expose(),
            "ttl": go_duration(ttl.get()),
            "description": description,
            "usages": ["signing", "authentication"],
            "groups": ["system:bootstrappers:kubeadm:default-node-token"],
        }],
        "localAPIEndpoint": {"advertiseAddress": node.address.to_string(), "bindPort": 6443},
        "nodeRegistration": node_registration(spec, node, &taints),
    });
    documents(&[init, cluster_configuration(spec, release)])
}

/// The cluster's ClusterConfiguration at an exact release.
fn cluster_configuration(spec: &Spec, release: &Release) -> Value {
    json!({
        "apiVersion": API_VERSION,
        "kind": "ClusterConfiguration",
        "clusterName": spec.cluster.name,
        "controlPlaneEndpoint": spec.cluster.endpoint.to_string(),
        "kubernetesVersion": kubernetes_version(release),
        "networking": {
            "podSubnet": spec.cluster.pod_cidr.to_string(),
            "serviceSubnet": spec.cluster.service_cidr.to_string(),
        },
    })
}

/// What `kubeadm init phase upload-certs` reads on stdin: the cluster's
/// configuration at its exact release. Without a configuration kubeadm
/// defaults `kubernetesVersion` to `stable-1` and asks dl.k8s.io what that
/// is (a warning and a wait on a host without internet).
pub fn upload_certs_config(spec: &Spec, release: &Release) -> Vec<u8> {
    documents(&[cluster_configuration(spec, release)])
}

/// What `kubeadm join` reads on stdin: discovery pinned to the CA gt
/// computed; for a control plane, its advertise address and the key of the
/// uploaded certificates.
pub fn join_config(
    spec: &Spec,
    node: &Node,
    token: &BootstrapToken,
    ca_pin: &str,
    certificate_key: Option<&CertificateKey>,
) -> Vec<u8> {
    let mut taints = vec![];
    if node.is_control_plane() {
        taints.push(Taint::control_plane());
    }
    taints.extend(node.taints.iter().cloned());
    let mut cfg = json!({
        "apiVersion": API_VERSION,
        "kind": "JoinConfiguration",
        "discovery": {
            "bootstrapToken": {
                "apiServerEndpoint": spec.cluster.endpoint.to_string(),
                "token": token.expose(),
                "caCertHashes": [ca_pin],
            },
        },
        "nodeRegistration": node_registration(spec, node, &taints),
    });
    if node.is_control_plane() {
        let mut cp = json!({
            "localAPIEndpoint": {"advertiseAddress": node.address.to_string(), "bindPort": 6443},
        });
        if let Some(k) = certificate_key {
            cp["certificateKey"] = json!(k.expose());
        }
        cfg["controlPlane"] = cp;
    }
    documents(&[cfg])
}

/// A fresh certificate key for joining control planes (printed, never
/// passed), the cluster's configuration on stdin (`upload_certs_config`).
pub fn upload_certs_command() -> String {
    format!("kubeadm init phase upload-certs --upload-certs {CONFIG_FROM_STDIN}")
}

/// The key on the line after `[upload-certs] Using certificate key:`.
pub fn parse_upload_certs(stdout: &str) -> Option<CertificateKey> {
    let mut lines = stdout.lines();
    lines.find(|l| l.trim() == "[upload-certs] Using certificate key:")?;
    CertificateKey::parse(lines.next()?.trim())
}

/// `kubeadm token create` prints only the token (without `--print-join-command`).
pub fn token_create_command(ttl: TokenTtl, description: &str) -> String {
    shell_join(&[
        "kubeadm",
        "token",
        "create",
        "--ttl",
        &go_duration(ttl.get()),
        "--description",
        description,
    ])
}

pub fn parse_token_create(stdout: &str) -> Option<BootstrapToken> {
    BootstrapToken::parse(stdout.trim())
}

/// Deletes by ID: the public half, safe in argv.
pub fn token_delete_command(token_id: &str) -> String {
    shell_join(&["kubeadm", "token", "delete", token_id])
}

/// `kubeadm reset -f`: without `-f` it asks on the terminal.
pub fn reset_command() -> String {
    "kubeadm reset -f".into()
}

/// The reason `kubeadm reset` on a control plane gave for keeping its etcd
/// member: it warns (`[reset] Failed to remove etcd member: ERR, please
/// manually remove this etcd member using etcdctl`) and still exits 0.
pub fn reset_kept_etcd_member(stderr: &str) -> Option<&str> {
    const MARK: &str = "[reset] Failed to remove etcd member: ";
    let line = stderr.lines().find(|l| l.contains(MARK))?;
    let why = &line[line.find(MARK)? + MARK.len()..];
    Some(
        why.split(", please manually remove")
            .next()
            .unwrap_or(why)
            .trim(),
    )
}

/// The cluster CA gt pins joins to (it computes the hash itself).
pub fn read_ca_command() -> String {
    "cat \"${GT_HOST_ROOT}/etc/kubernetes/pki/ca.crt\"".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reset_that_kept_its_etcd_member_is_recognised_from_kubeadms_warning() {
        let stderr = "W0729 00:23:55.555252 3406560 removeetcdmember.go:71] [reset] Failed to remove etcd member: etcdserver: re-configuration failed due to not enough started members, please manually remove this etcd member using etcdctl\n";
        assert_eq!(
            reset_kept_etcd_member(stderr),
            Some("etcdserver: re-configuration failed due to not enough started members")
        );
        assert_eq!(
            reset_kept_etcd_member("[reset] Stopping the kubelet service\n"),
            None
        );
    }

    fn spec() -> Spec {
        crate::spec::load_file(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("cluster.toml"),
        )
        .expect("goldentooth loads")
    }

    #[test]
    fn command_lines_carry_no_secret_and_read_config_from_stdin() {
        let s = spec();
        assert_eq!(
            init_command(&s),
            "kubeadm init --config=/dev/stdin --skip-token-print"
        );
        assert_eq!(join_command(&s), "kubeadm join --config=/dev/stdin");
        assert_eq!(
            token_create_command(ttl(900), "gt apply run-1"),
            "kubeadm token create --ttl 15m0s --description 'gt apply run-1'"
        );
        assert_eq!(
            token_delete_command("abcdef"),
            "kubeadm token delete abcdef"
        );
        assert_eq!(
            upload_certs_command(),
            "kubeadm init phase upload-certs --upload-certs --config=/dev/stdin"
        );
        assert_eq!(reset_command(), "kubeadm reset -f");
    }

    fn ttl(secs: u64) -> TokenTtl {
        TokenTtl::new(Duration::from_secs(secs)).unwrap()
    }

    #[test]
    fn go_durations_are_what_kubeadm_prints() {
        assert_eq!(go_duration(Duration::from_secs(900)), "15m0s");
        assert_eq!(go_duration(Duration::from_secs(5400)), "1h30m0s");
        assert_eq!(go_duration(Duration::from_secs(45)), "45s");
    }

    #[test]
    fn no_duration_is_ever_written_as_zero_which_kubeadm_and_kubectl_read_as_no_limit() {
        assert_eq!(go_duration(Duration::ZERO), "1s");
        assert_eq!(go_duration(Duration::from_millis(500)), "1s");
        assert_eq!(go_duration(Duration::from_nanos(1)), "1s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1s");
    }

    #[test]
    fn a_token_ttl_reaches_kubeadm_only_within_its_bounds() {
        // The smallest and largest TTLs the type admits, as kubeadm gets them.
        let min = TokenTtl::new(TokenTtl::MIN).unwrap();
        let max = TokenTtl::new(TokenTtl::MAX).unwrap();
        assert_eq!(
            token_create_command(min, "gt"),
            "kubeadm token create --ttl 1m0s --description gt"
        );
        assert_eq!(
            token_create_command(max, "gt"),
            "kubeadm token create --ttl 24h0m0s --description gt"
        );
        // Whatever duration is offered, what is built is at least a minute.
        for offered in [0, 1, 999, 59_999, 60_000, 60_999, 86_400_000, 86_400_001] {
            if let Ok(t) = TokenTtl::new(Duration::from_millis(offered)) {
                let cmd = token_create_command(t, "gt");
                let arg = cmd.split_whitespace().nth(4).unwrap();
                assert!(
                    !arg.starts_with('0') && arg != "0s",
                    "{offered}ms gave {cmd}"
                );
                assert!(t.get() >= Duration::from_secs(60), "{offered}ms");
            }
        }
        let s = spec();
        let bettley = s.node("bettley").unwrap();
        let token = BootstrapToken::parse("abcdef.0123456789abcdef").unwrap();
        let text = String::from_utf8(init_config(
            &s,
            bettley,
            &token,
            min,
            "gt",
            &Release(1, 32, 4),
        ))
        .unwrap();
        let init: Value = serde_json::from_str(text.split("\n---\n").next().unwrap()).unwrap();
        assert_eq!(init["bootstrapTokens"][0]["ttl"], "1m0s");
    }

    #[test]
    fn a_worker_joins_with_its_taints_pinned_to_the_ca() {
        let s = spec();
        let velaryon = s.node("velaryon").unwrap();
        let t = BootstrapToken::parse("abcdef.0123456789abcdef").unwrap();
        let cfg: Value =
            serde_json::from_slice(&join_config(&s, velaryon, &t, "sha256:00", None)).unwrap();
        assert_eq!(cfg["kind"], "JoinConfiguration");
        assert_eq!(
            cfg["discovery"]["bootstrapToken"]["apiServerEndpoint"],
            "10.4.0.10:6443"
        );
        assert_eq!(
            cfg["discovery"]["bootstrapToken"]["caCertHashes"],
            json!(["sha256:00"])
        );
        assert_eq!(cfg["nodeRegistration"]["name"], "velaryon");
        assert_eq!(
            cfg["nodeRegistration"]["taints"],
            json!([{"key": "goldentooth.io/gpu", "value": "true", "effect": "NoSchedule"}])
        );
        // v1beta4's list of {name, value}: the kubelet's `--node-labels`.
        assert_eq!(
            cfg["nodeRegistration"]["kubeletExtraArgs"],
            json!([{"name": "node-labels", "value": "goldentooth.io/gpu=nvidia,goldentooth.io/hardware=x86-gpu"}])
        );
        assert!(cfg.get("controlPlane").is_none());
    }

    #[test]
    fn labels_a_kubelet_may_not_set_are_not_registered() {
        let mut s = spec();
        let labels = &mut s
            .nodes
            .iter_mut()
            .find(|n| n.name.as_str() == "fenn")
            .unwrap()
            .labels;
        labels.clear();
        labels.insert(
            "app.kubernetes.io/part-of".to_string().try_into().unwrap(),
            "x".into(),
        );
        let fenn = s.node("fenn").unwrap();
        let t = BootstrapToken::parse("abcdef.0123456789abcdef").unwrap();
        let cfg: Value =
            serde_json::from_slice(&join_config(&s, fenn, &t, "sha256:00", None)).unwrap();
        assert!(
            cfg["nodeRegistration"].get("kubeletExtraArgs").is_none(),
            "{cfg}"
        );
    }

    #[test]
    fn a_control_plane_joins_with_the_certificate_key_and_its_own_address() {
        let s = spec();
        let cargyll = s.node("cargyll").unwrap();
        let t = BootstrapToken::parse("abcdef.0123456789abcdef").unwrap();
        let k = CertificateKey::parse(&"1".repeat(64)).unwrap();
        let cfg: Value =
            serde_json::from_slice(&join_config(&s, cargyll, &t, "sha256:00", Some(&k))).unwrap();
        assert_eq!(cfg["controlPlane"]["certificateKey"], "1".repeat(64));
        assert_eq!(
            cfg["controlPlane"]["localAPIEndpoint"]["advertiseAddress"],
            "10.4.0.12"
        );
        assert_eq!(
            cfg["nodeRegistration"]["taints"],
            json!([{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}])
        );
    }

    #[test]
    fn init_keeps_the_control_plane_taint_and_sets_the_token_ttl() {
        let s = spec();
        let bettley = s.node("bettley").unwrap();
        let t = BootstrapToken::parse("abcdef.0123456789abcdef").unwrap();
        let text = String::from_utf8(init_config(
            &s,
            bettley,
            &t,
            ttl(900),
            "gt",
            &Release(1, 32, 4),
        ))
        .unwrap();
        let docs: Vec<Value> = text
            .split("\n---\n")
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        assert_eq!(docs[0]["kind"], "InitConfiguration");
        assert_eq!(docs[0]["bootstrapTokens"][0]["ttl"], "15m0s");
        assert_eq!(
            docs[0]["nodeRegistration"]["taints"],
            json!([{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}])
        );
        // Registered with its labels too, as a joining node is.
        assert_eq!(
            docs[0]["nodeRegistration"]["kubeletExtraArgs"],
            json!([{"name": "node-labels", "value": "goldentooth.io/hardware=raspberry-pi-4b"}])
        );
        assert_eq!(docs[1]["kind"], "ClusterConfiguration");
        assert_eq!(docs[1]["controlPlaneEndpoint"], "10.4.0.10:6443");
        assert_eq!(docs[1]["kubernetesVersion"], "v1.32.4");
        assert_eq!(docs[1]["networking"]["podSubnet"], "192.168.0.0/16");
        assert_eq!(docs[1]["networking"]["serviceSubnet"], "172.16.0.0/20");
    }

    #[test]
    fn upload_certs_reads_the_clusters_exact_release_never_a_label_kubeadm_looks_up() {
        let text = String::from_utf8(upload_certs_config(&spec(), &Release(1, 33, 3))).unwrap();
        let cfg: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(cfg["kind"], "ClusterConfiguration");
        assert_eq!(cfg["kubernetesVersion"], "v1.33.3");
        assert_eq!(cfg["controlPlaneEndpoint"], "10.4.0.10:6443");
    }

    #[test]
    fn kubeadms_short_version_is_an_exact_release() {
        assert_eq!(version_command(), "kubeadm version -o short");
        assert_eq!(parse_version("v1.32.4\n"), Some(Release(1, 32, 4)));
        assert_eq!(Release(1, 33, 2).to_string(), "v1.33.2");
        assert_eq!("v1.33.2".parse::<Release>(), Ok(Release(1, 33, 2)));
        assert_eq!("1.33.2".parse::<Release>(), Ok(Release(1, 33, 2)));
        for bad in ["", "v1.33", "v1.33.2.1", "v1.33.x", "v1..2", "v1.33.+2"] {
            assert!(bad.parse::<Release>().is_err(), "{bad}");
        }
        assert_eq!(parse_version("v1.32"), None);
        assert_eq!(parse_version(""), None);
    }

    #[test]
    fn the_certificate_key_is_read_from_upload_certs_output() {
        let key = "a".repeat(64);
        let out = format!("[upload-certs] Storing the certificates in Secret \"kubeadm-certs\" in the \"kube-system\" Namespace\n[upload-certs] Using certificate key:\n{key}\n");
        assert_eq!(parse_upload_certs(&out).unwrap().expose(), key);
        assert!(parse_upload_certs("nothing").is_none());
    }
}
