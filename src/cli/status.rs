//! `gt status`: a table of nodes (or JSON), drift listed below.

use super::flags::ObserveFlags;
use super::{exit, CliError, Context};
use crate::render::status::{status_rows, status_table};
use clap::Args;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// A JSON array instead of the table, one object per node: name, in_config,
    /// role, address, arch, joined, ready ("True"/"False"/"Unknown"/null when
    /// not in the cluster), ready_reason, kubelet_version, unreachable (the
    /// reason, or null), drift (the reasons, empty when in sync).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub observe: ObserveFlags,
}

pub fn status(ctx: &Context, a: StatusArgs) -> Result<u8, CliError> {
    let spec = ctx.load_spec()?;
    let opts = crate::facts::observe::ObserveOptions {
        etcd_status: true,
        ..a.observe.options()
    };
    let observed = crate::facts::observe::observe(&spec, &opts)?;
    let drift = crate::plan::drift_by_node(&spec, &observed);
    let rows = status_rows(&spec, &observed, &drift);
    if a.json {
        println!("{}", crate::render::json::to_string_pretty(&rows));
    } else {
        print!("{}", status_table(&rows, &observed));
    }
    Ok(exit::OK)
}
