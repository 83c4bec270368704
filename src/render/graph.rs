//! `gt graph`: the plan's DAG as DOT (Graphviz) or Mermaid.

use crate::plan::{Plan, StepId};
use std::collections::BTreeMap;
use std::fmt::Write;

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

pub fn dot(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "digraph \"{}\" {{", escape(&plan.cluster));
    let _ = writeln!(out, "  rankdir = \"TB\";");
    let _ = writeln!(out, "  node [shape = \"box\", fontname = \"sans-serif\"];");
    for step in plan.graph.ordered() {
        let shape = if step.is_gate() {
            ", shape = \"diamond\""
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  \"{}\" [label = \"{}\"{shape}];",
            escape(&step.id().to_string()),
            escape(&step.label())
        );
    }
    for (a, b) in plan.graph.edges() {
        let _ = writeln!(
            out,
            "  \"{}\" -> \"{}\";",
            escape(&a.to_string()),
            escape(&b.to_string())
        );
    }
    out.push_str("}\n");
    out
}

pub fn mermaid(plan: &Plan) -> String {
    let mut out = String::from("flowchart TD\n");
    let ids: BTreeMap<StepId, String> = plan
        .graph
        .ordered()
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id(), format!("s{i}")))
        .collect();
    for step in plan.graph.ordered() {
        let label = step.label().replace('"', "#quot;");
        let (open, close) = if step.is_gate() {
            ("{", "}")
        } else {
            ("[", "]")
        };
        let _ = writeln!(out, "  {}{open}\"{label}\"{close}", ids[&step.id()]);
    }
    for (a, b) in plan.graph.edges() {
        let _ = writeln!(out, "  {} --> {}", ids[&a], ids[&b]);
    }
    out
}
