//! `Receipt::decode` on arbitrary bytes; what it accepts encodes back to the
//! input exactly. Verification against a fixed relay key must not panic.
#![no_main]

use std::sync::OnceLock;

use amparo_protocol::primitives::ed25519::{SigningKey, VerifyingKey};
use amparo_protocol::receipt::{self, Receipt};
use libfuzzer_sys::fuzz_target;

/// The relay key that signed the seed corpus's receipts (seed `[9; 32]`).
fn relay_key() -> VerifyingKey {
    static KEY: OnceLock<VerifyingKey> = OnceLock::new();
    *KEY.get_or_init(|| {
        SigningKey::from_seed(&[9u8; 32])
            .expect("fixed relay seed")
            .verifying_key()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(r) = Receipt::decode(data) else {
        return;
    };
    assert_eq!(data.len(), receipt::LEN);
    assert_eq!(&r.encode()[..], data, "receipt round trip");
    let _ = r.verify(&relay_key());
});
