//! Admission tokens and vouchers (`token`, `voucher`, PROTOCOL.md §14.2):
//! the first byte picks the decoder — 0 a token (then checked against a
//! fixed issuer key: made-up tokens are refused, never a panic), 1 a batch
//! of token requests (then signed by that key, as the relay does), 2 a
//! voucher, 3 a token in its `Authorization` form, 4 an issuer key's
//! SubjectPublicKeyInfo. What decodes must encode back to the input.
#![no_main]

use std::sync::OnceLock;

use amparo_protocol::entropy::DangerousSeededEntropy;
use amparo_protocol::keys::KeyId;
use amparo_protocol::token::{self, IssuerKey, Token, TokenKey};
use amparo_protocol::voucher::Voucher;
use libfuzzer_sys::fuzz_target;

fn issuer() -> &'static IssuerKey {
    static KEY: OnceLock<IssuerKey> = OnceLock::new();
    KEY.get_or_init(|| {
        IssuerKey::generate(&mut DangerousSeededEntropy::new(b"fuzz token issuer"))
            .expect("a key from a fixed seed")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    match selector % 5 {
        0 => {
            if let Ok(t) = Token::decode(body) {
                assert_eq!(&t.encode()[..], body);
                let digest = token::challenge_digest(&KeyId([1; 8]));
                let _ = issuer().public().verify(&t, &digest);
            }
        }
        1 => {
            if let Ok(requests) = token::decode_requests(body) {
                assert_eq!(token::encode_requests(&requests), body);
                let mut e = DangerousSeededEntropy::new(b"fuzz sign");
                for r in &requests {
                    let _ = issuer().sign(r, &mut e);
                }
            }
        }
        2 => {
            if let Ok(v) = Voucher::decode(body) {
                assert_eq!(&v.encode()[..], body);
            }
        }
        3 => {
            if let Ok(text) = std::str::from_utf8(body) {
                let _ = Token::from_header(text);
            }
        }
        _ => {
            if let Ok(k) = TokenKey::from_spki(body) {
                assert_eq!(k.spki(), body);
            }
        }
    }
});
