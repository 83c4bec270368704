//! `gt graph`: the plan's DAG as DOT or Mermaid.

use super::flags::ConsentFlags;
use super::{exit, CliError, Context};
use crate::render;
use clap::{Args, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum GraphFormat {
    Dot,
    Mermaid,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// dot (Graphviz) or mermaid.
    #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
    pub format: GraphFormat,
    /// Draw the plan against recorded facts; without it, a full bootstrap from an empty cluster.
    #[arg(long, value_name = "FILE")]
    pub facts: Option<PathBuf>,
    #[command(flatten)]
    pub consent: ConsentFlags,
}

pub fn graph(ctx: &Context, a: GraphArgs) -> Result<u8, CliError> {
    let spec = ctx.load_spec()?;
    let plan = match &a.facts {
        Some(p) => {
            let observed = super::planning::read_facts(p)?;
            crate::plan::plan(&spec, &observed, &a.consent.options())?
        }
        // Like `terraform graph`: no state needed, no host contacted.
        None => crate::plan::bootstrap_plan(&spec)?,
    };
    match a.format {
        GraphFormat::Dot => print!("{}", render::dot(&plan)),
        GraphFormat::Mermaid => print!("{}", render::mermaid(&plan)),
    }
    Ok(exit::OK)
}
