//! The simulator talking to its real etcd: member health through the
//! metrics listener (plain HTTP `/health`, as a probe would), and
//! membership changes with the real etcdctl, as kubeadm's etcd client makes
//! them (kubeadm's certificate paths under the acting host's root).

use super::{member, program, CLIENT_PORT, METRICS_PORT};
use crate::sim::host::Host;
use crate::topology::LabTopology;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a member's `/health` may take: kube-apiserver's default
/// `--etcd-healthcheck-timeout`.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one process trusts an answer: the API servers' checks run
/// often, a membership change takes longer than this to matter.
const HEALTH_TTL: Duration = Duration::from_millis(250);

/// The member at `address` has a leader and serves reads, asked now.
pub(crate) fn healthy_now(address: &str) -> bool {
    let metrics = format!("{address}:{METRICS_PORT}");
    match crate::sim::api::http_get(&metrics, "/health", HEALTH_TIMEOUT) {
        Ok((200, body)) => body.contains("\"health\":\"true\""),
        _ => false,
    }
}

static HEALTH: Mutex<Option<HashMap<String, (Instant, bool)>>> = Mutex::new(None);

/// [`healthy_now`], remembered for a moment within this process.
pub(crate) fn healthy(address: &str) -> bool {
    if let Some((at, ok)) = HEALTH
        .lock()
        .ok()
        .and_then(|m| m.as_ref().and_then(|m| m.get(address).copied()))
    {
        if at.elapsed() < HEALTH_TTL {
            return ok;
        }
    }
    let ok = healthy_now(address);
    if let Ok(mut m) = HEALTH.lock() {
        m.get_or_insert_with(HashMap::new)
            .insert(address.to_string(), (Instant::now(), ok));
    }
    ok
}

/// The member of the control plane `node` is healthy (its API server's etcd check).
pub(crate) fn node_healthy(lab_dir: &Path, node: &str) -> bool {
    LabTopology::load(lab_dir)
        .ok()
        .and_then(|t| t.node(node).map(|n| n.address.clone()))
        .is_some_and(|a| member::running_pid(lab_dir, node).is_some() && healthy(&a))
}

/// One member as `etcdctl member list -w json` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Member {
    pub(crate) id: u64,
    /// Empty while the member has not started.
    pub(crate) name: String,
    pub(crate) peer_urls: Vec<String>,
    pub(crate) is_learner: bool,
}

fn members_of(json: &serde_json::Value) -> Vec<Member> {
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    json["members"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|m| Member {
                    id: m["ID"].as_u64().unwrap_or(0),
                    name: m["name"].as_str().unwrap_or("").to_string(),
                    peer_urls: strings(&m["peerURLs"]),
                    is_learner: m["isLearner"].as_bool().unwrap_or(false),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// kubeadm's etcd client on a control plane: its etcd CA and
/// apiserver-etcd-client pair, every member's client URL as endpoints.
pub(crate) struct Client {
    etcdctl: PathBuf,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    endpoints: Vec<String>,
}

impl Client {
    /// The client kubeadm builds on `host`: endpoints from the etcd Pods
    /// of the cluster's control planes (the lab: every control plane with an
    /// etcd manifest).
    pub(crate) fn on(host: &Host) -> Client {
        let endpoints = host
            .topology
            .nodes
            .iter()
            .filter(|n| n.role == "control-plane" && member::pod(&host.lab_dir, &n.name).is_some())
            .map(|n| format!("https://{}:{CLIENT_PORT}", n.address))
            .collect();
        Client {
            etcdctl: program(&host.lab_dir, "etcdctl"),
            ca: host.path("/etc/kubernetes/pki/etcd/ca.crt"),
            cert: host.path("/etc/kubernetes/pki/apiserver-etcd-client.crt"),
            key: host.path("/etc/kubernetes/pki/apiserver-etcd-client.key"),
            endpoints,
        }
    }

    pub(crate) fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// etcdctl's stdout, or its error without the `Error: ` prefix.
    fn run(&self, args: &[&str]) -> Result<String, String> {
        if self.endpoints.is_empty() {
            return Err("etcd cluster has no endpoints".into());
        }
        let out = Command::new(&self.etcdctl)
            .arg(format!("--endpoints={}", self.endpoints.join(",")))
            .arg(format!("--cacert={}", self.ca.display()))
            .arg(format!("--cert={}", self.cert.display()))
            .arg(format!("--key={}", self.key.display()))
            .args(["--dial-timeout=2s", "--command-timeout=5s"])
            .args(args)
            .env_clear()
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.etcdctl.display()))?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let err = String::from_utf8_lossy(&out.stderr);
        let line = err
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("Error: "))
            .unwrap_or(err.trim());
        Err(line.trim().to_string())
    }

    fn json(&self, args: &[&str]) -> Result<serde_json::Value, String> {
        let out = self.run(args)?;
        serde_json::from_str(&out).map_err(|e| format!("etcdctl printed no JSON ({e}): {out}"))
    }

    pub(crate) fn members(&self) -> Result<Vec<Member>, String> {
        Ok(members_of(&self.json(&["member", "list", "-w", "json"])?))
    }

    /// `member add --learner`: the members after it, the new one included.
    pub(crate) fn add_learner(&self, name: &str, peer_url: &str) -> Result<Vec<Member>, String> {
        let peer = format!("--peer-urls={peer_url}");
        Ok(members_of(&self.json(&[
            "member",
            "add",
            name,
            &peer,
            "--learner",
            "-w",
            "json",
        ])?))
    }

    pub(crate) fn promote(&self, id: u64) -> Result<(), String> {
        self.run(&["member", "promote", &format!("{id:x}")])
            .map(|_| ())
    }

    pub(crate) fn remove(&self, id: u64) -> Result<(), String> {
        self.run(&["member", "remove", &format!("{id:x}")])
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_list_json_reads_decimal_ids_and_learners() {
        let json: serde_json::Value = serde_json::from_str(
            r#"{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"raft_term":2},"members":[{"ID":10276657743932975437,"name":"bettley","peerURLs":["https://127.4.0.11:2380"],"clientURLs":["https://127.4.0.11:2379"]},{"ID":1,"peerURLs":["https://127.4.0.12:2380"],"isLearner":true}]}"#,
        )
        .unwrap();
        let m = members_of(&json);
        assert_eq!(format!("{:x}", m[0].id), "8e9e05c52164694d");
        assert_eq!(m[0].name, "bettley");
        assert!(!m[0].is_learner);
        assert_eq!((m[1].name.as_str(), m[1].is_learner), ("", true));
    }
}
