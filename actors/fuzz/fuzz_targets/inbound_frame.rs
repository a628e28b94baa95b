//! Any frame, in either encoding, read as a gateway payload: `None` or a payload, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spacebar_actors::session::transport::{Compression, Encoding, Transport};

fuzz_target!(|data: &[u8]| {
    for encoding in [Encoding::Json, Encoding::Etf] {
        let _ = Transport::new(encoding, Compression::None).decode(data);
    }
});
