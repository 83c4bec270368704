//! `gt plan --out FILE` as a user runs it, and a saved plan going stale on
//! the lab when the cluster changes behind gt's back.

use crate::support::wait::eventually_within;

/// How long this file waits for the lab to get somewhere.
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

use crate::support::gt::{fixture, goldentooth, Test};
use crate::support::lab::{Lab, Transport};
use crate::support::secrets::has_secret;
use gt::facts::Observed;
use gt::plan::saved::{fingerprint, observation_lines, DiffLine, SavedPlan};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::support::kube::{apply_cni, kubeadm_init, ADMIN};

fn config() -> String {
    goldentooth().to_string_lossy().into_owned()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn plan_out_prints_the_plan_as_before_and_saves_it_0600_with_the_documented_keys() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("goldentooth.gtplan");
    let facts = fixture("label-taint-drift");
    let base = [
        "--config",
        &config(),
        "plan",
        "--no-color",
        "--facts",
        &facts,
    ];
    let without = Test::new()
        .args([&base[..], &["--detailed-exitcode"]].concat())
        .run();
    without.status(2);
    let with = Test::new()
        .args(
            [
                &base[..],
                &["--detailed-exitcode", "--out", file.to_str().unwrap()],
            ]
            .concat(),
        )
        .run();
    with.status(2);
    let file_str = file.display().to_string();
    assert_eq!(
        with.stdout,
        format!(
            "{}\nSaved the plan to: {file_str}\n\nTo perform exactly these actions, run: gt apply {file_str}\n",
            without.stdout
        )
    );
    assert_eq!(with.stderr, "");

    assert_eq!(mode(&file), 0o600);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!has_secret(&text), "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "cluster",
            "config",
            "created",
            "fingerprint",
            "format",
            "format_version",
            "gt_version",
            "observation",
            "options",
            "plan"
        ]
    );
    assert_eq!(v["format"], "gt-plan");
    assert_eq!(v["format_version"], 1);
    assert_eq!(v["gt_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["config"]["path"], config());
    assert_eq!(
        v["options"],
        serde_json::json!({"prune": false, "replace": []})
    );
    let json = Test::new().args([&base[..], &["--json"]].concat()).run();
    json.success();
    assert_eq!(
        v["plan"],
        serde_json::from_str::<serde_json::Value>(&json.stdout).unwrap()
    );
    // What the file says it was made from checks out as fresh.
    let saved = SavedPlan::read(&file).unwrap();
    let observed = Observed::from_json(&std::fs::read_to_string(&facts).unwrap()).unwrap();
    let spec = gt::spec::load_file(Path::new(&config())).unwrap();
    let fresh = gt::plan::plan(&spec, &observed, &saved.options()).unwrap();
    let bytes = std::fs::read(config()).unwrap();
    assert_eq!(saved.check_fresh(&bytes, &observed, &fresh), Ok(()));
}

#[test]
fn plan_out_with_json_keeps_stdout_one_json_document_and_remembers_the_consent_flags() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pruned plan");
    let facts = fixture("node-not-in-file");
    let base = [
        "--config",
        &config(),
        "plan",
        "--json",
        "--facts",
        &facts,
        "--prune",
        "--replace",
        "fenn",
    ];
    let without = Test::new().args(base).run();
    without.success();
    let with = Test::new()
        .args([&base[..], &["--out", file.to_str().unwrap()]].concat())
        .run();
    with.success();
    assert_eq!(with.stdout, without.stdout);
    assert_eq!(
        with.stderr,
        format!(
            "\nSaved the plan to: {f}\n\nTo perform exactly these actions, run: gt apply '{f}'\n",
            f = file.display()
        )
    );
    let saved = SavedPlan::read(&file).unwrap();
    assert_eq!(
        saved.options().replace.into_iter().collect::<Vec<_>>(),
        ["fenn"]
    );
    assert!(saved.options().prune);
    assert_eq!(saved.plan.summary.destroy, 1);
}

#[test]
fn plan_out_into_a_missing_directory_fails_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nowhere/plan.gtplan");
    let r = Test::new()
        .args([
            "--config",
            &config(),
            "plan",
            "--facts",
            &fixture("empty"),
            "--out",
            file.to_str().unwrap(),
        ])
        .run();
    r.status(1).stderr_contains(&format!(
        "error: cannot write the plan file {}: ",
        file.display()
    ));
    assert!(!file.exists());
}

#[track_caller]
/// `gt observe` on the lab, as a user runs it.
fn observe(lab: &Lab) -> Observed {
    let r = lab.gt(&["observe"]);
    r.success();
    Observed::from_json(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r}"))
}

/// The check `gt apply FILE` makes: cluster.toml's bytes now, a fresh
/// observation, and the plan of it with the file's options.
fn check_fresh(lab: &Lab, saved: &SavedPlan) -> Result<(), gt::plan::saved::Stale> {
    let observed = observe(lab);
    let spec = gt::spec::load_file(&lab.config()).unwrap();
    let mut fresh = gt::plan::plan(&spec, &observed, &saved.options()).unwrap();
    // As `gt apply FILE` re-plans: with the CNI manifest it would apply.
    if fresh.installs_cni() {
        let m = gt::cni::read(&spec).unwrap();
        fresh.show_cni_manifest(&m.source, Some(&m.sha256));
    }
    saved.check_fresh(&std::fs::read(lab.config()).unwrap(), &observed, &fresh)
}

#[test]
fn a_saved_plan_goes_stale_on_the_lab_saying_exactly_what_changed() {
    let lab = Lab::up(Transport::Local).model_etcd().speed(0.001).start();
    // A cluster of one control plane, so that there are Nodes to observe.
    lab.run(
        "bettley",
        &format!("{} --skip-token-print", kubeadm_init(&lab.endpoint())),
    )
    .success();
    lab.run("bettley", &apply_cni()).success();
    eventually_within("bettley is Ready and the API ready", PATIENCE, || {
        let o = observe(&lab);
        o.cluster.api.ready
            && o.cluster
                .nodes
                .get("bettley")
                .is_some_and(|n| n.ready == gt::facts::ReadyStatus::True)
    });

    // Two looks at an unchanged lab: the same fingerprint.
    let first = observation_lines(&observe(&lab));
    let second = observation_lines(&observe(&lab));
    assert_eq!(first, second);
    assert_eq!(fingerprint(&first), fingerprint(&second));

    let file = lab.dir().join("plan.gtplan");
    lab.gt(&["plan", "--out", file.to_str().unwrap()])
        .success()
        .stdout_contains(&format!("Saved the plan to: {}\n", file.display()));
    assert_eq!(mode(&file), 0o600);
    let saved = SavedPlan::read(&file).unwrap();
    assert_eq!(saved.observation, first);
    assert_eq!(check_fresh(&lab, &saved), Ok(()));

    // Someone labels bettley by hand: only that line of the observation moves,
    // and the plan (which manages other keys) stays the same.
    let labels_line = |obs: &[String]| {
        obs.iter()
            .find(|l| l.starts_with("node bettley: labels "))
            .unwrap()
            .clone()
    };
    let before = labels_line(&saved.observation);
    lab.run(
        "bettley",
        &format!("kubectl {ADMIN} label node bettley example.com/owner=ops"),
    )
    .success();
    let stale = check_fresh(&lab, &saved).unwrap_err();
    let after = labels_line(&observation_lines(&observe(&lab)));
    assert!(after.contains(" example.com/owner=ops "), "{after}");
    assert_eq!(stale.config_changed, None);
    assert_eq!(
        stale.observation,
        [
            DiffLine::Removed(before.clone()),
            DiffLine::Added(after.clone())
        ]
    );
    assert!(stale.plan.is_empty(), "{stale}");
    assert_eq!(
        stale.to_string(),
        format!(
            "the saved plan {f} is stale:\n  the observation changed since the plan was made:\n    - {before}\n    + {after}\nrun gt plan --out {f} again, review it, then gt apply {f}",
            f = file.display()
        )
    );

    // Re-planned, then fenn stops answering: its host lines become one
    // "unreachable" line, and the plan no longer joins it.
    lab.gt(&["plan", "--out", file.to_str().unwrap()]).success();
    let saved = SavedPlan::read(&file).unwrap();
    assert_eq!(check_fresh(&lab, &saved), Ok(()));
    lab.fault("fenn", &["down"]);
    let stale = check_fresh(&lab, &saved).unwrap_err();
    let fenn: Vec<String> = saved
        .observation
        .iter()
        .filter(|l| l.starts_with("host fenn: "))
        .cloned()
        .collect();
    // Two lines of its kubeadm state, six of its software (packages, apt
    // source, swap and modules, sysctls, cgroups and runtime, boot cmdline).
    assert_eq!(fenn.len(), 8, "{fenn:?}");
    let mut gone: Vec<DiffLine> = fenn.iter().cloned().map(DiffLine::Removed).collect();
    gone.push(DiffLine::Added("host fenn: unreachable".into()));
    assert_eq!(stale.observation, gone);
    assert!(
        stale.plan.iter().any(
            |l| matches!(l, DiffLine::Removed(s) if s.starts_with("step join-worker/fenn after "))
        ),
        "{stale}"
    );
    let msg = stale.to_string();
    assert!(
        msg.contains("  a fresh plan's changes differ from the saved plan's:\n"),
        "{msg}"
    );
    assert!(!has_secret(&std::fs::read_to_string(&file).unwrap()));
}

#[test]
#[cfg_attr(
    not(any(has_sshd, ci)),
    ignore = "needs sshd: apt-get install openssh-server"
)]
fn over_ssh_two_looks_at_an_unchanged_lab_agree_and_a_host_going_down_is_the_change() {
    let lab = Lab::up(Transport::Ssh).model_etcd().speed(0.001).start();
    let first = observation_lines(&observe(&lab));
    let second = observation_lines(&observe(&lab));
    assert_eq!(
        fingerprint(&first),
        fingerprint(&second),
        "{first:#?}\n{second:#?}"
    );

    let file = lab.dir().join("plan.gtplan");
    lab.gt(&["plan", "--out", file.to_str().unwrap()]).success();
    let saved = SavedPlan::read(&file).unwrap();
    assert_eq!(check_fresh(&lab, &saved), Ok(()));
    lab.fault("gardener", &["down"]);
    let stale = check_fresh(&lab, &saved).unwrap_err();
    assert_eq!(
        stale.observation.last(),
        Some(&DiffLine::Added("host gardener: unreachable".into())),
        "{stale}"
    );
    assert!(stale
        .observation
        .iter()
        .all(|l| matches!(l, DiffLine::Removed(s) | DiffLine::Added(s) if s.starts_with("host gardener: "))));
}
