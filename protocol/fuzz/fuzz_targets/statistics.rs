//! The statistics decoders on arbitrary bytes (PROTOCOL.md §15): the
//! signed envelope body (`SignedMonthTable::from_json`, then `verify`) and
//! the month's table itself (JSON, then `validate`).
//!
//! A table that validates must sign, travel and verify back to an equal
//! table; a signed body that parses must never verify under a key that
//! did not sign it (the fuzzer cannot forge Ed25519).
#![no_main]

use amparo_protocol::entropy::DangerousSeededEntropy;
use amparo_protocol::primitives::ed25519::SigningKey;
use amparo_protocol::statistics::{MonthTable, SignedMonthTable};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = SigningKey::generate(&mut DangerousSeededEntropy::new(b"fuzz-statistics"))
        .unwrap_or_else(|e| panic!("key: {e}"));
    if let Ok(signed) = SignedMonthTable::from_json(data) {
        assert!(
            signed.verify(&key.verifying_key()).is_err(),
            "a body the fuzzer wrote verified under a key it does not hold"
        );
    }
    let Ok(table) = serde_json::from_slice::<MonthTable>(data) else {
        return;
    };
    if table.validate().is_err() {
        return;
    }
    let Ok(signed) = SignedMonthTable::sign(&table, &key) else {
        // Valid but too large for one envelope once signed: refused, fine.
        return;
    };
    let body = signed
        .to_json()
        .unwrap_or_else(|e| panic!("to_json refused a signed table: {e}"));
    let back = SignedMonthTable::from_json(&body)
        .and_then(|s| s.verify(&key.verifying_key()))
        .unwrap_or_else(|e| panic!("a signed table did not verify back: {e}"));
    assert_eq!(back, table, "statistics table round trip");
});
