//! The payload decoders on arbitrary bytes: `Payload::from_json` for `Report`,
//! `Reply` and `StatusUpdate`, and `ChunkBody::decode`. Every input goes to
//! all four (a mutation of one kind may turn into another).
//!
//! JSON payloads: what `from_json` accepts, `to_json` must encode and
//! `from_json` must read back as an equal value (the bytes may differ: the
//! input need not be in serde_json's compact form). Chunk bodies: the
//! encoding of what `decode` accepts is exactly the input.
#![no_main]

use amparo_protocol::payload::{ChunkBody, Payload, Reply, Report, StatusUpdate};
use libfuzzer_sys::fuzz_target;

fn json_round_trip<T: Payload + PartialEq + core::fmt::Debug>(data: &[u8]) {
    let Ok(value) = T::from_json(data) else {
        return;
    };
    let json = value
        .to_json()
        .unwrap_or_else(|e| panic!("to_json refused a value from_json accepted: {e}"));
    let back =
        T::from_json(&json).unwrap_or_else(|e| panic!("from_json refused what to_json wrote: {e}"));
    assert_eq!(back, value, "{} JSON round trip", T::WHAT);
    // And the compact form is a fixed point.
    assert_eq!(back.to_json().as_deref(), Ok(&json[..]));
}

fuzz_target!(|data: &[u8]| {
    json_round_trip::<Report>(data);
    json_round_trip::<Reply>(data);
    json_round_trip::<StatusUpdate>(data);

    if let Ok(chunk) = ChunkBody::decode(data) {
        let encoded = chunk
            .encode()
            .unwrap_or_else(|e| panic!("encode refused a decoded chunk: {e}"));
        assert_eq!(encoded, data, "chunk body round trip");
        assert_eq!(ChunkBody::decode(&encoded).as_ref(), Ok(&chunk));
    }
});
