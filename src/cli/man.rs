//! `gt man`: gt(1), and with `--out-dir` one page per command.

use super::{exit, write_stdout, CliError};
use clap::{Args, CommandFactory};
use clap_mangen::roff::{bold, roman, Roff};
use clap_mangen::Man;
use std::path::{Path, PathBuf};

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write gt.1 and one page per subcommand (gt-plan.1, gt-lab-up.1, ...)
    /// into DIR instead of printing gt.1 on stdout.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

/// `gt man [--out-dir DIR]`.
pub fn man(a: ManArgs) -> Result<u8, CliError> {
    let cmd = super::Cli::command();
    let Some(dir) = a.out_dir else {
        return write_stdout(man_page(&cmd).as_bytes());
    };
    let files = write_man_pages(&cmd, &dir)
        .map_err(|(file, source)| CliError::WriteManPage { file, source })?;
    for f in files {
        println!("{}", f.display());
    }
    Ok(exit::OK)
}

/// The commands a user can run, depth first, with their full names
/// (`["lab", "up"]`); hidden ones (the lab daemon) and clap's `help` are left
/// out.
pub fn visible_commands(root: &clap::Command) -> Vec<(Vec<String>, clap::Command)> {
    fn walk(cmd: &clap::Command, path: &[String], out: &mut Vec<(Vec<String>, clap::Command)>) {
        for sub in cmd.get_subcommands() {
            if sub.is_hide_set() || sub.get_name() == "help" {
                continue;
            }
            let mut p = path.to_vec();
            p.push(sub.get_name().to_string());
            out.push((p.clone(), sub.clone()));
            walk(sub, &p, out);
        }
    }
    let mut root = root.clone();
    // Sets every subcommand's bin name ("gt lab up"), which the synopsis shows.
    root.build();
    let mut out = Vec::new();
    walk(&root, &[], &mut out);
    out
}

/// gt(1): the top-level page followed by one section per command (`GT PLAN`,
/// `GT LAB UP`, ...) with its synopsis, description, options and examples.
///
/// One page holding everything is what `gt man > gt.1` installs and what
/// `man gt` then finds, whatever the packager does with subcommand pages.
pub fn man_page(root: &clap::Command) -> String {
    let mut root = root.clone().disable_help_subcommand(true);
    root.build();
    let mut page = Vec::new();
    let man = Man::new(root.clone()).title("GT").date(man_date());
    // Infallible: writing into a Vec.
    let _ = man.render_title(&mut page);
    let _ = man.render_name_section(&mut page);
    let _ = man.render_synopsis_section(&mut page);
    let _ = man.render_description_section(&mut page);
    let _ = man.render_options_section(&mut page);
    let commands = visible_commands(&root);
    let mut list = Roff::new();
    list.control("SH", ["COMMANDS"]);
    for (path, cmd) in &commands {
        list.control("TP", []);
        list.text([bold(format!("gt {}", path.join(" ")))]);
        if let Some(about) = cmd.get_about() {
            list.text([roman(about.to_string())]);
        }
    }
    page.extend(list.to_roff().as_bytes());
    page.extend(examples_roff("SH", "EXAMPLES", &root).to_roff().as_bytes());

    for (path, cmd) in &commands {
        let title = format!("GT {}", path.join(" ").to_uppercase());
        let mut section = Roff::new();
        section.control("SH", [title.as_str()]);
        page.extend(section.to_roff().as_bytes());
        // The global options are described once, at the top.
        let own = cmd.clone().mut_args(|a| {
            let shared = a.is_global_set() || matches!(a.get_id().as_str(), "help" | "version");
            a.hide(shared)
        });
        page.extend(command_body(&own).as_bytes());
    }
    page.extend(trailer(&[]).as_bytes());
    one_preamble(&String::from_utf8_lossy(&page))
}

/// clap_mangen starts every fragment it renders with the same two lines
/// (the definition of the apostrophe string); a page needs them once.
fn one_preamble(page: &str) -> String {
    const PREAMBLE: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";
    let mut out = String::with_capacity(page.len());
    out.push_str(PREAMBLE);
    out.push_str(&page.replace(PREAMBLE, ""));
    out
}

/// `--out-dir`: gt.1 (the whole reference, as `gt man` prints it) and, as
/// git and cargo do, a page per command (`man gt-plan`). Returns the files
/// written, in command order; otherwise the file that could not be
/// written and why (only regular files are replaced: README "Files gt
/// reads and writes").
pub fn write_man_pages(
    root: &clap::Command,
    dir: &Path,
) -> Result<Vec<PathBuf>, (PathBuf, crate::fsutil::WriteError)> {
    let mut written = Vec::new();
    let mut write = |file: PathBuf, page: String| match crate::fsutil::write_atomic(
        &file,
        page.as_bytes(),
        0o644,
        ".gt-man-",
        &[],
    ) {
        Ok(()) => {
            written.push(file);
            Ok(())
        }
        Err(e) => Err((file, e)),
    };
    write(dir.join("gt.1"), man_page(root))?;
    for (path, cmd) in visible_commands(root) {
        let name = format!("gt-{}", path.join("-"));
        write(dir.join(format!("{name}.1")), command_page(&name, &cmd))?;
    }
    Ok(written)
}

/// The page of one command: gt-plan(1).
pub fn command_page(name: &str, cmd: &clap::Command) -> String {
    let man = Man::new(cmd.clone().display_name(name))
        .title(name.to_uppercase())
        .date(man_date());
    let mut page = Vec::new();
    let _ = man.render_title(&mut page);
    let _ = man.render_name_section(&mut page);
    // Inside gt(1) a command's parts are subsections; on its own page they
    // are sections of their own, titled in capitals as man pages are.
    let body: String = command_body(cmd)
        .lines()
        .map(|l| match l.strip_prefix(".SS ") {
            Some(title) => format!(".SH {}\n", title.to_uppercase()),
            None => format!("{l}\n"),
        })
        .collect();
    page.extend(body.as_bytes());
    page.extend(trailer(&["gt(1)"]).as_bytes());
    one_preamble(&String::from_utf8_lossy(&page))
}

/// Synopsis, description, options, subcommands and examples of a command,
/// as subsections (`.SS`).
fn command_body(cmd: &clap::Command) -> String {
    let man = Man::new(cmd.clone());
    let mut sections = Vec::new();
    let _ = man.render_synopsis_section(&mut sections);
    let _ = man.render_description_section(&mut sections);
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        let _ = man.render_options_section(&mut sections);
    }
    if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        let _ = man.render_subcommands_section(&mut sections);
    }
    let mut text = demote_sections(&String::from_utf8_lossy(&sections));
    text.push_str(&examples_roff("SS", "Examples", cmd).to_roff());
    text
}

/// clap_mangen writes a page's sections (`.SH OPTIONS`); inside gt(1) they
/// belong to the command's own section.
fn demote_sections(roff: &str) -> String {
    roff.lines()
        .map(|l| match l.strip_prefix(".SH ") {
            Some(title) => format!(".SS {}\n", title.trim_matches('"').to_lowercase()),
            None => format!("{l}\n"),
        })
        .map(|l| capitalise_ss(&l))
        .collect()
}

fn capitalise_ss(line: &str) -> String {
    match line.strip_prefix(".SS ") {
        Some(rest) => {
            let mut c = rest.chars();
            match c.next() {
                Some(first) => format!(".SS {}{}", first.to_uppercase(), c.as_str()),
                None => line.to_string(),
            }
        }
        None => line.to_string(),
    }
}

/// The after-help of a command (its "Examples:" block, and anything after
/// it) under a heading (`.SH EXAMPLES` in gt(1) itself, `.SS Examples` in a
/// command's section), preformatted so that the columns stay aligned.
fn examples_roff(heading_macro: &str, title: &str, cmd: &clap::Command) -> Roff {
    let mut r = Roff::new();
    let Some(text) = cmd.get_after_long_help().or_else(|| cmd.get_after_help()) else {
        return r;
    };
    r.control(heading_macro, [title]);
    preformatted(&mut r, &text.to_string());
    r
}

fn preformatted(r: &mut Roff, text: &str) {
    let body = text
        .strip_prefix("Examples:\n")
        .unwrap_or(text)
        .trim_end_matches('\n');
    r.control("nf", []);
    for line in body.lines() {
        if line.is_empty() {
            // A blank line inside .nf is kept; an empty text line would not be.
            r.control("sp", []);
        } else {
            r.text([roman(line)]);
        }
    }
    r.control("fi", []);
}

/// EXIT STATUS, ENVIRONMENT, FILES and SEE ALSO: what every page ends with.
fn trailer(see_also: &[&str]) -> String {
    let mut r = Roff::new();
    r.control("SH", ["EXIT STATUS"]);
    for (code, meaning) in [
        ("0", "success; for plan --detailed-exitcode and drift: no changes"),
        (
            "1",
            "gt could not do what was asked: invalid config, unreadable facts or plan file, a failed, skipped or cancelled apply step, a refused approval",
        ),
        ("2", "plan --detailed-exitcode and drift: there are changes (drift)"),
        ("130", "apply: a second Ctrl-C ended gt at once"),
    ] {
        r.control("TP", []);
        r.text([bold(code)]);
        r.text([roman(meaning)]);
    }
    r.control("SH", ["ENVIRONMENT"]);
    for (var, meaning) in [
        (
            "GT_CONFIG",
            "the cluster.toml to use when --config is not given (then ./cluster.toml)",
        ),
        ("NO_COLOR", "set to a non-empty value: never color output"),
        (
            "GT_LAB_SPEED",
            "gt lab up --speed: multiplies every simulated latency",
        ),
    ] {
        r.control("TP", []);
        r.text([bold(var)]);
        r.text([roman(meaning)]);
    }
    r.control("SH", ["FILES"]);
    r.control("TP", []);
    r.text([bold("cluster.toml")]);
    r.text([roman(
        "the desired cluster; its every key is described in gt's README (cluster.toml reference)",
    )]);
    r.control("TP", []);
    r.text([bold("/var/lib/gt/apply.lock")]);
    r.text([roman(
        "on the lock host (the bootstrap control plane): the apply lock, see gt unlock",
    )]);
    if !see_also.is_empty() {
        r.control("SH", ["SEE ALSO"]);
        r.text([roman(see_also.join(", "))]);
    }
    r.to_roff()
}

/// The page's date: when the source was built, if the build says
/// (`SOURCE_DATE_EPOCH`, reproducible builds), else none, so two builds of
/// the same source make the same page.
fn man_date() -> String {
    match option_env!("SOURCE_DATE_EPOCH").and_then(|s| s.parse::<i64>().ok()) {
        Some(secs) => time::OffsetDateTime::from_unix_timestamp(secs)
            .map(|t| format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()))
            .unwrap_or_default(),
        None => String::new(),
    }
}
