//! `gt apply`: observe, plan, confirm, walk the DAG, recap.

use super::{exit, Context};
use crate::apply::steps::{RunInfo, StepRunner};
use crate::apply::{lock, recap, walker, Event, Events};
use crate::facts::observe::{observe_with, runtime};
use crate::render::{self, Style};
use crate::transport::Hosts;
use clap::Args;
use std::io::{BufRead, IsTerminal, Write};
use std::time::Instant;
use tokio::signal::unix::{signal, Signal, SignalKind};

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Apply without asking (cron, CI). Without it, gt asks on a terminal and refuses otherwise.
    #[arg(long)]
    pub auto_approve: bool,
    /// Stream one JSON event per line (plan, steps, recap) instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub consent: super::spine::ConsentFlags,
    #[command(flatten)]
    pub observe: super::hosts::ObserveFlags,
    /// A plan saved by `gt plan --out FILE`: applied as reviewed (no question
    /// asked), refused if the cluster or cluster.toml changed since.
    #[arg(value_name = "PLANFILE")]
    pub plan_file: Option<std::path::PathBuf>,
}

pub fn apply(ctx: &Context, a: ApplyArgs) -> u8 {
    let (spec, saved) = match &a.plan_file {
        Some(file) => {
            if ctx.config_flag.is_some() || a.consent.prune || !a.consent.replace.is_empty() {
                eprintln!(
                    "error: {} carries the cluster.toml and the --prune/--replace it was planned with; \
                     drop --config/--prune/--replace, or plan again with them (`gt plan --out FILE`)",
                    file.display()
                );
                return exit::ERROR;
            }
            match super::spine::load_saved_plan(file) {
                Ok((saved, spec, bytes)) => (spec, Some((saved, bytes))),
                Err(c) => return c,
            }
        }
        None => match ctx.load_spec() {
            Ok(s) => (s, None),
            Err(c) => return c,
        },
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::ERROR;
        }
    };
    let opts = a.observe.options();
    let hosts = match Hosts::new(&spec.nodes, &opts.transport) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::ERROR;
        }
    };
    let style = Style { color: ctx.color };
    rt.block_on(async {
        let run = RunInfo::new();
        // Taken before observing: what gt plans on must not change under another apply.
        let lock = match lock::acquire(&spec, &hosts, &run.id, lock::DEFAULT_LEASE).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: {e}");
                hosts.close().await;
                return exit::ERROR;
            }
        };
        if let Some(w) = lock.warning() {
            eprintln!("warning: {w}");
        }
        // From here on a Ctrl-C must not kill gt: the lock is released on
        // every way out (before the walk: nothing changed, the lock goes).
        let sigint = match signal(SignalKind::interrupt()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: cannot handle Ctrl-C: {e}");
                let _ = lock.release().await;
                hosts.close().await;
                return exit::ERROR;
            }
        };
        let code = walk(
            &a,
            &spec,
            saved.as_ref(),
            &hosts,
            &opts,
            style,
            run,
            lock.watch_lost(),
            sigint,
        )
        .await;
        let released = lock.release().await;
        hosts.close().await;
        match released {
            Ok(()) => code,
            Err(e) => {
                eprintln!("error: {e}");
                exit::ERROR
            }
        }
    })
}

/// Observes, plans, asks and walks, under the lock.
#[allow(clippy::too_many_arguments)]
async fn walk(
    a: &ApplyArgs,
    spec: &crate::spec::Spec,
    saved: Option<&(crate::plan::saved::SavedPlan, Vec<u8>)>,
    hosts: &Hosts,
    opts: &crate::facts::observe::ObserveOptions,
    style: Style,
    run: RunInfo,
    mut lock_lost: tokio::sync::watch::Receiver<Option<String>>,
    mut sigint: Signal,
) -> u8 {
    {
        let planned = async {
            match saved {
                Some((saved, bytes)) => {
                    super::spine::replan_saved(saved, spec, bytes, hosts, opts).await
                }
                None => {
                    let observed = observe_with(spec, hosts, opts).await;
                    match crate::plan::plan(spec, &observed, &a.consent.options()) {
                        Ok(p) => Ok((observed, p)),
                        Err(e) => {
                            eprintln!("error: {e}");
                            Err(exit::ERROR)
                        }
                    }
                }
            }
        };
        let (observed, plan) = tokio::select! {
            p = planned => match p {
                Ok(p) => p,
                Err(code) => return code,
            },
            _ = sigint.recv() => {
                eprintln!("\nInterrupted while observing the cluster: nothing was changed.");
                return exit::ERROR;
            }
        };
        let (events, rx) = Events::channel();
        if a.json {
            events.send(Event::Plan {
                plan: Box::new(plan.document()),
            });
        } else if saved.is_none() {
            print!("{}", render::plan_text(&plan, style));
        }
        if !plan.has_changes() {
            drop(events);
            let ui = tokio::spawn(crate::ui::render(
                crate::ui::stdout_mode(a.json),
                style,
                rx,
                std::io::stdout(),
            ));
            let _ = ui.await;
            return exit::OK;
        }
        // A saved plan was reviewed when it was made.
        if !a.auto_approve && saved.is_none() {
            if !std::io::stdin().is_terminal() {
                eprintln!(
                    "error: gt apply needs your approval, and stdin is not a terminal; \
                     review the plan, then run `gt apply --auto-approve`"
                );
                return exit::ERROR;
            }
            // The answer is read on a thread of its own, so that a Ctrl-C at
            // the prompt cancels (and the lock is released) at once.
            let approved = tokio::select! {
                yes = tokio::task::spawn_blocking(confirm) => yes.unwrap_or(false),
                _ = sigint.recv() => false,
            };
            if !approved {
                println!("\nApply cancelled.");
                return exit::ERROR;
            }
        }
        let runner = StepRunner::new(spec, &observed, hosts, events.clone(), run.clone());
        let (interrupt_tx, interrupt_rx) = tokio::sync::watch::channel(false);
        let interrupt_tx = std::sync::Arc::new(interrupt_tx);
        // A lock renewal that finds the lock taken stops new steps, as Ctrl-C does.
        let lost_tx = interrupt_tx.clone();
        let lost_events = events.clone();
        let lost = tokio::spawn(async move {
            while lock_lost.changed().await.is_ok() {
                let why = lock_lost.borrow().clone();
                if let Some(why) = why {
                    lost_events.send(Event::Interrupted {
                        message: format!("the apply lock was lost ({why}); no new step starts"),
                    });
                    let _ = lost_tx.send(true);
                    return;
                }
            }
        });
        // A Ctrl-C from now on interrupts the walk.
        let ctrl_c = tokio::spawn(async move {
            if sigint.recv().await.is_some() {
                let _ = interrupt_tx.send(true);
                if sigint.recv().await.is_some() {
                    eprintln!("\nInterrupted twice: exiting now. Steps that were running may be half done; the join token expires by itself, and the apply lock within 2 minutes (or run gt unlock).");
                    std::process::exit(130);
                }
            }
        });
        let ui = tokio::spawn(crate::ui::render(
            crate::ui::stdout_mode(a.json),
            style,
            rx,
            std::io::stdout(),
        ));
        events.send(Event::Started {
            run_id: run.id.clone(),
            cluster: spec.cluster.name.clone(),
            steps: plan.graph.len(),
        });
        let started = Instant::now();
        let walked = walker::walk(
            &plan.graph,
            &runner,
            a.observe.parallelism as usize,
            &events,
            interrupt_rx,
        )
        .await;
        let recap = recap::recap(spec, &observed, &plan, &walked, &run.id, started.elapsed());
        let success = recap.success();
        events.send(Event::Recap(recap));
        // The lock watcher holds a sender too: the UI ends only when all are gone.
        lost.abort();
        let _ = lost.await;
        drop(runner);
        drop(events);
        let _ = ui.await;
        ctrl_c.abort();
        if success {
            exit::OK
        } else {
            exit::ERROR
        }
    }
}

/// Terraform's question; only `yes` goes on.
fn confirm() -> bool {
    print!(
        "\nDo you want to perform these actions?\n  gt will perform the actions described above.\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: "
    );
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    line.trim() == "yes"
}
