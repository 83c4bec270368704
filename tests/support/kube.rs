//! Command lines a test types on a (simulated) host to do by hand what
//! `gt apply` does: goldentooth's flags, as docs/kubeadm.md gives them.

/// kubectl's flag for the admin kubeconfig kubeadm writes on a control plane.
pub const ADMIN: &str = "--kubeconfig ${GT_HOST_ROOT}/etc/kubernetes/admin.conf";

/// `kubectl` as the cluster admin on a control plane.
pub const KUBECTL: &str = "kubectl --kubeconfig ${GT_HOST_ROOT}/etc/kubernetes/admin.conf";

/// goldentooth's CNI manifest.
pub const CALICO: &str =
    "https://raw.githubusercontent.com/projectcalico/calico/v3.29.1/manifests/calico.yaml";

/// goldentooth's `kubeadm init`, against `endpoint`.
pub fn kubeadm_init(endpoint: &str) -> String {
    format!(
        "kubeadm init --control-plane-endpoint={endpoint} --kubernetes-version=stable-1.32 \
         --service-cidr=172.16.0.0/20 --pod-network-cidr=192.168.0.0/16 --upload-certs"
    )
}

/// Installing goldentooth's CNI, as the cluster admin.
pub fn apply_cni() -> String {
    format!("{KUBECTL} apply -f {CALICO}")
}
