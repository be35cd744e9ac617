//! The statistics-sum decoders on arbitrary bytes (PROTOCOL.md §16): the
//! signed envelope body (`SignedMessage::from_json`, then `verify`), the
//! message itself (JSON, then `validate`), and Shamir shares rebuilt from
//! whatever the bytes say.
//!
//! A message that validates must sign, travel and verify back to an equal
//! message; a signed body that parses must never verify under a key that
//! did not sign it; rebuilding from arbitrary shares fails or gives a
//! canonical secret, never a panic.
#![no_main]

use amparo_protocol::aggregation::shamir::{self, Share};
use amparo_protocol::aggregation::{Message, SignedMessage};
use amparo_protocol::entropy::DangerousSeededEntropy;
use amparo_protocol::primitives::ed25519::SigningKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = SigningKey::generate(&mut DangerousSeededEntropy::new(b"fuzz-aggregation"))
        .unwrap_or_else(|e| panic!("key: {e}"));
    if let Ok(signed) = SignedMessage::from_json(data) {
        assert!(
            signed.verify(&key.verifying_key()).is_err(),
            "a body the fuzzer wrote verified under a key it does not hold"
        );
    }
    // Shares: 34 bytes each (x, then y).
    let shares: Vec<Share> = data
        .chunks_exact(34)
        .take(8)
        .map(|c| {
            let mut y = [0u8; 32];
            y.copy_from_slice(&c[2..]);
            Share {
                x: u16::from_be_bytes([c[0], c[1]]),
                y,
            }
        })
        .collect();
    if let Ok(secret) = shamir::combine(&shares) {
        assert!(shamir::Secret::from_bytes(secret.as_bytes()).is_ok());
    }
    let Ok(message) = serde_json::from_slice::<Message>(data) else {
        return;
    };
    if message.validate().is_err() {
        return;
    }
    let Ok(signed) = SignedMessage::sign(&message, &key) else {
        // Valid but too large for one envelope once signed: refused, fine.
        return;
    };
    let body = signed
        .to_json()
        .unwrap_or_else(|e| panic!("to_json refused a signed message: {e}"));
    let back = SignedMessage::from_json(&body)
        .and_then(|s| s.verify(&key.verifying_key()))
        .unwrap_or_else(|e| panic!("a signed message did not verify back: {e}"));
    assert_eq!(back, message, "aggregation message round trip");
});
