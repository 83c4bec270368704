//! The plan as a document: what `gt plan --json` prints (README "Plan
//! JSON"), what a saved plan stores, and what a stale check compares.

use super::{Action, HostItem, Label, Plan, SetDiff, Step, StepId, Summary, Warning};
use crate::spec::{Role, Taint};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Bumped on incompatible changes; additive fields keep the major version.
pub const PLAN_FORMAT_VERSION: &str = "1.0";

/// `gt plan --json`'s document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanDocument {
    pub format_version: String,
    pub cluster: String,
    pub has_changes: bool,
    pub summary: Summary,
    pub changes: Vec<ChangeEntry>,
    /// In the plan's deterministic topological order.
    pub steps: Vec<StepEntry>,
    pub warnings: Vec<Warning>,
}

/// One resource change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeEntry {
    pub address: String,
    /// `cluster` or `node`.
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub action: Action,
    pub reason: String,
    pub steps: Vec<StepId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<SetChange<Label>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taints: Option<SetChange<Taint>>,
    /// For `host` changes: one item per difference.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host: Vec<HostItem>,
}

/// A set's before and after, and what is added and removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetChange<T> {
    pub before: Vec<T>,
    pub after: Vec<T>,
    pub add: Vec<T>,
    pub remove: Vec<T>,
}

impl<T: PartialEq + Clone> SetChange<T> {
    fn of(set: &SetDiff<T>) -> Option<SetChange<T>> {
        (!set.is_empty()).then(|| SetChange {
            before: set.before.clone(),
            after: set.after.clone(),
            add: set.added().into_iter().cloned().collect(),
            remove: set.removed().into_iter().cloned().collect(),
        })
    }
}

/// One step of the DAG: its kind and fields, and where it stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepEntry {
    pub id: StepId,
    pub label: String,
    pub depends_on: Vec<StepId>,
    #[serde(flatten)]
    pub step: Step,
}

impl Plan {
    pub fn document(&self) -> PlanDocument {
        let changes = self
            .changes
            .iter()
            .map(|c| ChangeEntry {
                address: c.resource.address(),
                kind: c.resource.kind().to_string(),
                name: c.resource.name().to_string(),
                action: c.action,
                reason: c.reason.clone(),
                steps: c.steps.clone(),
                role: c.role,
                attributes: c.attributes.iter().cloned().collect(),
                labels: SetChange::of(&c.labels),
                taints: SetChange::of(&c.taints),
                host: c.host.clone(),
            })
            .collect();
        let steps = self
            .graph
            .ordered()
            .into_iter()
            .map(|step| {
                let id = step.id();
                StepEntry {
                    label: step.label(),
                    depends_on: self.graph.dependencies(&id),
                    id,
                    step: step.clone(),
                }
            })
            .collect();
        PlanDocument {
            format_version: PLAN_FORMAT_VERSION.to_string(),
            cluster: self.cluster.clone(),
            has_changes: self.has_changes(),
            summary: self.summary(),
            changes,
            steps,
            warnings: self.warnings.clone(),
        }
    }
}

impl PlanDocument {
    /// The document as JSON with every object's keys sorted: the published
    /// format has always listed them so, in `--json` and in plan files.
    pub fn to_sorted_value(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a plan document serialises")
    }

    /// Whether apply would do the same thing: the changes and the steps
    /// (warnings quote volatile reasons and change nothing apply does).
    pub fn same_work(&self, other: &PlanDocument) -> bool {
        self.changes == other.changes && self.steps == other.steps
    }

    /// One line per change, per step and per step dependency: what a
    /// refusal of a stale plan shows.
    pub fn work_lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for c in &self.changes {
            let mut line = format!("{}: {} ({})", c.address, c.action.as_str(), c.reason);
            if let Some(set) = &c.labels {
                line.push_str(&set_words("labels", set));
            }
            if let Some(set) = &c.taints {
                line.push_str(&set_words("taints", set));
            }
            for h in &c.host {
                line.push_str(&format!(" {}{}", h.action.symbol(), h.text));
            }
            out.push(line);
        }
        // A line per dependency: a join that disappears shows as the lines
        // naming it, not as one long line of the final step's dependencies.
        for st in &self.steps {
            out.push(format!("step {}", st.id));
            for dep in &st.depends_on {
                out.push(format!("step {} after {dep}", st.id));
            }
        }
        out
    }
}

/// ` labels +a=b -c=d`.
fn set_words<T: std::fmt::Display>(key: &str, set: &SetChange<T>) -> String {
    let words: Vec<String> = set
        .add
        .iter()
        .map(|w| format!("+{w}"))
        .chain(set.remove.iter().map(|w| format!("-{w}")))
        .collect();
    format!(" {key} {}", words.join(" "))
}
