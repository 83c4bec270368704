//! The SSH transport against a real sshd on loopback, started by each test
//! (its own keys, known_hosts and log) and stopped by a Drop guard.

use crate::support::components::{require_sshd, SSHD};
use crate::support::gt::Test;
use crate::support::wait::eventually_within;
use gt::spec::{KnownHostsPolicy, SshSettings};
use gt::transport::{Cmd, Host, SshHost, TransportError};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A throwaway sshd listening on one or two loopback addresses.
struct Sshd {
    dir: tempfile::TempDir,
    child: Child,
    addrs: Vec<String>,
    port: u16,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keygen(path: &Path) {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen runs");
    assert!(st.success());
}

fn pubkey(path: &Path) -> String {
    let s = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    s.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

impl Sshd {
    /// Fails the test, naming the package, when sshd is not installed.
    fn start(listen: usize) -> Sshd {
        Sshd::start_with(listen, "")
    }

    /// With `extra` appended to its sshd_config.
    fn start_with(listen: usize, extra: &str) -> Sshd {
        require_sshd();
        let _ = std::fs::create_dir_all("/run/sshd");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        keygen(&d.join("host_key"));
        keygen(&d.join("user_key"));
        std::fs::copy(d.join("user_key.pub"), d.join("authorized_keys")).unwrap();
        let a = rand::random::<u8>() % 200 + 20;
        let b = rand::random::<u8>() % 200 + 20;
        let port = 20000 + rand::random::<u16>() % 20000;
        let addrs: Vec<String> = (0..listen)
            .map(|i| format!("127.99.{a}.{}", b as usize + i))
            .collect();
        let mut cfg = String::new();
        for addr in &addrs {
            cfg.push_str(&format!("ListenAddress {addr}:{port}\n"));
        }
        cfg.push_str(&format!(
            "HostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\nPidFile none\nStrictModes no\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nLogLevel VERBOSE\n\
             AllowTcpForwarding yes\nMaxSessions 50\nSetEnv PATH={d}/bin:/usr/local/bin:/usr/bin:/bin\n",
            d = d.display()
        ));
        cfg.push_str(extra);
        std::fs::write(d.join("sshd_config"), cfg).unwrap();
        let known: String = addrs
            .iter()
            .map(|addr| format!("[{addr}]:{port} {}\n", pubkey(&d.join("host_key"))))
            .collect();
        std::fs::write(d.join("known_hosts"), known).unwrap();
        let log = std::fs::File::create(d.join("sshd.log")).unwrap();
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("sshd starts");
        let sshd = Sshd {
            dir,
            child,
            addrs,
            port,
        };
        eventually_within("sshd listens", Duration::from_secs(10), || {
            TcpStream::connect((sshd.addrs[0].as_str(), port)).is_ok()
        });
        sshd
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.path("sshd.log")).unwrap_or_default()
    }

    fn accepted_logins(&self) -> usize {
        self.log().matches("Accepted publickey").count()
    }

    fn settings(&self) -> SshSettings {
        SshSettings {
            host: self.addrs[0].clone(),
            user: "root".into(),
            port: self.port,
            identity_file: Some(self.path("user_key")),
            jump_hosts: vec![],
            config_file: None,
            connect_timeout: Duration::from_secs(5),
            known_hosts: KnownHostsPolicy::Strict,
            known_hosts_file: Some(self.path("known_hosts")),
            sudo: false,
        }
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[allow(clippy::result_large_err)] // an error per failure class, with its facts: rare, not hot
fn connect(s: &SshSettings) -> Result<SshHost, TransportError> {
    let socket_dir = tempfile::tempdir().unwrap().keep();
    rt().block_on(dialed(s, &socket_dir))
}

/// A login with gt dialing (whatever GT_SSH_DIAL says where the tests run):
/// every test here logs in so unless it says otherwise.
#[allow(clippy::result_large_err)]
async fn dialed(s: &SshSettings, socket_dir: &Path) -> Result<SshHost, TransportError> {
    SshHost::connect_with("fenn", s, &socket_dir.join("c"), true).await
}

/// `$SSH_CONNECTION` as the host's shell sees it; closes the host.
fn ssh_connection_seen_by(host: SshHost) -> String {
    rt().block_on(async {
        let out = host
            .run(&Cmd::new("echo \"$SSH_CONNECTION\""), None)
            .await
            .unwrap();
        host.close().await;
        out.stdout
    })
}

/// The ssh master naming `needle` (a control socket dir, an address):
/// its command line, and what its stdin is (`socket:[...]`, `/dev/null`).
fn ssh_master_mentioning(needle: &str) -> (String, String) {
    let found: Vec<(String, String)> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| {
            let dir = e.ok()?.path();
            let line = String::from_utf8_lossy(&std::fs::read(dir.join("cmdline")).ok()?)
                .replace('\0', " ");
            let stdin = std::fs::read_link(dir.join("fd/0")).ok()?;
            (line.starts_with("ssh ") && line.contains(" -M ") && line.contains(needle))
                .then(|| (line, stdin.display().to_string()))
        })
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found.into_iter().next().unwrap()
}

/// ssh processes whose command line mentions `needle` (our control socket dir).
/// Waits (bounded) until no ssh process names `socket_dir`: its master ended.
fn master_ends(what: &str, socket_dir: &std::path::Path) {
    let needle = socket_dir.display().to_string();
    eventually_within(what, Duration::from_secs(5), || {
        ssh_processes_mentioning(&needle) == 0
    });
}

fn ssh_processes_mentioning(needle: &str) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .filter(|c| {
            String::from_utf8_lossy(c)
                .replace('\0', " ")
                .contains(needle)
        })
        .count()
}

#[test]
#[cfg_attr(
    not(any(has_sshd, ci)),
    ignore = "needs sshd: apt-get install openssh-server"
)]
fn many_commands_share_one_master_connection_which_close_ends() {
    let sshd = Sshd::start(1);
    let socket_dir = tempfile::tempdir().unwrap();
    let rt = rt();
    rt.block_on(async {
        let host = dialed(&sshd.settings(), socket_dir.path()).await.unwrap();
        let out = host
            .run(&Cmd::new("echo hello; echo err >&2; exit 3"), None)
            .await
            .unwrap();
        assert_eq!(
            (out.code, out.stdout.as_str(), out.stderr.as_str()),
            (3, "hello\n", "err\n")
        );
        let out = host
            .run(&Cmd::new("cat").stdin("from stdin\n"), None)
            .await
            .unwrap();
        assert_eq!(out.stdout, "from stdin\n");
        let (a, b, c) = (Cmd::new("echo a"), Cmd::new("echo b"), Cmd::new("echo c"));
        let concurrent = tokio::join!(host.run(&a, None), host.run(&b, None), host.run(&c, None));
        assert_eq!(concurrent.2.unwrap().stdout, "c\n");
        let missing = host.run(&Cmd::new("kubeadm version"), None).await.unwrap();
        assert_eq!(missing.code, 127);
        assert_eq!(
            sshd.accepted_logins(),
            1,
            "one login for 6 commands:\n{}",
            sshd.log()
        );
        host.close().await;
    });
    master_ends("the ssh master ends with close", socket_dir.path());
}

#[test]
#[cfg_attr(
    not(any(has_sshd, ci)),
    ignore = "needs sshd: apt-get install openssh-server"
)]
fn a_runs_connections_are_two_files_each_in_its_private_directory() {
    // Each file or directory made is an inode: on ext4 allocating one
    // searches past those recently freed, which at hundreds of hosts was a
    // third of gt's own CPU. A connection makes its socket and its log.
    use gt::transport::{Connection, Hosts, Target, TransportOptions};
    use std::os::unix::fs::PermissionsExt;
    let sshd = Sshd::start(2);
    let run = tempfile::tempdir().unwrap();
    let dir = run.path().join("control");
    let targets: Vec<Target> = ["fenn", "gardener"]
        .iter()
        .zip(&sshd.addrs)
        .map(|(name, addr)| {
            let mut s = sshd.settings();
            s.host = addr.clone();
            Target {
                name: name.to_string(),
                connection: Connection::Ssh(s),
            }
        })
        .collect();
    let opts = TransportOptions {
        control_dir: Some(dir.clone()),
        ..Default::default()
    };
    let hosts = Hosts::new(targets, &opts).unwrap();
    rt().block_on(async {
        for name in ["fenn", "gardener"] {
            let out = hosts.get(name).await.unwrap();
            let out = out.run(&Cmd::new("echo up"), None).await.unwrap();
            assert_eq!(out.stdout, "up\n");
        }
        let mut entries: Vec<(String, bool)> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let is_dir = e.file_type().unwrap().is_dir();
                (e.file_name().to_string_lossy().into_owned(), is_dir)
            })
            .collect();
        entries.sort();
        let want = ["0.log", "0.m", "1.log", "1.m"].map(|n| (n.to_string(), false));
        assert_eq!(entries, want);
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        hosts.close().await;
    });
}

#[test]
#[cfg_attr(
    not(any(has_sshd, ci)),
    ignore = "needs sshd: apt-get install openssh-server"
)]
fn a_closed_port_is_a_refused_connection() {
    let sshd = Sshd::start(1);
    let mut s = sshd.settings();
    s.port = sshd.port.wrapping_add(1);
    let e = connect(&s).err().expect("refused");
    assert!(
        matches!(e, TransportError::ConnectionRefused { .. }),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .contains(&format!("connection refused by {}:{}", s.host, s.port)),
        "{e}"
    );
}

#[test]
#[cfg_attr(
    not(any(has_sshd, ci)),
    ignore = "needs sshd: apt-get install openssh-server"
)]
fn a_login_takes_the_connection_gt_dialed() {
    let sshd = Sshd::start(1);
    let s = sshd.settings();
    let socket_dir = tempfile::tempdir().unwrap();
    let host = rt().block_on(dialed(&s, socket_dir.path())).unwrap();
    let (line, stdin) = ssh_master_mentioning(&socket_dir.path().display().to_string());
    assert!(line.contains(" -o ProxyCommand=- "), "{line}");
    assert!(stdin.starts_with("socket:["), "{stdin}");
    let seen = ssh_connection_seen_by(host);
    assert!(seen.contains(&format!("{} {}", s.host, s.port)), "{seen}");
}

/// The user's own ProxyCommand (here a hop through the same sshd, behind a
/// marker) is the one ssh runs: gt's would take precedence from the command line.
#[test]
#[cfg_attr(
    not(any(has_sshd, ci)),
    ignore = "needs sshd: apt-get install openssh-server"
)]
fn a_config_with_its_own_proxycommand_makes_gt_step_aside() {
    let sshd = Sshd::start(1);
    let marker = sshd.path("users-proxy-ran");
    let config = sshd.path("ssh_config");
    let hop = format!(
        "ssh -F /dev/null -o BatchMode=yes -o UserKnownHostsFile={kh} -i {key} -p {port} -W %h:%p root@{addr}",
        kh = sshd.path("known_hosts").display(),
        key = sshd.path("user_key").display(),
        port = sshd.port,
        addr = sshd.addrs[0],
    );
    std::fs::write(
        &config,
        format!(
            "Host *\n  ProxyCommand sh -c ': > {}; exec {hop}'\n",
            marker.display()
        ),
    )
    .unwrap();
    let mut s = sshd.settings();
    s.config_file = Some(config);
    let socket_dir = tempfile::tempdir().unwrap();
    let host = rt().block_on(dialed(&s, socket_dir.path())).unwrap();
    let (line, stdin) = ssh_master_mentioning(&socket_dir.path().display().to_string());
    rt().block_on(host.close());
    assert!(marker.exists(), "the user's ProxyCommand did not run");
    assert!(!line.contains("ProxyCommand=-"), "{line}");
    assert_eq!(stdin, "/dev/null");
    assert_eq!(sshd.accepted_logins(), 2, "the hop's login and the host's");
}

#[test]
#[cfg_attr(
    not(any(has_sshd, ci)),
    ignore = "needs sshd: apt-get install openssh-server"
)]
fn a_name_that_does_not_resolve_fails_as_ssh_itself_says() {
    // A name with an empty label fails in the resolver before any DNS query.
    let sshd = Sshd::start(1);
    let mut s = sshd.settings();
    s.host = "Bad..Name".into();
    let reason = |dial: bool| {
        let socket_dir = tempfile::tempdir().unwrap();
        let e = rt()
            .block_on(SshHost::connect_with(
                "fenn",
                &s,
                &socket_dir.path().join("c"),
                dial,
            ))
            .err()
            .expect("unresolvable");
        assert!(matches!(e, TransportError::Unreachable { .. }), "{e:?}");
        let text = e.to_string();
        text[..text.find(" (after ").expect("the time it took")].to_string()
    };
    let dialed = reason(true);
    assert_eq!(
        dialed,
        "fenn: unreachable: ssh: Could not resolve hostname bad..name: Name or service not known"
    );
    assert_eq!(dialed, reason(false), "ssh's own connect words it the same");
}

#[test]
#[cfg_attr(
    not(any(has_sshd, ci)),
    ignore = "needs sshd: apt-get install openssh-server"
)]
fn a_key_the_host_does_not_know_fails_authentication() {
    let sshd = Sshd::start(1);
    keygen(&sshd.path("stranger"));
    let mut s = sshd.settings();
    s.identity_file = Some(sshd.path("stranger"));
    let e = connect(&s).err().expect("denied");
    assert!(
        matches!(e, TransportError::AuthenticationFailed { .. }),
        "{e:?}"
    );
    assert!(
        e.to_string().contains("permission denied (publickey)"),
        "{e}"
    );
}

#[test]
#[cfg_attr(
    not(any(has_sshd, ci)),
    ignore = "needs sshd: apt-get install openssh-server"
)]
fn a_changed_host_key_is_refused_naming_the_known_hosts_line() {
    let sshd = Sshd::start(1);
    keygen(&sshd.path("impostor"));
    let kh = sshd.path("known_hosts");
    std::fs::write(
        &kh,
        format!(
            "# first line\n[{}]:{} {}\n",
            sshd.addrs[0],
            sshd.port,
            pubkey(&sshd.path("impostor"))
        ),
    )
    .unwrap();
    let e = connect(&sshd.settings()).err().expect("refused");
    assert!(
        e.to_string()
            .contains(&format!("ED25519 key in {}:2", kh.display())),
        "{e}"
    );
    assert!(
        matches!(e, TransportError::HostKeyChanged { line: 2, .. }),
        "{e:?}"
    );
}

#[test]
#[cfg_attr(
    not(any(has_sshd, ci)),
    ignore = "needs sshd: apt-get install openssh-server"
)]
fn an_unknown_host_key_is_refused_under_strict_and_recorded_under_accept_new() {
    let sshd = Sshd::start(1);
    std::fs::write(sshd.path("known_hosts"), "").unwrap();
    let e = connect(&sshd.settings()).err().expect("refused");
    assert!(matches!(e, TransportError::HostKeyUnknown { .. }), "{e:?}");
    assert!(e.to_string().contains("accept-new"), "{e}");

    let mut s = sshd.settings();
    s.known_hosts = KnownHostsPolicy::AcceptNew;
    let host = connect(&s).expect("accept-new connects");
    rt().block_on(host.close());
    let recorded = std::fs::read_to_string(sshd.path("known_hosts")).unwrap();
    assert!(
        recorded.contains(&pubkey(&sshd.path("host_key"))),
        "{recorded}"
    );
}

#[test]
#[cfg_attr(
    not(any(has_sshd, ci)),
    ignore = "needs sshd: apt-get install openssh-server"
)]
fn a_hanging_command_fails_at_its_deadline_and_close_still_returns() {
    let sshd = Sshd::start(1);
    let socket_dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let host = dialed(&sshd.settings(), socket_dir.path()).await.unwrap();
        let cmd = Cmd::new("sleep 120").timeout(Duration::from_millis(300));
        let e = host.run(&cmd, None).await.unwrap_err();
        assert!(matches!(e, TransportError::CommandTimeout { .. }), "{e:?}");
        assert!(
            e.to_string()
                .contains("`sleep` did not finish within 0.3 s"),
            "{e}"
        );
        host.close().await;
    });
    master_ends(
        "the ssh master ends with close after a hung command",
        socket_dir.path(),
    );
}

#[test]
#[cfg_attr(
    not(any(has_sshd, ci)),
    ignore = "needs sshd: apt-get install openssh-server"
)]
fn a_jump_host_carries_the_connection_with_the_same_known_hosts() {
    let sshd = Sshd::start(2);
    let mut s = sshd.settings();
    s.host = sshd.addrs[1].clone();
    s.jump_hosts = vec![format!("root@{}:{}", sshd.addrs[0], sshd.port)];
    let host = connect(&s).expect("connects through the jump host");
    let seen = ssh_connection_seen_by(host);
    // The target saw the connection come from the jump host's forward.
    assert!(
        seen.contains(&format!("{} {}", sshd.addrs[1], sshd.port)),
        "{seen}"
    );
    assert_eq!(
        sshd.accepted_logins(),
        2,
        "one login to the jump host, one to the target"
    );
}

#[test]
#[cfg_attr(
    not(any(has_sshd, ci)),
    ignore = "needs sshd: apt-get install openssh-server"
)]
fn hosts_behind_a_bastion_that_drops_an_eleventh_pending_login_all_connect() {
    // A bastion as strict as OpenSSH's default gets past 10 pending logins.
    let bastion = Sshd::start_with(1, "MaxStartups 10\n");
    // One sshd listens on at most 16 addresses.
    let targets = [
        Sshd::start_with(15, "MaxStartups 100\n"),
        Sshd::start_with(15, "MaxStartups 100\n"),
    ];
    let hosts = 30;
    // One user key and one known_hosts for the three servers.
    let (first, second) = (&targets[0], &targets[1]);
    for other in [&bastion, second] {
        std::fs::copy(first.path("user_key.pub"), other.path("authorized_keys")).unwrap();
    }
    let known: String = [first, second, &bastion]
        .iter()
        .map(|s| std::fs::read_to_string(s.path("known_hosts")).unwrap())
        .collect();
    std::fs::write(first.path("known_hosts"), known).unwrap();
    let settings: Vec<SshSettings> = targets
        .iter()
        .flat_map(|t| t.addrs.iter().map(move |a| (t.port, a)))
        .map(|(port, a)| {
            let mut s = first.settings();
            s.host = a.clone();
            s.port = port;
            s.jump_hosts = vec![format!("root@{}:{}", bastion.addrs[0], bastion.port)];
            s
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let connected = runtime.block_on(async {
        let logins = settings.iter().enumerate().map(|(i, s)| async move {
            let dir = tempfile::tempdir().unwrap().keep();
            let r = SshHost::connect_with(&format!("n{i}"), s, &dir.join("c"), true).await;
            if let Ok(h) = &r {
                h.close().await;
            }
            r.map(|_| ()).map_err(|e| e.to_string())
        });
        futures_util::future::join_all(logins).await
    });
    let failed: Vec<&String> = connected.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "{} of {hosts} failed: {failed:?}",
        failed.len()
    );
    assert_eq!(bastion.accepted_logins(), hosts);
}

/// sudo is not installed here and CI may have no user to give it: a stand-in
/// `sudo` first on the session's PATH answers exactly as sudo does without a
/// NOPASSWD rule (`sudo: a password is required`, exit 1).
#[test]
#[cfg_attr(
    not(any(has_sshd, ci)),
    ignore = "needs sshd: apt-get install openssh-server"
)]
fn sudo_needing_a_password_is_named() {
    let sshd = Sshd::start(1);
    let bin = sshd.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(
        bin.join("sudo"),
        "#!/bin/sh\necho \"$*\" > \"$(dirname \"$0\")/argv\"\necho 'sudo: a password is required' >&2\nexit 1\n",
    )
    .unwrap();
    Command::new("chmod")
        .arg("+x")
        .arg(bin.join("sudo"))
        .status()
        .unwrap();
    let mut s = sshd.settings();
    s.sudo = true;
    let host = connect(&s).unwrap();
    let e = rt()
        .block_on(async {
            let r = host
                .run(&Cmd::new("cat /etc/kubernetes/admin.conf"), None)
                .await;
            host.close().await;
            r
        })
        .unwrap_err();
    assert!(
        matches!(e, TransportError::SudoPasswordRequired { .. }),
        "{e:?}"
    );
    assert!(
        e.to_string().contains("sudo needs a password for root"),
        "{e}"
    );
    let argv = std::fs::read_to_string(bin.join("argv")).unwrap();
    assert_eq!(argv, "-n sh -c cat /etc/kubernetes/admin.conf\n");
}

#[test]
#[cfg_attr(
    not(any(has_sshd, ci)),
    ignore = "needs sshd: apt-get install openssh-server"
)]
fn gt_dials_unless_switched_off_and_a_killed_gt_leaves_no_ssh_master_behind() {
    let sshd = Sshd::start(1);
    let config = sshd.path("cluster.toml");
    // An ssh_config of its own: this machine's files cannot make gt step aside.
    let ssh_config = sshd.path("ssh_config");
    std::fs::write(&ssh_config, "ServerAliveInterval 30\n").unwrap();
    std::fs::write(
        &config,
        format!(
            r#"[cluster]
name = "t"
kubernetes_version = "1.32"
endpoint = "{addr}:6443"
pod_cidr = "192.168.0.0/16"
service_cidr = "172.16.0.0/20"
[cluster.cni]
name = "calico"
manifest = "https://example.invalid/calico.yaml"
[defaults]
arch = "arm64"
[defaults.ssh]
port = {port}
identity_file = "{key}"
known_hosts_file = "{kh}"
config_file = "{cfg}"
[nodes.solo]
role = "control-plane"
address = "{addr}"
"#,
            addr = sshd.addrs[0],
            port = sshd.port,
            key = sshd.path("user_key").display(),
            kh = sshd.path("known_hosts").display(),
            cfg = ssh_config.display(),
        ),
    )
    .unwrap();
    let master = sshd.addrs[0].clone();
    for (logins, switch) in [(1, None), (2, Some("off"))] {
        let mut test = Test::new()
            .config(&config)
            .args(["exec", "solo", "--", "sleep 60"]);
        test = match switch {
            Some(value) => test.env("GT_SSH_DIAL", value),
            None => test.env_remove("GT_SSH_DIAL"),
        };
        let mut gt = test.spawn();
        eventually_within(
            "gt connects (an ssh master, a login)",
            Duration::from_secs(10),
            || ssh_processes_mentioning(&master) > 0 && sshd.accepted_logins() == logins,
        );
        let (line, stdin) = ssh_master_mentioning(&master);
        let dials = line.contains(" -o ProxyCommand=- ") && stdin.starts_with("socket:[");
        assert_eq!(dials, switch.is_none(), "{line} (stdin {stdin})");
        gt.kill().unwrap();
        gt.wait().unwrap();
        eventually_within(
            "the ssh master ends with the killed gt",
            Duration::from_secs(5),
            || ssh_processes_mentioning(&master) == 0,
        );
    }
}
