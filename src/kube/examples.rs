//! One example of every kubectl command line gt builds, covering each
//! builder's variants and the edges of its inputs, for the integration test
//! that runs them through a real kubectl's flag parser
//! (`tests/cli/kubectl_flags.rs`): a string-equality unit test proves a line
//! is what docs/kubeadm.md says, not that kubectl accepts it.
//!
//! The unit test below reads gt's sources and fails when a function that
//! builds a kubectl line is missing here, so a new builder cannot skip the
//! real parser.

use super::*;
use crate::spec::Taint;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One command line, exactly as gt sends it to a control plane's shell.
#[derive(Debug, Clone)]
pub struct KubectlExample {
    /// The builder's function name in `kube`.
    pub builder: &'static str,
    /// Which variant of it this line shows.
    pub case: &'static str,
    pub command: String,
    /// What gt sends on the command's stdin, if anything (a manifest).
    pub stdin: Option<&'static str>,
}

/// A manifest of one object, as `kubectl apply -f -` gets it on stdin.
pub const EXAMPLE_MANIFEST: &str =
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: gt-kubectl-flags\n  namespace: default\n";

/// Every kubectl line's shape. Addresses are loopback ones: the test runs
/// these lines, and `--server` sends their requests there.
pub fn kubectl_examples() -> Vec<KubectlExample> {
    let v4 = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let taint = |s: &str| -> Taint { s.parse().expect("an example taint parses") };
    let labels = |l: &[&str]| -> Vec<String> { l.iter().map(|s| s.to_string()).collect() };
    let long = Duration::from_secs(300);
    let e = |builder, case, command| KubectlExample {
        builder,
        case,
        command,
        stdin: None,
    };
    vec![
        e("get_nodes_json", "", get_nodes_json()),
        e("watch_node_readiness", "", watch_node_readiness()),
        e("get_pods_json", "", workloads::get_pods_json()),
        e("get_pdbs_json", "", workloads::get_pdbs_json()),
        e("get_readyz_verbose", "", get_readyz_verbose()),
        e(
            "get_readyz_verbose_within",
            "",
            get_readyz_verbose_within(long),
        ),
        e("readyz_verbose_of", "IPv4", readyz_verbose_of(&v4, long)),
        e("readyz_verbose_of", "IPv6", readyz_verbose_of(&v6, long)),
        e(
            "readyz_verbose_of",
            "zero timeout",
            readyz_verbose_of(&v4, Duration::ZERO),
        ),
        e(
            "readyz_verbose_of",
            "longest timeout",
            readyz_verbose_of(&v4, Duration::MAX),
        ),
        KubectlExample {
            stdin: Some(EXAMPLE_MANIFEST),
            ..e(
                "apply_manifest_from_stdin",
                "manifest on stdin",
                cni::apply_manifest_from_stdin(),
            )
        },
        e(
            "label_node",
            "set and remove",
            label_node(
                "fenn",
                &labels(&["goldentooth.io/storage=ceph", "tier=edge"]),
                &labels(&["goldentooth.io/old"]),
            ),
        ),
        e(
            "label_node",
            "empty value",
            label_node("fenn", &labels(&["goldentooth.io/flag="]), &[]),
        ),
        e(
            "label_node",
            "remove only",
            label_node("fenn", &[], &labels(&["tier"])),
        ),
        e(
            "taint_node",
            "add with and without value",
            taint_node(
                "velaryon",
                &[
                    taint("goldentooth.io/gpu=true:NoSchedule"),
                    taint("dedicated:PreferNoSchedule"),
                ],
                &[],
            ),
        ),
        e(
            "taint_node",
            "add and remove",
            taint_node(
                "velaryon",
                &[taint("goldentooth.io/gpu=true:NoExecute")],
                &[taint("goldentooth.io/gpu=true:NoSchedule")],
            ),
        ),
        e(
            "taint_node",
            "remove only",
            taint_node("velaryon", &[], &[taint("dedicated:PreferNoSchedule")]),
        ),
        e("drain", "alive node", drain("fenn", long, false)),
        e("drain", "dead node", drain("fenn", long, true)),
        e(
            "drain",
            "sub-second timeout",
            drain("fenn", Duration::from_millis(500), false),
        ),
        e(
            "drain",
            "longest timeout",
            drain("fenn", Duration::MAX, true),
        ),
        e("delete_node", "", delete_node("fenn")),
        e(
            "drain_for_upgrade",
            "without force",
            upgrade::drain_for_upgrade("fenn", long, false),
        ),
        e(
            "drain_for_upgrade",
            "forced",
            upgrade::drain_for_upgrade("fenn", Duration::ZERO, true),
        ),
        e("mark_cordoned", "", upgrade::mark_cordoned("fenn")),
        e("unmark_cordoned", "", upgrade::unmark_cordoned("fenn")),
        e("uncordon", "", upgrade::uncordon("fenn")),
        e("etcdctl", "member list", etcd::member_list("bettley")),
        e(
            "snapshot_save",
            "",
            etcd_snapshot::snapshot_save("bettley", "/var/lib/etcd/gt-snapshot-00ff.db"),
        ),
        e(
            "get_kubeadm_config",
            "",
            etcd_snapshot::get_kubeadm_config(),
        ),
        e(
            "etcdctl",
            "endpoint status",
            etcd::endpoint_status("bettley"),
        ),
        e(
            "etcdctl",
            "endpoint health",
            etcd::endpoint_health("bettley"),
        ),
        e(
            "etcdctl",
            "member remove",
            etcd::member_remove("bettley", etcd::MemberId(u64::MAX)),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::Path;

    /// Names of the functions in gt's sources (outside tests) whose bodies
    /// build a kubectl line: they call `kubectl_admin`, use its kubeconfig,
    /// or spell a `"kubectl --flag` line themselves.
    fn kubectl_builders() -> BTreeSet<(String, String)> {
        let mut found = BTreeSet::new();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut dirs = vec![src.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                if path.extension().is_none_or(|e| e != "rs") || path.ends_with("kube/examples.rs")
                {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                let code = text.split("#[cfg(test)]").next().unwrap_or_default();
                let mut current: Option<&str> = None;
                for line in code.lines() {
                    if let Some(name) = fn_name(line) {
                        current = Some(name);
                    }
                    let builds = ["kubectl_admin(", "ADMIN_KUBECONFIG", "\"kubectl --"]
                        .iter()
                        .any(|s| line.contains(s));
                    if let Some(f) = current.filter(|f| builds && *f != "kubectl_admin") {
                        let file = path.strip_prefix(&src).unwrap().display().to_string();
                        found.insert((file, f.to_string()));
                    }
                }
            }
        }
        found
    }

    fn fn_name(line: &str) -> Option<&str> {
        let rest = line.split_once("fn ")?.1;
        let before = line.split_once("fn ")?.0.trim();
        let declares = before.is_empty()
            || before
                .split_whitespace()
                .all(|w| w.starts_with("pub") || matches!(w, "async" | "const" | "unsafe"));
        declares.then(|| rest.split(['(', '<']).next().unwrap_or_default())
    }

    #[test]
    fn every_kubectl_builder_has_an_example() {
        let builders = kubectl_builders();
        assert!(
            builders.iter().any(|(_, f)| f == "drain"),
            "the source scan finds nothing; it is broken: {builders:?}"
        );
        let listed: BTreeSet<&str> = kubectl_examples().iter().map(|e| e.builder).collect();
        let missing: Vec<_> = builders
            .iter()
            .filter(|(_, f)| !listed.contains(f.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "these build kubectl lines but kube::examples::kubectl_examples has no example of them, \
             so no test runs them through a real kubectl: {missing:?}"
        );
        let unknown: Vec<_> = listed
            .iter()
            .filter(|l| !builders.iter().any(|(_, f)| f == *l))
            .collect();
        assert!(unknown.is_empty(), "examples of no builder: {unknown:?}");
    }

    #[test]
    fn every_example_is_a_kubectl_line_with_the_admin_kubeconfig() {
        for e in kubectl_examples() {
            assert!(
                e.command.starts_with(&kubectl_admin("")),
                "{} ({}): {}",
                e.builder,
                e.case,
                e.command
            );
        }
    }
}
