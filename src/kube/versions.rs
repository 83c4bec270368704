//! Where a kubeadm cluster records its Kubernetes version (docs/kubeadm.md,
//! "Versions"): the `kubernetesVersion` of the ClusterConfiguration in
//! kube-system/kubeadm-config (which `kubeadm init` and `kubeadm upgrade
//! apply` upload), and the image tag of each control plane's static pods.

/// The control-plane components whose static pod images carry the release.
pub const CONTROL_PLANE_COMPONENTS: [&str; 3] = [
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
];

/// `kubernetesVersion` (`v1.32.4`) out of `kubectl get configmap
/// kubeadm-config -o yaml`: the ClusterConfiguration is a block scalar in
/// the ConfigMap's data, and the only document there with that key.
pub fn cluster_configuration_version(configmap_yaml: &str) -> Option<String> {
    configmap_yaml.lines().find_map(|line| {
        let value = line.trim().strip_prefix("kubernetesVersion:")?;
        let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
        (!value.is_empty()).then(|| value.to_string())
    })
}

/// The tag of an image reference: `v1.32.4` of
/// `registry.k8s.io/kube-apiserver:v1.32.4` (a registry's port is not a
/// tag; a digest, `@sha256:...`, is dropped).
pub fn image_tag(image: &str) -> Option<&str> {
    let image = image.trim().trim_matches(|c| c == '"' || c == '\'');
    let image = image.split('@').next()?;
    let last = image.rsplit('/').next()?;
    let (_, tag) = last.rsplit_once(':')?;
    (!tag.is_empty()).then_some(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As kubectl 1.32 prints the ConfigMap kubeadm 1.32 uploads.
    const KUBEADM_CONFIG: &str = "apiVersion: v1
data:
  ClusterConfiguration: |
    apiServer: {}
    apiVersion: kubeadm.k8s.io/v1beta4
    certificatesDir: /etc/kubernetes/pki
    clusterName: kubernetes
    controlPlaneEndpoint: 10.4.0.10:6443
    etcd:
      local:
        dataDir: /var/lib/etcd
    imageRepository: registry.k8s.io
    kind: ClusterConfiguration
    kubernetesVersion: v1.32.4
    networking:
      dnsDomain: cluster.local
      serviceSubnet: 10.96.0.0/12
kind: ConfigMap
metadata:
  name: kubeadm-config
  namespace: kube-system
";

    #[test]
    fn the_cluster_version_is_read_from_the_cluster_configuration() {
        assert_eq!(
            cluster_configuration_version(KUBEADM_CONFIG).as_deref(),
            Some("v1.32.4")
        );
        assert_eq!(cluster_configuration_version("kind: ConfigMap\n"), None);
        assert_eq!(
            cluster_configuration_version("    kubernetesVersion: \"v1.33.2\"\n").as_deref(),
            Some("v1.33.2")
        );
    }

    #[test]
    fn an_image_tag_is_the_part_after_the_last_colon_of_its_last_path_element() {
        for (image, tag) in [
            ("registry.k8s.io/kube-apiserver:v1.32.4", Some("v1.32.4")),
            ("localhost:5000/kube-scheduler:v1.33.2", Some("v1.33.2")),
            ("localhost:5000/kube-scheduler", None),
            ("registry.k8s.io/etcd:3.5.24-0@sha256:abc", Some("3.5.24-0")),
            (
                " \"registry.k8s.io/kube-apiserver:v1.34.1\"",
                Some("v1.34.1"),
            ),
            ("kube-apiserver:", None),
        ] {
            assert_eq!(image_tag(image), tag, "{image}");
        }
    }
}
