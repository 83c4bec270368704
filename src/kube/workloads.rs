//! Pods and PodDisruptionBudgets, read when a plan drains nodes: which pods a
//! drain evicts, and which stop it (docs/kubeadm.md, "Drain"): `kubectl
//! drain` skips mirror pods (static pods) and, with `--ignore-daemonsets`,
//! DaemonSet pods; it refuses a pod no controller owns unless `--force`; an
//! eviction a PodDisruptionBudget does not allow is retried until the
//! drain's timeout.

use std::collections::BTreeMap;

/// Every pod, as JSON.
pub fn get_pods_json() -> String {
    super::kubectl_admin("get pods -A -o json")
}

/// Every PodDisruptionBudget, as JSON.
pub fn get_pdbs_json() -> String {
    super::kubectl_admin("get pdb -A -o json")
}

/// A pod, reduced to what a drain asks of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pod {
    pub namespace: String,
    pub name: String,
    /// `spec.nodeName`; `None` while unscheduled.
    pub node: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// The kind of its controller owner (`ReplicaSet`, `DaemonSet`, ...);
    /// `None` for a bare pod.
    pub controller: Option<String>,
    /// A static pod's mirror (the `kubernetes.io/config.mirror` annotation).
    pub mirror: bool,
    /// Succeeded or Failed: a drain deletes it without asking anyone.
    pub finished: bool,
}

/// A PodDisruptionBudget and how many disruptions it allows now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pdb {
    pub namespace: String,
    pub name: String,
    /// `None`: a null selector, which selects no pod.
    pub selector: Option<Selector>,
    pub disruptions_allowed: i64,
}

/// A label selector: `matchLabels` and `matchExpressions`, all of which
/// must hold (an empty selector selects every pod of its namespace).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Selector {
    pub match_labels: BTreeMap<String, String>,
    pub match_expressions: Vec<Requirement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    /// `In`, `NotIn`, `Exists`, `DoesNotExist`.
    pub operator: String,
    pub values: Vec<String>,
}

impl Selector {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| {
                let value = labels.get(&r.key);
                match r.operator.as_str() {
                    "In" => value.is_some_and(|v| r.values.contains(v)),
                    "NotIn" => value.is_none_or(|v| !r.values.contains(v)),
                    "Exists" => value.is_some(),
                    "DoesNotExist" => value.is_none(),
                    // The API server admits no other operator.
                    _ => false,
                }
            })
    }
}

impl Pdb {
    /// Whether the budget covers `pod` (same namespace, selected).
    pub fn covers(&self, pod: &Pod) -> bool {
        self.namespace == pod.namespace
            && self
                .selector
                .as_ref()
                .is_some_and(|s| s.matches(&pod.labels))
    }
}

impl Pod {
    /// `kubectl drain --ignore-daemonsets` passes it over: a mirror pod, a
    /// DaemonSet's pod.
    pub fn skipped_by_drain(&self) -> bool {
        self.mirror || self.controller.as_deref() == Some("DaemonSet")
    }

    /// `namespace/name`, as kubectl's drain names pods.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

pub fn parse_pods(json: &str) -> Result<Vec<Pod>, serde_json::Error> {
    let list: wire::List<wire::Pod> = serde_json::from_str(json)?;
    Ok(list
        .items
        .into_iter()
        .map(|p| Pod {
            controller: p
                .metadata
                .owner_references
                .unwrap_or_default()
                .into_iter()
                .find(|o| o.controller)
                .map(|o| o.kind),
            mirror: p
                .metadata
                .annotations
                .is_some_and(|a| a.contains_key("kubernetes.io/config.mirror")),
            namespace: p.metadata.namespace.unwrap_or_else(|| "default".into()),
            name: p.metadata.name,
            labels: p.metadata.labels.unwrap_or_default(),
            node: p.spec.node_name.filter(|n| !n.is_empty()),
            finished: matches!(p.status.phase.as_deref(), Some("Succeeded" | "Failed")),
        })
        .collect())
}

pub fn parse_pdbs(json: &str) -> Result<Vec<Pdb>, serde_json::Error> {
    let list: wire::List<wire::Pdb> = serde_json::from_str(json)?;
    Ok(list
        .items
        .into_iter()
        .map(|p| Pdb {
            namespace: p.metadata.namespace.unwrap_or_else(|| "default".into()),
            name: p.metadata.name,
            selector: p.spec.selector.map(|s| Selector {
                match_labels: s.match_labels.unwrap_or_default(),
                match_expressions: s
                    .match_expressions
                    .unwrap_or_default()
                    .into_iter()
                    .map(|e| Requirement {
                        key: e.key,
                        operator: e.operator,
                        values: e.values.unwrap_or_default(),
                    })
                    .collect(),
            }),
            disruptions_allowed: p.status.disruptions_allowed,
        })
        .collect())
}

/// The JSON as the API server writes it.
mod wire {
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Deserialize)]
    pub(super) struct List<T> {
        #[serde(default = "Vec::new")]
        pub(super) items: Vec<T>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct Metadata {
        pub(super) name: String,
        #[serde(default)]
        pub(super) namespace: Option<String>,
        #[serde(default)]
        pub(super) labels: Option<BTreeMap<String, String>>,
        #[serde(default)]
        pub(super) annotations: Option<BTreeMap<String, String>>,
        #[serde(default)]
        pub(super) owner_references: Option<Vec<OwnerReference>>,
    }

    #[derive(Deserialize)]
    pub(super) struct OwnerReference {
        pub(super) kind: String,
        #[serde(default)]
        pub(super) controller: bool,
    }

    #[derive(Deserialize)]
    pub(super) struct Pod {
        pub(super) metadata: Metadata,
        #[serde(default)]
        pub(super) spec: PodSpec,
        #[serde(default)]
        pub(super) status: PodStatus,
    }

    #[derive(Deserialize, Default)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct PodSpec {
        #[serde(default)]
        pub(super) node_name: Option<String>,
    }

    #[derive(Deserialize, Default)]
    pub(super) struct PodStatus {
        #[serde(default)]
        pub(super) phase: Option<String>,
    }

    #[derive(Deserialize)]
    pub(super) struct Pdb {
        pub(super) metadata: Metadata,
        #[serde(default)]
        pub(super) spec: PdbSpec,
        #[serde(default)]
        pub(super) status: PdbStatus,
    }

    #[derive(Deserialize, Default)]
    pub(super) struct PdbSpec {
        #[serde(default)]
        pub(super) selector: Option<LabelSelector>,
    }

    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct LabelSelector {
        #[serde(default)]
        pub(super) match_labels: Option<BTreeMap<String, String>>,
        #[serde(default)]
        pub(super) match_expressions: Option<Vec<Expression>>,
    }

    #[derive(Deserialize)]
    pub(super) struct Expression {
        pub(super) key: String,
        pub(super) operator: String,
        #[serde(default)]
        pub(super) values: Option<Vec<String>>,
    }

    #[derive(Deserialize, Default)]
    #[serde(rename_all = "camelCase")]
    pub(super) struct PdbStatus {
        #[serde(default)]
        pub(super) disruptions_allowed: i64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shaped as kubectl 1.32 prints them (fields gt does not read trimmed).
    const PODS: &str = r#"{"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": [
      {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"name": "web-5d9c7b-abcde", "namespace": "default", "labels": {"app": "web"},
                    "ownerReferences": [{"apiVersion": "apps/v1", "blockOwnerDeletion": true, "controller": true,
                                         "kind": "ReplicaSet", "name": "web-5d9c7b", "uid": "1"}]},
       "spec": {"nodeName": "fenn"}, "status": {"phase": "Running"}},
      {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"name": "hr-app", "namespace": "default"},
       "spec": {"nodeName": "fenn"}, "status": {"phase": "Running"}},
      {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"name": "calico-node-x1", "namespace": "kube-system",
                    "ownerReferences": [{"kind": "DaemonSet", "name": "calico-node", "controller": true}]},
       "spec": {"nodeName": "fenn"}, "status": {"phase": "Running"}},
      {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"name": "kube-apiserver-bettley", "namespace": "kube-system",
                    "annotations": {"kubernetes.io/config.mirror": "abc"},
                    "ownerReferences": [{"kind": "Node", "name": "bettley", "controller": true}]},
       "spec": {"nodeName": "bettley"}, "status": {"phase": "Running"}},
      {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"name": "job-1", "namespace": "batch"},
       "spec": {}, "status": {"phase": "Succeeded"}}
    ]}"#;

    const PDBS: &str = r#"{"apiVersion": "v1", "kind": "List", "items": [
      {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
       "metadata": {"name": "web", "namespace": "default"},
       "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}},
       "status": {"currentHealthy": 1, "desiredHealthy": 1, "disruptionsAllowed": 0, "expectedPods": 1}},
      {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
       "metadata": {"name": "tiers", "namespace": "default"},
       "spec": {"selector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["db", "cache"]},
                                                  {"key": "canary", "operator": "DoesNotExist"}]}},
       "status": {"disruptionsAllowed": 1}},
      {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
       "metadata": {"name": "none", "namespace": "default"}, "spec": {}, "status": {}}
    ]}"#;

    #[test]
    fn pods_are_read_with_their_controller_node_and_mirror_mark() {
        let pods = parse_pods(PODS).unwrap();
        assert_eq!(pods.len(), 5);
        let web = &pods[0];
        assert_eq!(web.key(), "default/web-5d9c7b-abcde");
        assert_eq!(web.controller.as_deref(), Some("ReplicaSet"));
        assert_eq!(web.node.as_deref(), Some("fenn"));
        assert!(!web.skipped_by_drain() && !web.finished);
        assert_eq!(pods[1].controller, None);
        assert!(pods[2].skipped_by_drain(), "a DaemonSet's pod");
        assert!(pods[3].mirror && pods[3].skipped_by_drain());
        assert!(pods[4].finished && pods[4].node.is_none());
    }

    #[test]
    fn budgets_cover_the_pods_their_selector_picks_in_their_namespace() {
        let pdbs = parse_pdbs(PDBS).unwrap();
        let pods = parse_pods(PODS).unwrap();
        assert_eq!(pdbs[0].disruptions_allowed, 0);
        assert!(pdbs[0].covers(&pods[0]));
        assert!(!pdbs[0].covers(&pods[1]));
        let mut db = pods[1].clone();
        db.labels.insert("tier".into(), "db".into());
        assert!(pdbs[1].covers(&db));
        db.labels.insert("canary".into(), "yes".into());
        assert!(!pdbs[1].covers(&db));
        let mut elsewhere = pods[0].clone();
        elsewhere.namespace = "other".into();
        assert!(!pdbs[0].covers(&elsewhere));
        // A null selector selects nothing; an empty one, every pod.
        assert!(!pdbs[2].covers(&pods[0]));
        assert!(Selector::default().matches(&BTreeMap::new()));
        assert_eq!(pdbs[2].disruptions_allowed, 0);
    }
}
