//! Every kubeadm/kubectl command line gt sends and every output it parses
//! (one place for their syntax; docs/kubeadm.md holds the upstream facts
//! they follow). Parsers return kube's own types (`nodes::Node`,
//! `readyz::Readyz`); what gt keeps of them is for `facts` to decide.

pub mod apt;
pub mod cni;
pub mod etcd;
pub mod etcd_snapshot;
pub mod examples;
pub mod host;
pub mod kubeadm;
pub mod nodes;
pub mod pin;
pub mod readyz;
pub mod script;
pub mod secret;
pub mod upgrade;
pub mod versions;
pub mod workloads;

use crate::transport::shell_join;
use std::time::Duration;

/// The admin kubeconfig kubeadm writes on a control plane, under the host's
/// root (`GT_HOST_ROOT`, empty on real hosts; expanded by the remote shell).
pub const ADMIN_KUBECONFIG: &str = "\"${GT_HOST_ROOT}/etc/kubernetes/admin.conf\"";

/// `kubectl` with the admin kubeconfig: it talks to the control-plane
/// endpoint (through the load balancer).
pub fn kubectl_admin(args: &str) -> String {
    format!("kubectl --kubeconfig {ADMIN_KUBECONFIG} {args}")
}

/// Every Node object, as JSON.
pub fn get_nodes_json() -> String {
    kubectl_admin("get nodes -o json")
}

/// What the watch of Nodes prints of each event: its type, the Node's
/// name, its Ready condition's status and its kubelet's version (`<none>`
/// for what it lacks), columns separated by spaces (kubectl 1.32, read
/// against a server's watch stream: `MODIFIED   fenn      True   v1.32.4`;
/// `--output-watch-events` wraps each object in its event, hence `.object.`).
pub const WATCH_READY_COLUMNS: &str = "custom-columns=EVENT:.type,NAME:.object.metadata.name,READY:.object.status.conditions[?(@.type==\"Ready\")].status,VERSION:.object.status.nodeInfo.kubeletVersion";

/// Every Node as listed (an `ADDED` line each), then one line each time a
/// Node is added, changed or deleted (`nodes::parse_watch_line`), until the
/// API server ends the watch (30 to 60 minutes) or its connection breaks
/// (kubectl then exits 0 and says nothing). Run it under
/// `script::while_stdin_open`, or it outlives gt.
pub fn watch_node_readiness() -> String {
    kubectl_admin(&shell_join(&[
        "get",
        "nodes",
        "--watch",
        "--output-watch-events",
        "--no-headers",
        "-o",
        WATCH_READY_COLUMNS,
    ]))
}

/// The API server's readiness with every check listed.
pub fn get_readyz_verbose() -> String {
    kubectl_admin("get --raw '/readyz?verbose'")
}

/// `/readyz?verbose` through the endpoint, bounded (see `readyz_verbose_of`).
pub fn get_readyz_verbose_within(timeout: Duration) -> String {
    kubectl_admin(&format!(
        "get --raw '/readyz?verbose' --request-timeout={}s",
        kubectl_timeout(timeout).as_secs()
    ))
}

/// `/readyz?verbose` of one control plane's own API server, bounded: a
/// hung host must not hold the whole observation (kubectl has no request
/// timeout by default).
pub fn readyz_verbose_of(address: &std::net::IpAddr, timeout: Duration) -> String {
    kubectl_admin(&format!(
        "get --raw '/readyz?verbose' --server https://{}:6443 --request-timeout={}s",
        url_host(address),
        kubectl_timeout(timeout).as_secs()
    ))
}

/// The longest span Go's `time.Duration` holds (about 292 years, in whole
/// seconds): kubectl refuses a longer `--timeout` as an invalid argument and
/// a longer `--request-timeout` as an invalid value.
const GO_MAX_SECONDS: u64 = i64::MAX as u64 / 1_000_000_000;

/// A timeout kubectl accepts and that bounds: whole seconds (a fraction is
/// dropped, so the wait stays within what was asked), never 0 (kubectl
/// reads `--timeout 0s` and `--request-timeout=0s` as "wait forever"),
/// never past what Go can hold.
fn kubectl_timeout(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs().clamp(1, GO_MAX_SECONDS))
}

fn url_host(address: &std::net::IpAddr) -> String {
    match address {
        std::net::IpAddr::V6(a) => format!("[{a}]"),
        a => a.to_string(),
    }
}

/// Starts a stopped kubelet (systemd; kubeadm installs it as a unit).
pub fn start_kubelet() -> String {
    "systemctl start kubelet".into()
}

/// Sets and removes labels: `kubectl label node N k=v k2- --overwrite`.
/// `set` holds `key=value` lines, `remove` keys.
pub fn label_node(node: &str, set: &[String], remove: &[String]) -> String {
    let mut w = vec!["label".to_string(), "node".into(), node.into()];
    w.extend(set.iter().cloned());
    w.extend(remove.iter().map(|k| format!("{k}-")));
    w.push("--overwrite".into());
    kubectl_admin(&shell_join(&w))
}

/// Adds and removes taints (`key[=value]:Effect`; removal `key:Effect-`).
pub fn taint_node(node: &str, add: &[crate::spec::Taint], remove: &[crate::spec::Taint]) -> String {
    let mut w = vec!["taint".to_string(), "node".into(), node.into()];
    w.extend(add.iter().map(|t| t.to_string()));
    w.extend(
        remove
            .iter()
            .map(|t| format!("{}:{}-", t.key, t.effect.as_str())),
    );
    w.push("--overwrite".into());
    kubectl_admin(&shell_join(&w))
}

/// Evicts a node's pods before it is deleted (docs/kubeadm.md, "Drain and delete"). `dead`: its
/// kubelet does not answer, so evicted pods stay Terminating until the Node
/// is deleted; drain then waits only out their grace period
/// (`--skip-wait-for-delete-timeout`: no wait for a pod whose deletion time
/// passed more than a second ago) instead of its whole timeout.
pub fn drain(node: &str, timeout: Duration, dead: bool) -> String {
    let mut w = drain_words(node, timeout);
    if dead {
        w.extend(["--skip-wait-for-delete-timeout".into(), "1".into()]);
    }
    kubectl_admin(&shell_join(&w))
}

/// `drain N --ignore-daemonsets --delete-emptydir-data --timeout D`:
/// DaemonSet pods stay (their controller ignores the cordon), emptyDir
/// data goes, and never longer than `timeout`.
fn drain_words(node: &str, timeout: Duration) -> Vec<String> {
    let timeout = kubeadm::go_duration(kubectl_timeout(timeout));
    [
        "drain",
        node,
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        "--timeout",
        &timeout,
    ]
    .map(String::from)
    .to_vec()
}

pub fn delete_node(node: &str) -> String {
    kubectl_admin(&shell_join(&["delete", "node", node]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_lines_use_the_admin_kubeconfig_under_the_host_root() {
        assert_eq!(
            get_nodes_json(),
            r#"kubectl --kubeconfig "${GT_HOST_ROOT}/etc/kubernetes/admin.conf" get nodes -o json"#
        );
        assert_eq!(
            get_readyz_verbose(),
            r#"kubectl --kubeconfig "${GT_HOST_ROOT}/etc/kubernetes/admin.conf" get --raw '/readyz?verbose'"#
        );
    }

    #[test]
    fn node_changes_are_kubectl_lines_from_kubeadm_md() {
        let kc = r#"kubectl --kubeconfig "${GT_HOST_ROOT}/etc/kubernetes/admin.conf""#;
        assert_eq!(
            label_node(
                "fenn",
                &["goldentooth.io/storage=ceph".into()],
                &["goldentooth.io/old".into()]
            ),
            format!(
                "{kc} label node fenn goldentooth.io/storage=ceph goldentooth.io/old- --overwrite"
            )
        );
        let gpu: crate::spec::Taint = "goldentooth.io/gpu=true:NoSchedule".parse().unwrap();
        assert_eq!(
            taint_node("velaryon", std::slice::from_ref(&gpu), &[]),
            format!("{kc} taint node velaryon goldentooth.io/gpu=true:NoSchedule --overwrite")
        );
        assert_eq!(
            taint_node("velaryon", &[], &[gpu]),
            format!("{kc} taint node velaryon goldentooth.io/gpu:NoSchedule- --overwrite")
        );
        assert_eq!(
            drain("fenn", Duration::from_secs(300), false),
            format!("{kc} drain fenn --ignore-daemonsets --delete-emptydir-data --timeout 5m0s")
        );
        assert_eq!(
            drain("fenn", Duration::from_secs(45), true),
            format!("{kc} drain fenn --ignore-daemonsets --delete-emptydir-data --timeout 45s --skip-wait-for-delete-timeout 1")
        );
        assert_eq!(delete_node("fenn"), format!("{kc} delete node fenn"));
        assert_eq!(
            readyz_verbose_of(&"fd00::12".parse().unwrap(), Duration::from_secs(10)),
            format!("{kc} get --raw '/readyz?verbose' --server https://[fd00::12]:6443 --request-timeout=10s")
        );
        assert_eq!(
            get_readyz_verbose_within(Duration::from_millis(2500)),
            format!("{kc} get --raw '/readyz?verbose' --request-timeout=2s")
        );
    }

    #[test]
    fn a_sub_second_timeout_never_becomes_kubectls_wait_forever() {
        for short in [
            Duration::ZERO,
            Duration::from_millis(1),
            Duration::from_millis(500),
        ] {
            assert!(
                drain("fenn", short, false).contains(" --timeout 1s"),
                "{short:?}: {}",
                drain("fenn", short, false)
            );
            assert!(
                readyz_verbose_of(&"10.4.0.12".parse().unwrap(), short)
                    .ends_with(" --request-timeout=1s"),
                "{short:?}"
            );
        }
        assert!(drain("fenn", Duration::from_millis(1500), true).contains(" --timeout 1s "));
    }

    #[test]
    fn a_timeout_longer_than_go_can_hold_is_capped_at_its_maximum() {
        // 2562047h47m16s is the last whole second of Go's time.Duration.
        assert!(drain("fenn", Duration::MAX, false).ends_with(" --timeout 2562047h47m16s"));
        assert!(
            readyz_verbose_of(&"10.4.0.12".parse().unwrap(), Duration::MAX)
                .ends_with(" --request-timeout=9223372036s")
        );
        assert!(
            drain("fenn", Duration::from_secs(GO_MAX_SECONDS + 1), false)
                .ends_with(" --timeout 2562047h47m16s")
        );
    }
}
