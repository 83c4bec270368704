//! `crictl ps` and `crictl exec` on a control plane: the one container the
//! lab runs for real, etcd's, seen through the host's container runtime
//! (no API server, no kubelet needed, as on a kubeadm host). `exec` runs
//! the real etcdctl in the container's view, as `kubectl exec` does
//! ([`super::kubectl::exec::run_in_pod`]); it reports a failure the way
//! crictl 1.32 does (a `level=fatal` line, exit 1). The other containers
//! of a control plane (kube-apiserver, ...) are not listed.

use super::etcd::{self, member};
use super::host::Host;
use sha2::{Digest, Sha256};

/// The etcd container on this host, when its member runs: (full ID, pod ID).
fn etcd_container(host: &Host) -> Option<(String, String)> {
    if !etcd::real(&host.lab_dir) {
        return None;
    }
    let pid = member::running_pid(&host.lab_dir, &host.name)?;
    let id = |what: &str| {
        let digest = Sha256::digest(format!("{what}/{}/{pid}", host.name).as_bytes());
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    Some((id("container"), id("sandbox")))
}

/// `--name`'s regular expression against a container's name, for the
/// patterns a person types: a literal, anchored with `^` and `$` or not.
fn name_matches(pattern: &str, name: &str) -> bool {
    let (start, rest) = match pattern.strip_prefix('^') {
        Some(r) => (true, r),
        None => (false, pattern),
    };
    let (end, literal) = match rest.strip_suffix('$') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    match (start, end) {
        (true, true) => name == literal,
        (true, false) => name.starts_with(literal),
        (false, true) => name.ends_with(literal),
        (false, false) => name.contains(literal),
    }
}

fn fatal(message: &str) -> u8 {
    eprintln!(
        "time=\"{}\" level=fatal msg=\"{}\"",
        super::clock::rfc3339(super::clock::now()),
        message.replace('"', "\\\"")
    );
    1
}

/// Flags of `crictl ps` and `crictl exec` that take a value.
const VALUE_FLAGS: &[&str] = &[
    "--name",
    "--pod",
    "-p",
    "--image",
    "--state",
    "--label",
    "--last",
    "-n",
    "--timeout",
    "--transport",
    "-r",
    "--output",
    "-o",
    "--id",
    "--tls-sni",
    "--tls-server-name",
    "--tls-ca",
    "--tls-cert",
    "--tls-key",
];

/// Flags (with their values) and positional arguments; flags stop at the
/// first positional argument, as urfave/cli parses them.
struct Args {
    flags: Vec<(String, Option<String>)>,
    positional: Vec<String>,
}

fn parse(args: &[String]) -> Args {
    let mut flags = Vec::new();
    let mut i = 0;
    while let Some(a) = args.get(i) {
        if a == "--" {
            i += 1;
            break;
        }
        if !a.starts_with('-') || a == "-" {
            break;
        }
        match a.split_once('=') {
            Some((f, v)) => flags.push((f.to_string(), Some(v.to_string()))),
            None if VALUE_FLAGS.contains(&a.as_str()) => {
                flags.push((a.clone(), args.get(i + 1).cloned()));
                i += 1;
            }
            None if a.len() > 2 && !a.starts_with("--") => {
                // Short flags run together: -it, -sq.
                for c in a[1..].chars() {
                    flags.push((format!("-{c}"), None));
                }
            }
            None => flags.push((a.clone(), None)),
        }
        i += 1;
    }
    Args {
        flags,
        positional: args[i.min(args.len())..].to_vec(),
    }
}

impl Args {
    fn value(&self, names: &[&str]) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|(f, _)| names.contains(&f.as_str()))
            .and_then(|(_, v)| v.as_deref())
    }
    fn on(&self, names: &[&str]) -> bool {
        self.flags.iter().any(|(f, _)| names.contains(&f.as_str()))
    }
}

/// `crictl ps [-a] [-q] [--name REGEX]`: the running etcd container.
pub(crate) fn ps(host: &Host, args: &[String]) -> u8 {
    host.pause(super::latency::Op::Crictl);
    let a = parse(args);
    let mut rows = Vec::new();
    if let Some((id, pod)) = etcd_container(host) {
        if a.value(&["--name"]).is_none_or(|p| name_matches(p, "etcd")) {
            rows.push((id, pod));
        }
    }
    if a.on(&["-q", "--quiet"]) {
        for (id, _) in rows {
            println!("{id}");
        }
        return 0;
    }
    let mut table = vec![[
        "CONTAINER",
        "IMAGE",
        "CREATED",
        "STATE",
        "NAME",
        "ATTEMPT",
        "POD ID",
        "POD",
    ]
    .map(str::to_string)
    .to_vec()];
    for (id, pod) in rows {
        table.push(vec![
            id[..13].to_string(),
            "a9e7e6b294baf".into(),
            "About a minute ago".into(),
            "Running".into(),
            "etcd".into(),
            "0".into(),
            pod[..13].to_string(),
            format!("etcd-{}", host.name),
        ]);
    }
    print!("{}", super::table::tabwrite(&table, 20, 1));
    0
}

/// `crictl exec [-q] [--name REGEX | CONTAINER-ID] COMMAND [ARG...]`.
pub(crate) fn exec(host: &Host, args: &[String]) -> u8 {
    host.pause(super::latency::Op::Crictl);
    let a = parse(args);
    let filtered = a.on(&[
        "--name", "--pod", "-p", "--image", "--state", "--label", "--latest", "-l", "--last", "-n",
    ]);
    let container = etcd_container(host);
    let (id, command) = if filtered {
        let matches = container.as_ref().filter(|_| {
            a.value(&["--name"]).is_none_or(|p| name_matches(p, "etcd"))
                && a.value(&["--image", "--pod", "-p", "--label"]).is_none()
        });
        let Some((id, _)) = matches else {
            eprintln!(
                "time=\"{}\" level=error msg=\"No containers found per filter flags\"",
                super::clock::rfc3339(super::clock::now())
            );
            println!("NAME:\n   crictl exec - Run a command in a running container\n\nUSAGE:\n   crictl exec [command options] [CONTAINER-ID] COMMAND [ARG...]");
            return 0;
        };
        if !a.on(&["-q", "--quiet", "-x", "--parallel"]) {
            println!("{id}:");
        }
        (id.clone(), a.positional.clone())
    } else {
        let Some((wanted, command)) = a.positional.split_first() else {
            println!("NAME:\n   crictl exec - Run a command in a running container\n\nUSAGE:\n   crictl exec [command options] [CONTAINER-ID] COMMAND [ARG...]");
            return 0;
        };
        match container
            .as_ref()
            .filter(|(id, _)| wanted.len() >= 3 && id.starts_with(wanted.as_str()))
        {
            Some((id, _)) => (id.clone(), command.to_vec()),
            None => {
                return fatal(&format!(
                    "execing command in container {wanted}: rpc error: code = NotFound desc = an error occurred when try to find container \"{wanted}\": not found"
                ))
            }
        }
    };
    let Some(program) = command.first() else {
        println!("NAME:\n   crictl exec - Run a command in a running container\n\nUSAGE:\n   crictl exec [command options] [CONTAINER-ID] COMMAND [ARG...]");
        return 0;
    };
    let name = program.rsplit('/').next().unwrap_or(program);
    if !super::kubectl::exec::IMAGE_PROGRAMS.contains(&name) {
        return fatal(&format!(
            "execing command in container {id}: Internal error occurred: error executing command in container: failed to exec in container: failed to start exec: OCI runtime exec failed: exec failed: unable to start container process: exec: \"{program}\": executable file not found in $PATH: unknown"
        ));
    }
    let code = super::kubectl::exec::run_in_pod(
        host,
        &host.name,
        name,
        &command[1..],
        a.on(&["-i", "--interactive"]),
    );
    if code != 0 {
        return fatal(&format!(
            "execing command in container {id}: command terminated with exit code {code}"
        ));
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_pattern_is_a_literal_with_optional_anchors() {
        assert!(name_matches("^etcd$", "etcd"));
        assert!(name_matches("etcd", "etcd"));
        assert!(name_matches("tc", "etcd"));
        assert!(!name_matches("^tc", "etcd"));
        assert!(!name_matches("^etcd$", "etcd-2"));
    }

    #[test]
    fn flags_stop_at_the_command_and_take_their_values() {
        let args: Vec<String> = [
            "-q",
            "--name",
            "^etcd$",
            "etcdctl",
            "--endpoints=x",
            "member",
            "list",
        ]
        .map(String::from)
        .to_vec();
        let a = parse(&args);
        assert!(a.on(&["-q"]));
        assert_eq!(a.value(&["--name"]), Some("^etcd$"));
        assert_eq!(a.positional, ["etcdctl", "--endpoints=x", "member", "list"]);
        let a = parse(&["-it".to_string(), "abc".to_string(), "sh".to_string()]);
        assert!(a.on(&["-i"]) && a.on(&["-t"]));
        assert_eq!(a.positional, ["abc", "sh"]);
    }
}
