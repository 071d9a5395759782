//! The client's address: the peer of the connection (`source.address`), or, behind trusted
//! proxies, the address they recorded in `x-forwarded-for` (XFF).
//!
//! The rule is Envoy's own `xff_num_trusted_hops` under `use_remote_address: true` (the
//! setup of the checked-in envoy.yaml): with N trusted hops, the client is the Nth address
//! from the right of the XFF the request arrived with; with 0, or when XFF has fewer than N
//! addresses, it is the peer.
//!
//! The filter sees XFF after Envoy appended its own entry, so it drops that last entry
//! first. Measured in Envoy 1.40: the appended entry is the peer, except for a loopback
//! peer, where Envoy appends its own local address instead, so it cannot be recognised by
//! value, only by position. (With `use_remote_address: false`, or with Envoy's own
//! `xff_num_trusted_hops`, Envoy already puts the client in `source.address`: keep this at 0.)

use std::net::IpAddr;

/// The client address of a request.
///
/// - `peer`: `source.address` (`ip:port`), the immediate downstream.
/// - `forwarded_for`: every `x-forwarded-for` value in order, as the filter sees them
///   (with Envoy's appended entry last).
/// - `trusted_hops`: how many proxies in front of Envoy (the peer counts as the first)
///   are trusted to append the address they saw.
///
/// The walk: list the XFF entries left to right and drop the last (Envoy's own). The
/// client is then the `trusted_hops`-th entry from the right (1 = the last that arrived).
/// An entry that is not an IP address, or a list shorter than `trusted_hops`, gives the
/// peer, as in Envoy: an untrusted header never yields something that is not an address.
///
/// `forwarded_for` is read only when a hop is trusted (never by default), so a caller hands
/// over the header's values unread.
pub fn client_ip<'a, S: AsRef<str> + ?Sized + 'a>(
    peer: Option<&str>,
    forwarded_for: impl IntoIterator<Item = &'a S>,
    trusted_hops: u32,
) -> Option<String> {
    let peer = peer.map(|address| strip_port(address).to_string());
    if trusted_hops == 0 {
        return peer;
    }
    let mut arrived: Vec<&str> =
        forwarded_for.into_iter().flat_map(|value| value.as_ref().split(',')).map(str::trim).collect();
    arrived.pop();
    let hops = usize::try_from(trusted_hops).unwrap_or(usize::MAX);
    let chosen = arrived.len().checked_sub(hops).and_then(|index| arrived.get(index));
    chosen.and_then(|entry| parse_entry(entry)).map(|ip| ip.to_string()).or(peer)
}

/// An XFF entry as an address: `1.2.3.4`, `2001:db8::1`, and the forms with a port
/// (`1.2.3.4:80`, `[2001:db8::1]:80`) some proxies write.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    entry.parse().ok().or_else(|| strip_port(entry).parse().ok())
}

/// `1.2.3.4:5678` → `1.2.3.4`, `[::1]:5678` → `::1`; anything else is kept as it is.
pub fn strip_port(address: &str) -> &str {
    if let Some(bracketed) = address.strip_prefix('[') {
        return bracketed.split_once(']').map_or(address, |(ip, _port)| ip);
    }
    match address.rsplit_once(':') {
        // One colon: IPv4 with a port. More colons: a bare IPv6 address, no port to strip.
        Some((ip, port)) if !ip.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => ip,
        _ => address,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PEER: Option<&str> = Some("10.0.0.2:51000");
    /// What Envoy appends for a loopback peer: its own address, not the peer's.
    const ENVOY: &str = "192.0.2.2";

    #[test]
    fn zero_trusted_hops_is_the_peer_whatever_the_header_says() {
        assert_eq!(client_ip(PEER, &["6.6.6.6, 10.0.0.2"], 0).as_deref(), Some("10.0.0.2"));
        assert_eq!(client_ip(Some("[::1]:8080"), [""; 0].iter(), 0).as_deref(), Some("::1"));
        assert_eq!(client_ip(None, &["1.1.1.1"], 0), None);
    }

    #[test]
    fn with_n_hops_the_nth_address_from_the_right_of_what_arrived() {
        // client 1.1.1.1 → proxy 2.2.2.2 (appends 1.1.1.1) → proxy 10.0.0.2 (appends
        // 2.2.2.2) → Envoy, which appends its peer 10.0.0.2.
        let xff = ["1.1.1.1, 2.2.2.2, 10.0.0.2"];
        assert_eq!(client_ip(PEER, &xff, 1).as_deref(), Some("2.2.2.2"), "one trusted hop: the peer's view");
        assert_eq!(client_ip(PEER, &xff, 2).as_deref(), Some("1.1.1.1"), "two trusted hops");
        assert_eq!(client_ip(PEER, &xff, 3).as_deref(), Some("10.0.0.2"), "more hops than entries: the peer");
    }

    #[test]
    fn envoys_entry_is_dropped_by_position_even_when_it_is_not_the_peer() {
        let loopback = Some("127.0.0.1:40000");
        let xff = [&format!("203.0.113.7,{ENVOY}") as &str];
        assert_eq!(client_ip(loopback, &xff, 1).as_deref(), Some("203.0.113.7"));
        assert_eq!(client_ip(loopback, &[ENVOY], 1).as_deref(), Some("127.0.0.1"), "nothing arrived: the peer");
    }

    #[test]
    fn several_header_values_are_one_list_in_order() {
        assert_eq!(client_ip(PEER, &["1.1.1.1", "2.2.2.2, 10.0.0.2"], 2).as_deref(), Some("1.1.1.1"));
    }

    #[test]
    fn no_header_or_a_short_one_falls_back_to_the_peer() {
        assert_eq!(client_ip(PEER, [""; 0].iter(), 1).as_deref(), Some("10.0.0.2"));
        assert_eq!(client_ip(PEER, &["10.0.0.2"], 1).as_deref(), Some("10.0.0.2"), "only Envoy's own entry");
        assert_eq!(client_ip(PEER, &["1.1.1.1, 10.0.0.2"], 2).as_deref(), Some("10.0.0.2"));
    }

    #[test]
    fn an_entry_that_is_not_an_address_gives_the_peer() {
        assert_eq!(client_ip(PEER, &["<script>, 10.0.0.2"], 1).as_deref(), Some("10.0.0.2"));
        assert_eq!(client_ip(PEER, &[" , 10.0.0.2"], 1).as_deref(), Some("10.0.0.2"), "an empty entry");
    }

    #[test]
    fn ipv6_and_entries_with_ports_are_addresses() {
        assert_eq!(client_ip(PEER, &["2001:db8::7, 10.0.0.2"], 1).as_deref(), Some("2001:db8::7"));
        assert_eq!(client_ip(PEER, &["[2001:db8::7]:443, 10.0.0.2"], 1).as_deref(), Some("2001:db8::7"));
        assert_eq!(client_ip(PEER, &["1.1.1.1:8080, 10.0.0.2"], 1).as_deref(), Some("1.1.1.1"));
    }

    #[test]
    fn strips_ports_from_ipv4_and_ipv6_peers() {
        assert_eq!(strip_port("127.0.0.1:8080"), "127.0.0.1");
        assert_eq!(strip_port("[::1]:8080"), "::1");
        assert_eq!(strip_port("[2001:db8::1]:443"), "2001:db8::1");
        assert_eq!(strip_port("2001:db8::1"), "2001:db8::1", "bare IPv6 has no port");
        assert_eq!(strip_port("10.0.0.1"), "10.0.0.1");
        assert_eq!(strip_port("/var/run/envoy.sock"), "/var/run/envoy.sock");
    }
}
