//! `gt lab up`'s hosts: bare by default, prepared on request, and a reboot
//! that takes a host down and brings it back with what persists.

use crate::support::lab::{Lab, Transport};
use crate::support::wait::eventually;

#[test]
fn hosts_come_up_bare_unless_asked_for_prepared() {
    let bare = Lab::up(Transport::Local).model_etcd().bare().start();
    bare.run("fenn", "command -v kubeadm || echo missing")
        .success()
        .stdout_is("missing\n");
    bare.run(
        "velaryon",
        "sysctl -n net.ipv4.ip_forward; wc -l < $GT_HOST_ROOT/proc/swaps; systemctl is-active containerd",
    )
    .status(3)
    .stdout_is("0\n2\ninactive\n");
    drop(bare);

    let prepared = Lab::up(Transport::Local).model_etcd().start();
    prepared
        .run(
            "fenn",
            "dpkg-query -W -f='${Package} ${Version} ${db:Status-Abbrev}\\n' kubeadm kubelet kubectl cri-tools containerd",
        )
        .success()
        .stdout_is("kubeadm 1.32.4-1.1 hi \nkubelet 1.32.4-1.1 hi \nkubectl 1.32.4-1.1 hi \ncri-tools 1.32.0-1.1 hi \ncontainerd 1.6.20~ds1-1+b1 ii \n");
    prepared
        .run(
            "fenn",
            "cat $GT_HOST_ROOT/etc/apt/sources.list.d/kubernetes.list $GT_HOST_ROOT/etc/sysctl.d/k8s.conf $GT_HOST_ROOT/etc/modules-load.d/k8s.conf; \
             sysctl -n net.ipv4.ip_forward; wc -l < $GT_HOST_ROOT/proc/swaps; grep -o 'cgroup_enable=memory cgroup_memory=1' $GT_HOST_ROOT/proc/cmdline; \
             grep -c memory $GT_HOST_ROOT/sys/fs/cgroup/cgroup.controllers; grep -c 'SystemdCgroup = true' $GT_HOST_ROOT/etc/containerd/config.toml; \
             [ -S $GT_HOST_ROOT/run/containerd/containerd.sock ] && echo socket; systemctl is-enabled kubelet dphys-swapfile",
        )
        .status(1)
        .stdout_is("deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v1.32/deb/ /\nnet.ipv4.ip_forward = 1\noverlay\nbr_netfilter\n1\n1\ncgroup_enable=memory cgroup_memory=1\n1\n1\nsocket\nenabled\ndisabled\n");
}

#[test]
fn a_reboot_takes_the_host_down_and_brings_back_only_what_persists() {
    // `reboot` must return before the boot (one instant later) stops the
    // host's commands, its own shell among them: no other lab loads the machine.
    let lab = Lab::up(Transport::Local)
        .model_etcd()
        .speed(0.05)
        .alone()
        .start();
    lab.run(
        "fenn",
        "sysctl -w vm.swappiness=10 >/dev/null && modprobe ip_vs && systemctl enable dphys-swapfile 2>/dev/null && grep -c ip_vs $GT_HOST_ROOT/proc/modules",
    )
    .success()
    .stdout_is("2\n");
    lab.run("fenn", "reboot").success();
    eventually("fenn goes down", || {
        let r = lab.run("fenn", "true");
        r.code == Some(255) && r.stderr.contains("gt-lab: host fenn is down (lab fault)")
    });
    eventually("fenn comes back", || lab.run("fenn", "true").succeeded());
    lab.run(
        "fenn",
        "sysctl -n vm.swappiness net.ipv4.ip_forward; grep -c ip_vs $GT_HOST_ROOT/proc/modules; grep -c br_netfilter $GT_HOST_ROOT/proc/modules; \
         awk 'NR==2{print $1}' $GT_HOST_ROOT/proc/swaps; systemctl is-active containerd",
    )
    .success()
    .stdout_is("60\n1\n0\n2\n/var/swap\nactive\n");
    assert!(
        !lab.dir().join("faults/fenn.json").exists(),
        "a host back from a reboot has no faults"
    );
}

#[test]
#[cfg_attr(
    not(any(has_sshd, ci)),
    ignore = "needs sshd: apt-get install openssh-server"
)]
fn over_ssh_a_rebooting_host_refuses_connections_until_it_is_back() {
    // As above: the session that ran `reboot` must end before the boot stops it.
    let lab = Lab::up(Transport::Ssh)
        .model_etcd()
        .speed(0.05)
        .alone()
        .start();
    lab.run("fenn", "reboot").success();
    eventually("fenn refuses ssh", || {
        let r = lab.run("fenn", "true");
        r.code == Some(255) && r.stderr.contains("Connection refused")
    });
    eventually("fenn answers ssh again", || {
        lab.run("fenn", "true").succeeded()
    });
    lab.run("fenn", "systemctl is-active containerd")
        .success()
        .stdout_is("active\n");
}
