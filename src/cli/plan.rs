//! `gt plan`: what apply would change, Terraform-style; `--out` saves it.

use super::flags::PlanFlags;
use super::{exit, CliError, Context};
use crate::fsutil::Input;
use crate::plan::saved::SavedPlan;
use crate::render::{self, Style};
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub flags: PlanFlags,
    /// Machine-readable plan (schema: README "Plan JSON").
    #[arg(long)]
    pub json: bool,
    /// Exit 0 when there are no changes, 2 when there are, 1 on error.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Also save the plan to FILE (mode 0600), for `gt apply FILE`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

pub fn plan(ctx: &Context, a: PlanArgs) -> Result<u8, CliError> {
    let planned = super::planning::make_plan(ctx, &a.flags)?;
    let plan = &planned.plan;
    if a.json {
        print!("{}", render::plan_json(plan));
    } else {
        print!("{}", render::plan_text(plan, Style { color: ctx.color }));
    }
    if let Some(out) = &a.out {
        let saved = SavedPlan::new(
            &planned.spec,
            &planned.config_bytes,
            &planned.observed,
            &planned.options,
            plan,
        );
        let mut inputs = vec![Input {
            role: "the config",
            path: &planned.spec.source,
        }];
        inputs.extend(a.flags.facts.as_deref().map(|path| Input {
            role: "the facts file",
            path,
        }));
        saved.write(out, &inputs)?;
        let file = out.display().to_string();
        let said = format!(
            "\nSaved the plan to: {file}\n\nTo perform exactly these actions, run: gt apply {}\n",
            crate::transport::shell_quote(&file)
        );
        // stdout stays one JSON document with --json.
        if a.json {
            eprint!("{said}");
        } else {
            print!("{said}");
        }
    }
    if a.detailed_exitcode && plan.has_changes() {
        Ok(exit::CHANGES)
    } else {
        Ok(exit::OK)
    }
}
