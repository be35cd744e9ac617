//! Decode an envelope, then `open` it with a fixed recipient key set
//! (`RecipientKeys::from_secret_bytes(&[5; 64])`, which the seed corpus's
//! envelopes are sealed to) accepting every purpose. It must return a value
//! or an error, never panic. When it opens, the result must be consistent:
//! the body fits the size class (or, compressed, the largest body), and the
//! envelope opens as its purpose alone
//! and as no other.
#![no_main]

use std::sync::OnceLock;

use amparo_protocol::ProtocolError;
use amparo_protocol::envelope::{Envelope, Purpose};
use amparo_protocol::keys::RecipientKeys;
use amparo_protocol::padding;
use libfuzzer_sys::fuzz_target;

fn keys() -> &'static RecipientKeys {
    static KEYS: OnceLock<RecipientKeys> = OnceLock::new();
    KEYS.get_or_init(|| RecipientKeys::from_secret_bytes(&[5u8; 64]).expect("fixed recipient keys"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(env) = Envelope::decode(data) else {
        return;
    };
    let keys = keys();
    match env.open(keys, &Purpose::ALL) {
        Ok(opened) => {
            assert_eq!(env.mailbox(), keys.mailbox());
            if opened.header.is_compressed() {
                // Decompressed, but never past the largest body.
                assert!(opened.purpose.may_compress());
                assert!(opened.body.len() <= padding::MAX_BODY);
            } else {
                assert!(opened.body.len() + padding::INNER_HEADER_LEN <= env.size_class());
            }
            assert!(opened.header.flags & !(padding::FLAG_COVER | padding::FLAG_COMPRESSED) == 0);
            // Bound to exactly one purpose.
            let again = env
                .open(keys, &[opened.purpose])
                .expect("opens again as its own purpose");
            assert_eq!(again.header, opened.header);
            assert_eq!(&again.body[..], &opened.body[..]);
            let others: Vec<Purpose> = Purpose::ALL
                .into_iter()
                .filter(|&p| p != opened.purpose)
                .collect();
            assert!(
                env.open(keys, &others).is_err(),
                "an envelope opened as two purposes"
            );
        }
        Err(e) => {
            // An error is fine; check it is one of the kinds `open` documents.
            assert!(
                matches!(
                    e,
                    ProtocolError::Misaddressed
                        | ProtocolError::OpenFailed
                        | ProtocolError::WeakPublicKey
                        | ProtocolError::BadPadding
                        | ProtocolError::BadSizeClass(_)
                        | ProtocolError::UnsupportedVersion { .. }
                        | ProtocolError::Invalid(_)
                        | ProtocolError::Truncated { .. }
                        | ProtocolError::TooLarge { .. }
                        | ProtocolError::TrailingBytes(_)
                ),
                "unexpected error from open: {e:?}"
            );
        }
    }
});
