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
    // 1.34 prints a failed preflight's report bare and wraps only its gist;
    // every error of its reads `error: ...` and exits 1.
    install(&lab, "fenn", "1.34", "1.34.2", &["kubeadm"]);
    lab.on("fenn")
        .run("sysctl -w net.ipv4.ip_forward=0 >/dev/null && kubeadm join 127.4.0.11:6443 --token abcdef.0123456789abcdef --discovery-token-unsafe-skip-ca-verification")
        .status(1)
        .stderr_contains("[preflight] Some fatal errors occurred:\n\t[ERROR FileContent--proc-sys-net-ipv4-ip_forward]: /proc/sys/net/ipv4/ip_forward contents are not set to 1\n[preflight] If you know what you are doing, you can make a check non-fatal with `--ignore-preflight-errors=...`\nerror: error execution phase preflight: preflight checks failed\nTo see the stack trace of this error execute with --v=5 or higher\n");
    lab.on("fenn")
        .run(&kubeadm_init(ENDPOINT))
        .status(1)
        .stderr_is("error: this version of kubeadm only supports deploying clusters with the control plane version >= 1.33.0. Current version: v1.32.0\nTo see the stack trace of this error execute with --v=5 or higher\n");
}

#[test]
fn a_minor_upgrade_moves_the_first_control_plane_then_the_others_then_the_kubelets() {
    let lab = cluster(&["cargyll"]);
    // Without a version kubeadm, offline, targets its own: nothing to do.
    lab.on("bettley")
        .run("kubeadm upgrade plan")
        .success()
        .stderr_contains("could not fetch a Kubernetes version from the internet: unable to get URL \"https://dl.k8s.io/release/stable.txt\"")
        .stdout_contains("[upgrade/versions] Target version: v1.32.4\n[upgrade/versions] Latest version in the v1.32 series: v1.32.4\n\n")
        .stdout_lacks("COMPONENT");
    // Plan shows a target kubeadm cannot apply, with the note, and exits 0.
    lab.on("bettley")
        .run("kubeadm upgrade plan v1.33.3")
        .success()
        .stdout_contains(
            "Note: Before you can perform this upgrade, you have to update kubeadm to v1.33.3.\n",
        );
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

    // apply re-checks the control plane's health, then kubeadm's version skew policy.
    // A kubelet re-syncing after its restart reports NotReady (slowed here
    // so that it still is when apply looks).
    lab.set_fault("cargyll", |f| f.slow = Some(1000.0));
    lab.on("cargyll").run("systemctl restart kubelet").success();
    lab.set_fault("cargyll", |f| f.slow = None);
    lab.on("bettley")
        .run("kubeadm upgrade apply v1.33.3 --yes")
        .status(1)
        .stderr_is("error execution phase preflight: [preflight] Some fatal errors occurred:\n\t[ERROR ControlPlaneNodesReady]: there are NotReady control-planes in the cluster: [cargyll]\n[preflight] If you know what you are doing, you can make a check non-fatal with `--ignore-preflight-errors=...`\nTo see the stack trace of this error execute with --v=5 or higher\n");
    // plan is no phase: its health failure is wrapped as `[upgrade/health] FATAL`.
    lab.on("bettley")
        .run("kubeadm upgrade plan v1.33.3")
        .status(1)
        .stderr_is("[upgrade/health] FATAL: [preflight] Some fatal errors occurred:\n\t[ERROR ControlPlaneNodesReady]: there are NotReady control-planes in the cluster: [cargyll]\n[preflight] If you know what you are doing, you can make a check non-fatal with `--ignore-preflight-errors=...`\nTo see the stack trace of this error execute with --v=5 or higher\n");
    lab.on("cargyll").run("systemctl restart kubelet").success();
    eventually("cargyll is Ready again", || {
        lab.ready_status("cargyll") == "True"
    });
    lab.on("bettley")
        .run("kubeadm upgrade apply v1.34.2 --yes")
        .status(1)
        .stderr_is("error execution phase preflight: the version argument is invalid due to these fatal errors:\n\n\t- Specified version to upgrade to \"v1.34.2\" is too high; kubeadm can upgrade only 1 minor version at a time\n\t- Specified version to upgrade to \"v1.34.2\" is at least one minor release higher than the kubeadm minor release (34 > 33). Such an upgrade is not supported\n\nPlease fix the misalignments highlighted above and try upgrading again\nTo see the stack trace of this error execute with --v=5 or higher\n");
    lab.on("cargyll")
        .run("kubeadm upgrade apply v1.33.3 --yes")
        .status(1)
        .stderr_contains("\t- Specified version to upgrade to \"v1.33.3\" is at least one minor release higher than the kubeadm minor release (33 > 32). Such an upgrade is not supported\n");
    // Without --yes it asks, and an answer that is not y is a refusal.
    lab.on("bettley")
        .stdin("")
        .run("kubeadm upgrade apply v1.33.3")
        .status(1)
        .stdout_contains("[upgrade] Are you sure you want to proceed? [y/N]: ")
        .stderr_is("error execution phase preflight: won't proceed; the user didn't answer (Y|y) in order to continue\nTo see the stack trace of this error execute with --v=5 or higher\n");
    assert_eq!(configmap_version(&lab), "v1.32.4");

    let apply = lab
        .on("bettley")
        .stdin("y\n")
        .run("kubeadm upgrade apply v1.33.3")
        .success();
    apply
        .stdout_contains("[upgrade/versions] Cluster version: v1.32.4\n[upgrade/versions] kubeadm version: v1.33.3\n")
        .stdout_contains("[upgrade/control-plane] Upgrading your static Pod-hosted control plane to version \"v1.33.3\" (timeout: 5m0s)...\n")
        .stdout_contains("[upgrad/kubeconfig] The kubeconfig files for this node were successfully upgraded!\n")
        .stdout_contains("[upgrade/addon] Skipping upgrade of addons because control plane instances [cargyll] have not been upgraded\n")
        .stdout_contains("\n[upgrade] SUCCESS! A control plane node of your cluster was upgraded to \"v1.33.3\".\n\n[upgrade] Now please proceed with upgrading the rest of the nodes by following the right order.\n");
    assert_eq!(configmap_version(&lab), "v1.33.3");
    let version = lab
        .on("bettley")
        .run(&format!("{KUBECTL} get --raw /version"))
        .success()
        .json();
    assert_eq!(
        (&version["gitVersion"], &version["minor"]),
        (&"v1.33.3".into(), &"33".into())
    );
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
    lab.set_fault("fenn", |f| f.fail_upgrade = true);
    lab.on("fenn")
        .run("kubeadm upgrade node")
        .status(1)
        .stderr_is("unable to fetch the kubeadm-config ConfigMap: failed to get config map: Get \"https://127.4.0.10:6443/api/v1/namespaces/kube-system/configmaps/kubeadm-config?timeout=10s\": net/http: request canceled while waiting for connection (Client.Timeout exceeded while awaiting headers)\nTo see the stack trace of this error execute with --v=5 or higher\n");
    lab.set_fault("fenn", |f| f.fail_upgrade = false);
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

    // kubeadm 1.33 goes no lower than 1.33 without --force.
    lab.on("bettley")
        .run("kubeadm upgrade apply v1.32.4 --yes")
        .status(1)
        .stderr_contains("the version argument is invalid due to these errors:\n\n\t- Kubeadm version v1.33.3 can only be used to upgrade to Kubernetes version 1.33\n\nCan be bypassed if you pass the --force flag\n");

    // A kubeadm two minors ahead refuses the cluster; 1.34 and later say `error: `.
    install(&lab, "fenn", "1.35", "1.35.1", &["kubeadm"]);
    lab.on("fenn")
        .run("kubeadm upgrade node")
        .status(1)
        .stderr_is("error: this version of kubeadm only supports deploying clusters with the control plane version >= 1.34.0. Current version: v1.33.3\nTo see the stack trace of this error execute with --v=5 or higher\n");

    // Nothing left for the control plane: plan prints no table.
    lab.on("bettley")
        .run("kubeadm upgrade plan v1.33.3")
        .success()
        .stdout_lacks("COMPONENT");
}

/// `KUBECTL apply -f -` with `manifest` on stdin, on bettley.
fn apply_stdin(lab: &SimLab, manifest: &str) -> crate::support::gt::Output {
    lab.on("bettley")
        .stdin(manifest)
        .run(&format!("{KUBECTL} apply -f -"))
}

/// A pod no controller owns on fenn, and a budget guarding it.
fn bare_pod_and_budget() -> String {
    crate::support::workloads::pod_and_budget("hr-app", "fenn", false)
}

#[test]
fn drains_stop_at_bare_pods_and_at_budgets_that_allow_no_disruption() {
    let lab = cluster(&[]);
    apply_stdin(&lab, &bare_pod_and_budget())
        .success()
        .stdout_is("pod/hr-app created\npoddisruptionbudget.policy/hr created\n");
    apply_stdin(&lab, &bare_pod_and_budget())
        .success()
        .stdout_is("pod/hr-app unchanged\npoddisruptionbudget.policy/hr unchanged\n");

    let pdbs = lab
        .on("bettley")
        .run(&format!("{KUBECTL} get pdb -A -o json"))
        .success()
        .json();
    let hr = &pdbs["items"][0];
    assert_eq!(hr["kind"], "PodDisruptionBudget");
    assert_eq!(hr["spec"]["minAvailable"], 1);
    assert_eq!(hr["status"]["disruptionsAllowed"], 0);
    assert_eq!(hr["status"]["currentHealthy"], 1);

    let pods = lab
        .on("bettley")
        .run(&format!(
            "{KUBECTL} get pods -A -o json --field-selector spec.nodeName=fenn"
        ))
        .success()
        .json();
    let items = pods["items"].as_array().unwrap();
    let owner = |prefix: &str| {
        let p = items
            .iter()
            .find(|p| p["metadata"]["name"].as_str().unwrap().starts_with(prefix))
            .unwrap_or_else(|| panic!("no pod {prefix}* on fenn: {pods}"));
        assert_eq!(p["spec"]["nodeName"], "fenn");
        p["metadata"]["ownerReferences"][0]["kind"].clone()
    };
    assert_eq!(owner("hr-app"), serde_json::Value::Null);
    assert_eq!(owner("kube-proxy-"), "DaemonSet");
    assert_eq!(owner("calico-node-"), "DaemonSet");

    // A bare Pod: refused without --force, in kubectl's doubled words.
    lab.on("bettley")
        .run(&format!("{KUBECTL} drain fenn --ignore-daemonsets --delete-emptydir-data"))
        .status(1)
        .stdout_is("node/fenn cordoned\n")
        .stderr_is("error: unable to drain node \"fenn\" due to error: cannot delete cannot delete Pods that declare no controller (use --force to override): default/hr-app, continuing command...\nThere are pending nodes to be drained:\n fenn\ncannot delete cannot delete Pods that declare no controller (use --force to override): default/hr-app\n");

    // Forced, the budget refuses the eviction every 5 s until the timeout.
    let out = lab
        .on("bettley")
        .run(&format!(
            "{KUBECTL} drain fenn --ignore-daemonsets --force --timeout=30s"
        ))
        .status(1);
    out.stderr_contains("Warning: deleting Pods that declare no controller: default/hr-app; ignoring DaemonSet-managed Pods: kube-system/calico-node-")
        .stderr_contains("error when evicting pods/\"hr-app\" -n \"default\" (will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget.\n")
        .stderr_contains("error: unable to drain node \"fenn\" due to error: error when evicting pods/\"hr-app\" -n \"default\": global timeout reached: 30s, continuing command...\nThere are pending nodes to be drained:\n fenn\nerror when evicting pods/\"hr-app\" -n \"default\": global timeout reached: 30s\n")
        .stdout_contains("evicting pod default/hr-app\n");
    assert_eq!(lab.node_json("fenn")["spec"]["unschedulable"], true);

    // A budget that allows one disruption lets the drain through; the bare
    // Pod is gone for good.
    apply_stdin(
        &lab,
        &bare_pod_and_budget().replace("minAvailable: 1", "maxUnavailable: 1"),
    )
    .success()
    .stdout_is("pod/hr-app unchanged\npoddisruptionbudget.policy/hr configured\n");
    lab.on("bettley")
        .run(&format!(
            "{KUBECTL} drain fenn --ignore-daemonsets --force --timeout=30s"
        ))
        .success()
        .stdout_contains("evicting pod default/hr-app\n")
        .stdout_contains("pod/hr-app evicted\nnode/fenn drained\n");
    lab.on("bettley")
        .run(&format!("{KUBECTL} get pods hr-app"))
        .status(1)
        .stderr_is("Error from server (NotFound): pods \"hr-app\" not found\n");

    // Annotations mark a node; uncordon puts it back.
    lab.on("bettley")
        .run(&format!(
            "{KUBECTL} annotate node fenn gt.example/cordoned=upgrade"
        ))
        .success()
        .stdout_is("node/fenn annotated\n");
    lab.on("bettley")
        .run(&format!("{KUBECTL} annotate node fenn gt.example/cordoned=other"))
        .status(1)
        .stderr_is("error: --overwrite is false but found the following declared annotation(s): 'gt.example/cordoned' already has a value (upgrade)\n");
    assert_eq!(
        lab.node_json("fenn")["metadata"]["annotations"]["gt.example/cordoned"],
        "upgrade"
    );
    lab.on("bettley")
        .run(&format!(
            "{KUBECTL} annotate node fenn gt.example/cordoned- && {KUBECTL} uncordon fenn"
        ))
        .success()
        .stdout_is("node/fenn annotated\nnode/fenn uncordoned\n");
    let fenn = lab.node_json("fenn");
    assert_eq!(
        fenn["metadata"]["annotations"]["gt.example/cordoned"],
        serde_json::Value::Null
    );
    assert_eq!(fenn["spec"]["unschedulable"], serde_json::Value::Null);
}

#[test]
fn a_cni_manifest_on_stdin_brings_the_pod_network_and_other_input_is_refused() {
    let lab = small_lab();
    lab.on("bettley").run(&kubeadm_init(ENDPOINT)).success();
    lab.wait_api_ready();
    let manifest = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: kube-flannel\n---\napiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: kube-flannel-ds\n  namespace: kube-flannel\nspec:\n  template:\n    spec:\n      containers:\n      - name: kube-flannel\n        image: ghcr.io/flannel-io/flannel:v0.26.1\n";
    apply_stdin(&lab, manifest)
        .success()
        .stdout_is("namespace/kube-flannel created\ndaemonset.apps/kube-flannel-ds created\n");
    eventually("bettley is Ready on the new pod network", || {
        lab.ready_status("bettley") == "True"
    });
    apply_stdin(&lab, &manifest.replace("v0.26.1", "v0.26.2"))
        .success()
        .stdout_is("namespace/kube-flannel unchanged\ndaemonset.apps/kube-flannel-ds configured\n");
    apply_stdin(&lab, "hello\n")
        .status(1)
        .stderr_is("error: error validating \"STDIN\": error validating data: [apiVersion not set, kind not set]; if you choose to ignore these errors, turn validation off with --validate=false\n");
    apply_stdin(&lab, "")
        .status(1)
        .stderr_is("error: no objects passed to apply\n");
}

/// `kubeadm init phase upload-certs` loads the init configuration as every
/// init phase does: bare, its version is the label `stable-1`, which an
/// offline host fails to look up at dl.k8s.io (kubeadm's warning, then its
/// own version); with gt's configuration on stdin nothing is looked up.
#[test]
fn upload_certs_looks_its_version_up_unless_given_gts_configuration() {
    let lab = small_lab();
    lab.on("bettley").run(&kubeadm_init(ENDPOINT)).success();
    lab.wait_api_ready();

    lab.on("bettley")
        .run("kubeadm init phase upload-certs --upload-certs")
        .success()
        .stderr_contains("] could not fetch a Kubernetes version from the internet: unable to get URL \"https://dl.k8s.io/release/stable-1.txt\"")
        .stderr_contains("] falling back to the local client version: v1.32.4\n")
        .stdout_contains("[upload-certs] Using certificate key:\n");

    let spec = gt::spec::load_file(&crate::support::gt::goldentooth()).unwrap();
    let config =
        gt::kube::kubeadm::upload_certs_config(&spec, &gt::kube::kubeadm::Release(1, 32, 4));
    let gts = lab
        .on("bettley")
        .stdin(std::str::from_utf8(&config).unwrap())
        .run(&gt::kube::kubeadm::upload_certs_command())
        .success()
        .stdout_contains("[upload-certs] Using certificate key:\n");
    assert!(!gts.stderr.contains("dl.k8s.io"), "{gts}");

    // A label in the file is looked up too; a file kubeadm cannot read stops it.
    lab.on("bettley")
        .stdin(r#"{"apiVersion":"kubeadm.k8s.io/v1beta4","kind":"ClusterConfiguration","kubernetesVersion":"stable-1.32"}"#)
        .run("kubeadm init phase upload-certs --upload-certs --config=/dev/stdin")
        .success()
        .stderr_contains("unable to get URL \"https://dl.k8s.io/release/stable-1.32.txt\"");
    lab.on("bettley")
        .run("kubeadm init phase upload-certs --upload-certs --config /nowhere.yaml")
        .status(1)
        .stderr_contains("unable to read config from \"/nowhere.yaml\"");
}
