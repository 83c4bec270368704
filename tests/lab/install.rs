//! gt as `cargo install` leaves it: one binary in some `PREFIX/bin`, run from
//! a directory that is not the repository. The lab runs that same binary as
//! kubeadm, kubectl, ...; it must find it wherever it was installed.

use crate::support::gt::{Output, Test, GT};
use crate::support::lab::LabLock;
use std::path::{Path, PathBuf};

/// An installed gt: a copy of the built binary in PREFIX/bin, run from WORK.
struct Installed {
    gt: PathBuf,
    work: PathBuf,
}

impl Installed {
    fn run(&self, args: &[&str]) -> Output {
        Test::program(&self.gt)
            .args(args)
            .current_dir(&self.work)
            .env_remove("GT_LAB_SPEED")
            .run()
    }
}

/// Takes the lab down however the test ends.
struct LabDown<'a>(&'a Installed, &'a Path);

impl Drop for LabDown<'_> {
    fn drop(&mut self) {
        self.0
            .run(&["lab", "down", "--dir", self.1.to_str().unwrap()]);
    }
}

#[test]
fn an_installed_gt_brings_up_and_converges_the_lab_from_anywhere() {
    let lock = LabLock::acquire();
    let tmp = tempfile::tempdir().unwrap();
    let topology = tmp.path().join("topology.toml");
    std::fs::write(&topology, lock.goldentooth_toml()).unwrap();
    let bin = tmp.path().join("prefix/bin");
    let work = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    let gt = bin.join("gt");
    std::fs::copy(GT, &gt).unwrap();
    let installed = Installed { gt, work };

    installed
        .run(&["--version"])
        .success()
        .stdout_contains("gt ");

    let lab = installed.work.join("lab");
    let _down = LabDown(&installed, &lab);
    installed
        .run(&[
            "lab",
            "up",
            "--dir",
            lab.to_str().unwrap(),
            "--from",
            topology.to_str().unwrap(),
            "--speed",
            "0.001",
            "--hosts",
            "prepared",
        ])
        .success();
    for tool in ["systemctl", "uname", "apt-get", "sysctl"] {
        assert_eq!(
            std::fs::read_link(lab.join("bin").join(tool)).unwrap(),
            installed.gt,
            "the lab's {tool} is the installed gt"
        );
    }
    for tool in ["kubeadm", "kubectl", "kubelet"] {
        assert_eq!(
            std::fs::read_link(lab.join("hosts/fenn/usr/bin").join(tool)).unwrap(),
            installed.gt,
            "fenn's packaged {tool} is the installed gt"
        );
    }

    let config = lab.join("cluster.toml");
    let config = config.to_str().unwrap();
    installed
        .run(&["-c", config, "apply", "--auto-approve"])
        .success()
        .stdout_contains("Apply complete! Nodes: 12 joined");
    installed
        .run(&["-c", config, "plan", "--detailed-exitcode"])
        .success()
        .stdout_contains("No changes.");
}
