//! The Pods a drain meets and the PodDisruptionBudgets that guard them:
//! mirror Pods of each control plane's static Pods, the kube-proxy and
//! calico-node DaemonSets' Pods on every node, CoreDNS's ReplicaSet, and
//! what tests apply (bare Pods, PDBs). Shapes are the API server's
//! (`kubectl get pods -A -o json`, `kubectl get pdb -A -o json`); the
//! disruption arithmetic is the disruption controller's.

use super::clock;
use super::files;
use super::state::{NodeObj, Pod, State};
use super::versions::{coredns_tag, Version};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

/// The labels of CoreDNS's Pods.
pub(crate) fn coredns_labels() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("k8s-app".to_string(), "kube-dns".to_string()),
        ("pod-template-hash".to_string(), "668d6bf9bc".to_string()),
    ])
}

/// kube-proxy's and CoreDNS's image tags after an upgrade changed them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Addons {
    /// `v1.33.3`.
    pub(crate) kube_proxy: String,
    /// `v1.12.0`.
    pub(crate) coredns: String,
}

/// The addons' tags now: upgraded ones, else what init deployed.
pub(crate) fn addons(st: &State) -> Addons {
    if let Some(a) = &st.addons {
        return a.clone();
    }
    let version = st
        .cluster
        .as_ref()
        .map(|c| c.kubernetes_version.clone())
        .unwrap_or_default();
    let minor = Version::parse(&version).map(|v| v.minor).unwrap_or(32);
    Addons {
        kube_proxy: version,
        coredns: coredns_tag(minor).to_string(),
    }
}

/// A PodDisruptionBudget (`policy/v1`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Pdb {
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) uid: String,
    pub(crate) created: f64,
    /// `spec.selector.matchLabels`.
    pub(crate) selector: BTreeMap<String, String>,
    /// `spec.minAvailable`: a count or a percentage (`50%`).
    #[serde(default)]
    pub(crate) min_available: Option<String>,
    #[serde(default)]
    pub(crate) max_unavailable: Option<String>,
}

/// An int-or-percent of `total`, rounded up as the disruption controller does.
fn scaled(value: &str, total: usize) -> usize {
    match value.strip_suffix('%') {
        Some(p) => {
            let p: usize = p.parse().unwrap_or(0);
            (p * total).div_ceil(100)
        }
        None => value.parse().unwrap_or(0),
    }
}

/// A PDB's status as the disruption controller computes it now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PdbStatus {
    pub(crate) expected: usize,
    pub(crate) current_healthy: usize,
    pub(crate) desired_healthy: usize,
    pub(crate) disruptions_allowed: usize,
}

impl Pdb {
    pub(crate) fn selects(&self, pod: &Pod) -> bool {
        pod.namespace == self.namespace
            && !self.selector.is_empty()
            && self
                .selector
                .iter()
                .all(|(k, v)| pod.labels.get(k) == Some(v))
    }

    pub(crate) fn status(&self, st: &State, now: f64) -> PdbStatus {
        let selected: Vec<&Pod> = st.pods.iter().filter(|p| self.selects(p)).collect();
        let expected = selected.len();
        let current_healthy = selected.iter().filter(|p| running(st, p, now)).count();
        let desired_healthy = match (&self.min_available, &self.max_unavailable) {
            (Some(m), _) => scaled(m, expected),
            (None, Some(m)) => expected.saturating_sub(scaled(m, expected)),
            (None, None) => expected,
        };
        PdbStatus {
            expected,
            current_healthy,
            desired_healthy,
            disruptions_allowed: current_healthy.saturating_sub(desired_healthy),
        }
    }
}

/// A Pod runs (and is ready) once scheduled on a Ready node.
fn running(st: &State, p: &Pod, now: f64) -> bool {
    st.nodes
        .get(&p.node)
        .is_some_and(|n| st.readiness(n, now).status == "True")
}

/// Why the eviction API refuses to evict `pod` now (HTTP 429), if it does.
pub(crate) fn eviction_refusal(st: &State, pod: &Pod, now: f64) -> Option<String> {
    st.pdbs
        .iter()
        .filter(|b| b.selects(pod))
        .any(|b| b.status(st, now).disruptions_allowed == 0)
        .then(|| "Cannot evict pod as it would violate the pod's disruption budget.".to_string())
}

/// Evicts one Pod: gone for good when bare, else its ReplicaSet starts a
/// replacement on another schedulable node. `false` when it is not there.
pub(crate) fn evict(st: &mut State, namespace: &str, name: &str) -> bool {
    let Some(i) = st
        .pods
        .iter()
        .position(|p| p.namespace == namespace && p.name == name)
    else {
        return false;
    };
    let p = st.pods.remove(i);
    if !p.bare {
        let base = p.name.rsplit_once('-').map(|(b, _)| b).unwrap_or(&p.name);
        let node = st.schedule(&p.node);
        st.pods.push(Pod {
            namespace: p.namespace.clone(),
            name: format!("{base}-{}", super::state::random_pod_suffix()),
            node,
            bare: false,
            labels: p.labels.clone(),
        });
    }
    true
}

/// A DaemonSet Pod's name on a node (stable per Node object).
pub(crate) fn daemonset_pod(ds: &str, n: &NodeObj) -> String {
    format!("{ds}-{}", suffix(&format!("{ds}{}", n.uid), 5))
}

fn suffix(seed: &str, len: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    Sha256::digest(seed.as_bytes())
        .iter()
        .take(len)
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

fn uid(seed: &str) -> String {
    let h: String = Sha256::digest(seed.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// The DaemonSets whose Pods run on every node.
pub(crate) fn daemonsets(st: &State) -> Vec<&'static str> {
    let mut v = Vec::new();
    if st.cni.is_some() {
        v.push("calico-node");
    }
    v.push("kube-proxy");
    v
}

/// The image tag of a static Pod manifest on a lab host (`v1.32.4`, `3.5.16-0`).
pub(crate) fn static_pod_tag(lab_dir: &Path, host: &str, component: &str) -> Option<String> {
    let path = lab_dir
        .join("hosts")
        .join(host)
        .join(files::manifest_path(component).trim_start_matches('/'));
    let text = std::fs::read_to_string(path).ok()?;
    image_tag(&text)
}

/// The tag of the first `image:` in a Pod manifest.
pub(crate) fn image_tag(manifest: &str) -> Option<String> {
    let image = manifest.lines().find_map(|l| {
        let l = l.trim_start();
        l.strip_prefix("- ").unwrap_or(l).strip_prefix("image: ")
    })?;
    image.rsplit_once(':').map(|(_, t)| t.trim().to_string())
}

/// One Pod as the API server lists it.
pub(crate) struct ListedPod {
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) node: String,
    /// `ReplicaSet`, `DaemonSet`, `Node` (a mirror Pod) or none (bare).
    pub(crate) owner: Option<(&'static str, String)>,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) image: String,
    pub(crate) running: bool,
    pub(crate) created: f64,
}

impl ListedPod {
    pub(crate) fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    pub(crate) fn is_mirror(&self) -> bool {
        matches!(self.owner, Some(("Node", _)))
    }

    pub(crate) fn is_daemonset(&self) -> bool {
        matches!(self.owner, Some(("DaemonSet", _)))
    }
}

/// Every Pod in the cluster, by namespace then name (the API server's order).
pub(crate) fn list(lab_dir: &Path, st: &State, now: f64) -> Vec<ListedPod> {
    let addons = addons(st);
    let created = st.cluster.as_ref().map(|c| c.initialized_at).unwrap_or(now);
    let mut out = Vec::new();
    for n in st.nodes.values() {
        let node_ready = st.readiness(n, now).status == "True";
        if n.labels
            .contains_key("node-role.kubernetes.io/control-plane")
            && st.kubelet_running(&n.host)
        {
            for component in files::MANIFEST_NAMES {
                let Some(tag) = static_pod_tag(lab_dir, &n.host, component) else {
                    continue;
                };
                out.push(ListedPod {
                    namespace: "kube-system".into(),
                    name: format!("{component}-{}", n.name),
                    node: n.name.clone(),
                    owner: Some(("Node", n.name.clone())),
                    labels: BTreeMap::from([
                        ("component".to_string(), component.to_string()),
                        ("tier".to_string(), "control-plane".to_string()),
                    ]),
                    image: format!("registry.k8s.io/{component}:{tag}"),
                    running: true,
                    created: n.created,
                });
            }
        }
        for ds in daemonsets(st) {
            let (image, running) = match ds {
                "kube-proxy" => (
                    format!("registry.k8s.io/kube-proxy:{}", addons.kube_proxy),
                    st.kubelet_running(&n.host),
                ),
                _ => ("docker.io/calico/node:v3.29.1".to_string(), node_ready),
            };
            out.push(ListedPod {
                namespace: "kube-system".into(),
                name: daemonset_pod(ds, n),
                node: n.name.clone(),
                owner: Some(("DaemonSet", ds.to_string())),
                labels: BTreeMap::from([("k8s-app".to_string(), ds.to_string())]),
                image,
                running,
                created: n.created,
            });
        }
    }
    for p in &st.pods {
        let owner = (!p.bare).then(|| {
            let base = p.name.rsplit_once('-').map(|(b, _)| b).unwrap_or(&p.name);
            ("ReplicaSet", base.to_string())
        });
        let image = if p.name.starts_with("coredns-") {
            format!("registry.k8s.io/coredns/coredns:{}", addons.coredns)
        } else {
            "registry.k8s.io/pause:3.10".to_string()
        };
        out.push(ListedPod {
            namespace: p.namespace.clone(),
            name: p.name.clone(),
            node: p.node.clone(),
            owner,
            labels: p.labels.clone(),
            image,
            running: running(st, p, now),
            created,
        });
    }
    out.sort_by(|a, b| a.namespace.cmp(&b.namespace).then(a.name.cmp(&b.name)));
    out
}

/// A Pod object as `kubectl get pods -o json` shows it.
pub(crate) fn pod_json(p: &ListedPod, st: &State) -> Value {
    let mut metadata = json!({
        "creationTimestamp": clock::rfc3339(p.created),
        "labels": p.labels,
        "name": p.name,
        "namespace": p.namespace,
        "resourceVersion": st.resource_version.max(1).to_string(),
        "uid": uid(&format!("pod/{}", p.key())),
    });
    if let Some((kind, owner)) = &p.owner {
        let api_version = if *kind == "Node" { "v1" } else { "apps/v1" };
        metadata["ownerReferences"] = json!([{
            "apiVersion": api_version,
            "blockOwnerDeletion": true,
            "controller": true,
            "kind": kind,
            "name": owner,
            "uid": uid(&format!("{kind}/{owner}")),
        }]);
        if *kind == "Node" {
            metadata["annotations"] = json!({
                "kubernetes.io/config.mirror": &uid(&format!("mirror/{}", p.key()))[..32],
                "kubernetes.io/config.source": "file",
            });
        }
    }
    let host_ip = st
        .nodes
        .get(&p.node)
        .map(|n| n.internal_ip.clone())
        .unwrap_or_default();
    let container = p.name.split('-').next().unwrap_or(&p.name).to_string();
    let mut spec = json!({
        "containers": [{"image": p.image, "imagePullPolicy": "IfNotPresent", "name": container}],
        "restartPolicy": "Always",
        "schedulerName": "default-scheduler",
    });
    if !p.node.is_empty() {
        spec["nodeName"] = json!(p.node);
    }
    let phase = if p.running { "Running" } else { "Pending" };
    let mut status = json!({"phase": phase, "qosClass": "BestEffort"});
    if !p.node.is_empty() {
        status["hostIP"] = json!(host_ip);
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec, "status": status})
}

/// A PDB as `kubectl get pdb -o json` shows it.
pub(crate) fn pdb_json(b: &Pdb, st: &State, now: f64) -> Value {
    let s = b.status(st, now);
    // A budget applied without a selector has none (it guards no pod).
    let mut spec = if b.selector.is_empty() {
        json!({})
    } else {
        json!({"selector": {"matchLabels": b.selector}})
    };
    let int_or_string = |v: &str| -> Value {
        v.parse::<i64>()
            .map(|n| json!(n))
            .unwrap_or_else(|_| json!(v))
    };
    if let Some(m) = &b.min_available {
        spec["minAvailable"] = int_or_string(m);
    }
    if let Some(m) = &b.max_unavailable {
        spec["maxUnavailable"] = int_or_string(m);
    }
    let allowed = s.disruptions_allowed > 0;
    json!({
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {
            "creationTimestamp": clock::rfc3339(b.created),
            "generation": 1,
            "name": b.name,
            "namespace": b.namespace,
            "resourceVersion": st.resource_version.max(1).to_string(),
            "uid": b.uid,
        },
        "spec": spec,
        "status": {
            "conditions": [{
                "lastTransitionTime": clock::rfc3339(b.created),
                "message": "",
                "observedGeneration": 1,
                "reason": if allowed { "SufficientPods" } else { "InsufficientPods" },
                "status": if allowed { "True" } else { "False" },
                "type": "DisruptionAllowed",
            }],
            "currentHealthy": s.current_healthy,
            "desiredHealthy": s.desired_healthy,
            "disruptionsAllowed": s.disruptions_allowed,
            "expectedPods": s.expected,
            "observedGeneration": 1,
        },
    })
}

/// Go's `time.Duration.String()` for whole and fractional seconds (`5m0s`, `1.5s`).
pub(crate) fn go_duration(secs: f64) -> String {
    if secs == 0.0 {
        return "0s".into();
    }
    let total_ms = (secs * 1000.0).round() as u64;
    let h = total_ms / 3_600_000;
    let m = (total_ms / 60_000) % 60;
    let ms = total_ms % 60_000;
    let s = if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        let text = format!("{:.3}", ms as f64 / 1000.0);
        format!("{}s", text.trim_end_matches('0'))
    };
    if h > 0 {
        format!("{h}h{m}m{s}")
    } else if m > 0 {
        format!("{m}m{s}")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, node: &str, labels: &[(&str, &str)]) -> Pod {
        Pod {
            namespace: "default".into(),
            name: name.into(),
            node: node.into(),
            bare: true,
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn pdb(min: Option<&str>, max: Option<&str>) -> Pdb {
        Pdb {
            namespace: "default".into(),
            name: "web".into(),
            uid: "u".into(),
            created: 0.0,
            selector: BTreeMap::from([("app".to_string(), "web".to_string())]),
            min_available: min.map(String::from),
            max_unavailable: max.map(String::from),
        }
    }

    #[test]
    fn a_pdb_selects_pods_in_its_namespace_by_every_label() {
        let b = pdb(Some("1"), None);
        assert!(b.selects(&pod("a", "fenn", &[("app", "web"), ("x", "y")])));
        assert!(!b.selects(&pod("a", "fenn", &[("app", "db")])));
        let mut other = pod("a", "fenn", &[("app", "web")]);
        other.namespace = "kube-system".into();
        assert!(!b.selects(&other));
    }

    #[test]
    fn unscheduled_pods_are_expected_but_not_healthy() {
        let mut st = State::default();
        st.pods.push(pod("a", "", &[("app", "web")]));
        st.pods.push(pod("b", "", &[("app", "web")]));
        let s = pdb(Some("1"), None).status(&st, 0.0);
        assert_eq!(
            (s.expected, s.current_healthy, s.desired_healthy),
            (2, 0, 1)
        );
        assert_eq!(s.disruptions_allowed, 0);
        let s = pdb(None, Some("50%")).status(&st, 0.0);
        assert_eq!(s.desired_healthy, 1);
    }

    #[test]
    fn percentages_round_up() {
        assert_eq!(scaled("50%", 3), 2);
        assert_eq!(scaled("2", 3), 2);
    }

    #[test]
    fn durations_print_as_go_does() {
        assert_eq!(go_duration(300.0), "5m0s");
        assert_eq!(go_duration(30.0), "30s");
        assert_eq!(go_duration(1.5), "1.5s");
        assert_eq!(go_duration(3720.0), "1h2m0s");
    }

    #[test]
    fn the_image_tag_is_read_from_the_manifest() {
        assert_eq!(
            image_tag("spec:\n  containers:\n  - image: registry.k8s.io/kube-apiserver:v1.32.4\n")
                .as_deref(),
            Some("v1.32.4")
        );
    }
}
