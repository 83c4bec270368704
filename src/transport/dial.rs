//! gt dials the TCP connection of each SSH login itself and hands the
//! connected socket to ssh (`ProxyCommand` with `ProxyUseFdpass`).
//!
//! Why: the OpenSSH client sets TCP_NODELAY only on interactive sessions, and
//! gt's master (`-N`) is not one, so during the login several small writes
//! each wait for the server's delayed ACK (40 ms on Linux). gt's socket has
//! TCP_NODELAY from the start; everything else about it is what ssh's own
//! connect would have made (`ssh_connect_direct` in OpenSSH's sshconnect.c):
//! every address of the name in turn, each connect bounded by the connect
//! timeout, SO_KEEPALIVE (ssh's default `TCPKeepAlive yes`).
//!
//! ssh starts the dialer as `gt ssh-dial HOST PORT TIMEOUT_MS` through
//! `$SHELL -c`, and closes every descriptor it inherits above stderr, so the
//! dialer connects by itself and passes the socket back over its stdout
//! (SCM_RIGHTS). It fails with ssh's own words on stderr (ssh's stderr, which
//! gt keeps beside ssh's `-E` log for its failure classification), and ssh
//! adds `proxy dialer did not pass back a connection` to its log.
//!
//! `ssh_config.rs` decides when gt steps aside and lets ssh connect as it
//! always did.

use super::{shell_quote, SshSettings};
use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The hidden first argument that makes gt's binary the dialer.
pub const SUBCOMMAND: &str = "ssh-dial";

/// Set to `0`, `off`, `no` or `false`, gt lets ssh connect by itself.
pub const OFF_SWITCH: &str = "GT_SSH_DIAL";

/// ssh's exit status for a failed connection, which the dialer keeps.
const SSH_FAILED: u8 = 255;

/// The program ssh runs as its ProxyCommand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialer {
    program: PathBuf,
}

static OWN_EXE_OFFERED: AtomicBool = AtomicBool::new(false);

/// Lets this process's SSH logins dial through its own executable (the gt
/// binary calls it; a library user who does not gets ssh's own connect),
/// unless the off switch is set.
pub fn offer_own_exe() {
    if wanted(std::env::var_os(OFF_SWITCH).as_deref()) {
        OWN_EXE_OFFERED.store(true, Ordering::Relaxed);
    }
}

fn wanted(switch: Option<&OsStr>) -> bool {
    let off = switch
        .and_then(OsStr::to_str)
        .map(|v| v.trim().to_ascii_lowercase());
    !matches!(off.as_deref(), Some("0" | "off" | "no" | "false"))
}

impl Dialer {
    pub fn program(program: impl Into<PathBuf>) -> Dialer {
        Dialer {
            program: program.into(),
        }
    }

    /// gt's own executable, when `offer_own_exe` allowed it. Named through
    /// /proc so that a gt binary replaced on disk during a run (an upgrade
    /// mid-apply) still dials with the code that is running.
    pub fn own_exe() -> Option<Dialer> {
        if !OWN_EXE_OFFERED.load(Ordering::Relaxed) {
            return None;
        }
        let exe = PathBuf::from(format!("/proc/{}/exe", std::process::id()));
        Some(Dialer::program(exe))
    }

    /// Whether ssh could run it at all: a program gone from disk, or a path
    /// no shell word can carry, leaves the login to ssh.
    pub fn usable(&self) -> bool {
        self.program.to_str().is_some() && self.program.exists()
    }

    /// The `-o` options that make ssh take its connection from the dialer.
    /// Host and port are gt's own (a config that could change them makes gt
    /// step aside); ssh would expand `%` in them, so each is doubled.
    pub fn ssh_options(&self, s: &SshSettings, connect_timeout: Duration) -> Vec<String> {
        let words = [
            self.program.display().to_string(),
            SUBCOMMAND.to_string(),
            s.host.clone(),
            s.port.to_string(),
            connect_timeout.as_millis().to_string(),
        ];
        let command = words
            .iter()
            .map(|w| shell_quote(w))
            .collect::<Vec<_>>()
            .join(" ");
        vec![
            format!("ProxyCommand={}", command.replace('%', "%%")),
            "ProxyUseFdpass=yes".to_string(),
        ]
    }
}

/// `gt ssh-dial HOST PORT TIMEOUT_MS`, as ssh runs it.
pub fn main(args: &[String]) -> ExitCode {
    let parsed = match args {
        [host, port, ms] => port
            .parse::<u16>()
            .ok()
            .zip(ms.parse::<u64>().ok())
            .map(|(port, ms)| (host.as_str(), port, Duration::from_millis(ms))),
        _ => None,
    };
    let Some((host, port, timeout)) = parsed else {
        eprintln!(
            "gt {SUBCOMMAND}: expected HOST PORT TIMEOUT_MS (ssh runs this as gt's ProxyCommand), got {args:?}"
        );
        return ExitCode::from(SSH_FAILED);
    };
    let stream = match dial(host, port, timeout) {
        Ok(stream) => stream,
        Err(ssh_message) => {
            eprintln!("{ssh_message}");
            return ExitCode::from(SSH_FAILED);
        }
    };
    match send_fd(libc::STDOUT_FILENO, stream.as_raw_fd()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gt {SUBCOMMAND}: could not pass the connection to ssh over stdout: {e}");
            ExitCode::from(SSH_FAILED)
        }
    }
}

/// Connects as ssh would, with TCP_NODELAY; on failure, the line ssh itself
/// would have printed.
pub fn dial(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, String> {
    let addrs = resolve(host, port)?;
    let mut errno = 0;
    for addr in addrs {
        // ssh without a ConnectTimeout waits as long as the kernel does.
        let connected = if timeout.is_zero() {
            TcpStream::connect(addr)
        } else {
            TcpStream::connect_timeout(&addr, timeout)
        };
        match connected {
            Ok(stream) => {
                // What this is all for; should it fail, the login still works.
                let _ = stream.set_nodelay(true);
                if let Err(e) = set_keepalive(&stream) {
                    eprintln!("setsockopt SO_KEEPALIVE: {}", strerror_of(&e));
                }
                return Ok(stream);
            }
            Err(e) => errno = errno_of(&e),
        }
    }
    Err(connect_failure(host, port, errno))
}

/// `ssh: connect to host H port P: REASON`, sshconnect.c's words; ssh names
/// a host (not an address) in lower case, as it looked it up.
fn connect_failure(host: &str, port: u16, errno: i32) -> String {
    let reason = if errno == 0 {
        "failure".to_string()
    } else {
        strerror(errno)
    };
    format!(
        "ssh: connect to host {} port {port}: {reason}",
        as_ssh_names(host)
    )
}

fn as_ssh_names(host: &str) -> String {
    if host.parse::<IpAddr>().is_ok() || host.contains(':') {
        host.to_string()
    } else {
        host.to_ascii_lowercase()
    }
}

/// `ssh: Could not resolve hostname H: REASON`, ssh.c's words (the name cut at 100 bytes).
fn resolve_failure(host: &str, reason: &str) -> String {
    let shown = as_ssh_names(host);
    let mut cut = shown.len().min(100);
    while !shown.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "ssh: Could not resolve hostname {}: {reason}",
        &shown[..cut]
    )
}

/// Every address of `host`, in getaddrinfo's order, as ssh's resolve_host
/// asks for them (any family, stream sockets).
fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let c_host =
        CString::new(host).map_err(|_| resolve_failure(host, &gai_reason(libc::EAI_NONAME, 0)))?;
    let c_port = CString::new(port.to_string()).expect("digits have no NUL");
    // SAFETY: zeroed addrinfo is the documented way to start hints.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_family = libc::AF_UNSPEC;
    hints.ai_socktype = libc::SOCK_STREAM;
    let mut list: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: valid C strings and hints; `list` is freed below.
    let rc = unsafe { libc::getaddrinfo(c_host.as_ptr(), c_port.as_ptr(), &hints, &mut list) };
    if rc != 0 {
        let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
        return Err(resolve_failure(host, &gai_reason(rc, errno)));
    }
    let mut addrs = Vec::new();
    let mut ai = list;
    while !ai.is_null() {
        // SAFETY: a node of the list getaddrinfo returned, not yet freed.
        let entry = unsafe { &*ai };
        // SAFETY: ai_addr points to a sockaddr of the family it names.
        if let Some(addr) = unsafe { socket_addr(entry) } {
            addrs.push(addr);
        }
        ai = entry.ai_next;
    }
    // SAFETY: the list getaddrinfo returned, freed once.
    unsafe { libc::freeaddrinfo(list) };
    Ok(addrs)
}

/// ssh's ssh_gai_strerror: errno's text for a system error, else gai_strerror's.
fn gai_reason(rc: i32, errno: i32) -> String {
    if rc == libc::EAI_SYSTEM && errno != 0 {
        return strerror(errno);
    }
    // SAFETY: gai_strerror returns a static C string.
    unsafe { CStr::from_ptr(libc::gai_strerror(rc)) }
        .to_string_lossy()
        .into_owned()
}

/// # Safety
/// `ai.ai_addr` must point to a sockaddr of family `ai.ai_family`.
unsafe fn socket_addr(ai: &libc::addrinfo) -> Option<SocketAddr> {
    match ai.ai_family {
        libc::AF_INET => {
            let sin = &*(ai.ai_addr as *const libc::sockaddr_in);
            let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Some(SocketAddr::new(IpAddr::V4(ip), u16::from_be(sin.sin_port)))
        }
        libc::AF_INET6 => {
            let sin6 = &*(ai.ai_addr as *const libc::sockaddr_in6);
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        // ssh skips other families too (EAFNOSUPPORT); stream hints give none.
        _ => None,
    }
}

/// The errno ssh would have seen: Rust reports its own connect timeout
/// without one, where ssh's poll gives ETIMEDOUT.
fn errno_of(e: &io::Error) -> i32 {
    match e.raw_os_error() {
        Some(n) => n,
        None if e.kind() == io::ErrorKind::TimedOut => libc::ETIMEDOUT,
        None => 0,
    }
}

fn strerror_of(e: &io::Error) -> String {
    match errno_of(e) {
        0 => e.to_string(),
        n => strerror(n),
    }
}

/// The C library's text for `errno`, as ssh prints it (without Rust's
/// ` (os error N)`).
fn strerror(errno: i32) -> String {
    let full = io::Error::from_raw_os_error(errno).to_string();
    let suffix = format!(" (os error {errno})");
    full.strip_suffix(&suffix).unwrap_or(&full).to_string()
}

fn set_keepalive(stream: &TcpStream) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: a valid socket and a c_int option of the right size.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_KEEPALIVE,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sends `fd` over the unix socket `channel` the way OpenSSH's
/// mm_receive_fd expects it: one data byte and one SCM_RIGHTS descriptor.
fn send_fd(channel: RawFd, fd: RawFd) -> io::Result<()> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // u64 keeps the buffer aligned for cmsghdr.
    let mut control = [0u64; 8];
    // SAFETY: CMSG_SPACE is a pure size computation.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
    assert!(space <= std::mem::size_of_val(&control));
    // SAFETY: zeroed msghdr, then pointers to live buffers of the given sizes.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: msg_control holds `space` bytes, enough for one header and one fd.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
    }
    loop {
        // SAFETY: msg points to live buffers for the duration of the call.
        let sent = unsafe { libc::sendmsg(channel, &msg, 0) };
        if sent == 1 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if sent < 0 && e.kind() == io::ErrorKind::Interrupted {
            continue;
        }
        return Err(if sent < 0 {
            e
        } else {
            io::Error::new(io::ErrorKind::WriteZero, "the descriptor was not sent")
        });
    }
}

/// Which program dials for `s`, or `None` when gt steps aside.
pub fn route<'d>(s: &SshSettings, dialer: Option<&'d Dialer>) -> Option<&'d Dialer> {
    let dialer = dialer.filter(|d| d.usable())?;
    // ssh never passes a jump's connection as a descriptor, and the hops are
    // ssh's to reach.
    if !s.jump_hosts.is_empty() {
        return None;
    }
    super::ssh_config::leaves_connect_to_gt(s.config_file.as_deref(), &s.host).then_some(dialer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn settings(host: &str) -> SshSettings {
        SshSettings {
            host: host.into(),
            port: 2222,
            ..crate::transport::ssh::tests::settings()
        }
    }

    #[test]
    fn ssh_runs_the_dialer_with_host_port_and_timeout_quoted_and_percent_doubled() {
        let d = Dialer::program("/opt/my tools/gt");
        assert_eq!(
            d.ssh_options(&settings("10.4.0.15"), Duration::from_secs(5)),
            [
                "ProxyCommand='/opt/my tools/gt' ssh-dial 10.4.0.15 2222 5000",
                "ProxyUseFdpass=yes"
            ]
        );
        assert_eq!(
            d.ssh_options(&settings("fe80::1%eth0"), Duration::from_millis(1500))[0],
            "ProxyCommand='/opt/my tools/gt' ssh-dial fe80::1%%eth0 2222 1500"
        );
        assert_eq!(
            d.ssh_options(&settings("a;b"), Duration::from_secs(1))[0],
            "ProxyCommand='/opt/my tools/gt' ssh-dial 'a;b' 2222 1000"
        );
    }

    #[test]
    fn the_off_switch_takes_the_usual_words_for_no() {
        for off in ["0", "off", "no", "false", "OFF", " no "] {
            assert!(!wanted(Some(OsStr::new(off))), "{off}");
        }
        for on in [None, Some("1"), Some("on"), Some(""), Some("yes")] {
            assert!(wanted(on.map(OsStr::new)), "{on:?}");
        }
    }

    #[test]
    fn own_exe_is_named_through_proc_once_offered() {
        OWN_EXE_OFFERED.store(true, Ordering::Relaxed);
        let d = Dialer::own_exe().expect("offered");
        assert_eq!(
            d.program,
            PathBuf::from(format!("/proc/{}/exe", std::process::id()))
        );
        assert!(d.usable());
        assert!(!Dialer::program("/nonexistent/gt").usable());
    }

    #[test]
    fn jump_hosts_and_an_unusable_program_leave_the_connect_to_ssh() {
        let d = Dialer::program("/proc/self/exe");
        let mut s = settings("10.4.0.15");
        s.config_file = Some("/nonexistent/ssh_config".into());
        assert_eq!(route(&s, Some(&d)), Some(&d));
        assert_eq!(route(&s, None), None);
        assert_eq!(route(&s, Some(&Dialer::program("/nonexistent/gt"))), None);
        s.jump_hosts = vec!["bastion".into()];
        assert_eq!(route(&s, Some(&d)), None);
    }

    #[test]
    fn a_dialed_connection_has_nodelay_and_keepalive() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stream = dial("127.0.0.1", port, Duration::from_secs(5)).unwrap();
        assert!(stream.nodelay().unwrap());
        let mut on: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: a c_int out-parameter of the right size.
        let rc = unsafe {
            libc::getsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_KEEPALIVE,
                (&mut on as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        assert_eq!((rc, on), (0, 1));
        assert_eq!(stream.peer_addr().unwrap(), listener.local_addr().unwrap());
    }

    #[test]
    fn a_name_is_resolved_and_each_address_tried_in_turn() {
        // localhost is in /etc/hosts (no DNS query), as 127.0.0.1 and maybe
        // ::1; the listener is on 127.0.0.1 only.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stream = dial("LOCALHOST", port, Duration::from_secs(5)).unwrap();
        assert_eq!(stream.peer_addr().unwrap(), listener.local_addr().unwrap());
    }

    #[test]
    fn a_refused_connect_says_what_ssh_says() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let e = dial("127.0.0.1", port, Duration::from_secs(5)).unwrap_err();
        assert_eq!(
            e,
            format!("ssh: connect to host 127.0.0.1 port {port}: Connection refused")
        );
    }

    /// A listener whose accept queue is full drops further SYNs, so a connect
    /// waits until its bound: the dialer's own connect timeout.
    #[test]
    fn a_connect_that_gets_no_answer_ends_at_the_timeout_as_ssh_words_it() {
        // SAFETY: plain socket calls on a descriptor this test owns.
        let (fd, port) = unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
            assert!(fd >= 0);
            let mut addr: libc::sockaddr_in = std::mem::zeroed();
            addr.sin_family = libc::AF_INET as libc::sa_family_t;
            addr.sin_addr.s_addr = u32::from(Ipv4Addr::LOCALHOST).to_be();
            let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            assert_eq!(
                libc::bind(fd, (&addr as *const libc::sockaddr_in).cast(), len),
                0
            );
            assert_eq!(libc::listen(fd, 0), 0);
            let mut len = len;
            assert_eq!(
                libc::getsockname(fd, (&mut addr as *mut libc::sockaddr_in).cast(), &mut len),
                0
            );
            (fd, u16::from_be(addr.sin_port))
        };
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let mut queued = Vec::new();
        let mut full = false;
        for _ in 0..8 {
            match TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
                Ok(s) => queued.push(s),
                Err(_) => {
                    full = true;
                    break;
                }
            }
        }
        assert!(full, "the accept queue never filled");
        let e = dial("127.0.0.1", port, Duration::from_millis(200)).unwrap_err();
        assert_eq!(
            e,
            format!("ssh: connect to host 127.0.0.1 port {port}: Connection timed out")
        );
        // SAFETY: closes the descriptor opened above, once.
        unsafe { libc::close(fd) };
    }

    #[test]
    fn failures_read_as_ssh_prints_them() {
        assert_eq!(
            connect_failure("Fenn.LAN", 22, libc::EHOSTUNREACH),
            "ssh: connect to host fenn.lan port 22: No route to host"
        );
        assert_eq!(
            connect_failure("10.4.0.15", 22, libc::ENETUNREACH),
            "ssh: connect to host 10.4.0.15 port 22: Network is unreachable"
        );
        assert_eq!(
            connect_failure("10.4.0.15", 22, 0),
            "ssh: connect to host 10.4.0.15 port 22: failure"
        );
        assert_eq!(
            resolve_failure("Nowhere.example", &gai_reason(libc::EAI_NONAME, 0)),
            "ssh: Could not resolve hostname nowhere.example: Name or service not known"
        );
        assert_eq!(
            gai_reason(libc::EAI_AGAIN, 0),
            "Temporary failure in name resolution"
        );
        assert_eq!(
            gai_reason(libc::EAI_SYSTEM, libc::ECONNREFUSED),
            "Connection refused"
        );
        let long = "a".repeat(150);
        assert_eq!(
            resolve_failure(&long, "x"),
            format!("ssh: Could not resolve hostname {}: x", "a".repeat(100))
        );
    }

    #[test]
    fn the_descriptor_travels_as_openssh_receives_it() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = dial(
            "127.0.0.1",
            listener.local_addr().unwrap().port(),
            Duration::from_secs(5),
        )
        .unwrap();
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        send_fd(ours.as_raw_fd(), stream.as_raw_fd()).unwrap();
        drop(stream);
        // mm_receive_fd: one byte, one SCM_RIGHTS header carrying one int.
        let mut byte = [9u8; 1];
        let mut iov = libc::iovec {
            iov_base: byte.as_mut_ptr().cast(),
            iov_len: 1,
        };
        let mut control = [0u64; 8];
        // SAFETY: zeroed msghdr pointing at live buffers.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        // SAFETY: as above; the header is read only after recvmsg filled it.
        let received = unsafe {
            assert_eq!(libc::recvmsg(theirs.as_raw_fd(), &mut msg, 0), 1);
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            assert!(!cmsg.is_null());
            assert_eq!((*cmsg).cmsg_type, libc::SCM_RIGHTS);
            std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>())
        };
        assert_eq!(byte, [0]);
        // SAFETY: the descriptor just received is ours alone.
        let passed = unsafe { <TcpStream as std::os::fd::FromRawFd>::from_raw_fd(received) };
        assert!(passed.nodelay().unwrap());
        assert_eq!(passed.peer_addr().unwrap(), listener.local_addr().unwrap());
    }
}
