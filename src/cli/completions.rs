//! `gt completions`: a completion script for a shell.

use super::CliError;
use clap::{Args, CommandFactory};

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `gt completions SHELL`: the script on stdout.
pub fn completions(a: CompletionsArgs) -> Result<u8, CliError> {
    let mut cmd = without_hidden(&super::Cli::command());
    let mut out = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "gt", &mut out);
    super::write_stdout(&out)
}

/// The command tree as completions should offer it. clap_complete offers
/// hidden subcommands too (`gt lab serve`, the lab daemon, is no command for a
/// user), and a clap `Command` cannot drop a subcommand, so the tree is
/// copied: built first (help, version and global flags in place on every
/// command), then name, about, arguments and visible subcommands; clap adds
/// its `help` subcommand to the copy again.
pub fn without_hidden(root: &clap::Command) -> clap::Command {
    fn copy(cmd: &clap::Command) -> clap::Command {
        let mut out = clap::Command::new(cmd.get_name().to_string())
            .disable_help_flag(true)
            .disable_version_flag(true)
            .args(cmd.get_arguments().cloned());
        if let Some(about) = cmd.get_about() {
            out = out.about(about.clone());
        }
        if let Some(version) = cmd.get_version() {
            out = out.version(version.to_string());
        }
        out.subcommands(
            cmd.get_subcommands()
                // clap makes `help` again, as it should be.
                .filter(|s| !s.is_hide_set() && s.get_name() != "help")
                .map(copy),
        )
    }
    let mut root = root.clone();
    root.build();
    copy(&root)
}
