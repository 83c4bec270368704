//! etcdctl, the way a kubeadm host allows it: inside the etcd static pod's
//! container (`kubectl -n kube-system exec etcd-NODE -- etcdctl ...`), with
//! the certificates kubeadm mounts into that pod (docs/kubeadm.md, "etcd").
//! The host itself has no etcdctl, and the pod's image has no shell, so
//! each etcdctl call is its own `kubectl exec`. Parsers read etcdctl 3.5's
//! `-w json` (member IDs are decimal there; etcdctl prints them in hex
//! everywhere else, and `member remove` takes hex).

use super::kubectl_admin;
use crate::transport::shell_join;
use serde::Deserialize;
use std::fmt;

/// The etcd client flags kubeadm's own documentation uses: the local member,
/// the etcd CA, and the health-check client certificate (a client of the
/// etcd CA; kubeadm does not enable etcd's own authentication, so any such
/// client may list and remove members). Paths inside the pod, not secrets.
pub(super) const ETCDCTL_CLIENT: [&str; 4] = [
    "--endpoints=https://127.0.0.1:2379",
    "--cacert=/etc/kubernetes/pki/etcd/ca.crt",
    "--cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt",
    "--key=/etc/kubernetes/pki/etcd/healthcheck-client.key",
];

/// How long one etcdctl call may wait for etcd (its own default is 5 s): a
/// cluster without quorum never answers, and observation must go on. It is
/// also what a dead member costs a `--cluster` read: etcdctl 3.5 dials
/// lazily, so `--dial-timeout` bounds nothing. Above the API server's own
/// etcd readiness check (2 s), so a slow but serving Pi is not called dead.
const COMMAND_TIMEOUT: &str = "--command-timeout=3s";

/// The etcd static pod of a control plane (kubeadm names it after the node).
pub fn pod_of(node: &str) -> String {
    format!("etcd-{node}")
}

/// `etcdctl ARGS` inside `node`'s etcd pod, through the admin kubeconfig.
pub fn etcdctl(node: &str, args: &[&str]) -> String {
    let pod = pod_of(node);
    let mut w: Vec<&str> = vec!["-n", "kube-system", "exec", &pod, "--", "etcdctl"];
    w.extend(ETCDCTL_CLIENT);
    w.push(COMMAND_TIMEOUT);
    w.extend(args);
    kubectl_admin(&shell_join(&w))
}

/// `etcdctl ARGS` in this host's own etcd container through its container
/// runtime (`crictl exec`), which needs neither the API server nor the
/// kubelet: what reads etcd on a control plane whose API is down. crictl
/// comes with kubeadm (cri-tools); `cri_socket` is the runtime's endpoint
/// (cluster.toml's `cri_socket`).
pub fn crictl_etcdctl(cri_socket: &str, args: &[&str]) -> String {
    let mut w: Vec<&str> = vec![
        "crictl",
        "--runtime-endpoint",
        cri_socket,
        "exec",
        "-q",
        "--name",
        "^etcd$",
        "etcdctl",
    ];
    w.extend(ETCDCTL_CLIENT);
    w.push(COMMAND_TIMEOUT);
    w.extend(args);
    shell_join(&w)
}

const MEMBER_LIST: [&str; 4] = ["member", "list", "-w", "json"];
const ENDPOINT_STATUS: [&str; 5] = ["endpoint", "status", "--cluster", "-w", "json"];
const ENDPOINT_HEALTH: [&str; 5] = ["endpoint", "health", "--cluster", "-w", "json"];

/// Every member (`member list -w json`).
pub fn member_list(node: &str) -> String {
    etcdctl(node, &MEMBER_LIST)
}

/// Each member's status: leader, DB size (`endpoint status --cluster -w json`).
pub fn endpoint_status(node: &str) -> String {
    etcdctl(node, &ENDPOINT_STATUS)
}

/// Each member's health: a committed proposal (`endpoint health --cluster -w json`).
pub fn endpoint_health(node: &str) -> String {
    etcdctl(node, &ENDPOINT_HEALTH)
}

/// Removes a member by its ID, through `via`'s etcd pod.
pub fn member_remove(via: &str, id: MemberId) -> String {
    let id = id.to_string();
    etcdctl(via, &["member", "remove", &id])
}

/// Section names of the etcd query's answer.
pub const MEMBERS: &str = "members@";
pub const STATUS: &str = "status";
pub const HEALTH: &str = "health";

/// Members, status and health at the same time, each section kept whole:
/// each is its own etcdctl in its own `kubectl exec` (a process start and a
/// round trip through the API server and kubelet), and status and health
/// ask every member, so a dead one costs each of them the command timeout.
/// Status and health go through the pod that listed the members; when the
/// members came through crictl instead (the API server could not reach the
/// pod), the two are asked again that way. Without a temporary directory the
/// three run one after the other.
fn at_once(status: bool) -> String {
    // With status off, its lines are left out (no process runs for it).
    let (start, print, in_turn) = if status {
        (
            "gt_status >\"$t/status\" 2>\"$t/status.err\" &\n",
            "gt_cat \"$t/status\"; gt_cat \"$t/status.err\" >&2\n",
            "gt_status; ",
        )
    } else {
        ("", "", "")
    };
    format!(
        "if t=$(mktemp -d); then\n\
         gt_members >\"$t/members\" 2>\"$t/members.err\" &\n\
         {start}\
         gt_health >\"$t/health\" 2>\"$t/health.err\" &\n\
         wait\n\
         gt_cat \"$t/members\"; gt_cat \"$t/members.err\" >&2\n\
         {{ read -r rc via <\"$t/members.rc\"; }} 2>/dev/null || rc=1\n\
         if [ \"$rc\" -eq 0 ]; then\n\
         listed=yes\n\
         if [ \"$via\" != kubectl ]; then\n\
         {start}\
         gt_health >\"$t/health\" 2>\"$t/health.err\" &\n\
         wait\n\
         fi\n\
         {print}\
         gt_cat \"$t/health\"; gt_cat \"$t/health.err\" >&2\n\
         fi\n\
         rm -rf \"$t\"\n\
         else\nt=\ngt_members\n\
         if [ \"$rc\" -eq 0 ]; then listed=yes; {in_turn}gt_health; fi\n\
         fi\n"
    )
}

/// Prints a file with the shell's builtins: `cat` would be one more process
/// per section.
const GT_CAT: &str =
    "gt_cat() { while IFS= read -r l || [ -n \"$l\" ]; do printf '%s\\n' \"$l\"; done <\"$1\"; }\n";

/// The reads in one remote shell, tried through each control plane's etcd
/// pod in turn (`pods`: node names, best first) until one lists the
/// members; health (and with `status`, each member's status: the leader and
/// database size) is asked at the same time, through that same pod (an
/// answer through a pod that could not list them is dropped). With
/// `own_runtime` (the CRI socket), `pods[0]` is the host the script runs
/// on, and when `kubectl exec` cannot reach its pod (the API server is
/// down, or has no quorum to look the pod up with) the same reads go
/// through `crictl exec` into its container. Each answer is a section
/// (`members@NODE`, `status`, `health`) with its exit status (`NAME.exit`),
/// on stdout and stderr alike, ended by `end`: the format of the cluster
/// query.
pub fn query_script(pods: &[&str], own_runtime: Option<&str>, status: bool, mark: &str) -> String {
    let section = |name: &str, command: &str| {
        format!(
            "echo '{mark}{name}'; echo '{mark}{name}' >&2\n{command}\nrc=$?\necho; echo '{mark}{name}.exit'; echo \"$rc\"\n"
        )
    };
    let mut s = format!("{GT_CAT}listed=\n");
    for (i, node) in pods.iter().enumerate() {
        let runtime = own_runtime.filter(|_| i == 0);
        let read = |args: &[&str]| match runtime {
            Some(socket) => format!(
                "if [ \"$via\" = crictl ]; then {}; else {}; fi",
                crictl_etcdctl(socket, args),
                etcdctl(node, args)
            ),
            None => etcdctl(node, args),
        };
        let members = match runtime {
            Some(socket) => format!(
                "{} || {{ via=crictl; {}; }}",
                member_list(node),
                crictl_etcdctl(socket, &MEMBER_LIST)
            ),
            None => member_list(node),
        };
        s.push_str("if [ -z \"$listed\" ]; then\nvia=kubectl\n");
        s.push_str(&format!(
            "gt_members() {{\n{}[ -z \"$t\" ] || echo \"$rc $via\" >\"$t/members.rc\"\n}}\n\
             gt_status() {{\n{}}}\ngt_health() {{\n{}}}\n{}",
            section(&format!("{MEMBERS}{node}"), &members),
            if status {
                section(STATUS, &read(&ENDPOINT_STATUS))
            } else {
                ":\n".to_string()
            },
            section(HEALTH, &read(&ENDPOINT_HEALTH)),
            at_once(status)
        ));
        s.push_str("fi\n");
    }
    s.push_str(&format!("echo '{mark}end'; echo '{mark}end' >&2\n"));
    s
}

/// An etcd member ID. etcd prints it as `%x` (lower-case hex, no padding) in
/// tables and takes it so in `member remove`; JSON carries it as a decimal
/// number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MemberId(pub u64);

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}", self.0)
    }
}

impl std::str::FromStr for MemberId {
    type Err = std::num::ParseIntError;
    /// Hex, as etcdctl prints it (and `member remove` accepts it).
    fn from_str(s: &str) -> Result<MemberId, Self::Err> {
        u64::from_str_radix(s.trim(), 16).map(MemberId)
    }
}

/// One entry of `member list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: MemberId,
    /// Empty while the member has not started (a learner just added).
    pub name: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
    pub learner: bool,
}

/// One entry of `endpoint status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointStatus {
    pub endpoint: String,
    pub member: MemberId,
    /// The member this one believes leads (0: none).
    pub leader: MemberId,
    pub db_size: u64,
    pub version: String,
}

/// One entry of `endpoint health`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointHealth {
    pub endpoint: String,
    pub healthy: bool,
    /// etcd's reason when not healthy (`context deadline exceeded`).
    pub error: Option<String>,
}

/// etcdctl printed what gt cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("etcdctl {what} -w json printed what gt cannot read: {why}")]
pub struct EtcdParseError {
    what: &'static str,
    why: String,
}

fn json<'a, T: Deserialize<'a>>(what: &'static str, text: &'a str) -> Result<T, EtcdParseError> {
    serde_json::from_str(text.trim()).map_err(|e| EtcdParseError {
        what,
        why: e.to_string(),
    })
}

#[derive(Deserialize)]
struct MemberListJson {
    #[serde(default)]
    members: Vec<MemberJson>,
}

#[derive(Deserialize)]
struct MemberJson {
    #[serde(rename = "ID")]
    id: u64,
    #[serde(default)]
    name: String,
    #[serde(default, rename = "peerURLs")]
    peer_urls: Vec<String>,
    #[serde(default, rename = "clientURLs")]
    client_urls: Vec<String>,
    /// etcd leaves it out unless true.
    #[serde(default, rename = "isLearner")]
    is_learner: bool,
}

/// `member list -w json`.
pub fn parse_member_list(text: &str) -> Result<Vec<Member>, EtcdParseError> {
    let list: MemberListJson = json("member list", text)?;
    Ok(list
        .members
        .into_iter()
        .map(|m| Member {
            id: MemberId(m.id),
            name: m.name,
            peer_urls: m.peer_urls,
            client_urls: m.client_urls,
            learner: m.is_learner,
        })
        .collect())
}

#[derive(Deserialize)]
struct StatusJson {
    #[serde(rename = "Endpoint")]
    endpoint: String,
    #[serde(rename = "Status")]
    status: StatusBody,
}

#[derive(Deserialize)]
struct StatusBody {
    header: StatusHeader,
    #[serde(default)]
    version: String,
    #[serde(default, rename = "dbSize")]
    db_size: u64,
    #[serde(default)]
    leader: u64,
}

#[derive(Deserialize)]
struct StatusHeader {
    member_id: u64,
}

/// `endpoint status --cluster -w json`. An endpoint that did not answer is
/// left out of the JSON (etcdctl names it on stderr and exits 1).
pub fn parse_endpoint_status(text: &str) -> Result<Vec<EndpointStatus>, EtcdParseError> {
    let list: Vec<StatusJson> = json("endpoint status", text)?;
    Ok(list
        .into_iter()
        .map(|s| EndpointStatus {
            endpoint: s.endpoint,
            member: MemberId(s.status.header.member_id),
            leader: MemberId(s.status.leader),
            db_size: s.status.db_size,
            version: s.status.version,
        })
        .collect())
}

#[derive(Deserialize)]
struct HealthJson {
    endpoint: String,
    health: bool,
    #[serde(default)]
    error: Option<String>,
}

/// `endpoint health --cluster -w json`. An unhealthy cluster still prints
/// every endpoint (then `Error: unhealthy cluster` on stderr, exit 1).
pub fn parse_endpoint_health(text: &str) -> Result<Vec<EndpointHealth>, EtcdParseError> {
    let list: Vec<HealthJson> = json("endpoint health", text)?;
    Ok(list
        .into_iter()
        .map(|h| EndpointHealth {
            endpoint: h.endpoint,
            healthy: h.health,
            error: h.error.filter(|e| !e.is_empty()),
        })
        .collect())
}

/// What `member remove` said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberRemoved {
    /// `Member %16x removed from cluster %16x`.
    Removed(MemberId),
    /// `Error: etcdserver: member not found` (exit 1): gone already.
    NotFound,
    /// Any other failure: etcd's `Error: ...` line.
    Failed(String),
}

pub fn parse_member_remove(code: i32, stdout: &str, stderr: &str) -> MemberRemoved {
    if code == 0 {
        let id = stdout.lines().find_map(|l| {
            let rest = l.trim().strip_prefix("Member ")?;
            let (id, _) = rest.split_once(" removed from cluster ")?;
            id.trim().parse().ok()
        });
        if let Some(id) = id {
            return MemberRemoved::Removed(id);
        }
    }
    let error = stderr
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("Error: "))
        .unwrap_or_else(|| stderr.trim())
        .to_string();
    if error == "etcdserver: member not found" {
        return MemberRemoved::NotFound;
    }
    if error.is_empty() {
        return MemberRemoved::Failed(format!("exit {code}: {}", stdout.trim()));
    }
    MemberRemoved::Failed(error)
}

/// The host part of a URL (`https://10.4.0.11:2380` → `10.4.0.11`;
/// brackets of an IPv6 address removed).
pub fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next()?;
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split_once(']').map(|(h, _)| h);
    }
    Some(authority.rsplit_once(':').map_or(authority, |(h, _)| h))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KC: &str = r#"kubectl --kubeconfig "${GT_HOST_ROOT}/etc/kubernetes/admin.conf""#;
    const CLIENT: &str = "--endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt --cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt --key=/etc/kubernetes/pki/etcd/healthcheck-client.key --command-timeout=3s";

    // Real etcdctl 3.5 output (three members on loopback, one learner added).
    const MEMBER_LIST: &str = r#"{"header":{"cluster_id":2080902606521301472,"member_id":18237323396582788712,"raft_term":2},"members":[{"ID":6172634855326815439,"name":"cp3","peerURLs":["http://127.24.0.3:2380"],"clientURLs":["http://127.24.0.3:2379"]},{"ID":14799900885922856741,"name":"cp2","peerURLs":["http://127.24.0.2:2380"],"clientURLs":["http://127.24.0.2:2379"]},{"ID":16616126154378681199,"peerURLs":["http://127.24.0.4:2380"],"isLearner":true},{"ID":18237323396582788712,"name":"cp1","peerURLs":["http://127.24.0.1:2380"],"clientURLs":["http://127.24.0.1:2379"]}]}"#;
    const STATUS_ONE_DOWN: &str = r#"[{"Endpoint":"http://127.24.0.2:2379","Status":{"header":{"cluster_id":2080902606521301472,"member_id":14799900885922856741,"revision":1,"raft_term":2},"version":"3.5.1","dbSize":24576,"leader":18237323396582788712,"raftIndex":14,"raftTerm":2,"raftAppliedIndex":14,"dbSizeInUse":16384}},{"Endpoint":"http://127.24.0.1:2379","Status":{"header":{"cluster_id":2080902606521301472,"member_id":18237323396582788712,"revision":1,"raft_term":2},"version":"3.5.1","dbSize":20480,"leader":18237323396582788712,"raftIndex":14,"raftTerm":2,"raftAppliedIndex":14,"dbSizeInUse":16384}}]"#;
    const HEALTH_ONE_DOWN: &str = r#"[{"endpoint":"http://127.24.0.2:2379","health":true,"took":"3.645015ms"},{"endpoint":"http://127.24.0.1:2379","health":true,"took":"3.805937ms"},{"endpoint":"http://127.24.0.3:2379","health":false,"took":"5.00082803s","error":"context deadline exceeded"}]"#;

    #[test]
    fn etcdctl_runs_in_the_etcd_pod_with_kubeadms_certificates() {
        assert_eq!(
            member_list("bettley"),
            format!(
                "{KC} -n kube-system exec etcd-bettley -- etcdctl {CLIENT} member list -w json"
            )
        );
        assert_eq!(
            endpoint_status("cargyll"),
            format!("{KC} -n kube-system exec etcd-cargyll -- etcdctl {CLIENT} endpoint status --cluster -w json")
        );
        assert_eq!(
            endpoint_health("dalt"),
            format!("{KC} -n kube-system exec etcd-dalt -- etcdctl {CLIENT} endpoint health --cluster -w json")
        );
        assert_eq!(
            member_remove("bettley", MemberId(16616126154378681199)),
            format!("{KC} -n kube-system exec etcd-bettley -- etcdctl {CLIENT} member remove e69856b38ed19b6f")
        );
    }

    #[test]
    fn the_query_tries_each_pod_until_one_lists_the_members() {
        let s = query_script(&["bettley", "cargyll"], None, true, "@@gt ");
        let bettley = s.find(&member_list("bettley")).unwrap();
        let cargyll = s.find(&member_list("cargyll")).unwrap();
        assert!(bettley < cargyll);
        assert!(s.contains("echo '@@gt members@cargyll'; echo '@@gt members@cargyll' >&2\n"));
        assert!(s.contains(&endpoint_health("cargyll")));
        assert!(s.ends_with("echo '@@gt end'; echo '@@gt end' >&2\n"));
        // Runs as sh: with no kubectl, every attempt is a section with its exit.
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("PATH=/nonexistent\n{s}"))
            .output()
            .unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            stdout,
            "@@gt members@bettley\n\n@@gt members@bettley.exit\n127\n@@gt members@cargyll\n\n@@gt members@cargyll.exit\n127\n@@gt end\n"
        );
    }

    #[test]
    fn crictl_runs_etcdctl_in_the_hosts_own_etcd_container() {
        assert_eq!(
            crictl_etcdctl(
                "unix:///var/run/containerd/containerd.sock",
                &super::MEMBER_LIST
            ),
            format!("crictl --runtime-endpoint unix:///var/run/containerd/containerd.sock exec -q --name '^etcd$' etcdctl {CLIENT} member list -w json")
        );
    }

    /// Runs `script` as sh with `kubectl` and `crictl` as given (shell
    /// bodies); stdout.
    fn run_with(script: &str, kubectl: &str, crictl: &str) -> String {
        run_with_stderr(script, kubectl, crictl).0
    }

    /// [`run_with`], stdout and stderr.
    fn run_with_stderr(script: &str, kubectl: &str, crictl: &str) -> (String, String) {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        for (name, body) in [("kubectl", kubectl), ("crictl", crictl)] {
            let p = dir.path().join(name);
            std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "PATH={}:/usr/bin:/bin\n{script}",
                dir.path().display()
            ))
            .output()
            .unwrap();
        (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    }

    #[test]
    fn members_status_and_health_run_at_once_and_keep_their_sections_whole() {
        let s = query_script(&["bettley"], None, true, "@@gt ");
        // Each of the three waits (bounded) for the other two to have
        // started: one after the other, the first would find itself alone.
        let kubectl = r#"shift $(($# - 4)); d=$(dirname "$0")
touch "$d/$1"; i=0
while { [ ! -e "$d/member" ] || [ ! -e "$d/status" ] || [ ! -e "$d/health" ]; } && [ $i -lt 100 ]; do
  sleep 0.05; i=$((i + 1))
done
n=$(ls "$d" | grep -c -x -e member -e status -e health)
case $1 in
member) echo "members with $n started" ;;
*) echo "$1 with $n started"; echo "$1 complains" >&2; exit 1 ;;
esac"#;
        let (stdout, stderr) = run_with_stderr(&s, kubectl, "exit 1");
        assert_eq!(
            stdout,
            "@@gt members@bettley\nmembers with 3 started\n\n@@gt members@bettley.exit\n0\n\
             @@gt status\nstatus with 3 started\n\n@@gt status.exit\n1\n\
             @@gt health\nhealth with 3 started\n\n@@gt health.exit\n1\n@@gt end\n"
        );
        assert_eq!(
            stderr,
            "@@gt members@bettley\n@@gt status\nstatus complains\n@@gt health\nhealth complains\n@@gt end\n"
        );
    }

    #[test]
    fn without_status_no_member_is_asked_its_status() {
        let s = query_script(&["bettley"], None, false, "@@gt ");
        assert!(!s.contains("endpoint status"), "{s}");
        // Nor does anything start in its place; files are printed by builtins.
        assert!(!s.contains("gt_status >"), "{s}");
        let mut words = s.split(|c: char| !c.is_alphanumeric() && c != '_');
        assert!(!words.any(|w| w == "cat"), "{s}");
        let kubectl = r#"shift $(($# - 4)); echo "$1""#;
        assert_eq!(
            run_with(&s, kubectl, "exit 1"),
            "@@gt members@bettley\nmember\n\n@@gt members@bettley.exit\n0\n\
             @@gt health\nhealth\n\n@@gt health.exit\n0\n@@gt end\n"
        );
    }

    #[test]
    fn status_and_health_through_a_pod_that_could_not_list_the_members_are_dropped() {
        let s = query_script(&["bettley", "cargyll"], None, true, "@@gt ");
        // bettley's pod is gone; cargyll's answers all three.
        let kubectl = r#"case " $* " in
*" etcd-bettley "*) echo 'Error from server (NotFound): pods "etcd-bettley" not found' >&2; exit 1 ;;
esac
shift $(($# - 4)); echo "cargyll $1""#;
        assert_eq!(
            run_with(&s, kubectl, "exit 1"),
            "@@gt members@bettley\n\n@@gt members@bettley.exit\n1\n\
             @@gt members@cargyll\ncargyll member\n\n@@gt members@cargyll.exit\n0\n\
             @@gt status\ncargyll status\n\n@@gt status.exit\n0\n\
             @@gt health\ncargyll health\n\n@@gt health.exit\n0\n@@gt end\n"
        );
    }

    #[test]
    fn with_the_api_down_the_own_pod_is_read_through_crictl() {
        let socket = "unix:///var/run/containerd/containerd.sock";
        let s = query_script(&["bettley", "cargyll"], Some(socket), true, "@@gt ");
        // crictl answers with the etcdctl verb it ran (its last arguments).
        let crictl = r#"shift $(($# - 2)); echo "crictl $1 $2""#;
        let refused = "echo 'The connection to the server 127.4.0.10:6443 was refused' >&2; exit 1";
        assert_eq!(
            run_with(&s, refused, crictl),
            "@@gt members@bettley\ncrictl -w json\n\n@@gt members@bettley.exit\n0\n\
             @@gt status\ncrictl -w json\n\n@@gt status.exit\n0\n\
             @@gt health\ncrictl -w json\n\n@@gt health.exit\n0\n@@gt end\n"
        );
        // The API answers: crictl is never asked; another host's pod never
        // goes through this host's runtime.
        let kubectl = r#"shift $(($# - 2)); echo "kubectl $1 $2""#;
        let out = run_with(&s, kubectl, "echo crictl; exit 1");
        assert!(!out.contains("crictl"), "{out}");
        let only_other = query_script(&["cargyll"], None, true, "@@gt ");
        assert!(!only_other.contains("crictl"));
        assert!(!s[s.find("members@cargyll").unwrap()..]
            .contains(&crictl_etcdctl(socket, &super::MEMBER_LIST)));
    }

    #[test]
    fn member_ids_are_decimal_in_json_and_hex_everywhere_else() {
        let m = parse_member_list(MEMBER_LIST).unwrap();
        assert_eq!(m.len(), 4);
        assert_eq!(m[0].id.to_string(), "55a99ab267f314cf");
        assert_eq!(m[0].name, "cp3");
        assert_eq!(m[0].peer_urls, ["http://127.24.0.3:2380"]);
        assert!(!m[0].learner);
        // The unstarted learner: no name, no client URL.
        assert_eq!(m[2].id.to_string(), "e69856b38ed19b6f");
        assert_eq!(m[2].name, "");
        assert!(m[2].client_urls.is_empty());
        assert!(m[2].learner);
        assert_eq!(
            "e69856b38ed19b6f".parse(),
            Ok(MemberId(16616126154378681199))
        );
        assert_eq!(MemberId(0xabc).to_string(), "abc");
    }

    #[test]
    fn status_names_the_leader_and_each_db_size() {
        let s = parse_endpoint_status(STATUS_ONE_DOWN).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].endpoint, "http://127.24.0.2:2379");
        assert_eq!(s[0].member.to_string(), "cd63cf71486bbf25");
        assert_eq!(s[0].leader.to_string(), "fd17fd00f33cce68");
        assert_eq!(s[0].db_size, 24576);
        assert_eq!(s[0].version, "3.5.1");
        assert!(parse_endpoint_status("Error: context deadline exceeded").is_err());
    }

    #[test]
    fn an_unhealthy_cluster_still_lists_every_endpoint() {
        let h = parse_endpoint_health(HEALTH_ONE_DOWN).unwrap();
        assert_eq!(h.len(), 3);
        assert!(h[0].healthy && h[0].error.is_none());
        assert!(!h[2].healthy);
        assert_eq!(h[2].error.as_deref(), Some("context deadline exceeded"));
    }

    #[test]
    fn member_remove_tells_removed_from_gone_from_failed() {
        assert_eq!(
            parse_member_remove(
                0,
                "Member e69856b38ed19b6f removed from cluster 1ce0d9e541e2f9e0\n",
                ""
            ),
            MemberRemoved::Removed(MemberId(16616126154378681199))
        );
        // `%16x` pads a short ID with spaces.
        assert_eq!(
            parse_member_remove(
                0,
                "Member              abc removed from cluster 1ce0d9e541e2f9e0\n",
                ""
            ),
            MemberRemoved::Removed(MemberId(0xabc))
        );
        let not_found = "{\"level\":\"warn\",\"msg\":\"retrying of unary invoker failed\",\"error\":\"rpc error: code = NotFound desc = etcdserver: member not found\"}\nError: etcdserver: member not found\n";
        assert_eq!(
            parse_member_remove(1, "", not_found),
            MemberRemoved::NotFound
        );
        assert_eq!(
            parse_member_remove(
                1,
                "",
                "Error: etcdserver: re-configuration failed due to not enough started members\n"
            ),
            MemberRemoved::Failed(
                "etcdserver: re-configuration failed due to not enough started members".into()
            )
        );
    }

    #[test]
    fn url_hosts() {
        assert_eq!(url_host("https://10.4.0.11:2380"), Some("10.4.0.11"));
        assert_eq!(url_host("https://[fd00::11]:2380"), Some("fd00::11"));
        assert_eq!(url_host("http://cp1"), Some("cp1"));
    }
}
