//! `gt validate`: check cluster.toml, say what it describes.

use super::{exit, CliError, Context};
use clap::Args;

#[derive(Debug, Args)]
pub struct ValidateArgs {}

pub fn validate(ctx: &Context, _a: ValidateArgs) -> Result<u8, CliError> {
    let spec = ctx.load_spec()?;
    let absent = spec.nodes.iter().filter(|n| !n.is_present()).count();
    println!(
        "{}: valid. Cluster {}: {}, {}{}; bootstrap node {}.",
        spec.source.display(),
        spec.cluster.name,
        plural(spec.control_planes().count(), "control plane"),
        plural(spec.workers().count(), "worker"),
        if absent > 0 {
            format!(", {absent} to remove")
        } else {
            String::new()
        },
        spec.cluster.bootstrap
    );
    Ok(exit::OK)
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
