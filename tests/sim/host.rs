//! The simulated Debian / Raspberry Pi OS host: packages through apt over the
//! simulated repositories, kernel settings, containerd, and kubeadm's host
//! preflight, with the real tools' messages and exit codes.

use crate::support::kube::kubeadm_init;
use crate::support::sim::{SimLab, ENDPOINT};

const K8S_LIST: &str = "echo 'deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v1.32/deb/ /' > $GT_HOST_ROOT/etc/apt/sources.list.d/kubernetes.list";
const KEYRING: &str = "curl -fsSL https://pkgs.k8s.io/core:/stable:/v1.32/deb/Release.key | gpg --dearmor -o $GT_HOST_ROOT/etc/apt/keyrings/kubernetes-apt-keyring.gpg";
const DPKG_QUERY: &str = "dpkg-query -W -f='${Package}\\t${Version}\\t${Status}\\n'";

/// The kubeadm install docs' repository steps on `node`.
fn add_repository(lab: &SimLab, node: &str) {
    lab.on(node)
        .run(&format!("{K8S_LIST} && {KEYRING} && apt-get update"))
        .success();
}

#[test]
fn a_bare_pi_is_raspberry_pi_os_with_swap_on_and_no_kubernetes() {
    let lab = SimLab::goldentooth_bare();
    lab.on("fenn")
        .run("ls $GT_HOST_ROOT/usr/bin")
        .success()
        .stdout_is("dphys-swapfile\n");
    lab.on("fenn")
        .run("cat $GT_HOST_ROOT/etc/os-release")
        .success()
        .stdout_contains("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n")
        .stdout_contains("VERSION_CODENAME=bookworm\n");
    lab.on("fenn")
        .run("cat $GT_HOST_ROOT/proc/swaps")
        .success()
        .stdout_is("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/var/swap                               file\t\t524284\t\t0\t\t-2\n");
    lab.on("fenn")
        .run("cat $GT_HOST_ROOT/sys/fs/cgroup/cgroup.controllers; cat $GT_HOST_ROOT/proc/cmdline")
        .success()
        .stdout_contains("cpuset cpu io pids\n")
        .stdout_contains("cgroup_disable=memory");
    lab.on("fenn")
        .run("sysctl -n net.ipv4.ip_forward; systemctl is-enabled dphys-swapfile")
        .success()
        .stdout_is("0\nenabled\n");
    lab.on("fenn")
        .run(&format!("{DPKG_QUERY} kubeadm kubelet"))
        .status(1)
        .stderr_contains("dpkg-query: no packages found matching kubeadm\ndpkg-query: no packages found matching kubelet\n");
    lab.on("fenn")
        .run("systemctl is-enabled kubelet")
        .status(4)
        .stderr_contains("Unit kubelet.service could not be found.");
    lab.on("velaryon")
        .run("cat $GT_HOST_ROOT/proc/swaps; grep swap $GT_HOST_ROOT/etc/fstab")
        .success()
        .stdout_contains("/dev/sda3                               partition\t2097148\t\t0\t\t-2\n")
        .stdout_contains("\nUUID=");
    lab.on("velaryon")
        .run("cat $GT_HOST_ROOT/sys/fs/cgroup/cgroup.controllers")
        .success()
        .stdout_contains("memory");
}

#[test]
fn apt_refuses_a_repository_without_its_key_then_installs_and_holds_exact_versions() {
    let lab = SimLab::goldentooth_bare();
    lab.on("fenn")
        .run(&format!("{K8S_LIST} && apt-get update"))
        .status(100)
        .stderr_contains("W: GPG error: https://pkgs.k8s.io/core:/stable:/v1.32/deb  InRelease: The following signatures couldn't be verified because the public key is not available: NO_PUBKEY 234654DA9A296436\nE: The repository 'https://pkgs.k8s.io/core:/stable:/v1.32/deb  InRelease' is not signed.\n");
    lab.on("fenn")
        .run("apt-get install -y kubeadm")
        .status(100)
        .stderr_is("E: Unable to locate package kubeadm\n");
    add_repository(&lab, "fenn");
    lab.on("fenn")
        .run("apt-cache madison kubeadm")
        .success()
        .stdout_contains("   kubeadm | 1.32.4-1.1 | https://pkgs.k8s.io/core:/stable:/v1.32/deb  Packages\n   kubeadm | 1.32.3-1.1 | https://pkgs.k8s.io/core:/stable:/v1.32/deb  Packages\n");
    lab.on("fenn")
        .run("apt-get install -y kubeadm=1.32.9-1.1")
        .status(100)
        .stderr_is("E: Version '1.32.9-1.1' for 'kubeadm' was not found\n");
    lab.on("fenn")
        .run("DEBIAN_FRONTEND=noninteractive apt-get install -y -o Dpkg::Options::=--force-confold kubelet=1.32.3-1.1 kubeadm=1.32.3-* kubectl=1.32.3-1.1 && apt-mark hold kubelet kubeadm kubectl")
        .success()
        .stdout_contains("Setting up kubeadm (1.32.3-1.1) ...\n")
        .stdout_contains("Setting up cri-tools (1.32.0-1.1) ...\n")
        .stdout_contains("kubeadm set on hold.\n");
    lab.on("fenn")
        .run(&format!("{DPKG_QUERY} kubeadm kubelet cri-tools; apt-mark showhold; kubeadm version -o short; kubelet --version; ls $GT_HOST_ROOT/usr/bin"))
        .success()
        .stdout_is(
            "kubeadm\t1.32.3-1.1\thold ok installed\nkubelet\t1.32.3-1.1\thold ok installed\ncri-tools\t1.32.0-1.1\tinstall ok installed\nkubeadm\nkubectl\nkubelet\nv1.32.3\nKubernetes v1.32.3\ncrictl\ndphys-swapfile\nkubeadm\nkubectl\nkubelet\n",
        );
    lab.on("fenn")
        .run("apt-get install -y kubeadm=1.32.4-1.1")
        .status(100)
        .stdout_contains("The following held packages will be changed:\n  kubeadm\n")
        .stderr_is(
            "E: Held packages were changed and -y was used without --allow-change-held-packages.\n",
        );
    lab.on("fenn")
        .run("apt-get install -y --allow-change-held-packages kubeadm=1.32.4-1.1 && apt-mark unhold kubeadm && kubeadm version -o short")
        .success()
        .stdout_contains("Canceled hold on kubeadm.\nv1.32.4\n");
    lab.on("fenn")
        .run(&format!("{DPKG_QUERY} kubeadm"))
        .success()
        .stdout_is("kubeadm\t1.32.4-1.1\tinstall ok installed\n");
    // madison: an unknown name is a notice (hidden by -q), never an error.
    lab.on("fenn")
        .run("apt-cache madison nosuch kubeadm | head -1 && apt-cache -q madison nosuch")
        .success()
        .stdout_is(
            "   kubeadm | 1.32.4-1.1 | https://pkgs.k8s.io/core:/stable:/v1.32/deb  Packages\n",
        )
        .stderr_is("N: Unable to locate package nosuch\n");
    // A keyring gone after an update: apt warns and keeps the lists it had.
    lab.on("fenn")
        .run("rm $GT_HOST_ROOT/etc/apt/keyrings/kubernetes-apt-keyring.gpg && apt-get update && apt-cache madison kubeadm | head -1")
        .success()
        .stdout_contains("Hit:4 https://pkgs.k8s.io/core:/stable:/v1.32/deb  InRelease\nErr:4 https://pkgs.k8s.io/core:/stable:/v1.32/deb  InRelease\n  The following signatures couldn't be verified because the public key is not available: NO_PUBKEY 234654DA9A296436\n")
        .stdout_contains("   kubeadm | 1.32.4-1.1 |")
        .stderr_contains("W: An error occurred during the signature verification. The repository is not updated and the previous index files will be used. GPG error: https://pkgs.k8s.io/core:/stable:/v1.32/deb  InRelease: The following signatures couldn't be verified because the public key is not available: NO_PUBKEY 234654DA9A296436\nW: Failed to fetch https://pkgs.k8s.io/core:/stable:/v1.32/deb/InRelease  The following signatures couldn't be verified because the public key is not available: NO_PUBKEY 234654DA9A296436\nW: Some index files failed to download. They have been ignored, or old ones used instead.\n");
}

#[test]
fn a_broken_source_and_unknown_hosts_fail_with_apts_and_curls_messages() {
    let lab = SimLab::goldentooth_bare();
    lab.on("fenn")
        .run("echo 'deb https://pkgs.k8s.io/core:/stable:/v1.32/deb/' > $GT_HOST_ROOT/etc/apt/sources.list.d/kubernetes.list; apt-get update")
        .status(100)
        .stderr_is("E: Malformed entry 1 in list file /etc/apt/sources.list.d/kubernetes.list (Suite)\nE: The list of sources could not be read.\n");
    lab.on("fenn")
        .run("curl -fsSL https://mirror.example.org/Release.key")
        .status(6)
        .stderr_is("curl: (6) Could not resolve host: mirror.example.org\n");
    lab.on("fenn")
        .run(&format!("{KEYRING} && {KEYRING}"))
        .status(2)
        .stderr_is("gpg: cannot open '/dev/tty': No such device or address\n");
    lab.on("fenn")
        .run("echo 'deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v1.99/deb/ /' > $GT_HOST_ROOT/etc/apt/sources.list.d/kubernetes.list; apt-get update")
        .status(100)
        .stderr_contains("E: The repository 'https://pkgs.k8s.io/core:/stable:/v1.99/deb  Release' does not have a Release file.\n");
}

#[test]
fn a_loopback_mirror_serves_the_minor_its_path_names() {
    let lab = SimLab::goldentooth_bare();
    lab.on("fenn")
        .run("echo 'deb [signed-by=/etc/apt/keyrings/k.gpg] http://127.0.0.1:8080/k8s/core:/stable:/v1.31/deb/ /' > $GT_HOST_ROOT/etc/apt/sources.list.d/kubernetes.list \
              && curl -fsSL http://127.0.0.1:8080/k8s/core:/stable:/v1.31/deb/Release.key | gpg --dearmor -o $GT_HOST_ROOT/etc/apt/keyrings/k.gpg \
              && apt-get update >/dev/null && apt-cache policy kubelet")
        .success()
        .stdout_contains("kubelet:\n  Installed: (none)\n  Candidate: 1.31.8-1.1\n")
        .stdout_contains("        500 http://127.0.0.1:8080/k8s/core:/stable:/v1.31/deb  Packages\n");
}

#[test]
fn sysctl_modprobe_and_swapoff_change_the_live_files_and_sysctl_system_reads_the_persisted_ones() {
    let lab = SimLab::goldentooth_bare();
    lab.on("fenn")
        .run("sysctl -w net.bridge.bridge-nf-call-iptables=1")
        .status(255)
        .stderr_is("sysctl: cannot stat /proc/sys/net/bridge/bridge-nf-call-iptables: No such file or directory\n");
    lab.on("fenn")
        .run("modprobe br_netfilter && sysctl net.bridge.bridge-nf-call-iptables && grep -c '^bridge .* br_netfilter, Live' $GT_HOST_ROOT/proc/modules")
        .success()
        .stdout_is("net.bridge.bridge-nf-call-iptables = 1\n1\n");
    lab.on("fenn")
        .run("modprobe nosuchmodule")
        .status(1)
        .stderr_is("modprobe: FATAL: Module nosuchmodule not found in directory /lib/modules/6.6.51+rpt-rpi-v8\n");
    lab.on("fenn")
        .run("echo 'net.ipv4.ip_forward = 1' > $GT_HOST_ROOT/etc/sysctl.d/k8s.conf && sysctl --system | grep -A1 k8s.conf && cat $GT_HOST_ROOT/proc/sys/net/ipv4/ip_forward")
        .success()
        .stdout_is("* Applying /etc/sysctl.d/k8s.conf ...\nnet.ipv4.ip_forward = 1\n1\n");
    lab.on("fenn")
        .run("swapoff -a && cat $GT_HOST_ROOT/proc/swaps && swapon --show")
        .success()
        .stdout_is("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n");
    // util-linux's exit status is a bitmask: 4 is a failed swapoff(2).
    lab.on("fenn")
        .run("swapoff /no/such/swapfile")
        .status(4)
        .stderr_is("swapoff: /no/such/swapfile: swapoff failed: No such file or directory\n");
}

#[test]
fn containerd_runs_with_a_socket_and_prints_its_majors_default_config() {
    let lab = SimLab::goldentooth_bare();
    lab.on("velaryon")
        .run("apt-get install -y containerd >/dev/null && [ -S $GT_HOST_ROOT/run/containerd/containerd.sock ] && [ -S $GT_HOST_ROOT/var/run/containerd/containerd.sock ] && systemctl is-active containerd && containerd config default")
        .success()
        .stdout_contains("active\n")
        .stdout_contains("[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]\n")
        .stdout_contains("SystemdCgroup = false\n");
    let prepared = SimLab::goldentooth();
    prepared
        .on("velaryon")
        .run("systemctl stop containerd; systemctl is-active containerd; crictl info")
        .status(1)
        .stdout_contains("inactive\n")
        .stderr_contains("level=fatal msg=\"validate service connection: validate CRI v1 runtime API for endpoint \\\"unix:///run/containerd/containerd.sock\\\": rpc error: code = Unavailable");
    lab.on("velaryon")
        .run("mkdir -p $GT_HOST_ROOT/etc/containerd && echo 'version = [' > $GT_HOST_ROOT/etc/containerd/config.toml; systemctl restart containerd")
        .status(1)
        .stderr_is("Job for containerd.service failed because the control process exited with error code.\nSee \"systemctl status containerd.service\" and \"journalctl -xeu containerd.service\" for details.\n");
}

#[test]
fn kubeadm_init_on_a_bare_pi_fails_preflight_with_upstreams_checks() {
    let lab = SimLab::goldentooth_bare();
    add_repository(&lab, "bettley");
    lab.on("bettley")
        .run("apt-get install -y kubeadm kubelet kubectl >/dev/null")
        .success();
    lab.on("bettley")
        .run(&kubeadm_init(ENDPOINT))
        .status(1)
        .stderr_contains("checks.go:1080] [preflight] WARNING: Couldn't create the interface used for talking to the container runtime: failed to create new CRI runtime service: validate service connection: validate CRI v1 runtime API for endpoint \"unix:///var/run/containerd/containerd.sock\": rpc error: code = Unavailable desc = connection error: desc = \"transport: Error while dialing: dial unix /var/run/containerd/containerd.sock: connect: no such file or directory\"\n")
        .stderr_contains("\t[WARNING Swap]: swap is supported for cgroup v2 only.")
        .stderr_contains("error execution phase preflight: [preflight] Some fatal errors occurred:\n\t[ERROR SystemVerification]: missing required cgroups: memory\n\t[ERROR FileContent--proc-sys-net-ipv4-ip_forward]: /proc/sys/net/ipv4/ip_forward contents are not set to 1\n[preflight] If you know what you are doing, you can make a check non-fatal with `--ignore-preflight-errors=...`\n")
        .stdout_contains("CGROUPS_MEMORY: missing\n");
    // Without the errors, the missing runtime stops kubeadm at the image pull.
    lab.on("bettley")
        .run(&format!("{} --ignore-preflight-errors=SystemVerification,FileContent--proc-sys-net-ipv4-ip_forward", kubeadm_init(ENDPOINT)))
        .status(1)
        .stdout_contains("[preflight] You can also perform this action beforehand using 'kubeadm config images pull'\n")
        .stderr_contains("\t[WARNING FileContent--proc-sys-net-ipv4-ip_forward]: /proc/sys/net/ipv4/ip_forward contents are not set to 1\n")
        .stderr_contains("error execution phase preflight: [preflight] Some fatal errors occurred:\nfailed to create new CRI runtime service: validate service connection: validate CRI v1 runtime API for endpoint \"unix:///var/run/containerd/containerd.sock\": rpc error: code = Unavailable desc = connection error: desc = \"transport: Error while dialing: dial unix /var/run/containerd/containerd.sock: connect: no such file or directory\"[preflight] If you know what you are doing, you can make a check non-fatal with `--ignore-preflight-errors=...`\nTo see the stack trace of this error execute with --v=5 or higher\n");
}

#[test]
fn kubeadm_without_its_packages_is_not_found_and_names_missing_tools() {
    let lab = SimLab::goldentooth_bare();
    lab.on("fenn").run("kubeadm version").status(127);
    add_repository(&lab, "fenn");
    lab.on("fenn")
        .run("apt-get install -y kubeadm >/dev/null && kubeadm join 127.4.0.10:6443 --token abcdef.0123456789abcdef --discovery-token-unsafe-skip-ca-verification")
        .status(1)
        .stderr_contains("\t[WARNING Service-Kubelet]: kubelet service does not exist\n")
        .stderr_contains("\t[ERROR KubeletVersion]: couldn't get kubelet version: cannot execute 'kubelet --version': executable file not found in $PATH\n")
        .stderr_contains("\t[ERROR FileExisting-iptables]: iptables not found in system path\n")
        .stderr_contains("\t[WARNING FileExisting-socat]: socat not found in system path\n");
}

#[test]
fn the_kubelet_refuses_swap_and_kubeadm_join_waits_for_it_in_vain() {
    let lab = SimLab::goldentooth();
    lab.init();
    lab.apply_cni();
    let join = lab.join_command();
    lab.on("fenn")
        .run("echo '/swapfile none swap sw 0 0' >> $GT_HOST_ROOT/etc/fstab && swapon -a")
        .success();
    lab.on("fenn")
        .run(&join)
        .status(1)
        .stderr_contains("\t[WARNING Swap]: swap is supported for cgroup v2 only.")
        .stdout_contains("[kubelet-check] The kubelet is not healthy after 4m0")
        .stderr_contains("error execution phase kubelet-start: failed while waiting for the kubelet to start: The HTTP call equal to 'curl -sSL http://127.0.0.1:10248/healthz' returned error: Get \"http://127.0.0.1:10248/healthz\": dial tcp 127.0.0.1:10248: connect: connection refused\n");
    lab.on("fenn")
        .run("systemctl is-active kubelet; systemctl status kubelet")
        .status(3)
        .stdout_contains("activating\n")
        .stdout_contains("failed to run Kubelet: running with swap on is not supported, please disable swap! or set --fail-swap-on flag to false. /proc/swaps contained: [Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority /swapfile");
    // As with real kubeadm, what the failed join wrote must be reset first.
    lab.on("fenn")
        .run(&join)
        .status(1)
        .stderr_contains("\t[ERROR FileAvailable--etc-kubernetes-bootstrap-kubelet.conf]: /etc/kubernetes/bootstrap-kubelet.conf already exists\n");
    lab.on("fenn")
        .run("kubeadm reset -f >/dev/null 2>&1; systemctl is-active kubelet")
        .status(3)
        .stdout_is("inactive\n");
}

#[test]
fn a_kubelet_held_back_by_dphys_swapfile_comes_up_once_the_swap_is_off() {
    let lab = SimLab::goldentooth();
    lab.on("fenn")
        .run("systemctl enable --now dphys-swapfile 2>/dev/null && swapon --show --noheadings && systemctl start kubelet && systemctl status kubelet")
        .status(3)
        .stdout_contains("/var/swap file      512M   0B   -2\n")
        .stdout_contains("failed to run Kubelet: running with swap on is not supported");
    lab.on("fenn")
        .run("dphys-swapfile swapoff && systemctl disable dphys-swapfile && wc -l < $GT_HOST_ROOT/proc/swaps && systemctl status kubelet")
        .status(3)
        .stdout_contains("1\n")
        .stdout_lacks("failed to run Kubelet");
}

#[test]
fn dockers_containerd_2_keeps_the_runc_options_in_the_new_section_without_systemd_cgroup() {
    let lab = SimLab::goldentooth_bare();
    lab.on("velaryon")
        .run("curl -fsSL https://download.docker.com/linux/debian/gpg | gpg --dearmor -o $GT_HOST_ROOT/etc/apt/keyrings/docker.gpg \
              && echo 'deb [signed-by=/etc/apt/keyrings/docker.gpg] https://download.docker.com/linux/debian bookworm stable' > $GT_HOST_ROOT/etc/apt/sources.list.d/docker.list \
              && apt-get update >/dev/null && apt-get install -y containerd.io=2.1.4-1~debian.12~bookworm >/dev/null \
              && cat $GT_HOST_ROOT/etc/containerd/config.toml && containerd config default")
        .success()
        .stdout_contains("disabled_plugins = [\"cri\"]\n")
        .stdout_contains("version = 3\n")
        .stdout_contains("[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]\n")
        .stdout_lacks("SystemdCgroup");
}

#[test]
fn a_containerd_without_its_cri_plugin_stops_kubeadm_init_at_the_image_pull() {
    let lab = SimLab::goldentooth();
    lab.on("bettley")
        .run("echo 'disabled_plugins = [\"cri\"]' > $GT_HOST_ROOT/etc/containerd/config.toml && systemctl restart containerd")
        .success();
    lab.on("bettley")
        .run(&kubeadm_init(ENDPOINT))
        .status(1)
        .stdout_contains("[preflight] Pulling images required for setting up a Kubernetes cluster\n")
        .stderr_contains("[preflight] WARNING: Couldn't create the interface used for talking to the container runtime: failed to create new CRI runtime service: validate service connection: validate CRI v1 runtime API for endpoint \"unix:///var/run/containerd/containerd.sock\": rpc error: code = Unimplemented desc = unknown service runtime.v1.RuntimeService\n")
        .stderr_contains("error execution phase preflight: [preflight] Some fatal errors occurred:\nfailed to create new CRI runtime service: validate service connection: validate CRI v1 runtime API for endpoint \"unix:///var/run/containerd/containerd.sock\": rpc error: code = Unimplemented desc = unknown service runtime.v1.RuntimeService[preflight] If you know what you are doing, you can make a check non-fatal with `--ignore-preflight-errors=...`\n");
    assert!(!lab
        .host_file("bettley", "/etc/kubernetes/admin.conf")
        .exists());
}
