//! What each step does on the hosts, through `transport` with command lines
//! from `kube`. Secrets (the token, the certificate key) live only in this
//! runner's memory and reach hosts only on stdin; tool output is redacted
//! before it becomes an event or an error.

use super::events::Events;
use super::walker::Runner;
use crate::facts::Observed;
use crate::kube::nodes::ConditionStatus;
use crate::kube::secret::{redact, BootstrapToken, CertificateKey};
use crate::kube::{self, kubeadm};
use crate::plan::{SetDiff, Step};
use crate::spec::{NodeName, Spec, Taint};
use crate::transport::{BoxFuture, Cmd, Hosts, Output};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Who runs this apply, for the token's description and the lock.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// `20261123T100001Z-4f2a`: unique enough to tell runs apart.
    pub id: String,
    /// `root@laptop`.
    pub operator: String,
}

impl RunInfo {
    pub fn new() -> RunInfo {
        let now = time::OffsetDateTime::now_utc();
        let stamp = format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute(),
            now.second()
        );
        let suffix: u16 = rand::random();
        RunInfo {
            id: format!("{stamp}-{suffix:04x}"),
            operator: format!("{}@{}", user_name(), host_name()),
        }
    }

    /// The bootstrap token's description: names the run.
    pub fn token_description(&self) -> String {
        format!("gt apply {} by {}", self.id, self.operator)
    }
}

impl Default for RunInfo {
    fn default() -> Self {
        RunInfo::new()
    }
}

pub fn user_name() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| format!("uid{}", unsafe { libc::getuid() }))
}

pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown-host".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[derive(Default)]
struct Secrets {
    token: Option<BootstrapToken>,
    certificate_key: Option<CertificateKey>,
}

/// Carries out the plan's steps for one apply.
pub struct StepRunner<'a> {
    spec: &'a Spec,
    hosts: &'a Hosts,
    events: Events,
    run: RunInfo,
    secrets: Mutex<Secrets>,
    ca_pin: Mutex<Option<String>>,
    /// Control planes with an admin kubeconfig, best first: the one observed
    /// through, then file order; a node joined or initialised by this run
    /// goes first once it is up.
    admins: Mutex<Vec<String>>,
    /// The latest `kubectl get nodes`: every step waiting on Node readiness
    /// shares one poll (a hundred joining workers must not run a hundred
    /// kubectls a second on a Raspberry Pi control plane).
    nodes: tokio::sync::Mutex<Option<(Instant, Result<NodeMap, String>)>>,
    /// Hosts that did not answer when gt observed.
    unreachable: std::collections::BTreeSet<String>,
}

type NodeMap = BTreeMap<String, crate::kube::nodes::Node>;

/// Retries of commands that fail while an API server is still coming up
/// start this fast and back off to at most `MAX_POLL`.
const FIRST_POLL: Duration = Duration::from_millis(200);
const MAX_POLL: Duration = Duration::from_secs(1);

impl<'a> StepRunner<'a> {
    pub fn new(
        spec: &'a Spec,
        observed: &'a Observed,
        hosts: &'a Hosts,
        events: Events,
        run: RunInfo,
    ) -> StepRunner<'a> {
        let mut admins: Vec<String> = observed.cluster.observed_via.iter().cloned().collect();
        for n in spec.control_planes() {
            let name = n.name.to_string();
            let usable = observed
                .hosts
                .get(&name)
                .is_some_and(|h| h.is_reachable() && h.admin_conf);
            if usable && !admins.contains(&name) {
                admins.push(name);
            }
        }
        StepRunner {
            spec,
            hosts,
            events,
            run,
            secrets: Mutex::new(Secrets::default()),
            ca_pin: Mutex::new(observed.cluster.ca_pin.clone()),
            admins: Mutex::new(admins),
            nodes: tokio::sync::Mutex::new(None),
            unreachable: observed
                .hosts
                .iter()
                .filter(|(_, h)| !h.is_reachable())
                .map(|(n, _)| n.clone())
                .collect(),
        }
    }

    /// The token this run made, if any (its id is public; the CLI names it
    /// when a second Ctrl-C leaves it to expire).
    pub fn token_id(&self) -> Option<String> {
        self.secrets
            .lock()
            .unwrap()
            .token
            .as_ref()
            .map(|t| t.id().to_string())
    }

    fn settings(&self) -> &crate::spec::ApplySettings {
        &self.spec.apply
    }

    fn node(&self, name: &str) -> Result<&'a crate::spec::Node, String> {
        self.spec
            .node(name)
            .ok_or_else(|| format!("{name} is not in {}", self.spec.source.display()))
    }

    /// Runs `cmd` on `node`; kubeadm's `[phase] ...` lines become progress of `id`.
    async fn exec(&self, id: &str, node: &str, cmd: &Cmd) -> Result<Output, String> {
        let host = self.hosts.get(node).await.map_err(|e| e.to_string())?;
        let (tx, mut rx) = mpsc::unbounded_channel();
        let run = async move {
            let r = host.run(cmd, Some(&tx)).await;
            drop(tx);
            r
        };
        let forward = async {
            while let Some(line) = rx.recv().await {
                let text = line.line.trim();
                if text.starts_with('[') {
                    self.events.progress(id, redact(text));
                }
            }
        };
        let (result, ()) = tokio::join!(run, forward);
        result.map_err(|e| e.to_string())
    }

    /// Runs `cmd` on `node`; a non-zero exit is an error quoting the tool.
    async fn must(&self, id: &str, node: &str, cmd: &Cmd) -> Result<String, String> {
        let out = self.exec(id, node, cmd).await?;
        if out.success() {
            Ok(out.stdout)
        } else {
            Err(failure(cmd, node, &out))
        }
    }

    /// Runs an admin command (kubectl with admin.conf, kubeadm token/certs)
    /// on the first control plane that can, retrying while the API server is
    /// still coming up, until `patience` has passed.
    async fn admin(&self, id: &str, cmd: &Cmd, patience: Duration) -> Result<String, String> {
        let deadline = Instant::now() + patience;
        let mut delay = FIRST_POLL;
        loop {
            let candidates = self.admins.lock().unwrap().clone();
            if candidates.is_empty() {
                return Err(format!(
                    "no control plane with an admin kubeconfig to run `{}` on: none was reachable with /etc/kubernetes/admin.conf when gt observed",
                    cmd.program()
                ));
            }
            let mut last = String::new();
            for node in &candidates {
                match self.exec(id, node, cmd).await {
                    Ok(out) if out.success() => return Ok(out.stdout),
                    Ok(out) if transient(&out) => {
                        last = failure(cmd, node, &out);
                    }
                    Ok(out) => return Err(failure(cmd, node, &out)),
                    // This host is gone: try the next control plane.
                    Err(e) => last = e,
                }
            }
            if Instant::now() + delay > deadline {
                return Err(format!(
                    "{last} (gave up after {} of retries)",
                    crate::spec::format_duration(patience)
                ));
            }
            self.events.progress(
                id,
                format!(
                    "API server not answering yet; retrying: {}",
                    first_line(&last)
                ),
            );
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_POLL);
        }
    }

    /// Every Node, as of at most one poll interval ago.
    async fn nodes_now(&self, id: &str) -> Result<NodeMap, String> {
        let mut cached = self.nodes.lock().await;
        if let Some((at, r)) = &*cached {
            if at.elapsed() < FIRST_POLL {
                return r.clone();
            }
        }
        let cmd = Cmd::new(kube::get_nodes_json())
            .timeout(Duration::from_secs(30))
            .label("kubectl get nodes");
        let r = self.admin(id, &cmd, Duration::ZERO).await.and_then(|json| {
            kube::nodes::parse(&json).map_err(|e| format!("kubectl get nodes -o json: {e}"))
        });
        *cached = Some((Instant::now(), r.clone()));
        r
    }

    fn promote_admin(&self, node: &str) {
        let mut a = self.admins.lock().unwrap();
        a.retain(|n| n != node);
        a.insert(0, node.to_string());
    }

    fn step_cmd(&self, script: String) -> Cmd {
        Cmd::new(script).timeout(self.settings().step_timeout)
    }

    async fn init(&self, id: &str, node: &NodeName) -> Result<(), String> {
        let n = self.node(node.as_str())?;
        // The run's one token: known to gt before init creates it, so it is
        // revoked at the end even when init fails halfway.
        let token = BootstrapToken::generate();
        self.secrets.lock().unwrap().token = Some(token.clone());
        let config = kubeadm::init_config(
            self.spec,
            n,
            &token,
            self.spec.tokens.ttl,
            &self.run.token_description(),
        );
        let cmd = self
            .step_cmd(kubeadm::init_command(self.spec))
            .stdin(config)
            .label("kubeadm init");
        self.must(id, node.as_str(), &cmd).await?;
        let pem = self
            .must(
                id,
                node.as_str(),
                &Cmd::new(kubeadm::read_ca_command()).label("read ca.crt"),
            )
            .await?;
        let pin = kube::pin::ca_pin_from_pem(&pem)
            .map_err(|e| format!("{node}: /etc/kubernetes/pki/ca.crt after kubeadm init: {e}"))?;
        *self.ca_pin.lock().unwrap() = Some(pin);
        self.promote_admin(node.as_str());
        Ok(())
    }

    async fn install_cni(&self, id: &str) -> Result<(), String> {
        let cmd = self
            .step_cmd(kube::apply_manifest(&self.spec.cluster.cni.manifest))
            .label("kubectl apply (CNI)");
        self.admin(id, &cmd, self.settings().gate_timeout)
            .await
            .map(drop)
    }

    async fn upload_certs(&self, id: &str) -> Result<(), String> {
        let cmd = self
            .step_cmd(kubeadm::upload_certs_command())
            .label("kubeadm init phase upload-certs");
        let out = self.admin(id, &cmd, self.settings().gate_timeout).await?;
        let key = kubeadm::parse_upload_certs(&out).ok_or_else(|| {
            format!(
                "kubeadm init phase upload-certs printed no certificate key (output: {})",
                first_line(&redact(&out))
            )
        })?;
        self.secrets.lock().unwrap().certificate_key = Some(key);
        Ok(())
    }

    async fn mint_token(&self, id: &str) -> Result<(), String> {
        if self.secrets.lock().unwrap().token.is_some() {
            self.events
                .progress(id, "kubeadm init created this run's token");
            return Ok(());
        }
        let cmd = self
            .step_cmd(kubeadm::token_create_command(
                self.spec.tokens.ttl,
                &self.run.token_description(),
            ))
            .label("kubeadm token create");
        let out = self.admin(id, &cmd, self.settings().gate_timeout).await?;
        let token = kubeadm::parse_token_create(&out).ok_or_else(|| {
            "kubeadm token create printed something that is not a bootstrap token".to_string()
        })?;
        self.secrets.lock().unwrap().token = Some(token);
        Ok(())
    }

    async fn revoke_token(&self, id: &str) -> Result<(), String> {
        let Some(token) = self.secrets.lock().unwrap().token.clone() else {
            self.events
                .progress(id, "no token was created: nothing to revoke");
            return Ok(());
        };
        let cmd = self
            .step_cmd(kubeadm::token_delete_command(token.id()))
            .label("kubeadm token delete");
        // Patience of one poll cycle: the cluster is up if any join worked.
        match self.admin(id, &cmd, Duration::from_secs(10)).await {
            Ok(_) => {
                self.secrets.lock().unwrap().token = None;
                Ok(())
            }
            Err(e) if e.contains("not found") => Ok(()),
            Err(e) => Err(format!(
                "could not revoke join token {}: {e}; it expires by itself {} after it was made (or delete it: `kubeadm token delete {}` on a control plane)",
                token.id(),
                crate::spec::format_duration(self.spec.tokens.ttl),
                token.id()
            )),
        }
    }

    async fn ca_pin(&self, id: &str) -> Result<String, String> {
        if let Some(p) = self.ca_pin.lock().unwrap().clone() {
            return Ok(p);
        }
        let pem = self
            .admin(
                id,
                &Cmd::new(kubeadm::read_ca_command()).label("read ca.crt"),
                Duration::ZERO,
            )
            .await?;
        let pin =
            kube::pin::ca_pin_from_pem(&pem).map_err(|e| format!("the cluster's ca.crt: {e}"))?;
        *self.ca_pin.lock().unwrap() = Some(pin.clone());
        Ok(pin)
    }

    async fn join(&self, id: &str, node: &NodeName) -> Result<(), String> {
        let n = self.node(node.as_str())?;
        let pin = self.ca_pin(id).await?;
        let (token, key) = {
            let s = self.secrets.lock().unwrap();
            (s.token.clone(), s.certificate_key.clone())
        };
        let token = token.ok_or("no join token: the mint-token step did not run")?;
        if n.is_control_plane() && key.is_none() {
            return Err("no certificate key: the upload-certs step did not run".into());
        }
        let config = kubeadm::join_config(self.spec, n, &token, &pin, key.as_ref());
        let cmd = self
            .step_cmd(kubeadm::join_command(self.spec))
            .stdin(config)
            .label("kubeadm join");
        self.must(id, node.as_str(), &cmd).await?;
        self.wait_node_ready(id, node.as_str(), "joined").await?;
        if n.is_control_plane() {
            let mut a = self.admins.lock().unwrap();
            if !a.iter().any(|x| x == node.as_str()) {
                a.push(node.to_string());
            }
        }
        Ok(())
    }

    /// A join is done when the Node is Ready (its pod network up), so that
    /// the apply's end is a cluster the next plan finds converged.
    /// `done`: what happened before the wait, for the timeout's message.
    async fn wait_node_ready(&self, id: &str, node: &str, done: &str) -> Result<(), String> {
        let timeout = self.settings().gate_timeout;
        let deadline = Instant::now() + timeout;
        let mut delay = FIRST_POLL;
        let mut shown = String::new();
        loop {
            let why = match self.nodes_now(id).await {
                Ok(nodes) => match nodes.get(node) {
                    Some(n) if n.ready == ConditionStatus::True => return Ok(()),
                    Some(n) => format!(
                        "Ready={:?}, {}: {}",
                        n.ready,
                        n.ready_reason.as_deref().unwrap_or("no reason given"),
                        n.ready_message.as_deref().unwrap_or("")
                    ),
                    None => format!("no Node {node} registered yet"),
                },
                Err(e) => e,
            };
            let now = Instant::now();
            if now >= deadline {
                return Err(format!(
                    "{node} {done}, but its Node was not Ready within {} (gate_timeout in [apply]): {why}",
                    crate::spec::format_duration(timeout)
                ));
            }
            if why != shown {
                self.events.progress(
                    id,
                    format!("waiting for Node {node} to be Ready ({})", first_line(&why)),
                );
                shown = why;
            }
            tokio::time::sleep(delay.min(deadline - now)).await;
            delay = (delay * 2).min(MAX_POLL);
        }
    }

    async fn update(
        &self,
        id: &str,
        node: &str,
        labels: &SetDiff,
        taints: &SetDiff,
    ) -> Result<(), String> {
        let set: Vec<String> = labels.added().into_iter().map(str::to_string).collect();
        let set_keys: Vec<&str> = set.iter().map(|l| label_key(l)).collect();
        let remove: Vec<String> = labels
            .removed()
            .into_iter()
            .map(label_key)
            .filter(|k| !set_keys.contains(k))
            .map(str::to_string)
            .collect();
        let patience = self.settings().gate_timeout;
        if !set.is_empty() || !remove.is_empty() {
            let cmd = self
                .step_cmd(kube::label_node(node, &set, &remove))
                .label("kubectl label");
            self.admin(id, &cmd, patience).await?;
        }
        let parse = |lines: Vec<&str>| -> Result<Vec<Taint>, String> {
            lines
                .into_iter()
                .map(|l| l.parse::<Taint>().map_err(|e| format!("taint {l:?}: {e}")))
                .collect()
        };
        let add = parse(taints.added())?;
        let remove: Vec<Taint> = parse(taints.removed())?
            .into_iter()
            .filter(|r| !add.iter().any(|a| a.key == r.key && a.effect == r.effect))
            .collect();
        if !add.is_empty() || !remove.is_empty() {
            let cmd = self
                .step_cmd(kube::taint_node(node, &add, &remove))
                .label("kubectl taint");
            self.admin(id, &cmd, patience).await?;
        }
        Ok(())
    }

    async fn start_kubelet(&self, id: &str, node: &NodeName) -> Result<(), String> {
        let cmd = self
            .step_cmd(kube::start_kubelet())
            .label("systemctl start kubelet");
        self.must(id, node.as_str(), &cmd).await?;
        self.wait_node_ready(id, node.as_str(), "its kubelet started")
            .await
    }

    async fn drain(&self, id: &str, node: &str) -> Result<(), String> {
        let t = self.settings().drain_timeout;
        let dead = self.unreachable.contains(node)
            || match self.nodes_now(id).await {
                Ok(nodes) => nodes
                    .get(node)
                    .is_some_and(|n| n.ready != ConditionStatus::True),
                Err(_) => false,
            };
        if dead {
            self.events.progress(
                id,
                format!("{node} is unreachable or not Ready: its pods cannot confirm they stopped; not waiting for them past their grace period"),
            );
        }
        let cmd = Cmd::new(kube::drain(node, t, dead))
            .timeout(t + Duration::from_secs(30))
            .label("kubectl drain");
        self.admin(id, &cmd, self.settings().gate_timeout)
            .await
            .map(drop)
    }

    async fn delete_node(&self, id: &str, node: &str) -> Result<(), String> {
        let cmd = self
            .step_cmd(kube::delete_node(node))
            .label("kubectl delete node");
        match self.admin(id, &cmd, self.settings().gate_timeout).await {
            Err(e) if e.contains("NotFound") => Ok(()),
            r => r.map(drop),
        }
    }

    async fn reset(&self, id: &str, node: &NodeName) -> Result<(), String> {
        let cmd = self
            .step_cmd(kubeadm::reset_command())
            .label("kubeadm reset");
        let r = match self.exec(id, node.as_str(), &cmd).await {
            Ok(out) if !out.success() => Err(failure(&cmd, node.as_str(), &out)),
            // kubeadm goes on when etcd refuses the removal: the cluster then
            // keeps a member that will never answer again, one step from losing quorum.
            Ok(out) => match kubeadm::reset_kept_etcd_member(&out.stderr) {
                Some(why) => Err(format!(
                    "kubeadm reset on {node} could not remove its etcd member ({}); etcd still counts it: on a healthy control plane, find it with `etcdctl member list` and remove it with `etcdctl member remove ID`",
                    redact(why)
                )),
                None => Ok(()),
            },
            Err(e) => Err(e),
        };
        // Its admin.conf is gone (or half gone): later admin commands of this
        // run (the next removal, a label) must go through another control plane.
        self.admins.lock().unwrap().retain(|n| n != node.as_str());
        r
    }

    /// The readiness gate: polls until every named control plane's API
    /// server is ready, `/readyz` through the endpoint passes (etcd
    /// included), and their Nodes are Ready; or the gate timeout passes.
    async fn gate(&self, id: &str, control_planes: &[NodeName]) -> Result<(), String> {
        let timeout = self.settings().gate_timeout;
        let started = Instant::now();
        let deadline = started + timeout;
        let mut since: BTreeMap<String, Instant> = BTreeMap::new();
        let mut last_shown = String::new();
        let mut delay = FIRST_POLL;
        loop {
            let problems = self.gate_problems(control_planes).await;
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
                return Err(format!(
                    "the control plane was not ready within {} (gate_timeout in [apply]): {}",
                    crate::spec::format_duration(timeout),
                    describe(true)
                ));
            }
            let shown = describe(false);
            if shown != last_shown {
                self.events.progress(id, format!("waiting: {shown}"));
                last_shown = shown;
            }
            tokio::time::sleep(delay.min(deadline - now)).await;
            delay = (delay * 2).min(MAX_POLL);
        }
    }

    /// What is not ready yet, keyed by what it is about.
    async fn gate_problems(&self, control_planes: &[NodeName]) -> BTreeMap<String, String> {
        let mut problems = BTreeMap::new();
        let Some(admin) = self.admins.lock().unwrap().first().cloned() else {
            problems.insert(
                "admin".to_string(),
                "no control plane with an admin kubeconfig is reachable".to_string(),
            );
            return problems;
        };
        let quick = |script: String| Cmd::new(script).timeout(Duration::from_secs(30));
        let per_cp = futures_util::future::join_all(control_planes.iter().map(|cp| {
            let script = self
                .spec
                .node(cp.as_str())
                .map(|n| kube::readyz_of(&n.address));
            let admin = admin.clone();
            async move {
                let Some(script) = script else {
                    return (cp.to_string(), Err(format!("{cp} is not in cluster.toml")));
                };
                let r = self.hosts.get(&admin).await.map_err(|e| e.to_string());
                let r = match r {
                    Ok(h) => h.run(&quick(script), None).await.map_err(|e| e.to_string()),
                    Err(e) => Err(e),
                };
                (cp.to_string(), r)
            }
        }));
        let endpoint = async {
            let h = self.hosts.get(&admin).await.map_err(|e| e.to_string())?;
            h.run(&quick(kube::get_readyz_verbose()), None)
                .await
                .map_err(|e| e.to_string())
        };
        let nodes = async {
            let h = self.hosts.get(&admin).await.map_err(|e| e.to_string())?;
            h.run(&quick(kube::get_nodes_json()), None)
                .await
                .map_err(|e| e.to_string())
        };
        let (per_cp, endpoint, nodes) = tokio::join!(per_cp, endpoint, nodes);
        for (cp, r) in per_cp {
            let problem = match r {
                Ok(out) => {
                    let r = kube::readyz::parse(out.code, &out.stdout, &out.stderr);
                    if r.ready {
                        continue;
                    }
                    if r.failed_checks.is_empty() {
                        first_line(&redact(r.error.as_deref().unwrap_or("no reason"))).to_string()
                    } else {
                        format!("failed checks: {}", r.failed_checks.join(", "))
                    }
                }
                Err(e) => e,
            };
            problems.insert(
                format!("api/{cp}"),
                format!("API server on {cp} not ready ({problem})"),
            );
        }
        let ep = &self.spec.cluster.endpoint;
        match endpoint {
            Ok(out) => {
                let r = kube::readyz::parse(out.code, &out.stdout, &out.stderr);
                if !r.ready {
                    let why = if r.failed_checks.is_empty() {
                        first_line(r.error.as_deref().unwrap_or("no reason")).to_string()
                    } else {
                        format!("failed checks: {}", r.failed_checks.join(", "))
                    };
                    problems.insert(
                        "endpoint".into(),
                        format!("/readyz through {ep} not ok ({why})"),
                    );
                }
            }
            Err(e) => {
                problems.insert("endpoint".into(), format!("/readyz through {ep}: {e}"));
            }
        }
        match nodes.map(|o| (o.code, kube::nodes::parse(&o.stdout), o.stderr)) {
            Ok((0, Ok(objs), _)) => {
                for cp in control_planes {
                    match objs.get(cp.as_str()) {
                        None => {
                            problems
                                .insert(format!("node/{cp}"), format!("Node {cp} not registered"));
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
            Ok((code, _, stderr)) => {
                problems.insert(
                    "nodes".into(),
                    format!(
                        "kubectl get nodes exited {code}: {}",
                        first_line(&redact(&stderr))
                    ),
                );
            }
            Err(e) => {
                problems.insert("nodes".into(), format!("kubectl get nodes: {e}"));
            }
        }
        problems
    }
}

impl Runner for StepRunner<'_> {
    fn run<'b>(&'b self, id: &'b str, step: &'b Step) -> BoxFuture<'b, Result<(), String>> {
        Box::pin(async move {
            match step {
                Step::Init { node } => self.init(id, node).await,
                Step::InstallCni => self.install_cni(id).await,
                Step::UploadCerts => self.upload_certs(id).await,
                Step::MintToken => self.mint_token(id).await,
                Step::GateControlPlaneReady { control_planes, .. } => {
                    self.gate(id, control_planes).await
                }
                Step::JoinControlPlane { node } | Step::JoinWorker { node } => {
                    self.join(id, node).await
                }
                Step::UpdateNode {
                    node,
                    labels,
                    taints,
                } => self.update(id, node, labels, taints).await,
                Step::StartKubelet { node } => self.start_kubelet(id, node).await,
                Step::Drain { node } => self.drain(id, node).await,
                Step::DeleteNode { node } => self.delete_node(id, node).await,
                Step::Reset { node } => self.reset(id, node).await,
                Step::RevokeToken => self.revoke_token(id).await,
            }
        })
    }
}

/// `key=value` → `key`.
fn label_key(line: &str) -> &str {
    line.split_once('=').map_or(line, |(k, _)| k)
}

/// The first line, also cut at an escaped `\n` (kubectl quotes server
/// bodies with Go's %q) and at 160 characters.
fn first_line(s: &str) -> &str {
    let line = s.trim().lines().next().unwrap_or("");
    let line = line.split("\\n").next().unwrap_or(line);
    match line.char_indices().nth(160) {
        Some((i, _)) => &line[..i],
        None => line,
    }
}

/// A failure an API server that is still starting (or a load balancer
/// still checking it) gives: worth another try.
fn transient(out: &Output) -> bool {
    let e = out.stderr.to_ascii_lowercase();
    [
        "connection refused",
        "was refused",
        "unable to connect to the server",
        "etcdserver: request timed out",
        "eof",
        "serviceunavailable",
        "the server is currently unable",
        "connection reset",
        "i/o timeout",
        "tls handshake timeout",
    ]
    .iter()
    .any(|p| e.contains(p))
}

/// `kubeadm join on fenn exited 1: <the tool's last words, redacted>`.
fn failure(cmd: &Cmd, node: &str, out: &Output) -> String {
    let text = if out.stderr.trim().is_empty() {
        &out.stdout
    } else {
        &out.stderr
    };
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty() && !l.starts_with("To see the stack trace"))
        .collect();
    let tail = lines[lines.len().saturating_sub(6)..].join("\n");
    let tail = redact(&tail);
    if tail.is_empty() {
        format!(
            "{} on {node} exited {} without a message",
            cmd.program(),
            out.code
        )
    } else {
        format!("{} on {node} exited {}: {tail}", cmd.program(), out.code)
    }
}
