//! The DAG walker (Terraform's internal/dag, for gt's steps): a step starts
//! when every step it depends on has succeeded, within the bounds of
//! `parallelism` (all steps, and those that load the control plane: all but
//! host preparation), ties broken by the plan's deterministic order. A failure skips its
//! dependents ("upstream failed", naming the root cause once) while
//! independent branches finish. Ctrl-C stops new starts; running steps
//! finish, except a gate: a pure wait has nothing to finish, so it is
//! cancelled at once (`Step::is_gate`). Steps that clean up (`Step::always_runs`) run once their
//! dependencies have finished, whatever the outcome.

use super::events::{Event, Events, StepStatus};
use super::steps::StepError;
use crate::parallelism::StepBounds;
use crate::plan::{Step, StepGraph, StepId};
use crate::transport::BoxFuture;
use futures_util::stream::{FuturesUnordered, StreamExt};
use std::collections::BTreeMap;
use std::time::Duration;
// Tokio's clock: elapsed times follow a paused test clock too.
use tokio::sync::watch;
use tokio::time::Instant;

/// Carries out one step. Errors hold no secrets.
pub trait Runner: Sync {
    fn run<'a>(&'a self, id: &'a StepId, step: &'a Step) -> BoxFuture<'a, Result<(), StepError>>;
}

/// How one step ended, for the recap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub status: StepStatus,
    /// The error (failed), or why it did not run (skipped, cancelled), as
    /// the user reads it.
    pub reason: Option<String>,
    pub elapsed: Duration,
}

/// Every step's outcome, keyed by id.
#[derive(Debug, Clone, Default)]
pub struct Walked {
    pub steps: BTreeMap<StepId, Finished>,
    pub interrupted: bool,
}

enum State {
    Pending,
    Running,
    Done(StepStatus),
}

/// Whether a pending step can start, given its dependencies' states.
enum Readiness {
    /// A dependency has not finished.
    Waiting,
    Runnable,
    /// Ctrl-C came first, or a dependency was cancelled.
    Cancelled,
    /// This dependency failed or was skipped.
    UpstreamFailed(usize),
}

fn readiness(step: &Step, deps: &[usize], state: &[State], interrupted: bool) -> Readiness {
    if deps.iter().any(|&d| !matches!(state[d], State::Done(_))) {
        return Readiness::Waiting;
    }
    if step.always_runs() {
        return Readiness::Runnable;
    }
    let upstream_bad = deps
        .iter()
        .find(|&&d| !matches!(state[d], State::Done(StepStatus::Succeeded)));
    match upstream_bad {
        Some(&bad) if matches!(state[bad], State::Done(StepStatus::Cancelled)) => {
            Readiness::Cancelled
        }
        Some(&bad) => Readiness::UpstreamFailed(bad),
        None if interrupted => Readiness::Cancelled,
        None => Readiness::Runnable,
    }
}

fn interrupted_reason() -> String {
    "interrupted before it started".to_string()
}

fn interrupted_waiting_reason() -> String {
    "interrupted while waiting".to_string()
}

/// How a running step's future ended.
enum Ran {
    Finished(Result<(), String>),
    /// A gate stopped by Ctrl-C: it changed nothing, so nothing is left half done.
    Interrupted,
}

/// Resolves once `interrupt` is true (never, if its sender is gone first).
async fn until_interrupted(mut interrupt: watch::Receiver<bool>) {
    if interrupt.wait_for(|&on| on).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Names the root cause once: the step that failed, not the one between.
fn upstream_reason(cause: &StepId) -> String {
    format!("upstream failed ({cause})")
}

/// For each step of `ids`, the positions in `ids` of the steps it waits for.
fn dependency_positions(graph: &StepGraph, ids: &[StepId]) -> Vec<Vec<usize>> {
    let position: BTreeMap<&StepId, usize> =
        ids.iter().enumerate().map(|(i, id)| (id, i)).collect();
    ids.iter()
        .map(|id| graph.dependencies(id).iter().map(|d| position[d]).collect())
        .collect()
}

/// Preparing a host touches that host alone (and the package mirror).
fn loads_control_plane(step: &Step) -> bool {
    !matches!(step, Step::PrepareHost { .. })
}

/// Walks `graph`; `interrupt` turning true is Ctrl-C.
pub async fn walk(
    graph: &StepGraph,
    runner: &dyn Runner,
    parallelism: impl Into<StepBounds>,
    events: &Events,
    mut interrupt: watch::Receiver<bool>,
) -> Walked {
    let order: Vec<&Step> = graph.ordered();
    let ids: Vec<StepId> = order.iter().map(|s| s.id()).collect();
    let deps = dependency_positions(graph, &ids);
    let mut state: Vec<State> = ids.iter().map(|_| State::Pending).collect();
    // Root cause of each skipped step: the failed (or cancelled) step upstream.
    let mut root: Vec<Option<usize>> = vec![None; ids.len()];
    let mut out = Walked::default();
    let mut interrupted = *interrupt.borrow();
    let mut running = FuturesUnordered::new();
    let bounds: StepBounds = parallelism.into();
    let mut running_loading = 0;

    loop {
        // Settle and start whatever can be, in order, until nothing changes.
        let mut changed = true;
        while changed {
            changed = false;
            for i in 0..ids.len() {
                if !matches!(state[i], State::Pending) {
                    continue;
                }
                let step = order[i];
                let verdict = match readiness(step, &deps[i], &state, interrupted) {
                    Readiness::Waiting => continue,
                    Readiness::Runnable => None,
                    Readiness::Cancelled => Some((StepStatus::Cancelled, interrupted_reason())),
                    Readiness::UpstreamFailed(bad) => {
                        let cause = root[bad].unwrap_or(bad);
                        root[i] = Some(cause);
                        Some((StepStatus::Skipped, upstream_reason(&ids[cause])))
                    }
                };
                if let Some((status, reason)) = verdict {
                    state[i] = State::Done(status);
                    finish(
                        events,
                        &mut out,
                        &ids[i],
                        step,
                        status,
                        Some(reason),
                        Duration::ZERO,
                    );
                    changed = true;
                    continue;
                }
                let loading = loads_control_plane(step);
                if !bounds.admits(loading, running.len(), running_loading) {
                    continue;
                }
                running_loading += usize::from(loading);
                state[i] = State::Running;
                events.send(Event::StepStarted {
                    step: ids[i].clone(),
                    label: step.label(),
                    node: step.node().cloned(),
                });
                let id = &ids[i];
                let stop = step.is_gate().then(|| interrupt.clone());
                running.push(async move {
                    let started = Instant::now();
                    let run = async {
                        Ran::Finished(runner.run(id, step).await.map_err(|e| e.to_string()))
                    };
                    let ran = match stop {
                        Some(stop) => tokio::select! {
                            ran = run => ran,
                            () = until_interrupted(stop) => Ran::Interrupted,
                        },
                        None => run.await,
                    };
                    (i, ran, started.elapsed())
                });
                changed = true;
            }
        }
        if running.is_empty() {
            break;
        }
        tokio::select! {
            Some((i, ran, elapsed)) = running.next() => {
                running_loading -= usize::from(loads_control_plane(order[i]));
                let (status, reason) = match ran {
                    Ran::Finished(Ok(())) => (StepStatus::Succeeded, None),
                    Ran::Finished(Err(e)) => (StepStatus::Failed, Some(e)),
                    Ran::Interrupted => (StepStatus::Cancelled, Some(interrupted_waiting_reason())),
                };
                state[i] = State::Done(status);
                finish(events, &mut out, &ids[i], order[i], status, reason, elapsed);
            }
            Ok(()) = interrupt.changed(), if !interrupted => {
                if *interrupt.borrow() {
                    interrupted = true;
                    // Gates end at once (above): only the others are waited for.
                    let finishing = (0..ids.len())
                        .filter(|&i| matches!(state[i], State::Running) && !order[i].is_gate())
                        .count();
                    events.send(Event::Interrupted {
                        message: format!(
                            "no new step starts; waiting for {finishing} running step(s) to finish"
                        ),
                    });
                }
            }
        }
    }
    out.interrupted = interrupted;
    out
}

fn finish(
    events: &Events,
    out: &mut Walked,
    id: &StepId,
    step: &Step,
    status: StepStatus,
    reason: Option<String>,
    elapsed: Duration,
) {
    events.send(Event::StepFinished {
        step: id.clone(),
        label: step.label(),
        node: step.node().cloned(),
        status,
        elapsed,
        reason: reason.clone(),
    });
    out.steps.insert(
        id.clone(),
        Finished {
            status,
            reason,
            elapsed,
        },
    );
}
