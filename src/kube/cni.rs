//! The CNI's one command: `kubectl apply -f -`, the manifest on stdin.
//! gt reads the manifest on the operator's machine (`crate::cni`), so the
//! control plane needs no internet for it and never gets a file whose
//! content arrived some other way; stdin keeps the content off the process
//! list and out of any temporary file on the host.

use super::kubectl_admin;

/// `kubectl apply -f -` with the admin kubeconfig; the manifest goes on stdin.
pub fn apply_manifest_from_stdin() -> String {
    kubectl_admin("apply -f -")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_is_read_from_stdin() {
        assert_eq!(
            apply_manifest_from_stdin(),
            "kubectl --kubeconfig \"${GT_HOST_ROOT}/etc/kubernetes/admin.conf\" apply -f -"
        );
    }
}
