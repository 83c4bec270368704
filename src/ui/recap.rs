//! The recap after the walk, as Ansible's PLAY RECAP and Terraform's summary
//! put it: one aligned row per node, each root cause once, one closing line.

use super::{first_line, printable};
use crate::apply::{NodeResult, Recap};
use crate::render::Style;
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
        let name_width = recap.nodes.iter().map(|n| n.node.len()).max().unwrap_or(0) + 3;
        for n in &recap.nodes {
            let result = n.result.as_str();
            let row = format!(
                "  {:<name_width$}{}{}{}",
                n.node,
                colored(n.result, style),
                " ".repeat(RESULT_WIDTH - result.len()),
                detail(&n.detail),
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
            f.label,
            f.step,
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
