//! One apply per cluster at a time: a lease on the cluster's own hosts.
//!
//! Two operators on two machines (or a cron job and a human) must exclude
//! each other, so the lock is a file on the cluster, not on the machine gt
//! runs on: `${GT_HOST_ROOT}/var/lib/gt/apply.lock` on the *lock host*, the
//! bootstrap node, or when it cannot be reached the next control plane in
//! file order that can. It is decided without an observation (the lock is
//! taken before gt observes anything).
//!
//! Every operation is one remote POSIX sh command (`lock.sh`): the file is
//! created with `ln` (atomic, fails when the name exists), compared and timed
//! on the lock host's clock, so that clock skew between operators does not
//! matter. The lock is a lease: a task renews it every lease/4 while it is
//! held; a gt that is killed stops renewing and its lock expires. An expired
//! lock is taken over by one of its takers (they exclude each other with
//! `mkdir`; the winner replaces the file with `mv`, so it never goes missing)
//! and the new holder is told so.
//!
//! `gt apply` observes while it takes the lock, not after. That is safe
//! because every way the cluster can change under an observation leaves a
//! trace the acquisition reads: an apply that still holds the lock makes the
//! acquisition fail (`Held`); one killed mid-walk left its lock to expire,
//! and taking it over (`TookOver`) means observing again; one that finished
//! stamped the time of its release on the lock host (`apply.released`, in
//! milliseconds on that host's clock) before removing the file, and the
//! acquisition reports how long ago that was. `HeldLock::changed_hands_since`
//! compares it with how long gt has been observing; a release that may have
//! come after the observation began means observing again, now under the
//! lock. An apply that ran no step leaves no stamp:
//! it changed nothing.

use super::steps::{host_name, user_name};
use crate::spec::{Node, Spec};
use crate::transport::{shell_quote, Cmd, Host, Hosts, TransportError};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};

/// Where the lock lives on its host (under `${GT_HOST_ROOT}` in the lab).
pub const LOCK_PATH: &str = "/var/lib/gt/apply.lock";

/// The lease `gt apply` takes: a killed gt's lock is free again this long
/// after its last renewal.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(120);

/// Shorter leases are raised to this (see `acquire`).
pub const MIN_LEASE_SECS: u64 = 2;

/// How long one lock command may take on its host.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

const SCRIPT: &str = include_str!("lock.sh");

/// What lock.sh is asked to do (its `OP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Acquire,
    Renew,
    Read,
    Remove,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Acquire => "acquire",
            Op::Renew => "renew",
            Op::Read => "read",
            Op::Remove => "remove",
        }
    }
}

/// What lock.sh answers (`gt-lock STATUS ...`); which ones an operation can
/// give is in the script's comments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// acquire: the lock is ours, made fresh.
    Acquired,
    /// acquire: an expired lock, now ours (the file holds the old one).
    TookOver,
    /// acquire: another live lock (the file follows).
    Held,
    /// acquire: a file without a readable expiry.
    Corrupt,
    /// acquire: other takers kept the expired lock busy.
    Contended,
    /// read: a lock file (it follows).
    Found,
    /// read, remove: no lock file.
    None,
    /// renew: extended.
    Renewed,
    /// renew: the file is gone.
    Gone,
    /// renew: the file holds another run's lock.
    Stolen,
    /// renew: our lease ran out before this renewal.
    Expired,
    /// remove: another run's lock, left in place.
    Other,
    /// remove: removed (the file as it was follows).
    Removed,
}

impl Status {
    const ALL: [Status; 13] = [
        Status::Acquired,
        Status::TookOver,
        Status::Held,
        Status::Corrupt,
        Status::Contended,
        Status::Found,
        Status::None,
        Status::Renewed,
        Status::Gone,
        Status::Stolen,
        Status::Expired,
        Status::Other,
        Status::Removed,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Status::Acquired => "acquired",
            Status::TookOver => "took-over",
            Status::Held => "held",
            Status::Corrupt => "corrupt",
            Status::Contended => "contended",
            Status::Found => "found",
            Status::None => "none",
            Status::Renewed => "renewed",
            Status::Gone => "gone",
            Status::Stolen => "stolen",
            Status::Expired => "expired",
            Status::Other => "other",
            Status::Removed => "removed",
        }
    }

    fn parse(word: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == word)
    }
}

/// What the lock file holds (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// `user@machine` of the operator running the apply.
    pub holder: String,
    /// The machine gt runs on (its hostname).
    pub host: String,
    /// gt's process id on that machine.
    pub pid: u32,
    /// RFC 3339 UTC, on the lock host's clock.
    pub started: String,
    /// Seconds since the epoch, on the lock host's clock.
    pub started_unix: i64,
    /// RFC 3339 UTC, on the lock host's clock; renewals move it.
    pub expires: String,
    /// What expiry is decided on: seconds since the epoch, lock host's clock.
    pub expires_unix: i64,
    pub run_id: String,
    pub cluster: String,
    pub gt_version: String,
}

impl LockInfo {
    /// `root@laptop (pid 4242, host laptop)`
    pub fn who(&self) -> String {
        format!("{} (pid {}, host {})", self.holder, self.pid, self.host)
    }
}

/// A lock as found on a host, with that host's clock at the time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundLock {
    /// The node holding the file.
    pub lock_host: String,
    /// The file's path there.
    pub path: String,
    pub info: LockInfo,
    /// The lock host's clock when it was read (epoch seconds).
    pub host_now: i64,
}

impl FoundLock {
    pub fn age(&self) -> Duration {
        secs_between(self.info.started_unix, self.host_now)
    }
    /// Time left before it expires (zero once expired).
    pub fn expires_in(&self) -> Duration {
        secs_between(self.host_now, self.info.expires_unix)
    }
    pub fn expired(&self) -> bool {
        self.host_now > self.info.expires_unix
    }
}

/// What `current` saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// The lock, on the first control plane (bootstrap first) that has one.
    pub found: Option<FoundLock>,
    /// Control planes that answered.
    pub looked_on: Vec<String>,
    /// Control planes that could not be asked, with why.
    pub unreachable: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LockError {
    #[error(
        "another gt apply holds the lock of cluster {cluster} on {lock_host}: {who}, started {started} \
         ({age} ago), expires {expires} (in {expires_in}); wait for it to finish, or if that apply \
         is gone, run gt unlock",
        cluster = .info.cluster,
        who = .info.who(),
        started = .info.started,
        age = crate::duration::compact(*.age),
        expires = .info.expires,
        expires_in = crate::duration::compact(*.expires_in)
    )]
    Held {
        lock_host: String,
        info: Box<LockInfo>,
        age: Duration,
        expires_in: Duration,
    },

    #[error(
        "cannot {action} the apply lock of cluster {cluster}: no control plane could be reached ({tried}); \
         the lock lives on the bootstrap node, or the next control plane that answers: fix the \
         connection to one of them and run gt again",
        tried = .tried.iter().map(|(h, why)| format!("{h}: {why}")).collect::<Vec<_>>().join("; ")
    )]
    NoLockHost {
        /// `take` or `look for`.
        action: &'static str,
        cluster: String,
        tried: Vec<(String, String)>,
    },

    #[error("the apply lock on {lock_host}: {source}")]
    Transport {
        lock_host: String,
        source: Box<TransportError>,
    },

    #[error(
        "the apply lock file {path} on {lock_host} is not a lock gt can read ({why}); its content: \
         {content:?}. If no gt apply is running, remove it with `gt unlock` (or `rm {path}` on \
         {lock_host})"
    )]
    Corrupt {
        lock_host: String,
        path: String,
        why: String,
        content: String,
    },

    #[error(
        "could not {what} on {lock_host} (exit {code}): {stderr}; gt keeps the lock in /var/lib/gt/apply.lock: \
         check that /var/lib/gt there is writable by the ssh user (or sudo)"
    )]
    Remote {
        lock_host: String,
        what: String,
        code: i32,
        stderr: String,
    },

    #[error(
        "the apply lock of cluster {cluster} on {lock_host} is expired, but another gt has been \
         taking it over for 5 s; run gt again in a moment, and if this keeps happening, remove \
         it with gt unlock"
    )]
    Contended { cluster: String, lock_host: String },

    #[error(
        "gt lost the apply lock on {lock_host} during the apply: {what}; another apply may have \
         run at the same time: check the cluster with gt plan"
    )]
    Lost { lock_host: String, what: String },
}

/// The lock, held. Renewed in the background until `release` (or drop: a
/// dropped lock is no longer renewed and expires at the end of its lease,
/// like the lock of a gt that was killed).
pub struct HeldLock {
    lock_host: String,
    path: String,
    info: LockInfo,
    took_over: Option<LockInfo>,
    host: Arc<dyn Host>,
    vars: Vars,
    lost: watch::Receiver<Option<String>>,
    stop_renewing: Arc<Notify>,
    renewal: tokio::task::JoinHandle<()>,
    /// What each lock host read at acquisition said about its last release.
    releases: Vec<(String, LastRelease)>,
}

/// A lock host's last release, read when gt acquired (or looked).
#[derive(Debug, Clone, Copy)]
struct LastRelease {
    /// How long before the host answered (its clock, milliseconds); -1 for never.
    ago_ms: i64,
    /// gt's clock once the answer was in.
    answered: Instant,
}

/// Whether a release `ago_ms` milliseconds before a host answered (-1:
/// never) may have come after an observation that started `observing_for`
/// before gt had that answer. The host answered before gt had the answer, so
/// the release was at most `ago_ms` before gt had it; it is surely older than
/// the observation only when that is longer than `observing_for` (plus the
/// millisecond both stamps are truncated to).
pub fn released_during(ago_ms: i64, observing_for: Duration) -> bool {
    ago_ms >= 0 && (ago_ms as u128) <= observing_for.as_millis() + 1
}

impl fmt::Debug for HeldLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeldLock")
            .field("lock_host", &self.lock_host)
            .field("info", &self.info)
            .field("took_over", &self.took_over)
            .finish()
    }
}

impl HeldLock {
    /// The node holding the lock file.
    pub fn host(&self) -> &str {
        &self.lock_host
    }

    /// The lock file's path on that node.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What the file says (as written at acquisition).
    pub fn info(&self) -> &LockInfo {
        &self.info
    }

    /// The expired lock this one replaced.
    pub fn took_over(&self) -> Option<&LockInfo> {
        self.took_over.as_ref()
    }

    /// What to tell the user when an expired lock was taken over.
    pub fn warning(&self) -> Option<String> {
        let old = self.took_over.as_ref()?;
        Some(format!(
            "took over the expired apply lock of cluster {} on {}: {} started {} and stopped \
             renewing it (its lease ended {}); if that apply is in fact still running, stop it",
            old.cluster,
            self.lock_host,
            old.who(),
            old.started,
            old.expires
        ))
    }

    /// Why the lock is no longer ours, once renewal found out.
    pub fn lost(&self) -> Option<String> {
        self.lost.borrow().clone()
    }

    /// Why an observation that started at `observing_since` (before this
    /// lock was won) may not be what the cluster is now: the lock was taken
    /// over from an apply that stopped renewing it, or an apply that may
    /// have changed the cluster released it after the observation began.
    /// `None`: the observation can be planned on.
    pub fn changed_hands_since(&self, observing_since: Instant) -> Option<String> {
        if let Some(old) = &self.took_over {
            return Some(format!(
                "it was taken over from {}, whose apply stopped renewing it",
                old.who()
            ));
        }
        self.releases.iter().find_map(|(host, r)| {
            released_during(
                r.ago_ms,
                r.answered.saturating_duration_since(observing_since),
            )
            .then(|| {
                format!(
                    "another apply released it on {host} {} before gt took it, after gt began observing",
                    crate::transport::secs(Duration::from_millis(r.ago_ms.max(0) as u64))
                )
            })
        })
    }

    /// Changes to `Some(why)` when renewal finds the lock is no longer ours:
    /// an apply can stop starting steps then, as on Ctrl-C.
    pub fn watch_lost(&self) -> watch::Receiver<Option<String>> {
        self.lost.clone()
    }

    /// Stops renewing and removes the file if it still holds our run id,
    /// stamping the release: the cluster may have changed under this lock.
    /// `Err(Lost)` when it did not (our lease ran out and someone took it).
    pub async fn release(self) -> Result<(), LockError> {
        self.remove(true).await
    }

    /// `release` for an apply that ran no step: no stamp, so that an apply
    /// observing meanwhile need not observe again.
    pub async fn release_unchanged(self) -> Result<(), LockError> {
        self.remove(false).await
    }

    async fn remove(mut self, changed: bool) -> Result<(), LockError> {
        // A renewal in flight would write the file back after we remove it:
        // let it finish rather than abort it halfway.
        self.stop_renewing.notify_one();
        let _ = tokio::time::timeout(COMMAND_TIMEOUT * 2, &mut self.renewal).await;
        let vars = Vars {
            changed,
            ..self.vars.clone()
        };
        let out = run_op(&self.host, &self.lock_host, Op::Remove, &vars).await?;
        match out.status {
            // Still ours when removed: nobody else held it in between.
            Status::Removed => Ok(()),
            Status::None => Err(LockError::Lost {
                lock_host: self.lock_host.clone(),
                what: self
                    .lost()
                    .unwrap_or_else(|| "the lock file was removed (gt unlock?)".into()),
            }),
            Status::Other => Err(LockError::Lost {
                lock_host: self.lock_host.clone(),
                what: match parse_info(&out.content) {
                    Ok(i) => format!("the lock now belongs to {}", i.who()),
                    Err(_) => "the lock file was replaced".into(),
                },
            }),
            _ => Err(unexpected(&self.lock_host, "release the apply lock", &out)),
        }
    }
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        self.renewal.abort();
    }
}

/// The nodes that may hold the lock, in the order they are tried: the
/// bootstrap node, then the other control planes in file order (nodes being
/// removed excepted).
pub fn lock_hosts(spec: &Spec) -> Vec<&Node> {
    let bootstrap = spec.cluster.bootstrap.as_str();
    let cps = || {
        spec.nodes
            .iter()
            .filter(|n| n.is_control_plane() && n.is_present())
    };
    cps()
        .filter(|n| n.name.as_str() == bootstrap)
        .chain(cps().filter(|n| n.name.as_str() != bootstrap))
        .collect()
}

/// The lock host's clock as lock.sh reads it. gt always takes the host's own
/// (`HostClock::default()`); a test sets it ahead to play an apply that comes
/// after a lease has run out, without waiting the lease out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostClock {
    ahead_secs: u64,
}

impl HostClock {
    /// The host's clock, `by` (whole seconds) later.
    pub const fn ahead(by: Duration) -> HostClock {
        HostClock {
            ahead_secs: by.as_secs(),
        }
    }
}

/// Takes the apply lock of `spec`'s cluster for `run_id`, for `lease` (whole
/// seconds, at least 2: renewals every lease/4 must land a whole second
/// before the lease ends), renewed until released.
pub async fn acquire(
    spec: &Spec,
    hosts: &Hosts,
    run_id: &str,
    lease: Duration,
) -> Result<HeldLock, LockError> {
    acquire_on_clock(spec, hosts, run_id, lease, HostClock::default()).await
}

/// `acquire`, with the lock host's clock read as `clock` says (renewals too).
pub async fn acquire_on_clock(
    spec: &Spec,
    hosts: &Hosts,
    run_id: &str,
    lease: Duration,
    clock: HostClock,
) -> Result<HeldLock, LockError> {
    let lease_secs = lease.as_secs().max(MIN_LEASE_SECS);
    let mut vars = Vars::ours(&spec.cluster.name, run_id, lease_secs);
    vars.clock = clock;
    let candidates = lock_hosts(spec);
    let mut tried = Vec::new();
    for (i, node) in candidates.iter().enumerate() {
        let name = node.name.as_str();
        let host = match hosts.get(name).await {
            Ok(h) => h,
            Err(e) => {
                tried.push((name.to_string(), e.reason()));
                continue;
            }
        };
        let out = match run_op(&host, name, Op::Acquire, &vars).await {
            Ok(o) => o,
            Err(LockError::Transport { source, .. }) => {
                tried.push((name.to_string(), source.reason()));
                continue;
            }
            Err(e) => return Err(e),
        };
        let took_over = match out.status {
            Status::Acquired => None,
            Status::TookOver => parse_info(&out.content).ok(),
            Status::Held => return Err(held(found_from(name, &out)?)),
            Status::Corrupt => return Err(corrupt(name, &out, "it has no expires_unix")),
            Status::Contended => {
                return Err(LockError::Contended {
                    cluster: spec.cluster.name.clone(),
                    lock_host: name.to_string(),
                })
            }
            _ => return Err(unexpected(name, "take the apply lock", &out)),
        };
        vars.started = Some(out.now);
        let info = vars.info(out.now);
        let mut releases = vec![(name.to_string(), out.last_release())];
        // A control plane after this one may hold a lock taken while this one
        // was unreachable (it is back now): that apply came first.
        let (other, elsewhere) = live_lock_on(hosts, &candidates[i + 1..], run_id, clock).await;
        if let Some(other) = other {
            let _ = run_op(
                &host,
                name,
                Op::Remove,
                &Vars {
                    changed: false,
                    ..vars.clone()
                },
            )
            .await;
            return Err(held(other));
        }
        releases.extend(elsewhere);
        let (lost_tx, lost) = watch::channel(None);
        let stop_renewing = Arc::new(Notify::new());
        let renewal = tokio::spawn(renew_forever(
            host.clone(),
            name.to_string(),
            vars.clone(),
            Duration::from_secs(lease_secs),
            lost_tx,
            stop_renewing.clone(),
        ));
        return Ok(HeldLock {
            lock_host: name.to_string(),
            path: out.path,
            info,
            took_over,
            host,
            vars,
            lost,
            stop_renewing,
            renewal,
            releases,
        });
    }
    Err(LockError::NoLockHost {
        action: "take",
        cluster: spec.cluster.name.clone(),
        tried,
    })
}

/// The lock as it stands: the first control plane (bootstrap first) with a
/// lock file, expired or not. Reads only.
pub async fn current(spec: &Spec, hosts: &Hosts) -> Result<Lookup, LockError> {
    let vars = Vars::anyone(&spec.cluster.name);
    let mut lookup = Lookup {
        found: None,
        looked_on: Vec::new(),
        unreachable: Vec::new(),
    };
    for node in lock_hosts(spec) {
        let name = node.name.as_str();
        let out = match hosts.get(name).await {
            Ok(h) => run_op(&h, name, Op::Read, &vars).await,
            Err(source) => Err(LockError::Transport {
                lock_host: name.to_string(),
                source: Box::new(source),
            }),
        };
        let out = match out {
            Ok(o) => o,
            Err(LockError::Transport { source, .. }) => {
                lookup.unreachable.push((name.to_string(), source.reason()));
                continue;
            }
            Err(e) => return Err(e),
        };
        lookup.looked_on.push(name.to_string());
        match out.status {
            Status::None => {}
            Status::Found => {
                lookup.found = Some(found_from(name, &out)?);
                return Ok(lookup);
            }
            _ => return Err(unexpected(name, "read the apply lock", &out)),
        }
    }
    if lookup.looked_on.is_empty() {
        return Err(LockError::NoLockHost {
            action: "look for",
            cluster: spec.cluster.name.clone(),
            tried: lookup.unreachable,
        });
    }
    Ok(lookup)
}

/// Removes the lock on `lock_host`: any lock when `expected_run_id` is
/// `None`, else only that run's. `Ok(false)`: there was no lock. A lock of
/// another run is `Err(Held)` and stays.
pub async fn remove(
    spec: &Spec,
    hosts: &Hosts,
    lock_host: &str,
    expected_run_id: Option<&str>,
) -> Result<bool, LockError> {
    let vars = match expected_run_id {
        Some(id) => Vars::ours(&spec.cluster.name, id, 1),
        None => Vars::anyone(&spec.cluster.name),
    };
    let host = hosts
        .get(lock_host)
        .await
        .map_err(|source| LockError::Transport {
            lock_host: lock_host.to_string(),
            source: Box::new(source),
        })?;
    let out = run_op(&host, lock_host, Op::Remove, &vars).await?;
    match out.status {
        Status::None => Ok(false),
        Status::Removed => Ok(true),
        Status::Other => Err(held(found_from(lock_host, &out)?)),
        _ => Err(unexpected(lock_host, "remove the apply lock", &out)),
    }
}

/// The first live lock of another run on `nodes` (unreachable ones are
/// skipped), and what each that answered said about its last release.
async fn live_lock_on(
    hosts: &Hosts,
    nodes: &[&Node],
    run_id: &str,
    clock: HostClock,
) -> (Option<FoundLock>, Vec<(String, LastRelease)>) {
    let vars = Vars {
        clock,
        ..Vars::anyone("")
    };
    let reads = futures_util::future::join_all(nodes.iter().map(|node| {
        let vars = &vars;
        async move {
            let name = node.name.as_str();
            let host = hosts.get(name).await.ok()?;
            let out = run_op(&host, name, Op::Read, vars).await.ok()?;
            let found = (out.status == Status::Found)
                .then(|| found_from(name, &out).ok())
                .flatten();
            Some((found, (name.to_string(), out.last_release())))
        }
    }))
    .await;
    let (found, releases): (Vec<_>, Vec<_>) = reads.into_iter().flatten().unzip();
    let live = found
        .into_iter()
        .flatten()
        .find(|f| !f.expired() && f.info.run_id != run_id);
    (live, releases)
}

async fn renew_forever(
    host: Arc<dyn Host>,
    lock_host: String,
    vars: Vars,
    lease: Duration,
    lost: watch::Sender<Option<String>>,
    stop: Arc<Notify>,
) {
    let mut renewed = Instant::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(lease / 4) => {}
            _ = stop.notified() => return,
        }
        let why = match run_op(&host, &lock_host, Op::Renew, &vars).await {
            Ok(out) => match out.status {
                Status::Renewed => {
                    renewed = Instant::now();
                    continue;
                }
                Status::Gone => "the lock file was removed (gt unlock?)".to_string(),
                Status::Stolen => match parse_info(&out.content) {
                    Ok(i) => format!("the lock now belongs to {}", i.who()),
                    Err(_) => "the lock file was replaced".into(),
                },
                Status::Expired => {
                    "its lease ran out before gt could renew it (gt or the host stalled)".into()
                }
                other => format!("renewal answered {:?}", other.as_str()),
            },
            // A network blip: retried at the next tick, the lease leaves three
            // more. Past the lease the lock has expired where others see it,
            // and they may fall back to another control plane.
            Err(e) if renewed.elapsed() >= lease => {
                format!(
                    "gt could not renew it for {}: {e}",
                    crate::duration::compact(renewed.elapsed())
                )
            }
            Err(_) => continue,
        };
        lost.send_replace(Some(why));
        return;
    }
}

/// The variables the script starts with, JSON-encoded where they are data.
#[derive(Debug, Clone)]
struct Vars {
    lease: u64,
    clock: HostClock,
    started: Option<i64>,
    holder: String,
    host: String,
    pid: u32,
    /// Empty: any run (remove).
    run_id: String,
    cluster: String,
    /// remove: stamp the release (the holder may have changed the cluster).
    changed: bool,
}

impl Vars {
    fn ours(cluster: &str, run_id: &str, lease: u64) -> Vars {
        // The same `user@machine` as the run's operator in events and the recap.
        let host = host_name();
        Vars {
            lease,
            clock: HostClock::default(),
            started: None,
            holder: format!("{}@{host}", user_name()),
            host,
            pid: std::process::id(),
            run_id: run_id.to_string(),
            cluster: cluster.to_string(),
            changed: true,
        }
    }

    fn anyone(cluster: &str) -> Vars {
        Vars {
            run_id: String::new(),
            ..Vars::ours(cluster, "", 1)
        }
    }

    /// What `write_lock` puts in the file at `now` (the lock host's clock).
    fn info(&self, now: i64) -> LockInfo {
        let started = self.started.unwrap_or(now);
        let expires = now + self.lease as i64;
        LockInfo {
            holder: self.holder.clone(),
            host: self.host.clone(),
            pid: self.pid,
            started: rfc3339(started),
            started_unix: started,
            expires: rfc3339(expires),
            expires_unix: expires,
            run_id: self.run_id.clone(),
            cluster: self.cluster.clone(),
            gt_version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }

    fn script(&self, op: Op) -> String {
        let json = |s: &str| shell_quote(&serde_json::to_string(s).expect("a string"));
        let run = if self.run_id.is_empty() {
            "''".to_string()
        } else {
            json(&self.run_id)
        };
        format!(
            "OP={} LEASE={} STARTED={} AHEAD={} PID={} CHANGED={}\nHOLDER={} HOST={} RUN={run} CLUSTER={} VERSION={}\n{SCRIPT}",
            op.as_str(),
            self.lease,
            self.started.unwrap_or(0),
            self.clock.ahead_secs,
            self.pid,
            u8::from(self.changed),
            json(&self.holder),
            json(&self.host),
            json(&self.cluster),
            json(env!("CARGO_PKG_VERSION")),
        )
    }
}

/// The script's answer: `gt-lock STATUS NOW RELEASED PATH`, then the lock file.
#[derive(Debug, Clone)]
struct ScriptOut {
    status: Status,
    now: i64,
    /// Milliseconds since the host's last stamped release, -1 for never.
    released_ago_ms: i64,
    answered: Instant,
    path: String,
    content: String,
    code: i32,
    stderr: String,
}

async fn run_op(
    host: &Arc<dyn Host>,
    lock_host: &str,
    op: Op,
    vars: &Vars,
) -> Result<ScriptOut, LockError> {
    let cmd = Cmd::new(vars.script(op))
        .label(format!("gt lock {}", op.as_str()))
        .timeout(COMMAND_TIMEOUT);
    let out = host
        .run(&cmd, None)
        .await
        .map_err(|source| LockError::Transport {
            lock_host: lock_host.to_string(),
            source: Box::new(source),
        })?;
    let (first, rest) = out.stdout.split_once('\n').unwrap_or((&out.stdout, ""));
    let mut words = first.splitn(5, ' ');
    let parsed = match (
        words.next(),
        words.next(),
        words.next(),
        words.next(),
        words.next(),
    ) {
        (Some("gt-lock"), Some(status), Some(now), Some(ago), Some(path)) if out.code == 0 => {
            match (Status::parse(status), now.parse(), ago.parse()) {
                (Some(s), Ok(now), Ok(ago)) => Some((s, now, ago, path)),
                _ => None,
            }
        }
        _ => None,
    };
    let Some((status, now, released_ago_ms, path)) = parsed else {
        return Err(LockError::Remote {
            lock_host: lock_host.to_string(),
            what: format!("run gt's lock command ({})", op.as_str()),
            code: out.code,
            stderr: if out.stderr.trim().is_empty() {
                format!("unexpected output {:?}", out.stdout)
            } else {
                out.stderr.trim().to_string()
            },
        });
    };
    Ok(ScriptOut {
        status,
        now,
        released_ago_ms,
        answered: Instant::now(),
        path: path.to_string(),
        content: rest.trim_end().to_string(),
        code: out.code,
        stderr: out.stderr,
    })
}

impl ScriptOut {
    fn last_release(&self) -> LastRelease {
        LastRelease {
            ago_ms: self.released_ago_ms,
            answered: self.answered,
        }
    }
}

fn parse_info(content: &str) -> Result<LockInfo, String> {
    serde_json::from_str(content).map_err(|e| e.to_string())
}

fn found_from(lock_host: &str, out: &ScriptOut) -> Result<FoundLock, LockError> {
    let info = parse_info(&out.content).map_err(|why| corrupt(lock_host, out, &why))?;
    Ok(FoundLock {
        lock_host: lock_host.to_string(),
        path: out.path.clone(),
        info,
        host_now: out.now,
    })
}

fn held(found: FoundLock) -> LockError {
    LockError::Held {
        age: found.age(),
        expires_in: found.expires_in(),
        lock_host: found.lock_host,
        info: Box::new(found.info),
    }
}

fn corrupt(lock_host: &str, out: &ScriptOut, why: &str) -> LockError {
    LockError::Corrupt {
        lock_host: lock_host.to_string(),
        path: out.path.clone(),
        why: why.to_string(),
        content: out.content.clone(),
    }
}

fn unexpected(lock_host: &str, what: &str, out: &ScriptOut) -> LockError {
    LockError::Remote {
        lock_host: lock_host.to_string(),
        what: what.to_string(),
        code: out.code,
        stderr: format!(
            "unexpected answer {:?} {}",
            out.status.as_str(),
            out.stderr.trim()
        ),
    }
}

fn secs_between(from: i64, to: i64) -> Duration {
    Duration::from_secs(to.saturating_sub(from).max(0) as u64)
}

/// Epoch seconds as RFC 3339 UTC (what the script writes, for our own copy).
fn rfc3339(epoch: i64) -> String {
    humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + Duration::from_secs(epoch.max(0) as u64),
    )
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bootstrap_node_is_tried_first_then_present_control_planes_in_file_order() {
        let mut src = String::from(
            "[cluster]\nname = \"t\"\nkubernetes_version = \"1.32\"\nendpoint = \"10.4.0.10:6443\"\n\
             pod_cidr = \"192.168.0.0/16\"\nservice_cidr = \"172.16.0.0/20\"\nbootstrap = \"cargyll\"\n\
             [cluster.cni]\nname = \"calico\"\nmanifest = \"https://example.invalid/c.yaml\"\n\
             [defaults]\narch = \"arm64\"\n",
        );
        for (i, (name, role, state)) in [
            ("bettley", "control-plane", "present"),
            ("erenford", "worker", "present"),
            ("cargyll", "control-plane", "present"),
            ("dalt", "control-plane", "absent"),
            ("oakheart", "control-plane", "present"),
        ]
        .iter()
        .enumerate()
        {
            src.push_str(&format!(
                "[nodes.{name}]\nrole = \"{role}\"\naddress = \"10.4.0.{}\"\nstate = \"{state}\"\n",
                11 + i
            ));
        }
        let spec = crate::spec::load_str(&src, std::path::Path::new("cluster.toml"))
            .unwrap_or_else(|d| panic!("{d}"));
        let order: Vec<&str> = lock_hosts(&spec).iter().map(|n| n.name.as_str()).collect();
        assert_eq!(order, ["cargyll", "bettley", "oakheart"]);
    }

    #[test]
    fn the_held_message_names_the_holder_where_and_what_to_do() {
        let e = LockError::Held {
            lock_host: "bettley".into(),
            info: Box::new(LockInfo {
                holder: "root@laptop".into(),
                host: "laptop".into(),
                pid: 4242,
                started: "2026-11-23T10:00:01Z".into(),
                started_unix: 0,
                expires: "2026-11-23T10:05:13Z".into(),
                expires_unix: 0,
                run_id: "r1".into(),
                cluster: "goldentooth".into(),
                gt_version: "0.1.0".into(),
            }),
            age: Duration::from_secs(192),
            expires_in: Duration::from_secs(120),
        };
        assert_eq!(
            e.to_string(),
            "another gt apply holds the lock of cluster goldentooth on bettley: root@laptop \
             (pid 4242, host laptop), started 2026-11-23T10:00:01Z (3m12s ago), expires \
             2026-11-23T10:05:13Z (in 2m00s); wait for it to finish, or if that apply is gone, \
             run gt unlock"
        );
    }

    /// The shells lock.sh runs in: POSIX sh (dash on Debian, gt's local
    /// transport) and bash (root's login shell, which sshd runs it in).
    const SHELLS: [&str; 2] = ["sh", "bash"];

    #[test]
    fn our_rfc3339_matches_the_scripts() {
        assert_eq!(rfc3339(951868799), "2000-02-29T23:59:59Z");
        for shell in SHELLS {
            let out = std::process::Command::new(shell)
                .arg("-c")
                .arg(format!(
                    "{}\nfor e in 951868799 4102444799 1767225600 0; do rfc3339 $e; echo \"$ts\"; done",
                    SCRIPT
                        .split("\nclock_s\n")
                        .next()
                        .expect("the script's functions come first")
                ))
                .output()
                .unwrap();
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                "2000-02-29T23:59:59Z\n2099-12-31T23:59:59Z\n2026-01-01T00:00:00Z\n1970-01-01T00:00:00Z\n",
                "{shell}"
            );
            assert_eq!(rfc3339(1767225600), "2026-01-01T00:00:00Z");
        }
    }

    /// Runs the script for `op` under `root`, its writes limited to
    /// `max_file_bytes` (as a full disk would stop them: root ignores
    /// permissions, not this limit).
    fn run_script(root: &std::path::Path, vars: &Vars, op: Op, max_file_bytes: u64) -> i32 {
        use std::os::unix::process::CommandExt;
        let mut cmd = std::process::Command::new("sh");
        cmd.arg("-c").arg(vars.script(op)).env("GT_HOST_ROOT", root);
        // SAFETY: only async-signal-safe calls between fork and exec. An
        // ignored SIGXFSZ makes a write past the limit fail with EFBIG
        // instead of killing the shell.
        unsafe {
            cmd.pre_exec(move || {
                let limit = libc::rlimit {
                    rlim_cur: max_file_bytes,
                    rlim_max: max_file_bytes,
                };
                libc::setrlimit(libc::RLIMIT_FSIZE, &limit);
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                Ok(())
            });
        }
        cmd.output().unwrap().status.code().unwrap_or(-1)
    }

    fn left_in(root: &std::path::Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(root.join("var/lib/gt"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_write_that_fails_leaves_no_temporary_file_behind() {
        let root = tempfile::tempdir().unwrap();
        let vars = Vars::ours("goldentooth", "run-1", 60);
        assert_eq!(run_script(root.path(), &vars, Op::Acquire, 0), 3);
        assert_eq!(left_in(root.path()), Vec::<String>::new());
        assert_eq!(run_script(root.path(), &vars, Op::Acquire, u64::MAX), 0);
        let mut renew = vars.clone();
        renew.started = Some(1);
        assert_eq!(run_script(root.path(), &renew, Op::Renew, 0), 3);
        assert_eq!(left_in(root.path()), ["apply.lock"]);
    }

    #[test]
    fn a_script_terminated_mid_acquire_leaves_no_temporary_file_behind() {
        let root = tempfile::tempdir().unwrap();
        let first = Vars::ours("goldentooth", "run-1", 60);
        assert_eq!(run_script(root.path(), &first, Op::Acquire, u64::MAX), 0);
        let lock: LockInfo = serde_json::from_slice(
            &std::fs::read(root.path().join("var/lib/gt/apply.lock")).unwrap(),
        )
        .unwrap();
        // Another taker of the expired lock is inside: this one waits a
        // second at a time, its temporary file written.
        let takeover = format!(".apply.lock.takeover.{}", lock.expires_unix);
        std::fs::create_dir(root.path().join("var/lib/gt").join(&takeover)).unwrap();
        let mut second = Vars::ours("goldentooth", "run-2", 60);
        second.clock = HostClock::ahead(Duration::from_secs(120));
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(second.script(Op::Acquire))
            .env("GT_HOST_ROOT", root.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let temp = root
            .path()
            .join(format!("var/lib/gt/.apply.lock.new.{}", child.id()));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !temp.exists() {
            assert!(std::time::Instant::now() < deadline, "no temporary file");
            std::thread::sleep(Duration::from_millis(10));
        }
        // SAFETY: our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        assert_eq!(child.wait().unwrap().code(), Some(143));
        assert_eq!(left_in(root.path()), [takeover.as_str(), "apply.lock"]);
    }

    #[test]
    fn data_reaches_the_script_json_encoded_and_shell_quoted() {
        let mut v = Vars::ours("gold'tooth", "run \"1\"", 120);
        v.holder = "o'brien@box".into();
        let s = v.script(Op::Read);
        assert!(
            s.starts_with("OP=read LEASE=120 STARTED=0 AHEAD=0 PID="),
            "{s}"
        );
        assert!(s.contains(r#"HOLDER="\"o'brien@box\"""#), "{s}");
        assert!(s.contains(r#"RUN="\"run \\\"1\\\"\"""#), "{s}");
        assert!(s.contains(r#"CLUSTER="\"gold'tooth\"""#), "{s}");
    }

    /// The first line lock.sh printed for `op` under `root`, split in words.
    fn answer(root: &std::path::Path, vars: &Vars, op: Op) -> Vec<String> {
        answer_in("sh", root, vars, op)
    }

    /// `answer`, the script run by `shell`.
    fn answer_in(shell: &str, root: &std::path::Path, vars: &Vars, op: Op) -> Vec<String> {
        let out = std::process::Command::new(shell)
            .arg("-c")
            .arg(vars.script(op))
            .env("GT_HOST_ROOT", root)
            .output()
            .unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        stdout
            .lines()
            .next()
            .unwrap()
            .split(' ')
            .map(String::from)
            .collect()
    }

    #[test]
    fn a_release_after_changes_is_stamped_and_the_next_acquire_reports_how_long_ago() {
        for shell in SHELLS {
            let root = tempfile::tempdir().unwrap();
            let first = Vars::ours("goldentooth", "run-1", 60);
            let acquired = answer_in(shell, root.path(), &first, Op::Acquire);
            assert_eq!(acquired[..2], ["gt-lock", "acquired"], "{shell}");
            assert_eq!(acquired[3], "-1", "{shell}: never released: {acquired:?}");
            let lock: LockInfo = serde_json::from_slice(
                &std::fs::read(root.path().join("var/lib/gt/apply.lock")).unwrap(),
            )
            .unwrap();
            assert_eq!(lock.started_unix.to_string(), acquired[2], "{shell}");
            assert_eq!(lock.started, rfc3339(lock.started_unix), "{shell}");
            assert_eq!(lock.expires_unix, lock.started_unix + 60, "{shell}");
            let found = answer_in(shell, root.path(), &first, Op::Read);
            assert_eq!(found[1], "found", "{shell}");
            let removed = answer_in(shell, root.path(), &first, Op::Remove);
            assert_eq!(removed[1], "removed", "{shell}");
            let stamp: i64 = std::fs::read_to_string(root.path().join("var/lib/gt/apply.released"))
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            let now: i64 = removed[2].parse().unwrap();
            assert!(
                (now * 1000..now * 1000 + 2000).contains(&stamp),
                "{shell}: {stamp} in second {now}"
            );
            assert_eq!(left_in(root.path()), ["apply.released"], "{shell}");
            let second = Vars::ours("goldentooth", "run-2", 60);
            let again = answer_in(shell, root.path(), &second, Op::Acquire);
            assert_eq!(again[1], "acquired", "{shell}");
            let ago: i64 = again[3].parse().unwrap();
            assert!((0..60_000).contains(&ago), "{shell}: {again:?}");
        }
    }

    /// Each program lock.sh starts costs a fork and an exec on the lock
    /// host, in series with the apply: under bash (how sshd runs it) only
    /// the file operations that must be atomic start one.
    #[test]
    fn under_bash_the_lock_starts_only_ln_mv_and_rm() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("var/lib/gt")).unwrap();
        let bin = tempfile::tempdir().unwrap();
        let log = bin.path().join("started");
        for program in ["ln", "mv", "rm"] {
            let real = ["/bin", "/usr/bin"]
                .iter()
                .map(|d| std::path::Path::new(d).join(program))
                .find(|p| p.exists())
                .expect("coreutils");
            let wrapper = bin.path().join(program);
            std::fs::write(
                &wrapper,
                format!(
                    "#!/bin/sh\necho {program} >>'{}'\nexec '{}' \"$@\"\n",
                    log.display(),
                    real.display()
                ),
            )
            .unwrap();
            let mut perm = std::fs::metadata(&wrapper).unwrap().permissions();
            std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
            std::fs::set_permissions(&wrapper, perm).unwrap();
        }
        let started = |vars: &Vars, op: Op| -> (Vec<String>, Vec<String>) {
            let _ = std::fs::remove_file(&log);
            let out = std::process::Command::new("/bin/bash")
                .arg("-c")
                .arg(vars.script(op))
                .env("GT_HOST_ROOT", root.path())
                .env("PATH", bin.path())
                .output()
                .unwrap();
            assert!(out.status.success(), "{op:?}: {out:?}");
            let first = String::from_utf8_lossy(&out.stdout)
                .lines()
                .next()
                .unwrap_or_default()
                .split(' ')
                .map(String::from)
                .collect();
            let programs = std::fs::read_to_string(&log)
                .unwrap_or_default()
                .lines()
                .map(String::from)
                .collect();
            (first, programs)
        };
        let mut vars = Vars::ours("goldentooth", "run-1", 60);
        let (answer, programs) = started(&vars, Op::Acquire);
        assert_eq!(
            (answer[1].as_str(), programs),
            ("acquired", vec!["ln".into(), "rm".into()])
        );
        let (answer, programs) = started(&vars, Op::Read);
        assert_eq!((answer[1].as_str(), programs), ("found", vec![]));
        vars.started = answer[2].parse().ok();
        let (answer, programs) = started(&vars, Op::Renew);
        assert_eq!(
            (answer[1].as_str(), programs),
            ("renewed", vec!["mv".into()])
        );
        vars.changed = false;
        let (answer, programs) = started(&vars, Op::Remove);
        assert_eq!(
            (answer[1].as_str(), programs),
            ("removed", vec!["mv".into(), "rm".into()])
        );
        let (answer, programs) = started(&vars, Op::Read);
        assert_eq!((answer[1].as_str(), programs), ("none", vec![]));
        let (_, programs) = started(&vars, Op::Acquire);
        assert_eq!(programs, ["ln", "rm"]);
        vars.changed = true;
        let (answer, programs) = started(&vars, Op::Remove);
        assert_eq!(
            (answer[1].as_str(), programs),
            ("removed", vec!["mv".into(), "mv".into(), "rm".into()])
        );
        assert_eq!(left_in(root.path()), ["apply.released"]);
    }

    #[test]
    fn a_release_after_no_step_leaves_no_stamp() {
        let root = tempfile::tempdir().unwrap();
        let vars = Vars {
            changed: false,
            ..Vars::ours("goldentooth", "run-1", 60)
        };
        answer(root.path(), &vars, Op::Acquire);
        let removed = answer(root.path(), &vars, Op::Remove);
        assert_eq!(removed[1], "removed");
        assert_eq!(removed[3], "-1");
        assert!(!root.path().join("var/lib/gt/apply.released").exists());
    }

    #[test]
    fn a_stamp_that_is_not_a_number_or_in_the_future_reads_as_a_release_just_now() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("var/lib/gt")).unwrap();
        let stamp = root.path().join("var/lib/gt/apply.released");
        let vars = Vars::ours("goldentooth", "run-1", 60);
        std::fs::write(&stamp, "junk\n").unwrap();
        assert_eq!(answer(root.path(), &vars, Op::Read)[3], "0");
        std::fs::write(&stamp, "99999999999999\n").unwrap();
        assert_eq!(answer(root.path(), &vars, Op::Read)[3], "0");
    }

    #[test]
    fn a_release_is_older_than_an_observation_only_when_it_was_longer_ago() {
        let ms = Duration::from_millis;
        assert!(!released_during(-1, ms(5000)), "never released");
        assert!(!released_during(400, ms(300)));
        assert!(released_during(300, ms(300)));
        // Both ends are truncated to the millisecond.
        assert!(released_during(301, ms(300)));
        assert!(!released_during(302, ms(300)));
        assert!(released_during(0, ms(0)));
    }
}
