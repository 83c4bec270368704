//! `gt lab ...` (issue 3).

use super::{exit, Context};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Bring up a simulated cluster.
    Up,
}

pub fn run(_ctx: &Context, _c: LabCommand) -> u8 {
    eprintln!("error: gt lab is not built yet");
    exit::ERROR
}
