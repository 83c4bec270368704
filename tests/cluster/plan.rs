//! The whole pipeline against the lab: gt observes the simulated goldentooth
//! live, plans, and the plan follows the cluster through a bootstrap and
//! drift. A recorded observation plans byte for byte like the live one.

use crate::support::wait::eventually_within;

/// How long this file waits for the lab to get somewhere.
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(20);

use crate::support::gt::Test;
use crate::support::lab::{Lab, Transport};

use crate::support::kube::{apply_cni, kubeadm_init, ADMIN};

#[track_caller]
/// The gate by hand: the endpoint and every joined control plane's own API server ready.
fn gate(lab: &Lab, control_planes: &[&str]) {
    eventually_within("the control plane is ready", PATIENCE, || {
        lab.run("bettley", &format!("kubectl {ADMIN} get --raw /readyz"))
            .succeeded()
            && control_planes.iter().all(|cp| {
                lab.run(
                    "bettley",
                    &format!(
                        "kubectl {ADMIN} get --raw /readyz --server https://{}:6443",
                        lab.address(cp)
                    ),
                )
                .succeeded()
            })
    });
}

/// Init, CNI, two control-plane joins, nine worker joins, labels and the GPU
/// taint: what `gt apply` will do, by hand with the simulated tools.
fn bootstrap(lab: &Lab) {
    lab.run(
        "bettley",
        &format!("{} --skip-token-print", kubeadm_init(&lab.endpoint())),
    )
    .success();
    lab.run("bettley", &apply_cni()).success();
    let key = lab.run("bettley", "kubeadm init phase upload-certs --upload-certs");
    key.success();
    let key = key.stdout.lines().nth(2).unwrap().trim().to_string();
    let join = lab.run(
        "bettley",
        "kubeadm token create --ttl 15m --print-join-command",
    );
    join.success();
    let join = join.stdout.trim().to_string();
    let mut joined = vec!["bettley"];
    for cp in ["cargyll", "dalt"] {
        gate(lab, &joined);
        lab.run(
            cp,
            &format!("{join} --control-plane --certificate-key {key}"),
        )
        .success();
        joined.push(cp);
    }
    gate(lab, &joined);
    let spec = gt::spec::load_file(&lab.config()).unwrap();
    for w in spec.workers() {
        lab.run(w.name.as_str(), &join).success();
    }
    for n in &spec.nodes {
        let labels: Vec<String> = n.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        lab.run(
            "bettley",
            &format!(
                "kubectl {ADMIN} label node {} {} --overwrite",
                n.name,
                labels.join(" ")
            ),
        )
        .success();
        for t in &n.taints {
            lab.run(
                "bettley",
                &format!("kubectl {ADMIN} taint node {} {t}", n.name),
            )
            .success();
        }
    }
}

#[test]
fn plan_follows_the_lab_through_a_bootstrap_and_drift() {
    let lab = Lab::up(Transport::Local).model_etcd().speed(0.001).start();

    let empty = lab.gt(&["plan", "--detailed-exitcode", "--no-color"]);
    empty
        .status(2)
        .stdout_contains("Plan: 13 to add, 0 to change, 0 to destroy.");

    bootstrap(&lab);
    eventually_within("every node Ready, so the plan is empty", PATIENCE, || {
        lab.gt(&["plan", "--detailed-exitcode"]).succeeded()
    });
    lab.gt(&["plan", "--detailed-exitcode"])
        .success()
        .stdout_contains("No changes. Your cluster matches cluster.toml.");

    // cluster.toml moves on to 1.33: the cluster's record and static pods
    // are read live, the plan is one rung, and, since it drains, the pods
    // and budgets are read too: a bare pod and a budget allowing no
    // disruption on fenn are warned about before anything runs.
    let manifest = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: hr-app\n  labels:\n    app: hr\nspec:\n  nodeName: fenn\n  containers:\n  - name: app\n    image: registry.k8s.io/pause:3.10\n---\napiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: hr\nspec:\n  minAvailable: 1\n  selector:\n    matchLabels:\n      app: hr\n";
    lab.run(
        "bettley",
        &format!("kubectl {ADMIN} apply -f - <<'EOF'\n{manifest}EOF"),
    )
    .success();
    let newer = lab.dir().join("cluster-1.33.toml");
    let text = std::fs::read_to_string(lab.config()).unwrap();
    assert!(text.contains("kubernetes_version = \"1.32\""));
    std::fs::write(
        &newer,
        text.replace(
            "kubernetes_version = \"1.32\"",
            "kubernetes_version = \"1.33.3\"",
        ),
    )
    .unwrap();
    let upgrade = Test::new()
        .config(&newer)
        .args(["plan", "--no-color", "--detailed-exitcode"])
        .run();
    upgrade
        .status(2)
        .stdout_contains("      ~ kubernetes_version = \"v1.32.4 -> v1.33.3\"")
        .stdout_contains("  ~ node \"fenn\" {\n      ~ kubelet_version = \"v1.32.4 -> v1.33.3\"")
        .stdout_contains("Plan: 0 to add, 12 to change, 0 to destroy.")
        .stdout_contains("pods no controller owns: default/hr-app")
        .stdout_contains("PodDisruptionBudget default/hr");
    let json = Test::new().config(&newer).args(["plan", "--json"]).run();
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let first = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "upgrade/bettley@v1.33.3")
        .expect("bettley runs upgrade apply");
    assert_eq!(first["role"], "first");

    // Someone relabels fenn by hand; dalt's kubelet stops.
    lab.run(
        "bettley",
        &format!("kubectl {ADMIN} label node fenn goldentooth.io/storage=zfs --overwrite"),
    )
    .success();
    lab.fault("dalt", &["kubelet-stopped"]);
    // dalt's API server stops with its kubelet; until the load balancer's next
    // health check, a request through the endpoint may still reach it (EOF),
    // as with a real HAProxy. Compare settled observations.
    // Round-robin over three servers: three good answers in a row mean dalt is out.
    eventually_within("the load balancer has taken dalt out", PATIENCE, || {
        (0..3).all(|_| {
            lab.run("bettley", &format!("kubectl {ADMIN} get --raw /readyz"))
                .succeeded()
        })
    });
    let drifted = lab.gt(&["plan", "--detailed-exitcode", "--no-color"]);
    drifted
        .status(2)
        .stdout_contains("  ~ node \"fenn\" {")
        .stdout_contains("          - \"goldentooth.io/storage=zfs\",\n          + \"goldentooth.io/storage=ceph\",")
        .stdout_contains("  ~ node \"dalt\" {\n      ~ kubelet = \"active\"\n    }")
        .stdout_contains("Plan: 0 to add, 2 to change, 0 to destroy.")
        .stdout_contains("dalt is NotReady");

    // Recorded facts plan exactly like the live observation they record.
    let facts = lab.dir().join("facts.json");
    lab.gt(&["observe", "--out", facts.to_str().unwrap()])
        .success();
    let recorded = lab.gt(&["plan", "--no-color", "--facts", facts.to_str().unwrap()]);
    recorded.success();
    assert_eq!(recorded.stdout, drifted.stdout);
    let json = lab.gt(&["plan", "--json", "--facts", facts.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["changes"][0]["address"], "node.dalt");
    assert_eq!(v["changes"][0]["steps"][0], "start-kubelet/dalt");
    assert_eq!(v["changes"][1]["address"], "node.fenn");
    assert_eq!(v["changes"][1]["steps"][0], "update/fenn");
    assert_eq!(v["warnings"][0]["kind"], "not_ready");
}
