//! Where a simulated host lives: its real address moved onto loopback.

use std::net::{IpAddr, Ipv4Addr};

/// Maps a real IPv4 address onto loopback, keeping the last three octets
/// (10.4.0.11 → 127.4.0.11), so that the lab's addresses still read like the
/// cluster's. Linux routes all of 127.0.0.0/8 to `lo`: nothing to configure.
pub(crate) fn to_loopback(addr: IpAddr) -> Result<Ipv4Addr, String> {
    match addr {
        IpAddr::V4(v4) => {
            let [_, b, c, d] = v4.octets();
            let mapped = Ipv4Addr::new(127, b, c, d);
            if d == 0 || d == 255 || mapped == Ipv4Addr::new(127, 0, 0, 1) {
                return Err(format!(
                    "address {addr} maps to {mapped} on loopback, which the lab cannot use for a host; \
                     give the node another address in the topology"
                ));
            }
            Ok(mapped)
        }
        IpAddr::V6(_) => Err(format!(
            "address {addr} is IPv6; the lab maps IPv4 addresses onto 127.x.y.z (10.4.0.11 → 127.4.0.11) \
             and cannot map this one: use an IPv4 address in the lab's topology"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_three_octets() {
        assert_eq!(
            to_loopback("10.4.0.11".parse().unwrap()).unwrap(),
            Ipv4Addr::new(127, 4, 0, 11)
        );
        assert_eq!(
            to_loopback("10.4.1.10".parse().unwrap()).unwrap(),
            Ipv4Addr::new(127, 4, 1, 10)
        );
    }

    #[test]
    fn refuses_ipv6_with_a_reason() {
        let e = to_loopback("fd00::11".parse().unwrap()).unwrap_err();
        assert!(e.contains("IPv6"), "{e}");
        assert!(e.contains("use an IPv4 address"), "{e}");
    }

    #[test]
    fn refuses_an_address_that_lands_on_localhost() {
        assert!(to_loopback("10.0.0.1".parse().unwrap()).is_err());
    }
}
