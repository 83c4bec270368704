//! `gt validate`, `gt plan`, `gt graph`.

use super::{exit, Context};
use crate::facts::{Observed, FACTS_FORMAT_VERSION};
use crate::plan::saved::{shell_word, SavedPlan};
use crate::plan::{Plan, PlanOptions};
use crate::render::{self, Style};
use crate::spec::Spec;
use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct ValidateArgs {}

/// What the user allows a plan to do beyond the file.
#[derive(Debug, Args, Clone)]
pub struct ConsentFlags {
    /// Also remove Nodes that are in the cluster but not in cluster.toml.
    #[arg(long)]
    pub prune: bool,
    /// Allow resetting and rejoining NODE although it belongs to another cluster (repeatable).
    #[arg(long, value_name = "NODE")]
    pub replace: Vec<String>,
}

impl ConsentFlags {
    pub fn options(&self) -> PlanOptions {
        PlanOptions {
            prune: self.prune,
            replace: self.replace.iter().cloned().collect(),
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
    pub observe: super::hosts::ObserveFlags,
}

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

pub fn validate(ctx: &Context, _a: ValidateArgs) -> u8 {
    match ctx.load_spec() {
        Ok(spec) => {
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
            exit::OK
        }
        Err(c) => c,
    }
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Reads a facts file written by `gt observe`.
pub fn read_facts(path: &Path) -> Result<Observed, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read facts file {}: {e}", path.display()))?;
    let obs = Observed::from_json(&text).map_err(|e| {
        format!(
            "{}:{}:{}: not a gt facts file: {e}; write one with `gt observe --out FILE`",
            path.display(),
            e.line(),
            e.column()
        )
    })?;
    if obs.format_version != FACTS_FORMAT_VERSION {
        return Err(format!(
            "{}: facts format_version {} is not the {} this gt reads; record them again with `gt observe --out FILE`",
            path.display(),
            obs.format_version,
            FACTS_FORMAT_VERSION
        ));
    }
    Ok(obs)
}

/// Facts from `--facts FILE`, or observed live.
pub fn facts_for(
    spec: &Spec,
    facts: Option<&Path>,
    observe: &super::hosts::ObserveFlags,
) -> Result<Observed, String> {
    match facts {
        Some(p) => read_facts(p),
        None => crate::facts::observe::observe(spec, &observe.options()).map_err(|e| e.to_string()),
    }
}

/// Loads and validates the config at `path` from one read of its bytes, and
/// returns both: what was planned and what a saved plan checksums are the
/// same bytes. On failure prints every diagnostic and returns the exit code.
pub fn load_spec_bytes(path: &Path) -> Result<(Spec, Vec<u8>), u8> {
    let result = match std::fs::read(path) {
        Ok(bytes) => match std::str::from_utf8(&bytes) {
            Ok(src) => crate::spec::load_str(src, path).map(|spec| (spec, bytes)),
            // The loader words "not UTF-8" as it always has.
            Err(_) => crate::spec::load_file(path).map(|spec| (spec, bytes)),
        },
        Err(_) => crate::spec::load_file(path).map(|spec| (spec, Vec::new())),
    };
    result.map_err(|diags| {
        eprint!("{diags}");
        exit::ERROR
    })
}

/// What a plan was made from, and the plan.
pub struct Planned {
    pub spec: Spec,
    /// cluster.toml's bytes, as parsed into `spec`.
    pub config_bytes: Vec<u8>,
    pub observed: Observed,
    pub options: PlanOptions,
    pub plan: Plan,
}

/// Loads the config, gets facts and plans, keeping what the plan was made
/// from (for `--out`); prints errors and returns the exit code on failure.
pub fn make_plan(ctx: &Context, f: &PlanFlags) -> Result<Planned, u8> {
    let path = crate::spec::find_config(ctx.config_flag.as_deref()).map_err(|msg| {
        eprintln!("error: {msg}");
        exit::ERROR
    })?;
    let (spec, config_bytes) = load_spec_bytes(&path)?;
    let observed = facts_for(&spec, f.facts.as_deref(), &f.observe).map_err(|e| {
        eprintln!("error: {e}");
        exit::ERROR
    })?;
    let options = f.consent.options();
    let plan = crate::plan::plan(&spec, &observed, &options).map_err(|e| {
        eprintln!("error: {e}");
        exit::ERROR
    })?;
    Ok(Planned {
        spec,
        config_bytes,
        observed,
        options,
        plan,
    })
}

/// For `gt apply FILE`: reads the plan file and loads the cluster.toml it
/// was made from (spec and bytes). The caller observes (`observe_with`),
/// re-plans with `saved.options()` and calls `saved.check_fresh`, printing
/// `error: {stale}` and exiting 1 on a stale plan. Prints errors; returns
/// the exit code on failure.
pub fn load_saved_plan(file: &Path) -> Result<(SavedPlan, Spec, Vec<u8>), u8> {
    let saved = SavedPlan::read(file).map_err(|e| {
        eprintln!("error: {e}");
        exit::ERROR
    })?;
    let (spec, config_bytes) = load_spec_bytes(saved.config_path())?;
    Ok((saved, spec, config_bytes))
}

/// For `gt apply FILE`, inside apply's runtime and over its connections:
/// observes, re-plans with the file's options (not the command line's), and
/// refuses a stale plan. Prints the error (a refusal says what changed) and
/// returns exit 1 on failure.
pub async fn replan_saved(
    saved: &SavedPlan,
    spec: &Spec,
    config_bytes: &[u8],
    hosts: &crate::transport::Hosts,
    opts: &crate::facts::observe::ObserveOptions,
) -> Result<(Observed, Plan), u8> {
    let observed = crate::facts::observe::observe_with(spec, hosts, opts).await;
    let fail = |e: String| {
        eprintln!("error: {e}");
        exit::ERROR
    };
    let plan =
        crate::plan::plan(spec, &observed, &saved.options()).map_err(|e| fail(e.to_string()))?;
    saved
        .check_fresh(config_bytes, &observed, &plan)
        .map_err(|stale| fail(stale.to_string()))?;
    Ok((observed, plan))
}

pub fn plan(ctx: &Context, a: PlanArgs) -> u8 {
    let planned = match make_plan(ctx, &a.flags) {
        Ok(p) => p,
        Err(code) => return code,
    };
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
        if let Err(e) = saved.write(out) {
            eprintln!("error: {e}");
            return exit::ERROR;
        }
        let file = out.display().to_string();
        let said = format!(
            "\nSaved the plan to: {file}\n\nTo perform exactly these actions, run: gt apply {}\n",
            shell_word(&file)
        );
        // stdout stays one JSON document with --json.
        if a.json {
            eprint!("{said}");
        } else {
            print!("{said}");
        }
    }
    if a.detailed_exitcode && plan.has_changes() {
        exit::CHANGES
    } else {
        exit::OK
    }
}

pub fn graph(ctx: &Context, a: GraphArgs) -> u8 {
    let spec = match ctx.load_spec() {
        Ok(s) => s,
        Err(c) => return c,
    };
    let planned = match &a.facts {
        Some(p) => match read_facts(p) {
            Ok(observed) => crate::plan::plan(&spec, &observed, &a.consent.options()),
            Err(e) => {
                eprintln!("error: {e}");
                return exit::ERROR;
            }
        },
        // Like `terraform graph`: no state needed, no host contacted.
        None => crate::plan::bootstrap_plan(&spec),
    };
    let plan = match planned {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::ERROR;
        }
    };
    match a.format {
        GraphFormat::Dot => print!("{}", render::dot(&plan)),
        GraphFormat::Mermaid => print!("{}", render::mermaid(&plan)),
    }
    exit::OK
}
