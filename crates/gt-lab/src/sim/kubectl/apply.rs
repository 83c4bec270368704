//! `kubectl apply -f MANIFEST`: the CNI's objects, as kubectl lists them;
//! applying Calico's manifest is what makes nodes' network ready.

use super::request::Ctx;
use super::{err, state_err};
use crate::sim::clock;
use crate::sim::flags::Parsed;
use crate::sim::host;
use crate::sim::latency::Op;
use crate::sim::state;
use serde_json::Value;

/// The objects of Calico v3.29's manifest, as `kubectl apply` lists them.
const CALICO_OBJECTS: &[&str] = &[
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

/// `kind/name` of each object in a manifest file (YAML or JSON), read loosely:
/// each document's top-level `kind:` and its metadata's `name:`.
fn manifest_objects(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for d in text.split("\n---") {
        if let Ok(v) = serde_json::from_str::<Value>(d) {
            if let (Some(k), Some(n)) = (v["kind"].as_str(), v["metadata"]["name"].as_str()) {
                out.push(format!("{}/{n}", k.to_lowercase()));
            }
            continue;
        }
        let kind = d
            .lines()
            .find_map(|l| l.strip_prefix("kind:"))
            .map(|k| k.trim().to_lowercase());
        let mut in_meta = false;
        let mut name = None;
        for l in d.lines() {
            if l.starts_with("metadata:") {
                in_meta = true;
            } else if in_meta && !l.starts_with(' ') && !l.trim().is_empty() {
                in_meta = false;
            } else if in_meta {
                if let Some(n) = l.trim_start().strip_prefix("name:") {
                    if l.len() - l.trim_start().len() == 2 {
                        name = Some(n.trim().trim_matches('"').to_string());
                    }
                }
            }
        }
        if let (Some(k), Some(n)) = (kind, name) {
            out.push(format!("{k}/{n}"));
        }
    }
    out
}

pub(super) fn apply(ctx: &Ctx, p: &Parsed) -> u8 {
    let sources = p.values.get("filename").cloned().unwrap_or_default();
    if sources.is_empty() {
        return err("must specify one of -f and -k");
    }
    let mut objects = Vec::new();
    for src in &sources {
        if src.starts_with("https://") || src.starts_with("http://") {
            // The lab never fetches: a URL stands for the CNI manifest it names.
            objects.extend(CALICO_OBJECTS.iter().map(|s| s.to_string()));
        } else {
            let text = if src == "-" {
                host::read_stdin_to_end()
            } else {
                match std::fs::read_to_string(src) {
                    Ok(t) => t,
                    Err(_) => return err(&format!("the path {src:?} does not exist")),
                }
            };
            let found = manifest_objects(&text);
            if found.is_empty() {
                return err("no objects passed to apply");
            }
            objects.extend(found);
        }
    }
    ctx.host.pause(Op::Apply);
    if let Err(c) = ctx.connect_admin("create", "calico-node") {
        return c;
    }
    let now = clock::now();
    let cni_delay = ctx.host.latency(Op::CniReady);
    let manifest = sources.join(",");
    let first = state::update(&ctx.host.lab_dir, |s| {
        if s.cni.is_some() {
            return false;
        }
        s.cni = Some(state::Cni {
            manifest: manifest.clone(),
            applied_at: now,
        });
        for n in s.nodes.values_mut() {
            n.network_ready_at = Some(now + cni_delay);
        }
        s.start_coredns();
        true
    });
    let first = match first {
        Ok(f) => f,
        Err(e) => return state_err(&e),
    };
    let verb = if first { "created" } else { "unchanged" };
    for o in objects {
        println!("{o} {verb}");
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_objects_reads_yaml_kinds_and_names() {
        let y = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels:\n    name: x\n---\nkind: DaemonSet\nmetadata:\n  name: b\n";
        assert_eq!(manifest_objects(y), vec!["configmap/a", "daemonset/b"]);
    }
}
