//! What the layers below the protocols (the CDN, storage, the database's users outside a
//! route) fail with, said without HTTP: each surface maps it to its own answer (the REST API's
//! in `http::error`, `impl From<Error> for ApiError`), so the same failure reads the same on
//! every protocol and no module below `http` speaks in status codes.

use crate::cdn::work::WorkError;
use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A query failed (whether the database went away is for the surface to tell).
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
    /// No pooled connection in time, or none could be made.
    #[error("database pool: {0}")]
    Pool(#[from] crate::db::PoolError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The image workers: busy (the caller may come back shortly), or a job panicked.
    #[error("image work: {0}")]
    Work(#[from] WorkError),
    /// `field` does not hold an image this server takes (not a data URL, not decodable, or
    /// past the pixel budget).
    #[error("{field}: invalid image data")]
    InvalidImage { field: String },
    /// `field`'s file is over `max_bytes`.
    #[error("{field}: larger than {max_bytes} bytes")]
    FileTooLarge { field: String, max_bytes: usize },
    /// An actor did not answer (it stopped, or its mailbox is gone).
    #[error("actor: {0}")]
    Actor(#[from] actix::MailboxError),
    /// Redis did not answer (cluster mode: what the nodes share there).
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// A streamed body went past its limit, or broke off.
    #[error("body too large")]
    BodyTooLarge,
}

impl Error {
    pub fn invalid_image(field: &str) -> Self {
        Self::InvalidImage {
            field: field.to_string(),
        }
    }

    pub fn file_too_large(field: &str, max_bytes: usize) -> Self {
        Self::FileTooLarge {
            field: field.to_string(),
            max_bytes,
        }
    }
}
