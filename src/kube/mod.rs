//! Every kubeadm/kubectl command line gt sends and every output it parses
//! (one place for their syntax; KUBEADM.md is the reference).

pub mod nodes;
pub mod pin;
pub mod readyz;

/// The admin kubeconfig kubeadm writes on a control plane, under the host's
/// root (`GT_HOST_ROOT`, empty on real hosts; expanded by the remote shell).
pub const ADMIN_KUBECONFIG: &str = "\"${GT_HOST_ROOT}/etc/kubernetes/admin.conf\"";

/// `kubectl` with the admin kubeconfig: it talks to the control-plane
/// endpoint (through the load balancer).
pub fn kubectl_admin(args: &str) -> String {
    format!("kubectl --kubeconfig {ADMIN_KUBECONFIG} {args}")
}

/// Every Node object, as JSON.
pub fn get_nodes_json() -> String {
    kubectl_admin("get nodes -o json")
}

/// The API server's readiness with every check listed.
pub fn get_readyz_verbose() -> String {
    kubectl_admin("get --raw '/readyz?verbose'")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_lines_use_the_admin_kubeconfig_under_the_host_root() {
        assert_eq!(
            get_nodes_json(),
            r#"kubectl --kubeconfig "${GT_HOST_ROOT}/etc/kubernetes/admin.conf" get nodes -o json"#
        );
        assert_eq!(
            get_readyz_verbose(),
            r#"kubectl --kubeconfig "${GT_HOST_ROOT}/etc/kubernetes/admin.conf" get --raw '/readyz?verbose'"#
        );
    }
}
