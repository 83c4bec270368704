//! The whole pipeline against the lab: gt observes the simulated goldentooth
//! live, plans, and the plan follows the cluster through a bootstrap and
//! drift. A recorded observation plans byte for byte like the live one.

#[path = "support/lab.rs"]
mod lab_support;
#[path = "support/wait.rs"]
mod wait;
use wait::eventually_within;

/// How long this file waits for the lab to get somewhere.
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(20);

use lab_support::{Lab, Transport};

const ADMIN: &str = "--kubeconfig ${GT_HOST_ROOT}/etc/kubernetes/admin.conf";

#[track_caller]
/// The gate by hand: the endpoint and every joined control plane's own API server ready.
fn gate(lab: &Lab, control_planes: &[&str]) {
    eventually_within("the control plane is ready", PATIENCE, || {
        lab.run("bettley", &format!("kubectl {ADMIN} get --raw /readyz"))
            .success()
            && control_planes.iter().all(|cp| {
                lab.run(
                    "bettley",
                    &format!(
                        "kubectl {ADMIN} get --raw /readyz --server https://{}:6443",
                        lab.address(cp)
                    ),
                )
                .success()
            })
    });
}

/// Init, CNI, two control-plane joins, nine worker joins, labels and the GPU
/// taint: what `gt apply` will do, by hand with the simulated tools.
fn bootstrap(lab: &Lab) {
    lab.run(
        "bettley",
        &format!(
            "kubeadm init --control-plane-endpoint={} --kubernetes-version=stable-1.32 \
             --service-cidr=172.16.0.0/20 --pod-network-cidr=192.168.0.0/16 --upload-certs --skip-token-print",
            lab.endpoint()
        ),
    )
    .assert_ok();
    lab.run(
        "bettley",
        &format!("kubectl {ADMIN} apply -f https://raw.githubusercontent.com/projectcalico/calico/v3.29.1/manifests/calico.yaml"),
    )
    .assert_ok();
    let key = lab.run("bettley", "kubeadm init phase upload-certs --upload-certs");
    key.assert_ok();
    let key = key.stdout.lines().nth(2).unwrap().trim().to_string();
    let join = lab.run(
        "bettley",
        "kubeadm token create --ttl 15m --print-join-command",
    );
    join.assert_ok();
    let join = join.stdout.trim().to_string();
    let mut joined = vec!["bettley"];
    for cp in ["cargyll", "dalt"] {
        gate(lab, &joined);
        lab.run(
            cp,
            &format!("{join} --control-plane --certificate-key {key}"),
        )
        .assert_ok();
        joined.push(cp);
    }
    gate(lab, &joined);
    let spec = gt::spec::load_file(&lab.config()).unwrap();
    for w in spec.workers() {
        lab.run(w.name.as_str(), &join).assert_ok();
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
        .assert_ok();
        for t in &n.taints {
            lab.run(
                "bettley",
                &format!("kubectl {ADMIN} taint node {} {t}", n.name),
            )
            .assert_ok();
        }
    }
}

#[test]
fn plan_follows_the_lab_through_a_bootstrap_and_drift() {
    let lab = Lab::up(Transport::Local).speed(0.001).start();

    let empty = lab.gt(&["plan", "--detailed-exitcode", "--no-color"]);
    empty
        .assert_code(2)
        .assert_stdout_contains("Plan: 13 to add, 0 to change, 0 to destroy.");

    bootstrap(&lab);
    eventually_within("every node Ready, so the plan is empty", PATIENCE, || {
        lab.gt(&["plan", "--detailed-exitcode"]).success()
    });
    lab.gt(&["plan", "--detailed-exitcode"])
        .assert_ok()
        .assert_stdout_contains("No changes. Your cluster matches cluster.toml.");

    // Someone relabels fenn by hand; dalt's kubelet stops.
    lab.run(
        "bettley",
        &format!("kubectl {ADMIN} label node fenn goldentooth.io/storage=zfs --overwrite"),
    )
    .assert_ok();
    lab.fault("dalt", &["kubelet-stopped"]);
    // dalt's API server stops with its kubelet; until the load balancer's next
    // health check, a request through the endpoint may still reach it (EOF),
    // as with a real HAProxy. Compare settled observations.
    // Round-robin over three servers: three good answers in a row mean dalt is out.
    eventually_within("the load balancer has taken dalt out", PATIENCE, || {
        (0..3).all(|_| {
            lab.run("bettley", &format!("kubectl {ADMIN} get --raw /readyz"))
                .success()
        })
    });
    let drifted = lab.gt(&["plan", "--detailed-exitcode", "--no-color"]);
    drifted
        .assert_code(2)
        .assert_stdout_contains("  ~ node \"fenn\" {")
        .assert_stdout_contains("          - \"goldentooth.io/storage=zfs\",\n          + \"goldentooth.io/storage=ceph\",")
        .assert_stdout_contains("  ~ node \"dalt\" {\n      ~ kubelet = \"active\"\n    }")
        .assert_stdout_contains("Plan: 0 to add, 2 to change, 0 to destroy.")
        .assert_stdout_contains("dalt is NotReady");

    // Recorded facts plan exactly like the live observation they record.
    let facts = lab.dir().join("facts.json");
    lab.gt(&["observe", "--out", facts.to_str().unwrap()])
        .assert_ok();
    let recorded = lab.gt(&["plan", "--no-color", "--facts", facts.to_str().unwrap()]);
    recorded.assert_ok();
    assert_eq!(recorded.stdout, drifted.stdout);
    let json = lab.gt(&["plan", "--json", "--facts", facts.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["changes"][0]["address"], "node.dalt");
    assert_eq!(v["changes"][0]["steps"][0], "start-kubelet/dalt");
    assert_eq!(v["changes"][1]["address"], "node.fenn");
    assert_eq!(v["changes"][1]["steps"][0], "update/fenn");
    assert_eq!(v["warnings"][0]["kind"], "not_ready");
}
