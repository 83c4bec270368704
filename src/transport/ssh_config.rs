//! Whether the user's ssh configuration could make ssh connect differently
//! from gt's dialer (`dial.rs`). gt evaluates only what it can be sure of:
//! a directive of a keyword that changes where or how ssh connects makes gt
//! step aside, unless it sits in a `Host` block none of whose patterns can
//! match the host (`Host unix/* vsock/*` says nothing about `10.4.0.15`),
//! or in a file included from such a block (ssh applies none of it). Any
//! `Match` but `Match all` / `Match final all` makes gt step aside, as does
//! anything gt cannot follow (an unreadable file, an Include with tokens,
//! variables or character classes, nesting past ssh's own limit). Comments
//! do not count.
//!
//! The files are ssh's: the `-F` file alone when one is given, else
//! `~/.ssh/config` and `/etc/ssh/ssh_config`, with their Includes (relative
//! to `~/.ssh` from a user's file, `/etc/ssh` from the system's). Host
//! patterns are matched as ssh's readconf.c does (`*`, `?`, `!` negation),
//! more widely where that is the safe side: a pattern counts in any case.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

/// Keywords (lower case) that change the address, port, route or socket of
/// ssh's connect, or what ssh does differently once a ProxyCommand is set.
const CHANGES_THE_CONNECT: &[&str] = &[
    "proxycommand",
    "proxyjump",
    // ssh refuses `ProxyUseFdpass yes` beside `ProxyCommand -`.
    "proxyusefdpass",
    "hostname",
    "port",
    "bindaddress",
    "bindinterface",
    "addressfamily",
    "connectionattempts",
    "tcpkeepalive",
    "canonicalizehostname",
    // ssh skips the host IP check, and the loopback exemption, for a proxied login.
    "checkhostip",
    "nohostauthenticationforlocalhost",
];

/// ssh's own limit on nested Includes (readconf.c READCONF_MAX_DEPTH).
const MAX_DEPTH: usize = 16;

/// Why gt steps aside: the first line that could change the connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mention {
    pub file: PathBuf,
    pub line: usize,
    pub what: String,
}

/// Whether ssh, logging in to `host` with `config_file` (`-F`) or the
/// default files, would connect exactly as gt's dialer does. Read once per
/// process for each file and host.
pub fn leaves_connect_to_gt(config_file: Option<&Path>, host: &str) -> bool {
    #[derive(Default)]
    struct Seen {
        answers: HashMap<(Option<PathBuf>, String), bool>,
        // Every host is checked against the same files: each is read once.
        files: Files,
    }
    static SEEN: Mutex<Option<Seen>> = Mutex::new(None);
    let key = (config_file.map(Path::to_path_buf), host.to_string());
    let mut seen = SEEN.lock().expect("not poisoned");
    let seen = seen.get_or_insert_with(Seen::default);
    if let Some(known) = seen.answers.get(&key) {
        return *known;
    }
    let home = home_dir();
    let roots = roots(config_file, home.as_deref());
    let clear = mention_in(&roots, host, home.as_deref(), &mut seen.files).is_none();
    seen.answers.insert(key, clear);
    clear
}

/// The configuration files read so far (text, or why not) and the Include
/// globs listed so far.
#[derive(Default)]
struct Files {
    read: HashMap<PathBuf, Read>,
    globs: HashMap<PathBuf, Vec<PathBuf>>,
}

/// What reading a configuration file gave.
enum Read {
    Text(std::sync::Arc<str>),
    Missing,
    Unreadable(String),
}

/// The files ssh reads, each with the directory its relative Includes are in.
fn roots(config_file: Option<&Path>, home: Option<&Path>) -> Vec<(PathBuf, PathBuf)> {
    let user_dir = home
        .map(|h| h.join(".ssh"))
        .unwrap_or_else(|| PathBuf::from("~/.ssh"));
    match config_file {
        Some(f) => vec![(f.to_path_buf(), user_dir)],
        None => vec![
            (user_dir.join("config"), user_dir.clone()),
            (
                PathBuf::from("/etc/ssh/ssh_config"),
                PathBuf::from("/etc/ssh"),
            ),
        ],
    }
}

/// [`mention_in`] with nothing read yet.
#[cfg(test)]
fn first_mention(roots: &[(PathBuf, PathBuf)], host: &str, home: Option<&Path>) -> Option<Mention> {
    mention_in(roots, host, home, &mut Files::default())
}

/// The first line in `roots` (and what they include) that could change how
/// ssh connects to `host`, or that gt cannot follow; files already in
/// `files` are not read again.
fn mention_in(
    roots: &[(PathBuf, PathBuf)],
    host: &str,
    home: Option<&Path>,
    files: &mut Files,
) -> Option<Mention> {
    roots
        .iter()
        .find_map(|(file, base)| scan(file, base, host, home, 0, files).err())
}

fn scan(
    file: &Path,
    base: &Path,
    host: &str,
    home: Option<&Path>,
    depth: usize,
    files: &mut Files,
) -> Result<(), Mention> {
    let mention = |line: usize, what: String| Mention {
        file: file.to_path_buf(),
        line,
        what,
    };
    if depth > MAX_DEPTH {
        return Err(mention(0, "Includes nested too deep".into()));
    }
    let read = files
        .read
        .entry(file.to_path_buf())
        .or_insert_with(|| match std::fs::read(file) {
            Ok(bytes) => Read::Text(String::from_utf8_lossy(&bytes).into()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Read::Missing,
            Err(e) => Read::Unreadable(e.to_string()),
        });
    let text = match read {
        Read::Text(text) => std::sync::Arc::clone(text),
        // ssh reads no missing default file, and fails on a missing -F file itself.
        Read::Missing => return Ok(()),
        Read::Unreadable(e) => return Err(mention(0, format!("unreadable: {e}"))),
    };
    // Lines before the first Host apply wherever the file does: a file is
    // scanned only when what includes it may apply.
    let mut may_apply = true;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let end = line
            .find(|c: char| c.is_whitespace() || c == '=')
            .unwrap_or(line.len());
        let written = line[..end].trim_matches('"');
        let keyword = written.to_ascii_lowercase();
        let rest = line[end..].trim_start_matches(|c: char| c.is_whitespace() || c == '=');
        match keyword.as_str() {
            "host" => may_apply = host_block_may_apply(rest, host),
            "match" => {
                if !matches_everything(rest) {
                    return Err(mention(n, written.to_string()));
                }
                may_apply = true;
            }
            // ssh applies nothing of a file included from a block that does
            // not apply.
            "include" if may_apply => {
                for word in rest.split_whitespace() {
                    if word.starts_with('#') {
                        break;
                    }
                    let Some(path) = include_path(word, base, home) else {
                        return Err(mention(n, format!("Include {word}")));
                    };
                    let included = files
                        .globs
                        .entry(path.clone())
                        .or_insert_with(|| expand(&path))
                        .clone();
                    for included in included {
                        scan(&included, base, host, home, depth + 1, files)?;
                    }
                }
            }
            k if may_apply && CHANGES_THE_CONNECT.contains(&k) => {
                return Err(mention(n, written.to_string()));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Whether a `Host` line's patterns might select `host`. ssh selects it
/// when a pattern matches and no `!pattern` does; here a pattern counts in
/// any case (ssh compares the name as given, and lower-cased on a final
/// pass), a negation only when it matches both ways.
fn host_block_may_apply(patterns: &str, host: &str) -> bool {
    let lower = host.to_ascii_lowercase();
    let mut selected = false;
    for word in patterns.split_whitespace() {
        if word.starts_with('#') {
            break;
        }
        let word = word.trim_matches('"');
        match word.strip_prefix('!') {
            Some(negated) => {
                if wildcard_match(negated, host) && wildcard_match(negated, &lower) {
                    return false;
                }
            }
            None => {
                selected |= wildcard_match(&word.to_ascii_lowercase(), &lower);
            }
        }
    }
    selected
}

/// `Match all` and `Match final all` select every host (the final pass
/// differs only after a canonicalisation, which gt steps aside for).
fn matches_everything(criteria: &str) -> bool {
    let words: Vec<String> = criteria
        .split_whitespace()
        .take_while(|w| !w.starts_with('#'))
        .map(str::to_ascii_lowercase)
        .collect();
    matches!(
        words
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice(),
        ["all"] | ["final", "all"]
    )
}

/// An Include word as a path, or `None` when gt cannot tell what ssh would
/// make of it (tokens, variables, quoting, another user's home, classes).
fn include_path(word: &str, base: &Path, home: Option<&Path>) -> Option<PathBuf> {
    let word = word
        .strip_prefix('"')
        .and_then(|w| w.strip_suffix('"'))
        .unwrap_or(word);
    if word.is_empty() || word.contains(['%', '$', '"', '\'', '\\', '[', '{']) {
        return None;
    }
    if let Some(rest) = word.strip_prefix("~/") {
        return Some(home?.join(rest));
    }
    if word.starts_with('~') {
        return None;
    }
    Some(base.join(word))
}

/// The files a glob names, in lexical order (as ssh's glob(3) gives them);
/// a path without wildcards is itself.
fn expand(pattern: &Path) -> Vec<PathBuf> {
    let mut found = vec![PathBuf::new()];
    for part in pattern.components() {
        let name = part.as_os_str().to_string_lossy();
        let wild = matches!(part, Component::Normal(_)) && name.contains(['*', '?']);
        if !wild {
            for p in &mut found {
                p.push(part);
            }
            continue;
        }
        let mut next = Vec::new();
        for dir in &found {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let file = entry.file_name().to_string_lossy().into_owned();
                // glob(3) leaves dot files to patterns that start with a dot.
                if file.starts_with('.') && !name.starts_with('.') {
                    continue;
                }
                if wildcard_match(&name, &file) {
                    next.push(dir.join(&file));
                }
            }
        }
        found = next;
    }
    found.sort();
    found
}

/// `*` and `?` as glob(3) reads them within one path component.
fn wildcard_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// The home directory ssh uses (the password database's), else $HOME.
fn home_dir() -> Option<PathBuf> {
    passwd_home().or_else(|| std::env::var_os("HOME").map(PathBuf::from))
}

fn passwd_home() -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let mut buf = vec![0u8; 4096];
    // SAFETY: zeroed passwd filled by getpwuid_r from our buffer.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: buffers live for the call; `found` points into them after it.
    let rc = unsafe {
        libc::getpwuid_r(
            libc::getuid(),
            &mut pw,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut found,
        )
    };
    if rc != 0 || found.is_null() || pw.pw_dir.is_null() {
        return None;
    }
    // SAFETY: pw_dir is a C string inside `buf`, alive here.
    let dir = unsafe { std::ffi::CStr::from_ptr(pw.pw_dir) };
    Some(PathBuf::from(std::ffi::OsStr::from_bytes(dir.to_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    fn mention_in(dir: &Path, file: &Path) -> Option<(String, usize, String)> {
        mention_for("fenn", dir, file)
    }

    fn mention_for(host: &str, dir: &Path, file: &Path) -> Option<(String, usize, String)> {
        first_mention(&[(file.to_path_buf(), dir.to_path_buf())], host, Some(dir)).map(|m| {
            (
                m.file.file_name().unwrap().to_string_lossy().into_owned(),
                m.line,
                m.what,
            )
        })
    }

    #[test]
    fn settings_that_leave_the_connect_alone_and_comments_do_not_count() {
        let d = tempfile::tempdir().unwrap();
        let f = write(
            d.path(),
            "config",
            "# ProxyCommand ssh -W %h:%p gw\nHost *\n  #   Port 22\n  SendEnv LANG LC_*\n  \
             ServerAliveInterval 30\n  User=pi\n  IdentityFile ~/.ssh/id_ed25519\n",
        );
        assert_eq!(mention_in(d.path(), &f), None);
    }

    #[test]
    fn every_keyword_that_changes_the_connect_is_found_in_any_spelling() {
        let d = tempfile::tempdir().unwrap();
        for (line, keyword) in [
            ("ProxyCommand nc %h %p", "ProxyCommand"),
            ("  proxyjump bastion", "proxyjump"),
            ("HostName=10.0.0.1", "HostName"),
            ("\tPORT 2222", "PORT"),
            ("\"BindAddress\" 10.0.0.2", "BindAddress"),
            ("BindInterface eth1", "BindInterface"),
            ("AddressFamily inet6", "AddressFamily"),
            ("Match exec \"true\"", "Match"),
            ("Match host fenn", "Match"),
            ("ConnectionAttempts 3", "ConnectionAttempts"),
            ("TCPKeepAlive no", "TCPKeepAlive"),
            ("CanonicalizeHostname yes", "CanonicalizeHostname"),
            ("CheckHostIP yes", "CheckHostIP"),
            (
                "NoHostAuthenticationForLocalhost yes",
                "NoHostAuthenticationForLocalhost",
            ),
            ("ProxyUseFdpass no", "ProxyUseFdpass"),
        ] {
            let f = write(
                d.path(),
                "config",
                &format!("Host fenn\n  User pi\n{line}\n"),
            );
            assert_eq!(
                mention_in(d.path(), &f),
                Some(("config".into(), 3, keyword.into())),
                "{line}"
            );
        }
    }

    #[test]
    fn includes_are_followed_relative_home_and_glob_in_lexical_order() {
        let d = tempfile::tempdir().unwrap();
        let base = d.path();
        write(base, "conf.d/a.conf", "User pi\n");
        write(base, "conf.d/b.conf", "Compression yes\nPort 2200\n");
        write(base, "conf.d/.hidden.conf", "Port 1\n");
        write(base, "conf.d/c.txt", "Port 3\n");
        write(base, "extra", "ForwardAgent no\n");
        let f = write(base, "config", "Include extra ~/conf.d/*.conf\n");
        assert_eq!(
            mention_in(base, &f),
            Some(("b.conf".into(), 2, "Port".into()))
        );
        let quiet = write(base, "quiet", "Include \"extra\" missing-file conf.d/a*\n");
        assert_eq!(mention_in(base, &quiet), None);
    }

    #[test]
    fn includes_gt_cannot_follow_make_it_step_aside() {
        let d = tempfile::tempdir().unwrap();
        for word in ["conf.d/%h", "${HOME}/x", "~other/config", "conf.[ab]"] {
            let f = write(d.path(), "config", &format!("Include {word}\n"));
            assert_eq!(
                mention_in(d.path(), &f),
                Some(("config".into(), 1, format!("Include {word}"))),
                "{word}"
            );
        }
        let looped = write(d.path(), "loop", "Include loop\n");
        assert_eq!(
            mention_in(d.path(), &looped).map(|m| m.2),
            Some("Includes nested too deep".into())
        );
    }

    #[test]
    fn an_unreadable_file_steps_aside_a_missing_one_does_not() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(mention_in(d.path(), &d.path().join("absent")), None);
        // A directory cannot be read as a file.
        let m = mention_in(d.path(), d.path()).expect("a mention");
        assert_eq!(m.1, 0);
        assert!(m.2.starts_with("unreadable"), "{m:?}");
    }

    #[test]
    fn the_files_are_the_f_file_alone_or_the_user_s_and_the_system_s() {
        let home = Path::new("/home/me");
        assert_eq!(
            roots(Some(Path::new("/lab/ssh_config")), Some(home)),
            [(
                PathBuf::from("/lab/ssh_config"),
                PathBuf::from("/home/me/.ssh")
            )]
        );
        assert_eq!(
            roots(None, Some(home)),
            [
                (
                    PathBuf::from("/home/me/.ssh/config"),
                    PathBuf::from("/home/me/.ssh")
                ),
                (
                    PathBuf::from("/etc/ssh/ssh_config"),
                    PathBuf::from("/etc/ssh")
                )
            ]
        );
    }

    #[test]
    fn wildcards_match_as_glob_does() {
        assert!(wildcard_match("*.conf", "a.conf"));
        assert!(wildcard_match("a?c*", "abc"));
        assert!(wildcard_match("*a*b", "xxaxxb"));
        assert!(!wildcard_match("*.conf", "a.conf.bak"));
        assert!(!wildcard_match("a?", "a"));
    }

    #[test]
    fn an_f_file_that_mentions_proxycommand_makes_gt_step_aside_and_is_read_once() {
        let d = tempfile::tempdir().unwrap();
        let clean = write(d.path(), "clean", "User pi\n");
        let proxied = write(d.path(), "proxied", "Host *\n ProxyCommand nc %h %p\n");
        assert!(leaves_connect_to_gt(Some(&clean), "fenn"));
        assert!(!leaves_connect_to_gt(Some(&proxied), "fenn"));
        std::fs::write(&proxied, "User pi\n").unwrap();
        assert!(
            !leaves_connect_to_gt(Some(&proxied), "fenn"),
            "the first answer holds for the run"
        );
        // Another host is checked against the file as first read, with its
        // Includes as first listed: one read per file and run, not per host.
        let included = write(d.path(), "included.conf", "Host fenn\n Port 2222\n");
        let main = write(d.path(), "main", "Include included.*\n");
        let roots = [(main.clone(), d.path().to_path_buf())];
        let mut files = Files::default();
        let fenn = super::mention_in(&roots, "fenn", None, &mut files);
        assert_eq!(fenn.map(|m| (m.file, m.line)), Some((included.clone(), 2)));
        std::fs::remove_file(&included).unwrap();
        std::fs::write(&main, "ProxyJump bastion\n").unwrap();
        let jast = super::mention_in(&roots, "jast", None, &mut files);
        assert_eq!(
            jast, None,
            "jast is checked against the files as first read"
        );
        let Some(Read::Text(text)) = files.read.get(&included) else {
            panic!("the included file is kept");
        };
        assert!(text.contains("Port 2222"));
    }

    /// systemd's ssh_config.d file (Debian 13, Fedora) proxies only its own
    /// name spaces; Fedora's crypto policy sits under `Match final all`.
    #[test]
    fn host_blocks_that_cannot_select_the_host_do_not_count() {
        let d = tempfile::tempdir().unwrap();
        let base = d.path();
        write(
            base,
            "ssh_config.d/20-systemd-ssh-proxy.conf",
            "Host .host machine/.host\n  ProxyCommand /usr/lib/systemd/systemd-ssh-proxy unix/run/ssh-unix-local/socket %p\n  \
             ProxyUseFdpass yes\n  CheckHostIP no\n\nHost unix/* unix%* vsock/* vsock%* vsock-mux/* vsock-mux%*\n  \
             ProxyCommand /usr/lib/systemd/systemd-ssh-proxy %h %p\n  ProxyUseFdpass yes\n  CheckHostIP no\n",
        );
        write(base, "crypto", "Ciphers aes256-gcm@openssh.com\n");
        write(base, "bastion.conf", "ProxyJump bastion\n");
        let f = write(
            base,
            "ssh_config",
            "Include ssh_config.d/*.conf\nMatch final all\n  Include crypto\n\
             Host db-* !db-fenn\n  Include bastion.conf\nHost *\n  SendEnv LANG LC_*\n",
        );
        assert_eq!(mention_for("10.4.0.15", base, &f), None);
        assert_eq!(mention_for("db-fenn", base, &f), None);
        assert_eq!(
            mention_for("db-velaryon", base, &f),
            Some(("bastion.conf".into(), 1, "ProxyJump".into()))
        );
        assert_eq!(
            mention_for("vsock/3", base, &f),
            Some(("20-systemd-ssh-proxy.conf".into(), 7, "ProxyCommand".into()))
        );
    }

    #[test]
    fn host_patterns_count_in_any_case_negations_only_when_sure() {
        assert!(host_block_may_apply("*", "fenn"));
        assert!(host_block_may_apply("FENN", "fenn"));
        assert!(host_block_may_apply("10.4.0.* !10.4.0.1", "10.4.0.15"));
        assert!(!host_block_may_apply("10.4.0.* !10.4.0.15", "10.4.0.15"));
        assert!(!host_block_may_apply("!fenn *", "fenn"));
        // ssh would compare `!FENN` with `fenn` and not match: the block may apply.
        assert!(host_block_may_apply("* !FENN", "fenn"));
        assert!(!host_block_may_apply("bastion gw-? # fenn", "fenn"));
        assert!(matches_everything("all"));
        assert!(matches_everything("Final ALL # the crypto policy"));
        assert!(!matches_everything("final host fenn"));
        assert!(!matches_everything("!all"));
    }
}
