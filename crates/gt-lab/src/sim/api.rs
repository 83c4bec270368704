//! The simulated API servers: which control planes run one, whether it is
//! ready, and what `/readyz` and `/livez` answer, shared by the simulated
//! kubectl and the lab daemon's HTTP listeners.
//!
//! A control plane's API server runs when the host was initialised or joined as
//! a control plane, its kubelet runs and its `kube-apiserver.yaml` manifest is
//! in place. It is ready when, in addition, its start-up delay has passed, etcd
//! answers (its own real member is healthy; in the model, more than half the
//! members' hosts run etcd) and no
//! `apiserver_down` fault is set on the host.

use super::clock;
use super::state::{self, State};
use crate::topology::{Faults, LabTopology};
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

/// The checks of kube-apiserver 1.32's `/readyz?verbose`, in order.
pub(crate) const READYZ_CHECKS: &[&str] = &[
    "ping",
    "log",
    "etcd",
    "etcd-readiness",
    "informer-sync",
    "poststarthook/start-apiserver-admission-initializer",
    "poststarthook/generic-apiserver-start-informers",
    "poststarthook/priority-and-fairness-config-consumer",
    "poststarthook/priority-and-fairness-filter",
    "poststarthook/storage-object-count-tracker-hook",
    "poststarthook/start-apiextensions-informers",
    "poststarthook/start-apiextensions-controllers",
    "poststarthook/crd-informer-synced",
    "poststarthook/start-system-namespaces-controller",
    "poststarthook/start-cluster-authentication-info-controller",
    "poststarthook/start-kube-apiserver-identity-lease-controller",
    "poststarthook/start-kube-apiserver-identity-lease-garbage-collector",
    "poststarthook/start-legacy-token-tracking-controller",
    "poststarthook/start-service-ip-repair-controllers",
    "poststarthook/rbac/bootstrap-roles",
    "poststarthook/scheduling/bootstrap-system-priority-classes",
    "poststarthook/priority-and-fairness-config-producer",
    "poststarthook/bootstrap-controller",
    "poststarthook/aggregator-reload-proxy-client-cert",
    "poststarthook/start-kube-aggregator-informers",
    "poststarthook/apiservice-status-local-available-controller",
    "poststarthook/apiservice-status-remote-available-controller",
    "poststarthook/apiservice-registration-controller",
    "poststarthook/apiservice-discovery-controller",
    "poststarthook/kube-apiserver-autoregistration",
    "autoregister-completion",
    "poststarthook/apiservice-openapi-controller",
    "poststarthook/apiservice-openapiv3-controller",
    "shutdown",
];

/// Checks that fail while an API server is still starting.
const STARTING_FAILS: &[&str] = &[
    "informer-sync",
    "poststarthook/rbac/bootstrap-roles",
    "poststarthook/scheduling/bootstrap-system-priority-classes",
    "autoregister-completion",
];

/// Checks that fail when etcd is unreachable.
const ETCD_FAILS: &[&str] = &["etcd", "etcd-readiness"];

/// What an API server address answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Nothing listens there (connection refused).
    Refused,
    /// HTTP status and body.
    Http(u16, String),
}

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// The control-plane endpoint (the load balancer in front of every API server).
    Endpoint,
    /// One control plane's own API server.
    Server(String),
    /// An address where no simulated API server can be.
    Nowhere,
}

/// Routes `host:port` to the endpoint, one control plane's API server, or nowhere.
/// When the lab has no load balancer its endpoint is a control plane's own
/// address, and requests to it reach that API server only.
pub(crate) fn route(topology: &LabTopology, address: &str) -> Target {
    let (host, port) = match address.rsplit_once(':') {
        Some((h, p)) => (h, p),
        None => (address, "443"),
    };
    let own = topology
        .nodes
        .iter()
        .find(|n| port == "6443" && n.address == host && n.role == "control-plane")
        .map(|n| Target::Server(n.name.clone()));
    match own {
        Some(t) => t,
        None if address == topology.endpoint => Target::Endpoint,
        None => Target::Nowhere,
    }
}

/// The cluster as the API servers see it at one instant.
pub(crate) struct View<'a> {
    pub(crate) lab_dir: &'a Path,
    pub(crate) state: &'a State,
    pub(crate) now: f64,
}

/// Why an API server is not ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Health {
    Ready,
    Starting,
    EtcdFailing,
}

impl View<'_> {
    fn host_file(&self, host: &str, logical: &str) -> bool {
        self.lab_dir
            .join("hosts")
            .join(host)
            .join(logical.trim_start_matches('/'))
            .exists()
    }

    /// This host's API server process runs (answers HTTP).
    pub(crate) fn running(&self, host: &str) -> bool {
        let h = self.state.host(host);
        h.api_ready_at.is_some()
            && h.kubelet_running
            && self.host_file(host, "/etc/kubernetes/manifests/kube-apiserver.yaml")
    }

    /// Members whose host runs etcd.
    pub(crate) fn etcd_started(&self, host: &str) -> bool {
        self.state.kubelet_running(host)
            && self.host_file(host, "/etc/kubernetes/manifests/etcd.yaml")
    }

    pub(crate) fn etcd_quorum(&self) -> bool {
        let members = &self.state.etcd_members;
        let started = members
            .iter()
            .filter(|m| self.etcd_started(&m.host))
            .count();
        !members.is_empty() && started * 2 > members.len()
    }

    /// This host's API server reaches etcd: with real members, its own
    /// member (kubeadm's `--etcd-servers=https://127.0.0.1:2379`) answers
    /// healthy, which needs a leader, so a quorum; the model counts members.
    pub(crate) fn etcd_reachable(&self, host: &str) -> bool {
        if super::etcd::real(self.lab_dir) {
            super::etcd::ctl::node_healthy(self.lab_dir, host)
        } else {
            self.etcd_quorum()
        }
    }

    /// Health of a running API server.
    pub(crate) fn health(&self, host: &str) -> Health {
        if Faults::load(self.lab_dir, host).apiserver_down || !self.etcd_reachable(host) {
            return Health::EtcdFailing;
        }
        match self.state.host(host).api_ready_at {
            Some(t) if self.now >= t => Health::Ready,
            _ => Health::Starting,
        }
    }

    /// Can answer API requests (reads and writes go through to etcd).
    pub(crate) fn serving(&self, host: &str) -> bool {
        self.running(host) && self.health(host) != Health::EtcdFailing
    }

    /// Control planes with a running API server, by name.
    pub(crate) fn running_servers(&self) -> Vec<String> {
        self.state
            .hosts
            .keys()
            .filter(|h| self.running(h))
            .cloned()
            .collect()
    }

    /// The API server a request to `target` reaches: for the endpoint, the first
    /// serving one (the load balancer's health checks skip the others), else the
    /// first running one.
    pub(crate) fn pick(&self, target: &Target) -> Option<String> {
        match target {
            Target::Nowhere => None,
            Target::Server(h) => self.running(h).then(|| h.clone()),
            Target::Endpoint => {
                let running = self.running_servers();
                running
                    .iter()
                    .find(|h| self.health(h) == Health::Ready)
                    .or_else(|| running.iter().find(|h| self.serving(h)))
                    .or_else(|| running.first())
                    .cloned()
            }
        }
    }

    /// `GET /readyz` or `/livez` (`kind`), verbose or not, on `host`'s API server.
    pub(crate) fn health_endpoint(&self, host: &str, kind: &str, verbose: bool) -> Answer {
        if !self.running(host) {
            return Answer::Refused;
        }
        let health = self.health(host);
        let failing: &[&str] = match health {
            Health::Ready => &[],
            Health::Starting if kind == "livez" => &[],
            Health::Starting => STARTING_FAILS,
            Health::EtcdFailing => ETCD_FAILS,
        };
        let checks = READYZ_CHECKS.iter().filter(|c| {
            kind == "readyz" || !matches!(**c, "informer-sync" | "shutdown" | "etcd-readiness")
        });
        let mut listing = String::new();
        for c in checks {
            if failing.contains(c) {
                listing.push_str(&format!("[-]{c} failed: reason withheld\n"));
            } else {
                listing.push_str(&format!("[+]{c} ok\n"));
            }
        }
        if failing.is_empty() {
            if verbose {
                Answer::Http(200, format!("{listing}{kind} check passed\n"))
            } else {
                Answer::Http(200, "ok".into())
            }
        } else {
            // http.Error: the full listing whether verbose or not, plus a newline.
            Answer::Http(500, format!("{listing}{kind} check failed\n"))
        }
    }
}

/// `GET /readyz` (`verbose`: `/readyz?verbose`) of one control plane's API
/// server (`node = Some`) or through the endpoint (`None`): HTTP status and body,
/// exactly as kube-apiserver answers. An API server that is not running answers
/// 503 with a one-line explanation (the lab daemon may prefer to refuse the
/// connection: see [`answer`]).
pub fn readyz(lab_dir: &Path, node: Option<&str>, verbose: bool) -> (u16, String) {
    match answer(lab_dir, node, "readyz", verbose) {
        Answer::Http(code, body) => (code, body),
        Answer::Refused => (
            503,
            format!(
                "no API server is running {}\n",
                node.map(|n| format!("on {n}"))
                    .unwrap_or_else(|| "behind the endpoint".into())
            ),
        ),
    }
}

/// `/readyz` or `/livez` (`kind`) of `node`'s API server or the endpoint's.
pub(crate) fn answer(lab_dir: &Path, node: Option<&str>, kind: &str, verbose: bool) -> Answer {
    let state = match state::read_hosts(lab_dir) {
        Ok(s) => s,
        Err(_) => return Answer::Refused,
    };
    let view = View {
        lab_dir,
        state: &state,
        now: clock::now(),
    };
    let target = match node {
        Some(n) => Target::Server(n.to_string()),
        None => Target::Endpoint,
    };
    match view.pick(&target) {
        Some(h) => view.health_endpoint(&h, kind, verbose),
        None => Answer::Refused,
    }
}

/// A plain-HTTP GET of `path` on `address` (`127.4.0.10:6443`), for labs whose
/// API servers answer real HTTP. Only loopback addresses are contacted.
pub fn http_get(address: &str, path: &str, timeout: Duration) -> std::io::Result<(u16, String)> {
    use std::net::ToSocketAddrs;
    let addr = address
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("no address for {address}")))?;
    if !addr.ip().is_loopback() {
        return Err(std::io::Error::other(format!(
            "refusing to contact {addr}: the lab only uses loopback addresses"
        )));
    }
    let mut s = std::net::TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    // One segment, sent at once, as Go's client does (TCP_NODELAY): a
    // request written piece by piece waits out the server's delayed ACK
    // (40 ms on Linux) between its pieces.
    s.set_nodelay(true)?;
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: {address}\r\nUser-Agent: kubectl/v1.32.4\r\nAccept: application/json, */*\r\nConnection: close\r\n\r\n"
    );
    s.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    if raw.is_empty() {
        // A TCP proxy with no healthy backend accepts, then closes.
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "EOF",
        ));
    }
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("malformed HTTP response"))?;
    let code = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("malformed HTTP status line"))?;
    Ok((code, body.to_string()))
}
