//! `gt validate` on hostile or unlucky configs: each is exit 1 with
//! file:line:column and a help line, never a panic (exit 101).

use crate::support::gt::{root, Test};
use std::path::{Path, PathBuf};

/// The repo's cluster.toml with `old` replaced by `new`, written to `dir`.
fn goldentooth_with(dir: &Path, old: &str, new: &str) -> PathBuf {
    let text = std::fs::read_to_string(root().join("cluster.toml")).unwrap();
    assert!(text.contains(old), "cluster.toml has no {old:?}");
    let path = dir.join("cluster.toml");
    std::fs::write(&path, text.replacen(old, new, 1)).unwrap();
    path
}

/// The 1-based line of the first occurrence of `needle` in the file.
fn line_of(path: &Path, needle: &str) -> usize {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

fn validate(path: &Path) -> crate::support::gt::Output {
    Test::new()
        .args(["validate", "--config", path.to_str().unwrap()])
        .run()
}

#[test]
fn a_token_ttl_below_a_minute_is_refused_with_its_place_and_the_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = goldentooth_with(dir.path(), "ttl = \"15m\"", "ttl = \"500ms\"");
    let line = line_of(&cfg, "ttl = \"500ms\"");
    validate(&cfg)
        .status(1)
        .stderr_contains(&format!("cluster.toml:{line}:7"))
        .stderr_contains("shorter than the shortest token TTL gt mints (1m)")
        .stderr_contains("= help: give the join token a short TTL from 1m to 24h");
}

#[test]
fn a_duration_that_overflows_is_an_error_not_a_panic_in_every_duration_key() {
    let huge = "99999999999999h";
    for (old, new) in [
        ("ttl = \"15m\"", format!("ttl = \"{huge}\"")),
        (
            "connect_timeout = \"5s\"",
            format!("connect_timeout = \"{huge}\""),
        ),
        (
            "[tokens]\n",
            format!("[apply]\ngate_timeout = \"{huge}\"\n[tokens]\n"),
        ),
        (
            "[tokens]\n",
            format!("[apply]\nstep_timeout = \"{huge}\"\n[tokens]\n"),
        ),
        (
            "[tokens]\n",
            format!("[apply]\ndrain_timeout = \"{huge}\"\n[tokens]\n"),
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = goldentooth_with(dir.path(), old, &new);
        let line = line_of(&cfg, huge);
        validate(&cfg)
            .status(1)
            .stderr_contains(&format!("cluster.toml:{line}:"))
            .stderr_contains("is longer than")
            .stderr_contains("= help: ");
    }
}

#[test]
fn an_ssh_host_beginning_with_a_dash_never_reaches_ssh() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = goldentooth_with(
        dir.path(),
        "[nodes.fenn]\n",
        "[nodes.fenn.ssh]\nhost = \"-oProxyCommand=touch /tmp/owned\"\n[nodes.fenn]\n",
    );
    let line = line_of(&cfg, "-oProxyCommand");
    validate(&cfg)
        .status(1)
        .stderr_contains(&format!("cluster.toml:{line}:8"))
        .stderr_contains("begins with `-`, which ssh would read as an option");
}

#[test]
fn bytes_that_are_not_utf8_are_named_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("cluster.toml");
    std::fs::write(&cfg, b"[cluster]\nname = \"gold\xfftooth\"\n").unwrap();
    validate(&cfg)
        .status(1)
        .stderr_contains("cluster.toml:2:13")
        .stderr_contains("is not UTF-8 text: byte 0xFF")
        .stderr_contains("= help: save the file as UTF-8");
}

#[test]
fn a_symlink_loop_is_called_one() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.toml"), dir.path().join("b.toml"));
    std::os::unix::fs::symlink(&b, &a).unwrap();
    std::os::unix::fs::symlink(&a, &b).unwrap();
    validate(&a).status(1).stderr_contains("is a symlink loop");
}

#[test]
fn a_type_error_says_what_to_write() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = goldentooth_with(
        dir.path(),
        "kubernetes_version = \"1.32\"",
        "kubernetes_version = 1.32",
    );
    validate(&cfg)
        .status(1)
        .stderr_contains("must be a string, not a float")
        .stderr_contains("= help: write it as a string: kubernetes_version = \"1.32\"");
}

#[test]
fn the_repo_config_and_every_example_still_validate() {
    let mut configs = vec![root().join("cluster.toml")];
    for e in std::fs::read_dir(root().join("examples")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            configs.push(p);
        }
    }
    for cfg in configs {
        validate(&cfg).status(0);
    }
}
