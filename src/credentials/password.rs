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

/// A well-formed hash of nobody's password at `cost`. A login for an unknown account checks the
/// password against it, so it takes as long as a wrong password for a real one and the answer's
/// timing does not tell which e-mails have accounts.
pub fn decoy(cost: u32) -> String {
    format!("$2b${cost:02}$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW")
}

/// Whether `password` matches `hash`; a malformed hash never matches.
pub async fn verify(password: String, hash: String) -> Result<bool, PasswordError> {
    Ok(
        tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
            .await?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_decoy_is_checked_like_a_real_hash() {
        // Well-formed (bcrypt does the whole work for it) and matching nothing.
        assert_eq!(bcrypt::verify("", &decoy(4)).ok(), Some(false));
        assert_eq!(bcrypt::verify("hunter2", &decoy(5)).ok(), Some(false));
    }
}
