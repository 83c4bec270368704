//! `gt exec TARGET -- CMD`: a command on a node, a group or all hosts, in
//! parallel, each line prefixed with its host.

use super::{exit, CliError, Context};
use crate::facts::observe::runtime;
use crate::spec::{Node, Spec};
use crate::transport::{run_each, shell_join, Cmd, Hosts, OutputLine, Stream, TransportError};
use clap::Args;
use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// A node, a group (k8s_cluster, k8s_control_plane, k8s_worker, or a node's own) or `all`.
    pub target: String,
    /// The command, after `--`. Several words are each shell-quoted; a single
    /// word is a shell command line as it is (`gt exec all -- 'df -h | tail -1'`).
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
    /// At most this many hosts at once.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
    pub parallelism: u16,
    /// Deadline of the command on each host.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Print each host's output together, in file order, once all are done
    /// (instead of lines as they come).
    #[arg(long)]
    pub group_output: bool,
}

/// The nodes a target names, or an error that lists the valid targets.
pub fn select_target<'a>(spec: &'a Spec, target: &str) -> Result<Vec<&'a Node>, String> {
    let nodes = spec.select(target);
    if !nodes.is_empty() {
        return Ok(nodes);
    }
    let groups = spec.groups();
    let names: Vec<&str> = spec.nodes.iter().map(|n| n.name.as_str()).collect();
    let candidates: Vec<&str> = groups
        .iter()
        .map(String::as_str)
        .chain(names.iter().copied())
        .chain(["all"])
        .collect();
    let closest = crate::spec::suggest::did_you_mean(target, candidates);
    Err(format!(
        "no node or group named {target:?} in {}{}\n  groups: {}\n  nodes:  {}\n  or `all`",
        spec.source.display(),
        closest
            .map(|c| format!(" (did you mean {c:?}?)"))
            .unwrap_or_default(),
        groups.join(", "),
        names.join(", ")
    ))
}

/// The shell command line of `gt exec`'s words.
pub fn exec_command_line(words: &[String]) -> String {
    match words {
        [one] => one.clone(),
        many => shell_join(many),
    }
}

/// How one host's run ended, for the summary.
enum Outcome {
    Ok,
    Exit(i32),
    Error(TransportError),
}

pub fn exec(ctx: &Context, a: ExecArgs) -> Result<u8, CliError> {
    let spec = ctx.load_spec()?;
    let targets = select_target(&spec, &a.target)?;
    let rt = runtime()?;
    let hosts = Hosts::new(targets.iter().copied(), &super::transport_options())?;
    let cmd = Cmd::new(exec_command_line(&a.command)).timeout(a.timeout);
    let width = targets
        .iter()
        .map(|n| n.name.as_str().len())
        .max()
        .unwrap_or(0);
    let outcomes = rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<OutputLine>();
        let group = a.group_output;
        let printer = tokio::spawn(async move {
            let mut held: BTreeMap<String, Vec<OutputLine>> = BTreeMap::new();
            while let Some(l) = rx.recv().await {
                if group {
                    held.entry(l.host.clone()).or_default().push(l);
                } else {
                    print_line(&l, width);
                }
            }
            held
        });
        let outcomes = run_each(&targets, a.parallelism as usize, |node| {
            let (hosts, cmd, tx) = (&hosts, &cmd, tx.clone());
            async move {
                let name = node.name.as_str();
                (name.to_string(), run_on(hosts, name, cmd, &tx).await)
            }
        })
        .await;
        hosts.close().await;
        drop(tx);
        let mut held = printer.await.unwrap_or_default();
        for node in &targets {
            for l in held.remove(node.name.as_str()).unwrap_or_default() {
                print_line(&l, width);
            }
        }
        outcomes
    });
    let failed: Vec<String> = outcomes
        .iter()
        .filter_map(|(name, o)| match o {
            Outcome::Ok => None,
            Outcome::Exit(code) => Some(format!("{name}: exit {code}")),
            Outcome::Error(TransportError::CommandNotFound { command, .. }) => {
                Some(format!("{name}: {command} not installed"))
            }
            Outcome::Error(TransportError::CommandTimeout { after, .. }) => {
                Some(format!("{name}: timed out after {after}"))
            }
            Outcome::Error(_) => Some(format!("{name}: unreachable")),
        })
        .collect();
    let total = outcomes.len();
    let _ = writeln!(
        std::io::stderr(),
        "{total} host{}: {} ok, {} failed{}",
        if total == 1 { "" } else { "s" },
        total - failed.len(),
        failed.len(),
        if failed.is_empty() {
            String::new()
        } else {
            format!(" ({})", failed.join("; "))
        }
    );
    // Each failure was told in the host's lines and the summary.
    Ok(if failed.is_empty() {
        exit::OK
    } else {
        exit::ERROR
    })
}

/// Runs the command on one host; its lines go to `lines` as they come.
async fn run_on(
    hosts: &Hosts,
    name: &str,
    cmd: &Cmd,
    lines: &tokio::sync::mpsc::UnboundedSender<OutputLine>,
) -> Outcome {
    let result = match hosts.get(name).await {
        Ok(h) => h
            .run(cmd, Some(lines))
            .await
            .and_then(|o| o.check_installed(name, cmd)),
        Err(e) => Err(e),
    };
    match result {
        Ok(o) if o.success() => Outcome::Ok,
        Ok(o) => Outcome::Exit(o.code),
        Err(e) => {
            // The error reads as one more line of the host's output.
            let _ = lines.send(OutputLine {
                host: name.to_string(),
                stream: Stream::Stderr,
                line: format!("error: {}", e.reason()),
            });
            Outcome::Error(e)
        }
    }
}

/// A closed stdout or stderr loses lines, never the commands' runs: they
/// were started on the hosts and are seen to their end (SIGPIPE is ignored
/// for `gt exec`, see `signals::set_sigpipe`).
fn print_line(l: &OutputLine, width: usize) {
    let line = crate::render::sanitize(&l.line);
    let _ = match l.stream {
        Stream::Stdout => writeln!(crate::ui::Stdout, "{:<width$} | {line}", l.host),
        Stream::Stderr => writeln!(std::io::stderr(), "{:<width$} | {line}", l.host),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        let src = "[cluster]\nname = \"t\"\nkubernetes_version = \"1.32\"\nendpoint = \"10.4.0.10:6443\"\n\
             pod_cidr = \"192.168.0.0/16\"\nservice_cidr = \"172.16.0.0/20\"\n[cluster.cni]\nname = \"calico\"\n\
             manifest = \"https://example.invalid/c.yaml\"\n[defaults]\narch = \"arm64\"\n\
             [nodes.bettley]\nrole = \"control-plane\"\naddress = \"10.4.0.11\"\n\
             [nodes.fenn]\nrole = \"worker\"\naddress = \"10.4.0.15\"\ngroups = [\"ceph\"]\n\
             [nodes.velaryon]\nrole = \"worker\"\naddress = \"10.4.1.10\"\n";
        crate::spec::load_str(src, std::path::Path::new("cluster.toml")).expect("valid")
    }

    #[test]
    fn exec_targets_are_nodes_groups_or_all() {
        let s = spec();
        let names = |t: &str| -> Vec<String> {
            select_target(&s, t)
                .unwrap()
                .iter()
                .map(|n| n.name.to_string())
                .collect()
        };
        assert_eq!(names("k8s_worker"), vec!["fenn", "velaryon"]);
        assert_eq!(names("ceph"), vec!["fenn"]);
        assert_eq!(names("bettley"), vec!["bettley"]);
        assert_eq!(names("all").len(), 3);
    }

    #[test]
    fn an_unknown_target_lists_the_valid_ones_and_suggests_the_closest() {
        let e = select_target(&spec(), "k8s_workers").unwrap_err();
        assert!(e.contains("(did you mean \"k8s_worker\"?)"), "{e}");
        assert!(
            e.contains("groups: ceph, k8s_cluster, k8s_control_plane, k8s_worker"),
            "{e}"
        );
        assert!(e.contains("nodes:  bettley, fenn, velaryon"), "{e}");
    }

    #[test]
    fn exec_words_are_quoted_and_a_single_word_is_a_command_line() {
        let w = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            exec_command_line(&w(&["systemctl", "status", "kubelet"])),
            "systemctl status kubelet"
        );
        assert_eq!(
            exec_command_line(&w(&["echo", "a b", "$HOME"])),
            "echo 'a b' '$HOME'"
        );
        assert_eq!(
            exec_command_line(&w(&["df -h | tail -1"])),
            "df -h | tail -1"
        );
    }
}
