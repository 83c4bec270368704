//! The simulated hosts' disk images. Every host starts as a fresh install:
//! Debian 12 (bookworm) on amd64, Raspberry Pi OS bookworm (Debian 12 too) on
//! the arm64 Pis, with the distribution's apt sources and package lists, swap
//! on (a partition in /etc/fstab; dphys-swapfile on the Pis), no Kubernetes
//! packages and no container runtime, ip_forward 0, overlay and br_netfilter
//! not loaded, and on the Pis the memory cgroup off.
//!
//! A `prepared` host is what a correct host preparation (the kubeadm install
//! docs) leaves on top: the topology minor's pkgs.k8s.io source and keyring,
//! kubeadm, kubelet and kubectl at the topology's patch (the minor's newest
//! when it names none) installed and held with cri-tools and kubernetes-cni,
//! containerd from Debian configured with `SystemdCgroup = true` and running,
//! swap off and kept off (fstab's line commented out, dphys-swapfile
//! disabled), `net.ipv4.ip_forward = 1` in /etc/sysctl.d/k8s.conf, overlay and
//! br_netfilter loaded and listed in /etc/modules-load.d/k8s.conf, and on the
//! Pis `cgroup_enable=memory cgroup_memory=1` in cmdline.txt.

use super::dpkg::{self, Db, Entry};
use super::host::Host;
use super::{containerd, fetch, kernel, repos, services};
use std::path::Path;

/// How `gt lab up` brings hosts up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostImage {
    /// A fresh OS install: gt has everything to do.
    #[default]
    Bare,
    /// Prepared for kubeadm as its install docs say.
    Prepared,
}

impl HostImage {
    pub fn as_str(self) -> &'static str {
        match self {
            HostImage::Bare => "bare",
            HostImage::Prepared => "prepared",
        }
    }
}

const OS_RELEASE: &str = r#"PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
SUPPORT_URL="https://www.debian.org/support"
BUG_REPORT_URL="https://bugs.debian.org/"
"#;

const DEBIAN_SOURCES: &str = "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\nTypes: deb\nURIs: http://security.debian.org/debian-security\nSuites: bookworm-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n";
const PI_SOURCES_LIST: &str = "deb http://deb.debian.org/debian bookworm main contrib non-free non-free-firmware\ndeb http://deb.debian.org/debian-security/ bookworm-security main contrib non-free non-free-firmware\ndeb http://deb.debian.org/debian bookworm-updates main contrib non-free non-free-firmware\n";
const PI_RASPI_LIST: &str = "deb http://archive.raspberrypi.com/debian/ bookworm main\n";
const PI_CMDLINE: &str = "console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 fsck.repair=yes rootwait";
pub(crate) const K8S_LIST: &str = "/etc/apt/sources.list.d/kubernetes.list";
pub(crate) const K8S_KEYRING: &str = "/etc/apt/keyrings/kubernetes-apt-keyring.gpg";

/// Packages of the OS image (so that dpkg-query knows them and apt does not reinstall them).
const BASE_PACKAGES: &[(&str, &str)] = &[
    ("apt", "2.6.1"),
    ("ca-certificates", "20230311"),
    ("curl", "7.88.1-10+deb12u8"),
    ("gpg", "2.2.40-1.1"),
    ("iproute2", "6.1.0-3"),
    ("kmod", "30+20221128-1"),
    ("mount", "2.38.1-5+deb12u2"),
    ("openssh-server", "1:9.2p1-2+deb12u3"),
    ("procps", "2:4.0.2-3"),
    ("systemd", "252.31-1~deb12u1"),
    ("util-linux", "2.38.1-5+deb12u2"),
];

fn err(what: &str) -> impl Fn(std::io::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// Writes the host's disk as `image` and boots it. lab.json must exist.
pub fn build(root: &Path, image: HostImage) -> Result<(), String> {
    let host = Host::at(root)?;
    let pi = kernel::is_pi(&host);
    std::fs::create_dir_all(host.path("/run")).map_err(err("creating /run"))?;
    std::fs::create_dir_all(host.path("/var")).map_err(err("creating /var"))?;
    let _ = std::os::unix::fs::symlink("../run", host.path("/var/run"));
    for d in [
        "/etc/apt/keyrings",
        "/etc/apt/sources.list.d",
        "/etc/apt/trusted.gpg.d",
        "/etc/sysctl.d",
        "/etc/modules-load.d",
        "/usr/bin",
    ] {
        std::fs::create_dir_all(host.path(d)).map_err(err(d))?;
    }
    let w = |path: &str, text: &str| host.write(path, text).map_err(err(path));
    w("/etc/os-release", OS_RELEASE)?;
    w("/etc/hostname", &format!("{}\n", host.name))?;
    w("/etc/modules", "# /etc/modules: kernel modules to load at boot time.\n#\n# This file contains the names of kernel modules that should be loaded\n# at boot time, one per line. Lines beginning with \"#\" are ignored.\n")?;
    w("/etc/sysctl.conf", "#\n# /etc/sysctl.conf - Configuration file for setting system variables\n# See /etc/sysctl.d/ for additional system variables.\n# See sysctl.conf (5) for information.\n#\n\n#net.ipv4.ip_forward=1\n")?;
    w(
        "/usr/lib/sysctl.d/50-pid-max.conf",
        "kernel.pid_max = 4194304\n",
    )?;
    let mut db: Db = BASE_PACKAGES
        .iter()
        .map(|(n, v)| {
            (
                n.to_string(),
                Entry {
                    version: v.to_string(),
                    want: "install".into(),
                    status: "installed".into(),
                },
            )
        })
        .collect();
    let prepared = image == HostImage::Prepared;
    if pi {
        w("/etc/apt/sources.list", PI_SOURCES_LIST)?;
        w("/etc/apt/sources.list.d/raspi.list", PI_RASPI_LIST)?;
        w("/etc/fstab", "proc            /proc           proc    defaults          0       0\nPARTUUID=4e639091-01  /boot/firmware  vfat    defaults          0       2\nPARTUUID=4e639091-02  /               ext4    defaults,noatime  0       1\n")?;
        w("/etc/dphys-swapfile", "# /etc/dphys-swapfile - user settings for dphys-swapfile package\n\nCONF_SWAPSIZE=512\n")?;
        w(
            "/etc/sysctl.d/98-rpi.conf",
            "kernel.printk = 3 4 1 3\nvm.min_free_kbytes = 16384\n",
        )?;
        w("/boot/cmdline.txt", "DO NOT EDIT THIS FILE\n\nThe file you are looking for has moved to /boot/firmware/cmdline.txt\n")?;
        let cmdline = if prepared {
            format!("{PI_CMDLINE} cgroup_enable=memory cgroup_memory=1")
        } else {
            PI_CMDLINE.to_string()
        };
        w(kernel::PI_CMDLINE_TXT, &format!("{cmdline}\n"))?;
        w(
            "/proc/device-tree/model",
            "Raspberry Pi 4 Model B Rev 1.4\0",
        )?;
        db.insert(
            "dphys-swapfile".into(),
            Entry {
                version: "20100506-7.1+rpt3".into(),
                want: "install".into(),
                status: "installed".into(),
            },
        );
        services::set_enabled(&host, "dphys-swapfile", !prepared);
        dpkg::link_programs(&host, "dphys-swapfile", true).map_err(err("linking programs"))?;
    } else {
        w("/etc/apt/sources.list.d/debian.sources", DEBIAN_SOURCES)?;
        let swap = format!(
            "UUID={} none            swap    sw              0       0",
            kernel::SWAP_UUID
        );
        let swap = if prepared { format!("#{swap}") } else { swap };
        w("/etc/fstab", &format!("# /etc/fstab: static file system information.\n#\n# <file system> <mount point>   <type>  <options>       <dump>  <pass>\nUUID=8d1f5c8e-3f1b-4a6e-9c2d-2b7e3f0a1c55 /               ext4    errors=remount-ro 0       1\n# swap was on /dev/sda3 during installation\n{swap}\n"))?;
    }
    if prepared {
        prepare(&host, &mut db)?;
    }
    dpkg::save(&host, &db).map_err(err(dpkg::STATUS))?;
    refresh_lists(&host)?;
    kernel::boot(&host).map_err(err("booting"))?;
    if prepared {
        containerd::start(&host)?;
    }
    Ok(())
}

/// What `apt-get update` would fetch, for the image's sources.
fn refresh_lists(host: &Host) -> Result<(), String> {
    let sources = repos::read_sources(host).map_err(|e| e.join("\n"))?;
    let arch = host.node().arch.clone();
    for s in &sources {
        for (comp, file, _) in s.indexes(&arch) {
            if let repos::Fetch::Served { packages, .. } =
                repos::serve(host, &s.uri, &s.suite, comp.as_deref())
            {
                let path = format!("{}/{file}", repos::LISTS_DIR);
                host.write(&path, &repos::packages_file(&packages, &arch))
                    .map_err(err(&path))?;
            }
        }
    }
    Ok(())
}

fn prepare(host: &Host, db: &mut Db) -> Result<(), String> {
    let version = host
        .node()
        .kubernetes_version
        .trim_start_matches('v')
        .to_string();
    let minor: u32 = version
        .split('.')
        .nth(1)
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    let packages = repos::k8s_packages(minor).ok_or_else(|| {
        format!(
            "the lab's pkgs.k8s.io holds Kubernetes 1.{}..1.{}: it cannot prepare hosts for {version} (bring them up bare, or choose a version it holds)",
            repos::K8S_MINORS[0].0,
            repos::K8S_MINORS[repos::K8S_MINORS.len() - 1].0
        )
    })?;
    let deb = format!("{version}-1.1");
    if !packages.iter().any(|p| p.version == deb) {
        return Err(format!(
            "the lab's pkgs.k8s.io v1.{minor} has no {deb} (its newest is 1.{minor}.{}-1.1)",
            repos::newest_patch(minor).unwrap_or(0)
        ));
    }
    let w = |path: &str, text: &str| host.write(path, text).map_err(err(path));
    w(
        K8S_LIST,
        &format!(
            "deb [signed-by={K8S_KEYRING}] https://pkgs.k8s.io/core:/stable:/v1.{minor}/deb/ /\n"
        ),
    )?;
    std::fs::write(host.path(K8S_KEYRING), fetch::k8s_keyring()).map_err(err(K8S_KEYRING))?;
    let installed = |v: &str, hold: bool| Entry {
        version: v.to_string(),
        want: if hold { "hold" } else { "install" }.into(),
        status: "installed".into(),
    };
    for p in ["kubeadm", "kubelet", "kubectl"] {
        db.insert(p.into(), installed(&deb, true));
    }
    for p in &packages {
        if p.name == "cri-tools" || p.name == "kubernetes-cni" {
            db.insert(p.name.clone(), installed(&p.version, p.name == "cri-tools"));
        }
    }
    for (n, v) in [
        ("conntrack", "1:1.4.7-1+b2"),
        ("ebtables", "2.0.11-5"),
        ("ethtool", "1:6.1-1"),
        ("iptables", "1.8.9-2"),
        ("socat", "1.7.4.4-2"),
        ("runc", "1.1.5+ds1-1+deb12u1"),
        ("containerd", repos::DEBIAN_CONTAINERD),
    ] {
        db.insert(n.into(), installed(v, false));
    }
    dpkg::save(host, db).map_err(err(dpkg::STATUS))?;
    for p in ["kubeadm", "kubelet", "kubectl", "cri-tools", "containerd"] {
        dpkg::link_programs(host, p, true).map_err(err("linking programs"))?;
    }
    services::kubelet_installed(host).map_err(err("enabling the kubelet"))?;
    services::set_enabled(host, "containerd", true);
    w(
        containerd::CONFIG,
        &containerd::default_config(1).replace("SystemdCgroup = false", "SystemdCgroup = true"),
    )?;
    w("/etc/sysctl.d/k8s.conf", "net.ipv4.ip_forward = 1\n")?;
    w("/etc/modules-load.d/k8s.conf", "overlay\nbr_netfilter\n")?;
    Ok(())
}
