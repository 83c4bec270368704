//! The SSH transport against a real sshd on loopback.

mod transport;
