//! `Envelope::decode` on arbitrary bytes. A decoded envelope must hold exactly
//! the input bytes, and its accessors must agree with the wire layout.
#![no_main]

use amparo_protocol::envelope::{self, Envelope, EnvelopeId};
use amparo_protocol::padding;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(env) = Envelope::decode(data) else {
        return;
    };
    assert_eq!(env.as_bytes(), data, "decode must keep the bytes unchanged");
    assert_eq!(env.id(), EnvelopeId::of(data));
    // Display/parse of the id round-trips.
    assert_eq!(EnvelopeId::parse(&env.id().to_string()), Ok(env.id()));
    assert!(padding::is_class(env.size_class()));
    assert_eq!(env.size_class() + envelope::OVERHEAD, data.len());
    assert_eq!(&env.header()[..], &data[..envelope::HEADER_LEN]);
    assert_eq!(&env.mailbox().0[..], &data[2..envelope::HEADER_LEN]);
    // The owning constructor agrees with the borrowing one.
    assert_eq!(Envelope::from_bytes(data.to_vec()).as_ref(), Ok(&env));
    let _ = format!("{env:?}");
});
