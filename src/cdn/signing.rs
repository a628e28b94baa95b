//! Signed attachment URLs, as Discord makes them: `?ex=<expiry>&is=<issued>&hm=<hmac>`, the
//! times as hex Unix seconds and the HMAC-SHA256 of the path and both times under the
//! instance's key. Off by default; when on, an attachment URL without a valid, unexpired
//! signature is not served.

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

pub struct Signer {
    key: Vec<u8>,
    /// `None`: URLs are handed out and served unsigned.
    lifetime: Option<u64>,
}

impl Signer {
    pub fn new(key: Vec<u8>, enabled: bool, lifetime_secs: u64) -> Self {
        Self {
            key,
            lifetime: enabled.then_some(lifetime_secs),
        }
    }

    pub fn enabled(&self) -> bool {
        self.lifetime.is_some()
    }

    fn mac(&self, path: &str, expires: u64, issued: u64) -> Option<HmacSha256> {
        let mut mac = HmacSha256::new_from_slice(&self.key).ok()?;
        mac.update(path.as_bytes());
        mac.update(format!(":{expires:x}:{issued:x}").as_bytes());
        Some(mac)
    }

    /// `url` (any query it had dropped) with a fresh signature for its path, when signing is on;
    /// else `url` as it is.
    pub fn sign_url(&self, url: &str) -> String {
        let Some(lifetime) = self.lifetime else {
            return url.to_string();
        };
        let bare = url.split(['?', '#']).next().unwrap_or(url);
        let Some(path) = attachment_path(bare) else {
            return url.to_string();
        };
        // Issued at the start of the current quarter of a lifetime, so the same file keeps one URL
        // for a while: browsers cache by URL, and a message read twice compares equal. Every URL
        // handed out still works for at least three quarters of the lifetime.
        let now = now();
        let issued = now - now % (lifetime / 4).max(1);
        let expires = issued.saturating_add(lifetime);
        match self.mac(path, expires, issued) {
            Some(mac) => format!(
                "{bare}?ex={expires:x}&is={issued:x}&hm={}&",
                hex(&mac.finalize().into_bytes())
            ),
            None => url.to_string(),
        }
    }

    /// Whether a request for `path` may be served: always when signing is off; else only with
    /// a valid signature that has not expired.
    pub fn allows(&self, path: &str, ex: Option<&str>, is: Option<&str>, hm: Option<&str>) -> bool {
        if self.lifetime.is_none() {
            return true;
        }
        let (Some(ex), Some(is), Some(hm)) = (ex, is, hm) else {
            return false;
        };
        let (Ok(expires), Ok(issued)) = (u64::from_str_radix(ex, 16), u64::from_str_radix(is, 16))
        else {
            return false;
        };
        let Some(given) = unhex(hm) else {
            return false;
        };
        if expires <= now() {
            return false;
        }
        self.mac(path, expires, issued)
            .is_some_and(|mac| mac.verify_slice(&given).is_ok())
    }
}

/// The `/attachments/…` path of an attachment URL.
pub fn attachment_path(url: &str) -> Option<&str> {
    let start = url.find("/attachments/")?;
    Some(&url[start..])
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query<'a>(url: &'a str, name: &str) -> Option<&'a str> {
        url.split(['?', '&'])
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
    }

    #[test]
    fn a_file_keeps_one_url_within_a_quarter_of_the_lifetime() {
        let signer = Signer::new(b"key".to_vec(), true, 86_400);
        let url = "http://h/attachments/1/2/a.png";
        let first = signer.sign_url(url);
        let issued = u64::from_str_radix(query(&first, "is").unwrap_or(""), 16).unwrap_or(0);
        assert_eq!(issued % 21_600, 0, "issued at a quarter-day boundary");
        assert!(issued <= now() && now() < issued + 21_600);
        // Only a quarter-day boundary passing in between could make these differ.
        assert!(signer.sign_url(url) == first || now().is_multiple_of(21_600));
    }

    #[test]
    fn signatures_cover_the_path_and_expire() {
        let signer = Signer::new(b"key".to_vec(), true, 60);
        let url = signer.sign_url("http://h/attachments/1/2/a.png");
        let path = "/attachments/1/2/a.png";
        let (ex, is, hm) = (query(&url, "ex"), query(&url, "is"), query(&url, "hm"));
        assert!(signer.allows(path, ex, is, hm));
        assert!(!signer.allows("/attachments/1/3/a.png", ex, is, hm));
        assert!(!signer.allows(path, None, is, hm));
        assert!(!Signer::new(b"other".to_vec(), true, 60).allows(path, ex, is, hm));
        let expired = Signer::new(b"key".to_vec(), true, 0);
        let url = expired.sign_url("http://h/attachments/1/2/a.png");
        assert!(!expired.allows(
            path,
            query(&url, "ex"),
            query(&url, "is"),
            query(&url, "hm")
        ));
        let off = Signer::new(b"key".to_vec(), false, 60);
        assert_eq!(
            off.sign_url("http://h/attachments/1/2/a.png"),
            "http://h/attachments/1/2/a.png"
        );
        assert!(off.allows(path, None, None, None));
    }
}
