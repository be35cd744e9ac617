//! The directory decoders on arbitrary bytes:
//!
//! 1. `SignedDirectory::verify` against a fixed coordinator key (the Ed25519
//!    key with seed `[7; 32]`, which also signed the seed corpus, so that the
//!    seeds reach past the signature check; a mutated seed fails it, which is
//!    expected). What verifies must hold the input bytes, and re-signing its
//!    document must verify to the same document.
//! 2. The JSON body on its own: `serde_json::from_slice::<Directory>` then
//!    `validate()`, the path behind the signature that the fuzzer cannot reach
//!    through (1). What validates must survive a JSON round trip and a
//!    sign/verify round trip.
#![no_main]

use std::sync::OnceLock;

use amparo_protocol::ProtocolError;
use amparo_protocol::directory::{Directory, SignedDirectory};
use amparo_protocol::primitives::ed25519::SigningKey;
use libfuzzer_sys::fuzz_target;

fn coordinator() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::from_seed(&[7u8; 32]).expect("fixed coordinator seed"))
}

/// Signing `dir` as `version` and verifying the result gives `dir` back.
fn sign_verify_round_trip(dir: &Directory, version: u64) {
    let key = coordinator();
    let signed = match dir.sign(version, key) {
        Ok(s) => s,
        // The only refusal allowed for a valid directory: a body over 1 MiB.
        Err(ProtocolError::TooLarge { .. }) => return,
        Err(e) => panic!("sign refused a valid directory: {e}"),
    };
    let back = SignedDirectory::verify(signed.as_bytes(), &key.verifying_key())
        .unwrap_or_else(|e| panic!("verify refused a freshly signed directory: {e}"));
    assert_eq!(back.version(), version);
    assert_eq!(back.directory(), dir, "sign/verify round trip");
    assert_eq!(back, signed);
}

fuzz_target!(|data: &[u8]| {
    let key = coordinator();

    // 1. The signed wire format.
    if let Ok(signed) = SignedDirectory::verify(data, &key.verifying_key()) {
        assert_eq!(signed.as_bytes(), data);
        signed
            .directory()
            .validate()
            .expect("a verified directory validates");
        sign_verify_round_trip(signed.directory(), signed.version());
    }

    // 2. The JSON body.
    if let Ok(dir) = serde_json::from_slice::<Directory>(data)
        && dir.validate().is_ok()
    {
        let json = serde_json::to_vec(&dir).expect("a directory serializes");
        let back: Directory = serde_json::from_slice(&json)
            .unwrap_or_else(|e| panic!("directory JSON does not read back: {e}"));
        assert_eq!(back, dir, "directory JSON round trip");
        back.validate()
            .expect("a round-tripped directory validates");
        sign_verify_round_trip(&dir, 1);
    }
});
