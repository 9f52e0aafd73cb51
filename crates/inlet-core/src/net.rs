//! Addresses: CIDR blocks, and finding the client behind trusted proxies.
//!
//! The client is the TCP peer, unless the peer is a trusted proxy; then it is
//! the right-most address in `X-Forwarded-For` (or `Forwarded`) that is not
//! itself a trusted proxy. A header that is missing or does not parse leaves
//! the answer at the last trusted hop, so a request never gets an address it
//! did not prove (fail closed).

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An IPv4 or IPv6 block; a bare address is a block of one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr(IpNet);

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{value:?} is not a valid CIDR block or IP address")]
pub struct InvalidCidr {
    pub value: String,
}

impl Cidr {
    pub fn parse(text: &str) -> Result<Self, InvalidCidr> {
        let text = text.trim();
        let net = IpNet::from_str(text)
            .or_else(|_| IpAddr::from_str(text).map(IpNet::from))
            .map_err(|_| InvalidCidr {
                value: text.chars().take(100).collect(),
            })?;
        // Stored in canonical form: 10.1.2.3/8 is 10.0.0.0/8.
        Ok(Self(net.trunc()))
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&canonical(ip))
    }
}

/// IPv4 clients on a dual-stack socket appear as `::ffff:a.b.c.d`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Cidr::parse(&text).map_err(serde::de::Error::custom)
    }
}

pub fn any_contains(blocks: &[Cidr], ip: IpAddr) -> bool {
    blocks.iter().any(|b| b.contains(ip))
}

/// Proxies whose forwarding headers we believe.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    pub fn new(blocks: Vec<Cidr>) -> Self {
        Self(blocks)
    }

    /// Comma-separated CIDRs, as `INLET_TRUSTED_PROXIES` gives them.
    pub fn parse_list(text: &str) -> Result<Self, InvalidCidr> {
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Cidr::parse)
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `x_forwarded_for` and `forwarded` are every value of those headers, in order.
    pub fn client_ip(&self, peer: IpAddr, x_forwarded_for: &[&str], forwarded: &[&str]) -> IpAddr {
        let peer = canonical(peer);
        if !any_contains(&self.0, peer) {
            return peer;
        }
        let hops: Option<Vec<IpAddr>> = if !x_forwarded_for.is_empty() {
            x_forwarded_for
                .iter()
                .flat_map(|v| v.split(','))
                .map(|h| IpAddr::from_str(h.trim()).ok())
                .collect()
        } else {
            forwarded.iter().flat_map(|v| v.split(',')).map(forwarded_for).collect()
        };
        let Some(hops) = hops else {
            return peer;
        };
        let mut client = peer;
        for hop in hops.into_iter().rev().map(canonical) {
            client = hop;
            if !any_contains(&self.0, hop) {
                break;
            }
        }
        client
    }
}

/// The `for=` address of one `Forwarded` element (RFC 7239).
fn forwarded_for(element: &str) -> Option<IpAddr> {
    let value = element.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        name.trim().eq_ignore_ascii_case("for").then_some(value.trim())
    })?;
    let value = value.trim_matches('"');
    if let Some(rest) = value.strip_prefix('[') {
        return IpAddr::from_str(rest.split(']').next()?).ok();
    }
    let host = match value.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => value,
    };
    IpAddr::from_str(host).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidrs_parse_and_match_v4_and_v6() {
        let v4 = Cidr::parse("192.30.252.0/22").unwrap();
        assert!(v4.contains(ip("192.30.255.1")));
        assert!(!v4.contains(ip("192.30.251.255")));
        assert!(v4.contains(ip("::ffff:192.30.253.7")), "mapped IPv4");
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8:1::5")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert_eq!(Cidr::parse("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(Cidr::parse("127.0.0.1").unwrap().to_string(), "127.0.0.1/32");
        for bad in ["", "10.0.0.300/8", "10.0.0.0/33", "nope", "::/129"] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn untrusted_peers_are_the_client_whatever_they_claim() {
        let proxies = TrustedProxies::parse_list("10.0.0.0/8").unwrap();
        assert_eq!(
            proxies.client_ip(ip("203.0.113.9"), &["1.2.3.4"], &[]),
            ip("203.0.113.9")
        );
        assert_eq!(
            TrustedProxies::default().client_ip(ip("203.0.113.9"), &["1.2.3.4"], &[]),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn trusted_proxies_yield_the_rightmost_untrusted_hop() {
        let proxies = TrustedProxies::parse_list("10.0.0.0/8, 192.168.0.0/16").unwrap();
        let peer = ip("10.0.0.1");
        assert_eq!(
            proxies.client_ip(peer, &["6.6.6.6, 1.2.3.4, 192.168.1.1"], &[]),
            ip("1.2.3.4")
        );
        assert_eq!(proxies.client_ip(peer, &["6.6.6.6", "1.2.3.4"], &[]), ip("1.2.3.4"));
        assert_eq!(proxies.client_ip(peer, &[], &[]), peer, "no header: the proxy itself");
        assert_eq!(
            proxies.client_ip(peer, &["garbage, 1.2.3.4"], &[]),
            peer,
            "unparsable: fail closed"
        );
        assert_eq!(
            proxies.client_ip(peer, &["10.9.9.9"], &[]),
            ip("10.9.9.9"),
            "all trusted: the last one"
        );
        assert_eq!(
            proxies.client_ip(peer, &[], &["for=6.6.6.6, for=\"[2001:db8::1]:443\";proto=https"]),
            ip("2001:db8::1")
        );
        assert_eq!(proxies.client_ip(peer, &[], &["for=1.2.3.4:8080"]), ip("1.2.3.4"));
    }

    proptest! {
        #[test]
        fn header_parsing_never_panics(xff in ".{0,200}", fwd in ".{0,200}") {
            let proxies = TrustedProxies::parse_list("0.0.0.0/0,::/0").unwrap();
            let _ = proxies.client_ip(ip("10.0.0.1"), &[&xff], &[]);
            let _ = proxies.client_ip(ip("10.0.0.1"), &[], &[&fwd]);
            let _ = Cidr::parse(&xff);
        }
    }
}
