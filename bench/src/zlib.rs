//! Decoder for the gateway's `compress=zlib-stream` transport.
//!
//! The server compresses the whole connection as ONE zlib stream. Every gateway
//! message is flushed with a sync flush, so it ends with the 4 bytes
//! `00 00 FF FF`. A message may be split over several binary frames: buffer the
//! frames until the buffered input ends with that suffix, then inflate it with
//! the connection's (long-lived) inflater.

use flate2::{Decompress, DecompressError, FlushDecompress, Status};

const SYNC_FLUSH_SUFFIX: [u8; 4] = [0x00, 0x00, 0xFF, 0xFF];

pub struct ZlibStream {
    inflate: Decompress,
    /// Compressed bytes of the message being received.
    input: Vec<u8>,
}

impl ZlibStream {
    pub fn new() -> Self {
        Self {
            // `true`: the stream starts with a zlib header (it is not raw deflate).
            inflate: Decompress::new(true),
            input: Vec::new(),
        }
    }

    /// Feeds one binary frame. Returns the decompressed message once the
    /// buffered input ends with the sync-flush suffix, `None` until then.
    pub fn push(&mut self, frame: &[u8]) -> Result<Option<Vec<u8>>, DecompressError> {
        self.input.extend_from_slice(frame);
        if !self.input.ends_with(&SYNC_FLUSH_SUFFIX) {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(self.input.len() * 4 + 256);
        let mut consumed = 0usize;
        loop {
            let (in_before, out_before) = (self.inflate.total_in(), self.inflate.total_out());
            let status = self.inflate.decompress_vec(
                &self.input[consumed..],
                &mut out,
                FlushDecompress::Sync,
            )?;
            let read = (self.inflate.total_in() - in_before) as usize;
            consumed += read;
            let wrote = self.inflate.total_out() - out_before;
            // Done when all input is consumed and the inflater had room to spare
            // (so it is not holding back output).
            if consumed >= self.input.len() && out.len() < out.capacity() {
                break;
            }
            if status == Status::StreamEnd {
                break;
            }
            if out.len() == out.capacity() {
                out.reserve(out.capacity().max(1024));
            } else if read == 0 && wrote == 0 {
                // No progress and room left: nothing more will come out.
                break;
            }
        }
        self.input.clear();
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compress, Compression, FlushCompress};

    /// Compresses `msg` as the next message of `c`'s stream (sync flush).
    fn compress(c: &mut Compress, msg: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(msg.len() + 1024);
        let mut consumed = 0usize;
        loop {
            let before = c.total_in();
            let res = c.compress_vec(&msg[consumed..], &mut out, FlushCompress::Sync);
            assert!(res.is_ok());
            consumed += (c.total_in() - before) as usize;
            if consumed >= msg.len() && out.len() < out.capacity() {
                return out;
            }
            out.reserve(1024);
        }
    }

    #[test]
    fn decodes_messages_split_over_frames() {
        let mut c = Compress::new(Compression::default(), true);
        let mut z = ZlibStream::new();
        let first = br#"{"op":10,"d":{"heartbeat_interval":41250}}"#.to_vec();
        let big: Vec<u8> =
            format!(r#"{{"op":0,"t":"READY","d":"{}"}}"#, "x".repeat(200_000)).into_bytes();
        for msg in [first, big] {
            let data = compress(&mut c, &msg);
            assert!(data.ends_with(&SYNC_FLUSH_SUFFIX));
            // Split into 3 frames; only the last completes the message.
            let (a, rest) = data.split_at(data.len() / 3);
            let (b, last) = rest.split_at(rest.len() / 2);
            assert!(matches!(z.push(a), Ok(None)));
            assert!(matches!(z.push(b), Ok(None)));
            match z.push(last) {
                Ok(Some(out)) => assert_eq!(out, msg),
                _ => unreachable!("message did not decode"),
            }
        }
    }
}
