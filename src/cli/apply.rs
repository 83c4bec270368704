//! `gt apply`: observe, plan, confirm, walk the DAG, recap.

use super::{exit, Context};
use crate::apply::steps::{RunInfo, StepRunner};
use crate::apply::{recap, walker, Event, Events, Recap};
use crate::facts::observe::{observe_with, runtime};
use crate::render::{self, Style};
use crate::transport::Hosts;
use clap::Args;
use std::io::{BufRead, IsTerminal, Write};
use std::time::Instant;

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
}

pub fn apply(ctx: &Context, a: ApplyArgs) -> u8 {
    let spec = match ctx.load_spec() {
        Ok(s) => s,
        Err(c) => return c,
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
    let code = rt.block_on(async {
        let observed = observe_with(&spec, &hosts, &opts).await;
        let plan = match crate::plan::plan(&spec, &observed, &a.consent.options()) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {e}");
                return exit::ERROR;
            }
        };
        let (events, rx) = Events::channel();
        if a.json {
            let v: serde_json::Value =
                serde_json::from_str(&render::plan_json(&plan)).expect("plan JSON parses");
            events.send(Event::Plan { plan: v });
        } else {
            print!("{}", render::plan_text(&plan, style));
        }
        if !plan.has_changes() {
            drop(events);
            let ui = tokio::spawn(print_events(rx, a.json));
            let _ = ui.await;
            return exit::OK;
        }
        if !a.auto_approve {
            if !std::io::stdin().is_terminal() {
                eprintln!(
                    "error: gt apply needs your approval, and stdin is not a terminal; \
                     review the plan, then run `gt apply --auto-approve`"
                );
                return exit::ERROR;
            }
            if !confirm() {
                println!("\nApply cancelled.");
                return exit::ERROR;
            }
        }
        let run = RunInfo::new();
        let runner = StepRunner::new(&spec, &observed, &hosts, events.clone(), run.clone());
        let (interrupt_tx, interrupt_rx) = tokio::sync::watch::channel(false);
        let token_note = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
        let ctrl_c = tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                let _ = interrupt_tx.send(true);
                if tokio::signal::ctrl_c().await.is_ok() {
                    eprintln!("\nInterrupted twice: exiting now. Steps that were running may be half done; the join token expires by itself.");
                    std::process::exit(130);
                }
            }
        });
        let ui = tokio::spawn(print_events(rx, a.json));
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
        let _ = token_note;
        let recap = recap::recap(&spec, &observed, &plan, &walked, &run.id, started.elapsed());
        let success = recap.success();
        events.send(Event::Recap(recap));
        drop(runner);
        drop(events);
        let _ = ui.await;
        ctrl_c.abort();
        hosts.close().await;
        if success {
            exit::OK
        } else {
            exit::ERROR
        }
    });
    code
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

/// Until the UI module lands: plain lines.
async fn print_events(
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Event>,
    json: bool,
) -> Option<Recap> {
    let mut last = None;
    while let Some(e) = rx.recv().await {
        if json {
            println!("{}", serde_json::to_string(&e).expect("events serialize"));
        } else {
            match &e {
                Event::StepStarted { step, label, .. } => println!("start  {step}: {label}"),
                Event::StepProgress { step, message } => println!("       {step}: {message}"),
                Event::StepFinished {
                    step,
                    status,
                    elapsed,
                    reason,
                    ..
                } => println!(
                    "{status:?} {step} ({:.1}s){}",
                    elapsed.as_secs_f64(),
                    reason
                        .as_ref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default()
                ),
                Event::Interrupted { message } => println!("{message}"),
                Event::Recap(r) => {
                    for n in &r.nodes {
                        println!("  {:<10} {:<11} {}", n.node, n.result.as_str(), n.detail);
                    }
                    println!(
                        "Apply {}! Nodes: {} joined, {} changed, {} removed.",
                        if r.success() { "complete" } else { "failed" },
                        r.joined,
                        r.changed,
                        r.removed
                    );
                }
                _ => {}
            }
        }
        if let Event::Recap(r) = e {
            last = Some(r);
        }
    }
    last
}
