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
pub(crate) mod client;
pub(crate) mod clock;
pub(crate) mod etcd;
pub(crate) mod files;
pub(crate) mod flags;
pub mod host;
pub(crate) mod kubeadm;
pub(crate) mod kubectl;
pub mod latency;
pub mod log;
pub(crate) mod pki;
pub(crate) mod state;
pub(crate) mod system;
pub(crate) mod table;

use std::process::ExitCode;

/// Tools the gt binary answers as when invoked under their name (argv[0]).
pub const TOOLS: &[&str] = &[
    "kubeadm",
    "kubectl",
    "systemctl",
    "kubelet",
    "uname",
    crate::LAB_SHELL,
    crate::SSH_SESSION,
];

/// Entry point when gt runs as one of `TOOLS`.
pub fn main(tool: &str, args: Vec<String>) -> ExitCode {
    if let Some(code) = crate::dispatch_shell(tool, &args) {
        return code;
    }
    let started = std::time::Instant::now();
    let host = match host::Host::from_env() {
        Ok(h) => h,
        Err(msg) => {
            eprintln!("{tool} (gt lab simulator): {msg}");
            return ExitCode::from(127);
        }
    };
    let code = match tool {
        "kubeadm" => kubeadm::run(&host, &args),
        "kubectl" => kubectl::run(&host, &args),
        "systemctl" => system::systemctl(&host, &args),
        "kubelet" => system::kubelet(&host, &args),
        "uname" => system::uname(&host, &args),
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
