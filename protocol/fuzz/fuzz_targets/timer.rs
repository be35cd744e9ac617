//! The check-in timer decoders on arbitrary bytes (PROTOCOL.md §17): a
//! hold and a check-in. Whatever decodes carries a valid signature of the
//! key it names (the fuzzer can only get there with bytes that were
//! signed), encodes back to the same bytes, and a check-in applied to any
//! state either is refused or moves the release no earlier and takes a
//! higher sequence number.
#![no_main]

use amparo_protocol::timer::{self, CheckIn, Hold, Outcome, TimerState};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(hold) = Hold::decode(data) {
        assert_eq!(hold.encode(), data, "hold round trip");
    }
    if let Ok(c) = CheckIn::decode(data) {
        assert_eq!(&c.encode()[..], data, "check-in round trip");
        let state = TimerState {
            release_hour: 500_000,
            seq: 7,
        };
        if let Ok(Outcome::Hold(next)) = timer::apply(state, &c, 499_990) {
            assert!(next.release_hour >= state.release_hour && next.seq > state.seq);
        }
    }
});
