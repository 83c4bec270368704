//! Pods and PodDisruptionBudgets as facts: read through the control plane
//! the cluster was observed through, only when the plan drains nodes (one
//! more round trip then, none for a plan that drains nothing).

use super::probe::{Answers, MARK};
use crate::kube::workloads::{self as kw, Pdb, Pod, Requirement, Selector};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Every pod and every PodDisruptionBudget of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Workloads {
    #[serde(default)]
    pub pods: Vec<PodFacts>,
    #[serde(default)]
    pub pdbs: Vec<PdbFacts>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodFacts {
    pub namespace: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Its controller's kind; absent for a pod no controller owns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mirror: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub finished: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PdbFacts {
    pub namespace: String,
    pub name: String,
    /// `None`: a null selector (it selects no pod).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<SelectorFacts>,
    pub disruptions_allowed: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SelectorFacts {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    /// `[key, operator, values...]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<Vec<String>>,
}

impl From<Pod> for PodFacts {
    fn from(p: Pod) -> Self {
        PodFacts {
            namespace: p.namespace,
            name: p.name,
            node: p.node,
            labels: p.labels,
            controller: p.controller,
            mirror: p.mirror,
            finished: p.finished,
        }
    }
}

impl PodFacts {
    pub fn to_kube(&self) -> Pod {
        Pod {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            node: self.node.clone(),
            labels: self.labels.clone(),
            controller: self.controller.clone(),
            mirror: self.mirror,
            finished: self.finished,
        }
    }
}

impl From<Pdb> for PdbFacts {
    fn from(p: Pdb) -> Self {
        PdbFacts {
            namespace: p.namespace,
            name: p.name,
            selector: p.selector.map(|s| SelectorFacts {
                match_labels: s.match_labels,
                match_expressions: s
                    .match_expressions
                    .into_iter()
                    .map(|r| {
                        let mut v = vec![r.key, r.operator];
                        v.extend(r.values);
                        v
                    })
                    .collect(),
            }),
            disruptions_allowed: p.disruptions_allowed,
        }
    }
}

impl PdbFacts {
    pub fn to_kube(&self) -> Pdb {
        Pdb {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            selector: self.selector.as_ref().map(|s| Selector {
                match_labels: s.match_labels.clone(),
                match_expressions: s
                    .match_expressions
                    .iter()
                    .filter_map(|e| match e.as_slice() {
                        [key, operator, values @ ..] => Some(Requirement {
                            key: key.clone(),
                            operator: operator.clone(),
                            values: values.to_vec(),
                        }),
                        _ => None,
                    })
                    .collect(),
            }),
            disruptions_allowed: self.disruptions_allowed,
        }
    }
}

/// Both lists in one command, each in its section.
pub fn workloads_query_script() -> String {
    let mut s = String::new();
    for (name, command) in [("pods", kw::get_pods_json()), ("pdbs", kw::get_pdbs_json())] {
        s.push_str(&format!(
            "echo '{MARK}{name}'\n{command}\nrc=$?\necho; echo '{MARK}{name}.exit'; echo \"$rc\"\n"
        ));
    }
    s.push_str(&format!("echo '{MARK}end'\n"));
    s
}

/// The answer of `workloads_query_script`; why not, when either list failed.
pub fn parse_workloads_query(stdout: &str) -> Result<Workloads, String> {
    let a = Answers::read(stdout, "").map_err(|e| e.to_string())?;
    for k in ["pods", "pdbs"] {
        match a.exit(k) {
            Some(0) => {}
            Some(code) => return Err(format!("kubectl get {k} exited {code}")),
            None => return Err(format!("kubectl get {k} printed no exit status")),
        }
    }
    let pods = kw::parse_pods(a.stdout("pods")).map_err(|e| format!("pods: {e}"))?;
    let pdbs = kw::parse_pdbs(a.stdout("pdbs")).map_err(|e| format!("pdbs: {e}"))?;
    Ok(Workloads {
        pods: pods.into_iter().map(PodFacts::from).collect(),
        pdbs: pdbs.into_iter().map(PdbFacts::from).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_lists_come_back_in_one_answer_and_round_trip_as_facts() {
        let script = workloads_query_script();
        assert!(script.contains("get pods -A -o json") && script.contains("get pdb -A -o json"));
        let out = "@@gt pods\n{\"items\":[{\"metadata\":{\"name\":\"a\",\"namespace\":\"ns\",\"labels\":{\"app\":\"x\"}},\"spec\":{\"nodeName\":\"fenn\"}}]}\n\n@@gt pods.exit\n0\n\
                   @@gt pdbs\n{\"items\":[{\"metadata\":{\"name\":\"p\",\"namespace\":\"ns\"},\"spec\":{\"selector\":{\"matchExpressions\":[{\"key\":\"app\",\"operator\":\"In\",\"values\":[\"x\"]}]}},\"status\":{\"disruptionsAllowed\":0}}]}\n\n@@gt pdbs.exit\n0\n@@gt end\n";
        let w = parse_workloads_query(out).unwrap();
        assert_eq!(w.pods.len(), 1);
        let pdb = w.pdbs[0].to_kube();
        assert!(pdb.covers(&w.pods[0].to_kube()));
        let json = serde_json::to_string(&w).unwrap();
        assert_eq!(serde_json::from_str::<Workloads>(&json).unwrap(), w);
        let failed = out.replace("@@gt pdbs.exit\n0", "@@gt pdbs.exit\n1");
        assert_eq!(
            parse_workloads_query(&failed).unwrap_err(),
            "kubectl get pdbs exited 1"
        );
    }
}
