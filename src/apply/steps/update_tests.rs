//! A node's labels and taints are patched at once, and a failure of
//! either is the step's.

use super::test_fixture::Fixture;
use crate::apply::walker::Runner;
use crate::plan::{Label, SetDiff, Step};
use crate::spec::{NodeName, Taint};
use crate::transport::{BoxFuture, Cmd, Host, LineSink, Output, TransportError};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An admin host whose kubectl label and taint each take a second, and
/// which counts how many ran at the same time.
#[derive(Default)]
struct Patching {
    running: AtomicU32,
    most_at_once: AtomicU32,
    ran: Mutex<Vec<String>>,
    /// The kubectl verb (`label`, `taint`) that exits 1.
    failing: Option<&'static str>,
}

impl Host for Patching {
    fn name(&self) -> &str {
        "bettley"
    }

    fn run<'a>(
        &'a self,
        cmd: &'a Cmd,
        _lines: Option<&'a LineSink>,
    ) -> BoxFuture<'a, Result<Output, TransportError>> {
        Box::pin(async move {
            let verb = ["label", "taint"]
                .into_iter()
                .find(|v| cmd.script.contains(&format!(" {v} node ")))
                .unwrap_or_else(|| panic!("unexpected command {}", cmd.script));
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_at_once.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(1)).await;
            self.running.fetch_sub(1, Ordering::SeqCst);
            self.ran.lock().unwrap().push(verb.to_string());
            let code = i32::from(self.failing == Some(verb));
            Ok(Output {
                code,
                stdout: String::new(),
                stderr: if code == 0 {
                    String::new()
                } else {
                    format!("error: {verb} refused")
                },
            })
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}

fn velaryon_update() -> Step {
    Step::UpdateNode {
        node: NodeName::try_from("velaryon".to_string()).unwrap(),
        labels: SetDiff {
            before: vec![],
            after: vec![Label::new("goldentooth.io/gpu", "nvidia").unwrap()],
        },
        taints: SetDiff {
            before: vec![],
            after: vec!["goldentooth.io/gpu=true:NoSchedule"
                .parse::<Taint>()
                .unwrap()],
        },
    }
}

async fn update_with(host: Arc<Patching>) -> Result<(), String> {
    let shared = host.clone();
    let fixture = Fixture::new(move |_| shared.clone());
    let runner = fixture.runner();
    let step = velaryon_update();
    runner
        .run(&step.id(), &step)
        .await
        .map_err(|e| e.to_string())
}

#[tokio::test(start_paused = true)]
async fn labels_and_taints_are_patched_at_once() {
    let host = Arc::new(Patching::default());
    update_with(host.clone()).await.unwrap();
    assert_eq!(host.most_at_once.load(Ordering::SeqCst), 2);
    assert_eq!(host.ran.lock().unwrap().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn either_patch_failing_fails_the_step_after_both_ran() {
    for failing in ["label", "taint"] {
        let host = Arc::new(Patching {
            failing: Some(failing),
            ..Default::default()
        });
        let err = update_with(host.clone()).await.unwrap_err();
        assert!(err.contains(&format!("{failing} refused")), "{err}");
        assert_eq!(host.ran.lock().unwrap().len(), 2, "{failing}");
    }
}
