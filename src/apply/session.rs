//! One apply's walk of its plan, under the lock the caller holds: the UI
//! task fed by the walk's events, the two ways new steps stop (the lock is
//! lost, a signal: Ctrl-C, TERM, HUP), the walker itself and the recap.

use super::steps::{RunInfo, StepRunner};
use super::{recap, walker, Event, Events};
use crate::facts::Observed;
use crate::plan::Plan;
use crate::spec::Spec;
use crate::transport::{BoxFuture, Hosts};
use std::sync::Arc;
use std::time::Instant;
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
    parallelism: crate::parallelism::StepBounds,
    events: Events,
    rx: UnboundedReceiver<Event>,
    ui: Ui,
    restore: Option<Arc<crate::apply::steps::RestoreInput>>,
    cni_manifest: Option<Arc<crate::cni::CniManifest>>,
}

/// A signal that asks gt to stop: Ctrl-C, `kill`, a closed terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    Interrupt,
    Terminate,
    Hangup,
}

impl StopSignal {
    pub const ALL: [StopSignal; 3] = [
        StopSignal::Interrupt,
        StopSignal::Terminate,
        StopSignal::Hangup,
    ];

    pub fn number(self) -> i32 {
        match self {
            StopSignal::Interrupt => libc::SIGINT,
            StopSignal::Terminate => libc::SIGTERM,
            StopSignal::Hangup => libc::SIGHUP,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            StopSignal::Interrupt => "SIGINT",
            StopSignal::Terminate => "SIGTERM",
            StopSignal::Hangup => "SIGHUP",
        }
    }

    /// What a shell reports for a process this signal ended: 128 + N.
    pub fn exit_code(self) -> u8 {
        128 + self.number() as u8
    }
}

/// What stops new steps during the walk.
pub struct Stops {
    /// Set with the reason when a lock renewal finds the lock taken.
    pub lock_lost: watch::Receiver<Option<String>>,
    /// The first stop signal stops new steps and lets running ones finish
    /// (a second ends gt at once: the caller's signal handling does that).
    pub signals: UnboundedReceiver<StopSignal>,
}

impl<'a> Session<'a> {
    pub fn new(
        spec: &'a Spec,
        hosts: &'a Hosts,
        run: RunInfo,
        parallelism: crate::parallelism::StepBounds,
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
            restore: None,
            cni_manifest: None,
        }
    }

    /// The CNI manifest the plan's install-cni step applies.
    pub fn with_cni_manifest(mut self, manifest: Arc<crate::cni::CniManifest>) -> Self {
        self.cni_manifest = Some(manifest);
        self
    }

    /// A restore's session: its steps copy `input` to the control planes.
    pub fn restoring(mut self, input: Arc<crate::apply::steps::RestoreInput>) -> Self {
        self.restore = Some(input);
        self
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
        let mut runner = StepRunner::new(
            self.spec,
            observed,
            self.hosts,
            events.clone(),
            self.run.clone(),
        );
        if let Some(input) = self.restore {
            runner.restoring(input);
        }
        if let Some(m) = self.cni_manifest {
            runner.applying_cni_manifest(m);
        }
        runner.watching_nodes();
        let (interrupt_tx, interrupt_rx) = watch::channel(false);
        let interrupt_tx = Arc::new(interrupt_tx);
        let lost = tokio::spawn(stop_when_lock_lost(
            stops.lock_lost,
            events.clone(),
            interrupt_tx.clone(),
        ));
        let signalled = tokio::spawn(stop_on_signal(stops.signals, interrupt_tx));
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
        runner.stop_watching_nodes().await;
        let recap = recap::recap(
            self.spec,
            observed,
            plan,
            &walked,
            &runner.rung_releases(),
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
        signalled.abort();
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

/// The first stop signal stops new steps and lets running ones finish.
async fn stop_on_signal(
    mut signals: UnboundedReceiver<StopSignal>,
    interrupt: Arc<watch::Sender<bool>>,
) {
    if signals.recv().await.is_some() {
        let _ = interrupt.send(true);
    }
}
