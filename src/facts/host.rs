//! What a host's software and kernel settings are (the probe's `software`
//! section): packages, the kube apt source, swap, modules, sysctls,
//! cgroups, containerd's cgroup driver, the kernel command line.

use crate::kube::{apt, host as kh};
use crate::spec::{HostSettings, Node, Spec};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One installed package: its Debian version and whether it is held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstalledPackage {
    pub version: String,
    #[serde(default)]
    pub held: bool,
}

/// The boot command line file of a Raspberry Pi and what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootCmdline {
    /// `/boot/firmware/cmdline.txt` (Bookworm and later) or `/boot/cmdline.txt`.
    pub path: String,
    pub content: String,
}

/// The host's software as the probe saw it; absent from facts when the host
/// has no dpkg database (gt installs packages through apt only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct HostSoftware {
    /// os-release's `PRETTY_NAME` (`Debian GNU/Linux 12 (bookworm)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    /// os-release's `ID` and `VERSION_ID` (`debian`, `12`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    /// Installed packages among kubeadm, kubelet, kubectl, cri-tools, containerd.
    #[serde(default)]
    pub packages: BTreeMap<String, InstalledPackage>,
    /// The repository URL of kubernetes.list's `deb` line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apt_source: Option<String>,
    /// The line names the keyring gt writes, and the keyring is there.
    #[serde(default)]
    pub apt_keyring: bool,
    /// `apt-cache madison`: every version the repository offers, newest first.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub available: BTreeMap<String, Vec<String>>,
    /// Active swap devices (/proc/swaps).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub swap: Vec<String>,
    /// Swap that comes back at boot: /etc/fstab's swap lines.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fstab_swap: Vec<String>,
    /// Raspberry Pi OS's swap file service is enabled (it turns swap on at boot).
    #[serde(default)]
    pub dphys_swapfile: bool,
    /// Of the modules gt wants, those loaded (/proc/modules).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub modules: BTreeSet<String>,
    /// Modules listed in /etc/modules-load.d/*.conf.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub modules_persisted: BTreeSet<String>,
    /// Of the sysctls gt wants, their live values (/proc/sys).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctls: BTreeMap<String, String>,
    /// What /etc/sysctl.d/*.conf and /etc/sysctl.conf set (later files win).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctls_persisted: BTreeMap<String, String>,
    /// cgroup v2's controllers (/sys/fs/cgroup/cgroup.controllers); `None` on cgroup v1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup2_controllers: Option<Vec<String>>,
    /// /etc/containerd/config.toml exists.
    #[serde(default)]
    pub containerd_config: bool,
    #[serde(default)]
    pub containerd_systemd_cgroup: bool,
    #[serde(default)]
    pub containerd_cri_disabled: bool,
    /// The CRI socket of cluster.toml exists.
    #[serde(default)]
    pub cri_socket: bool,
    /// kubectl is on the PATH.
    #[serde(default)]
    pub kubectl: bool,
    /// /proc/cmdline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmdline: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_cmdline: Option<BootCmdline>,
}

impl HostSoftware {
    /// The `software` and `containerd.toml` and `madison` sections of the probe.
    pub fn parse(software: &str, containerd: Option<&str>, madison: Option<&str>) -> HostSoftware {
        let mut s = HostSoftware::default();
        let mut persisted = Vec::new();
        let mut cmdline_path = None;
        for line in software.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let unquoted = || value.trim().trim_matches('"').to_string();
            match key {
                "os_PRETTY_NAME" => s.os = Some(unquoted()),
                "os_ID" => s.os_id = Some(unquoted()),
                "os_VERSION_ID" => s.os_version = Some(unquoted()),
                "package" => {
                    if let Some(p) = apt::parse_dpkg_line(value).filter(|p| p.installed) {
                        s.packages.insert(
                            p.name,
                            InstalledPackage {
                                version: p.version,
                                held: p.held,
                            },
                        );
                    }
                }
                "apt_source" => {
                    if let Some(src) = apt::AptSource::parse(value) {
                        s.apt_keyring = src.signed_by.as_deref() == Some(apt::KEYRING);
                        s.apt_source = Some(src.url);
                    }
                }
                "apt_keyring" => {}
                "swap" => s.swap.push(value.to_string()),
                "fstab_swap" => s.fstab_swap.push(value.to_string()),
                "dphys_swapfile" => s.dphys_swapfile = true,
                "module" => {
                    s.modules.insert(value.to_string());
                }
                "module_persisted" => {
                    s.modules_persisted.insert(value.to_string());
                }
                "sysctl" => {
                    if let Some((k, v)) = value.split_once('=') {
                        s.sysctls.insert(k.to_string(), kh::normalise_sysctl(v));
                    }
                }
                "sysctl_persisted" => persisted.push(value),
                "cgroup2" => {
                    s.cgroup2_controllers =
                        Some(value.split_whitespace().map(str::to_string).collect())
                }
                "cri_socket" => s.cri_socket = true,
                "kubectl" => s.kubectl = true,
                "cmdline" => s.cmdline = Some(value.trim().to_string()),
                "boot_cmdline_path" => cmdline_path = Some(value.to_string()),
                "boot_cmdline" => {
                    if let Some(path) = cmdline_path.take() {
                        s.boot_cmdline = Some(BootCmdline {
                            path,
                            content: value.trim().to_string(),
                        });
                    }
                }
                _ => {}
            }
        }
        // The keyring counts only when the line names it and the file is there.
        s.apt_keyring = s.apt_keyring && software.lines().any(|l| l == "apt_keyring=yes");
        s.sysctls_persisted = kh::parse_sysctl_lines(persisted);
        if let Some(c) = containerd.filter(|c| !c.trim().is_empty()) {
            s.containerd_config = true;
            let cg = kh::parse_containerd_config(c);
            s.containerd_systemd_cgroup = cg.systemd_cgroup;
            s.containerd_cri_disabled = cg.cri_disabled;
        }
        if let Some(m) = madison {
            s.available = apt::parse_madison(m);
        }
        s
    }

    /// The minor of the configured kube repository (`v1.32` in its URL).
    pub fn source_minor(&self) -> Option<(u32, u32)> {
        apt::AptSource {
            url: self.apt_source.clone()?,
            signed_by: None,
        }
        .minor()
    }

    /// Whether the memory cgroup controller is available.
    pub fn has_memory_cgroup(&self) -> bool {
        self.cgroup2_controllers
            .as_ref()
            .is_some_and(|c| c.iter().any(|c| c == "memory"))
    }

    /// Observation lines for a saved plan's fingerprint: what the planner
    /// reads of the host's software.
    pub fn observation_lines(&self, name: &str) -> Vec<String> {
        let join = |it: &mut dyn Iterator<Item = String>| {
            let v: Vec<String> = it.collect();
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(",")
            }
        };
        vec![
            format!(
                "host {name}: packages={}",
                join(&mut self.packages.iter().map(|(p, i)| format!(
                    "{p}={}{}",
                    i.version,
                    if i.held { "(held)" } else { "" }
                )))
            ),
            format!(
                "host {name}: apt_source={} keyring={} newest={}",
                self.apt_source.as_deref().unwrap_or("none"),
                self.apt_keyring,
                join(&mut self
                    .available
                    .iter()
                    .filter_map(|(p, v)| Some(format!("{p}={}", v.first()?))))
            ),
            format!(
                "host {name}: swap={} fstab_swap={} dphys={} modules={} persisted={}",
                join(&mut self.swap.iter().cloned()),
                join(&mut self.fstab_swap.iter().cloned()),
                self.dphys_swapfile,
                join(&mut self.modules.iter().cloned()),
                join(&mut self.modules_persisted.iter().cloned())
            ),
            format!(
                "host {name}: sysctls={} persisted={}",
                join(&mut self.sysctls.iter().map(|(k, v)| format!("{k}={v}"))),
                join(&mut self.sysctls_persisted.iter().map(|(k, v)| format!("{k}={v}")))
            ),
            format!(
                "host {name}: cgroup2={} containerd_config={} systemd_cgroup={} cri_disabled={} cri_socket={} kubectl={}",
                self.cgroup2_controllers
                    .as_ref()
                    .map(|c| c.join(","))
                    .unwrap_or_else(|| "v1".into()),
                self.containerd_config,
                self.containerd_systemd_cgroup,
                self.containerd_cri_disabled,
                self.cri_socket,
                self.kubectl
            ),
            format!(
                "host {name}: boot_cmdline={}",
                self.boot_cmdline
                    .as_ref()
                    .map(|b| format!("{}:{}", b.path, b.content))
                    .unwrap_or_else(|| "none".into())
            ),
        ]
    }
}

/// The probe for one node: the script, after the variables it reads (the
/// sysctls and modules gt wants on this node, the CRI socket).
pub fn probe_script(spec: &Spec, node: &Node) -> String {
    let h: &HostSettings = &node.host;
    let words = |it: &mut dyn Iterator<Item = &String>| {
        crate::transport::shell_quote(&it.cloned().collect::<Vec<_>>().join(" "))
    };
    let socket = spec
        .cluster
        .cri_socket
        .strip_prefix("unix://")
        .unwrap_or(&spec.cluster.cri_socket);
    let v = spec.cluster.kubernetes_version;
    let release = match v.patch {
        Some(p) => format!("{}.{}.{p}", v.major, v.minor),
        None => format!("{}.{}", v.major, v.minor),
    };
    format!(
        "gt_sysctls={}\ngt_modules={}\ngt_cri={}\ngt_release={release}\n{}",
        words(&mut h.sysctls.keys()),
        words(&mut h.modules.iter()),
        crate::transport::shell_quote(socket),
        super::probe::PROBE_SCRIPT
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::Path;

    fn write(root: &Path, path: &str, content: &str) {
        let p = root.join(path.trim_start_matches('/'));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }

    fn tool(bin: &Path, name: &str, script: &str) {
        use std::os::unix::fs::PermissionsExt;
        let p = bin.join(name);
        fs::write(&p, format!("#!/bin/sh\n{script}\n")).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// The probe with `prelude` (the variables gt sets) under `root`.
    fn run_probe(root: &Path, path: &str, prelude: &str) -> crate::facts::HostFacts {
        let out = crate::facts::probe::tests::run_probe_with(root, path, prelude);
        crate::facts::probe::parse_probe(&out).unwrap()
    }

    /// A Raspberry Pi OS host half prepared: packages installed but one
    /// hold gone, swap on, the memory cgroup off.
    fn probe_pi() -> crate::facts::HostFacts {
        let root = tempfile::tempdir().unwrap();
        let bin = tempfile::tempdir().unwrap();
        let r = root.path();
        for (path, content) in [
            ("/var/lib/dpkg/status", ""),
            ("/etc/os-release", "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n"),
            ("/etc/apt/sources.list.d/kubernetes.list", "# gt\ndeb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v1.31/deb/ /\n"),
            ("/etc/apt/keyrings/kubernetes-apt-keyring.gpg", "key"),
            ("/proc/swaps", "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/var/swap                               file\t\t102396\t\t0\t\t-2\n"),
            ("/etc/fstab", "proc /proc proc defaults 0 0\n# /swap none swap sw 0 0\n/dev/sda2 none swap sw 0 0\n"),
            ("/etc/dphys-swapfile", "CONF_SWAPSIZE=100\n"),
            ("/proc/modules", "overlay 151552 0 - Live 0x0000000000000000\nbr_netfilter 32768 0 - Live 0x0000000000000000\nbridge 311296 1 br_netfilter, Live 0x0000000000000000\n"),
            ("/etc/modules-load.d/k8s.conf", "# comment\noverlay\n"),
            ("/proc/sys/net/ipv4/ip_forward", "0\n"),
            ("/proc/sys/net/ipv4/tcp_rmem", "4096\t131072\t6291456\n"),
            ("/etc/sysctl.d/k8s.conf", "net.ipv4.ip_forward = 1\n"),
            ("/etc/sysctl.conf", "#net.ipv4.ip_forward=1\n"),
            ("/sys/fs/cgroup/cgroup.controllers", "cpuset cpu io pids\n"),
            ("/proc/cmdline", "coherent_pool=1M console=tty1 root=PARTUUID=1\n"),
            ("/boot/firmware/cmdline.txt", "console=tty1 root=PARTUUID=1 rootwait\n"),
            ("/boot/cmdline.txt", "stale\n"),
            ("/etc/containerd/config.toml", "version = 2\ndisabled_plugins = []\n[plugins]\n  [plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]\n    BinaryName = \"\"\n    SystemdCgroup = true\n"),
        ] {
            write(r, path, content);
        }
        fs::create_dir_all(r.join("etc/systemd/system/multi-user.target.wants")).unwrap();
        std::os::unix::fs::symlink(
            "/lib/systemd/system/dphys-swapfile.service",
            r.join("etc/systemd/system/multi-user.target.wants/dphys-swapfile.service"),
        )
        .unwrap();
        fs::create_dir_all(r.join("run/containerd")).unwrap();
        let _socket =
            std::os::unix::net::UnixListener::bind(r.join("run/containerd/containerd.sock"))
                .unwrap();
        tool(
            bin.path(),
            "dpkg-query",
            r#"for p in "$@"; do case $p in
  kubeadm) echo 'package=kubeadm 1.31.2-1.1 hi ' ;;
  kubelet) echo 'package=kubelet 1.31.2-1.1 ii ' ;;
  kubectl) echo 'package=kubectl 1.31.1-1.1 rc ' ;;
  containerd) echo 'package=containerd 1.6.20~ds1-1+b1 ii ' ;;
  -*) ;; *) echo "dpkg-query: no packages found matching $p" >&2 ;;
esac; done; exit 1"#,
        );
        tool(bin.path(), "apt-cache", "[ \"$1\" = madison ] || exit 100\necho '   kubeadm | 1.31.3-1.1 | https://pkgs.k8s.io/core:/stable:/v1.31/deb  Packages'\necho '   kubeadm | 1.31.2-1.1 | https://pkgs.k8s.io/core:/stable:/v1.31/deb  Packages'");
        run_probe(
            r,
            &format!("{}:/usr/bin:/bin", bin.path().display()),
            "gt_sysctls='net.ipv4.ip_forward net.ipv4.tcp_rmem vm.absent'\ngt_modules='br_netfilter overlay'\ngt_cri=/run/containerd/containerd.sock",
        )
    }

    #[test]
    fn the_probe_reads_a_hosts_software_under_its_root_in_one_round_trip() {
        let s = probe_pi().software.expect("a dpkg host has software facts");
        assert_eq!(s.os.as_deref(), Some("Debian GNU/Linux 12 (bookworm)"));
        assert_eq!(
            (s.os_id.as_deref(), s.os_version.as_deref()),
            (Some("debian"), Some("12"))
        );
        assert_eq!(
            s.packages["kubeadm"],
            InstalledPackage {
                version: "1.31.2-1.1".into(),
                held: true
            }
        );
        assert!(!s.packages["kubelet"].held);
        assert!(
            !s.packages.contains_key("kubectl"),
            "only its config files are left"
        );
        assert_eq!(s.packages["containerd"].version, "1.6.20~ds1-1+b1");
        assert_eq!(
            s.apt_source.as_deref(),
            Some("https://pkgs.k8s.io/core:/stable:/v1.31/deb/")
        );
        assert_eq!(s.source_minor(), Some((1, 31)));
        assert!(s.apt_keyring);
        assert_eq!(s.available["kubeadm"], ["1.31.3-1.1", "1.31.2-1.1"]);
        assert_eq!(s.swap, ["/var/swap"]);
        assert_eq!(s.fstab_swap, ["/dev/sda2"]);
        assert!(s.dphys_swapfile);
        assert_eq!(
            s.modules.iter().collect::<Vec<_>>(),
            ["br_netfilter", "overlay"]
        );
        assert_eq!(s.modules_persisted.iter().collect::<Vec<_>>(), ["overlay"]);
        assert_eq!(s.sysctls["net.ipv4.ip_forward"], "0");
        assert_eq!(s.sysctls["net.ipv4.tcp_rmem"], "4096 131072 6291456");
        assert!(!s.sysctls.contains_key("vm.absent"));
        assert_eq!(s.sysctls_persisted["net.ipv4.ip_forward"], "1");
        assert!(!s.has_memory_cgroup());
        assert!(s.containerd_config && s.containerd_systemd_cgroup && !s.containerd_cri_disabled);
        assert!(s.cri_socket);
        assert_eq!(
            s.boot_cmdline,
            Some(BootCmdline {
                path: "/boot/firmware/cmdline.txt".into(),
                content: "console=tty1 root=PARTUUID=1 rootwait".into()
            })
        );
        assert_eq!(
            s.cmdline.as_deref(),
            Some("coherent_pool=1M console=tty1 root=PARTUUID=1")
        );
    }

    #[test]
    fn packaged_kubeadm_and_kubelet_versions_come_from_dpkg_without_running_them() {
        let f = probe_pi();
        // No kubeadm or kubelet program is on the probe's PATH.
        assert_eq!(f.kubeadm_version.as_deref(), Some("v1.31.2"));
        assert_eq!(f.kubelet_version.as_deref(), Some("v1.31.2"));
    }

    /// A host whose kube packages are all held at `version`, probed for
    /// `release`; apt-cache leaves a mark when it runs.
    fn probe_held_at(
        version: &str,
        release: &str,
        joined: bool,
    ) -> (crate::facts::HostFacts, bool) {
        let root = tempfile::tempdir().unwrap();
        let bin = tempfile::tempdir().unwrap();
        let r = root.path();
        write(r, "/var/lib/dpkg/status", "");
        if joined {
            write(r, "/etc/kubernetes/kubelet.conf", "");
        }
        write(r, "/etc/apt/sources.list.d/kubernetes.list", "deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v1.32/deb/ /\n");
        tool(
            bin.path(),
            "dpkg-query",
            &format!(
                "for p in kubeadm kubelet kubectl; do echo \"package=$p {version} hi \"; done"
            ),
        );
        let mark = r.join("madison-ran");
        tool(
            bin.path(),
            "apt-cache",
            &format!(
                "touch '{}'\necho '   kubeadm | 1.32.4-1.1 | https://pkgs.k8s.io/core:/stable:/v1.32/deb  Packages'",
                mark.display()
            ),
        );
        let f = run_probe(
            r,
            &format!("{}:/usr/bin:/bin", bin.path().display()),
            &format!("gt_sysctls=\ngt_modules=\ngt_cri=/x\ngt_release={release}"),
        );
        (f, mark.exists())
    }

    #[test]
    fn the_repository_is_asked_unless_a_joined_host_is_held_at_the_files_release() {
        for release in ["1.32", "1.32.4"] {
            let (f, asked) = probe_held_at("1.32.4-1.1", release, true);
            assert!(!asked, "{release}: held at it, apt-cache is not run");
            assert!(f.software.unwrap().available.is_empty());
        }
        for (held, release, joined) in [
            ("1.32.4-1.1", "1.33", true),
            ("1.32.4-1.1", "1.32.5", true),
            ("1.32.40-1.1", "1.32.4", true),
            // No cluster on it yet: "1.32" is the repository's newest patch.
            ("1.32.4-1.1", "1.32", false),
        ] {
            let (f, asked) = probe_held_at(held, release, joined);
            assert!(asked, "{held} for {release}: the repository is asked");
            assert_eq!(f.software.unwrap().available["kubeadm"], ["1.32.4-1.1"]);
        }
    }

    #[test]
    fn a_host_without_a_dpkg_database_has_no_software_facts() {
        let root = tempfile::tempdir().unwrap();
        let f = run_probe(
            root.path(),
            "/usr/bin:/bin",
            "gt_sysctls=\ngt_modules=\ngt_cri=/x",
        );
        assert_eq!(f.software, None);
    }

    #[test]
    fn software_facts_round_trip_through_json() {
        let f = probe_pi();
        let json = serde_json::to_string(&f).unwrap();
        assert_eq!(
            serde_json::from_str::<crate::facts::HostFacts>(&json).unwrap(),
            f
        );
    }
}
