//! The connection gt dialed, handed to ssh with what the host sends relayed
//! through a socket pair, so that it is acknowledged at once.
//!
//! Why: sshd sets TCP_NODELAY only on sessions with a terminal, and gt's
//! have none. When a command ends, sshd writes its last output, then the
//! exit status and the channel's close a moment later: Nagle holds that
//! second write until the first is acknowledged, and the operator's kernel
//! delays that acknowledgement (40 ms on Linux, since the connection also
//! sends). Every command gt runs would end 40 ms late, on a LAN as on
//! loopback. A socket's TCP_QUICKACK does not stick (the kernel goes back to
//! delaying), so gt reads the host's bytes itself and sets it again after
//! each read, which sends the pending acknowledgement right away; ssh gets
//! the same bytes through the pair. Measured on the lab (a 2-core VM): one
//! `gt exec NODE -- true` 0.11 s -> 0.065 s with the host's side no faster.
//!
//! Only that direction passes through gt. `ProxyCommand=-` has ssh read its
//! stdin and write its stdout (separate descriptors, as with a proxy
//! command's two pipes), so ssh's stdin is the pair and its stdout the TCP
//! connection itself: what ssh sends goes straight to the host, with no hop
//! through a thread of gt's. (Relaying both ways, two threads per host,
//! cost 18 % more wall time observing 300 hosts on 2 cores: every round
//! trip waited for two more threads to be scheduled.)
//!
//! One thread per connection, blocking in poll(2) on the host's socket and
//! on the pair: it does not depend on gt's async runtime, which may be
//! waiting for an answer at the terminal while the connection must keep
//! answering. The host's end of input is passed on to ssh as its input's
//! end; ssh closing the pair (it exited, or closed the connection) closes
//! the connection to the host; a failure closes both. ssh makes its stdout
//! non-blocking, and that flag belongs to the socket gt reads too, so gt
//! reads only what poll(2) has said is there.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

/// How much one read moves: ssh's own reads are at most 32 KiB; an etcd
/// snapshot's stream still goes at disk speed.
const CHUNK: usize = 32 * 1024;

/// The relay thread's stack: a copy loop needs little.
const STACK: usize = 128 * 1024;

/// Set to `0`, `off`, `no` or `false`, gt hands ssh the connection itself,
/// unrelayed (the acknowledgements delayed again).
pub const OFF_SWITCH: &str = "GT_SSH_RELAY";

/// Whether the off switch leaves the relay on (read once per process).
pub fn switched_on() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| super::dial::wanted(std::env::var_os(OFF_SWITCH).as_deref()))
}

/// ssh's ends of `stream`: (its stdin, relayed from the host; its stdout,
/// the connection itself).
pub fn relayed(stream: TcpStream) -> io::Result<(UnixStream, TcpStream)> {
    let (ours, theirs) = UnixStream::pair()?;
    let host = stream.try_clone()?;
    // ssh would make it so; gt's reads never block on it either way.
    host.set_nonblocking(true)?;
    std::thread::Builder::new()
        .name("gt-ssh-relay".into())
        .stack_size(STACK)
        .spawn(move || relay(host, ours))?;
    Ok((theirs, stream))
}

/// What poll(2) found.
enum Ready {
    /// The host sent something (or ended, or failed: the read tells).
    Host,
    /// ssh closed its end of the pair.
    SshGone,
    /// poll itself failed.
    Failed,
}

/// Copies what the host sends to ssh until either side ends.
fn relay(host: TcpStream, ssh: UnixStream) {
    let mut buf = vec![0u8; CHUNK];
    loop {
        match wait(&host, &ssh) {
            Ready::Host => {}
            Ready::SshGone => {
                let _ = host.shutdown(Shutdown::Both);
                return;
            }
            Ready::Failed => break,
        }
        match (&host).read(&mut buf) {
            Ok(0) => {
                // A clean end: ssh reads what is left, then the end.
                let _ = ssh.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => {
                // Best effort: without it the bytes still flow, 40 ms later.
                let _ = quickack(&host);
                if (&ssh).write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                ) => {}
            Err(_) => break,
        }
    }
    // A failure: close everything, so that neither side waits.
    let _ = ssh.shutdown(Shutdown::Both);
    let _ = host.shutdown(Shutdown::Both);
}

/// Blocks until the host's socket is readable or ssh has closed the pair
/// (ssh never writes to its stdin, so anything there is its end).
fn wait(host: &TcpStream, ssh: &UnixStream) -> Ready {
    let mut fds = [
        libc::pollfd {
            fd: host.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: ssh.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    loop {
        // SAFETY: two valid pollfd entries, owned for the call's duration.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if n < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Ready::Failed;
        }
        // The host's bytes first: ssh may still read them.
        if fds[0].revents != 0 {
            return Ready::Host;
        }
        if fds[1].revents != 0 {
            return Ready::SshGone;
        }
    }
}

/// Sends the acknowledgement the kernel is holding back, now.
fn quickack(stream: &TcpStream) -> io::Result<()> {
    super::dial::set_flag(stream, libc::IPPROTO_TCP, libc::TCP_QUICKACK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A connected pair of TCP sockets on loopback: (gt's, the host's).
    fn tcp_pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let gt = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (host, _) = listener.accept().unwrap();
        (gt, host)
    }

    #[test]
    fn bytes_cross_both_ways_whole_and_in_order() {
        let (gt, mut host) = tcp_pair();
        let (mut ssh_in, ssh_out) = relayed(gt).unwrap();
        // ssh's writes go to the socket itself, made non-blocking (as ssh
        // makes its stdout): write it as ssh would, waiting when it is full.
        ssh_out.set_nonblocking(true).unwrap();
        // More than one chunk each way.
        let big: Vec<u8> = (0..3 * CHUNK + 17).map(|i| (i % 251) as u8).collect();
        let sent = big.clone();
        let writer = std::thread::spawn(move || {
            host.write_all(&sent).unwrap();
            let mut back = vec![0u8; sent.len()];
            host.read_exact(&mut back).unwrap();
            (host, back)
        });
        let mut got = vec![0u8; big.len()];
        ssh_in.read_exact(&mut got).unwrap();
        assert!(got == big, "the host's bytes reached ssh changed");
        let mut rest = &got[..];
        while !rest.is_empty() {
            match (&ssh_out).write(rest) {
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(1))
                }
                Err(e) => panic!("{e}"),
            }
        }
        let (_host, back) = writer.join().unwrap();
        assert!(back == big, "ssh's bytes reached the host changed");
    }

    #[test]
    fn each_side_ending_is_passed_on_and_the_other_way_still_flows() {
        // ssh ends its output: the host reads the end, and can still answer.
        let (gt, mut host) = tcp_pair();
        let (mut ssh_in, mut ssh_out) = relayed(gt).unwrap();
        ssh_out.write_all(b"last words").unwrap();
        ssh_out.shutdown(Shutdown::Write).unwrap();
        let mut heard = Vec::new();
        host.read_to_end(&mut heard).unwrap();
        assert_eq!(heard, b"last words");
        host.write_all(b"answer").unwrap();
        drop(host);
        let mut answer = Vec::new();
        ssh_in.read_to_end(&mut answer).unwrap();
        assert_eq!(answer, b"answer");

        // The host closes first: ssh reads the end.
        let (gt, host) = tcp_pair();
        let (mut ssh_in, _ssh_out) = relayed(gt).unwrap();
        drop(host);
        let mut rest = Vec::new();
        ssh_in.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
    }

    #[test]
    fn ssh_going_away_closes_the_connection_to_the_host() {
        // ssh's stdout is the connection itself and the relay holds it too:
        // only the relay noticing the pair close can end it. (ssh exiting
        // closes both; its stdout's copy alone would keep the host waiting.)
        let (gt, mut host) = tcp_pair();
        let (ssh_in, ssh_out) = relayed(gt).unwrap();
        drop(ssh_in);
        let mut rest = Vec::new();
        host.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
        drop(ssh_out);
    }

    #[test]
    fn quickack_is_accepted_on_a_connected_socket() {
        let (gt, _host) = tcp_pair();
        quickack(&gt).unwrap();
    }
}
