//! Where the simulated cluster's API objects are kept: in the lab's real
//! etcd when it runs one, as kube-apiserver keeps them, so that a member
//! without a quorum fails reads and writes, wiping every member's data
//! loses the cluster's Nodes, and restoring a snapshot brings them back.
//!
//! The state ([`super::state::State`]) has two parts. What belongs to a
//! host (its init system, its API server process, the model's etcd
//! members: [`HOST_LOCAL`]) stays in `DIR/state.json`. Every other field
//! is an API object and lives under `/registry/` in etcd, one key per
//! object where Kubernetes has one (`/registry/minions/NAME` for a Node,
//! `/registry/pods/NAMESPACE/NAME`, `/registry/poddisruptionbudgets/...`,
//! a bootstrap token as its Secret
//! `/registry/secrets/kube-system/bootstrap-token-ID`,
//! `/registry/configmaps/kube-system/kubeadm-config` for the cluster's
//! configuration) and one key per field otherwise
//! (`/registry/gt-lab/FIELD`), so a field added to the state is kept
//! without a change here. Values are JSON, where kube-apiserver writes
//! protobuf: `etcdctl get` shows them readable, and nothing outside the
//! lab reads them.
//!
//! Without real etcd (the model) the whole state stays in the file.

use super::etcd::gateway::{Gateway, GatewayError};
use crate::topology::LabTopology;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// The state's fields that belong to a host, not to the API.
pub(crate) const HOST_LOCAL: &[&str] = &["hosts", "etcd_members"];

/// Everything the lab keeps in etcd starts with this.
pub(crate) const REGISTRY: &str = "/registry/";

/// The lab's own fields with no Kubernetes object of their own.
const LAB_FIELDS: &str = "/registry/gt-lab/";

/// How one field of the state maps onto keys.
enum Layout {
    /// A map: one key per entry, the entry's name after the prefix.
    Entries(&'static str),
    /// A list of objects: one key per object, after the prefix what
    /// `name` makes of it (etcd lists keys in order, as the API server
    /// lists objects).
    Items(&'static str, fn(&Value) -> Option<String>),
    /// One key holds the whole field.
    Whole(String),
}

/// `NAMESPACE/NAME` of a namespaced object.
fn namespaced(object: &Value) -> Option<String> {
    Some(format!(
        "{}/{}",
        object.get("namespace")?.as_str()?,
        object.get("name")?.as_str()?
    ))
}

fn layout(field: &str) -> Layout {
    match field {
        "nodes" => Layout::Entries("/registry/minions/"),
        "pods" => Layout::Items("/registry/pods/", namespaced),
        "pdbs" => Layout::Items("/registry/poddisruptionbudgets/", namespaced),
        // Bootstrap tokens are Secrets named after their ID.
        "tokens" => Layout::Items("/registry/secrets/kube-system/bootstrap-token-", |t| {
            Some(t.get("id")?.as_str()?.to_string())
        }),
        "cluster" => Layout::Whole("/registry/configmaps/kube-system/kubeadm-config".into()),
        "uploaded_certs" => Layout::Whole("/registry/secrets/kube-system/kubeadm-certs".into()),
        other => Layout::Whole(format!("{LAB_FIELDS}{other}")),
    }
}

/// The fields with keys of their own (any other is under [`LAB_FIELDS`]).
const OWN_KEYS: [&str; 6] = [
    "nodes",
    "pods",
    "pdbs",
    "tokens",
    "cluster",
    "uploaded_certs",
];

/// The API part of a state (its JSON object) as etcd keys and values.
pub(crate) fn to_keys(state: &Map<String, Value>) -> BTreeMap<String, String> {
    let mut keys = BTreeMap::new();
    for (field, value) in state {
        if HOST_LOCAL.contains(&field.as_str()) || value.is_null() {
            continue;
        }
        let whole = format!("{LAB_FIELDS}{field}");
        match layout(field) {
            Layout::Entries(prefix) => match value.as_object() {
                Some(entries) => {
                    for (name, entry) in entries {
                        keys.insert(format!("{prefix}{name}"), entry.to_string());
                    }
                }
                None => {
                    keys.insert(whole, value.to_string());
                }
            },
            Layout::Items(prefix, name) => {
                let named: Option<Vec<(String, &Value)>> = value.as_array().and_then(|items| {
                    items
                        .iter()
                        .map(|item| Some((format!("{prefix}{}", name(item)?), item)))
                        .collect()
                });
                match named {
                    Some(named) => {
                        for (key, item) in named {
                            keys.insert(key, item.to_string());
                        }
                    }
                    None => {
                        keys.insert(whole, value.to_string());
                    }
                }
            }
            Layout::Whole(key) => {
                keys.insert(key, value.to_string());
            }
        }
    }
    keys
}

/// Where a key's value goes in the state.
enum Slot {
    /// The entry of a map field.
    Entry(String),
    /// The next object of a list field.
    Item,
    /// The whole field.
    Whole,
}

/// The field a key holds and where in it; `None` for keys the lab did not write.
fn field_of(key: &str) -> Option<(String, Slot)> {
    for field in OWN_KEYS {
        match layout(field) {
            Layout::Entries(prefix) => {
                if let Some(name) = key.strip_prefix(prefix) {
                    return Some((field.into(), Slot::Entry(name.into())));
                }
            }
            Layout::Items(prefix, _) if key.starts_with(prefix) => {
                return Some((field.into(), Slot::Item))
            }
            Layout::Whole(k) if k == key => return Some((field.into(), Slot::Whole)),
            Layout::Items(..) | Layout::Whole(_) => {}
        }
    }
    key.strip_prefix(LAB_FIELDS)
        .map(|field| (field.to_string(), Slot::Whole))
}

/// Puts the API objects read from etcd back into a state's JSON object.
pub(crate) fn from_keys(
    state: &mut Map<String, Value>,
    kvs: &[(String, Vec<u8>)],
) -> Result<(), String> {
    for (key, raw) in kvs {
        let Some((field, slot)) = field_of(key) else {
            continue;
        };
        let value: Value = serde_json::from_slice(raw)
            .map_err(|e| format!("etcd key {key} holds no JSON the lab wrote: {e}"))?;
        match slot {
            Slot::Entry(name) => {
                let map = state
                    .entry(field)
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Some(map) = map.as_object_mut() {
                    map.insert(name, value);
                }
            }
            Slot::Item => {
                let list = state
                    .entry(field)
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Some(list) = list.as_array_mut() {
                    list.push(value);
                }
            }
            Slot::Whole => {
                state.insert(field, value);
            }
        }
    }
    Ok(())
}

/// Where the API objects are right now.
pub(crate) enum Store {
    /// In the state file (the model of etcd).
    File,
    /// No control plane has an etcd Pod: no cluster, no API objects.
    Empty,
    /// In the real etcd: the members that run, in the topology's order.
    Etcd(Vec<Arc<Gateway>>),
}

/// Why the API objects cannot be read or written now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unavailable(pub(crate) String);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unavailable {}

/// The store of the lab at `lab_dir`: the file without real etcd, else
/// every control plane whose member runs (each with its own host's
/// client certificate).
pub(crate) fn store(lab_dir: &Path) -> Result<Store, Unavailable> {
    if !super::etcd::real(lab_dir) {
        return Ok(Store::File);
    }
    let topology = LabTopology::load(lab_dir).map_err(|e| Unavailable(e.to_string()))?;
    let control_planes: Vec<_> = topology
        .nodes
        .iter()
        .filter(|n| n.role == "control-plane")
        .collect();
    let mut gateways = Vec::new();
    let mut pods = false;
    for node in control_planes {
        if super::etcd::member::pod(lab_dir, &node.name).is_none() {
            continue;
        }
        pods = true;
        if super::etcd::member::running_pid(lab_dir, &node.name).is_none() {
            continue;
        }
        let root = super::etcd::member::host_root(lab_dir, &node.name);
        if let Ok(g) = Gateway::new(&root, &node.address) {
            gateways.push(g);
        }
    }
    match (pods, gateways.is_empty()) {
        (false, _) => Ok(Store::Empty),
        // kube-apiserver's client retries until its deadline, then says so.
        (true, true) => Err(Unavailable(REQUEST_TIMED_OUT.into())),
        (true, false) => Ok(Store::Etcd(gateways)),
    }
}

/// What kube-apiserver relays when etcd does not answer in time.
const REQUEST_TIMED_OUT: &str = "etcdserver: request timed out";

/// Asks each member in turn until one answers: a member that is not
/// there is skipped, one that answers with an error (no quorum) decides.
/// When none is there the request times out, as kube-apiserver's does.
fn first_answer<T>(
    gateways: &[Arc<Gateway>],
    ask: impl Fn(&Gateway) -> Result<T, GatewayError>,
) -> Result<T, Unavailable> {
    for g in gateways {
        match ask(g) {
            Ok(t) => return Ok(t),
            Err(GatewayError::Unreachable(_)) => {}
            Err(GatewayError::Failed(m)) => return Err(Unavailable(m)),
        }
    }
    Err(Unavailable(REQUEST_TIMED_OUT.into()))
}

/// Opens a connection to the member [`first_answer`] will ask first (the
/// first one there): called before taking the state lock, so that what is
/// done under it is requests, not handshakes. A member that takes the
/// connection but does not answer in time fails here as its request would;
/// no member there is left to the request to report.
pub(crate) fn connect(gateways: &[Arc<Gateway>]) -> Result<(), Unavailable> {
    for g in gateways {
        match g.connect() {
            Ok(()) => return Ok(()),
            Err(GatewayError::Unreachable(_)) => {}
            Err(GatewayError::Failed(m)) => return Err(Unavailable(m)),
        }
    }
    Ok(())
}

/// Every key the lab keeps in etcd with its value.
pub(crate) fn read_all(gateways: &[Arc<Gateway>]) -> Result<Vec<(String, Vec<u8>)>, Unavailable> {
    first_answer(gateways, |g| g.range_prefix(REGISTRY))
}

/// Writes what changed between two key sets, in one transaction.
pub(crate) fn write_changes(
    gateways: &[Arc<Gateway>],
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
) -> Result<(), Unavailable> {
    let puts: Vec<(String, String)> = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let deletes: Vec<String> = before
        .keys()
        .filter(|k| !after.contains_key(*k))
        .cloned()
        .collect();
    first_answer(gateways, |g| g.write(&puts, &deletes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn objects_get_a_key_each_as_the_api_server_keeps_them_and_host_fields_stay_out() {
        let state = object(serde_json::json!({
            "nodes": {"fenn": {"name": "fenn"}, "bettley": {"name": "bettley"}},
            "cluster": {"endpoint": "127.4.0.10:6443"},
            "hosts": {"fenn": {"kubelet_running": true}},
            "etcd_members": [],
            "uploaded_certs": {"key": "k"},
            "pods": [
                {"namespace": "kube-system", "name": "coredns-b"},
                {"namespace": "default", "name": "hr-app"},
            ],
            "pdbs": [{"namespace": "default", "name": "hr"}],
            "tokens": [{"id": "zyxwvu"}, {"id": "abcdef"}],
            "cni": null,
            "resource_version": 7,
        }));
        let keys = to_keys(&state);
        assert_eq!(
            keys.keys().map(String::as_str).collect::<Vec<_>>(),
            [
                "/registry/configmaps/kube-system/kubeadm-config",
                "/registry/gt-lab/resource_version",
                "/registry/minions/bettley",
                "/registry/minions/fenn",
                "/registry/poddisruptionbudgets/default/hr",
                "/registry/pods/default/hr-app",
                "/registry/pods/kube-system/coredns-b",
                "/registry/secrets/kube-system/bootstrap-token-abcdef",
                "/registry/secrets/kube-system/bootstrap-token-zyxwvu",
                "/registry/secrets/kube-system/kubeadm-certs",
            ]
        );
        assert_eq!(keys["/registry/minions/fenn"], r#"{"name":"fenn"}"#);
        assert_eq!(
            keys["/registry/pods/default/hr-app"],
            r#"{"name":"hr-app","namespace":"default"}"#
        );
        // An empty list has no key; it reads back as no field (its default).
        assert!(to_keys(&object(serde_json::json!({"pods": []}))).is_empty());
        // Read back in etcd's key order: the API server's list order.
        let kvs: Vec<(String, Vec<u8>)> =
            keys.into_iter().map(|(k, v)| (k, v.into_bytes())).collect();
        let mut back = Map::new();
        from_keys(&mut back, &kvs).unwrap();
        assert_eq!(
            back["tokens"],
            serde_json::json!([{"id": "abcdef"}, {"id": "zyxwvu"}])
        );
        assert_eq!(back["pods"][0]["name"], "hr-app");
        assert_eq!(back["pdbs"], state["pdbs"]);
        assert_eq!(back["uploaded_certs"], state["uploaded_certs"]);
    }

    #[test]
    fn what_etcd_holds_reads_back_into_the_same_fields() {
        let state = object(serde_json::json!({
            "nodes": {"fenn": {"name": "fenn", "labels": {"a": "b"}}},
            "tokens": [{"id": "abcdef"}],
            "a_field_added_later": {"x": [1, 2]},
        }));
        let kvs: Vec<(String, Vec<u8>)> = to_keys(&state)
            .into_iter()
            .map(|(k, v)| (k, v.into_bytes()))
            .chain([("/registry/events/other".to_string(), b"not ours".to_vec())])
            .collect();
        let mut back = Map::new();
        from_keys(&mut back, &kvs).unwrap();
        assert_eq!(back, state);
    }

    #[test]
    fn a_value_that_is_not_json_is_an_error_naming_the_key() {
        let mut back = Map::new();
        let err = from_keys(
            &mut back,
            &[("/registry/minions/fenn".into(), b"\x0a\x0bk8s".to_vec())],
        )
        .unwrap_err();
        assert!(err.contains("/registry/minions/fenn"), "{err}");
    }
}
