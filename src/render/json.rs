//! `gt plan --json`: a versioned, documented schema (README "Plan JSON").

use crate::plan::{Plan, Resource};
use serde_json::{json, Value};

/// Bumped on incompatible changes; additive fields keep the major version.
pub const PLAN_FORMAT_VERSION: &str = "1.0";

pub fn plan_json(plan: &Plan) -> String {
    let s = plan.summary();
    let changes: Vec<Value> = plan
        .changes
        .iter()
        .map(|c| {
            let (kind, name) = match &c.resource {
                Resource::Cluster(n) => ("cluster", n),
                Resource::Node(n) => ("node", n),
            };
            let mut v = json!({
                "address": c.resource.address(),
                "type": kind,
                "name": name,
                "action": c.action,
                "reason": c.reason,
                "steps": c.steps,
            });
            let o = v.as_object_mut().expect("object");
            if let Some(r) = c.role {
                o.insert("role".into(), json!(r));
            }
            if !c.attributes.is_empty() {
                let attrs: serde_json::Map<String, Value> = c
                    .attributes
                    .iter()
                    .map(|(k, v)| (k.clone(), json!(v)))
                    .collect();
                o.insert("attributes".into(), Value::Object(attrs));
            }
            for (key, set) in [("labels", &c.labels), ("taints", &c.taints)] {
                if !set.is_empty() {
                    o.insert(
                        key.into(),
                        json!({"before": set.before, "after": set.after, "add": set.added(), "remove": set.removed()}),
                    );
                }
            }
            v
        })
        .collect();
    let steps: Vec<Value> = plan
        .graph
        .ordered()
        .into_iter()
        .map(|step| {
            let id = step.id();
            let mut v = serde_json::to_value(step).expect("step serialises");
            let o = v.as_object_mut().expect("object");
            o.insert("id".into(), json!(id));
            o.insert("label".into(), json!(step.label()));
            o.insert("depends_on".into(), json!(plan.graph.dependencies(&id)));
            v
        })
        .collect();
    let doc = json!({
        "format_version": PLAN_FORMAT_VERSION,
        "cluster": plan.cluster,
        "has_changes": plan.has_changes(),
        "summary": {"add": s.add, "change": s.change, "destroy": s.destroy},
        "changes": changes,
        "steps": steps,
        "warnings": plan.warnings,
    });
    let mut out = serde_json::to_string_pretty(&doc).expect("json");
    out.push('\n');
    out
}
