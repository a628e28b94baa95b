//! `compress=zlib-stream`: one zlib stream per connection, every message ending in a sync flush
//! (`00 00 FF FF`), sent as binary frames.
//!
//! A connection keeps no deflate context. Each message is made of self-contained deflate blocks
//! (no back-references before the block), which is a valid continuation of any deflate stream:
//! the client inflates one stream with one context as usual. That costs a little ratio (no
//! dictionary shared across messages) and buys two things: an idle connection holds no
//! compressor memory (a zlib context is ~256 KiB), and a dispatch's `d` is compressed once and
//! the same bytes are spliced into every recipient's stream.

use std::cell::RefCell;

use bytes::Bytes;
use flate2::{Compress, Compression, FlushCompress};

/// The zlib header (deflate, 32 KiB window, no dictionary) that opens each connection's stream.
const ZLIB_HEADER: [u8; 2] = [0x78, 0x9c];
/// An empty stored block: what a sync flush writes, and the suffix clients look for.
const SYNC_FLUSH: [u8; 5] = [0x00, 0x00, 0x00, 0xff, 0xff];
/// Below this size a piece is sent as a stored block: deflate would not make it smaller.
pub(super) const DEFLATE_MIN_BYTES: usize = 96;

thread_local! {
    /// One compressor per thread, reset before each message, so no connection owns one.
    static DEFLATER: RefCell<Compress> = RefCell::new(Compress::new(Compression::default(), false));
}

use super::transport::Piece;

/// The per-connection side of the stream: only whether the zlib header went out yet.
#[derive(Debug, Default)]
pub struct ZlibStream {
    started: bool,
}

impl ZlibStream {
    /// Encodes one gateway message made of `pieces`, ending in a sync flush.
    pub fn encode(&mut self, pieces: &[Piece<'_>]) -> Vec<u8> {
        // The exact size when no piece is deflated here (a dispatch's pieces): the frame is
        // handed on as it is, and a `Vec` with spare room costs one more allocation to become
        // `Bytes`.
        let header = if self.started { 0 } else { ZLIB_HEADER.len() };
        let flush = match pieces.last() {
            Some(Piece::Encoded(bytes)) if bytes.ends_with(&SYNC_FLUSH[1..]) => 0,
            _ => SYNC_FLUSH.len(),
        };
        let len: usize = pieces
            .iter()
            .map(|piece| match piece {
                Piece::Raw(text) => stored_len(text.len()),
                Piece::Encoded(bytes) => bytes.len(),
            })
            .sum();
        let mut out = Vec::with_capacity(header + len + flush);
        if !self.started {
            out.extend_from_slice(&ZLIB_HEADER);
            self.started = true;
        }
        for piece in pieces {
            match piece {
                Piece::Raw(text) if text.len() < DEFLATE_MIN_BYTES => stored(&mut out, text),
                Piece::Raw(text) => deflate_into(&mut out, text),
                Piece::Encoded(bytes) => out.extend_from_slice(bytes),
            }
        }
        if !out.ends_with(&SYNC_FLUSH[1..]) {
            out.extend_from_slice(&SYNC_FLUSH);
        }
        out
    }
}

/// Compresses `data` into self-contained deflate blocks ending in a sync flush.
pub fn deflate(data: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(data.len() / 2 + 64);
    deflate_into(&mut out, data);
    out.into()
}

fn deflate_into(out: &mut Vec<u8>, data: &[u8]) {
    let done = DEFLATER.with(|deflater| {
        let Ok(mut deflater) = deflater.try_borrow_mut() else {
            return false;
        };
        deflater.reset();
        let start = out.len();
        loop {
            let consumed = usize::try_from(deflater.total_in()).unwrap_or(usize::MAX);
            let rest = data.get(consumed..).unwrap_or_default();
            if out.capacity() - out.len() < 64 {
                out.reserve(rest.len() / 2 + 64);
            }
            if deflater
                .compress_vec(rest, out, FlushCompress::Sync)
                .is_err()
            {
                out.truncate(start);
                return false;
            }
            let all_in = usize::try_from(deflater.total_in()).is_ok_and(|n| n == data.len());
            // The flush is complete once all input is in and the output did not fill up.
            if all_in && out.len() < out.capacity() {
                return true;
            }
        }
    });
    if !done {
        // Only reachable if the compressor refuses its input; stored blocks are always valid.
        stored(out, data);
    }
}

/// How many bytes [`stored`] writes for `len` bytes of data.
fn stored_len(len: usize) -> usize {
    len + 5 * len.div_ceil(usize::from(u16::MAX))
}

/// Appends `data` as stored (uncompressed) deflate blocks; the stream is byte-aligned here
/// because every piece ends on a block boundary.
fn stored(out: &mut Vec<u8>, data: &[u8]) {
    for chunk in data.chunks(usize::from(u16::MAX)) {
        let len = u16::try_from(chunk.len()).unwrap_or(u16::MAX);
        out.push(0x00); // BFINAL = 0, BTYPE = 00 (stored), padding to the byte boundary
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Decompress, FlushDecompress};

    fn inflate(decompressor: &mut Decompress, message: &[u8]) -> String {
        let mut out = Vec::with_capacity(1 << 20);
        let before = decompressor.total_in();
        decompressor
            .decompress_vec(message, &mut out, FlushDecompress::Sync)
            .unwrap();
        assert_eq!(decompressor.total_in() - before, message.len() as u64);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn one_stream_of_mixed_pieces_inflates_message_by_message() {
        let mut stream = ZlibStream::default();
        let mut client = Decompress::new(true);
        let body = format!("{{\"content\":\"{}\"}}", "hello world ".repeat(50));
        let shared = deflate(body.as_bytes());
        for seq in 1..=3 {
            let prefix = format!("{{\"op\":0,\"t\":\"MESSAGE_CREATE\",\"s\":{seq},\"d\":");
            let message = stream.encode(&[
                Piece::Raw(prefix.as_bytes()),
                Piece::Encoded(&shared),
                Piece::Raw(b"}"),
            ]);
            assert!(message.ends_with(&[0, 0, 0xff, 0xff]));
            assert_eq!(inflate(&mut client, &message), format!("{prefix}{body}}}"));
        }
        let large = "x".repeat(200_000);
        let message = stream.encode(&[Piece::Raw(large.as_bytes())]);
        assert!(message.len() < 10_000, "a repetitive text compresses");
        assert_eq!(inflate(&mut client, &message), large);
    }
}
