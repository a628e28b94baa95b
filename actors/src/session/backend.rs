//! What a gateway session needs from the server, as a trait the server implements: the session
//! actor speaks the protocol, the backend knows the accounts and builds READY.

use futures_util::future::BoxFuture;
use serde_json::Value;

/// An IDENTIFY, checked for shape, for the backend to authenticate and answer.
#[derive(Debug, Clone)]
pub struct IdentifyRequest {
    pub token: String,
    pub session_id: String,
    /// `ws://host[:port]` of the connection, for READY's `resume_gateway_url`.
    pub gateway_url: String,
    pub api_version: u8,
    pub capabilities: u64,
    pub intents: u64,
    /// Guilds with more members than this are "large" (50 to 250).
    pub large_threshold: u64,
    pub properties: Value,
    pub presence: Option<Value>,
}

/// A successful IDENTIFY: who the session belongs to, the complete `d` of READY, and the
/// dispatches that follow it (READY_SUPPLEMENTAL, and a bot's GUILD_CREATEs).
#[derive(Debug)]
pub struct Identified {
    pub user_id: i64,
    /// The login session the token belongs to: when it ends, so does the gateway session.
    pub login_id: i64,
    /// The guilds whose events the session should hear.
    pub guild_ids: Vec<i64>,
    pub ready: Value,
    pub followups: Vec<std::sync::Arc<crate::Dispatch>>,
}

#[derive(Debug, thiserror::Error)]
pub enum IdentifyError {
    /// The token is not valid (closes with 4004).
    #[error("authentication failed")]
    AuthenticationFailed,
    /// Anything else (closes with 4000); the message is logged, never sent.
    #[error("identify failed: {0}")]
    Internal(String),
}

pub trait SessionBackend: Send + Sync + 'static {
    /// Checks a token (RESUME): the user it belongs to.
    fn authenticate(&self, token: String) -> BoxFuture<'static, Result<i64, IdentifyError>>;

    fn identify(
        &self,
        request: IdentifyRequest,
    ) -> BoxFuture<'static, Result<Identified, IdentifyError>>;
}
