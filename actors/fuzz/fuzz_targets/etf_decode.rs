//! Any bytes a client sends as an ETF frame: decoding never panics, never allocates what the
//! frame merely claims, and what decodes encodes back to a term that decodes the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spacebar_actors::session::etf;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = etf::decode(data) {
        let again = etf::decode(&etf::encode(&value)).expect("our own encoding decodes");
        assert_eq!(again, value);
    }
});
