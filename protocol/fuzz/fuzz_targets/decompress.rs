//! `compression::decompress` (PROTOCOL.md §5.1) on arbitrary bytes: the path
//! a sealed "zip bomb" takes at a focal point. It must return an error or a
//! body of at most `MAX_BODY` bytes, never panic or grow past the bound; what
//! it returns must survive compress/decompress unchanged.
#![no_main]

use amparo_protocol::ProtocolError;
use amparo_protocol::compression;
use amparo_protocol::padding::MAX_BODY;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match compression::decompress(data) {
        Ok(body) => {
            assert!(body.len() <= MAX_BODY);
            let again = compression::compress(&body).expect("a bounded body compresses");
            let back = compression::decompress(&again).expect("our own stream opens");
            assert_eq!(&back[..], &body[..]);
        }
        Err(e) => assert!(
            matches!(
                e,
                ProtocolError::Invalid(_)
                    | ProtocolError::TooLarge { .. }
                    | ProtocolError::TrailingBytes(_)
                    | ProtocolError::UnsupportedVersion { .. }
            ),
            "unexpected error from decompress: {e:?}"
        ),
    }
});
