//! `gt drift` against the lab, as cron runs it: no terminal, `--quiet
//! --prometheus FILE`; then changes made behind gt's back through the lab's
//! simulated tools, each reported as its own kind of drift; `gt apply`
//! repairing what it can; and a check that cannot run saying so (exit 1,
//! `gt_check_success 0`). Read-only throughout: drift never takes the lock
//! and never changes a host.

use crate::support::gt::{Output, Test};
use crate::support::lab::{Lab, Transport};
use crate::support::promtext::{value_of, Sample};
use serde_json::Value;
use std::path::{Path, PathBuf};

use crate::support::kube::ADMIN;

fn kubectl(lab: &Lab, args: &str) {
    lab.run("bettley", &format!("kubectl {ADMIN} {args}"))
        .success();
}

/// `gt drift ARGS --prometheus FILE` and the file's samples (which must be valid).
fn drift_metrics(lab: &Lab, args: &[&str]) -> (Output, Vec<Sample>, PathBuf) {
    let file = lab.dir().join("textfile/gt.prom");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let mut all = vec!["drift"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--prometheus", file.to_str().unwrap()]);
    let run = lab.gt(&all);
    let text =
        std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("no textfile ({e})\n{run}"));
    let samples = crate::support::promtext::parse(&text)
        .unwrap_or_else(|e| panic!("invalid textfile: {e}\n{text}"));
    (run, samples, file)
}

fn drift_json(lab: &Lab, config: Option<&Path>) -> (Output, Value) {
    let run = match config {
        Some(c) => Test::new().config(c).args(["drift", "--json"]).run(),
        None => lab.gt(&["drift", "--json"]),
    };
    let v = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("drift --json is not JSON ({e})\n{run}"));
    (run, v)
}

/// `(node, kind)` of every item of a `--json` document.
fn kinds(doc: &Value) -> Vec<(String, String)> {
    doc["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["node"].as_str().unwrap_or("-").to_string(),
                i["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn has(doc: &Value, node: &str, kind: &str) -> bool {
    kinds(doc).contains(&(node.to_string(), kind.to_string()))
}

/// No simulated host ran anything but reads during the run (drift is read-only).
fn writes_since(lab: &Lab, marks: &[(String, usize)]) -> Vec<String> {
    let mut writes = Vec::new();
    for (node, seen) in marks {
        for e in lab.log(node).iter().skip(*seen) {
            let argv: Vec<&str> = e["argv"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .collect();
            let read = match e["tool"].as_str().unwrap_or("") {
                // etcd's own view, read in its pod (`exec etcd-NODE -- etcdctl member list`).
                "kubectl" => {
                    argv.iter().any(|a| *a == "get" || *a == "version")
                        || (argv.contains(&"etcdctl")
                            && argv.windows(2).any(|w| {
                                matches!(
                                    w,
                                    ["member", "list"]
                                        | ["endpoint", "status"]
                                        | ["endpoint", "health"]
                                )
                            }))
                }
                "kubeadm" => argv.first() == Some(&"version"),
                "systemctl" => argv
                    .iter()
                    .any(|a| ["is-active", "is-enabled", "status", "show"].contains(a)),
                _ => true,
            };
            if !read {
                writes.push(format!("{node}: {} {}", e["tool"], argv.join(" ")));
            }
        }
    }
    writes
}

fn log_marks(lab: &Lab) -> Vec<(String, usize)> {
    lab.node_names()
        .into_iter()
        .map(|n| {
            let len = lab.log(&n).len();
            (n, len)
        })
        .collect()
}

/// Drift as cron runs it, over real SSH: a cron run on a converged lab
/// exits 0 with metrics; a removed label and a stopped kubelet make it exit
/// 2 naming both; `gt apply` repairs both; drift is 0 again.
#[test]
#[cfg_attr(
    not(any(has_sshd, ci)),
    ignore = "needs sshd: apt-get install openssh-server"
)]
fn cron_drift_sees_a_removed_label_and_a_stopped_kubelet_and_apply_repairs_both() {
    let lab = Lab::up(Transport::Ssh).model_etcd().speed(0.01).converged();
    let marks = log_marks(&lab);
    let (run, m, file) = drift_metrics(&lab, &["--quiet"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(run.stdout, "", "--quiet prints nothing");
    assert_eq!(
        value_of(&m, "gt_check_success", &[("cluster", "goldentooth")]),
        Some(1.0)
    );
    assert_eq!(value_of(&m, "gt_in_sync", &[]), Some(1.0));
    let ready: Vec<&Sample> = m.iter().filter(|s| s.name == "gt_node_ready").collect();
    assert_eq!(ready.len(), 12);
    assert!(ready.iter().all(|s| s.value == 1.0), "{ready:?}");
    let stamp = value_of(&m, "gt_last_check_timestamp_seconds", &[]).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(stamp <= now && stamp > now - 600.0, "{stamp} vs {now}");
    // Atomic: nothing but the file in its directory (no temp file left).
    let names: Vec<_> = std::fs::read_dir(file.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["gt.prom"]);
    assert_eq!(writes_since(&lab, &marks), Vec::<String>::new());
    // The probe reads a Pi's names from its kernel: no uname runs there.
    // velaryon's 6.1 kernel shows no kernel.arch, so uname answers there.
    let unames_since = |node: &str| {
        let seen = marks.iter().find(|(n, _)| n == node).unwrap().1;
        lab.log(node)
            .iter()
            .skip(seen)
            .filter(|e| e["tool"] == "uname")
            .count()
    };
    assert_eq!((unames_since("bettley"), unames_since("velaryon")), (0, 1));
    assert!(
        !lab.host_root("bettley")
            .join("var/lib/gt/apply.lock")
            .exists(),
        "drift never takes the apply lock"
    );

    // Behind gt's back: a label removed by hand, a kubelet stopped.
    kubectl(&lab, "label node fenn goldentooth.io/storage-");
    lab.run("jast", "systemctl stop kubelet").success();

    let run = lab.gt(&["drift"]);
    assert_eq!(run.code, Some(2), "{run}");
    run.stdout_contains("drift: fenn: label goldentooth.io/storage missing (want ceph)\n")
        .stdout_contains("drift: jast: kubelet not active (gt apply starts it)\n");
    let last = run.stdout.lines().last().unwrap();
    assert!(
        last.starts_with("Drift: ") && last.contains(" on 2 nodes (fenn, jast)."),
        "{last}"
    );
    assert!(
        run.stdout
            .lines()
            .all(|l| l.starts_with("drift: ") || l == last),
        "one line per item, then the summary:\n{}",
        run.stdout
    );

    let (run, m, _) = drift_metrics(&lab, &["--quiet"]);
    assert_eq!(run.code, Some(2), "{run}");
    assert_eq!(run.stdout, "");
    assert_eq!(value_of(&m, "gt_check_success", &[]), Some(1.0));
    assert_eq!(value_of(&m, "gt_in_sync", &[]), Some(0.0));
    assert_eq!(
        value_of(&m, "gt_drift_items", &[("kind", "label")]),
        Some(1.0)
    );
    assert_eq!(
        value_of(&m, "gt_drift_items", &[("kind", "kubelet")]),
        Some(1.0)
    );
    assert_eq!(
        value_of(&m, "gt_node_drift_items", &[("node", "fenn")]),
        Some(1.0)
    );
    assert_eq!(
        value_of(&m, "gt_node_drift_items", &[("node", "velaryon")]),
        Some(0.0)
    );

    let (run, doc) = drift_json(&lab, None);
    assert_eq!(run.code, Some(2), "{run}");
    assert_eq!(doc["format_version"], 1);
    assert_eq!(doc["in_sync"], false);
    assert!(
        has(&doc, "fenn", "label") && has(&doc, "jast", "kubelet"),
        "{doc}"
    );
    assert_eq!(doc["by_kind"]["label"], 1);

    // gt apply repairs both: relabels fenn, starts jast's kubelet and waits for it.
    let apply = lab.gt(&["apply", "--auto-approve"]);
    apply
        .success()
        .stdout_contains("Apply complete! Nodes: 0 joined, 2 changed, 0 removed.");
    let (run, m, _) = drift_metrics(&lab, &[]);
    assert_eq!(run.code, Some(0), "{run}");
    run.stdout_contains("No drift: goldentooth matches cluster.toml (12 nodes, all Ready).");
    assert_eq!(value_of(&m, "gt_in_sync", &[]), Some(1.0));
    assert_eq!(
        value_of(&m, "gt_node_ready", &[("node", "jast")]),
        Some(1.0)
    );
}

/// Each kind of change behind gt's back is its own kind of drift.
#[test]
fn every_kind_of_change_behind_gts_back_is_named() {
    let lab = Lab::up(Transport::Local)
        .model_etcd()
        .speed(0.01)
        .converged();
    kubectl(
        &lab,
        "taint node harlton goldentooth.io/maintenance=true:NoSchedule",
    );
    kubectl(
        &lab,
        "label node karstark goldentooth.io/storage=zfs --overwrite",
    );
    kubectl(&lab, "delete node lipps");
    lab.fault("cargyll", &["apiserver-down"]);
    lab.fault("gardener", &["down"]);

    // The endpoint keeps answering through bettley and dalt; cargyll's own
    // API server does not.
    let (run, doc) = drift_json(&lab, None);
    assert_eq!(run.code, Some(2), "{run}");
    for (node, kind) in [
        ("harlton", "taint"),
        ("karstark", "label"),
        ("lipps", "missing"),
        ("cargyll", "api_not_ready"),
        ("gardener", "unreachable"),
    ] {
        assert!(
            has(&doc, node, kind),
            "no {kind} drift on {node}: {:?}",
            kinds(&doc)
        );
    }
    let text = lab.gt(&["drift", "--verbose"]);
    text.status(2)
        .stdout_contains(
            "drift: harlton: taint goldentooth.io/maintenance=true:NoSchedule not in cluster.toml\n",
        )
        .stdout_contains("drift: karstark: label goldentooth.io/storage is zfs (want ceph)\n")
        .stdout_contains("drift: cargyll: API server not ready")
        .stdout_contains("drift: gardener: unreachable: ");
    // --verbose: the whole story under a line, with what to do.
    text.stdout_contains(&format!(
        "\n       the API server on cargyll ({}:6443) is not ready: ",
        lab.address("cargyll")
    ));
    let nodes = doc["nodes"].as_array().unwrap();
    let node = |n: &str| nodes.iter().find(|x| x["name"] == n).unwrap().clone();
    assert_eq!(node("gardener")["reachable"], false);
    assert_eq!(node("lipps")["ready"], false);
    assert_eq!(node("fenn")["ready"], true);

    // The file changes too: a node the cluster has but the file does not,
    // and an architecture the node does not have.
    let mut text = std::fs::read_to_string(lab.config()).unwrap();
    let start = text.find("[nodes.erenford]").unwrap();
    let end = start + 1 + text[start + 1..].find("\n[").unwrap() + 1;
    text.replace_range(start..end, "");
    let velaryon = text.find("[nodes.velaryon]").unwrap();
    let arch = velaryon + text[velaryon..].find("arch = \"amd64\"").unwrap();
    text.replace_range(arch..arch + "arch = \"amd64\"".len(), "arch = \"arm64\"");
    let edited = lab.dir().join("edited.toml");
    std::fs::write(&edited, text).unwrap();
    let (run, doc) = drift_json(&lab, Some(&edited));
    assert_eq!(run.code, Some(2), "{run}");
    assert!(has(&doc, "erenford", "extra"), "{:?}", kinds(&doc));
    assert!(has(&doc, "velaryon", "arch"), "{:?}", kinds(&doc));

    // With every control plane down there is nothing to compare with: exit
    // 1, and the textfile says the check failed rather than keeping old figures.
    for cp in ["bettley", "cargyll", "dalt"] {
        lab.fault(cp, &["down"]);
    }
    let (run, m, _) = drift_metrics(&lab, &["--quiet"]);
    assert_eq!(run.code, Some(1), "{run}");
    run.stderr_contains("error: cannot compare the cluster with cluster.toml");
    assert_eq!(value_of(&m, "gt_check_success", &[]), Some(0.0));
    assert!(m
        .iter()
        .all(|s| s.name != "gt_in_sync" && s.name != "gt_drift_items"));
    let (run, doc) = drift_json(&lab, None);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(doc["error"].as_str().unwrap().contains("bettley"), "{doc}");
    assert!(doc.get("items").is_none());
}

/// Exit 1 for a config gt cannot read, with the file and line; the metrics
/// still say the check failed.
#[test]
fn a_bad_config_is_exit_1_with_its_location_and_a_failed_check() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cluster.toml");
    std::fs::write(&config, "[cluster]\nname = \"x\"\nbogus = 1\n").unwrap();
    let prom = dir.path().join("gt.prom");
    let run = Test::new()
        .config(&config)
        .args(["drift", "--prometheus", prom.to_str().unwrap()])
        .run();
    assert_eq!(run.code, Some(1), "{run}");
    assert_eq!(run.stdout, "");
    run.stderr_contains("error: ")
        .stderr_contains(&format!("{}:3:1", config.display()));
    assert!(!run.stderr.contains("error: error:"), "{run}");
    let m = crate::support::promtext::parse(&std::fs::read_to_string(&prom).unwrap()).unwrap();
    assert_eq!(value_of(&m, "gt_check_success", &[]), Some(0.0));
    // An unwritable textfile is an error too (cron must hear of it).
    let run = Test::new()
        .config(&config)
        .args(["drift", "--prometheus", "/nonexistent-dir/gt.prom"])
        .run();
    assert_eq!(run.code, Some(1));
    run.stderr_contains("cannot write the metrics to /nonexistent-dir/gt.prom");
}
