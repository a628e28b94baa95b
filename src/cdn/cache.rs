//! Resized and converted variants, kept once made: on disk under `<data_dir>/cdn-cache` (a
//! directory per object key, a file per variant), and the small ones also in memory, least
//! recently used first out, so a popular avatar is served without touching the disk.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;

use crate::storage::Key;

/// Variants larger than this stay on disk only.
const MAX_IN_MEMORY: usize = 256 * 1024;

pub struct VariantCache {
    dir: PathBuf,
    memory: Mutex<Lru>,
}

#[derive(Default)]
struct Lru {
    entries: HashMap<String, (Bytes, u64)>,
    bytes: usize,
    budget: usize,
    tick: u64,
}

impl Lru {
    fn get(&mut self, id: &str) -> Option<Bytes> {
        self.tick += 1;
        let tick = self.tick;
        let (bytes, used) = self.entries.get_mut(id)?;
        *used = tick;
        Some(bytes.clone())
    }

    fn insert(&mut self, id: String, bytes: Bytes) {
        if bytes.len() > MAX_IN_MEMORY || bytes.len() > self.budget {
            return;
        }
        self.tick += 1;
        self.bytes += bytes.len();
        if let Some((old, _)) = self.entries.insert(id, (bytes, self.tick)) {
            self.bytes -= old.len();
        }
        while self.bytes > self.budget {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(id, _)| id.clone());
            let Some(oldest) = oldest else { break };
            if let Some((gone, _)) = self.entries.remove(&oldest) {
                self.bytes -= gone.len();
            }
        }
    }

    fn remove_under(&mut self, prefix: &str) {
        let mut freed = 0;
        self.entries.retain(|id, (bytes, _)| {
            let keep = !id.starts_with(prefix);
            if !keep {
                freed += bytes.len();
            }
            keep
        });
        self.bytes -= freed;
    }
}

impl VariantCache {
    pub fn new(dir: PathBuf, memory_budget: usize) -> Self {
        Self {
            dir,
            memory: Mutex::new(Lru {
                budget: memory_budget,
                ..Lru::default()
            }),
        }
    }

    fn memory(&self) -> MutexGuard<'_, Lru> {
        spacebar_actors::sync::lock(&self.memory)
    }

    /// A variant's id: the object's key and the variant's name (`128.webp`, `full.png`).
    pub fn id(key: &Key, variant: &str) -> String {
        format!("{key}/{variant}")
    }

    pub fn from_memory(&self, id: &str) -> Option<Bytes> {
        self.memory().get(id)
    }

    /// The variant from memory, else from disk (then kept in memory too).
    pub async fn get(&self, id: &str) -> Option<Bytes> {
        if let Some(bytes) = self.from_memory(id) {
            return Some(bytes);
        }
        let path = self.dir.join(id);
        let bytes = tokio::task::spawn_blocking(move || std::fs::read(path))
            .await
            .ok()?
            .ok()
            .map(Bytes::from)?;
        self.memory().insert(id.to_string(), bytes.clone());
        Some(bytes)
    }

    /// Keeps a variant made now; a failed disk write is logged and otherwise ignored.
    pub async fn put(&self, id: &str, bytes: Bytes) {
        self.memory().insert(id.to_string(), bytes.clone());
        let path = self.dir.join(id);
        let written = tokio::task::spawn_blocking(move || {
            let parent = path.parent().ok_or(std::io::ErrorKind::InvalidInput)?;
            std::fs::create_dir_all(parent)?;
            let temporary = parent.join(format!(".tmp-{:016x}", rand::random::<u64>()));
            std::fs::write(&temporary, &bytes)?;
            std::fs::rename(&temporary, &path)
        })
        .await;
        if let Ok(Err(error)) = written {
            tracing::warn!(%error, id, "cannot keep a CDN variant on disk");
        }
    }

    /// Forgets every variant of an object (it was deleted).
    pub async fn purge(&self, key: &Key) {
        self.memory().remove_under(&format!("{key}/"));
        let dir = self.dir.join(key.as_str());
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir)).await;
    }
}

/// A strong ETag for a variant: its id is immutable (keys carry content hashes or ids that
/// are never reused), so a hash of the id names the bytes.
pub fn etag(id: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(id.as_bytes());
    format!("\"{}\"", super::signing::hex(&digest[..12]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_leave_first() {
        let mut lru = Lru {
            budget: 10,
            ..Lru::default()
        };
        lru.insert("a".into(), Bytes::from_static(b"aaaa"));
        lru.insert("b".into(), Bytes::from_static(b"bbbb"));
        assert!(lru.get("a").is_some());
        lru.insert("c".into(), Bytes::from_static(b"cccc"));
        assert!(lru.get("b").is_none(), "b was the least recently used");
        assert!(lru.get("a").is_some() && lru.get("c").is_some());
        lru.remove_under("a");
        assert_eq!(lru.bytes, 4);
    }
}
