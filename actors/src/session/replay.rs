//! The dispatches a session keeps for resuming: the newest ones, bounded by count, by bytes and
//! by age, each with the sequence number it was sent with.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::dispatch::Dispatch;

#[derive(Debug)]
pub struct ReplayBuffer {
    entries: VecDeque<(u64, Instant, Arc<Dispatch>)>,
    capacity: usize,
    /// The most bytes of dispatches kept, and the bytes kept now.
    max_bytes: usize,
    bytes: usize,
    max_age: Duration,
}

impl ReplayBuffer {
    pub fn new(capacity: usize, max_bytes: usize, max_age: Duration) -> Self {
        Self {
            entries: VecDeque::new(),
            capacity,
            max_bytes,
            bytes: 0,
            max_age,
        }
    }

    pub fn push(&mut self, seq: u64, dispatch: Arc<Dispatch>) {
        self.push_at(seq, Instant::now(), dispatch);
    }

    /// Keeps a dispatch sent `at` (one handed over from another node keeps its age).
    pub fn push_at(&mut self, seq: u64, at: Instant, dispatch: Arc<Dispatch>) {
        if self.capacity == 0 {
            return;
        }
        let size = dispatch.data().len();
        while self.entries.len() >= self.capacity
            || (!self.entries.is_empty() && self.bytes + size > self.max_bytes)
        {
            self.pop();
        }
        self.bytes += size;
        self.entries.push_back((seq, at, dispatch));
        self.expire();
    }

    fn pop(&mut self) {
        if let Some((_, _, dispatch)) = self.entries.pop_front() {
            self.bytes -= dispatch.data().len();
        }
    }

    /// Forgets dispatches older than the age limit.
    pub fn expire(&mut self) {
        while self
            .entries
            .front()
            .is_some_and(|(_, at, _)| at.elapsed() > self.max_age)
        {
            self.pop();
        }
    }

    /// Everything kept, oldest first: sequence number, age, dispatch.
    pub fn kept(&self) -> impl Iterator<Item = (u64, Duration, &Arc<Dispatch>)> {
        self.entries
            .iter()
            .map(|(seq, at, dispatch)| (*seq, at.elapsed(), dispatch))
    }

    /// Every dispatch after `seq`, oldest first — or `None` if some of them are gone already.
    /// `latest` is the last sequence number the session sent.
    pub fn after(&mut self, seq: u64, latest: u64) -> Option<Vec<(u64, Arc<Dispatch>)>> {
        self.expire();
        if seq > latest {
            return None;
        }
        if seq == latest {
            return Some(Vec::new());
        }
        let oldest = self.entries.front().map(|(s, _, _)| *s)?;
        if oldest > seq + 1 {
            return None;
        }
        Some(
            self.entries
                .iter()
                .filter(|(s, _, _)| *s > seq)
                .map(|(s, _, d)| (*s, d.clone()))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dispatch() -> Arc<Dispatch> {
        Arc::new(Dispatch::from_json(
            crate::EventName::MessageCreate,
            "{}".into(),
        ))
    }

    const UNBOUNDED: usize = usize::MAX / 2;

    fn seqs(replay: Option<Vec<(u64, Arc<Dispatch>)>>) -> Option<Vec<u64>> {
        replay.map(|r| r.into_iter().map(|(s, _)| s).collect())
    }

    #[test]
    fn replays_what_it_still_has_and_refuses_gaps() {
        let mut buffer = ReplayBuffer::new(3, UNBOUNDED, Duration::from_secs(60));
        for seq in 3..=7 {
            buffer.push(seq, dispatch());
        }
        assert_eq!(seqs(buffer.after(5, 7)), Some(vec![6, 7]));
        assert_eq!(seqs(buffer.after(4, 7)), Some(vec![5, 6, 7]));
        assert_eq!(seqs(buffer.after(7, 7)), Some(vec![]));
        assert_eq!(
            seqs(buffer.after(3, 7)),
            None,
            "4 was dropped by the count limit"
        );
        assert_eq!(seqs(buffer.after(8, 7)), None, "a seq from the future");
    }

    #[test]
    fn old_dispatches_expire() {
        let mut buffer = ReplayBuffer::new(10, UNBOUNDED, Duration::from_millis(20));
        buffer.push(1, dispatch());
        std::thread::sleep(Duration::from_millis(40));
        buffer.push(2, dispatch());
        assert_eq!(seqs(buffer.after(0, 2)), None);
        assert_eq!(seqs(buffer.after(1, 2)), Some(vec![2]));
    }

    #[test]
    fn large_dispatches_are_bounded_in_bytes() {
        let big = || {
            Arc::new(Dispatch::from_json(
                crate::EventName::MessageCreate,
                vec![b'1'; 400].into(),
            ))
        };
        let mut buffer = ReplayBuffer::new(100, 1000, Duration::from_secs(60));
        for seq in 1..=5 {
            buffer.push(seq, big());
        }
        assert_eq!(
            seqs(buffer.after(3, 5)),
            Some(vec![4, 5]),
            "two fit in 1,000 bytes"
        );
        assert_eq!(seqs(buffer.after(2, 5)), None);
        assert!(buffer.bytes <= 1000);
    }
}
