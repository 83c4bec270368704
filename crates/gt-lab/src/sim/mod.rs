//! Simulated `kubeadm`, `kubectl`, `systemctl`, `kubelet` and `uname`.
//!
//! The gt binary runs as one of these when invoked under its name (the lab puts
//! symlinks named after them first on each simulated host's PATH). Each run
//! finds its lab directory and host from `GT_HOST_ROOT=DIR/hosts/NODE`, works on
//! the host's files under that root and on the cluster's shared state in
//! `DIR/state.json` (see [`state`]), sleeps a realistic, scaled latency
//! ([`latency`]) and appends one line to `DIR/logs/NODE.log` ([`log`]).
//!
//! What the tools print follows docs/kubeadm.md to the byte where it
//! gives bytes, and real kubeadm 1.32 / kubectl 1.32 output elsewhere.
//!
//! Config files (`kubeadm init|join --config FILE`): the simulator reads JSON
//! only (JSON is valid YAML, which is what real kubeadm reads): one object, an
//! array of objects, or several objects separated by lines of `---`. Each object
//! is a kubeadm document (`InitConfiguration`, `ClusterConfiguration`,
//! `JoinConfiguration`, `kubeadm.k8s.io/v1beta3` or `v1beta4`); kubelet and
//! kube-proxy documents are accepted and ignored. Certificates are ECDSA P-256
//! (kubeadm's `encryptionAlgorithm: ECDSA-P256`), real X.509 made with rcgen.

pub mod api;
pub(crate) mod apistore;
pub(crate) mod apt;
pub(crate) mod client;
pub(crate) mod clock;
pub(crate) mod containerd;
pub(crate) mod cri;
pub(crate) mod debver;
pub(crate) mod dpkg;
pub(crate) mod etcd;
pub(crate) mod fetch;
pub(crate) mod files;
pub(crate) mod flags;
pub mod host;
pub mod image;
pub(crate) mod kernel;
pub(crate) mod kubeadm;
pub(crate) mod kubectl;
pub(crate) mod kubelet;
pub mod latency;
pub mod log;
pub(crate) mod pki;
pub(crate) mod reboot;
pub mod repos;
pub(crate) mod services;
pub(crate) mod state;
pub(crate) mod system;
pub(crate) mod table;
pub(crate) mod versions;
pub(crate) mod workloads;
pub(crate) mod yaml;

use std::process::ExitCode;

/// Tools the gt binary answers as when invoked under their name (argv[0]).
pub const TOOLS: &[&str] = &[
    "kubeadm",
    "kubectl",
    "systemctl",
    "kubelet",
    "uname",
    "containerd",
    "crictl",
    "dphys-swapfile",
    "apt-get",
    "apt-mark",
    "apt-cache",
    "dpkg-query",
    "sysctl",
    "modprobe",
    "swapoff",
    "swapon",
    "curl",
    "gpg",
    "reboot",
    "shutdown",
    reboot::BOOT_TOOL,
    crate::LAB_SHELL,
    crate::SSH_SESSION,
];

/// The tools every host has (the lab's `DIR/bin`); the others come with
/// packages, into each host's own `/usr/bin` (see [`dpkg`]).
pub fn os_tools() -> impl Iterator<Item = &'static str> {
    TOOLS
        .iter()
        .copied()
        .filter(|t| dpkg::package_of(t).is_none())
}

/// Entry point when gt runs as one of `TOOLS`.
pub fn main(tool: &str, args: Vec<String>) -> ExitCode {
    if let Some(code) = crate::dispatch_shell(tool, &args) {
        return code;
    }
    if tool == reboot::BOOT_TOOL {
        return ExitCode::from(reboot::boot_main(&args));
    }
    let started = std::time::Instant::now();
    latency::tool_started(started);
    let mut host = match host::Host::from_env() {
        Ok(h) => h,
        Err(msg) => {
            eprintln!("{tool} (gt lab simulator): {msg}");
            return ExitCode::from(127);
        }
    };
    if let Some(package) = dpkg::package_of(tool) {
        // A package's program reports the installed package's version.
        let db = dpkg::load(&host);
        if !dpkg::program_installed(&db, tool) {
            eprintln!("sh: 1: {tool}: not found");
            return ExitCode::from(127);
        }
        if let Some(e) = db.get(package).filter(|e| e.installed()) {
            host.set_kubernetes_version(&format!("v{}", debver::upstream(&e.version)));
        }
    }
    let code = match tool {
        "kubeadm" => kubeadm::run(&host, &args),
        "kubectl" => kubectl::run(&host, &args),
        "systemctl" if args.iter().any(|a| a == "reboot") => reboot::reboot(&host, &[]),
        "systemctl" => system::systemctl(&host, &args),
        "kubelet" => system::kubelet(&host, &args),
        "uname" => system::uname(&host, &args),
        "containerd" => containerd::containerd(&host, &args),
        "crictl" => containerd::crictl(&host, &args),
        "apt-get" => apt::apt_get(&host, &args),
        "apt-mark" => apt::apt_mark(&host, &args),
        "apt-cache" => apt::apt_cache(&host, &args),
        "dpkg-query" => dpkg::dpkg_query(&host, &args),
        "sysctl" => kernel::sysctl(&host, &args),
        "modprobe" => kernel::modprobe(&host, &args),
        "swapoff" => kernel::swapoff(&host, &args),
        "dphys-swapfile" => kernel::dphys_swapfile(&host, &args),
        "swapon" => kernel::swapon(&host, &args),
        "curl" => fetch::curl(&host, &args),
        "gpg" => fetch::gpg(&host, &args),
        "reboot" => reboot::reboot(&host, &args),
        "shutdown" => reboot::reboot(&host, &args[args.len().min(1)..]),
        other => {
            eprintln!("{other}: not a simulated tool");
            127
        }
    };
    let entry = log::LogEntry {
        time: clock::rfc3339(clock::now()),
        tool: tool.to_string(),
        argv: args,
        stdin_bytes: host::stdin_bytes(),
        exit: i32::from(code),
        ms: started.elapsed().as_millis() as u64,
    };
    if let Err(e) = log::append(&host.lab_dir, &host.name, &entry) {
        eprintln!("{tool} (gt lab simulator): cannot write the command log: {e}");
    }
    ExitCode::from(code)
}
