//! The relay's binary HTTP bodies (`wire`): the first byte picks the decoder
//! (0 upload batch, 1 upload results, 2 mailbox page), the rest is the body.
//! What a decoder accepts must encode back to the input exactly.
#![no_main]

use amparo_protocol::wire;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    match selector % 3 {
        0 => {
            if let Ok(frames) = wire::decode_batch(body, 256) {
                assert!(frames.len() <= 256);
                assert_eq!(wire::encode_batch(frames), body, "batch round trip");
            }
        }
        1 => {
            if let Ok(results) = wire::decode_results(body) {
                assert_eq!(wire::encode_results(&results), body, "results round trip");
            }
        }
        _ => {
            if let Ok(page) = wire::decode_page(body) {
                let encoded = wire::encode_page(page.iter().map(|(c, e)| (*c, e.as_bytes())));
                assert_eq!(encoded, body, "page round trip");
            }
        }
    }
});
