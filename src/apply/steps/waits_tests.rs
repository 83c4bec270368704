//! The waits against a control plane whose Node turns Ready after a few
//! polls: each look is a new shared poll, and concurrent waits share them.

use super::test_fixture::Fixture;
use crate::plan::{GateBefore, StepId};
use crate::spec::NodeName;
use crate::transport::{BoxFuture, Cmd, Host, LineSink, Output, TransportError};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// Every host at once: `kubectl get nodes` lists each node, not Ready for
/// the first `not_ready_polls` queries, then Ready; every `/readyz` passes.
/// Its watch of Nodes (`watch_says_ready`) lists fenn not Ready, then says
/// it is Ready that long after it started, Ready at v1.33.0 as long again
/// after that, and runs until let go of.
struct TurningReady {
    not_ready_polls: u32,
    node_queries: AtomicU32,
    readyz_queries: AtomicU32,
    watch_says_ready: Option<std::time::Duration>,
}

impl TurningReady {
    fn nodes_json(&self, ready: bool) -> String {
        let status = if ready { "True" } else { "False" };
        let items: Vec<String> = ["bettley", "fenn", "gardener"]
            .iter()
            .map(|n| {
                format!(
                    r#"{{"metadata":{{"name":"{n}"}},"status":{{"conditions":[{{"type":"Ready","status":"{status}","reason":"KubeletNotReady"}}]}}}}"#
                )
            })
            .collect();
        format!(r#"{{"items":[{}]}}"#, items.join(","))
    }
}

impl Host for TurningReady {
    fn name(&self) -> &str {
        "any"
    }

    fn run<'a>(
        &'a self,
        cmd: &'a Cmd,
        lines: Option<&'a LineSink>,
    ) -> BoxFuture<'a, Result<Output, TransportError>> {
        Box::pin(async move {
            if let (true, Some(after), Some(lines)) = (
                cmd.script.contains("get nodes --watch"),
                self.watch_says_ready,
                lines,
            ) {
                let say = |line: &str| {
                    let _ = lines.send(crate::transport::OutputLine {
                        host: "any".into(),
                        stream: crate::transport::Stream::Stdout,
                        line: line.into(),
                    });
                };
                say("ADDED   fenn   False   v1.32.4");
                tokio::time::sleep(after).await;
                say("MODIFIED   fenn   True   v1.32.4");
                // Then its kubelet, upgraded, registers again.
                tokio::time::sleep(after).await;
                say("MODIFIED   fenn   True   v1.33.0");
                std::future::pending::<()>().await;
            }
            if cmd.script.contains("readyz") {
                // One session asks every /readyz of a look.
                let asked = cmd.script.matches("get --raw").count() as u32;
                self.readyz_queries.fetch_add(asked, Ordering::SeqCst);
                return Ok(super::test_fixture::answer_with_kubectl(
                    &cmd.script,
                    "[+]ping ok\n[+]etcd ok\nreadyz check passed\n",
                ));
            }
            let stdout = if cmd.script.contains("get nodes") {
                let n = self.node_queries.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(30)).await;
                self.nodes_json(n >= self.not_ready_polls)
            } else {
                panic!("unexpected command {}", cmd.script)
            };
            Ok(Output {
                code: 0,
                stdout,
                stderr: String::new(),
            })
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

fn fixture(host: Arc<TurningReady>) -> Fixture {
    Fixture::new(move |_| host.clone() as Arc<dyn Host>)
}

fn turning_ready_after(polls: u32) -> Arc<TurningReady> {
    Arc::new(TurningReady {
        not_ready_polls: polls,
        node_queries: AtomicU32::new(0),
        readyz_queries: AtomicU32::new(0),
        watch_says_ready: None,
    })
}

fn name(n: &str) -> NodeName {
    n.parse().unwrap()
}

#[tokio::test(start_paused = true)]
async fn the_gate_looks_again_with_each_new_poll_until_the_node_is_ready() {
    let host = turning_ready_after(3);
    let fixture = fixture(host.clone());
    let runner = fixture.runner();
    let id = StepId::Gate(GateBefore::WorkerJoins);
    runner.gate(&id, &[name("bettley")]).await.unwrap();
    // Three polls found it not Ready, the fourth Ready: one look each, a
    // look being the control plane's and the endpoint's /readyz too.
    assert_eq!(host.node_queries.load(Ordering::SeqCst), 4);
    assert_eq!(host.readyz_queries.load(Ordering::SeqCst), 4 * 2);
}

#[tokio::test(start_paused = true)]
async fn waits_for_two_nodes_share_each_poll_and_wake_with_the_one_that_sees_them_ready() {
    let host = turning_ready_after(2);
    let fixture = fixture(host.clone());
    let runner = fixture.runner();
    let (fenn, gardener) = (name("fenn"), name("gardener"));
    let (a_id, b_id) = (
        StepId::JoinWorker(fenn.clone()),
        StepId::JoinWorker(gardener.clone()),
    );
    let (a, b) = tokio::join!(
        runner.wait_node_ready(&a_id, &fenn, "joined"),
        runner.wait_node_ready(&b_id, &gardener, "joined"),
    );
    a.unwrap();
    b.unwrap();
    assert_eq!(host.node_queries.load(Ordering::SeqCst), 3);
}

/// A host whose polls never find fenn Ready and whose watch says it is
/// 3 s after it starts (at v1.32.4), then at v1.33.0 3 s later.
fn never_polled_ready_but_watched() -> Arc<TurningReady> {
    Arc::new(TurningReady {
        watch_says_ready: Some(std::time::Duration::from_secs(3)),
        ..Arc::into_inner(turning_ready_after(u32::MAX)).unwrap()
    })
}

/// The wait begun at `t0` ended on the watch's line `secs` later (paused clock).
#[track_caller]
fn ended_at(t0: tokio::time::Instant, secs: u64) {
    let waited = tokio::time::Instant::now() - t0;
    let at = std::time::Duration::from_secs(secs);
    assert!(
        waited >= at && waited < at + std::time::Duration::from_millis(50),
        "ended {waited:?} after it began"
    );
}

#[tokio::test(start_paused = true)]
async fn a_wait_for_a_ready_node_ends_on_the_watchs_line_without_another_poll() {
    // Polls never find fenn Ready; the watch says it is 3 s after it starts.
    let host = never_polled_ready_but_watched();
    let fixture = fixture(host.clone());
    let mut runner = fixture.runner();
    runner.watching_nodes();
    let fenn = name("fenn");
    let t0 = tokio::time::Instant::now();
    runner
        .wait_node_ready(&StepId::JoinWorker(fenn.clone()), &fenn, "joined")
        .await
        .unwrap();
    ended_at(t0, 3);
    // The first look, the watch's listing of fenn, and one every 2 s
    // (`WATCHED`) while nothing changed: none for the Ready line.
    assert_eq!(host.node_queries.load(Ordering::SeqCst), 3);
    runner.stop_watching_nodes().await;
}

#[tokio::test(start_paused = true)]
async fn an_upgraded_kubelets_wait_ends_on_the_watchs_line_saying_ready_at_the_release() {
    // Polls never find fenn Ready; the watch says it is at 3 s, at
    // v1.33.0 at 6 s: only the latter ends a wait for v1.33.0.
    let host = never_polled_ready_but_watched();
    let fixture = fixture(host.clone());
    let mut runner = fixture.runner();
    runner.watching_nodes();
    let fenn = name("fenn");
    let release: crate::kube::kubeadm::Release = "v1.33.0".parse().unwrap();
    let t0 = tokio::time::Instant::now();
    runner
        .wait_kubelet_at(&StepId::JoinWorker(fenn.clone()), &fenn, &release)
        .await
        .unwrap();
    ended_at(t0, 6);
    runner.stop_watching_nodes().await;
}

#[tokio::test(start_paused = true)]
async fn a_gate_kept_shut_by_a_node_alone_waits_for_the_watchs_word_and_asks_nothing_meanwhile() {
    // Polls never find fenn Ready; the watch says it is 3 s after it
    // starts; every /readyz passes all along.
    let host = never_polled_ready_but_watched();
    let fixture = fixture(host.clone());
    let mut runner = fixture.runner();
    runner.watching_nodes();
    let t0 = tokio::time::Instant::now();
    runner
        .gate(&StepId::Gate(GateBefore::WorkerJoins), &[name("fenn")])
        .await
        .unwrap();
    ended_at(t0, 3);
    // Looks at 0 s and 2 s (`WATCHED` without a word from the watch: a
    // query of Nodes each), and at 3 s on the watch's line (its /readyz
    // only): not a look every `POLL` for 3 s.
    assert_eq!(host.node_queries.load(Ordering::SeqCst), 2);
    assert_eq!(host.readyz_queries.load(Ordering::SeqCst), 3 * 2);
    runner.stop_watching_nodes().await;
}
