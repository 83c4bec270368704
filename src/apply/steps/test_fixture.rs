//! What a step runner borrows in the unit tests: goldentooth with a short
//! gate timeout, bettley observed as the admin host, every host made by
//! the test's connector.

use super::StepRunner;
use crate::apply::events::Events;
use crate::apply::steps::RunInfo;
use crate::facts::{HostFacts, Observed};
use crate::spec::Spec;
use crate::transport::{BoxFuture, Host, Hosts};
use std::sync::Arc;

pub(super) struct Fixture {
    pub(super) spec: Spec,
    pub(super) observed: Observed,
    pub(super) hosts: Hosts,
}

impl Fixture {
    /// `host(name)` answers for the host of that name.
    pub(super) fn new(host: impl Fn(&str) -> Arc<dyn Host> + Send + Sync + 'static) -> Fixture {
        let mut spec = crate::spec::load_file(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("cluster.toml"),
        )
        .expect("goldentooth loads");
        // Real time, unlike the polls' paused clock: a wait that stopped
        // polling fails here rather than hanging the test for 5 minutes.
        spec.apply.gate_timeout = std::time::Duration::from_secs(10);
        let mut observed = Observed::empty();
        observed.cluster.observed_via = Some("bettley".into());
        observed.hosts.insert(
            "bettley".into(),
            HostFacts {
                admin_conf: true,
                ..Default::default()
            },
        );
        let hosts = Hosts::with_connector(&spec.nodes, move |t| -> BoxFuture<'static, _> {
            let h = host(&t.name);
            Box::pin(async move { Ok(h) })
        });
        Fixture {
            spec,
            observed,
            hosts,
        }
    }

    pub(super) fn runner(&self) -> StepRunner<'_> {
        let (events, _rx) = Events::channel();
        StepRunner::new(
            &self.spec,
            &self.observed,
            &self.hosts,
            events,
            RunInfo::new(),
        )
    }
}

/// What a host's shell prints for `script` when each `kubectl` in it
/// prints `stdout` and exits 0: the script runs in a real `sh`, with
/// `kubectl` a function (a gate's look asks every `/readyz` in one session,
/// each answer a section of its output).
pub(super) fn answer_with_kubectl(script: &str, stdout: &str) -> crate::transport::Output {
    sh(&format!(
        "kubectl() {{ printf '%s' {}; }}\n{script}",
        crate::transport::shell_quote(stdout)
    ))
}

/// `script` run by a real `sh`: its status, stdout and stderr. Synchronous:
/// a paused test clock must not run ahead while it runs.
pub(super) fn sh(script: &str) -> crate::transport::Output {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .output()
        .expect("sh runs");
    crate::transport::Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
