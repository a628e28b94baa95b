//! Password hashes (bcrypt). Hashing is slow on purpose, so both functions run on the blocking
//! thread pool, never on an event-loop thread.

/// bcrypt reads at most 72 bytes; longer passwords are refused rather than cut short.
pub const MAX_PASSWORD_BYTES: usize = 72;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("bcrypt: {0}")]
    Bcrypt(#[from] bcrypt::BcryptError),
    #[error("hashing task: {0}")]
    Join(#[from] tokio::task::JoinError),
}

pub async fn hash(password: String, cost: u32) -> Result<String, PasswordError> {
    Ok(tokio::task::spawn_blocking(move || bcrypt::hash(password, cost)).await??)
}

/// Whether `password` matches `hash`; a malformed hash never matches.
pub async fn verify(password: String, hash: String) -> Result<bool, PasswordError> {
    Ok(
        tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
            .await?,
    )
}
