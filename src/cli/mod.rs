//! Command-line definitions, exit codes and wiring. Knows how nothing is done.

pub mod apply;
mod drift;
pub mod finish;
pub mod hosts;
pub mod lab;
pub mod spine;
mod unlock;

use clap::{Parser, Subcommand};
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
    after_help = finish::examples::GT
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
    #[command(after_help = finish::examples::VALIDATE)]
    Validate(spine::ValidateArgs),
    /// Show what apply would change, Terraform-style.
    #[command(after_help = finish::examples::PLAN)]
    Plan(spine::PlanArgs),
    /// Observe, plan, ask, then carry the plan out step by step; a recap at the end.
    #[command(after_help = finish::examples::APPLY)]
    Apply(apply::ApplyArgs),
    /// Read-only: report every way the cluster differs from cluster.toml (exit 0 in sync, 2 drift, 1 failed).
    Drift(drift::DriftArgs),
    /// Draw the plan's DAG (DOT or Mermaid). Without --facts, a full bootstrap; contacts no host.
    #[command(after_help = finish::examples::GRAPH)]
    Graph(spine::GraphArgs),
    /// Probe every host and print the observed facts as JSON.
    #[command(after_help = finish::examples::OBSERVE)]
    Observe(hosts::ObserveArgs),
    /// A table of nodes: role, address, arch, joined, Ready, kubelet version, drift.
    #[command(after_help = finish::examples::STATUS)]
    Status(hosts::StatusArgs),
    /// Run a command on a node, a group or all hosts, in parallel.
    #[command(after_help = finish::examples::EXEC)]
    Exec(hosts::ExecArgs),
    /// Show the apply lock of the cluster, and remove it (a crashed apply's) after confirmation.
    Unlock(unlock::UnlockArgs),
    /// A simulated cluster on this machine, for trying gt and for tests.
    #[command(subcommand, after_help = finish::examples::LAB)]
    Lab(lab::LabCommand),
    /// Print a completion script for bash, zsh, fish, elvish or powershell.
    #[command(after_help = finish::examples::COMPLETIONS)]
    Completions(finish::CompletionsArgs),
    /// Print the gt(1) man page (roff), or write one page per command with --out-dir.
    #[command(after_help = finish::examples::MAN)]
    Man(finish::ManArgs),
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
    // `gt plan | head` must end quietly, not panic in println!: take the
    // default SIGPIPE action, as every Unix filter does.
    // SAFETY: setting a signal disposition before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let ctx = Context {
        config_flag: cli.config.clone(),
        color: crate::render::color_wanted(cli.no_color),
    };
    let code = match cli.command {
        Command::Validate(a) => spine::validate(&ctx, a),
        Command::Plan(a) => spine::plan(&ctx, a),
        Command::Graph(a) => spine::graph(&ctx, a),
        Command::Apply(a) => apply::apply(&ctx, a),
        Command::Drift(a) => drift::drift(&ctx, a),
        Command::Observe(a) => hosts::observe(&ctx, a),
        Command::Status(a) => hosts::status(&ctx, a),
        Command::Exec(a) => hosts::exec(&ctx, a),
        Command::Unlock(a) => unlock::unlock(&ctx, a),
        Command::Lab(c) => lab::run(&ctx, c),
        Command::Completions(a) => finish::completions(a),
        Command::Man(a) => finish::man(a),
    };
    ExitCode::from(code)
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
    /// On failure prints every diagnostic to stderr and returns the exit code.
    pub fn load_spec(&self) -> Result<crate::spec::Spec, u8> {
        let path = match crate::spec::find_config(self.config_flag.as_deref()) {
            Ok(p) => p,
            Err(msg) => {
                eprintln!("error: {msg}");
                return Err(exit::ERROR);
            }
        };
        crate::spec::load_file(&path).map_err(|diags| {
            eprint!("{diags}");
            exit::ERROR
        })
    }
}
