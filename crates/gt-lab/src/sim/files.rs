//! The files kubeadm leaves on a host: PKI, kubeconfigs, static Pod manifests,
//! kubelet configuration, etcd data. Paths are host paths under `GT_HOST_ROOT`.

use super::host::Host;
use super::pki::{self, CertKey, Credentials};
use std::collections::BTreeMap;
use std::io;

pub(crate) const ADMIN_CONF: &str = "/etc/kubernetes/admin.conf";
pub(crate) const SUPER_ADMIN_CONF: &str = "/etc/kubernetes/super-admin.conf";
pub(crate) const KUBELET_CONF: &str = "/etc/kubernetes/kubelet.conf";
pub(crate) const BOOTSTRAP_KUBELET_CONF: &str = "/etc/kubernetes/bootstrap-kubelet.conf";
pub(crate) const CONTROLLER_MANAGER_CONF: &str = "/etc/kubernetes/controller-manager.conf";
pub(crate) const SCHEDULER_CONF: &str = "/etc/kubernetes/scheduler.conf";
pub(crate) const CA_CRT: &str = "/etc/kubernetes/pki/ca.crt";
pub(crate) const MANIFESTS: &str = "/etc/kubernetes/manifests";
pub(crate) const PKI: &str = "/etc/kubernetes/pki";
pub(crate) const VAR_LIB_KUBELET: &str = "/var/lib/kubelet";
pub(crate) const VAR_LIB_ETCD: &str = "/var/lib/etcd";
pub(crate) const KUBELET_CLIENT_PEM: &str = "/var/lib/kubelet/pki/kubelet-client-current.pem";

/// Static Pod manifests, in the order kubeadm's preflight checks them.
pub(crate) const MANIFEST_NAMES: &[&str] = &[
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "etcd",
];

/// The kubeconfig files `kubeadm reset` deletes, in its order.
pub(crate) const RESET_CONF_FILES: &[&str] = &[
    ADMIN_CONF,
    SUPER_ADMIN_CONF,
    KUBELET_CONF,
    BOOTSTRAP_KUBELET_CONF,
    CONTROLLER_MANAGER_CONF,
    SCHEDULER_CONF,
];

pub(crate) fn manifest_path(name: &str) -> String {
    format!("{MANIFESTS}/{name}.yaml")
}

/// Certificates and keys every control plane shares (what `upload-certs` carries), by
/// path relative to /etc/kubernetes/pki.
pub(crate) fn new_shared_pki(ca: &CertKey) -> BTreeMap<String, String> {
    let front = pki::new_named_ca("front-proxy-ca");
    let etcd = pki::new_named_ca("etcd-ca");
    let sa = pki::key_pair_pem();
    let mut m = BTreeMap::new();
    m.insert("ca.crt".into(), ca.cert_pem.clone());
    m.insert("ca.key".into(), ca.key_pem.clone());
    m.insert("front-proxy-ca.crt".into(), front.cert_pem);
    m.insert("front-proxy-ca.key".into(), front.key_pem);
    m.insert("etcd/ca.crt".into(), etcd.cert_pem);
    m.insert("etcd/ca.key".into(), etcd.key_pem);
    m.insert("sa.key".into(), sa.clone());
    m.insert("sa.pub".into(), sa);
    m
}

/// What a control plane needs to write its files.
pub(crate) struct ControlPlaneFiles<'a> {
    pub(crate) node_name: &'a str,
    pub(crate) advertise_address: &'a str,
    /// `https://` + endpoint.
    pub(crate) endpoint_url: &'a str,
    pub(crate) shared_pki: &'a BTreeMap<String, String>,
    pub(crate) service_cidr: &'a str,
    pub(crate) pod_cidr: Option<&'a str>,
    pub(crate) kubernetes_version: &'a str,
    /// `--initial-cluster` of the etcd manifest (existing members + this one).
    pub(crate) etcd_initial_cluster: String,
    /// `new` on the first control plane, `existing` on joins.
    pub(crate) etcd_state: &'a str,
    /// `kubeadm init` also writes super-admin.conf.
    pub(crate) super_admin: bool,
}

fn ca_of(shared: &BTreeMap<String, String>, prefix: &str) -> CertKey {
    CertKey {
        cert_pem: shared[&format!("{prefix}ca.crt")].clone(),
        key_pem: shared[&format!("{prefix}ca.key")].clone(),
    }
}

fn write_pair(host: &Host, base: &str, ck: &CertKey) -> io::Result<()> {
    host.write(&format!("{PKI}/{base}.crt"), &ck.cert_pem)?;
    host.write(&format!("{PKI}/{base}.key"), &ck.key_pem)
}

/// PKI, kubeconfigs, manifests and etcd data of a control plane.
pub(crate) fn write_control_plane(host: &Host, f: &ControlPlaneFiles) -> io::Result<()> {
    for (rel, content) in f.shared_pki {
        host.write(&format!("{PKI}/{rel}"), content)?;
    }
    let ca = ca_of(f.shared_pki, "");
    let etcd_ca = ca_of(f.shared_pki, "etcd/");
    let front_ca = ca_of(f.shared_pki, "front-proxy-");
    write_pair(
        host,
        "apiserver",
        &pki::client_cert(&ca, "kube-apiserver", None),
    )?;
    write_pair(
        host,
        "apiserver-kubelet-client",
        &pki::client_cert(
            &ca,
            "kube-apiserver-kubelet-client",
            Some("kubeadm:cluster-admins"),
        ),
    )?;
    write_pair(
        host,
        "front-proxy-client",
        &pki::leaf_cert(&front_ca, "front-proxy-ca", "front-proxy-client", None),
    )?;
    for base in ["etcd/server", "etcd/peer"] {
        let cert = super::etcd::pki::serving_cert(&etcd_ca, f.node_name, f.advertise_address);
        write_pair(host, base, &cert)?;
    }
    for (base, cn) in [
        ("etcd/healthcheck-client", "kube-etcd-healthcheck-client"),
        ("apiserver-etcd-client", "kube-apiserver-etcd-client"),
    ] {
        write_pair(host, base, &pki::leaf_cert(&etcd_ca, "etcd-ca", cn, None))?;
    }
    let local_url = format!("https://{}:6443", f.advertise_address);
    let mut confs = vec![
        (
            ADMIN_CONF,
            "kubernetes-admin",
            Some("kubeadm:cluster-admins"),
            f.endpoint_url,
        ),
        (
            CONTROLLER_MANAGER_CONF,
            "system:kube-controller-manager",
            None,
            local_url.as_str(),
        ),
        (
            SCHEDULER_CONF,
            "system:kube-scheduler",
            None,
            local_url.as_str(),
        ),
    ];
    if f.super_admin {
        confs.insert(
            1,
            (
                SUPER_ADMIN_CONF,
                "kubernetes-super-admin",
                Some("system:masters"),
                f.endpoint_url,
            ),
        );
    }
    for (path, user, org, server) in confs {
        let ck = pki::client_cert(&ca, user, org);
        host.write(
            path,
            &pki::kubeconfig(&ca.cert_pem, server, user, Credentials::Embedded(&ck)),
        )?;
    }
    let real_etcd = super::etcd::real(&host.lab_dir);
    for name in MANIFEST_NAMES {
        // A real member's manifest needs the member list its `member add`
        // returns: the join writes it then.
        if *name == "etcd" && f.etcd_initial_cluster.is_empty() {
            continue;
        }
        host.write(&manifest_path(name), &manifest(name, f))?;
    }
    if !real_etcd {
        host.write(
            &format!("{VAR_LIB_ETCD}/member/snap/db"),
            "simulated etcd data\n",
        )?;
    }
    Ok(())
}

/// kubelet.conf (pointing at the rotating client certificate), ca.crt, and
/// the kubelet's configuration, as the kubelet-start phase leaves them.
pub(crate) fn write_kubelet(
    host: &Host,
    ca_pem: &str,
    ca_key_pem: &str,
    endpoint_url: &str,
    node_name: &str,
    cri_socket: &str,
) -> io::Result<()> {
    let ca = CertKey {
        cert_pem: ca_pem.to_string(),
        key_pem: ca_key_pem.to_string(),
    };
    let client = pki::client_cert(
        &ca,
        &format!("system:node:{node_name}"),
        Some("system:nodes"),
    );
    host.write(
        KUBELET_CLIENT_PEM,
        &format!("{}{}", client.cert_pem, client.key_pem),
    )?;
    host.write(
        KUBELET_CONF,
        &pki::kubeconfig(
            ca_pem,
            endpoint_url,
            "default-auth",
            Credentials::Files {
                cert: KUBELET_CLIENT_PEM,
                key: KUBELET_CLIENT_PEM,
            },
        ),
    )?;
    host.write(CA_CRT, ca_pem)?;
    host.write(
        "/var/lib/kubelet/config.yaml",
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n\
         authentication:\n  x509:\n    clientCAFile: /etc/kubernetes/pki/ca.crt\n\
         cgroupDriver: systemd\nclusterDNS:\n- 172.16.0.10\nclusterDomain: cluster.local\n\
         rotateCertificates: true\nstaticPodPath: /etc/kubernetes/manifests\n",
    )?;
    host.write(
        "/var/lib/kubelet/kubeadm-flags.env",
        &format!(
            "KUBELET_KUBEADM_ARGS=\"--container-runtime-endpoint={cri_socket} --pod-infra-container-image=registry.k8s.io/pause:3.10\"\n"
        ),
    )
}

fn manifest(name: &str, f: &ControlPlaneFiles) -> String {
    let (image, command): (String, Vec<String>) = match name {
        "kube-apiserver" => (
            format!("registry.k8s.io/kube-apiserver:{}", f.kubernetes_version),
            vec![
                "kube-apiserver".into(),
                format!("--advertise-address={}", f.advertise_address),
                "--allow-privileged=true".into(),
                "--authorization-mode=Node,RBAC".into(),
                "--client-ca-file=/etc/kubernetes/pki/ca.crt".into(),
                "--enable-admission-plugins=NodeRestriction".into(),
                "--enable-bootstrap-token-auth=true".into(),
                "--etcd-servers=https://127.0.0.1:2379".into(),
                "--secure-port=6443".into(),
                format!("--service-cluster-ip-range={}", f.service_cidr),
                "--tls-cert-file=/etc/kubernetes/pki/apiserver.crt".into(),
                "--tls-private-key-file=/etc/kubernetes/pki/apiserver.key".into(),
            ],
        ),
        "kube-controller-manager" => {
            let mut c = vec![
                "kube-controller-manager".to_string(),
                "--authentication-kubeconfig=/etc/kubernetes/controller-manager.conf".into(),
                "--bind-address=127.0.0.1".into(),
                "--cluster-signing-cert-file=/etc/kubernetes/pki/ca.crt".into(),
                "--cluster-signing-key-file=/etc/kubernetes/pki/ca.key".into(),
                "--controllers=*,bootstrapsigner,tokencleaner".into(),
                "--kubeconfig=/etc/kubernetes/controller-manager.conf".into(),
                "--leader-elect=true".into(),
                format!("--service-cluster-ip-range={}", f.service_cidr),
            ];
            if let Some(p) = f.pod_cidr {
                c.insert(1, "--allocate-node-cidrs=true".into());
                c.insert(4, format!("--cluster-cidr={p}"));
            }
            (
                format!(
                    "registry.k8s.io/kube-controller-manager:{}",
                    f.kubernetes_version
                ),
                c,
            )
        }
        "kube-scheduler" => (
            format!("registry.k8s.io/kube-scheduler:{}", f.kubernetes_version),
            vec![
                "kube-scheduler".into(),
                "--authentication-kubeconfig=/etc/kubernetes/scheduler.conf".into(),
                "--bind-address=127.0.0.1".into(),
                "--kubeconfig=/etc/kubernetes/scheduler.conf".into(),
                "--leader-elect=true".into(),
            ],
        ),
        _ => {
            return super::etcd::manifest::render(&super::etcd::manifest::EtcdManifest {
                node_name: f.node_name,
                advertise_address: f.advertise_address,
                initial_cluster: &f.etcd_initial_cluster,
                existing: f.etcd_state == "existing",
            })
        }
    };
    let mut s = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  labels:\n    component: {name}\n    tier: control-plane\n  name: {name}\n  namespace: kube-system\nspec:\n  containers:\n  - command:\n"
    );
    for c in command {
        s.push_str(&format!("    - {c}\n"));
    }
    s.push_str(&format!(
        "    image: {image}\n    imagePullPolicy: IfNotPresent\n    name: {name}\n  hostNetwork: true\n  priority: 2000001000\n  priorityClassName: system-node-critical\nstatus: {{}}\n"
    ));
    s
}
