//! Password hashes (bcrypt). Hashing is slow on purpose (a core for a good part of a second),
//! and login is open to anyone, so it runs on a few threads of its own, never on an event-loop
//! thread: at most one hash per core at once and a bounded queue behind them. Past that the
//! caller is told the server is busy (503 with `Retry-After`) rather than piling up work.

use std::sync::OnceLock;

use crate::cdn::work::{ImageWork, WorkError};

/// bcrypt reads at most 72 bytes; longer passwords are refused rather than cut short.
pub const MAX_PASSWORD_BYTES: usize = 72;

/// Hashes that may wait for a thread, per core (at cost 12, a few seconds' worth).
const WAITING_PER_CORE: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("bcrypt: {0}")]
    Bcrypt(#[from] bcrypt::BcryptError),
    #[error("password hashing: {0}")]
    Work(#[from] WorkError),
}

/// The hashing threads (one per core), started with the first hash.
fn hashers() -> &'static ImageWork {
    static HASHERS: OnceLock<ImageWork> = OnceLock::new();
    HASHERS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        ImageWork::new(cores, cores * WAITING_PER_CORE)
    })
}

pub async fn hash(password: String, cost: u32) -> Result<String, PasswordError> {
    Ok(hashers()
        .run(move || bcrypt::hash(password, cost))
        .await??)
}

/// A well-formed hash of nobody's password at `cost`. A login for an unknown account checks the
/// password against it, so it takes as long as a wrong password for a real one and the answer's
/// timing does not tell which e-mails have accounts.
pub fn decoy(cost: u32) -> String {
    format!("$2b${cost:02}$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW")
}

/// Whether `password` matches `hash`; a malformed hash never matches.
pub async fn verify(password: String, hash: String) -> Result<bool, PasswordError> {
    Ok(hashers()
        .run(move || bcrypt::verify(password, &hash).unwrap_or(false))
        .await?)
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
