//! The systemd units packages bring (kubelet, containerd, dphys-swapfile):
//! enabled = the unit's link in `/etc/systemd/system/multi-user.target.wants`,
//! as systemd keeps it. The kubelet's running and enabled state stays in the
//! cluster state (see `system.rs`); containerd runs while its socket exists.

use super::host::Host;
use super::{containerd, dpkg, kernel, state};

const WANTS: &str = "/etc/systemd/system/multi-user.target.wants";

/// The package that installs each unit the lab simulates beyond the image's own.
pub(crate) fn unit_package(unit: &str) -> Option<&'static [&'static str]> {
    Some(match unit {
        "kubelet" => &["kubelet"],
        "containerd" => &["containerd", "containerd.io"],
        "dphys-swapfile" => &["dphys-swapfile"],
        _ => return None,
    })
}

/// Whether the unit's package is installed (units of the image itself always are).
pub(crate) fn unit_exists(host: &Host, unit: &str) -> bool {
    match unit_package(unit) {
        Some(pkgs) => {
            let db = dpkg::load(host);
            pkgs.iter()
                .any(|p| db.get(*p).is_some_and(dpkg::Entry::installed))
        }
        None => true,
    }
}

fn wants(unit: &str) -> String {
    format!("{WANTS}/{unit}.service")
}

pub(crate) fn unit_enabled(host: &Host, unit: &str) -> bool {
    host.path(&wants(unit)).symlink_metadata().is_ok()
}

/// Enables or disables a unit; whether that changed anything.
pub(crate) fn set_enabled(host: &Host, unit: &str, on: bool) -> bool {
    let was = unit_enabled(host, unit);
    if on && !was {
        let _ = std::fs::create_dir_all(host.path(WANTS));
        let _ = std::os::unix::fs::symlink(
            format!("/lib/systemd/system/{unit}.service"),
            host.path(&wants(unit)),
        );
    } else if !on && was {
        host.remove_file(&wants(unit));
    }
    was != on
}

/// kubelet's postinst: the unit enabled, not running until kubeadm configures it.
pub(crate) fn kubelet_installed(host: &Host) -> std::io::Result<()> {
    state::update_hosts(&host.lab_dir, |s| {
        let h = s.host_mut(&host.name);
        h.kubelet_enabled = true;
    })
}

/// What removing a package stops.
pub(crate) fn package_removed(host: &Host, package: &str) {
    match package {
        "kubelet" => {
            let _ = state::update_hosts(&host.lab_dir, |s| {
                s.host_mut(&host.name).kubelet_running = false
            });
        }
        "containerd" | "containerd.io" => {
            containerd::stop(host);
            set_enabled(host, "containerd", false);
        }
        "dphys-swapfile" => {
            kernel::dphys_swapoff(host);
            set_enabled(host, "dphys-swapfile", false);
        }
        _ => {}
    }
}

/// Starts what is enabled, as systemd does at boot.
pub(crate) fn boot(host: &Host) -> std::io::Result<()> {
    if unit_exists(host, "containerd") && unit_enabled(host, "containerd") {
        let _ = containerd::start(host);
    }
    let kubelet = unit_exists(host, "kubelet");
    stopped_kubelet(host);
    state::update_hosts(&host.lab_dir, |s| {
        if kubelet && s.host(&host.name).kubelet_enabled {
            start_kubelet(host, s);
        }
    })
}

/// Marks a kubelet that systemd keeps restarting because it exits at start;
/// holds the kubelet's last fatal log line.
const KUBELET_CRASHLOOP: &str = "/run/gt-lab-kubelet-crashloop";

/// Why the kubelet exits at start on this host, in its own words; `None` when it can run.
pub(crate) fn kubelet_blocker(host: &Host) -> Option<String> {
    const CRI: &str = "unix:///var/run/containerd/containerd.sock";
    if kernel::swap_on(host) {
        let mut lines = vec!["Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority".to_string()];
        lines.extend(kernel::swaps_listing(host));
        return Some(format!(
            "failed to run Kubelet: running with swap on is not supported, please disable swap! or set --fail-swap-on flag to false. /proc/swaps contained: [{}]",
            lines.join(" ")
        ));
    }
    match containerd::loaded(host) {
        None => return Some(format!(
            "failed to run Kubelet: validate service connection: validate CRI v1 runtime API for endpoint \"{CRI}\": rpc error: code = Unavailable desc = connection error: desc = \"transport: Error while dialing: dial unix /var/run/containerd/containerd.sock: connect: no such file or directory\""
        )),
        Some(l) if !l.cri => return Some(format!(
            "failed to run Kubelet: validate service connection: validate CRI v1 runtime API for endpoint \"{CRI}\": rpc error: code = Unimplemented desc = unknown service runtime.v1.RuntimeService"
        )),
        Some(_) => {}
    }
    if !kernel::has_memory_cgroup(host) {
        return Some("failed to run Kubelet: system validation failed - Following Cgroup subsystem not mounted: [memory]".into());
    }
    None
}

/// The kubelet's last fatal line while systemd restarts it.
pub(crate) fn kubelet_crashloop(host: &Host) -> Option<String> {
    host.read(KUBELET_CRASHLOOP)
}

/// systemd starts the kubelet: it runs, or exits and is restarted forever
/// (running = false, the crash loop marked) until what stops it is fixed.
pub(crate) fn start_kubelet(host: &Host, s: &mut state::State) {
    match kubelet_blocker(host) {
        Some(why) => {
            s.host_mut(&host.name).kubelet_running = false;
            let _ = host.write(KUBELET_CRASHLOOP, &why);
        }
        None => {
            let was_running = s.host(&host.name).kubelet_running;
            s.host_mut(&host.name).kubelet_running = true;
            host.remove_file(KUBELET_CRASHLOOP);
            if !was_running {
                super::kubelet::started(host, s, super::clock::now(), false);
            }
        }
    }
}

/// `systemctl restart kubelet`: a new kubelet process even when one runs.
pub(crate) fn restart_kubelet(host: &Host, s: &mut state::State) {
    s.host_mut(&host.name).kubelet_running = false;
    start_kubelet(host, s);
    if s.host(&host.name).kubelet_running {
        super::kubelet::started(host, s, super::clock::now(), true);
    }
}

/// systemd stops the kubelet (and its restarts).
pub(crate) fn stopped_kubelet(host: &Host) {
    host.remove_file(KUBELET_CRASHLOOP);
}

/// A crash-looping kubelet comes up at its next restart once nothing stops it.
pub(crate) fn retry_kubelet(host: &Host) {
    if kubelet_crashloop(host).is_some() && kubelet_blocker(host).is_none() {
        let _ = state::update_hosts(&host.lab_dir, |s| start_kubelet(host, s));
    }
}
