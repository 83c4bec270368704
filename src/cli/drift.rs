//! `gt drift`: observe, compare, report; read-only (no lock, no change), for
//! cron and systemd timers feeding Prometheus.

use super::flags::ObserveFlags;
use super::{exit, report, CliError, Context};
use crate::fsutil::Input;
use crate::render::drift::{drift_json, drift_prometheus, drift_text, DriftCheck};
use clap::Args;
use std::path::PathBuf;
use std::time::{Instant, SystemTime};

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  gt drift                      # one line per difference, exit 2 if any
  gt drift -q --prometheus /var/lib/node_exporter/textfile_collector/gt.prom
      # cron: metrics only; exit 0 in sync, 2 drift, 1 could not check
  gt drift --json | jq '.items[] | select(.kind == \"not_ready\") | .node'")]
pub struct DriftArgs {
    /// One JSON document on stdout (schema: README "Drift JSON").
    #[arg(long, conflicts_with = "verbose")]
    pub json: bool,
    /// Also write a node_exporter textfile here, atomically (temp file + rename),
    /// even when the check fails (then with gt_check_success 0).
    #[arg(long, value_name = "FILE")]
    pub prometheus: Option<PathBuf>,
    /// Nothing on stdout: the exit code and --prometheus say it all (errors still go to stderr).
    #[arg(long, short = 'q', conflicts_with_all = ["json", "verbose"])]
    pub quiet: bool,
    /// Under each line, the whole story and what to do about it.
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// Compare against recorded facts (`gt observe --out FILE`) instead of observing the hosts.
    #[arg(long, value_name = "FILE")]
    pub facts: Option<PathBuf>,
    #[command(flatten)]
    pub observe: ObserveFlags,
}

pub fn drift(ctx: &Context, a: DriftArgs) -> Result<u8, CliError> {
    let checked_at = SystemTime::now();
    let started = Instant::now();
    let mut cluster = None;
    let outcome = check(ctx, &a, &mut cluster);
    let c = DriftCheck {
        cluster,
        checked_at,
        duration: started.elapsed(),
        outcome,
    };
    // A check that failed is still reported on stdout and in the metrics,
    // so it is told here rather than returned.
    let code = match &c.outcome {
        Ok(r) if r.in_sync() => exit::OK,
        Ok(_) => exit::CHANGES,
        Err(e) => {
            let e = CliError::Message(e.clone());
            report(&e);
            e.code()
        }
    };
    if a.json {
        print!("{}", drift_json(&c));
    } else if !a.quiet {
        if let Ok(r) = &c.outcome {
            print!("{}", drift_text(r, a.verbose));
        }
    }
    if let Some(path) = &a.prometheus {
        let text = drift_prometheus(&c);
        let config = crate::spec::find_config(ctx.config_flag.as_deref()).ok();
        let inputs: Vec<Input> = config
            .as_deref()
            .map(|path| Input {
                role: "the config",
                path,
            })
            .into_iter()
            .chain(a.facts.as_deref().map(|path| Input {
                role: "the facts file",
                path,
            }))
            .collect();
        crate::fsutil::write_atomic(path, text.as_bytes(), 0o644, ".gt.prom-", &inputs).map_err(
            |source| CliError::WriteMetrics {
                path: path.clone(),
                source,
            },
        )?;
    }
    Ok(code)
}

/// Loads the config, observes and compares; the error a user reads otherwise.
fn check(
    ctx: &Context,
    a: &DriftArgs,
    cluster: &mut Option<String>,
) -> Result<crate::plan::drift::DriftReport, String> {
    let path = crate::spec::find_config(ctx.config_flag.as_deref())?;
    let spec = crate::spec::load_file(&path).map_err(|diags| {
        // Every diagnostic, with file, line and column, as `gt validate`
        // prints them; the caller adds the first "error: ".
        let text = diags.to_string();
        text.trim_end()
            .strip_prefix("error: ")
            .unwrap_or(text.trim_end())
            .to_string()
    })?;
    *cluster = Some(spec.cluster.name.clone());
    let observed = super::planning::facts_for(&spec, a.facts.as_deref(), &a.observe)?;
    let mut report = crate::plan::drift::drift(&spec, &observed).map_err(|e| {
        e.to_string().replacen(
            "cannot plan: ",
            "cannot compare the cluster with cluster.toml: ",
            1,
        )
    })?;
    let (newest, item) = crate::backup::drift(&spec.backup, &spec.cluster.name, SystemTime::now());
    report.newest_backup = newest;
    if let Some(item) = item {
        // Cluster items come first.
        let at = report.items.iter().take_while(|i| i.node.is_none()).count();
        report.items.insert(at, item);
    }
    Ok(report)
}
