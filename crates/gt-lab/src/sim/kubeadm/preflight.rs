//! kubeadm's preflight checks: which fail on this host, which the user
//! ignored, and how kubeadm reports the rest.

use super::{fail, EXIT_ERROR, STACK_HINT};
use crate::sim::api::View;
use crate::sim::clock;
use crate::sim::files;
use crate::sim::host::Host;
use crate::sim::latency::Op;
use crate::sim::state::State;
use std::collections::BTreeSet;

/// kubeadm's ValidateIgnorePreflightErrors.
pub(super) fn ignore_set(
    cli: &[String],
    from_config: &[String],
) -> Result<BTreeSet<String>, String> {
    let mut set: BTreeSet<String> = from_config.iter().map(|s| s.to_lowercase()).collect();
    let mut errs = Vec::new();
    if set.contains("all") {
        errs.push(
            "ignorePreflightErrors: Invalid value: \"all\": 'all' cannot be used in configuration file"
                .to_string(),
        );
    }
    set.extend(cli.iter().map(|s| s.to_lowercase()));
    if set.contains("all") && set.len() > 1 {
        let joined = set.iter().cloned().collect::<Vec<_>>().join(",");
        errs.push(format!(
            "ignore-preflight-errors: Invalid value: \"{joined}\": don't specify individual checks if 'all' is used"
        ));
    }
    match errs.len() {
        0 => Ok(set),
        1 => Err(errs.remove(0)),
        _ => Err(format!("[{}]", errs.join(", "))),
    }
}

/// One failed preflight check.
pub(super) struct Check {
    name: String,
    message: String,
    /// A warning whatever `--ignore-preflight-errors` says.
    warning: bool,
}

impl Check {
    pub(super) fn error(name: &str, message: &str) -> Check {
        Check {
            name: name.into(),
            message: message.into(),
            warning: false,
        }
    }
    pub(super) fn warning(name: &str, message: &str) -> Check {
        Check {
            name: name.into(),
            message: message.into(),
            warning: true,
        }
    }
}

fn file_available(host: &Host, path: &str) -> Option<Check> {
    host.exists(path).then(|| {
        Check::error(
            &format!("FileAvailable-{}", path.replace('/', "-")),
            &format!("{path} already exists"),
        )
    })
}

fn dir_available(host: &Host, path: &str) -> Option<Check> {
    host.dir_not_empty(path).then(|| {
        Check::error(
            &format!("DirAvailable-{}", path.replace('/', "-")),
            &format!("{path} is not empty"),
        )
    })
}

fn port_open(port: u16, in_use: bool) -> Option<Check> {
    in_use.then(|| Check::error(&format!("Port-{port}"), &format!("Port {port} is in use")))
}

/// The kubelet answers on 10250: running with a kubeconfig.
fn kubelet_serving(host: &Host, state: &State) -> bool {
    state.kubelet_running(&host.name) && host.exists(files::KUBELET_CONF)
}

fn static_pod_running(host: &Host, state: &State, name: &str) -> bool {
    state.kubelet_running(&host.name) && host.exists(&files::manifest_path(name))
}

/// kubeadm's RunJoinNodeChecks (the local part).
pub(super) fn join_node_checks(
    host: &Host,
    state: &State,
    control_plane: bool,
) -> Vec<Option<Check>> {
    let mut v = vec![
        file_available(host, files::KUBELET_CONF),
        file_available(host, files::BOOTSTRAP_KUBELET_CONF),
        port_open(10250, kubelet_serving(host, state)),
    ];
    if !control_plane {
        v.push(file_available(host, files::CA_CRT));
    }
    v.extend(super::host_checks::common_checks(host, None));
    v
}

/// kubeadm's RunInitNodeChecks; `secondary` for a joining control plane.
pub(super) fn init_node_checks(host: &Host, state: &State, secondary: bool) -> Vec<Option<Check>> {
    let view = View {
        lab_dir: &host.lab_dir,
        state,
        now: clock::now(),
    };
    let mut v = vec![
        port_open(6443, view.running(&host.name)),
        port_open(10259, static_pod_running(host, state, "kube-scheduler")),
        port_open(
            10257,
            static_pod_running(host, state, "kube-controller-manager"),
        ),
    ];
    for name in files::MANIFEST_NAMES {
        v.push(file_available(host, &files::manifest_path(name)));
    }
    if !secondary {
        v.push(port_open(10250, kubelet_serving(host, state)));
    }
    let etcd = static_pod_running(host, state, "etcd");
    v.push(port_open(2379, etcd));
    v.push(port_open(2380, etcd));
    v.push(dir_available(host, files::VAR_LIB_ETCD));
    if !secondary {
        v.extend(super::host_checks::common_checks(
            host,
            Some(&host.node().kubernetes_version),
        ));
    }
    v
}

/// Runs checks: ignored failures become warnings on stderr; the rest make
/// kubeadm's report of them ([`fatal_report`]).
pub(super) fn run_checks(
    checks: Vec<Option<Check>>,
    ignore: &BTreeSet<String>,
) -> Result<(), String> {
    let mut errors = String::new();
    for c in checks.into_iter().flatten() {
        if c.warning || ignore.contains("all") || ignore.contains(&c.name.to_lowercase()) {
            eprintln!("\t[WARNING {}]: {}", c.name, c.message);
        } else {
            errors.push_str(&format!("\t[ERROR {}]: {}\n", c.name, c.message));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(fatal_report(&errors))
    }
}

/// What kubeadm prints for failed preflight checks (1.32's `preflight.Error`,
/// 1.34's `handleError`): `errors` verbatim between the two lines. A failed
/// check list ends in a newline; the image pull's runtime error does not, and
/// runs into the second line as it does on a real host.
pub(super) fn fatal_report(errors: &str) -> String {
    format!("[preflight] Some fatal errors occurred:\n{errors}[preflight] If you know what you are doing, you can make a check non-fatal with `--ignore-preflight-errors=...`")
}

/// A failed preflight as kubeadm of this host's minor ends on it; `context`
/// is what wraps the error (`error execution phase preflight`). Exit 1 in
/// every minor: 1.32's `CheckErr` keeps its exit 2 for errors that are a
/// `preflight.Error` themselves, and the wrapping hides that type; 1.34 has
/// one exit code. 1.34 prints the report bare and wraps only `preflight
/// checks failed`.
pub(super) fn report_failure(context: &str, report: &str) -> u8 {
    if super::one_exit_code() {
        eprintln!("{report}\nerror: {context}: preflight checks failed\n{STACK_HINT}");
        EXIT_ERROR
    } else {
        fail(&format!("{context}: {report}"), EXIT_ERROR)
    }
}

/// init's and join's preflight phase failing with `report`.
pub(super) fn preflight_failure(host: &Host, report: &str) -> u8 {
    host.pause(Op::PreflightFailure);
    report_failure("error execution phase preflight", report)
}
