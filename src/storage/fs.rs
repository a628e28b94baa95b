//! The filesystem backend: one file per key under a root directory. Writes go to a temporary
//! file that is renamed into place, so a reader sees the whole object or none.

use std::fs::File;
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::StreamExt;

use super::{ByteStream, Key, Object, ObjectWriter, Storage, StorageError, StorageFuture};

pub struct FsStorage {
    root: PathBuf,
}

impl FsStorage {
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    fn path(&self, key: &Key) -> PathBuf {
        self.root.join(key.as_str())
    }
}

/// Runs blocking file work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, StorageError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => Ok(result?),
        Err(join) => Err(StorageError::Io(std::io::Error::other(join))),
    }
}

/// A fresh temporary path beside `path` (its directory created), to rename into place.
fn temporary_beside(path: &Path) -> std::io::Result<PathBuf> {
    let parent = path.parent().ok_or(ErrorKind::InvalidInput)?;
    std::fs::create_dir_all(parent)?;
    Ok(parent.join(format!(".tmp-{:016x}", rand::random::<u64>())))
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temporary = temporary_beside(path)?;
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temporary);
    })
}

fn read(path: &Path, range: Option<Range<u64>>) -> std::io::Result<Option<Object>> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let total = file.metadata()?.len();
    let bytes = match range {
        None => {
            let mut buffer = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
            file.read_to_end(&mut buffer)?;
            buffer
        }
        Some(range) => {
            let end = range.end.min(total);
            let length = usize::try_from(end.saturating_sub(range.start)).unwrap_or(0);
            let mut buffer = vec![0; length];
            file.seek(SeekFrom::Start(range.start))?;
            file.read_exact(&mut buffer)?;
            buffer
        }
    };
    Ok(Some(Object {
        bytes: Bytes::from(bytes),
        total,
    }))
}

/// Bytes read at a time when streaming a file.
const PIECE_BYTES: usize = 64 << 10;

/// The file at `path` positioned at `start`, or `None` when there is none.
fn open_at(path: &Path, start: u64) -> std::io::Result<Option<File>> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    file.seek(SeekFrom::Start(start))?;
    Ok(Some(file))
}

/// The next `left` bytes of `file`, [`PIECE_BYTES`] at a time, each read when the last is
/// taken.
fn pieces(file: File, left: u64) -> ByteStream {
    futures_util::stream::try_unfold((file, left), |(mut file, left)| async move {
        if left == 0 {
            return Ok(None);
        }
        let want = usize::try_from(left).map_or(PIECE_BYTES, |left| left.min(PIECE_BYTES));
        let (file, piece) = blocking(move || {
            let mut buffer = vec![0; want];
            let read = file.read(&mut buffer)?;
            buffer.truncate(read);
            Ok((file, buffer))
        })
        .await?;
        if piece.is_empty() {
            // The file became shorter than its length said.
            return Err(StorageError::Io(ErrorKind::UnexpectedEof.into()));
        }
        let left = left.saturating_sub(piece.len() as u64);
        Ok(Some((Bytes::from(piece), (file, left))))
    })
    .boxed()
}

/// Removes now-empty directories above `path`, up to (not including) `root`.
fn prune(root: &Path, path: &Path) {
    let mut dir = path.parent();
    while let Some(current) = dir {
        if current == root || !current.starts_with(root) || std::fs::remove_dir(current).is_err() {
            break;
        }
        dir = current.parent();
    }
}

/// A file written chunk by chunk into a temporary file, renamed into place at the end.
struct FsWriter {
    /// `None` once a write failed.
    file: Option<File>,
    temporary: PathBuf,
    path: PathBuf,
}

impl ObjectWriter for FsWriter {
    fn write(&mut self, bytes: Bytes) -> StorageFuture<'_, ()> {
        let file = self.file.take();
        Box::pin(async move {
            let mut file = file.ok_or_else(|| std::io::Error::other("an earlier write failed"))?;
            let file = blocking(move || file.write_all(&bytes).map(|()| file)).await?;
            self.file = Some(file);
            Ok(())
        })
    }

    fn finish(mut self: Box<Self>) -> StorageFuture<'static, ()> {
        Box::pin(blocking(move || {
            drop(self.file.take().ok_or(ErrorKind::BrokenPipe)?);
            std::fs::rename(&self.temporary, &self.path)
        }))
    }

    fn abort(self: Box<Self>) -> StorageFuture<'static, ()> {
        // Dropping removes the temporary file.
        Box::pin(async move {
            drop(self);
            Ok(())
        })
    }
}

impl Drop for FsWriter {
    fn drop(&mut self) {
        // After a finish the temporary file has become the object and is gone already.
        let _ = std::fs::remove_file(&self.temporary);
    }
}

impl Storage for FsStorage {
    fn put<'a>(&'a self, key: &'a Key, bytes: Bytes) -> StorageFuture<'a, ()> {
        let path = self.path(key);
        Box::pin(blocking(move || write_atomically(&path, &bytes)))
    }

    fn get<'a>(
        &'a self,
        key: &'a Key,
        range: Option<Range<u64>>,
    ) -> StorageFuture<'a, Option<Object>> {
        let path = self.path(key);
        Box::pin(blocking(move || read(&path, range)))
    }

    fn stream<'a>(
        &'a self,
        key: &'a Key,
        range: Range<u64>,
    ) -> StorageFuture<'a, Option<ByteStream>> {
        let path = self.path(key);
        Box::pin(async move {
            let file = blocking(move || open_at(&path, range.start)).await?;
            Ok(file.map(|file| pieces(file, range.end.saturating_sub(range.start))))
        })
    }

    fn size<'a>(&'a self, key: &'a Key) -> StorageFuture<'a, Option<u64>> {
        let path = self.path(key);
        Box::pin(blocking(move || match std::fs::metadata(&path) {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }))
    }

    fn delete<'a>(&'a self, key: &'a Key) -> StorageFuture<'a, ()> {
        let path = self.path(key);
        let root = self.root.clone();
        Box::pin(blocking(move || match std::fs::remove_file(&path) {
            Ok(()) => {
                prune(&root, &path);
                Ok(())
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }))
    }

    fn rename<'a>(&'a self, from: &'a Key, to: &'a Key) -> StorageFuture<'a, ()> {
        let (from, to) = (self.path(from), self.path(to));
        let root = self.root.clone();
        Box::pin(blocking(move || {
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::rename(&from, &to)?;
            prune(&root, &from);
            Ok(())
        }))
    }

    fn writer<'a>(&'a self, key: &'a Key) -> StorageFuture<'a, Box<dyn ObjectWriter>> {
        let path = self.path(key);
        Box::pin(async move {
            let (file, temporary) = blocking({
                let path = path.clone();
                move || {
                    let temporary = temporary_beside(&path)?;
                    Ok((File::create(&temporary)?, temporary))
                }
            })
            .await?;
            let writer: Box<dyn ObjectWriter> = Box::new(FsWriter {
                file: Some(file),
                temporary,
                path,
            });
            Ok(writer)
        })
    }
}
