//! Simulated kubeadm, kubectl, systemctl, kubelet and uname (issue 3).

pub mod api;

use std::process::ExitCode;

/// Tools the gt binary answers as when invoked under their name (argv[0]).
pub const TOOLS: &[&str] = &["kubeadm", "kubectl", "systemctl", "kubelet", "uname"];

/// Entry point when gt runs as one of `TOOLS`.
pub fn main(tool: &str, _args: Vec<String>) -> ExitCode {
    eprintln!("{tool}: the lab simulator is not built yet");
    ExitCode::from(127)
}
