//! The simulated kernel: live state in the host's `/proc` and `/sys` files
//! (what a probe reads), persistent settings in `/etc` (what survives a
//! reboot), and the tools between them: `sysctl`, `modprobe`, `swapoff`,
//! `swapon`. [`boot`] computes the live files from the persistent ones, as a
//! real boot does.
//!
//! Hosts of arch arm64 are Raspberry Pis running Raspberry Pi OS bookworm
//! (Debian 12): swap from dphys-swapfile, the kernel command line from
//! `/boot/firmware/cmdline.txt` after the firmware's own arguments (which
//! include `cgroup_disable=memory`, so the memory cgroup is off until the
//! line says `cgroup_enable=memory`). Other hosts are Debian 12 with a swap
//! partition in /etc/fstab.

use super::host::{self, Host};
use super::latency::Op;
use std::collections::BTreeMap;

pub(crate) const SWAPS: &str = "/proc/swaps";
pub(crate) const MODULES: &str = "/proc/modules";
pub(crate) const CMDLINE: &str = "/proc/cmdline";
const HOSTNAME: &str = "/proc/sys/kernel/hostname";
const ARCH: &str = "/proc/sys/kernel/arch";
pub(crate) const CONTROLLERS: &str = "/sys/fs/cgroup/cgroup.controllers";
pub(crate) const PI_CMDLINE_TXT: &str = "/boot/firmware/cmdline.txt";
pub(crate) const FSTAB: &str = "/etc/fstab";
pub(crate) const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";
const DPHYS_CONF: &str = "/etc/dphys-swapfile";
const DPHYS_FILE: &str = "/var/swap";

/// The swap partition Debian's installer made, by the UUID fstab names it with.
pub(crate) const SWAP_UUID: &str = "2b1a5c4e-7d3f-4e9a-8c61-0f5d9e2a7b13";
const SWAP_DEVICE: &str = "/dev/sda3";
const SWAP_PARTITION_KB: u64 = 2_097_148;

/// The firmware's part of a Pi's kernel command line, before cmdline.txt.
const PI_FIRMWARE_ARGS: &str = "coherent_pool=1M 8250.nr_uarts=0 snd_bcm2835.enable_headphones=0 cgroup_disable=memory numa_policy=interleave snd_bcm2835.enable_hdmi=1 smsc95xx.macaddr=DC:A6:32:00:00:01 vc_mem.mem_base=0x3ec00000 vc_mem.mem_size=0x40000000";
const AMD64_CMDLINE: &str = "BOOT_IMAGE=/boot/vmlinuz-6.1.0-28-amd64 root=UUID=8d1f5c8e-3f1b-4a6e-9c2d-2b7e3f0a1c55 ro quiet";

pub(crate) fn is_pi(host: &Host) -> bool {
    matches!(host.node().arch.as_str(), "arm64" | "arm")
}

/// Kernel defaults of the sysctls the lab knows, by /proc/sys path.
const DEFAULT_SYSCTLS: &[(&str, &str)] = &[
    ("net/ipv4/ip_forward", "0"),
    ("net/ipv4/conf/all/forwarding", "0"),
    ("net/ipv4/conf/all/rp_filter", "0"),
    ("net/ipv4/conf/default/rp_filter", "0"),
    ("net/ipv6/conf/all/forwarding", "0"),
    ("net/ipv6/conf/default/forwarding", "0"),
    ("net/core/somaxconn", "4096"),
    ("vm/swappiness", "60"),
    ("vm/overcommit_memory", "0"),
    ("vm/min_free_kbytes", "67584"),
    ("vm/max_map_count", "65530"),
    ("kernel/panic", "0"),
    ("kernel/panic_on_oops", "0"),
    ("kernel/pid_max", "32768"),
    ("kernel/printk", "4\t4\t1\t7"),
    ("kernel/keys/root_maxkeys", "1000000"),
    ("fs/inotify/max_user_instances", "128"),
    ("fs/inotify/max_user_watches", "65536"),
    ("fs/file-max", "9223372036854775807"),
];

/// Sysctls a module brings with it.
fn module_sysctls(module: &str) -> &'static [(&'static str, &'static str)] {
    match module {
        "br_netfilter" => &[
            ("net/bridge/bridge-nf-call-arptables", "1"),
            ("net/bridge/bridge-nf-call-ip6tables", "1"),
            ("net/bridge/bridge-nf-call-iptables", "1"),
        ],
        _ => &[],
    }
}

/// Modules the lab's kernels can load, with the modules each needs and its size.
const MODULE_TABLE: &[(&str, &[&str], u32)] = &[
    ("overlay", &[], 188416),
    ("br_netfilter", &["bridge"], 32768),
    ("bridge", &["stp", "llc"], 372736),
    ("stp", &["llc"], 12288),
    ("llc", &[], 16384),
    ("ip_tables", &[], 32768),
    ("iptable_nat", &["ip_tables", "nf_nat"], 12288),
    ("iptable_filter", &["ip_tables"], 12288),
    ("nf_nat", &["nf_conntrack"], 57344),
    ("nf_conntrack", &[], 180224),
    ("nf_tables", &[], 315392),
    ("xt_conntrack", &["nf_conntrack"], 12288),
    ("ip_vs", &["nf_conntrack"], 188416),
    ("ip_vs_rr", &["ip_vs"], 12288),
    ("ip_vs_wrr", &["ip_vs"], 12288),
    ("ip_vs_sh", &["ip_vs"], 12288),
    ("veth", &[], 40960),
    ("vxlan", &[], 147456),
    ("ipip", &[], 24576),
    ("wireguard", &[], 114688),
];

/// Modules loaded before anything asks for one (the image's own).
fn base_modules(host: &Host) -> Vec<String> {
    if is_pi(host) {
        vec!["ip_tables".into(), "llc".into()]
    } else {
        vec!["ip_tables".into()]
    }
}

fn modules_dir(host: &Host) -> String {
    format!("/lib/modules/{}", host::kernel_release(&host.node().arch))
}

/// The loaded modules, in load order.
pub(crate) fn loaded_modules(host: &Host) -> Vec<String> {
    host.read(MODULES)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect()
}

fn write_modules(host: &Host, loaded: &[String]) -> std::io::Result<()> {
    // /proc/modules lists the newest first; the last column names the users.
    let mut out = String::new();
    for m in loaded.iter().rev() {
        let size = MODULE_TABLE
            .iter()
            .find(|(n, _, _)| n == m)
            .map(|(_, _, s)| *s)
            .unwrap_or(16384);
        let users: Vec<&str> = loaded
            .iter()
            .filter(|u| {
                MODULE_TABLE
                    .iter()
                    .any(|(n, deps, _)| n == u && deps.contains(&m.as_str()))
            })
            .map(String::as_str)
            .collect();
        let deps = if users.is_empty() {
            "-".to_string()
        } else {
            format!("{},", users.join(","))
        };
        out.push_str(&format!(
            "{m} {size} {} {deps} Live 0x0000000000000000\n",
            users.len()
        ));
    }
    host.write(MODULES, &out)
}

/// Loads `module` and what it needs; `Err` names a module the kernel lacks.
fn load_module(host: &Host, loaded: &mut Vec<String>, module: &str) -> Result<(), String> {
    let name = module.replace('-', "_");
    let Some((_, deps, _)) = MODULE_TABLE.iter().find(|(n, _, _)| *n == name) else {
        return Err(name);
    };
    for d in *deps {
        load_module(host, loaded, d)?;
    }
    if !loaded.contains(&name) {
        loaded.push(name.clone());
        for (path, value) in module_sysctls(&name) {
            let _ = host.write(&format!("/proc/sys/{path}"), &format!("{value}\n"));
        }
    }
    Ok(())
}

/// Whether the memory cgroup controller is on, from a kernel command line.
fn memory_cgroup(cmdline: &str) -> bool {
    let mut on = true;
    for w in cmdline.split_whitespace() {
        match w {
            "cgroup_disable=memory" => on = false,
            "cgroup_enable=memory" => on = true,
            _ => {}
        }
    }
    on
}

/// One active swap area.
struct Swap {
    path: String,
    partition: bool,
    kb: u64,
}

fn render_swaps(swaps: &[Swap]) -> String {
    // The kernel's format (mm/swapfile.c swap_show).
    let mut s = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n".to_string();
    for (i, w) in swaps.iter().enumerate() {
        let pad = if w.path.len() < 40 {
            40 - w.path.len()
        } else {
            1
        };
        s.push_str(&format!(
            "{}{:pad$}{}\t{}\t{}0\t\t-{}\n",
            w.path,
            "",
            if w.partition { "partition" } else { "file\t" },
            w.kb,
            if w.kb < 10_000_000 { "\t" } else { "" },
            i + 2,
        ));
    }
    s
}

fn active_swaps(host: &Host) -> Vec<Swap> {
    host.read(SWAPS)
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            Some(Swap {
                path: f.first()?.to_string(),
                partition: *f.get(1)? == "partition",
                kb: f.get(2)?.parse().ok()?,
            })
        })
        .collect()
}

/// fstab's swap lines: each one's device (`UUID=...`, a path) and whether it is `noauto`.
fn fstab_swap_lines(host: &Host) -> Vec<(String, bool)> {
    host.read(FSTAB)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.get(2) != Some(&"swap") {
                return None;
            }
            let noauto = f
                .get(3)
                .is_some_and(|o| o.split(',').any(|o| o == "noauto"));
            Some((f[0].to_string(), noauto))
        })
        .collect()
}

/// The swap area an fstab device names.
fn fstab_swap(dev: &str) -> Swap {
    if dev == format!("UUID={SWAP_UUID}") || dev == SWAP_DEVICE {
        Swap {
            path: SWAP_DEVICE.into(),
            partition: true,
            kb: SWAP_PARTITION_KB,
        }
    } else {
        Swap {
            path: dev.into(),
            partition: dev.starts_with("/dev/"),
            kb: 1_048_572,
        }
    }
}

/// Swap areas that `swapon -a` (and boot) turn on: fstab's, without noauto.
fn fstab_swaps(host: &Host) -> Vec<Swap> {
    fstab_swap_lines(host)
        .into_iter()
        .filter(|(_, noauto)| !noauto)
        .map(|(dev, _)| fstab_swap(&dev))
        .collect()
}

/// dphys-swapfile's swap file when its service would set it up.
fn dphys_swap(host: &Host) -> Option<Swap> {
    if !super::services::unit_enabled(host, "dphys-swapfile") {
        return None;
    }
    dphys_file(host)
}

/// dphys-swapfile's swap file as its configuration sizes it (none when the package is gone).
fn dphys_file(host: &Host) -> Option<Swap> {
    if !super::dpkg::load(host)
        .get("dphys-swapfile")
        .is_some_and(|e| e.installed())
    {
        return None;
    }
    let mb: u64 = host
        .read(DPHYS_CONF)
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("CONF_SWAPSIZE=")
                .map(|v| v.trim().parse().unwrap_or(100))
        })
        .unwrap_or(100);
    (mb > 0).then(|| Swap {
        path: DPHYS_FILE.into(),
        partition: false,
        kb: mb * 1024 - 4,
    })
}

/// `systemctl stop|disable --now dphys-swapfile` turns its swap off.
pub(crate) fn dphys_swapoff(host: &Host) {
    let rest: Vec<Swap> = active_swaps(host)
        .into_iter()
        .filter(|s| s.path != DPHYS_FILE)
        .collect();
    let _ = host.write(SWAPS, &render_swaps(&rest));
}

/// `systemctl start dphys-swapfile` and `dphys-swapfile swapon` turn its swap on.
pub(crate) fn dphys_swapon(host: &Host) {
    let mut swaps = active_swaps(host);
    if let Some(s) = dphys_file(host) {
        if !swaps.iter().any(|a| a.path == s.path) {
            swaps.push(s);
            let _ = host.write(SWAPS, &render_swaps(&swaps));
        }
    }
}

pub(crate) fn swap_on(host: &Host) -> bool {
    !active_swaps(host).is_empty()
}

/// The persisted sysctl files in the order `sysctl --system` applies them.
fn sysctl_files(host: &Host) -> Vec<String> {
    let mut by_name: BTreeMap<String, String> = BTreeMap::new();
    for dir in [
        "/etc/sysctl.d",
        "/run/sysctl.d",
        "/usr/local/lib/sysctl.d",
        "/usr/lib/sysctl.d",
    ] {
        if let Ok(d) = std::fs::read_dir(host.path(dir)) {
            for e in d.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.ends_with(".conf") && !by_name.contains_key(&name) {
                    by_name.insert(name.clone(), format!("{dir}/{name}"));
                }
            }
        }
    }
    let mut v: Vec<String> = by_name.into_values().collect();
    if host.exists("/etc/sysctl.conf") {
        v.push("/etc/sysctl.conf".into());
    }
    v
}

/// `(key, value, ignore errors)` of each setting in a sysctl file.
fn settings(text: &str) -> Vec<(String, String, bool)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
        .filter_map(|l| {
            let (ignore, l) = match l.strip_prefix('-') {
                Some(r) => (true, r),
                None => (false, l),
            };
            let (k, v) = l.split_once('=')?;
            Some((k.trim().to_string(), v.trim().to_string(), ignore))
        })
        .collect()
}

fn proc_path(key: &str) -> String {
    format!("/proc/sys/{}", key.replace('.', "/"))
}

fn dotted(key: &str) -> String {
    key.trim_start_matches("/proc/sys/").replace('/', ".")
}

/// Sets one sysctl; `Err` is sysctl's message.
fn write_sysctl(host: &Host, key: &str, value: &str) -> Result<(), String> {
    let p = proc_path(key);
    if !host.exists(&p) {
        return Err(format!(
            "sysctl: cannot stat {p}: No such file or directory"
        ));
    }
    host.write(&p, &format!("{value}\n"))
        .map_err(|e| format!("sysctl: setting key \"{}\": {e}", dotted(key)))
}

fn read_sysctl(host: &Host, key: &str) -> Result<String, String> {
    let p = proc_path(key);
    host.read(&p)
        .map(|v| v.trim_end_matches('\n').to_string())
        .ok_or_else(|| format!("sysctl: cannot stat {p}: No such file or directory"))
}

/// Applies every persisted sysctl (what boot and `sysctl --system` do); returns sysctl's output.
fn apply_system(host: &Host, quiet: bool) -> (String, Vec<String>) {
    let mut out = String::new();
    let mut errors = Vec::new();
    for f in sysctl_files(host) {
        out.push_str(&format!("* Applying {f} ...\n"));
        for (k, v, ignore) in settings(&host.read(&f).unwrap_or_default()) {
            match write_sysctl(host, &k, &v) {
                Ok(()) if !quiet => out.push_str(&format!("{} = {v}\n", dotted(&k))),
                Ok(()) => {}
                Err(e) if !ignore => errors.push(e),
                Err(_) => {}
            }
        }
    }
    (out, errors)
}

/// `sysctl [-n] [-q] [-w] KEY[=VALUE]...`, `sysctl --system`, `sysctl -p [FILE]`.
pub(crate) fn sysctl(host: &Host, args: &[String]) -> u8 {
    host.pause(Op::Instant);
    let (mut values_only, mut quiet, mut system, mut load) = (false, false, false, None);
    let mut words = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--system" => system = true,
            "-n" | "--values" => values_only = true,
            "-q" | "--quiet" => quiet = true,
            "-w" | "--write" | "-e" | "--ignore" => {}
            "-p" | "--load" => {
                load = Some(
                    it.next()
                        .cloned()
                        .unwrap_or_else(|| "/etc/sysctl.conf".into()),
                )
            }
            s if s.starts_with("--load=") => load = Some(s["--load=".len()..].to_string()),
            s if s.starts_with('-') => {
                eprintln!("sysctl: invalid option -- '{}'", s.trim_start_matches('-'));
                return 255;
            }
            s => words.push(s.to_string()),
        }
    }
    let mut code = 0;
    if system {
        let (out, errors) = apply_system(host, quiet);
        print!("{out}");
        for e in &errors {
            eprintln!("{e}");
        }
        return if errors.is_empty() { 0 } else { 255 };
    }
    if let Some(f) = load {
        let Some(text) = std::fs::read_to_string(&f).ok().or_else(|| host.read(&f)) else {
            eprintln!("sysctl: cannot open \"{f}\": No such file or directory");
            return 255;
        };
        for (k, v, ignore) in settings(&text) {
            match write_sysctl(host, &k, &v) {
                Ok(()) if !quiet => println!("{} = {v}", dotted(&k)),
                Ok(()) => {}
                Err(e) if !ignore => {
                    eprintln!("{e}");
                    code = 255;
                }
                Err(_) => {}
            }
        }
        return code;
    }
    if words.is_empty() {
        eprintln!("sysctl: no variables specified\nTry `sysctl --help' for more information.");
        return 255;
    }
    for w in words {
        match w.split_once('=') {
            Some((k, v)) => match write_sysctl(host, k.trim(), v.trim()) {
                Ok(()) if !quiet => {
                    if values_only {
                        println!("{}", v.trim());
                    } else {
                        println!("{} = {}", dotted(k.trim()), v.trim());
                    }
                }
                Ok(()) => {}
                Err(e) => {
                    eprintln!("{e}");
                    code = 255;
                }
            },
            None => match read_sysctl(host, &w) {
                Ok(v) if values_only => println!("{v}"),
                Ok(v) => println!("{} = {v}", dotted(&w)),
                Err(e) => {
                    eprintln!("{e}");
                    code = 255;
                }
            },
        }
    }
    code
}

/// `modprobe [-a] [-r] [-q] MODULE...`.
pub(crate) fn modprobe(host: &Host, args: &[String]) -> u8 {
    host.pause(Op::Instant);
    let (mut all, mut remove, mut quiet) = (false, false, false);
    let mut words = Vec::new();
    for a in args {
        match a.as_str() {
            "-a" | "--all" => all = true,
            "-r" | "--remove" => remove = true,
            "-q" | "--quiet" => quiet = true,
            "-v" | "--verbose" | "-b" | "--use-blacklist" => {}
            s if s.starts_with('-') => {
                eprintln!("modprobe: unrecognized option '{s}'");
                return 1;
            }
            s => words.push(s.to_string()),
        }
    }
    if words.is_empty() {
        eprintln!("modprobe: ERROR: missing parameters. See -h.");
        return 1;
    }
    let modules: Vec<String> = if all || remove {
        words.clone()
    } else {
        vec![words[0].clone()]
    };
    let params = if all || remove { &[][..] } else { &words[1..] };
    let mut loaded = loaded_modules(host);
    for m in &modules {
        let name = m.replace('-', "_");
        if !MODULE_TABLE.iter().any(|(n, _, _)| *n == name) {
            if !quiet {
                eprintln!(
                    "modprobe: FATAL: Module {m} not found in directory {}",
                    modules_dir(host)
                );
            }
            return 1;
        }
        if remove {
            let in_use = loaded.iter().any(|u| {
                MODULE_TABLE
                    .iter()
                    .any(|(n, deps, _)| n == u && deps.contains(&name.as_str()))
            });
            if in_use {
                eprintln!("modprobe: FATAL: Module {name} is in use.");
                return 1;
            }
            loaded.retain(|l| *l != name);
            for (path, _) in module_sysctls(&name) {
                host.remove_file(&format!("/proc/sys/{path}"));
            }
            continue;
        }
        if !params.is_empty() {
            eprintln!("modprobe: ERROR: could not insert '{name}': Unknown symbol in module, or unknown parameter (see dmesg)");
            return 1;
        }
        if let Err(missing) = load_module(host, &mut loaded, m) {
            eprintln!(
                "modprobe: FATAL: Module {missing} not found in directory {}",
                modules_dir(host)
            );
            return 1;
        }
    }
    match write_modules(host, &loaded) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("modprobe: ERROR: could not insert '{}': {e}", modules[0]);
            1
        }
    }
}

/// `dphys-swapfile swapoff|swapon|setup|install|uninstall` (the Pis' swap file).
pub(crate) fn dphys_swapfile(host: &Host, args: &[String]) -> u8 {
    host.pause(Op::Instant);
    match args.first().map(String::as_str) {
        Some("swapoff") | Some("uninstall") => dphys_swapoff(host),
        Some("swapon") | Some("setup") | Some("install") => {
            if args[0] == "setup" {
                let size = dphys_file(host).map(|s| s.kb / 1024 + 1).unwrap_or(0);
                println!("want /var/swap={size}MByte, checking existing: keeping it");
            } else {
                dphys_swapon(host);
            }
        }
        _ => {
            eprintln!("/sbin/dphys-swapfile: ERROR: unknown option \"{}\", use one of: setup, swapon, swapoff, install, uninstall", args.first().map(String::as_str).unwrap_or(""));
            return 1;
        }
    }
    super::services::retry_kubelet(host);
    0
}

/// `swapoff [-a] [-v] [-L LABEL] [-U UUID] [SPEC...]`.
pub(crate) fn swapoff(host: &Host, args: &[String]) -> u8 {
    host.pause(Op::Instant);
    let before = active_swaps(host);
    let active: Vec<String> = before.iter().map(|s| s.path.clone()).collect();
    let fstab: Vec<String> = fstab_swap_lines(host).into_iter().map(|(d, _)| d).collect();
    let run = swapoff_run(args, &active, &fstab, &|p: &str| host.exists(p));
    print!("{}", run.stdout);
    eprint!("{}", run.stderr);
    if run.off.is_empty() {
        return run.code;
    }
    let keep: Vec<Swap> = before
        .into_iter()
        .filter(|s| !run.off.contains(&s.path))
        .collect();
    if let Err(e) = host.write(SWAPS, &render_swaps(&keep)) {
        eprintln!("swapoff: {e}");
        return SWAPOFF_EX_SYSERR;
    }
    super::services::retry_kubelet(host);
    run.code
}

/// util-linux 2.38's swapoff exit status bits (`sys-utils/swapoff.c`).
const SWAPOFF_EX_FAILURE: i32 = 4;
const SWAPOFF_EX_SYSERR: u8 = 8;
const SWAPOFF_EX_USAGE: u8 = 16;
/// `cannot_find` (`swapon-common.c`) returns -1 into the ORed status: every
/// bit set, exit 255.
const SWAPOFF_CANNOT_FIND: i32 = -1;
const SWAPOFF_USAGE: &str = "\nUsage:\n swapoff [options] [<spec>]\n\nDisable devices and files for paging and swapping.\n\nOptions:\n -a, --all              disable all swaps from /proc/swaps\n -v, --verbose          verbose mode\n\n -h, --help             display this help\n -V, --version          display version\n\nThe <spec> parameter:\n -L <label>             LABEL of device to be used\n -U <uuid>              UUID of device to be used\n LABEL=<label>          LABEL of device to be used\n UUID=<uuid>            UUID of device to be used\n <device>               name of device to be used\n <file>                 name of file to be used\n\nFor more details see swapoff(8).\n";

/// What one swapoff run prints, its exit status and the swap areas it turned off.
#[derive(Debug, Default, PartialEq)]
struct SwapoffRun {
    stdout: String,
    stderr: String,
    code: u8,
    off: Vec<String>,
}

/// swapoff's command line as its `getopt_long("ahvVL:U:")` reads it.
#[derive(Default)]
struct SwapoffArgs {
    all: bool,
    verbose: bool,
    labels: Vec<String>,
    uuids: Vec<String>,
    specs: Vec<String>,
}

/// Parses swapoff's arguments; `Err` is what it prints and exits with
/// before touching a swap area (usage errors, `--help`, `--version`).
fn swapoff_args(args: &[String]) -> Result<SwapoffArgs, SwapoffRun> {
    let usage_error = |msg: String| SwapoffRun {
        stderr: format!("swapoff: {msg}\nTry 'swapoff --help' for more information.\n"),
        code: SWAPOFF_EX_USAGE,
        ..SwapoffRun::default()
    };
    let help = || SwapoffRun {
        stdout: SWAPOFF_USAGE.to_string(),
        ..SwapoffRun::default()
    };
    let version = || SwapoffRun {
        stdout: "swapoff from util-linux 2.38.1\n".into(),
        ..SwapoffRun::default()
    };
    let mut a = SwapoffArgs::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "--" {
            a.specs.extend(it.by_ref().cloned());
            break;
        }
        if let Some(long) = arg.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            let names = ["all", "help", "verbose", "version"];
            let matches: Vec<&str> = match names.iter().find(|n| **n == name) {
                Some(exact) => vec![exact],
                None => names.into_iter().filter(|n| n.starts_with(name)).collect(),
            };
            let full = match matches.as_slice() {
                [one] => *one,
                [] => return Err(usage_error(format!("unrecognized option '{arg}'"))),
                many => {
                    let list: Vec<String> = many.iter().map(|n| format!("'--{n}'")).collect();
                    return Err(usage_error(format!(
                        "option '--{name}' is ambiguous; possibilities: {}",
                        list.join(" ")
                    )));
                }
            };
            if value.is_some() {
                return Err(usage_error(format!(
                    "option '--{full}' doesn't allow an argument"
                )));
            }
            match full {
                "all" => a.all = true,
                "verbose" => a.verbose = true,
                "help" => return Err(help()),
                _ => return Err(version()),
            }
            continue;
        }
        let Some(flags) = arg.strip_prefix('-').filter(|f| !f.is_empty()) else {
            a.specs.push(arg.clone());
            continue;
        };
        for (i, c) in flags.char_indices() {
            match c {
                'a' => a.all = true,
                'v' => a.verbose = true,
                'h' => return Err(help()),
                'V' => return Err(version()),
                'L' | 'U' => {
                    let rest = &flags[i + 1..];
                    let value = if rest.is_empty() {
                        it.next().cloned().ok_or_else(|| {
                            usage_error(format!("option requires an argument -- '{c}'"))
                        })?
                    } else {
                        rest.to_string()
                    };
                    if c == 'L' {
                        a.labels.push(value);
                    } else {
                        a.uuids.push(value);
                    }
                    break;
                }
                other => return Err(usage_error(format!("invalid option -- '{other}'"))),
            }
        }
    }
    if !a.all && a.labels.is_empty() && a.uuids.is_empty() && a.specs.is_empty() {
        return Err(usage_error("bad usage".into()));
    }
    Ok(a)
}

/// swapoff over the lab's swap areas (`active`: /proc/swaps, `fstab`: its
/// swap lines' devices), as util-linux 2.38 does it: `-L`/`-U` first, then
/// each SPEC, then `-a`. The exit status ORs each failure's bits: 4 for a
/// swapoff(2) that failed (EINVAL for a path that is not an active swap
/// area, ENOENT for one that does not exist), -1 for a tag that names no
/// device. `-a` turns off every active area, last first, quietly, then tries
/// fstab's inactive lines and ignores their failures.
fn swapoff_run(
    args: &[String],
    active: &[String],
    fstab: &[String],
    exists: &dyn Fn(&str) -> bool,
) -> SwapoffRun {
    let a = match swapoff_args(args) {
        Ok(a) => a,
        Err(done) => return done,
    };
    let mut run = SwapoffRun::default();
    let mut status: i32 = 0;
    let mut on: Vec<String> = active.to_vec();
    let by_uuid = |u: &str| (u == SWAP_UUID).then(|| SWAP_DEVICE.to_string());
    // do_swapoff: the swapoff(2) of one resolved path.
    let turn_off =
        |run: &mut SwapoffRun, on: &mut Vec<String>, shown: &str, path: &str, quiet: bool| -> i32 {
            if a.verbose {
                run.stdout.push_str(&format!("swapoff {shown}\n"));
            }
            if let Some(i) = on.iter().position(|p| p == path) {
                run.off.push(on.remove(i));
                return 0;
            }
            if !quiet {
                let why = if exists(path) {
                    "Invalid argument"
                } else {
                    "No such file or directory"
                };
                run.stderr
                    .push_str(&format!("swapoff: {shown}: swapoff failed: {why}\n"));
            }
            SWAPOFF_EX_FAILURE
        };
    let cannot_find = |run: &mut SwapoffRun, what: &str| -> i32 {
        run.stderr
            .push_str(&format!("swapoff: cannot find the device for {what}\n"));
        SWAPOFF_CANNOT_FIND
    };
    for label in &a.labels {
        status |= cannot_find(&mut run, label);
    }
    for uuid in &a.uuids {
        status |= match by_uuid(uuid) {
            Some(dev) => turn_off(&mut run, &mut on, &dev, &dev, false),
            None => cannot_find(&mut run, uuid),
        };
    }
    for spec in &a.specs {
        let tag = spec
            .split_once('=')
            .filter(|(t, _)| matches!(*t, "LABEL" | "UUID" | "PARTLABEL" | "PARTUUID"));
        status |= match tag {
            Some(("UUID", u)) if by_uuid(u).is_some() => {
                turn_off(&mut run, &mut on, spec, SWAP_DEVICE, false)
            }
            Some(_) => cannot_find(&mut run, spec),
            None => turn_off(&mut run, &mut on, spec, spec, false),
        };
    }
    if a.all {
        // /proc/swaps as -a reads it, after the SPECs; fstab's lines count
        // as active by this reading.
        let listed = on.clone();
        for path in listed.iter().rev() {
            turn_off(&mut run, &mut on, path, path, true);
        }
        for dev in fstab {
            let path = match dev.strip_prefix("UUID=").map(by_uuid) {
                Some(Some(d)) => d,
                Some(None) => {
                    // Quiet or not, a tag without a device is reported.
                    if a.verbose {
                        run.stdout.push_str(&format!("swapoff {dev}\n"));
                    }
                    cannot_find(&mut run, dev);
                    continue;
                }
                None => dev.clone(),
            };
            if !listed.contains(&path) {
                turn_off(&mut run, &mut on, dev, &path, true);
            }
        }
    }
    run.code = (status & 0xff) as u8;
    run
}

/// `swapon -a`, `swapon PATH`, `swapon --show`, `swapon -s`.
pub(crate) fn swapon(host: &Host, args: &[String]) -> u8 {
    host.pause(Op::Instant);
    let has = |f: &[&str]| args.iter().any(|a| f.contains(&a.as_str()));
    let mut swaps = active_swaps(host);
    if has(&["-s", "--summary"]) {
        print!("{}", host.read(SWAPS).unwrap_or_default());
        return 0;
    }
    if has(&["--show"]) || args.is_empty() {
        if swaps.is_empty() {
            return 0;
        }
        let width = swaps.iter().map(|s| s.path.len()).max().unwrap_or(4).max(4);
        if !has(&["--noheadings"]) {
            println!("{:<width$} TYPE      SIZE USED PRIO", "NAME");
        }
        for (i, s) in swaps.iter().enumerate() {
            let size = if s.kb >= 1_048_000 {
                format!("{}G", (s.kb + 4) / 1_048_576)
            } else {
                format!("{}M", (s.kb + 4) / 1024)
            };
            println!(
                "{:<width$} {:<9} {:>4}   0B   -{}",
                s.path,
                if s.partition { "partition" } else { "file" },
                size,
                i + 2
            );
        }
        return 0;
    }
    let wanted: Vec<Swap> = if has(&["-a", "--all"]) {
        fstab_swaps(host)
    } else {
        args.iter()
            .filter(|a| !a.starts_with('-'))
            .map(|p| Swap {
                path: p.clone(),
                partition: p.starts_with("/dev/"),
                kb: 1_048_572,
            })
            .collect()
    };
    for w in wanted {
        if !swaps.iter().any(|s| s.path == w.path) {
            swaps.push(w);
        } else if !has(&["-a", "--all"]) {
            eprintln!("swapon: {}: swapon failed: Device or resource busy", w.path);
            return 255;
        }
    }
    match host.write(SWAPS, &render_swaps(&swaps)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("swapon: {e}");
            255
        }
    }
}

fn module_names_in(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty() && !l.starts_with(';'))
        .map(|l| l.split_whitespace().next().unwrap_or(l).to_string())
        .collect()
}

/// Modules systemd-modules-load loads at boot: /etc/modules-load.d/*.conf and /etc/modules.
fn persisted_modules(host: &Host) -> Vec<String> {
    let mut v = Vec::new();
    for dir in ["/etc/modules-load.d", "/usr/lib/modules-load.d"] {
        if let Ok(d) = std::fs::read_dir(host.path(dir)) {
            let mut files: Vec<_> = d
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "conf"))
                .collect();
            files.sort();
            for f in files {
                v.extend(module_names_in(
                    &std::fs::read_to_string(f).unwrap_or_default(),
                ));
            }
        }
    }
    v.extend(module_names_in(
        &host.read("/etc/modules").unwrap_or_default(),
    ));
    v
}

/// What a boot makes of the host's persistent settings: the kernel command
/// line, cgroups, modules, sysctls and swap. Services are [`super::services::boot`]'s.
pub(crate) fn boot(host: &Host) -> std::io::Result<()> {
    let cmdline = if is_pi(host) {
        let txt = host.read(PI_CMDLINE_TXT).unwrap_or_default();
        format!(
            "{PI_FIRMWARE_ARGS} {}",
            txt.lines().next().unwrap_or("").trim()
        )
    } else {
        AMD64_CMDLINE.to_string()
    };
    host.write(CMDLINE, &format!("{cmdline}\n"))?;
    let controllers = if is_pi(host) {
        if memory_cgroup(&cmdline) {
            "cpuset cpu io memory pids"
        } else {
            "cpuset cpu io pids"
        }
    } else {
        "cpuset cpu io memory hugetlb pids rdma misc"
    };
    host.write(CONTROLLERS, &format!("{controllers}\n"))?;
    let _ = std::fs::remove_dir_all(host.path("/proc/sys"));
    for (path, value) in DEFAULT_SYSCTLS {
        host.write(&format!("/proc/sys/{path}"), &format!("{value}\n"))?;
    }
    // uname's nodename, and its machine where the kernel shows it too:
    // kernel.arch is recent (Linux 6.x). The Pis' 6.6 has it; the amd64
    // host's 6.1 is left without, so that readers fall back to uname there.
    host.write(HOSTNAME, &format!("{}\n", host.name))?;
    if is_pi(host) {
        let machine = super::host::uname_machine(&host.node().arch).to_string();
        host.write(ARCH, &format!("{machine}\n"))?;
    }
    let mut loaded = Vec::new();
    for m in base_modules(host)
        .into_iter()
        .chain(persisted_modules(host))
    {
        // systemd-modules-load logs an unknown module and goes on.
        let _ = load_module(host, &mut loaded, &m);
    }
    write_modules(host, &loaded)?;
    apply_system(host, true);
    let mut swaps = fstab_swaps(host);
    swaps.extend(dphys_swap(host));
    host.write(SWAPS, &render_swaps(&swaps))?;
    Ok(())
}

/// Whether the running kernel has the memory cgroup controller.
pub(crate) fn has_memory_cgroup(host: &Host) -> bool {
    host.read(CONTROLLERS)
        .is_some_and(|c| c.split_whitespace().any(|w| w == "memory"))
}

/// Whether /proc/sys/net/ipv4/ip_forward is 1.
pub(crate) fn ip_forward(host: &Host) -> bool {
    host.read(IP_FORWARD).is_some_and(|v| v.trim() == "1")
}

/// `/proc/swaps`' contents after its header, as the kubelet quotes them.
pub(crate) fn swaps_listing(host: &Host) -> Vec<String> {
    host.read(SWAPS)
        .unwrap_or_default()
        .lines()
        .skip(1)
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_swaps_has_the_kernels_layout() {
        let s = render_swaps(&[Swap {
            path: "/dev/sda3".into(),
            partition: true,
            kb: 2_097_148,
        }]);
        assert_eq!(
            s,
            "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/dev/sda3                               partition\t2097148\t\t0\t\t-2\n"
        );
        let f = render_swaps(&[Swap {
            path: "/var/swap".into(),
            partition: false,
            kb: 524_284,
        }]);
        assert!(
            f.ends_with("/var/swap                               file\t\t524284\t\t0\t\t-2\n"),
            "{f:?}"
        );
    }

    fn swapoff_on(args: &[&str], active: &[&str], fstab: &[&str]) -> SwapoffRun {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let active: Vec<String> = active.iter().map(|a| a.to_string()).collect();
        let fstab: Vec<String> = fstab.iter().map(|a| a.to_string()).collect();
        swapoff_run(&args, &active, &fstab, &|p: &str| p == "/swapfile")
    }

    fn failed(stderr: &str, code: u8) -> SwapoffRun {
        SwapoffRun {
            stderr: stderr.into(),
            code,
            ..SwapoffRun::default()
        }
    }

    #[test]
    fn swapoff_of_what_is_not_swapping_fails_with_its_errno_and_exit_4() {
        assert_eq!(
            swapoff_on(&["/swapfile"], &["/dev/sda3"], &[]),
            failed("swapoff: /swapfile: swapoff failed: Invalid argument\n", 4)
        );
        assert_eq!(
            swapoff_on(&["/nowhere"], &[], &[]),
            failed(
                "swapoff: /nowhere: swapoff failed: No such file or directory\n",
                4
            )
        );
    }

    #[test]
    fn a_tag_without_a_device_sets_every_exit_bit() {
        assert_eq!(
            swapoff_on(&["UUID=0000", "/swapfile"], &[], &[]),
            failed(
                "swapoff: cannot find the device for UUID=0000\nswapoff: /swapfile: swapoff failed: Invalid argument\n",
                255
            )
        );
        assert_eq!(
            swapoff_on(&["-L", "swap"], &[], &[]),
            failed("swapoff: cannot find the device for swap\n", 255)
        );
        let by_uuid = swapoff_on(&[&format!("UUID={SWAP_UUID}")], &["/dev/sda3"], &[]);
        assert_eq!(
            (by_uuid.code, by_uuid.off),
            (0, vec!["/dev/sda3".to_string()])
        );
    }

    #[test]
    fn swapoff_all_turns_off_the_last_area_first_and_tries_fstabs_others_quietly() {
        let run = swapoff_on(
            &["-av"],
            &["/dev/sda3", "/var/swap"],
            &[&format!("UUID={SWAP_UUID}"), "/swapfile"],
        );
        assert_eq!(
            run,
            SwapoffRun {
                stdout: "swapoff /var/swap\nswapoff /dev/sda3\nswapoff /swapfile\n".into(),
                off: vec!["/var/swap".into(), "/dev/sda3".into()],
                ..SwapoffRun::default()
            }
        );
    }

    #[test]
    fn swapoff_usage_errors_exit_16() {
        let try_help = "Try 'swapoff --help' for more information.\n";
        assert_eq!(
            swapoff_on(&[], &[], &[]),
            failed(&format!("swapoff: bad usage\n{try_help}"), 16)
        );
        assert_eq!(
            swapoff_on(&["-x"], &[], &[]),
            failed(&format!("swapoff: invalid option -- 'x'\n{try_help}"), 16)
        );
        assert_eq!(
            swapoff_on(&["--ver"], &[], &[]),
            failed(
                &format!("swapoff: option '--ver' is ambiguous; possibilities: '--verbose' '--version'\n{try_help}"),
                16
            )
        );
        assert_eq!(
            swapoff_on(&["-U"], &[], &[]),
            failed(
                &format!("swapoff: option requires an argument -- 'U'\n{try_help}"),
                16
            )
        );
        let help = swapoff_on(&["-a", "--help"], &["/dev/sda3"], &[]);
        assert!(help
            .stdout
            .starts_with("\nUsage:\n swapoff [options] [<spec>]\n"));
        assert_eq!((help.code, help.off.len()), (0, 0));
    }

    #[test]
    fn the_last_cgroup_switch_on_the_command_line_wins() {
        assert!(!memory_cgroup("a cgroup_disable=memory b"));
        assert!(memory_cgroup(
            "cgroup_disable=memory x cgroup_enable=memory cgroup_memory=1"
        ));
        assert!(memory_cgroup("quiet"));
    }

    #[test]
    fn sysctl_files_parse_as_procps_reads_them() {
        let s = settings(
            "# c\n; c\nnet.ipv4.ip_forward = 1\n-net.bridge.bridge-nf-call-iptables=1\n\n",
        );
        assert_eq!(s[0], ("net.ipv4.ip_forward".into(), "1".into(), false));
        assert_eq!(
            s[1],
            (
                "net.bridge.bridge-nf-call-iptables".into(),
                "1".into(),
                true
            )
        );
        assert_eq!(
            proc_path("net.ipv4.ip_forward"),
            "/proc/sys/net/ipv4/ip_forward"
        );
        assert_eq!(dotted("net/ipv4/ip_forward"), "net.ipv4.ip_forward");
    }
}
