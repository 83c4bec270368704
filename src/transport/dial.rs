//! gt dials the TCP connection of each SSH login itself and hands the
//! connected socket to ssh as its stdin and stdout (`ProxyCommand=-`).
//!
//! Why: the OpenSSH client sets TCP_NODELAY only on interactive sessions, and
//! gt's master (`-N`) is not one, so during the login several small writes
//! each wait for the server's delayed ACK (40 ms on Linux). gt's socket has
//! TCP_NODELAY from the start; everything else about it is what ssh's own
//! connect would have made (`ssh_connect_direct` in OpenSSH's sshconnect.c):
//! every address of the name in turn, each connect bounded by the connect
//! timeout, SO_KEEPALIVE (ssh's default `TCPKeepAlive yes`). ssh keeps its
//! stdin and stdout (it closes every other inherited descriptor), so no
//! helper process is needed; ssh reads the host's bytes through gt's relay
//! (relay.rs), which has them acknowledged at once, and writes to the
//! socket itself. A failed connect is worded as ssh words it, and
//! classified from that text like any failure of ssh's.
//!
//! `ssh_config.rs` decides when gt steps aside and lets ssh connect as it
//! always did (docs/ssh.md has the OpenSSH facts both rely on).

use super::SshSettings;
use std::ffi::{CStr, CString, OsStr};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::OnceLock;
use std::time::Duration;

/// Set to `0`, `off`, `no` or `false`, gt lets ssh connect by itself.
pub const OFF_SWITCH: &str = "GT_SSH_DIAL";

/// The option that makes ssh take its connection from its stdin and stdout.
pub const SSH_OPTION: &str = "ProxyCommand=-";

/// Whether the off switch leaves dialing on (read once per process).
pub fn switched_on() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| wanted(std::env::var_os(OFF_SWITCH).as_deref()))
}

/// Whether an off switch's value (`0`, `off`, `no`, `false`) leaves it on.
pub(super) fn wanted(switch: Option<&OsStr>) -> bool {
    let off = switch
        .and_then(OsStr::to_str)
        .map(|v| v.trim().to_ascii_lowercase());
    !matches!(off.as_deref(), Some("0" | "off" | "no" | "false"))
}

/// Whether gt dials for `s` (`allowed`: the off switch's say), or steps aside.
pub fn dials(s: &SshSettings, allowed: bool) -> bool {
    // A jump's connection is ssh's to make, through the hops.
    allowed
        && s.jump_hosts.is_empty()
        && super::ssh_config::leaves_connect_to_gt(s.config_file.as_deref(), &s.host)
}

/// `dial` off the runtime's threads (name resolution and connect block).
pub async fn connect(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, String> {
    let host = host.to_string();
    tokio::task::spawn_blocking(move || dial(&host, port, timeout))
        .await
        .unwrap_or_else(|e| Err(format!("gt could not dial: {e}")))
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
                // What this is all for. Should either option fail, the
                // login still works (ssh only logs a failed SO_KEEPALIVE).
                let _ = stream.set_nodelay(true);
                let _ = set_keepalive(&stream);
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

/// The C library's text for `errno`, as ssh prints it (without Rust's
/// ` (os error N)`).
fn strerror(errno: i32) -> String {
    let full = io::Error::from_raw_os_error(errno).to_string();
    let suffix = format!(" (os error {errno})");
    full.strip_suffix(&suffix).unwrap_or(&full).to_string()
}

fn set_keepalive(stream: &TcpStream) -> io::Result<()> {
    set_flag(stream, libc::SOL_SOCKET, libc::SO_KEEPALIVE)
}

/// Turns a socket's boolean option `name` (at `level`) on.
pub(super) fn set_flag(
    stream: &TcpStream,
    level: libc::c_int,
    name: libc::c_int,
) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: a valid socket and a c_int option of the right size.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            level,
            name,
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
    fn the_off_switch_takes_the_usual_words_for_no() {
        for off in ["0", "off", "no", "false", "OFF", " no "] {
            assert!(!wanted(Some(OsStr::new(off))), "{off}");
        }
        for on in [None, Some("1"), Some("on"), Some(""), Some("yes")] {
            assert!(wanted(on.map(OsStr::new)), "{on:?}");
        }
    }

    #[test]
    fn jump_hosts_and_the_off_switch_leave_the_connect_to_ssh() {
        let mut s = settings("10.4.0.15");
        s.config_file = Some("/nonexistent/ssh_config".into());
        assert!(dials(&s, true));
        assert!(!dials(&s, false));
        s.jump_hosts = vec!["bastion".into()];
        assert!(!dials(&s, true));
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
}
