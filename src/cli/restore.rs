//! `gt restore BACKUP`: check the backup, take the apply lock, observe,
//! refuse while etcd has quorum (unless --force), show the restore's plan
//! (text, or JSON events with `--json`; `--out` saves it and stops there),
//! ask, then walk it like an apply: copy, stop, restore, start, gate.

use super::flags::ObserveFlags;
use super::signals::Claimed;
use super::walk;
use super::{exit, report, warn, CliError, Context};
use crate::apply::lock;
use crate::apply::session::{Session, StopSignal};
use crate::apply::steps::{RestoreInput, RunInfo};
use crate::facts::observe::{observe_with, runtime};
use crate::fsutil::Input;
use crate::kube::etcd_snapshot::sha256_hex;
use crate::plan::restore::{self, RestoreOptions};
use crate::plan::Plan;
use crate::render::{self, Style};
use crate::spec::Spec;
use crate::transport::Hosts;
use crate::ui::Stdout;
use clap::Args;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The biggest etcdutl gt copies to the hosts (3.5's is some 20 MiB).
const MAX_ETCDUTL_BYTES: u64 = 256 << 20;

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  gt restore backups/goldentooth-20261130T204500Z
  gt restore --etcdutl ~/etcd-v3.5.16-linux-arm64/etcdutl BACKUP
  gt restore --force BACKUP   # roll back a cluster whose etcd still works")]
pub struct RestoreArgs {
    /// A backup written by `gt backup` (its directory, or the etcd-snapshot.db in it).
    #[arg(value_name = "BACKUP")]
    pub backup: PathBuf,
    /// Restore even though etcd still has quorum (every write since the snapshot is lost).
    #[arg(long)]
    pub force: bool,
    /// An etcdutl binary for the control planes' architecture, copied to each
    /// and removed after; without it the hosts' own etcdutl (on PATH) is used.
    #[arg(long, value_name = "FILE")]
    pub etcdutl: Option<PathBuf>,
    /// Restore without asking. Without it, gt asks on a terminal and refuses otherwise.
    #[arg(long)]
    pub auto_approve: bool,
    /// Stream one JSON event per line (the plan, steps, recap) instead of
    /// text, as `gt apply --json` does.
    #[arg(long)]
    pub json: bool,
    /// Save the restore's plan to FILE (plan JSON, mode 0600) for review,
    /// and change nothing.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub observe: ObserveFlags,
}

pub fn restore(ctx: &Context, a: RestoreArgs) -> Result<u8, CliError> {
    let spec = ctx.load_spec()?;
    let (snapshot, info) = crate::backup::verified_snapshot(&a.backup)
        .map_err(|e| CliError::Message(e.to_string()))?;
    let etcdutl = match &a.etcdutl {
        Some(p) => Some(read_etcdutl(p)?),
        None => None,
    };
    let input = Arc::new(RestoreInput {
        snapshot_sha256: sha256_hex(&snapshot),
        snapshot,
        etcdutl,
    });
    let stamp = crate::backup::stamp(std::time::SystemTime::now());
    let opts = a.observe.options();
    let rt = runtime()?;
    let hosts = Hosts::new(&spec.nodes, &opts.transport)?;
    let style = Style { color: ctx.color };
    rt.block_on(async {
        let run = RunInfo::new();
        let (_claimed, signals) = Claimed::new(interrupted_twice);
        let lock = match lock::acquire(&spec, &hosts, &run.id, lock::DEFAULT_LEASE).await {
            Ok(l) => l,
            Err(e) => {
                hosts.close().await;
                return Err(e.into());
            }
        };
        if let Some(w) = lock.warning() {
            warn(w);
        }
        let restored = async {
            let observed = observe_with(&spec, &hosts, &opts).await;
            let plan = restore::plan(
                &spec,
                &observed,
                &RestoreOptions {
                    force: a.force,
                    stamp,
                },
            )
            .map_err(|e| CliError::Message(e.to_string()))?;
            if let Some(out) = &a.out {
                save_plan(out, &spec, &a.backup, &plan, a.json)?;
                return Ok(exit::OK);
            }
            let session = Session::new(
                &spec,
                &hosts,
                run,
                a.observe.parallelism().steps,
                walk::ui(a.json, style),
            )
            .restoring(input.clone());
            if a.json {
                walk::send_plan(&session, &plan);
            } else {
                let text = restore_text(&spec, &a.backup, &info, &input, &plan, style);
                let _ = Stdout.write_all(text.as_bytes());
            }
            let ask = (!a.auto_approve).then(|| walk::Ask {
                not_a_terminal: CliError::Message(
                    "gt restore needs your approval, and stdin is not a terminal; review the plan, then run `gt restore --auto-approve BACKUP`".into(),
                ),
                cancelled: "Restore cancelled.",
            });
            let walked =
                walk::approve_and_walk(session, &observed, &plan, ask, signals, lock.watch_lost())
                    .await?;
            Ok(walked.code)
        }
        .await;
        let released = lock.release().await;
        hosts.close().await;
        match (restored, released) {
            (r, Ok(())) => r,
            (Ok(_), Err(e)) => Err(e.into()),
            (Err(first), Err(e)) => {
                report(&first);
                Err(e.into())
            }
        }
    })
}

/// `--out`: the plan document `gt plan --json` prints, written atomically
/// and private; never over the config or the backup being read.
fn save_plan(
    out: &Path,
    spec: &Spec,
    backup: &Path,
    plan: &Plan,
    json: bool,
) -> Result<(), CliError> {
    let inputs = [
        Input {
            role: "the config",
            path: &spec.source,
        },
        Input {
            role: "the backup",
            path: backup,
        },
    ];
    crate::fsutil::write_atomic(
        out,
        render::plan_json(plan).as_bytes(),
        0o600,
        ".gt-restore-plan-",
        &inputs,
    )
    .map_err(|e| {
        CliError::Message(format!(
            "cannot save the restore plan to {}: {e}",
            out.display()
        ))
    })?;
    let said = format!(
        "Saved the restore plan to: {}
Nothing was changed. gt restore plans again from the backup and the cluster when it runs.
",
        out.display()
    );
    // stdout stays JSON with --json.
    if json {
        walk::say(&said);
    } else {
        let _ = Stdout.write_all(render::sanitize::lines(&said).as_bytes());
    }
    Ok(())
}

fn read_etcdutl(path: &Path) -> Result<Vec<u8>, CliError> {
    crate::fsutil::read_regular(path, MAX_ETCDUTL_BYTES).map_err(|e| {
        CliError::Message(format!(
            "cannot read --etcdutl {}: {e}; give an etcdutl binary (etcd's release tarball has one) for the control planes' architecture",
            path.display()
        ))
    })
}

/// The restore's plan as a person reviews it: which backup, what happens
/// on each control plane, in which order, and what is lost.
fn restore_text(
    spec: &Spec,
    backup: &Path,
    info: &crate::kube::etcd_snapshot::SnapshotInfo,
    input: &RestoreInput,
    plan: &Plan,
    style: Style,
) -> String {
    let tool = if input.etcdutl.is_some() {
        "the etcdutl given with --etcdutl, copied to each control plane"
    } else {
        "each control plane's own etcdutl (on its PATH)"
    };
    let names: Vec<String> = spec.control_planes().map(|n| n.name.to_string()).collect();
    let mut out = format!(
        "gt restore replaces etcd's data on every control plane ({}) with the snapshot\n\
         in {} (revision {}, {} bytes, sha256 {}), using {tool}.\n\n",
        names.join(", "),
        backup.display(),
        info.revision,
        info.bytes,
        &info.sha256[..16],
    );
    out.push_str(&render::plan_text(plan, style));
    out.push_str(
        "\nIn order: the snapshot is copied to every control plane and checked there;\n\
         then every API server and etcd member stops (their manifests are parked in\n\
         /etc/kubernetes/gt-restore-stopped, and gt waits until no etcd container\n\
         runs); every member restores the snapshot into\n\
         a fresh data directory under its own name and peer URL; every etcd starts,\n\
         then every API server; gt waits until the control plane is ready.\n\
         Every write etcd took after the snapshot is lost. The old data stays in\n\
         /var/lib/etcd on each host until you remove it.\n",
    );
    render::sanitize::lines(&out).into_owned()
}

fn interrupted_twice(_: StopSignal) {
    let _ = writeln!(
        std::io::stderr(),
        "\nInterrupted twice: exiting now. A restore stopped halfway leaves manifests in /etc/kubernetes/gt-restore-stopped; run gt restore again with the same backup to finish it."
    );
}
