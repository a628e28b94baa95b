//! Any payloads sent through zlib-stream and zstd-stream, one message after another on one
//! connection: a client's single inflater / streaming decoder reads each back exactly.
#![no_main]

use std::sync::Arc;

use flate2::{Decompress, FlushDecompress};
use libfuzzer_sys::fuzz_target;
use spacebar_actors::session::transport::{Compression, Encoding, Frame, Transport};
use spacebar_actors::Dispatch;

fuzz_target!(|data: &[u8]| {
    // The input split into JSON string payloads, used as dispatch bodies.
    let bodies: Vec<String> = data
        .split(|b| *b == 0xff)
        .map(|chunk| serde_json::to_string(&String::from_utf8_lossy(chunk)).expect("a string serialises"))
        .collect();
    let mut zlib = Transport::new(Encoding::Json, Compression::ZlibStream);
    let mut zstd = Transport::new(Encoding::Json, Compression::ZstdStream);
    let mut inflater = Decompress::new(true);
    let mut decoder = zstd::stream::raw::Decoder::new().expect("a zstd decoder");
    for (seq, body) in bodies.iter().enumerate() {
        let dispatch = Arc::new(Dispatch::from_json("FUZZ", body.clone().into_bytes().into()));
        let expected = format!(r#"{{"op":0,"t":"FUZZ","s":{seq},"d":{body}}}"#);
        let Frame::Binary(message) = zlib.dispatch(seq as u64, &dispatch) else { panic!("text frame") };
        assert!(message.ends_with(&[0, 0, 0xff, 0xff]));
        let mut out = Vec::with_capacity(expected.len() + 64);
        inflater.decompress_vec(&message, &mut out, FlushDecompress::Sync).expect("inflates");
        assert_eq!(out, expected.as_bytes());

        let Frame::Binary(message) = zstd.dispatch(seq as u64, &dispatch) else { panic!("text frame") };
        let mut output = vec![0u8; expected.len() + 64];
        let mut input = zstd::stream::raw::InBuffer::around(&message);
        let mut out = zstd::stream::raw::OutBuffer::around(&mut output[..]);
        while input.pos() < message.len() {
            zstd::stream::raw::Operation::run(&mut decoder, &mut input, &mut out).expect("decodes");
        }
        let written = out.pos();
        assert_eq!(&output[..written], expected.as_bytes());
    }
});
