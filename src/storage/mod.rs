//! Where uploaded files live: one [`Storage`] trait with a filesystem backend (the default,
//! under the data directory) and an S3 backend (any S3-compatible endpoint).
//!
//! Objects are named by [`Key`]s, which can only be built from checked parts (snowflakes,
//! hex hashes, random tokens, cleaned file names), so no key reaches outside its area or
//! names another object: user input never becomes a path.

mod fs;
mod key;
mod s3;

use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;

pub use fs::FsStorage;
pub use key::{clean_filename, is_hash, ImageArea, Key};
pub use s3::S3Storage;

use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("object store: {0}")]
    ObjectStore(#[from] object_store::Error),
    #[error("storage configuration: {0}")]
    Config(String),
}

/// An object read back: the bytes asked for and the object's whole length.
#[derive(Debug, Clone)]
pub struct Object {
    pub bytes: Bytes,
    pub total: u64,
}

/// An object's bytes arriving piece by piece.
pub type ByteStream = futures_util::stream::BoxStream<'static, Result<Bytes, StorageError>>;

pub type StorageFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StorageError>> + Send + 'a>>;

/// A place to keep objects by key. Writes are whole (a reader never sees half an object).
pub trait Storage: Send + Sync {
    /// Stores `bytes` under `key`, replacing nothing but an object of that very key.
    fn put<'a>(&'a self, key: &'a Key, bytes: Bytes) -> StorageFuture<'a, ()>;
    /// The object (or the byte `range` of it); `None` when there is none.
    fn get<'a>(
        &'a self,
        key: &'a Key,
        range: Option<Range<u64>>,
    ) -> StorageFuture<'a, Option<Object>>;
    /// The object's bytes in `range` (within its length) as a stream read a piece at a time,
    /// so a client that reads slowly holds one piece in memory, not the object; `None` when
    /// there is none.
    fn stream<'a>(
        &'a self,
        key: &'a Key,
        range: Range<u64>,
    ) -> StorageFuture<'a, Option<ByteStream>>;
    /// The object's length, or `None`.
    fn size<'a>(&'a self, key: &'a Key) -> StorageFuture<'a, Option<u64>>;
    /// Removes the object; a missing one is no error.
    fn delete<'a>(&'a self, key: &'a Key) -> StorageFuture<'a, ()>;
    /// Moves an object to a new key (an upload becoming an attachment).
    fn rename<'a>(&'a self, from: &'a Key, to: &'a Key) -> StorageFuture<'a, ()>;
    /// Starts writing `key` piece by piece, for a file arriving from a client: it is never
    /// held in memory whole.
    fn writer<'a>(&'a self, key: &'a Key) -> StorageFuture<'a, Box<dyn ObjectWriter>>;
}

/// An object being written piece by piece: nothing appears under its key before
/// [`finish`](ObjectWriter::finish), and [`abort`](ObjectWriter::abort) leaves nothing behind.
pub trait ObjectWriter: Send {
    fn write(&mut self, bytes: Bytes) -> StorageFuture<'_, ()>;
    fn finish(self: Box<Self>) -> StorageFuture<'static, ()>;
    fn abort(self: Box<Self>) -> StorageFuture<'static, ()>;
}

/// The backend the configuration names.
pub fn from_config(config: &Config) -> Result<Arc<dyn Storage>, StorageError> {
    let storage = &config.storage;
    match storage.backend.as_str() {
        "fs" | "" => Ok(Arc::new(FsStorage::new(
            config.storage.data_dir.join("files"),
        ))),
        "s3" => Ok(Arc::new(S3Storage::new(storage)?)),
        other => Err(StorageError::Config(format!(
            "storage.backend: unknown backend {other:?} (fs or s3)"
        ))),
    }
}
