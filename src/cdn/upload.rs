//! Streaming an uploaded file into storage as it arrives (a pre-upload's `PUT /uploads/{token}`,
//! a multipart message's files).

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};

use crate::error::Error;
use crate::storage::{Key, Storage};

/// Writes a body (a request's, a multipart file's) of at most `max` bytes to `key` as it
/// arrives, never holding it whole: its length and its first `keep` bytes (to tell what it
/// is). Past `max` it is [`Error::BodyTooLarge`], and nothing is kept.
pub async fn store_stream<E>(
    storage: &dyn Storage,
    key: &Key,
    mut body: impl Stream<Item = Result<Bytes, E>> + Unpin,
    max: u64,
    keep: usize,
) -> Result<(u64, Bytes), Error> {
    let mut writer = storage.writer(key).await?;
    let written = async {
        let (mut size, mut head) = (0u64, BytesMut::new());
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|_| Error::BodyTooLarge)?;
            size = size.saturating_add(u64::try_from(chunk.len()).unwrap_or(u64::MAX));
            if size > max {
                return Err(Error::BodyTooLarge);
            }
            let wanted = keep.saturating_sub(head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..wanted]);
            writer.write(chunk).await?;
        }
        Ok((size, head.freeze()))
    }
    .await;
    match written {
        Ok(stored) => {
            writer.finish().await?;
            Ok(stored)
        }
        Err(error) => {
            if let Err(abort) = writer.abort().await {
                tracing::warn!(error = %abort, "an unfinished upload was not cleaned up");
            }
            Err(error)
        }
    }
}
