//! A small map whose entries are forgotten after a while: caches of what is costly to learn
//! again (an account's rights, an image fetched from elsewhere) and handshakes that may never
//! finish (a bot's IP discovery). It holds at most a set number of entries; when full, the
//! stale ones go, and if none is stale, all of them.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard};

use crate::sync::lock;
use std::time::{Duration, Instant};

pub struct Expiring<K, V> {
    entries: Mutex<HashMap<K, (V, Instant)>>,
    ttl: Duration,
    most: usize,
}

impl<K: Eq + Hash, V: Clone> Expiring<K, V> {
    pub fn new(ttl: Duration, most: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            ttl,
            most,
        }
    }

    /// The value kept for `key`, unless it is older than the time to live.
    pub fn get(&self, key: &K) -> Option<V> {
        self.lock()
            .get(key)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(value, _)| value.clone())
    }

    /// The value kept for `key`, unless it is older than the time to live; it is kept no more.
    pub fn take(&self, key: &K) -> Option<V> {
        self.lock()
            .remove(key)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(value, _)| value)
    }

    pub fn insert(&self, key: K, value: V) {
        let mut entries = self.lock();
        if entries.len() >= self.most {
            entries.retain(|_, (_, at)| at.elapsed() < self.ttl);
            if entries.len() >= self.most {
                entries.clear();
            }
        }
        entries.insert(key, (value, Instant::now()));
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, (V, Instant)>> {
        lock(&self.entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_a_full_map_makes_room() {
        let map = Expiring::new(Duration::from_millis(50), 2);
        map.insert(1, "one");
        map.insert(2, "two");
        assert_eq!(map.get(&1), Some("one"));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(map.get(&1), None, "past its time to live");
        // Full of stale entries: they make room.
        map.insert(3, "three");
        map.insert(4, "four");
        assert_eq!((map.get(&3), map.get(&4)), (Some("three"), Some("four")));
        // Full of fresh ones: all go.
        map.insert(5, "five");
        assert_eq!((map.get(&3), map.get(&5)), (None, Some("five")));
        assert_eq!(map.take(&5), Some("five"));
        assert_eq!(map.get(&5), None, "taken");
    }
}
