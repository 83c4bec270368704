//! `reboot`: the host goes down (unreachable as with the `down` fault: ssh
//! refuses, the lab shell exits 255, its commands are stopped), stays down
//! until the scaled boot time has passed since it began going down, and
//! comes back with what a boot gives it:
//! the kernel command line from cmdline.txt, swap as fstab and dphys-swapfile
//! say, sysctls and modules from their persisted files only, enabled services
//! started. The work happens in a detached `gt-lab-boot NODE` process, so
//! that `reboot` itself returns at once, as systemd's does.

use super::host::Host;
use super::latency::Op;
use super::{kernel, services, state};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The lab-internal program that carries a reboot out.
pub(crate) const BOOT_TOOL: &str = "gt-lab-boot";

/// Present while a host reboots; says whether it was already down before.
pub(crate) fn marker(dir: &Path, node: &str) -> PathBuf {
    dir.join("faults").join(format!("{node}.rebooting"))
}

/// `reboot`, `systemctl reboot`, `shutdown -r now`.
pub(crate) fn reboot(host: &Host, args: &[String]) -> u8 {
    host.pause(Op::Instant);
    if let Some(a) = args
        .iter()
        .find(|a| !matches!(a.as_str(), "-f" | "--force" | "now" | "-r" | "+0"))
    {
        eprintln!("reboot: unrecognized option '{a}'");
        return 1;
    }
    let mut cmd = Command::new(host.lab_dir.join("bin").join(BOOT_TOOL));
    cmd.arg(&host.name)
        .env_remove("GT_HOST_ROOT")
        .env("GT_LAB_DIR", &host.lab_dir)
        .stdin(std::process::Stdio::null());
    let log = host
        .lab_dir
        .join("logs")
        .join(format!("{}.boot.log", host.name));
    if let Err(e) = crate::procs::spawn_detached(&mut cmd, &log) {
        eprintln!("Failed to reboot system via logind: {e}");
        return 1;
    }
    0
}

fn sleep(host: &Host, op: Op) {
    let s = host.latency(op);
    if s > 0.0 {
        std::thread::sleep(Duration::from_secs_f64(s));
    }
}

/// The boot process: down, wait, boot, up.
pub(crate) fn boot_main(args: &[String]) -> u8 {
    let (Some(dir), Some(node)) = (std::env::var_os("GT_LAB_DIR"), args.first()) else {
        eprintln!("{BOOT_TOOL}: run by `reboot` on a lab host (GT_LAB_DIR and the node's name)");
        return 2;
    };
    let dir = PathBuf::from(dir);
    let host = match Host::at(&dir.join("hosts").join(node)) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("{BOOT_TOOL}: {e}");
            return 1;
        }
    };
    sleep(&host, Op::Instant);
    // The boot time runs from here: stopping the host's processes and its
    // sessions is part of a reboot's time, not added to it.
    let back_at =
        std::time::Instant::now() + Duration::from_secs_f64(host.latency(Op::Reboot).max(0.0));
    let was_down = crate::topology::Faults::load(&dir, node).down;
    if std::fs::write(marker(&dir, node), if was_down { "down" } else { "up" }).is_err() {
        return 1;
    }
    if let Err(e) = crate::fault::set_down(&dir, node, true) {
        eprintln!("{BOOT_TOOL}: {node}: {e}");
    }
    super::containerd::stop(&host);
    let api_was_up = state::update_hosts(&dir, |s| {
        let h = s.host_mut(node);
        h.kubelet_running = false;
        h.api_ready_at.take().is_some()
    })
    .unwrap_or(false);
    std::thread::sleep(back_at.saturating_duration_since(std::time::Instant::now()));
    if !dir.join(crate::topology::LAB_FILE).exists() {
        return 0;
    }
    if let Err(e) = kernel::boot(&host).and_then(|()| services::boot(&host)) {
        eprintln!("{BOOT_TOOL}: {node}: booting: {e}");
    }
    if api_was_up {
        let ready = super::clock::now() + host.latency(Op::ApiReady);
        let _ = state::update_hosts(&dir, |s| s.host_mut(node).api_ready_at = Some(ready));
    }
    let _ = std::fs::remove_file(marker(&dir, node));
    if !was_down {
        if let Err(e) = crate::fault::set_down(&dir, node, false) {
            eprintln!("{BOOT_TOOL}: {node}: {e}");
            return 1;
        }
    }
    0
}
