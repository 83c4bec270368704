//! A watch of Nodes that tells the shared poll when to look (`poll.rs`),
//! and waits for a Node to be Ready that it is: `kubectl get nodes --watch`
//! through an admin host, one line per event with the Node's name and its
//! Ready status. The poll still reads every Node with one query; the watch
//! says when, so a wait notices a change one query after it happened
//! instead of up to a poll interval later, and a control plane that
//! nothing changes on answers one query every `WATCHED` instead of ten a
//! second. A wait for a Node to be Ready ends on the watch's line alone
//! (`WatchedReady`), without that query. A watch that cannot start or ends
//! (its API server restarting) leaves the poll at its interval; it is
//! started again by the next wait, at most once per `RESTART`. A watch
//! that ends within `SHORT` counts as failed; after `MAX_FAILURES` failures
//! in a row the poll serves alone. One that ran longer is simply renewed:
//! gt ends each after `LIFETIME`.

use super::poll::Hint;
use crate::kube;
use crate::kube::kubeadm::Release;
use crate::kube::nodes::WatchedNode;
use crate::transport::{Cmd, Host, Stream};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The least time between two starts of the watch.
const RESTART: Duration = Duration::from_secs(5);

/// Watches in a row that may end within `SHORT` before no more start.
const MAX_FAILURES: u32 = 20;

/// A watch that ends sooner than this after its start failed (kubectl
/// refused, no API server); one that ran longer did its work, and may end
/// for reasons of its own (a load balancer's idle timeout).
const SHORT: Duration = Duration::from_secs(10);

/// One watch's longest run (let go of by gt, not timed out: its connection
/// stays clean); the next wait starts another.
const LIFETIME: Duration = Duration::from_secs(600);

/// The watch task of an apply, if one runs, its starts so far, and what
/// its lines said of each Node's readiness.
#[derive(Default)]
pub struct NodeWatch {
    state: Mutex<State>,
    ready: Arc<WatchedReady>,
}

/// Each Node's readiness and kubelet version as the watch's last line of
/// it said, and when that line came.
pub struct WatchedReady {
    nodes: Mutex<HashMap<String, (WatchedNode, Instant)>>,
    /// When the running (or last) watch started: what lines of an earlier
    /// one said may have changed unseen between the two.
    began: Mutex<Option<Instant>>,
    /// Counts the lines: waiters wake on each.
    lines: tokio::sync::watch::Sender<u64>,
}

impl Default for WatchedReady {
    fn default() -> WatchedReady {
        WatchedReady {
            nodes: Mutex::default(),
            began: Mutex::default(),
            lines: tokio::sync::watch::Sender::new(0),
        }
    }
}

impl WatchedReady {
    /// A line of the watch said this of a Node (now).
    pub fn record(&self, node: WatchedNode) {
        self.nodes
            .lock()
            .expect("not poisoned")
            .insert(node.name.clone(), (node, Instant::now()));
        self.lines.send_modify(|n| *n += 1);
    }

    /// A watch starts: only its own lines say what is now.
    pub fn began(&self) {
        *self.began.lock().expect("not poisoned") = Some(Instant::now());
    }

    /// Whether the running watch's last line of `node` said it is Ready;
    /// `None` when it has printed none (no such Node, as its listing of
    /// every Node came first). Current only while the watch is live.
    pub fn current(&self, node: &str) -> Option<bool> {
        let began = (*self.began.lock().expect("not poisoned"))?;
        self.nodes
            .lock()
            .expect("not poisoned")
            .get(node)
            .filter(|(_, at)| *at >= began)
            .map(|(said, _)| said.ready)
    }

    /// Ends once a line that came at `since` or later said `node` is Ready
    /// (and no later one said otherwise); never, if none does. A line that
    /// came before `since` decides nothing: the wait's first look is the
    /// poll's, which never predates the wait.
    pub async fn ready_since(&self, node: &str, since: Instant) {
        self.said_since(node, since, |n| n.ready).await
    }

    /// `ready_since`, with the Node's kubelet at `release` too.
    pub async fn ready_at_since(&self, node: &str, since: Instant, release: &Release) {
        self.said_since(node, since, |n| {
            n.ready
                && n.kubelet_version
                    .as_deref()
                    .and_then(kube::kubeadm::parse_version)
                    == Some(*release)
        })
        .await
    }

    async fn said_since(&self, node: &str, since: Instant, wanted: impl Fn(&WatchedNode) -> bool) {
        let mut lines = self.lines.subscribe();
        loop {
            let decided = self
                .nodes
                .lock()
                .expect("not poisoned")
                .get(node)
                .is_some_and(|(said, at)| *at >= since && wanted(said));
            if decided {
                return;
            }
            if lines.changed().await.is_err() {
                return std::future::pending().await;
            }
        }
    }
}

#[derive(Default)]
struct State {
    task: Option<JoinHandle<()>>,
    /// Watches in a row that ended within `SHORT` of their start.
    failures: u32,
    last_start: Option<Instant>,
}

impl State {
    fn running(&self) -> bool {
        self.task.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// The failures in a row, counting the last watch's end if it was one.
    fn failures_now(&self) -> u32 {
        match self.last_start {
            Some(t) if !self.running() && t.elapsed() < SHORT => self.failures + 1,
            Some(_) if !self.running() => 0,
            _ => self.failures,
        }
    }
}

impl NodeWatch {
    /// Whether a watch should start now: none runs, the last one started
    /// `RESTART` ago or more, and they have not failed too often in a row.
    pub fn due(&self) -> bool {
        let st = self.state.lock().expect("not poisoned");
        !st.running()
            && st.failures_now() < MAX_FAILURES
            && st.last_start.is_none_or(|t| t.elapsed() >= RESTART)
    }

    /// Starts a watch through `host` that tells `hint`, unless one is no
    /// longer due (another wait started it meanwhile).
    pub fn start(&self, host: Arc<dyn Host>, hint: Arc<Hint>) {
        let mut st = self.state.lock().expect("not poisoned");
        let failures = st.failures_now();
        if st.running() || failures >= MAX_FAILURES {
            return;
        }
        st.failures = failures;
        st.last_start = Some(Instant::now());
        st.task = Some(tokio::spawn(watch(host, hint, self.ready.clone())));
    }

    /// What the watch's lines said of each Node's readiness.
    pub fn ready(&self) -> &WatchedReady {
        &self.ready
    }

    /// Ends the watch, if one runs, and waits until its command has been
    /// let go of (its remote kubectl is then ended by the script).
    pub async fn stop(&self) {
        let task = self.state.lock().expect("not poisoned").task.take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for NodeWatch {
    fn drop(&mut self) {
        if let Some(task) = self.state.get_mut().expect("not poisoned").task.take() {
            task.abort();
        }
    }
}

/// Runs the watch until it ends: each line (the first listing, then one
/// per event) says it is live and that the poll may look now, and tells
/// `ready` the Node's readiness.
async fn watch(host: Arc<dyn Host>, hint: Arc<Hint>, ready: Arc<WatchedReady>) {
    let cmd = Cmd::new(kube::script::while_stdin_open(&kube::watch_node_readiness()))
        .hold_stdin()
        // gt lets go at LIFETIME; this only bounds a connection that hangs.
        .timeout(LIFETIME + SHORT)
        .label("kubectl get nodes --watch");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    ready.began();
    let run = host.run(&cmd, Some(&tx));
    tokio::pin!(run);
    let lifetime = tokio::time::sleep(LIFETIME);
    tokio::pin!(lifetime);
    loop {
        tokio::select! {
            line = rx.recv() => {
                let Some(line) = line else { break };
                if line.stream != Stream::Stdout {
                    continue;
                }
                if let Some(node) = kube::nodes::parse_watch_line(&line.line) {
                    ready.record(node);
                    hint.changed();
                }
            }
            _ = &mut run => break,
            _ = &mut lifetime => break,
        }
    }
    hint.ended();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::{BoxFuture, LineSink, Output, OutputLine, TransportError};
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A host whose watch lists bettley (Ready) and fenn (not), says fenn
    /// is Ready a second later, then runs until let go of (`ends_after`: or
    /// ends by itself then, as kubectl does: exit 0, nothing said).
    struct Watching {
        ends_after: Option<Duration>,
        let_go: Arc<AtomicBool>,
        script: Mutex<Option<Cmd>>,
    }

    struct LetGo(Arc<AtomicBool>);
    impl Drop for LetGo {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    impl Host for Watching {
        fn name(&self) -> &str {
            "bettley"
        }
        fn run<'a>(
            &'a self,
            cmd: &'a Cmd,
            lines: Option<&'a LineSink>,
        ) -> BoxFuture<'a, Result<Output, TransportError>> {
            *self.script.lock().unwrap() = Some(cmd.clone());
            let guard = LetGo(self.let_go.clone());
            Box::pin(async move {
                let _guard = guard;
                let say = |line: &str| {
                    let _ = lines.unwrap().send(OutputLine {
                        host: "bettley".into(),
                        stream: Stream::Stdout,
                        line: line.into(),
                    });
                };
                say("ADDED   bettley   True    v1.32.4");
                say("ADDED   fenn      False   v1.32.4");
                tokio::time::sleep(Duration::from_secs(1)).await;
                say("MODIFIED   fenn      True    v1.32.4");
                match self.ends_after {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending::<()>().await,
                }
                Ok(Output {
                    code: 0,
                    stdout: String::new(),
                    stderr: String::new(),
                })
            })
        }
        fn close(&self) -> BoxFuture<'_, ()> {
            Box::pin(async {})
        }
    }

    fn watching(ends_after: Option<Duration>) -> Arc<Watching> {
        Arc::new(Watching {
            ends_after,
            let_go: Arc::default(),
            script: Mutex::new(None),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn what_is_current_is_what_the_running_watch_said() {
        let ready = WatchedReady::default();
        let line = |l: &str| kube::nodes::parse_watch_line(l).unwrap();
        ready.record(line("ADDED   fenn   True   v1.32.4"));
        assert_eq!(ready.current("fenn"), None, "no watch began");
        tokio::time::sleep(Duration::from_secs(1)).await;
        ready.began();
        assert_eq!(
            ready.current("fenn"),
            None,
            "an earlier watch's line may be stale"
        );
        ready.record(line("ADDED   fenn   False   v1.32.4"));
        assert_eq!(ready.current("fenn"), Some(false));
        ready.record(line("MODIFIED   fenn   True   v1.32.4"));
        assert_eq!(ready.current("fenn"), Some(true));
        assert_eq!(ready.current("gardener"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_name_makes_the_watch_live_and_stop_lets_go_of_its_command() {
        let host = watching(None);
        let hint = Arc::new(Hint::default());
        let w = NodeWatch::default();
        assert!(w.due());
        w.start(host.clone(), hint.clone());
        assert!(!w.due(), "one runs");
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(hint.is_live());
        let cmd = host.script.lock().unwrap().clone().unwrap();
        assert!(cmd.hold_stdin, "the remote kubectl must end with gt's hold");
        assert!(
            cmd.script
                .contains("get nodes --watch --output-watch-events"),
            "{}",
            cmd.script
        );
        assert!(cmd.script.contains("read -r _ <&3"), "{}", cmd.script);
        assert!(!host.let_go.load(Ordering::SeqCst));
        w.stop().await;
        assert!(
            host.let_go.load(Ordering::SeqCst),
            "the command is still held"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_watch_that_fails_is_not_live_and_starts_again_only_after_a_pause_and_a_bounded_number_of_times(
    ) {
        let host = watching(Some(Duration::from_secs(1)));
        let hint = Arc::new(Hint::default());
        let w = NodeWatch::default();
        w.start(host.clone(), hint.clone());
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(hint.is_live());
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(
            !hint.is_live(),
            "the watch ended: polls go back to their pace"
        );
        assert!(!w.due(), "not again before RESTART");
        tokio::time::sleep(RESTART).await;
        assert!(w.due());
        let mut starts = 1;
        while w.due() {
            w.start(host.clone(), hint.clone());
            starts += 1;
            tokio::time::sleep(RESTART + Duration::from_secs(3)).await;
        }
        assert_eq!(starts, MAX_FAILURES);
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_watch_is_let_go_of_at_its_lifetime_and_renewed_without_counting_as_a_failure() {
        let host = watching(None);
        let hint = Arc::new(Hint::default());
        let w = NodeWatch::default();
        for _ in 0..3 * MAX_FAILURES {
            assert!(w.due());
            w.start(host.clone(), hint.clone());
            host.let_go.store(false, Ordering::SeqCst);
            tokio::time::sleep(LIFETIME + Duration::from_millis(1)).await;
            assert!(host.let_go.load(Ordering::SeqCst), "held past its lifetime");
            assert!(!hint.is_live());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_ends_on_a_ready_line_that_came_after_it_began_and_only_then() {
        let host = watching(None);
        let hint = Arc::new(Hint::default());
        let w = NodeWatch::default();
        w.start(host.clone(), hint.clone());
        tokio::time::sleep(Duration::from_millis(10)).await;
        // bettley was listed Ready before this wait began: not decided.
        let since = Instant::now();
        let bettley = tokio::time::timeout(
            Duration::from_secs(5),
            w.ready().ready_since("bettley", since),
        );
        assert!(
            bettley.await.is_err(),
            "decided on a line older than the wait"
        );
        // fenn turns Ready a second after the listing: the wait ends then.
        let since = Instant::now() - Duration::from_secs(4);
        let t0 = Instant::now();
        let w2 = NodeWatch::default();
        w2.start(host.clone(), hint.clone());
        w2.ready().ready_since("fenn", since).await;
        assert_eq!(Instant::now() - t0, Duration::from_secs(1));
        // A later line saying otherwise outweighs an earlier Ready one.
        let board = WatchedReady::default();
        let said = |ready: bool, version: &str| WatchedNode {
            name: "fenn".into(),
            ready,
            kubelet_version: Some(version.into()),
        };
        let since = Instant::now();
        board.record(said(true, "v1.32.4"));
        board.record(said(false, "v1.32.4"));
        let again = tokio::time::timeout(Duration::from_secs(1), board.ready_since("fenn", since));
        assert!(again.await.is_err());
        board.record(said(true, "v1.32.4"));
        board.ready_since("fenn", since).await;
        // Ready at a release: the version must be it.
        let release: Release = "v1.33.1".parse().unwrap();
        let at = tokio::time::timeout(
            Duration::from_secs(1),
            board.ready_at_since("fenn", since, &release),
        );
        assert!(
            at.await.is_err(),
            "Ready, but its kubelet is not at the release yet"
        );
        board.record(said(false, "v1.33.1"));
        board.record(said(true, "v1.33.1"));
        board.ready_at_since("fenn", since, &release).await;
        w.stop().await;
        w2.stop().await;
    }
}
