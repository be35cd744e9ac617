//! Reading many mailboxes at once, within a data budget.
//!
//! A survivor holds one reply mailbox per report, and a facilitator one
//! grant per person whose answers she brings back. Checking them one signed
//! request at a time costs a round trip each — a minute per hundred reports
//! on a 2G link. [`drain`] reads them all with multi-mailbox requests
//! (PROTOCOL.md §12.14), plus one acknowledgement request for everything
//! filed in a round.
//!
//! Anyone who knows a mailbox id can fill it with junk, and a phone on paid
//! 2G data pays for every byte it reads. So a sweep spends at most a
//! [`ReadBudget`]: before each request it reserves what the answer could
//! cost at worst (every envelope of the largest size class), and sizes the
//! request — how many mailboxes, how many envelopes each — to what is left.
//! The relay cannot be asked for fewer bytes, only for fewer envelopes, so
//! this is how the bound is kept; the answer is also read only up to that
//! size, so a lying relay cannot push past it. Mailboxes take turns (one
//! page each, those with more go to the back of the queue), so one flooded
//! mailbox cannot use up the budget before the others are read; the first
//! mailbox of a sweep is chosen at random, so the same ones are not always
//! last. When the budget is spent the sweep stops and says so; the next
//! sync goes on (the survivor acknowledges what she read, so the relay has
//! deleted it; a facilitator keeps a cursor per grant).

use std::collections::VecDeque;

use amparo_protocol::envelope::{Envelope, EnvelopeId};
use amparo_protocol::mailboxes::{
    FetchAuth, MAX_ACK_IDS, MAX_ENTRIES, MAX_ITEM_LEN, MAX_LIMIT, max_answer_len,
};
use amparo_protocol::primitives::ed25519::SigningKey;
use amparo_protocol::{Entropy, UnixTime};

use crate::Result;
use crate::relay::RelayClient;

/// What a sync may spend reading reply mailboxes when the app says nothing:
/// 1.25 MiB, about a minute of 2G. It reads, in one sync, a reply mailbox
/// that a relay holds full at its default cap (1 MiB: fifteen envelopes of
/// 64 KiB, and an answer behind them). An app on Wi-Fi can give more; one on
/// a metered link that gives less reads a flooded mailbox over several syncs.
pub const DEFAULT_REPLY_BUDGET: u64 = 1280 * 1024;

/// Bytes counted for the HTTP request line and headers of one exchange,
/// both ways (reqwest sends about 170, the relay answers about 150). A TLS
/// handshake on a new connection is not counted.
pub const HTTP_OVERHEAD: u64 = 512;

/// The fetch's exchange and its head (30 bytes).
const FETCH_FIXED: u64 = HTTP_OVERHEAD + 30;
/// One mailbox in the fetch: a grant entry (130 bytes, the larger kind) and
/// a signature (64).
const FETCH_ENTRY: u64 = 130 + 64;
/// One acknowledgement request besides its entries: its head (28 bytes) and
/// the JSON answer (at most 32).
const ACK_REQUEST: u64 = HTTP_OVERHEAD + 28 + 32;
/// One mailbox in an acknowledgement: key, count, signature.
const ACK_ENTRY: u64 = 32 + 2 + 64;
/// One envelope id in an acknowledgement.
const ACK_ID: u64 = 16;
/// The smallest envelope an answer can hold, with its cursor and length
/// (the smallest size class: the client's decoder refuses any other).
const MIN_ITEM: u64 = 12 + 1086;

/// Bytes a round of `mailboxes` mailboxes with `limit` envelopes each can
/// cost at most: the fetch, an answer of `limit` envelopes of the largest
/// size per mailbox — or, if that is more, the most a well-formed answer can
/// hold under the relay's answer budget (`mailboxes::max_answer_len`, which
/// the client also reads no further than) — and the acknowledgements of
/// every envelope in it.
fn round_cost(mailboxes: u64, limit: u64) -> u64 {
    let framing = 2 + 4 * mailboxes;
    let answer = (framing + mailboxes * limit * MAX_ITEM_LEN as u64).min(
        u64::try_from(max_answer_len(
            usize::try_from(mailboxes).unwrap_or(usize::MAX),
        ))
        .unwrap_or(u64::MAX),
    );
    let items = (mailboxes * limit).min(answer.saturating_sub(framing) / MIN_ITEM);
    // Acknowledgements are packed up to MAX_ACK_IDS ids with at most
    // MAX_LIMIT per mailbox, so each request but the last holds more than
    // MAX_ACK_IDS - MAX_LIMIT.
    let ack_requests = items / (MAX_ACK_IDS as u64 - MAX_LIMIT as u64) + 1;
    FETCH_FIXED
        + mailboxes * (FETCH_ENTRY + ACK_ENTRY)
        + answer
        + items * ACK_ID
        + ack_requests * ACK_REQUEST
}

/// The smallest budget: one mailbox, one envelope of the largest size
/// (round_cost(1, 1)). A smaller budget is raised to it, so every sync can
/// make progress.
pub const MIN_BUDGET: u64 =
    FETCH_FIXED + FETCH_ENTRY + ACK_ENTRY + 2 + 4 + MAX_ITEM_LEN as u64 + ACK_ID + ACK_REQUEST;

/// Bytes a sweep may still spend, and what it spent: request and answer
/// bodies, and [`HTTP_OVERHEAD`] per exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadBudget {
    limit: u64,
    spent: u64,
}

impl ReadBudget {
    /// A budget of `bytes`, at least [`MIN_BUDGET`].
    pub fn new(bytes: u64) -> ReadBudget {
        ReadBudget {
            limit: bytes.max(MIN_BUDGET),
            spent: 0,
        }
    }

    /// The budget (after raising it to [`MIN_BUDGET`]).
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes spent so far.
    pub fn spent(&self) -> u64 {
        self.spent
    }

    /// Bytes left.
    pub fn left(&self) -> u64 {
        self.limit.saturating_sub(self.spent)
    }

    fn spend(&mut self, body_bytes: usize) {
        let bytes = u64::try_from(body_bytes).unwrap_or(u64::MAX);
        self.spent = self
            .spent
            .saturating_add(bytes)
            .saturating_add(HTTP_OVERHEAD);
    }
}

impl Default for ReadBudget {
    fn default() -> Self {
        ReadBudget::new(DEFAULT_REPLY_BUDGET)
    }
}

/// How many of `pending` mailboxes the next request covers, and how many
/// envelopes each, so that its worst case fits in `left` bytes; `None` when
/// not even one envelope of one mailbox fits.
fn plan(left: u64, pending: usize) -> Option<(usize, u16)> {
    let most = u64::try_from(pending.min(MAX_ENTRIES)).unwrap_or(0);
    // Each mailbox gets the same share: a flooded one cannot take a quiet
    // one's place.
    let mailboxes = (1..=most).rev().find(|&k| round_cost(k, 1) <= left)?;
    let limit = (1..=u64::from(MAX_LIMIT))
        .rev()
        .find(|&l| round_cost(mailboxes, l) <= left)?;
    Some((usize::try_from(mailboxes).ok()?, u16::try_from(limit).ok()?))
}

/// Files one page of one mailbox (its index in the list, its envelopes) and
/// returns the ids to acknowledge.
pub(crate) type FilePage<'a> = dyn FnMut(usize, &[(u64, Envelope)]) -> Result<Vec<EnvelopeId>> + 'a;

/// Reads the envelopes waiting in the mailboxes of `auths`, from
/// `cursors[i]` on for mailbox `i` (updated to the last cursor read), within
/// `budget`. `file` gets each page as `(index into auths, envelopes)` and
/// returns the ids to acknowledge (only entries authorised by a key can
/// acknowledge; ids returned for a grant are ignored). An envelope is
/// acknowledged only after `file` returned, so whatever `file` stored before
/// a cut connection is fetched again next time and must be filed
/// idempotently. `progress` gets `(mailboxes read to the end, total)`.
///
/// Returns whether every mailbox was read to the end; `false` when the
/// budget ran out first.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn drain(
    relay: &RelayClient,
    auths: &[FetchAuth<'_>],
    cursors: &mut [u64],
    budget: &mut ReadBudget,
    now: &dyn Fn() -> UnixTime,
    entropy: &mut dyn Entropy,
    file: &mut FilePage<'_>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<bool> {
    let total = auths.len().min(cursors.len());
    let mut queue: VecDeque<usize> = (0..total).collect();
    if total > 1 {
        let mut r = [0u8; 4];
        entropy.fill(&mut r)?;
        let start = usize::try_from(u32::from_be_bytes(r)).unwrap_or(0) % total;
        queue.rotate_left(start);
    }
    let mut done = 0;
    while !queue.is_empty() {
        let Some((count, limit)) = plan(budget.left(), queue.len()) else {
            return Ok(false);
        };
        let round: Vec<usize> = queue.drain(..count.min(queue.len())).collect();
        let entries: Vec<(FetchAuth<'_>, u64)> = round
            .iter()
            .filter_map(|&i| Some((*auths.get(i)?, *cursors.get(i)?)))
            .collect();
        let (pages, bytes) = relay
            .fetch_many_metered(&entries, limit, now(), entropy)
            .await?;
        budget.spend(bytes);
        let mut acks: Vec<(&SigningKey, Vec<EnvelopeId>)> = Vec::new();
        let mut again = Vec::new();
        let mut got_any = false;
        for (&i, page) in round.iter().zip(pages) {
            // A refused grant (expired) has nothing to read.
            let Some(page) = page else {
                done += 1;
                continue;
            };
            if let Some(((last, _), cursor)) = page.items.last().zip(cursors.get_mut(i)) {
                *cursor = *last;
                got_any = true;
            }
            let ids = file(i, &page.items)?;
            if let (Some(FetchAuth::Key(key)), false) = (auths.get(i), ids.is_empty()) {
                acks.push((key, ids));
            }
            if page.more {
                again.push(i);
            } else {
                done += 1;
            }
        }
        ack_all(relay, acks, budget, now, entropy).await?;
        if got_any {
            queue.extend(again);
        } else {
            // "More" with nothing at all in the answer would ask forever.
            done += again.len();
        }
        progress(done.min(total), total);
    }
    Ok(true)
}

/// Acknowledges in as few requests as the per-request limits allow.
async fn ack_all(
    relay: &RelayClient,
    acks: Vec<(&SigningKey, Vec<EnvelopeId>)>,
    budget: &mut ReadBudget,
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
                let (_, bytes) = relay
                    .ack_many_metered(&std::mem::take(&mut batch), now(), entropy)
                    .await?;
                budget.spend(bytes);
                ids_in_batch = 0;
            }
            ids_in_batch += part.len();
            batch.push((key, part.to_vec()));
        }
    }
    if !batch.is_empty() {
        let (_, bytes) = relay.ack_many_metered(&batch, now(), entropy).await?;
        budget.spend(bytes);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use amparo_protocol::mailboxes::max_answer_len_for;

    #[test]
    fn the_plan_fits_the_worst_case_in_what_is_left() {
        for left in [
            0,
            MIN_BUDGET - 1,
            MIN_BUDGET,
            256 * 1024,
            DEFAULT_REPLY_BUDGET,
            4 * DEFAULT_REPLY_BUDGET,
            64 * DEFAULT_REPLY_BUDGET,
            u64::MAX,
        ] {
            for pending in [1, 2, 7, 40, 256, 1000] {
                let Some((k, l)) = plan(left, pending) else {
                    assert!(left < MIN_BUDGET, "{left} {pending}");
                    continue;
                };
                assert!(k >= 1 && k <= pending.min(MAX_ENTRIES), "{left} {pending}");
                assert!((1..=MAX_LIMIT).contains(&l));
                let worst = round_cost(k as u64, u64::from(l));
                assert!(worst <= left, "{left} {pending}: {k} x {l}");
                // The answer alone is within what was reserved for it.
                assert!((max_answer_len_for(k, l) as u64) < worst);
                // And nothing bigger would have fitted: one more envelope
                // each, or one more mailbox, goes over.
                if l < MAX_LIMIT {
                    assert!(round_cost(k as u64, u64::from(l) + 1) > left);
                }
                if k < pending.min(MAX_ENTRIES) && l == 1 {
                    assert!(round_cost(k as u64 + 1, 1) > left);
                }
            }
        }
    }

    #[test]
    fn the_default_budget_reads_a_page_of_the_largest_envelopes() {
        // Nineteen 64 KiB envelopes of one mailbox in one round: more than
        // a relay keeps in a reply mailbox at its default cap (1 MiB).
        assert_eq!(plan(DEFAULT_REPLY_BUDGET, 1), Some((1, 19)));
        // Two mailboxes share it.
        assert_eq!(plan(DEFAULT_REPLY_BUDGET, 2), Some((2, 9)));
        // 1 MiB reads fifteen.
        assert_eq!(plan(1024 * 1024, 1), Some((1, 15)));
        // With enough for the relay's largest answer, one request covers
        // every mailbox it can (the answer cannot be longer, whatever the
        // number of mailboxes).
        let all = round_cost(MAX_ENTRIES as u64, 1);
        assert_eq!(plan(all, 1000), Some((MAX_ENTRIES, 1)));
        assert!(all < 6 * 1024 * 1024, "{all}");
        assert_eq!(
            plan(all - 1, 1000).map(|(k, _)| k < MAX_ENTRIES),
            Some(true)
        );
        assert_eq!(round_cost(1, 1), MIN_BUDGET);
        // A tiny budget is raised to one envelope's worth.
        assert_eq!(ReadBudget::new(1).limit(), MIN_BUDGET);
        assert_eq!(plan(ReadBudget::new(1).left(), 5), Some((1, 1)));
    }

    #[test]
    fn spending_counts_headers_and_never_wraps() {
        let mut b = ReadBudget::new(MIN_BUDGET);
        b.spend(100);
        assert_eq!(b.spent(), 100 + HTTP_OVERHEAD);
        b.spend(usize::MAX);
        assert_eq!((b.spent(), b.left()), (u64::MAX, 0));
    }
}
