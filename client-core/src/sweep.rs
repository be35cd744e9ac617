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
//! [`ReadBudget`]: before each request it reserves what the exchange could
//! cost at worst, and asks the relay for an answer of at most what is left
//! (PROTOCOL.md §12.14, op 0x03), so one request covers every mailbox (up
//! to 256) whatever the budget; the answer is read only up to that size, so
//! a lying relay cannot push past it. With a relay that predates such
//! requests (it refuses the first one), the request can only ask for fewer
//! envelopes, not fewer bytes: the sweep then reserves every envelope at the
//! largest size class and sizes the request — how many mailboxes, how many
//! envelopes each — to what is left.
//!
//! Mailboxes take turns, so one flooded mailbox cannot use up the budget
//! before the others are read: every mailbox of a request may bring the
//! same number of envelopes, no more than its share of the answer at the
//! largest size (at least one); those the answer was cut before go first
//! next time, those with more go to the back of the queue; the first
//! mailbox of a sweep is chosen at random, so the same ones are not always
//! last. When the budget is spent the sweep stops and says so; the next
//! sync goes on (the survivor acknowledges what she read, so the relay has
//! deleted it; a facilitator keeps a cursor per grant).

use std::collections::VecDeque;

use amparo_protocol::envelope::{Envelope, EnvelopeId};
use amparo_protocol::mailboxes::{
    ANSWER_BUDGET, FetchAuth, MAX_ACK_IDS, MAX_ENTRIES, MAX_ITEM_LEN, MAX_LIMIT, answer_framing,
    max_answer_len, max_answer_len_for, min_answer_len,
};
use amparo_protocol::primitives::ed25519::SigningKey;
use amparo_protocol::{Entropy, UnixTime};

use crate::Result;
use crate::relay::{FetchWithin, RelayClient};

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
    FETCH_FIXED + mailboxes * FETCH_ENTRY + answer + ack_cost(mailboxes, items)
}

/// Bytes reserved for the acknowledgements of up to `items` envelopes of
/// `mailboxes` mailboxes. Acknowledgements are packed up to MAX_ACK_IDS ids
/// with at most MAX_LIMIT per mailbox, so each request but the last holds
/// more than MAX_ACK_IDS - MAX_LIMIT.
fn ack_cost(mailboxes: u64, items: u64) -> u64 {
    let ack_requests = items / (MAX_ACK_IDS as u64 - MAX_LIMIT as u64) + 1;
    mailboxes * ACK_ENTRY + items * ACK_ID + ack_requests * ACK_REQUEST
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Envelopes per mailbox in a request of `mailboxes` mailboxes whose answer
/// may take `answer` bytes: each mailbox's share of it at the largest size,
/// at least one and at most [`MAX_LIMIT`]. A flooded mailbox then brings no
/// more than its share before the others have had their turn.
fn share(mailboxes: u64, answer: u64) -> u64 {
    let room = answer.saturating_sub(to_u64(answer_framing(
        usize::try_from(mailboxes).unwrap_or(usize::MAX),
    )));
    (room / mailboxes.max(1).saturating_mul(MAX_ITEM_LEN as u64)).clamp(1, u64::from(MAX_LIMIT))
}

/// Bytes a round of `mailboxes` mailboxes in an answer of at most `answer`
/// bytes (op 0x03) can cost at most: the fetch with its size field, the
/// answer, and the acknowledgements of every envelope that can be in it
/// (no more than [`share`] per mailbox, none smaller than the smallest
/// size class).
fn round_cost_within(mailboxes: u64, answer: u64) -> u64 {
    let framing = to_u64(answer_framing(
        usize::try_from(mailboxes).unwrap_or(usize::MAX),
    ));
    let items =
        (mailboxes * share(mailboxes, answer)).min(answer.saturating_sub(framing) / MIN_ITEM);
    FETCH_FIXED + 4 + mailboxes * FETCH_ENTRY + answer + ack_cost(mailboxes, items)
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

/// The next request with a relay that knows op 0x03: how many of
/// `pending` mailboxes (all of them, up to 256, whenever one envelope of
/// the largest size and the framing fit), how many envelopes each (their
/// [`share`]), and the most bytes of the answer — the most whose worst case
/// fits in `left`, no more than the relay's budget, and no more than those
/// envelopes can take. `None` when not even one envelope of one mailbox
/// fits that way (a request of op 0x01, four bytes shorter, may still).
fn plan_within(left: u64, pending: usize) -> Option<(usize, u16, u32)> {
    let most = to_u64(pending.min(MAX_ENTRIES));
    let least = |k: u64| to_u64(min_answer_len(usize::try_from(k).unwrap_or(usize::MAX)));
    let mailboxes = (1..=most)
        .rev()
        .find(|&k| round_cost_within(k, least(k)) <= left)?;
    let k = usize::try_from(mailboxes).ok()?;
    // The largest answer that fits (the cost grows with the answer), by
    // bisection between the least a request may name and the relay's budget.
    let (mut fits, mut over) = (least(mailboxes), to_u64(ANSWER_BUDGET) + 1);
    while over - fits > 1 {
        let mid = fits + (over - fits) / 2;
        if round_cost_within(mailboxes, mid) <= left {
            fits = mid;
        } else {
            over = mid;
        }
    }
    let limit = u16::try_from(share(mailboxes, fits)).ok()?;
    // No more than `limit` envelopes each can take.
    let answer = fits.min(to_u64(max_answer_len_for(k, limit)).max(least(mailboxes)));
    Some((k, limit, u32::try_from(answer).ok()?))
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
        let within = if relay.knows_fetch_within() {
            plan_within(budget.left(), queue.len())
        } else {
            None
        };
        let Some((count, limit, max_bytes)) = within
            .map(|(k, l, m)| (k, l, Some(m)))
            .or_else(|| plan(budget.left(), queue.len()).map(|(k, l)| (k, l, None)))
        else {
            return Ok(false);
        };
        let round: Vec<usize> = queue.drain(..count.min(queue.len())).collect();
        let entries: Vec<(FetchAuth<'_>, u64)> = round
            .iter()
            .filter_map(|&i| Some((*auths.get(i)?, *cursors.get(i)?)))
            .collect();
        let (pages, bytes) = match max_bytes {
            Some(max_bytes) => {
                match relay
                    .fetch_many_within(&entries, limit, max_bytes, now(), entropy)
                    .await?
                {
                    FetchWithin::Answer(pages, bytes) => (pages, bytes),
                    FetchWithin::NotKnown(bytes) => {
                        // A relay that predates op 0x03: the same mailboxes
                        // again, in requests sized to the worst case.
                        budget.spend(bytes);
                        for &i in round.iter().rev() {
                            queue.push_front(i);
                        }
                        continue;
                    }
                }
            }
            None => {
                relay
                    .fetch_many_metered(&entries, limit, now(), entropy)
                    .await?
            }
        };
        budget.spend(bytes);
        let mut acks: Vec<(&SigningKey, Vec<EnvelopeId>)> = Vec::new();
        // Mailboxes the answer was cut before (nothing of theirs in it) go
        // first next time; those that brought a page and have more, last.
        let mut cut_before = Vec::new();
        let mut again = Vec::new();
        let mut got_any = false;
        for (&i, page) in round.iter().zip(pages) {
            // A refused grant (expired) has nothing to read.
            let Some(page) = page else {
                done += 1;
                continue;
            };
            let ids = file(i, &page.items)?;
            // Only once the page is stored: a page `file` failed on is read
            // again next time (a facilitator keeps the cursor, even when the
            // sweep stops with an error).
            if let Some(((last, _), cursor)) = page.items.last().zip(cursors.get_mut(i)) {
                *cursor = *last;
                got_any = true;
            }
            if let (Some(FetchAuth::Key(key)), false) = (auths.get(i), ids.is_empty()) {
                acks.push((key, ids));
            }
            if !page.more {
                done += 1;
            } else if page.items.is_empty() {
                cut_before.push(i);
            } else {
                again.push(i);
            }
        }
        ack_all(relay, acks, budget, now, entropy).await?;
        if got_any {
            queue.extend(cut_before);
            queue.extend(again);
        } else {
            // "More" with nothing at all in the answer would ask forever
            // (a relay always sends the first envelope waiting).
            done += cut_before.len() + again.len();
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
pub(crate) mod tests {
    use super::*;
    use amparo_protocol::envelope;
    use amparo_protocol::keys::MailboxId;

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

    #[test]
    fn one_request_covers_every_mailbox_within_what_is_left() {
        for left in [
            0,
            MIN_BUDGET,
            MIN_BUDGET + 4,
            256 * 1024,
            DEFAULT_REPLY_BUDGET,
            4 * DEFAULT_REPLY_BUDGET,
            64 * DEFAULT_REPLY_BUDGET,
            u64::MAX,
        ] {
            for pending in [1, 2, 7, 40, 100, 256, 1000] {
                let Some((k, l, m)) = plan_within(left, pending) else {
                    // Only below one envelope of the largest size (op 1
                    // then still reads that one).
                    assert!(left < MIN_BUDGET + 4, "{left} {pending}");
                    assert!(left < MIN_BUDGET || plan(left, pending) == Some((1, 1)));
                    continue;
                };
                let m = u64::from(m);
                assert!(k >= 1 && k <= pending.min(MAX_ENTRIES), "{left} {pending}");
                // Every mailbox, up to 256, from a budget of about 100 KiB.
                if left >= 128 * 1024 {
                    assert_eq!(k, pending.min(MAX_ENTRIES), "{left} {pending}");
                }
                assert!(m >= min_answer_len(k) as u64 && m <= ANSWER_BUDGET as u64);
                assert_eq!(u64::from(l), share(k as u64, m), "{left} {pending}");
                let worst = round_cost_within(k as u64, m);
                assert!(worst <= left, "{left} {pending}: {k} x {l} in {m}");
                // Nothing bigger would have fitted or been of use: one byte
                // more goes over, or the answer is at the relay's budget,
                // or it holds `l` of the largest envelopes of every mailbox.
                assert!(
                    round_cost_within(k as u64, m + 1) > left
                        || m == ANSWER_BUDGET as u64
                        || m == max_answer_len_for(k, l) as u64,
                    "{left} {pending}: {k} x {l} in {m}"
                );
            }
        }
    }

    #[test]
    fn the_default_budget_asks_for_its_bytes_not_the_worst_case() {
        // A hundred reply mailboxes (the 2G benchmark's survivor): one
        // request, one envelope each at most, the rest of the budget for
        // the answer.
        let (k, l, m) = plan_within(DEFAULT_REPLY_BUDGET, 100).unwrap();
        assert_eq!((k, l), (100, 1));
        assert!(u64::from(m) > DEFAULT_REPLY_BUDGET - 64 * 1024, "{m}");
        assert_eq!(plan_within(DEFAULT_REPLY_BUDGET, 256).unwrap().0, 256);
        // One or two mailboxes get the same pages as with op 1: the share
        // of each at the largest size.
        assert_eq!(plan_within(DEFAULT_REPLY_BUDGET, 1).unwrap().1, 19);
        assert_eq!(plan_within(DEFAULT_REPLY_BUDGET, 2).unwrap().1, 9);
        // Plenty: the relay's budget, and as many envelopes as it takes.
        let (k, l, m) = plan_within(64 * DEFAULT_REPLY_BUDGET, 1).unwrap();
        assert_eq!((k, l), (1, 63));
        assert_eq!(m as usize, max_answer_len_for(1, 63));
        assert_eq!(
            plan_within(64 * DEFAULT_REPLY_BUDGET, 256).unwrap().2 as usize,
            ANSWER_BUDGET
        );
        // The smallest budget reads one envelope with op 1 (four bytes
        // shorter): the sweep falls back to it.
        assert_eq!(plan_within(MIN_BUDGET, 5), None);
        assert_eq!(plan(MIN_BUDGET, 5), Some((1, 1)));
        assert!(plan_within(MIN_BUDGET + 4, 5).is_some());
    }

    /// A relay on loopback that answers many-mailbox fetches and
    /// acknowledgements from mailboxes in memory as PROTOCOL.md §12.14
    /// says (or, with `knows_within` false, as a relay that predates op 3:
    /// it refuses it as an unknown operation), and logs each fetch.
    pub(crate) mod fake {
        use std::collections::HashMap;
        use std::sync::{Arc, Mutex};

        use amparo_protocol::UnixTime;
        use amparo_protocol::envelope::Envelope;
        use amparo_protocol::keys::MailboxId;
        use amparo_protocol::mailboxes::{self, FetchResult};
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        pub const NOW: UnixTime = UnixTime(1_790_000_000);

        /// What one fetch asked for and got.
        #[derive(Debug, Clone)]
        pub struct Fetch {
            pub max_bytes: Option<u32>,
            pub entries: usize,
            pub answer_len: usize,
            /// Mailboxes that got an envelope, in answer order.
            pub served: Vec<MailboxId>,
        }

        #[derive(Default)]
        pub struct State {
            pub knows_within: bool,
            pub mailboxes: HashMap<MailboxId, Vec<(u64, Envelope)>>,
            pub fetches: Vec<Fetch>,
            pub refused: usize,
        }

        pub async fn start(state: Arc<Mutex<State>>) -> String {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            tokio::spawn(async move {
                while let Ok((mut s, _)) = listener.accept().await {
                    let state = state.clone();
                    tokio::spawn(async move {
                        let mut buf = Vec::new();
                        let mut chunk = [0u8; 16 * 1024];
                        let head_end = loop {
                            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                                break at + 4;
                            }
                            let n = s.read(&mut chunk).await.unwrap();
                            assert!(n > 0);
                            buf.extend_from_slice(&chunk[..n]);
                        };
                        let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map_or(0, |v| v.trim().parse().unwrap());
                        while buf.len() < head_end + len {
                            let n = s.read(&mut chunk).await.unwrap();
                            buf.extend_from_slice(&chunk[..n]);
                        }
                        let body = &buf[head_end..head_end + len];
                        let (status, answer) = if head.starts_with("post /v1/mailboxes/fetch") {
                            fetch(&mut state.lock().unwrap(), body)
                        } else {
                            ack(&mut state.lock().unwrap(), body)
                        };
                        let out = format!(
                            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            answer.len()
                        );
                        s.write_all(out.as_bytes()).await.unwrap();
                        s.write_all(&answer).await.unwrap();
                    });
                }
            });
            url
        }

        fn error(code: &str) -> (u16, Vec<u8>) {
            let body = format!("{{\"error\":\"{code}\",\"message\":\"no\"}}");
            (400, body.into_bytes())
        }

        fn fetch(state: &mut State, body: &[u8]) -> (u16, Vec<u8>) {
            if body.get(1) == Some(&3) && !state.knows_within {
                state.refused += 1;
                return error("invalid_field");
            }
            let v = match mailboxes::verify_fetch(body, NOW) {
                Ok(v) => v,
                Err(e) => return error(e.code()),
            };
            // As the relay does (server/src/shared.rs, within_budget): one
            // envelope past the page tells whether more wait.
            let mut room = v.answer_budget() - mailboxes::answer_framing(v.entries.len());
            let mut served = Vec::new();
            let mut results = Vec::new();
            for entry in &v.entries {
                let page: Vec<&(u64, Envelope)> = state
                    .mailboxes
                    .get(&entry.mailbox)
                    .map(|m| {
                        m.iter()
                            .filter(|(c, _)| *c > entry.after)
                            .take(usize::from(v.limit) + 1)
                            .collect()
                    })
                    .unwrap_or_default();
                let mut more = page.len() > usize::from(v.limit);
                let mut items = Vec::new();
                for (c, e) in page.into_iter().take(usize::from(v.limit)) {
                    let cost = mailboxes::ITEM_HEAD + e.as_bytes().len();
                    if cost > room {
                        room = 0;
                        more = true;
                        break;
                    }
                    room -= cost;
                    served.push(entry.mailbox);
                    items.push((*c, e.as_bytes().to_vec()));
                }
                results.push(FetchResult::Page { items, more });
            }
            let answer = mailboxes::encode_fetch_answer(results);
            state.fetches.push(Fetch {
                max_bytes: v.max_bytes,
                entries: v.entries.len(),
                answer_len: answer.len(),
                served,
            });
            (200, answer)
        }

        fn ack(state: &mut State, body: &[u8]) -> (u16, Vec<u8>) {
            let v = match mailboxes::verify_ack(body, NOW) {
                Ok(v) => v,
                Err(e) => return error(e.code()),
            };
            let mut n = 0;
            for entry in v.entries {
                if let Some(m) = state.mailboxes.get_mut(&entry.mailbox) {
                    let before = m.len();
                    m.retain(|(_, e)| !entry.ids.contains(&e.id()));
                    n += before - m.len();
                }
            }
            (200, format!("{{\"acknowledged\":{n}}}").into_bytes())
        }
    }

    /// The `i`-th envelope of `len` bytes for `mailbox` (framed as a relay
    /// checks, opening with nobody's keys).
    pub(crate) fn junk(mailbox: MailboxId, i: usize, len: usize) -> Envelope {
        let mut b = vec![0x5a; len];
        b[0] = 1;
        b[1] = 1;
        b[2..14].copy_from_slice(&mailbox.0);
        b[14..22].copy_from_slice(&(i as u64).to_be_bytes());
        Envelope::from_bytes(b).unwrap()
    }

    struct Sweep {
        state: std::sync::Arc<std::sync::Mutex<fake::State>>,
        keys: Vec<amparo_protocol::keys::RecipientKeys>,
        relay: RelayClient,
    }

    /// Mailboxes holding `held[i]` envelopes of `len` bytes each, behind a
    /// fake relay.
    async fn sweep_of(held: &[usize], len: usize, knows_within: bool) -> Sweep {
        let mut e = amparo_protocol::entropy::DangerousSeededEntropy::new(b"sweep");
        let keys: Vec<_> = held
            .iter()
            .map(|_| amparo_protocol::keys::RecipientKeys::generate(&mut e).unwrap())
            .collect();
        let mut state = fake::State {
            knows_within,
            ..Default::default()
        };
        let mut cursor = 0;
        for (k, &n) in keys.iter().zip(held) {
            let m = state.mailboxes.entry(k.mailbox()).or_default();
            for i in 0..n {
                cursor += 1;
                m.push((cursor, junk(k.mailbox(), i, len)));
            }
        }
        let state = std::sync::Arc::new(std::sync::Mutex::new(state));
        let url = fake::start(state.clone()).await;
        let relay = RelayClient::new(&crate::relay::RelayConfig::new(url)).unwrap();
        Sweep { state, keys, relay }
    }

    impl Sweep {
        /// One sync within `budget`: whether it read everything, and how
        /// many envelopes of each mailbox it got, in order.
        async fn run(&self, budget: &mut ReadBudget, seed: &[u8]) -> (bool, Vec<usize>) {
            let auths: Vec<FetchAuth<'_>> = self
                .keys
                .iter()
                .map(|k| FetchAuth::Key(k.signing()))
                .collect();
            let mut cursors = vec![0; auths.len()];
            let mut got = vec![0; auths.len()];
            let mut e = amparo_protocol::entropy::DangerousSeededEntropy::new(seed);
            let done = drain(
                &self.relay,
                &auths,
                &mut cursors,
                budget,
                &|| fake::NOW,
                &mut e,
                &mut |i, items| {
                    got[i] += items.len();
                    Ok(items.iter().map(|(_, e)| e.id()).collect())
                },
                &mut |_, _| {},
            )
            .await
            .unwrap();
            (done, got)
        }
    }

    #[tokio::test]
    async fn a_hundred_mailboxes_are_read_in_one_request_within_the_budget() {
        // Every mailbox holds a 1 KiB envelope: one request, one answer
        // within the size it named, one acknowledgement.
        let s = sweep_of(&[1; 100], 1086, true).await;
        let mut budget = ReadBudget::default();
        let (done, got) = s.run(&mut budget, b"one").await;
        assert!(done);
        assert_eq!(got, vec![1; 100]);
        let state = s.state.lock().unwrap();
        assert_eq!(state.fetches.len(), 1, "{:?}", state.fetches);
        let f = &state.fetches[0];
        assert_eq!(f.entries, 100);
        let asked = f.max_bytes.unwrap();
        assert!(f.answer_len <= asked as usize);
        assert!(budget.spent() <= budget.limit());
        assert!(state.mailboxes.values().all(Vec::is_empty));
    }

    #[tokio::test]
    async fn mailboxes_take_turns_when_the_answer_is_cut() {
        // 100 mailboxes of two 64 KiB envelopes each, 8 MiB to spend: an
        // answer (at most 4 MiB) holds about 63 of them, so the relay cuts
        // each one; no mailbox gets its second envelope before every other
        // one got its first.
        let s = sweep_of(&[2; 100], envelope::MAX_LEN, true).await;
        let mut budget = ReadBudget::new(8 * 1024 * 1024);
        let (done, got) = s.run(&mut budget, b"turns").await;
        assert!(!done, "16 MiB do not fit in 8");
        assert!(budget.spent() <= budget.limit());
        let state = s.state.lock().unwrap();
        assert!(state.fetches.len() >= 2, "{:?}", state.fetches.len());
        let mut seen: std::collections::HashMap<MailboxId, usize> = Default::default();
        let mut order = Vec::new();
        for f in &state.fetches {
            assert!(f.answer_len <= f.max_bytes.unwrap() as usize);
            order.extend(&f.served);
        }
        for m in order {
            let n = seen.entry(m).or_default();
            *n += 1;
            if *n == 2 {
                assert_eq!(seen.len(), 100, "a second envelope before all had one");
                assert!(
                    s.keys.iter().all(|k| seen.get(&k.mailbox()) >= Some(&1)),
                    "a second envelope before all had one"
                );
            }
        }
        assert!(got.iter().all(|&n| n >= 1), "{got:?}");
    }

    #[tokio::test]
    async fn a_relay_that_predates_the_size_is_asked_as_before() {
        let s = sweep_of(&[1, 0, 3, 20], 16_446, false).await;
        let mut budget = ReadBudget::default();
        let (done, got) = s.run(&mut budget, b"old").await;
        assert!(done);
        assert_eq!(got, vec![1, 0, 3, 20]);
        assert!(budget.spent() <= budget.limit());
        {
            let state = s.state.lock().unwrap();
            // Refused once; then requests of op 1, sized to the worst case.
            assert_eq!(state.refused, 1);
            assert!(state.fetches.iter().all(|f| f.max_bytes.is_none()));
            assert!(state.fetches.len() >= 2, "{:?}", state.fetches);
        }
        assert!(!s.relay.knows_fetch_within());
        // The next sync with this client does not ask again.
        let mut budget = ReadBudget::default();
        let (done, _) = s.run(&mut budget, b"old again").await;
        assert!(done);
        assert_eq!(s.state.lock().unwrap().refused, 1);
    }

    #[tokio::test]
    async fn a_page_that_is_not_filed_keeps_its_cursor() {
        let s = sweep_of(&[2, 3], 1086, true).await;
        let auths: Vec<FetchAuth<'_>> =
            s.keys.iter().map(|k| FetchAuth::Key(k.signing())).collect();
        let mut cursors = vec![0; 2];
        let mut e = amparo_protocol::entropy::DangerousSeededEntropy::new(b"fails");
        let failed = drain(
            &s.relay,
            &auths,
            &mut cursors,
            &mut ReadBudget::default(),
            &|| fake::NOW,
            &mut e,
            &mut |i, items| {
                if i == 1 {
                    Err(crate::CoreError::Io("the disk is full".into()))
                } else {
                    Ok(items.iter().map(|(_, e)| e.id()).collect())
                }
            },
            &mut |_, _| {},
        )
        .await;
        assert!(failed.is_err());
        assert_eq!(cursors[1], 0, "the cursor moved past a page not stored");
        // The next sweep from the cursors kept reads that page again.
        let mut got = [0; 2];
        let done = drain(
            &s.relay,
            &auths,
            &mut cursors,
            &mut ReadBudget::default(),
            &|| fake::NOW,
            &mut e,
            &mut |i, items| {
                got[i] += items.len();
                Ok(items.iter().map(|(_, e)| e.id()).collect())
            },
            &mut |_, _| {},
        )
        .await
        .unwrap();
        assert!(done);
        assert_eq!(got[1], 3);
        // And acknowledges it.
        let mailbox = s.keys[1].mailbox();
        assert!(s.state.lock().unwrap().mailboxes[&mailbox].is_empty());
    }
}
