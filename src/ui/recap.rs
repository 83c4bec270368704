//! The recap after the walk, as Ansible's PLAY RECAP and Terraform's summary
//! put it: one aligned row per node, each root cause once, one closing line.

use super::{first_line, printable};
use crate::apply::{NodeOutcome, NodeRecap, NodeResult, Recap, Removal};
use crate::render::{Clean, Style};
use std::fmt::Write;

/// A node's detail is cut here so that rows stay on one line; the full error
/// is in the `Error:` block below.
const DETAIL_MAX: usize = 64;

/// Wide enough for the longest result, `unreachable`, so that the detail
/// column sits at the same place whatever the results are.
const RESULT_WIDTH: usize = "unreachable".len() + 2;

pub fn recap_text(recap: &Recap, style: Style) -> String {
    let mut out = String::new();
    if !recap.nodes.is_empty() {
        let _ = writeln!(out, "{}", style.bold("Recap:"));
        let name_width = recap
            .nodes
            .iter()
            .map(|n| n.node.as_str().len())
            .max()
            .unwrap_or(0)
            + 3;
        for n in &recap.nodes {
            let result = n.result().as_str();
            let row = format!(
                "  {:<name_width$}{}{}{}",
                Clean(n.node.as_str()),
                colored(n.result(), style),
                " ".repeat(RESULT_WIDTH - result.len()),
                detail(&node_detail(n)),
            );
            let _ = writeln!(out, "{}", row.trim_end());
        }
    }
    for f in &recap.failures {
        let error = printable(&f.error);
        let mut lines = error.lines();
        let _ = writeln!(
            out,
            "\n{} {} ({}): {}",
            style.bold(&style.red("Error:")),
            printable(&f.label),
            printable(&f.step.to_string()),
            lines.next().unwrap_or("")
        );
        // Tool output keeps its lines, indented under the error it belongs to.
        for l in lines {
            let _ = writeln!(out, "  {l}");
        }
    }
    let nodes = format!(
        "Nodes: {} joined, {} changed, {} removed.",
        recap.joined, recap.changed, recap.removed
    );
    let closing = if recap.success() {
        format!("{} {nodes}", style.bold(&style.green("Apply complete!")))
    } else {
        let head = if recap.interrupted {
            "Apply interrupted:"
        } else {
            "Apply failed:"
        };
        format!(
            "{} {}. {nodes}",
            style.bold(&style.red(head)),
            counts(recap)
        )
    };
    let _ = writeln!(out, "\n{closing}");
    out
}

/// `1 step failed, 2 skipped, 5 cancelled`: the outcomes that went wrong,
/// zeros left out (an interrupt that cancelled nothing still says so).
fn counts(r: &Recap) -> String {
    let parts: Vec<(usize, &str)> = [
        (r.failed_steps, "failed"),
        (r.skipped_steps, "skipped"),
        (r.cancelled_steps, "cancelled"),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .collect();
    if parts.is_empty() {
        return "0 steps cancelled".to_string();
    }
    parts
        .iter()
        .enumerate()
        .map(|(i, (n, what))| match (i, n) {
            (0, 1) => format!("1 step {what}"),
            (0, n) => format!("{n} steps {what}"),
            (_, n) => format!("{n} {what}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn colored(result: NodeResult, style: Style) -> String {
    let s = result.as_str();
    match result {
        NodeResult::Changed => style.yellow(s),
        NodeResult::Ok => style.green(s),
        NodeResult::Failed | NodeResult::Unreachable => style.red(s),
        NodeResult::Skipped => style.dim(s),
    }
}

/// One line of at most `DETAIL_MAX` characters; ` …` says there is more.
fn detail(d: &str) -> String {
    let d = printable(d);
    let line = first_line(&d);
    let more = line.len() < d.trim_end().len();
    let mut shown: String = line.chars().take(DETAIL_MAX).collect();
    if more || shown.len() < line.len() {
        shown = format!("{} …", shown.trim_end());
    }
    shown
}

/// What happened to a node, in words: "joined as a worker", "labels
/// updated", "join-worker/fenn: <error>", "done: …; not done: …".
/// Removals are short: a recap row is cut at 64 characters.
pub fn outcome_text(o: &NodeOutcome) -> String {
    match o {
        NodeOutcome::InSync => String::new(),
        NodeOutcome::Unreachable { why } => why.clone(),
        NodeOutcome::Failed { step, error } => {
            format!("{step}: {}", error.lines().next().unwrap_or(""))
        }
        NodeOutcome::NotRun { step, reason, done } if !done.is_empty() => {
            let done: Vec<String> = done.iter().map(ToString::to_string).collect();
            format!("done: {}; not done: {step} ({reason})", done.join(", "))
        }
        NodeOutcome::NotRun { reason, .. } => reason.clone(),
        NodeOutcome::Initialised => "initialised the cluster".into(),
        NodeOutcome::JoinedControlPlane => "joined as a control plane".into(),
        NodeOutcome::JoinedWorker => "joined as a worker".into(),
        NodeOutcome::Updated {
            labels: true,
            taints: true,
        } => "labels and taints updated".into(),
        NodeOutcome::Updated { labels: true, .. } => "labels updated".into(),
        NodeOutcome::Updated { taints: true, .. } => "taints updated".into(),
        NodeOutcome::Updated { .. } => "kubelet started".into(),
        NodeOutcome::Removed(r) => removal_text(*r).into(),
        NodeOutcome::Replaced => "reset and joined again".into(),
        NodeOutcome::HostPrepared => "host software and settings brought in line".into(),
        NodeOutcome::EtcdRestored => "etcd restored from the snapshot".into(),
        NodeOutcome::Upgraded { to } => format!("upgraded to {to}"),
        NodeOutcome::Uncordoned => "uncordoned (gt's cordon from an interrupted upgrade)".into(),
    }
}

/// A node's detail: what happened, led by the release it is at when its
/// upgrade stopped short (`at v1.33.3; upgrade/fenn@v1.34.2: …`).
pub fn node_detail(n: &NodeRecap) -> String {
    let text = outcome_text(&n.outcome);
    match (&n.outcome, n.version) {
        (NodeOutcome::Failed { .. } | NodeOutcome::NotRun { .. }, Some(v)) => {
            format!("at {v}; {text}")
        }
        _ => text,
    }
}

/// A host gt did not reset still runs its kubelet with this cluster's
/// credentials: say what is left to do by hand.
fn removal_text(r: Removal) -> &'static str {
    match r {
        Removal::Complete => "removed",
        Removal::NodeWasGone => "reset (its Node was already gone)",
        Removal::NotResetNotInFile => {
            "removed, not reset (not in the file): run kubeadm reset -f on it"
        }
        Removal::NotResetUnreachable => {
            "removed, not reset (unreachable): run kubeadm reset -f on it"
        }
        Removal::NotResetOtherCluster => "removed, not reset (its host is in another cluster)",
        Removal::NothingToReset => "removed (its host had no kubeadm state to reset)",
    }
}
