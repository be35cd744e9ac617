//! The many-mailbox request and answer bodies (`mailboxes`, PROTOCOL.md
//! §12.14/§12.15): the first byte picks the decoder (0 fetch request, of
//! either operation — 0x01, or 0x03 that names its answer's size —,
//! 1 acknowledgement request, 2 fetch answer), the rest is the body.
//! Requests are checked at the seed corpus's time, so signed seeds reach the
//! signature checks; a checked request must respect every documented limit,
//! and an answer that decodes must encode back to the input exactly.
#![no_main]

use amparo_protocol::UnixTime;
use amparo_protocol::mailboxes::{self, FetchResult};
use libfuzzer_sys::fuzz_target;

const NOW: UnixTime = UnixTime(1_790_000_000);

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    match selector % 3 {
        0 => {
            if let Ok(v) = mailboxes::verify_fetch(body, NOW) {
                assert!(!v.entries.is_empty() && v.entries.len() <= mailboxes::MAX_ENTRIES);
                assert!(v.limit >= 1 && v.limit <= mailboxes::MAX_LIMIT);
                assert!(v.entries.iter().all(|e| i64::try_from(e.after).is_ok()));
                // A size the request names (op 3) is within its bounds, and
                // the relay's answer budget never above 4 MiB nor below the
                // framing and one largest envelope.
                if let Some(m) = v.max_bytes {
                    let m = m as usize;
                    assert!(m >= mailboxes::min_answer_len(v.entries.len()));
                    assert!(m <= mailboxes::ANSWER_BUDGET);
                    assert_eq!(v.answer_budget(), m);
                    assert_eq!(v.longest_answer(), m);
                    assert_eq!(body.get(1), Some(&3));
                } else {
                    assert_eq!(v.answer_budget(), mailboxes::ANSWER_BUDGET);
                    assert_eq!(body.get(1), Some(&1));
                }
                assert!(
                    v.answer_budget() >= mailboxes::min_answer_len(v.entries.len()),
                    "room for the first envelope"
                );
            }
        }
        1 => {
            if let Ok(v) = mailboxes::verify_ack(body, NOW) {
                assert!(!v.entries.is_empty() && v.entries.len() <= mailboxes::MAX_ENTRIES);
                let ids: usize = v.entries.iter().map(|e| e.ids.len()).sum();
                assert!(ids <= mailboxes::MAX_ACK_IDS);
            }
        }
        _ => {
            let Some(count) = body.first_chunk::<2>() else {
                return;
            };
            let n = usize::from(u16::from_be_bytes(*count));
            if let Ok(results) = mailboxes::decode_fetch_answer(body, n) {
                let again = mailboxes::encode_fetch_answer(results.into_iter().map(|r| {
                    match r {
                        FetchResult::Refused => FetchResult::Refused,
                        FetchResult::Page { items, more } => FetchResult::Page {
                            items: items
                                .into_iter()
                                .map(|(c, e)| (c, e.into_bytes()))
                                .collect(),
                            more,
                        },
                    }
                }));
                assert_eq!(again, body, "answer round trip");
            }
        }
    }
});
