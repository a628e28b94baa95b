//! The address a request came from, for instance bans and per-address rate limits. Behind a
//! reverse proxy every connection comes from the proxy; when the peer is one of
//! `http.trusted_proxies`, the client is the last address the proxy appended to
//! `X-Forwarded-For` (earlier entries are whatever the client claimed, so they are not used).

use std::net::IpAddr;

use actix_web::dev::ServiceRequest;
use actix_web::HttpRequest;

use crate::config::Config;

pub fn client_address(req: &ServiceRequest, config: &Config) -> Option<IpAddr> {
    request_address(req.request(), config)
}

/// [`client_address`] of a request in a handler.
pub fn request_address(req: &HttpRequest, config: &Config) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    if !config.http.trusted_proxies.contains(&peer) {
        return Some(peer);
    }
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .next_back()
        .and_then(|last| last.trim().parse().ok());
    Some(forwarded.unwrap_or(peer))
}

/// Who a per-address limit counts `address` as. An IPv6 subscriber is handed a whole /64 (and
/// picks any address in it at will), so every address of a /64 counts as one; an IPv4 address
/// written as IPv6 (`::ffff:a.b.c.d`, from a dual-stack socket) counts as itself.
pub fn limit_key(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> String {
        text.parse()
            .map(limit_key)
            .map(|k| k.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn an_ipv6_slash_64_counts_as_one_address() {
        assert_eq!(key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::");
        assert_eq!(key("2001:db8:1:2:ffff:ffff:ffff:ffff"), "2001:db8:1:2::");
        assert_ne!(key("2001:db8:1:3::1"), key("2001:db8:1:2::1"));
        assert_eq!(key("198.51.100.7"), "198.51.100.7");
        assert_eq!(key("::ffff:198.51.100.7"), "198.51.100.7");
        assert_ne!(key("::ffff:198.51.100.7"), key("::ffff:198.51.100.8"));
    }
}
