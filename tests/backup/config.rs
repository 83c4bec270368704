//! `[backup]` read from cluster.toml, and `gt drift` reporting the newest
//! backup's age against recorded facts (no cluster needed: the backups are
//! on this machine).

use crate::support::gt::{fixture, goldentooth, Output, Test};
use crate::support::promtext::{parse, value_of};
use std::path::{Path, PathBuf};

/// goldentooth's cluster.toml with `extra` appended, in `dir`.
fn config_with(dir: &Path, extra: &str) -> PathBuf {
    let text = std::fs::read_to_string(goldentooth()).unwrap();
    let path = dir.join("cluster.toml");
    std::fs::write(&path, format!("{text}\n{extra}")).unwrap();
    path
}

/// A backup directory of goldentooth as gt names and fills them (only the
/// sums file counts for the age).
fn fake_backup(dir: &Path, stamp: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let b = dir.join(format!("goldentooth-{stamp}"));
    std::fs::create_dir(&b).unwrap();
    std::fs::write(b.join("SHA256SUMS"), "").unwrap();
}

fn now_stamp() -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "+%Y%m%dT%H%M%SZ"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn drift(config: &Path, prom: &Path) -> Output {
    Test::new()
        .config(config)
        .args(["drift", "--json", "--facts", &fixture("converged")])
        .args(["--prometheus", prom.to_str().unwrap()])
        .run()
}

fn metric(prom: &Path, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let samples = parse(&std::fs::read_to_string(prom).unwrap()).unwrap();
    value_of(&samples, name, labels)
}

#[test]
fn without_max_age_backups_are_not_drift_but_their_age_is_a_metric() {
    let tmp = tempfile::tempdir().unwrap();
    let config = config_with(tmp.path(), "");
    let prom = tmp.path().join("gt.prom");
    drift(&config, &prom).status(0);
    assert_eq!(metric(&prom, "gt_backup_age_seconds", &[]), None);
    fake_backup(&tmp.path().join("backups"), &now_stamp());
    let run = drift(&config, &prom).status(0);
    assert!(run.json()["newest_backup"]["path"]
        .as_str()
        .unwrap()
        .contains("goldentooth-"));
    let age = metric(
        &prom,
        "gt_backup_age_seconds",
        &[("cluster", "goldentooth")],
    )
    .unwrap();
    assert!((0.0..3600.0).contains(&age), "{age}");
}

#[test]
fn no_backup_or_an_old_one_is_drift_of_kind_backup() {
    let tmp = tempfile::tempdir().unwrap();
    let config = config_with(tmp.path(), "[backup]\ndir = \"b\"\nmax_age = \"26h\"\n");
    let prom = tmp.path().join("gt.prom");
    let run = drift(&config, &prom).status(2);
    let item = &run.json()["items"][0];
    assert_eq!(item["kind"], "backup");
    assert_eq!(item["message"], "no etcd backup (max_age 26h)");
    assert!(
        item["detail"].as_str().unwrap().contains("gt backup"),
        "{run}"
    );
    assert_eq!(
        metric(&prom, "gt_drift_items", &[("kind", "backup")]),
        Some(1.0)
    );
    fake_backup(&tmp.path().join("b"), "20200101T000000Z");
    let run = Test::new()
        .config(&config)
        .args(["drift", "--facts", &fixture("converged")])
        .run()
        .status(2);
    assert!(
        run.stdout
            .contains("drift: cluster goldentooth: newest etcd backup is "),
        "{run}"
    );
    fake_backup(&tmp.path().join("b"), &now_stamp());
    drift(&config, &prom).status(0);
    assert_eq!(
        metric(&prom, "gt_drift_items", &[("kind", "backup")]),
        Some(0.0)
    );
}

#[test]
fn bad_backup_settings_are_config_errors_with_their_place() {
    let tmp = tempfile::tempdir().unwrap();
    for (extra, says) in [
        (
            "[backup]\nkeep = 0\n",
            "keep in [backup]: 0 is not a number of backups to keep",
        ),
        ("[backup]\nkeep = \"7\"\n", "`keep` must be a whole number"),
        (
            "[backup]\nmax_age = \"10s\"\n",
            "max_age in [backup]: 10s is shorter than a backup takes",
        ),
        (
            "[backup]\nbefore_risky = true\n",
            "unknown key `before_risky` in [backup]",
        ),
    ] {
        let config = config_with(tmp.path(), extra);
        Test::new()
            .config(&config)
            .args(["validate"])
            .run()
            .status(1)
            .stderr_contains(says)
            .stderr_contains("cluster.toml:");
    }
}
