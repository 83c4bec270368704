//! The finish a user expects: every command's --help has examples that gt's
//! own parser accepts, completion scripts for bash/zsh/fish, the man page,
//! and a README that names every command and flag clap knows.

use crate::support::gt::{root, Test};
use clap::CommandFactory;
use gt::cli::man::visible_commands;
use gt::cli::Cli;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn stdout_of(args: &[&str]) -> String {
    Test::new().args(args).success().stdout
}

/// `gt` itself, then every command a user can run: (["lab", "up"], command).
fn all_commands() -> Vec<(Vec<String>, clap::Command)> {
    let mut root = Cli::command();
    root.build();
    let mut all = vec![(Vec::new(), root.clone())];
    all.extend(visible_commands(&root));
    all
}

fn name(path: &[String]) -> String {
    std::iter::once("gt".to_string())
        .chain(path.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The command lines of a command's "Examples:" block: lines that start
/// (after the indent) with `gt `, cut at two spaces (the description).
fn examples(cmd: &clap::Command) -> Vec<String> {
    let help = cmd
        .get_after_long_help()
        .or_else(|| cmd.get_after_help())
        .map(|s| s.to_string())
        .unwrap_or_default();
    let Some(block) = help.split_once("Examples:\n").map(|(_, b)| b) else {
        return Vec::new();
    };
    block
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(str::trim_start)
        .filter(|l| l.starts_with("gt "))
        .map(|l| l.split("  ").next().unwrap_or(l).trim_end().to_string())
        .collect()
}

/// A command line's words as sh would pass them, up to the first unquoted
/// pipe, redirection or `&&`/`;` (what follows is another program's).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            quote @ ('\'' | '"') => {
                let w = word.get_or_insert_with(String::new);
                w.extend(chars.by_ref().take_while(|&q| q != quote));
            }
            '|' | '>' | '<' | '&' | ';' => break,
            c if c.is_whitespace() => words.extend(word.take()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
}

/// The subcommand path a parsed command line selects.
fn selected_path(m: &clap::ArgMatches) -> Vec<String> {
    let mut path = Vec::new();
    let mut m = m;
    while let Some((name, sub)) = m.subcommand() {
        path.push(name.to_string());
        m = sub;
    }
    path
}

#[test]
fn shell_words_follow_sh_quoting_and_stop_at_a_pipe() {
    assert_eq!(
        shell_words("gt exec fenn -- 'df -h / | tail -1'"),
        ["gt", "exec", "fenn", "--", "df -h / | tail -1"]
    );
    assert_eq!(shell_words("gt graph > x.dot"), ["gt", "graph"]);
    assert_eq!(shell_words("gt man | man -l -"), ["gt", "man"]);
}

#[test]
fn every_command_shows_examples_of_itself_in_its_help() {
    let mut missing = Vec::new();
    for (path, cmd) in all_commands() {
        let shows_itself = examples(&cmd).iter().any(|line| {
            let words = shell_words(line);
            Cli::command()
                .try_get_matches_from(&words)
                .map(|m| selected_path(&m).starts_with(&path))
                .unwrap_or(false)
        });
        if !shows_itself {
            missing.push(name(&path));
        }
    }
    assert!(
        missing.is_empty(),
        "these commands have no \"Examples:\" block with a line running them \
         (add #[command(after_help = ...)] with `  gt ...  what it does` lines): {missing:?}"
    );
}

#[test]
fn every_example_is_a_command_line_gt_accepts() {
    let mut rejected = Vec::new();
    for (path, cmd) in all_commands() {
        for line in examples(&cmd) {
            if let Err(e) = Cli::command().try_get_matches_from(shell_words(&line)) {
                rejected.push(format!("{} help: `{line}`: {}", name(&path), e.kind()));
            }
        }
    }
    assert!(rejected.is_empty(), "{rejected:#?}");
}

/// Every line fits 80 columns, but a command line alone on its line: a long
/// path cannot be wrapped (its description goes on the next line).
#[test]
fn examples_fit_an_80_column_terminal() {
    for (path, cmd) in all_commands() {
        let help = cmd
            .get_after_help()
            .map(|s| s.to_string())
            .unwrap_or_default();
        for line in help.lines() {
            let command_alone = line.trim_start().starts_with("gt ") && !line.trim().contains("  ");
            assert!(
                line.chars().count() <= 80 || command_alone,
                "{} help: a line of {} columns: {line}",
                name(&path),
                line.chars().count()
            );
        }
    }
}

#[test]
fn the_help_users_see_has_the_examples() {
    let help = stdout_of(&["lab", "fault", "--help"]);
    let examples = help
        .split_once("\nExamples:\n")
        .expect("an Examples: block")
        .1;
    assert!(
        examples.contains("gt lab fault fenn kubelet-stopped"),
        "{help}"
    );
    assert!(stdout_of(&["--help"]).contains("  completions  "));
    assert!(stdout_of(&["--help"]).contains("  man  "));
}

// ---- completions ----

/// Subcommand names of every level, which each script must offer.
fn command_names() -> Vec<String> {
    let mut names: Vec<String> = visible_commands(&Cli::command())
        .into_iter()
        .map(|(p, _)| p.last().unwrap().clone())
        .collect();
    names.sort();
    names.dedup();
    names
}

#[test]
fn completion_scripts_name_every_command_and_no_hidden_one() {
    for shell in ["bash", "zsh", "fish"] {
        let script = stdout_of(&["completions", shell]);
        for name in command_names() {
            assert!(script.contains(&name), "{shell} script lacks {name}");
        }
        for flag in ["--detailed-exitcode", "--auto-approve", "--group-output"] {
            assert!(
                script.contains(flag.trim_start_matches('-')),
                "{shell} lacks {flag}"
            );
        }
        // `gt lab serve` is the lab's daemon, not a command for users.
        assert!(
            !script
                .split(|c: char| !c.is_ascii_alphanumeric())
                .any(|word| word == "serve"),
            "{shell} script offers the hidden `lab serve`"
        );
    }
    assert!(stdout_of(&["completions", "zsh"]).starts_with("#compdef gt\n"));
    assert!(stdout_of(&["completions", "fish"]).contains("complete -c gt "));
}

/// `gt completions bash` in a file (and the directory that holds it).
fn bash_script() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("gt.bash");
    std::fs::write(&script, stdout_of(&["completions", "bash"])).unwrap();
    (dir, script)
}

#[test]
fn bash_accepts_the_bash_script() {
    let (_dir, script) = bash_script();
    let out = Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What bash offers after `words` (the last one being completed), with the
/// script sourced as a user's shell does.
fn bash_completes(script: &Path, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "source '{}'; COMP_WORDS=({}); COMP_CWORD={}; _gt gt '{}' '{}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        quoted.join(" "),
        words.len() - 1,
        words[words.len() - 1],
        words[words.len() - 2],
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(program)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completes_commands_flags_and_values() {
    let (_dir, script) = bash_script();

    assert_eq!(bash_completes(&script, &["gt", "pl"]), ["plan"]);
    let lab = bash_completes(&script, &["gt", "lab", ""]);
    for sub in ["up", "down", "status", "fault"] {
        assert!(lab.contains(&sub.to_string()), "{lab:?}");
    }
    assert!(!lab.contains(&"serve".to_string()), "{lab:?}");
    assert_eq!(
        bash_completes(&script, &["gt", "plan", "--det"]),
        ["--detailed-exitcode"]
    );
    assert_eq!(
        bash_completes(&script, &["gt", "lab", "up", "--transport", ""]),
        ["local", "ssh"]
    );
}

/// Runs `program args...`, failing the test with what to install when the
/// shell is missing (scripts/test.sh installs zsh and fish).
fn shell_run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {program} ({e}): apt-get install {program}, as scripts/test.sh does")
        })
}

#[test]
fn zsh_accepts_the_zsh_script() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("_gt");
    std::fs::write(&script, stdout_of(&["completions", "zsh"])).unwrap();
    let out = shell_run("zsh", &["-n", script.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "zsh -n: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn fish_completes_commands_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("gt.fish");
    std::fs::write(&script, stdout_of(&["completions", "fish"])).unwrap();
    let complete = |line: &str| -> Vec<String> {
        let program = format!("source '{}'; complete -C '{line}'", script.display());
        let out = shell_run("fish", &["--no-config", "-c", &program]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Each candidate is `WORD<TAB>DESCRIPTION`.
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.split('\t').next().unwrap_or(l).to_string())
            .collect()
    };
    let lab = complete("gt lab ");
    for sub in ["up", "down", "status", "fault"] {
        assert!(lab.contains(&sub.to_string()), "{lab:?}");
    }
    assert!(!lab.contains(&"serve".to_string()), "{lab:?}");
    assert_eq!(complete("gt plan --det"), ["--detailed-exitcode"]);
    assert_eq!(complete("gt graph --format "), ["dot", "mermaid"]);
}

// ---- man page ----

fn commands_in_man(page: &str) -> Vec<String> {
    page.lines()
        .filter_map(|l| l.strip_prefix(".SH \"GT "))
        .map(|t| t.trim_end_matches('"').to_lowercase())
        .collect()
}

#[track_caller]
fn assert_sections(page: &str, name: &str, sections: &[&str]) {
    for section in sections {
        assert!(
            page.lines().any(|l| l == format!(".SH {section}")),
            "{name} has no {section} section:\n{page}"
        );
    }
}

#[test]
fn man_page_is_gt_1_with_a_section_per_command() {
    let page = stdout_of(&["man"]);
    assert!(
        page.lines().any(|l| l.starts_with(".TH GT 1 ")),
        "no .TH GT 1 line"
    );
    assert_sections(
        &page,
        "gt.1",
        &[
            "NAME",
            "SYNOPSIS",
            "OPTIONS",
            "COMMANDS",
            "EXAMPLES",
            "\"EXIT STATUS\"",
            "ENVIRONMENT",
        ],
    );
    let want: Vec<String> = visible_commands(&Cli::command())
        .into_iter()
        .map(|(p, _)| p.join(" "))
        .collect();
    assert_eq!(commands_in_man(&page), want);
    // The apostrophe definition clap_mangen starts every fragment with, once.
    assert_eq!(page.matches(".ds Aq \\(aq").count(), 1);
}

fn groff() -> Option<&'static str> {
    Command::new("groff")
        .arg("--version")
        .output()
        .ok()
        .map(|_| "groff")
}

/// groff renders the page without a warning (-ww: all of them), and the
/// text a reader sees has every command's section with its examples.
#[test]
fn man_page_renders_cleanly_with_groff() {
    let Some(groff) = groff() else {
        panic!("groff is not installed (apt-get install groff-base; scripts/test.sh does)");
    };
    let page = stdout_of(&["man"]);
    let mut child = Command::new(groff)
        .args(["-man", "-Tutf8", "-ww", "-rLL=100n"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.is_empty(), "groff warns:\n{stderr}");
    let plain = strip_overstrike(&String::from_utf8_lossy(&out.stdout));
    for title in ["GT LAB FAULT", "GT COMPLETIONS", "EXIT STATUS"] {
        assert!(
            plain.contains(title),
            "rendered page lacks {title}:\n{plain}"
        );
    }
    assert!(plain.contains("gt lab fault fenn kubelet-stopped  systemctl stop kubelet"));
}

/// groff's tty output writes bold as `c\bc` and underline as `_\bc`.
fn strip_overstrike(s: &str) -> String {
    let mut out: Vec<char> = Vec::with_capacity(s.len());
    for c in s.chars() {
        if c == '\u{8}' {
            out.pop();
            continue;
        }
        out.push(c);
    }
    out.into_iter().collect()
}

#[test]
fn man_out_dir_writes_gt_1_and_a_page_per_command() {
    let dir = tempfile::tempdir().unwrap();
    let listed = stdout_of(&["man", "--out-dir", dir.path().to_str().unwrap()]);
    let mut files: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut want: Vec<String> = visible_commands(&Cli::command())
        .into_iter()
        .map(|(p, _)| format!("gt-{}.1", p.join("-")))
        .collect();
    want.push("gt.1".into());
    want.sort();
    assert_eq!(files, want);
    assert_eq!(
        listed.lines().count(),
        want.len(),
        "one line per file written"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("gt.1")).unwrap(),
        stdout_of(&["man"]),
        "gt.1 is the page gt man prints"
    );
    let plan = std::fs::read_to_string(dir.path().join("gt-plan.1")).unwrap();
    assert!(
        plan.lines().any(|l| l.starts_with(".TH GT-PLAN 1 ")),
        "{plan}"
    );
    assert_sections(
        &plan,
        "gt-plan.1",
        &[
            "NAME",
            "SYNOPSIS",
            "OPTIONS",
            "EXAMPLES",
            "\"EXIT STATUS\"",
            "\"SEE ALSO\"",
        ],
    );
    assert!(plan.contains("\\-\\-detailed\\-exitcode"), "{plan}");
}

#[test]
fn man_out_dir_that_does_not_exist_is_an_error_naming_it() {
    Test::new()
        .args(["man", "--out-dir", "/nonexistent/gt-man"])
        .status(1)
        .stderr_contains("/nonexistent/gt-man");
}

// ---- README ----

fn readme() -> String {
    std::fs::read_to_string(root().join("README.md")).unwrap()
}

/// The README section of a command in the command reference: from its
/// `### \`gt CMD` heading to the next heading.
fn readme_section<'a>(readme: &'a str, command: &str) -> Option<&'a str> {
    let heading = format!("### `{command}");
    let mut offset = 0;
    let mut start = None;
    for line in readme.split_inclusive('\n') {
        offset += line.len();
        let line = line.trim_end();
        if line == format!("{heading}`") || line.starts_with(&format!("{heading} ")) {
            start = Some(offset);
            break;
        }
    }
    let rest = &readme[start?..];
    let end = rest.find("\n#").unwrap_or(rest.len());
    Some(&rest[..end])
}

#[test]
fn readme_has_a_reference_entry_for_every_command_with_every_flag() {
    let readme = readme();
    let mut problems = Vec::new();
    for (path, cmd) in visible_commands(&Cli::command()) {
        let name = name(&path);
        let Some(section) = readme_section(&readme, &name) else {
            problems.push(format!("no \"### `{name}`\" heading in README.md"));
            continue;
        };
        for arg in cmd.get_arguments() {
            if arg.is_hide_set() || arg.is_global_set() {
                continue;
            }
            if let Some(long) = arg.get_long() {
                if matches!(long, "help" | "version") {
                    continue;
                }
                if !section.contains(&format!("--{long}")) {
                    problems.push(format!("{name}: --{long} is not in its README section"));
                }
            }
        }
    }
    let root = Cli::command();
    for arg in root.get_arguments() {
        if let Some(long) = arg.get_long() {
            if !readme.contains(&format!("--{long}")) {
                problems.push(format!("global flag --{long} is not in README.md"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "README.md is behind clap:\n{}",
        problems.join("\n")
    );
}

#[test]
fn readme_keeps_its_two_commands_at_the_top() {
    let readme = readme();
    let head: Vec<&str> = readme.lines().take(6).collect();
    assert_eq!(
        head,
        [
            "# gt",
            "",
            "```sh",
            "bash scripts/demo.sh    # gt's main job end to end on the lab: a simulated goldentooth on loopback, plan, apply, status, drift",
            "bash scripts/test.sh    # the whole test suite (as root on Debian it apt-get installs what it needs: openssh-server, haproxy)",
            "```",
        ]
    );
}
