//! One shared poll for every wait of an apply: a hundred joining workers
//! waiting for their Nodes to be Ready read one `kubectl get nodes` every
//! `POLL`, not one each. Whoever waits while no poll is running runs the
//! next one (no task of its own: it lives as long as someone waits), the
//! others wake when it is published. A wait therefore notices a change at
//! most `POLL` plus one query after it happened, and the control plane
//! answers at most one query per `POLL`, however many wait.
//!
//! A watch of the same objects (`Hint`, fed by `node_watch.rs`) makes the polls
//! rarer and sooner at once: while it is live, a poll runs when the watch
//! has seen something change (still at most one per `POLL`), and otherwise
//! only every `WATCHED`, in case the watch stalls unnoticed. A wait then
//! notices a change one query after it happened, not up to `POLL` later.
//! A wait's first look (which must not decide on a poll older than the
//! wait) and a read of Nodes "now" hold an `Eager` guard: polls keep
//! `POLL`'s pace while one is held. (The gate's looks each ask for a poll
//! no older than the look, or read the watch.)

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
// Tokio's clock: a paused test clock paces the polls too.
use tokio::sync::{watch, Mutex};
use tokio::time::Instant;

/// The least time between the starts of two polls.
pub const POLL: Duration = Duration::from_millis(100);

/// Between two polls while a watch is live and has seen no change.
pub const WATCHED: Duration = Duration::from_secs(2);

/// What a watch tells the poller: whether it is live, and that something
/// changed (a poll then runs as soon as `POLL` allows).
#[derive(Default)]
pub struct Hint {
    live: AtomicBool,
    changed: tokio::sync::Notify,
    /// Waits that want `POLL`'s pace whatever the watch says.
    eager: AtomicUsize,
}

impl Hint {
    /// The watch printed a line (its first listing, or a change): it is
    /// live, and the next poll may start now. One stored notification
    /// stands for any number of changes.
    pub fn changed(&self) {
        self.live.store(true, Ordering::SeqCst);
        self.changed.notify_one();
    }

    /// The watch ended: polls go back to every `POLL`.
    pub fn ended(&self) {
        self.live.store(false, Ordering::SeqCst);
        // A waiter sleeping the long interval must wake to the short one.
        self.changed.notify_one();
    }

    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::SeqCst)
    }
}

/// One poll's result, numbered: a waiter asks for one newer than the last
/// it saw.
#[derive(Debug, Clone)]
pub struct Snapshot<T> {
    pub seq: u64,
    /// When its query started: what it says is no older.
    pub started: Instant,
    pub taken: Instant,
    pub value: T,
}

/// The latest result of a query many wait on, and who may run the next.
pub struct Poller<T> {
    latest: watch::Sender<Option<Snapshot<T>>>,
    /// Held by the one running a poll; holds when the last poll started.
    turn: Mutex<Option<Instant>>,
    interval: Duration,
    hint: Arc<Hint>,
}

impl<T: Clone> Poller<T> {
    pub fn new(interval: Duration) -> Poller<T> {
        Poller {
            latest: watch::Sender::new(None),
            turn: Mutex::new(None),
            interval,
            hint: Arc::default(),
        }
    }

    /// What a watch tells this poller through.
    pub fn hint(&self) -> Arc<Hint> {
        self.hint.clone()
    }

    /// Polls keep `POLL`'s pace while the guard is held, watch or not.
    pub fn eager(&self) -> Eager {
        self.hint.eager.fetch_add(1, Ordering::SeqCst);
        // A poll waiting out `WATCHED` must take up the short pace.
        self.hint.changed.notify_one();
        Eager(self.hint.clone())
    }

    /// The latest snapshot, if any poll ran.
    pub fn latest(&self) -> Option<Snapshot<T>> {
        self.latest.borrow().clone()
    }

    /// The first snapshot whose query started at `since` or later: what a
    /// wait that began at `since` may decide on. It comes at `POLL`'s pace
    /// even with a watch live: nothing may have changed since the last
    /// poll, and the wait still must not decide on one older than itself.
    /// (The waits use `since_unless`.)
    #[cfg(test)]
    pub async fn since<F, Fut>(&self, since: Instant, fetch: F) -> Snapshot<T>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = T>,
    {
        self.since_unless(since, fetch, std::future::pending())
            .await
            .expect("a pending future never ends")
    }

    /// `since`, unless `stop` ends first: `None` then. `stop` is looked at
    /// only while this waits, never during a query (a query cut short
    /// would be one the next waiter must run again).
    pub async fn since_unless<F, Fut, S>(
        &self,
        since: Instant,
        fetch: F,
        stop: S,
    ) -> Option<Snapshot<T>>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = T>,
        S: Future<Output = ()>,
    {
        let _first = self.eager();
        tokio::pin!(stop);
        let mut after = 0;
        loop {
            let s = self.newer_than_unless(after, &fetch, &mut stop).await?;
            if s.started >= since {
                return Some(s);
            }
            after = s.seq;
        }
    }

    /// The first snapshot numbered after `after` (0: any), running `fetch`
    /// for it when no one else is polling; a poll starts at least the
    /// interval after the previous one started.
    pub async fn newer_than<F, Fut>(&self, after: u64, fetch: F) -> Snapshot<T>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
    {
        self.newer_than_unless(after, fetch, std::future::pending())
            .await
            .expect("a pending future never ends")
    }

    /// `newer_than`, unless `stop` ends while this waits (for another's
    /// poll, or for its own to be due): `None` then.
    pub async fn newer_than_unless<F, Fut, S>(
        &self,
        after: u64,
        fetch: F,
        stop: S,
    ) -> Option<Snapshot<T>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T>,
        S: Future<Output = ()>,
    {
        tokio::pin!(stop);
        let mut rx = self.latest.subscribe();
        loop {
            if let Some(s) = newer(&rx.borrow_and_update(), after) {
                return Some(s);
            }
            tokio::select! {
                biased;
                () = &mut stop => return None,
                // The sender lives in `self`, which outlives this borrow.
                _ = rx.changed() => continue,
                // Whoever polled before may have been cancelled halfway: the
                // turn is free again then, and this waiter takes it.
                mut last = self.turn.lock() => {
                    if let Some(s) = newer(&self.latest.borrow(), after) {
                        return Some(s);
                    }
                    if let Some(started) = *last {
                        tokio::select! {
                            biased;
                            () = &mut stop => return None,
                            () = self.pace(started) => {}
                        }
                    }
                    let started = Instant::now();
                    *last = Some(started);
                    let value = fetch().await;
                    let seq = self.latest.borrow().as_ref().map_or(0, |s| s.seq) + 1;
                    let snapshot = Snapshot {
                        seq,
                        started,
                        taken: Instant::now(),
                        value,
                    };
                    self.latest.send_replace(Some(snapshot.clone()));
                    return Some(snapshot);
                }
            }
        }
    }
}

/// Held by a wait that wants polls at `POLL`'s pace (`Poller::eager`).
pub struct Eager(Arc<Hint>);

impl Drop for Eager {
    fn drop(&mut self) {
        self.0.eager.fetch_sub(1, Ordering::SeqCst);
    }
}

impl<T> Poller<T> {
    /// Waits until the poll after one that started at `started` may start:
    /// `interval` later; with a live watch and no eager wait, `WATCHED`
    /// later unless something changes first (the watch saw a change or
    /// ended, an eager wait began), and never sooner than `interval`.
    async fn pace(&self, started: Instant) {
        let hint = &self.hint;
        if hint.is_live() && hint.eager.load(Ordering::SeqCst) == 0 {
            tokio::select! {
                _ = tokio::time::sleep_until(started + WATCHED) => return,
                _ = hint.changed.notified() => {}
            }
        }
        tokio::time::sleep_until(started + self.interval).await;
    }
}

fn newer<T: Clone>(s: &Option<Snapshot<T>>, after: u64) -> Option<Snapshot<T>> {
    s.as_ref().filter(|s| s.seq > after).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    /// A query that counts its runs and answers with the count, after `takes`.
    fn counting(runs: &Arc<AtomicU32>, takes: Duration) -> impl Future<Output = u32> {
        let runs = runs.clone();
        async move {
            let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(takes).await;
            n
        }
    }

    /// A poll another task runs, started (its query in flight) on return.
    async fn poll_elsewhere(
        poller: &Arc<Poller<u32>>,
        runs: &Arc<AtomicU32>,
        takes: Duration,
    ) -> tokio::task::JoinHandle<Snapshot<u32>> {
        let (poller, runs) = (poller.clone(), runs.clone());
        let handle =
            tokio::spawn(async move { poller.newer_than(0, || counting(&runs, takes)).await });
        tokio::task::yield_now().await;
        handle
    }

    #[tokio::test(start_paused = true)]
    async fn a_hundred_waiters_share_one_query() {
        let poller = Poller::new(POLL);
        let runs = Arc::new(AtomicU32::new(0));
        let waits =
            (0..100).map(|_| poller.newer_than(0, || counting(&runs, Duration::from_millis(30))));
        let seen = futures_util::future::join_all(waits).await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(seen.iter().all(|s| s.seq == 1 && s.value == 1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_wakes_with_the_poll_another_ran() {
        let poller = Arc::new(Poller::new(POLL));
        let runs = Arc::new(AtomicU32::new(0));
        // The poll that changes what the waiter waits for is run by someone else.
        let slow = poll_elsewhere(&poller, &runs, Duration::from_secs(5)).await;
        let waiter = poller
            .newer_than(0, || async {
                panic!("the waiter must not poll while one runs")
            })
            .await;
        assert_eq!(waiter.value, 1);
        assert_eq!(slow.await.unwrap().seq, waiter.seq);
    }

    #[tokio::test(start_paused = true)]
    async fn polls_start_an_interval_apart_and_each_wait_sees_a_newer_one() {
        let poller = Poller::new(POLL);
        let runs = Arc::new(AtomicU32::new(0));
        let mut seen = 0;
        let mut starts = vec![];
        for _ in 0..3 {
            let s = poller
                .newer_than(seen, || {
                    starts.push(Instant::now());
                    counting(&runs, Duration::from_millis(10))
                })
                .await;
            assert!(s.seq > seen);
            seen = s.seq;
        }
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        for pair in starts.windows(2) {
            assert_eq!(pair[1] - pair[0], POLL, "the paused clock advances exactly");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_poller_cancelled_halfway_hands_the_turn_to_a_waiter() {
        let poller = Poller::new(POLL);
        let runs = Arc::new(AtomicU32::new(0));
        let abandoned = tokio::time::timeout(
            Duration::from_millis(1),
            poller.newer_than(0, || counting(&runs, Duration::from_secs(60))),
        )
        .await;
        assert!(abandoned.is_err());
        let s = poller
            .newer_than(0, || counting(&runs, Duration::from_millis(1)))
            .await;
        assert_eq!((s.seq, s.value), (1, 2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_never_decides_on_a_query_that_started_before_it() {
        let poller = Arc::new(Poller::new(POLL));
        let runs = Arc::new(AtomicU32::new(0));
        let in_flight = poll_elsewhere(&poller, &runs, Duration::from_secs(1)).await;
        tokio::time::advance(Duration::from_millis(1)).await;
        let since = Instant::now();
        let s = poller
            .since(since, || counting(&runs, Duration::from_millis(1)))
            .await;
        assert_eq!(in_flight.await.unwrap().seq, 1);
        assert_eq!((s.seq, s.value), (2, 2));
        assert!(s.started >= since);
    }

    #[tokio::test(start_paused = true)]
    async fn a_waiter_that_saw_the_latest_gets_the_next_not_the_same() {
        let poller = Poller::new(POLL);
        let runs = Arc::new(AtomicU32::new(0));
        let first = poller
            .newer_than(0, || counting(&runs, Duration::ZERO))
            .await;
        let again = poller
            .newer_than(0, || counting(&runs, Duration::ZERO))
            .await;
        assert_eq!(again.seq, first.seq, "one already newer than 0: no poll");
        let next = poller
            .newer_than(first.seq, || counting(&runs, Duration::ZERO))
            .await;
        assert_eq!(next.seq, first.seq + 1);
        assert_eq!(poller.latest().unwrap().seq, next.seq);
    }

    /// Starts of `n` polls in a row by one waiter, each newer than the last.
    async fn starts_of(poller: &Poller<u32>, n: usize) -> Vec<Instant> {
        let runs = Arc::new(AtomicU32::new(0));
        let mut starts = vec![];
        let mut seen = poller.latest().map_or(0, |s| s.seq);
        for _ in 0..n {
            let s = poller
                .newer_than(seen, || {
                    starts.push(Instant::now());
                    counting(&runs, Duration::from_millis(10))
                })
                .await;
            seen = s.seq;
        }
        starts
    }

    #[tokio::test(start_paused = true)]
    async fn with_a_live_watch_and_no_change_polls_start_the_long_interval_apart() {
        let poller = Poller::new(POLL);
        poller.hint().changed();
        let starts = starts_of(&poller, 4).await;
        // The first poll at once; going live stored one wake-up (the second
        // poll, an interval on); then only the long interval.
        assert_eq!(starts[1] - starts[0], POLL);
        assert_eq!(starts[2] - starts[1], WATCHED);
        assert_eq!(starts[3] - starts[2], WATCHED);
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_the_watch_sees_is_polled_at_once_but_never_sooner_than_the_interval() {
        let poller = Arc::new(Poller::new(POLL));
        let hint = poller.hint();
        hint.changed();
        // Use up going live's wake-up.
        let _ = starts_of(&poller, 2).await;
        let t0 = Instant::now();
        let changes = tokio::spawn({
            let hint = hint.clone();
            async move {
                // Long after the last poll: polled at once.
                tokio::time::sleep(Duration::from_millis(700)).await;
                hint.changed();
                // Right after that poll: polled an interval after it.
                tokio::time::sleep(Duration::from_millis(30)).await;
                hint.changed();
            }
        });
        let starts = starts_of(&poller, 2).await;
        changes.await.unwrap();
        assert_eq!(starts[0] - t0, Duration::from_millis(700));
        assert_eq!(starts[1] - starts[0], POLL);
    }

    #[tokio::test(start_paused = true)]
    async fn an_eager_wait_keeps_the_short_interval_and_a_watch_that_ends_brings_it_back() {
        let poller = Arc::new(Poller::new(POLL));
        let hint = poller.hint();
        hint.changed();
        let _ = starts_of(&poller, 2).await;
        {
            let _eager = poller.eager();
            let starts = starts_of(&poller, 3).await;
            assert!(starts.windows(2).all(|p| p[1] - p[0] == POLL), "{starts:?}");
        }
        // The eager wait's wake-up, not taken while it was eager: one poll.
        let _ = starts_of(&poller, 1).await;
        // A poll waiting out the long interval takes up the short one as
        // the watch ends.
        let t0 = Instant::now();
        let ending = tokio::spawn({
            let hint = hint.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(500)).await;
                hint.ended();
            }
        });
        let starts = starts_of(&poller, 3).await;
        ending.await.unwrap();
        assert_eq!(starts[0] - t0, Duration::from_millis(500));
        assert_eq!(starts[1] - starts[0], POLL);
        assert_eq!(starts[2] - starts[1], POLL);
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_wait_gets_a_poll_of_its_own_at_the_short_interval_despite_the_watch() {
        let poller = Poller::new(POLL);
        poller.hint().changed();
        let _ = starts_of(&poller, 2).await;
        let runs = Arc::new(AtomicU32::new(0));
        tokio::time::advance(Duration::from_millis(1)).await;
        let since = Instant::now();
        let s = poller
            .since(since, || counting(&runs, Duration::from_millis(1)))
            .await;
        assert!(s.started >= since);
        assert!(s.started - since < POLL, "waited {:?}", s.started - since);
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_stopped_between_polls_runs_no_query_and_one_stopped_during_a_query_gets_it() {
        let poller = Poller::new(POLL);
        let runs = Arc::new(AtomicU32::new(0));
        let first = poller
            .newer_than(0, || counting(&runs, Duration::from_millis(10)))
            .await;
        // Stopped while its own poll was not yet due: no query ran.
        let t0 = Instant::now();
        let stopped = poller
            .newer_than_unless(
                first.seq,
                || counting(&runs, Duration::from_millis(10)),
                tokio::time::sleep(Duration::from_millis(20)),
            )
            .await;
        assert!(stopped.is_none());
        assert_eq!(Instant::now() - t0, Duration::from_millis(20));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        // Stopped while its query ran: the query finishes and counts.
        tokio::time::advance(POLL).await;
        let t0 = Instant::now();
        let got = poller
            .newer_than_unless(
                first.seq,
                || counting(&runs, Duration::from_millis(50)),
                tokio::time::sleep(Duration::from_millis(20)),
            )
            .await;
        assert_eq!(got.map(|s| (s.seq, s.value)), Some((2, 2)));
        assert_eq!(Instant::now() - t0, Duration::from_millis(50));
        // A first look stopped before its poll: none.
        let runs_before = runs.load(Ordering::SeqCst);
        let since = Instant::now();
        let none = poller
            .since_unless(since, || counting(&runs, Duration::from_millis(1)), async {
            })
            .await;
        assert!(none.is_none());
        assert_eq!(runs.load(Ordering::SeqCst), runs_before);
    }
}
