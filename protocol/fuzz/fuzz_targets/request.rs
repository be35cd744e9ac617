//! The `Amparo-Signature` header of signed mailbox requests. Input: a
//! big-endian u16 header length, the header, then the request target up to a
//! NUL byte and the body. Parsing and verifying (against the fixed recipient
//! keys of the seed corpus, at the corpus's time) must never panic, and a
//! parsed proof writes back to a header that parses to the same proof.
#![no_main]

use std::sync::OnceLock;

use amparo_protocol::UnixTime;
use amparo_protocol::keys::{MailboxId, RecipientKeys};
use amparo_protocol::request::RequestProof;
use libfuzzer_sys::fuzz_target;

/// The recipient whose requests the seed corpus signs (`[5; 64]`).
fn mailbox() -> MailboxId {
    static M: OnceLock<MailboxId> = OnceLock::new();
    *M.get_or_init(|| {
        RecipientKeys::from_secret_bytes(&[5u8; 64])
            .expect("fixed recipient keys")
            .mailbox()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((len, rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let n = usize::from(u16::from_be_bytes(*len)).min(rest.len());
    let (header, rest) = rest.split_at(n);
    let Ok(header) = std::str::from_utf8(header) else {
        return;
    };
    let Ok(proof) = RequestProof::parse(header) else {
        return;
    };
    let again = RequestProof::parse(&proof.to_header()).expect("a written header parses");
    assert_eq!(again.to_header(), proof.to_header(), "header round trip");
    let (target, body) = match rest.iter().position(|b| *b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let target = String::from_utf8_lossy(target);
    for method in ["GET", "POST"] {
        let _ = proof.verify(&mailbox(), method, &target, body, UnixTime(1_790_000_000));
    }
    let _ = proof.replay_id();
    let _ = proof.replay_horizon();
});
