//! Several commands for one host folded into one remote script: one round
//! trip does the work of several, and a failure still names its own command
//! (host preparation and each phase of a node's upgrade fold theirs so).
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
}
