//! `gt apply`: lock and observe at once, plan, confirm, then an
//! `apply::Session` walks the plan; the lock is released on every way out.

use super::flags::{ConsentFlags, ObserveFlags};
use super::signals::Claimed;
use super::walk::{self, say, Walked};
use super::{exit, report, warn, CliError, Context};
use crate::apply::lock;
use crate::apply::session::{Session, StopSignal};
use crate::apply::steps::RunInfo;
use crate::facts::observe::{runtime, ObserveOptions};
use crate::facts::Observed;
use crate::plan::saved::SavedPlan;
use crate::plan::Plan;
use crate::render::{self, Style};
use crate::spec::Spec;
use crate::transport::Hosts;
use crate::ui::Stdout;
use clap::Args;
use std::io::Write;
use tokio::sync::mpsc::UnboundedReceiver;

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Apply without asking (cron, CI). Without it, gt asks on a terminal and refuses otherwise.
    #[arg(long)]
    pub auto_approve: bool,
    /// Stream one JSON event per line (plan, steps, recap) instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub consent: ConsentFlags,
    #[command(flatten)]
    pub observe: ObserveFlags,
    /// A plan saved by `gt plan --out FILE`: applied as reviewed (no question
    /// asked), refused if the cluster or cluster.toml changed since.
    #[arg(value_name = "PLANFILE")]
    pub plan_file: Option<std::path::PathBuf>,
}

/// A saved plan, and the cluster.toml bytes it was made from.
type Saved = (SavedPlan, Vec<u8>);

/// What apply walks: the observation, its plan, and the CNI manifest the
/// plan installs (read before anything changes).
type ToApply = (Observed, Plan, Option<crate::cni::CniManifest>);

pub fn apply(ctx: &Context, a: ApplyArgs) -> Result<u8, CliError> {
    let (spec, saved) = match &a.plan_file {
        Some(file) => {
            if ctx.config_flag.is_some()
                || a.consent.prune
                || a.consent.no_backup
                || !a.consent.replace.is_empty()
            {
                return Err(CliError::PlanFileWithFlags(file.clone()));
            }
            let (saved, spec, bytes) = super::planning::load_saved_plan(file)?;
            (spec, Some((saved, bytes)))
        }
        None => (ctx.load_spec()?, None),
    };
    let rt = runtime()?;
    let opts = a.observe.options();
    let hosts = Hosts::new(&spec.nodes, &opts.transport)?;
    let style = Style { color: ctx.color };
    rt.block_on(async {
        let run = RunInfo::new();
        // Claimed before the lock is taken, so that no signal ends gt between
        // taking it and being ready to release it: from here on the lock is
        // released on every way out but a second signal.
        let (_claimed, mut signals) = Claimed::new(interrupted_twice);
        let under_lock = UnderLock {
            args: &a,
            spec: &spec,
            saved: saved.as_ref(),
            hosts: &hosts,
            opts: &opts,
            style,
        };
        // The lock is taken while the hosts are observed, not before: what
        // gt plans on must not change under another apply, and the lock says
        // whether it may have (lock.rs: `changed_hands_since`). Nothing is
        // changed before both are done.
        let observing_since = std::time::Instant::now();
        let (acquired, observed, stopped) = {
            let acquiring = lock::acquire(&spec, &hosts, &run.id, lock::DEFAULT_LEASE);
            tokio::pin!(acquiring);
            // Boxed so that it can be dropped below: a stopped observation
            // left pending could hold a connection the lock's release needs.
            let mut observing = Box::pin(under_lock.observe_and_plan());
            let mut acquired = None;
            let mut observed = None;
            let stopped = loop {
                tokio::select! {
                    l = &mut acquiring, if acquired.is_none() => {
                        let failed = l.is_err();
                        acquired = Some(l);
                        // Refused: what was observed does not matter.
                        if failed {
                            break None;
                        }
                    }
                    p = &mut observing, if observed.is_none() => observed = Some(p),
                    Some(s) = signals.recv() => {
                        say(&format!("\n{} while observing the cluster: nothing was changed.", interrupted(s)));
                        break Some(s);
                    }
                }
                if acquired.is_some() && observed.is_some() {
                    break None;
                }
            };
            drop(observing);
            let acquired = match acquired {
                Some(l) => l,
                None => acquiring.await,
            };
            (acquired, observed, stopped)
        };
        let lock = match acquired {
            Ok(l) => l,
            Err(e) => {
                hosts.close().await;
                return Err(e.into());
            }
        };
        if let Some(w) = lock.warning() {
            warn(w);
        }
        let applied = match stopped {
            Some(_) => Ok(Walked::unchanged(exit::ERROR)),
            None => {
                let observed = match lock.changed_hands_since(observing_since) {
                    Some(why) => {
                        say(&format!(
                            "The apply lock changed hands while gt observed ({why}): observing again, under the lock."
                        ));
                        None
                    }
                    None => observed,
                };
                under_lock
                    .apply(run, signals, lock.watch_lost(), observed)
                    .await
            }
        };
        // No step ran: nothing changed, and the next apply need not observe again.
        let walked = matches!(applied, Ok(Walked { walked: true, .. }));
        let applied = applied.map(|a| a.code);
        // The other hosts' connections close while the lock is released over
        // the lock host's, which closes last.
        let lock_host = lock.host().to_string();
        let release = async {
            if walked {
                lock.release().await
            } else {
                lock.release_unchanged().await
            }
        };
        let others = futures_util::future::join_all(
            spec.nodes
                .iter()
                .filter(|n| n.name.as_str() != lock_host)
                .map(|n| hosts.close_host(n.name.as_str())),
        );
        let (released, _) = tokio::join!(release, others);
        hosts.close().await;
        match (applied, released) {
            (applied, Ok(())) => applied,
            (Ok(_), Err(e)) => Err(e.into()),
            (Err(first), Err(e)) => {
                report(&first);
                Err(e.into())
            }
        }
    })
}

/// What the apply works with while it holds the lock.
struct UnderLock<'a> {
    args: &'a ApplyArgs,
    spec: &'a Spec,
    saved: Option<&'a Saved>,
    hosts: &'a Hosts,
    opts: &'a ObserveOptions,
    style: Style,
}

impl UnderLock<'_> {
    /// Plans what was observed while the lock was taken (or observes again
    /// when that is `None`), asks, and has a session walk the plan.
    async fn apply(
        &self,
        run: RunInfo,
        mut signals: UnboundedReceiver<StopSignal>,
        lock_lost: tokio::sync::watch::Receiver<Option<String>>,
        observed: Option<Result<ToApply, CliError>>,
    ) -> Result<Walked, CliError> {
        let (observed, plan, cni_manifest) = match observed {
            Some(planned) => planned?,
            None => tokio::select! {
                p = self.observe_and_plan() => p?,
                Some(s) = signals.recv() => {
                    say(&format!("\n{} while observing the cluster: nothing was changed.", interrupted(s)));
                    return Ok(Walked::unchanged(exit::ERROR));
                }
            },
        };
        let json = self.args.json;
        let mut session = Session::new(
            self.spec,
            self.hosts,
            run,
            self.args.observe.parallelism().steps,
            walk::ui(json, self.style),
        );
        if let Some(m) = cni_manifest {
            session = session.with_cni_manifest(std::sync::Arc::new(m));
        }
        if json {
            walk::send_plan(&session, &plan);
        } else if self.saved.is_none() {
            let _ = Stdout.write_all(render::plan_text(&plan, self.style).as_bytes());
        }
        if !plan.has_changes() {
            session.finish().await;
            return Ok(Walked::unchanged(exit::OK));
        }
        // A saved plan was reviewed when it was made.
        let ask = (!self.args.auto_approve && self.saved.is_none()).then_some(walk::Ask {
            not_a_terminal: CliError::ApprovalNeedsTerminal,
            cancelled: "Apply cancelled.",
        });
        walk::approve_and_walk(session, &observed, &plan, ask, signals, lock_lost).await
    }

    /// The plan of what is observed now (for a saved plan: refused if
    /// stale), and the CNI manifest when the plan installs it.
    async fn observe_and_plan(&self) -> Result<ToApply, CliError> {
        match self.saved {
            Some((saved, bytes)) => {
                super::planning::replan_saved(saved, self.spec, bytes, self.hosts, self.opts).await
            }
            None => {
                let (observed, mut plan) = super::planning::observe_and_plan(
                    self.spec,
                    self.hosts,
                    self.opts,
                    &self.args.consent.options(),
                )
                .await?;
                let manifest = super::cni::read_for_apply(self.spec, &mut plan).await?;
                Ok((observed, plan, manifest))
            }
        }
    }
}

/// A second stop signal: the user insists.
fn interrupted_twice(s: StopSignal) {
    let what = match s {
        StopSignal::Interrupt => "Interrupted twice".to_string(),
        s => format!("Interrupted twice (then {})", s.name()),
    };
    say(&format!("\n{what}: exiting now. Steps that were running may be half done; the join token expires by itself, and the apply lock within 2 minutes (or run gt unlock)."));
}

/// `Interrupted` (Ctrl-C), or `Interrupted (SIGTERM)`: which signal, when
/// the user may not have sent it themselves.
fn interrupted(s: StopSignal) -> String {
    match s {
        StopSignal::Interrupt => "Interrupted".to_string(),
        s => format!("Interrupted ({})", s.name()),
    }
}
