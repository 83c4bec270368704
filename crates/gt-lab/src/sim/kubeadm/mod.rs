//! The simulated `kubeadm`: init (and `init phase upload-certs`), join, reset,
//! token create/list/delete/generate, upgrade plan/apply/node, version. Behaviour and messages follow
//! docs/kubeadm.md and kubeadm 1.32; see the module docs of `sim` for config
//! files. One module per subcommand; `config`, `preflight` and `cluster` hold
//! what several of them share.

mod cluster;
mod config;
mod host_checks;
mod init;
mod join;
mod preflight;
mod reset;
mod token;
mod upgrade;
mod upgrade_apply;
mod upgrade_plan;
mod upload_certs;

pub(crate) use cluster::register_node;
use init::init;
use join::join;
use reset::reset;
use token::token;
use upload_certs::init_phase;

use super::flags::{self, string, Flag, Parsed};
use super::host::Host;
use super::latency::Op;
use std::sync::atomic::{AtomicU32, Ordering};

const STACK_HINT: &str = "To see the stack trace of this error execute with --v=5 or higher";
const TOKEN_PATTERN: &str = r"\A([a-z0-9]{6})\.([a-z0-9]{16})\z";
const TOKEN_ID_PATTERN: &str = r"\A([a-z0-9]{6})\z";
const DEFAULT_TOKEN_TTL: f64 = 24.0 * 3600.0;
const CERTS_TTL: f64 = 2.0 * 3600.0;
const DEFAULT_CRI_SOCKET: &str = "unix:///var/run/containerd/containerd.sock";
const DEFAULT_SERVICE_CIDR: &str = "10.96.0.0/12";
const CP_LABEL: &str = "node-role.kubernetes.io/control-plane";
const EXCLUDE_LB_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";

/// kubeadm 1.32's exit codes (`cmd/kubeadm/app/util/error.go`): 1, and 3 for
/// a validation `Aggregate` that reaches `CheckErr` unwrapped. Its 2 for a
/// `preflight.Error` never shows from the commands the lab runs: the phase
/// runner wraps every phase's error, which hides that type (see
/// `preflight::report_failure`).
const EXIT_ERROR: u8 = 1;
const EXIT_VALIDATION: u8 = 3;

const GLOBAL: &[Flag] = &[string("v").short('v'), string("rootfs")];

/// The running kubeadm's minor, as its package says (set by [`run`]).
static MINOR: AtomicU32 = AtomicU32::new(32);

/// kubeadm 1.34 and later: one error handler (`util/errors.HandleError`).
fn one_exit_code() -> bool {
    MINOR.load(Ordering::Relaxed) >= 34
}

/// Prints a kubeadm error as `cmdutil.CheckErr` does and returns its exit
/// code; 1.34's handler prefixes `error: ` and always exits 1.
fn fail(msg: &str, code: u8) -> u8 {
    if one_exit_code() {
        eprintln!("error: {msg}\n{STACK_HINT}");
        EXIT_ERROR
    } else {
        eprintln!("{msg}\n{STACK_HINT}");
        code
    }
}

/// Parses the flags of a command that takes no positional arguments.
fn parse_flags(args: &[String], specific: &[Flag], command: &str) -> Result<Parsed, u8> {
    let p = flags::parse(args, &with_global(specific)).map_err(|e| fail(&e, EXIT_ERROR))?;
    if let Some(extra) = p.positional.first() {
        return Err(fail(
            &format!("unknown command \"{extra}\" for \"{command}\""),
            EXIT_ERROR,
        ));
    }
    Ok(p)
}

fn with_global(specific: &[Flag]) -> Vec<Flag> {
    let mut v = specific.to_vec();
    v.extend_from_slice(GLOBAL);
    v
}

pub(crate) fn run(host: &Host, args: &[String]) -> u8 {
    MINOR.store(upgrade::kubeadm_version(host).minor, Ordering::Relaxed);
    let Some(pos) = args.iter().position(|a| !a.starts_with('-')) else {
        if let Err(e) = flags::parse(args, GLOBAL) {
            return fail(&e, EXIT_ERROR);
        }
        println!("Usage:\n  kubeadm [command]\n\nAvailable Commands:\n  certs\n  completion\n  config\n  help\n  init\n  join\n  kubeconfig\n  reset\n  token\n  upgrade\n  version");
        return 0;
    };
    let mut rest: Vec<String> = args[..pos].to_vec();
    rest.extend_from_slice(&args[pos + 1..]);
    match args[pos].as_str() {
        "init" => {
            if rest.first().map(String::as_str) == Some("phase") {
                return init_phase(host, &rest[1..]);
            }
            init(host, &rest)
        }
        "join" => join(host, &rest),
        "reset" => reset(host, &rest),
        "token" => token(host, &rest),
        "upgrade" => upgrade::upgrade(host, &rest),
        "version" => version(host, &rest),
        other => fail(
            &format!("unknown command \"{other}\" for \"kubeadm\""),
            EXIT_ERROR,
        ),
    }
}

/// `kubeadm version`.
fn version(host: &Host, args: &[String]) -> u8 {
    let p = match flags::parse(args, &with_global(&[string("output").short('o')])) {
        Ok(p) => p,
        Err(e) => return fail(&e, EXIT_ERROR),
    };
    host.pause(Op::Instant);
    let lab = host.node();
    let v = &lab.kubernetes_version;
    let minor = v.trim_start_matches('v').split('.').nth(1).unwrap_or("0");
    let platform = format!("linux/{}", lab.arch);
    match p.get("output").unwrap_or("") {
        "short" => println!("{v}"),
        "" => println!(
            "kubeadm version: &version.Info{{Major:\"1\", Minor:\"{minor}\", EmulationMajor:\"\", EmulationMinor:\"\", MinCompatibilityMajor:\"\", MinCompatibilityMinor:\"\", GitVersion:\"{v}\", GitCommit:\"c0fd2a1b8c4e1dbd1ae2e8e3f16cb9e2de0a7e53\", GitTreeState:\"clean\", BuildDate:\"2025-04-22T16:02:27Z\", GoVersion:\"go1.23.6\", Compiler:\"gc\", Platform:\"{platform}\"}}"
        ),
        "json" => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"clientVersion": {
                "major": "1", "minor": minor, "gitVersion": v,
                "gitCommit": "c0fd2a1b8c4e1dbd1ae2e8e3f16cb9e2de0a7e53", "gitTreeState": "clean",
                "buildDate": "2025-04-22T16:02:27Z", "goVersion": "go1.23.6", "compiler": "gc",
                "platform": platform}}))
            .expect("json")
        ),
        other => {
            return fail(
                &format!("invalid output format: {other}"),
                EXIT_ERROR,
            )
        }
    }
    0
}
