//! The S3 backend, through the `object_store` crate: AWS itself or any S3-compatible endpoint
//! (MinIO, Garage, Ceph …) named in the configuration.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

use super::{Key, Object, ObjectWriter, Storage, StorageError, StorageFuture};
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
        Box::pin(async move {
            let upload = self.store.put_multipart(&self.path(key)).await?;
            let writer: Box<dyn ObjectWriter> = Box::new(S3Writer(WriteMultipart::new(upload)));
            Ok(writer)
        })
    }
}

/// A multipart upload: parts of a few MiB go out as they fill.
struct S3Writer(WriteMultipart);

/// Parts in flight at once: what an upload holds in memory is this many parts.
const PARTS_IN_FLIGHT: usize = 2;

impl ObjectWriter for S3Writer {
    fn write(&mut self, bytes: Bytes) -> StorageFuture<'_, ()> {
        Box::pin(async move {
            self.0.wait_for_capacity(PARTS_IN_FLIGHT).await?;
            self.0.put(bytes);
            Ok(())
        })
    }

    fn finish(self: Box<Self>) -> StorageFuture<'static, ()> {
        Box::pin(async move {
            self.0.finish().await?;
            Ok(())
        })
    }

    fn abort(self: Box<Self>) -> StorageFuture<'static, ()> {
        Box::pin(async move {
            self.0.abort().await?;
            Ok(())
        })
    }
}
