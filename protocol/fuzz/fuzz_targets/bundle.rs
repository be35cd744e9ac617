//! The bundle decoders on arbitrary bytes.
//!
//! Input layout: `control byte || bundle bytes`. The control byte only picks
//! how the bundle bytes are cut into pieces for the streaming decoder (the
//! seed corpus files start with one, then hold a real bundle).
//!
//! * `decode_prefix` on the whole input and on the bundle bytes: never panics.
//! * `BundleDecoder` fed the bundle bytes in pieces (calling `next_item` until
//!   `Ok(None)` after each piece, as its docs ask, then `finish`) must give the
//!   same items and the same error as `decode_prefix`. One allowed
//!   difference: `TrailingBytes(n)` counts the bytes buffered when the decoder
//!   noticed them, so a streaming decoder that sees the trailing bytes
//!   arrive in pieces may report a smaller, non-zero `n`.
//! * Every decoded item re-encodes (with `BundleEncoder`) into the bundle
//!   bytes up to the point where decoding stopped; a sound bundle re-encodes
//!   to exactly its bytes.
#![no_main]

use amparo_protocol::ProtocolError;
use amparo_protocol::bundle::{self, BundleDecoder, BundleEncoder, BundleItem};
use libfuzzer_sys::fuzz_target;

/// Piece sizes for the streaming decoder, from the control byte: the low 3
/// bits pick a maximum piece size, the rest seeds a small LCG. Control 0
/// feeds everything at once.
fn pieces(control: u8, len: usize) -> Vec<usize> {
    const MAX: [usize; 8] = [usize::MAX, 1, 3, 16, 100, 1_000, 5_000, 70_000];
    let max = MAX[usize::from(control & 7)];
    let mut state = u32::from(control) | 0x5a00;
    let mut out = Vec::new();
    let mut left = len;
    while left > 0 {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let size = if max == usize::MAX {
            left
        } else {
            1 + (state >> 8) as usize % max
        };
        let size = size.min(left);
        out.push(size);
        left -= size;
    }
    out
}

fn streaming(control: u8, bytes: &[u8]) -> (Vec<BundleItem>, Option<ProtocolError>) {
    let mut d = BundleDecoder::new();
    let mut items = Vec::new();
    let mut offset = 0;
    for size in pieces(control, bytes.len()) {
        d.feed(&bytes[offset..offset + size]);
        offset += size;
        loop {
            match d.next_item() {
                Ok(Some(item)) => items.push(item),
                Ok(None) => break,
                Err(e) => {
                    // After an error every call returns the same error.
                    assert_eq!(d.next_item().err().as_ref(), Some(&e));
                    d.feed(b"more");
                    assert_eq!(d.next_item().err().as_ref(), Some(&e));
                    assert_eq!(d.finish().err().as_ref(), Some(&e));
                    return (items, Some(e));
                }
            }
        }
        assert_eq!(d.frames_read() as usize, items.len());
    }
    (items, d.finish().err())
}

fn encode(items: &[BundleItem]) -> Vec<u8> {
    let mut enc = BundleEncoder::new();
    for item in items {
        match item {
            BundleItem::Envelope(e) => enc.envelope(e),
            BundleItem::Directory(d) => enc.directory(d),
            BundleItem::Receipt(r) => enc.receipt(r),
            BundleItem::Grant(g) => enc.grant(g),
            BundleItem::Token(t) => enc.token(t),
            BundleItem::Hold(h) => enc.hold(h),
            BundleItem::CheckIn(c) => enc.check_in(c),
        }
        .expect("a decoded item re-encodes");
    }
    enc.finish()
}

fuzz_target!(|data: &[u8]| {
    let _ = bundle::decode_prefix(data);

    let Some((&control, bytes)) = data.split_first() else {
        return;
    };
    let (items, error) = bundle::decode_prefix(bytes);
    let (s_items, s_error) = streaming(control, bytes);
    assert_eq!(
        s_items, items,
        "streaming and whole decoding differ in items"
    );
    match (&s_error, &error) {
        (Some(ProtocolError::TrailingBytes(s)), Some(ProtocolError::TrailingBytes(w))) => {
            assert!(
                *s > 0 && s <= w,
                "TrailingBytes({s}) streaming vs ({w}) whole"
            );
        }
        _ => assert_eq!(
            s_error, error,
            "streaming and whole decoding differ in error"
        ),
    }
    assert_eq!(
        bundle::decode_all(bytes).ok().as_ref(),
        error.is_none().then_some(&items)
    );

    // Re-encoding: the encoder writes frames exactly as the decoder reads them,
    // so all but the end frame of `encode(items)` is a prefix of the input.
    let again = encode(&items);
    let end_frame = bundle::FRAME_OVERHEAD + 36;
    let body = &again[..again.len() - end_frame];
    match &error {
        None => assert_eq!(again, bytes, "a sound bundle re-encodes to its bytes"),
        Some(_) if !items.is_empty() => {
            assert!(
                bytes.starts_with(body),
                "decoded frames are not a prefix of the input"
            )
        }
        Some(_) => {}
    }
});
