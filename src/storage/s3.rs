//! The S3 backend, through the `object_store` crate: AWS itself or any S3-compatible endpoint
//! (MinIO, Garage, Ceph …) named in the configuration.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{GetOptions, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

use super::{ByteStream, Key, Object, ObjectWriter, Storage, StorageError, StorageFuture};
use crate::config::StorageConfig;

pub struct S3Storage {
    store: Arc<dyn ObjectStore>,
    /// Every key is stored under this prefix (may be empty).
    prefix: String,
}

impl S3Storage {
    pub fn new(config: &StorageConfig) -> Result<Self, StorageError> {
        if config.s3_bucket.is_empty() {
            return Err(StorageError::Config("storage.s3_bucket is required".into()));
        }
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&config.s3_bucket)
            .with_region(&config.s3_region)
            .with_access_key_id(&config.s3_access_key_id)
            .with_secret_access_key(&config.s3_secret_access_key);
        if !config.s3_endpoint.is_empty() {
            builder = builder
                .with_endpoint(&config.s3_endpoint)
                .with_allow_http(config.s3_endpoint.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        Ok(Self {
            store: Arc::new(builder.build()?),
            prefix: config.s3_prefix.trim_matches('/').to_string(),
        })
    }

    fn path(&self, key: &Key) -> Path {
        if self.prefix.is_empty() {
            Path::from(key.as_str())
        } else {
            Path::from(format!("{}/{}", self.prefix, key.as_str()))
        }
    }
}

impl Storage for S3Storage {
    fn put<'a>(&'a self, key: &'a Key, bytes: Bytes) -> StorageFuture<'a, ()> {
        Box::pin(async move {
            self.store
                .put(&self.path(key), PutPayload::from_bytes(bytes))
                .await?;
            Ok(())
        })
    }

    fn get<'a>(
        &'a self,
        key: &'a Key,
        range: Option<Range<u64>>,
    ) -> StorageFuture<'a, Option<Object>> {
        Box::pin(async move {
            let path = self.path(key);
            let result = match range {
                None => match self.store.get(&path).await {
                    Ok(result) => {
                        let total = result.meta.size;
                        result.bytes().await.map(|bytes| Object { bytes, total })
                    }
                    Err(e) => Err(e),
                },
                Some(range) => match self.store.head(&path).await {
                    Ok(meta) => {
                        let range = range.start..range.end.min(meta.size);
                        self.store
                            .get_range(&path, range)
                            .await
                            .map(|bytes| Object {
                                bytes,
                                total: meta.size,
                            })
                    }
                    Err(e) => Err(e),
                },
            };
            match result {
                Ok(object) => Ok(Some(object)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
    }

    fn stream<'a>(
        &'a self,
        key: &'a Key,
        range: Range<u64>,
    ) -> StorageFuture<'a, Option<ByteStream>> {
        Box::pin(async move {
            // One ranged GET whose body is passed on as it arrives.
            let options = GetOptions::new().with_range(Some(range));
            match self.store.get_opts(&self.path(key), options).await {
                Ok(result) => Ok(Some(result.into_stream().map_err(Into::into).boxed())),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
    }

    fn size<'a>(&'a self, key: &'a Key) -> StorageFuture<'a, Option<u64>> {
        Box::pin(async move {
            match self.store.head(&self.path(key)).await {
                Ok(meta) => Ok(Some(meta.size)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
    }

    fn delete<'a>(&'a self, key: &'a Key) -> StorageFuture<'a, ()> {
        Box::pin(async move {
            match self.store.delete(&self.path(key)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(e.into()),
            }
        })
    }

    fn rename<'a>(&'a self, from: &'a Key, to: &'a Key) -> StorageFuture<'a, ()> {
        Box::pin(async move {
            self.store.rename(&self.path(from), &self.path(to)).await?;
            Ok(())
        })
    }

    fn writer<'a>(&'a self, key: &'a Key) -> StorageFuture<'a, Box<dyn ObjectWriter>> {
        let writer: Box<dyn ObjectWriter> = Box::new(S3Writer {
            store: self.store.clone(),
            path: self.path(key),
            held: Vec::new(),
            held_bytes: 0,
            upload: None,
        });
        Box::pin(async move { Ok(writer) })
    }
}

/// A file arriving piece by piece: held until it reaches one part's size, then sent as a
/// multipart upload whose parts go out as they fill. A smaller file is one plain put (S3
/// wants at least one part, and leaves no half-made upload behind this way).
struct S3Writer {
    store: Arc<dyn ObjectStore>,
    path: Path,
    held: Vec<Bytes>,
    held_bytes: usize,
    upload: Option<WriteMultipart>,
}

/// S3's smallest part but the last, and object_store's part size.
const PART_BYTES: usize = 5 << 20;
/// Parts in flight at once: what an upload holds in memory is about this many parts.
const PARTS_IN_FLIGHT: usize = 2;

impl ObjectWriter for S3Writer {
    fn write(&mut self, bytes: Bytes) -> StorageFuture<'_, ()> {
        Box::pin(async move {
            if let Some(upload) = &mut self.upload {
                upload.wait_for_capacity(PARTS_IN_FLIGHT).await?;
                upload.put(bytes);
                return Ok(());
            }
            self.held_bytes += bytes.len();
            self.held.push(bytes);
            if self.held_bytes >= PART_BYTES {
                let mut upload = WriteMultipart::new(self.store.put_multipart(&self.path).await?);
                for piece in self.held.drain(..) {
                    upload.put(piece);
                }
                self.upload = Some(upload);
            }
            Ok(())
        })
    }

    fn finish(self: Box<Self>) -> StorageFuture<'static, ()> {
        Box::pin(async move {
            match self.upload {
                Some(upload) => {
                    upload.finish().await?;
                }
                None => {
                    let payload: PutPayload = self.held.into_iter().collect();
                    self.store.put(&self.path, payload).await?;
                }
            }
            Ok(())
        })
    }

    fn abort(self: Box<Self>) -> StorageFuture<'static, ()> {
        Box::pin(async move {
            if let Some(upload) = self.upload {
                upload.abort().await?;
            }
            Ok(())
        })
    }
}
