//! The files gt reads from its user and writes for them: only regular files,
//! a bounded number of bytes in, never over what the command reads, and a
//! saved plan's config checked before a byte of it is shown.

use crate::support::gt::{fixture, goldentooth, Test};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Long enough for gt to start and refuse; far shorter than a hang.
const QUICK: Duration = Duration::from_secs(20);

fn mkfifo(p: &Path) {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A copy of goldentooth's cluster.toml in `dir`, so that a test may lose it.
fn own_config(dir: &Path) -> PathBuf {
    let p = dir.join("cluster.toml");
    std::fs::copy(goldentooth(), &p).unwrap();
    p
}

/// `gt plan --out` from recorded facts, into `dir/plan.gtplan`.
fn saved_plan(dir: &Path, config: &Path) -> PathBuf {
    let file = dir.join("plan.gtplan");
    Test::new()
        .args(["--config", s(config), "plan", "--facts", &fixture("empty")])
        .args(["--out", s(&file)])
        .success();
    file
}

/// The plan file, with `config.path` set to `path`.
fn point_plan_at(file: &Path, path: &Path) {
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    v["config"]["path"] = s(path).into();
    std::fs::write(file, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

#[test]
fn a_plan_file_pointed_at_another_file_shows_nothing_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = own_config(dir.path());
    let file = saved_plan(dir.path(), &config);
    // What /etc/shadow looks like: not TOML, so parsing it would show its first line.
    let secret = dir.path().join("shadow");
    std::fs::write(&secret, "root:$6$SECRETHASH$xyz:19000:0:99999:7:::\n").unwrap();
    point_plan_at(&file, &secret);
    let r = Test::new()
        .args(["apply", s(&file)])
        .timeout(QUICK)
        .status(1);
    assert!(!r.stderr.contains("SECRETHASH"), "{}", r.stderr);
    assert!(!r.stdout.contains("SECRETHASH"), "{}", r.stdout);
    assert_eq!(
        r.stderr,
        format!(
            "error: the saved plan {f} is stale:\n  cluster.toml changed since the plan was made ({c})\n\
             run gt plan --out {f} again, review it, then gt apply {f}\n",
            f = file.display(),
            c = secret.display()
        )
    );
}

#[test]
fn a_plan_file_pointed_at_a_fifo_or_a_device_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = own_config(dir.path());
    let file = saved_plan(dir.path(), &config);
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    for (path, kind) in [
        (fifo.as_path(), "a FIFO (named pipe)"),
        (Path::new("/dev/zero"), "a character device"),
    ] {
        point_plan_at(&file, path);
        Test::new()
            .args(["apply", s(&file)])
            .timeout(QUICK)
            .status(1)
            .stderr_is(&format!(
                "error: cannot read {}, the config the saved plan {} was made from: \
                 it is {kind}, not a regular file; gt reads only regular files\n",
                path.display(),
                file.display()
            ));
    }
}

#[test]
fn a_config_a_plan_file_or_a_facts_file_that_is_not_a_regular_file_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    let not_regular =
        |kind: &str| format!("it is {kind}, not a regular file; gt reads only regular files");
    for (p, kind) in [
        (fifo.as_path(), "a FIFO (named pipe)"),
        (Path::new("/dev/zero"), "a character device"),
        (dir.path(), "a directory"),
    ] {
        Test::new()
            .args(["--config", s(p), "validate"])
            .timeout(QUICK)
            .status(1)
            .stderr_contains(&format!(
                "cannot read {}: {}",
                p.display(),
                not_regular(kind)
            ));
        Test::new()
            .args(["apply", s(p)])
            .timeout(QUICK)
            .status(1)
            .stderr_is(&format!(
                "error: cannot read the plan file {}: {}\n",
                p.display(),
                not_regular(kind)
            ));
        for cmd in ["plan", "drift", "graph"] {
            Test::new()
                .config(goldentooth())
                .args([cmd, "--facts", s(p)])
                .timeout(QUICK)
                .status(1)
                .stderr_contains(&format!(
                    "cannot read facts file {}: {}",
                    p.display(),
                    not_regular(kind)
                ));
        }
    }
}

#[test]
fn files_larger_than_the_bounds_are_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    let big = |name: &str, len: u64| {
        let p = dir.path().join(name);
        // Sparse: no disk is filled to make it.
        std::fs::File::create(&p).unwrap().set_len(len).unwrap();
        p
    };
    let config = big("cluster.toml", (16 << 20) + 1);
    Test::new()
        .args(["--config", s(&config), "validate"])
        .timeout(QUICK)
        .status(1)
        .stderr_contains(&format!(
            "cannot read {}: it is larger than 16 MiB, the most gt reads of such a file",
            config.display()
        ));
    let plan = big("plan.gtplan", (64 << 20) + 1);
    Test::new()
        .args(["apply", s(&plan)])
        .timeout(QUICK)
        .status(1)
        .stderr_is(&format!(
            "error: cannot read the plan file {}: it is larger than 64 MiB, the most gt reads of such a file\n",
            plan.display()
        ));
    let facts = big("facts.json", (256 << 20) + 1);
    Test::new()
        .config(goldentooth())
        .args(["plan", "--facts", s(&facts)])
        .timeout(QUICK)
        .status(1)
        .stderr_contains(&format!(
            "cannot read facts file {}: it is larger than 256 MiB",
            facts.display()
        ));
}

#[test]
fn plan_out_refuses_the_config_and_the_facts_file_by_any_name() {
    let dir = tempfile::tempdir().unwrap();
    let config = own_config(dir.path());
    let before = std::fs::read(&config).unwrap();
    let facts = dir.path().join("facts.json");
    std::fs::copy(fixture("empty"), &facts).unwrap();
    let link = dir.path().join("link.toml");
    std::os::unix::fs::symlink("cluster.toml", &link).unwrap();
    for (out, role, input) in [
        (config.clone(), "the config", &config),
        (link, "the config", &config),
        (
            dir.path().join(".").join("cluster.toml"),
            "the config",
            &config,
        ),
        (facts.clone(), "the facts file", &facts),
    ] {
        Test::new()
            .current_dir(dir.path())
            .args(["--config", "cluster.toml", "plan", "--facts", s(&facts)])
            .args(["--out", s(&out)])
            .status(1)
            .stderr_contains(&format!(
                "error: cannot write the plan file {}: it is {role} this command reads ({}); write to another file",
                out.display(),
                if role == "the config" { "cluster.toml".into() } else { input.display().to_string() }
            ));
    }
    assert_eq!(std::fs::read(&config).unwrap(), before);
    assert_eq!(
        std::fs::read(&facts).unwrap(),
        std::fs::read(fixture("empty")).unwrap()
    );
}

#[test]
fn outputs_replace_only_regular_files_following_a_symlink_to_one() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    let to_null = dir.path().join("stdout");
    std::os::unix::fs::symlink("/dev/null", &to_null).unwrap();
    let real = dir.path().join("real");
    std::fs::write(&real, "old").unwrap();
    let to_real = dir.path().join("to-real");
    std::os::unix::fs::symlink("real", &to_real).unwrap();
    let plan = |out: &Path| {
        Test::new()
            .config(goldentooth())
            .args(["plan", "--facts", &fixture("converged"), "--out", s(out)])
            .timeout(QUICK)
            .run()
    };
    let drift = |out: &Path| {
        Test::new()
            .config(goldentooth())
            .args(["drift", "-q", "--facts", &fixture("converged")])
            .args(["--prometheus", s(out)])
            .timeout(QUICK)
            .run()
    };
    let refused = "; gt writes its output only to a regular file (or through a symlink to one)";
    for (out, what) in [
        (&fifo, "it is a FIFO (named pipe)".to_string()),
        (
            &to_null,
            "it is a symbolic link to /dev/null, which is a character device".to_string(),
        ),
    ] {
        plan(out).status(1).stderr_contains(&format!(
            "error: cannot write the plan file {}: {what}{refused}",
            out.display()
        ));
        drift(out).status(1).stderr_contains(&format!(
            "error: cannot write the metrics to {}: {what}{refused}",
            out.display()
        ));
    }
    assert!(std::fs::symlink_metadata(&fifo)
        .unwrap()
        .file_type()
        .is_fifo());
    assert!(std::fs::symlink_metadata(&to_null).unwrap().is_symlink());

    drift(&to_real).success();
    assert!(std::fs::read_to_string(&real)
        .unwrap()
        .contains("gt_in_sync"));
    plan(&to_real).success();
    assert!(std::fs::read_to_string(&real)
        .unwrap()
        .contains("\"gt-plan\""));
    assert!(std::fs::symlink_metadata(&to_real).unwrap().is_symlink());
}

#[test]
fn man_out_dir_replaces_no_symlink_to_a_device() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("gt.1");
    std::os::unix::fs::symlink("/dev/null", &page).unwrap();
    Test::new()
        .args(["man", "--out-dir", s(dir.path())])
        .status(1)
        .stderr_contains(&format!(
            "error: cannot write the man page {}: it is a symbolic link to /dev/null, which is a character device",
            page.display()
        ));
    assert!(std::fs::symlink_metadata(&page).unwrap().is_symlink());
}

#[test]
fn observe_out_refuses_the_config_and_a_device() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("host-root");
    std::fs::create_dir(&root).unwrap();
    // One node probed as a local process in an empty root: nothing to
    // reach, so the facts are written (or refused) at once.
    let config = dir.path().join("cluster.toml");
    let text = format!(
        "[cluster]\nname = \"solo\"\nkubernetes_version = \"1.32\"\nendpoint = \"127.52.0.11:6443\"\n\
         pod_cidr = \"10.244.0.0/16\"\nservice_cidr = \"10.96.0.0/12\"\n\n\
         [defaults]\narch = \"amd64\"\nconnection = \"local\"\n\n\
         [defaults.local]\nenv = {{ GT_HOST_ROOT = \"{}\" }}\n\n\
         [nodes.solo]\nrole = \"control-plane\"\naddress = \"127.52.0.11\"\n",
        root.display()
    );
    std::fs::write(&config, &text).unwrap();
    let observe = |out: &str| {
        Test::new()
            .current_dir(dir.path())
            .args(["--config", "cluster.toml", "observe", "--out", out])
            .timeout(QUICK)
            .run()
    };
    observe("./cluster.toml").status(1).stderr_contains(
        "error: cannot write the facts to ./cluster.toml: it is the config this command reads \
         (cluster.toml); write to another file",
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), text);
    std::os::unix::fs::symlink("/dev/null", dir.path().join("null")).unwrap();
    observe("null").status(1).stderr_contains(
        "error: cannot write the facts to null: it is a symbolic link to /dev/null, which is a character device",
    );
    observe("facts.json").success();
    let facts = std::fs::read_to_string(dir.path().join("facts.json")).unwrap();
    assert!(facts.contains("\"solo\""), "{facts}");
}

#[test]
fn lab_up_from_a_fifo_or_a_device_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    for (from, kind) in [
        (fifo.as_path(), "a FIFO (named pipe)"),
        (Path::new("/dev/zero"), "a character device"),
    ] {
        Test::new()
            .args([
                "lab",
                "up",
                "--dir",
                s(&dir.path().join("lab")),
                "--from",
                s(from),
            ])
            .timeout(QUICK)
            .status(1)
            .stderr_contains(&format!(
                "cannot read {}: it is {kind}, not a regular file; gt reads only regular files",
                from.display()
            ));
        assert!(!dir.path().join("lab").exists());
    }
}
