//! `gt validate`, `gt plan --facts`, `gt graph` as a user runs them: exit
//! codes, config discovery, color rules, error locations.

use crate::support::gt::{fixture, root, Test, GT};
use std::process::Command;

#[test]
fn validate_accepts_goldentooth() {
    let r = Test::new().args(["validate"]).run();
    r.status(0);
    assert_eq!(
        r.stdout,
        "cluster.toml: valid. Cluster goldentooth: 3 control planes, 9 workers; bootstrap node bettley.\n"
    );
}

#[test]
fn validate_reports_every_error_with_its_location_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[cluster]\nname = \"x\"\nkubernetes_version = \"1.32\"\nendpoint = \"10.4.0.10:6443\"\npod_cidr = \"192.168.0.0/16\"\nservice_cidr = \"172.16.0.0/20\"\n\n[defaults]\narch = \"arm64\"\n\n[nodes.a]\nrole = \"control-plane\"\naddress = \"10.4.0.11\"\nlables = {}\n\n[nodes.b]\nrole = \"worker\"\naddress = \"10.4.0.11\"\n",
    )
    .unwrap();
    let r = Test::new()
        .args(["validate", "--config", bad.to_str().unwrap()])
        .run();
    r.status(1);
    let err = r.stderr;
    assert!(err.contains(&format!("{}:14:1", bad.display())), "{err}");
    assert!(err.contains("did you mean `labels`?"), "{err}");
    assert!(err.contains(&format!("{}:18:11", bad.display())), "{err}");
    assert!(err.contains("2 errors in"), "{err}");
    assert!(r.stdout.is_empty());
}

#[test]
fn config_comes_from_flag_then_gt_config_then_the_current_directory() {
    let dir = tempfile::tempdir().unwrap();
    let r = Test::new().current_dir(dir.path()).args(["validate"]).run();
    r.status(1);
    assert!(r
        .stderr
        .contains("no cluster.toml in the current directory; pass --config FILE or set GT_CONFIG"));
    let example = root().join("examples/minimal-ha.toml");
    let r = Test::new()
        .current_dir(dir.path())
        .args(["validate"])
        .env("GT_CONFIG", &example)
        .run();
    r.status(0);
    assert!(r.stdout.contains("Cluster minimal-ha"));
    std::fs::copy(
        root().join("examples/single-node.toml"),
        dir.path().join("cluster.toml"),
    )
    .unwrap();
    let r = Test::new().current_dir(dir.path()).args(["validate"]).run();
    assert!(r.stdout.contains("Cluster solo"));
    // The flag beats the variable.
    let r = Test::new()
        .current_dir(dir.path())
        .args([
            "validate",
            "--config",
            root().join("cluster.toml").to_str().unwrap(),
        ])
        .env("GT_CONFIG", &example)
        .run();
    assert!(r.stdout.contains("Cluster goldentooth"));
    let r = Test::new()
        .current_dir(dir.path())
        .args(["validate"])
        .env("GT_CONFIG", "/nonexistent/c.toml")
        .run();
    r.status(1);
    assert!(r
        .stderr
        .contains("/nonexistent/c.toml (from $GT_CONFIG) does not exist"));
}

#[test]
fn detailed_exitcode_is_0_without_changes_and_2_with_changes() {
    let r = Test::new()
        .args([
            "plan",
            "--facts",
            &fixture("converged"),
            "--detailed-exitcode",
        ])
        .run();
    r.status(0);
    assert!(r
        .stdout
        .starts_with("No changes. Your cluster matches cluster.toml."));
    let r = Test::new()
        .args(["plan", "--facts", &fixture("empty"), "--detailed-exitcode"])
        .run();
    r.status(2);
    assert!(r
        .stdout
        .contains("Plan: 13 to add, 0 to change, 0 to destroy."));
    // Without the flag, changes still exit 0 (as terraform plan does).
    Test::new()
        .args(["plan", "--facts", &fixture("empty")])
        .status(0);
    // Warnings alone (a node not in the file) are not changes.
    Test::new()
        .args([
            "plan",
            "--facts",
            &fixture("node-not-in-file"),
            "--detailed-exitcode",
        ])
        .status(0);
    // A kubelet behind the cluster is: apply upgrades it.
    Test::new()
        .args([
            "plan",
            "--facts",
            &fixture("kubelet-behind"),
            "--detailed-exitcode",
        ])
        .status(2);
    // A stopped kubelet is: apply starts it.
    Test::new()
        .args([
            "plan",
            "--facts",
            &fixture("not-ready"),
            "--detailed-exitcode",
        ])
        .status(2);
}

#[test]
fn a_plan_that_cannot_be_made_exits_1_with_the_reason() {
    let r = Test::new()
        .args([
            "plan",
            "--facts",
            &fixture("converged"),
            "--replace",
            "nobody",
            "--detailed-exitcode",
        ])
        .run();
    r.status(1);
    assert!(r
        .stderr
        .contains("--replace nobody: no node of that name in cluster.toml"));
}

#[test]
fn bad_facts_files_are_reported_with_their_location() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("facts.json");
    std::fs::write(&f, "{\"format_version\": 1,\n \"hosts\": 3}").unwrap();
    let r = Test::new()
        .args(["plan", "--facts", f.to_str().unwrap()])
        .run();
    r.status(1);
    assert!(
        r.stderr.contains(&format!("{}:2:", f.display())),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("gt observe --out FILE"));
    std::fs::write(&f, "{\"format_version\": 9}").unwrap();
    let r = Test::new()
        .args(["plan", "--facts", f.to_str().unwrap()])
        .run();
    assert!(
        r.stderr
            .contains("facts format_version 9 is not the 1 this gt reads"),
        "{}",
        r.stderr
    );
}

#[test]
fn plan_json_is_versioned_and_matches_the_text_predicate() {
    let r = Test::new()
        .args(["plan", "--facts", &fixture("label-taint-drift"), "--json"])
        .run();
    r.status(0);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["format_version"], "1.0");
    assert_eq!(v["has_changes"], true);
    assert_eq!(v["summary"]["change"], 3);
    let r = Test::new()
        .args(["plan", "--facts", &fixture("converged"), "--json"])
        .run();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["has_changes"], false);
    assert_eq!(v["changes"].as_array().unwrap().len(), 0);
}

#[test]
fn graph_draws_the_bootstrap_dag_without_facts_in_dot_and_mermaid() {
    let r = Test::new().args(["graph"]).run();
    r.status(0);
    let dot = r.stdout;
    assert!(dot.starts_with("digraph \"goldentooth\" {"));
    assert!(
        dot.contains("\"join-control-plane/cargyll\" -> \"gate/before-join-control-plane/dalt\";")
    );
    assert!(dot.contains("\"gate/before-join-control-plane/dalt\" -> \"join-control-plane/dalt\";"));
    assert!(dot.contains("\"gate/before-worker-joins\" -> \"join-worker/velaryon\";"));
    let r = Test::new().args(["graph", "--format", "mermaid"]).run();
    assert!(r
        .stdout
        .starts_with("flowchart TD\n  s0[\"kubeadm init on bettley\"]\n"));
    // Against facts: a converged cluster has nothing to draw but the frame.
    let r = Test::new()
        .args(["graph", "--facts", &fixture("converged")])
        .run();
    assert!(!r.stdout.contains("->"));
}

/// Runs gt under a pseudo-terminal (util-linux `script`), as a user at a TTY would.
fn gt_on_a_tty(args: &str, env: &[(&str, &str)]) -> String {
    let mut c = Command::new("script");
    c.args(["-qec", &format!("{GT} {args}"), "/dev/null"])
        .current_dir(root())
        .env_remove("NO_COLOR");
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().expect("script(1) from util-linux runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn color_only_on_a_tty_and_never_with_no_color_or_the_flag() {
    let plan = format!("plan --facts {}", fixture("label-taint-drift"));
    assert!(
        gt_on_a_tty(&plan, &[]).contains("\x1b["),
        "a TTY gets color"
    );
    assert!(!gt_on_a_tty(&plan, &[("NO_COLOR", "1")]).contains("\x1b["));
    assert!(
        !gt_on_a_tty(&plan, &[("NO_COLOR", "0")]).contains("\x1b["),
        "NO_COLOR set to any value"
    );
    assert!(
        gt_on_a_tty(&plan, &[("NO_COLOR", "")]).contains("\x1b["),
        "empty NO_COLOR is unset (no-color.org)"
    );
    assert!(!gt_on_a_tty(&format!("{plan} --no-color"), &[]).contains("\x1b["));
    assert!(
        !Test::new()
            .args(["plan", "--facts", &fixture("label-taint-drift")])
            .run()
            .stdout
            .contains("\x1b["),
        "a pipe gets none"
    );
}
