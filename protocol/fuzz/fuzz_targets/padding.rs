//! `padding::unpad` on arbitrary bytes. Whatever it accepts, `pad_to` with the
//! same header, body and class must give back exactly the input.
#![no_main]

use amparo_protocol::padding;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok((header, body)) = padding::unpad(data) else {
        return;
    };
    assert!(body.len() <= padding::MAX_BODY);
    let again =
        padding::pad_to(&header, body, data.len()).expect("pad_to must accept what unpad produced");
    assert_eq!(&again[..], data, "unpad/pad_to round trip");
});
