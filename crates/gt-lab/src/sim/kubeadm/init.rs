//! `kubeadm init`: a new cluster on this host.

use super::cluster::{
    etcd_member_for, initial_cluster, join_command, register_node, resolve_version,
};
use super::config::{config_documents, config_node_labels, config_taints, doc, str_at, strings_at};
use super::preflight::{ignore_set, init_node_checks, preflight_failure, run_checks};
use super::token::{new_token, parse_token, DEFAULT_TOKEN_GROUPS, DEFAULT_TOKEN_USAGES};
use super::upload_certs::store_certs;
use super::{
    fail, parse_flags, CP_LABEL, DEFAULT_CRI_SOCKET, DEFAULT_SERVICE_CIDR, DEFAULT_TOKEN_TTL,
    EXCLUDE_LB_LABEL, EXIT_ERROR, EXIT_VALIDATION,
};
use crate::sim::clock;
use crate::sim::etcd;
use crate::sim::files::{self, ControlPlaneFiles};
use crate::sim::flags::{boolean, string, Flag, Parsed};
use crate::sim::host::Host;
use crate::sim::latency::Op;
use crate::sim::pki::{self, CertKey};
use crate::sim::state::{self, EtcdMember, State, Taint, Token};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

const INIT_FLAGS: &[Flag] = &[
    string("config"),
    string("control-plane-endpoint"),
    string("kubernetes-version"),
    string("service-cidr"),
    string("pod-network-cidr"),
    boolean("upload-certs"),
    string("certificate-key"),
    boolean("skip-certificate-key-print"),
    string("node-name"),
    string("cri-socket"),
    string("apiserver-advertise-address"),
    string("apiserver-bind-port"),
    string("apiserver-cert-extra-sans"),
    string("ignore-preflight-errors"),
    boolean("skip-token-print"),
    string("token"),
    string("token-ttl"),
    string("service-dns-domain"),
    string("image-repository"),
    string("cert-dir"),
    string("feature-gates"),
    string("patches"),
    string("skip-phases"),
    boolean("dry-run"),
];
/// Everything `kubeadm init` was asked, from flags or an
/// InitConfiguration/ClusterConfiguration.
struct InitRequest {
    version: String,
    node_name: String,
    advertise: String,
    /// The control-plane endpoint as given: without one, no control plane can join.
    cp_endpoint: Option<String>,
    /// `host:port` of the API server for every client (the given endpoint, else this host).
    endpoint: String,
    pod_cidr: Option<String>,
    service_cidr: String,
    cri_socket: String,
    upload_certs: bool,
    certificate_key: String,
    token: TokenRequest,
    skip_token_print: bool,
    skip_key_print: bool,
    taints: Option<Vec<Taint>>,
    node_labels: BTreeMap<String, String>,
    ignore: BTreeSet<String>,
}

/// The bootstrap token init creates: `--token`/`--token-ttl` or `bootstrapTokens[0]`.
struct TokenRequest {
    /// `(id, secret)` when given; otherwise a random one.
    given: Option<(String, String)>,
    description: String,
    ttl: f64,
}

pub(super) fn init(host: &Host, args: &[String]) -> u8 {
    let p = match parse_flags(args, INIT_FLAGS, "kubeadm init") {
        Ok(p) => p,
        Err(code) => return code,
    };
    let req = match init_request(host, &p) {
        Ok(r) => r,
        Err((m, code)) => return fail(&m, code),
    };
    println!("[init] Using Kubernetes version: {}", req.version);
    println!("[preflight] Running pre-flight checks");
    let st = match state::read(&host.lab_dir) {
        Ok(s) => s,
        Err(e) => return fail(&e.to_string(), EXIT_ERROR),
    };
    if let Err(e) = run_checks(init_node_checks(host, &st, false), &req.ignore) {
        return preflight_failure(host, &e);
    }
    println!("[preflight] Pulling images required for setting up a Kubernetes cluster");
    println!("[preflight] This might take a minute or two, depending on the speed of your internet connection");
    println!("[preflight] You can also perform this action beforehand using 'kubeadm config images pull'");
    if let Err(code) = super::host_checks::pull_images(host) {
        return code;
    }

    let ca = pki::new_ca();
    let shared_pki = files::new_shared_pki(&ca);
    let pin = pki::pin(&ca.cert_pem).expect("a fresh CA parses");
    print_phases_to_kubelet_start(&req);

    let started = std::time::Instant::now();
    // Certificates, kubeconfigs, static Pods, the kubelet and (real) etcd
    // come up within init's latency, as on a real host, where they are part
    // of it: the lab's own work there (its real etcd takes about a second
    // to elect itself) runs inside that time, not after it. A failure
    // still ends no sooner than the latency.
    let up = control_plane_up(host, &req, &ca, &shared_pki);
    host.pause_rest(Op::Init, started.elapsed());
    let member = match up {
        Ok(member) => member,
        Err(InitFailure::Printed(code)) => return code,
        Err(InitFailure::Phase(m)) => return fail(&m, EXIT_ERROR),
    };
    let init_token = match new_cluster(host, &req, &st, &ca, &shared_pki, member) {
        Ok(t) => t,
        Err(e) => return fail(&e.to_string(), EXIT_ERROR),
    };
    print_phases_after_kubelet_start(&req, &init_token, started.elapsed().as_secs_f64());
    print_join_commands(&req, &init_token, &pin);
    0
}

fn init_request(host: &Host, p: &Parsed) -> Result<InitRequest, (String, u8)> {
    let validation = |m: String| (m, EXIT_VALIDATION);
    let docs = config_documents(p)?;
    let init_cfg = doc(&docs, "InitConfiguration");
    let cluster_cfg = doc(&docs, "ClusterConfiguration");
    if p.has("config") && init_cfg.is_none() && cluster_cfg.is_none() {
        return Err(validation(
            "no InitConfiguration or ClusterConfiguration kind was found in the YAML file".into(),
        ));
    }
    let node_reg = init_cfg.and_then(|c| c.get("nodeRegistration"));
    let ignore = ignore_set(
        &p.list("ignore-preflight-errors"),
        &strings_at(node_reg, &["ignorePreflightErrors"]),
    )
    .map_err(validation)?;
    let lab = host.node();
    let version = resolve_version(
        p.get("kubernetes-version")
            .or(str_at(cluster_cfg, &["kubernetesVersion"])),
        &lab.kubernetes_version,
    )
    .map_err(validation)?;
    let advertise = p
        .get("apiserver-advertise-address")
        .or(str_at(init_cfg, &["localAPIEndpoint", "advertiseAddress"]))
        .unwrap_or(&lab.address)
        .to_string();
    let cp_endpoint = p
        .get("control-plane-endpoint")
        .or(str_at(cluster_cfg, &["controlPlaneEndpoint"]))
        .map(str::to_string);
    let endpoint = cp_endpoint
        .clone()
        .unwrap_or_else(|| format!("{advertise}:6443"));
    let endpoint = if endpoint.contains(':') {
        endpoint
    } else {
        format!("{endpoint}:6443")
    };
    let (pod_cidr, service_cidr) = networking(p, cluster_cfg).map_err(validation)?;
    Ok(InitRequest {
        version,
        node_name: p
            .get("node-name")
            .or(str_at(node_reg, &["name"]))
            .unwrap_or(&host.name)
            .to_string(),
        advertise,
        cp_endpoint,
        endpoint,
        pod_cidr,
        service_cidr,
        cri_socket: p
            .get("cri-socket")
            .or(str_at(node_reg, &["criSocket"]))
            .unwrap_or(DEFAULT_CRI_SOCKET)
            .to_string(),
        upload_certs: p.on("upload-certs"),
        certificate_key: p
            .get("certificate-key")
            .or(str_at(init_cfg, &["certificateKey"]))
            .map(str::to_string)
            .unwrap_or_else(|| state::random_hex(32)),
        token: token_request(p, init_cfg)?,
        skip_token_print: p.on("skip-token-print"),
        skip_key_print: p.on("skip-certificate-key-print"),
        taints: config_taints(node_reg),
        node_labels: config_node_labels(node_reg),
        ignore,
    })
}

/// The pod and service CIDRs, each checked as kubeadm's validation does.
fn networking(p: &Parsed, cluster_cfg: Option<&Value>) -> Result<(Option<String>, String), String> {
    let pod_cidr = p
        .get("pod-network-cidr")
        .or(str_at(cluster_cfg, &["networking", "podSubnet"]))
        .map(str::to_string);
    let service_cidr = p
        .get("service-cidr")
        .or(str_at(cluster_cfg, &["networking", "serviceSubnet"]))
        .unwrap_or(DEFAULT_SERVICE_CIDR)
        .to_string();
    for (what, cidr) in [
        ("networking.podSubnet", pod_cidr.as_deref()),
        ("networking.serviceSubnet", Some(service_cidr.as_str())),
    ] {
        if let Some(c) = cidr {
            if c.parse::<ipnet::IpNet>().is_err() {
                return Err(format!(
                    "{what}: Invalid value: \"{c}\": couldn't parse subnet"
                ));
            }
        }
    }
    Ok((pod_cidr, service_cidr))
}

fn token_request(p: &Parsed, init_cfg: Option<&Value>) -> Result<TokenRequest, (String, u8)> {
    let config_token = init_cfg
        .and_then(|c| c.get("bootstrapTokens"))
        .and_then(|b| b.get(0));
    let given = match p.get("token").or(str_at(config_token, &["token"])) {
        Some(t) => Some(parse_token(t).ok_or_else(|| {
            (
                format!("bootstrapTokens[0].token: Invalid value: \"{t}\": the bootstrap token is invalid"),
                EXIT_VALIDATION,
            )
        })?),
        None => None,
    };
    let description = str_at(config_token, &["description"])
        .unwrap_or("The default bootstrap token generated by 'kubeadm init'.")
        .to_string();
    let ttl = match p.get("token-ttl").or(str_at(config_token, &["ttl"])) {
        Some(d) => clock::parse_go_duration(d).ok_or_else(|| {
            (
                format!("invalid argument \"{d}\" for \"--token-ttl\" flag: time: invalid duration \"{d}\""),
                EXIT_ERROR,
            )
        })?,
        None => DEFAULT_TOKEN_TTL,
    };
    Ok(TokenRequest {
        given,
        description,
        ttl,
    })
}

/// What kubeadm prints from its certs phase to its wait for the control plane.
fn print_phases_to_kubelet_start(req: &InitRequest) {
    let (node_name, advertise) = (&req.node_name, &req.advertise);
    let endpoint_host = req
        .endpoint
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(&req.endpoint)
        .to_string();
    let service_ip = first_service_ip(&req.service_cidr);
    println!("[certs] Using certificateDir folder \"/etc/kubernetes/pki\"");
    println!("[certs] Generating \"ca\" certificate and key");
    println!("[certs] Generating \"apiserver\" certificate and key");
    let mut ips = vec![service_ip, advertise.clone()];
    if endpoint_host != *advertise && endpoint_host.parse::<std::net::IpAddr>().is_ok() {
        ips.push(endpoint_host.clone());
    }
    println!(
        "[certs] apiserver serving cert is signed for DNS names [{node_name} kubernetes kubernetes.default kubernetes.default.svc kubernetes.default.svc.cluster.local] and IPs [{}]",
        ips.join(" ")
    );
    for c in [
        "apiserver-kubelet-client",
        "front-proxy-ca",
        "front-proxy-client",
        "etcd/ca",
        "etcd/server",
    ] {
        println!("[certs] Generating \"{c}\" certificate and key");
    }
    println!("[certs] etcd/server serving cert is signed for DNS names [{node_name} localhost] and IPs [{advertise} 127.0.0.1 ::1]");
    println!("[certs] Generating \"etcd/peer\" certificate and key");
    println!("[certs] etcd/peer serving cert is signed for DNS names [{node_name} localhost] and IPs [{advertise} 127.0.0.1 ::1]");
    for c in ["etcd/healthcheck-client", "apiserver-etcd-client"] {
        println!("[certs] Generating \"{c}\" certificate and key");
    }
    println!("[certs] Generating \"sa\" key and public key");
    println!("[kubeconfig] Using kubeconfig folder \"/etc/kubernetes\"");
    for c in [
        "admin.conf",
        "super-admin.conf",
        "kubelet.conf",
        "controller-manager.conf",
        "scheduler.conf",
    ] {
        println!("[kubeconfig] Writing \"{c}\" kubeconfig file");
    }
    println!("[etcd] Creating static Pod manifest for local etcd in \"/etc/kubernetes/manifests\"");
    println!("[control-plane] Using manifest folder \"/etc/kubernetes/manifests\"");
    for c in [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
    ] {
        println!("[control-plane] Creating static Pod manifest for \"{c}\"");
    }
    println!("[kubelet-start] Writing kubelet environment file with flags to file \"/var/lib/kubelet/kubeadm-flags.env\"");
    println!(
        "[kubelet-start] Writing kubelet configuration to file \"/var/lib/kubelet/config.yaml\""
    );
    println!("[kubelet-start] Starting the kubelet");
    println!("[wait-control-plane] Waiting for the kubelet to boot up the control plane as static Pods from directory \"/etc/kubernetes/manifests\"");
    println!("[kubelet-check] Waiting for a healthy kubelet at http://127.0.0.1:10248/healthz. This can take up to 4m0s");
}

/// Why init stopped before its control plane came up.
enum InitFailure {
    /// kubeadm's words are out; its exit code.
    Printed(u8),
    /// The failed phase's error, to print.
    Phase(String),
}

/// The phases up to a running control plane: this host's files, its
/// kubelet and, with real etcd, its member started and healthy. Returns
/// the etcd member.
fn control_plane_up(
    host: &Host,
    req: &InitRequest,
    ca: &CertKey,
    shared_pki: &BTreeMap<String, String>,
) -> Result<EtcdMember, InitFailure> {
    let endpoint_url = format!("https://{}", req.endpoint);
    let member = etcd_member_for(host, &req.node_name, &req.advertise);
    write_files(host, req, ca, shared_pki, &endpoint_url, &member)
        .map_err(|e| InitFailure::Phase(format!("error execution phase certs: {e}")))?;
    let restricted = super::cluster::restricted_labels(&req.node_labels);
    super::host_checks::start_kubelet_with_labels_or_fail(host, "wait-control-plane", &restricted)
        .map_err(InitFailure::Printed)?;
    // The kubelet runs the static Pods, etcd among them, before kubeadm
    // uploads anything: with real etcd, the cluster's objects go there.
    if etcd::real(&host.lab_dir) {
        state::update_hosts(&host.lab_dir, |s| {
            s.host_mut(&host.name).kubelet_running = true;
        })
        .map_err(|e| e.to_string())
        .and_then(|()| etcd::kubeadm::start_member(host))
        .map_err(|e| {
            InitFailure::Phase(format!("error execution phase wait-control-plane: {e}"))
        })?;
    }
    Ok(member)
}

/// This host's control-plane and kubelet files.
fn write_files(
    host: &Host,
    req: &InitRequest,
    ca: &CertKey,
    shared_pki: &BTreeMap<String, String>,
    endpoint_url: &str,
    member: &EtcdMember,
) -> std::io::Result<()> {
    let cp_files = ControlPlaneFiles {
        node_name: &req.node_name,
        advertise_address: &req.advertise,
        endpoint_url,
        shared_pki,
        service_cidr: &req.service_cidr,
        pod_cidr: req.pod_cidr.as_deref(),
        kubernetes_version: &req.version,
        etcd_initial_cluster: initial_cluster(std::slice::from_ref(member)),
        etcd_state: "new",
        super_admin: true,
    };
    files::write_control_plane(host, &cp_files)?;
    files::write_kubelet(
        host,
        &ca.cert_pem,
        &ca.key_pem,
        endpoint_url,
        &req.node_name,
        &req.cri_socket,
    )
}

/// The cluster's state as it is right after init: this host its only control
/// plane and etcd member, its Node registered, the bootstrap token minted (and
/// the uploaded certificates' with it). Returns the bootstrap token.
fn new_cluster(
    host: &Host,
    req: &InitRequest,
    before: &State,
    ca: &CertKey,
    shared_pki: &BTreeMap<String, String>,
    member: EtcdMember,
) -> std::io::Result<Token> {
    let now = clock::now();
    let api_delay = host.latency(Op::ApiReady);
    state::update(&host.lab_dir, |s| {
        // The endpoint now serves this new cluster: whatever the state held before
        // belongs to another (the other hosts keep their old files and CA).
        let old_hosts: Vec<String> = s.hosts.keys().cloned().collect();
        *s = State {
            resource_version: s.resource_version,
            ..State::default()
        };
        for h in old_hosts {
            let running = before.kubelet_running(&h);
            let hs = s.host_mut(&h);
            hs.kubelet_running = running;
        }
        s.cluster = Some(state::Cluster {
            endpoint: req.endpoint.clone(),
            stable_endpoint: req.cp_endpoint.is_some(),
            ca_cert_pem: ca.cert_pem.clone(),
            ca_key_pem: ca.key_pem.clone(),
            kubernetes_version: req.version.clone(),
            pod_cidr: req.pod_cidr.clone(),
            service_cidr: req.service_cidr.clone(),
            initialized_at: now,
            uid: state::random_uuid(),
        });
        s.shared_pki = shared_pki.clone();
        // A real etcd keeps its own member list.
        s.etcd_members = if etcd::real(&host.lab_dir) {
            Vec::new()
        } else {
            vec![member]
        };
        let hs = s.host_mut(&host.name);
        hs.kubelet_running = true;
        hs.api_ready_at = Some(now + api_delay);
        register_node(
            s,
            host,
            &req.node_name,
            true,
            req.taints.clone(),
            &req.node_labels,
            &req.cri_socket,
            now,
        );
        mint_tokens(s, req, now)
    })
}

/// The bootstrap token, and with `--upload-certs` the certificates' secret
/// and the token whose expiry deletes it.
fn mint_tokens(s: &mut State, req: &InitRequest, now: f64) -> Token {
    let mut t = new_token(
        Some(req.token.description.clone()),
        req.token.ttl,
        now,
        DEFAULT_TOKEN_USAGES,
        DEFAULT_TOKEN_GROUPS,
    );
    if let Some((id, secret)) = &req.token.given {
        t.id = id.clone();
        t.secret = secret.clone();
    }
    s.tokens.push(t.clone());
    if req.upload_certs {
        store_certs(s, &req.certificate_key, now);
    }
    t
}

/// What kubeadm prints from the kubelet's health check to the addons, and the
/// success message; `took` is the simulated boot's wall time.
fn print_phases_after_kubelet_start(req: &InitRequest, init_token: &Token, took: f64) {
    let node_name = &req.node_name;
    println!(
        "[kubelet-check] The kubelet is healthy after {:.9}s",
        took * 0.1
    );
    println!("[api-check] Waiting for a healthy API server. This can take up to 4m0s");
    println!(
        "[api-check] The API server is healthy after {:.9}s",
        took * 0.9
    );
    println!("[upload-config] Storing the configuration used in ConfigMap \"kubeadm-config\" in the \"kube-system\" Namespace");
    println!("[kubelet] Creating a ConfigMap \"kubelet-config\" in namespace kube-system with the configuration for the kubelets in the cluster");
    if req.upload_certs {
        println!("[upload-certs] Storing the certificates in Secret \"kubeadm-certs\" in the \"kube-system\" Namespace");
        if !req.skip_key_print {
            println!(
                "[upload-certs] Using certificate key:\n{}",
                req.certificate_key
            );
        }
    } else {
        println!("[upload-certs] Skipping phase. Please see --upload-certs");
    }
    println!("[mark-control-plane] Marking the node {node_name} as control-plane by adding the labels: [{CP_LABEL} {EXCLUDE_LB_LABEL}]");
    let shown_taints = req.taints.clone().unwrap_or_else(|| {
        vec![Taint {
            key: CP_LABEL.into(),
            value: None,
            effect: "NoSchedule".into(),
        }]
    });
    println!(
        "[mark-control-plane] Marking the node {node_name} as control-plane by adding the taints [{}]",
        shown_taints.iter().map(Taint::spec).collect::<Vec<_>>().join(" ")
    );
    if !req.skip_token_print {
        println!("[bootstrap-token] Using token: {}", init_token.full());
    }
    println!("[bootstrap-token] Configuring bootstrap tokens, cluster-info ConfigMap, RBAC Roles");
    println!("[bootstrap-token] Configured RBAC rules to allow Node Bootstrap tokens to get nodes");
    println!("[bootstrap-token] Configured RBAC rules to allow Node Bootstrap tokens to post CSRs in order for nodes to get long term certificate credentials");
    println!("[bootstrap-token] Configured RBAC rules to allow the csrapprover controller automatically approve CSRs from a Node Bootstrap Token");
    println!("[bootstrap-token] Configured RBAC rules to allow certificate rotation for all node client certificates in the cluster");
    println!("[bootstrap-token] Creating the \"cluster-info\" ConfigMap in the \"kube-public\" namespace");
    println!("[kubelet-finalize] Updating \"/etc/kubernetes/kubelet.conf\" to point to a rotatable kubelet client certificate and key");
    println!("[addons] Applied essential addon: CoreDNS");
    println!("[addons] Applied essential addon: kube-proxy");
    println!();
    println!("Your Kubernetes control-plane has initialized successfully!");
    println!();
    println!("To start using your cluster, you need to run the following as a regular user:");
    println!();
    println!("  mkdir -p $HOME/.kube");
    println!("  sudo cp -i /etc/kubernetes/admin.conf $HOME/.kube/config");
    println!("  sudo chown $(id -u):$(id -g) $HOME/.kube/config");
    println!();
    println!("Alternatively, if you are the root user, you can run:");
    println!();
    println!("  export KUBECONFIG=/etc/kubernetes/admin.conf");
    println!();
    println!("You should now deploy a pod network to the cluster.");
    println!("Run \"kubectl apply -f [podnetwork].yaml\" with one of the options listed at:");
    println!("  https://kubernetes.io/docs/concepts/cluster-administration/addons/");
    println!();
}

/// The join commands init prints last (with the secrets withheld as asked).
fn print_join_commands(req: &InitRequest, init_token: &Token, pin: &str) {
    let endpoint = &req.endpoint;
    let shown_token = if req.skip_token_print {
        "<value withheld>".to_string()
    } else {
        init_token.full()
    };
    if req.cp_endpoint.is_some() {
        if req.upload_certs {
            let key = if req.skip_key_print {
                "<value withheld>"
            } else {
                req.certificate_key.as_str()
            };
            println!("You can now join any number of control-plane nodes running the following command on each as root:");
            println!();
            println!(
                "  {}",
                join_command(endpoint, &shown_token, pin, Some(Some(key)), true)
            );
            println!();
            println!("Please note that the certificate-key gives access to cluster sensitive data, keep it secret!");
            println!("As a safeguard, uploaded-certs will be deleted in two hours; If necessary, you can use");
            println!(
                "\"kubeadm init phase upload-certs --upload-certs\" to reload certs afterward."
            );
            println!();
        } else {
            println!("You can now join any number of control-plane nodes by copying certificate authorities");
            println!(
                "and service account keys on each node and then running the following as root:"
            );
            println!();
            println!(
                "  {}",
                join_command(endpoint, &shown_token, pin, Some(None), true)
            );
            println!();
        }
    }
    println!(
        "Then you can join any number of worker nodes by running the following on each as root:"
    );
    println!();
    println!("{}", join_command(endpoint, &shown_token, pin, None, true));
}

/// The first address of the service CIDR (the `kubernetes` Service's ClusterIP).
fn first_service_ip(cidr: &str) -> String {
    match cidr.parse::<ipnet::Ipv4Net>() {
        Ok(n) => std::net::Ipv4Addr::from(u32::from(n.network()) + 1).to_string(),
        Err(_) => "10.96.0.1".into(),
    }
}
