//! `prepare-host/NODE`: a managed host's repository, packages, container
//! runtime, swap, modules, sysctls and kernel command line, in the order
//! the kubeadm install docs give, each a command named after what it
//! changes (the recap quotes the one that failed). They reach the host in
//! two round trips, before and after the repository's newest patch is
//! known. A reboot waits for the host to come back with the kernel it was
//! rebooted for.

use super::exec::{exited, first_line};
use super::{StepError, StepRunner};
use crate::kube::{apt, host as kh, kubeadm, script};
use crate::plan::host::{PackagePin, PackageVersion};
use crate::plan::{HostWork, StepId};
use crate::spec::NodeName;
use crate::transport::{Cmd, Output};
use std::time::Duration;

/// How often a rebooting host is asked whether it is back: a refused
/// connection costs milliseconds, a login and one read a few tens of them.
const REBOOT_POLL: Duration = Duration::from_millis(200);

/// How long one read of a host coming back may take: a login that lands
/// just as the host goes down can hang, and the next poll should not wait
/// for it.
const REBOOT_READ: Duration = Duration::from_secs(10);

/// How long `systemctl reboot` may hold its session. systemd answers at
/// once; a shutdown that takes the network down before sshd leaves the
/// session hanging, which is the reboot working too.
const REBOOT_COMMAND: Duration = Duration::from_secs(30);

impl StepRunner<'_> {
    pub(super) async fn prepare_host(
        &self,
        id: &StepId,
        node: &NodeName,
        work: &HostWork,
    ) -> Result<(), StepError> {
        // Two round trips where the docs list a command each: the
        // repository (which the newest patch is asked of), then the rest.
        let mut first: Vec<(String, String)> = vec![];
        if let Some(repo) = &work.repository {
            first.push((
                format!("configure the kubernetes apt source {repo}"),
                apt::configure_repository(repo),
            ));
        }
        if work.repository.is_some() || !work.install.is_empty() {
            first.push(("apt-get update".into(), apt::update()));
        }
        self.run_in_order(id, node, &first).await?;
        let mut then: Vec<(String, String)> = vec![];
        if !work.install.is_empty() {
            let pins = self.resolve_pins(id, node, &work.install).await?;
            let words: Vec<String> = pins
                .iter()
                .map(|(p, v)| match v {
                    Some(v) => format!("{p}={v}"),
                    None => p.clone(),
                })
                .collect();
            then.push((
                format!("apt-get install {}", words.join(" ")),
                apt::install(&pins, &work.hold),
            ));
        } else if !work.hold.is_empty() {
            then.push((
                format!("apt-mark hold {}", work.hold.join(" ")),
                apt::hold(&work.hold),
            ));
        }
        if work.containerd {
            then.push((
                "containerd config (SystemdCgroup = true)".into(),
                kh::configure_containerd(),
            ));
        }
        if let Some(s) = work.swap_off {
            then.push(("swap off".into(), kh::swap_off(s.fstab, s.dphys_swapfile)));
        }
        if !work.modules.is_empty() {
            let names: Vec<&str> = work.modules.iter().map(String::as_str).collect();
            then.push((
                format!("modules {}", names.join(", ")),
                kh::load_modules(&work.modules),
            ));
        }
        if !work.sysctls.is_empty() {
            let names: Vec<String> = work
                .sysctls
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            then.push((
                format!("sysctls {}", names.join(", ")),
                kh::apply_sysctls(&work.sysctls),
            ));
        }
        if let Some(b) = &work.boot_cmdline {
            then.push((
                format!("kernel cmdline in {}", b.path),
                kh::write_boot_cmdline(&b.path, &b.line),
            ));
        }
        self.run_in_order(id, node, &then).await?;
        if work.reboot {
            self.reboot(id, node).await?;
        }
        Ok(())
    }

    /// Runs `parts` (label, script) in one command; a failure is the
    /// failed part's, under its own label.
    async fn run_in_order(
        &self,
        id: &StepId,
        node: &NodeName,
        parts: &[(String, String)],
    ) -> Result<(), StepError> {
        let scripts: Vec<&str> = parts.iter().map(|(_, s)| s.as_str()).collect();
        let labels: Vec<&str> = parts.iter().map(|(l, _)| l.as_str()).collect();
        let whole = match parts {
            [] => return Ok(()),
            [(label, script)] => self.step_cmd(script.clone()).label(label.clone()),
            _ => self
                .step_cmd(script::in_order(&scripts))
                .label(labels.join("; ")),
        };
        let out = self.exec(id, node, &whole).await?;
        if out.success() {
            return Ok(());
        }
        match script::failed_part(&out.stderr) {
            Some((i, stderr)) if i < parts.len() && parts.len() > 1 => {
                let part = Cmd::new(parts[i].1.clone()).label(parts[i].0.clone());
                Err(exited(&part, node, &Output { stderr, ..out }))
            }
            _ => Err(exited(&whole, node, &out)),
        }
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
    pub(super) async fn reboot(&self, id: &StepId, node: &NodeName) -> Result<(), StepError> {
        let cmd = Cmd::new(kh::reboot())
            .label("reboot")
            .timeout(REBOOT_COMMAND.min(self.settings().step_timeout));
        // The connection dropping under the command (or hanging until its
        // deadline) is the reboot working; only systemd's refusal is not.
        if let Ok(out) = self.exec(id, node, &cmd).await {
            if !kh::reboot_under_way(out.code) {
                return Err(exited(&cmd, node, &out));
            }
        }
        self.events.progress(id, format!("rebooting {node}"));
        let timeout = self.settings().reboot_timeout;
        // tokio's clock: the same one as the sleeps and timeouts below.
        let started = tokio::time::Instant::now();
        // What is left of reboot_timeout, at least a second for one more try.
        let left = || {
            timeout
                .saturating_sub(started.elapsed())
                .max(Duration::from_secs(1))
        };
        let mut last = String::from("it has not answered yet");
        while started.elapsed() < timeout {
            tokio::time::sleep(REBOOT_POLL).await;
            // Each login is bounded by the SSH connect timeout, and the
            // last one by what is left of reboot_timeout too, so that the
            // named timeout is the one that ends the wait. (A host dropping
            // packets while it boots costs no more: ssh's connect resends
            // its SYN within the attempt and gets in as soon as sshd is up.)
            let bound = left();
            let host = match tokio::time::timeout(bound, self.hosts.reconnect(node.as_str())).await
            {
                Ok(Ok(h)) => h,
                Ok(Err(e)) => {
                    last = e.to_string();
                    continue;
                }
                Err(_) => {
                    last = format!(
                        "logging in again did not finish within {}",
                        crate::transport::secs(bound)
                    );
                    continue;
                }
            };
            let read = Cmd::new(kh::read_cgroup_controllers())
                .label("cgroup controllers")
                .timeout(left().min(REBOOT_READ));
            match host.run(&read, None).await {
                Ok(out) if out.success() && kh::lists_memory_controller(&out.stdout) => {
                    self.events
                        .progress(id, format!("{node} is back with the memory cgroup"));
                    return Ok(());
                }
                Ok(out) if out.success() => {
                    last = "it answers, still without the memory cgroup".into()
                }
                Ok(out) => {
                    last = format!(
                        "reading its cgroup controllers exited {}: {}",
                        out.code,
                        first_line(&out.stderr)
                    )
                }
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
