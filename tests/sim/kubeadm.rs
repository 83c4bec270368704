//! The simulated kubeadm against docs/kubeadm.md: init, upload-certs, tokens, join,
//! preflight, discovery errors, reset.

use crate::support::sim::{etcd_members, SimLab, ENDPOINT};
use crate::support::wait::eventually;

use crate::support::kube::{ADMIN, KUBECTL};

fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[test]
fn init_writes_the_control_plane_files_and_prints_join_instructions() {
    let lab = SimLab::goldentooth();
    let out = lab.init();
    out.clone()
        .stdout_contains("[init] Using Kubernetes version: v1.32.4\n")
        .stdout_contains("Your Kubernetes control-plane has initialized successfully!")
        .stdout_contains(&format!("  kubeadm join {ENDPOINT} --token "))
        .stdout_contains("\t--control-plane --certificate-key ")
        .stdout_contains("Then you can join any number of worker nodes by running the following on each as root:");
    for f in [
        "admin.conf",
        "super-admin.conf",
        "kubelet.conf",
        "controller-manager.conf",
        "scheduler.conf",
        "pki/ca.crt",
        "pki/ca.key",
        "manifests/kube-apiserver.yaml",
        "manifests/kube-controller-manager.yaml",
        "manifests/kube-scheduler.yaml",
        "manifests/etcd.yaml",
    ] {
        assert!(
            lab.host_file("bettley", &format!("/etc/kubernetes/{f}"))
                .exists(),
            "{f} missing"
        );
    }
    assert!(lab
        .host_file("bettley", "/var/lib/etcd")
        .read_dir()
        .unwrap()
        .next()
        .is_some());
    let admin =
        std::fs::read_to_string(lab.host_file("bettley", "/etc/kubernetes/admin.conf")).unwrap();
    assert!(
        admin.contains(&format!("    server: https://{ENDPOINT}\n")),
        "{admin}"
    );
}

#[test]
fn init_with_skip_token_print_withholds_the_token() {
    let lab = SimLab::goldentooth();
    let out = lab
        .on("bettley")
        .run(&format!(
            "kubeadm init --control-plane-endpoint={ENDPOINT} --skip-token-print"
        ))
        .success();
    out.stdout_lacks("[bootstrap-token] Using token:")
        .stdout_contains(&format!(
            "kubeadm join {ENDPOINT} --token <value withheld> \\\n"
        ));
}

#[test]
fn init_registers_a_not_ready_tainted_control_plane() {
    let lab = SimLab::goldentooth();
    lab.init();
    let n = lab.node_json("bettley");
    let labels = &n["metadata"]["labels"];
    assert_eq!(labels["node-role.kubernetes.io/control-plane"], "");
    assert_eq!(
        labels["node.kubernetes.io/exclude-from-external-load-balancers"],
        ""
    );
    assert_eq!(labels["kubernetes.io/arch"], "arm64");
    assert_eq!(labels["kubernetes.io/os"], "linux");
    assert_eq!(labels["kubernetes.io/hostname"], "bettley");
    let taints = n["spec"]["taints"].as_array().unwrap();
    assert!(taints.iter().any(
        |t| t["key"] == "node-role.kubernetes.io/control-plane" && t["effect"] == "NoSchedule"
    ));
    let ready = lab.ready_condition("bettley");
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["reason"], "KubeletNotReady");
    assert!(
        ready["message"]
            .as_str()
            .unwrap()
            .contains("network plugin")
            || ready["message"]
                .as_str()
                .unwrap()
                .contains("NetworkPluginNotReady")
    );
    assert_eq!(n["status"]["nodeInfo"]["kubeletVersion"], "v1.32.4");
}

#[test]
fn init_on_an_initialised_host_fails_preflight() {
    let lab = SimLab::goldentooth();
    lab.init();
    lab.on("bettley")
        .run(&format!("kubeadm init --control-plane-endpoint={ENDPOINT}"))
        .status(1)
        .stderr_is(concat!(
            "error execution phase preflight: [preflight] Some fatal errors occurred:\n",
            "\t[ERROR Port-6443]: Port 6443 is in use\n",
            "\t[ERROR Port-10259]: Port 10259 is in use\n",
            "\t[ERROR Port-10257]: Port 10257 is in use\n",
            "\t[ERROR FileAvailable--etc-kubernetes-manifests-kube-apiserver.yaml]: /etc/kubernetes/manifests/kube-apiserver.yaml already exists\n",
            "\t[ERROR FileAvailable--etc-kubernetes-manifests-kube-controller-manager.yaml]: /etc/kubernetes/manifests/kube-controller-manager.yaml already exists\n",
            "\t[ERROR FileAvailable--etc-kubernetes-manifests-kube-scheduler.yaml]: /etc/kubernetes/manifests/kube-scheduler.yaml already exists\n",
            "\t[ERROR FileAvailable--etc-kubernetes-manifests-etcd.yaml]: /etc/kubernetes/manifests/etcd.yaml already exists\n",
            "\t[ERROR Port-10250]: Port 10250 is in use\n",
            "\t[ERROR Port-2379]: Port 2379 is in use\n",
            "\t[ERROR Port-2380]: Port 2380 is in use\n",
            "\t[ERROR DirAvailable--var-lib-etcd]: /var/lib/etcd is not empty\n",
            "[preflight] If you know what you are doing, you can make a check non-fatal with `--ignore-preflight-errors=...`\n",
            "To see the stack trace of this error execute with --v=5 or higher\n",
        ));
}

#[test]
fn upload_certs_prints_exactly_three_lines_with_a_fresh_key() {
    let lab = SimLab::goldentooth();
    lab.init();
    let a = lab
        .on("bettley")
        .run("kubeadm init phase upload-certs --upload-certs")
        .success();
    let lines: Vec<&str> = a.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", a.stdout);
    assert_eq!(lines[0], "[upload-certs] Storing the certificates in Secret \"kubeadm-certs\" in the \"kube-system\" Namespace");
    assert_eq!(lines[1], "[upload-certs] Using certificate key:");
    assert!(is_hex64(lines[2]), "{}", lines[2]);
    let b = lab
        .on("bettley")
        .run("kubeadm init phase upload-certs --upload-certs")
        .success();
    assert_ne!(
        b.stdout.lines().nth(2),
        Some(lines[2]),
        "each upload has a fresh key"
    );
}

#[test]
fn print_join_command_ends_with_one_trailing_space() {
    let lab = SimLab::goldentooth();
    lab.init();
    let out = lab
        .on("bettley")
        .run("kubeadm token create --print-join-command")
        .success();
    let line = out.stdout;
    assert!(
        line.starts_with(&format!("kubeadm join {ENDPOINT} --token ")),
        "{line}"
    );
    assert!(line.ends_with(" \n") && !line.ends_with("  \n"), "{line:?}");
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words.len(), 7, "{line}");
    assert_eq!(words[5], "--discovery-token-ca-cert-hash");
    assert!(words[6].starts_with("sha256:") && is_hex64(&words[6][7..]));
}

#[test]
fn print_join_command_with_certificate_key_is_the_control_plane_line() {
    let lab = SimLab::goldentooth();
    lab.init();
    let key = "a".repeat(64);
    let out = lab
        .on("bettley")
        .run(&format!(
            "kubeadm token create --print-join-command --certificate-key {key}"
        ))
        .success();
    assert!(
        out.stdout
            .ends_with(&format!(" --control-plane --certificate-key {key}\n")),
        "{:?}",
        out.stdout
    );
}

#[test]
fn certificate_key_without_print_join_command_is_refused() {
    let lab = SimLab::goldentooth();
    lab.init();
    lab.on("bettley")
        .run(&format!(
            "kubeadm token create --certificate-key {}",
            "b".repeat(64)
        ))
        .status(1)
        .stderr_contains("cannot use --certificate-key without --print-join-command\n");
}

#[test]
fn token_create_prints_only_the_token_and_list_shows_it() {
    let lab = SimLab::goldentooth();
    lab.init();
    let tok = lab
        .on("bettley")
        .run("kubeadm token create --ttl 0 --description 'gt join'")
        .success()
        .stdout
        .trim_end()
        .to_string();
    assert!(tok.len() == 23 && tok.as_bytes()[6] == b'.', "{tok}");
    let list = lab.on("bettley").run("kubeadm token list").success();
    let lines: Vec<&str> = list.stdout.lines().collect();
    assert!(lines[0].starts_with("TOKEN  "), "{}", list.stdout);
    for col in ["TTL", "EXPIRES", "USAGES", "DESCRIPTION", "EXTRA GROUPS"] {
        assert!(lines[0].contains(col));
    }
    let row = lines
        .iter()
        .find(|l| l.starts_with(&tok))
        .expect("our token is listed");
    let cells: Vec<&str> = row
        .split("   ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        cells,
        vec![
            tok.as_str(),
            "<forever>",
            "<never>",
            "authentication,signing",
            "gt join",
            "system:bootstrappers:kubeadm:default-node-token"
        ]
        .into_iter()
        .map(|s| if s == "authentication,signing" {
            "signing,authentication"
        } else {
            s
        })
        .collect::<Vec<_>>()
    );
    // init's own token: 24h, RFC 3339 expiry; upload-certs' proxy token has no usages.
    assert!(
        list.stdout.contains("   23h   ") && list.stdout.contains("Z   signing,authentication"),
        "{}",
        list.stdout
    );
    assert!(
        list.stdout.contains("<none>")
            && list
                .stdout
                .contains("Proxy for managing TTL for the kubeadm-certs secret")
    );
}

#[test]
fn token_delete_by_id_or_token_and_pattern_errors() {
    let lab = SimLab::goldentooth();
    lab.init();
    let tok = lab
        .on("bettley")
        .run("kubeadm token create")
        .success()
        .stdout
        .trim()
        .to_string();
    let id = &tok[..6];
    lab.on("bettley")
        .run(&format!("kubeadm token delete {tok}"))
        .success()
        .stdout_is(&format!("bootstrap token \"{id}\" deleted\n"));
    lab.on("bettley")
        .run(&format!("kubeadm token delete {id}"))
        .status(1)
        .stderr_contains(&format!(
            "failed to delete bootstrap token \"{id}\": secrets \"bootstrap-token-{id}\" not found"
        ));
    lab.on("bettley")
        .run("kubeadm token delete NOT-A-TOKEN")
        .status(1)
        .stderr_contains(r#"given token didn't match pattern "\\A([a-z0-9]{6})\\.([a-z0-9]{16})\\z" or "\\A([a-z0-9]{6})\\z""#);
}

#[test]
fn printed_ca_pin_is_openssls_spki_sha256() {
    let lab = SimLab::goldentooth();
    lab.init();
    let line = lab.join_command();
    let pin = line
        .split_whitespace()
        .nth(6)
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let ca = lab.host_file("bettley", "/etc/kubernetes/pki/ca.crt");
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl x509 -pubkey -noout -in {} | openssl pkey -pubin -outform der | sha256sum",
            ca.display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success());
    let openssl = String::from_utf8(out.stdout).unwrap();
    assert_eq!(openssl.split_whitespace().next().unwrap(), pin);
}

#[test]
fn worker_join_writes_kubelet_conf_and_ca_and_registers_the_node() {
    let lab = SimLab::goldentooth();
    lab.init();
    let join = lab.join_command();
    lab.on("fenn")
        .run(&join)
        .success()
        .stdout_contains("This node has joined the cluster:\n");
    assert!(lab
        .host_file("fenn", "/etc/kubernetes/kubelet.conf")
        .exists());
    assert!(lab.host_file("fenn", "/etc/kubernetes/pki/ca.crt").exists());
    assert!(!lab.host_file("fenn", "/etc/kubernetes/admin.conf").exists());
    let n = lab.node_json("fenn");
    assert_eq!(n["metadata"]["labels"]["kubernetes.io/hostname"], "fenn");
    assert!(n["metadata"]["labels"]
        .get("node-role.kubernetes.io/control-plane")
        .is_none());
    assert_eq!(n["status"]["addresses"][0]["address"], "127.4.0.15");
}

#[test]
fn joining_twice_fails_with_the_preflight_block() {
    let lab = SimLab::goldentooth();
    lab.init();
    let join = lab.join_command();
    lab.on("fenn").run(&join).success();
    lab.on("fenn")
        .run(&join)
        .status(1)
        .stdout_is("[preflight] Running pre-flight checks\n")
        .stderr_is(concat!(
            "error execution phase preflight: [preflight] Some fatal errors occurred:\n",
            "\t[ERROR FileAvailable--etc-kubernetes-kubelet.conf]: /etc/kubernetes/kubelet.conf already exists\n",
            "\t[ERROR Port-10250]: Port 10250 is in use\n",
            "\t[ERROR FileAvailable--etc-kubernetes-pki-ca.crt]: /etc/kubernetes/pki/ca.crt already exists\n",
            "[preflight] If you know what you are doing, you can make a check non-fatal with `--ignore-preflight-errors=...`\n",
            "To see the stack trace of this error execute with --v=5 or higher\n",
        ));
}

#[test]
fn ignored_checks_warn_and_a_ready_node_still_blocks_the_join() {
    let lab = SimLab::goldentooth();
    lab.init();
    let join = lab.join_command();
    lab.on("fenn").run(&join).success();
    lab.apply_cni();
    eventually("fenn is Ready", || lab.ready_status("fenn") == "True");
    lab.on("fenn")
        .run(&format!("{join} --ignore-preflight-errors=FileAvailable--etc-kubernetes-kubelet.conf,port-10250"))
        .status(1)
        .stderr_contains("\t[WARNING FileAvailable--etc-kubernetes-kubelet.conf]: /etc/kubernetes/kubelet.conf already exists\n")
        .stderr_contains("\t[WARNING Port-10250]: Port 10250 is in use\n")
        .stderr_contains("\t[ERROR FileAvailable--etc-kubernetes-pki-ca.crt]: /etc/kubernetes/pki/ca.crt already exists\n");
    lab.on("fenn")
        .run(&format!("{join} --ignore-preflight-errors=all"))
        .status(1)
        .stderr_contains("error execution phase kubelet-start: a Node with name \"fenn\" and status \"Ready\" already exists in the cluster. You must delete the existing Node or change the name of this new joining Node\n");
}

#[test]
fn all_with_other_checks_is_a_validation_error() {
    let lab = SimLab::goldentooth();
    lab.init();
    let join = lab.join_command();
    lab.on("fenn")
        .run(&format!("{join} --ignore-preflight-errors=all,Port-10250"))
        .status(3)
        .stderr_contains("ignore-preflight-errors: Invalid value: \"all,port-10250\": don't specify individual checks if 'all' is used\n");
}

#[test]
fn wrong_ca_pin_is_rejected_with_the_pinned_keys_message() {
    let lab = SimLab::goldentooth();
    lab.init();
    let join = lab.join_command();
    let real_pin = join.split_whitespace().nth(6).unwrap().to_string();
    let wrong = join.replace(&real_pin, &format!("sha256:{}", "0".repeat(64)));
    lab.on("fenn")
        .run(&wrong)
        .status(1)
        .stderr_contains(&format!(
            "error execution phase preflight: couldn't validate the identity of the API Server: cluster CA found in cluster-info ConfigMap is invalid: none of the public keys \"{real_pin}\" are pinned\n"
        ));
    assert!(!lab
        .host_file("fenn", "/etc/kubernetes/kubelet.conf")
        .exists());
}

#[test]
fn an_expired_token_fails_discovery_with_the_jws_error() {
    let lab = SimLab::goldentooth();
    lab.init();
    let join = lab.join_command();
    let id = &join.split_whitespace().nth(4).unwrap()[..6];
    lab.on("fenn")
        .env("GT_LAB_NOW_OFFSET", "960")
        .run(&join)
        .status(1)
        .stderr_contains(&format!(
            "error execution phase preflight: couldn't validate the identity of the API Server: could not find a JWS signature in the cluster-info ConfigMap for token ID \"{id}\"\n"
        ));
}

#[test]
fn control_plane_join_fails_once_the_uploaded_certs_expire() {
    let lab = SimLab::goldentooth();
    lab.init();
    let join = lab.control_plane_join_command();
    let token_part = join.split_whitespace().nth(4).unwrap().to_string();
    // A long-lived token, so that only the certificate key is stale two hours later.
    let long = lab
        .on("bettley")
        .run("kubeadm token create --ttl 24h")
        .success()
        .stdout
        .trim()
        .to_string();
    let join = join.replace(&token_part, &long);
    lab.on("cargyll")
        .env("GT_LAB_NOW_OFFSET", "7300")
        .run(&join)
        .status(1)
        .stderr_contains("Secret \"kubeadm-certs\" was not found in the \"kube-system\" Namespace. This Secret might have expired. Please, run `kubeadm init phase upload-certs --upload-certs` on a control plane to generate a new one\n");
}

#[test]
fn control_plane_join_with_the_wrong_key_fails_to_decrypt() {
    let lab = SimLab::goldentooth();
    lab.init();
    let join = lab.control_plane_join_command();
    let key = join.split_whitespace().last().unwrap().to_string();
    lab.on("cargyll")
        .run(&join.replace(&key, &"c".repeat(64)))
        .status(1)
        .stderr_contains(
            "error decoding secret data with provided key: cipher: message authentication failed",
        );
}

#[test]
fn control_plane_join_adds_an_etcd_member_and_an_api_server() {
    let lab = SimLab::goldentooth();
    lab.init();
    let join = lab.control_plane_join_command();
    lab.on("cargyll").run(&join).success().stdout_contains(
        "This node has joined the cluster and a new control plane instance was created:\n",
    );
    for f in [
        "admin.conf",
        "manifests/etcd.yaml",
        "manifests/kube-apiserver.yaml",
        "pki/ca.key",
        "pki/etcd/ca.crt",
    ] {
        assert!(
            lab.host_file("cargyll", &format!("/etc/kubernetes/{f}"))
                .exists(),
            "{f}"
        );
    }
    let etcd =
        std::fs::read_to_string(lab.host_file("cargyll", "/etc/kubernetes/manifests/etcd.yaml"))
            .unwrap();
    assert!(
        etcd.contains(
            "--initial-cluster=bettley=https://127.4.0.11:2380,cargyll=https://127.4.0.12:2380"
        ),
        "{etcd}"
    );
    assert!(etcd.contains("--initial-cluster-state=existing"));
    eventually("cargyll's API server is ready", || {
        lab.on("bettley")
            .run(&format!(
                "kubectl {ADMIN} --server https://127.4.0.12:6443 get --raw /readyz"
            ))
            .succeeded()
    });
    let n = lab.node_json("cargyll");
    assert_eq!(
        n["metadata"]["labels"]["node-role.kubernetes.io/control-plane"],
        ""
    );
    // The joined control plane's pin is the cluster's.
    assert_eq!(
        std::fs::read(lab.host_file("cargyll", "/etc/kubernetes/pki/ca.crt")).unwrap(),
        std::fs::read(lab.host_file("bettley", "/etc/kubernetes/pki/ca.crt")).unwrap()
    );
}

#[test]
fn reset_removes_the_files_and_etcd_member_but_not_the_node() {
    let lab = SimLab::goldentooth();
    lab.init();
    lab.on("cargyll")
        .run(&lab.control_plane_join_command())
        .success();
    lab.on("cargyll")
        .run("kubeadm reset -f")
        .success()
        .stdout_contains("[reset] Deleting contents of directories: [/etc/kubernetes/manifests /var/lib/kubelet /etc/kubernetes/pki]\n")
        .stdout_contains("[reset] Deleting files: [/etc/kubernetes/admin.conf /etc/kubernetes/super-admin.conf /etc/kubernetes/kubelet.conf /etc/kubernetes/bootstrap-kubelet.conf /etc/kubernetes/controller-manager.conf /etc/kubernetes/scheduler.conf]\n");
    for f in [
        "/etc/kubernetes/admin.conf",
        "/etc/kubernetes/kubelet.conf",
        "/etc/kubernetes/pki/ca.crt",
        "/etc/kubernetes/manifests/etcd.yaml",
    ] {
        assert!(!lab.host_file("cargyll", f).exists(), "{f} survived reset");
    }
    assert!(lab
        .host_file("cargyll", "/var/lib/etcd")
        .read_dir()
        .unwrap()
        .next()
        .is_none());
    lab.on("cargyll")
        .run("systemctl is-active kubelet")
        .status(3)
        .stdout_is("inactive\n");
    // The Node object stays (reset never deletes it) and is now unreachable.
    assert_eq!(lab.ready_status("cargyll"), "Unknown");
    assert_eq!(etcd_members(lab.dir()), ["bettley"]);
    // A reset host joins again cleanly.
    lab.on("cargyll")
        .run(&lab.control_plane_join_command())
        .success();
}

/// Whether /var/lib/etcd on `node` holds anything.
fn etcd_data_left(lab: &SimLab, node: &str) -> bool {
    lab.host_file(node, "/var/lib/etcd")
        .read_dir()
        .unwrap()
        .next()
        .is_some()
}

#[test]
fn reset_after_its_node_was_deleted_keeps_the_etcd_member_and_wipes_the_data() {
    let lab = SimLab::goldentooth();
    lab.init();
    lab.on("cargyll")
        .run(&lab.control_plane_join_command())
        .success();
    lab.on("bettley")
        .run(&format!("{KUBECTL} delete node cargyll"))
        .success();
    // kubeadm 1.32 reads its configuration with the node's registration:
    // without the Node it has none, and removes no member.
    lab.on("cargyll")
        .run("kubeadm reset -f")
        .success()
        .stderr_contains("[reset] Unable to fetch the kubeadm-config ConfigMap from cluster: failed to get node registration: failed to get corresponding node: nodes \"cargyll\" not found\n")
        .stderr_contains("[reset] No kubeadm config, using etcd pod spec to get data directory\n")
        .stdout_contains("[reset] Deleted contents of the etcd data directory: /var/lib/etcd\n");
    assert_eq!(etcd_members(lab.dir()), ["bettley", "cargyll"]);
    assert!(!etcd_data_left(&lab, "cargyll"));
}

#[test]
fn reset_without_etcd_quorum_cannot_read_its_configuration_and_keeps_its_member() {
    let lab = SimLab::goldentooth();
    lab.init();
    lab.on("cargyll")
        .run(&lab.control_plane_join_command())
        .success();
    // Two members, one started: no API server can read the ConfigMap.
    lab.on("bettley").run("systemctl stop kubelet").success();
    lab.on("cargyll")
        .run("kubeadm reset -f")
        .success()
        .stderr_contains("[reset] Unable to fetch the kubeadm-config ConfigMap from cluster: failed to get config map: etcdserver: request timed out\n")
        .stderr_contains("[reset] No kubeadm config, using etcd pod spec to get data directory\n");
    assert_eq!(etcd_members(lab.dir()), ["bettley", "cargyll"]);
    assert!(!etcd_data_left(&lab, "cargyll"));
    assert!(!lab
        .host_file("cargyll", "/etc/kubernetes/admin.conf")
        .exists());
}

#[test]
fn reset_warns_when_etcd_refuses_to_remove_its_member() {
    let lab = SimLab::goldentooth();
    lab.init();
    for cp in ["cargyll", "dalt"] {
        lab.on(cp).run(&lab.control_plane_join_command()).success();
    }
    // dalt's member is not started: removing cargyll's would leave one
    // started of two, which etcd's strict reconfiguration check refuses.
    lab.on("dalt").run("systemctl stop kubelet").success();
    lab.on("cargyll")
        .run("kubeadm reset -f")
        .success()
        .stderr_contains("[reset] Failed to remove etcd member: etcdserver: re-configuration failed due to not enough started members, please manually remove this etcd member using etcdctl\n")
        .stdout_contains("[reset] Deleted contents of the etcd data directory: /var/lib/etcd\n");
    assert_eq!(etcd_members(lab.dir()), ["bettley", "cargyll", "dalt"]);
    assert!(!etcd_data_left(&lab, "cargyll"));
}

#[test]
fn reset_without_force_asks_and_no_answer_aborts() {
    let lab = SimLab::goldentooth();
    lab.init();
    lab.on("fenn").run(&lab.join_command()).success();
    lab.on("fenn")
        .stdin("")
        .run("kubeadm reset")
        .status(1)
        .stdout_contains("[reset] Are you sure you want to proceed? [y/N]: ")
        .stderr_contains("won't proceed; the user didn't answer (Y|y) in order to continue");
    assert!(lab
        .host_file("fenn", "/etc/kubernetes/kubelet.conf")
        .exists());
    lab.on("fenn").stdin("y\n").run("kubeadm reset").success();
    assert!(!lab
        .host_file("fenn", "/etc/kubernetes/kubelet.conf")
        .exists());
}

/// A JoinConfiguration for fenn with the token, endpoint and CA pin of
/// `lab`'s join command (after its init), `registration` added to fenn's
/// `nodeRegistration`; and the token.
fn fenn_join_config(lab: &SimLab, registration: serde_json::Value) -> (String, String) {
    let join = lab.join_command();
    let w: Vec<&str> = join.split_whitespace().collect();
    let mut cfg = serde_json::json!({
        "apiVersion": "kubeadm.k8s.io/v1beta4",
        "kind": "JoinConfiguration",
        "discovery": {"bootstrapToken": {"apiServerEndpoint": w[2], "token": w[4], "caCertHashes": [w[6]]}},
        "nodeRegistration": {"name": "fenn", "criSocket": "unix:///var/run/containerd/containerd.sock"}
    });
    for (k, v) in registration.as_object().unwrap() {
        cfg["nodeRegistration"][k] = v.clone();
    }
    (cfg.to_string(), w[4].to_string())
}

#[test]
fn join_config_from_stdin_keeps_the_token_out_of_argv() {
    let lab = SimLab::goldentooth();
    lab.init();
    let (cfg, token) = fenn_join_config(
        &lab,
        serde_json::json!({"taints": [{"key": "goldentooth.io/gpu", "value": "true", "effect": "NoSchedule"}]}),
    );
    lab.on("fenn")
        .stdin(&cfg)
        .run("kubeadm join --config /dev/stdin")
        .success()
        .stdout_contains("This node has joined the cluster:");
    let entry = lab.log("fenn").into_iter().last().unwrap();
    assert_eq!(entry.tool, "kubeadm");
    assert_eq!(entry.argv, vec!["join", "--config", "/dev/stdin"]);
    assert_eq!(entry.stdin_bytes, cfg.len() as u64);
    assert_eq!(entry.exit, 0);
    assert!(!serde_json::to_string(&lab.log("fenn"))
        .unwrap()
        .contains(&token));
    let n = lab.node_json("fenn");
    assert_eq!(n["spec"]["taints"][0]["key"], "goldentooth.io/gpu");
}

#[test]
fn join_with_a_label_its_kubelet_may_not_set_waits_out_the_kubelet_check_and_fails() {
    let lab = SimLab::goldentooth();
    lab.init();
    let (cfg, _) = fenn_join_config(
        &lab,
        serde_json::json!({"kubeletExtraArgs": [{"name": "node-labels",
            "value": "goldentooth.io/storage=ceph,node-role.kubernetes.io/worker="}]}),
    );
    lab.on("fenn")
        .stdin(&cfg)
        .run("kubeadm join --config /dev/stdin")
        .status(1)
        .stdout_contains("[kubelet-check] The kubelet is not healthy after 4m")
        .stderr_contains(
            "error execution phase kubelet-start: failed while waiting for the kubelet to start",
        );
    // The kubelet never registered the Node.
    let nodes = lab.nodes_json();
    assert!(
        !nodes["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["metadata"]["name"] == "fenn"),
        "{nodes}"
    );
}

#[test]
fn version_and_unknown_flags_behave_like_kubeadm() {
    let lab = SimLab::goldentooth();
    lab.on("fenn")
        .run("kubeadm version -o short")
        .success()
        .stdout_is("v1.32.4\n");
    lab.on("fenn")
        .run("kubeadm join --foo")
        .status(1)
        .stderr_is(
        "unknown flag: --foo\nTo see the stack trace of this error execute with --v=5 or higher\n",
    );
    lab.on("fenn")
        .run("kubeadm frobnicate")
        .status(1)
        .stderr_contains("unknown command \"frobnicate\" for \"kubeadm\"");
}

/// kubeadm init's JSON documents for bettley: its `node-labels` and the
/// cluster's `kubernetesVersion` as given.
fn init_config(node_labels: &str, version: &str) -> String {
    format!(
        "{}\n---\n{}\n",
        serde_json::json!({"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "InitConfiguration",
            "nodeRegistration": {"criSocket": "unix:///var/run/containerd/containerd.sock",
                "kubeletExtraArgs": [{"name": "node-labels", "value": node_labels}]}}),
        serde_json::json!({"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "ClusterConfiguration",
            "controlPlaneEndpoint": ENDPOINT, "kubernetesVersion": version,
            "networking": {"podSubnet": "192.168.0.0/16", "serviceSubnet": "172.16.0.0/20"}}),
    )
}

#[test]
fn init_reads_init_and_cluster_configuration_from_a_json_config() {
    let lab = SimLab::goldentooth();
    let cfg = init_config("goldentooth.io/hardware=raspberry-pi-4b", "stable-1.32");
    std::fs::write(lab.root("bettley").join("kubeadm.json"), &cfg).unwrap();
    lab.on("bettley")
        .run("kubeadm init --config ${GT_HOST_ROOT}/kubeadm.json --upload-certs --skip-token-print")
        .success()
        .stdout_contains("[certs] apiserver serving cert is signed for DNS names [bettley kubernetes kubernetes.default kubernetes.default.svc kubernetes.default.svc.cluster.local] and IPs [172.16.0.1 127.4.0.11 127.4.0.10]\n");
    lab.wait_api_ready();
    let n = lab.node_json("bettley");
    assert_eq!(
        n["metadata"]["labels"]["goldentooth.io/hardware"],
        "raspberry-pi-4b"
    );
    assert_eq!(n["spec"]["podCIDR"], "192.168.0.0/24");
    // Mixing --config with flags it replaces is refused, as kubeadm does.
    lab.on("cargyll")
        .run("kubeadm init --config ${GT_HOST_ROOT}/../bettley/kubeadm.json --pod-network-cidr=10.0.0.0/16")
        .status(3)
        .stderr_contains("can not mix '--config' with arguments [pod-network-cidr]");
}

#[test]
fn init_with_a_label_its_kubelet_may_not_set_fails_like_a_kubelet_that_cannot_start() {
    let lab = SimLab::goldentooth();
    let cfg = init_config(
        "goldentooth.io/hardware=raspberry-pi-4b,node-role.kubernetes.io/worker=",
        "v1.32.4",
    );
    lab.on("bettley")
        .stdin(&cfg)
        .run("kubeadm init --config /dev/stdin --skip-token-print")
        .status(1)
        .stdout_contains("[kubelet-check] The kubelet is not healthy after 4m")
        .stderr_contains("error execution phase wait-control-plane: failed while waiting for the kubelet to start");
}

#[test]
fn a_yaml_config_is_refused_with_a_clear_reason() {
    let lab = SimLab::goldentooth();
    lab.on("bettley")
        .stdin("apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n")
        .run("kubeadm init --config /dev/stdin")
        .status(1)
        .stderr_contains("the lab's simulated kubeadm reads JSON documents only");
    assert!(!lab
        .host_file("bettley", "/etc/kubernetes/admin.conf")
        .exists());
}
