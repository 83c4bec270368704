//! The simulated cluster's shared state, `DIR/state.json`: what the API server
//! and etcd would hold (nodes, bootstrap tokens, the uploaded-certs Secret, etcd
//! members, the CA) plus what each host's init system knows (kubelet running).
//!
//! Every tool reads and writes it under an exclusive lock on `DIR/state.lock`
//! (read-modify-write in one critical section), so concurrent joins from many
//! processes never lose each other's updates. Nothing sleeps with the lock held.
//!
//! When the lab runs real etcd, the API objects are not in the file but in
//! etcd ([`super::apistore`]): [`read`] and [`update`] go through a quorum
//! and fail as an API server's request does without one, while
//! [`read_hosts`] reads only what a host keeps for itself (its kubelet, its
//! API server process) and [`update_hosts`] writes that whatever etcd says.

use super::apistore::{self, Store, Unavailable};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

pub(crate) const STATE_FILE: &str = "state.json";
pub(crate) const LOCK_FILE: &str = "state.lock";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct State {
    /// `None` until `kubeadm init` succeeds.
    #[serde(default)]
    pub(crate) cluster: Option<Cluster>,
    /// Node objects by name.
    #[serde(default)]
    pub(crate) nodes: BTreeMap<String, NodeObj>,
    #[serde(default)]
    pub(crate) tokens: Vec<Token>,
    /// The `kubeadm-certs` Secret.
    #[serde(default)]
    pub(crate) uploaded_certs: Option<UploadedCerts>,
    /// The model's etcd members; empty when the lab runs real etcd, which
    /// keeps its own list (`sim::etcd`).
    #[serde(default)]
    pub(crate) etcd_members: Vec<EtcdMember>,
    /// Per lab host: its init system and its API server.
    #[serde(default)]
    pub(crate) hosts: BTreeMap<String, HostState>,
    #[serde(default)]
    pub(crate) cni: Option<Cni>,
    /// Bumped on every write, as the API server's resourceVersion.
    #[serde(default)]
    pub(crate) resource_version: u64,
    /// Next /24 of the pod CIDR to hand to a new node.
    #[serde(default)]
    pub(crate) next_pod_cidr: u32,
    /// Pods that drain evicts (CoreDNS's two replicas, once a CNI runs).
    #[serde(default)]
    pub(crate) pods: Vec<Pod>,
    /// The certificates every control plane shares (the `kubeadm-certs` Secret's
    /// contents), by path under /etc/kubernetes/pki.
    #[serde(default)]
    pub(crate) shared_pki: BTreeMap<String, String>,
    /// PodDisruptionBudgets applied with `kubectl apply`.
    #[serde(default)]
    pub(crate) pdbs: Vec<super::workloads::Pdb>,
    /// kube-proxy's and CoreDNS's image tags once `kubeadm upgrade` changed
    /// them; `None`: what `kubeadm init` deployed for the cluster's first version.
    #[serde(default)]
    pub(crate) addons: Option<super::workloads::Addons>,
    /// What `kubectl apply` last applied, by object: a digest of the object.
    #[serde(default)]
    pub(crate) applied: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Cluster {
    /// `controlPlaneEndpoint` (`127.4.0.10:6443`), or the first control plane's address.
    pub(crate) endpoint: String,
    /// `kubeadm init` was given `--control-plane-endpoint` (needed to join more control planes).
    #[serde(default)]
    pub(crate) stable_endpoint: bool,
    pub(crate) ca_cert_pem: String,
    pub(crate) ca_key_pem: String,
    /// `v1.32.4`.
    pub(crate) kubernetes_version: String,
    #[serde(default)]
    pub(crate) pod_cidr: Option<String>,
    pub(crate) service_cidr: String,
    pub(crate) initialized_at: f64,
    /// Random per init, so that node uids and pod names differ between clusters.
    pub(crate) uid: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct HostState {
    #[serde(default)]
    pub(crate) kubelet_running: bool,
    #[serde(default = "yes")]
    pub(crate) kubelet_enabled: bool,
    /// When this host's API server (a control plane) passes readyz; `None` = no API server.
    #[serde(default)]
    pub(crate) api_ready_at: Option<f64>,
}

fn yes() -> bool {
    true
}

impl Default for HostState {
    fn default() -> Self {
        HostState {
            kubelet_running: false,
            kubelet_enabled: true,
            api_ready_at: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Token {
    /// The 6-character public part.
    pub(crate) id: String,
    pub(crate) secret: String,
    #[serde(default)]
    pub(crate) description: Option<String>,
    /// Unix seconds; `None` never expires.
    #[serde(default)]
    pub(crate) expires: Option<f64>,
    #[serde(default)]
    pub(crate) usages: Vec<String>,
    #[serde(default)]
    pub(crate) groups: Vec<String>,
}

impl Token {
    pub(crate) fn full(&self) -> String {
        format!("{}.{}", self.id, self.secret)
    }
    pub(crate) fn expired(&self, now: f64) -> bool {
        self.expires.is_some_and(|e| e <= now)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct UploadedCerts {
    /// 64 lowercase hex: the AES key the Secret is encrypted with.
    pub(crate) key: String,
    pub(crate) expires: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct EtcdMember {
    /// 16 hex digits, as `etcdctl member list` shows.
    pub(crate) id: String,
    pub(crate) name: String,
    /// The lab host running it.
    pub(crate) host: String,
    pub(crate) peer_url: String,
    pub(crate) client_url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Pod {
    pub(crate) namespace: String,
    pub(crate) name: String,
    /// The node it runs on; empty while Pending.
    #[serde(default)]
    pub(crate) node: String,
    /// No controller owns it (applied as a bare Pod): eviction deletes it for good.
    #[serde(default)]
    pub(crate) bare: bool,
    #[serde(default)]
    pub(crate) labels: BTreeMap<String, String>,
}

/// CoreDNS's ReplicaSet hash in a kubeadm 1.32 cluster.
const COREDNS_RS: &str = "coredns-668d6bf9bc";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Cni {
    pub(crate) manifest: String,
    pub(crate) applied_at: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Taint {
    pub(crate) key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) value: Option<String>,
    pub(crate) effect: String,
}

impl Taint {
    /// `key=value:Effect` or `key:Effect`.
    pub(crate) fn spec(&self) -> String {
        match &self.value {
            Some(v) => format!("{}={}:{}", self.key, v, self.effect),
            None => format!("{}:{}", self.key, self.effect),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct NodeObj {
    pub(crate) name: String,
    pub(crate) uid: String,
    pub(crate) created: f64,
    pub(crate) resource_version: u64,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) annotations: BTreeMap<String, String>,
    pub(crate) taints: Vec<Taint>,
    #[serde(default)]
    pub(crate) unschedulable: bool,
    /// The lab host whose kubelet posts this node's status.
    pub(crate) host: String,
    pub(crate) arch: String,
    pub(crate) internal_ip: String,
    pub(crate) kubelet_version: String,
    #[serde(default)]
    pub(crate) pod_cidr: Option<String>,
    /// When the CNI has this node's network up; `None` until a CNI is applied.
    #[serde(default)]
    pub(crate) network_ready_at: Option<f64>,
    /// After a kubelet restart: when it reports Ready again.
    #[serde(default)]
    pub(crate) kubelet_ready_at: Option<f64>,
}

/// The Ready condition as the node lifecycle controller would report it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Readiness {
    /// `True`, `False` or `Unknown`.
    pub(crate) status: &'static str,
    pub(crate) reason: &'static str,
    pub(crate) message: &'static str,
}

pub(crate) const NOT_READY_MESSAGE: &str = "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized";
pub(crate) const UNKNOWN_MESSAGE: &str = "Kubelet stopped posting node status.";
pub(crate) const RESTARTING_MESSAGE: &str =
    "container runtime status check may not have completed yet";

impl State {
    pub(crate) fn host(&self, name: &str) -> HostState {
        self.hosts.get(name).cloned().unwrap_or_default()
    }

    pub(crate) fn host_mut(&mut self, name: &str) -> &mut HostState {
        self.hosts.entry(name.to_string()).or_default()
    }

    pub(crate) fn kubelet_running(&self, host: &str) -> bool {
        self.host(host).kubelet_running
    }

    pub(crate) fn readiness(&self, node: &NodeObj, now: f64) -> Readiness {
        if !self.kubelet_running(&node.host) {
            return Readiness {
                status: "Unknown",
                reason: "NodeStatusUnknown",
                message: UNKNOWN_MESSAGE,
            };
        }
        if node.kubelet_ready_at.is_some_and(|t| now < t) {
            return Readiness {
                status: "False",
                reason: "KubeletNotReady",
                message: RESTARTING_MESSAGE,
            };
        }
        match node.network_ready_at {
            Some(t) if now >= t => Readiness {
                status: "True",
                reason: "KubeletReady",
                message: "kubelet is posting ready status",
            },
            _ => Readiness {
                status: "False",
                reason: "KubeletNotReady",
                message: NOT_READY_MESSAGE,
            },
        }
    }

    /// Drops what the token cleaner and the Secret's owner reference would have deleted.
    pub(crate) fn purge_expired(&mut self, now: f64) {
        self.tokens.retain(|t| !t.expired(now));
        if self
            .uploaded_certs
            .as_ref()
            .is_some_and(|u| u.expires <= now)
        {
            self.uploaded_certs = None;
        }
    }

    pub(crate) fn token(&self, id: &str) -> Option<&Token> {
        self.tokens.iter().find(|t| t.id == id)
    }

    /// A node for a new pod (the scheduler): schedulable, not `avoid`, fewest pods
    /// first, then oldest. CoreDNS tolerates the control-plane taint.
    pub(crate) fn schedule(&self, avoid: &str) -> String {
        self.nodes
            .values()
            .filter(|n| !n.unschedulable && n.name != avoid)
            .min_by(|a, b| {
                let load = |n: &NodeObj| self.pods.iter().filter(|p| p.node == n.name).count();
                load(a)
                    .cmp(&load(b))
                    .then(a.created.total_cmp(&b.created))
                    .then(a.name.cmp(&b.name))
            })
            .map(|n| n.name.clone())
            .unwrap_or_default()
    }

    /// Starts CoreDNS's two replicas (they wait for a pod network).
    pub(crate) fn start_coredns(&mut self) {
        for _ in 0..2 {
            let node = self.schedule("");
            self.pods.push(Pod {
                namespace: "kube-system".into(),
                name: format!("{COREDNS_RS}-{}", random_pod_suffix()),
                node,
                bare: false,
                labels: super::workloads::coredns_labels(),
            });
        }
    }

    /// Evicts the pods on `node`; their ReplicaSet replaces each one elsewhere.
    /// Returns the evicted pods.
    pub(crate) fn evict_from(&mut self, node: &str) -> Vec<Pod> {
        let evicted: Vec<Pod> = self
            .pods
            .iter()
            .filter(|p| p.node == node)
            .cloned()
            .collect();
        self.pods.retain(|p| p.node != node);
        for p in evicted.iter().filter(|p| !p.bare) {
            let target = self.schedule(node);
            let base = p
                .name
                .rsplit_once('-')
                .map(|(b, _)| b)
                .unwrap_or(&p.name)
                .to_string();
            self.pods.push(Pod {
                namespace: p.namespace.clone(),
                name: format!("{base}-{}", random_pod_suffix()),
                node: target,
                bare: false,
                labels: p.labels.clone(),
            });
        }
        evicted
    }

    /// Next free /24 of the pod CIDR (kube-controller-manager's `--allocate-node-cidrs`).
    pub(crate) fn allocate_pod_cidr(&mut self) -> Option<String> {
        let cidr: ipnet::Ipv4Net = self.cluster.as_ref()?.pod_cidr.as_ref()?.parse().ok()?;
        if cidr.prefix_len() > 24 {
            return None;
        }
        let index = self.next_pod_cidr;
        let subnets = 1u64 << (24 - cidr.prefix_len());
        if u64::from(index) >= subnets {
            return None;
        }
        self.next_pod_cidr += 1;
        let base = u32::from(cidr.network()) + (index << 8);
        Some(format!("{}/24", std::net::Ipv4Addr::from(base)))
    }
}

pub(crate) fn state_path(lab_dir: &Path) -> PathBuf {
    lab_dir.join(STATE_FILE)
}

/// Holds `DIR/state.lock` until dropped.
struct Locked {
    _file: File,
}

fn lock_file(lab_dir: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lab_dir.join(LOCK_FILE))
}

/// Holds `DIR/state.lock` exclusively: for a read-modify-write.
fn lock(lab_dir: &Path) -> io::Result<Locked> {
    let file = lock_file(lab_dir)?;
    file.lock()?;
    Ok(Locked { _file: file })
}

/// Holds `DIR/state.lock` shared: readers exclude writers but not each
/// other (every host's probe reads at once).
fn lock_shared(lab_dir: &Path) -> io::Result<Locked> {
    let file = lock_file(lab_dir)?;
    file.lock_shared()?;
    Ok(Locked { _file: file })
}

fn load_file(lab_dir: &Path) -> io::Result<Map<String, Value>> {
    let invalid = |e: &dyn std::fmt::Display| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e}", state_path(lab_dir).display()),
        )
    };
    match std::fs::read_to_string(state_path(lab_dir)) {
        Ok(s) => match serde_json::from_str(&s).map_err(|e| invalid(&e))? {
            Value::Object(m) => Ok(m),
            _ => Err(invalid(&"not a JSON object")),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Map::new()),
        Err(e) => Err(e),
    }
}

fn parse(lab_dir: &Path, object: Map<String, Value>) -> io::Result<State> {
    serde_json::from_value(Value::Object(object)).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e}", state_path(lab_dir).display()),
        )
    })
}

fn to_object(state: &State) -> Map<String, Value> {
    match serde_json::to_value(state).expect("state serialises") {
        Value::Object(m) => m,
        _ => unreachable!("a struct serialises to an object"),
    }
}

fn unavailable(e: Unavailable) -> io::Error {
    io::Error::other(e)
}

/// The etcd message of an error that came from the API objects' store:
/// the API server could not reach a quorum.
pub(crate) fn etcd_failure(e: &io::Error) -> Option<String> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<Unavailable>())
        .map(|u| u.0.clone())
}

/// The file's host-local fields joined with the API objects `store` holds.
fn load_with(lab_dir: &Path, file: Map<String, Value>, store: &Store) -> io::Result<State> {
    let mut object = file;
    if let Store::Etcd(gateways) = store {
        let kvs = apistore::read_all(gateways).map_err(unavailable)?;
        apistore::from_keys(&mut object, &kvs).map_err(|e| unavailable(Unavailable(e)))?;
    }
    parse(lab_dir, object)
}

fn write_file(lab_dir: &Path, object: &Map<String, Value>) -> io::Result<()> {
    crate::topology::write_atomic(
        &state_path(lab_dir),
        &serde_json::to_string_pretty(object).expect("state serialises"),
    )
}

/// Only the host-local fields: what the file holds beside a real etcd.
fn host_local(object: &Map<String, Value>) -> Map<String, Value> {
    object
        .iter()
        .filter(|(k, _)| apistore::HOST_LOCAL.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Reads the whole state: the API objects through etcd's quorum when the
/// lab runs real etcd (an error carrying etcd's words when it cannot:
/// [`etcd_failure`]).
pub(crate) fn read(lab_dir: &Path) -> io::Result<State> {
    let store = apistore::store(lab_dir).map_err(unavailable)?;
    let file = {
        let _guard = lock_shared(lab_dir)?;
        load_file(lab_dir)?
    };
    load_with(lab_dir, file, &store)
}

/// Read-modify-write under the lock. The state is written back only when `f`
/// changed it; with real etcd the API objects that changed go to etcd in one
/// transaction (the resource version bumped with them), the host-local
/// fields to the file.
pub(crate) fn update<R>(lab_dir: &Path, f: impl FnOnce(&mut State) -> R) -> io::Result<R> {
    let store = apistore::store(lab_dir).map_err(unavailable)?;
    if let Store::Etcd(gateways) = &store {
        apistore::connect(gateways).map_err(unavailable)?;
    }
    let _guard = lock(lab_dir)?;
    let mut state = load_with(lab_dir, load_file(lab_dir)?, &store)?;
    let before = state.clone();
    let r = f(&mut state);
    if state == before {
        return Ok(r);
    }
    if matches!(store, Store::File) {
        state.resource_version += 1;
        write_file(lab_dir, &to_object(&state))?;
        return Ok(r);
    }
    let keys_before = apistore::to_keys(&to_object(&before));
    if apistore::to_keys(&to_object(&state)) != keys_before {
        state.resource_version += 1;
        let Store::Etcd(gateways) = &store else {
            return Err(unavailable(Unavailable(
                "no control plane runs an etcd member to keep the cluster's objects".into(),
            )));
        };
        let keys_after = apistore::to_keys(&to_object(&state));
        apistore::write_changes(gateways, &keys_before, &keys_after).map_err(unavailable)?;
    }
    let after = host_local(&to_object(&state));
    if after != host_local(&to_object(&before)) {
        write_file(lab_dir, &after)?;
    }
    Ok(r)
}

/// Reads the host-local fields only (every field in the model): for what
/// a host's init system or its API server process knows, which needs no
/// quorum. The API objects of the result are empty beside real etcd.
pub(crate) fn read_hosts(lab_dir: &Path) -> io::Result<State> {
    let _guard = lock_shared(lab_dir)?;
    parse(lab_dir, load_file(lab_dir)?)
}

/// [`update`] for what a host does on its own (its kubelet starting or
/// stopping, a reboot), which must work while etcd has no quorum: the
/// host-local fields are always written. The API objects (what a kubelet
/// posts about its Node) are loaded and written too when etcd answers, and
/// left alone when it does not, as a kubelet that cannot reach its API
/// server changes nothing there.
pub(crate) fn update_hosts<R>(lab_dir: &Path, f: impl FnOnce(&mut State) -> R) -> io::Result<R> {
    if !super::etcd::real(lab_dir) {
        return update(lab_dir, f);
    }
    let gateways = match apistore::store(lab_dir) {
        Ok(Store::Etcd(g)) => Some(g).filter(|g| apistore::connect(g).is_ok()),
        _ => None,
    };
    let _guard = lock(lab_dir)?;
    let file = load_file(lab_dir)?;
    let mut object = file.clone();
    let with_api = gateways.filter(|g| {
        apistore::read_all(g)
            .ok()
            .is_some_and(|kvs| apistore::from_keys(&mut object, &kvs).is_ok())
    });
    let mut state = match with_api {
        Some(_) => parse(lab_dir, object)?,
        None => parse(lab_dir, file)?,
    };
    let before = state.clone();
    let r = f(&mut state);
    if state == before {
        return Ok(r);
    }
    let local = host_local(&to_object(&state));
    if local != host_local(&to_object(&before)) {
        write_file(lab_dir, &local)?;
    }
    if let Some(gateways) = with_api {
        let keys_before = apistore::to_keys(&to_object(&before));
        if apistore::to_keys(&to_object(&state)) != keys_before {
            state.resource_version += 1;
            let keys_after = apistore::to_keys(&to_object(&state));
            // Refused now: the kubelet posts again at its next start.
            let _ = apistore::write_changes(&gateways, &keys_before, &keys_after);
        }
    }
    Ok(r)
}

/// Random lowercase alphanumerics, as bootstrap token parts are made.
pub(crate) fn random_token_part(len: usize) -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

/// Five characters of the alphabet Kubernetes uses for generated names.
pub(crate) fn random_pod_suffix() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Random lowercase hex of `bytes` bytes.
pub(crate) fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// A random RFC 4122 version-4 UUID.
pub(crate) fn random_uuid() -> String {
    let h = random_hex(16);
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}
