//! `kubectl exec`: into the etcd static Pod of a control plane
//! (`-n kube-system exec etcd-NODE -- etcdctl ...`), where the lab runs the
//! real etcdctl (or etcd) against that host's own member. The pod's view is
//! kept: its paths are mapped through the manifest's hostPath volumes into
//! the host's root, its 127.0.0.1 is the host's address, and what etcdctl
//! prints says the pod's paths and endpoints again.

use super::request::Ctx;
use super::{flag_err, GLOBAL};
use crate::sim::etcd::{self, member};
use crate::sim::flags::{self, boolean, string, Flag};
use crate::sim::host::Host;
use crate::sim::latency::Op;
use crate::topology::Faults;
use std::process::{Command, Stdio};

const EXEC_FLAGS: &[Flag] = &[
    string("container").short('c'),
    boolean("stdin").short('i'),
    boolean("tty").short('t'),
    boolean("quiet").short('q'),
    string("pod-running-timeout"),
    string("filename").short('f'),
];

/// What the etcd image holds, where its PATH finds it.
pub(crate) const IMAGE_PROGRAMS: &[&str] = &["etcd", "etcdctl"];

const USAGE: &str = "error: expected 'exec POD_NAME COMMAND [ARG1] [ARG2] ... [ARGN]'.\nPOD_NAME and COMMAND are required arguments for the exec command\nSee 'kubectl exec -h' for help and examples";

/// `args`: everything after `exec` (flags, the pod, `--`, the command).
pub(super) fn exec(host: &Host, args: &[String]) -> u8 {
    let (before, command) = match args.iter().position(|a| a == "--") {
        Some(i) => (&args[..i], &args[i + 1..]),
        None => (args, &args[args.len()..]),
    };
    let mut spec = EXEC_FLAGS.to_vec();
    spec.extend_from_slice(GLOBAL);
    let p = match flags::parse(before, &spec) {
        Ok(p) => p,
        Err(e) => return flag_err("exec", &e),
    };
    if p.positional.len() > 1 {
        eprintln!("error: exec [POD] [COMMAND] is not supported anymore. Use exec [POD] -- [COMMAND] instead\nSee 'kubectl exec -h' for help and examples");
        return 1;
    }
    let (Some(pod), Some(program)) = (p.positional.first(), command.first()) else {
        eprintln!("{USAGE}");
        return 1;
    };
    let ctx = Ctx::new(host, &p);
    host.pause(Op::Kubectl);
    let st = match ctx.connect() {
        Ok(st) => st,
        Err(code) => return code,
    };
    let namespace = p.get("namespace").unwrap_or("default");
    if !ctx.is_admin() {
        eprintln!("Error from server (Forbidden): pods \"{pod}\" is forbidden: User \"{}\" cannot create resource \"pods/exec\" in API group \"\" in the namespace \"{namespace}\"", ctx.user());
        return 1;
    }
    // A static Pod's mirror exists while its kubelet runs it on a
    // registered Node; the lab's pods to exec into are etcd's.
    let lab_host = pod
        .strip_prefix("etcd-")
        .filter(|_| namespace == "kube-system")
        .and_then(|node| st.nodes.get(node))
        .map(|n| n.host.clone())
        .filter(|h| member::pod(&host.lab_dir, h).is_some())
        .filter(|h| !Faults::load(&host.lab_dir, h).down);
    let Some(lab_host) = lab_host else {
        eprintln!("Error from server (NotFound): pods \"{pod}\" not found");
        return 1;
    };
    if let Some(c) = p.get("container").filter(|c| *c != "etcd") {
        eprintln!("Error from server (BadRequest): container {c} is not valid for pod {pod}");
        return 1;
    }
    if !etcd::real(&host.lab_dir) {
        eprintln!("kubectl (gt lab simulator): exec runs the real etcdctl, and this lab keeps etcd as a model (it found no etcd 3.5 when it came up; see `gt lab up`)");
        return 1;
    }
    if member::running_pid(&host.lab_dir, &lab_host).is_none() {
        eprintln!("error: unable to upgrade connection: container not found (\"etcd\")");
        return 1;
    }
    let name = program.rsplit('/').next().unwrap_or(program);
    if !IMAGE_PROGRAMS.contains(&name) {
        eprintln!("error: Internal error occurred: Internal error occurred: error executing command in container: failed to exec in container: failed to start exec \"5f0c8d1e2b7a\": OCI runtime exec failed: exec failed: unable to start container process: exec: \"{program}\": executable file not found in $PATH: unknown");
        return 1;
    }
    let code = run_in_pod(host, &lab_host, name, &command[1..], p.on("stdin"));
    if code != 0 {
        eprintln!("command terminated with exit code {code}");
    }
    u8::try_from(code).unwrap_or(1)
}

/// Runs `program` (one the etcd image holds) in `lab_host`'s etcd
/// container, its output in the pod's terms on this process's stdout and
/// stderr; its exit code (`kubectl exec` and `crictl exec` each report a
/// failure their own way).
pub(crate) fn run_in_pod(
    host: &Host,
    lab_host: &str,
    program: &str,
    args: &[String],
    stdin: bool,
) -> i32 {
    let lab_dir = &host.lab_dir;
    let Some(pod) = member::pod(lab_dir, lab_host) else {
        eprintln!("error: unable to upgrade connection: container not found (\"etcd\")");
        return 1;
    };
    let Some(address) = host.topology.node(lab_host).map(|n| n.address.clone()) else {
        eprintln!("error: unable to upgrade connection: pod not found (\"{lab_host}\")");
        return 1;
    };
    let root = member::host_root(lab_dir, lab_host);
    let scratch = member::scratch_root(lab_dir, lab_host);
    let _ = std::fs::create_dir_all(&scratch);
    let mapped: Vec<String> = args
        .iter()
        .map(|a| pod.host_arg(a, &address, &root, &scratch))
        .collect();
    let out = Command::new(etcd::program(lab_dir, program))
        .args(&mapped)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .current_dir(&scratch)
        .stdin(if stdin {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .output();
    let out = match out {
        Ok(o) => o,
        Err(e) => {
            eprintln!("gt lab simulator: cannot run {program}: {e}");
            return 1;
        }
    };
    // `endpoint health|status` print the endpoints they were given; with
    // `--cluster`, and everywhere else, the members' own URLs.
    let given_endpoints = args.iter().any(|a| a == "endpoint")
        && !args
            .iter()
            .any(|a| a == "--cluster" || a == "--cluster=true");
    let unmap = |text: &[u8]| -> String {
        let mut s = String::from_utf8_lossy(text).into_owned();
        for (name, mount) in &pod.mounts {
            if let Some((_, hp)) = pod.host_paths.iter().find(|(n, _)| n == name) {
                let on_host = root.join(hp.trim_start_matches('/')).display().to_string();
                s = s.replace(&on_host, mount);
            }
        }
        s = s.replace(&format!("{}/", scratch.display()), "/");
        if given_endpoints {
            // The endpoints etcdctl was given, as it was given them.
            for (a, m) in args.iter().zip(&mapped) {
                if a != m && a.starts_with("--endpoints=") {
                    let (orig, host_side) =
                        (&a["--endpoints=".len()..], &m["--endpoints=".len()..]);
                    for (o, h) in orig.split(',').zip(host_side.split(',')) {
                        s = s.replace(h, o);
                    }
                }
            }
        }
        s
    };
    use std::io::Write;
    let _ = std::io::stdout().write_all(unmap(&out.stdout).as_bytes());
    let _ = std::io::stderr().write_all(unmap(&out.stderr).as_bytes());
    out.status.code().unwrap_or(1)
}
