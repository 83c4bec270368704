//! One apply's walk of its plan, under the lock the caller holds: the UI
//! task fed by the walk's events, the two ways new steps stop (the lock is
//! lost, Ctrl-C), the walker itself and the recap.

use super::steps::{RunInfo, StepRunner};
use super::{recap, walker, Event, Events};
use crate::facts::Observed;
use crate::plan::Plan;
use crate::spec::Spec;
use crate::transport::{BoxFuture, Hosts};
use std::sync::Arc;
use std::time::Instant;
use tokio::signal::unix::Signal;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::watch;

/// Renders a session's events until they end (every sender dropped).
pub type Ui = Box<dyn FnOnce(UnboundedReceiver<Event>) -> BoxFuture<'static, ()> + Send>;

/// One apply: events go to `ui`, which starts when the session ends or walks
/// (so that nothing is drawn over a question asked between the two).
pub struct Session<'a> {
    spec: &'a Spec,
    hosts: &'a Hosts,
    run: RunInfo,
    parallelism: usize,
    events: Events,
    rx: UnboundedReceiver<Event>,
    ui: Ui,
}

/// What stops new steps during the walk.
pub struct Stops {
    /// Set with the reason when a lock renewal finds the lock taken.
    pub lock_lost: watch::Receiver<Option<String>>,
    /// A first Ctrl-C stops new steps; a second calls `interrupted_twice`.
    pub sigint: Signal,
    /// What a second Ctrl-C does (the caller tells the user and exits).
    pub interrupted_twice: Box<dyn FnOnce() + Send>,
}

impl<'a> Session<'a> {
    pub fn new(
        spec: &'a Spec,
        hosts: &'a Hosts,
        run: RunInfo,
        parallelism: usize,
        ui: Ui,
    ) -> Session<'a> {
        let (events, rx) = Events::channel();
        Session {
            spec,
            hosts,
            run,
            parallelism,
            events,
            rx,
            ui,
        }
    }

    /// Events sent before the walk (the plan, for JSON output).
    pub fn events(&self) -> &Events {
        &self.events
    }

    /// Ends without walking: what was sent is rendered.
    pub async fn finish(self) {
        drop(self.events);
        let _ = tokio::spawn((self.ui)(self.rx)).await;
    }

    /// Walks the plan to its end or until stopped, then sends the recap.
    /// Whether every step succeeded.
    pub async fn walk(self, observed: &Observed, plan: &Plan, stops: Stops) -> bool {
        let events = self.events;
        let runner = StepRunner::new(
            self.spec,
            observed,
            self.hosts,
            events.clone(),
            self.run.clone(),
        );
        let (interrupt_tx, interrupt_rx) = watch::channel(false);
        let interrupt_tx = Arc::new(interrupt_tx);
        let lost = tokio::spawn(stop_when_lock_lost(
            stops.lock_lost,
            events.clone(),
            interrupt_tx.clone(),
        ));
        let ctrl_c = tokio::spawn(stop_on_ctrl_c(
            stops.sigint,
            interrupt_tx,
            stops.interrupted_twice,
        ));
        let ui = tokio::spawn((self.ui)(self.rx));
        events.send(Event::Started {
            run_id: self.run.id.clone(),
            cluster: self.spec.cluster.name.clone(),
            steps: plan.graph.len(),
        });
        let started = Instant::now();
        let walked = walker::walk(
            &plan.graph,
            &runner,
            self.parallelism,
            &events,
            interrupt_rx,
        )
        .await;
        let recap = recap::recap(
            self.spec,
            observed,
            plan,
            &walked,
            &self.run.id,
            started.elapsed(),
        );
        let success = recap.success();
        events.send(Event::Recap(recap));
        // The lock watcher holds a sender too: the UI ends only when all are gone.
        lost.abort();
        let _ = lost.await;
        drop(runner);
        drop(events);
        let _ = ui.await;
        ctrl_c.abort();
        success
    }
}

/// A lock renewal that finds the lock taken stops new steps, as Ctrl-C does.
async fn stop_when_lock_lost(
    mut lock_lost: watch::Receiver<Option<String>>,
    events: Events,
    interrupt: Arc<watch::Sender<bool>>,
) {
    while lock_lost.changed().await.is_ok() {
        let why = lock_lost.borrow().clone();
        if let Some(why) = why {
            events.send(Event::Interrupted {
                message: format!("the apply lock was lost ({why}); no new step starts"),
            });
            let _ = interrupt.send(true);
            return;
        }
    }
}

/// The first Ctrl-C stops new steps and lets running ones finish; the second
/// is the user insisting.
async fn stop_on_ctrl_c(
    mut sigint: Signal,
    interrupt: Arc<watch::Sender<bool>>,
    interrupted_twice: Box<dyn FnOnce() + Send>,
) {
    if sigint.recv().await.is_some() {
        let _ = interrupt.send(true);
        if sigint.recv().await.is_some() {
            interrupted_twice();
        }
    }
}
