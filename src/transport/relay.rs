//! The connection gt dialed, relayed to ssh through a socket pair, so that
//! what the host sends is acknowledged at once.
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
//! Two threads per connection (the host's bytes to ssh, ssh's to the host),
//! each a blocking copy: they do not depend on gt's async runtime, which may
//! be waiting for an answer at the terminal while the connection must keep
//! answering. End of input either way is passed on as a half close; a
//! failure closes both ways. They end with the connection: ssh exiting, the
//! host closing, or gt's process ending (its ssh then sees the pair close
//! and exits too).

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;

/// How much one read moves: ssh's own reads are at most 32 KiB; an etcd
/// snapshot's stream still goes at disk speed.
const CHUNK: usize = 32 * 1024;

/// The relay threads' stacks: a copy loop needs little.
const STACK: usize = 128 * 1024;

/// Set to `0`, `off`, `no` or `false`, gt hands ssh the connection itself,
/// unrelayed (the acknowledgements delayed again).
pub const OFF_SWITCH: &str = "GT_SSH_RELAY";

/// Whether the off switch leaves the relay on (read once per process).
pub fn switched_on() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| super::dial::wanted(std::env::var_os(OFF_SWITCH).as_deref()))
}

/// ssh's end of a pair whose other end is relayed to and from `stream`.
pub fn relayed(stream: TcpStream) -> io::Result<UnixStream> {
    let (ours, theirs) = UnixStream::pair()?;
    let host_in = stream.try_clone()?;
    let ssh_in = ours.try_clone()?;
    std::thread::Builder::new()
        .name("gt-ssh-relay".into())
        .stack_size(STACK)
        .spawn(move || host_to_ssh(host_in, ours))?;
    std::thread::Builder::new()
        .name("gt-ssh-relay".into())
        .stack_size(STACK)
        .spawn(move || ssh_to_host(ssh_in, stream))?;
    Ok(theirs)
}

fn host_to_ssh(host: TcpStream, ssh: UnixStream) {
    // Best effort: without it the bytes still flow, 40 ms later.
    let ended = pump(&host, &ssh, || {
        let _ = quickack(&host);
    });
    close(&host, &ssh, ended);
}

fn ssh_to_host(ssh: UnixStream, host: TcpStream) {
    if pump(&ssh, &host, || {}) {
        let _ = host.shutdown(Shutdown::Write);
    } else {
        let _ = host.shutdown(Shutdown::Both);
        let _ = ssh.shutdown(Shutdown::Both);
    }
}

/// Copies `from` to `to` until `from` ends (true) or either fails (false),
/// calling `after_read` after each read.
fn pump(mut from: impl Read, mut to: impl Write, after_read: impl Fn()) -> bool {
    let mut buf = vec![0u8; CHUNK];
    loop {
        match from.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) => {
                after_read();
                if to.write_all(&buf[..n]).is_err() {
                    return false;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

/// After the host's side ended: a clean end is passed on to ssh as its
/// input's end; a failure closes everything, so that neither side waits.
fn close(host: &TcpStream, ssh: &UnixStream, ended: bool) {
    if ended {
        let _ = ssh.shutdown(Shutdown::Write);
    } else {
        let _ = ssh.shutdown(Shutdown::Both);
        let _ = host.shutdown(Shutdown::Both);
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
        let mut ssh = relayed(gt).unwrap();
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
        ssh.read_exact(&mut got).unwrap();
        assert!(got == big, "the host's bytes reached ssh changed");
        ssh.write_all(&got).unwrap();
        let (_host, back) = writer.join().unwrap();
        assert!(back == big, "ssh's bytes reached the host changed");
    }

    #[test]
    fn each_side_ending_is_passed_on_and_the_other_way_still_flows() {
        // ssh ends its output: the host reads the end, and can still answer.
        let (gt, mut host) = tcp_pair();
        let mut ssh = relayed(gt).unwrap();
        ssh.write_all(b"last words").unwrap();
        ssh.shutdown(Shutdown::Write).unwrap();
        let mut heard = Vec::new();
        host.read_to_end(&mut heard).unwrap();
        assert_eq!(heard, b"last words");
        host.write_all(b"answer").unwrap();
        drop(host);
        let mut answer = Vec::new();
        ssh.read_to_end(&mut answer).unwrap();
        assert_eq!(answer, b"answer");

        // The host closes first: ssh reads the end.
        let (gt, host) = tcp_pair();
        let mut ssh = relayed(gt).unwrap();
        drop(host);
        let mut rest = Vec::new();
        ssh.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
    }

    #[test]
    fn ssh_going_away_closes_the_connection_to_the_host() {
        let (gt, mut host) = tcp_pair();
        let ssh = relayed(gt).unwrap();
        drop(ssh);
        let mut rest = Vec::new();
        host.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
    }

    #[test]
    fn quickack_is_accepted_on_a_connected_socket() {
        let (gt, _host) = tcp_pair();
        quickack(&gt).unwrap();
    }
}
