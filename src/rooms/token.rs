//! Room tokens: HS256 JWTs the server signs for a participant (`sub` = identity) of one room,
//! with their display name, metadata, grants and an expiry. The server mints them itself (for
//! an application's API key, a guest, or a logged-in user), so API secrets can be stored hashed.
//! The key is derived from the instance's signing secret: a room token is never a login token.

use hmac::{Hmac, Mac};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use spacebar_actors::rooms::Grants;

/// What a room token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomClaims {
    /// The participant's identity, unique in the room.
    #[serde(rename = "sub")]
    pub identity: String,
    #[serde(default)]
    pub name: String,
    pub room: String,
    #[serde(default)]
    pub metadata: String,
    #[serde(default)]
    pub grants: Grants,
    /// Who asked for it: an API key's id, `guest`, or `user:{id}`.
    #[serde(rename = "iss")]
    pub issuer: String,
    /// Unix seconds.
    #[serde(rename = "iat")]
    pub issued_at: i64,
    /// Unix seconds; the token is refused from then on.
    #[serde(rename = "exp")]
    pub expires_at: i64,
}

pub struct RoomTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for RoomTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RoomTokens(..)") // never print the key
    }
}

impl RoomTokens {
    /// Tokens under a key derived from the instance's signing `secret`.
    pub fn new(secret: &[u8]) -> Self {
        let key = Hmac::<Sha256>::new_from_slice(secret)
            .map(|mac| {
                mac.chain_update(b"spacebar room tokens")
                    .finalize()
                    .into_bytes()
                    .to_vec()
            })
            .unwrap_or_default();
        let mut validation = Validation::new(Algorithm::HS256);
        // An expired token is refused at once: the test of expiry is the client's clock-free one.
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        Self {
            encoding: EncodingKey::from_secret(&key),
            decoding: DecodingKey::from_secret(&key),
            validation,
        }
    }

    pub fn issue(&self, claims: &RoomClaims) -> Result<String, jsonwebtoken::errors::Error> {
        encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
    }

    /// The claims of a token signed here and not expired.
    pub fn verify(&self, token: &str) -> Option<RoomClaims> {
        decode::<RoomClaims>(token, &self.decoding, &self.validation)
            .ok()
            .map(|data| data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(expires_at: i64) -> RoomClaims {
        RoomClaims {
            identity: "ada".into(),
            name: "Ada".into(),
            room: "r1".into(),
            metadata: "{}".into(),
            grants: Grants::participant(),
            issuer: "guest".into(),
            issued_at: chrono::Utc::now().timestamp(),
            expires_at,
        }
    }

    #[test]
    fn a_token_verifies_only_under_its_key_and_until_it_expires() {
        let tokens = RoomTokens::new(b"instance secret");
        let valid = claims(chrono::Utc::now().timestamp() + 60);
        let token = tokens.issue(&valid).unwrap();
        assert_eq!(tokens.verify(&token), Some(valid));
        assert!(RoomTokens::new(b"another").verify(&token).is_none());
        let expired = tokens
            .issue(&claims(chrono::Utc::now().timestamp() - 1))
            .unwrap();
        assert!(tokens.verify(&expired).is_none());
    }

    #[test]
    fn a_login_token_is_not_a_room_token() {
        let login = crate::credentials::token::TokenSigner::new(b"instance secret")
            .issue(1, 2)
            .unwrap();
        assert!(RoomTokens::new(b"instance secret").verify(&login).is_none());
    }
}
