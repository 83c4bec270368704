//! `kubectl apply -f MANIFEST` (a file, `-` for stdin, or a URL standing
//! for Calico's manifest): each object as kubectl names it, `created`,
//! `configured` or `unchanged` against what was applied before. A manifest
//! with a DaemonSet is a pod network: the first makes nodes' network ready
//! and starts CoreDNS. Pods (bare, on `spec.nodeName`) and
//! PodDisruptionBudgets are kept for drain; other objects are remembered
//! only as applied.

use super::request::Ctx;
use super::{err, state_err};
use crate::sim::clock;
use crate::sim::flags::Parsed;
use crate::sim::host;
use crate::sim::latency::Op;
use crate::sim::state::{self, Pod, State};
use crate::sim::workloads::Pdb;
use crate::sim::yaml;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The objects of Calico v3.29's manifest, as `kubectl apply` lists them.
pub(crate) const CALICO_OBJECTS: &[&str] = &[
    "poddisruptionbudget.policy/calico-kube-controllers",
    "serviceaccount/calico-kube-controllers",
    "serviceaccount/calico-node",
    "serviceaccount/calico-cni-plugin",
    "configmap/calico-config",
    "customresourcedefinition.apiextensions.k8s.io/bgpconfigurations.crd.projectcalico.org",
    "customresourcedefinition.apiextensions.k8s.io/bgpfilters.crd.projectcalico.org",
    "customresourcedefinition.apiextensions.k8s.io/bgppeers.crd.projectcalico.org",
    "customresourcedefinition.apiextensions.k8s.io/blockaffinities.crd.projectcalico.org",
    "customresourcedefinition.apiextensions.k8s.io/caliconodestatuses.crd.projectcalico.org",
    "customresourcedefinition.apiextensions.k8s.io/clusterinformations.crd.projectcalico.org",
    "customresourcedefinition.apiextensions.k8s.io/felixconfigurations.crd.projectcalico.org",
    "customresourcedefinition.apiextensions.k8s.io/globalnetworkpolicies.crd.projectcalico.org",
    "customresourcedefinition.apiextensions.k8s.io/globalnetworksets.crd.projectcalico.org",
    "customresourcedefinition.apiextensions.k8s.io/hostendpoints.crd.projectcalico.org",
    "customresourcedefinition.apiextensions.k8s.io/ipamblocks.crd.projectcalico.org",
    "customresourcedefinition.apiextensions.k8s.io/ipamconfigs.crd.projectcalico.org",
    "customresourcedefinition.apiextensions.k8s.io/ipamhandles.crd.projectcalico.org",
    "customresourcedefinition.apiextensions.k8s.io/ippools.crd.projectcalico.org",
    "customresourcedefinition.apiextensions.k8s.io/ipreservations.crd.projectcalico.org",
    "customresourcedefinition.apiextensions.k8s.io/kubecontrollersconfigurations.crd.projectcalico.org",
    "customresourcedefinition.apiextensions.k8s.io/networkpolicies.crd.projectcalico.org",
    "customresourcedefinition.apiextensions.k8s.io/networksets.crd.projectcalico.org",
    "customresourcedefinition.apiextensions.k8s.io/tiers.crd.projectcalico.org",
    "customresourcedefinition.apiextensions.k8s.io/adminnetworkpolicies.policy.networking.k8s.io",
    "clusterrole.rbac.authorization.k8s.io/calico-kube-controllers",
    "clusterrole.rbac.authorization.k8s.io/calico-node",
    "clusterrole.rbac.authorization.k8s.io/calico-cni-plugin",
    "clusterrolebinding.rbac.authorization.k8s.io/calico-kube-controllers",
    "clusterrolebinding.rbac.authorization.k8s.io/calico-node",
    "clusterrolebinding.rbac.authorization.k8s.io/calico-cni-plugin",
    "daemonset.apps/calico-node",
    "deployment.apps/calico-kube-controllers",
];

/// One object to apply.
struct Object {
    /// `daemonset.apps/calico-node`, as kubectl prints it.
    shown: String,
    /// Identity across applies: kind, group, namespace, name.
    key: String,
    digest: String,
    kind: String,
    namespace: String,
    name: String,
    value: Value,
}

/// The objects of one manifest, or kubectl's error for it (`shown` is the
/// file as given, `STDIN` for `-`).
fn objects(text: &str, shown: &str, default_ns: &str) -> Result<Vec<Object>, String> {
    let docs = yaml::documents(text).or_else(|e| {
        // A lone word is a YAML scalar, not a syntax error.
        let t = text.trim();
        if !t.is_empty() && !t.contains('\n') && !t.contains(':') {
            Ok(vec![Value::String(t.to_string())])
        } else {
            Err(format!(
                "error parsing {shown}: error converting YAML to JSON: yaml: {e}"
            ))
        }
    })?;
    let mut out = Vec::new();
    for d in docs {
        let api_version = d.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let kind = d.get("kind").and_then(Value::as_str).unwrap_or("");
        let mut missing = Vec::new();
        if api_version.is_empty() {
            missing.push("apiVersion not set");
        }
        if kind.is_empty() {
            missing.push("kind not set");
        }
        if !missing.is_empty() {
            let what = if missing.len() == 1 {
                missing[0].to_string()
            } else {
                format!("[{}]", missing.join(", "))
            };
            return Err(format!("error validating \"{shown}\": error validating data: {what}; if you choose to ignore these errors, turn validation off with --validate=false"));
        }
        let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
        let resource = if group.is_empty() {
            kind.to_lowercase()
        } else {
            format!("{}.{group}", kind.to_lowercase())
        };
        let namespace = d["metadata"]["namespace"]
            .as_str()
            .unwrap_or(default_ns)
            .to_string();
        let name = d["metadata"]["name"].as_str().unwrap_or("").to_string();
        if name.is_empty() {
            return Err(format!("error when retrieving current configuration of:\nResource: \"{resource}\", GroupVersionKind: \"{api_version}, Kind={kind}\"\nName: \"\", Namespace: \"{namespace}\"\nfrom server for: \"{shown}\": resource name may not be empty"));
        }
        let digest: String = Sha256::digest(d.to_string().as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        out.push(Object {
            shown: format!("{resource}/{name}"),
            key: format!("{resource}/{namespace}/{name}"),
            digest,
            kind: kind.to_string(),
            namespace,
            name,
            value: d,
        });
    }
    Ok(out)
}

fn labels_of(v: &Value) -> std::collections::BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let v = v
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string());
                    (k.clone(), v)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn int_or_string(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// What the API server does with an applied Pod or PodDisruptionBudget.
fn store(s: &mut State, o: &Object, now: f64) {
    match o.kind.as_str() {
        "Pod" => {
            let node = o.value["spec"]["nodeName"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| s.schedule(""));
            let pod = Pod {
                namespace: o.namespace.clone(),
                name: o.name.clone(),
                node,
                bare: o.value["metadata"]["ownerReferences"]
                    .as_array()
                    .is_none_or(|r| r.is_empty()),
                labels: labels_of(&o.value["metadata"]["labels"]),
            };
            s.pods
                .retain(|p| !(p.namespace == pod.namespace && p.name == pod.name));
            s.pods.push(pod);
        }
        "PodDisruptionBudget" => {
            let spec = &o.value["spec"];
            let pdb = Pdb {
                namespace: o.namespace.clone(),
                name: o.name.clone(),
                uid: state::random_uuid(),
                created: now,
                selector: labels_of(&spec["selector"]["matchLabels"]),
                min_available: int_or_string(&spec["minAvailable"]),
                max_unavailable: int_or_string(&spec["maxUnavailable"]),
            };
            if let Some(old) = s
                .pdbs
                .iter_mut()
                .find(|b| b.namespace == pdb.namespace && b.name == pdb.name)
            {
                *old = Pdb {
                    uid: old.uid.clone(),
                    created: old.created,
                    ..pdb
                };
            } else {
                s.pdbs.push(pdb);
            }
        }
        _ => {}
    }
}

pub(super) fn apply(ctx: &Ctx, p: &Parsed) -> u8 {
    let sources = p.values.get("filename").cloned().unwrap_or_default();
    if sources.is_empty() {
        return err("must specify one of -f and -k");
    }
    let default_ns = p.get("namespace").unwrap_or("default").to_string();
    let mut objs: Vec<Object> = Vec::new();
    let mut network = false;
    for src in &sources {
        if src.starts_with("https://") || src.starts_with("http://") {
            // The lab never fetches: a URL stands for the CNI manifest it names.
            network = true;
            for o in CALICO_OBJECTS {
                objs.push(Object {
                    shown: o.to_string(),
                    key: format!("{o}@{src}"),
                    digest: src.clone(),
                    kind: String::new(),
                    namespace: String::new(),
                    name: String::new(),
                    value: Value::Null,
                });
            }
            continue;
        }
        let (text, shown) = if src == "-" {
            (host::read_stdin_to_end(), "STDIN".to_string())
        } else {
            match std::fs::read_to_string(src) {
                Ok(t) => (t, src.clone()),
                Err(_) => return err(&format!("the path {src:?} does not exist")),
            }
        };
        match objects(&text, &shown, &default_ns) {
            Ok(found) => {
                network |= found.iter().any(|o| o.kind == "DaemonSet");
                objs.extend(found);
            }
            Err(e) => return err(&e),
        }
    }
    if objs.is_empty() {
        return err("no objects passed to apply");
    }
    ctx.host.pause(Op::Apply);
    if let Err(c) = ctx.connect_admin("create", &objs[0].name) {
        return c;
    }
    let now = clock::now();
    let cni_delay = ctx.host.latency(Op::CniReady);
    let manifest = sources.join(",");
    let verbs = state::update(&ctx.host.lab_dir, |s| {
        let verbs: Vec<&'static str> = objs
            .iter()
            .map(
                |o| match s.applied.insert(o.key.clone(), o.digest.clone()) {
                    None => "created",
                    Some(d) if d == o.digest => "unchanged",
                    Some(_) => "configured",
                },
            )
            .collect();
        for o in &objs {
            store(s, o, now);
        }
        if network && s.cni.is_none() {
            s.cni = Some(state::Cni {
                manifest: manifest.clone(),
                applied_at: now,
            });
            for n in s.nodes.values_mut() {
                n.network_ready_at = Some(now + cni_delay);
            }
            s.start_coredns();
        }
        verbs
    });
    let verbs = match verbs {
        Ok(v) => v,
        Err(e) => return state_err(&e),
    };
    for (o, verb) in objs.iter().zip(verbs) {
        println!("{} {verb}", o.shown);
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_named_as_kubectl_prints_them() {
        let y = "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: kube-flannel-ds\n  namespace: kube-flannel\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: kube-flannel\n";
        let o = objects(y, "STDIN", "default").unwrap();
        let shown: Vec<&str> = o.iter().map(|o| o.shown.as_str()).collect();
        assert_eq!(
            shown,
            ["daemonset.apps/kube-flannel-ds", "namespace/kube-flannel"]
        );
    }

    #[test]
    fn input_that_is_not_a_manifest_gets_kubectls_errors() {
        let e = objects("hello\n", "STDIN", "default").err().unwrap();
        assert_eq!(e, "error validating \"STDIN\": error validating data: [apiVersion not set, kind not set]; if you choose to ignore these errors, turn validation off with --validate=false");
        let e = objects(
            "apiVersion: v1\nmetadata:\n  name: x\n",
            "m.yaml",
            "default",
        )
        .err()
        .unwrap();
        assert!(e.contains("error validating data: kind not set;"), "{e}");
        let e = objects(
            "kind: Pod\nmetadata:\n  name: a\n bad\n",
            "STDIN",
            "default",
        )
        .err()
        .unwrap();
        assert!(
            e.starts_with("error parsing STDIN: error converting YAML to JSON: yaml: line 4:"),
            "{e}"
        );
    }
}
