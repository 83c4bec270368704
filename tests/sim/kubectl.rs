//! The simulated kubectl, systemctl, kubelet and uname: outputs and errors as
//! the real tools print them, readiness routing, and the lab's faults.

use crate::support::sim::{SimLab, ENDPOINT};
use crate::support::wait::eventually;

use crate::support::kube::{apply_cni, KUBECTL};

/// A cluster with bettley initialised and fenn joined as a worker.
fn small_cluster() -> SimLab {
    let lab = SimLab::goldentooth();
    lab.init();
    lab.on("fenn").run(&lab.join_command()).success();
    lab
}

#[test]
fn without_a_kubeconfig_kubectl_tries_localhost_8080() {
    let lab = small_cluster();
    lab.on("fenn")
        .run("kubectl get nodes")
        .status(1)
        .stderr_is("The connection to the server localhost:8080 was refused - did you specify the right host or port?\n");
}

#[test]
fn an_explicit_kubeconfig_that_does_not_exist_is_an_error() {
    // client-go's loader: an explicit path must exist (no fallback to localhost:8080).
    let lab = small_cluster();
    lab.on("bettley")
        .run("kubectl --kubeconfig /nonexistent/admin.conf get nodes")
        .status(1)
        .stderr_is("error: stat /nonexistent/admin.conf: no such file or directory\n");
}

#[test]
fn kubeconfig_env_works_like_the_flag() {
    let lab = small_cluster();
    let admin = lab.host_file("bettley", "/etc/kubernetes/admin.conf");
    lab.on("bettley")
        .env("KUBECONFIG", admin.to_str().unwrap())
        .run("kubectl get nodes -o name")
        .success()
        .stdout_is("node/bettley\nnode/fenn\n");
}

#[test]
fn get_nodes_prints_kubectls_table() {
    let lab = small_cluster();
    let out = lab
        .on("bettley")
        .run(&format!("{KUBECTL} get nodes"))
        .success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "NAME      STATUS     ROLES           AGE   VERSION"
    );
    assert!(
        lines[1].starts_with("bettley   NotReady   control-plane   "),
        "{}",
        out.stdout
    );
    assert!(lines[1].ends_with("   v1.32.4"));
    assert!(
        lines[2].starts_with("fenn      NotReady   <none>          "),
        "{}",
        out.stdout
    );
}

#[test]
fn get_nodes_json_is_a_real_shaped_list() {
    let lab = small_cluster();
    let v = lab.nodes_json();
    assert_eq!(v["apiVersion"], "v1");
    assert_eq!(v["kind"], "List");
    let fenn = &v["items"][1];
    assert_eq!(fenn["kind"], "Node");
    for f in [
        "uid",
        "creationTimestamp",
        "resourceVersion",
        "annotations",
        "labels",
    ] {
        assert!(!fenn["metadata"][f].is_null(), "metadata.{f}");
    }
    assert!(fenn["spec"]["podCIDR"]
        .as_str()
        .unwrap()
        .starts_with("192.168."));
    let types: Vec<&str> = fenn["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        vec!["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]
    );
    let info = &fenn["status"]["nodeInfo"];
    assert_eq!(info["kubeletVersion"], "v1.32.4");
    assert_eq!(info["architecture"], "arm64");
    assert_eq!(info["osImage"], "Debian GNU/Linux 12 (bookworm)");
    assert!(info["containerRuntimeVersion"]
        .as_str()
        .unwrap()
        .starts_with("containerd://"));
    assert!(!info["kernelVersion"].is_null());
    assert_eq!(
        fenn["status"]["addresses"][1],
        serde_json::json!({"address": "fenn", "type": "Hostname"})
    );
    assert_eq!(fenn["status"]["capacity"]["pods"], "110");
    // A NotReady node carries the lifecycle controller's taint.
    assert!(fenn["spec"]["taints"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["key"] == "node.kubernetes.io/not-ready"));
}

#[test]
fn unknown_node_is_not_found() {
    let lab = small_cluster();
    lab.on("bettley")
        .run(&format!("{KUBECTL} get node nobody -o json"))
        .status(1)
        .stderr_is("Error from server (NotFound): nodes \"nobody\" not found\n");
}

#[test]
fn cni_apply_makes_nodes_ready_after_a_delay() {
    let lab = small_cluster();
    lab.on("bettley")
        .run(&apply_cni())
        .success()
        .stdout_contains("daemonset.apps/calico-node created\n");
    eventually("bettley and fenn Ready", || {
        lab.ready_status("bettley") == "True" && lab.ready_status("fenn") == "True"
    });
    let n = lab.node_json("fenn");
    assert!(
        n["spec"].get("taints").is_none(),
        "a Ready worker has no taints: {}",
        n["spec"]
    );
    lab.on("bettley")
        .run(&apply_cni())
        .success()
        .stdout_contains("daemonset.apps/calico-node unchanged\n");
    lab.on("bettley")
        .run(&format!("{KUBECTL} apply -f /nonexistent/calico.yaml"))
        .status(1)
        .stderr_is("error: the path \"/nonexistent/calico.yaml\" does not exist\n");
}

#[test]
fn label_add_overwrite_and_remove() {
    let lab = small_cluster();
    let k = |args: &str| lab.on("bettley").run(&format!("{KUBECTL} {args}"));
    k("label node fenn goldentooth.io/role=x")
        .success()
        .stdout_is("node/fenn labeled\n");
    k("label node fenn goldentooth.io/role=y")
        .status(1)
        .stderr_is(
            "error: 'goldentooth.io/role' already has a value (x), and --overwrite is false\n",
        );
    k("label node fenn goldentooth.io/role=y --overwrite")
        .success()
        .stdout_is("node/fenn labeled\n");
    assert_eq!(
        lab.node_json("fenn")["metadata"]["labels"]["goldentooth.io/role"],
        "y"
    );
    k("label node fenn goldentooth.io/role-")
        .success()
        .stdout_is("node/fenn unlabeled\n");
    assert!(lab.node_json("fenn")["metadata"]["labels"]
        .get("goldentooth.io/role")
        .is_none());
    k("label node ghost a=b")
        .status(1)
        .stderr_is("Error from server (NotFound): nodes \"ghost\" not found\n");
    k("label node fenn goldentooth.io/role- a=b")
        .success()
        .stdout_is("label \"goldentooth.io/role\" not found.\nnode/fenn labeled\n");
    k("label node fenn nope-")
        .success()
        .stdout_is("label \"nope\" not found.\nnode/fenn not labeled\n");
    k("label node fenn a=c kubernetes.io/os=plan9")
        .status(1)
        .stderr_is("error: ['a' already has a value (b), and --overwrite is false, 'kubernetes.io/os' already has a value (linux), and --overwrite is false]\n");
    k("label node fenn a=-x")
        .status(1)
        .stderr_contains("error: invalid label value: \"a=-x\": a valid label must be");
    k("label node fenn Bad_/x=y")
        .status(1)
        .stderr_contains("error: invalid label spec: Bad_/x=y");
    k("annotate node fenn")
        .status(1)
        .stderr_contains("error: at least one annotation update is required");
    k("annotate node fenn note=-x")
        .success()
        .stdout_is("node/fenn annotated\n");
}

#[test]
fn get_pods_and_budgets_by_name_as_names_and_as_tables() {
    let lab = small_cluster();
    let k = |args: &str| lab.on("bettley").run(&format!("{KUBECTL} {args}"));
    lab.on("bettley")
        .stdin(&crate::support::workloads::pod_and_budget(
            "hr-app", "fenn", false,
        ))
        .run(&format!("{KUBECTL} apply -f -"))
        .success();
    k("get pods -o name").success().stdout_is("pod/hr-app\n");
    k("get pdb -o name")
        .success()
        .stdout_is("poddisruptionbudget.policy/hr\n");
    k("get pods nope")
        .status(1)
        .stderr_is("Error from server (NotFound): pods \"nope\" not found\n");
    k("get pdb hr -n kube-system")
        .status(1)
        .stderr_is("Error from server (NotFound): poddisruptionbudgets.policy \"hr\" not found\n");
    k("get pdb -n kube-system")
        .success()
        .stdout_is("")
        .stderr_is("No resources found in kube-system namespace.\n");
    assert_eq!(k("get pod hr-app -o json").success().json()["kind"], "Pod");
    assert_eq!(k("get pdb -o json").success().json()["kind"], "List");
    let table = |args: &str| -> Vec<String> {
        // The AGE column changes; every other cell is pinned.
        k(args)
            .success()
            .stdout
            .lines()
            .map(|l| {
                l.trim_end()
                    .rsplit_once(' ')
                    .map_or(l, |(rest, _)| rest)
                    .to_string()
            })
            .collect()
    };
    assert_eq!(
        table("get pdb -A"),
        [
            "NAMESPACE   NAME   MIN AVAILABLE   MAX UNAVAILABLE   ALLOWED DISRUPTIONS  ",
            "default     hr     1               N/A               0                    ",
        ]
    );
    assert_eq!(
        table("get pods"),
        [
            "NAME     READY   STATUS    RESTARTS  ",
            "hr-app   0/1     Pending   0         ",
        ]
    );
    let wide = k("get pods -o wide").success();
    let lines: Vec<&str> = wide.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "NAME     READY   STATUS    RESTARTS   AGE   IP       NODE   NOMINATED NODE   READINESS GATES"
    );
    let mut cells: Vec<&str> = lines[1].split_whitespace().collect();
    cells.remove(4);
    assert_eq!(
        cells,
        ["hr-app", "0/1", "Pending", "0", "<none>", "fenn", "<none>", "<none>"]
    );
}

#[test]
fn taint_add_and_remove() {
    let lab = small_cluster();
    let k = |args: &str| lab.on("bettley").run(&format!("{KUBECTL} {args}"));
    k("taint node fenn goldentooth.io/gpu=true:NoSchedule")
        .success()
        .stdout_is("node/fenn tainted\n");
    k("taint node fenn goldentooth.io/gpu=false:NoSchedule")
        .status(1)
        .stderr_is("error: node fenn already has goldentooth.io/gpu taint(s) with same effect(s) and --overwrite is false\n");
    let taints = lab.node_json("fenn")["spec"]["taints"].clone();
    assert!(taints
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["key"] == "goldentooth.io/gpu"
            && t["value"] == "true"
            && t["effect"] == "NoSchedule"));
    k("taint node fenn goldentooth.io/gpu:NoSchedule-")
        .success()
        .stdout_is("node/fenn untainted\n");
    k("taint node fenn goldentooth.io/gpu:NoSchedule-")
        .status(1)
        .stderr_is("error: taint \"goldentooth.io/gpu:NoSchedule\" not found\n");
}

#[test]
fn drain_cordons_and_needs_ignore_daemonsets() {
    let lab = small_cluster();
    let k = |args: &str| lab.on("bettley").run(&format!("{KUBECTL} {args}"));
    k("drain fenn")
        .status(1)
        .stdout_is("node/fenn cordoned\n")
        .stderr_contains("cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): kube-system/kube-proxy-");
    k("drain fenn --ignore-daemonsets --delete-emptydir-data --timeout 5m")
        .success()
        .stdout_is("node/fenn already cordoned\nnode/fenn drained\n")
        .stderr_contains("Warning: ignoring DaemonSet-managed Pods: kube-system/kube-proxy-");
    let out = k("get nodes").success();
    assert!(
        out.stdout.contains("NotReady,SchedulingDisabled"),
        "{}",
        out.stdout
    );
    assert_eq!(lab.node_json("fenn")["spec"]["unschedulable"], true);
    k("uncordon fenn")
        .success()
        .stdout_is("node/fenn uncordoned\n");
    k("uncordon fenn")
        .success()
        .stdout_is("node/fenn already uncordoned\n");
    k("cordon fenn").success().stdout_is("node/fenn cordoned\n");
}

#[test]
fn drain_evicts_the_pods_of_the_node_and_they_move_elsewhere() {
    let lab = small_cluster();
    lab.apply_cni();
    let k = |args: &str| lab.on("bettley").run(&format!("{KUBECTL} {args}"));
    // CoreDNS's two replicas spread over bettley and fenn.
    let out = k("drain fenn --ignore-daemonsets --delete-emptydir-data").success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", out.stdout);
    assert_eq!(lines[0], "node/fenn cordoned");
    let pod = lines[1]
        .strip_prefix("evicting pod kube-system/")
        .expect(lines[1]);
    assert!(
        pod.starts_with("coredns-668d6bf9bc-") && pod.len() == "coredns-668d6bf9bc-".len() + 5,
        "{pod}"
    );
    assert_eq!(lines[2], format!("pod/{pod} evicted"));
    assert_eq!(lines[3], "node/fenn drained");
    assert!(
        out.stderr.contains("kube-system/calico-node-")
            && out.stderr.contains("kube-system/kube-proxy-")
    );
    k("drain fenn --ignore-daemonsets")
        .success()
        .stdout_is("node/fenn already cordoned\nnode/fenn drained\n");
}

#[test]
fn delete_node_removes_the_object_only() {
    let lab = small_cluster();
    lab.on("bettley")
        .run(&format!("{KUBECTL} delete node fenn"))
        .success()
        .stdout_is("node \"fenn\" deleted\n");
    lab.on("bettley")
        .run(&format!("{KUBECTL} delete node fenn"))
        .status(1)
        .stderr_is("Error from server (NotFound): nodes \"fenn\" not found\n");
    lab.on("bettley")
        .run(&format!("{KUBECTL} get nodes -o name"))
        .success()
        .stdout_is("node/bettley\n");
    assert!(lab
        .host_file("fenn", "/etc/kubernetes/kubelet.conf")
        .exists());
    // Restarting its kubelet registers the node again, as a real kubelet does.
    lab.on("fenn").run("systemctl restart kubelet").success();
    lab.on("bettley")
        .run(&format!("{KUBECTL} get nodes -o name"))
        .success()
        .stdout_is("node/bettley\nnode/fenn\n");
}

#[test]
fn readyz_bodies_are_the_api_servers() {
    let lab = small_cluster();
    lab.on("bettley")
        .run(&format!("{KUBECTL} get --raw /readyz"))
        .success()
        .stdout_is("ok");
    lab.on("bettley")
        .run(&format!("{KUBECTL} get --raw /livez"))
        .success()
        .stdout_is("ok");
    let v = lab
        .on("bettley")
        .run(&format!("{KUBECTL} get --raw '/readyz?verbose'"))
        .success();
    assert!(
        v.stdout.starts_with("[+]ping ok\n[+]log ok\n[+]etcd ok\n"),
        "{}",
        v.stdout
    );
    assert!(v.stdout.contains("[+]informer-sync ok\n"));
    assert!(v.stdout.ends_with("readyz check passed\n"));
}

#[test]
fn apiserver_down_fails_that_servers_readyz_but_not_the_endpoints_while_another_is_up() {
    let lab = SimLab::goldentooth();
    lab.init();
    lab.on("cargyll")
        .run(&lab.control_plane_join_command())
        .success();
    lab.on("dalt")
        .run(&lab.control_plane_join_command())
        .success();
    let direct = |ip: &str| {
        lab.on("bettley").run(&format!(
            "{KUBECTL} --server https://{ip}:6443 get --raw '/readyz?verbose'"
        ))
    };
    eventually("all three API servers ready", || {
        ["127.4.0.11", "127.4.0.12", "127.4.0.13"]
            .iter()
            .all(|ip| direct(ip).succeeded())
    });
    lab.set_fault("cargyll", |f| f.apiserver_down = true);
    direct("127.4.0.12")
        .status(1)
        .stderr_contains("Error from server (InternalError): an error on the server (\"[+]ping ok\\n[+]log ok\\n[-]etcd failed: reason withheld\\n")
        .stderr_contains("readyz check failed\") has prevented the request from succeeding\n");
    direct("127.4.0.11").success();
    lab.on("bettley")
        .run(&format!("{KUBECTL} get --raw /readyz"))
        .success()
        .stdout_is("ok");
    // The lab daemon's view of the same fault.
    let (code, body) = gt_lab::sim::api::readyz(lab.dir(), Some("cargyll"), false);
    assert_eq!(code, 500);
    assert!(
        body.contains("[-]etcd failed: reason withheld\n")
            && body.ends_with("readyz check failed\n")
    );
    assert_eq!(
        gt_lab::sim::api::readyz(lab.dir(), None, false),
        (200, "ok".to_string())
    );
}

#[test]
fn losing_etcd_quorum_fails_every_readyz_and_stopping_all_api_servers_refuses() {
    let lab = SimLab::goldentooth();
    lab.init();
    lab.on("cargyll")
        .run(&lab.control_plane_join_command())
        .success();
    lab.on("cargyll").run("systemctl stop kubelet").success();
    // Two members, one started: no quorum.
    lab.on("bettley")
        .run(&format!("{KUBECTL} get --raw /readyz"))
        .status(1)
        .stderr_contains("[-]etcd failed: reason withheld");
    lab.on("bettley").run("systemctl stop kubelet").success();
    lab.on("bettley")
        .run(&format!("{KUBECTL} get nodes"))
        .status(1)
        .stderr_is(&format!("The connection to the server {ENDPOINT} was refused - did you specify the right host or port?\n"));
}

#[test]
fn stopped_kubelet_makes_its_node_unknown() {
    let lab = small_cluster();
    lab.apply_cni();
    eventually("fenn Ready", || lab.ready_status("fenn") == "True");
    lab.on("fenn")
        .run("systemctl stop kubelet")
        .success()
        .stdout_is("");
    lab.on("fenn")
        .run("systemctl is-active kubelet")
        .status(3)
        .stdout_is("inactive\n");
    let ready = lab.ready_condition("fenn");
    assert_eq!(ready["status"], "Unknown");
    assert_eq!(ready["reason"], "NodeStatusUnknown");
    assert_eq!(ready["message"], "Kubelet stopped posting node status.");
    let table = lab
        .on("bettley")
        .run(&format!("{KUBECTL} get nodes"))
        .success();
    assert!(
        table
            .stdout
            .lines()
            .any(|l| l.starts_with("fenn ") && l.contains(" NotReady ")),
        "{}",
        table.stdout
    );
    lab.on("fenn").run("systemctl start kubelet").success();
    lab.on("fenn")
        .run("systemctl is-active kubelet")
        .success()
        .stdout_is("active\n");
    assert_eq!(lab.ready_status("fenn"), "True");
}

#[test]
fn systemctl_reports_kubelet_states_and_rejects_unknown_verbs() {
    let lab = SimLab::goldentooth();
    lab.on("fenn")
        .run("systemctl is-active kubelet")
        .status(3)
        .stdout_is("inactive\n");
    // Started without a kubeconfig, the kubelet crash-loops.
    lab.on("fenn").run("systemctl start kubelet").success();
    lab.on("fenn")
        .run("systemctl is-active kubelet")
        .status(3)
        .stdout_is("activating\n");
    lab.on("fenn")
        .run("systemctl status kubelet")
        .status(3)
        .stdout_contains("     Active: activating (auto-restart)");
    lab.on("fenn")
        .run("systemctl is-enabled kubelet")
        .success()
        .stdout_is("enabled\n");
    lab.on("fenn")
        .run("systemctl frob kubelet")
        .status(1)
        .stderr_is("Unknown command verb frob.\n");
}

#[test]
fn kubelet_version_and_uname_report_the_hosts_configuration() {
    let lab = SimLab::goldentooth();
    lab.on("fenn")
        .run("kubelet --version")
        .success()
        .stdout_is("Kubernetes v1.32.4\n");
    lab.on("fenn")
        .run("uname -m")
        .success()
        .stdout_is("aarch64\n");
    lab.on("velaryon")
        .run("uname -m")
        .success()
        .stdout_is("x86_64\n");
    lab.on("fenn").run("uname -n").success().stdout_is("fenn\n");
    lab.on("fenn").run("uname").success().stdout_is("Linux\n");
    lab.on("fenn")
        .run("uname -sm")
        .success()
        .stdout_is("Linux aarch64\n");
    let a = lab.on("velaryon").run("uname -a").success();
    assert!(
        a.stdout.starts_with("Linux velaryon 6.1.0-28-amd64 #1 ")
            && a.stdout.ends_with(" x86_64 GNU/Linux\n"),
        "{}",
        a.stdout
    );
    lab.on("fenn")
        .run("uname -q")
        .status(1)
        .stderr_contains("uname: invalid option -- 'q'");
}

#[test]
fn unknown_kubectl_flags_and_commands_fail_like_kubectl() {
    let lab = small_cluster();
    lab.on("bettley")
        .run(&format!("{KUBECTL} get nodes --foo"))
        .status(1)
        .stderr_is("error: unknown flag: --foo\nSee 'kubectl get --help' for usage.\n");
    lab.on("bettley")
        .run(&format!("{KUBECTL} frob"))
        .status(1)
        .stderr_is("error: unknown command \"frob\" for \"kubectl\"\n");
}

#[test]
fn a_kubelet_kubeconfig_may_read_but_not_label() {
    let lab = small_cluster();
    let k = "kubectl --kubeconfig ${GT_HOST_ROOT}/etc/kubernetes/kubelet.conf";
    lab.on("fenn")
        .run(&format!("{k} get nodes -o name"))
        .success();
    lab.on("fenn")
        .run(&format!("{k} label node bettley a=b"))
        .status(1)
        .stderr_contains("Error from server (Forbidden): nodes \"bettley\" is forbidden: User \"system:node:fenn\" cannot patch resource \"nodes\"");
}

#[test]
fn every_command_is_logged_with_argv_and_exit() {
    let lab = small_cluster();
    lab.on("fenn").run("uname -m").success();
    lab.on("fenn").run("systemctl is-active nothing").status(3);
    let log = lab.log("fenn");
    let last = &log[log.len() - 1];
    assert_eq!(
        (last.tool.as_str(), last.argv.clone(), last.exit),
        (
            "systemctl",
            vec!["is-active".to_string(), "nothing".to_string()],
            3
        )
    );
    let prev = &log[log.len() - 2];
    assert_eq!(
        (
            prev.tool.as_str(),
            prev.argv.clone(),
            prev.exit,
            prev.stdin_bytes
        ),
        ("uname", vec!["-m".to_string()], 0, 0)
    );
    assert!(log
        .iter()
        .any(|e| e.tool == "kubeadm" && e.argv[0] == "join"));
    assert!(last.time.ends_with('Z'));
}

/// A plain-HTTP server on loopback answering every request with one canned
/// response and recording request lines; stops when dropped.
struct CannedServer {
    address: String,
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CannedServer {
    fn start(status: &'static str, body: &'static str) -> CannedServer {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            // Bounded: at most ~30 s even if the guard is never dropped.
            for _ in 0..3000 {
                if stop2.load(Ordering::Relaxed) {
                    return;
                }
                match listener.accept() {
                    Ok((mut s, _)) => {
                        s.set_nonblocking(false).unwrap();
                        s.set_read_timeout(Some(std::time::Duration::from_secs(2)))
                            .unwrap();
                        let mut buf = [0u8; 4096];
                        let n = s.read(&mut buf).unwrap_or(0);
                        let req = String::from_utf8_lossy(&buf[..n]).into_owned();
                        seen2
                            .lock()
                            .unwrap()
                            .push(req.lines().next().unwrap_or("").to_string());
                        let _ = write!(s, "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
                }
            }
        });
        CannedServer {
            address,
            seen,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for CannedServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn with_api_listeners_get_raw_makes_a_real_http_request() {
    let server = CannedServer::start(
        "500 Internal Server Error",
        "[+]ping ok\n[-]etcd failed: reason withheld\nreadyz check failed\n",
    );
    let mut topology = gt_lab::topology::LabTopology::load(SimLab::goldentooth().dir()).unwrap();
    topology.endpoint = server.address.clone();
    topology.api_listeners = true;
    let lab = SimLab::with_topology(topology);
    lab.on("bettley")
        .run(&format!(
            "kubeadm init --control-plane-endpoint={}",
            server.address
        ))
        .success();
    lab.on("bettley")
        .run(&format!("{KUBECTL} get --raw '/readyz?verbose'"))
        .status(1)
        .stderr_is("Error from server (InternalError): an error on the server (\"[+]ping ok\\n[-]etcd failed: reason withheld\\nreadyz check failed\") has prevented the request from succeeding\n");
    assert_eq!(
        server.seen.lock().unwrap().as_slice(),
        ["GET /readyz?verbose HTTP/1.0"]
    );
}

/// `command` running on bettley, and a reader of its next stdout line
/// (waiting up to 20 s for it).
fn watch_on_bettley(lab: &SimLab, command: &str) -> (std::process::Child, impl Fn() -> String) {
    use std::io::{BufRead, BufReader};
    let mut watch = lab.on("bettley").spawn(&format!("{KUBECTL} {command}"));
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = watch.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let _ = tx.send(line.unwrap());
        }
    });
    let next = move || {
        rx.recv_timeout(std::time::Duration::from_secs(20))
            .expect("the watch printed nothing more")
    };
    (watch, next)
}

#[test]
fn a_watch_prints_every_name_then_each_change_and_ends_when_the_api_servers_go() {
    let lab = small_cluster();
    let (watch, next) = watch_on_bettley(&lab, "get nodes --watch -o name");
    let mut listed = vec![next(), next()];
    listed.sort();
    assert_eq!(listed, ["node/bettley", "node/fenn"]);
    lab.on("bettley")
        .run(&format!("{KUBECTL} label node fenn gt.test/watched=yes"))
        .success();
    assert_eq!(next(), "node/fenn");
    // Readiness is a change too: the pod network makes both Ready.
    lab.apply_cni();
    let mut ready = vec![next(), next()];
    ready.sort();
    assert_eq!(ready, ["node/bettley", "node/fenn"]);
    // Its API server stopping ends the watch as real kubectl 1.32 ends one
    // whose connection breaks: exit 0, nothing said.
    lab.on("bettley").run("systemctl stop kubelet").success();
    let out = watch.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");
    // Started with no API server, it fails as any request does.
    lab.on("bettley")
        .run(&format!("{KUBECTL} get nodes --watch -o name"))
        .status(1)
        .stderr_contains("was refused");
}

#[test]
fn a_watch_ends_with_the_api_server_it_reached_though_others_still_serve() {
    let lab = SimLab::goldentooth();
    lab.init();
    for cp in ["cargyll", "dalt"] {
        lab.on(cp).run(&lab.control_plane_join_command()).success();
    }
    let mut watch = lab
        .on("bettley")
        .spawn(&format!("{KUBECTL} get nodes --watch -o name"));
    // Listing, it has connected: to the endpoint's first ready server,
    // bettley's.
    let mut stdout = std::io::BufReader::new(watch.stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut first).unwrap();
    assert!(first.starts_with("node/"), "{first:?}");
    lab.on("bettley").run("systemctl stop kubelet").success();
    let out = watch.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");
    // A new request through the endpoint reaches another server.
    lab.on("cargyll")
        .run(&format!("{KUBECTL} get nodes -o name"))
        .success()
        .stdout_contains("node/bettley\n");
}

#[test]
fn a_watch_only_prints_changes_and_the_lab_watches_names_only() {
    let lab = small_cluster();
    lab.on("bettley")
        .run(&format!("{KUBECTL} get nodes --watch -o json"))
        .status(1)
        .stderr_contains("watches every Node with -o name, -o");
    let mut watch = lab
        .on("bettley")
        .spawn(&format!("{KUBECTL} get nodes --watch-only -o name"));
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = watch.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = vec![];
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
            let line = line.unwrap();
            let _ = tx.send(());
            all.push(line);
        }
        all
    });
    // Changed until the watch (started meanwhile) prints one: no initial list.
    for i in 0.. {
        assert!(i < 200, "the watch never printed a change");
        lab.on("bettley")
            .run(&format!(
                "{KUBECTL} label node bettley gt.test/n={i} --overwrite"
            ))
            .success();
        if rx
            .recv_timeout(std::time::Duration::from_millis(100))
            .is_ok()
        {
            break;
        }
    }
    lab.on("bettley").run("systemctl stop kubelet").success();
    let _ = watch.wait();
    let lines = reader.join().unwrap();
    assert!(
        !lines.is_empty() && lines.iter().all(|l| l == "node/bettley"),
        "{lines:?}"
    );
}

/// The Ready columns gt's watch asks for, with each event's type.
const WATCH_READY: &str = "get nodes --watch --output-watch-events --no-headers -o 'custom-columns=EVENT:.type,NAME:.object.metadata.name,READY:.object.status.conditions[?(@.type==\"Ready\")].status,VERSION:.object.status.nodeInfo.kubeletVersion'";

#[test]
fn a_watch_of_ready_columns_prints_each_event_with_the_nodes_ready_status() {
    let lab = small_cluster();
    let (watch, line) = watch_on_bettley(&lab, WATCH_READY);
    let next = || {
        line()
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    // Listed as ADDED, not Ready before the pod network.
    let mut listed = vec![next(), next()];
    listed.sort();
    assert_eq!(
        listed,
        [
            ["ADDED", "bettley", "False", "v1.32.4"],
            ["ADDED", "fenn", "False", "v1.32.4"]
        ]
    );
    lab.apply_cni();
    let mut ready = vec![next(), next()];
    ready.sort();
    assert_eq!(
        ready,
        [
            ["MODIFIED", "bettley", "True", "v1.32.4"],
            ["MODIFIED", "fenn", "True", "v1.32.4"]
        ]
    );
    // A deleted Node shows its last state.
    lab.on("bettley")
        .run(&format!("{KUBECTL} delete node fenn"))
        .success();
    assert_eq!(next(), ["DELETED", "fenn", "True", "v1.32.4"]);
    lab.on("bettley").run("systemctl stop kubelet").success();
    let out = watch.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // Only the columns gt reads, with their events and without headers.
    for refused in [
        "get nodes --watch --no-headers -o 'custom-columns=NAME:.metadata.name'",
        "get nodes --watch --output-watch-events -o 'custom-columns=EVENT:.type,NAME:.object.metadata.name,READY:.object.status.conditions[?(@.type==\"Ready\")].status,VERSION:.object.status.nodeInfo.kubeletVersion'",
        "get nodes --watch --output-watch-events -o name",
    ] {
        lab.on("bettley")
            .run(&format!("{KUBECTL} {refused}"))
            .status(1)
            .stderr_contains("the lab's simulated kubectl watches");
    }
}
