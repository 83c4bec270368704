//! How long simulated operations take.
//!
//! Defaults are what a Raspberry Pi 4 cluster shows with images pre-pulled
//! (kubeadm 1.32, containerd, Calico), rounded:
//!
//! | operation | seconds | why |
//! |---|---|---|
//! | `kubeadm init` | 60 | certs, static pods, waiting for a healthy kubelet and API server |
//! | API server ready after init / CP join | 10 | post-start hooks, informer sync, HAProxy check interval |
//! | `kubeadm join --control-plane` | 40 | cert download, etcd member add + learner sync, static pods |
//! | `kubeadm join` (worker) | 20 | discovery, TLS bootstrap, kubelet start |
//! | kubeadm discovery timeout (bad token, no endpoint) | 300 | kubeadm's default `timeouts.discovery` (5m) |
//! | kubeadm preflight failure | 1 | the checks are local and quick |
//! | `kubeadm init phase upload-certs` | 2 | encrypt and store the Secret |
//! | `kubeadm token create/delete/list` | 1 | one API round trip plus client start-up |
//! | `kubeadm reset` | 10 | stop kubelet, remove etcd member, unmount, delete |
//! | CNI ready after `kubectl apply` / after a join | 15 | image pull of calico-node, pod start |
//! | `kubectl drain` | 5 | cordon + evictions |
//! | `kubectl apply` | 2 | a CNI manifest is ~30 objects |
//! | other `kubectl` | 0.3 | client start-up and one request |
//! | `systemctl start/stop/restart kubelet` | 0.5 | |
//! | `systemctl is-active/status/enable` | 0.02 | |
//! | `kubelet --version`, `uname`, `kubeadm version` | 0.01 | also `dpkg-query`, `apt-mark showhold`, `sysctl`, `modprobe`, `swapoff` |
//! | `apt-get update` | 3 | InRelease and Packages of each source |
//! | one package unpacked and set up by `apt-get install` | 4 | a kubelet .deb on a Pi's SD card |
//! | `apt-cache madison/policy`, `apt-mark hold/unhold` | 0.3 | reading the package cache |
//! | `curl` of a signing key | 0.5 | one HTTPS round trip |
//! | `reboot`: down until sshd answers again | 45 | a Raspberry Pi 4 from power-off to sshd |
//! | kubeadm's wait for a kubelet that never becomes healthy | 240 | `[kubelet-check]`'s 4m0s |
//! | `kubeadm upgrade apply` (first control plane) | 75 | pull four new images on a Pi, then etcd, kube-apiserver, controller-manager and scheduler each restarted by the kubelet and waited for (about 15 s each), config upload, addons |
//! | `kubeadm upgrade node` on a control plane | 45 | the same static Pod restarts, no config upload; images pulled likewise |
//! | `kubeadm upgrade node` on a worker | 5 | rewrite the kubelet configuration only |
//! | `kubeadm upgrade plan` / apply's health checks | 5 | the `upgrade-health-check` Job: create, schedule, run pause, delete |
//! | the health-check Job that never completes | 15 | kubeadm's fixed 15 s wait for it |
//! | kubelet restarted until its Node is Ready again | 15 | container runtime status, PLEG and pod re-sync before `KubeletReady` |
//! | `kubectl drain`'s wait before retrying an eviction a PodDisruptionBudget refused | 5 | kubectl's fixed 5 s |
//!
//! Every latency is multiplied by the lab's speed (`lab.json` `speed`, or the
//! `GT_LAB_SPEED` environment variable, which wins) and by the host's `slow`
//! fault. Tools sleep outside the state lock. A row includes the real
//! tool's start-up and the phases before its end: the lab's own work within
//! an operation (its start-up, `kubeadm init`'s real etcd) is taken out of
//! the sleep, not added to it.
//!
//! A full goldentooth bootstrap by `gt apply` spends 223.9 s at speed 1 on
//! its critical path (init 60, CNI apply 2, the first gate waiting CniReady
//! 15, two control-plane joins of 40 + 15 until Ready, worker joins of
//! 20 + 15 in parallel, the gates' kubectl polls, the token revoked):
//! benches/apply.rs computes it from this table and the plan's DAG.

use super::host::Host;
use std::time::{Duration, Instant};

/// Environment variable overriding `lab.json`'s speed.
pub(crate) const SPEED_ENV: &str = "GT_LAB_SPEED";

/// One simulated operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Init,
    ApiReady,
    JoinControlPlane,
    JoinWorker,
    DiscoveryTimeout,
    PreflightFailure,
    UploadCerts,
    Token,
    Reset,
    CniReady,
    Drain,
    Apply,
    Kubectl,
    Crictl,
    SystemctlChange,
    SystemctlQuery,
    Instant,
    AptUpdate,
    PackageInstall,
    AptQuery,
    Download,
    Reboot,
    KubeletCheckTimeout,
    UpgradeApply,
    UpgradeNodeControlPlane,
    UpgradeNodeWorker,
    UpgradeHealthCheck,
    UpgradeHealthTimeout,
    KubeletRestartReady,
    EvictionRetry,
}

/// The default latency of each operation, in seconds at speed 1.
pub(crate) const LATENCIES: &[(Op, f64)] = &[
    (Op::Init, 60.0),
    (Op::ApiReady, 10.0),
    (Op::JoinControlPlane, 40.0),
    (Op::JoinWorker, 20.0),
    (Op::DiscoveryTimeout, 300.0),
    (Op::PreflightFailure, 1.0),
    (Op::UploadCerts, 2.0),
    (Op::Token, 1.0),
    (Op::Reset, 10.0),
    (Op::CniReady, 15.0),
    (Op::Drain, 5.0),
    (Op::Apply, 2.0),
    (Op::Kubectl, 0.3),
    // crictl: a Go client's start-up and one request to the host's own
    // runtime socket (no API server): about half a kubectl on a Pi.
    (Op::Crictl, 0.15),
    (Op::SystemctlChange, 0.5),
    (Op::SystemctlQuery, 0.02),
    (Op::Instant, 0.01),
    (Op::AptUpdate, 3.0),
    (Op::PackageInstall, 4.0),
    (Op::AptQuery, 0.3),
    (Op::Download, 0.5),
    (Op::Reboot, 45.0),
    (Op::KubeletCheckTimeout, 240.0),
    (Op::UpgradeApply, 75.0),
    (Op::UpgradeNodeControlPlane, 45.0),
    (Op::UpgradeNodeWorker, 5.0),
    (Op::UpgradeHealthCheck, 5.0),
    (Op::UpgradeHealthTimeout, 15.0),
    (Op::KubeletRestartReady, 15.0),
    (Op::EvictionRetry, 5.0),
];

impl Op {
    /// Seconds at speed 1.
    pub fn default_seconds(self) -> f64 {
        LATENCIES
            .iter()
            .find(|(op, _)| *op == self)
            .map(|(_, s)| *s)
            .expect("every Op is in LATENCIES")
    }
}

thread_local! {
    /// When this process began as a simulated tool, until its first
    /// operation counts that time: a row of the table ("client start-up
    /// and one request") includes the tool's own start-up, and the lab's
    /// (starting the gt binary, reading its files and the state) is no
    /// part of what a real tool spends.
    static TOOL_STARTED: std::cell::Cell<Option<Instant>> = const { std::cell::Cell::new(None) };
}

/// Marks the start of the simulated tool this process runs as (`sim::main`).
pub(crate) fn tool_started(at: Instant) {
    TOOL_STARTED.with(|t| t.set(Some(at)));
}

/// The tool's start, once: for its first operation.
fn take_tool_start() -> Option<Instant> {
    TOOL_STARTED.with(std::cell::Cell::take)
}

/// What is left of `latency` seconds after `spent`.
fn rest_of(latency: f64, spent: Duration) -> Duration {
    Duration::from_secs_f64((latency - spent.as_secs_f64()).max(0.0))
}

impl Host {
    /// The lab-wide speed factor: `GT_LAB_SPEED`, else `lab.json`'s speed.
    pub(crate) fn speed(&self) -> f64 {
        std::env::var(SPEED_ENV)
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|s| *s >= 0.0 && s.is_finite())
            .unwrap_or(self.topology.speed)
    }

    /// Seconds this host takes for `op` (speed × slow fault applied).
    pub fn latency(&self, op: Op) -> f64 {
        let slow = self.faults.slow.filter(|s| *s > 0.0).unwrap_or(1.0);
        op.default_seconds() * self.speed() * slow
    }

    /// Sleeps what is left of `op`'s latency after `spent` on the lab's own
    /// work within it (nothing once that work took longer); for the tool's
    /// first operation, at least everything since the tool started. Never
    /// call with the state lock held.
    pub(crate) fn pause_rest(&self, op: Op, spent: Duration) {
        let since_start = take_tool_start().map_or(Duration::ZERO, |t| t.elapsed());
        let rest = rest_of(self.latency(op), spent.max(since_start));
        if !rest.is_zero() {
            std::thread::sleep(rest);
        }
    }

    /// Sleeps the scaled latency of `op`, less what the tool did since it
    /// started when this is its first operation. Never call with the state
    /// lock held.
    pub(crate) fn pause(&self, op: Op) {
        let s = self.latency(op);
        if s > 0.0 {
            std::thread::sleep(Duration::from_secs_f64(s));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_labs_own_work_within_an_operation_is_part_of_its_latency() {
        assert_eq!(
            rest_of(6.0, Duration::from_millis(1500)),
            Duration::from_millis(4500)
        );
        // Work that took longer than the operation leaves nothing to wait.
        assert_eq!(rest_of(0.3, Duration::from_secs(1)), Duration::ZERO);
        assert_eq!(rest_of(0.0, Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn only_a_tools_first_operation_counts_its_start_up() {
        assert_eq!(take_tool_start(), None, "not a tool until marked");
        let at = Instant::now();
        tool_started(at);
        assert_eq!(take_tool_start(), Some(at));
        assert_eq!(take_tool_start(), None);
    }
}
