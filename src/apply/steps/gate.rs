//! Readiness waits: the gate before joins (every named control plane's API
//! server ready, `/readyz` through the endpoint ok, their Nodes Ready) and a
//! joined node's wait for its Node to be Ready. Each has its own timeout,
//! named in its error. Every wait reads Nodes through the runner's one
//! shared poll (`poll.rs`), so that it notices a change within a poll
//! interval, and the gate asks `/readyz` once per poll alongside.

use super::exec::first_line;
use super::poll::{Snapshot, POLL};
use super::{NodeMap, StepError, StepRunner};
use crate::kube::nodes::ConditionStatus;
use crate::kube::{self, secret::redact};
use crate::plan::StepId;
use crate::spec::NodeName;
use crate::transport::{Cmd, Output};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

type Nodes = Result<NodeMap, StepError>;

/// What is not ready yet, keyed by what it is about (`api/dalt`,
/// `endpoint`, `node/dalt`), so that each problem keeps its own "for 12 s".
type Problems = BTreeMap<String, String>;

impl StepRunner<'_> {
    /// Polls until every named control plane's API server is ready,
    /// `/readyz` through the endpoint passes (etcd included), and their
    /// Nodes are Ready; or the gate timeout passes.
    pub(super) async fn gate(
        &self,
        id: &StepId,
        control_planes: &[NodeName],
    ) -> Result<(), StepError> {
        let timeout = self.settings().gate_timeout;
        let deadline = Instant::now() + timeout;
        let mut since: BTreeMap<String, Instant> = BTreeMap::new();
        let mut last_shown = String::new();
        let waiting_since = tokio::time::Instant::now();
        let mut seen = 0;
        // Each look also reads `/readyz`, which no watch of Nodes sees change.
        let _eager = self.nodes.eager();
        loop {
            let problems = self
                .gate_problems(id, control_planes, waiting_since, &mut seen)
                .await;
            if problems.is_empty() {
                return Ok(());
            }
            let now = Instant::now();
            since.retain(|k, _| problems.contains_key(k));
            for k in problems.keys() {
                since.entry(k.clone()).or_insert(now);
            }
            let describe = |with_time: bool| {
                problems
                    .iter()
                    .map(|(k, m)| {
                        if with_time {
                            format!("{m} for {}", crate::transport::secs(now - since[k]))
                        } else {
                            m.clone()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            if now >= deadline {
                return Err(StepError::ControlPlaneNotReady {
                    timeout,
                    problems: describe(true),
                });
            }
            let shown = describe(false);
            if shown != last_shown {
                self.events.progress(id, format!("waiting: {shown}"));
                last_shown = shown;
            }
        }
    }

    /// One look at everything the gate waits for, all through the first
    /// admin host, at once: the control planes' `/readyz` and the next
    /// shared poll of Nodes (which paces the looks).
    async fn gate_problems(
        &self,
        id: &StepId,
        control_planes: &[NodeName],
        waiting_since: tokio::time::Instant,
        seen: &mut u64,
    ) -> Problems {
        let mut problems = Problems::new();
        let Some(admin) = self.admins.lock().unwrap().first().cloned() else {
            problems.insert(
                "admin".to_string(),
                "no control plane with an admin kubeconfig is reachable".to_string(),
            );
            tokio::time::sleep(POLL).await;
            return problems;
        };
        let per_cp = futures_util::future::join_all(control_planes.iter().map(|cp| {
            let script = self
                .spec
                .node(cp.as_str())
                .map(|n| kube::readyz_of(&n.address));
            let admin = &admin;
            async move {
                let r = match script {
                    Some(script) => self.quick(admin, script).await,
                    None => Err(format!("{cp} is not in cluster.toml")),
                };
                (cp, r)
            }
        }));
        let endpoint = self.quick(&admin, kube::get_readyz_verbose());
        let nodes = self.next_nodes(id, waiting_since, *seen);
        let (per_cp, endpoint, nodes) = tokio::join!(per_cp, endpoint, nodes);
        *seen = nodes.seq;
        for (cp, r) in per_cp {
            if let Some(problem) = api_problem(cp, r) {
                problems.insert(format!("api/{cp}"), problem);
            }
        }
        if let Some(problem) = self.endpoint_problem(endpoint) {
            problems.insert("endpoint".into(), problem);
        }
        node_problems(&mut problems, control_planes, &nodes.value);
        problems
    }

    /// The shared poll's next Nodes for a wait that began at `waiting_since`
    /// and last saw poll `seen` (0: none yet): never a poll that started
    /// before the wait, each time a newer one.
    pub(super) async fn next_nodes(
        &self,
        id: &StepId,
        waiting_since: tokio::time::Instant,
        seen: u64,
    ) -> Snapshot<Nodes> {
        self.next_nodes_unless(id, waiting_since, seen, std::future::pending())
            .await
            .expect("a pending future never ends")
    }

    /// `next_nodes`, unless `stop` ends while the wait is between polls:
    /// `None` then.
    pub(super) async fn next_nodes_unless(
        &self,
        id: &StepId,
        waiting_since: tokio::time::Instant,
        seen: u64,
        stop: impl std::future::Future<Output = ()>,
    ) -> Option<Snapshot<Nodes>> {
        self.watch_nodes_if_due().await;
        let fetch = || self.get_nodes(id);
        if seen == 0 {
            self.nodes.since_unless(waiting_since, fetch, stop).await
        } else {
            self.nodes.newer_than_unless(seen, fetch, stop).await
        }
    }

    /// One `kubectl get nodes` through the first admin host that answers:
    /// the shared poll's query.
    pub(super) async fn get_nodes(&self, id: &StepId) -> Nodes {
        let cmd = Cmd::new(kube::get_nodes_json())
            .timeout(Duration::from_secs(30))
            .label("kubectl get nodes");
        self.admin(id, &cmd, Duration::ZERO)
            .await
            .and_then(|json| super::admin::parse_nodes(&json))
    }

    /// Runs a read-only check on `admin` with a short timeout.
    async fn quick(&self, admin: &NodeName, script: String) -> Result<Output, String> {
        let cmd = Cmd::new(script).timeout(Duration::from_secs(30));
        let host = self
            .hosts
            .get(admin.as_str())
            .await
            .map_err(|e| e.to_string())?;
        host.run(&cmd, None).await.map_err(|e| e.to_string())
    }

    fn endpoint_problem(&self, r: Result<Output, String>) -> Option<String> {
        let ep = &self.spec.cluster.endpoint;
        match r {
            Ok(out) => {
                let r = kube::readyz::parse(out.code, &out.stdout, &out.stderr);
                if r.ready {
                    return None;
                }
                let why = if r.failed_checks.is_empty() {
                    first_line(r.error.as_deref().unwrap_or("no reason")).to_string()
                } else {
                    format!("failed checks: {}", r.failed_checks.join(", "))
                };
                Some(format!("/readyz through {ep} not ok ({why})"))
            }
            Err(e) => Some(format!("/readyz through {ep}: {e}")),
        }
    }

    /// A join is done when the Node is Ready (its pod network up), so that
    /// the apply's end is a cluster the next plan finds converged: as the
    /// shared poll finds it, or as the watch of Nodes says in a line that
    /// came after the wait began (without a poll's query then).
    /// `done`: what happened before the wait, for the timeout's message.
    pub(super) async fn wait_node_ready(
        &self,
        id: &StepId,
        node: &NodeName,
        done: &'static str,
    ) -> Result<(), StepError> {
        let timeout = self.settings().gate_timeout;
        let deadline = Instant::now() + timeout;
        let mut shown = String::new();
        let waiting_since = tokio::time::Instant::now();
        let mut seen = 0;
        loop {
            let watched = self
                .node_watch
                .ready()
                .ready_since(node.as_str(), waiting_since);
            let Some(snapshot) = self
                .next_nodes_unless(id, waiting_since, seen, watched)
                .await
            else {
                return Ok(());
            };
            seen = snapshot.seq;
            let why = match snapshot.value {
                Ok(nodes) => match nodes.get(node.as_str()) {
                    Some(n) if n.ready == ConditionStatus::True => return Ok(()),
                    Some(n) => format!(
                        "Ready={:?}, {}: {}",
                        n.ready,
                        n.ready_reason.as_deref().unwrap_or("no reason given"),
                        n.ready_message.as_deref().unwrap_or("")
                    ),
                    None => format!("no Node {node} registered yet"),
                },
                Err(e) => e.to_string(),
            };
            let now = Instant::now();
            if now >= deadline {
                return Err(StepError::NodeNotReady {
                    node: node.clone(),
                    done,
                    timeout,
                    why,
                });
            }
            if why != shown {
                self.events.progress(
                    id,
                    format!("waiting for Node {node} to be Ready ({})", first_line(&why)),
                );
                shown = why;
            }
        }
    }
}

/// What keeps `cp`'s own API server from being ready, if anything.
fn api_problem(cp: &NodeName, r: Result<Output, String>) -> Option<String> {
    let problem = match r {
        Ok(out) => {
            let r = kube::readyz::parse(out.code, &out.stdout, &out.stderr);
            if r.ready {
                return None;
            }
            if r.failed_checks.is_empty() {
                first_line(&redact(r.error.as_deref().unwrap_or("no reason"))).to_string()
            } else {
                format!("failed checks: {}", r.failed_checks.join(", "))
            }
        }
        Err(e) => e,
    };
    Some(format!("API server on {cp} not ready ({problem})"))
}

/// Control planes whose Node is missing or not Ready, or why the Node list
/// could not be read.
fn node_problems(problems: &mut Problems, control_planes: &[NodeName], nodes: &Nodes) {
    let objs = match nodes {
        Ok(objs) => objs,
        Err(e) => {
            problems.insert(
                "nodes".into(),
                first_line(&redact(&e.to_string())).to_string(),
            );
            return;
        }
    };
    for cp in control_planes {
        match objs.get(cp.as_str()) {
            None => {
                problems.insert(format!("node/{cp}"), format!("Node {cp} not registered"));
            }
            Some(n) if n.ready != ConditionStatus::True => {
                let reason = n.ready_reason.as_deref().unwrap_or("no reason given");
                problems.insert(
                    format!("node/{cp}"),
                    format!("Node {cp} not Ready ({reason})"),
                );
            }
            Some(_) => {}
        }
    }
}
