//! Diff Spec × Observed into actions; build and validate the DAG.

use crate::facts::Observed;
use crate::spec::Spec;
use std::collections::BTreeMap;

/// Per node name, the human reasons it differs from cluster.toml (empty map: in sync).
/// Shared by `gt status` (its drift column) and `gt drift`.
pub fn drift_by_node(_spec: &Spec, _observed: &Observed) -> BTreeMap<String, Vec<String>> {
    BTreeMap::new()
}
