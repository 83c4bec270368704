//! Simulated kubeadm, kubectl, systemctl, kubelet and uname (issue 3).

pub mod api;

use std::process::ExitCode;

/// Tools the gt binary answers as when invoked under their name (argv[0]).
pub const TOOLS: &[&str] = &[
    "kubeadm",
    "kubectl",
    "systemctl",
    "kubelet",
    "uname",
    crate::lab::LAB_SHELL,
    crate::lab::SSH_SESSION,
];

/// Entry point when gt runs as one of `TOOLS`.
pub fn main(tool: &str, _args: Vec<String>) -> ExitCode {
    if let Some(code) = crate::lab::dispatch_shell(tool, &_args) {
        return code;
    }
    eprintln!("{tool}: the lab simulator is not built yet");
    ExitCode::from(127)
}
