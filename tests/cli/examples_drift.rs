//! The cron, systemd and Prometheus examples in examples/drift/ work with
//! this gt: their command lines run, and every metric the alert rules read is
//! one gt writes.

use crate::support::gt::{fixture, goldentooth, root, Output, Test};
use crate::support::promtext;
use std::path::Path;

fn example(name: &str) -> String {
    std::fs::read_to_string(root().join("examples/drift").join(name)).unwrap()
}

/// Runs an example's gt command line against recorded facts of a converged
/// goldentooth (nothing is contacted), its textfile redirected to `prom`.
fn run_example_command(line: &str, prom: &Path) -> Output {
    let words: Vec<&str> = line.split_whitespace().collect();
    assert!(words[0] == "gt" || words[0].ends_with("/gt"), "{line}");
    let mut args: Vec<String> = words[1..]
        .iter()
        .map(|w| {
            if w.ends_with("/gt.prom") {
                prom.display().to_string()
            } else if *w == "/etc/gt/cluster.toml" {
                goldentooth().display().to_string()
            } else {
                w.to_string()
            }
        })
        .collect();
    args.push("--facts".into());
    args.push(fixture("converged"));
    Test::new()
        .args(&args)
        .env("GT_CONFIG", goldentooth())
        .run()
}

#[test]
fn the_crontab_line_runs_and_writes_the_textfile_quietly() {
    let text = example("crontab");
    let line = text
        .lines()
        .find(|l| !l.starts_with('#') && !l.trim().is_empty())
        .unwrap();
    let command = line.splitn(6, ' ').nth(5).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let prom = dir.path().join("gt.prom");
    let out = run_example_command(command, &prom);
    out.status(0).stdout_is("").stderr_is("");
    promtext::parse(&std::fs::read_to_string(&prom).unwrap()).unwrap();
}

#[test]
fn the_systemd_service_runs_and_treats_drift_as_success() {
    let text = example("gt-drift.service");
    let exec = text
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap();
    assert!(text.contains("\nSuccessExitStatus=2\n"));
    assert!(text.contains("\nType=oneshot\n"));
    let timer = example("gt-drift.timer");
    assert!(
        timer.contains("\nOnUnitActiveSec=5min\n") && timer.contains("\nWantedBy=timers.target\n")
    );
    let dir = tempfile::tempdir().unwrap();
    let prom = dir.path().join("gt.prom");
    let out = run_example_command(exec, &prom);
    out.status(0).stdout_is("");
    assert!(prom.exists());
}

#[test]
fn every_metric_the_alert_rules_read_is_one_gt_writes() {
    let dir = tempfile::tempdir().unwrap();
    let prom = dir.path().join("gt.prom");
    let out = run_example_command(
        &format!(
            "gt drift --quiet --prometheus {}/gt.prom",
            dir.path().display()
        ),
        &prom,
    );
    out.status(0);
    let samples = promtext::parse(&std::fs::read_to_string(&prom).unwrap()).unwrap();
    let rules = example("gt-alerts.yml");
    let mut read = Vec::new();
    for (i, _) in rules.match_indices("gt_") {
        // Only metric names in expressions and templates, not alert names.
        if i > 0 && rules.as_bytes()[i - 1].is_ascii_alphanumeric() {
            continue;
        }
        let name: String = rules[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !read.contains(&name) {
            read.push(name);
        }
    }
    assert!(read.len() >= 5, "{read:?}");
    for name in &read {
        assert!(
            samples.iter().any(|s| &s.name == name),
            "gt-alerts.yml reads {name}, which gt drift does not write"
        );
    }
    // The kinds a rule selects exist.
    for (i, _) in rules.match_indices("kind=\"") {
        let kind: String = rules[i + 6..].chars().take_while(|c| *c != '"').collect();
        assert!(
            promtext::value_of(&samples, "gt_drift_items", &[("kind", &kind)]).is_some(),
            "no gt_drift_items{{kind=\"{kind}\"}}"
        );
    }
}
