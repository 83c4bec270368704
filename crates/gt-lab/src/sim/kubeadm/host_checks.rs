//! kubeadm 1.32's preflight checks of the host itself (its `addCommonChecks`
//! and IPv4 checks), the container runtime it must reach, and its wait for a
//! healthy kubelet: what an unprepared host fails, where and how a real one
//! does.

use super::preflight::Check;
use super::{fail, EXIT_ERROR};
use crate::sim::host::Host;
use crate::sim::latency::Op;
use crate::sim::{containerd, debver, dpkg, kernel, services, state};

pub(super) const CRI_ENDPOINT: &str = "unix:///var/run/containerd/containerd.sock";

/// Why kubeadm cannot talk to the container runtime; `None` when it can.
pub(super) fn cri_error(host: &Host) -> Option<String> {
    let why = match containerd::loaded(host) {
        None => "rpc error: code = Unavailable desc = connection error: desc = \"transport: Error while dialing: dial unix /var/run/containerd/containerd.sock: connect: no such file or directory\"",
        Some(l) if !l.cri => "rpc error: code = Unimplemented desc = unknown service runtime.v1.RuntimeService",
        Some(_) => return None,
    };
    Some(format!(
        "failed to create new CRI runtime service: validate service connection: validate CRI v1 runtime API for endpoint \"{CRI_ENDPOINT}\": {why}"
    ))
}

/// A klog warning line as kubeadm's stderr shows it (`W1130 20:45:12.123456   4242 checks.go:1080] ...`).
fn klog_warning(msg: &str) {
    let now = crate::sim::clock::now();
    let t = time::OffsetDateTime::from_unix_timestamp_nanos((now * 1e9) as i128)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    eprintln!(
        "W{:02}{:02} {:02}:{:02}:{:02}.{:06} {:>7} checks.go:1080] {msg}",
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond(),
        std::process::id()
    );
}

fn minor_of(v: &str) -> Option<u32> {
    v.trim_start_matches('v').split('.').nth(1)?.parse().ok()
}

/// The host checks kubeadm appends to init's and join's own.
pub(super) fn common_checks(
    host: &Host,
    control_plane_version: Option<&str>,
) -> Vec<Option<Check>> {
    let mut v = Vec::new();
    if let Some(e) = cri_error(host) {
        klog_warning(&format!(
            "[preflight] WARNING: Couldn't create the interface used for talking to the container runtime: {e}"
        ));
    }
    if kernel::swap_on(host) {
        v.push(Some(Check::warning(
            "Swap",
            "swap is supported for cgroup v2 only. The kubelet must be properly configured to use swap. Please refer to https://kubernetes.io/docs/concepts/architecture/nodes/#swap-memory, or disable swap on the node",
        )));
    }
    let db = dpkg::load(host);
    let has = |p: &str| db.get(p).is_some_and(dpkg::Entry::installed);
    let kubeadm_minor = minor_of(&host.node().kubernetes_version).unwrap_or(32);
    let mut programs: Vec<(&str, bool, bool)> = vec![
        ("ip", has("iproute2"), true),
        ("iptables", has("iptables"), true),
        ("mount", has("mount"), true),
        ("nsenter", has("util-linux"), true),
    ];
    if kubeadm_minor < 32 {
        programs.push(("conntrack", has("conntrack"), true));
    }
    programs.extend([
        ("ebtables", has("ebtables"), false),
        ("ethtool", has("ethtool"), false),
        ("socat", has("socat"), false),
        ("tc", has("iproute2"), false),
        ("touch", true, false),
    ]);
    for (exe, present, mandatory) in programs {
        if !present {
            let name = format!("FileExisting-{exe}");
            let msg = format!("{exe} not found in system path");
            v.push(Some(if mandatory {
                Check::error(&name, &msg)
            } else {
                Check::warning(&name, &msg)
            }));
        }
    }
    if !kernel::has_memory_cgroup(host) {
        println!("[preflight] The system verification failed. Printing the output from the verification:");
        println!(
            "KERNEL_VERSION: {}",
            crate::sim::host::kernel_release(&host.node().arch)
        );
        println!("OS: Linux");
        let controllers = host.read(kernel::CONTROLLERS).unwrap_or_default();
        for c in [
            "cpu", "cpuset", "devices", "freezer", "memory", "pids", "hugetlb", "io",
        ] {
            let on = matches!(c, "devices" | "freezer")
                || controllers.split_whitespace().any(|w| w == c);
            println!(
                "CGROUPS_{}: {}",
                c.to_uppercase(),
                if on { "enabled" } else { "missing" }
            );
        }
        v.push(Some(Check::error(
            "SystemVerification",
            "missing required cgroups: memory",
        )));
    }
    v.push(kubelet_version(host, &db, control_plane_version));
    if !services::unit_exists(host, "kubelet") {
        v.push(Some(Check::warning(
            "Service-Kubelet",
            "kubelet service does not exist",
        )));
    } else if !state::read_hosts(&host.lab_dir)
        .map(|s| s.host(&host.name).kubelet_enabled)
        .unwrap_or(true)
    {
        v.push(Some(Check::warning(
            "Service-Kubelet",
            "kubelet service is not enabled, please run 'systemctl enable kubelet.service'",
        )));
    }
    if !kernel::ip_forward(host) {
        v.push(Some(Check::error(
            "FileContent--proc-sys-net-ipv4-ip_forward",
            "/proc/sys/net/ipv4/ip_forward contents are not set to 1",
        )));
    }
    v
}

fn kubelet_version(host: &Host, db: &dpkg::Db, control_plane: Option<&str>) -> Option<Check> {
    let Some(kubelet) = db.get("kubelet").filter(|e| e.installed()) else {
        return Some(Check::error(
            "KubeletVersion",
            "couldn't get kubelet version: cannot execute 'kubelet --version': executable file not found in $PATH",
        ));
    };
    let kubelet = format!("v{}", debver::upstream(&kubelet.version));
    let kubelet_minor = minor_of(&kubelet)?;
    let kubeadm_minor = minor_of(&host.node().kubernetes_version)?;
    if kubelet_minor + 3 < kubeadm_minor {
        return Some(Check::error(
            "KubeletVersion",
            &format!("Kubelet version \"{kubelet}\" is lower than kubeadm can support. Please upgrade kubelet"),
        ));
    }
    let cp = control_plane?;
    let cp_minor = minor_of(cp)?;
    (kubelet_minor > cp_minor).then(|| {
        Check::error(
            "KubeletVersion",
            &format!(
                "the kubelet version is higher than the control plane version. This is not a supported version skew and may lead to a malfunctional cluster. Kubelet version: \"{kubelet}\" Control plane version: \"{cp}\""
            ),
        )
    })
}

/// Image pull, the last step of init's (and a control plane join's) preflight:
/// without a container runtime this is where kubeadm stops. 1.32's
/// `RunPullImagesCheck` turns the failed connection into a preflight report
/// of its own (no `[ERROR ...]` tag).
pub(super) fn pull_images(host: &Host) -> Result<(), u8> {
    match cri_error(host) {
        None => Ok(()),
        Some(e) => Err(super::preflight::preflight_failure(
            host,
            &super::preflight::fatal_report(&e),
        )),
    }
}

const KUBELET_FAIL: &str = "\nUnfortunately, an error has occurred, likely caused by:\n\t- The kubelet is not running\n\t- The kubelet is unhealthy due to a misconfiguration of the node in some way (required cgroups disabled)\n\nIf you are on a systemd-powered system, you can try to troubleshoot the error with the following commands:\n\t- 'systemctl status kubelet'\n\t- 'journalctl -xeu kubelet'\n";
const HEALTHZ_REFUSED: &str = "The HTTP call equal to 'curl -sSL http://127.0.0.1:10248/healthz' returned error: Get \"http://127.0.0.1:10248/healthz\": dial tcp 127.0.0.1:10248: connect: connection refused";

/// kubeadm starts the kubelet and waits for it: a kubelet that exits at
/// start (swap on, no runtime, no memory cgroup, or a `--node-labels` key it
/// may not set on itself: `restricted`, from `cluster::restricted_labels`)
/// fails the command after the wait, and systemd keeps restarting it.
/// `phase` is kubeadm's phase name.
pub(super) fn start_kubelet_with_labels_or_fail(
    host: &Host,
    phase: &str,
    restricted: &[String],
) -> Result<(), u8> {
    if restricted.is_empty() && services::kubelet_blocker(host).is_none() {
        return Ok(());
    }
    let _ = state::update_hosts(&host.lab_dir, |s| services::start_kubelet(host, s));
    host.pause(Op::KubeletCheckTimeout);
    println!("[kubelet-check] The kubelet is not healthy after 4m0.000452178s");
    if phase == "wait-control-plane" {
        println!("{KUBELET_FAIL}");
    }
    Err(fail(
        &format!("error execution phase {phase}: failed while waiting for the kubelet to start: {HEALTHZ_REFUSED}"),
        EXIT_ERROR,
    ))
}
