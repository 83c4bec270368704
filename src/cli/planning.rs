//! What plan, apply and drift share: facts from a file or the hosts, the
//! config read once for plan and checksum, a saved plan loaded and re-planned.

use super::flags::{ObserveFlags, PlanFlags};
use super::{CliError, Context};
use crate::facts::observe::ObserveOptions;
use crate::facts::{Observed, FACTS_FORMAT_VERSION};
use crate::plan::saved::{SavedPlan, SavedPlanError};
use crate::plan::{Plan, PlanOptions};
use crate::spec::Spec;
use crate::transport::Hosts;
use std::path::Path;

/// Reads a facts file written by `gt observe`.
pub fn read_facts(path: &Path) -> Result<Observed, String> {
    let text = crate::fsutil::read_regular_string(path, crate::fsutil::MAX_FACTS_BYTES)
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
    observe: &ObserveFlags,
) -> Result<Observed, String> {
    match facts {
        Some(p) => read_facts(p),
        None => crate::facts::observe::observe(spec, &observe.options()).map_err(|e| e.to_string()),
    }
}

/// Loads and validates the config at `path` from one read of its bytes, and
/// returns both: what was planned and what a saved plan checksums are the
/// same bytes.
pub fn load_spec_bytes(path: &Path) -> Result<(Spec, Vec<u8>), CliError> {
    match crate::fsutil::read_regular(path, crate::fsutil::MAX_CONFIG_BYTES) {
        Ok(bytes) => Ok((crate::spec::load_bytes(&bytes, path)?, bytes)),
        // The loader words why it cannot be read.
        Err(_) => Ok((crate::spec::load_file(path)?, Vec::new())),
    }
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
/// from (for `--out`).
pub fn make_plan(ctx: &Context, f: &PlanFlags) -> Result<Planned, CliError> {
    let path = crate::spec::find_config(ctx.config_flag.as_deref())?;
    let (spec, config_bytes) = load_spec_bytes(&path)?;
    let options = f.consent.options();
    let (observed, plan) = match f.facts.as_deref() {
        Some(p) => {
            let observed = read_facts(p)?;
            let plan = crate::plan::plan(&spec, &observed, &options)?;
            (observed, plan)
        }
        None => {
            let opts = f.observe.options();
            let rt = crate::facts::observe::runtime()?;
            let hosts = Hosts::new(&spec.nodes, &opts.transport)?;
            rt.block_on(async {
                let planned = observe_and_plan(&spec, &hosts, &opts, &options).await;
                hosts.close().await;
                planned
            })?
        }
    };
    Ok(Planned {
        spec,
        config_bytes,
        observed,
        options,
        plan,
    })
}

/// For `gt apply FILE`: reads the plan file and loads the cluster.toml it
/// was made from (spec and bytes), only once its bytes are the planned ones;
/// `replan_saved` then checks the rest is fresh.
pub fn load_saved_plan(file: &Path) -> Result<(SavedPlan, Spec, Vec<u8>), CliError> {
    let saved = SavedPlan::read(file)?;
    let config = saved.config_path();
    let bytes =
        crate::fsutil::read_regular(config, crate::fsutil::MAX_CONFIG_BYTES).map_err(|source| {
            SavedPlanError::ReadConfig {
                plan: file.to_path_buf(),
                config: config.to_path_buf(),
                source,
            }
        })?;
    saved.check_config(&bytes)?;
    let spec = crate::spec::load_bytes(&bytes, config)?;
    Ok((saved, spec, bytes))
}

/// Observes over `hosts` and plans; when the plan drains nodes, reads the
/// pods and PodDisruptionBudgets through the same control plane and plans
/// again with them (the drains' warnings): one more round trip, only for a
/// plan that drains.
pub async fn observe_and_plan(
    spec: &Spec,
    hosts: &Hosts,
    opts: &ObserveOptions,
    options: &PlanOptions,
) -> Result<(Observed, Plan), CliError> {
    let mut observed = crate::facts::observe::observe_with(spec, hosts, opts).await;
    let plan = crate::plan::plan(spec, &observed, options)?;
    if !plan.drains() {
        return Ok((observed, plan));
    }
    observed.cluster.workloads =
        crate::facts::observe::observe_workloads(hosts, &observed, opts.timeout).await;
    if observed.cluster.workloads.is_none() {
        return Ok((observed, plan));
    }
    let plan = crate::plan::plan(spec, &observed, options)?;
    Ok((observed, plan))
}

/// For `gt apply FILE`, inside apply's runtime and over its connections:
/// observes, re-plans with the file's options (not the command line's), and
/// refuses a stale plan (the error says what changed).
pub async fn replan_saved(
    saved: &SavedPlan,
    spec: &Spec,
    config_bytes: &[u8],
    hosts: &Hosts,
    opts: &ObserveOptions,
) -> Result<(Observed, Plan), CliError> {
    let (observed, plan) = observe_and_plan(spec, hosts, opts, &saved.options()).await?;
    saved.check_fresh(config_bytes, &observed, &plan)?;
    Ok((observed, plan))
}
