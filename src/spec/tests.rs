//! Loader tests: each bad case is reported with its location and a fix.

use super::*;
use std::path::Path;

const BASE: &str = r#"
[cluster]
name = "t"
kubernetes_version = "1.32"
endpoint = "10.4.0.10:6443"
pod_cidr = "192.168.0.0/16"
service_cidr = "172.16.0.0/20"

[defaults]
arch = "arm64"

[nodes.bettley]
role = "control-plane"
address = "10.4.0.11"
"#;

fn load(extra: &str) -> Result<Spec, Diagnostics> {
    load_str(&format!("{BASE}{extra}"), Path::new("cluster.toml"))
}

fn errors(extra: &str) -> Vec<Diagnostic> {
    load(extra).expect_err("config should be rejected").0
}

fn one_error(extra: &str) -> Diagnostic {
    let e = errors(extra);
    assert_eq!(
        e.len(),
        1,
        "expected one error, got: {}",
        Diagnostics(e.clone())
    );
    e.into_iter().next().unwrap()
}

#[test]
fn goldentooth_cluster_toml_is_valid() {
    let spec = load_file(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/cluster.toml"
    )))
    .unwrap();
    assert_eq!(spec.cluster.name, "goldentooth");
    assert_eq!(spec.control_planes().count(), 3);
    assert_eq!(spec.workers().count(), 9);
    assert_eq!(spec.cluster.bootstrap.as_str(), "bettley");
    let velaryon = spec.node("velaryon").unwrap();
    assert_eq!(velaryon.arch, Arch::Amd64);
    assert_eq!(
        velaryon.taints[0].to_string(),
        "goldentooth.io/gpu=true:NoSchedule"
    );
    assert_eq!(spec.node("fenn").unwrap().arch, Arch::Arm64);
    assert_eq!(spec.select("k8s_worker").len(), 9);
    assert_eq!(spec.select("ceph").len(), 3);
    match &spec.node("fenn").unwrap().connection {
        Connection::Ssh(s) => {
            assert_eq!(s.host, "10.4.0.15");
            assert_eq!(s.user, "root");
            assert!(!s.sudo);
            assert_eq!(s.known_hosts, KnownHostsPolicy::Strict);
        }
        c => panic!("expected ssh, got {c:?}"),
    }
}

#[test]
fn unknown_key_suggests_the_right_one() {
    let d = one_error("adress = \"x\"\n");
    assert!(
        d.message
            .contains("unknown key `adress` in [nodes.bettley]"),
        "{d}"
    );
    assert_eq!(d.help.as_deref(), Some("did you mean `address`?"));
    assert_eq!((d.line, d.column), (15, 1));
}

#[test]
fn several_errors_are_reported_together_in_file_order() {
    let e = errors("labls = {}\n[nodes.x]\nrole = \"worker\"\naddress = \"10.4.0.11\"\ntaints = [\"a:Never\"]\n");
    let lines: Vec<usize> = e.iter().map(|d| d.line).collect();
    assert_eq!(e.len(), 3, "{}", Diagnostics(e.clone()));
    assert!(lines.windows(2).all(|w| w[0] <= w[1]), "{lines:?}");
}

#[test]
fn duplicate_address_names_both_nodes() {
    let d = one_error("[nodes.fenn]\nrole = \"worker\"\naddress = \"10.4.0.11\"\n");
    assert!(
        d.message
            .contains("address 10.4.0.11 of node `fenn` is already used by `bettley`"),
        "{d}"
    );
    assert_eq!(d.line, 17);
}

#[test]
fn duplicate_node_name_is_a_toml_error_with_location() {
    let d = one_error("[nodes.bettley]\nrole = \"worker\"\n");
    assert!(d.message.contains("invalid TOML"), "{d}");
    assert_eq!((d.line, d.column), (15, 8), "{d}");
    assert!(d.help.unwrap().contains("`bettley` is defined twice"));
}

#[test]
fn even_number_of_control_planes_is_refused() {
    let d = one_error("[nodes.cargyll]\nrole = \"control-plane\"\naddress = \"10.4.0.12\"\n");
    assert!(
        d.message
            .contains("2 control planes (bettley, cargyll): etcd needs an odd number"),
        "{d}"
    );
    assert!(d.help.unwrap().contains("use 1 or 3"));
}

#[test]
fn an_even_count_is_allowed_while_a_control_plane_is_being_removed() {
    let src = format!(
        "{BASE}[nodes.cargyll]\nrole = \"control-plane\"\naddress = \"10.4.0.12\"\n\
         [nodes.dalt]\nrole = \"control-plane\"\naddress = \"10.4.0.13\"\nstate = \"absent\"\n"
    );
    let spec = load_str(&src, Path::new("c.toml")).unwrap();
    assert_eq!(spec.control_planes().filter(|n| n.is_present()).count(), 2);
}

#[test]
fn no_control_plane_is_refused() {
    let src = BASE.replace("role = \"control-plane\"", "role = \"worker\"");
    let e = load_str(&src, Path::new("c.toml")).unwrap_err().0;
    assert!(
        e.iter()
            .any(|d| d.message.contains("no control-plane node")),
        "{}",
        Diagnostics(e)
    );
}

#[test]
fn bootstrap_must_be_a_control_plane() {
    let src = BASE.replace(
        "service_cidr = \"172.16.0.0/20\"",
        "service_cidr = \"172.16.0.0/20\"\nbootstrap = \"fenn\"",
    ) + "[nodes.fenn]\nrole = \"worker\"\naddress = \"10.4.0.15\"\n";
    let e = load_str(&src, Path::new("c.toml")).unwrap_err().0;
    assert_eq!(e.len(), 1, "{}", Diagnostics(e.clone()));
    assert!(
        e[0].message.contains("bootstrap node `fenn` is a worker"),
        "{}",
        e[0]
    );
    assert_eq!(e[0].line, 8);
}

#[test]
fn invalid_ip_endpoint_and_cidr() {
    let src = BASE
        .replace("\"10.4.0.10:6443\"", "\"10.4.0.10\"")
        .replace("\"192.168.0.0/16\"", "\"192.168.0.1/16\"")
        .replace("address = \"10.4.0.11\"", "address = \"10.4.0.300\"");
    let e = load_str(&src, Path::new("c.toml")).unwrap_err().0;
    let msgs: Vec<&str> = e.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(e.len(), 3, "{msgs:?}");
    assert!(msgs[0].contains("has no port"));
    assert!(msgs[1].contains("host bits set"));
    assert_eq!(
        e[1].help.as_deref(),
        Some("did you mean \"192.168.0.0/16\"?")
    );
    assert!(msgs[2].contains("`10.4.0.300` is not an IP address"));
}

#[test]
fn overlapping_cidrs_are_refused() {
    let src = BASE.replace("\"172.16.0.0/20\"", "\"192.168.128.0/20\"");
    let e = load_str(&src, Path::new("c.toml")).unwrap_err().0;
    assert!(e[0].message.contains("overlap"), "{}", e[0]);
}

#[test]
fn bad_labels_and_taints_are_refused_with_kubernetes_syntax() {
    let e = errors(
        "labels = { \"Goldentooth.io/x\" = \"y\", \"goldentooth.io/ok\" = \"has space\", \"kubernetes.io/arch\" = \"arm64\" }\ntaints = [\"gpu=true:NoScheduled\", \"gpu\"]\n",
    );
    assert_eq!(e.len(), 5, "{}", Diagnostics(e.clone()));
    assert!(e.iter().all(|d| d.line == 15 || d.line == 16));
    assert!(e
        .iter()
        .any(|d| d.message.contains("managed by Kubernetes itself")));
}

#[test]
fn token_ttl_must_be_a_duration() {
    let d = one_error("[tokens]\nttl = \"15\"\n");
    assert!(d.message.contains("not a duration"), "{d}");
    let d = one_error("[tokens]\nttl = \"0\"\n");
    assert!(d.message.contains("never expires"), "{d}");
    let spec = load("[tokens]\nttl = \"1h30m\"\n").unwrap();
    assert_eq!(spec.tokens.ttl.get(), Duration::from_secs(5400));
}

#[test]
fn ignoring_all_preflight_checks_needs_an_explicit_opt_in() {
    let d = one_error("[preflight]\nignore = [\"all\"]\n");
    assert!(d.help.unwrap().contains("allow_ignore_all = true"));
    let spec = load("[preflight]\nignore = [\"all\"]\nallow_ignore_all = true\n").unwrap();
    assert_eq!(spec.preflight.ignore, vec!["all"]);
    let d = one_error("[preflight]\nignore = [\"all\", \"Swap\"]\nallow_ignore_all = true\n");
    assert!(d.message.contains("don't specify individual checks"), "{d}");
}

#[test]
fn known_hosts_never_accepts_anything() {
    let d = one_error("[nodes.bettley.ssh]\nknown_hosts = \"no\"\n");
    assert!(d.message.contains("gt never does"), "{d}");
}

#[test]
fn non_root_user_gets_sudo_and_node_overrides_merge_over_defaults() {
    let src = BASE.replace(
        "[defaults]\narch = \"arm64\"",
        "[defaults]\narch = \"arm64\"\n[defaults.ssh]\nuser = \"pi\"\nport = 2222\n",
    ) + "[nodes.bettley.ssh]\nport = 22\njump_hosts = \"bastion@10.4.0.1\"\n";
    let spec = load_str(&src, Path::new("/etc/gt/c.toml")).unwrap();
    let Connection::Ssh(s) = &spec.nodes[0].connection else {
        panic!()
    };
    assert_eq!((s.user.as_str(), s.port, s.sudo), ("pi", 22, true));
    assert_eq!(s.jump_hosts, vec!["bastion@10.4.0.1"]);
}

#[test]
fn local_connection_env_merges_and_paths_resolve_against_the_file() {
    let src = BASE.replace("[defaults]\narch = \"arm64\"", "[defaults]\narch = \"arm64\"\nconnection = \"local\"\n[defaults.local]\nenv = { PATH = \"/lab/bin:/usr/bin\" }\n")
        + "[nodes.bettley.local]\nenv = { GT_HOST_ROOT = \"/lab/hosts/bettley\" }\nshell = \"bin/sh\"\n";
    let spec = load_str(&src, Path::new("/lab/cluster.toml")).unwrap();
    let Connection::Local(l) = &spec.nodes[0].connection else {
        panic!()
    };
    assert_eq!(l.env["PATH"], "/lab/bin:/usr/bin");
    assert_eq!(l.env["GT_HOST_ROOT"], "/lab/hosts/bettley");
    assert_eq!(l.shell, Path::new("/lab/bin/sh"));
}

#[test]
fn missing_cluster_table_is_reported() {
    let e = load_str("[nodes.a]\nrole = \"worker\"\n", Path::new("c.toml")).unwrap_err();
    assert!(e.0[0].message.contains("missing [cluster] table"));
}

#[test]
fn diagnostics_render_with_location_excerpt_and_help() {
    let d = one_error("adress = \"x\"\n");
    let text = d.to_string();
    assert_eq!(
        text,
        "error: unknown key `adress` in [nodes.bettley]\n  --> cluster.toml:15:1\n   |\n15 | adress = \"x\"\n   | ^^^^^^\n  = help: did you mean `address`?\n"
    );
}

#[test]
fn a_node_that_fails_to_load_is_reported_once_not_again_as_a_missing_control_plane() {
    let src = BASE.replace("role = \"control-plane\"", "role = \"master\"");
    let e = load_str(&src, Path::new("c.toml")).unwrap_err().0;
    assert_eq!(e.len(), 1, "{}", Diagnostics(e.clone()));
    assert!(
        e[0].message.contains("role `master` is not valid"),
        "{}",
        e[0]
    );
    assert_eq!(
        e[0].help.as_deref(),
        Some("did you mean \"control-plane\"?")
    );
}
