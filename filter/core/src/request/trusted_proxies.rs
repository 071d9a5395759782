//! The proxies allowed to tell Envoy who the user is (`identity.trustedProxies`): a list of
//! CIDRs matched against the request's immediate peer, `source.address`. Identity headers
//! count only when the peer is one of them; from anyone else they are a claim, not an
//! identity.
//!
//! Why the peer and not the client address: `x-forwarded-for` is written by whoever sent the
//! request, so an address taken from it (see [`crate::request::client_ip`]) is only as good as the
//! hops in front; the peer is the one address the client cannot choose. (With Envoy's own
//! `xff_num_trusted_hops` set, Envoy puts an address from `x-forwarded-for` into
//! `source.address`; keep that at 0, as the shipped envoy.yaml does, when you rely on this.)

use std::fmt;
use std::net::IpAddr;

use serde::Deserialize;

use crate::request::client_ip::strip_port;

/// One network: an address and how many leading bits must match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Cidr {
    network: IpAddr,
    prefix_len: u8,
}

impl Cidr {
    /// Whether `ip` is in this network. An IPv4 address and its IPv4-mapped IPv6 form
    /// (`::ffff:10.0.0.1`) are one address, whichever way the network or the peer is written.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match self.network {
            IpAddr::V4(network) => {
                let IpAddr::V4(ip) = ip.to_canonical() else { return false };
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix_len)).unwrap_or(0);
                u32::from(network) & mask == u32::from(ip) & mask
            }
            IpAddr::V6(network) => {
                let ip = match ip {
                    IpAddr::V4(ip) => ip.to_ipv6_mapped(),
                    IpAddr::V6(ip) => ip,
                };
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix_len)).unwrap_or(0);
                u128::from(network) & mask == u128::from(ip) & mask
            }
        }
    }
}

impl TryFrom<String> for Cidr {
    type Error = String;

    /// `10.0.0.0/8`, `2001:db8::/32`, or a single address (`10.0.0.7` is `10.0.0.7/32`).
    fn try_from(text: String) -> Result<Self, Self::Error> {
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let not_cidr = |why: &str| format!("trustedProxies entry `{text}` is not a CIDR: {why}");
        let network = address
            .parse::<IpAddr>()
            .map_err(|_| not_cidr("expected an IP address, e.g. `10.0.0.0/8` or `2001:db8::/32`"))?;
        let max_len = if network.is_ipv4() { 32 } else { 128 };
        let prefix_len = match prefix {
            None => max_len,
            Some(prefix) => prefix
                .parse::<u8>()
                .ok()
                .filter(|len| *len <= max_len)
                .ok_or_else(|| not_cidr(&format!("the prefix length must be a number from 0 to {max_len}")))?,
        };
        Ok(Cidr { network, prefix_len })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

/// Whether the peer `source.address` (`ip:port`, `[ipv6]:port`) is in one of `proxies`.
/// No peer, or one that is not an IP address (a unix socket), is never trusted.
pub fn peer_is_trusted(peer: Option<&str>, proxies: &[Cidr]) -> bool {
    if proxies.is_empty() {
        return false;
    }
    let Some(ip) = peer.and_then(|peer| strip_port(peer).parse::<IpAddr>().ok()) else { return false };
    proxies.iter().any(|cidr| cidr.contains(ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(text: &str) -> Cidr {
        Cidr::try_from(text.to_string()).unwrap_or_else(|err| panic!("{text}: {err}"))
    }

    #[test]
    fn a_peer_inside_a_network_is_trusted_and_one_outside_is_not() {
        let proxies = [cidr("10.0.0.0/8"), cidr("2001:db8::/32")];
        assert!(peer_is_trusted(Some("10.1.2.3:5000"), &proxies), "inside 10/8");
        assert!(!peer_is_trusted(Some("11.0.0.1:5000"), &proxies), "outside 10/8");
        assert!(peer_is_trusted(Some("[2001:db8::7]:443"), &proxies), "inside 2001:db8::/32");
        assert!(!peer_is_trusted(Some("[2001:db9::7]:443"), &proxies), "outside 2001:db8::/32");
    }

    #[test]
    fn the_edges_of_a_network_are_exact() {
        let proxies = [cidr("192.168.4.0/23")];
        assert!(peer_is_trusted(Some("192.168.4.0:1"), &proxies));
        assert!(peer_is_trusted(Some("192.168.5.255:1"), &proxies));
        assert!(!peer_is_trusted(Some("192.168.6.0:1"), &proxies));
        assert!(!peer_is_trusted(Some("192.168.3.255:1"), &proxies));
    }

    #[test]
    fn a_single_address_is_a_host_network_and_zero_bits_match_all_of_a_family() {
        assert!(peer_is_trusted(Some("127.0.0.1:9"), &[cidr("127.0.0.1")]));
        assert!(!peer_is_trusted(Some("127.0.0.2:9"), &[cidr("127.0.0.1")]));
        assert!(peer_is_trusted(Some("8.8.8.8:9"), &[cidr("0.0.0.0/0")]));
        assert!(!peer_is_trusted(Some("[::1]:9"), &[cidr("0.0.0.0/0")]), "an IPv4 network never matches IPv6");
    }

    #[test]
    fn ipv4_written_as_ipv6_is_ipv4() {
        assert!(peer_is_trusted(Some("[::ffff:10.0.0.5]:80"), &[cidr("10.0.0.0/24")]));
        assert!(peer_is_trusted(Some("10.0.0.5:80"), &[cidr("::ffff:10.0.0.0/120")]), "the network too");
    }

    #[test]
    fn no_proxies_no_peer_or_a_socket_peer_is_never_trusted() {
        assert!(!peer_is_trusted(Some("10.0.0.1:1"), &[]), "the default: none");
        assert!(!peer_is_trusted(None, &[cidr("0.0.0.0/0")]));
        assert!(!peer_is_trusted(Some("/var/run/envoy.sock"), &[cidr("0.0.0.0/0")]));
    }

    #[test]
    fn a_bad_entry_says_what_a_cidr_looks_like() {
        for bad in ["10.0.0.0/33", "::/129", "10.0.0/8", "proxy.internal", "10.0.0.0/", "10.0.0.0/-1", ""] {
            let err = Cidr::try_from(bad.to_string()).expect_err(bad);
            assert!(err.contains("is not a CIDR"), "{bad}: {err}");
        }
        assert_eq!(cidr(" 10.0.0.0/8 ").to_string(), "10.0.0.0/8");
    }
}
