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
    only(load(extra))
}

/// The one problem of a rejected config.
fn only(r: Result<Spec, Diagnostics>) -> Diagnostic {
    let e = r.expect_err("config should be rejected").0;
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
fn a_label_key_many_nodes_name_is_read_once_and_a_wrong_one_is_reported_at_each() {
    let node = |name: &str, address: &str| {
        format!(
            "\n[nodes.{name}]\nrole = \"worker\"\naddress = \"{address}\"\nlabels = {{ \"goldentooth.io/rack\" = \"r1\", \"Bad/x\" = \"y\", \"kubernetes.io/os\" = \"linux\" }}\n"
        )
    };
    let two = format!(
        "{}{}",
        node("fenn", "10.4.0.15"),
        node("gardener", "10.4.0.16")
    );
    let e = errors(&two);
    // Each node's wrong key and Kubernetes' key, at its own line.
    assert_eq!(e.len(), 4, "{}", Diagnostics(e.clone()));
    assert_eq!(
        e.iter().map(|d| d.line).collect::<Vec<_>>(),
        [19, 19, 24, 24],
        "{}",
        Diagnostics(e.clone())
    );
    let fine = two.replace(", \"Bad/x\" = \"y\", \"kubernetes.io/os\" = \"linux\"", "");
    let spec = load(&fine).unwrap();
    let key = |n: &str| spec.node(n).unwrap().labels.keys().next().unwrap().clone();
    let (fenn, gardener) = (key("fenn"), key("gardener"));
    assert_eq!(fenn.as_str(), "goldentooth.io/rack");
    assert_eq!(fenn, gardener);
    assert!(
        std::ptr::eq(fenn.as_str(), gardener.as_str()),
        "one key, shared"
    );
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

/// BASE with one line of `[cluster]` replaced.
fn cluster_with(key: &str, line: &str) -> Result<Spec, Diagnostics> {
    let src: String = BASE
        .lines()
        .map(|l| {
            if l.starts_with(&format!("{key} =")) {
                line
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    load_str(&src, Path::new("cluster.toml"))
}

#[test]
fn a_token_ttl_outside_a_minute_to_a_day_is_refused_where_it_is_written() {
    for ttl in ["500ms", "59s", "1ns", "24h1s", "48h"] {
        let d = one_error(&format!("[tokens]\nttl = \"{ttl}\"\n"));
        assert_eq!((d.line, d.column), (16, 7), "{ttl}: {d}");
        assert!(
            d.help.as_deref().unwrap().contains("from 1m to 24h"),
            "{ttl}: {d}"
        );
    }
    for (ttl, secs) in [("1m", 60), ("24h", 86_400), ("90s", 90)] {
        let spec = load(&format!("[tokens]\nttl = \"{ttl}\"\n")).unwrap();
        assert_eq!(spec.tokens.ttl.get(), Duration::from_secs(secs));
    }
}

#[test]
fn a_duration_too_long_for_a_clock_is_an_error_in_every_duration_key() {
    let huge = "99999999999999h";
    for extra in [
        format!("[tokens]\nttl = \"{huge}\"\n"),
        format!("[apply]\ngate_timeout = \"{huge}\"\n"),
        format!("[apply]\nstep_timeout = \"{huge}\"\n"),
        format!("[apply]\ndrain_timeout = \"{huge}\"\n"),
        format!("[nodes.bettley.ssh]\nconnect_timeout = \"{huge}\"\n"),
        format!(
            "[defaults.ssh]\nconnect_timeout = \"{}s\"\n",
            "9".repeat(400)
        ),
    ] {
        let e = load(&extra).expect_err(&extra).0;
        assert_eq!(e.len(), 1, "{extra}: {}", Diagnostics(e.clone()));
        assert!(e[0].message.contains("longer than"), "{}", e[0]);
        assert!(e[0].line > 0 && e[0].help.is_some(), "{}", e[0]);
    }
}

#[test]
fn a_sub_second_apply_timeout_is_refused_as_kubectl_would_read_it_as_none() {
    let d = one_error("[apply]\ndrain_timeout = \"500ms\"\n");
    assert!(d.message.contains("shorter than a second"), "{d}");
    assert!(load("[apply]\ndrain_timeout = \"1s\"\n").is_ok());
}

#[test]
fn an_ssh_word_beginning_with_a_dash_is_refused() {
    for extra in [
        "[nodes.bettley.ssh]\nhost = \"-oProxyCommand=touch /tmp/x\"\n",
        "[nodes.bettley.ssh]\nuser = \"-oProxyCommand=x\"\n",
        "[defaults.ssh]\nuser = \"-l\"\n",
        "[nodes.bettley.ssh]\njump_hosts = \"-oProxyCommand=x\"\n",
        "[nodes.bettley.ssh]\njump_hosts = [\"ok@bastion\", \"admin@-oProxyCommand=x\"]\n",
        "[nodes.bettley.ssh]\njump_hosts = [\"-admin@bastion\"]\n",
    ] {
        let e = load(extra).expect_err(extra).0;
        assert_eq!(e.len(), 1, "{extra}: {}", Diagnostics(e.clone()));
        assert!(e[0].message.contains("begins with `-`"), "{}", e[0]);
        assert!(e[0].line >= 15 && e[0].help.is_some(), "{}", e[0]);
    }
    let d = one_error("[nodes.bettley.ssh]\njump_hosts = \"a@b,c@-d\"\n");
    assert!(d.message.contains("comma"), "{d}");
    let d = one_error("[nodes.bettley.ssh]\nhost = \"fenn local\"\n");
    assert!(d.message.contains("blank"), "{d}");
}

#[test]
fn addresses_no_single_host_answers_on_are_refused() {
    for addr in [
        "0.0.0.0",
        "::",
        "255.255.255.255",
        "224.0.0.1",
        "239.1.2.3",
        "ff02::1",
        "::ffff:0.0.0.0",
    ] {
        let src = BASE.replace("address = \"10.4.0.11\"", &format!("address = \"{addr}\""));
        let d = only(load_str(&src, Path::new("c.toml")));
        assert_eq!(d.line, 14, "{addr}: {d}");
        assert!(
            d.help.as_deref().unwrap().contains("unicast"),
            "{addr}: {d}"
        );
    }
    let d = only(cluster_with("endpoint", "endpoint = \"0.0.0.0:6443\""));
    assert!(d.message.contains("unspecified"), "{d}");
    let d = one_error("[load_balancer]\nname = \"lb\"\naddress = \"255.255.255.255\"\n");
    assert!(d.message.contains("broadcast"), "{d}");
}

#[test]
fn an_ipv4_mapped_address_is_the_ipv4_address_it_maps() {
    let d = one_error("[nodes.fenn]\nrole = \"worker\"\naddress = \"::ffff:10.4.0.11\"\n");
    assert!(
        d.message.contains(
            "address ::ffff:10.4.0.11 (the IPv4 address 10.4.0.11) of node `fenn` is already used by `bettley`"
        ),
        "{d}"
    );
    let d = one_error("[nodes.fenn]\nrole = \"worker\"\naddress = \"::ffff:192.168.3.4\"\n");
    assert!(d.message.contains("inside pod_cidr"), "{d}");
}

#[test]
fn names_gt_exec_already_resolves_are_not_node_or_group_names() {
    let d = one_error("[nodes.all]\nrole = \"worker\"\naddress = \"10.4.0.15\"\n");
    assert!(d.message.contains("`all` is a built-in target"), "{d}");
    assert_eq!((d.line, d.column), (15, 8));
    for g in ["all", "k8s_cluster", "k8s_control_plane", "k8s_worker"] {
        let d = one_error(&format!("groups = [\"{g}\"]\n"));
        assert!(d.message.contains("built-in target"), "{g}: {d}");
        assert!(d.help.is_some());
    }
}

#[test]
fn empty_values_and_control_characters_are_refused() {
    let d = only(cluster_with("name", "name = \"\""));
    assert!(d.message.contains("`name` is empty"), "{d}");
    let d = one_error("[defaults.ssh]\nuser = \"\"\n");
    assert!(d.message.contains("empty"), "{d}");
    let d = only(load_str(
        &format!("{BASE}[cluster.cni]\nname = \"calico\"\nmanifest = \"\"\n")
            .replace("\n\n[defaults]", "\n[defaults]"),
        Path::new("c.toml"),
    ));
    assert!(d.message.contains("`manifest` is empty"), "{d}");
    let d = only(cluster_with("name", "name = \"gold\\u001b[31mtooth\""));
    assert!(d.message.contains("control character U+001B"), "{d}");
    // The terminal never gets the raw escape, whatever the message quotes.
    let d = one_error("\"gold\\u001b[2J\" = 1\n");
    assert!(!d.to_string().contains('\u{1b}'), "{d:?}");
    let d = one_error("groups = [\"ceph\\u0007\"]\n");
    assert!(d.message.contains("may contain only"), "{d}");
    let d = one_error("labels = { \"goldentooth.io/x\" = \"a\\nb\" }\n");
    assert!(d.message.contains("label"), "{d}");
}

#[test]
fn pod_and_service_cidrs_must_be_of_one_family() {
    let d = only(cluster_with(
        "service_cidr",
        "service_cidr = \"fd00:10::/108\"",
    ));
    assert!(
        d.message
            .contains("is IPv4 but service_cidr fd00:10::/108 is IPv6"),
        "{d}"
    );
    assert_eq!(d.line, 7);
}

#[test]
fn a_pre_release_kubernetes_version_is_refused_not_read_as_the_release() {
    for v in ["1.32.0-rc.1", "1.32-alpha", "v1.33.0-beta.2"] {
        let d = only(cluster_with(
            "kubernetes_version",
            &format!("kubernetes_version = \"{v}\""),
        ));
        assert!(d.message.contains("is a pre-release"), "{v}: {d}");
        assert_eq!(d.line, 4);
    }
    let spec = cluster_with("kubernetes_version", "kubernetes_version = \"v1.32.4\"").unwrap();
    assert_eq!(spec.cluster.kubernetes_version.to_string(), "1.32.4");
}

#[test]
fn a_capitalised_twin_of_a_node_is_not_advised_to_take_its_name() {
    let d = one_error("[nodes.Fenn]\nrole = \"worker\"\naddress = \"10.4.0.16\"\n[nodes.fenn]\nrole = \"worker\"\naddress = \"10.4.0.15\"\n");
    let help = d.help.unwrap();
    assert!(
        help.contains("`fenn` is already a node in this file"),
        "{help}"
    );
    assert!(
        !help.starts_with("rename the table: [nodes.fenn]"),
        "{help}"
    );
    let d = one_error("[nodes.Fenn]\nrole = \"worker\"\naddress = \"10.4.0.16\"\n");
    assert_eq!(d.help.as_deref(), Some("rename the table: [nodes.fenn]"));
}

#[test]
fn a_type_error_says_what_to_write() {
    let d = only(cluster_with(
        "kubernetes_version",
        "kubernetes_version = 1.32",
    ));
    assert!(d.message.contains("must be a string, not a float"), "{d}");
    let cases = [
        (d, "write it as a string: kubernetes_version = \"1.32\""),
        (
            one_error("[preflight]\nallow_ignore_all = \"true\"\n"),
            "write it without quotes: allow_ignore_all = true",
        ),
        (
            one_error("[defaults.ssh]\nport = \"2222\"\n"),
            "write it without quotes: port = 2222",
        ),
        (
            one_error("groups = \"ceph\"\n"),
            "write it as an array: [\"ceph\"]",
        ),
        (
            only(cluster_with("name", "name = [\"goldentooth\"]")),
            "write one string, not an array: name = \"goldentooth\"",
        ),
        (
            only(cluster_with("name", "name = { a = 1 }")),
            "write one string in quotes: name = \"...\"",
        ),
        (
            one_error("[tokens]\nttl = 15\n"),
            "write it as a duration in quotes, with its unit: ttl = \"15s\" or ttl = \"15m\"",
        ),
        (
            one_error("[tokens]\nttl = 1979-05-27\n"),
            "write a duration in quotes: ttl = \"15m\"",
        ),
        (
            one_error("labels = { \"goldentooth.io/x\" = 4 }\n"),
            "write it as a string: \"4\"",
        ),
    ];
    for (d, help) in cases {
        assert_eq!(d.help.as_deref(), Some(help), "{d}");
    }
    let d = one_error("labels = { \"goldentooth.io/x\" = 4 }\n");
    assert!(
        d.message
            .starts_with("label `goldentooth.io/x` must be a string"),
        "{d}"
    );
}

#[test]
fn syntax_errors_name_the_line_where_the_mistake_is() {
    let at = |src: &str| {
        let d = only(load_str(src, Path::new("c.toml")));
        assert!(d.help.is_some(), "{d}");
        (d.line, d.column)
    };
    // An array left open: the `]` was missing at the end of line 3, not on line 5.
    assert_eq!(
        at("[cluster]\nname = \"x\"\nl = [\"a\",\n  \"b\"  # the last\n\n[nodes.a]\n"),
        (4, 6)
    );
    // An unterminated multi-line string: where it opens, not the end of the file.
    assert_eq!(at("[cluster]\nname = \"\"\"abc\nmore\n\n\n"), (2, 8));
    // A header nested past the parser's limit: its own line, not 1:1.
    let deep = format!(
        "[cluster]\nname = \"x\"\n\n[{}]\n",
        vec!["a"; 300].join(".")
    );
    assert_eq!(at(&deep).0, 4);
}

#[test]
fn bytes_that_are_not_utf8_are_named_with_their_line() {
    let d = only(load_bytes(
        b"[cluster]\nname = \"ab\xff\"\n",
        Path::new("c.toml"),
    ));
    assert_eq!((d.line, d.column), (2, 11), "{d}");
    assert!(
        d.message.contains("not UTF-8") && d.message.contains("0xFF"),
        "{d}"
    );
}

#[test]
fn an_excerpt_of_a_very_long_line_is_cut_around_the_column() {
    let src = format!("[cluster]\nname = \"{}\" oops\n", "x".repeat(100_000));
    let d = only(load_str(&src, Path::new("c.toml")));
    let shown = d.to_string();
    assert!(shown.len() < 1_000, "{} bytes", shown.len());
    assert!(shown.contains("…xxx"), "{shown}");
    assert!(shown.contains("shown cut"), "{shown}");
    assert_eq!(d.column, 100_011);
    // The caret still sits under the problem.
    let lines: Vec<&str> = shown.lines().collect();
    let src_line = lines.iter().find(|l| l.contains('…')).unwrap();
    let caret_line = lines.iter().find(|l| l.trim_end().ends_with('^')).unwrap();
    let caret_at = caret_line.chars().position(|c| c == '^').unwrap();
    let under: String = src_line.chars().skip(caret_at).take(4).collect();
    assert_eq!(under, "oops", "{shown}");
}

#[test]
fn every_problem_has_a_place_inside_the_file_and_a_help_line() {
    let e = load_str("[nodes.a]\nrole = \"worker\"\n", Path::new("c.toml")).unwrap_err();
    for d in &e.0 {
        assert!(d.line >= 1 && d.help.is_some(), "{d}");
    }
}

#[test]
fn a_stray_carriage_return_is_named_inside_its_line() {
    let d = only(load_str("=\r", Path::new("c.toml")));
    assert_eq!((d.line, d.column), (1, 2), "{d}");
}

#[test]
fn a_cri_socket_needs_a_path_and_a_manifest_is_an_http_url_or_a_path() {
    let d = only(cluster_with(
        "service_cidr",
        "service_cidr = \"172.16.0.0/20\"\ncri_socket = \"unix://\"",
    ));
    assert!(d.message.contains("is not a unix socket"), "{d}");
    let d = only(cluster_with(
        "service_cidr",
        "service_cidr = \"172.16.0.0/20\"\ncri_socket = \"unix://run/x.sock\"",
    ));
    assert!(d.message.contains("is not a unix socket"), "{d}");
    let cni = |manifest: &str| {
        cluster_with(
            "service_cidr",
            &format!("service_cidr = \"172.16.0.0/20\"\n[cluster.cni]\nmanifest = \"{manifest}\""),
        )
    };
    let d = only(cni("ftp://mirror.lan/calico.yaml"));
    assert!(d.message.contains("is a ftp URL"), "{d}");
    assert_eq!(d.line, 9, "{d}");
    assert!(only(cni("https:///calico.yaml"))
        .message
        .contains("not a URL"));
    let spec = load_str(
        &BASE.replace(
            "\n\n[defaults]",
            "\n[cluster.cni]\nmanifest = \"manifests/calico.yaml\"\n\n[defaults]",
        ),
        Path::new("/etc/gt/c.toml"),
    )
    .unwrap();
    assert_eq!(
        spec.cluster.cni.manifest,
        ManifestSource::File("/etc/gt/manifests/calico.yaml".into()),
        "a relative path is relative to cluster.toml's directory"
    );
    assert_eq!(spec.cluster.cni.line, 9);
    let spec = load_str(BASE, Path::new("c.toml")).unwrap();
    assert!(matches!(spec.cluster.cni.manifest, ManifestSource::Url(_)));
}

#[test]
fn a_role_in_capitals_and_a_table_written_as_a_value_get_the_right_fix() {
    let src = BASE.replace("role = \"control-plane\"", "role = \"Control-Plane\"");
    let d = only(load_str(&src, Path::new("c.toml")));
    assert_eq!(d.help.as_deref(), Some("did you mean \"control-plane\"?"));
    let d = one_error("ssh = \"x\"\n");
    assert_eq!(
        d.help.as_deref(),
        Some(
            "write it as a table: [nodes.bettley.ssh] on a line of its own, then its keys below it"
        )
    );
}

#[test]
fn a_service_cidr_kube_apiserver_would_refuse_is_refused_here() {
    for (cidr, says) in [
        ("10.0.0.0/8", "larger than kube-apiserver accepts"),
        ("172.16.0.0/31", "no room"),
        ("fd00:10::/64", "larger than kube-apiserver accepts"),
    ] {
        let src = BASE
            .replace("\"172.16.0.0/20\"", &format!("\"{cidr}\""))
            .replace(
                "\"192.168.0.0/16\"",
                if cidr.contains(':') {
                    "\"fd00:20::/56\""
                } else {
                    "\"192.168.0.0/16\""
                },
            );
        let d = only(load_str(&src, Path::new("c.toml")));
        assert!(d.message.contains(says), "{cidr}: {d}");
        assert_eq!(d.line, 7, "{d}");
    }
    assert!(cluster_with("service_cidr", "service_cidr = \"172.16.0.0/12\"").is_ok());
}

#[test]
fn a_load_balancer_inside_the_cluster_cidrs_is_refused() {
    let src = BASE.replace("\"10.4.0.10:6443\"", "\"172.16.0.1:6443\"")
        + "[load_balancer]\nname = \"lb\"\naddress = \"172.16.0.1\"\n";
    let d = only(load_str(&src, Path::new("c.toml")));
    assert!(d.message.contains("lies inside service_cidr"), "{d}");
    assert_eq!((d.line, d.column), (17, 11));
}

#[test]
fn a_node_name_too_long_for_the_hostname_label_is_refused() {
    let long = format!("{}.b", "a".repeat(62));
    let d = one_error(&format!(
        "[nodes.\"{long}\"]\nrole = \"worker\"\naddress = \"10.4.0.15\"\n"
    ));
    assert!(d.message.contains("is 64 characters long"), "{d}");
    let ok = "a".repeat(63);
    assert!(load(&format!(
        "[nodes.{ok}]\nrole = \"worker\"\naddress = \"10.4.0.15\"\n"
    ))
    .is_ok());
}

#[test]
fn host_settings_inherit_from_defaults_and_add_up() {
    let spec = load(
        r#"
[defaults.host]
modules = ["br_netfilter"]
sysctls = { "net.bridge.bridge-nf-call-iptables" = 1 }
allow_reboot = true

[nodes.bettley.host]
mirror = "http://mirror.lan/k8s/v1.32/deb"
modules = ["overlay"]
sysctls = { "vm.max_map_count" = "262144", "net.ipv4.ip_forward" = "1" }

[nodes.fenn]
role = "worker"
address = "10.4.0.15"
host = { manage = false }

[nodes.cargyll]
role = "worker"
address = "10.4.0.12"

[nodes.jast]
role = "worker"
address = "10.4.0.13"
"#,
    )
    .unwrap();
    let b = &spec.node("bettley").unwrap().host;
    assert!(b.manage && b.allow_reboot);
    assert_eq!(
        b.source,
        PackageSource::Mirror("http://mirror.lan/k8s/v1.32/deb/".into())
    );
    assert_eq!(
        b.modules.iter().map(String::as_str).collect::<Vec<_>>(),
        ["br_netfilter", "overlay"]
    );
    assert_eq!(
        b.sysctls.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "net.bridge.bridge-nf-call-iptables",
            "net.ipv4.ip_forward",
            "vm.max_map_count"
        ]
    );
    let f = &spec.node("fenn").unwrap().host;
    assert!(!f.manage);
    assert_eq!(f.source, PackageSource::Upstream);
    assert!(f.allow_reboot, "inherited from [defaults.host]");
    // The nodes without a host table of their own share [defaults.host]
    // over gt's defaults: one value, not a copy each.
    let cargyll = &spec.node("cargyll").unwrap().host;
    let jast = &spec.node("jast").unwrap().host;
    assert!(std::sync::Arc::ptr_eq(cargyll, jast));
    assert!(!std::sync::Arc::ptr_eq(cargyll, f));
    assert!(cargyll.manage && cargyll.allow_reboot);
    assert_eq!(
        cargyll
            .modules
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        ["br_netfilter"]
    );
    assert_eq!(
        cargyll
            .sysctls
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        ["net.bridge.bridge-nf-call-iptables", "net.ipv4.ip_forward"]
    );
}

#[test]
fn host_settings_are_managed_with_the_documented_defaults_when_absent() {
    let spec = load("").unwrap();
    assert_eq!(*spec.node("bettley").unwrap().host, HostSettings::default());
    assert_eq!(
        spec.apply.reboot_timeout,
        ApplySettings::DEFAULT_REBOOT_TIMEOUT
    );
}

#[test]
fn bad_host_settings_name_their_place_and_the_fix() {
    let e = one_error("\n[nodes.bettley.host]\nalow_reboot = true\n");
    assert!(e.message.contains("unknown key `alow_reboot`"), "{e}");
    assert!(e.help.as_deref().unwrap().contains("allow_reboot"), "{e}");
    assert_eq!(e.line, 17);

    let e = one_error("\n[defaults.host]\nsysctls = { \"net..x\" = 1 }\n");
    assert!(e.message.contains("is not a sysctl name"), "{e}");
    assert_eq!(e.line, 17);

    let e = one_error("\n[defaults.host]\nmodules = [\"-r\"]\n");
    assert!(e.message.contains("not a kernel module name"), "{e}");

    let e = one_error("\n[defaults.host]\ncontainer_runtime = \"cri-o\"\n");
    assert!(e.message.contains("not one gt installs"), "{e}");
    assert!(e.help.as_deref().unwrap().contains("containerd"), "{e}");

    let e = one_error("\n[defaults.host]\nmirror = \"ftp://mirror\"\n");
    assert!(e.message.contains("not an http(s) URL"), "{e}");

    let e = one_error("\n[apply]\nreboot_timeout = \"10\"\n");
    assert!(e.message.contains("reboot_timeout"), "{e}");
}

#[test]
fn upgrade_batches_and_drain_force_have_defaults_and_read_counts_and_percentages() {
    let s = load("").unwrap();
    assert_eq!(s.upgrade.max_unavailable, MaxUnavailable::Count(1));
    assert!(!s.drain.force);
    let s = load("[upgrade]\nmax_unavailable = 3\n[drain]\nforce = true\n").unwrap();
    assert_eq!(s.upgrade.max_unavailable, MaxUnavailable::Count(3));
    assert!(s.drain.force);
    let s = load("[upgrade]\nmax_unavailable = \"25%\"\n").unwrap();
    assert_eq!(s.upgrade.max_unavailable, MaxUnavailable::Percent(25));
}

#[test]
fn a_bad_max_unavailable_is_refused_at_its_line_with_what_to_write() {
    for (value, says) in [
        ("0", "would upgrade none"),
        ("-2", "would upgrade none"),
        ("\"0%\"", "from 1% to 100%"),
        ("\"150%\"", "from 1% to 100%"),
        ("\"2\"", "not a percentage"),
    ] {
        let d = one_error(&format!("[upgrade]\nmax_unavailable = {value}\n"));
        let text = d.to_string();
        assert!(text.contains(says), "{value}: {text}");
        assert!(text.contains("cluster.toml:16:19"), "{value}: {text}");
        assert!(text.contains("25%"), "{value}: {text}");
    }
    let d = one_error("[drain]\nforce = \"yes\"\n");
    assert!(d.to_string().contains("force"), "{d}");
    let d = one_error("[upgrade]\nmax_unavailble = 2\n");
    assert!(d.to_string().contains("max_unavailable"), "{d}");
}

#[test]
fn a_percentage_of_workers_rounds_down_but_never_below_one() {
    assert_eq!(MaxUnavailable::Percent(25).batch_size(9), 2);
    assert_eq!(MaxUnavailable::Percent(25).batch_size(3), 1);
    assert_eq!(MaxUnavailable::Percent(100).batch_size(9), 9);
    assert_eq!(MaxUnavailable::Count(4).batch_size(2), 4);
    assert_eq!(MaxUnavailable::Count(1).batch_size(0), 1);
}

#[test]
fn a_group_named_after_a_node_is_refused_where_it_is_written() {
    // On the file's last node: every node's groups are looked at, not only
    // the first's.
    let d = one_error(
        "[nodes.fenn]\nrole = \"worker\"\naddress = \"10.4.0.15\"\ngroups = [\"ceph\", \"bettley\"]\n",
    );
    assert!(
        d.message
            .contains("group `bettley` of node `fenn` has the name of a node"),
        "{d}"
    );
    assert_eq!((d.line, d.column), (18, 10), "{d}");
    assert!(load(
        "[nodes.fenn]\nrole = \"worker\"\naddress = \"10.4.0.15\"\ngroups = [\"ceph\"]\n"
    )
    .is_ok());
}
