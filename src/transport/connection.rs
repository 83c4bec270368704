//! What transport needs to reach one host: its name and how to connect.
//! The configuration (cluster.toml) fills these in; transport never reads it.

use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// One host of a run: the name messages and output prefixes use, and how to
/// reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    pub connection: Connection,
}

/// How gt reaches a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Connection {
    Ssh(SshSettings),
    /// Commands run as local processes with this environment added
    /// (Ansible's `ansible_connection=local`): gt running on the node itself,
    /// or the lab's simulated hosts.
    Local(LocalSettings),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SshSettings {
    /// Where to connect: an address or a name ssh resolves.
    pub host: String,
    pub user: String,
    pub port: u16,
    pub identity_file: Option<PathBuf>,
    /// ProxyJump hops, `[user@]host[:port]`, in order.
    pub jump_hosts: Vec<String>,
    /// An ssh_config file (`ssh -F`); the user's own ~/.ssh/config otherwise.
    pub config_file: Option<PathBuf>,
    pub connect_timeout: Duration,
    pub known_hosts: KnownHostsPolicy,
    /// A known_hosts file instead of the user's own.
    pub known_hosts_file: Option<PathBuf>,
    /// Prefix commands with `sudo -n`.
    pub sudo: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KnownHostsPolicy {
    /// Unknown or changed host keys are refused (StrictHostKeyChecking=yes).
    Strict,
    /// Unknown keys are recorded, changed keys refused (accept-new).
    AcceptNew,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocalSettings {
    /// Variables added to the environment of every command (e.g. GT_HOST_ROOT, PATH).
    pub env: BTreeMap<String, String>,
    /// The shell that runs each command as `SHELL -c CMD` (Ansible's `ansible_shell_executable`).
    pub shell: PathBuf,
}

/// How the user's configuration names the settings an error tells them to
/// check. Transport knows the settings, not the file they came from: whoever
/// read that file gives the names (`SettingNames::GENERIC` names the
/// settings themselves).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettingNames {
    /// `SshSettings::port`, as in "check ... and {port}".
    pub port: &'static str,
    /// `SshSettings::connect_timeout`, as in "raise {connect_timeout}".
    pub connect_timeout: &'static str,
    /// `SshSettings::identity_file`, as in "check {identity_file} (or your ssh-agent)".
    pub identity_file: &'static str,
    /// The strict known-hosts policy in force, as in "the key is not in FILE and {..}".
    pub known_hosts_strict: &'static str,
    /// The accept-new policy, as in "or set {..} to record it on first contact".
    pub known_hosts_accept_new: &'static str,
    /// What the run's hosts are, as in "HOST is not {..}".
    pub host_of_run: &'static str,
}

impl SettingNames {
    /// The settings named as themselves, for callers that read no file.
    pub const GENERIC: SettingNames = SettingNames {
        port: "the SSH port gt was given",
        connect_timeout: "the SSH connect timeout",
        identity_file: "the SSH identity file",
        known_hosts_strict: "host keys are checked strictly",
        known_hosts_accept_new: "the known-hosts policy to accept-new",
        host_of_run: "one of the hosts gt was given",
    };
}

// Errors hold a reference: every connection error stays small.
impl Default for &'static SettingNames {
    fn default() -> Self {
        &SettingNames::GENERIC
    }
}
