//! Reading many mailboxes at once.
//!
//! A survivor holds one reply mailbox per report, and a facilitator one
//! grant per person whose answers she brings back. Checking them one signed
//! request at a time costs a round trip each — a minute per hundred reports
//! on a 2G link. [`drain`] reads them all with multi-mailbox requests
//! (PROTOCOL.md §12.14): one request per [`MAX_ENTRIES`] mailboxes, plus one
//! more only for mailboxes that had more than a page waiting, and one
//! acknowledgement request for everything filed in a round.

use amparo_protocol::envelope::{Envelope, EnvelopeId};
use amparo_protocol::mailboxes::{FetchAuth, MAX_ACK_IDS, MAX_ENTRIES, MAX_LIMIT};
use amparo_protocol::primitives::ed25519::SigningKey;
use amparo_protocol::{Entropy, UnixTime};

use crate::Result;
use crate::relay::RelayClient;

/// Files one page of one mailbox (its index in the list, its envelopes) and
/// returns the ids to acknowledge.
pub(crate) type FilePage<'a> = dyn FnMut(usize, &[(u64, Envelope)]) -> Result<Vec<EnvelopeId>> + 'a;

/// Reads every envelope waiting in the mailboxes of `auths`. `file` gets
/// each page as `(index into auths, envelopes)` and returns the ids to
/// acknowledge (only entries authorised by a key can acknowledge; ids
/// returned for a grant are ignored). An envelope is acknowledged only
/// after `file` returned, so whatever `file` stored before a cut connection
/// is fetched again next time and must be filed idempotently. `progress`
/// gets `(mailboxes done, total)`.
pub(crate) async fn drain(
    relay: &RelayClient,
    auths: &[FetchAuth<'_>],
    now: &dyn Fn() -> UnixTime,
    entropy: &mut dyn Entropy,
    file: &mut FilePage<'_>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<()> {
    let total = auths.len();
    for (chunk_no, chunk) in auths.chunks(MAX_ENTRIES).enumerate() {
        let base = chunk_no * MAX_ENTRIES;
        let mut cursors = vec![0u64; chunk.len()];
        let mut pending: Vec<usize> = (0..chunk.len()).collect();
        while !pending.is_empty() {
            let entries: Vec<(FetchAuth<'_>, u64)> = pending
                .iter()
                .filter_map(|&i| Some((*chunk.get(i)?, *cursors.get(i)?)))
                .collect();
            let pages = relay
                .fetch_many(&entries, MAX_LIMIT, now(), entropy)
                .await?;
            let mut acks: Vec<(&SigningKey, Vec<EnvelopeId>)> = Vec::new();
            let mut again = Vec::new();
            let mut got_any = false;
            for (&i, page) in pending.iter().zip(pages) {
                // A refused grant (expired) has nothing to read.
                let Some(page) = page else { continue };
                if let Some(((last, _), cursor)) = page.items.last().zip(cursors.get_mut(i)) {
                    *cursor = *last;
                    got_any = true;
                }
                let ids = file(base + i, &page.items)?;
                if let (Some(FetchAuth::Key(key)), false) = (chunk.get(i), ids.is_empty()) {
                    acks.push((key, ids));
                }
                if page.more {
                    again.push(i);
                }
            }
            ack_all(relay, acks, now, entropy).await?;
            // "More" with nothing at all in the answer would ask forever.
            pending = if got_any { again } else { Vec::new() };
        }
        progress((base + chunk.len()).min(total), total);
    }
    Ok(())
}

/// Acknowledges in as few requests as the per-request limits allow.
async fn ack_all(
    relay: &RelayClient,
    acks: Vec<(&SigningKey, Vec<EnvelopeId>)>,
    now: &dyn Fn() -> UnixTime,
    entropy: &mut dyn Entropy,
) -> Result<()> {
    let mut batch: Vec<(&SigningKey, Vec<EnvelopeId>)> = Vec::new();
    let mut ids_in_batch = 0;
    for (key, ids) in acks {
        for (n, part) in ids.chunks(MAX_ACK_IDS).enumerate() {
            // A mailbox appears at most once per request.
            let full = ids_in_batch + part.len() > MAX_ACK_IDS || batch.len() == MAX_ENTRIES;
            if (n > 0 || full) && !batch.is_empty() {
                relay
                    .ack_many(&std::mem::take(&mut batch), now(), entropy)
                    .await?;
                ids_in_batch = 0;
            }
            ids_in_batch += part.len();
            batch.push((key, part.to_vec()));
        }
    }
    if !batch.is_empty() {
        relay.ack_many(&batch, now(), entropy).await?;
    }
    Ok(())
}
