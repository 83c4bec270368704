//! The command lines of one node's upgrade to a release, in the order the
//! kubeadm upgrade docs give (docs/kubeadm.md, "Upgrades"): the package
//! repository switched to the release's minor, kubeadm, `kubeadm upgrade
//! plan` and `apply` on the first control plane or `kubeadm upgrade node`
//! elsewhere, the drain, kubelet and kubectl, the kubelet's restart, the
//! uncordon; and what gt reads back to tell which of these a node already
//! did (an interrupted upgrade resumes where it stopped).

use super::apt::{self, AptSource};
use super::kubeadm::Release;
use super::nodes::CORDONED_BY_GT;
use crate::transport::shell_join;
use std::time::Duration;

/// `1.33.2-*`: any Debian revision of the release (pkgs.k8s.io's `-1.1`,
/// a mirror's own).
pub fn package_version(release: &Release) -> String {
    format!("{}.{}.{}-*", release.0, release.1, release.2)
}

/// The repository URL of `release`'s minor where `current` (the URL the
/// host has, or the file's mirror) names another: the `/vX.Y/` part of a
/// pkgs.k8s.io-shaped path replaced; a URL without one is kept.
pub fn repository_for_minor(current: &str, release: &Release) -> String {
    let want = format!("v{}.{}", release.0, release.1);
    let parts: Vec<String> = current
        .split('/')
        .map(|part| {
            let names_minor = part
                .strip_prefix('v')
                .and_then(|v| v.split_once('.'))
                .is_some_and(|(a, b)| {
                    !a.is_empty()
                        && !b.is_empty()
                        && a.bytes().all(|c| c.is_ascii_digit())
                        && b.bytes().all(|c| c.is_ascii_digit())
                });
            if names_minor {
                want.clone()
            } else {
                part.to_string()
            }
        })
        .collect();
    parts.join("/")
}

/// kubernetes.list rewritten to `repository` (the keyring stays: every
/// pkgs.k8s.io minor is signed with the same key), then `apt-get update`.
pub fn switch_repository(repository: &str) -> String {
    format!(
        "printf '%s\\n' {} > \"${{GT_HOST_ROOT}}{}\" && {}",
        shell_join(&[apt::source_line(repository).as_str()]),
        apt::SOURCE_LIST,
        apt::update()
    )
}

/// kubeadm at the release, between `apt-mark unhold` and `hold`.
pub fn install_kubeadm(release: &Release) -> String {
    apt::install(
        &[("kubeadm".into(), Some(package_version(release)))],
        &["kubeadm".into()],
    )
}

/// kubelet and kubectl at the release, between `apt-mark unhold` and `hold`.
pub fn install_kubelet_kubectl(release: &Release) -> String {
    let v = package_version(release);
    apt::install(
        &[
            ("kubelet".into(), Some(v.clone())),
            ("kubectl".into(), Some(v)),
        ],
        &["kubelet".into(), "kubectl".into()],
    )
}

/// `kubeadm upgrade plan v1.33.2`: the version given, so that kubeadm does
/// not ask dl.k8s.io for the newest; a refusal exits 1.
pub fn upgrade_plan(release: &Release) -> String {
    shell_join(&["kubeadm", "upgrade", "plan", &release.to_string()])
}

/// `kubeadm upgrade apply v1.33.2 -y`: without `-y` it asks on the terminal.
pub fn upgrade_apply(release: &Release) -> String {
    shell_join(&["kubeadm", "upgrade", "apply", &release.to_string(), "-y"])
}

/// `kubeadm upgrade node`: every node but the first control plane.
pub fn upgrade_node() -> String {
    "kubeadm upgrade node".into()
}

/// The new kubelet binary and its unit files take effect.
pub fn restart_kubelet() -> String {
    "systemctl daemon-reload && systemctl restart kubelet".into()
}

/// The drain before a node's kubelet is upgraded: DaemonSet pods stay,
/// emptyDir data goes, pods without a controller only with `force`
/// (`[drain] force`), and no longer than `timeout` (a PodDisruptionBudget
/// would otherwise hold it forever).
pub fn drain_for_upgrade(node: &str, timeout: Duration, force: bool) -> String {
    let mut w = super::drain_words(node, timeout);
    if force {
        w.push("--force".into());
    }
    super::kubectl_admin(&shell_join(&w))
}

/// Marks the node as cordoned by gt (before the drain cordons it).
pub fn mark_cordoned(node: &str) -> String {
    let mark = format!("{CORDONED_BY_GT}=true");
    super::kubectl_admin(&shell_join(&[
        "annotate",
        "node",
        node,
        &mark,
        "--overwrite",
    ]))
}

/// `kubectl uncordon N`.
pub fn uncordon(node: &str) -> String {
    super::kubectl_admin(&shell_join(&["uncordon", node]))
}

/// Takes gt's mark off (after the uncordon: a crash between the two leaves
/// a schedulable node with a mark, which the next upgrade clears, rather
/// than a cordoned node without one, which gt would never uncordon).
pub fn unmark_cordoned(node: &str) -> String {
    let unmark = format!("{CORDONED_BY_GT}-");
    super::kubectl_admin(&shell_join(&["annotate", "node", node, &unmark]))
}

/// What a host says of its upgrade: its kube packages, its repository, and
/// its API server's version (a control plane's static pod).
pub fn host_state_script() -> String {
    "dpkg-query -W -f='package=${Package} ${Version} ${db:Status-Abbrev}\\n' kubeadm kubelet kubectl 2>/dev/null; \
     grep -h '^deb' \"${GT_HOST_ROOT}/etc/apt/sources.list.d/kubernetes.list\" 2>/dev/null | sed 's/^/source=/'; \
     grep -h 'image:' \"${GT_HOST_ROOT}/etc/kubernetes/manifests/kube-apiserver.yaml\" 2>/dev/null | sed 's/^[[:space:]]*image:[[:space:]]*/apiserver=/'; \
     true"
        .into()
}

/// A host's upgrade facts, read at the start of its step.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostState {
    pub kubeadm: Option<Release>,
    pub kubelet: Option<Release>,
    pub kubectl: Option<Release>,
    pub source: Option<AptSource>,
    /// The tag of the kube-apiserver image in its static pod manifest.
    pub apiserver: Option<Release>,
}

pub fn parse_host_state(out: &str) -> HostState {
    let mut s = HostState::default();
    for line in out.lines() {
        if let Some(p) = line.strip_prefix("package=").and_then(apt::parse_dpkg_line) {
            let release = p
                .installed
                .then(|| apt::release_of(&p.version))
                .flatten()
                .map(|(a, b, c)| Release(a, b, c));
            match p.name.as_str() {
                "kubeadm" => s.kubeadm = release,
                "kubelet" => s.kubelet = release,
                "kubectl" => s.kubectl = release,
                _ => {}
            }
        } else if let Some(src) = line.strip_prefix("source=") {
            s.source = s.source.or_else(|| AptSource::parse(src));
        } else if let Some(image) = line.strip_prefix("apiserver=") {
            s.apiserver = super::versions::image_tag(image).and_then(super::kubeadm::parse_version);
        }
    }
    s
}

/// The version kubeadm recorded for the cluster, as an exact release.
pub fn parse_cluster_version(kubeadm_config_yaml: &str) -> Option<Release> {
    super::versions::cluster_configuration_version(kubeadm_config_yaml)
        .as_deref()
        .and_then(super::kubeadm::parse_version)
}

/// Why `kubeadm upgrade plan` or `apply` refused: the items of its list of
/// errors (`\t- Specified version to upgrade to "v1.35.0" is too high…`),
/// else the errors of its preflight report, else its `error execution phase
/// …:` line, else its last line.
pub fn upgrade_refusal(stderr: &str) -> String {
    let items: Vec<&str> = stderr
        .lines()
        .filter_map(|l| {
            l.strip_prefix("\t- ")
                .or_else(|| l.trim_start().strip_prefix("- "))
        })
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if !items.is_empty() {
        return items.join("; ");
    }
    let failed_checks = preflight_errors(stderr);
    if !failed_checks.is_empty() {
        return failed_checks.join("; ");
    }
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("To see the stack trace"))
        .collect();
    lines
        .iter()
        .find(|l| l.contains("error execution phase"))
        .or(lines.last())
        .map(|l| l.trim_start_matches("error: ").to_string())
        .unwrap_or_default()
}

/// The errors between a preflight report's two lines (docs/kubeadm.md,
/// "Preflight"): `[ERROR Name]: message` per failed check, or an untagged
/// error (a missing container runtime at the image pull) that runs into the
/// report's closing line. The report follows `error execution phase
/// preflight: ` (apply) or `[upgrade/health] FATAL: ` (plan).
fn preflight_errors(stderr: &str) -> Vec<String> {
    const CLOSING: &str = "[preflight] If you know what you are doing";
    let mut lines = stderr
        .lines()
        .skip_while(|l| !l.ends_with("[preflight] Some fatal errors occurred:"))
        .skip(1);
    let mut errors = Vec::new();
    for line in lines.by_ref() {
        let (error, closed) = match line.find(CLOSING) {
            Some(i) => (&line[..i], true),
            None => (line, false),
        };
        let error = error.trim();
        if !error.is_empty() && !error.starts_with("To see the stack trace") {
            errors.push(error.to_string());
        }
        if closed {
            break;
        }
    }
    errors
}

/// What blocked a drain, from kubectl's stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DrainBlock {
    /// Pods whose eviction did not go through before the timeout (a
    /// PodDisruptionBudget refused it): `(namespace, pod)`.
    Evictions(Vec<(String, String)>),
    /// Pods without a controller, which kubectl deletes only with `--force`.
    BarePods(Vec<String>),
}

/// The pods a drain's stderr names as blocked, and why: a PodDisruptionBudget
/// (`error when evicting pods/"p" -n "ns" (will retry after 5s): Cannot evict
/// pod as it would violate the pod's disruption budget.`) or a missing
/// controller (`cannot delete Pods that declare no controller (use --force to
/// override): ns/p, ns/q`).
pub fn parse_drain_block(stderr: &str) -> Option<DrainBlock> {
    let mut budget: Vec<(String, String)> = Vec::new();
    let refused =
        |l: &&str| l.contains("disruption budget") || l.contains("global timeout reached");
    for line in stderr.lines().filter(refused) {
        if let Some(p) = evicted_pod(line) {
            if !budget.contains(&p) {
                budget.push(p);
            }
        }
    }
    if !budget.is_empty() {
        return Some(DrainBlock::Evictions(budget));
    }
    const BARE: &str = "declare no controller (use --force to override): ";
    let line = stderr.lines().find(|l| l.contains(BARE))?;
    let list = &line[line.find(BARE)? + BARE.len()..];
    let list = list.split(", continuing command").next().unwrap_or(list);
    let pods: Vec<String> = list
        .split(',')
        .map(|p| p.trim().trim_end_matches(']').to_string())
        .filter(|p| !p.is_empty())
        .collect();
    (!pods.is_empty()).then_some(DrainBlock::BarePods(pods))
}

/// `pods/"p" -n "ns"` in an eviction error line.
fn evicted_pod(line: &str) -> Option<(String, String)> {
    let rest = &line[line.find("pods/\"")? + "pods/\"".len()..];
    let (pod, rest) = rest.split_once('"')?;
    let rest = rest.trim_start().strip_prefix("-n \"")?;
    let (ns, _) = rest.split_once('"')?;
    Some((ns.to_string(), pod.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KC: &str = r#"kubectl --kubeconfig "${GT_HOST_ROOT}/etc/kubernetes/admin.conf""#;
    const R: Release = Release(1, 33, 2);

    #[test]
    fn packages_are_pinned_to_the_release_between_unhold_and_hold() {
        assert_eq!(
            install_kubeadm(&R),
            "apt-mark unhold kubeadm && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --allow-downgrades 'kubeadm=1.33.2-*' && apt-mark hold kubeadm"
        );
        assert_eq!(
            install_kubelet_kubectl(&R),
            "apt-mark unhold kubelet kubectl && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --allow-downgrades 'kubelet=1.33.2-*' 'kubectl=1.33.2-*' && apt-mark hold kubelet kubectl"
        );
    }

    #[test]
    fn the_repository_moves_to_the_releases_minor() {
        assert_eq!(
            repository_for_minor("https://pkgs.k8s.io/core:/stable:/v1.32/deb/", &R),
            "https://pkgs.k8s.io/core:/stable:/v1.33/deb/"
        );
        assert_eq!(
            repository_for_minor("http://mirror.lan/k8s/v1.32/deb/", &R),
            "http://mirror.lan/k8s/v1.33/deb/"
        );
        // Nothing in the path names a minor: a mirror that serves every one.
        assert_eq!(
            repository_for_minor("http://mirror.lan/kubernetes/deb/", &R),
            "http://mirror.lan/kubernetes/deb/"
        );
        assert_eq!(
            repository_for_minor("http://mirror.lan/v2.x/v1.32/deb/", &R),
            "http://mirror.lan/v2.x/v1.33/deb/"
        );
        assert_eq!(
            switch_repository("https://pkgs.k8s.io/core:/stable:/v1.33/deb/"),
            "printf '%s\\n' 'deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v1.33/deb/ /' > \"${GT_HOST_ROOT}/etc/apt/sources.list.d/kubernetes.list\" && apt-get update -q"
        );
    }

    #[test]
    fn kubeadm_upgrade_lines_name_the_exact_release() {
        assert_eq!(upgrade_plan(&R), "kubeadm upgrade plan v1.33.2");
        assert_eq!(upgrade_apply(&R), "kubeadm upgrade apply v1.33.2 -y");
        assert_eq!(upgrade_node(), "kubeadm upgrade node");
        assert_eq!(
            restart_kubelet(),
            "systemctl daemon-reload && systemctl restart kubelet"
        );
    }

    #[test]
    fn cordon_lines_mark_and_unmark_the_node() {
        assert_eq!(
            drain_for_upgrade("fenn", Duration::from_secs(300), false),
            format!("{KC} drain fenn --ignore-daemonsets --delete-emptydir-data --timeout 5m0s")
        );
        assert_eq!(
            drain_for_upgrade("fenn", Duration::from_secs(90), true),
            format!(
                "{KC} drain fenn --ignore-daemonsets --delete-emptydir-data --timeout 1m30s --force"
            )
        );
        assert!(drain_for_upgrade("fenn", Duration::ZERO, false).contains("--timeout 1s"));
        assert_eq!(
            mark_cordoned("fenn"),
            format!("{KC} annotate node fenn gt.goldentooth/cordoned=true --overwrite")
        );
        assert_eq!(
            unmark_cordoned("fenn"),
            format!("{KC} annotate node fenn gt.goldentooth/cordoned-")
        );
        assert_eq!(uncordon("fenn"), format!("{KC} uncordon fenn"));
    }

    #[test]
    fn a_hosts_state_gives_packages_repository_and_api_server() {
        let out = "package=kubeadm 1.33.2-1.1 hi \npackage=kubelet 1.32.4-1.1 hi \npackage=kubectl 1.32.4-1.1 rc \nsource=deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v1.33/deb/ /\napiserver=registry.k8s.io/kube-apiserver:v1.33.2\n";
        let s = parse_host_state(out);
        assert_eq!(s.kubeadm, Some(R));
        assert_eq!(s.kubelet, Some(Release(1, 32, 4)));
        // Only its configuration files left: not installed.
        assert_eq!(s.kubectl, None);
        assert_eq!(s.source.unwrap().minor(), Some((1, 33)));
        assert_eq!(s.apiserver, Some(R));
        assert_eq!(parse_host_state(""), HostState::default());
        assert!(host_state_script().contains("kube-apiserver.yaml"));
    }

    #[test]
    fn the_cluster_version_is_read_from_kubeadm_config() {
        let yaml = "apiVersion: v1\ndata:\n  ClusterConfiguration: |\n    apiVersion: kubeadm.k8s.io/v1beta4\n    kind: ClusterConfiguration\n    kubernetesVersion: v1.32.4\n    networking:\n      podSubnet: 192.168.0.0/16\nkind: ConfigMap\n";
        assert_eq!(parse_cluster_version(yaml), Some(Release(1, 32, 4)));
        assert_eq!(parse_cluster_version("kind: ConfigMap\n"), None);
    }

    #[test]
    fn kubeadms_refusals_are_read_from_its_error_list() {
        let too_high = "error execution phase preflight: the version argument is invalid due to these fatal errors:\n\n\t- Specified version to upgrade to \"v1.35.0\" is too high; kubeadm can upgrade only 1 minor version at a time\n\nPlease fix the misalignments highlighted above and try upgrading again\nTo see the stack trace of this error execute with --v=5 or higher\n";
        assert_eq!(
            upgrade_refusal(too_high),
            "Specified version to upgrade to \"v1.35.0\" is too high; kubeadm can upgrade only 1 minor version at a time"
        );
        let other = "[upgrade/health] Checking the cluster health\nerror execution phase preflight: [preflight] Some fatal errors occurred:\nTo see the stack trace of this error execute with --v=5 or higher\n";
        assert_eq!(
            upgrade_refusal(other),
            "error execution phase preflight: [preflight] Some fatal errors occurred:"
        );
        assert_eq!(upgrade_refusal("error: boom\n"), "boom");
    }

    #[test]
    fn a_failed_preflight_is_read_from_its_report() {
        let plan = "[upgrade/health] FATAL: [preflight] Some fatal errors occurred:\n\t[ERROR ControlPlaneNodesReady]: there are NotReady control-planes in the cluster: [cargyll]\n\t[ERROR CreateJob]: Job \"upgrade-health-check-x7k2p\" in the namespace \"kube-system\" did not complete in 15s: no condition of type Complete\n[preflight] If you know what you are doing, you can make a check non-fatal with `--ignore-preflight-errors=...`\nTo see the stack trace of this error execute with --v=5 or higher\n";
        assert_eq!(
            upgrade_refusal(plan),
            "[ERROR ControlPlaneNodesReady]: there are NotReady control-planes in the cluster: [cargyll]; [ERROR CreateJob]: Job \"upgrade-health-check-x7k2p\" in the namespace \"kube-system\" did not complete in 15s: no condition of type Complete"
        );
        let pull = "error execution phase preflight: [preflight] Some fatal errors occurred:\nfailed to create new CRI runtime service: validate service connection: validate CRI v1 runtime API for endpoint \"unix:///var/run/containerd/containerd.sock\": rpc error: code = Unimplemented desc = unknown service runtime.v1.RuntimeService[preflight] If you know what you are doing, you can make a check non-fatal with `--ignore-preflight-errors=...`\nTo see the stack trace of this error execute with --v=5 or higher\n";
        assert_eq!(
            upgrade_refusal(pull),
            "failed to create new CRI runtime service: validate service connection: validate CRI v1 runtime API for endpoint \"unix:///var/run/containerd/containerd.sock\": rpc error: code = Unimplemented desc = unknown service runtime.v1.RuntimeService"
        );
    }

    #[test]
    fn a_drain_blocked_by_a_budget_names_the_pods_it_could_not_evict() {
        let stderr = "evicting pod web/hr-app\nerror when evicting pods/\"hr-app\" -n \"web\" (will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget.\nevicting pod web/hr-app\nerror when evicting pods/\"hr-app\" -n \"web\" (will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget.\nThere are pending pods in node \"fenn\" when an error occurred: error when evicting pods/\"hr-app\" -n \"web\": global timeout reached: 30s\n";
        assert_eq!(
            parse_drain_block(stderr),
            Some(DrainBlock::Evictions(vec![("web".into(), "hr-app".into())]))
        );
        let bare = "error: unable to drain node \"w1\" due to error: cannot delete cannot delete Pods that declare no controller (use --force to override): default/hr-app, default/b, continuing command...\nThere are pending nodes to be drained:\n w1\ncannot delete cannot delete Pods that declare no controller (use --force to override): default/hr-app, default/b\n";
        assert_eq!(
            parse_drain_block(bare),
            Some(DrainBlock::BarePods(vec![
                "default/hr-app".into(),
                "default/b".into()
            ]))
        );
        assert_eq!(parse_drain_block("error: timed out\n"), None);
    }
}
