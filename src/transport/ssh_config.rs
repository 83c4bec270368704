//! Whether the user's ssh configuration could make ssh connect differently
//! from gt's dialer (`dial.rs`). gt does not evaluate ssh_config: any
//! directive, in any Host or Match block, of a keyword that changes where or
//! how ssh connects makes gt step aside for every host using that
//! configuration, as does anything gt cannot follow (an unreadable file, an
//! Include with tokens, variables or character classes, nesting past ssh's
//! own limit). Comments do not count.
//!
//! The files are ssh's: the `-F` file alone when one is given, else
//! `~/.ssh/config` and `/etc/ssh/ssh_config`, with their Includes (relative
//! to `~/.ssh` from a user's file, `/etc/ssh` from the system's).

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

/// Keywords (lower case) that change the address, port, route or socket of
/// ssh's connect, or what ssh does differently once a ProxyCommand is set.
const CHANGES_THE_CONNECT: &[&str] = &[
    "proxycommand",
    "proxyjump",
    "proxyusefdpass",
    "hostname",
    "port",
    "bindaddress",
    "bindinterface",
    "addressfamily",
    "match",
    "connectionattempts",
    "tcpkeepalive",
    "canonicalizehostname",
    // ssh skips the host IP check, and the loopback exemption, for a proxied login.
    "checkhostip",
    "nohostauthenticationforlocalhost",
    // Run by $SHELL, which gt sets for a master it dials.
    "localcommand",
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

/// Whether ssh, with `config_file` (`-F`) or the default files, would connect
/// exactly as gt's dialer does. Read once per process for each `-F` file.
pub fn leaves_connect_to_gt(config_file: Option<&Path>) -> bool {
    static SEEN: Mutex<Option<HashMap<Option<PathBuf>, bool>>> = Mutex::new(None);
    let key = config_file.map(Path::to_path_buf);
    if let Some(known) = SEEN
        .lock()
        .expect("not poisoned")
        .as_ref()
        .and_then(|m| m.get(&key))
    {
        return *known;
    }
    let home = home_dir();
    let clear = first_mention(&roots(config_file, home.as_deref()), home.as_deref()).is_none();
    SEEN.lock()
        .expect("not poisoned")
        .get_or_insert_with(HashMap::new)
        .insert(key, clear);
    clear
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

/// The first mention in `roots` (and what they include) of a keyword that
/// changes the connect, or of something gt cannot follow.
pub fn first_mention(roots: &[(PathBuf, PathBuf)], home: Option<&Path>) -> Option<Mention> {
    roots
        .iter()
        .find_map(|(file, base)| scan(file, base, home, 0).err())
}

fn scan(file: &Path, base: &Path, home: Option<&Path>, depth: usize) -> Result<(), Mention> {
    let mention = |line: usize, what: String| Mention {
        file: file.to_path_buf(),
        line,
        what,
    };
    if depth > MAX_DEPTH {
        return Err(mention(0, "Includes nested too deep".into()));
    }
    let text = match std::fs::read(file) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        // ssh reads no missing default file, and fails on a missing -F file itself.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(mention(0, format!("unreadable: {e}"))),
    };
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let end = line
            .find(|c: char| c.is_whitespace() || c == '=')
            .unwrap_or(line.len());
        let keyword = line[..end].trim_matches('"').to_ascii_lowercase();
        if CHANGES_THE_CONNECT.contains(&keyword.as_str()) {
            return Err(mention(n, line[..end].trim_matches('"').to_string()));
        }
        if keyword != "include" {
            continue;
        }
        let rest = line[end..].trim_start_matches(|c: char| c.is_whitespace() || c == '=');
        for word in rest.split_whitespace() {
            let Some(path) = include_path(word, base, home) else {
                return Err(mention(n, format!("Include {word}")));
            };
            for included in expand(&path) {
                scan(&included, base, home, depth + 1)?;
            }
        }
    }
    Ok(())
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
        first_mention(&[(file.to_path_buf(), dir.to_path_buf())], Some(dir)).map(|m| {
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
            ("ConnectionAttempts 3", "ConnectionAttempts"),
            ("TCPKeepAlive no", "TCPKeepAlive"),
            ("CanonicalizeHostname yes", "CanonicalizeHostname"),
            ("CheckHostIP yes", "CheckHostIP"),
            (
                "NoHostAuthenticationForLocalhost yes",
                "NoHostAuthenticationForLocalhost",
            ),
            ("ProxyUseFdpass no", "ProxyUseFdpass"),
            ("LocalCommand echo hi", "LocalCommand"),
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
        assert!(leaves_connect_to_gt(Some(&clean)));
        assert!(!leaves_connect_to_gt(Some(&proxied)));
        std::fs::write(&proxied, "User pi\n").unwrap();
        assert!(
            !leaves_connect_to_gt(Some(&proxied)),
            "the first answer holds for the run"
        );
    }
}
