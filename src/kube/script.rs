//! Several commands for one host folded into one remote script: one round
//! trip does the work of several, and a failure still names its own command
//! (host preparation and each phase of a node's upgrade fold theirs so), or
//! several reads run at once, each answer kept whole ([`sections_at_once`]:
//! the cluster query).
//!
//! The script carries the commands' words only: whatever secret a command
//! needs goes on its stdin, never into a part, since every part is visible
//! in the host's process list.

/// The stderr line that names the failed part: `gt-failed-part=N`.
const FAILED_PART: &str = "gt-failed-part=";

/// `parts` run one after the other in one shell, stopping at the first that
/// fails: the script exits with that part's status, and its stderr ends with
/// a line naming the part by its index ([`failed_part`] reads it back). Each
/// part is closed by a newline, not `;`, so a part may end in a comment or
/// in `&` and still be one part.
pub fn in_order<S: AsRef<str>>(parts: &[S]) -> String {
    parts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            format!(
                "{{ {}\n}} || {{ rc=$?; echo '{FAILED_PART}{i}' >&2; exit $rc; }}",
                p.as_ref()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Which part of an [`in_order`] script failed (its index), and the output
/// without the line that says so.
pub fn failed_part(output: &str) -> Option<(usize, String)> {
    let (line, part) = output
        .lines()
        .enumerate()
        .filter_map(|(n, l)| Some((n, l.trim().strip_prefix(FAILED_PART)?.parse().ok()?)))
        .last()?;
    let rest: Vec<&str> = output
        .lines()
        .enumerate()
        .filter(|(n, _)| *n != line)
        .map(|(_, l)| l)
        .collect();
    Some((part, rest.join("\n")))
}

/// `command` run in the background for as long as the script's stdin stays
/// open: when it ends (gt let go of the session, or its connection is
/// gone; sshd then closes the command's stdin) the command is killed, and
/// when the command ends by itself, so does the script, with its status.
/// For a command that would otherwise run on after gt (a watch), since
/// sshd signals nothing to a command without a terminal when the client
/// goes. The command's own stdin is `/dev/null`.
pub fn while_stdin_open(command: &str) -> String {
    format!(
        "exec 3<&0\n\
         {command} </dev/null &\n\
         k=$!\n\
         {{ while read -r _ <&3; do :; done; kill \"$k\" 2>/dev/null; }} &\n\
         r=$!\n\
         wait \"$k\"\n\
         rc=$?\n\
         kill \"$r\" 2>/dev/null\n\
         exit \"$rc\"\n"
    )
}

/// `sections` (name, command) run at once, each answer printed whole as a
/// section, in the order given, on stdout and stderr alike: `MARK` + name,
/// the command's output, then `MARK` + name + `.exit` and its exit status
/// (on stdout); a command must not exit the shell itself. Each runs in its
/// own background job writing to a
/// temporary directory; a host where `mktemp -d` fails runs them one after
/// the other instead, same output. A read that is a slow process start
/// (kubectl on a Raspberry Pi, some 0.3 s) then costs the slowest of them,
/// not their sum, over one session: a session is what a host's sshd pays
/// most for. The temporary files go on every way out, a hang-up included.
pub fn sections_at_once(sections: &[(String, String)], mark: &str) -> String {
    let mut s = String::new();
    for (i, (name, command)) in sections.iter().enumerate() {
        s.push_str(&format!(
            "gt_section_{i}() {{\necho '{mark}{name}'; echo '{mark}{name}' >&2\n{command}\nrc=$?\necho; echo '{mark}{name}.exit'; echo \"$rc\"\n}}\n"
        ));
    }
    let files = |suffix: &str| {
        (0..sections.len())
            .map(|i| format!("\"$t/{i}{suffix}\""))
            .collect::<Vec<_>>()
            .join(" ")
    };
    s.push_str("if t=$(mktemp -d 2>/dev/null); then\n");
    s.push_str("trap 'rm -rf \"$t\"' EXIT\ntrap 'exit 129' HUP\ntrap 'exit 143' TERM\n");
    for i in 0..sections.len() {
        s.push_str(&format!("gt_section_{i} >\"$t/{i}\" 2>\"$t/{i}e\" &\n"));
    }
    if !sections.is_empty() {
        s.push_str(&format!(
            "wait\ncat {}\ncat {} >&2\n",
            files(""),
            files("e")
        ));
    }
    s.push_str("else\n");
    for i in 0..sections.len() {
        s.push_str(&format!("gt_section_{i}\n"));
    }
    s.push_str(":\nfi\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> std::process::Output {
        std::process::Command::new("sh")
            .args(["-c", script])
            .output()
            .unwrap()
    }

    #[test]
    fn parts_are_closed_by_a_newline_and_marked_by_index() {
        assert_eq!(
            in_order(&["printf x > f && apt-get update -q", "apt-get install kubeadm"]),
            "{ printf x > f && apt-get update -q\n} || { rc=$?; echo 'gt-failed-part=0' >&2; exit $rc; }\n{ apt-get install kubeadm\n} || { rc=$?; echo 'gt-failed-part=1' >&2; exit $rc; }"
        );
        assert_eq!(in_order::<&str>(&[]), "");
    }

    #[test]
    fn parts_run_in_order_and_a_failure_names_its_part() {
        let out = sh(&in_order(&[
            "true",
            "echo no >&2; sh -c 'exit 3'",
            "echo never",
        ]));
        assert_eq!(out.status.code(), Some(3));
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(failed_part(&stderr), Some((1, "no".to_string())));
        assert!(out.stdout.is_empty(), "the part after the failed one ran");
        let ok = sh(&in_order(&["true", "echo fine"]));
        assert!(ok.status.success());
        assert_eq!(String::from_utf8(ok.stdout).unwrap(), "fine\n");
        assert_eq!(failed_part(""), None);
        assert_eq!(failed_part("E: something else\n"), None);
    }

    #[test]
    fn a_part_ending_in_a_comment_or_spanning_lines_is_still_one_part() {
        let out = sh(&in_order(&[
            "printf '%s' 'a\nb' >/dev/null # written whole",
            "false",
            "echo never",
        ]));
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(failed_part(&stderr), Some((1, String::new())));
        assert!(out.stdout.is_empty());
    }

    #[test]
    fn the_tools_last_words_stay_and_only_the_marker_goes() {
        assert_eq!(
            failed_part("E: Version '1.33.9-*' for 'kubeadm' was not found\ngt-failed-part=2\n"),
            Some((
                2,
                "E: Version '1.33.9-*' for 'kubeadm' was not found".to_string()
            ))
        );
    }

    /// Two reads where the first can only end once the second has started:
    /// run one after the other, the first would give up waiting.
    fn waiting_pair() -> Vec<(String, String)> {
        vec![
            (
                "first".to_string(),
                "i=0; while [ ! -e \"$D/second-started\" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; \
                 if [ -e \"$D/second-started\" ]; then echo together; else echo alone; fi; echo warn >&2"
                    .to_string(),
            ),
            (
                "second".to_string(),
                "touch \"$D/second-started\"; echo '{\"items\":[]}'; (exit 3)".to_string(),
            ),
        ]
    }

    #[test]
    fn sections_run_at_once_and_print_whole_in_order() {
        let d = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("sh")
            .args(["-c", &sections_at_once(&waiting_pair(), "@@gt ")])
            .env("D", d.path())
            .env("TMPDIR", d.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            "@@gt first\ntogether\n\n@@gt first.exit\n0\n@@gt second\n{\"items\":[]}\n\n@@gt second.exit\n3\n"
        );
        assert_eq!(
            String::from_utf8(out.stderr).unwrap(),
            "@@gt first\nwarn\n@@gt second\n"
        );
        // The temporary directory is gone.
        let left: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["second-started"]);
    }

    /// Whether process `pid` still runs (a zombie does not count).
    fn alive(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            !s.rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        })
    }

    #[test]
    fn a_command_held_by_stdin_is_killed_when_stdin_ends() {
        use std::io::{BufRead, Write};
        let d = tempfile::tempdir().unwrap();
        // A command that would run for a minute: it says its pid, then sleeps.
        let command = "sh -c 'echo $$; exec sleep 60'";
        for sh in ["sh", "bash"] {
            let mut child = std::process::Command::new(sh)
                .args(["-c", &while_stdin_open(command)])
                .current_dir(d.path())
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let mut stdin = child.stdin.take().unwrap();
            let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
            let mut line = String::new();
            out.read_line(&mut line).unwrap();
            let pid: i32 = line.trim().parse().unwrap();
            // Lines on stdin do not end it.
            stdin.write_all(b"still here\n").unwrap();
            stdin.flush().unwrap();
            assert!(alive(pid), "{sh}: the command ended while stdin was open");
            drop(stdin);
            let status = child.wait().unwrap();
            // sleep was killed (SIGTERM): the script exits with its status.
            assert_eq!(status.code(), Some(128 + 15), "{sh}");
            assert!(!alive(pid), "{sh}: the command outlived its stdin");
        }
    }

    #[test]
    fn a_command_held_by_stdin_that_ends_by_itself_ends_the_script_with_its_status() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", &while_stdin_open("echo done; exit 3")])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // stdin stays open: the script must not wait for it.
        let _stdin = child.stdin.take();
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(String::from_utf8(out.stdout).unwrap(), "done\n");
    }

    #[test]
    fn without_a_temporary_directory_sections_run_in_turn_with_the_same_output() {
        let d = tempfile::tempdir().unwrap();
        let bin = tempfile::tempdir().unwrap();
        // mktemp fails; touch and sleep are the sections' own.
        std::fs::write(bin.path().join("mktemp"), "#!/bin/sh\nexit 1\n").unwrap();
        let mut perm = std::fs::metadata(bin.path().join("mktemp"))
            .unwrap()
            .permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
        std::fs::set_permissions(bin.path().join("mktemp"), perm).unwrap();
        let path = format!(
            "{}:{}",
            bin.path().display(),
            std::env::var("PATH").unwrap()
        );
        let mut sections = waiting_pair();
        sections[0].1 = "echo alone; echo warn >&2".to_string();
        let out = std::process::Command::new("sh")
            .args(["-c", &sections_at_once(&sections, "@@gt ")])
            .env("D", d.path())
            .env("PATH", path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            "@@gt first\nalone\n\n@@gt first.exit\n0\n@@gt second\n{\"items\":[]}\n\n@@gt second.exit\n3\n"
        );
        assert_eq!(
            String::from_utf8(out.stderr).unwrap(),
            "@@gt first\nwarn\n@@gt second\n"
        );
    }
}
