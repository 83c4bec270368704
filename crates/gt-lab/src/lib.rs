//! The lab: a simulated goldentooth on one machine, driven only through
//! gt's public behaviour.
//!
//! This crate does not depend on gt: it is an independent implementation of
//! the real tools, with its own reader for the topology (`source`) and its
//! own parsers, so that it can catch gt's mistakes instead of sharing them.
//! gt links it for `gt lab` and for the simulated tools, which are the gt
//! binary invoked under their names ([`sim::TOOLS`], [`sim::main`]).
//!
//! `gt lab up` reads a topology (a cluster.toml), maps every address onto
//! loopback (10.4.0.11 → 127.4.0.11) and builds a lab directory `DIR`:
//!
//! ```text
//! DIR/lab.json          the topology every simulated tool reads (topology.rs)
//! DIR/lab-state.json    what `up` started and how (transport, ssh port, sshd groups)
//! DIR/cluster.toml      a valid gt config that reaches the simulated hosts
//! DIR/hosts/NODE/       each simulated host's root (GT_HOST_ROOT)
//! DIR/bin/              kubeadm, kubectl, ... gt-lab-sh, gt-lab-ssh-session → the gt binary
//! DIR/faults/NODE.json  injected faults (`gt lab fault`)
//! DIR/logs/             NODE.log (every simulated command), sshd-N.log, serve.log
//! DIR/pids/             NAME.pid of every process the lab started
//! DIR/ssh/              host and user keys, known_hosts, sshd configs (ssh transport)
//! DIR/haproxy.cfg       the load balancer's config (when haproxy is installed)
//! ```
//!
//! Two transports reach the hosts. `local`: gt runs each command through the
//! lab shell `DIR/bin/gt-lab-sh` with the host's GT_HOST_ROOT and PATH; the
//! shell honours `down` and `hang` faults. `ssh`: real sshd processes (at most
//! 16 listen addresses each) listen on every host's loopback address on one
//! port; their ForceCommand (`. DIR/ssh/session.sh`, or `gt-lab-ssh-session`
//! for a host with a fault) finds the host from the address the client
//! connected to. A host that is `down` is removed from its sshd's
//! listen addresses, so connections are really refused.
//!
//! A background daemon (`gt lab serve`) answers `/readyz` and `/livez` on
//! every control plane's `:6443`; a real HAProxy (when installed) balances the
//! endpoint over them, otherwise the daemon answers on the endpoint too.

mod addr;
mod config;
mod daemon;
mod fault;
mod haproxy;
mod procs;
mod session;
mod setup;
pub mod sim;
mod source;
mod ssh;
mod state;
mod status;
pub mod topology;

pub(crate) use addr::to_loopback;
pub use daemon::serve;
pub use fault::{fault, FaultKind, FaultReport, DEFAULT_SLOW_FACTOR};
pub(crate) use session::{dispatch as dispatch_shell, LAB_SHELL, SSH_SESSION};
pub use setup::{down, up, CheckConfig, DownReport, UpOptions, UpReport};
pub use sim::etcd::{EtcdMode, ETCD_DIR_ENV};
pub use sim::image::HostImage;
pub use state::{EndpointServer, LabState, SshState, Transport};
pub use status::{status, HostStatus, LabStatus, ProcessStatus};

use std::path::PathBuf;

/// Default lab directory, relative to the working directory.
pub const DEFAULT_DIR: &str = ".gt-lab";

/// What can go wrong running the lab; each says what, where and what to do.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("a lab is already up in {dir}; run `gt lab down --dir {dir}` first", dir = .0.display())]
    AlreadyUp(PathBuf),
    #[error("no lab in {dir} (no {dir}/lab.json); start one with `gt lab up --dir {dir}`", dir = .0.display())]
    NoLab(PathBuf),
    #[error("{path}: the topology is not a valid gt config:\n{diagnostics}", path = .path.display())]
    Rejected { path: PathBuf, diagnostics: String },
    #[error("{path}: the lab cannot read this topology: {message}", path = .path.display())]
    Topology { path: PathBuf, message: String },
    #[error("{path}: {message}", path = .path.display())]
    Address { path: PathBuf, message: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Process(String),
    #[error("unknown node {node:?} in the lab in {dir}{hint}", dir = .dir.display())]
    UnknownNode {
        node: String,
        dir: PathBuf,
        hint: String,
    },
    #[error("{0}")]
    Usage(String),
}

impl LabError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> LabError {
        let what = what.into();
        move |source| LabError::Io { what, source }
    }
}
