//! The simulated `kubectl`: get (nodes, pods, PodDisruptionBudgets, `--raw`
//! health endpoints), label, annotate, taint, cordon, uncordon, drain, delete
//! node, apply (manifests from files, URLs or stdin), exec (into etcd's static
//! Pod), version.
//! Outputs and errors are kubectl 1.32's.

pub(crate) mod apply;
mod configmap;
mod drain;
pub(crate) mod exec;
mod get;
mod label;
mod pods;
mod request;
mod taint;

use apply::apply;
use drain::{cordon, delete, drain};
use get::get;
use label::label;
use request::Ctx;
use taint::taint;

use super::flags::{self, boolean, string, Flag, Parsed};
use super::host::Host;
use super::latency::Op;

const GLOBAL: &[Flag] = &[
    string("kubeconfig"),
    string("server").short('s'),
    string("request-timeout"),
    string("context"),
    string("cluster"),
    string("user"),
    string("token"),
    string("namespace").short('n'),
    boolean("insecure-skip-tls-verify"),
    string("certificate-authority"),
    string("v").short('v'),
];

const ADMIN_USERS: &[&str] = &["kubernetes-admin", "kubernetes-super-admin"];

fn err(msg: &str) -> u8 {
    eprintln!("error: {msg}");
    1
}

/// A read or write of the API objects failed: etcd's words as the API
/// server relays them (`Error from server: etcdserver: request timed out`),
/// else the lab's own error.
fn state_err(e: &std::io::Error) -> u8 {
    match crate::sim::state::etcd_failure(e) {
        Some(message) => {
            eprintln!("Error from server: {message}");
            1
        }
        None => err(&e.to_string()),
    }
}

/// kubectl's error for an unknown flag of `sub`.
fn flag_err(sub: &str, msg: &str) -> u8 {
    eprintln!("error: {msg}\nSee 'kubectl {sub} --help' for usage.");
    1
}

fn command_flags(sub: &str) -> Option<Vec<Flag>> {
    let specific: &[Flag] = match sub {
        "get" => &[
            string("output").short('o'),
            string("raw"),
            string("selector").short('l'),
            boolean("show-labels"),
            boolean("no-headers"),
            boolean("all-namespaces").short('A'),
            boolean("watch").short('w'),
            boolean("watch-only"),
            boolean("output-watch-events"),
            string("sort-by"),
            string("field-selector"),
        ],
        "label" => &[
            boolean("overwrite"),
            boolean("all"),
            string("selector").short('l'),
            string("dry-run"),
            string("output").short('o'),
            boolean("list"),
        ],
        "taint" => &[
            boolean("overwrite"),
            boolean("all"),
            string("selector").short('l'),
            string("dry-run"),
            string("output").short('o'),
        ],
        "drain" => &[
            boolean("ignore-daemonsets"),
            boolean("delete-emptydir-data"),
            boolean("delete-local-data"),
            boolean("force"),
            string("timeout"),
            string("grace-period"),
            boolean("disable-eviction"),
            string("pod-selector"),
            string("selector").short('l'),
            string("skip-wait-for-delete-timeout"),
            string("chunk-size"),
            string("dry-run"),
        ],
        "cordon" | "uncordon" => &[string("selector").short('l'), string("dry-run")],
        "annotate" => &[
            boolean("overwrite"),
            boolean("all"),
            string("selector").short('l'),
            string("dry-run"),
            string("output").short('o'),
            boolean("list"),
            string("resource-version"),
        ],
        "delete" => &[
            boolean("wait"),
            string("grace-period"),
            boolean("force"),
            boolean("ignore-not-found"),
            string("timeout"),
            string("output").short('o'),
            string("filename").short('f'),
        ],
        "apply" => &[
            string("filename").short('f'),
            boolean("recursive").short('R'),
            boolean("server-side"),
            boolean("force-conflicts"),
            string("field-manager"),
            string("dry-run"),
            string("output").short('o'),
            boolean("validate"),
        ],
        "version" => &[boolean("client"), string("output").short('o')],
        _ => return None,
    };
    let mut v = specific.to_vec();
    v.extend_from_slice(GLOBAL);
    Some(v)
}

/// The subcommand: the first argument that is neither a flag nor a global flag's value.
fn find_subcommand(args: &[String]) -> Option<usize> {
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if !a.starts_with('-') {
            return Some(i);
        }
        let name = a.trim_start_matches('-').split('=').next().unwrap_or("");
        let takes_value = GLOBAL.iter().any(|f| {
            f.value && (f.long == name || (a.len() == 2 && f.short == name.chars().next()))
        });
        i += if takes_value && !a.contains('=') {
            2
        } else {
            1
        };
    }
    None
}

pub(crate) fn run(host: &Host, args: &[String]) -> u8 {
    let Some(pos) = find_subcommand(args) else {
        if let Err(e) = flags::parse(args, GLOBAL) {
            eprintln!("error: {e}\nSee 'kubectl --help' for usage.");
            return 1;
        }
        println!("kubectl controls the Kubernetes cluster manager.\n\nFind more information at: https://kubernetes.io/docs/reference/kubectl/");
        return 0;
    };
    let sub = args[pos].clone();
    if sub == "exec" {
        let mut rest = args[..pos].to_vec();
        rest.extend_from_slice(&args[pos + 1..]);
        return exec::exec(host, &rest);
    }
    let Some(spec) = command_flags(&sub) else {
        eprintln!("error: unknown command \"{sub}\" for \"kubectl\"");
        return 1;
    };
    let mut rest = args[..pos].to_vec();
    rest.extend_from_slice(&args[pos + 1..]);
    let p = match flags::parse(&rest, &spec) {
        Ok(p) => p,
        Err(e) => return flag_err(&sub, &e),
    };
    // An explicit --kubeconfig must exist (clientcmd's explicit-path rule),
    // unlike $KUBECONFIG and ~/.kube/config, whose absence means "no config".
    if let Some(path) = p.get("kubeconfig") {
        if sub != "version" && !std::path::Path::new(path).exists() {
            eprintln!("error: stat {path}: no such file or directory");
            return 1;
        }
    }
    let ctx = Ctx::new(host, &p);
    match sub.as_str() {
        "get" => get(&ctx, &p),
        "label" => label(&ctx, &p),
        "annotate" => label::annotate(&ctx, &p),
        "taint" => taint(&ctx, &p),
        "cordon" => cordon(&ctx, &p, true),
        "uncordon" => cordon(&ctx, &p, false),
        "drain" => drain(&ctx, &p),
        "delete" => delete(&ctx, &p),
        "apply" => apply(&ctx, &p),
        "version" => version(&ctx, &p),
        _ => unreachable!("command_flags knows every command"),
    }
}

/// `kubectl version`.
fn version(ctx: &Ctx, p: &Parsed) -> u8 {
    ctx.host.pause(Op::Kubectl);
    let v = &ctx.host.node().kubernetes_version;
    println!("Client Version: {v}");
    println!("Kustomize Version: v5.5.0");
    if p.on("client") {
        return 0;
    }
    match ctx.connect() {
        Ok(st) => {
            let sv = st
                .cluster
                .map(|c| c.kubernetes_version)
                .unwrap_or_else(|| v.clone());
            println!("Server Version: {sv}");
            0
        }
        Err(c) => c,
    }
}
