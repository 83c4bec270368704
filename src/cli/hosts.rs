//! `gt observe`, `gt status`, `gt exec` (issue 4).

use super::{exit, Context};
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ObserveArgs {
    /// Write the facts JSON here instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// At most this many hosts at once.
    #[arg(long, default_value_t = 10)]
    pub parallelism: usize,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    #[arg(long, default_value_t = 10)]
    pub parallelism: usize,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// A node, a group (k8s_cluster, k8s_control_plane, k8s_worker, or a node's own) or `all`.
    pub target: String,
    /// The command, after `--`.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
    #[arg(long, default_value_t = 10)]
    pub parallelism: usize,
}

pub fn observe(_ctx: &Context, _a: ObserveArgs) -> u8 {
    eprintln!("error: gt observe is not built yet");
    exit::ERROR
}

pub fn status(_ctx: &Context, _a: StatusArgs) -> u8 {
    eprintln!("error: gt status is not built yet");
    exit::ERROR
}

pub fn exec(_ctx: &Context, _a: ExecArgs) -> u8 {
    eprintln!("error: gt exec is not built yet");
    exit::ERROR
}
