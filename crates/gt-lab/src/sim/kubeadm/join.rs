//! `kubeadm join`: discovery through the endpoint, then a worker or a new
//! control plane.

use super::cluster::{etcd_member_for, initial_cluster, register_node, restricted_labels};
use super::config::{config_documents, config_node_labels, config_taints, doc, str_at, strings_at};
use super::preflight::{
    ignore_set, init_node_checks, join_node_checks, preflight_failure, run_checks,
};
use super::token::parse_token;
use super::{
    fail, with_global, CP_LABEL, DEFAULT_CRI_SOCKET, EXCLUDE_LB_LABEL, EXIT_ERROR, EXIT_VALIDATION,
};
use crate::sim::api::View;
use crate::sim::clock;
use crate::sim::etcd;
use crate::sim::files::{self, ControlPlaneFiles};
use crate::sim::flags::{self, boolean, string, Flag, Parsed};
use crate::sim::host::Host;
use crate::sim::latency::Op;
use crate::sim::pki;
use crate::sim::services;
use crate::sim::state::{self, State, Taint};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

const JOIN_FLAGS: &[Flag] = &[
    string("config"),
    string("token"),
    string("discovery-token"),
    string("tls-bootstrap-token"),
    string("discovery-token-ca-cert-hash"),
    boolean("discovery-token-unsafe-skip-ca-verification"),
    string("discovery-file"),
    boolean("control-plane"),
    string("certificate-key"),
    string("node-name"),
    string("cri-socket"),
    string("ignore-preflight-errors"),
    string("apiserver-advertise-address"),
    string("apiserver-bind-port"),
    string("skip-phases"),
    string("patches"),
    boolean("dry-run"),
];

/// Everything `kubeadm join` was asked, from flags or a JoinConfiguration.
struct JoinRequest {
    endpoint: String,
    token: String,
    ca_hashes: Vec<String>,
    unsafe_skip_ca: bool,
    control_plane: bool,
    certificate_key: Option<String>,
    node_name: String,
    cri_socket: String,
    advertise: String,
    taints: Option<Vec<Taint>>,
    node_labels: BTreeMap<String, String>,
    ignore: BTreeSet<String>,
}

fn join_request(host: &Host, p: &Parsed) -> Result<JoinRequest, (String, u8)> {
    let validation = |m: String| (m, EXIT_VALIDATION);
    let docs = config_documents(p)?;
    let cfg = doc(&docs, "JoinConfiguration");
    if p.has("config") && cfg.is_none() {
        return Err(validation(
            "no JoinConfiguration kind was found in the YAML file".into(),
        ));
    }
    let node_reg = cfg.and_then(|c| c.get("nodeRegistration"));
    let ignore = ignore_set(
        &p.list("ignore-preflight-errors"),
        &strings_at(node_reg, &["ignorePreflightErrors"]),
    )
    .map_err(validation)?;
    let bt = cfg
        .and_then(|c| c.get("discovery"))
        .and_then(|d| d.get("bootstrapToken"));
    let endpoint = p
        .positional
        .first()
        .map(String::as_str)
        .or(str_at(bt, &["apiServerEndpoint"]))
        .unwrap_or("")
        .to_string();
    let token = p
        .get("discovery-token")
        .or(p.get("token"))
        .or(str_at(bt, &["token"]))
        .or(str_at(cfg, &["discovery", "tlsBootstrapToken"]))
        .unwrap_or("")
        .to_string();
    let mut ca_hashes = p.list("discovery-token-ca-cert-hash");
    ca_hashes.extend(strings_at(bt, &["caCertHashes"]));
    let unsafe_skip_ca = p.on("discovery-token-unsafe-skip-ca-verification")
        || bt
            .and_then(|b| b.get("unsafeSkipCAVerification"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
    let cp_cfg = cfg
        .and_then(|c| c.get("controlPlane"))
        .filter(|v| !v.is_null());
    let control_plane = p.on("control-plane") || cp_cfg.is_some();
    let certificate_key = p
        .get("certificate-key")
        .or(str_at(cp_cfg, &["certificateKey"]))
        .map(str::to_string);
    if token.is_empty() {
        return Err(validation(
            "discovery: Invalid value: \"\": bootstrapToken or file must be set".into(),
        ));
    }
    if parse_token(&token).is_none() {
        return Err(validation(format!(
            "discovery.bootstrapToken.token: Invalid value: \"{token}\": the bootstrap token is invalid"
        )));
    }
    if endpoint.is_empty() {
        return Err(validation(
            "discovery.bootstrapToken.apiServerEndpoint: Required value: the API server endpoint must be given".into(),
        ));
    }
    if ca_hashes.is_empty() && !unsafe_skip_ca {
        return Err(validation("discovery.bootstrapToken: Invalid value: \"\": using token-based discovery without caCertHashes can be unsafe. Set unsafeSkipCAVerification as true in your kubeadm config file or pass --discovery-token-unsafe-skip-ca-verification flag to continue".into()));
    }
    let lab = host.node();
    Ok(JoinRequest {
        endpoint,
        token,
        ca_hashes,
        unsafe_skip_ca,
        control_plane,
        certificate_key,
        node_name: p
            .get("node-name")
            .or(str_at(node_reg, &["name"]))
            .unwrap_or(&host.name)
            .to_string(),
        cri_socket: p
            .get("cri-socket")
            .or(str_at(node_reg, &["criSocket"]))
            .unwrap_or(DEFAULT_CRI_SOCKET)
            .to_string(),
        advertise: p
            .get("apiserver-advertise-address")
            .or(str_at(cp_cfg, &["localAPIEndpoint", "advertiseAddress"]))
            .unwrap_or(&lab.address)
            .to_string(),
        taints: config_taints(node_reg),
        node_labels: config_node_labels(node_reg),
        ignore,
    })
}

/// The discovery phase: the endpoint must answer, the token must sign the
/// cluster-info ConfigMap, and the CA must match a pinned hash.
enum Discovery {
    Ok,
    /// Fails only after kubeadm's discovery timeout.
    AfterTimeout(String),
    Now(String),
}

fn discover(host: &Host, st: &State, req: &JoinRequest) -> Discovery {
    let now = clock::now();
    let view = View {
        lab_dir: &host.lab_dir,
        state: st,
        now,
    };
    let url = format!(
        "https://{}/api/v1/namespaces/kube-public/configmaps/cluster-info?timeout=10s",
        req.endpoint
    );
    let refused = || {
        Discovery::AfterTimeout(format!(
            "couldn't validate the identity of the API Server: failed to request the cluster-info ConfigMap: Get \"{url}\": dial tcp {}: connect: connection refused",
            req.endpoint
        ))
    };
    if host.topology.api_listeners {
        let listening =
            crate::sim::api::http_get(&req.endpoint, "/readyz", std::time::Duration::from_secs(5))
                .is_ok();
        if !listening {
            return refused();
        }
    }
    let target = crate::sim::api::route(&host.topology, &req.endpoint);
    let Some(server) = view.pick(&target) else {
        return refused();
    };
    let Some(cluster) = st.cluster.as_ref() else {
        return refused();
    };
    if !view.serving(&server) {
        return Discovery::AfterTimeout(format!(
            "couldn't validate the identity of the API Server: failed to request the cluster-info ConfigMap: Get \"{url}\": net/http: request canceled (Client.Timeout exceeded while awaiting headers)"
        ));
    }
    let (id, secret) = parse_token(&req.token).expect("validated");
    let signing = st
        .token(&id)
        .filter(|t| !t.expired(now) && t.usages.iter().any(|u| u == "signing"));
    let Some(tok) = signing else {
        return Discovery::AfterTimeout(format!(
            "couldn't validate the identity of the API Server: could not find a JWS signature in the cluster-info ConfigMap for token ID \"{id}\""
        ));
    };
    if tok.secret != secret {
        return Discovery::Now("couldn't validate the identity of the API Server: failed to verify JWS signature of received cluster info object, can't trust this API Server".into());
    }
    if !req.unsafe_skip_ca {
        for h in &req.ca_hashes {
            let valid = h
                .strip_prefix("sha256:")
                .is_some_and(|x| x.len() == 64 && x.bytes().all(|b| b.is_ascii_hexdigit()));
            if !valid {
                return Discovery::Now(format!(
                    "couldn't validate the identity of the API Server: invalid discovery token CA certificate hash: invalid hash {h:?}, expected a \"sha256:\" hash of 64 hexadecimal characters"
                ));
            }
        }
        let actual = pki::pin(&cluster.ca_cert_pem).expect("cluster CA parses");
        if !req.ca_hashes.iter().any(|h| h.to_lowercase() == actual) {
            return Discovery::Now(format!(
                "couldn't validate the identity of the API Server: cluster CA found in cluster-info ConfigMap is invalid: none of the public keys \"{actual}\" are pinned"
            ));
        }
    }
    Discovery::Ok
}

const CP_NOT_READY: &str =
    "\nOne or more conditions for hosting a new control plane instance is not satisfied.\n\n";

pub(super) fn join(host: &Host, args: &[String]) -> u8 {
    let p = match flags::parse(args, &with_global(JOIN_FLAGS)) {
        Ok(p) => p,
        Err(e) => return fail(&e, EXIT_ERROR),
    };
    if p.positional.len() > 1 {
        return fail(
            &format!("accepts at most 1 arg(s), received {}", p.positional.len()),
            EXIT_ERROR,
        );
    }
    let req = match join_request(host, &p) {
        Ok(r) => r,
        Err((m, code)) => return fail(&m, code),
    };
    println!("[preflight] Running pre-flight checks");
    let st = match state::read(&host.lab_dir) {
        Ok(s) => s,
        Err(e) => return fail(&e.to_string(), EXIT_ERROR),
    };
    if let Err(e) = run_checks(join_node_checks(host, &st, req.control_plane), &req.ignore) {
        return preflight_failure(host, &e);
    }
    if host.faults.fail_join {
        let mut cleared = host.faults.clone();
        cleared.fail_join = false;
        if let Err(e) = cleared.save(&host.lab_dir, &host.name) {
            eprintln!("kubeadm (gt lab simulator): cannot clear the fail_join fault: {e}");
        }
        host.pause(Op::DiscoveryTimeout);
        return fail(
            &format!(
                "error execution phase preflight: couldn't validate the identity of the API Server: Get \"https://{}/api/v1/namespaces/kube-public/configmaps/cluster-info?timeout=10s\": net/http: request canceled while waiting for connection (Client.Timeout exceeded while awaiting headers)",
                req.endpoint
            ),
            EXIT_ERROR,
        );
    }
    let st = match discover_until_timeout(host, st, &req) {
        Ok(st) => st,
        Err(code) => return code,
    };
    println!("[preflight] Reading configuration from the \"kubeadm-config\" ConfigMap in namespace \"kube-system\"...");
    println!("[preflight] Use 'kubeadm init phase upload-config --config your-config.yaml' to re-upload it.");
    let cluster = st.cluster.clone().expect("discovery found a cluster");
    if req.control_plane {
        if let Err(code) = control_plane_preflight(host, &st, &cluster, &req) {
            return code;
        }
    }
    // A label the kubelet may not set on itself makes it exit at start-up:
    // kubeadm waits out its health check as for any kubelet that cannot run.
    let restricted = restricted_labels(&req.node_labels);
    if !restricted.is_empty() || services::kubelet_blocker(host).is_some() {
        // kubeadm wrote the kubelet's bootstrap files before it waited in vain.
        let _ = host.write(files::BOOTSTRAP_KUBELET_CONF, "");
        println!("[kubelet-start] Writing kubelet configuration to file \"/var/lib/kubelet/config.yaml\"");
        println!("[kubelet-start] Writing kubelet environment file with flags to file \"/var/lib/kubelet/kubeadm-flags.env\"");
        println!("[kubelet-start] Starting the kubelet");
        println!("[kubelet-check] Waiting for a healthy kubelet at http://127.0.0.1:10248/healthz. This can take up to 4m0s");
        if let Err(code) = super::host_checks::start_kubelet_with_labels_or_fail(
            host,
            "kubelet-start",
            &restricted,
        ) {
            return code;
        }
    }
    host.pause(if req.control_plane {
        Op::JoinControlPlane
    } else {
        Op::JoinWorker
    });
    let out = match join_cluster(host, &req, &cluster) {
        Ok(Ok(out)) => out,
        Ok(Err(m)) => return fail(&m, EXIT_ERROR),
        Err(e) => return fail(&e.to_string(), EXIT_ERROR),
    };
    for l in out {
        println!("{l}");
    }
    print_kubelet_started();
    if req.control_plane {
        if etcd::real(&host.lab_dir) {
            if let Err(e) = etcd::kubeadm::join_member(host, &req.node_name, &req.advertise) {
                return fail(&e, EXIT_ERROR);
            }
        } else {
            println!("[etcd] Announced new etcd member joining to the existing etcd cluster");
            println!("[etcd] Creating static Pod manifest for \"etcd\"");
        }
    }
    print_joined(&req);
    0
}

/// Discovery, retried as kubeadm does; the state it succeeded with, or the exit code.
fn discover_until_timeout(host: &Host, st: State, req: &JoinRequest) -> Result<State, u8> {
    // Like kubeadm, discovery retries (every 5 s, scaled) until its timeout:
    // an API server that comes up meanwhile lets the join go on.
    let deadline = std::time::Instant::now()
        + std::time::Duration::from_secs_f64(host.latency(Op::DiscoveryTimeout));
    let retry = std::time::Duration::from_secs_f64(5.0 * host.speed())
        .max(std::time::Duration::from_millis(20));
    let mut st = st;
    loop {
        match discover(host, &st, req) {
            Discovery::Ok => return Ok(st),
            Discovery::AfterTimeout(m) => {
                let now = std::time::Instant::now();
                if now >= deadline {
                    return Err(fail(
                        &format!("error execution phase preflight: {m}"),
                        EXIT_ERROR,
                    ));
                }
                std::thread::sleep(retry.min(deadline - now));
                st = match state::read(&host.lab_dir) {
                    Ok(s) => s,
                    Err(e) => return Err(fail(&e.to_string(), EXIT_ERROR)),
                };
            }
            Discovery::Now(m) => {
                host.pause(Op::PreflightFailure);
                return Err(fail(
                    &format!("error execution phase preflight: {m}"),
                    EXIT_ERROR,
                ));
            }
        }
    }
}

/// What a new control plane needs beyond a worker: a stable endpoint, the
/// shared certificates (uploaded, or copied by hand), free ports and files.
fn control_plane_preflight(
    host: &Host,
    st: &State,
    cluster: &state::Cluster,
    req: &JoinRequest,
) -> Result<(), u8> {
    if !cluster.stable_endpoint {
        host.pause(Op::PreflightFailure);
        return Err(fail(
            &format!("error execution phase preflight: {CP_NOT_READY}unable to add a new control plane instance to a cluster that doesn't have a stable controlPlaneEndpoint address\n\nPlease ensure that:\n* The cluster has a stable controlPlaneEndpoint address.\n* The certificates that must be shared among control plane instances are provided.\n\n"),
            EXIT_ERROR,
        ));
    }
    if req.certificate_key.is_none() {
        let missing: Vec<String> = [
            ("CA", "ca.crt"),
            ("service account", "sa.key"),
            ("front-proxy CA", "front-proxy-ca.crt"),
            ("etcd CA", "etcd/ca.crt"),
        ]
        .iter()
        .filter(|(_, f)| !host.exists(&format!("{}/{f}", files::PKI)))
        .map(|(what, f)| {
            let kind = if f.ends_with(".key") { "key" } else { "certificate" };
            let noun = if kind == "key" { "private key" } else { "certificate" };
            format!("failure loading {kind} for {what}: couldn't load the {noun} file /etc/kubernetes/pki/{f}: open /etc/kubernetes/pki/{f}: no such file or directory")
        })
        .collect();
        if !missing.is_empty() {
            host.pause(Op::PreflightFailure);
            return Err(fail(
                &format!("error execution phase preflight: {CP_NOT_READY}[{}]\n\nPlease ensure that:\n* The cluster has a stable controlPlaneEndpoint address.\n* The certificates that must be shared among control plane instances are provided.\n\n", missing.join(", ")),
                EXIT_ERROR,
            ));
        }
    }
    println!(
        "[preflight] Running pre-flight checks before initializing the new control plane instance"
    );
    if let Err(e) = run_checks(init_node_checks(host, st, true), &req.ignore) {
        return Err(preflight_failure(host, &e));
    }
    println!("[preflight] Pulling images required for setting up a Kubernetes cluster");
    println!("[preflight] This might take a minute or two, depending on the speed of your internet connection");
    println!("[preflight] You can also perform this action beforehand using 'kubeadm config images pull'");
    super::host_checks::pull_images(host)
}

/// The join itself, under the state lock: the lines kubeadm prints for it, or
/// its error.
fn join_cluster(
    host: &Host,
    req: &JoinRequest,
    cluster: &state::Cluster,
) -> std::io::Result<Result<Vec<String>, String>> {
    let now = clock::now();
    let api_delay = host.latency(Op::ApiReady);
    let endpoint_url = format!("https://{}", cluster.endpoint);
    state::update(&host.lab_dir, |s| -> Result<Vec<String>, String> {
        s.purge_expired(now);
        let mut out = Vec::new();
        if req.control_plane {
            out.push("[download-certs] Downloading the certificates in Secret \"kubeadm-certs\" in the \"kube-system\" Namespace".to_string());
            if let Some(key) = &req.certificate_key {
                match &s.uploaded_certs {
                    None => return Err("error execution phase control-plane-prepare/download-certs: error downloading certs: error downloading the secret: Secret \"kubeadm-certs\" was not found in the \"kube-system\" Namespace. This Secret might have expired. Please, run `kubeadm init phase upload-certs --upload-certs` on a control plane to generate a new one".into()),
                    Some(u) if !u.key.eq_ignore_ascii_case(key) => return Err("error execution phase control-plane-prepare/download-certs: error downloading certs: error decoding secret data with provided key: cipher: message authentication failed".into()),
                    Some(_) => {}
                }
            }
            out.push("[certs] Using certificateDir folder \"/etc/kubernetes/pki\"".into());
        }
        if let Some(n) = s.nodes.get(&req.node_name) {
            if s.readiness(n, now).status == "True" {
                return Err(format!("error execution phase kubelet-start: a Node with name \"{}\" and status \"Ready\" already exists in the cluster. You must delete the existing Node or change the name of this new joining Node", req.node_name));
            }
        }
        if req.control_plane {
            // A real member is added in the etcd phase, after the kubelet starts.
            let initial_cluster = if etcd::real(&host.lab_dir) {
                String::new()
            } else {
                let member = etcd_member_for(host, &req.node_name, &req.advertise);
                s.etcd_members.retain(|m| m.host != host.name);
                s.etcd_members.push(member);
                initial_cluster(&s.etcd_members)
            };
            let cp_files = ControlPlaneFiles {
                node_name: &req.node_name,
                advertise_address: &req.advertise,
                endpoint_url: &endpoint_url,
                shared_pki: &s.shared_pki,
                service_cidr: &cluster.service_cidr,
                pod_cidr: cluster.pod_cidr.as_deref(),
                kubernetes_version: &cluster.kubernetes_version,
                etcd_initial_cluster: initial_cluster,
                etcd_state: "existing",
                super_admin: false,
            };
            files::write_control_plane(host, &cp_files)
                .map_err(|e| format!("error execution phase control-plane-prepare/certs: {e}"))?;
            s.host_mut(&host.name).api_ready_at = Some(now + api_delay);
        }
        files::write_kubelet(
            host,
            &cluster.ca_cert_pem,
            &cluster.ca_key_pem,
            &endpoint_url,
            &req.node_name,
            &req.cri_socket,
        )
        .map_err(|e| format!("error execution phase kubelet-start: {e}"))?;
        s.host_mut(&host.name).kubelet_running = true;
        register_node(
            s,
            host,
            &req.node_name,
            req.control_plane,
            req.taints.clone(),
            &req.node_labels,
            &req.cri_socket,
            now,
        );
        Ok(out)
    })
}

/// What kubeadm prints from starting the kubelet to its TLS bootstrap.
fn print_kubelet_started() {
    println!(
        "[kubelet-start] Writing kubelet configuration to file \"/var/lib/kubelet/config.yaml\""
    );
    println!("[kubelet-start] Writing kubelet environment file with flags to file \"/var/lib/kubelet/kubeadm-flags.env\"");
    println!("[kubelet-start] Starting the kubelet");
    println!("[kubelet-check] Waiting for a healthy kubelet at http://127.0.0.1:10248/healthz. This can take up to 4m0s");
    println!("[kubelet-check] The kubelet is healthy after 1.001033326s");
    println!("[kubelet-start] Waiting for the kubelet to perform the TLS Bootstrap");
    println!();
}

/// What kubeadm prints once the node has joined.
fn print_joined(req: &JoinRequest) {
    if req.control_plane {
        println!("[mark-control-plane] Marking the node {} as control-plane by adding the labels: [{CP_LABEL} {EXCLUDE_LB_LABEL}]", req.node_name);
        println!();
        println!("This node has joined the cluster and a new control plane instance was created:");
        println!();
        println!("* Certificate signing request was sent to apiserver and approval was received.");
        println!("* The Kubelet was informed of the new secure connection details.");
        println!("* Control plane label and taint were applied to the new node.");
        println!("* The Kubernetes control plane instances scaled up.");
        println!("* A new etcd member was added to the local/stacked etcd cluster.");
        println!();
        println!("To start administering your cluster from this node, you need to run the following as a regular user:");
        println!();
        println!("\tmkdir -p $HOME/.kube");
        println!("\tsudo cp -i /etc/kubernetes/admin.conf $HOME/.kube/config");
        println!("\tsudo chown $(id -u):$(id -g) $HOME/.kube/config");
        println!();
        println!("Run 'kubectl get nodes' to see this node join the cluster.");
        println!();
    } else {
        println!("This node has joined the cluster:");
        println!(
            "* Certificate signing request was sent to apiserver and a response was received."
        );
        println!("* The Kubelet was informed of the new secure connection details.");
        println!();
        println!("Run 'kubectl get nodes' on the control-plane to see this node join the cluster.");
        println!();
    }
}
