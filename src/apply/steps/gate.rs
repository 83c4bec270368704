//! Readiness waits: the gate before joins (every named control plane's API
//! server ready, `/readyz` through the endpoint ok, their Nodes Ready) and a
//! joined node's wait for its Node to be Ready. Each has its own timeout,
//! named in its error. A wait reads Nodes through the runner's one shared
//! poll (`poll.rs`) or the watch of Nodes (`node_watch.rs`), so that it
//! notices a change within a poll interval or one watch line. The gate
//! asks every `/readyz` in one session per look, and while only Nodes keep
//! it shut, waits for the watch instead of looking.

use super::exec::first_line;
use super::poll::{Snapshot, POLL, WATCHED};
use super::{NodeMap, StepError, StepRunner};
use crate::facts::probe::MARK;
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
    /// Looks until every named control plane's API server is ready,
    /// `/readyz` through the endpoint passes (etcd included), and their
    /// Nodes are Ready; or the gate timeout passes. A look is one session on
    /// the first admin host with every `/readyz` at once, and the Nodes: a
    /// query of the shared poll, or the watch of Nodes' word while it is
    /// live. While only Nodes keep the gate shut (a CNI coming up), it waits
    /// for the watch to say they are Ready and asks nothing meanwhile: a
    /// look is some 5 kubectl starts on a Raspberry Pi whose control plane
    /// is starting, back to back, were they not paced by what can change.
    pub(super) async fn gate(
        &self,
        id: &StepId,
        control_planes: &[NodeName],
    ) -> Result<(), StepError> {
        let timeout = self.settings().gate_timeout;
        let deadline = Instant::now() + timeout;
        let mut since: BTreeMap<String, Instant> = BTreeMap::new();
        let mut last_shown = String::new();
        // The first look reads Nodes with a query of its own, as does a look
        // after the watch said nothing for `WATCHED` (it may have stalled).
        let mut query_nodes = true;
        loop {
            self.watch_nodes_if_due().await;
            let began = tokio::time::Instant::now();
            let look = self.gate_look(id, control_planes, began, query_nodes).await;
            if look.problems.is_empty() {
                return Ok(());
            }
            let problems = &look.problems;
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
            query_nodes = self.before_next_look(&look, began, deadline).await;
        }
    }

    /// Waits for what may let the next look pass; says whether it should
    /// read Nodes with a query. Only Nodes not Ready while the watch is
    /// live: until its lines say each is Ready, or `WATCHED` passes (a
    /// query then). Otherwise the next look starts `POLL` after this one
    /// did (a look takes at least one kubectl start: on a Pi, longer).
    async fn before_next_look(
        &self,
        look: &Look,
        began: tokio::time::Instant,
        deadline: Instant,
    ) -> bool {
        let live = self.nodes.hint().is_live();
        if live && look.only_nodes() {
            let watched = self.node_watch.ready();
            let all_ready = futures_util::future::join_all(
                look.unready_nodes
                    .iter()
                    .map(|n| watched.ready_since(n.as_str(), began)),
            );
            let bound = WATCHED.min(deadline.saturating_duration_since(Instant::now()));
            return tokio::time::timeout(bound, all_ready).await.is_err();
        }
        tokio::time::sleep_until(began + POLL).await;
        !live
    }

    /// One look at everything the gate waits for, all through the first
    /// admin host, at once: every `/readyz` in one session, and the Nodes
    /// (a query of the shared poll no older than `began`, or the watch's).
    async fn gate_look(
        &self,
        id: &StepId,
        control_planes: &[NodeName],
        began: tokio::time::Instant,
        query_nodes: bool,
    ) -> Look {
        let mut look = Look::default();
        let Some(admin) = self.admins.lock().unwrap().first().cloned() else {
            look.problems.insert(
                "admin".to_string(),
                "no control plane with an admin kubeconfig is reachable".to_string(),
            );
            tokio::time::sleep(POLL).await;
            return look;
        };
        let nodes = async {
            if query_nodes || !self.nodes.hint().is_live() {
                Some(self.next_nodes(id, began, 0).await.value)
            } else {
                None
            }
        };
        let (readyz, nodes) = tokio::join!(self.readyz_look(&admin, control_planes), nodes);
        look.problems = readyz;
        match nodes {
            Some(nodes) => node_problems(&mut look, control_planes, &nodes),
            None => self.watched_node_problems(&mut look, control_planes),
        }
        look
    }

    /// Every control plane's own `/readyz` and the endpoint's, in one
    /// session on `admin`, at once: what keeps each from passing.
    async fn readyz_look(&self, admin: &NodeName, control_planes: &[NodeName]) -> Problems {
        let mut problems = Problems::new();
        let mut checks = vec![];
        for cp in control_planes {
            match self.spec.node(cp.as_str()) {
                Some(n) => checks.push((
                    format!("api/{cp}"),
                    kube::readyz_verbose_of(&n.address, READYZ_TIMEOUT),
                )),
                None => {
                    problems.insert(
                        format!("api/{cp}"),
                        format!("API server on {cp} not ready ({cp} is not in cluster.toml)"),
                    );
                }
            }
        }
        checks.push((
            ENDPOINT.to_string(),
            kube::get_readyz_verbose_within(READYZ_TIMEOUT),
        ));
        let answers = self
            .quick(admin, kube::script::sections_at_once(&checks, MARK))
            .await
            .map(|out| Answers::of(&out));
        for (key, _) in &checks {
            let answer = match &answers {
                Ok(a) => a.get(key),
                Err(e) => Err(e.clone()),
            };
            let problem = if key == ENDPOINT {
                self.endpoint_problem(answer)
            } else {
                let cp = key.strip_prefix("api/").unwrap_or(key);
                api_problem(cp, answer)
            };
            if let Some(problem) = problem {
                problems.insert(key.clone(), problem);
            }
        }
        problems
    }

    /// The control planes' Nodes as the live watch's last lines say.
    fn watched_node_problems(&self, look: &mut Look, control_planes: &[NodeName]) {
        let watched = self.node_watch.ready();
        // The last query's reason, where it also found the Node not Ready.
        let polled = self.nodes.latest().and_then(|s| s.value.ok());
        for cp in control_planes {
            let problem = match watched.current(cp.as_str()) {
                Some(true) => continue,
                Some(false) => {
                    let reason = polled
                        .as_ref()
                        .and_then(|nodes| nodes.get(cp.as_str()))
                        .filter(|n| n.ready != ConditionStatus::True)
                        .and_then(|n| n.ready_reason.clone())
                        .unwrap_or_else(|| "Ready not True".to_string());
                    format!("Node {cp} not Ready ({reason})")
                }
                None => format!("Node {cp} not registered"),
            };
            look.problems.insert(format!("node/{cp}"), problem);
            look.unready_nodes.push(cp.clone());
        }
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

/// What a look found: the problems, and the control planes whose Nodes are
/// not Ready (each one of the problems).
#[derive(Default)]
struct Look {
    problems: Problems,
    unready_nodes: Vec<NodeName>,
}

impl Look {
    /// Only Nodes not Ready keep the gate shut: every problem is one.
    fn only_nodes(&self) -> bool {
        !self.unready_nodes.is_empty() && self.problems.len() == self.unready_nodes.len()
    }
}

/// The endpoint's check's name in a look's session.
const ENDPOINT: &str = "endpoint";

/// How long one `/readyz` of a look may take: a control plane that does
/// not answer is a problem to show, not a look that hangs.
const READYZ_TIMEOUT: Duration = Duration::from_secs(5);

/// Each check's answer in a look's session (`sections_at_once`).
struct Answers {
    /// As far as the session went.
    sections: crate::facts::probe::Answers,
    /// The session's own status and stderr, for a check with no answer.
    session: String,
}

impl Answers {
    fn of(out: &Output) -> Answers {
        Answers {
            sections: crate::facts::probe::Answers::read_partial(&out.stdout, &out.stderr),
            session: format!(
                "the session exited {}: {}",
                out.code,
                out.stderr
                    .lines()
                    .map(str::trim)
                    .find(|l| !l.is_empty() && !l.starts_with(MARK.trim_end()))
                    .unwrap_or("nothing on stderr")
            ),
        }
    }

    /// One check's own exit status, stdout and stderr.
    fn get(&self, key: &str) -> Result<Output, String> {
        let a = &self.sections;
        let code = a
            .exit(key)
            .ok_or_else(|| format!("no answer ({})", self.session))?;
        Ok(Output {
            code,
            stdout: a.stdout(key).to_string(),
            stderr: a.stderr(key).to_string(),
        })
    }
}

/// What keeps `cp`'s own API server from being ready, if anything.
fn api_problem(cp: &str, r: Result<Output, String>) -> Option<String> {
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
fn node_problems(look: &mut Look, control_planes: &[NodeName], nodes: &Nodes) {
    let problems = &mut look.problems;
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
                look.unready_nodes.push(cp.clone());
            }
            Some(n) if n.ready != ConditionStatus::True => {
                let reason = n.ready_reason.as_deref().unwrap_or("no reason given");
                problems.insert(
                    format!("node/{cp}"),
                    format!("Node {cp} not Ready ({reason})"),
                );
                look.unready_nodes.push(cp.clone());
            }
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `sh` prints for `checks` run as a look's session.
    fn session(checks: &[(&str, &str)]) -> Output {
        let checks: Vec<(String, String)> = checks
            .iter()
            .map(|(k, c)| (k.to_string(), c.to_string()))
            .collect();
        crate::apply::steps::test_fixture::sh(&kube::script::sections_at_once(&checks, MARK))
    }

    #[test]
    fn each_readyz_of_a_look_keeps_its_own_status_and_words() {
        let out = session(&[
            ("api/bettley", "printf '[+]ping ok\\n[-]etcd failed: reason withheld\\nreadyz check failed\\n'; sh -c 'exit 1'"),
            (ENDPOINT, "printf '[+]ping ok\\nreadyz check passed\\n'"),
            ("api/cargyll", "echo 'The connection to the server 10.4.0.12:6443 was refused' >&2; sh -c 'exit 1'"),
        ]);
        let answers = Answers::of(&out);
        let ok = answers.get(ENDPOINT).unwrap();
        assert_eq!(ok.code, 0);
        assert!(kube::readyz::parse(ok.code, &ok.stdout, &ok.stderr).ready);
        assert_eq!(api_problem("dalt", answers.get(ENDPOINT)), None);
        assert_eq!(
            api_problem("bettley", answers.get("api/bettley")).unwrap(),
            "API server on bettley not ready (failed checks: etcd)"
        );
        let refused = api_problem("cargyll", answers.get("api/cargyll")).unwrap();
        assert!(
            refused.starts_with("API server on cargyll not ready (The connection to the server 10.4.0.12:6443 was refused"),
            "{refused}"
        );
    }

    #[test]
    fn a_check_the_session_never_answered_says_how_the_session_ended() {
        let out = Output {
            code: 255,
            stdout: format!("{MARK}endpoint\nreadyz check passed\n"),
            stderr: format!("{MARK}endpoint\nConnection to 10.4.0.11 closed by remote host.\n"),
        };
        let answers = Answers::of(&out);
        assert_eq!(
            answers.get(ENDPOINT).unwrap_err(),
            "no answer (the session exited 255: Connection to 10.4.0.11 closed by remote host.)"
        );
    }
}
