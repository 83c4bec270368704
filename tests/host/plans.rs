//! The `host` resource planned from recorded facts (tests/fixtures/facts/host-*.json).

use crate::support::gt::{fixture, goldentooth, root, Test};
use gt::facts::Observed;
use gt::plan::{drift::drift, plan, PlanError, PlanOptions};
use gt::render::{plan_json, plan_text, Style};
use std::path::Path;

fn facts(name: &str) -> Observed {
    Observed::from_json(&std::fs::read_to_string(fixture(name)).unwrap()).unwrap()
}

/// goldentooth with `extra` appended (a `[defaults.host]` table).
fn goldentooth_with(extra: &str) -> gt::spec::Spec {
    let src = std::fs::read_to_string(goldentooth()).unwrap() + extra;
    gt::spec::load_str(&src, Path::new("cluster.toml")).expect("valid")
}

const REBOOTS: &str = "\n[defaults.host]\nallow_reboot = true\n";

fn snapshot(name: &str, spec: &gt::spec::Spec, facts_name: &str) -> gt::plan::Plan {
    let p = plan(spec, &facts(facts_name), &PlanOptions::default()).expect("plan");
    let text = plan_text(&p, Style { color: false });
    let json = plan_json(&p);
    let again = plan(spec, &facts(facts_name), &PlanOptions::default()).unwrap();
    assert_eq!(text, plan_text(&again, Style { color: false }));
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(root().join("snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| {
        insta::assert_snapshot!(format!("{name}.txt"), text);
        insta::assert_snapshot!(format!("{name}.json"), json);
    });
    p
}

#[test]
fn bare_hosts_are_prepared_before_their_init_or_join_at_the_newest_patch_apply_settles() {
    let spec = goldentooth_with(REBOOTS);
    let p = snapshot("host-bare", &spec, "host-bare");
    let doc = p.document();
    let fenn = doc
        .changes
        .iter()
        .find(|c| c.address == "host.fenn")
        .unwrap();
    let texts: Vec<&str> = fenn.host.iter().map(|h| h.text.as_str()).collect();
    assert!(
        texts.contains(&"package kubelet newest 1.32 patch (held)"),
        "{texts:?}"
    );
    assert!(texts.contains(&"swap on -> off"), "{texts:?}");
    assert!(
        texts.contains(&"sysctl net.ipv4.ip_forward 0 -> 1"),
        "{texts:?}"
    );
    assert!(
        texts.contains(&"kernel cmdline cgroup_enable=memory cgroup_memory=1 (reboot)"),
        "{texts:?}"
    );
    assert!(
        texts.contains(&"apt source v1.32 (pkgs.k8s.io)"),
        "{texts:?}"
    );
    // velaryon (amd64, memory cgroup on) is not rebooted.
    let velaryon = doc
        .changes
        .iter()
        .find(|c| c.address == "host.velaryon")
        .unwrap();
    assert!(velaryon
        .host
        .iter()
        .all(|h| h.kind != "kernel_cmdline" && h.kind != "reboot"));
    // Every host before its own init or join; workers in parallel with init.
    let deps = |id: &str| -> Vec<String> {
        doc.steps
            .iter()
            .find(|s| s.id == id)
            .unwrap()
            .depends_on
            .iter()
            .map(ToString::to_string)
            .collect()
    };
    assert_eq!(deps("init/bettley"), ["prepare-host/bettley"]);
    assert!(deps("join-worker/fenn").contains(&"prepare-host/fenn".to_string()));
    assert!(deps("join-control-plane/cargyll").contains(&"prepare-host/cargyll".to_string()));
    assert!(deps("prepare-host/fenn").is_empty());
}

#[test]
fn a_pi_whose_memory_cgroup_needs_a_reboot_is_refused_without_the_opt_in() {
    let spec = goldentooth_with("");
    let e = plan(&spec, &facts("host-bare"), &PlanOptions::default()).unwrap_err();
    assert!(matches!(e, PlanError::RebootNotAllowed { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("refusing to prepare bettley"), "{msg}");
    assert!(
        msg.contains("`cgroup_enable=memory cgroup_memory=1`"),
        "{msg}"
    );
    assert!(msg.contains("/boot/firmware/cmdline.txt"), "{msg}");
    assert!(
        msg.contains("`allow_reboot = true` under [nodes.bettley.host] (cluster.toml:39)"),
        "{msg}"
    );
    // The same from the command line, exit 1.
    Test::new()
        .args([
            "--config",
            &goldentooth().to_string_lossy(),
            "plan",
            "--facts",
            &fixture("host-bare"),
        ])
        .run()
        .status(1)
        .stderr_contains("refusing to prepare bettley")
        .stderr_contains("allow_reboot = true");
}

#[test]
fn converged_hosts_have_no_changes_and_stay_on_the_clusters_patch() {
    let spec = goldentooth_with("");
    // The repository offers 1.32.5; the cluster runs 1.32.4: pinned.
    let p = plan(&spec, &facts("host-converged"), &PlanOptions::default()).unwrap();
    assert!(
        !p.has_changes(),
        "{}",
        plan_text(&p, Style { color: false })
    );
    assert!(drift(&spec, &facts("host-converged")).unwrap().in_sync());
}

#[test]
fn host_changes_behind_gts_back_are_planned_and_are_drift_of_kind_host() {
    let spec = goldentooth_with("");
    snapshot("host-drift", &spec, "host-drift");
    let report = drift(&spec, &facts("host-drift")).unwrap();
    let items: Vec<(String, &str, &str)> = report
        .items
        .iter()
        .map(|i| {
            (
                i.node.as_ref().unwrap().to_string(),
                i.kind.as_str(),
                i.message.as_str(),
            )
        })
        .collect();
    assert!(
        items.contains(&("fenn".into(), "host", "swap on -> off")),
        "{items:?}"
    );
    assert!(
        items.contains(&("fenn".into(), "host", "package kubelet hold")),
        "{items:?}"
    );
    assert!(
        items.contains(&(
            "harlton".into(),
            "host",
            "package kubelet 1.32.5-1.1 -> 1.32.4-1.1 (held)"
        )),
        "{items:?}"
    );
    assert!(
        items.contains(&("jast".into(), "host", "apt source v1.31 -> v1.32")),
        "{items:?}"
    );
    // The drift command: exit 2, the kind in JSON and in the metric.
    let dir = tempfile::tempdir().unwrap();
    let prom = dir.path().join("gt.prom");
    let out = Test::new()
        .args([
            "--config",
            &goldentooth().to_string_lossy(),
            "drift",
            "--facts",
            &fixture("host-drift"),
            "--prometheus",
            &prom.to_string_lossy(),
        ])
        .run()
        .status(2)
        .stdout_contains("swap on -> off");
    drop(out);
    let metrics = std::fs::read_to_string(prom).unwrap();
    assert!(
        metrics.contains("gt_drift_items{cluster=\"goldentooth\",kind=\"host\"} 4"),
        "{metrics}"
    );
}
