//! Login tokens: HS256-signed JWTs naming the user and the login session. A token is valid while
//! its signature checks and its login session row exists, so logout and password changes end
//! tokens at once, without a clock in the comparison.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// The user's id, as a string like every snowflake on the wire.
    id: String,
    /// The login session's id.
    sid: String,
    iat: i64,
}

/// What a valid token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenClaims {
    pub user_id: i64,
    pub session_id: i64,
}

pub struct TokenSigner {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSigner(..)") // never print the key
    }
}

impl TokenSigner {
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // Discord tokens do not expire; logout and password changes end them instead.
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    pub fn issue(
        &self,
        user_id: i64,
        session_id: i64,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let claims = Claims {
            id: user_id.to_string(),
            sid: session_id.to_string(),
            iat: chrono::Utc::now().timestamp(),
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// A stable, public id for the instance, a snowflake as Spacebar's `instanceId` is (clients
    /// parse it as one): 63 bits of an HMAC of a constant under the signing key, so it changes
    /// with the key and reveals nothing about it.
    pub fn instance_id(&self) -> String {
        let mac =
            jsonwebtoken::crypto::sign(b"spacebar instance id", &self.encoding, Algorithm::HS256)
                .unwrap_or_default();
        let mac = URL_SAFE_NO_PAD.decode(mac).unwrap_or_default();
        let mut first = [0u8; 8];
        for (slot, byte) in first.iter_mut().zip(&mac) {
            *slot = *byte;
        }
        (u64::from_be_bytes(first) >> 1).to_string()
    }

    pub fn verify(&self, token: &str) -> Option<TokenClaims> {
        let claims = decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()?
            .claims;
        Some(TokenClaims {
            user_id: claims.id.parse().ok()?,
            session_id: claims.sid.parse().ok()?,
        })
    }
}

/// The signing secret: the configured one, else the one kept in `<data_dir>/jwt_secret`,
/// created (random, readable by the owner only) on first start.
pub fn load_secret(configured: &str, data_dir: &Path) -> std::io::Result<Vec<u8>> {
    load_named_secret(configured, data_dir, "jwt_secret")
}

/// A secret: the configured one, else the one kept in `<data_dir>/<file_name>`, created
/// (random, readable by the owner only) the first time.
pub fn load_named_secret(
    configured: &str,
    data_dir: &Path,
    file_name: &str,
) -> std::io::Result<Vec<u8>> {
    if !configured.is_empty() {
        return Ok(configured.as_bytes().to_vec());
    }
    let path = data_dir.join(file_name);
    match fs::read(&path) {
        Ok(secret) if !secret.is_empty() => return Ok(secret),
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    fs::create_dir_all(data_dir)?;
    let mut bytes = [0u8; 48];
    rand::rng().fill_bytes(&mut bytes);
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    file.write_all(secret.as_bytes())?;
    Ok(secret.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_under_their_own_key() {
        let signer = TokenSigner::new(b"one key");
        let token = signer.issue(42, 7).unwrap();
        let claims = signer.verify(&token).unwrap();
        assert_eq!((claims.user_id, claims.session_id), (42, 7));
        assert!(TokenSigner::new(b"another key").verify(&token).is_none());
        assert!(signer.verify("not.a.token").is_none());
        let mut tampered = token.clone();
        tampered.insert(tampered.len() - 2, 'x');
        assert!(signer.verify(&tampered).is_none());
    }
}
