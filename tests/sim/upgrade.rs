//! Version upgrades through the simulated tools: `kubeadm upgrade
//! plan|apply|node` with the host's installed kubeadm, static Pod and
//! addon versions, the kubelet's version after its package and a restart.

use crate::support::kube::{kubeadm_init, KUBECTL};
use crate::support::sim::{SimLab, ENDPOINT, SPEED};
use crate::support::wait::eventually;
use gt_lab::topology::{LabNode, LabTopology};

/// bettley and cargyll (control planes) and fenn (a worker), prepared at 1.32.4.
fn small_lab() -> SimLab {
    let node = |name: &str, last: u8, role: &str| LabNode {
        name: name.into(),
        address: format!("127.4.0.{last}"),
        role: role.into(),
        arch: "arm64".into(),
        kubernetes_version: "v1.32.4".into(),
    };
    SimLab::with_topology(LabTopology {
        cluster_name: "goldentooth".into(),
        endpoint: ENDPOINT.into(),
        transport: "local".into(),
        speed: SPEED,
        api_listeners: false,
        nodes: vec![
            node("bettley", 11, "control-plane"),
            node("cargyll", 12, "control-plane"),
            node("fenn", 16, "worker"),
        ],
    })
}

/// A cluster at 1.32.4 with a CNI: bettley initialised, `cps` joined as
/// control planes, fenn as a worker, every node Ready.
fn cluster(cps: &[&str]) -> SimLab {
    let lab = small_lab();
    lab.on("bettley").run(&kubeadm_init(ENDPOINT)).success();
    lab.wait_api_ready();
    lab.apply_cni();
    for cp in cps {
        let cmd = lab.control_plane_join_command();
        lab.on(cp).run(&cmd).success();
    }
    let cmd = lab.join_command();
    lab.on("fenn").run(&cmd).success();
    for n in ["bettley", "fenn"].iter().chain(cps) {
        eventually(&format!("{n} is Ready"), || lab.ready_status(n) == "True");
    }
    lab
}

/// Switches the host's Kubernetes repository to `minor` and installs
/// `packages` at `version` (`1.33.3`), as the upgrade docs do.
fn install(lab: &SimLab, node: &str, minor: &str, version: &str, packages: &[&str]) {
    let pins: Vec<String> = packages
        .iter()
        .map(|p| format!("{p}={version}-1.1"))
        .collect();
    lab.on(node)
        .run(&format!(
            "sed -i 's|/v1\\.[0-9]*/|/v{minor}/|' $GT_HOST_ROOT/etc/apt/sources.list.d/kubernetes.list \
             && apt-get update -q && apt-get install -y -q --allow-change-held-packages {}",
            pins.join(" ")
        ))
        .success();
}

fn configmap_version(lab: &SimLab) -> String {
    let out = lab
        .on("bettley")
        .run(&format!(
            "{KUBECTL} -n kube-system get configmap kubeadm-config -o yaml"
        ))
        .success();
    out.stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("kubernetesVersion: "))
        .unwrap()
        .to_string()
}

fn image(lab: &SimLab, node: &str, component: &str) -> String {
    let m = std::fs::read_to_string(
        lab.host_file(node, &format!("/etc/kubernetes/manifests/{component}.yaml")),
    )
    .unwrap();
    m.lines()
        .find_map(|l| l.trim().strip_prefix("image: "))
        .unwrap()
        .to_string()
}

fn kubelet_version(lab: &SimLab, node: &str) -> String {
    lab.node_json(node)["status"]["nodeInfo"]["kubeletVersion"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn kubeadm_reports_the_installed_packages_version() {
    let lab = small_lab();
    lab.on("fenn")
        .run("kubeadm version -o short")
        .success()
        .stdout_is("v1.32.4\n");
    install(&lab, "fenn", "1.33", "1.33.3", &["kubeadm"]);
    lab.on("fenn")
        .run("kubeadm version -o short")
        .success()
        .stdout_is("v1.33.3\n");
}

#[test]
fn a_minor_upgrade_moves_the_first_control_plane_then_the_others_then_the_kubelets() {
    let lab = cluster(&["cargyll"]);
    install(&lab, "bettley", "1.33", "1.33.3", &["kubeadm"]);

    let plan = lab
        .on("bettley")
        .run("kubeadm upgrade plan v1.33.3")
        .success();
    plan.stdout_contains("[upgrade/versions] Cluster version: 1.32.4\n[upgrade/versions] kubeadm version: v1.33.3\n[upgrade/versions] Target version: v1.33.3\n[upgrade/versions] Latest version in the v1.32 series: v1.33.3\n")
        .stdout_contains("COMPONENT   NODE      CURRENT   TARGET\nkubelet     bettley   v1.32.4   v1.33.3\nkubelet     cargyll   v1.32.4   v1.33.3\nkubelet     fenn      v1.32.4   v1.33.3\n")
        .stdout_contains("Upgrade to the latest version in the v1.32 series:\n\n")
        .stdout_contains("kube-apiserver            bettley   v1.32.4    v1.33.3\nkube-apiserver            cargyll   v1.32.4    v1.33.3\n")
        .stdout_contains("kube-proxy                          1.32.4     v1.33.3\nCoreDNS                             v1.11.3    v1.12.0\netcd                      bettley   3.5.16-0   3.5.21-0\n")
        .stdout_contains("\tkubeadm upgrade apply v1.33.3\n\n_____")
        .stdout_lacks("Note: Before you can perform this upgrade");

    let apply = lab
        .on("bettley")
        .run("kubeadm upgrade apply v1.33.3 --yes")
        .success();
    apply
        .stdout_contains("[upgrade/versions] Cluster version: v1.32.4\n[upgrade/versions] kubeadm version: v1.33.3\n")
        .stdout_contains("[upgrade/control-plane] Upgrading your static Pod-hosted control plane to version \"v1.33.3\" (timeout: 5m0s)...\n")
        .stdout_contains("[upgrad/kubeconfig] The kubeconfig files for this node were successfully upgraded!\n")
        .stdout_contains("[upgrade/addon] Skipping upgrade of addons because control plane instances [cargyll] have not been upgraded\n")
        .stdout_contains("\n[upgrade] SUCCESS! A control plane node of your cluster was upgraded to \"v1.33.3\".\n\n[upgrade] Now please proceed with upgrading the rest of the nodes by following the right order.\n");
    assert_eq!(configmap_version(&lab), "v1.33.3");
    for c in [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
    ] {
        assert_eq!(
            image(&lab, "bettley", c),
            format!("registry.k8s.io/{c}:v1.33.3")
        );
        assert_eq!(
            image(&lab, "cargyll", c),
            format!("registry.k8s.io/{c}:v1.32.4")
        );
    }
    assert_eq!(
        image(&lab, "bettley", "etcd"),
        "registry.k8s.io/etcd:3.5.21-0"
    );
    let backups: Vec<String> = std::fs::read_dir(lab.host_file("bettley", "/etc/kubernetes/tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        backups
            .iter()
            .any(|b| b.starts_with("kubeadm-backup-manifests-"))
            && backups
                .iter()
                .any(|b| b.starts_with("kubeadm-backup-etcd-")),
        "{backups:?}"
    );
    // The kubeadm step leaves the kubelet alone.
    assert_eq!(kubelet_version(&lab, "bettley"), "v1.32.4");

    // The other control plane follows the recorded version; it is the last,
    // so the addons move with it.
    install(&lab, "cargyll", "1.33", "1.33.3", &["kubeadm"]);
    lab.on("cargyll")
        .run("kubeadm upgrade node")
        .success()
        .stdout_contains("[upgrade/control-plane] Upgrading your Static Pod-hosted control plane instance to version \"v1.33.3\"...\n")
        .stdout_contains("[addons] Applied essential addon: CoreDNS\n[addons] Applied essential addon: kube-proxy\n")
        .stdout_contains("[upgrade] The configuration for this node was successfully upgraded!\n");
    assert_eq!(
        image(&lab, "cargyll", "kube-apiserver"),
        "registry.k8s.io/kube-apiserver:v1.33.3"
    );

    // A worker's upgrade only rewrites its kubelet configuration.
    install(&lab, "fenn", "1.33", "1.33.3", &["kubeadm"]);
    lab.on("fenn")
        .run("kubeadm upgrade node")
        .success()
        .stdout_is("[upgrade] Reading configuration from the \"kubeadm-config\" ConfigMap in namespace \"kube-system\"...\n\
[upgrade] Use 'kubeadm init phase upload-config --config your-config-file' to re-upload it.\n\
[upgrade/preflight] Running pre-flight checks\n\
[upgrade/preflight] Skipping prepull. Not a control plane node.\n\
[upgrade/control-plane] Skipping phase. Not a control plane node.\n\
[upgrade/kubeconfig] Skipping phase. Not a control plane node.\n\
[kubelet-start] Writing kubelet configuration to file \"/var/lib/kubelet/config.yaml\"\n\
[upgrade/kubelet-config] The kubelet configuration for this node was successfully upgraded!\n\
[upgrade/addon] Skipping the addon/coredns phase. Not a control plane node.\n\
[upgrade/addon] Skipping the addon/kube-proxy phase. Not a control plane node.\n\
[upgrade] The configuration for this node was successfully upgraded!\n\
[upgrade] Now you should go ahead and upgrade the kubelet package using your package manager.\n");

    // The kubelet's version changes with its package and a restart, not before.
    install(&lab, "fenn", "1.33", "1.33.3", &["kubelet", "kubectl"]);
    assert_eq!(kubelet_version(&lab, "fenn"), "v1.32.4");
    lab.on("fenn")
        .run("systemctl daemon-reload && systemctl restart kubelet")
        .success();
    assert_eq!(kubelet_version(&lab, "fenn"), "v1.33.3");
    eventually("fenn is Ready after its kubelet restart", || {
        lab.ready_status("fenn") == "True"
    });

    // Nothing left for the control plane: plan prints no table.
    lab.on("bettley")
        .run("kubeadm upgrade plan v1.33.3")
        .success()
        .stdout_lacks("COMPONENT");
}
