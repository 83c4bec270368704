//! `gt graph`: the plan's DAG as DOT (Graphviz) or Mermaid.

use crate::plan::{Plan, Step, StepId};
use std::collections::BTreeMap;
use std::fmt::Write;

/// The upgrade's rungs: each release with its steps, in plan order.
fn rungs(plan: &Plan) -> Vec<(String, Vec<StepId>)> {
    let mut out: Vec<(String, Vec<StepId>)> = Vec::new();
    for step in plan.graph.ordered() {
        if let Step::UpgradeNode { release, .. } = step {
            let release = release.to_string();
            match out.iter_mut().find(|(r, _)| *r == release) {
                Some((_, ids)) => ids.push(step.id()),
                None => out.push((release, vec![step.id()])),
            }
        }
    }
    out
}

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
    // Each rung of an upgrade drawn as a box around its steps.
    for (release, ids) in rungs(plan) {
        let _ = writeln!(out, "  subgraph \"cluster_rung_{release}\" {{");
        let _ = writeln!(out, "    label = \"rung {release}\";");
        for id in ids {
            let _ = writeln!(out, "    \"{}\";", escape(&id.to_string()));
        }
        out.push_str("  }\n");
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
    for (n, (release, steps)) in rungs(plan).into_iter().enumerate() {
        let _ = writeln!(out, "  subgraph rung{n} [\"rung {release}\"]");
        for id in steps {
            let _ = writeln!(out, "    {}", ids[&id]);
        }
        out.push_str("  end\n");
    }
    for (a, b) in plan.graph.edges() {
        let _ = writeln!(out, "  {} --> {}", ids[&a], ids[&b]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::Observed;
    use std::path::Path;

    #[test]
    fn each_rung_of_an_upgrade_is_drawn_around_its_steps() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let spec =
            crate::spec::load_file(&root.join("tests/fixtures/goldentooth-1.34.2.toml")).unwrap();
        let facts = std::fs::read_to_string(root.join("tests/fixtures/facts/upgrade-at-1.32.json"))
            .unwrap();
        let observed = Observed::from_json(&facts).unwrap();
        let p = crate::plan::plan(&spec, &observed, &Default::default()).unwrap();
        let d = dot(&p);
        assert!(d.contains("  subgraph \"cluster_rung_v1.33\" {\n    label = \"rung v1.33\";\n    \"upgrade/bettley@v1.33\";\n"), "{d}");
        assert!(d.contains("  subgraph \"cluster_rung_v1.34.2\" {"), "{d}");
        assert!(
            d.contains("\"upgrade/velaryon@v1.33\" -> \"upgrade/bettley@v1.34.2\";"),
            "{d}"
        );
        let m = mermaid(&p);
        assert!(m.contains("  subgraph rung0 [\"rung v1.33\"]\n"), "{m}");
        assert!(m.contains("  subgraph rung1 [\"rung v1.34.2\"]\n"), "{m}");
        assert_eq!(m.matches("\n  end\n").count(), 2, "{m}");
    }
}
