//! `kubectl -n kube-system get configmap kubeadm-config -o yaml`: the one
//! ConfigMap the lab serves, the ClusterConfiguration `kubeadm init`
//! uploaded, as kubectl 1.32 prints it.

use super::request::Ctx;
use super::{err, Parsed};
use crate::sim::latency::Op;
use crate::sim::state::Cluster;

pub(super) fn is_configmap_kind(k: &str) -> bool {
    matches!(k, "configmap" | "configmaps" | "cm")
}

pub(super) fn get_configmap(ctx: &Ctx, p: &Parsed) -> u8 {
    let names: Vec<&str> = match p.positional.first().and_then(|f| f.split_once('/')) {
        Some((_, n)) => vec![n],
        None => p.positional[1..].iter().map(String::as_str).collect(),
    };
    let output = p.get("output").unwrap_or("");
    if output != "yaml" {
        return err("the lab's simulated kubectl prints configmaps only with -o yaml");
    }
    let [name] = names[..] else {
        return err("the lab's simulated kubectl gets one configmap by name");
    };
    let namespace = p.get("namespace").unwrap_or("default");
    ctx.host.pause(Op::Kubectl);
    let st = match ctx.connect() {
        Ok(s) => s,
        Err(c) => return c,
    };
    match (&st.cluster, namespace, name) {
        (Some(c), "kube-system", "kubeadm-config") => {
            print!("{}", kubeadm_config(c, st.resource_version));
            0
        }
        _ => {
            eprintln!("Error from server (NotFound): configmaps \"{name}\" not found");
            1
        }
    }
}

fn kubeadm_config(c: &Cluster, resource_version: u64) -> String {
    let pod_subnet = c
        .pod_cidr
        .as_deref()
        .map(|p| format!("      podSubnet: {p}\n"))
        .unwrap_or_default();
    let endpoint = if c.stable_endpoint {
        format!("    controlPlaneEndpoint: {}\n", c.endpoint)
    } else {
        String::new()
    };
    let created = crate::sim::clock::rfc3339(c.initialized_at);
    format!(
        "apiVersion: v1\n\
         data:\n  ClusterConfiguration: |\n    apiServer: {{}}\n    apiVersion: kubeadm.k8s.io/v1beta4\n    \
         caCertificateValidityPeriod: 87600h0m0s\n    certificateValidityPeriod: 8760h0m0s\n    \
         certificatesDir: /etc/kubernetes/pki\n    clusterName: kubernetes\n{endpoint}    controllerManager: {{}}\n    \
         dns: {{}}\n    encryptionAlgorithm: RSA-2048\n    etcd:\n      local:\n        dataDir: /var/lib/etcd\n    \
         imageRepository: registry.k8s.io\n    kind: ClusterConfiguration\n    kubernetesVersion: {version}\n    \
         networking:\n      dnsDomain: cluster.local\n{pod_subnet}      serviceSubnet: {service}\n    proxy: {{}}\n    scheduler: {{}}\n\
         kind: ConfigMap\nmetadata:\n  creationTimestamp: \"{created}\"\n  name: kubeadm-config\n  namespace: kube-system\n  \
         resourceVersion: \"{resource_version}\"\n  uid: {uid}\n",
        version = c.kubernetes_version,
        service = c.service_cidr,
        uid = c.uid,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configmap_carries_what_init_was_given() {
        let c = Cluster {
            endpoint: "127.4.0.10:6443".into(),
            stable_endpoint: true,
            ca_cert_pem: String::new(),
            ca_key_pem: String::new(),
            kubernetes_version: "v1.32.4".into(),
            pod_cidr: Some("192.168.0.0/16".into()),
            service_cidr: "172.16.0.0/20".into(),
            initialized_at: 0.0,
            uid: "u1".into(),
        };
        let yaml = kubeadm_config(&c, 7);
        for line in [
            "kind: ConfigMap\n",
            "  name: kubeadm-config\n  namespace: kube-system\n",
            "    kind: ClusterConfiguration\n",
            "    kubernetesVersion: v1.32.4\n",
            "    controlPlaneEndpoint: 127.4.0.10:6443\n",
            "      podSubnet: 192.168.0.0/16\n      serviceSubnet: 172.16.0.0/20\n",
            "  resourceVersion: \"7\"\n",
        ] {
            assert!(yaml.contains(line), "{line:?} not in\n{yaml}");
        }
        let c = Cluster {
            stable_endpoint: false,
            pod_cidr: None,
            ..c
        };
        let yaml = kubeadm_config(&c, 7);
        assert!(!yaml.contains("controlPlaneEndpoint") && !yaml.contains("podSubnet"));
    }
}
