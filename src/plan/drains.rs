//! What the plan's drains would do, from the pods and PodDisruptionBudgets
//! read for it: the pods each drain evicts, the pods no controller owns
//! (`kubectl drain` refuses them without `--force`), and the budgets that
//! allow no disruption (an eviction they cover is retried until the drain's
//! timeout). Warnings, not changes: pods come and go between two looks.

use super::diff::Cx;
use super::*;
use crate::kube::workloads::{Pdb, Pod};
use crate::spec::format_duration;

/// Pods named in one warning; the rest are counted.
const MAX_NAMED: usize = 10;

fn named(keys: &[String]) -> String {
    let mut s = keys
        .iter()
        .take(MAX_NAMED)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if keys.len() > MAX_NAMED {
        s.push_str(&format!(" and {} more", keys.len() - MAX_NAMED));
    }
    s
}

impl Cx<'_> {
    /// The nodes the plan drains, file order first, with why.
    fn drained(&self) -> Vec<(NodeName, String)> {
        let mut out: Vec<(NodeName, String)> = Vec::new();
        for node in self.spec.present_nodes() {
            let rungs: Vec<String> = self
                .out
                .upgrade
                .rungs
                .iter()
                .filter(|r| r.nodes().any(|(n, _)| *n == node.name))
                .map(|r| r.release.to_string())
                .collect();
            if !rungs.is_empty() {
                out.push((
                    node.name.clone(),
                    format!("upgrade to {}", rungs.join(", ")),
                ));
            }
        }
        for r in self.out.removals.iter().chain(&self.out.replacements) {
            if r.in_cluster && !out.iter().any(|(n, _)| *n == r.node) {
                out.push((r.node.clone(), "removal".into()));
            }
        }
        out
    }

    /// Warnings about each drain, when the pods were read.
    pub(super) fn drain_predictions(&mut self) {
        let Some(w) = &self.obs.cluster.workloads else {
            return;
        };
        let pods: Vec<Pod> = w.pods.iter().map(|p| p.to_kube()).collect();
        let pdbs: Vec<Pdb> = w.pdbs.iter().map(|p| p.to_kube()).collect();
        let force = self.spec.drain.force;
        let timeout = format_duration(self.spec.apply.drain_timeout);
        for (node, why) in self.drained() {
            let evicted: Vec<&Pod> = pods
                .iter()
                .filter(|p| p.node.as_deref() == Some(node.as_str()) && !p.skipped_by_drain())
                .collect();
            if evicted.is_empty() {
                continue;
            }
            let keys: Vec<String> = evicted.iter().map(|p| p.key()).collect();
            self.warn(
                Some(&node),
                WarningKind::Drain,
                format!("drain evicts {} pods", keys.len()),
                format!(
                    "draining {node} ({why}) evicts {} pod{}: {}",
                    keys.len(),
                    if keys.len() == 1 { "" } else { "s" },
                    named(&keys)
                ),
            );
            let bare: Vec<String> = evicted
                .iter()
                .filter(|p| p.controller.is_none() && !p.finished)
                .map(|p| p.key())
                .collect();
            if !bare.is_empty() && force {
                self.warn(
                    Some(&node),
                    WarningKind::Drain,
                    "drain deletes pods no controller owns".into(),
                    format!(
                        "draining {node} deletes pods no controller owns, for good ([drain] force = true): {}",
                        named(&bare)
                    ),
                );
            } else if !bare.is_empty() {
                self.warn(
                    Some(&node),
                    WarningKind::Drain,
                    "drain stops at pods no controller owns".into(),
                    format!(
                        "draining {node} stops at pods no controller owns: {}; kubectl drain refuses to delete them without --force, and gt does not force: delete or move them first, or set `force = true` in [drain] (they are then deleted for good)",
                        named(&bare)
                    ),
                );
            }
            for pdb in pdbs.iter().filter(|b| b.disruptions_allowed <= 0) {
                let covered: Vec<String> = evicted
                    .iter()
                    .filter(|p| !p.finished && pdb.covers(p))
                    .map(|p| p.key())
                    .collect();
                if covered.is_empty() {
                    continue;
                }
                self.warn(
                    Some(&node),
                    WarningKind::Drain,
                    format!(
                        "drain blocked by PodDisruptionBudget {}/{}",
                        pdb.namespace, pdb.name
                    ),
                    format!(
                        "draining {node} is blocked by PodDisruptionBudget {}/{}, which allows no disruption now, covering {}: kubectl retries the eviction until drain_timeout ({timeout}), then the step fails; scale the workload up or relax the budget first",
                        pdb.namespace,
                        pdb.name,
                        named(&covered)
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::facts::{PdbFacts, PodFacts, SelectorFacts, Workloads};
    use crate::plan::tests::facts;
    use crate::plan::{plan, PlanOptions, WarningKind};
    use std::collections::BTreeMap;

    fn pod(name: &str, node: &str, controller: Option<&str>) -> PodFacts {
        PodFacts {
            namespace: "default".into(),
            name: name.into(),
            node: Some(node.into()),
            labels: BTreeMap::from([("app".to_string(), name.to_string())]),
            controller: controller.map(str::to_string),
            mirror: false,
            finished: false,
        }
    }

    #[test]
    fn each_drain_lists_its_evictions_bare_pods_and_budgets_that_block_it() {
        let mut spec = crate::spec::load_file(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/goldentooth-1.33.3.toml"),
        )
        .unwrap();
        let mut o = facts("upgrade-at-1.32");
        o.cluster.workloads = Some(Workloads {
            pods: vec![
                pod("web", "fenn", Some("ReplicaSet")),
                pod("hr-app", "fenn", None),
                pod("calico-node-1", "fenn", Some("DaemonSet")),
                pod("db", "jast", Some("StatefulSet")),
            ],
            pdbs: vec![PdbFacts {
                namespace: "default".into(),
                name: "db".into(),
                selector: Some(SelectorFacts {
                    match_labels: BTreeMap::from([("app".to_string(), "db".to_string())]),
                    ..Default::default()
                }),
                disruptions_allowed: 0,
            }],
        });
        let p = plan(&spec, &o, &PlanOptions::default()).unwrap();
        let drain: Vec<(String, String)> = p
            .warnings
            .iter()
            .filter(|w| w.kind == WarningKind::Drain)
            .map(|w| (w.node.as_ref().unwrap().to_string(), w.message.clone()))
            .collect();
        let of = |n: &str| -> Vec<&str> {
            drain
                .iter()
                .filter(|(x, _)| x == n)
                .map(|(_, m)| m.as_str())
                .collect()
        };
        let fenn = of("fenn");
        assert!(
            fenn.iter().any(|m| m.starts_with(
                "draining fenn (upgrade to v1.33.3) evicts 2 pods: default/web, default/hr-app"
            )),
            "{fenn:#?}"
        );
        assert!(fenn
            .iter()
            .any(|m| m.contains("stops at pods no controller owns: default/hr-app")));
        let jast = of("jast");
        assert!(
            jast.iter()
                .any(|m| m.contains("PodDisruptionBudget default/db")
                    && m.contains("covering default/db")
                    && m.contains("drain_timeout (5m")),
            "{jast:#?}"
        );
        assert!(of("gardener").is_empty(), "no pods there");
        spec.drain.force = true;
        let p = plan(&spec, &o, &PlanOptions::default()).unwrap();
        assert!(p.warnings.iter().any(|w| w
            .message
            .contains("deletes pods no controller owns, for good")));
    }
}
