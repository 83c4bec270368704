//! The walker against goldentooth's bootstrap DAG with a scripted runner.

use super::events::{Event, Events, StepStatus};
use super::steps::StepError;
use super::walker::{walk, Runner, Walked};
use crate::parallelism::{Parallelism, StepBounds};
use crate::plan::{bootstrap_plan, Step, StepGraph, StepId};
use crate::transport::BoxFuture;
use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::watch;

fn goldentooth_bootstrap() -> StepGraph {
    let spec = crate::spec::load_file(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("cluster.toml"),
    )
    .expect("goldentooth loads");
    bootstrap_plan(&spec).expect("plans").graph
}

/// goldentooth from fresh OS installs (reboots allowed): every host is
/// prepared before its init or join.
fn goldentooth_from_bare_hosts() -> StepGraph {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = std::fs::read_to_string(root.join("cluster.toml")).unwrap()
        + "\n[defaults.host]\nallow_reboot = true\n";
    let spec = crate::spec::load_str(&src, std::path::Path::new("cluster.toml")).expect("valid");
    let facts = std::fs::read_to_string(root.join("tests/fixtures/facts/host-bare.json")).unwrap();
    let observed = crate::facts::Observed::from_json(&facts).unwrap();
    crate::plan::plan(&spec, &observed, &crate::plan::PlanOptions::default())
        .expect("plans")
        .graph
}

/// Succeeds after `ms` (virtual time) unless told to fail; records what ran.
#[derive(Default)]
struct Scripted {
    fail: BTreeSet<String>,
    /// Steps whose start flips the interrupt (Ctrl-C while they run).
    interrupt_on: Option<(String, watch::Sender<bool>)>,
    /// Gates wait this long (virtual time) instead of 5 ms.
    gate_wait: Option<Duration>,
    log: Mutex<Vec<(String, bool)>>, // (id, started?) in order
    running: Mutex<(usize, usize)>,  // (now, max)
    /// The same for steps other than host preparation.
    loading: Mutex<(usize, usize)>,
}

impl Runner for Scripted {
    fn run<'a>(&'a self, id: &'a StepId, step: &'a Step) -> BoxFuture<'a, Result<(), StepError>> {
        let id = id.to_string();
        let loading = !matches!(step, Step::PrepareHost { .. });
        Box::pin(async move {
            self.log.lock().unwrap().push((id.to_string(), true));
            for (counter, counts) in [(&self.running, true), (&self.loading, loading)] {
                if counts {
                    let mut r = counter.lock().unwrap();
                    r.0 += 1;
                    r.1 = r.1.max(r.0);
                }
            }
            if let Some((on, tx)) = &self.interrupt_on {
                if *on == id {
                    tx.send(true).unwrap();
                }
            }
            let ms = if id.starts_with("join") { 20 } else { 5 };
            let wait = match self.gate_wait {
                Some(w) if id.starts_with("gate/") => w,
                _ => Duration::from_millis(ms),
            };
            tokio::time::sleep(wait).await;
            self.running.lock().unwrap().0 -= 1;
            if loading {
                self.loading.lock().unwrap().0 -= 1;
            }
            self.log.lock().unwrap().push((id.to_string(), false));
            if self.fail.contains(&id) {
                Err(StepError::Exited {
                    program: "scripted".into(),
                    node: "bettley".parse().unwrap(),
                    code: 1,
                    output: format!("{id} broke"),
                })
            } else {
                Ok(())
            }
        })
    }
}

fn run(
    graph: &StepGraph,
    runner: &Scripted,
    parallelism: impl Into<StepBounds>,
    rx: watch::Receiver<bool>,
) -> (Walked, Vec<Event>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let (events, mut erx) = Events::channel();
    let walked = rt.block_on(walk(graph, runner, parallelism, &events, rx));
    drop(events);
    let mut seen = vec![];
    while let Ok(e) = erx.try_recv() {
        seen.push(e);
    }
    (walked, seen)
}

fn idle() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    std::mem::forget(tx);
    rx
}

fn id(s: &str) -> StepId {
    s.parse().unwrap()
}

fn status(w: &Walked, step: &str) -> StepStatus {
    w.steps[&id(step)].status
}

#[test]
fn every_step_runs_after_all_its_dependencies() {
    let g = goldentooth_bootstrap();
    let r = Scripted::default();
    let (w, _) = run(&g, &r, 10, idle());
    assert_eq!(w.steps.len(), g.len());
    assert!(w.steps.values().all(|f| f.status == StepStatus::Succeeded));
    let log = r.log.lock().unwrap();
    let pos = |id: &str, started: bool| {
        log.iter()
            .position(|(i, s)| i == id && *s == started)
            .unwrap()
    };
    for s in g.ordered() {
        let id = s.id();
        for d in g.dependencies(&id) {
            assert!(
                pos(&d.to_string(), false) < pos(&id.to_string(), true),
                "{id} started before {d} finished"
            );
        }
    }
    // Control planes joined one at a time, workers in parallel.
    assert!(pos("join-control-plane/cargyll", false) < pos("join-control-plane/dalt", true));
    let workers_started_together = log
        .iter()
        .take_while(|(i, s)| !i.starts_with("join-worker") || *s)
        .filter(|(i, s)| i.starts_with("join-worker") && *s)
        .count();
    assert_eq!(workers_started_together, 9);
}

#[test]
fn parallelism_bounds_the_steps_running_at_once() {
    let g = goldentooth_bootstrap();
    let r = Scripted::default();
    run(&g, &r, 3, idle());
    assert_eq!(r.running.lock().unwrap().1, 3);
    let r = Scripted::default();
    run(&g, &r, 1, idle());
    assert_eq!(r.running.lock().unwrap().1, 1);
}

#[test]
fn every_host_is_prepared_at_once_while_the_other_steps_keep_their_bound() {
    let g = goldentooth_from_bare_hosts();
    let r = Scripted::default();
    let (w, _) = run(&g, &r, Parallelism::default().steps, idle());
    assert!(w.steps.values().all(|f| f.status == StepStatus::Succeeded));
    let prepared_together = r
        .log
        .lock()
        .unwrap()
        .iter()
        .take_while(|(_, started)| *started)
        .filter(|(i, _)| i.starts_with("prepare-host/"))
        .count();
    assert_eq!(prepared_together, 12);
    // Nine workers join at once, above a bound of 2 only if it were ignored.
    let r = Scripted::default();
    let tight = StepBounds {
        all: 64,
        loading: 2,
    };
    run(&g, &r, tight, idle());
    assert_eq!(r.loading.lock().unwrap().1, 2);
    assert!(r.running.lock().unwrap().1 >= 12);
    // `--parallelism 3` bounds host preparation too.
    let r = Scripted::default();
    run(&g, &r, Parallelism::from_flag(Some(3)).steps, idle());
    assert_eq!(r.running.lock().unwrap().1, 3);
}

#[test]
fn a_failed_join_skips_its_dependents_and_the_others_finish() {
    // jast with a label its kubelet may not set on itself: kubectl sets it
    // after the join, in a step of its own that depends on the join.
    let spec = crate::spec::goldentooth_labelled_after_join("jast");
    let g = bootstrap_plan(&spec).expect("plans").graph;
    let r = Scripted {
        fail: ["join-worker/jast".to_string()].into(),
        ..Default::default()
    };
    let (w, events) = run(&g, &r, 10, idle());
    assert_eq!(status(&w, "join-worker/jast"), StepStatus::Failed);
    assert_eq!(
        w.steps[&id("join-worker/jast")].reason.as_deref(),
        Some("scripted on bettley exited 1: join-worker/jast broke")
    );
    assert_eq!(status(&w, "update/jast"), StepStatus::Skipped);
    assert_eq!(
        w.steps[&id("update/jast")].reason.as_deref(),
        Some("upstream failed (join-worker/jast)")
    );
    for other in ["join-worker/fenn", "join-worker/velaryon"] {
        assert_eq!(status(&w, other), StepStatus::Succeeded, "{other}");
    }
    // The token is revoked although a join before it failed.
    assert_eq!(status(&w, "revoke-token"), StepStatus::Succeeded);
    let failures = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::StepFinished {
                    status: StepStatus::Failed,
                    ..
                }
            )
        })
        .count();
    assert_eq!(failures, 1, "the root cause is reported once");
}

#[test]
fn a_failed_init_skips_everything_but_the_revocation_naming_init() {
    let g = goldentooth_bootstrap();
    let r = Scripted {
        fail: ["init/bettley".to_string()].into(),
        ..Default::default()
    };
    let (w, _) = run(&g, &r, 10, idle());
    for (id, f) in &w.steps {
        match id.to_string().as_str() {
            "init/bettley" => assert_eq!(f.status, StepStatus::Failed),
            "revoke-token" => assert_eq!(f.status, StepStatus::Succeeded),
            _ => {
                assert_eq!(f.status, StepStatus::Skipped, "{id}");
                assert_eq!(
                    f.reason.as_deref(),
                    Some("upstream failed (init/bettley)"),
                    "{id}"
                );
            }
        }
    }
}

#[test]
fn ctrl_c_lets_running_steps_finish_cancels_the_rest_and_still_revokes() {
    let g = goldentooth_bootstrap();
    let (tx, rx) = watch::channel(false);
    let r = Scripted {
        interrupt_on: Some(("join-control-plane/cargyll".into(), tx)),
        ..Default::default()
    };
    let (w, events) = run(&g, &r, 10, rx);
    assert!(w.interrupted);
    assert_eq!(
        status(&w, "join-control-plane/cargyll"),
        StepStatus::Succeeded
    );
    assert_eq!(status(&w, "join-control-plane/dalt"), StepStatus::Cancelled);
    assert_eq!(status(&w, "join-worker/fenn"), StepStatus::Cancelled);
    assert_eq!(status(&w, "revoke-token"), StepStatus::Succeeded);
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::Interrupted { .. })));
    let started: Vec<_> = r
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, s)| *s)
        .map(|(i, _)| i.clone())
        .collect();
    assert!(
        !started.iter().any(|i| i.starts_with("join-worker")),
        "{started:?}"
    );
}

#[test]
fn ctrl_c_cancels_a_running_gate_at_once_instead_of_waiting_it_out() {
    let g = goldentooth_bootstrap();
    let (tx, rx) = watch::channel(false);
    let r = Scripted {
        interrupt_on: Some(("gate/before-worker-joins".into(), tx)),
        // Longer than any gate timeout: a gate left to finish would succeed.
        gate_wait: Some(Duration::from_secs(3600)),
        ..Default::default()
    };
    let (w, events) = run(&g, &r, 10, rx);
    assert!(w.interrupted);
    let gate = &w.steps[&id("gate/before-worker-joins")];
    assert_eq!(gate.status, StepStatus::Cancelled);
    assert_eq!(gate.reason.as_deref(), Some("interrupted while waiting"));
    assert!(gate.elapsed < Duration::from_secs(1), "{:?}", gate.elapsed);
    assert_eq!(status(&w, "join-worker/fenn"), StepStatus::Cancelled);
    assert_eq!(status(&w, "revoke-token"), StepStatus::Succeeded);
    let finished = r.log.lock().unwrap();
    assert!(
        !finished
            .iter()
            .any(|(i, started)| i == "gate/before-worker-joins" && !started),
        "the gate's wait was not cut short: {finished:?}"
    );
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::Interrupted { .. })));
    assert_eq!(status(&w, "join-control-plane/dalt"), StepStatus::Succeeded);
}
