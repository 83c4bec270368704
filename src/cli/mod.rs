//! Command-line definitions, exit codes and wiring. Knows how nothing is done.

pub mod apply;
pub mod backup;
mod cni;
pub mod completions;
mod drift;
mod error;
pub mod examples;
pub mod exec;
pub mod flags;
pub mod graph;
pub mod lab;
pub mod man;
pub mod observe;
pub mod plan;
pub mod planning;
pub mod restore;
mod signals;
pub mod status;
mod unlock;
pub mod validate;
mod walk;

pub use error::{report, warn, CliError};

use crate::transport::{SettingNames, TransportOptions};
use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit codes (documented in README.md).
pub mod exit {
    /// Success; for `plan --detailed-exitcode` and `drift`: no changes.
    pub const OK: u8 = 0;
    /// gt could not do what was asked (bad config, unreachable facts file, failed step).
    pub const ERROR: u8 = 1;
    /// `plan --detailed-exitcode` / `drift`: there are changes (drift).
    pub const CHANGES: u8 = 2;
}

#[derive(Debug, Parser)]
#[command(
    name = "gt",
    version,
    about = "Declarative reconciler for kubeadm Kubernetes clusters: plan, apply, drift.",
    propagate_version = true,
    after_help = examples::GT
)]
pub struct Cli {
    /// cluster.toml to use (default: $GT_CONFIG, then ./cluster.toml).
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Never color output (also: NO_COLOR set to a non-empty value).
    #[arg(long, global = true)]
    pub no_color: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check cluster.toml and report every problem with its location.
    #[command(after_help = examples::VALIDATE)]
    Validate(validate::ValidateArgs),
    /// Show what apply would change, Terraform-style.
    #[command(after_help = examples::PLAN)]
    Plan(plan::PlanArgs),
    /// Observe, plan, ask, then carry the plan out step by step; a recap at the end.
    #[command(after_help = examples::APPLY)]
    Apply(apply::ApplyArgs),
    /// Read-only: report every way the cluster differs from cluster.toml (exit 0 in sync, 2 drift, 1 failed).
    Drift(drift::DriftArgs),
    /// Take an etcd backup (snapshot, PKI, kubeadm configuration) through a healthy control plane.
    Backup(backup::BackupArgs),
    /// Restore etcd on every control plane from a backup: a reviewed plan (refused while etcd has quorum, unless --force).
    Restore(restore::RestoreArgs),
    /// Draw the plan's DAG (DOT or Mermaid). Without --facts, a full bootstrap; contacts no host.
    #[command(after_help = examples::GRAPH)]
    Graph(graph::GraphArgs),
    /// Probe every host and print the observed facts as JSON.
    #[command(after_help = examples::OBSERVE)]
    Observe(observe::ObserveArgs),
    /// A table of nodes: role, address, arch, joined, Ready, kubelet version, drift.
    #[command(after_help = examples::STATUS)]
    Status(status::StatusArgs),
    /// Run a command on a node, a group or all hosts, in parallel.
    #[command(after_help = examples::EXEC)]
    Exec(exec::ExecArgs),
    /// Show the apply lock of the cluster, and remove it (a crashed apply's) after confirmation.
    Unlock(unlock::UnlockArgs),
    /// A simulated cluster on this machine, for trying gt and for tests.
    #[command(subcommand, after_help = examples::LAB)]
    Lab(lab::LabCommand),
    /// Print a completion script for bash, zsh, fish, elvish or powershell.
    #[command(after_help = examples::COMPLETIONS)]
    Completions(completions::CompletionsArgs),
    /// Print the gt(1) man page (roff), or write one page per command with --out-dir.
    #[command(after_help = examples::MAN)]
    Man(man::ManArgs),
}

/// Entry point of the `gt` binary. Invoked under a simulated tool's name
/// (the lab links kubeadm, kubectl, ... to this binary), acts as that tool.
pub fn run() -> ExitCode {
    let mut args = std::env::args();
    let argv0 = args.next().unwrap_or_default();
    let tool = std::path::Path::new(&argv0)
        .file_name()
        .and_then(|s| s.to_str())
        .unwrap_or("");
    if gt_lab::sim::TOOLS.contains(&tool) {
        return gt_lab::sim::main(tool, args.collect());
    }
    signals::set_sigpipe(false);
    let cli = Cli::parse();
    signals::set_sigpipe(matches!(
        cli.command,
        Command::Apply(_) | Command::Exec(_) | Command::Restore(_)
    ));
    if let Err(e) = signals::install() {
        report(&CliError::Signal(e));
        return ExitCode::from(exit::ERROR);
    }
    let ctx = Context {
        config_flag: cli.config.clone(),
        color: crate::render::color_wanted(cli.no_color),
    };
    let ran = match cli.command {
        Command::Validate(a) => validate::validate(&ctx, a),
        Command::Plan(a) => plan::plan(&ctx, a),
        Command::Graph(a) => graph::graph(&ctx, a),
        Command::Apply(a) => apply::apply(&ctx, a),
        Command::Drift(a) => drift::drift(&ctx, a),
        Command::Backup(a) => backup::backup(&ctx, a),
        Command::Restore(a) => restore::restore(&ctx, a),
        Command::Observe(a) => observe::observe(&ctx, a),
        Command::Status(a) => status::status(&ctx, a),
        Command::Exec(a) => exec::exec(&ctx, a),
        Command::Unlock(a) => unlock::unlock(&ctx, a),
        Command::Lab(c) => lab::run(&ctx, c).map_err(CliError::from),
        Command::Completions(a) => completions::completions(a),
        Command::Man(a) => man::man(a),
    };
    let code = ran.unwrap_or_else(|e| {
        report(&e);
        e.code()
    });
    // A stop signal that is ending gt stops its local commands first; the
    // command that saw them die must not end gt with its own code.
    ExitCode::from(signals::exit_code_if_ending().unwrap_or(code))
}

/// How cluster.toml names the connection settings that a connection error
/// tells the user to check.
const CLUSTER_TOML_SETTINGS: SettingNames = SettingNames {
    port: "the port in cluster.toml",
    connect_timeout: "ssh.connect_timeout in cluster.toml",
    identity_file: "ssh.identity_file in cluster.toml",
    known_hosts_strict: "ssh.known_hosts = \"strict\"",
    known_hosts_accept_new: "ssh.known_hosts = \"accept-new\"",
    host_of_run: "a node of cluster.toml",
};

/// Connections to the hosts of cluster.toml, whose errors name its settings.
pub fn transport_options() -> TransportOptions {
    TransportOptions {
        setting_names: &CLUSTER_TOML_SETTINGS,
        ..TransportOptions::default()
    }
}

/// Writes a generated document to stdout.
fn write_stdout(bytes: &[u8]) -> Result<u8, CliError> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(CliError::WriteStdout)?;
    Ok(exit::OK)
}

/// What every command gets from the global flags.
#[derive(Debug, Clone)]
pub struct Context {
    pub config_flag: Option<PathBuf>,
    /// Whether stdout gets ANSI colors (TTY, no NO_COLOR, no --no-color).
    pub color: bool,
}

impl Context {
    /// Loads and validates the config (found by --config, $GT_CONFIG, ./cluster.toml).
    pub fn load_spec(&self) -> Result<crate::spec::Spec, CliError> {
        let path = crate::spec::find_config(self.config_flag.as_deref())?;
        Ok(crate::spec::load_file(&path)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::TransportError;

    #[test]
    fn connection_errors_name_the_settings_of_cluster_toml() {
        let names = transport_options().setting_names;
        let timeout = TransportError::ConnectTimeout {
            host: "fenn".into(),
            address: "10.4.0.15:22".into(),
            after: "5.0 s".into(),
            names,
        };
        assert_eq!(
            timeout.to_string(),
            "fenn: no answer from 10.4.0.15:22 after 5.0 s: the host may be down, or a firewall \
             drops the connection; if the network is just slow, raise ssh.connect_timeout in cluster.toml"
        );
        let unknown = TransportError::HostKeyUnknown {
            host: "fenn".into(),
            address: "10.4.0.15:22".into(),
            ip: "10.4.0.15".into(),
            port: 22,
            file: "/root/.ssh/known_hosts".into(),
            names,
        };
        assert_eq!(
            unknown.to_string(),
            "fenn: the host key of 10.4.0.15:22 is not in /root/.ssh/known_hosts and \
             ssh.known_hosts = \"strict\": add it after checking its fingerprint \
             (`ssh-keyscan -p 22 10.4.0.15 >> /root/.ssh/known_hosts`), or set \
             ssh.known_hosts = \"accept-new\" to record it on first contact"
        );
    }
}
