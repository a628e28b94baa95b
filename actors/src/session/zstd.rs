//! `compress=zstd-stream`: every message is a run of complete zstd frames, which a client's
//! streaming decoder reads one after another as one stream.
//!
//! As with zlib-stream, a connection keeps no compressor: a dispatch's `d` is compressed once
//! into a frame shared by every recipient, and the few bytes around it (op, event name,
//! sequence number) go out as raw (uncompressed) frames written here.

use bytes::Bytes;

use super::transport::Piece;

const MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// Frame header descriptor: a 4-byte content size, single segment, no checksum, no dictionary.
const DESCRIPTOR: u8 = 0b1010_0000;
/// The largest block a frame may hold.
const MAX_BLOCK: usize = 128 * 1024;
/// Below this size a piece goes out raw: compressing would not make it smaller.
pub(super) const COMPRESS_MIN_BYTES: usize = 96;
const LEVEL: i32 = 3;

/// Encodes one gateway message made of `pieces`.
pub fn encode(pieces: &[Piece<'_>]) -> Vec<u8> {
    // The exact size when no piece is compressed here (a dispatch's pieces), so the frame is
    // written without growing, and becomes `Bytes` without another allocation.
    let len = pieces
        .iter()
        .map(|piece| match piece {
            Piece::Raw(data) => raw_frame_len(data.len()),
            Piece::Encoded(frame) => frame.len(),
        })
        .sum();
    let mut out = Vec::with_capacity(len);
    for piece in pieces {
        match piece {
            Piece::Raw(data) if data.len() < COMPRESS_MIN_BYTES => raw_frame(&mut out, data),
            Piece::Raw(data) => out.extend_from_slice(&compress(data)),
            Piece::Encoded(frame) => out.extend_from_slice(frame),
        }
    }
    out
}

/// `data` as one compressed zstd frame.
pub fn compress(data: &[u8]) -> Bytes {
    match zstd::bulk::compress(data, LEVEL) {
        Ok(frame) => frame.into(),
        Err(error) => {
            tracing::warn!(%error, "zstd refused its input; sending it raw");
            let mut out = Vec::with_capacity(data.len() + 16);
            raw_frame(&mut out, data);
            out.into()
        }
    }
}

/// How many bytes [`raw_frame`] writes for `len` bytes of data.
fn raw_frame_len(len: usize) -> usize {
    let header = MAGIC.len() + 1 + 4;
    header + 3 * len.div_ceil(MAX_BLOCK).max(1) + len
}

/// `data` as a frame of raw blocks.
fn raw_frame(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(&MAGIC);
    out.push(DESCRIPTOR);
    out.extend_from_slice(&u32::try_from(data.len()).unwrap_or(u32::MAX).to_le_bytes());
    let mut blocks = data.chunks(MAX_BLOCK).peekable();
    if blocks.peek().is_none() {
        out.extend_from_slice(&[0x01, 0x00, 0x00]); // one empty, last, raw block
    }
    while let Some(block) = blocks.next() {
        let last = u32::from(blocks.peek().is_none());
        // Block header: last flag, type 0 (raw), size; 3 bytes little-endian.
        let header = last | (u32::try_from(block.len()).unwrap_or(0) << 3);
        out.extend_from_slice(header.to_le_bytes().get(..3).unwrap_or_default());
        out.extend_from_slice(block);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_and_compressed_frames_read_as_one_stream() {
        let body = format!("{{\"content\":\"{}\"}}", "zstd ".repeat(100));
        let shared = compress(body.as_bytes());
        let large = "y".repeat(300_000);
        let mut decoder = zstd::stream::raw::Decoder::new().unwrap();
        for (pieces, expected) in [
            (
                vec![
                    Piece::Raw(b"{\"op\":0,\"d\":"),
                    Piece::Encoded(&shared),
                    Piece::Raw(b"}"),
                ],
                format!("{{\"op\":0,\"d\":{body}}}"),
            ),
            (vec![Piece::Raw(b"")], String::new()),
            (vec![Piece::Raw(large.as_bytes())], large.clone()),
        ] {
            let message = encode(&pieces);
            let mut output = vec![0u8; 1 << 20];
            let mut input = zstd::stream::raw::InBuffer::around(&message);
            let mut out = zstd::stream::raw::OutBuffer::around(&mut output[..]);
            while input.pos() < message.len() {
                zstd::stream::raw::Operation::run(&mut decoder, &mut input, &mut out).unwrap();
            }
            let written = out.pos();
            assert_eq!(
                String::from_utf8(output[..written].to_vec()).unwrap(),
                expected
            );
        }
    }
}
