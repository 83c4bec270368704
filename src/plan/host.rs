//! The `host` resource: a managed node's packages and kernel settings
//! against cluster.toml, one item per difference, and the work of its
//! `prepare-host` step.

use super::{Action, Change, PlanError, Resource, SetDiff, StepId};
use crate::facts::{HostFacts, HostSoftware, NodeFacts, Observed};
use crate::kube::{apt, host as kh};
use crate::spec::{HostSettings, KubeVersion, Node, NodeName, PackageSource, Spec};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The version a kube package is installed at.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PackageVersion {
    /// A Debian version the host's repository lists (`1.32.4-1.1`).
    Exact(String),
    /// Any revision of a release (`1.32.4` → `apt-get install kubelet=1.32.4-*`).
    Release(String),
    /// The newest patch of a minor (`1.32`), which no host could tell yet:
    /// apply asks the repository once, before the first install, and
    /// installs that one patch everywhere.
    NewestPatch(String),
    /// The distribution's current version (containerd).
    Distribution,
}

impl std::fmt::Display for PackageVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PackageVersion::Exact(v) => f.write_str(v),
            PackageVersion::Release(r) => write!(f, "{r}-*"),
            PackageVersion::NewestPatch(m) => write!(f, "newest {m} patch"),
            PackageVersion::Distribution => f.write_str("from the distribution"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PackagePin {
    pub name: String,
    pub version: PackageVersion,
}

/// The kernel command line file and the line gt writes to it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BootCmdlineEdit {
    pub path: String,
    pub line: String,
}

/// How swap is turned off for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SwapOff {
    pub fstab: bool,
    pub dphys_swapfile: bool,
}

/// What `prepare-host/NODE` does, in this order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
pub struct HostWork {
    /// Write the keyring and kubernetes.list for this repository URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub install: Vec<PackagePin>,
    /// Packages held after the install (and unheld before it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hold: Vec<String>,
    /// Write containerd's config with `SystemdCgroup = true` and restart it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub containerd: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap_off: Option<SwapOff>,
    /// Every module gt wants, persisted and loaded (when any is not).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub modules: BTreeSet<String>,
    /// Every sysctl gt wants, persisted and applied (when any is not).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctls: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_cmdline: Option<BootCmdlineEdit>,
    /// Reboot and wait for the host (the kernel command line changed).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reboot: bool,
}

/// One difference of a host, as the plan shows it (`+ package kubelet 1.32.4-1.1 (held)`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HostItem {
    pub action: Action,
    /// `package`, `apt_source`, `containerd`, `swap`, `module`, `sysctl`, `kernel_cmdline`, `reboot`.
    pub kind: String,
    /// The package, module or sysctl; empty for swap and the like.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The rest of the line after the symbol.
    pub text: String,
}

impl HostItem {
    fn new(action: Action, kind: &str, name: &str, text: String) -> HostItem {
        HostItem {
            action,
            kind: kind.into(),
            name: name.into(),
            text,
        }
    }
}

/// The kube release every managed host is brought to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Release(u32, u32, u32),
    /// No host can tell the newest patch yet (none has the repository).
    NewestPatch(u32, u32),
}

impl Target {
    fn minor(self) -> (u32, u32) {
        match self {
            Target::Release(a, b, _) | Target::NewestPatch(a, b) => (a, b),
        }
    }
}

/// A host's planned change and its work.
#[derive(Debug, Clone)]
pub struct HostPlan {
    pub node: NodeName,
    pub work: HostWork,
    pub change: Change,
    /// cmdline.txt must change, which the file does not allow.
    pub refused_reboot: Option<PlanError>,
}

/// The release to install: the file's patch; else the cluster's (its
/// control planes' kubelets: `control_planes`, every Node of the cluster
/// with a control plane's labels); else the newest patch a host's
/// repository of that minor offers; else unresolved until apply.
pub fn target(spec: &Spec, obs: &Observed, control_planes: &[&NodeFacts]) -> Target {
    let want = spec.cluster.kubernetes_version;
    if let Some(p) = want.patch {
        return Target::Release(want.major, want.minor, p);
    }
    let same_minor = |v: &KubeVersion| v.major == want.major && v.minor == want.minor;
    let cluster_version = control_planes
        .iter()
        .filter_map(|n| KubeVersion::parse(n.kubelet_version.as_deref()?))
        .filter(|v| same_minor(v) && v.patch.is_some())
        .max();
    if let Some(v) = cluster_version.filter(|_| obs.cluster.exists()) {
        return Target::Release(v.major, v.minor, v.patch.unwrap_or(0));
    }
    let newest = obs
        .hosts
        .values()
        .filter_map(|h| h.software.as_ref())
        .filter(|s| s.source_minor() == Some((want.major, want.minor)))
        .filter_map(|s| apt::newest(s.available.get("kubeadm")?, want.major, want.minor, None))
        .filter_map(|v| apt::release_of(&v))
        .max();
    match newest {
        Some((a, b, c)) => Target::Release(a, b, c),
        None => Target::NewestPatch(want.major, want.minor),
    }
}

/// The repository URL a host should have.
pub fn repository(settings: &HostSettings, minor: (u32, u32)) -> String {
    match &settings.source {
        PackageSource::Upstream => apt::upstream_repository(minor.0, minor.1),
        PackageSource::Mirror(url) => url.clone(),
    }
}

/// Whether a host plan can come of this node at all: present, managed,
/// reachable, its software observed. Asked while the node's facts are at
/// hand, so that the host plans look again only at the nodes it lets through.
pub(super) fn may_plan(node: &Node, facts: Option<&HostFacts>) -> bool {
    node.host.manage
        && node.is_present()
        && facts.is_some_and(|f| f.is_reachable() && f.software.is_some())
}

/// The plan for one host, or `None` when it is converged, unmanaged, or
/// its software was not observed (no dpkg database, or older facts).
pub fn plan_host(spec: &Spec, node: &Node, facts: &HostFacts, target: Target) -> Option<HostPlan> {
    let settings = &node.host;
    if !may_plan(node, Some(facts)) {
        return None;
    }
    let sw = facts.software.as_ref()?;
    let mut items = Vec::new();
    let mut work = HostWork::default();
    let minor = target.minor();

    let repo = repository(settings, minor);
    let source_ok = sw.apt_source.as_deref() == Some(repo.as_str());
    if !source_ok || !sw.apt_keyring {
        work.repository = Some(repo.clone());
        let shown = |url: &str, minor: Option<(u32, u32)>| match minor {
            Some((a, b)) => format!("v{a}.{b}"),
            None => url.to_string(),
        };
        let want = shown(
            &repo,
            Some(minor).filter(|_| settings.source == PackageSource::Upstream),
        );
        let item = match &sw.apt_source {
            None => HostItem::new(
                Action::Create,
                "apt_source",
                "",
                format!("apt source {want} ({})", source_name(settings)),
            ),
            Some(url) if url != &repo => HostItem::new(
                Action::Update,
                "apt_source",
                "",
                format!(
                    "apt source {} -> {want}",
                    shown(
                        url,
                        sw.source_minor()
                            .filter(|_| settings.source == PackageSource::Upstream)
                    )
                ),
            ),
            Some(_) => HostItem::new(
                Action::Create,
                "apt_source",
                "",
                format!("apt keyring {}", apt::KEYRING),
            ),
        };
        items.push(item);
    }

    packages(sw, target, source_ok, &mut work, &mut items);

    let containerd_installed = sw.packages.contains_key(apt::CONTAINERD);
    if !containerd_installed {
        work.install.push(PackagePin {
            name: apt::CONTAINERD.into(),
            version: PackageVersion::Distribution,
        });
        items.push(HostItem::new(
            Action::Create,
            "package",
            apt::CONTAINERD,
            format!("package {} (from the distribution)", apt::CONTAINERD),
        ));
    }
    if !sw.containerd_config || !sw.containerd_systemd_cgroup || sw.containerd_cri_disabled {
        work.containerd = true;
        let what = if sw.containerd_cri_disabled {
            "containerd CRI plugin enabled, SystemdCgroup = true"
        } else {
            "containerd SystemdCgroup = true"
        };
        let action = if sw.containerd_config {
            Action::Update
        } else {
            Action::Create
        };
        items.push(HostItem::new(action, "containerd", "", what.into()));
    } else if !sw.cri_socket {
        work.containerd = true;
        items.push(HostItem::new(
            Action::Update,
            "containerd",
            "",
            format!(
                "containerd restart (no socket at {})",
                spec.cluster.cri_socket
            ),
        ));
    }

    if !sw.swap.is_empty() || !sw.fstab_swap.is_empty() || sw.dphys_swapfile {
        work.swap_off = Some(SwapOff {
            fstab: !sw.fstab_swap.is_empty(),
            dphys_swapfile: sw.dphys_swapfile,
        });
        let text = if sw.swap.is_empty() {
            "swap off at boot".to_string()
        } else {
            "swap on -> off".to_string()
        };
        items.push(HostItem::new(Action::Update, "swap", "", text));
    }

    let mut modules_differ = false;
    for m in &settings.modules {
        let loaded = sw.modules.contains(m);
        let persisted = sw.modules_persisted.contains(m);
        if !loaded || !persisted {
            modules_differ = true;
            let text = match (loaded, persisted) {
                (true, false) => format!("module {m} (persisted)"),
                (false, true) => format!("module {m} (loaded)"),
                _ => format!("module {m}"),
            };
            items.push(HostItem::new(Action::Create, "module", m, text));
        }
    }
    if modules_differ {
        work.modules = settings.modules.clone();
    }

    let mut sysctls_differ = false;
    for (k, want) in &settings.sysctls {
        let want = kh::normalise_sysctl(want);
        let live = sw.sysctls.get(k);
        let persisted = sw.sysctls_persisted.get(k);
        if live == Some(&want) && persisted == Some(&want) {
            continue;
        }
        sysctls_differ = true;
        let item = match live {
            Some(got) if got != &want => HostItem::new(
                Action::Update,
                "sysctl",
                k,
                format!("sysctl {k} {got} -> {want}"),
            ),
            Some(_) => HostItem::new(
                Action::Create,
                "sysctl",
                k,
                format!("sysctl {k} = {want} (persisted)"),
            ),
            None => HostItem::new(Action::Create, "sysctl", k, format!("sysctl {k} = {want}")),
        };
        items.push(item);
    }
    if sysctls_differ {
        work.sysctls = settings.sysctls.clone();
    }

    let mut refused_reboot = None;
    if let Some(boot) = sw.boot_cmdline.as_ref().filter(|_| !sw.has_memory_cgroup()) {
        let params = kh::MEMORY_CGROUP_PARAMS.join(" ");
        match kh::cmdline_with_memory_cgroup(&boot.content) {
            Some(line) => {
                work.boot_cmdline = Some(BootCmdlineEdit {
                    path: boot.path.clone(),
                    line,
                });
                items.push(HostItem::new(
                    Action::Create,
                    "kernel_cmdline",
                    "",
                    format!("kernel cmdline {params} (reboot)"),
                ));
            }
            None => items.push(HostItem::new(
                Action::Update,
                "reboot",
                "",
                format!(
                    "reboot ({} has {params}; the running kernel does not)",
                    boot.path
                ),
            )),
        }
        work.reboot = true;
        if !settings.allow_reboot {
            refused_reboot = Some(PlanError::RebootNotAllowed {
                node: node.name.to_string(),
                file: boot.path.clone(),
                params,
                config: spec.source.display().to_string(),
                line: node.line,
            });
        }
    }

    if items.is_empty() {
        return None;
    }
    let bare = apt::KUBE_PACKAGES
        .iter()
        .all(|p| !sw.packages.contains_key(*p));
    let (action, reason) = if bare {
        (
            Action::Create,
            format!(
                "no Kubernetes packages: gt installs {} and prepares the host",
                target_words(target)
            ),
        )
    } else {
        (
            Action::Update,
            "its software or kernel settings differ from cluster.toml".to_string(),
        )
    };
    let id = StepId::PrepareHost(node.name.clone());
    Some(HostPlan {
        node: node.name.clone(),
        change: Change {
            resource: Resource::Host(node.name.clone()),
            action,
            reason,
            role: None,
            attributes: vec![],
            labels: SetDiff::default(),
            taints: SetDiff::default(),
            host: items,
            steps: vec![id],
        },
        work,
        refused_reboot,
    })
}

fn source_name(settings: &HostSettings) -> &'static str {
    match settings.source {
        PackageSource::Upstream => "pkgs.k8s.io",
        PackageSource::Mirror(_) => "mirror",
    }
}

fn target_words(t: Target) -> String {
    match t {
        Target::Release(a, b, c) => format!("Kubernetes {a}.{b}.{c}"),
        Target::NewestPatch(a, b) => format!("the newest Kubernetes {a}.{b} patch"),
    }
}

/// kubeadm, kubelet and kubectl at the target, held.
fn packages(
    sw: &HostSoftware,
    target: Target,
    source_ok: bool,
    work: &mut HostWork,
    items: &mut Vec<HostItem>,
) {
    for p in apt::KUBE_PACKAGES {
        let installed = sw.packages.get(p);
        let at_target = installed.is_some_and(|i| match target {
            Target::Release(a, b, c) => apt::release_of(&i.version) == Some((a, b, c)),
            Target::NewestPatch(..) => false,
        });
        if at_target {
            if !installed.is_some_and(|i| i.held) {
                work.hold.push(p.to_string());
                items.push(HostItem::new(
                    Action::Update,
                    "package",
                    p,
                    format!("package {p} hold"),
                ));
            }
            continue;
        }
        let version = match target {
            Target::Release(a, b, c) => {
                let listed = source_ok
                    .then(|| sw.available.get(p))
                    .flatten()
                    .and_then(|v| apt::newest(v, a, b, Some(c)));
                match listed {
                    Some(v) => PackageVersion::Exact(v),
                    None => PackageVersion::Release(format!("{a}.{b}.{c}")),
                }
            }
            Target::NewestPatch(a, b) => PackageVersion::NewestPatch(format!("{a}.{b}")),
        };
        let item = match installed {
            None => HostItem::new(
                Action::Create,
                "package",
                p,
                format!("package {p} {version} (held)"),
            ),
            Some(i) => HostItem::new(
                Action::Update,
                "package",
                p,
                format!("package {p} {} -> {version} (held)", i.version),
            ),
        };
        items.push(item);
        work.install.push(PackagePin {
            name: p.to_string(),
            version,
        });
        work.hold.push(p.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::tests::{facts, goldentooth};
    use crate::spec::NodeState;
    use std::sync::Arc;

    #[test]
    fn a_host_plan_comes_only_of_a_present_managed_reachable_host_whose_software_was_read() {
        let spec = goldentooth();
        let obs = facts("host-converged");
        let fenn = spec.node("fenn").unwrap();
        let observed = &obs.hosts["fenn"];
        assert!(may_plan(fenn, Some(observed)));
        assert!(!may_plan(fenn, None));
        let mut unmanaged = fenn.clone();
        Arc::make_mut(&mut unmanaged.host).manage = false;
        assert!(!may_plan(&unmanaged, Some(observed)));
        let mut absent = fenn.clone();
        absent.state = NodeState::Absent;
        assert!(!may_plan(&absent, Some(observed)));
        let mut unreachable = observed.clone();
        unreachable.unreachable = Some("connection refused".into());
        assert!(!may_plan(fenn, Some(&unreachable)));
        let unread = HostFacts {
            software: None,
            ..observed.clone()
        };
        assert!(!may_plan(fenn, Some(&unread)));
        // Where it lets a host through, plan_host decides as before.
        let target = target(&spec, &obs, &[]);
        assert!(plan_host(&spec, &unmanaged, observed, target).is_none());
    }
}
