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
