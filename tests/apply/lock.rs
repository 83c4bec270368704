//! The apply lock on the lab's hosts: one holder at a time, a fast refusal
//! naming the holder, leases that expire and are renewed, the fallback lock
//! host, racing takers, and `gt unlock`.

use crate::support::gt::GT;
use crate::support::lab::{Lab, Transport};
use crate::support::wait::eventually_within;
use gt::apply::lock::{self, HostClock, LockError};
use gt::spec::Spec;
use gt::transport::{Hosts, TransportOptions};
use std::time::{Duration, Instant};

/// What a test needs to talk to the lab as gt does: the lab's spec, a runtime.
struct Operator {
    spec: Spec,
    rt: tokio::runtime::Runtime,
}

impl Operator {
    fn of(lab: &Lab) -> Operator {
        Operator {
            spec: gt::spec::load_file(&lab.config()).expect("the lab's cluster.toml"),
            rt: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap(),
        }
    }

    /// A fresh set of connections, as another gt process would have.
    fn hosts(&self) -> Hosts {
        Hosts::new(&self.spec.nodes, &TransportOptions::default()).unwrap()
    }

    fn acquire(
        &self,
        hosts: &Hosts,
        run: &str,
        lease: Duration,
    ) -> Result<lock::HeldLock, LockError> {
        self.rt
            .block_on(lock::acquire(&self.spec, hosts, run, lease))
    }

    /// `acquire` by an apply that comes once `ABANDONED`'s lease has run out.
    fn acquire_later(&self, hosts: &Hosts, run: &str) -> Result<lock::HeldLock, LockError> {
        self.rt.block_on(lock::acquire_on_clock(
            &self.spec,
            hosts,
            run,
            LONG,
            AFTER_ABANDONED_LEASE,
        ))
    }
}

const LONG: Duration = Duration::from_secs(60);

/// The lease of a lock a test abandons.
const ABANDONED: Duration = Duration::from_secs(2);

/// A lock host's clock once an abandoned lock has expired: an N-second lease
/// lives through its last second, so N + 2 seconds on.
const AFTER_ABANDONED_LEASE: HostClock =
    HostClock::ahead(Duration::from_secs(ABANDONED.as_secs() + 2));

fn lock_file(lab: &Lab, node: &str) -> std::path::PathBuf {
    lab.host_root(node).join("var/lib/gt/apply.lock")
}

fn lock_json(lab: &Lab, node: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(lock_file(lab, node)).expect("a lock file");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn held_by(err: LockError) -> (String, String) {
    match err {
        LockError::Held {
            lock_host, info, ..
        } => (lock_host, info.run_id),
        other => panic!("expected Held, got {other}"),
    }
}

#[test]
fn a_second_acquire_is_refused_at_once_naming_the_holder() {
    let lab = Lab::up(Transport::Local).model_etcd().start();
    let op = Operator::of(&lab);
    let (first, second) = (op.hosts(), op.hosts());
    let held = op
        .acquire(&first, "run-1", LONG)
        .expect("the first apply takes the lock");
    assert_eq!(held.host(), "bettley");
    let file = lock_json(&lab, "bettley");
    assert_eq!(file["run_id"], "run-1");
    assert_eq!(file["cluster"], "goldentooth");
    assert_eq!(file["pid"], std::process::id());
    for field in ["holder", "host", "started", "expires", "gt_version"] {
        assert!(
            file[field].as_str().is_some_and(|s| !s.is_empty()),
            "{field}: {file}"
        );
    }

    let asked = Instant::now();
    let err = op.acquire(&second, "run-2", LONG).unwrap_err();
    let waited = asked.elapsed();
    let message = err.to_string();
    assert_eq!(held_by(err), ("bettley".to_string(), "run-1".to_string()));
    assert!(
        message.starts_with("another gt apply holds the lock of cluster goldentooth on bettley: "),
        "{message}"
    );
    assert!(
        message.contains(&format!("(pid {},", std::process::id())),
        "{message}"
    );
    assert!(
        message.ends_with("if that apply is gone, run gt unlock"),
        "{message}"
    );
    // It refuses rather than waiting for the 60 s lease to end.
    assert!(waited < LONG / 2, "waited {waited:?}");
    eprintln!("second acquire refused after {waited:?}");

    op.rt.block_on(held.release()).expect("release");
    assert!(!lock_file(&lab, "bettley").exists());
    let again = op
        .acquire(&second, "run-2", LONG)
        .expect("free again after release");
    op.rt.block_on(again.release()).unwrap();
}

#[test]
#[cfg_attr(
    not(any(has_sshd, ci)),
    ignore = "needs sshd: apt-get install openssh-server"
)]
fn over_ssh_a_second_apply_is_refused_naming_the_holder_until_release() {
    let lab = Lab::up(Transport::Ssh).model_etcd().speed(0.001).start();
    let op = Operator::of(&lab);
    let (first, second) = (op.hosts(), op.hosts());
    let held = op.acquire(&first, "over-ssh", LONG).unwrap();
    assert_eq!(held.host(), "bettley");
    assert_eq!(lock_json(&lab, "bettley")["run_id"], "over-ssh");
    // Connecting included: what a second `gt apply` on another machine would wait.
    let asked = Instant::now();
    let err = op.acquire(&second, "other", LONG).unwrap_err();
    eprintln!(
        "second acquire over ssh refused after {:?}",
        asked.elapsed()
    );
    assert!(err.to_string().contains(" on bettley: "), "{err}");
    assert_eq!(held_by(err).1, "over-ssh");
    op.rt.block_on(held.release()).unwrap();
    let again = op.acquire(&second, "other", LONG).unwrap();
    op.rt.block_on(async {
        again.release().await.unwrap();
        first.close().await;
        second.close().await;
    });
}

#[test]
fn an_abandoned_lock_expires_and_is_taken_over_with_a_warning() {
    let lab = Lab::up(Transport::Local).model_etcd().start();
    let op = Operator::of(&lab);
    let hosts = op.hosts();
    abandon_a_lock(&op, "crashed");
    let held = op
        .acquire_later(&hosts, "next")
        .expect("an expired lock is taken over");
    assert_eq!(held.took_over().map(|i| i.run_id.as_str()), Some("crashed"));
    let warning = held.warning().expect("a warning");
    assert!(
        warning.starts_with("took over the expired apply lock of cluster goldentooth on bettley: "),
        "{warning}"
    );
    assert_eq!(lock_json(&lab, "bettley")["run_id"], "next");
    op.rt.block_on(held.release()).unwrap();
}

#[test]
fn renewal_keeps_a_lock_alive_past_its_first_lease() {
    // A 2 s lease renewed on the wall clock: no other lab loads the machine.
    let lab = Lab::up(Transport::Local).model_etcd().alone().start();
    let op = Operator::of(&lab);
    let hosts = op.hosts();
    let lease = Duration::from_secs(2);
    let held = op.acquire(&hosts, "long-apply", lease).unwrap();
    let first_expiry = lock_json(&lab, "bettley")["expires_unix"].as_i64().unwrap();
    // Renewals come every lease/4 on the wall clock: this waits for real time.
    eventually_within("the first lease has ended", Duration::from_secs(10), || {
        now_unix() > first_expiry + 2
    });
    let file = lock_json(&lab, "bettley");
    assert!(
        file["expires_unix"].as_i64().unwrap() > first_expiry,
        "{file}"
    );
    assert_eq!(
        file["started_unix"],
        held.info().started_unix,
        "started stays"
    );
    let err = op.acquire(&op.hosts(), "impatient", lease).unwrap_err();
    assert_eq!(held_by(err).1, "long-apply");
    assert_eq!(held.lost(), None);
    op.rt.block_on(held.release()).unwrap();
}

#[test]
fn renewal_notices_that_the_lock_was_taken_away() {
    // A 2 s lease renewed on the wall clock: no other lab loads the machine.
    let lab = Lab::up(Transport::Local).model_etcd().alone().start();
    let op = Operator::of(&lab);
    let held = op
        .acquire(&op.hosts(), "unlocked-under-me", Duration::from_secs(2))
        .unwrap();
    lab.gt(&["unlock", "--yes"]).success();
    // Renewals come every 500 ms; a bound only so that a broken renewal fails the test.
    let mut lost = held.watch_lost();
    op.rt
        .block_on(async {
            tokio::time::timeout(Duration::from_secs(30), lost.wait_for(Option::is_some)).await
        })
        .expect("renewal notices within 30 s")
        .unwrap();
    assert_eq!(
        held.lost().as_deref(),
        Some("the lock file was removed (gt unlock?)")
    );
    let err = op.rt.block_on(held.release()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "gt lost the apply lock on bettley during the apply: the lock file was removed \
         (gt unlock?); another apply may have run at the same time: check the cluster with gt plan"
    );
}

#[test]
fn a_lock_host_that_stops_answering_for_a_whole_lease_means_the_lock_is_lost() {
    let lab = Lab::up(Transport::Local).model_etcd().start();
    let op = Operator::of(&lab);
    let held = op
        .acquire(&op.hosts(), "cut-off", Duration::from_secs(2))
        .unwrap();
    lab.fault("bettley", &["down"]);
    let mut lost = held.watch_lost();
    op.rt
        .block_on(async {
            tokio::time::timeout(Duration::from_secs(30), lost.wait_for(Option::is_some)).await
        })
        .expect("renewal gives up within 30 s")
        .unwrap();
    let why = held.lost().unwrap();
    assert!(why.starts_with("gt could not renew it for "), "{why}");
    assert!(why.contains("bettley is down"), "{why}");
}

#[test]
fn with_the_bootstrap_node_down_the_lock_lands_on_the_next_control_plane() {
    let lab = Lab::up(Transport::Local).model_etcd().start();
    lab.fault("bettley", &["down"]);
    let op = Operator::of(&lab);
    let held = op.acquire(&op.hosts(), "run-1", LONG).unwrap();
    assert_eq!(held.host(), "cargyll");
    assert_eq!(lock_json(&lab, "cargyll")["run_id"], "run-1");
    // A second operator who also cannot reach bettley agrees on cargyll.
    let (host, _) = held_by(op.acquire(&op.hosts(), "run-2", LONG).unwrap_err());
    assert_eq!(host, "cargyll");
    // Once bettley is back, a newcomer takes bettley but still sees cargyll's lock.
    lab.fault("bettley", &["heal"]);
    let (host, run) = held_by(op.acquire(&op.hosts(), "run-3", LONG).unwrap_err());
    assert_eq!((host.as_str(), run.as_str()), ("cargyll", "run-1"));
    assert!(
        !lock_file(&lab, "bettley").exists(),
        "the newcomer let bettley go"
    );
    lab.gt(&["unlock"])
        .status(1)
        .stdout_contains("The apply lock of cluster goldentooth is on cargyll (");
    op.rt.block_on(held.release()).unwrap();
}

#[test]
fn no_reachable_control_plane_names_each_one_and_why() {
    let lab = Lab::up(Transport::Local).model_etcd().start();
    for cp in ["bettley", "cargyll", "dalt"] {
        lab.fault(cp, &["down"]);
    }
    let op = Operator::of(&lab);
    let err = op.acquire(&op.hosts(), "run-1", LONG).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, LockError::NoLockHost { .. }), "{message}");
    assert!(
        message.starts_with(
            "cannot take the apply lock of cluster goldentooth: no control plane could be reached (bettley: "
        ),
        "{message}"
    );
    for cp in ["bettley: ", "; cargyll: ", "; dalt: "] {
        assert!(message.contains(cp), "{message}");
    }
    lab.gt(&["unlock"]).status(1).stderr_contains(
        "error: cannot look for the apply lock of cluster goldentooth: no control plane could be reached (",
    );
}

/// Two applies, each a task with its own connections, try at the same
/// moment (on `clock`); the winners.
fn race(op: &Operator, a: &str, b: &str, clock: HostClock) -> Vec<lock::HeldLock> {
    let contender = |run: &str| {
        let (spec, hosts, run) = (op.spec.clone(), op.hosts(), run.to_string());
        async move { lock::acquire_on_clock(&spec, &hosts, &run, LONG, clock).await }
    };
    let (x, y) = op.rt.block_on(async {
        let (x, y) = tokio::join!(tokio::spawn(contender(a)), tokio::spawn(contender(b)));
        (x.unwrap(), y.unwrap())
    });
    [x, y]
        .into_iter()
        .filter_map(|r| match r {
            Ok(h) => Some(h),
            Err(e) => {
                assert!(
                    matches!(e, LockError::Held { .. }),
                    "the loser is told it is held: {e}"
                );
                None
            }
        })
        .collect()
}

#[test]
fn of_two_racing_applies_exactly_one_wins() {
    let lab = Lab::up(Transport::Local).model_etcd().start();
    let op = Operator::of(&lab);
    for round in 0..3 {
        let mut winners = race(
            &op,
            &format!("left-{round}"),
            &format!("right-{round}"),
            HostClock::default(),
        );
        assert_eq!(winners.len(), 1, "round {round}: exactly one winner");
        let winner = winners.pop().unwrap();
        assert_eq!(lock_json(&lab, "bettley")["run_id"], winner.info().run_id);
        op.rt.block_on(winner.release()).unwrap();
    }
}

#[test]
fn of_two_applies_racing_for_an_expired_lock_exactly_one_takes_it_over() {
    let lab = Lab::up(Transport::Local).model_etcd().start();
    let op = Operator::of(&lab);
    abandon_a_lock(&op, "crashed");
    let mut winners = race(&op, "left", "right", AFTER_ABANDONED_LEASE);
    assert_eq!(winners.len(), 1, "exactly one winner");
    let winner = winners.pop().unwrap();
    assert_eq!(
        winner.took_over().map(|i| i.run_id.as_str()),
        Some("crashed")
    );
    assert_eq!(lock_json(&lab, "bettley")["run_id"], winner.info().run_id);
    op.rt.block_on(winner.release()).unwrap();
}

#[test]
fn a_taker_that_died_mid_takeover_blocks_takeovers_until_gt_unlock() {
    let lab = Lab::up(Transport::Local).model_etcd().start();
    let op = Operator::of(&lab);
    abandon_a_lock(&op, "crashed");
    // What a taker leaves when it dies between its mkdir and its mv.
    let expires = lock_json(&lab, "bettley")["expires_unix"].as_i64().unwrap();
    let gt_dir = lock_file(&lab, "bettley").parent().unwrap().to_path_buf();
    std::fs::create_dir(gt_dir.join(format!(".apply.lock.takeover.{expires}"))).unwrap();
    let err = op.acquire_later(&op.hosts(), "next").unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, LockError::Contended { .. }), "{message}");
    assert!(message.ends_with("remove it with gt unlock"), "{message}");
    lab.gt(&["unlock", "--yes"]).success();
    let held = op.acquire(&op.hosts(), "next", LONG).unwrap();
    op.rt.block_on(held.release()).unwrap();
    // Only the time of the last release (gt unlock's, then this one's).
    let left: Vec<_> = std::fs::read_dir(&gt_dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left, ["apply.released"], "{left:?}");
}

/// A lock of `run` whose gt died (dropped, never renewed): expired for an
/// apply on `AFTER_ABANDONED_LEASE`.
fn abandon_a_lock(op: &Operator, run: &str) {
    drop(op.acquire(&op.hosts(), run, ABANDONED).unwrap());
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn gt_unlock_shows_the_holder_refuses_without_a_terminal_and_removes_with_yes() {
    let lab = Lab::up(Transport::Local).model_etcd().start();
    let op = Operator::of(&lab);
    let held = op.acquire(&op.hosts(), "stuck-run", LONG).unwrap();

    let refused = lab.gt(&["unlock"]);
    refused
        .status(1)
        .stdout_contains("The apply lock of cluster goldentooth is on bettley (")
        .stdout_contains(&format!("pid:      {}\n", std::process::id()))
        .stdout_contains("run:      stuck-run\n")
        .stdout_contains(" ago)\n")
        .stderr_contains("run `gt unlock --yes` to remove the lock shown above");
    assert!(lock_file(&lab, "bettley").exists(), "{refused}");

    lab.gt(&["unlock", "--yes"])
        .success()
        .stdout_contains("holder:   ")
        .stdout_contains("Removed the apply lock of cluster goldentooth from bettley.");
    assert!(!lock_file(&lab, "bettley").exists());
    // The apply whose lock was removed learns it when it releases.
    let lost = op.rt.block_on(held.release()).unwrap_err();
    assert!(matches!(lost, LockError::Lost { .. }), "{lost}");

    lab.gt(&["unlock"]).success().stdout_contains(
        "No apply lock is held for cluster goldentooth (looked on bettley, cargyll, dalt).",
    );
}

#[test]
fn gt_unlock_on_a_terminal_removes_only_after_yes() {
    let lab = Lab::up(Transport::Local).model_etcd().start();
    let op = Operator::of(&lab);
    drop(op.acquire(&op.hosts(), "crashed", LONG).unwrap());

    let declined = on_a_terminal(&lab, "no\n");
    assert!(
        declined.contains("Only 'yes' will be accepted to remove it."),
        "{declined}"
    );
    assert!(
        declined.contains("Unlock cancelled: the lock stays."),
        "{declined}"
    );
    assert!(lock_file(&lab, "bettley").exists());

    let accepted = on_a_terminal(&lab, "yes\n");
    assert!(accepted.contains("run:      crashed"), "{accepted}");
    assert!(
        accepted.contains("Removed the apply lock of cluster goldentooth from bettley."),
        "{accepted}"
    );
    assert!(!lock_file(&lab, "bettley").exists());
}

/// `gt unlock` with a pseudo-terminal as stdin (util-linux `script`), typing `answer`.
fn on_a_terminal(lab: &Lab, answer: &str) -> String {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let line = format!("{} --config {} unlock", GT, lab.config().display());
    let mut child = Command::new("script")
        .args(["-q", "-e", "-c", &line, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script (util-linux) is installed");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(answer.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n")
}

#[test]
fn a_lock_file_gt_cannot_read_is_reported_where_it_is_and_gt_unlock_removes_it() {
    let lab = Lab::up(Transport::Local).model_etcd().start();
    let file = lock_file(&lab, "bettley");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, "not a lock\n").unwrap();
    let op = Operator::of(&lab);
    let err = op.acquire(&op.hosts(), "run-1", LONG).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, LockError::Corrupt { .. }), "{message}");
    assert!(
        message.contains(&format!("{} on bettley", file.display())),
        "{message}"
    );
    assert!(message.contains("remove it with `gt unlock`"), "{message}");
    lab.gt(&["unlock", "--yes"])
        .success()
        .stdout_contains("is not a lock gt can read")
        .stdout_contains("  not a lock\n")
        .stdout_contains("Removed the apply lock of cluster goldentooth from bettley.");
    assert!(!file.exists());
}

// `gt apply` observes while it takes the lock: an observation that started
// before the lock was won is planned on only when no apply that may have
// changed the cluster let go of the lock after it started; otherwise gt
// observes again, under the lock.

fn release_stamp(lab: &Lab) -> std::path::PathBuf {
    lab.host_root("bettley").join("var/lib/gt/apply.released")
}

#[test]
fn a_release_after_the_observation_began_means_observing_again() {
    let lab = Lab::up(Transport::Local).model_etcd().start();
    let op = Operator::of(&lab);
    let first = op.acquire(&op.hosts(), "first", LONG).unwrap();
    let observing_since = Instant::now();
    op.rt.block_on(first.release()).unwrap();
    let second = op.acquire(&op.hosts(), "second", LONG).unwrap();
    let why = second
        .changed_hands_since(observing_since)
        .expect("a release after the observation began");
    assert!(
        why.starts_with("another apply released it on bettley ")
            && why.ends_with(" before gt took it, after gt began observing"),
        "{why}"
    );
    op.rt.block_on(second.release()).unwrap();
}

#[test]
fn a_lock_never_released_or_released_unchanged_keeps_the_observation() {
    let lab = Lab::up(Transport::Local).model_etcd().start();
    let op = Operator::of(&lab);
    let observing_since = Instant::now();
    let first = op.acquire(&op.hosts(), "first", LONG).unwrap();
    assert_eq!(first.changed_hands_since(observing_since), None);
    // An apply that ran no step changed nothing.
    op.rt.block_on(first.release_unchanged()).unwrap();
    assert!(!release_stamp(&lab).exists());
    let second = op.acquire(&op.hosts(), "second", LONG).unwrap();
    assert_eq!(second.changed_hands_since(observing_since), None);
    op.rt.block_on(second.release()).unwrap();
    assert!(release_stamp(&lab).exists());
}

#[test]
fn a_lock_taken_over_means_observing_again() {
    let lab = Lab::up(Transport::Local).model_etcd().start();
    let op = Operator::of(&lab);
    abandon_a_lock(&op, "crashed");
    let observing_since = Instant::now();
    let next = op.acquire_later(&op.hosts(), "next").unwrap();
    let why = next
        .changed_hands_since(observing_since)
        .expect("taken over");
    assert!(why.contains("taken over from "), "{why}");
    op.rt.block_on(next.release()).unwrap();
}

#[test]
fn gt_apply_observes_again_when_the_lock_changed_hands_and_a_no_op_leaves_no_stamp() {
    let lab = Lab::up(Transport::Local)
        .model_etcd()
        .speed(0.001)
        .converged();
    // A release stamped (in milliseconds) in the future: after any
    // observation that can start now.
    let future = (now_unix() + 3600) * 1000;
    std::fs::write(release_stamp(&lab), format!("{future}\n")).unwrap();
    let run = lab.gt(&["apply", "--auto-approve"]);
    run.success();
    assert!(
        run.stderr.contains(
            "The apply lock changed hands while gt observed (another apply released it on bettley "
        ) && run.stderr.contains("observing again, under the lock."),
        "{run}"
    );
    assert!(run.stdout.contains("No changes."), "{run}");
    // Nothing to do: the stamp is left as it was.
    assert_eq!(
        std::fs::read_to_string(release_stamp(&lab)).unwrap(),
        format!("{future}\n")
    );
    // Without a recent release, the observation made while locking is planned on.
    std::fs::remove_file(release_stamp(&lab)).unwrap();
    let quiet = lab.gt(&["apply", "--auto-approve"]);
    quiet.success();
    assert!(!quiet.stderr.contains("changed hands"), "{quiet}");
}
