//! `gt apply` observes while it takes the lock: an observation that started
//! before the lock was won is planned on only when no apply that may have
//! changed the cluster let go of the lock after it started; otherwise gt
//! observes again, under the lock.

use crate::support::lab::{Lab, Transport};
use gt::apply::lock::{self, HostClock};
use gt::transport::{Hosts, TransportOptions};
use std::time::{Duration, Instant};

struct Operator {
    spec: gt::spec::Spec,
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

    /// Takes the lock for `run` over fresh connections, as another gt would.
    fn acquire(&self, run: &str, clock: HostClock) -> lock::HeldLock {
        let hosts = Hosts::new(&self.spec.nodes, &TransportOptions::default()).unwrap();
        self.rt
            .block_on(lock::acquire_on_clock(
                &self.spec,
                &hosts,
                run,
                Duration::from_secs(60),
                clock,
            ))
            .unwrap()
    }
}

fn release_stamp(lab: &Lab) -> std::path::PathBuf {
    lab.host_root("bettley").join("var/lib/gt/apply.released")
}

#[test]
fn a_release_after_the_observation_began_means_observing_again() {
    let lab = Lab::up(Transport::Local).start();
    let op = Operator::of(&lab);
    let first = op.acquire("first", HostClock::default());
    let observing_since = Instant::now();
    op.rt.block_on(first.release()).unwrap();
    let second = op.acquire("second", HostClock::default());
    let why = second
        .changed_hands_since(observing_since)
        .expect("a release after the observation began");
    assert!(
        why.starts_with("another apply released it on bettley at "),
        "{why}"
    );
    op.rt.block_on(second.release()).unwrap();
}

#[test]
fn a_lock_never_released_or_released_unchanged_keeps_the_observation() {
    let lab = Lab::up(Transport::Local).start();
    let op = Operator::of(&lab);
    let observing_since = Instant::now();
    let first = op.acquire("first", HostClock::default());
    assert_eq!(first.changed_hands_since(observing_since), None);
    // An apply that ran no step changed nothing.
    op.rt.block_on(first.release_unchanged()).unwrap();
    assert!(!release_stamp(&lab).exists());
    let second = op.acquire("second", HostClock::default());
    assert_eq!(second.changed_hands_since(observing_since), None);
    op.rt.block_on(second.release()).unwrap();
    assert!(release_stamp(&lab).exists());
}

#[test]
fn a_lock_taken_over_means_observing_again() {
    let lab = Lab::up(Transport::Local).start();
    let op = Operator::of(&lab);
    // A gt that died holding a 2-second lease.
    let hosts = Hosts::new(&op.spec.nodes, &TransportOptions::default()).unwrap();
    drop(
        op.rt
            .block_on(lock::acquire(
                &op.spec,
                &hosts,
                "crashed",
                Duration::from_secs(2),
            ))
            .unwrap(),
    );
    let observing_since = Instant::now();
    let next = op.acquire("next", HostClock::ahead(Duration::from_secs(4)));
    assert!(next.took_over().is_some());
    let why = next
        .changed_hands_since(observing_since)
        .expect("taken over");
    assert!(why.contains("taken over from "), "{why}");
    op.rt.block_on(next.release()).unwrap();
}

#[test]
fn gt_apply_observes_again_when_the_lock_changed_hands_and_a_no_op_leaves_no_stamp() {
    let lab = Lab::up(Transport::Local).speed(0.001).converged();
    // A release stamped in the future: after any observation that can start now.
    let future = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    std::fs::write(release_stamp(&lab), format!("{future}\n")).unwrap();
    let run = lab.gt(&["apply", "--auto-approve"]);
    run.success();
    assert!(
        run.stderr.contains(
            "The apply lock changed hands while gt observed (another apply released it on bettley at "
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
