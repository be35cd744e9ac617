//! Admission challenges and proofs (`admission`, PROTOCOL.md §14): the first
//! byte picks the decoder (0 challenge, 1 proof), the rest is the input. A
//! value that decodes must encode back to the input exactly; a decoded
//! challenge never asks more than the protocol's maximum effort; a decoded
//! proof is checked against a fixed seed and envelope (made-up solutions are
//! refused, never a panic).
#![no_main]

use amparo_protocol::admission::{self, Challenge, MAX_EFFORT, Proof};
use amparo_protocol::envelope::EnvelopeId;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    if selector % 2 == 0 {
        if let Ok(c) = Challenge::decode(body) {
            assert!(c.effort <= MAX_EFFORT);
            assert_eq!(&c.encode()[..], body);
        }
    } else if let Ok(p) = Proof::decode(body) {
        assert_eq!(&p.encode()[..], body);
        let _ = admission::verify(&p, &[7; 32], &[EnvelopeId([1; 16])], 1);
    }
});
