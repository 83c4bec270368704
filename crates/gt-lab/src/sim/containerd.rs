//! Simulated containerd: `containerd config default` (1.x and 2.x layouts,
//! trimmed to the sections that matter, with upstream's section names), the
//! service (its CRI socket exists while it runs: a real unix socket file, so
//! `[ -S ]` answers as on a real host), and `crictl` against it.
//!
//! containerd 1.x keeps the runc options in
//! `[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]`
//! (`SystemdCgroup = false` by default); 2.x in
//! `[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]`
//! with no SystemdCgroup line at all. Debian's containerd ships no config
//! file (built-in defaults: CRI on, cgroupfs); Docker's containerd.io ships
//! one that disables the CRI plugin.

use super::dpkg::{self, Db};
use super::host::Host;
use super::latency::Op;
use toml_edit::{Document, Item};

pub(crate) const CONFIG: &str = "/etc/containerd/config.toml";
pub(crate) const SOCKET: &str = "/run/containerd/containerd.sock";
/// What the running containerd loaded (its config is read at start only).
const RUNNING: &str = "/run/containerd/gt-lab-running.json";

/// The installed containerd's Debian version, if any.
pub(crate) fn installed_version(db: &Db) -> Option<String> {
    ["containerd", "containerd.io"].iter().find_map(|p| {
        db.get(*p)
            .filter(|e| e.installed())
            .map(|e| e.version.clone())
    })
}

fn major(version: &str) -> u32 {
    super::debver::upstream(version)
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(1)
}

/// `containerd config default` of containerd `major`: the two layouts
/// around the same runc options, in each one's quoting (1.x prints
/// `SystemdCgroup = false`, 2.x no such line).
pub(crate) fn default_config(major: u32) -> String {
    if major >= 2 {
        format!(
            "{DEFAULT_2X_TO_RUNC}{}{DEFAULT_2X_AFTER_RUNC}",
            runc_options('\'', None)
        )
    } else {
        format!("{DEFAULT_1X_TO_RUNC}{}", runc_options('"', Some(false)))
    }
}

fn runc_options(quote: char, systemd_cgroup: Option<bool>) -> String {
    let empty = format!("{quote}{quote}");
    let mut lines = vec![
        format!("BinaryName = {empty}"),
        format!("CriuImagePath = {empty}"),
        "IoGid = 0".to_string(),
        "IoUid = 0".to_string(),
        "NoNewKeyring = false".to_string(),
        format!("Root = {empty}"),
        format!("ShimCgroup = {empty}"),
    ];
    lines.extend(systemd_cgroup.map(|b| format!("SystemdCgroup = {b}")));
    lines.iter().map(|l| format!("            {l}\n")).collect()
}

const DEFAULT_1X_TO_RUNC: &str = r#"disabled_plugins = []
imports = []
oom_score = 0
plugin_dir = ""
required_plugins = []
root = "/var/lib/containerd"
state = "/run/containerd"
temp = ""
version = 2

[cgroup]
  path = ""

[grpc]
  address = "/run/containerd/containerd.sock"
  gid = 0
  max_recv_message_size = 16777216
  max_send_message_size = 16777216
  uid = 0

[plugins]

  [plugins."io.containerd.grpc.v1.cri"]
    device_ownership_from_security_context = false
    disable_apparmor = false
    disable_cgroup = false
    enable_selinux = false
    sandbox_image = "registry.k8s.io/pause:3.6"

    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/opt/cni/bin"
      conf_dir = "/etc/cni/net.d"

    [plugins."io.containerd.grpc.v1.cri".containerd]
      default_runtime_name = "runc"
      snapshotter = "overlayfs"

      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes]

        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
          runtime_type = "io.containerd.runc.v2"

          [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
"#;

const DEFAULT_2X_TO_RUNC: &str = r#"version = 3
root = '/var/lib/containerd'
state = '/run/containerd'
temp = ''
plugin_dir = ''
disabled_plugins = []
required_plugins = []
oom_score = 0
imports = []

[grpc]
  address = '/run/containerd/containerd.sock'
  uid = 0
  gid = 0
  max_recv_message_size = 16777216
  max_send_message_size = 16777216

[plugins]
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    disable_snapshot_annotations = true

    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = 'registry.k8s.io/pause:3.10'

  [plugins.'io.containerd.cri.v1.runtime']
    enable_selinux = false
    disable_apparmor = false

    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'runc'

      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes]
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
          runtime_type = 'io.containerd.runc.v2'

          [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
"#;

const DEFAULT_2X_AFTER_RUNC: &str = r#"
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ['/opt/cni/bin']
      conf_dir = '/etc/cni/net.d'

  [plugins.'io.containerd.grpc.v1.cri']
    disable_tcp_service = true
    stream_server_address = '127.0.0.1'
    stream_server_port = '0'
"#;

/// What containerd makes of its config file when it starts.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Loaded {
    pub(crate) systemd_cgroup: bool,
    pub(crate) cri: bool,
}

fn dig<'a>(item: &'a Item, path: &[&str]) -> Option<&'a Item> {
    path.iter()
        .try_fold(item, |it, k| it.as_table_like()?.get(k))
}

/// Reads a config as containerd `major` would; `Err` is containerd's complaint.
pub(crate) fn load_config(text: Option<&str>, major: u32) -> Result<Loaded, String> {
    let Some(text) = text else {
        return Ok(Loaded {
            systemd_cgroup: false,
            cri: true,
        });
    };
    let doc = Document::parse(text).map_err(|e| {
        format!(
            "failed to load TOML from {CONFIG}: invalid plugin config: {}",
            e.message().trim()
        )
    })?;
    let root = doc.as_item();
    let version = root.get("version").and_then(Item::as_integer).unwrap_or(1);
    let plugin = match (major >= 2, version) {
        (_, 1) => "cri",
        (_, 2) => "io.containerd.grpc.v1.cri",
        (true, 3) => "io.containerd.cri.v1.runtime",
        (_, v) => {
            return Err(format!(
                "failed to load TOML from {CONFIG}: unsupported config version `{v}`"
            ))
        }
    };
    let path = [
        "plugins",
        plugin,
        "containerd",
        "runtimes",
        "runc",
        "options",
        "SystemdCgroup",
    ];
    let systemd_cgroup = dig(root, &path).and_then(Item::as_bool).unwrap_or(false);
    let disabled: Vec<String> = root
        .get("disabled_plugins")
        .and_then(Item::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let cri = !disabled.iter().any(|d| {
        d == "cri"
            || d.starts_with("io.containerd.grpc.v1.cri")
            || d.starts_with("io.containerd.cri.v1")
    });
    Ok(Loaded {
        systemd_cgroup,
        cri,
    })
}

/// Starts containerd: reads its config, opens the CRI socket.
pub(crate) fn start(host: &Host) -> Result<(), String> {
    let db = dpkg::load(host);
    let Some(version) = installed_version(&db) else {
        return Err("Unit containerd.service not found.".into());
    };
    let loaded = load_config(host.read(CONFIG).as_deref(), major(&version))?;
    let _ = std::fs::create_dir_all(host.path("/run/containerd"));
    host.write(RUNNING, &serde_json::to_string(&loaded).expect("json"))
        .map_err(|e| e.to_string())?;
    make_socket(&host.path(SOCKET)).map_err(|e| format!("failed to listen on {SOCKET}: {e}"))
}

/// A unix socket file at `path` (what `[ -S ]` tests), left behind by a listener that is gone.
fn make_socket(path: &std::path::Path) -> std::io::Result<()> {
    let _ = std::fs::remove_file(path);
    match std::os::unix::net::UnixListener::bind(path) {
        Ok(_) => Ok(()),
        // A lab directory deep enough to pass the 108-byte limit of a socket path:
        // bind by a relative name from the socket's directory.
        Err(_) => {
            let dir = path.parent().expect("has parent");
            let back = std::env::current_dir()?;
            std::env::set_current_dir(dir)?;
            let r = std::os::unix::net::UnixListener::bind(path.file_name().expect("has name"))
                .map(|_| ());
            std::env::set_current_dir(back)?;
            r
        }
    }
}

pub(crate) fn stop(host: &Host) {
    host.remove_file(SOCKET);
    host.remove_file(RUNNING);
}

pub(crate) fn running(host: &Host) -> bool {
    host.path(SOCKET).exists()
}

/// What the running containerd loaded; `None` when it does not run.
pub(crate) fn loaded(host: &Host) -> Option<Loaded> {
    if !running(host) {
        return None;
    }
    host.read(RUNNING)
        .and_then(|t| serde_json::from_str(&t).ok())
}

/// The package's maintainer scripts: containerd.io's config file, the unit enabled and started.
pub(crate) fn installed(host: &Host, package: &str) -> std::io::Result<()> {
    if package == "containerd.io" && !host.exists(CONFIG) {
        host.write(
            CONFIG,
            "#   Copyright 2018-2022 Docker Inc.\n\ndisabled_plugins = [\"cri\"]\n",
        )?;
    }
    super::services::set_enabled(host, "containerd", true);
    start(host).map_err(std::io::Error::other)
}

/// `containerd --version`, `containerd config default`.
pub(crate) fn containerd(host: &Host, args: &[String]) -> u8 {
    host.pause(Op::Instant);
    let db = dpkg::load(host);
    let version = installed_version(&db).unwrap_or_default();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["--version"] | ["-v"] => {
            let up = super::debver::upstream(&version);
            if db.get("containerd.io").is_some_and(|e| e.installed()) {
                let v = if major(&version) >= 2 {
                    format!("v{}", up)
                } else {
                    up.to_string()
                };
                println!(
                    "containerd containerd.io {} 05044ec0a9a75232cad458027ca83437aae3f4da",
                    v.split('~').next().unwrap_or(&v)
                );
            } else {
                println!(
                    "containerd github.com/containerd/containerd {} {}",
                    up.split('~').next().unwrap_or(up),
                    up
                );
            }
            0
        }
        ["config", "default"] => {
            print!("{}", default_config(major(&version)));
            0
        }
        _ => {
            eprintln!("containerd (gt lab simulator): only `containerd --version` and `containerd config default` are simulated");
            1
        }
    }
}

/// `crictl [--runtime-endpoint URL] info|version|ps|exec|images`.
pub(crate) fn crictl(host: &Host, args: &[String]) -> u8 {
    host.pause(Op::Instant);
    let mut endpoint = "unix:///run/containerd/containerd.sock".to_string();
    let mut verb = None;
    let mut verb_args: &[String] = &[];
    let mut it = args.iter().enumerate();
    while let Some((i, a)) = it.next() {
        match a.as_str() {
            "-r" | "--runtime-endpoint" => {
                endpoint = it.next().map(|(_, e)| e.clone()).unwrap_or_default()
            }
            s if s.starts_with("--runtime-endpoint=") => {
                endpoint = s["--runtime-endpoint=".len()..].to_string()
            }
            s if s.starts_with('-') => {}
            s => {
                verb = Some(s.to_string());
                verb_args = &args[i + 1..];
                break;
            }
        }
    }
    let path = endpoint.trim_start_matches("unix://").to_string();
    let logical = path
        .strip_prefix("/var")
        .filter(|p| p.starts_with("/run/"))
        .unwrap_or(&path);
    let fatal = |why: &str| {
        eprintln!(
            "time=\"{}\" level=fatal msg=\"validate service connection: validate CRI v1 runtime API for endpoint \\\"{endpoint}\\\": {why}\"",
            super::clock::rfc3339(super::clock::now())
        );
        1
    };
    if logical != SOCKET || !running(host) {
        return fatal(&format!(
            "rpc error: code = Unavailable desc = connection error: desc = \\\"transport: Error while dialing: dial unix {path}: connect: no such file or directory\\\""
        ));
    }
    if !loaded(host).is_some_and(|l| l.cri) {
        return fatal(
            "rpc error: code = Unimplemented desc = unknown service runtime.v1.RuntimeService",
        );
    }
    let version = installed_version(&dpkg::load(host)).unwrap_or_default();
    match verb.as_deref() {
        Some("version") => {
            println!("Version:  0.1.0\nRuntimeName:  containerd\nRuntimeVersion:  {}\nRuntimeApiVersion:  v1", super::debver::upstream(&version));
            0
        }
        Some("info") => {
            let systemd = loaded(host).is_some_and(|l| l.systemd_cgroup);
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "status": {"conditions": [
                        {"type": "RuntimeReady", "status": true, "reason": "", "message": ""},
                        {"type": "NetworkReady", "status": host.dir_not_empty("/etc/cni/net.d"), "reason": "", "message": ""}
                    ]},
                    "config": {"containerd": {"runtimes": {"runc": {"options": {"SystemdCgroup": systemd}}}}}
                }))
                .expect("json")
            );
            0
        }
        Some("ps") => super::cri::ps(host, verb_args),
        Some("exec") => super::cri::exec(host, verb_args),
        Some("images") => {
            println!("IMAGE               TAG                 IMAGE ID            SIZE");
            0
        }
        other => {
            eprintln!(
                "crictl (gt lab simulator): {} is not simulated",
                other.unwrap_or("no command")
            );
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cgroup_driver_is_read_from_each_majors_section() {
        assert_eq!(
            load_config(None, 1),
            Ok(Loaded {
                systemd_cgroup: false,
                cri: true
            })
        );
        let (default_1x, default_2x) = (default_config(1), default_config(2));
        let one = default_1x.replace("SystemdCgroup = false", "SystemdCgroup = true");
        assert!(load_config(Some(&one), 1).unwrap().systemd_cgroup);
        assert!(!load_config(Some(&default_2x), 2).unwrap().systemd_cgroup);
        let two = default_2x.replace(
            "ShimCgroup = ''",
            "ShimCgroup = ''\n            SystemdCgroup = true",
        );
        assert!(load_config(Some(&two), 2).unwrap().systemd_cgroup);
        // A 1.x file is read by 2.x (migrated); a 2.x file is refused by 1.x.
        assert!(load_config(Some(&one), 2).unwrap().systemd_cgroup);
        assert!(load_config(Some(&default_2x), 1)
            .unwrap_err()
            .contains("unsupported config version `3`"));
        assert!(
            !load_config(Some("disabled_plugins = [\"cri\"]\n"), 1)
                .unwrap()
                .cri
        );
        assert!(load_config(Some("version = [\n"), 1)
            .unwrap_err()
            .starts_with("failed to load TOML"));
    }
}
