//! Flags several commands share: what a plan may do beyond the file, where
//! its facts come from, how hosts are observed.

use crate::facts::observe::ObserveOptions;
use crate::parallelism::Parallelism;
use crate::plan::PlanOptions;
use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

/// What the user allows a plan to do beyond the file.
#[derive(Debug, Args, Clone)]
pub struct ConsentFlags {
    /// Also remove Nodes that are in the cluster but not in cluster.toml.
    #[arg(long)]
    pub prune: bool,
    /// Allow resetting and rejoining NODE although it belongs to another cluster (repeatable).
    #[arg(long, value_name = "NODE")]
    pub replace: Vec<String>,
    /// Do not take an etcd backup before a control-plane join or removal
    /// (also: [backup] before_risky_steps = false).
    #[arg(long)]
    pub no_backup: bool,
}

impl ConsentFlags {
    pub fn options(&self) -> PlanOptions {
        PlanOptions {
            prune: self.prune,
            replace: self.replace.iter().cloned().collect(),
            no_backup: self.no_backup,
        }
    }
}

#[derive(Debug, Args, Clone)]
pub struct PlanFlags {
    /// Plan against recorded facts (`gt observe --out FILE`) instead of observing the hosts.
    #[arg(long, value_name = "FILE")]
    pub facts: Option<PathBuf>,
    #[command(flatten)]
    pub consent: ConsentFlags,
    #[command(flatten)]
    pub observe: ObserveFlags,
}

/// How hosts are observed: shared by observe, status and plan.
#[derive(Debug, Args, Clone)]
pub struct ObserveFlags {
    /// At most this many hosts at once [default: 64 hosts observed; gt apply: 10 steps]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub parallelism: Option<u16>,
    /// Deadline of each host's probe (a hanging host becomes a fact after it).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

impl ObserveFlags {
    /// The flag, or each bound's default.
    pub fn parallelism(&self) -> Parallelism {
        Parallelism::from_flag(self.parallelism)
    }

    pub fn options(&self) -> ObserveOptions {
        ObserveOptions {
            parallelism: self.parallelism().observe,
            timeout: self.timeout,
            transport: super::transport_options(),
            ..ObserveOptions::default()
        }
    }
}
