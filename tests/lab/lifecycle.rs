//! `gt lab up/down/status/fault` over the local transport: the lab's own
//! behaviour, independent of the simulated kubeadm and kubectl.

use crate::support::components::require_haproxy;
use crate::support::gt::{goldentooth, Test, GT};
use crate::support::kube::kubeadm_init;
use crate::support::lab::{pid_alive, recorded_pids, Lab, LabLock, Transport};
use crate::support::wait::eventually_some;
use std::io::{Read, Write};
use std::time::Duration;

#[test]
fn up_writes_a_lab_config_that_gt_accepts_with_every_address_on_loopback() {
    let lab = Lab::up(Transport::Local).start();
    lab.gt(&["validate"]).success();
    let config = std::fs::read_to_string(lab.config()).unwrap();
    assert!(
        !config.contains("\"10.4."),
        "no real address left:\n{config}"
    );
    let bettley = lab.loopback("10.4.0.11");
    assert!(config.contains(&format!("address = \"{bettley}\"")));
    let endpoint = lab.loopback("10.4.0.10:6443");
    assert!(config.contains(&format!("endpoint = \"{endpoint}\"")));
    assert!(config.contains(&format!(
        "GT_HOST_ROOT = \"{}\"",
        lab.host_root("velaryon").display()
    )));
    assert!(config.contains("goldentooth.io/gpu=true:NoSchedule"));
    assert_eq!(lab.address("velaryon"), lab.loopback("10.4.1.10"));
    assert_eq!(lab.topology()["nodes"][0]["kubernetes_version"], "v1.32.4");
    assert_eq!(lab.topology()["api_listeners"], true);
    for tool in ["systemctl", "uname", "apt-get", "dpkg-query", "gt-lab-sh"] {
        let link = lab.dir().join("bin").join(tool);
        assert_eq!(
            std::fs::read_link(&link).unwrap(),
            std::path::Path::new(GT).canonicalize().unwrap(),
            "{tool} links to the gt binary"
        );
    }
}

#[test]
fn commands_run_with_their_hosts_root_and_the_labs_tools_first() {
    let lab = Lab::up(Transport::Local).start();
    let r = lab.run("fenn", "echo $GT_HOST_ROOT; command -v kubeadm");
    r.success();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], lab.host_root("fenn").to_str().unwrap());
    assert_eq!(
        lines[1],
        lab.host_root("fenn")
            .join("usr/bin/kubeadm")
            .to_str()
            .unwrap()
    );
}

#[test]
fn up_on_a_lab_that_is_up_fails_and_says_how_to_recover() {
    let lab = Lab::up(Transport::Local).start();
    let r = Test::new()
        .args([
            "lab",
            "up",
            "--dir",
            lab.dir_str(),
            "--from",
            goldentooth().to_str().unwrap(),
        ])
        .run();
    r.status(1).stderr_contains(&format!(
        "a lab is already up in {dir}; run `gt lab down --dir {dir}` first",
        dir = lab.dir_str()
    ));
    lab.gt_lab("status", &[]).success();
}

#[test]
fn down_stops_everything_and_a_second_down_is_harmless() {
    let lab = Lab::up(Transport::Local).start();
    let dir = lab.dir().to_path_buf();
    let pids = recorded_pids(&dir);
    assert!(
        pids.len() >= 2,
        "daemon and load balancer recorded: {pids:?}"
    );
    assert!(pids.iter().all(|p| pid_alive(*p)));
    let down = lab.down();
    down.success().stdout_contains("is down");
    assert!(pids.iter().all(|p| !pid_alive(*p)), "{pids:?} still alive");
    assert!(crate::support::lab::processes_naming(&dir).is_empty());
    assert!(!dir.exists());
    Test::new()
        .args(["lab", "down", "--dir", dir.to_str().unwrap()])
        .success()
        .stdout_contains("nothing to take down");
}

#[test]
fn status_without_a_lab_fails_and_names_the_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nothing");
    Test::new()
        .args(["lab", "status", "--dir", dir.to_str().unwrap()])
        .status(1)
        .stderr_contains("no lab in");
}

#[test]
fn status_lists_processes_and_faults() {
    let lab = Lab::up(Transport::Local).start();
    lab.fault("fenn", &["slow"]);
    let r = lab.gt_lab("status", &[]);
    r.success()
        .stdout_contains("transport local")
        .stdout_contains("serve")
        .stdout_contains("alive");
    let fenn = r.stdout.lines().find(|l| l.contains("fenn")).unwrap();
    assert!(
        fenn.contains(&lab.address("fenn")) && fenn.contains("slow x10"),
        "{fenn}"
    );
}

#[test]
fn a_down_host_fails_like_an_unreachable_one_until_healed() {
    let lab = Lab::up(Transport::Local).start();
    lab.fault("fenn", &["down"]);
    assert_eq!(lab.faults("fenn")["down"], true);
    lab.run("fenn", "echo hello")
        .status(255)
        .stderr_contains("gt-lab: host fenn is down (lab fault)");
    lab.run("gardener", "true").success();
    lab.fault("fenn", &["heal"]);
    lab.run("fenn", "echo hello")
        .success()
        .stdout_contains("hello");
}

#[test]
fn a_hung_host_never_answers_and_down_still_cleans_up() {
    let lab = Lab::up(Transport::Local).start();
    lab.fault("harlton", &["hang"]);
    let r = lab.run_timeout("harlton", "echo never", Duration::from_millis(500));
    assert!(r.timed_out, "{r}");
    // The client gave up; gt's transport would too. The hung shell is another
    // story: it is a child of nobody the lab knows, and `down` must find it.
    let dir = lab.dir().to_path_buf();
    lab.down().success();
    assert!(crate::support::lab::processes_naming(&dir).is_empty());
}

#[test]
fn slow_is_recorded_with_its_factor_and_heal_clears_it() {
    let lab = Lab::up(Transport::Local).start();
    lab.fault("fenn", &["slow"]);
    assert_eq!(lab.faults("fenn")["slow"], 10.0);
    lab.fault("bettley", &["slow", "3"]);
    assert_eq!(lab.faults("bettley")["slow"], 3.0);
    lab.fault("bettley", &["fail-join"]);
    assert_eq!(lab.faults("bettley")["fail_join"], true);
    assert_eq!(lab.faults("bettley")["slow"], 3.0, "faults accumulate");
    lab.fault("bettley", &["heal"]);
    assert_eq!(lab.faults("bettley"), serde_json::json!({}));
}

#[test]
fn faults_refuse_unknown_nodes_and_misplaced_kinds() {
    let lab = Lab::up(Transport::Local).start();
    lab.gt_lab("fault", &["fen", "down"])
        .status(1)
        .stderr_contains("did you mean fenn?");
    lab.gt_lab("fault", &["fenn", "apiserver-down"])
        .status(1)
        .stderr_contains("fenn is a worker");
    lab.gt_lab("fault", &["fenn", "hang", "3"])
        .status(1)
        .stderr_contains("FACTOR goes only with `slow`");
    lab.gt_lab("fault", &["bettley", "apiserver-down"])
        .success();
    assert_eq!(lab.faults("bettley")["apiserver_down"], true);
}

/// One HTTP GET; `None` when the server resets or closes without answering.
fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let (head, body) = resp.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}

#[test]
#[cfg_attr(
    not(any(has_haproxy, ci)),
    ignore = "needs haproxy: apt-get install haproxy"
)]
fn api_servers_answer_http_once_they_run_and_haproxy_balances_over_them() {
    require_haproxy();
    let lab = Lab::up(Transport::Local).speed(0.0001).start();
    lab.gt_lab("status", &[])
        .success()
        .stdout_contains("served by haproxy");
    let bettley = format!("{}:6443", lab.address("bettley"));
    assert_eq!(
        http_get(&bettley, "/readyz"),
        None,
        "no API server on bettley before kubeadm init"
    );
    lab.run("bettley", &kubeadm_init(&lab.endpoint())).success();
    for (path, verbose) in [
        ("/readyz", false),
        ("/readyz?verbose", true),
        ("/livez", false),
    ] {
        let (code, body) = http_get(&bettley, path).expect("bettley answers");
        let expected = gt_lab::sim::api::readyz(lab.dir(), Some("bettley"), verbose);
        if path != "/livez" {
            assert_eq!((code, body), expected, "{path}");
        } else {
            assert_eq!(code, 200, "{path}");
        }
    }
    assert_eq!(
        http_get(&bettley, "/nope"),
        Some((404, "404 page not found\n".to_string()))
    );
    assert_eq!(
        http_get(&format!("{}:6443", lab.address("dalt")), "/readyz"),
        None,
        "dalt runs none"
    );
    // Through the endpoint: HAProxy. A load balancer sees a new backend
    // healthy only after its next check (100 ms here), as a real one does:
    // poll, bounded, as gt's gate does.
    let through_endpoint = eventually_some(
        "the endpoint answers /readyz",
        Duration::from_secs(10),
        || http_get(&lab.endpoint(), "/readyz"),
    );
    assert_eq!(through_endpoint, (200, "ok".to_string()));
}

#[test]
fn a_topology_with_an_ipv6_address_is_refused_and_leaves_nothing_behind() {
    let topology = std::fs::read_to_string(goldentooth())
        .unwrap()
        .replace("address = \"10.4.0.15\"", "address = \"fd00::15\"");
    let f = Lab::up(Transport::Local)
        .topology_toml(topology)
        .try_start()
        .err()
        .expect("up must fail");
    f.run
        .status(1)
        .stderr_contains("node fenn")
        .stderr_contains("IPv6");
    assert!(!f.dir_left);
}

#[test]
fn a_failed_start_stops_what_it_started_and_removes_the_directory() {
    // Something else already holds dalt's API port: the daemon cannot bind it.
    // Under the lab lock: no other test's lab may meet the squatter.
    let lock = LabLock::acquire();
    let dalt = lock.loopback("10.4.0.13:6443");
    let _squatter = std::net::TcpListener::bind(&dalt).unwrap();
    let f = Lab::up(Transport::Local)
        .holding(lock)
        .try_start()
        .err()
        .expect("up must fail");
    f.run.status(1).stderr_contains(&dalt);
    assert!(!f.dir_left, "the half-built lab directory is removed");
    assert!(f.processes_left.is_empty(), "{:?}", f.processes_left);
    drop(_squatter);
    drop(f.lock);
}

#[test]
fn kubelet_stopped_stops_the_hosts_kubelet_and_heal_starts_it_again() {
    let lab = Lab::up(Transport::Local).speed(0.0001).start();
    lab.run("bettley", &kubeadm_init(&lab.endpoint())).success();
    lab.run("bettley", "systemctl is-active kubelet").success();
    lab.fault("bettley", &["kubelet-stopped"]);
    lab.run("bettley", "systemctl is-active kubelet")
        .status(3)
        .stdout_contains("inactive");
    lab.gt_lab("status", &[])
        .success()
        .stdout_contains("kubelet-stopped");
    // The fault went through the host's own systemctl, as an operator would.
    assert!(
        lab.log("bettley")
            .iter()
            .any(|e| e.to_string().contains("stop") && e.to_string().contains("kubelet")),
        "{:?}",
        lab.log("bettley")
    );
    lab.fault("bettley", &["heal"]);
    lab.run("bettley", "systemctl is-active kubelet")
        .success()
        .stdout_contains("active");
}

/// `flock 9; gt lab up` in a script: the lab's daemons (gt lab serve,
/// haproxy) must not inherit fd 9, or the script's lock stays held until the
/// lab is down.
#[test]
fn the_labs_daemons_do_not_keep_the_descriptors_of_the_command_that_started_them() {
    let lab_lock = LabLock::acquire();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("lab");
    let topology = tmp.path().join("topology.toml");
    std::fs::write(&topology, lab_lock.goldentooth_toml()).unwrap();
    let held = tmp.path().join("held.lock");
    let script = format!(
        "exec 9>'{held}'; flock 9 && '{gt}' lab up --dir '{dir}' --from '{topology}' --speed 0.01 >/dev/null",
        held = held.display(),
        gt = GT,
        dir = dir.display(),
        topology = topology.display()
    );
    let up = Test::program("sh").arg("-c").arg(&script).run();
    let free = std::process::Command::new("flock")
        .args(["-n", held.to_str().unwrap(), "true"])
        .status()
        .unwrap();
    let down = Test::new()
        .args(["lab", "down", "--dir", dir.to_str().unwrap()])
        .run();
    up.success();
    down.success();
    assert!(
        free.success(),
        "the script's lock was still held by the lab's daemons after the script ended"
    );
}
