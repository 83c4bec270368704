//! Why a host could not be reached or used, one variant per failure class,
//! each with its remedy.

use super::SettingNames;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error(
        "{host}: connection refused by {address} after {after}: is sshd running there, on that port? \
         (check `systemctl status ssh` on the host and {port})",
        port = .names.port
    )]
    ConnectionRefused {
        host: String,
        address: String,
        after: String,
        names: &'static SettingNames,
    },

    #[error(
        "{host}: no answer from {address} after {after}: the host may be down, or a firewall drops \
         the connection; if the network is just slow, raise {timeout}",
        timeout = .names.connect_timeout
    )]
    ConnectTimeout {
        host: String,
        address: String,
        after: String,
        names: &'static SettingNames,
    },

    #[error(
        "{host}: `{command}` did not finish within {after}: the host accepted the connection but \
         the command hung; gt stopped waiting for it"
    )]
    CommandTimeout {
        host: String,
        command: String,
        after: String,
    },

    #[error(
        "{host}: authentication failed for {user}@{address} ({detail}): check {identity} \
         (or your ssh-agent) and that its public key is in {user}'s \
         ~/.ssh/authorized_keys on the host",
        identity = .names.identity_file
    )]
    AuthenticationFailed {
        host: String,
        user: String,
        address: String,
        detail: String,
        names: &'static SettingNames,
    },

    #[error(
        "{host}: the host key of {address} has CHANGED: it does not match the {key_type} key in \
         {file}:{line}. If the host was reinstalled, remove the old key with \
         `ssh-keygen -f {file} -R '{known_as}'` and connect again; if not, someone may be \
         intercepting the connection"
    )]
    HostKeyChanged {
        host: String,
        address: String,
        /// How known_hosts names the host: `10.4.0.11` or `[10.4.0.11]:2222`.
        known_as: String,
        key_type: String,
        file: String,
        line: u32,
    },

    #[error(
        "{host}: the host key of {address} is not in {file} and {strict}: \
         add it after checking its fingerprint (`ssh-keyscan -p {port} {ip} >> {file}`), or set \
         {accept_new} to record it on first contact",
        strict = .names.known_hosts_strict,
        accept_new = .names.known_hosts_accept_new
    )]
    HostKeyUnknown {
        host: String,
        address: String,
        ip: String,
        port: u16,
        file: String,
        names: &'static SettingNames,
    },

    #[error(
        "{host}: sudo needs a password for {user}, and gt never prompts (it runs `sudo -n`): \
         give {user} passwordless sudo (NOPASSWD in /etc/sudoers.d/) or connect as root"
    )]
    SudoPasswordRequired { host: String, user: String },

    #[error(
        "{command} is not installed on {host} (exit 127: {stderr}): install it, or make sure it is \
         on the PATH of non-interactive shells there"
    )]
    CommandNotFound {
        host: String,
        command: String,
        stderr: String,
    },

    #[error(
        "{host}: the output of `{command}` exceeded {limit} on {stream}; gt stopped the command \
         and kept none of it (it reads at most {limit} of a command's stdout, and as much of \
         its stderr)"
    )]
    OutputTooLarge {
        host: String,
        command: String,
        stream: &'static str,
        limit: String,
    },

    #[error("{host}: unreachable: {reason}")]
    Unreachable { host: String, reason: String },

    #[error("{host}: ssh failed: {message}")]
    Ssh { host: String, message: String },

    #[error("could not {what}: {reason}")]
    Local { what: String, reason: String },

    #[error("{host} is not {of_run}", of_run = .names.host_of_run)]
    UnknownHost {
        host: String,
        names: &'static SettingNames,
    },
}

impl TransportError {
    /// The node the error is about (`None` for local failures of gt itself).
    pub fn host(&self) -> Option<&str> {
        use TransportError::*;
        match self {
            ConnectionRefused { host, .. }
            | ConnectTimeout { host, .. }
            | CommandTimeout { host, .. }
            | OutputTooLarge { host, .. }
            | AuthenticationFailed { host, .. }
            | HostKeyChanged { host, .. }
            | HostKeyUnknown { host, .. }
            | SudoPasswordRequired { host, .. }
            | CommandNotFound { host, .. }
            | Unreachable { host, .. }
            | Ssh { host, .. }
            | UnknownHost { host, .. } => Some(host),
            Local { .. } => None,
        }
    }

    /// The same error, its remedies naming the settings as `names` does.
    pub fn named_as(mut self, names: &'static SettingNames) -> Self {
        use TransportError::*;
        match &mut self {
            ConnectionRefused { names: n, .. }
            | ConnectTimeout { names: n, .. }
            | AuthenticationFailed { names: n, .. }
            | HostKeyUnknown { names: n, .. }
            | UnknownHost { names: n, .. } => *n = names,
            _ => {}
        }
        self
    }

    /// The message without the leading `host: `, for places that already name
    /// the host (a facts entry, a table row).
    pub fn reason(&self) -> String {
        // The facts field and the table column already say "unreachable".
        if let TransportError::Unreachable { reason, .. } = self {
            return reason.clone();
        }
        let full = self.to_string();
        match self.host() {
            Some(h) => full
                .strip_prefix(&format!("{h}: "))
                .map(str::to_string)
                .unwrap_or(full),
            None => full,
        }
    }
}

/// What ssh was asked to connect to, for classifying its failure.
#[derive(Debug, Clone)]
pub struct SshTarget<'a> {
    pub host: &'a str,
    pub ip: &'a str,
    pub port: u16,
    pub user: &'a str,
    /// Where the host key was looked up (for messages).
    pub known_hosts_file: &'a str,
}

/// Classifies a failed `ssh` (exit 255) from what it logged.
pub fn classify_ssh_failure(t: &SshTarget<'_>, log: &str, elapsed: Duration) -> TransportError {
    let host = t.host.to_string();
    let address = format!("{}:{}", t.ip, t.port);
    let after = super::secs(elapsed);
    if let Some((key_type, file, line)) = offending_key(log) {
        let known_as = if t.port == 22 {
            t.ip.to_string()
        } else {
            format!("[{}]:{}", t.ip, t.port)
        };
        return TransportError::HostKeyChanged {
            host,
            address,
            known_as,
            key_type,
            file,
            line,
        };
    }
    if log.contains("REMOTE HOST IDENTIFICATION HAS CHANGED") {
        return TransportError::HostKeyChanged {
            host,
            address: address.clone(),
            known_as: address,
            key_type: "host".into(),
            file: t.known_hosts_file.to_string(),
            line: 0,
        };
    }
    if log.contains("host key is known for") || log.contains("Host key verification failed") {
        return TransportError::HostKeyUnknown {
            host,
            address,
            ip: t.ip.to_string(),
            port: t.port,
            file: t.known_hosts_file.to_string(),
            names: Default::default(),
        };
    }
    if let Some(line) = log.lines().find(|l| l.contains("Permission denied")) {
        let detail = line
            .split_once("Permission denied")
            .map(|(_, rest)| format!("permission denied{}", rest.trim_end_matches('.')))
            .unwrap_or_else(|| line.trim().to_string());
        return TransportError::AuthenticationFailed {
            host,
            user: t.user.to_string(),
            address,
            detail,
            names: Default::default(),
        };
    }
    // ssh names no address for a connection it was handed (gt's relay,
    // a jump's forwarding): the host's is the one it means.
    let last = last_meaningful_line(log)
        .replace("UNKNOWN port 65535", &format!("{} port {}", t.ip, t.port));
    // A refusal by a jump host's forward reads "connect failed: Connection refused".
    if log.contains("Connection refused") && !log.contains("open failed") {
        return TransportError::ConnectionRefused {
            host,
            address,
            after,
            names: Default::default(),
        };
    }
    if log.contains("timed out") {
        return TransportError::ConnectTimeout {
            host,
            address,
            after,
            names: Default::default(),
        };
    }
    if log.contains("Could not resolve hostname")
        || log.contains("No route to host")
        || log.contains("Network is unreachable")
        || log.contains("open failed")
        || log.contains("Connection closed by")
        || log.contains("Connection reset")
    {
        return TransportError::Unreachable {
            host,
            reason: format!("{last} (after {after})"),
        };
    }
    TransportError::Ssh {
        host,
        message: if last.is_empty() {
            format!("ssh exited 255 without a message after {after}")
        } else {
            last
        },
    }
}

/// `Offending ED25519 key in /root/.ssh/known_hosts:3` → (type, file, line).
fn offending_key(log: &str) -> Option<(String, String, u32)> {
    log.lines().find_map(|l| {
        let rest = l.trim().strip_prefix("Offending ")?;
        let (key_type, rest) = rest.split_once(" key in ")?;
        let (file, line) = rest.trim().rsplit_once(':')?;
        Some((key_type.to_string(), file.to_string(), line.parse().ok()?))
    })
}

/// The last line that is not ssh's decoration, for generic messages.
fn last_meaningful_line(log: &str) -> String {
    log.lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with('@'))
        .unwrap_or("")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> SshTarget<'static> {
        SshTarget {
            host: "fenn",
            ip: "127.4.0.15",
            port: 2222,
            user: "root",
            known_hosts_file: "/lab/known_hosts",
        }
    }

    fn classify(log: &str) -> TransportError {
        classify_ssh_failure(&target(), log, Duration::from_millis(2500))
    }

    #[test]
    fn refused_connection_says_after_how_long() {
        let e = classify("ssh: connect to host 127.4.0.15 port 2222: Connection refused\n");
        assert!(
            matches!(e, TransportError::ConnectionRefused { .. }),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .contains("connection refused by 127.4.0.15:2222 after 2.5 s"),
            "{e}"
        );
    }

    #[test]
    fn banner_timeout_is_a_connect_timeout() {
        let e = classify("Connection timed out during banner exchange\nConnection to 127.4.0.15 port 2222 timed out\n");
        assert!(matches!(e, TransportError::ConnectTimeout { .. }), "{e:?}");
    }

    #[test]
    fn wrong_key_is_an_authentication_failure() {
        let e = classify("root@127.4.0.15: Permission denied (publickey).\n");
        assert!(
            matches!(e, TransportError::AuthenticationFailed { .. }),
            "{e:?}"
        );
        assert!(
            e.to_string().contains("(permission denied (publickey))"),
            "{e}"
        );
    }

    // Captured from OpenSSH 9.2 with a rewritten known_hosts line.
    const CHANGED: &str = "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!
Someone could be eavesdropping on you right now (man-in-the-middle attack)!
It is also possible that a host key has just been changed.
The fingerprint for the ED25519 key sent by the remote host is
SHA256:neFCC6sNiwH9d/5dJoz9XbXA013/yPNffRgdlYIJygM.
Please contact your system administrator.
Add correct host key in /lab/known_hosts to get rid of this message.
Offending ED25519 key in /lab/known_hosts:3
  remove with:
  ssh-keygen -f \"/lab/known_hosts\" -R \"[127.4.0.15]:2222\"
Host key for [127.4.0.15]:2222 has changed and you have requested strict checking.
Host key verification failed.
";

    #[test]
    fn changed_host_key_names_the_known_hosts_line() {
        let e = classify(CHANGED);
        assert_eq!(
            e,
            TransportError::HostKeyChanged {
                host: "fenn".into(),
                address: "127.4.0.15:2222".into(),
                known_as: "[127.4.0.15]:2222".into(),
                key_type: "ED25519".into(),
                file: "/lab/known_hosts".into(),
                line: 3,
            }
        );
        assert!(
            e.to_string().contains("ED25519 key in /lab/known_hosts:3"),
            "{e}"
        );
    }

    #[test]
    fn unknown_host_key_under_strict_says_how_to_add_it() {
        let e = classify(
            "No ED25519 host key is known for [127.4.0.15]:2222 and you have requested strict checking.\nHost key verification failed.\n",
        );
        assert!(matches!(e, TransportError::HostKeyUnknown { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(
            msg.contains("ssh-keyscan -p 2222 127.4.0.15 >> /lab/known_hosts"),
            "{msg}"
        );
        assert!(msg.contains("accept-new"), "{msg}");
    }

    #[test]
    fn a_jump_host_that_cannot_reach_the_target_is_unreachable_not_refused() {
        let e = classify(
            "channel 0: open failed: connect failed: Connection refused\nstdio forwarding failed\nConnection closed by UNKNOWN port 65535\n",
        );
        assert!(matches!(e, TransportError::Unreachable { .. }), "{e:?}");
        assert!(
            e.to_string()
                .contains("Connection closed by 127.4.0.15 port 2222"),
            "{e}"
        );
    }

    #[test]
    fn reason_drops_the_host_prefix() {
        let e = classify("ssh: connect to host 127.4.0.15 port 2222: Connection refused\n");
        assert!(
            e.reason().starts_with("connection refused by"),
            "{}",
            e.reason()
        );
    }
}
