//! A test harness around `gt lab`: bring a simulated cluster up, run
//! commands on its hosts the way a user (or gt) would, inject faults, and
//! take it down when the test ends, whatever happens.
//!
//! ```ignore
//! #[test]
//! #[cfg_attr(not(any(has_sshd, ci)), ignore = "needs sshd: apt-get install openssh-server")]
//! fn fenn_answers_over_ssh() {
//!     let lab = Lab::up(Transport::Ssh).speed(0.001).start();
//!     lab.run("fenn", "true").success();
//! }
//! ```
//!
//! A lab binds its hosts' loopback addresses (127.B.C.D:6443, :22xx, etcd's
//! :2379, ...), so two labs on the same addresses cannot run at once. Labs run
//! side by side in slots instead: slot k owns 127.(40+k).0.0/16. Every `Lab`
//! holds one slot's lock (`$TMPDIR/gt-lab-tests-slot-K.lock`, an exclusive
//! flock, across threads and test binaries alike) from `start` until it is
//! dropped, and its topology's IPv4 addresses are moved into the slot before
//! `gt lab up` (10.4.0.11 → 10.41.0.11, which the lab serves on 127.41.0.11).
//! `GT_TEST_LAB_SLOTS` (default 4, at most 16) is how many labs may be up at
//! once. Tests ask the lab for addresses (`lab.address("fenn")`,
//! `lab.loopback("10.4.0.13:6443")`) rather than spelling them out. The pool
//! never uses 127.4.x.x, where `gt lab up` puts goldentooth by hand.

use std::cell::Cell;
use std::fs::File;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::components;
use super::gt::{goldentooth, Output, Test, COMMAND_TIMEOUT};

pub use gt_lab::Transport;

/// The second octet of slot 0's addresses; slot k uses 40 + k.
const FIRST_SLOT_OCTET: u8 = 40;
/// How many slots there can be: 127.40.x.x to 127.55.x.x.
const MAX_SLOTS: usize = 16;
const DEFAULT_SLOTS: usize = 4;

/// How many labs may be up at once: `GT_TEST_LAB_SLOTS`, else 4.
pub fn slot_count() -> usize {
    match std::env::var("GT_TEST_LAB_SLOTS") {
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_SLOTS).contains(&n) => n,
            _ => panic!("GT_TEST_LAB_SLOTS={v:?}: give a number of labs from 1 to {MAX_SLOTS}"),
        },
        Err(_) => DEFAULT_SLOTS,
    }
}

/// The machine, as the labs share it: every lab (and every `SimLab`) is in
/// the room together (a shared flock), while a lab whose test measures wall
/// time against the load of its own machine (a lease, a gate's timeout) has
/// the room to itself (`LabBuilder::alone`: exclusive). A second lock, the
/// door, keeps newcomers out while an `alone` lab waits for the room to empty,
/// so that it is not starved by a stream of shared labs.
#[derive(Debug)]
pub struct Room {
    _held: File,
}

const ROOM: &str = "gt-lab-tests-room";

thread_local! {
    /// Rooms this thread holds: a thread already inside may take a second
    /// lab without passing the door (an `alone` lab waiting there would
    /// otherwise wait for it, and it for the door).
    static ROOMS_HELD: Cell<usize> = const { Cell::new(0) };
}

impl Room {
    /// In the room with every other lab.
    pub fn shared() -> Room {
        Room::shared_in(ROOM)
    }

    /// The room to itself, once every lab in it has left.
    #[track_caller]
    pub fn alone() -> Room {
        Room::alone_in(ROOM)
    }

    fn shared_in(name: &str) -> Room {
        let room = lock_file(&format!("{name}.lock"));
        if ROOMS_HELD.get() == 0 {
            let door = lock_file(&format!("{name}-door.lock"));
            flock(&door, libc::LOCK_EX);
            flock(&room, libc::LOCK_SH);
        } else {
            flock(&room, libc::LOCK_SH);
        }
        ROOMS_HELD.set(ROOMS_HELD.get() + 1);
        Room { _held: room }
    }

    #[track_caller]
    fn alone_in(name: &str) -> Room {
        assert_eq!(
            ROOMS_HELD.get(),
            0,
            "a lab that runs alone cannot be taken while this test holds another lab"
        );
        let door = lock_file(&format!("{name}-door.lock"));
        flock(&door, libc::LOCK_EX);
        let room = lock_file(&format!("{name}.lock"));
        flock(&room, libc::LOCK_EX);
        ROOMS_HELD.set(1);
        Room { _held: room }
    }
}

impl Drop for Room {
    fn drop(&mut self) {
        ROOMS_HELD.set(ROOMS_HELD.get().saturating_sub(1));
    }
}

fn lock_file(name: &str) -> File {
    let path = std::env::temp_dir().join(name);
    File::create(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn flock(f: &File, how: i32) {
    // SAFETY: flock on an fd we own; released when the file is closed.
    let rc = unsafe { libc::flock(f.as_raw_fd(), how) };
    assert_eq!(rc, 0, "flock: {}", std::io::Error::last_os_error());
}

/// One slot of the pool, held exclusively (see the module doc): the lock
/// every lab holds, and the addresses that go with it.
#[derive(Debug)]
pub struct LabLock {
    _held: File,
    slot: u8,
    _room: Room,
}

impl LabLock {
    /// Takes a free slot, waiting while every slot is in use.
    pub fn acquire() -> LabLock {
        LabLock::acquire_in(Room::shared())
    }

    /// Takes a slot once no other lab is up, and keeps others out until
    /// dropped: for a test whose subject is wall time (see [`Room`]).
    #[track_caller]
    pub fn acquire_alone() -> LabLock {
        LabLock::acquire_in(Room::alone())
    }

    fn acquire_in(mut room: Room) -> LabLock {
        let slots = slot_count();
        // Start the search at a different slot per thread, so that threads
        // arriving together do not all try slot 0 first.
        let start = thread_seed() % slots;
        loop {
            for i in 0..slots {
                let slot = (start + i) % slots;
                match LabLock::try_slot(slot, room) {
                    Ok(lock) => return lock,
                    Err(back) => room = back,
                }
            }
            // Labs last seconds: a short poll costs nothing and keeps
            // the slots busy.
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The slot, or the room back when another lab holds the slot.
    fn try_slot(slot: usize, room: Room) -> Result<LabLock, Room> {
        let path = std::env::temp_dir().join(format!("gt-lab-tests-slot-{slot}.lock"));
        let f = File::create(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        // SAFETY: flock on an fd we own; released when the file is closed.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(LabLock {
                _held: f,
                slot: slot as u8,
                _room: room,
            });
        }
        let e = std::io::Error::last_os_error();
        assert_eq!(
            e.raw_os_error(),
            Some(libc::EWOULDBLOCK),
            "flock {}: {e}",
            path.display()
        );
        Err(room)
    }

    /// Which slot this is (0-based).
    pub fn slot(&self) -> usize {
        usize::from(self.slot)
    }

    fn octet(&self) -> u8 {
        FIRST_SLOT_OCTET + self.slot
    }

    /// `address` (`A.B.C.D` or `A.B.C.D:PORT`, as a topology gives it)
    /// moved into this slot and onto loopback, where its lab serves it:
    /// `10.4.0.13:6443` → `127.41.0.13:6443` in slot 1.
    #[track_caller]
    pub fn loopback(&self, address: &str) -> String {
        let moved = self.relocate_one(address).unwrap_or_else(|| {
            panic!("{address:?} is not an IPv4 address (with or without a port)")
        });
        format!("127.{}", moved.split_once('.').unwrap().1)
    }

    /// A topology's TOML text with every quoted IPv4 address (`"10.4.0.11"`,
    /// `"10.4.0.10:6443"`) moved into this slot (second octet 40 + k); other
    /// text is kept as it is. 127.x.y.z stays: the lab keeps loopback.
    pub fn relocate(&self, toml: &str) -> String {
        let mut out = String::with_capacity(toml.len());
        let mut rest = toml;
        while let Some(open) = rest.find(['"', '\'']) {
            let quote = rest.as_bytes()[open] as char;
            out.push_str(&rest[..=open]);
            rest = &rest[open + 1..];
            if let Some(close) = rest.find(quote) {
                if let Some(moved) = self.relocate_one(&rest[..close]) {
                    out.push_str(&moved);
                    rest = &rest[close..];
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// The goldentooth topology (cluster.toml) moved into this slot.
    pub fn goldentooth_toml(&self) -> String {
        let path = goldentooth();
        self.relocate(
            &std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        )
    }

    fn relocate_one(&self, text: &str) -> Option<String> {
        let (ip, port) = match text.split_once(':') {
            Some((ip, port)) => {
                port.parse::<u16>().ok()?;
                (ip, Some(port))
            }
            None => (text, None),
        };
        let ip: std::net::Ipv4Addr = ip.parse().ok()?;
        let [a, _, c, d] = ip.octets();
        if a == 127 {
            return None;
        }
        let moved = std::net::Ipv4Addr::new(a, self.octet(), c, d);
        Some(match port {
            Some(p) => format!("{moved}:{p}"),
            None => moved.to_string(),
        })
    }
}

/// A number that differs between the test threads of one process and
/// between processes.
fn thread_seed() -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::thread::current().id().hash(&mut h);
    std::process::id().hash(&mut h);
    h.finish() as usize
}

/// A `gt lab up` that failed, and what it left behind (it should leave nothing).
#[derive(Debug)]
pub struct FailedStart {
    pub run: Output,
    pub dir_left: bool,
    /// Processes whose command line names the lab dir.
    pub processes_left: Vec<String>,
    /// The lab lock, still held: release it (drop) after undoing what the test
    /// prepared, so that no other lab meets it.
    pub lock: LabLock,
}

pub struct LabBuilder {
    transport: Transport,
    speed: f64,
    bare: bool,
    topology_toml: Option<String>,
    lock: Option<LabLock>,
    alone: bool,
    model_etcd: bool,
}

/// A lab that is up. Dropping it runs `gt lab down`.
pub struct Lab {
    transport: Transport,
    dir: PathBuf,
    down: bool,
    topology: serde_json::Value,
    ssh_port: Option<u16>,
    // Fields drop in order: the temp dir and the lock outlive `Drop::drop`'s `gt lab down`.
    _tmp: tempfile::TempDir,
    lock: LabLock,
}

impl Lab {
    /// Starts describing a lab of goldentooth; finish with `start`.
    pub fn up(transport: Transport) -> LabBuilder {
        LabBuilder {
            transport,
            speed: 0.01,
            bare: false,
            topology_toml: None,
            lock: None,
            alone: false,
            model_etcd: false,
        }
    }
}

impl LabBuilder {
    /// Latency multiplier (default 0.01 in tests).
    pub fn speed(mut self, f: f64) -> Self {
        self.speed = f;
        self
    }

    /// Hosts as a fresh OS install (`gt lab up`'s default); tests otherwise
    /// get hosts prepared for kubeadm (`--hosts prepared`).
    pub fn bare(mut self) -> Self {
        self.bare = true;
        self
    }

    /// A topology given as TOML text.
    pub fn topology_toml(mut self, toml: impl Into<String>) -> Self {
        self.topology_toml = Some(toml.into());
        self
    }

    /// No other lab runs while this one is up: for a test that measures
    /// wall time (a lease, a timeout) and would fail on a machine loaded by
    /// the labs of other tests (see [`Room`]).
    pub fn alone(mut self) -> Self {
        self.alone = true;
        self
    }

    /// The lab's model of etcd instead of real etcd 3.5 (`gt lab up` finds
    /// no etcd where `GT_LAB_ETCD_DIR` points): for a test whose subject is
    /// not etcd. Three real members per cluster cost CPU that the labs of
    /// other tests running beside it need.
    pub fn model_etcd(mut self) -> Self {
        self.model_etcd = true;
        self
    }

    /// Use a lock the test already holds (to prepare the machine before `up`).
    pub fn holding(mut self, lock: LabLock) -> Self {
        self.lock = Some(lock);
        self
    }

    /// Brings the lab up; panics with gt's output if it cannot.
    #[track_caller]
    pub fn start(self) -> Lab {
        match self.try_start() {
            Ok(lab) => lab,
            Err(f) => panic!("gt lab up failed: {}", f.run),
        }
    }

    /// Brings the lab up and applies cluster.toml to it: a converged cluster.
    #[track_caller]
    pub fn converged(self) -> Lab {
        let lab = self.start();
        lab.gt(&["apply", "--auto-approve"]).success();
        lab
    }

    /// Brings the lab up, or says how `gt lab up` failed and what it left.
    /// An ssh lab without sshd fails here, naming the package to install.
    #[track_caller]
    // A failed start is inspected once by the test that asked for it, never
    // passed up through `?`: its size costs nothing.
    #[allow(clippy::result_large_err)]
    pub fn try_start(self) -> Result<Lab, FailedStart> {
        if self.transport == Transport::Ssh {
            components::require_sshd();
        }
        let lock = match self.lock {
            Some(lock) => lock,
            None if self.alone => LabLock::acquire_alone(),
            None => LabLock::acquire(),
        };
        let tmp = tempfile::Builder::new()
            .prefix("gt-lab-test-")
            .tempdir()
            .expect("tempdir");
        let dir = tmp.path().join("lab");
        let topology = tmp.path().join("topology.toml");
        let text = match &self.topology_toml {
            Some(text) => lock.relocate(text),
            None => lock.goldentooth_toml(),
        };
        std::fs::write(&topology, text).expect("write topology");
        let speed = self.speed.to_string();
        let mut up = Test::new();
        if self.model_etcd {
            up = up.env("GT_LAB_ETCD_DIR", tmp.path().join("no-etcd"));
        }
        let run = up
            .args(["lab", "up", "--dir"])
            .arg(&dir)
            .arg("--from")
            .arg(&topology)
            .args(["--transport", self.transport.as_str(), "--speed", &speed])
            .args(["--hosts", if self.bare { "bare" } else { "prepared" }])
            .run();
        if !run.succeeded() {
            return Err(FailedStart {
                dir_left: dir.exists(),
                processes_left: processes_naming(&dir),
                run,
                lock,
            });
        }
        let dir = dir.canonicalize().expect("lab dir");
        let topology: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("lab.json")).unwrap()).unwrap();
        let state: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("lab-state.json")).unwrap())
                .unwrap();
        let ssh_port = state["ssh"]["port"].as_u64().map(|p| p as u16);
        if self.model_etcd {
            assert!(
                !dir.join("etcd/bin/etcd").exists(),
                "asked for the model of etcd, the lab links a real etcd: {run}"
            );
        }
        Ok(Lab {
            transport: self.transport,
            dir,
            down: false,
            topology,
            ssh_port,
            _tmp: tmp,
            lock,
        })
    }
}

impl Lab {
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn dir_str(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    /// The lab's own cluster.toml.
    pub fn config(&self) -> PathBuf {
        self.dir.join("cluster.toml")
    }

    /// lab.json as JSON.
    pub fn topology(&self) -> &serde_json::Value {
        &self.topology
    }

    pub fn node_names(&self) -> Vec<String> {
        self.topology["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["name"].as_str().unwrap().to_string())
            .collect()
    }

    /// A node's loopback address, e.g. `127.41.0.15` (fenn in slot 1).
    #[track_caller]
    pub fn address(&self, node: &str) -> String {
        self.topology["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == node)
            .unwrap_or_else(|| panic!("no node {node} in the lab"))["address"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// `address` (a topology's `A.B.C.D[:PORT]`) where this lab serves it:
    /// `lab.loopback("10.4.0.13:6443")` is dalt's API server.
    #[track_caller]
    pub fn loopback(&self, address: &str) -> String {
        self.lock.loopback(address)
    }

    pub fn endpoint(&self) -> String {
        self.topology["endpoint"].as_str().unwrap().to_string()
    }

    pub fn host_root(&self, node: &str) -> PathBuf {
        self.dir.join("hosts").join(node)
    }

    pub fn ssh_port(&self) -> Option<u16> {
        self.ssh_port
    }

    /// Runs `cmd` on `node` through the lab's transport.
    pub fn run(&self, node: &str, cmd: &str) -> Output {
        self.run_timeout(node, cmd, COMMAND_TIMEOUT)
    }

    pub fn run_timeout(&self, node: &str, cmd: &str, timeout: Duration) -> Output {
        match self.transport {
            Transport::Local => self.local_timeout(node, cmd, timeout),
            Transport::Ssh => self.ssh_timeout(node, cmd, timeout),
        }
    }

    /// The `ssh` command line a user would type to reach `address` in this lab.
    pub fn ssh_command(&self, address: &str) -> Test {
        let port = self.ssh_port.expect("an ssh lab");
        let ssh = self.dir.join("ssh");
        Test::program("ssh")
            .arg("-F")
            .arg("/dev/null")
            .arg("-i")
            .arg(ssh.join("id_ecdsa"))
            .arg("-p")
            .arg(port.to_string())
            .arg("-o")
            .arg(format!(
                "UserKnownHostsFile={}",
                ssh.join("known_hosts").display()
            ))
            .args(["-o", "StrictHostKeyChecking=yes"])
            .args(["-o", "BatchMode=yes"])
            .args(["-o", "ConnectTimeout=5"])
            .args(["-o", "LogLevel=ERROR"])
            .arg(format!("{}@{address}", whoami()))
    }

    /// Runs `cmd` on `node` with plain `ssh`, as a user would.
    pub fn ssh(&self, node: &str, cmd: &str) -> Output {
        self.ssh_timeout(node, cmd, COMMAND_TIMEOUT)
    }

    pub fn ssh_timeout(&self, node: &str, cmd: &str, timeout: Duration) -> Output {
        self.ssh_command(&self.address(node))
            .arg(cmd)
            .timeout(timeout)
            .run()
    }

    /// Runs `cmd` on `node` as gt's local transport does: the lab shell, the host's env.
    pub fn local_timeout(&self, node: &str, cmd: &str, timeout: Duration) -> Output {
        Test::program(self.dir.join("bin").join("gt-lab-sh"))
            .arg("-c")
            .arg(cmd)
            .env("GT_HOST_ROOT", self.host_root(node))
            .env(
                "PATH",
                format!("{}/bin:/usr/local/bin:/usr/bin:/bin", self.dir.display()),
            )
            .timeout(timeout)
            .run()
    }

    /// `gt --config DIR/cluster.toml`, to be given its arguments.
    pub fn test(&self) -> Test {
        Test::new().config(self.config())
    }

    /// `gt --config DIR/cluster.toml ARGS...`, run.
    pub fn gt(&self, args: &[&str]) -> Output {
        self.test().args(args).run()
    }

    /// `gt lab SUBCOMMAND --dir DIR ARGS...`
    pub fn gt_lab(&self, subcommand: &str, args: &[&str]) -> Output {
        Test::new()
            .args(["lab", subcommand, "--dir", self.dir_str()])
            .args(args)
            .run()
    }

    /// `gt lab fault NODE KIND...`, which must succeed.
    #[track_caller]
    pub fn fault(&self, node: &str, kind: &[&str]) -> Output {
        let mut args = vec![node];
        args.extend_from_slice(kind);
        self.gt_lab("fault", &args).success()
    }

    /// The node's fault file, as JSON (`{}` when it has none).
    pub fn faults(&self, node: &str) -> serde_json::Value {
        std::fs::read_to_string(self.dir.join("faults").join(format!("{node}.json")))
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_else(|| serde_json::json!({}))
    }

    /// Every simulated command the node ran (`logs/NODE.log`, one JSON object a line).
    pub fn log(&self, node: &str) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.join("logs").join(format!("{node}.log")))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Live processes whose command line names the lab dir (`pgrep -af DIR`).
    pub fn processes(&self) -> Vec<String> {
        processes_naming(&self.dir)
    }

    /// `gt lab down`, once; the lab is not taken down again on drop.
    pub fn down(mut self) -> Output {
        self.down = true;
        self.gt_lab("down", &[])
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if !self.down {
            let r = self.gt_lab("down", &[]);
            if !r.succeeded() {
                eprintln!("gt lab down failed while dropping the lab: {r}");
            }
        }
    }
}

/// `pgrep -af PATTERN`, without the pgrep itself.
pub fn processes_naming(dir: &Path) -> Vec<String> {
    let out = Command::new("pgrep")
        .arg("-af")
        .arg(dir)
        .output()
        .expect("pgrep (procps) is installed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

pub fn whoami() -> String {
    // SAFETY: getpwuid's result is copied out at once.
    unsafe {
        let pw = libc::getpwuid(libc::geteuid());
        assert!(!pw.is_null(), "no passwd entry for the current user");
        std::ffi::CStr::from_ptr((*pw).pw_name)
            .to_string_lossy()
            .into_owned()
    }
}

/// Pids recorded in `DIR/pids/`, read before `down` removes them.
pub fn recorded_pids(dir: &Path) -> Vec<i32> {
    std::fs::read_dir(dir.join("pids"))
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| std::fs::read_to_string(e.path()).ok()?.trim().parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Running and not a zombie.
pub fn pid_alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let i = s.rfind(')')?;
            s[i + 1..].split_whitespace().next().map(|st| st != "Z")
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(slot: usize) -> LabLock {
        LabLock {
            _held: tempfile::tempfile().unwrap(),
            slot: slot as u8,
            _room: Room::shared(),
        }
    }

    #[test]
    fn relocation_moves_every_quoted_ipv4_address_into_the_slot_and_nothing_else() {
        let toml = "# the real cluster's addresses (10.4.x.x)\n\
                    endpoint = \"10.4.0.10:6443\"\n\
                    pod_cidr = \"10.244.0.0/16\"\n\
                    address = '10.4.1.10'\n\
                    other = \"192.168.3.4\"\n\
                    v6 = \"fd00::15\"\n\
                    mirror = \"http://10.4.0.5/debian\"\n\
                    local = \"127.0.0.1\"\n\
                    version = \"1.32\"\n";
        assert_eq!(
            slot(3).relocate(toml),
            "# the real cluster's addresses (10.4.x.x)\n\
             endpoint = \"10.43.0.10:6443\"\n\
             pod_cidr = \"10.244.0.0/16\"\n\
             address = '10.43.1.10'\n\
             other = \"192.43.3.4\"\n\
             v6 = \"fd00::15\"\n\
             mirror = \"http://10.4.0.5/debian\"\n\
             local = \"127.0.0.1\"\n\
             version = \"1.32\"\n"
        );
    }

    #[test]
    fn goldentooth_relocated_keeps_no_address_of_the_real_cluster() {
        let moved = slot(0).goldentooth_toml();
        assert!(!moved.contains("\"10.4."), "{moved}");
        assert!(moved.contains("endpoint = \"10.40.0.10:6443\""), "{moved}");
        assert!(moved.contains("address = \"10.40.1.10\""), "{moved}");
    }

    #[test]
    fn a_topology_address_maps_to_where_the_slots_lab_serves_it() {
        assert_eq!(slot(1).loopback("10.4.0.13:6443"), "127.41.0.13:6443");
        assert_eq!(slot(15).loopback("10.4.1.10"), "127.55.1.10");
    }

    #[test]
    fn a_held_slot_is_not_handed_out_again() {
        let held = LabLock::acquire();
        assert!(LabLock::try_slot(held.slot(), Room::shared()).is_err());
    }

    #[test]
    fn a_lab_alone_keeps_shared_labs_out_until_it_is_dropped() {
        // A room of this test's own: the labs' room would make every lab of
        // the suite wait for this test.
        let name = format!("gt-lab-tests-room-unit-{}", std::process::id());
        let outside = std::thread::spawn({
            let name = name.clone();
            move || {
                let alone = Room::alone_in(&name);
                let probe = lock_file(&format!("{name}.lock"));
                // SAFETY: flock on an fd we own.
                let rc = unsafe { libc::flock(probe.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) };
                drop(alone);
                // A process another test is starting at this moment holds a
                // copy of every descriptor until its exec closes them, the
                // lock's among them: the room opens once that copy is gone.
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
                let after = loop {
                    // SAFETY: as above.
                    let rc =
                        unsafe { libc::flock(probe.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) };
                    if rc == 0 || std::time::Instant::now() > deadline {
                        break rc;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                };
                (rc, after)
            }
        });
        let (while_alone, after) = outside.join().unwrap();
        let _ = std::fs::remove_file(std::env::temp_dir().join(format!("{name}.lock")));
        let _ = std::fs::remove_file(std::env::temp_dir().join(format!("{name}-door.lock")));
        assert_eq!(
            while_alone, -1,
            "a shared lab got in beside one that runs alone"
        );
        assert_eq!(after, 0, "the room stayed closed after the lab alone left");
    }
}
