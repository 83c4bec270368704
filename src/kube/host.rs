//! The host's kernel and runtime settings as the kubeadm install docs set
//! them (docs/kubeadm.md, "Host software"): containerd's cgroup driver in
//! both config layouts, swap, modules, sysctls, the Raspberry Pi kernel
//! command line, and the reboot; what the probe reads of them.

use crate::transport::shell_join;
use std::collections::{BTreeMap, BTreeSet};

/// The runc options section of containerd 1.x (config version 2) and 2.x (version 3).
const RUNC_OPTIONS_V2: &str =
    r#"plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options"#;
const RUNC_OPTIONS_V3: &str =
    "plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options";

pub const CONTAINERD_CONFIG: &str = "/etc/containerd/config.toml";
/// Where gt persists its modules and sysctls (the install docs' file names).
pub const MODULES_FILE: &str = "/etc/modules-load.d/k8s.conf";
pub const SYSCTL_FILE: &str = "/etc/sysctl.d/k8s.conf";
/// What the Raspberry Pi kernel needs for the memory cgroup.
pub const MEMORY_CGROUP_PARAMS: [&str; 2] = ["cgroup_enable=memory", "cgroup_memory=1"];

/// What containerd's config.toml says about the CRI plugin's cgroup driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ContainerdCgroup {
    /// `SystemdCgroup = true` in the runc options of the config's layout.
    pub systemd_cgroup: bool,
    /// `disabled_plugins` names `cri` (Docker's packages ship it so).
    pub cri_disabled: bool,
}

/// Reads the lines the probe keeps of config.toml (section headers,
/// `version`, `SystemdCgroup`, `disabled_plugins`).
pub fn parse_containerd_config(lines: &str) -> ContainerdCgroup {
    let mut out = ContainerdCgroup::default();
    let mut section = String::new();
    for line in lines.lines() {
        let t = line.trim();
        if t.starts_with('#') {
            continue;
        }
        if let Some(h) = t.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            section = h.trim().to_string();
            continue;
        }
        let Some((key, value)) = t.split_once('=') else {
            continue;
        };
        let value = value.split('#').next().unwrap_or("").trim();
        match key.trim() {
            "SystemdCgroup" if section == RUNC_OPTIONS_V2 || section == RUNC_OPTIONS_V3 => {
                out.systemd_cgroup = value == "true";
            }
            "disabled_plugins" if section.is_empty() => {
                out.cri_disabled = value
                    .trim_matches(['[', ']'])
                    .split(',')
                    .any(|p| p.trim().trim_matches(['"', '\'']) == "cri");
            }
            _ => {}
        }
    }
    out
}

/// `key = value` lines of sysctl.d files, later ones winning (as
/// `sysctl --system` applies them); blanks around the `=` do not matter.
pub fn parse_sysctl_lines<'a>(
    lines: impl IntoIterator<Item = &'a str>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in lines {
        let line = line.trim().trim_start_matches('-');
        if let Some((k, v)) = line.split_once('=') {
            out.insert(k.trim().replace('/', "."), normalise_sysctl(v));
        }
    }
    out
}

/// Values compared as sysctl prints them: words separated by one blank
/// (`4096\t87380` is `4096 87380`).
pub fn normalise_sysctl(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The kernel command line with the memory cgroup parameters gt adds,
/// or `None` when they are there already.
pub fn cmdline_with_memory_cgroup(cmdline: &str) -> Option<String> {
    let words: BTreeSet<&str> = cmdline.split_whitespace().collect();
    let missing: Vec<&str> = MEMORY_CGROUP_PARAMS
        .iter()
        .copied()
        .filter(|p| !words.contains(p))
        .collect();
    if missing.is_empty() {
        return None;
    }
    let mut line = cmdline.trim_end().to_string();
    for p in missing {
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(p);
    }
    Some(line)
}

/// A file of the host written whole, atomically, from stdin-free text:
/// `printf` into a temporary file next to it, then `mv` over it.
fn write_file(path: &str, content: &str) -> String {
    let target = format!("\"${{GT_HOST_ROOT}}{path}\"");
    let tmp = format!("\"${{GT_HOST_ROOT}}{path}.gt-new\"");
    let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("/");
    format!(
        "mkdir -p \"${{GT_HOST_ROOT}}{dir}\" && printf '%s' {} > {tmp} && mv {tmp} {target}",
        shell_join(&[content])
    )
}

/// Swap off now (`swapoff -a`) and at boot: fstab's swap lines commented
/// out, and Raspberry Pi OS's dphys-swapfile service disabled.
pub fn swap_off(fstab_swap: bool, dphys_swapfile: bool) -> String {
    let mut steps = vec!["swapoff -a".to_string()];
    if fstab_swap {
        steps.push(
            r#"sed -i -E 's/^([^#][^[:space:]]*[[:space:]]+[^[:space:]]+[[:space:]]+swap[[:space:]].*)$/#\1/' "${GT_HOST_ROOT}/etc/fstab""#
                .into(),
        );
    }
    if dphys_swapfile {
        steps.push("systemctl disable --now dphys-swapfile".into());
    }
    steps.join(" && ")
}

/// The modules, persisted in MODULES_FILE and loaded now.
pub fn load_modules(modules: &BTreeSet<String>) -> String {
    let content: String = modules.iter().map(|m| format!("{m}\n")).collect();
    let mut w = vec!["modprobe".to_string(), "-a".into()];
    w.extend(modules.iter().cloned());
    format!(
        "{} && {}",
        write_file(MODULES_FILE, &content),
        shell_join(&w)
    )
}

/// The sysctls, persisted in SYSCTL_FILE and applied now (`sysctl --system`).
pub fn apply_sysctls(sysctls: &BTreeMap<String, String>) -> String {
    let content: String = sysctls
        .iter()
        .map(|(k, v)| format!("{k} = {v}\n"))
        .collect();
    format!("{} && sysctl --system", write_file(SYSCTL_FILE, &content))
}

/// containerd's default config with `SystemdCgroup = true` in the runc
/// options of whichever layout it has (1.x writes `SystemdCgroup = false`;
/// 2.x writes no such line, so one is added under the section), then a restart.
pub fn configure_containerd() -> String {
    let f = format!("\"${{GT_HOST_ROOT}}{CONTAINERD_CONFIG}\"");
    format!(
        "mkdir -p \"${{GT_HOST_ROOT}}/etc/containerd\" && containerd config default > {f}.gt-new && \
         if grep -q 'SystemdCgroup' {f}.gt-new; then sed -i 's/SystemdCgroup = false/SystemdCgroup = true/' {f}.gt-new; \
         else sed -i '/runtimes\\.runc\\.options\\]$/a\\            SystemdCgroup = true' {f}.gt-new; fi && \
         mv {f}.gt-new {f} && systemctl restart containerd"
    )
}

/// The boot command line file rewritten with `line` (one line, as the
/// firmware reads it).
pub fn write_boot_cmdline(path: &str, line: &str) -> String {
    write_file(path, &format!("{line}\n"))
}

/// Reboots the host. systemd queues the reboot and answers at once
/// (`systemctl reboot` does not wait for the job), then stops the sessions:
/// the command exits 0 when its answer wins that race, or the connection
/// drops (ssh's 255) when the shutdown does; both are the reboot under way.
pub fn reboot() -> String {
    "systemctl reboot".into()
}

/// Whether an exit of [`reboot`] is the reboot under way: 0; 255, ssh's
/// exit for the session cut by the shutdown; or the command killed by the
/// shutdown's SIGTERM, SIGKILL or SIGHUP (128 + N, where no ssh is between).
pub fn reboot_under_way(code: i32) -> bool {
    matches!(code, 0 | 255 | 129 | 137 | 143)
}

/// cgroup v2's controllers: what a reboot for the memory cgroup changes,
/// read alone while the host comes back (the probe reads the same file).
pub fn read_cgroup_controllers() -> String {
    "cat \"${GT_HOST_ROOT}/sys/fs/cgroup/cgroup.controllers\"".into()
}

/// Whether [`read_cgroup_controllers`]' output lists the memory controller.
pub fn lists_memory_controller(controllers: &str) -> bool {
    controllers.split_whitespace().any(|c| c == "memory")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_cgroup_is_read_in_either_layout() {
        let v2 = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]\n            SystemdCgroup = true\n";
        assert!(parse_containerd_config(v2).systemd_cgroup);
        let v3 = "version = 3\n[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]\n  SystemdCgroup = true\n";
        assert!(parse_containerd_config(v3).systemd_cgroup);
        // 2.x's default config has no such line; 1.x's says false.
        assert!(!parse_containerd_config("version = 3\n[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]\n").systemd_cgroup);
        assert!(!parse_containerd_config(&v2.replace("true", "false")).systemd_cgroup);
        // In another section it configures something else.
        assert!(!parse_containerd_config("[plugins.other]\nSystemdCgroup = true\n").systemd_cgroup);
        assert!(parse_containerd_config("disabled_plugins = [\"cri\"]\n").cri_disabled);
        assert!(!parse_containerd_config("disabled_plugins = []\n").cri_disabled);
    }

    #[test]
    fn sysctl_files_later_lines_win_and_blanks_do_not_matter() {
        let m = parse_sysctl_lines([
            "net.ipv4.ip_forward=0",
            "net.ipv4.ip_forward = 1",
            "net/core/x =  4096\t87380",
        ]);
        assert_eq!(m["net.ipv4.ip_forward"], "1");
        assert_eq!(m["net.core.x"], "4096 87380");
    }

    #[test]
    fn the_memory_cgroup_is_added_once() {
        assert_eq!(
            cmdline_with_memory_cgroup("console=serial0,115200 root=PARTUUID=1 rootwait").as_deref(),
            Some("console=serial0,115200 root=PARTUUID=1 rootwait cgroup_enable=memory cgroup_memory=1")
        );
        assert_eq!(
            cmdline_with_memory_cgroup("a cgroup_memory=1 cgroup_enable=memory"),
            None
        );
        assert_eq!(
            cmdline_with_memory_cgroup("a cgroup_enable=memory").as_deref(),
            Some("a cgroup_enable=memory cgroup_memory=1")
        );
    }

    #[test]
    fn a_reboot_is_systemds_and_its_cut_session_is_no_failure() {
        assert_eq!(reboot(), "systemctl reboot");
        assert!(reboot_under_way(0) && reboot_under_way(255) && reboot_under_way(143));
        // logind refusing (no privilege, a blocking inhibitor) exits 1.
        assert!(!reboot_under_way(1));
        assert_eq!(
            read_cgroup_controllers(),
            "cat \"${GT_HOST_ROOT}/sys/fs/cgroup/cgroup.controllers\""
        );
        assert!(lists_memory_controller("cpuset cpu io memory pids\n"));
        assert!(!lists_memory_controller("cpuset cpu io pids\n"));
        assert!(!lists_memory_controller("cpuset memoryx\n"));
    }

    #[test]
    fn settings_are_persisted_then_applied() {
        let mods: BTreeSet<String> = ["br_netfilter".to_string(), "overlay".into()].into();
        assert_eq!(
            load_modules(&mods),
            "mkdir -p \"${GT_HOST_ROOT}/etc/modules-load.d\" && printf '%s' 'br_netfilter\noverlay\n' > \"${GT_HOST_ROOT}/etc/modules-load.d/k8s.conf.gt-new\" && mv \"${GT_HOST_ROOT}/etc/modules-load.d/k8s.conf.gt-new\" \"${GT_HOST_ROOT}/etc/modules-load.d/k8s.conf\" && modprobe -a br_netfilter overlay"
        );
        let sysctls: BTreeMap<String, String> =
            [("net.ipv4.ip_forward".to_string(), "1".to_string())].into();
        assert_eq!(
            apply_sysctls(&sysctls),
            "mkdir -p \"${GT_HOST_ROOT}/etc/sysctl.d\" && printf '%s' 'net.ipv4.ip_forward = 1\n' > \"${GT_HOST_ROOT}/etc/sysctl.d/k8s.conf.gt-new\" && mv \"${GT_HOST_ROOT}/etc/sysctl.d/k8s.conf.gt-new\" \"${GT_HOST_ROOT}/etc/sysctl.d/k8s.conf\" && sysctl --system"
        );
        assert_eq!(
            swap_off(false, true),
            "swapoff -a && systemctl disable --now dphys-swapfile"
        );
        assert!(swap_off(true, false).contains("sed -i -E"));
    }
}
