//! Observing live hosts: every host probed in parallel (at most
//! `parallelism` at once), the cluster read through one healthy control
//! plane, starting as soon as its login is up. An unreachable or hanging host becomes
//! a fact; nothing here fails because of a host.

use super::probe::{
    cluster_query_script, join_cluster_answers, parse_cluster_query, parse_probe, ClusterQuery,
};
use super::{ApiReadiness, ClusterFacts, HostFacts, Observed, FACTS_FORMAT_VERSION};
use crate::spec::{Node, Spec};
use crate::transport::{run_each, secs, Cmd, Hosts, TransportError, TransportOptions};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Options of one observation.
#[derive(Debug, Clone)]
pub struct ObserveOptions {
    /// At most this many hosts probed at once (`crate::parallelism::OBSERVE`
    /// unless `--parallelism` says otherwise).
    pub parallelism: usize,
    /// Deadline of each host's probe and of the cluster query.
    pub timeout: Duration,
    pub transport: TransportOptions,
    /// Ask etcd itself too (one more command on the control plane the Node
    /// list came through). Off only to measure what that costs:
    /// `GT_SKIP_ETCD_FACTS=1` (README, "etcd").
    pub etcd: bool,
    /// Also ask etcd each member's status (who leads, the database's size),
    /// which only `gt status` and `gt observe` show: one more etcdctl in the
    /// etcd pod, each member asked over its own TLS connection.
    pub etcd_status: bool,
}

impl Default for ObserveOptions {
    fn default() -> Self {
        ObserveOptions {
            parallelism: crate::parallelism::OBSERVE,
            timeout: Duration::from_secs(30),
            transport: TransportOptions::default(),
            etcd: std::env::var_os("GT_SKIP_ETCD_FACTS").is_none_or(|v| v.is_empty() || v == "0"),
            etcd_status: false,
        }
    }
}

/// Why gt itself could not observe (hosts failing are facts, not errors).
#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    #[error(transparent)]
    Transport(Box<TransportError>),
    #[error("could not start gt's async runtime: {0}")]
    Runtime(std::io::Error),
}

impl From<TransportError> for ObserveError {
    fn from(e: TransportError) -> Self {
        ObserveError::Transport(Box::new(e))
    }
}

/// A runtime for gt's host I/O (for callers that are not async).
pub fn runtime() -> Result<tokio::runtime::Runtime, ObserveError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(ObserveError::Runtime)
}

/// Probes every host of the spec and the cluster through one healthy control
/// plane; opens and closes its own connections.
pub fn observe(spec: &Spec, opts: &ObserveOptions) -> Result<Observed, ObserveError> {
    let rt = runtime()?;
    let hosts = Hosts::new(&spec.nodes, &opts.transport)?;
    Ok(rt.block_on(async {
        let observed = observe_with(spec, &hosts, opts).await;
        hosts.close().await;
        observed
    }))
}

/// Observes through connections the caller owns (and closes): `apply`
/// observes and then acts over the same connections.
pub async fn observe_with(spec: &Spec, hosts: &Hosts, opts: &ObserveOptions) -> Observed {
    // Control planes say when their login is up and hand their facts to the
    // cluster query as they arrive, in file order, so that it starts while
    // workers (and the control plane's own probe) are still answering.
    let mut senders = BTreeMap::new();
    let mut control_planes = Vec::new();
    for n in spec.nodes.iter().filter(|n| n.is_control_plane()) {
        let (connected_tx, connected) = oneshot::channel();
        let (facts_tx, facts) = oneshot::channel();
        senders.insert(n.name.to_string(), (connected_tx, facts_tx));
        control_planes.push(ControlPlaneProbe {
            name: n.name.to_string(),
            connected,
            facts,
        });
    }
    let probes = run_each(&spec.nodes, opts.parallelism, |node| {
        let tx = senders.remove(node.name.as_str());
        async move {
            let (connected, facts_tx) = match tx {
                Some((c, f)) => (Some(c), Some(f)),
                None => (None, None),
            };
            let facts = probe_node(
                hosts,
                node,
                &super::probe_script(spec, node),
                opts.timeout,
                connected,
            )
            .await;
            if let Some(tx) = facts_tx {
                let _ = tx.send(facts.clone());
            }
            (node.name.to_string(), facts)
        }
    });
    let api_servers: Vec<(String, std::net::IpAddr)> = spec
        .control_planes()
        .filter(|n| n.is_present())
        .map(|n| (n.name.to_string(), n.address))
        .collect();
    let (hosts_facts, cluster) = tokio::join!(
        probes,
        observe_cluster(
            hosts,
            control_planes,
            &api_servers,
            &spec.cluster.cri_socket,
            opts
        )
    );
    Observed {
        format_version: FACTS_FORMAT_VERSION,
        hosts: hosts_facts.into_iter().collect(),
        cluster,
    }
}

/// A control plane's probe as the cluster query waits on it: told when its
/// login is up (the sender dropped: it failed), then its facts.
struct ControlPlaneProbe {
    name: String,
    connected: oneshot::Receiver<()>,
    facts: oneshot::Receiver<HostFacts>,
}

/// `connected` is told as soon as the host's connection is up.
async fn probe_node(
    hosts: &Hosts,
    node: &Node,
    script: &str,
    timeout: Duration,
    connected: Option<oneshot::Sender<()>>,
) -> HostFacts {
    let started = Instant::now();
    let name = node.name.as_str();
    let host = match hosts.get(name).await {
        Ok(h) => h,
        Err(e) => return HostFacts::unreachable(reason_with_time(&e, started)),
    };
    if let Some(tx) = connected {
        let _ = tx.send(());
    }
    match host
        .run(&Cmd::new(script).label("gt probe").timeout(timeout), None)
        .await
    {
        Ok(out) => parse_probe(&out.stdout).unwrap_or_else(|e| {
            HostFacts::unreachable(format!(
                "{e} (exit {}; stderr: {})",
                out.code,
                out.stderr.trim()
            ))
        }),
        Err(e) => HostFacts::unreachable(reason_with_time(&e, started)),
    }
}

/// The error's reason, saying after how long when it does not already.
fn reason_with_time(e: &TransportError, started: Instant) -> String {
    let reason = e.reason();
    if reason.contains(" after ") || reason.contains(" within ") {
        reason
    } else {
        format!("{reason} (after {})", secs(started.elapsed()))
    }
}

/// How long one control plane's own `/readyz` may take in the cluster query.
const PER_API_SERVER_TIMEOUT: Duration = Duration::from_secs(5);

/// Nodes and readiness through the first control plane (file order) that
/// answered its probe with an admin kubeconfig; the next one if that fails.
/// The queries start as soon as a control plane's login is up, beside its
/// probe; what they found counts only once the probe says the host is
/// reachable and has an admin kubeconfig.
async fn observe_cluster(
    hosts: &Hosts,
    control_planes: Vec<ControlPlaneProbe>,
    api_servers: &[(String, std::net::IpAddr)],
    cri_socket: &str,
    opts: &ObserveOptions,
) -> ClusterFacts {
    let timeout = opts.timeout;
    let mut last_api: Option<ApiReadiness> = None;
    // What etcd said where the Node list could not be read: without quorum
    // no API server answers, and etcd's own answer says why.
    let mut etcd_without_api: Option<super::EtcdFacts> = None;
    for ControlPlaneProbe {
        name,
        connected,
        facts,
    } in control_planes
    {
        if connected.await.is_err() {
            continue;
        }
        let Ok(host) = hosts.get(&name).await else {
            continue;
        };
        // etcd through this control plane's own pod, alongside the Node list
        // (one more command, not one more round trip after it).
        let etcd_here = async {
            if opts.etcd {
                let own = Some(cri_socket);
                Some(
                    observe_etcd(
                        host.as_ref(),
                        &[name.as_str()],
                        own,
                        opts.etcd_status,
                        timeout,
                    )
                    .await,
                )
            } else {
                None
            }
        };
        let (facts, answer, etcd_here) = tokio::join!(
            facts,
            cluster_query(host.as_ref(), api_servers, timeout),
            etcd_here
        );
        let Ok(facts) = facts else { continue };
        if !facts.is_reachable() || !facts.admin_conf {
            continue;
        }
        match answer {
            Ok(out) => {
                let ClusterQuery {
                    nodes,
                    mut api,
                    api_servers,
                    kubernetes_version,
                } = parse_cluster_query(&out.0, &out.1);
                match nodes {
                    Ok(nodes) => {
                        if !api.ready && api.failed_checks.is_empty() {
                            api = reask_readyz(host.as_ref(), timeout, api).await;
                        }
                        let etcd = match etcd_here {
                            Some(e) if !e.readable() => Some(
                                etcd_elsewhere(
                                    host.as_ref(),
                                    &name,
                                    &nodes,
                                    e,
                                    opts.etcd_status,
                                    timeout,
                                )
                                .await,
                            ),
                            e => e,
                        };
                        return ClusterFacts {
                            observed_via: Some(name),
                            ca_pin: facts.ca_pin.clone(),
                            api,
                            api_servers,
                            nodes,
                            kubernetes_version,
                            workloads: None,
                            etcd,
                        };
                    }
                    Err(why) => {
                        if etcd_here.as_ref().is_some_and(|e| e.asked()) {
                            etcd_without_api = etcd_here;
                        }
                        last_api = Some(ApiReadiness {
                            ready: false,
                            failed_checks: api.failed_checks,
                            error: Some(format!("through {name}: {why}")),
                        })
                    }
                }
            }
            Err(e) => {
                last_api = Some(ApiReadiness {
                    ready: false,
                    failed_checks: vec![],
                    error: Some(format!("through {name}: {}", e.reason())),
                })
            }
        }
    }
    ClusterFacts {
        api: last_api.unwrap_or_default(),
        etcd: etcd_without_api,
        ..Default::default()
    }
}

/// The cluster query over `host`'s one connection: one session, its
/// kubectls at once; its (stdout, stderr) with the end marker.
async fn cluster_query(
    host: &dyn crate::transport::Host,
    api_servers: &[(String, std::net::IpAddr)],
    timeout: Duration,
) -> Result<(String, String), TransportError> {
    let cmd = Cmd::new(cluster_query_script(
        api_servers,
        timeout.min(PER_API_SERVER_TIMEOUT),
    ))
    .label("gt cluster query (kubectl get nodes, /readyz)")
    .timeout(timeout);
    let out = host.run(&cmd, None).await?;
    Ok(join_cluster_answers([(
        out.stdout.as_str(),
        out.stderr.as_str(),
    )]))
}

/// Pods and PodDisruptionBudgets through the control plane the cluster was
/// observed through (for a plan that drains nodes); `None` when there is
/// none or it did not answer both lists (the plan then predicts no drain).
pub async fn observe_workloads(
    hosts: &Hosts,
    observed: &Observed,
    timeout: Duration,
) -> Option<super::Workloads> {
    let via = observed.cluster.observed_via.as_deref()?;
    let host = hosts.get(via).await.ok()?;
    let cmd = Cmd::new(super::workloads_query_script())
        .label("gt workloads query (kubectl get pods, pdb)")
        .timeout(timeout);
    let out = host.run(&cmd, None).await.ok()?;
    super::parse_workloads_query(&out.stdout).ok()
}

/// etcd's members, health, leader and size in one command on `host`,
/// through the etcd pod of each of `pods` in turn until one lists them
/// (with `own_runtime`, `pods[0]` is `host`'s own, also reachable with crictl).
async fn observe_etcd(
    host: &dyn crate::transport::Host,
    pods: &[&str],
    own_runtime: Option<&str>,
    status: bool,
    timeout: Duration,
) -> super::EtcdFacts {
    // Nothing at all on a host without an admin kubeconfig: the query may
    // start before the probe has said whether there is one.
    let script = format!(
        "{}{}",
        super::probe::NOTHING_WITHOUT_ADMIN_CONF,
        crate::kube::etcd::query_script(pods, own_runtime, status, super::probe::MARK)
    );
    let label = if status {
        "gt etcd query (etcdctl member list, endpoint status, endpoint health)"
    } else {
        "gt etcd query (etcdctl member list, endpoint health)"
    };
    let cmd = Cmd::new(script).label(label).timeout(timeout);
    match host.run(&cmd, None).await {
        Ok(out) => super::parse_etcd_query(&out.stdout, &out.stderr),
        Err(e) => super::EtcdFacts {
            unavailable: Some(format!("through {}: {}", pods.join(", "), e.reason())),
            ..Default::default()
        },
    }
}

/// `via`'s own etcd pod could not list the members: ask the other Ready
/// control-plane Nodes' pods (`kubectl exec` needs the node's kubelet, and
/// one that is gone can hold the exec until the query's deadline). Every
/// failure is kept; etcdctl's own failure anywhere outweighs a missing pod.
async fn etcd_elsewhere(
    host: &dyn crate::transport::Host,
    via: &str,
    nodes: &BTreeMap<String, super::NodeFacts>,
    first: super::EtcdFacts,
    status: bool,
    timeout: Duration,
) -> super::EtcdFacts {
    let others: Vec<&str> = nodes
        .iter()
        .filter(|(name, n)| {
            name.as_str() != via && n.is_control_plane() && n.ready == super::ReadyStatus::True
        })
        .map(|(name, _)| name.as_str())
        .collect();
    if others.is_empty() {
        return first;
    }
    let second = observe_etcd(host, &others, None, status, timeout).await;
    if second.readable() {
        return second;
    }
    let reasons = |e: &super::EtcdFacts| e.error.clone().or_else(|| e.unavailable.clone());
    let why: Vec<String> = [reasons(&first), reasons(&second)]
        .into_iter()
        .flatten()
        .collect();
    let why = Some(why.join("; "));
    if first.error.is_some() || second.error.is_some() {
        super::EtcdFacts {
            error: why,
            ..Default::default()
        }
    } else {
        super::EtcdFacts {
            unavailable: why,
            ..Default::default()
        }
    }
}

/// The endpoint did not answer at all (no failing check named): behind a
/// load balancer that is often one request reaching a server that just died,
/// before the balancer's next health check. Ask again, at most twice, 200 ms
/// apart, over the same connection; a real outage stays an outage.
async fn reask_readyz(
    host: &dyn crate::transport::Host,
    timeout: Duration,
    first: ApiReadiness,
) -> ApiReadiness {
    let mut last = first;
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let cmd = Cmd::new(crate::kube::get_readyz_verbose())
            .label("kubectl get --raw /readyz?verbose")
            .timeout(timeout);
        match host.run(&cmd, None).await {
            Ok(out) => {
                last = crate::kube::readyz::parse(out.code, &out.stdout, &out.stderr).into();
                if last.ready || !last.failed_checks.is_empty() {
                    return last;
                }
            }
            Err(_) => return last,
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::ReadyStatus;
    use crate::transport::fake::{FakeHost, Reply};
    use crate::transport::{BoxFuture, Host};
    use std::path::Path;
    use std::sync::{Arc, Mutex};

    const SPEC: &str = r#"
[cluster]
name = "goldentooth"
kubernetes_version = "1.32"
endpoint = "10.4.0.10:6443"
pod_cidr = "192.168.0.0/16"
service_cidr = "172.16.0.0/20"
[cluster.cni]
name = "calico"
manifest = "https://example.invalid/calico.yaml"
[defaults]
arch = "arm64"
[nodes.bettley]
role = "control-plane"
address = "10.4.0.11"
[nodes.cargyll]
role = "control-plane"
address = "10.4.0.12"
[nodes.dalt]
role = "control-plane"
address = "10.4.0.13"
[nodes.fenn]
role = "worker"
address = "10.4.0.15"
[nodes.velaryon]
role = "worker"
address = "10.4.1.10"
arch = "amd64"
"#;

    fn spec() -> Spec {
        crate::spec::load_str(SPEC, Path::new("cluster.toml")).expect("valid spec")
    }

    fn probe_answer(name: &str, machine: &str, control_plane: bool) -> Reply {
        let mut s = format!(
            "@@gt host\nhostname={name}\nmachine={machine}\nkubeadm=v1.32.4\nkubelet=Kubernetes v1.32.4\nkubelet_active=active\nkubelet_conf=yes\n"
        );
        if control_plane {
            s.push_str("admin_conf=yes\nmanifest=kube-apiserver.yaml\n");
        }
        s.push_str("@@gt ca.crt\n@@gt end\n");
        Reply::ok(s)
    }

    const CLUSTER_OK: &str = "@@gt nodes\n{\"items\":[{\"metadata\":{\"name\":\"bettley\"},\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"True\"}]}}]}\n\
        @@gt nodes.exit\n0\n@@gt readyz\n[+]ping ok\n[+]etcd ok\nreadyz check passed\n@@gt readyz.exit\n0\n@@gt end\n";

    type Fakes = Arc<Mutex<BTreeMap<String, Arc<FakeHost>>>>;

    fn hosts_of(spec: &Spec, fakes: Vec<FakeHost>) -> (Hosts, Fakes) {
        let map: Fakes = Arc::new(Mutex::new(
            fakes
                .into_iter()
                .map(|f| (f.name().to_string(), Arc::new(f)))
                .collect(),
        ));
        let m = map.clone();
        let hosts = Hosts::with_connector(&spec.nodes, move |node| -> BoxFuture<'static, _> {
            let found = m.lock().unwrap().get(node.name.as_str()).cloned();
            let name = node.name.to_string();
            Box::pin(async move {
                found
                    .map(|f| f as Arc<dyn Host>)
                    .ok_or(TransportError::ConnectionRefused {
                        host: name,
                        address: "10.4.0.15:22".into(),
                        after: "0.0 s".into(),
                        names: Default::default(),
                    })
            })
        });
        (hosts, map)
    }

    fn observe_fakes(fakes: Vec<FakeHost>, parallelism: usize) -> (Observed, Fakes) {
        let spec = spec();
        let (hosts, map) = hosts_of(&spec, fakes);
        let opts = ObserveOptions {
            parallelism,
            timeout: Duration::from_millis(200),
            ..Default::default()
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let o = rt.block_on(observe_with(&spec, &hosts, &opts));
        (o, map)
    }

    #[test]
    fn every_host_is_probed_and_the_cluster_read_through_the_first_control_plane() {
        let (o, fakes) = observe_fakes(
            vec![
                FakeHost::new("bettley")
                    .on("@@gt host", probe_answer("bettley", "aarch64", true))
                    .on("get nodes -o json", Reply::ok(CLUSTER_OK)),
                FakeHost::new("cargyll").on("@@gt host", probe_answer("cargyll", "aarch64", true)),
                FakeHost::new("dalt").on("@@gt host", probe_answer("dalt", "aarch64", true)),
                FakeHost::new("fenn").on("@@gt host", probe_answer("fenn", "aarch64", false)),
                FakeHost::new("velaryon")
                    .on("@@gt host", probe_answer("velaryon", "x86_64", false)),
            ],
            10,
        );
        assert_eq!(
            o.hosts.keys().collect::<Vec<_>>(),
            vec!["bettley", "cargyll", "dalt", "fenn", "velaryon"]
        );
        assert_eq!(o.hosts["velaryon"].arch.as_deref(), Some("amd64"));
        assert_eq!(o.cluster.observed_via.as_deref(), Some("bettley"));
        assert!(o.cluster.api.ready);
        assert_eq!(o.cluster.nodes["bettley"].ready, ReadyStatus::True);
        let fakes = fakes.lock().unwrap();
        assert_eq!(
            fakes["bettley"].commands().len(),
            3,
            "probe + the cluster query + one etcd query"
        );
        assert_eq!(fakes["cargyll"].commands().len(), 1, "probe only");
    }

    #[test]
    fn etcd_is_read_through_the_same_control_plane_in_one_command() {
        let members = r#"{"members":[{"ID":1,"name":"bettley","peerURLs":["https://10.4.0.11:2380"],"clientURLs":["https://10.4.0.11:2379"]}]}"#;
        let status = r#"[{"Endpoint":"https://10.4.0.11:2379","Status":{"header":{"member_id":1},"version":"3.5.16","dbSize":4096,"leader":1}}]"#;
        let health = r#"[{"endpoint":"https://10.4.0.11:2379","health":true,"took":"2ms"}]"#;
        let answer = format!("@@gt members@bettley\n{members}\n@@gt members@bettley.exit\n0\n@@gt status\n{status}\n@@gt status.exit\n0\n@@gt health\n{health}\n@@gt health.exit\n0\n@@gt end\n");
        let (o, fakes) = observe_fakes(
            vec![
                FakeHost::new("bettley")
                    .on("@@gt host", probe_answer("bettley", "aarch64", true))
                    .on("get nodes -o json", Reply::ok(CLUSTER_OK))
                    .on("etcdctl", Reply::ok(answer)),
                FakeHost::new("cargyll").on("@@gt host", probe_answer("cargyll", "aarch64", true)),
            ],
            10,
        );
        let etcd = o.cluster.etcd.as_ref().expect("etcd was asked");
        assert_eq!(etcd.observed_via.as_deref(), Some("bettley"));
        let m = etcd.member_of("bettley", None).unwrap();
        assert!(m.leader && m.is_healthy());
        assert_eq!(m.db_size, Some(4096));
        let asked = fakes.lock().unwrap()["bettley"].commands();
        assert_eq!(asked.iter().filter(|c| c.contains("etcdctl")).count(), 1);
        assert!(asked
            .iter()
            .any(|c| c.contains("exec etcd-bettley -- etcdctl")));
    }

    #[test]
    fn etcd_is_kept_when_no_api_server_answers_for_lack_of_it() {
        let no_quorum = Reply::exit(
            0,
            "@@gt members@bettley\n\n@@gt members@bettley.exit\n1\n@@gt end\n",
            "@@gt members@bettley\nError: context deadline exceeded\ncommand terminated with exit code 1\n@@gt end\n",
        );
        let (o, _) = observe_fakes(
            vec![FakeHost::new("bettley")
                .on("@@gt host", probe_answer("bettley", "aarch64", true))
                .on(
                    "get nodes -o json",
                    Reply::exit(1, "", "Error from server: etcdserver: request timed out"),
                )
                .on("etcdctl", no_quorum)],
            10,
        );
        assert!(!o.cluster.exists());
        let etcd = o.cluster.etcd.expect("etcd's answer is kept");
        assert_eq!(
            etcd.error.as_deref(),
            Some("through etcd-bettley: context deadline exceeded (exit 1)")
        );
    }

    #[test]
    fn the_cluster_query_runs_beside_the_control_planes_probe_not_after_it() {
        let spec = spec();
        let slow = Duration::from_millis(150);
        let (hosts, _) = hosts_of(
            &spec,
            vec![
                FakeHost::new("bettley")
                    .on(
                        "@@gt host",
                        probe_answer("bettley", "aarch64", true).after(slow),
                    )
                    .on("get nodes -o json", Reply::ok(CLUSTER_OK).after(slow)),
                FakeHost::new("fenn").on("@@gt host", probe_answer("fenn", "aarch64", false)),
            ],
        );
        let opts = ObserveOptions {
            timeout: Duration::from_secs(1),
            etcd: false,
            ..Default::default()
        };
        // Virtual time: the two waits overlap or add up, whatever the load.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        let (o, took) = rt.block_on(async {
            let started = tokio::time::Instant::now();
            let o = observe_with(&spec, &hosts, &opts).await;
            (o, started.elapsed())
        });
        assert_eq!(o.cluster.observed_via.as_deref(), Some("bettley"));
        assert!(took < slow * 2, "probe and query in series: {took:?}");
    }

    #[test]
    fn an_endpoint_that_drops_one_request_is_asked_again_before_it_counts_as_not_ready() {
        let eof = CLUSTER_OK.replace(
            "@@gt readyz\n[+]ping ok\n[+]etcd ok\nreadyz check passed\n@@gt readyz.exit\n0\n",
            "@@gt readyz\n\n@@gt readyz.exit\n1\n",
        );
        let (o, fakes) = observe_fakes(
            vec![
                FakeHost::new("bettley")
                    .on("@@gt host", probe_answer("bettley", "aarch64", true))
                    .on(
                        "get nodes -o json",
                        Reply::exit(
                            0,
                            eof,
                            "@@gt readyz\nUnable to connect to the server: EOF\n@@gt end\n",
                        ),
                    )
                    .on(
                        "/readyz?verbose",
                        Reply::ok("[+]ping ok\n[+]etcd ok\nreadyz check passed"),
                    ),
                FakeHost::new("cargyll").on("@@gt host", probe_answer("cargyll", "aarch64", true)),
                FakeHost::new("dalt").on("@@gt host", probe_answer("dalt", "aarch64", true)),
                FakeHost::new("fenn").on("@@gt host", probe_answer("fenn", "aarch64", false)),
                FakeHost::new("velaryon")
                    .on("@@gt host", probe_answer("velaryon", "x86_64", false)),
            ],
            10,
        );
        assert!(o.cluster.api.ready, "{:?}", o.cluster.api);
        let asked = fakes.lock().unwrap()["bettley"].commands();
        assert_eq!(
            asked
                .iter()
                .filter(|c| c.contains("/readyz?verbose") && !c.contains("@@gt"))
                .count(),
            1
        );
    }

    #[test]
    fn unreachable_and_hanging_hosts_are_facts() {
        let (o, _) = observe_fakes(
            vec![
                FakeHost::new("bettley")
                    .on("@@gt host", probe_answer("bettley", "aarch64", true))
                    .on("get nodes -o json", Reply::ok(CLUSTER_OK)),
                FakeHost::new("cargyll").on("@@gt host", probe_answer("cargyll", "aarch64", true)),
                FakeHost::new("dalt").on("@@gt host", probe_answer("dalt", "aarch64", true)),
                // fenn: no fake, the connection is refused.
                FakeHost::new("velaryon").on("@@gt host", Reply::Hang),
            ],
            2,
        );
        let fenn = o.hosts["fenn"].unreachable.as_deref().unwrap();
        assert!(
            fenn.starts_with("connection refused by 10.4.0.15:22 after"),
            "{fenn}"
        );
        let velaryon = o.hosts["velaryon"].unreachable.as_deref().unwrap();
        assert!(
            velaryon.contains("did not finish within 0.2 s"),
            "{velaryon}"
        );
        assert!(o.hosts["bettley"].is_reachable());
    }

    #[test]
    fn the_cluster_query_falls_back_to_the_next_control_plane() {
        let (o, _) = observe_fakes(
            vec![
                // bettley is down; cargyll's kubectl fails; dalt answers.
                FakeHost::new("cargyll")
                    .on("@@gt host", probe_answer("cargyll", "aarch64", true))
                    .on(
                        "get nodes -o json",
                        Reply::exit(1, "", "error: stale kubeconfig"),
                    ),
                FakeHost::new("dalt")
                    .on("@@gt host", probe_answer("dalt", "aarch64", true))
                    .on("get nodes -o json", Reply::ok(CLUSTER_OK)),
                FakeHost::new("fenn").on("@@gt host", probe_answer("fenn", "aarch64", false)),
                FakeHost::new("velaryon")
                    .on("@@gt host", probe_answer("velaryon", "x86_64", false)),
            ],
            10,
        );
        assert!(!o.hosts["bettley"].is_reachable());
        assert_eq!(o.cluster.observed_via.as_deref(), Some("dalt"));
    }

    #[test]
    fn no_control_plane_with_an_admin_kubeconfig_means_no_cluster() {
        let (o, fakes) = observe_fakes(
            vec![
                FakeHost::new("bettley").on("@@gt host", probe_answer("bettley", "aarch64", false)),
                FakeHost::new("cargyll").on("@@gt host", probe_answer("cargyll", "aarch64", false)),
                FakeHost::new("dalt").on("@@gt host", probe_answer("dalt", "aarch64", false)),
            ],
            10,
        );
        assert!(!o.cluster.exists());
        // The queries start beside the probe, and run nothing without an
        // admin kubeconfig.
        let guard = super::super::probe::NOTHING_WITHOUT_ADMIN_CONF;
        for f in fakes.lock().unwrap().values() {
            let commands = f.commands();
            assert_eq!(
                commands.iter().filter(|c| c.contains("@@gt host")).count(),
                1
            );
            for c in commands.iter().filter(|c| !c.contains("@@gt host")) {
                assert!(c.starts_with(guard), "{c}");
            }
        }
    }

    #[test]
    fn the_facts_round_trip_through_json() {
        let (o, _) = observe_fakes(
            vec![FakeHost::new("bettley")
                .on("@@gt host", probe_answer("bettley", "aarch64", true))
                .on("get nodes -o json", Reply::ok(CLUSTER_OK))],
            10,
        );
        assert_eq!(Observed::from_json(&o.to_json()).unwrap(), o);
    }
}
