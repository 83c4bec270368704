//! Backups and the restore drill on the lab's real etcd, over ssh: a backup
//! taken through a control plane's etcd pod (files private, checksums
//! true, no key material in any output), retention, a corrupted snapshot
//! refused, then every control plane's etcd data wiped (the lab's API
//! objects live in etcd, so the cluster's Nodes go with it) and the
//! cluster brought back by `gt restore`: what was written before the
//! backup is there again (Nodes, labels, taints), what came after is gone
//! (gt's plan shows a label applied since as a change again), and drift
//! is 0.

use crate::support::gt::{Output, Test};
use crate::support::lab::{Lab, Transport};
use crate::support::wait::eventually;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

const CONTROL_PLANES: [&str; 3] = ["bettley", "cargyll", "dalt"];

/// `etcdctl ARGS` in `node`'s etcd pod, as an admin would type it.
fn etcdctl(lab: &Lab, node: &str, args: &str) -> Output {
    lab.run(
        node,
        &format!(
            "kubectl --kubeconfig \"$GT_HOST_ROOT/etc/kubernetes/admin.conf\" -n kube-system exec etcd-{node} -- \
             etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt \
             --cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt \
             --key=/etc/kubernetes/pki/etcd/healthcheck-client.key {args}"
        ),
    )
}

/// The cluster's Nodes as `kubectl get nodes -o json` on bettley gives them
/// (`None` while the API cannot answer).
fn nodes(lab: &Lab) -> Option<serde_json::Value> {
    let out = lab.run(
        "bettley",
        "kubectl --kubeconfig \"$GT_HOST_ROOT/etc/kubernetes/admin.conf\" get nodes -o json",
    );
    if !out.succeeded() {
        return None;
    }
    serde_json::from_str::<serde_json::Value>(&out.stdout)
        .ok()
        .map(|v| v["items"].clone())
}

/// `node`'s labels and taints, as `key=value` and `key=value:Effect`.
fn labels_and_taints(items: &serde_json::Value, node: &str) -> (Vec<String>, Vec<String>) {
    let n = items
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["metadata"]["name"] == node)
        .unwrap_or_else(|| panic!("no Node {node}: {items}"));
    let labels = n["metadata"]["labels"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
        .collect();
    let taints = n["spec"]["taints"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .map(|t| {
                    format!(
                        "{}={}:{}",
                        t["key"].as_str().unwrap(),
                        t["value"].as_str().unwrap_or(""),
                        t["effect"].as_str().unwrap()
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    (labels, taints)
}

/// The lab's cluster.toml with `label` added to `node`'s inline labels.
fn with_label(lab: &Lab, name: &str, node: &str, label: &str) -> PathBuf {
    let text = std::fs::read_to_string(lab.config()).unwrap();
    let table = text.find(&format!("[nodes.{node}]")).unwrap();
    let labels = table + text[table..].find("labels = { ").unwrap() + "labels = { ".len();
    let (key, value) = label.split_once('=').unwrap();
    let mut text = text;
    text.insert_str(labels, &format!("\"{key}\" = \"{value}\", "));
    let path = lab.dir().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// The etcdutl of the etcd release the lab runs, for `--etcdutl`: the hosts
/// have none of their own.
fn etcdutl() -> String {
    Path::new(env!("GT_TEST_ETCD_PATH"))
        .with_file_name("etcdutl")
        .display()
        .to_string()
}

/// No output of gt shows a private key or any of the PKI's bytes.
#[track_caller]
fn no_key_material(lab: &Lab, run: &Output) {
    let pki = lab.host_root("bettley").join("etc/kubernetes/pki");
    for key in ["ca.key", "sa.key", "front-proxy-ca.key", "etcd/ca.key"] {
        let pem = std::fs::read_to_string(pki.join(key)).unwrap();
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        for text in [&run.stdout, &run.stderr] {
            assert!(!text.contains("PRIVATE KEY"), "{run}");
            assert!(!text.contains(&body[..40]), "{key} in the output: {run}");
        }
    }
}

fn backups(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

/// Stops every control plane's etcd as dead disks would, then loses their
/// data: the manifests moved away until the lab's kubelets have stopped
/// every member (a member wiped while another still runs would be sent
/// its data back), the data directories emptied, the manifests put back.
fn wipe_every_member(lab: &Lab) {
    for node in CONTROL_PLANES {
        lab.run(
            node,
            "mv \"$GT_HOST_ROOT/etc/kubernetes/manifests/etcd.yaml\" \"$GT_HOST_ROOT/etcd.yaml.away\"",
        )
        .success();
    }
    for node in CONTROL_PLANES {
        let pid = lab.dir().join(format!("pids/etcd-{node}.pid"));
        eventually(&format!("etcd on {node} stops"), || !pid.exists());
    }
    for node in CONTROL_PLANES {
        lab.run(
            node,
            "rm -rf \"$GT_HOST_ROOT/var/lib/etcd/member\" && \
             mv \"$GT_HOST_ROOT/etcd.yaml.away\" \"$GT_HOST_ROOT/etc/kubernetes/manifests/etcd.yaml\"",
        )
        .success();
    }
}

#[test]
#[cfg_attr(
    not(any(all(has_sshd, has_etcd), ci)),
    ignore = "needs sshd and etcd 3.5: apt-get install openssh-server; scripts/install-etcd.sh"
)]
fn backup_then_wipe_every_member_then_restore_brings_the_cluster_back() {
    let lab = Lab::up(Transport::Ssh).converged();
    // Keys without a leading slash: the lab maps absolute paths in a pod's
    // arguments through its volumes, as it must for file arguments.
    etcdctl(&lab, "bettley", "put gt-drill-before kept").success();
    let dir = lab.dir().join("backups");
    let dir_s = dir.to_str().unwrap();

    let run = lab.gt(&["backup", "--out", dir_s]).success();
    run.stdout_contains("Backup of goldentooth written to ")
        .stdout_contains("from the etcd member of bettley");
    assert!(run.stdout.contains(", revision "), "{run}");
    no_key_material(&lab, &run);
    let [backup] = &backups(&dir)[..] else {
        panic!("one backup: {run}")
    };
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(backup), 0o700);
    for f in [
        "etcd-snapshot.db",
        "pki.tar",
        "kubeadm-config.yaml",
        "SHA256SUMS",
    ] {
        assert_eq!(mode(&backup.join(f)), 0o600, "{f}");
    }
    let config = std::fs::read_to_string(backup.join("kubeadm-config.yaml")).unwrap();
    assert!(config.contains("kind: ClusterConfiguration"), "{config}");
    let sums = std::process::Command::new("sha256sum")
        .args(["-c", "--quiet", "SHA256SUMS"])
        .current_dir(backup)
        .status()
        .unwrap();
    assert!(sums.success());
    let tar = std::process::Command::new("tar")
        .args(["-tf", "pki.tar"])
        .current_dir(backup)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&tar.stdout).contains("pki/etcd/ca.key"));
    // The snapshot left nothing behind on the control plane.
    let leftovers: Vec<_> = std::fs::read_dir(lab.host_root("bettley").join("var/lib/etcd"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("gt-snapshot-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    etcdctl(&lab, "bettley", "put gt-drill-after lost").success();
    let before = nodes(&lab).expect("the API answers");
    let later_label = "goldentooth.io/drill=after-the-backup";
    let later = with_label(&lab, "later-label.toml", "fenn", later_label);
    Test::new()
        .config(&later)
        .args(["apply", "--auto-approve"])
        .run()
        .success();
    let (labels, _) = labels_and_taints(&nodes(&lab).unwrap(), "fenn");
    assert!(labels.contains(&later_label.to_string()), "{labels:?}");

    // While etcd has quorum, a restore is refused and nothing changes.
    let backup_s = backup.to_str().unwrap();
    let etcdutl = etcdutl();
    let restore = ["restore", "--auto-approve", "--etcdutl", &etcdutl, backup_s];
    lab.gt(&restore)
        .status(1)
        .stderr_contains("refusing to restore: etcd still has quorum");
    // --out saves the plan (gt plan --json's document) and changes nothing,
    // even with --force.
    let saved = lab.dir().join("restore-plan.json");
    let saved_s = saved.to_str().unwrap();
    lab.gt(&[
        "restore",
        "--force",
        "--etcdutl",
        &etcdutl,
        "--out",
        saved_s,
        backup_s,
    ])
    .success()
    .stdout_contains("Saved the restore plan to: ")
    .stdout_contains("Nothing was changed.");
    assert_eq!(mode(&saved), 0o600);
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    assert_eq!(doc["format_version"], "1.0");
    assert_eq!(doc["has_changes"], true);
    let steps: Vec<&str> = doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    for cp in CONTROL_PLANES {
        assert!(
            steps.contains(&format!("restore-etcd/{cp}").as_str()),
            "{steps:?}"
        );
    }
    // A restore plan is no plan for gt apply.
    lab.gt(&["apply", saved_s]).status(1);
    assert!(lab
        .host_root("dalt")
        .join("etc/kubernetes/manifests/etcd.yaml")
        .is_file());

    wipe_every_member(&lab);
    // The API objects were in etcd: bettley's member starts over empty
    // and its API server has no Nodes left to list.
    eventually("the API lists no Nodes", || {
        nodes(&lab).is_some_and(|items| items.as_array().unwrap().is_empty())
    });
    // bettley's member may start over alone and empty (its manifest names
    // only itself) and answer before gt looks: --force, as an operator who
    // knows the data is gone would.
    let forced = [
        "restore",
        "--force",
        "--auto-approve",
        "--etcdutl",
        &etcdutl,
        backup_s,
    ];
    let run = lab.gt(&forced);
    run.success();
    no_key_material(&lab, &run);
    assert!(run.stdout.contains("revision "), "{run}");
    assert!(
        run.stdout.contains("etcd restored from the snapshot"),
        "{run}"
    );

    let got = etcdctl(&lab, "cargyll", "get gt-drill-before --print-value-only").success();
    assert_eq!(got.stdout.trim(), "kept");
    let got = etcdctl(&lab, "dalt", "get gt-drill-after --print-value-only").success();
    assert_eq!(got.stdout.trim(), "");
    let members = etcdctl(&lab, "bettley", "member list").success();
    for cp in CONTROL_PLANES {
        assert!(
            members.stdout.contains(&format!(", started, {cp}, ")),
            "{members}"
        );
        let root = lab.host_root(cp);
        assert!(
            !root.join("var/lib/gt-restore").exists(),
            "snapshot copy left on {cp}"
        );
        let manifest =
            std::fs::read_to_string(root.join("etc/kubernetes/manifests/etcd.yaml")).unwrap();
        assert!(
            manifest.contains("path: /var/lib/etcd-restored-"),
            "{manifest}"
        );
    }
    // The Nodes are back as the snapshot holds them: every one, with the
    // labels and taints they had at the backup, not the label added since.
    let after = nodes(&lab).expect("the API answers after the restore");
    assert_eq!(after.as_array().unwrap().len(), 12, "{after}");
    for node in lab.node_names() {
        assert_eq!(
            labels_and_taints(&after, &node),
            labels_and_taints(&before, &node),
            "{node}"
        );
    }
    let (_, taints) = labels_and_taints(&after, "velaryon");
    assert_eq!(taints, ["goldentooth.io/gpu=true:NoSchedule"]);
    let run = lab.gt(&["drift"]);
    run.status(0);
    // The file that asks for the later label plans it again.
    Test::new()
        .config(&later)
        .args(["plan"])
        .run()
        .success()
        .stdout_contains("~ node \"fenn\"")
        .stdout_contains(&format!("+ \"{later_label}\""));
}

#[test]
#[cfg_attr(
    not(any(all(has_sshd, has_etcd), ci)),
    ignore = "needs sshd and etcd 3.5: apt-get install openssh-server; scripts/install-etcd.sh"
)]
fn retention_keeps_the_newest_and_a_corrupted_snapshot_is_never_restored() {
    let lab = Lab::up(Transport::Ssh).converged();
    let dir = lab.dir().join("backups");
    let dir_s = dir.to_str().unwrap();
    for _ in 0..3 {
        lab.gt(&["backup", "--out", dir_s, "--keep", "2"]).success();
        // Names are by the second.
        std::thread::sleep(Duration::from_millis(1100));
    }
    let kept = backups(&dir);
    assert_eq!(kept.len(), 2, "{kept:?}");
    let snap = kept[1].join("etcd-snapshot.db");
    let mut bytes = std::fs::read(&snap).unwrap();
    bytes[4096] ^= 0x5a;
    std::fs::write(&snap, bytes).unwrap();
    let etcdutl = etcdutl();
    lab.gt(&[
        "restore",
        "--force",
        "--auto-approve",
        "--etcdutl",
        &etcdutl,
        kept[1].to_str().unwrap(),
    ])
    .status(1)
    .stderr_contains("etcd-snapshot.db: its sha256 is not the one in SHA256SUMS");
    // A kubeadm host has no etcdutl, and neither has the lab's: without
    // --etcdutl the restore stops while it prepares, before anything stops.
    assert!(!lab.run("bettley", "command -v etcdutl").succeeded());
    // --json: the plan, then the steps, then the recap, one event a line.
    let run = lab.gt(&[
        "restore",
        "--force",
        "--auto-approve",
        "--json",
        kept[0].to_str().unwrap(),
    ]);
    run.status(1).stdout_contains("etcdutl does not run here");
    let events = run.json_lines();
    assert_eq!(events[0]["event"], "plan", "{run}");
    assert_eq!(events[0]["plan"]["has_changes"], true);
    assert_eq!(events.last().unwrap()["event"], "recap", "{run}");
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "step_finished" && e["step"] == "restore-prepare/bettley"),
        "{run}"
    );
    for cp in CONTROL_PLANES {
        let manifests = lab.host_root(cp).join("etc/kubernetes/manifests");
        assert!(manifests.join("kube-apiserver.yaml").is_file(), "{cp}");
        assert!(manifests.join("etcd.yaml").is_file(), "{cp}");
        assert!(
            !lab.host_root(cp).join("var/lib/gt-restore").exists(),
            "{cp}"
        );
    }
}

#[test]
#[cfg_attr(
    not(any(all(has_sshd, has_etcd), ci)),
    ignore = "needs sshd and etcd 3.5: apt-get install openssh-server; scripts/install-etcd.sh"
)]
fn apply_backs_etcd_up_before_removing_a_control_plane_unless_told_not_to() {
    let lab = Lab::up(Transport::Ssh).converged();
    let dir = lab.dir().join("backups");
    // Workers change nothing in etcd: no backup.
    let without_lipps = lab
        .variant("without-lipps.toml")
        .state("lipps", "absent")
        .write();
    Test::new()
        .config(&without_lipps)
        .args(["apply", "--auto-approve"])
        .run()
        .success();
    assert!(!dir.exists());
    let plan = Test::new()
        .config(
            lab.variant("dalt-absent.toml")
                .state("dalt", "absent")
                .write(),
        )
        .args(["plan", "--no-backup"])
        .run()
        .success();
    assert!(!plan.stdout.contains("backup-etcd"), "{plan}");
    let config = lab
        .variant("dalt-absent.toml")
        .state("dalt", "absent")
        .state("lipps", "absent")
        .write();
    // Whether the removal itself goes through is the removal's business
    // (tests/apply/remove.rs); here: the backup comes first, and is written.
    let run = Test::new()
        .config(&config)
        .args(["apply", "--auto-approve"])
        .run();
    run.stdout_contains("gt backs etcd up first");
    assert!(run.stdout.contains("done   backup-etcd"), "{run}");
    no_key_material(&lab, &run);
    let order = |id: &str| {
        run.stdout
            .find(&format!("start  {id}"))
            .unwrap_or_else(|| panic!("no {id}: {run}"))
    };
    assert!(order("backup-etcd") < order("drain/dalt"), "{run}");
    assert!(run.stdout.contains("etcd backup written to "), "{run}");
    assert_eq!(backups(&dir).len(), 1);
}
