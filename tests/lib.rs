//! gt's integration tests, one binary with a module per area: the CLI
//! without a cluster, the lab itself, apply and its lock, observing a
//! cluster, etcd observed and protected, the simulated tools, the SSH
//! transport, and version upgrades. `support` holds what they share (the harness is
//! `support::gt::Test`).

mod apply;
mod backup;
mod cli;
mod cluster;
mod etcd;
mod host;
mod lab;
mod sim;
mod ssh;
mod support;
mod upgrade;
