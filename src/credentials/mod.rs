//! Credentials: signed login tokens and bcrypt password hashes, and turning a presented
//! token into the account behind it (for REST and the gateway alike).

pub mod password;
pub mod token;

use crate::db::{users::User, Connection};
pub use token::TokenSigner;

/// Who presented a token: the account and the login session the token belongs to.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: User,
    pub session_id: i64,
}

/// Checks a token as clients send it (`Bot `/`Bearer ` prefixes or none) against its signature
/// and against the login sessions in the database; `None` when it is not valid (any more).
pub async fn authenticate(
    conn: &mut Connection,
    signer: &TokenSigner,
    presented: &str,
) -> diesel::QueryResult<Option<Session>> {
    let token = presented.trim();
    let token = token
        .strip_prefix("Bot ")
        .or_else(|| token.strip_prefix("Bearer "))
        .unwrap_or(token);
    let Some(claims) = signer.verify(token) else {
        return Ok(None);
    };
    let user = User::find_by_session(conn, claims.user_id, claims.session_id).await?;
    Ok(user.filter(|user| !user.disabled).map(|user| Session {
        user,
        session_id: claims.session_id,
    }))
}
