//! `gt plan --json`: the plan layer's document, printed (README "Plan JSON").

use crate::plan::Plan;

pub use crate::plan::PLAN_FORMAT_VERSION;

pub fn plan_json(plan: &Plan) -> String {
    let mut out = serde_json::to_string_pretty(&plan.document().to_sorted_value()).expect("json");
    out.push('\n');
    out
}
