//! `gt validate`, `gt plan`, `gt graph`.
use super::{exit, Context};
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ValidateArgs {}
#[derive(Debug, Args)]
pub struct PlanArgs {
    #[arg(long, value_name = "FILE")]
    pub facts: Option<PathBuf>,
}
#[derive(Debug, Args)]
pub struct GraphArgs {}
pub fn validate(ctx: &Context, _a: ValidateArgs) -> u8 {
    match ctx.load_spec() {
        Ok(_) => exit::OK,
        Err(c) => c,
    }
}
pub fn plan(_ctx: &Context, _a: PlanArgs) -> u8 {
    exit::ERROR
}
pub fn graph(_ctx: &Context, _a: GraphArgs) -> u8 {
    exit::ERROR
}
