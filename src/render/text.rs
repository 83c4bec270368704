//! The plan as Terraform prints one.

use super::{sanitize, Clean, Style};
use crate::plan::{Action, Change, Plan, SetDiff};
use similar::{ChangeTag, TextDiff};
use std::fmt::Write;

/// The whole human rendering of a plan, ending with the summary line or
/// "No changes." (decided by `Plan::has_changes`, the same predicate as
/// `--detailed-exitcode`).
pub fn plan_text(plan: &Plan, style: Style) -> String {
    let mut out = String::new();
    if !plan.has_changes() {
        let _ = writeln!(
            out,
            "{} Your cluster matches cluster.toml.",
            style.green(&style.bold("No changes."))
        );
        out.push('\n');
        if plan.warnings.is_empty() {
            out.push_str(
                "gt compared cluster.toml with what it observed and found no differences, so no\nchanges are needed.\n",
            );
        } else {
            out.push_str(
                "gt has nothing it can change, but it noticed the problems below; `gt drift`\nreports them as drift.\n",
            );
        }
        warnings(&mut out, plan, style);
        return out;
    }
    legend(&mut out, plan, style);
    let _ = writeln!(out, "gt will perform the following actions:");
    for c in &plan.changes {
        out.push('\n');
        change(&mut out, c, style);
    }
    let s = plan.summary();
    out.push('\n');
    let _ = writeln!(
        out,
        "{} {} to add, {} to change, {} to destroy.",
        style.bold("Plan:"),
        s.add,
        s.change,
        s.destroy
    );
    let upgrades = plan
        .graph
        .ordered()
        .iter()
        .any(|s| matches!(s, crate::plan::Step::UpgradeNode { .. }));
    if upgrades && plan.graph.contains(&crate::plan::StepId::BackupEtcd) {
        out.push_str(
            "\nThe cluster is upgraded (kubeadm upgrades etcd with each control plane): gt\nbacks etcd up first (step backup-etcd, into [backup] dir; `--no-backup` skips it).\n",
        );
    } else if plan.graph.contains(&crate::plan::StepId::BackupEtcd) {
        out.push_str(
            "\nThe control plane's etcd membership changes: gt backs etcd up first (step\nbackup-etcd, into [backup] dir; `--no-backup` skips it).\n",
        );
    }
    warnings(&mut out, plan, style);
    out
}

fn symbol(a: Action, style: Style) -> String {
    match a {
        Action::Create => style.green("+"),
        Action::Update => style.yellow("~"),
        Action::Delete => style.red("-"),
        Action::Replace => format!("{}/{}", style.red("-"), style.green("+")),
    }
}

fn legend(out: &mut String, plan: &Plan, style: Style) {
    let _ = writeln!(
        out,
        "gt compared cluster.toml with the observed cluster and made the following plan."
    );
    let _ = writeln!(
        out,
        "Resource actions are indicated with the following symbols:"
    );
    let mut used: Vec<Action> = plan.changes.iter().map(|c| c.action).collect();
    used.sort();
    used.dedup();
    for a in used {
        let text = match a {
            Action::Create => "create",
            Action::Update => "update in-place",
            Action::Delete => "destroy",
            Action::Replace => "destroy and then create replacement",
        };
        // Pad by the visible width: escape codes take none on a terminal.
        let pad = if a == Action::Replace { "" } else { "  " };
        let _ = writeln!(out, "{pad}{} {text}", symbol(a, style));
    }
    out.push('\n');
}

fn change(out: &mut String, c: &Change, style: Style) {
    let addr = c.resource.address();
    let verb = match c.action {
        Action::Create => "will be created",
        Action::Update => "will be updated in-place",
        Action::Delete => "will be destroyed",
        Action::Replace => "must be replaced",
    };
    let addr = sanitize(&addr);
    let _ = writeln!(out, "  {}", style.bold(&format!("# {addr} {verb}")));
    let _ = writeln!(out, "  {}", style.dim(&format!("# ({})", Clean(&c.reason))));
    let (kind, name) = (c.resource.kind(), Clean(c.resource.name()));
    let lead = match c.action {
        Action::Replace => symbol(c.action, style),
        _ => format!("  {}", symbol(c.action, style)),
    };
    let _ = writeln!(out, "{lead} {kind} \"{name}\" {{");
    let attr_sym = match c.action {
        Action::Delete => style.red("-"),
        Action::Update => style.yellow("~"),
        _ => style.green("+"),
    };
    let mut rows: Vec<(String, String)> = c.attributes.clone();
    if c.action == Action::Delete {
        if let Some(r) = c.role {
            rows.push(("role".into(), r.to_string()));
        }
    }
    let width = rows
        .iter()
        .map(|(k, _)| k.len())
        .chain(
            [
                (!c.labels.is_empty()).then_some("labels".len()),
                (!c.taints.is_empty()).then_some("taints".len()),
            ]
            .into_iter()
            .flatten(),
        )
        .max()
        .unwrap_or(0);
    for (k, v) in &rows {
        let _ = writeln!(out, "      {attr_sym} {k:<width$} = \"{}\"", Clean(v));
    }
    if !c.labels.is_empty() {
        set_diff(out, "labels", &c.labels, width, c.action, style);
    }
    if !c.taints.is_empty() {
        set_diff(out, "taints", &c.taints, width, c.action, style);
    }
    for h in &c.host {
        let _ = writeln!(out, "      {} {}", symbol(h.action, style), Clean(&h.text));
    }
    let _ = writeln!(out, "    }}");
}

/// A set change as a `similar` line diff: removed lines `-`, added `+`,
/// unchanged ones counted, as Terraform hides unchanged attributes.
fn set_diff<T: PartialEq + std::fmt::Display>(
    out: &mut String,
    what: &str,
    set: &SetDiff<T>,
    width: usize,
    action: Action,
    style: Style,
) {
    let head_sym = if set.before.is_empty() && action != Action::Update {
        style.green("+")
    } else {
        style.yellow("~")
    };
    let _ = writeln!(out, "      {head_sym} {what:<width$} = [");
    let before = lines(&set.before);
    let after = lines(&set.after);
    let diff = TextDiff::from_lines(&before, &after);
    let mut unchanged = 0;
    for change in diff.iter_all_changes() {
        let value = Clean(change.value().trim_end_matches('\n'));
        match change.tag() {
            ChangeTag::Equal => unchanged += 1,
            ChangeTag::Delete => {
                let _ = writeln!(out, "          {} \"{value}\",", style.red("-"));
            }
            ChangeTag::Insert => {
                let _ = writeln!(out, "          {} \"{value}\",", style.green("+"));
            }
        }
    }
    if unchanged > 0 {
        let noun = if what == "labels" { "label" } else { "taint" };
        let plural = if unchanged == 1 { "" } else { "s" };
        let _ = writeln!(
            out,
            "            {}",
            style.dim(&format!("# ({unchanged} unchanged {noun}{plural} hidden)"))
        );
    }
    let _ = writeln!(out, "        ]");
}

fn lines<T: std::fmt::Display>(v: &[T]) -> String {
    let mut s = String::new();
    for l in v {
        let _ = writeln!(s, "{l}");
    }
    s
}

/// Terraform's warning boxes.
fn warnings(out: &mut String, plan: &Plan, style: Style) {
    for w in &plan.warnings {
        out.push('\n');
        let _ = writeln!(out, "{}", style.yellow("╷"));
        let _ = writeln!(
            out,
            "{} {}",
            style.yellow("│"),
            style.bold(&style.yellow(&format!("Warning: {}", title(w.kind))))
        );
        let _ = writeln!(out, "{}", style.yellow("│"));
        for line in wrap(&sanitize(&w.message), 76) {
            let _ = writeln!(out, "{} {line}", style.yellow("│"));
        }
        let _ = writeln!(out, "{}", style.yellow("╵"));
    }
}

fn title(kind: crate::plan::WarningKind) -> &'static str {
    use crate::plan::WarningKind::*;
    match kind {
        Unreachable => "host unreachable",
        NotReady => "node not Ready",
        VersionSkew => "version behind cluster.toml",
        ArchMismatch => "architecture differs",
        OtherCluster => "node belongs to another cluster",
        NotInFile => "node not in cluster.toml",
        RoleMismatch => "role differs",
        ApiNotReady => "API server not ready",
        EtcdMember => "etcd member",
        EtcdQuorum => "etcd has no quorum",
        Drain => "drain",
    }
}

fn wrap(s: &str, width: usize) -> Vec<String> {
    let mut lines = vec![];
    let mut cur = String::new();
    for word in s.split(' ') {
        if !cur.is_empty() && cur.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}
