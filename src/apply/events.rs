//! What apply reports while it walks. Steps send events over a channel; one
//! UI task renders them (indicatif bars on a TTY, plain lines otherwise, one
//! JSON object per line with `--json`). Nothing here prints, and no event
//! ever carries a secret: step errors are built from messages gt wrote or
//! from tool output with secrets redacted (see `secret`).

use crate::kube::kubeadm::Release;
use crate::plan::{PlanDocument, StepId};
use crate::spec::NodeName;
use serde::Serialize;
use std::time::Duration;
use tokio::sync::mpsc;

/// One thing that happened during an apply, in the order it happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The plan about to be applied (the `--json` stream starts with it),
    /// as `gt plan --json` prints it.
    Plan {
        #[serde(serialize_with = "sorted_keys")]
        plan: Box<PlanDocument>,
    },
    /// The walk begins.
    Started {
        run_id: String,
        cluster: String,
        /// Steps in the plan's DAG.
        steps: usize,
    },
    StepStarted {
        step: StepId,
        /// Human label (`join worker fenn`).
        label: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        node: Option<NodeName>,
    },
    /// A long step says what it is doing or waiting for.
    StepProgress { step: StepId, message: String },
    StepFinished {
        step: StepId,
        label: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        node: Option<NodeName>,
        status: StepStatus,
        #[serde(serialize_with = "seconds")]
        elapsed: Duration,
        /// Why it failed, or why it was skipped.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Ctrl-C: no new step starts; running ones finish.
    Interrupted { message: String },
    /// The walk is over (always the last event). The UI words each node's
    /// outcome; `--json` shows it as the `detail` text.
    #[serde(skip)]
    Recap(Recap),
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Succeeded,
    Failed,
    /// A step it depends on failed or was cancelled ("upstream failed").
    Skipped,
    /// Never started: the apply was interrupted first; or a gate
    /// interrupted while it waited (a wait changes nothing).
    Cancelled,
}

/// The summary after the walk: per node, and the root causes of failure.
#[derive(Debug, Clone, PartialEq)]
pub struct Recap {
    pub run_id: String,
    pub cluster: String,
    /// Every node of cluster.toml in file order, then nodes removed that were
    /// not in the file (`--prune`).
    pub nodes: Vec<NodeRecap>,
    /// Nodes joined (init counts), labels/taints changed, removed.
    pub joined: usize,
    pub changed: usize,
    pub removed: usize,
    /// Steps by outcome.
    pub succeeded_steps: usize,
    pub failed_steps: usize,
    pub skipped_steps: usize,
    pub cancelled_steps: usize,
    /// Each failed step once, with its error: the root causes.
    pub failures: Vec<Failure>,
    /// Ctrl-C stopped the walk early.
    pub interrupted: bool,
    pub elapsed: Duration,
}

impl Recap {
    /// Every step succeeded (and nothing was cancelled): exit 0.
    pub fn success(&self) -> bool {
        self.failed_steps == 0
            && self.skipped_steps == 0
            && self.cancelled_steps == 0
            && !self.interrupted
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecap {
    pub node: NodeName,
    pub outcome: NodeOutcome,
    /// The Kubernetes release its kubelet is at after the walk, when the
    /// plan upgraded it (or was to): the newest rung it finished, else the
    /// version gt observed.
    pub version: Option<Release>,
}

impl NodeRecap {
    pub fn result(&self) -> NodeResult {
        self.outcome.result()
    }
}

/// What the walk did to one node (the UI words it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeOutcome {
    /// Nothing to do: it matched cluster.toml.
    InSync,
    /// gt could not reach it when it observed, and the plan had nothing it could do there.
    Unreachable {
        why: String,
    },
    /// This step of its failed with this error.
    Failed {
        step: StepId,
        error: String,
    },
    /// This step of its did not run, for this reason (upstream failure,
    /// Ctrl-C), after the steps in `done` had succeeded.
    NotRun {
        step: StepId,
        reason: String,
        done: Vec<StepId>,
    },
    /// `kubeadm init` made the cluster on it.
    Initialised,
    JoinedControlPlane,
    JoinedWorker,
    /// Which of its sets changed (neither: only its kubelet was started).
    Updated {
        labels: bool,
        taints: bool,
    },
    Removed(Removal),
    /// Reset, then joined again.
    Replaced,
    /// Only its host's software or kernel settings changed.
    HostPrepared,
    /// `gt restore`: its etcd member restored from the snapshot, running again.
    EtcdRestored,
    /// Every rung of its upgrade done: it runs this release.
    Upgraded {
        to: Release,
    },
    /// Only uncordoned: an interrupted upgrade had left gt's cordon on it.
    Uncordoned,
}

/// How a removal went, and what it left to do by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// Drained, deleted and reset.
    Complete,
    /// Reset; its Node object was already gone.
    NodeWasGone,
    /// Deleted; its host, not in cluster.toml, still runs a kubelet with this cluster's credentials.
    NotResetNotInFile,
    /// Deleted; its host was unreachable, so it still holds this cluster's credentials.
    NotResetUnreachable,
    /// Deleted; its host carries another cluster now.
    NotResetOtherCluster,
    /// Deleted; its host held no kubeadm state.
    NothingToReset,
}

impl NodeOutcome {
    pub fn result(&self) -> NodeResult {
        match self {
            NodeOutcome::InSync => NodeResult::Ok,
            NodeOutcome::Unreachable { .. } => NodeResult::Unreachable,
            NodeOutcome::Failed { .. } => NodeResult::Failed,
            NodeOutcome::NotRun { .. } => NodeResult::Skipped,
            NodeOutcome::Initialised
            | NodeOutcome::JoinedControlPlane
            | NodeOutcome::JoinedWorker
            | NodeOutcome::Updated { .. }
            | NodeOutcome::Removed(_)
            | NodeOutcome::Replaced
            | NodeOutcome::HostPrepared
            | NodeOutcome::EtcdRestored
            | NodeOutcome::Upgraded { .. }
            | NodeOutcome::Uncordoned => NodeResult::Changed,
        }
    }
}

/// Per node, as Ansible's recap and Terraform's summary put it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeResult {
    /// Its steps ran and succeeded.
    Changed,
    /// Nothing to do: it matched cluster.toml.
    Ok,
    /// One of its steps failed.
    Failed,
    /// Its steps did not run (upstream failure or Ctrl-C).
    Skipped,
    /// gt could not reach it when it observed (and the plan had nothing it could do there).
    Unreachable,
}

impl NodeResult {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeResult::Changed => "changed",
            NodeResult::Ok => "ok",
            NodeResult::Failed => "failed",
            NodeResult::Skipped => "skipped",
            NodeResult::Unreachable => "unreachable",
        }
    }
}

/// A step that failed, with the error a user acts on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub step: StepId,
    pub label: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<NodeName>,
    pub error: String,
}

/// The plan as `gt plan --json` lists it: keys sorted.
fn sorted_keys<S: serde::Serializer>(plan: &PlanDocument, s: S) -> Result<S::Ok, S::Error> {
    plan.to_sorted_value().serialize(s)
}

/// Seconds with millisecond precision, as every duration in `--json` is written.
pub fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    // Milliseconds of precision: enough for humans, stable for tests.
    s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
}

/// Where steps send events. Sending never fails the walk: a UI that has
/// gone away (closed pipe) must not stop an apply halfway.
#[derive(Debug, Clone)]
pub struct Events(mpsc::UnboundedSender<Event>);

impl Events {
    pub fn channel() -> (Events, mpsc::UnboundedReceiver<Event>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Events(tx), rx)
    }

    pub fn send(&self, e: Event) {
        let _ = self.0.send(e);
    }

    pub fn progress(&self, step: &StepId, message: impl Into<String>) {
        self.send(Event::StepProgress {
            step: step.clone(),
            message: message.into(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_as_tagged_json_lines() {
        let e = Event::StepFinished {
            step: "join-worker/fenn".parse().unwrap(),
            label: "join worker fenn".into(),
            node: Some("fenn".parse().unwrap()),
            status: StepStatus::Failed,
            elapsed: Duration::from_millis(1234),
            reason: Some("kubeadm join exited 1".into()),
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"event":"step_finished","step":"join-worker/fenn","label":"join worker fenn","node":"fenn","status":"failed","elapsed":1.234,"reason":"kubeadm join exited 1"}"#
        );
    }
}
