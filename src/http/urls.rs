//! The URLs the server hands out. With `http.public_url` set they are built from it; otherwise
//! from the scheme and host the request came in on, so a client that used `127.0.0.1` is never
//! sent to `localhost` (Fermi stops and asks when they differ). A cluster node with
//! `cluster.advertise_url` names its own gateway where a session should come back to.

use actix_web::HttpRequest;

use crate::config::Config;

pub struct PublicUrls {
    /// `http(s)://host[:port]`, no trailing slash.
    pub base: String,
    /// `ws(s)://host[:port]`.
    pub gateway: String,
    /// This node's own gateway, where a RESUME should land (a cluster node's
    /// `cluster.advertise_url`); otherwise `gateway`.
    pub node_gateway: String,
}

impl PublicUrls {
    pub fn of(req: &HttpRequest, config: &Config) -> Self {
        let configured = config.http.public_url.trim_end_matches('/');
        let base = if configured.is_empty() {
            let info = req.connection_info();
            format!("{}://{}", info.scheme(), info.host())
        } else {
            configured.to_string()
        };
        let gateway = match base.strip_prefix("https://") {
            Some(rest) => format!("wss://{rest}"),
            None => format!("ws://{}", base.strip_prefix("http://").unwrap_or(&base)),
        };
        let advertised = config.cluster.advertise_url.trim_end_matches('/');
        let node_gateway = match advertised {
            "" => gateway.clone(),
            advertised => advertised.to_owned(),
        };
        Self {
            base,
            gateway,
            node_gateway,
        }
    }

    pub fn api(&self) -> String {
        format!("{}/api", self.base)
    }

    pub fn api_endpoint(&self) -> String {
        format!("{}/api/v{}", self.base, super::DEFAULT_API_VERSION)
    }
}
