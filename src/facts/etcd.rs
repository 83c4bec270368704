//! etcd as etcd itself reports it (members, health, leader, size), read
//! through one control plane's etcd pod in one more command on the control
//! plane the Node list came through; and the quorum arithmetic the planner
//! and `gt status` share.

use super::probe::Answers;
use crate::kube::etcd::{self as etcdctl, MemberId};
use serde::{Deserialize, Serialize};

/// What etcd said. `None` in `ClusterFacts` when it was not asked (no
/// cluster, facts recorded before gt read etcd, or `GT_SKIP_ETCD_FACTS`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct EtcdFacts {
    /// The control plane whose etcd pod answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_via: Option<String>,
    /// Why no control plane's etcd pod could list the members (each one's
    /// reason): etcd without quorum answers no one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why etcdctl could not even be run: no etcd pod to exec into (an
    /// external etcd, a pod that is not running). gt then judges etcd from
    /// the control-plane Nodes, as without etcd facts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
    /// Members in etcd's order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<EtcdMember>,
}

/// One member of etcd's own list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct EtcdMember {
    /// As etcdctl prints it: hex (`8e9e05c52164694d`).
    pub id: String,
    /// kubeadm names a member after its node; empty while it has not started.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peer_urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub client_urls: Vec<String>,
    /// A learner: it does not vote (kubeadm promotes it once it caught up).
    #[serde(default)]
    pub learner: bool,
    /// `endpoint health`: it committed a proposal. `None` when not asked or
    /// not answered for this member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy: Option<bool>,
    /// etcd's reason when not healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_error: Option<String>,
    #[serde(default)]
    pub leader: bool,
    /// Its database's size in bytes (`endpoint status`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_size: Option<u64>,
}

impl EtcdMember {
    /// The name shown: its name, or its ID while it has none.
    pub fn label(&self) -> String {
        if self.name.is_empty() {
            format!("(unstarted) {}", self.id)
        } else {
            self.name.clone()
        }
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy == Some(true)
    }

    /// Its ID as etcdctl takes it; `None` for an ID a facts file mangled.
    pub fn member_id(&self) -> Option<MemberId> {
        self.id.parse().ok()
    }

    fn has_peer_host(&self, address: &std::net::IpAddr) -> bool {
        self.peer_urls.iter().any(|u| {
            etcdctl::url_host(u)
                .and_then(|h| h.parse::<std::net::IpAddr>().ok())
                .is_some_and(|h| h == *address)
        })
    }
}

/// Voting members, healthy ones among them, and the majority they need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quorum {
    pub voters: usize,
    pub healthy: usize,
}

impl Quorum {
    /// etcd's majority: voters/2 + 1.
    pub fn needed(&self) -> usize {
        self.voters / 2 + 1
    }

    pub fn holds(&self) -> bool {
        self.healthy >= self.needed()
    }
}

impl EtcdFacts {
    /// Whether etcd answered at all.
    pub fn readable(&self) -> bool {
        self.error.is_none() && self.unavailable.is_none()
    }

    /// etcdctl ran, in some pod: what it said (or that it said nothing) is etcd's.
    pub fn asked(&self) -> bool {
        self.unavailable.is_none()
    }

    pub fn quorum(&self) -> Quorum {
        let voters = self.members.iter().filter(|m| !m.learner);
        Quorum {
            voters: voters.clone().count(),
            healthy: voters.filter(|m| m.is_healthy()).count(),
        }
    }

    /// The member of a node: by name (kubeadm's `--name`), or by its peer
    /// URL's address (a member that has not started has no name yet).
    pub fn member_of(&self, node: &str, address: Option<&std::net::IpAddr>) -> Option<&EtcdMember> {
        self.members.iter().find(|m| m.name == node).or_else(|| {
            let a = address?;
            self.members
                .iter()
                .find(|m| m.name.is_empty() && m.has_peer_host(a))
        })
    }

    pub fn leader(&self) -> Option<&EtcdMember> {
        self.members.iter().find(|m| m.leader)
    }
}

/// The etcd query's answer (`kube::etcd::query_script`): the members from
/// the first pod that listed them, joined with that pod's status and health.
pub fn parse_etcd_query(stdout: &str, stderr: &str) -> EtcdFacts {
    let a = match Answers::read(stdout, stderr) {
        Ok(a) => a,
        // Cut short: the connection's failure, not etcd's.
        Err(e) => {
            return EtcdFacts {
                unavailable: Some(format!("{e}; stderr: {}", last_lines(stderr))),
                ..Default::default()
            }
        }
    };
    let mut failures = Vec::new();
    let mut etcdctl_ran = false;
    for key in a.names().filter(|k| k.starts_with(etcdctl::MEMBERS)) {
        let (body, err) = (a.stdout(key), a.stderr(key));
        let via = &key[etcdctl::MEMBERS.len()..];
        let code = a.exit(key).unwrap_or(-1);
        if code != 0 {
            etcdctl_ran |= etcdctl_failed(err);
            failures.push(format!(
                "through {}: {} (exit {code})",
                etcdctl::pod_of(via),
                etcd_error(err)
            ));
            continue;
        }
        let members = match etcdctl::parse_member_list(body) {
            Ok(m) => m,
            // crictl finds no container to exec into, says so on stderr,
            // prints its usage and exits 0: no etcd pod on this host, as
            // when kubectl finds none.
            Err(_) if err.contains(NO_CONTAINER) => {
                failures.push(format!(
                    "through {}: {} (crictl)",
                    etcdctl::pod_of(via),
                    etcd_error(err)
                ));
                continue;
            }
            Err(e) => {
                etcdctl_ran = true;
                failures.push(format!("through {}: {e}", etcdctl::pod_of(via)));
                continue;
            }
        };
        let mut facts = EtcdFacts {
            observed_via: Some(via.to_string()),
            error: None,
            unavailable: None,
            members: members
                .into_iter()
                .map(|m| EtcdMember {
                    id: m.id.to_string(),
                    name: m.name,
                    peer_urls: m.peer_urls,
                    client_urls: m.client_urls,
                    learner: m.learner,
                    ..Default::default()
                })
                .collect(),
        };
        // A failing status or health leaves those fields unknown; the members stand.
        if let Ok(status) = etcdctl::parse_endpoint_status(a.stdout(etcdctl::STATUS)) {
            let leader = status.iter().map(|s| s.leader).find(|l| l.0 != 0);
            for m in &mut facts.members {
                let id = m.member_id();
                if let Some(s) = status.iter().find(|s| Some(s.member) == id) {
                    m.db_size = Some(s.db_size);
                }
                m.leader = leader.is_some() && leader == id;
            }
        }
        if let Ok(health) = etcdctl::parse_endpoint_health(a.stdout(etcdctl::HEALTH)) {
            for m in &mut facts.members {
                if let Some(h) = health.iter().find(|h| m.client_urls.contains(&h.endpoint)) {
                    m.healthy = Some(h.healthy);
                    m.health_error = h.error.clone();
                } else if !m.client_urls.is_empty() || m.learner {
                    // Listed but not checked: it never answered on any URL.
                    m.healthy = Some(false);
                }
            }
        }
        return facts;
    }
    let why = if failures.is_empty() {
        "no control plane's etcd pod was asked".to_string()
    } else {
        failures.join("; ")
    };
    if etcdctl_ran {
        EtcdFacts {
            error: Some(why),
            ..Default::default()
        }
    } else {
        EtcdFacts {
            unavailable: Some(why),
            ..Default::default()
        }
    }
}

/// crictl's note that no container matched its filters.
const NO_CONTAINER: &str = "No containers found per filter flags";

/// etcd itself answered with a failure: etcdctl's `Error: ...` line, or
/// kubectl's note that the command in the container exited non-zero; or the
/// API server relaying etcd's own error (`Error from server: etcdserver:
/// request timed out`): without quorum it cannot even look up the pod to
/// exec into. kubectl's other failures (`error: ...`, `Error from server
/// (NotFound): pods "etcd-NODE" not found`) say nothing about etcd.
fn etcdctl_failed(stderr: &str) -> bool {
    stderr.lines().any(|l| {
        let l = l.trim();
        l.starts_with("Error: ")
            || l.starts_with("command terminated with exit code")
            || l.contains("etcdserver: ")
    })
}

/// etcdctl's `Error: ...` line (its other stderr lines are JSON logs), or
/// kubectl's own last line.
fn etcd_error(stderr: &str) -> String {
    stderr
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("Error: "))
        .map(str::to_string)
        .unwrap_or_else(|| last_lines(stderr))
}

fn last_lines(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = &lines[lines.len().saturating_sub(2)..];
    if tail.is_empty() {
        "no output".into()
    } else {
        tail.join(" / ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real etcdctl 3.5 answers, three members, cp3 stopped.
    const MEMBERS: &str = r#"{"header":{"cluster_id":2080902606521301472,"member_id":18237323396582788712,"raft_term":2},"members":[{"ID":6172634855326815439,"name":"cp3","peerURLs":["http://127.24.0.3:2380"],"clientURLs":["http://127.24.0.3:2379"]},{"ID":14799900885922856741,"name":"cp2","peerURLs":["http://127.24.0.2:2380"],"clientURLs":["http://127.24.0.2:2379"]},{"ID":18237323396582788712,"name":"cp1","peerURLs":["http://127.24.0.1:2380"],"clientURLs":["http://127.24.0.1:2379"]}]}"#;
    const STATUS: &str = r#"[{"Endpoint":"http://127.24.0.2:2379","Status":{"header":{"cluster_id":2080902606521301472,"member_id":14799900885922856741,"revision":1,"raft_term":2},"version":"3.5.1","dbSize":24576,"leader":18237323396582788712,"raftIndex":14,"raftTerm":2,"raftAppliedIndex":14,"dbSizeInUse":16384}},{"Endpoint":"http://127.24.0.1:2379","Status":{"header":{"cluster_id":2080902606521301472,"member_id":18237323396582788712,"revision":1,"raft_term":2},"version":"3.5.1","dbSize":20480,"leader":18237323396582788712,"raftIndex":14,"raftTerm":2,"raftAppliedIndex":14,"dbSizeInUse":16384}}]"#;
    const HEALTH: &str = r#"[{"endpoint":"http://127.24.0.2:2379","health":true,"took":"3.645015ms"},{"endpoint":"http://127.24.0.1:2379","health":true,"took":"3.805937ms"},{"endpoint":"http://127.24.0.3:2379","health":false,"took":"5.00082803s","error":"context deadline exceeded"}]"#;
    const DEADLINE: &str = "{\"level\":\"warn\",\"msg\":\"retrying of unary invoker failed\"}\nError: context deadline exceeded\n";

    fn answer(sections: &[(&str, &str, i32)]) -> String {
        let mut s = String::from("banner\n");
        for (name, body, code) in sections {
            s.push_str(&format!(
                "@@gt {name}\n{body}\n\n@@gt {name}.exit\n{code}\n"
            ));
        }
        s.push_str("@@gt end\n");
        s
    }

    #[test]
    fn members_are_joined_with_their_health_leader_and_size() {
        let out = answer(&[
            ("members@cp1", MEMBERS, 0),
            ("status", STATUS, 1),
            ("health", HEALTH, 1),
        ]);
        let stderr = format!("@@gt members@cp1\n@@gt status\nFailed to get the status of endpoint http://127.24.0.3:2379 (context deadline exceeded)\n@@gt health\n{DEADLINE}@@gt end\n");
        let e = parse_etcd_query(&out, &stderr);
        assert_eq!(e.observed_via.as_deref(), Some("cp1"));
        assert!(e.readable());
        let cp3 = e.member_of("cp3", None).unwrap();
        assert_eq!(cp3.id, "55a99ab267f314cf");
        assert_eq!(cp3.healthy, Some(false));
        assert_eq!(
            cp3.health_error.as_deref(),
            Some("context deadline exceeded")
        );
        assert_eq!(cp3.db_size, None);
        let cp1 = e.member_of("cp1", None).unwrap();
        assert!(cp1.leader && cp1.is_healthy());
        assert_eq!(cp1.db_size, Some(20480));
        assert_eq!(e.leader().unwrap().name, "cp1");
        assert_eq!(
            e.quorum(),
            Quorum {
                voters: 3,
                healthy: 2
            }
        );
        assert!(e.quorum().holds());
    }

    #[test]
    fn the_next_pod_is_asked_when_one_fails_and_every_failure_is_kept() {
        let out = answer(&[("members@cp1", "", 1), ("members@cp2", "", 1)]);
        let stderr = format!("@@gt members@cp1\nerror: unable to upgrade connection: container not found (\"etcd\")\n@@gt members@cp2\n{DEADLINE}@@gt end\n");
        let e = parse_etcd_query(&out, &stderr);
        assert!(!e.readable());
        assert_eq!(
            e.error.as_deref(),
            Some("through etcd-cp1: error: unable to upgrade connection: container not found (\"etcd\") (exit 1); through etcd-cp2: context deadline exceeded (exit 1)")
        );
        let ok = answer(&[
            ("members@cp1", "", 1),
            ("members@cp2", MEMBERS, 0),
            ("status", STATUS, 0),
            ("health", HEALTH, 0),
        ]);
        assert_eq!(
            parse_etcd_query(&ok, "").observed_via.as_deref(),
            Some("cp2")
        );
    }

    #[test]
    fn no_etcd_container_through_kubectl_or_crictl_leaves_etcd_unknown_not_failed() {
        let usage = "NAME:\n   crictl exec - Run a command in a running container";
        let out = answer(&[("members@cp1", usage, 0)]);
        let stderr = "@@gt members@cp1\nError from server (NotFound): pods \"etcd-cp1\" not found\ntime=\"2026-11-30T00:00:00Z\" level=error msg=\"No containers found per filter flags\"\n@@gt end\n";
        let e = parse_etcd_query(&out, stderr);
        assert_eq!(e.error, None, "{e:?}");
        assert!(
            e.unavailable
                .as_deref()
                .is_some_and(|u| u.contains("No containers found")),
            "{e:?}"
        );
    }

    #[test]
    fn a_learner_does_not_vote_and_an_unstarted_one_is_found_by_address() {
        let list = r#"{"members":[{"ID":1,"name":"cp1","peerURLs":["https://10.4.0.11:2380"],"clientURLs":["https://10.4.0.11:2379"]},{"ID":255,"peerURLs":["https://10.4.0.12:2380"],"isLearner":true}]}"#;
        let health = r#"[{"endpoint":"https://10.4.0.11:2379","health":true,"took":"1ms"}]"#;
        let e = parse_etcd_query(
            &answer(&[
                ("members@cp1", list, 0),
                ("status", "[]", 0),
                ("health", health, 0),
            ]),
            "",
        );
        assert_eq!(
            e.quorum(),
            Quorum {
                voters: 1,
                healthy: 1
            }
        );
        let cp2 = e
            .member_of("cp2", Some(&"10.4.0.12".parse().unwrap()))
            .unwrap();
        assert_eq!(cp2.id, "ff");
        assert!(cp2.learner);
        assert_eq!(cp2.label(), "(unstarted) ff");
        assert!(e
            .member_of("cp3", Some(&"10.4.0.13".parse().unwrap()))
            .is_none());
    }

    #[test]
    fn no_etcd_pod_to_run_etcdctl_in_is_unavailable_not_lost_quorum() {
        let out = answer(&[("members@cp1", "", 1)]);
        let stderr = "@@gt members@cp1\nError from server (NotFound): pods \"etcd-cp1\" not found\n@@gt end\n";
        let e = parse_etcd_query(&out, stderr);
        assert!(!e.readable() && !e.asked());
        assert_eq!(e.error, None);
        assert_eq!(
            e.unavailable.as_deref(),
            Some("through etcd-cp1: Error from server (NotFound): pods \"etcd-cp1\" not found (exit 1)")
        );
        let relayed =
            "@@gt members@cp1\nError from server: etcdserver: request timed out\n@@gt end\n";
        let e = parse_etcd_query(&out, relayed);
        assert!(e.asked() && !e.readable());
        assert_eq!(
            e.error.as_deref(),
            Some("through etcd-cp1: Error from server: etcdserver: request timed out (exit 1)")
        );
        let stderr = "@@gt members@cp1\n{\"level\":\"warn\"}\nError: context deadline exceeded\ncommand terminated with exit code 1\n@@gt end\n";
        let e = parse_etcd_query(&out, stderr);
        assert!(e.asked() && !e.readable());
        assert_eq!(
            e.error.as_deref(),
            Some("through etcd-cp1: context deadline exceeded (exit 1)")
        );
    }

    #[test]
    fn a_cut_short_answer_is_a_reason_not_an_empty_member_list() {
        let e = parse_etcd_query("@@gt members@cp1\n{\"mem", "Connection reset");
        assert!(!e.asked());
        assert!(e.unavailable.unwrap().contains("cut short"));
    }

    #[test]
    fn old_facts_without_etcd_still_read() {
        let o = crate::facts::Observed::from_json(r#"{"format_version":1,"cluster":{"nodes":{}}}"#)
            .unwrap();
        assert_eq!(o.cluster.etcd, None);
    }
}
