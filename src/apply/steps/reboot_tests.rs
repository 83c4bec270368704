//! The reboot's wait for the host to come back, against hosts that never
//! answer a new login.

use super::test_fixture::Fixture;
use super::StepError;
use crate::plan::StepId;
use crate::spec::NodeName;
use crate::transport::{fake, BoxFuture, Host, Hosts};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[tokio::test(start_paused = true)]
async fn a_login_that_never_finishes_ends_at_reboot_timeout_not_later() {
    let mut fixture = Fixture::new(|name| Arc::new(fake::FakeHost::new(name)) as Arc<dyn Host>);
    fixture.spec.apply.reboot_timeout = Duration::from_secs(30);
    // The first login runs `systemctl reboot` (cut by the shutdown: 255);
    // every login after it hangs, as one to a host that drops packets
    // while it boots can until ssh's connect timeout, here for ever.
    let logins = Arc::new(AtomicU32::new(0));
    let count = logins.clone();
    fixture.hosts = Hosts::with_connector(&fixture.spec.nodes, move |t| -> BoxFuture<'static, _> {
        let n = count.fetch_add(1, Ordering::SeqCst);
        let host =
            fake::FakeHost::new(&t.name).on("systemctl reboot", fake::Reply::exit(255, "", ""));
        Box::pin(async move {
            if n > 0 {
                std::future::pending::<()>().await;
            }
            Ok(Arc::new(host) as Arc<dyn Host>)
        })
    });
    let runner = fixture.runner();
    let node: NodeName = "fenn".parse().unwrap();
    let id = StepId::PrepareHost(node.clone());
    // An hour of (paused) time: without a bound of its own, the login
    // would hold the wait past reboot_timeout until this one ends it.
    let waited = tokio::time::timeout(Duration::from_secs(3600), runner.reboot(&id, &node)).await;
    match waited {
        Ok(Err(StepError::RebootTimedOut { timeout, last, .. })) => {
            assert_eq!(timeout, Duration::from_secs(30));
            assert!(
                last.contains("logging in again did not finish within"),
                "{last}"
            );
        }
        other => panic!(
            "expected the reboot to time out at reboot_timeout, got {other:?} after {} logins",
            logins.load(Ordering::SeqCst)
        ),
    }
    assert!(logins.load(Ordering::SeqCst) >= 2);
}
