//! How gt reaches each node: `connection`, `[defaults.ssh]` and
//! `[defaults.local]`, merged under each node's own `ssh` and `local`.

use super::table::{as_table_like, value_span, TableLike};
use crate::spec::load::Loader;
use crate::spec::tree::Item;
use crate::spec::{
    format_duration, parse_go_duration, Arch, Connection, KnownHostsPolicy, LocalSettings,
    SshSettings,
};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

const DEFAULTS_KEYS: &[&str] = &["arch", "connection", "ssh", "local", "host"];
const SSH_KEYS: &[&str] = &[
    "user",
    "port",
    "identity_file",
    "jump_hosts",
    "config_file",
    "connect_timeout",
    "known_hosts",
    "known_hosts_file",
    "sudo",
];
const LOCAL_KEYS: &[&str] = &["env", "shell"];

/// What `[defaults]` gives every node.
#[derive(Default)]
pub(super) struct Defaults {
    pub(super) arch: Option<Arch>,
    pub(super) host: super::host::RawHost,
    /// `host` over gt's defaults: what every node without a host table of
    /// its own shares.
    pub(super) shared_host: std::sync::Arc<crate::spec::HostSettings>,
    connection: ConnKind,
    ssh: RawSsh,
    local: RawLocal,
}

/// An SSH or local setting as written, before defaults are merged.
#[derive(Default, Clone)]
struct RawSsh {
    host: Option<String>,
    user: Option<String>,
    port: Option<u16>,
    identity_file: Option<PathBuf>,
    jump_hosts: Option<Vec<String>>,
    config_file: Option<PathBuf>,
    connect_timeout: Option<Duration>,
    known_hosts: Option<KnownHostsPolicy>,
    known_hosts_file: Option<PathBuf>,
    sudo: Option<bool>,
}

impl RawSsh {
    fn over(self, base: &RawSsh) -> RawSsh {
        RawSsh {
            host: self.host.or_else(|| base.host.clone()),
            user: self.user.or_else(|| base.user.clone()),
            port: self.port.or(base.port),
            identity_file: self.identity_file.or_else(|| base.identity_file.clone()),
            jump_hosts: self.jump_hosts.or_else(|| base.jump_hosts.clone()),
            config_file: self.config_file.or_else(|| base.config_file.clone()),
            connect_timeout: self.connect_timeout.or(base.connect_timeout),
            known_hosts: self.known_hosts.or(base.known_hosts),
            known_hosts_file: self
                .known_hosts_file
                .or_else(|| base.known_hosts_file.clone()),
            sudo: self.sudo.or(base.sudo),
        }
    }

    fn resolve(self, address: &IpAddr) -> SshSettings {
        let user = self.user.unwrap_or_else(|| "root".into());
        SshSettings {
            host: self.host.unwrap_or_else(|| address.to_string()),
            sudo: self.sudo.unwrap_or(user != "root"),
            user,
            port: self.port.unwrap_or(22),
            identity_file: self.identity_file,
            jump_hosts: self.jump_hosts.unwrap_or_default(),
            config_file: self.config_file,
            connect_timeout: self.connect_timeout.unwrap_or(Duration::from_secs(5)),
            known_hosts: self.known_hosts.unwrap_or(KnownHostsPolicy::Strict),
            known_hosts_file: self.known_hosts_file,
        }
    }
}

#[derive(Default, Clone)]
struct RawLocal {
    env: BTreeMap<String, String>,
    shell: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, Default)]
enum ConnKind {
    #[default]
    Ssh,
    Local,
}

/// A node's connection as written, merged over `[defaults]`; it becomes a
/// `Connection` once the node's address is known.
pub(super) struct NodeConnection {
    kind: ConnKind,
    ssh: RawSsh,
    local: RawLocal,
}

impl NodeConnection {
    pub(super) fn resolve(self, address: &IpAddr) -> Connection {
        match self.kind {
            ConnKind::Ssh => Connection::Ssh(self.ssh.resolve(address)),
            ConnKind::Local => Connection::Local(LocalSettings {
                env: self.local.env,
                shell: self.local.shell.unwrap_or_else(|| PathBuf::from("/bin/sh")),
            }),
        }
    }
}

impl Loader<'_> {
    /// `[defaults]`: what every node inherits.
    pub(super) fn defaults(&mut self, item: Option<&Item>) -> Defaults {
        let mut d = Defaults::default();
        let Some(item) = item else {
            return d;
        };
        let Some(t) = as_table_like(item) else {
            self.type_error(item, "defaults", "a table");
            return d;
        };
        self.check_keys(&t, DEFAULTS_KEYS, "[defaults]");
        d.arch = self.opt_parsed(&t, "arch", "[defaults]", super::parse_arch);
        if let Some(c) = self.opt_parsed(&t, "connection", "[defaults]", parse_conn) {
            d.connection = c;
        }
        if let Some(s) = t.get("ssh") {
            d.ssh = self.ssh(s, SSH_KEYS, "[defaults.ssh]");
        }
        if let Some(l) = t.get("local") {
            d.local = self.local(l, "[defaults.local]");
        }
        if let Some(h) = t.get("host") {
            d.host = self.host_table(h, "[defaults.host]");
            d.shared_host = std::sync::Arc::new(super::host::RawHost::default().over(&d.host));
        }
        d
    }

    /// A node's `connection`, `ssh` and `local` keys over the defaults.
    pub(super) fn node_connection(
        &mut self,
        t: &dyn TableLike,
        name: &str,
        what: &str,
        defaults: &Defaults,
    ) -> NodeConnection {
        let kind = self
            .opt_parsed(t, "connection", what, parse_conn)
            .unwrap_or(defaults.connection);
        let ssh = t
            .get("ssh")
            .map(|s| {
                // A node's ssh table takes every [defaults.ssh] key, and `host`.
                let keys: Vec<&str> = SSH_KEYS.iter().copied().chain(["host"]).collect();
                self.ssh(s, &keys, &format!("[nodes.{name}.ssh]"))
            })
            .unwrap_or_default()
            .over(&defaults.ssh);
        let mut local = defaults.local.clone();
        if let Some(l) = t.get("local") {
            let own = self.local(l, &format!("[nodes.{name}.local]"));
            local.env.extend(own.env);
            local.shell = own.shell.or(local.shell);
        }
        NodeConnection { kind, ssh, local }
    }

    fn ssh(&mut self, item: &Item, allowed: &[&str], what: &str) -> RawSsh {
        let mut raw = RawSsh::default();
        let Some(t) = as_table_like(item) else {
            self.type_error(item, what, "a table");
            return raw;
        };
        self.check_keys(&t, allowed, what);
        raw.host = self.opt_parsed(&t, "host", what, |s| ssh_word(s, "host").map(|()| s.into()));
        raw.user = self.opt_parsed(&t, "user", what, |s| ssh_word(s, "user").map(|()| s.into()));
        if let Some(item) = t.get("port") {
            match item.as_integer() {
                Some(p) if (1..=65535).contains(&p) => raw.port = Some(p as u16),
                _ => self.error(
                    value_span(Some(item)),
                    format!("port in {what} must be an integer from 1 to 65535"),
                    Some(match item.as_str().and_then(|s| s.parse::<u16>().ok()) {
                        Some(p) if p > 0 => format!("write it without quotes: port = {p}"),
                        _ => "write e.g. port = 22".into(),
                    }),
                ),
            }
        }
        raw.identity_file = self.opt_str(&t, "identity_file").map(|p| self.path(&p));
        raw.config_file = self.opt_str(&t, "config_file").map(|p| self.path(&p));
        raw.known_hosts_file = self.opt_str(&t, "known_hosts_file").map(|p| self.path(&p));
        if let Some(item) = t.get("jump_hosts") {
            let hops: Vec<(String, std::ops::Range<usize>)> = if let Some(s) = item.as_str() {
                vec![(s.to_string(), value_span(Some(item)))]
            } else {
                self.str_array(item, &format!("{what} jump_hosts"))
            };
            let mut good = Vec::new();
            for (hop, span) in hops {
                match jump_host(&hop) {
                    Ok(()) => good.push(hop),
                    Err(e) => {
                        let (problem, fix) = e.split_once("; ").unwrap_or((&e, ""));
                        self.error(
                            span,
                            format!("jump host in {what}: {problem}"),
                            Some(fix.to_string()),
                        );
                    }
                }
            }
            raw.jump_hosts = Some(good);
        }
        raw.connect_timeout = self.opt_parsed(&t, "connect_timeout", what, |s| {
            let d = parse_go_duration(s)
                .map_err(|e| format!("{e}; write a Go duration, e.g. \"5s\""))?;
            if d.is_zero() {
                Err("0 would give up before connecting; write e.g. \"5s\"".into())
            } else if d > MAX_CONNECT_TIMEOUT {
                Err(format!(
                    "{} is longer than gt waits for a connection; write at most \"{}\", e.g. \"5s\"",
                    format_duration(d),
                    format_duration(MAX_CONNECT_TIMEOUT)
                ))
            } else {
                Ok(d)
            }
        });
        raw.known_hosts = self.opt_parsed(&t, "known_hosts", what, |s| match s {
            "strict" => Ok(KnownHostsPolicy::Strict),
            "accept-new" => Ok(KnownHostsPolicy::AcceptNew),
            "no" | "off" | "insecure" | "accept-all" | "ignore" => Err(format!(
                "known_hosts = \"{s}\" would accept any host key, which gt never does; write \"strict\" (the default) or \"accept-new\""
            )),
            _ => Err(format!("known_hosts `{s}` is not valid; write \"strict\" or \"accept-new\"")),
        });
        raw.sudo = self.opt_bool(&t, "sudo");
        raw
    }

    fn local(&mut self, item: &Item, what: &str) -> RawLocal {
        let mut raw = RawLocal::default();
        let Some(t) = as_table_like(item) else {
            self.type_error(item, what, "a table");
            return raw;
        };
        self.check_keys(&t, LOCAL_KEYS, what);
        if let Some(env) = t.get("env") {
            match as_table_like(env) {
                Some(et) => {
                    for (k, kspan, v) in et.entries() {
                        match v.as_str() {
                            Some(_) if !env_name(k) => self.error(
                                kspan.unwrap_or(0..0),
                                format!("`{}` in {what} env is not an environment variable name", k.escape_debug()),
                                Some("use letters, digits and '_', not starting with a digit, e.g. PATH".into()),
                            ),
                            Some(s) if s.contains(|c: char| c.is_control()) => self.error(
                                value_span(Some(v)),
                                format!("{what} env.{k} contains a control character"),
                                Some("remove it: an environment value here is one line of plain text".into()),
                            ),
                            Some(s) => {
                                raw.env.insert(k.to_string(), s.to_string());
                            }
                            None => self.type_error(v, &format!("{what} env.{k}"), "a string"),
                        }
                    }
                }
                None => self.type_error(env, &format!("{what} env"), "a table of strings"),
            }
        }
        raw.shell = self.opt_str(&t, "shell").map(|p| self.path(&p));
        raw
    }
}

/// A name `env` can pass on: the shell would refuse others, or split them.
fn env_name(k: &str) -> bool {
    !k.is_empty()
        && !k.starts_with(|c: char| c.is_ascii_digit())
        && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// ssh waits this long per hop; more is a typo (and a multiplication overflow).
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// A word gt passes to ssh as it is (a host, a user): one that begins with
/// `-` would be read as an option, and blanks or control characters would
/// split it or reach a generated ssh_config as extra lines.
fn ssh_word(s: &str, what: &str) -> Result<(), String> {
    let example = if what == "user" {
        "\"root\""
    } else {
        "\"10.4.0.15\" or \"fenn.goldentooth.net\""
    };
    if s.is_empty() {
        Err(format!("the {what} is empty; write one, e.g. {example}"))
    } else if s.starts_with('-') {
        Err(format!(
            "{what} `{}` begins with `-`, which ssh would read as an option; write a {what} name, e.g. {example}",
            s.escape_debug()
        ))
    } else if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Err(format!(
            "{what} `{}` contains a blank or a control character; write a {what} name without them, e.g. {example}",
            s.escape_debug()
        ))
    } else {
        Ok(())
    }
}

/// One ProxyJump hop, `[user@]host[:port]`: ssh gets the hops joined by
/// commas, so a comma would smuggle in another hop.
fn jump_host(hop: &str) -> Result<(), String> {
    const FORM: &str =
        "write each hop as its own string, [user@]host[:port], e.g. \"admin@bastion:22\"";
    if hop.contains(',') {
        return Err(format!("`{}` contains a comma; {FORM}", hop.escape_debug()));
    }
    let (user, host) = match hop.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, hop),
    };
    for (part, word) in [
        (Some(hop), "jump host"),
        (user, "user"),
        (Some(host), "host"),
    ] {
        if let Some(p) = part {
            ssh_word(p, word).map_err(|e| {
                let problem = e
                    .split_once("; ")
                    .map_or(e.as_str(), |(p, _)| p)
                    .to_string();
                format!("{problem} (in `{}`); {FORM}", hop.escape_debug())
            })?;
        }
    }
    Ok(())
}

fn parse_conn(s: &str) -> Result<ConnKind, String> {
    match s {
        "ssh" => Ok(ConnKind::Ssh),
        "local" => Ok(ConnKind::Local),
        _ => Err(format!(
            "connection `{s}` is not valid; write \"ssh\" or \"local\""
        )),
    }
}
