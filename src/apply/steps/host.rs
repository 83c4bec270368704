//! `prepare-host/NODE`: a managed host's repository, packages, container
//! runtime, swap, modules, sysctls and kernel command line, in the order
//! the kubeadm install docs give, each a command named after what it
//! changes (the recap quotes it). A reboot waits for the host to come back
//! with the kernel it was rebooted for.

use super::{StepError, StepRunner};
use crate::facts::probe::parse_probe;
use crate::kube::{apt, host as kh, kubeadm};
use crate::plan::host::{PackagePin, PackageVersion};
use crate::plan::{HostWork, StepId};
use crate::spec::NodeName;
use crate::transport::Cmd;
use std::time::{Duration, Instant};

/// How often a rebooting host is asked whether it is back.
const REBOOT_POLL: Duration = Duration::from_secs(1);

impl StepRunner<'_> {
    pub(super) async fn prepare_host(
        &self,
        id: &StepId,
        node: &NodeName,
        work: &HostWork,
    ) -> Result<(), StepError> {
        let run = |script: String, label: String| async move {
            let cmd = self.step_cmd(script).label(label);
            self.must(id, node, &cmd).await.map(|_| ())
        };
        if let Some(repo) = &work.repository {
            run(
                apt::configure_repository(repo),
                format!("configure the kubernetes apt source {repo}"),
            )
            .await?;
        }
        if work.repository.is_some() || !work.install.is_empty() {
            run(apt::update(), "apt-get update".into()).await?;
        }
        if !work.install.is_empty() {
            let pins = self.resolve_pins(id, node, &work.install).await?;
            let words: Vec<String> = pins
                .iter()
                .map(|(p, v)| match v {
                    Some(v) => format!("{p}={v}"),
                    None => p.clone(),
                })
                .collect();
            run(
                apt::install(&pins, &work.hold),
                format!("apt-get install {}", words.join(" ")),
            )
            .await?;
        } else if !work.hold.is_empty() {
            run(
                apt::hold(&work.hold),
                format!("apt-mark hold {}", work.hold.join(" ")),
            )
            .await?;
        }
        if work.containerd {
            run(
                kh::configure_containerd(),
                "containerd config (SystemdCgroup = true)".into(),
            )
            .await?;
        }
        if let Some(s) = work.swap_off {
            run(kh::swap_off(s.fstab, s.dphys_swapfile), "swap off".into()).await?;
        }
        if !work.modules.is_empty() {
            let names: Vec<&str> = work.modules.iter().map(String::as_str).collect();
            run(
                kh::load_modules(&work.modules),
                format!("modules {}", names.join(", ")),
            )
            .await?;
        }
        if !work.sysctls.is_empty() {
            let names: Vec<String> = work
                .sysctls
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            run(
                kh::apply_sysctls(&work.sysctls),
                format!("sysctls {}", names.join(", ")),
            )
            .await?;
        }
        if let Some(b) = &work.boot_cmdline {
            run(
                kh::write_boot_cmdline(&b.path, &b.line),
                format!("kernel cmdline in {}", b.path),
            )
            .await?;
        }
        if work.reboot {
            self.reboot(id, node).await?;
        }
        Ok(())
    }

    /// Package versions for apt: exact ones as planned, a release as any
    /// of its revisions, and "the newest patch" as the one release this
    /// apply settles on (asked once, of the first host that gets here).
    async fn resolve_pins(
        &self,
        id: &StepId,
        node: &NodeName,
        pins: &[PackagePin],
    ) -> Result<Vec<(String, Option<String>)>, StepError> {
        let mut out = Vec::new();
        for p in pins {
            let version = match &p.version {
                PackageVersion::Exact(v) => Some(v.clone()),
                PackageVersion::Release(r) => Some(format!("{r}-*")),
                PackageVersion::Distribution => None,
                PackageVersion::NewestPatch(minor) => {
                    let r = self.newest_release(id, node, minor).await?;
                    Some(format!("{}.{}.{}-*", r.0, r.1, r.2))
                }
            };
            out.push((p.name.clone(), version));
        }
        Ok(out)
    }

    async fn newest_release(
        &self,
        id: &StepId,
        node: &NodeName,
        minor: &str,
    ) -> Result<kubeadm::Release, StepError> {
        self.kube_release
            .get_or_try_init(|| async {
                let cmd = self
                    .step_cmd(apt::madison(apt::KUBE_PACKAGES[0]))
                    .label("apt-cache madison kubeadm");
                let out = self.must(id, node, &cmd).await?;
                let listed = apt::parse_madison(&out);
                let (major, minor_n) = minor
                    .split_once('.')
                    .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
                    .unwrap_or((0, 0));
                listed
                    .get(apt::KUBE_PACKAGES[0])
                    .and_then(|v| apt::newest(v, major, minor_n, None))
                    .and_then(|v| apt::release_of(&v))
                    .map(|(a, b, c)| kubeadm::Release(a, b, c))
                    .ok_or_else(|| StepError::NoRelease {
                        node: node.clone(),
                        minor: minor.to_string(),
                    })
            })
            .await
            .copied()
    }

    /// Reboots the host, then asks it again (a new connection each time)
    /// until it answers with the memory cgroup on, within reboot_timeout.
    async fn reboot(&self, id: &StepId, node: &NodeName) -> Result<(), StepError> {
        let n = self.node(node)?;
        // The connection may drop under the command: that is the reboot working.
        let _ = self
            .exec(id, node, &self.step_cmd(kh::reboot()).label("reboot"))
            .await;
        self.events.progress(id, format!("rebooting {node}"));
        let timeout = self.settings().reboot_timeout;
        let started = Instant::now();
        let probe = crate::facts::probe_script(self.spec, n);
        let mut last = String::from("it has not answered yet");
        while started.elapsed() < timeout {
            tokio::time::sleep(REBOOT_POLL).await;
            let host = match self.hosts.reconnect(node.as_str()).await {
                Ok(h) => h,
                Err(e) => {
                    last = e.to_string();
                    continue;
                }
            };
            let left = timeout
                .saturating_sub(started.elapsed())
                .max(Duration::from_secs(1));
            let cmd = Cmd::new(probe.clone()).label("gt probe").timeout(left);
            match host.run(&cmd, None).await {
                Ok(out) => match parse_probe(&out.stdout) {
                    Ok(f) if f.software.as_ref().is_some_and(|s| s.has_memory_cgroup()) => {
                        self.events
                            .progress(id, format!("{node} is back with the memory cgroup"));
                        return Ok(());
                    }
                    Ok(_) => last = "it answers, still without the memory cgroup".into(),
                    Err(e) => last = e.to_string(),
                },
                Err(e) => last = e.to_string(),
            }
        }
        Err(StepError::RebootTimedOut {
            node: node.clone(),
            timeout,
            last,
        })
    }
}
