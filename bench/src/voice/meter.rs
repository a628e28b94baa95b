//! The measurements every peer shares (one process, one clock): packets each speaker sent
//! and each receiver got from each speaker inside the measured window, and latencies.
//!
//! A payload carries the speaker's index and its send time (ns since the run's start); the SFU
//! never transcodes, so both arrive unchanged. The window is judged by the *send* time on both
//! sides, so a packet sent inside it counts as expected and as received even if it lands late.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use bytes::Bytes;

/// Speaker index (u32) then send time (u64 ns), little-endian.
const HEADER: usize = 12;
const CLOSED: u64 = u64::MAX;

pub struct Meter {
    clock: Instant,
    /// The measured window, in ns of `clock`: [start, end).
    start: AtomicU64,
    end: AtomicU64,
    /// Per speaker: packets sent in the window.
    sent: Vec<AtomicU64>,
    /// Per receiver, per speaker: packets received in the window / at any time.
    received: Vec<Vec<AtomicU64>>,
    ever: Vec<Vec<AtomicU64>>,
    /// Per receiver: latencies (µs) of packets received in the window.
    latencies: Vec<Mutex<Vec<u32>>>,
    send_errors: AtomicU64,
}

fn counters(n: usize) -> Vec<AtomicU64> {
    (0..n).map(|_| AtomicU64::new(0)).collect()
}

impl Meter {
    pub fn new(speakers: usize, participants: usize) -> Self {
        Self {
            clock: Instant::now(),
            start: AtomicU64::new(CLOSED),
            end: AtomicU64::new(CLOSED),
            sent: counters(speakers),
            received: (0..participants).map(|_| counters(speakers)).collect(),
            ever: (0..participants).map(|_| counters(speakers)).collect(),
            latencies: (0..participants).map(|_| Mutex::new(Vec::new())).collect(),
            send_errors: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.clock.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn in_window(&self, at: u64) -> bool {
        at >= self.start.load(Ordering::Relaxed) && at < self.end.load(Ordering::Relaxed)
    }

    /// Milliseconds since the run's start (voice heartbeats' nonce).
    pub fn clock_ms(&self) -> u64 {
        self.now() / 1_000_000
    }

    pub fn open(&self) {
        self.start.store(self.now(), Ordering::Relaxed);
    }

    pub fn close(&self) {
        self.end.store(self.now(), Ordering::Relaxed);
    }

    /// A payload of `size` bytes for `speaker`, stamped now, counted as sent.
    pub fn stamp(&self, speaker: usize, size: usize) -> Bytes {
        let at = self.now();
        if self.in_window(at) {
            if let Some(sent) = self.sent.get(speaker) {
                sent.fetch_add(1, Ordering::Relaxed);
            }
        }
        let mut payload = vec![0u8; size.max(HEADER)];
        payload[..4].copy_from_slice(&(speaker as u32).to_le_bytes());
        payload[4..HEADER].copy_from_slice(&at.to_le_bytes());
        Bytes::from(payload)
    }

    pub fn send_failed(&self) {
        self.send_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// A packet `receiver` got: counted, and timed if sent inside the window.
    pub fn received(&self, receiver: usize, payload: &[u8]) {
        let Some((speaker, sent_at)) = parse(payload) else {
            return;
        };
        let (Some(ever), Some(received)) = (
            self.ever.get(receiver).and_then(|r| r.get(speaker)),
            self.received.get(receiver).and_then(|r| r.get(speaker)),
        ) else {
            return;
        };
        ever.fetch_add(1, Ordering::Relaxed);
        if !self.in_window(sent_at) {
            return;
        }
        received.fetch_add(1, Ordering::Relaxed);
        let micros = self.now().saturating_sub(sent_at) / 1_000;
        if let Some(Ok(mut list)) = self.latencies.get(receiver).map(Mutex::lock) {
            list.push(u32::try_from(micros).unwrap_or(u32::MAX));
        }
    }

    /// (receiver, speaker) pairs that have had at least one packet, out of all pairs where
    /// the receiver is not the speaker (speakers are participants 0..speakers).
    pub fn pairs_flowing(&self) -> (usize, usize) {
        let mut flowing = 0;
        let mut all = 0;
        for (receiver, row) in self.ever.iter().enumerate() {
            for (speaker, count) in row.iter().enumerate() {
                if receiver != speaker {
                    all += 1;
                    flowing += usize::from(count.load(Ordering::Relaxed) > 0);
                }
            }
        }
        (flowing, all)
    }

    /// Speakers not every other participant has heard, with how many have: a stream the
    /// SFU never forwarded shows here as (speaker, 0).
    pub fn partly_heard(&self) -> Vec<(usize, usize)> {
        let others = self.ever.len().saturating_sub(1);
        (0..self.sent.len())
            .map(|speaker| {
                let heard = self
                    .ever
                    .iter()
                    .filter(|row| {
                        row.get(speaker)
                            .is_some_and(|c| c.load(Ordering::Relaxed) > 0)
                    })
                    .count();
                (speaker, heard)
            })
            .filter(|&(_, heard)| heard < others)
            .collect()
    }

    /// Packets the window should have delivered: each speaker's, to every other participant.
    pub fn expected(&self) -> u64 {
        let receivers = self.received.len() as u64;
        self.sent
            .iter()
            .map(|s| s.load(Ordering::Relaxed) * receivers.saturating_sub(1))
            .sum()
    }

    pub fn sent(&self) -> u64 {
        self.sent.iter().map(|s| s.load(Ordering::Relaxed)).sum()
    }

    pub fn delivered(&self) -> u64 {
        self.received
            .iter()
            .flatten()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    pub fn send_errors(&self) -> u64 {
        self.send_errors.load(Ordering::Relaxed)
    }

    /// The window's length in seconds (0 while open).
    pub fn window_secs(&self) -> f64 {
        let start = self.start.load(Ordering::Relaxed);
        let end = self.end.load(Ordering::Relaxed);
        if end == CLOSED || start == CLOSED {
            return 0.0;
        }
        end.saturating_sub(start) as f64 / 1e9
    }

    /// Every latency sample, in ms, sorted.
    pub fn latencies_ms(&self) -> Vec<f64> {
        let mut all: Vec<f64> = self
            .latencies
            .iter()
            .filter_map(|l| l.lock().ok())
            .flat_map(|l| {
                l.iter()
                    .map(|&us| f64::from(us) / 1000.0)
                    .collect::<Vec<_>>()
            })
            .collect();
        all.sort_by(f64::total_cmp);
        all
    }
}

fn parse(payload: &[u8]) -> Option<(usize, u64)> {
    let speaker = u32::from_le_bytes(payload.get(..4)?.try_into().ok()?);
    let at = u64::from_le_bytes(payload.get(4..HEADER)?.try_into().ok()?);
    Some((speaker as usize, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_packets_sent_inside_the_window_count() {
        let meter = Meter::new(2, 3);
        let early = meter.stamp(0, 80);
        meter.received(1, &early);
        assert_eq!(meter.pairs_flowing(), (1, 4));
        assert_eq!(meter.partly_heard(), [(0, 1), (1, 0)]);
        meter.open();
        let inside = meter.stamp(1, 80);
        assert_eq!(inside.len(), 80);
        meter.close();
        meter.received(0, &inside);
        meter.received(2, &inside);
        meter.received(2, &early);
        assert_eq!(
            (meter.sent(), meter.expected(), meter.delivered()),
            (1, 2, 2)
        );
        assert_eq!(meter.latencies_ms().len(), 2);
        meter.received(0, b"short");
    }
}
