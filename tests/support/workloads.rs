//! Workloads the drain tests put on a node: a pod labelled `app: hr` and a
//! PodDisruptionBudget `hr` that keeps one such pod available, so that the
//! pod's eviction is refused while it is the only one.

/// A `kubectl apply -f -` manifest: pod `pod` on `node` (owned by the
/// ReplicaSet `hr-app` when `owned`, else a bare pod that kubectl drains
/// only with `--force`) and budget `hr` with `minAvailable: 1`.
pub fn pod_and_budget(pod: &str, node: &str, owned: bool) -> String {
    let owner = if owned {
        "  ownerReferences:
  - apiVersion: apps/v1
    kind: ReplicaSet
    name: hr-app
    uid: 5f1b2c1e-0000-4000-8000-000000000001
    controller: true
"
    } else {
        ""
    };
    format!(
        "apiVersion: v1
kind: Pod
metadata:
  name: {pod}
  labels:
    app: hr
{owner}spec:
  nodeName: {node}
  containers:
  - name: app
    image: registry.k8s.io/pause:3.10
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: hr
spec:
  minAvailable: 1
  selector:
    matchLabels:
      app: hr
"
    )
}
