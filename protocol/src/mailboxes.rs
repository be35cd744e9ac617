//! Requests that cover many mailboxes at once.
//!
//! A survivor holds one reply mailbox per report she sent, so checking them
//! with one signed request each ([`crate::request`]) costs one round trip per
//! report: on a 2G link with a 600 ms round trip, a hundred reports cost a
//! minute of waiting for almost no bytes. DESIGN.md asks for a sync of N
//! reports in O(1) round trips; these two requests give it:
//!
//! - `POST /v1/mailboxes/fetch` ([`sign_fetch`], [`sign_fetch_within`]):
//!   one page of each of up to [`MAX_ENTRIES`] mailboxes, each entry
//!   authorised by the mailbox's own key (a signature) or by a survivor's
//!   [`FetchGrant`] (a facilitator fetching sealed replies she may not
//!   open), in an answer of at most a number of bytes the request names;
//! - `POST /v1/mailboxes/ack` ([`AckRequest`]): acknowledges envelopes of
//!   many mailboxes, each entry signed by its mailbox's key.
//!
//! Every key in the request signs the same digest of the whole request (its
//! timestamp, nonce, and every entry), so no entry can be removed, added or
//! changed, and the request cannot be replayed once the relay remembers its
//! replay id or its timestamp is five minutes old.
//!
//! What this tells the relay: that the mailboxes in one request are fetched
//! together. The relay keeps nothing of it (no log, no table): the link lives
//! only as long as the request, as it does when one phone checks its
//! mailboxes one after the other over one connection.
//!
//! ```text
//! request      = 0x01 || op (1) || timestamp (8) || nonce (16) || body || signature (64){keys}
//! fetch body   = limit (2) || count (2) || fetch entry{count}      op = 0x01
//!              | max_bytes (4) || limit (2) || count (2) || fetch entry{count}
//!                                                                  op = 0x03
//! fetch entry  = 0x01 || key (32) || after (8)                     signed by key
//!              | 0x02 || grant (121) || after (8)                  no signature
//! ack body     = count (2) || (key (32) || n (2) || id (16){n}){count}   op = 0x02
//! signature_i  = Ed25519 over "amparo-mailboxes-v1" || 0x00 || SHA-256(request up to the signatures)
//!                by the i-th key entry, in order
//! fetch answer = count (2) || result{count}, in the order of the entries;
//!                at most max_bytes in all (op 0x01: ANSWER_BUDGET)
//! result       = 0x00 (grant refused: expired, or valid too long)
//!              | 0x01 || more (1) || n (2) || (cursor (8) || length (4) || envelope){n}
//! ```
//!
//! Op 0x03 is op 0x01 with the most bytes the answer may take, framing
//! included ([`min_answer_len`] to [`ANSWER_BUDGET`]), so that a phone on
//! paid data can read all its mailboxes in one request within what it chose
//! to spend. A relay that predates it refuses it as an unknown operation
//! (`400 invalid_field`), and the phone then asks with op 0x01, sized to
//! the worst case as before.

use crate::codec::Reader;
use crate::entropy::{Entropy, random};
use crate::envelope::{self, Envelope, EnvelopeId};
use crate::grant::{self, FetchGrant};
use crate::keys::MailboxId;
use crate::primitives::ed25519::{self, SIGNATURE_LEN, SigningKey, VerifyingKey};
use crate::primitives::{sha256, sha256_prefix};
use crate::request::MAX_SKEW_SECS;
use crate::{ProtocolError, Result, UnixTime};

/// Path of the multi-mailbox fetch.
pub const FETCH_PATH: &str = "/v1/mailboxes/fetch";
/// Path of the multi-mailbox acknowledgement.
pub const ACK_PATH: &str = "/v1/mailboxes/ack";
/// Most mailboxes in one request.
pub const MAX_ENTRIES: usize = 256;
/// Most envelope ids in one acknowledgement request (all entries together).
pub const MAX_ACK_IDS: usize = 1000;
/// Largest request body (48 KiB): above the largest well-formed request,
/// a full acknowledgement (41 116 bytes) or a full fetch of grants (33 310;
/// 33 314 naming its answer's size).
pub const MAX_BODY: usize = 48 * 1024;
/// Most envelopes per mailbox in one answer.
pub const MAX_LIMIT: u16 = 100;
/// Most bytes of a fetch answer, framing included: what a request that names
/// no size gets (op 0x01), and the most one may name (op 0x03). Past it the
/// remaining mailboxes answer an empty page with "more" set.
pub const ANSWER_BUDGET: usize = 4 * 1024 * 1024;
/// Bytes of an answer's framing for `entries` mailboxes: its count, and the
/// head of every page (a refused entry takes less).
pub fn answer_framing(entries: usize) -> usize {
    2usize.saturating_add(entries.saturating_mul(4))
}
/// The fewest bytes a fetch of `entries` mailboxes may ask for (op 0x03):
/// the framing and one envelope of the largest size, so that the first
/// envelope waiting always fits and every answer makes progress.
pub fn min_answer_len(entries: usize) -> usize {
    answer_framing(entries).saturating_add(MAX_ITEM_LEN)
}
/// Most bytes a fetch answer for `entries` mailboxes can take from a relay
/// that predates op 0x03 (to a request of op 0x01): 4 MiB of envelopes
/// plus one envelope, and the framing of the most items that fit (each at
/// least [`envelope::OVERHEAD`] bytes) and of every entry. A current relay
/// answers within [`ANSWER_BUDGET`], framing included. A client stops
/// reading an answer past it, so a lying relay cannot fill a phone's memory.
pub fn max_answer_len(entries: usize) -> usize {
    let envelopes = ANSWER_BUDGET + envelope::MAX_LEN;
    let items = envelopes / envelope::OVERHEAD;
    2 + entries.saturating_mul(4) + envelopes + items * 12
}

/// Bytes of an answer's framing for one envelope: its cursor and length.
pub const ITEM_HEAD: usize = 12;
/// Bytes one envelope can take in a fetch answer: cursor, length, and the
/// largest envelope.
pub const MAX_ITEM_LEN: usize = ITEM_HEAD + envelope::MAX_LEN;

/// Most bytes a well-formed answer to a fetch of op 0x01 for `entries`
/// mailboxes with `limit` envelopes each can take: no more than
/// [`max_answer_len`], and no more than `limit` of the largest envelopes
/// per mailbox. A request of op 0x01 cannot ask for fewer bytes, but `limit`
/// and the number of entries bound the answer, which is how a phone on paid
/// data keeps a fetch within what it chose to spend from a relay that does
/// not know op 0x03.
pub fn max_answer_len_for(entries: usize, limit: u16) -> usize {
    let pages = entries
        .saturating_mul(usize::from(limit))
        .saturating_mul(MAX_ITEM_LEN);
    (2 + entries.saturating_mul(4))
        .saturating_add(pages)
        .min(max_answer_len(entries))
}

const VERSION: u8 = 1;
const OP_FETCH: u8 = 1;
const OP_ACK: u8 = 2;
const OP_FETCH_WITHIN: u8 = 3;
const ENTRY_KEY: u8 = 1;
const ENTRY_GRANT: u8 = 2;
const CONTEXT: &[u8] = b"amparo-mailboxes-v1";
const REPLAY_CONTEXT: &[u8] = b"amparo-mailboxes-replay-v1";

/// How the client authorises one mailbox of a fetch.
#[derive(Clone, Copy)]
pub enum FetchAuth<'a> {
    /// The mailbox's own key: the request carries its signature.
    Key(&'a SigningKey),
    /// A survivor's read-only grant (a facilitator fetching for her).
    Grant(&'a FetchGrant),
}

/// One mailbox of a checked fetch request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchEntry {
    /// The mailbox.
    pub mailbox: MailboxId,
    /// Fetch envelopes with a cursor above this one.
    pub after: u64,
    /// Whether the entry may be read: always for a signed entry; for a grant,
    /// whether it is still valid at the relay's time.
    pub allowed: bool,
}

/// A fetch request whose signatures, grants and freshness were checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedFetch {
    /// Most envelopes per mailbox the client wants (1..=[`MAX_LIMIT`]).
    pub limit: u16,
    /// Most bytes of the answer, framing included, when the request named
    /// it (op 0x03; [`min_answer_len`]..=[`ANSWER_BUDGET`]).
    pub max_bytes: Option<u32>,
    /// The mailboxes, in request order.
    pub entries: Vec<FetchEntry>,
    /// What the relay remembers to refuse a replay.
    pub replay_id: [u8; 16],
    /// Until when the replay id must be remembered.
    pub replay_horizon: UnixTime,
}

impl VerifiedFetch {
    /// Most bytes the relay's answer may take, framing included: what the
    /// request named, or [`ANSWER_BUDGET`].
    pub fn answer_budget(&self) -> usize {
        self.max_bytes
            .map_or(ANSWER_BUDGET, |m| {
                usize::try_from(m).unwrap_or(ANSWER_BUDGET)
            })
            .min(ANSWER_BUDGET)
    }

    /// Most bytes an answer to this request can take from any relay that
    /// accepts it: what it named (only a current relay accepts op 0x03), or
    /// what a relay that predates op 0x03 may send ([`max_answer_len`]).
    /// What a field relay reads from its upstream no further than.
    pub fn longest_answer(&self) -> usize {
        match self.max_bytes {
            Some(_) => self.answer_budget(),
            None => max_answer_len(self.entries.len()),
        }
    }
}

/// One mailbox of a checked acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckEntry {
    /// The mailbox.
    pub mailbox: MailboxId,
    /// The envelopes to delete from it.
    pub ids: Vec<EnvelopeId>,
}

/// An acknowledgement whose signatures and freshness were checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAck {
    /// The mailboxes, in request order.
    pub entries: Vec<AckEntry>,
    /// What the relay remembers to refuse a replay.
    pub replay_id: [u8; 16],
    /// Until when the replay id must be remembered.
    pub replay_horizon: UnixTime,
}

/// One mailbox's part of a fetch answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchResult<E> {
    /// The grant for this mailbox was refused (expired or valid too long).
    Refused,
    /// A page of the mailbox.
    Page {
        /// `(cursor, envelope)` in cursor order.
        items: Vec<(u64, E)>,
        /// Whether more envelopes wait after the last one.
        more: bool,
    },
}

fn header(op: u8, now: UnixTime, entropy: &mut dyn Entropy) -> Result<Vec<u8>> {
    let nonce: [u8; 16] = random(entropy)?;
    let mut out = Vec::with_capacity(1024);
    out.push(VERSION);
    out.push(op);
    out.extend_from_slice(&now.0.to_be_bytes());
    out.extend_from_slice(&nonce);
    Ok(out)
}

fn count_u16(n: usize, what: &'static str, max: usize) -> Result<[u8; 2]> {
    if n == 0 || n > max {
        return Err(ProtocolError::TooLarge { what, len: n, max });
    }
    Ok(u16::try_from(n)
        .map_err(|_| ProtocolError::Invalid(what))?
        .to_be_bytes())
}

fn append_signatures(mut unsigned: Vec<u8>, keys: &[&SigningKey]) -> Vec<u8> {
    let digest = sha256(&[&unsigned]);
    for key in keys {
        let sig = key.sign(&[CONTEXT, &[0], &digest]);
        unsigned.extend_from_slice(&sig);
    }
    unsigned
}

/// Builds a signed fetch of one page (up to `limit` envelopes) of each
/// mailbox in `entries`, each given with the cursor to fetch after (op
/// 0x01: the answer takes up to [`ANSWER_BUDGET`] bytes).
pub fn sign_fetch(
    entries: &[(FetchAuth<'_>, u64)],
    limit: u16,
    now: UnixTime,
    entropy: &mut dyn Entropy,
) -> Result<Vec<u8>> {
    build_fetch(entries, limit, None, now, entropy)
}

/// [`sign_fetch`] with the most bytes the answer may take, framing
/// included (op 0x03): from [`min_answer_len`] of the number of entries to
/// [`ANSWER_BUDGET`]. The relay stops adding envelopes when the next would
/// go over it and sets "more" on the pages it cut; a client reads the answer
/// no further than `max_bytes`.
pub fn sign_fetch_within(
    entries: &[(FetchAuth<'_>, u64)],
    limit: u16,
    max_bytes: u32,
    now: UnixTime,
    entropy: &mut dyn Entropy,
) -> Result<Vec<u8>> {
    check_max_bytes(max_bytes, entries.len())?;
    build_fetch(entries, limit, Some(max_bytes), now, entropy)
}

fn check_max_bytes(max_bytes: u32, entries: usize) -> Result<()> {
    let m = usize::try_from(max_bytes).unwrap_or(usize::MAX);
    if m < min_answer_len(entries) || m > ANSWER_BUDGET {
        return Err(ProtocolError::Invalid("answer size"));
    }
    Ok(())
}

fn build_fetch(
    entries: &[(FetchAuth<'_>, u64)],
    limit: u16,
    max_bytes: Option<u32>,
    now: UnixTime,
    entropy: &mut dyn Entropy,
) -> Result<Vec<u8>> {
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ProtocolError::Invalid("page limit"));
    }
    let mut out = match max_bytes {
        None => header(OP_FETCH, now, entropy)?,
        Some(m) => {
            let mut out = header(OP_FETCH_WITHIN, now, entropy)?;
            out.extend_from_slice(&m.to_be_bytes());
            out
        }
    };
    out.extend_from_slice(&limit.to_be_bytes());
    out.extend_from_slice(&count_u16(
        entries.len(),
        "mailboxes in a request",
        MAX_ENTRIES,
    )?);
    let mut keys = Vec::new();
    for (auth, after) in entries {
        match auth {
            FetchAuth::Key(k) => {
                out.push(ENTRY_KEY);
                out.extend_from_slice(k.verifying_key().as_bytes());
                keys.push(*k);
            }
            FetchAuth::Grant(g) => {
                out.push(ENTRY_GRANT);
                out.extend_from_slice(g.as_bytes());
            }
        }
        out.extend_from_slice(&after.to_be_bytes());
    }
    Ok(append_signatures(out, &keys))
}

/// Builds a signed acknowledgement of envelopes of many mailboxes; each
/// entry's ids belong to the mailbox of its key.
pub fn sign_ack(
    entries: &[(&SigningKey, Vec<EnvelopeId>)],
    now: UnixTime,
    entropy: &mut dyn Entropy,
) -> Result<Vec<u8>> {
    let total: usize = entries.iter().map(|(_, ids)| ids.len()).sum();
    if total > MAX_ACK_IDS {
        return Err(ProtocolError::TooLarge {
            what: "envelope ids in an acknowledgement",
            len: total,
            max: MAX_ACK_IDS,
        });
    }
    let mut out = header(OP_ACK, now, entropy)?;
    out.extend_from_slice(&count_u16(
        entries.len(),
        "mailboxes in a request",
        MAX_ENTRIES,
    )?);
    let mut keys = Vec::with_capacity(entries.len());
    for (key, ids) in entries {
        out.extend_from_slice(key.verifying_key().as_bytes());
        out.extend_from_slice(&count_u16(
            ids.len(),
            "envelope ids of a mailbox",
            MAX_ACK_IDS,
        )?);
        for id in ids {
            out.extend_from_slice(&id.0);
        }
        keys.push(*key);
    }
    Ok(append_signatures(out, &keys))
}

/// The part every request shares, read and checked for freshness.
struct Head {
    op: u8,
    timestamp: u64,
}

fn read_head(r: &mut Reader<'_>, now: UnixTime) -> Result<Head> {
    let version = r.u8()?;
    crate::codec::expect_version("mailboxes request", version, VERSION)?;
    let op = r.u8()?;
    let timestamp = r.u64()?;
    let _nonce: [u8; 16] = r.array()?;
    if timestamp.abs_diff(now.0) > MAX_SKEW_SECS {
        return Err(ProtocolError::StaleRequest);
    }
    Ok(Head { op, timestamp })
}

fn read_count(r: &mut Reader<'_>, what: &'static str, max: usize) -> Result<usize> {
    let n = usize::from(u16::from_be_bytes(r.array()?));
    if n == 0 || n > max {
        return Err(ProtocolError::TooLarge { what, len: n, max });
    }
    Ok(n)
}

/// Checks the trailing signatures: one per key, in order, over the digest
/// of everything before them.
fn check_signatures(body: &[u8], signed_len: usize, keys: &[VerifyingKey]) -> Result<[u8; 32]> {
    let signed = body
        .get(..signed_len)
        .ok_or(ProtocolError::Invalid("mailboxes request"))?;
    let sigs = body.get(signed_len..).unwrap_or_default();
    if sigs.len() != keys.len() * SIGNATURE_LEN {
        return Err(if sigs.len() < keys.len() * SIGNATURE_LEN {
            ProtocolError::Truncated {
                needed: keys.len() * SIGNATURE_LEN - sigs.len(),
            }
        } else {
            ProtocolError::TrailingBytes(sigs.len() - keys.len() * SIGNATURE_LEN)
        });
    }
    let digest = sha256(&[signed]);
    for (key, sig) in keys.iter().zip(sigs.chunks_exact(SIGNATURE_LEN)) {
        key.verify(&[CONTEXT, &[0], &digest], sig, "mailboxes request")?;
    }
    Ok(digest)
}

fn no_duplicates(mailboxes: &mut [MailboxId]) -> Result<()> {
    mailboxes.sort_unstable_by_key(|m| m.0);
    if mailboxes.windows(2).any(|w| matches!(w, [a, b] if a == b)) {
        return Err(ProtocolError::Invalid(
            "the same mailbox twice in one request",
        ));
    }
    Ok(())
}

fn replay(digest: &[u8; 32], timestamp: u64) -> ([u8; 16], UnixTime) {
    (
        sha256_prefix(&[REPLAY_CONTEXT, digest]),
        UnixTime(timestamp.saturating_add(MAX_SKEW_SECS)),
    )
}

/// Parses and checks a fetch request at the relay's time `now`: framing,
/// freshness, every signature and every grant's signature. A grant that is
/// signed but expired does not fail the request: its entry is not
/// [`FetchEntry::allowed`]. The caller must still check the replay id.
pub fn verify_fetch(body: &[u8], now: UnixTime) -> Result<VerifiedFetch> {
    if body.len() > MAX_BODY {
        return Err(ProtocolError::TooLarge {
            what: "mailboxes request",
            len: body.len(),
            max: MAX_BODY,
        });
    }
    let mut r = Reader::new(body);
    let head = read_head(&mut r, now)?;
    let max_bytes = match head.op {
        OP_FETCH => None,
        OP_FETCH_WITHIN => Some(u32::from_be_bytes(r.array()?)),
        _ => return Err(ProtocolError::Invalid("mailboxes request operation")),
    };
    let limit = u16::from_be_bytes(r.array()?);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ProtocolError::Invalid("page limit"));
    }
    let n = read_count(&mut r, "mailboxes in a request", MAX_ENTRIES)?;
    if let Some(m) = max_bytes {
        check_max_bytes(m, n)?;
    }
    let mut entries = Vec::with_capacity(n);
    let mut keys = Vec::new();
    for _ in 0..n {
        let (mailbox, allowed) = match r.u8()? {
            ENTRY_KEY => {
                let key = ed25519::VerifyingKey(r.array()?);
                keys.push(key);
                (MailboxId::for_key(&key), true)
            }
            ENTRY_GRANT => {
                let g = FetchGrant::decode(r.take(grant::LEN)?)?;
                (g.mailbox(), g.allows(&g.mailbox(), now).is_ok())
            }
            _ => return Err(ProtocolError::Invalid("mailboxes request entry")),
        };
        let after = r.u64()?;
        if i64::try_from(after).is_err() {
            return Err(ProtocolError::Invalid("cursor"));
        }
        entries.push(FetchEntry {
            mailbox,
            after,
            allowed,
        });
    }
    let signed_len = body.len() - r.remaining();
    let digest = check_signatures(body, signed_len, &keys)?;
    no_duplicates(&mut entries.iter().map(|e| e.mailbox).collect::<Vec<_>>())?;
    let (replay_id, replay_horizon) = replay(&digest, head.timestamp);
    Ok(VerifiedFetch {
        limit,
        max_bytes,
        entries,
        replay_id,
        replay_horizon,
    })
}

/// Parses and checks an acknowledgement at the relay's time `now`. The
/// caller must still check the replay id.
pub fn verify_ack(body: &[u8], now: UnixTime) -> Result<VerifiedAck> {
    if body.len() > MAX_BODY {
        return Err(ProtocolError::TooLarge {
            what: "mailboxes request",
            len: body.len(),
            max: MAX_BODY,
        });
    }
    let mut r = Reader::new(body);
    let head = read_head(&mut r, now)?;
    if head.op != OP_ACK {
        return Err(ProtocolError::Invalid("mailboxes request operation"));
    }
    let n = read_count(&mut r, "mailboxes in a request", MAX_ENTRIES)?;
    let mut entries = Vec::with_capacity(n);
    let mut keys = Vec::with_capacity(n);
    let mut total = 0usize;
    for _ in 0..n {
        let key = ed25519::VerifyingKey(r.array()?);
        let count = read_count(&mut r, "envelope ids of a mailbox", MAX_ACK_IDS)?;
        total += count;
        if total > MAX_ACK_IDS {
            return Err(ProtocolError::TooLarge {
                what: "envelope ids in an acknowledgement",
                len: total,
                max: MAX_ACK_IDS,
            });
        }
        let mut ids = Vec::with_capacity(count);
        for _ in 0..count {
            ids.push(EnvelopeId(r.array()?));
        }
        keys.push(key);
        entries.push(AckEntry {
            mailbox: MailboxId::for_key(&key),
            ids,
        });
    }
    let signed_len = body.len() - r.remaining();
    let digest = check_signatures(body, signed_len, &keys)?;
    no_duplicates(&mut entries.iter().map(|e| e.mailbox).collect::<Vec<_>>())?;
    let (replay_id, replay_horizon) = replay(&digest, head.timestamp);
    Ok(VerifiedAck {
        entries,
        replay_id,
        replay_horizon,
    })
}

/// Encodes a fetch answer, one result per entry of the request, in order.
pub fn encode_fetch_answer<I: AsRef<[u8]>>(
    results: impl IntoIterator<Item = FetchResult<I>>,
) -> Vec<u8> {
    let mut out = vec![0, 0];
    let mut count: u16 = 0;
    for result in results {
        count = count.saturating_add(1);
        match result {
            FetchResult::Refused => out.push(0),
            FetchResult::Page { items, more } => {
                out.push(1);
                out.push(u8::from(more));
                let n = u16::try_from(items.len()).unwrap_or(u16::MAX);
                out.extend_from_slice(&n.to_be_bytes());
                for (cursor, bytes) in items.iter().take(usize::from(n)) {
                    let bytes = bytes.as_ref();
                    out.extend_from_slice(&cursor.to_be_bytes());
                    out.extend_from_slice(
                        &u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes(),
                    );
                    out.extend_from_slice(bytes);
                }
            }
        }
    }
    if let Some(head) = out.get_mut(..2) {
        head.copy_from_slice(&count.to_be_bytes());
    }
    out
}

/// Decodes a fetch answer. `expected` is the number of entries the request
/// had; an answer with another number of results is refused.
pub fn decode_fetch_answer(body: &[u8], expected: usize) -> Result<Vec<FetchResult<Envelope>>> {
    let mut r = Reader::new(body);
    let n = usize::from(u16::from_be_bytes(r.array()?));
    if n != expected {
        return Err(ProtocolError::Invalid("number of results from the relay"));
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        match r.u8()? {
            0 => out.push(FetchResult::Refused),
            1 => {
                let more = match r.u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err(ProtocolError::Invalid("more flag")),
                };
                let count = usize::from(u16::from_be_bytes(r.array()?));
                let mut items = Vec::with_capacity(count.min(usize::from(MAX_LIMIT)));
                for _ in 0..count {
                    let cursor = r.u64()?;
                    let len = usize::try_from(r.u32()?).unwrap_or(usize::MAX);
                    if len > envelope::MAX_LEN {
                        return Err(ProtocolError::TooLarge {
                            what: "envelope",
                            len,
                            max: envelope::MAX_LEN,
                        });
                    }
                    items.push((cursor, Envelope::decode(r.take(len)?)?));
                }
                out.push(FetchResult::Page { items, more });
            }
            _ => return Err(ProtocolError::Invalid("result tag")),
        }
    }
    r.finish()?;
    Ok(out)
}

/// The mailbox an entry of [`sign_fetch`] is for (what the client matches
/// the answer's envelopes against).
pub fn mailbox_of(auth: &FetchAuth<'_>) -> MailboxId {
    match auth {
        FetchAuth::Key(k) => MailboxId::for_key(&k.verifying_key()),
        FetchAuth::Grant(g) => g.mailbox(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::DangerousSeededEntropy;
    use crate::keys::RecipientKeys;
    use proptest::prelude::*;

    const NOW: UnixTime = UnixTime(1_790_000_000);

    fn keys(n: usize, e: &mut DangerousSeededEntropy) -> Vec<RecipientKeys> {
        (0..n)
            .map(|_| RecipientKeys::generate(e).unwrap())
            .collect()
    }

    #[test]
    fn a_full_answer_fits_the_bound_its_limit_sets() {
        // Bytes of the largest size class: the encoder does not look inside.
        let env = vec![0u8; envelope::MAX_LEN];
        for (entries, limit) in [(1usize, 1u16), (1, 15), (3, 5), (16, 1)] {
            let page = |_| FetchResult::Page {
                items: (0..limit)
                    .map(|c| (u64::from(c) + 1, env.clone()))
                    .collect(),
                more: true,
            };
            let answer = encode_fetch_answer((0..entries).map(page));
            assert_eq!(
                answer.len(),
                max_answer_len_for(entries, limit),
                "{entries} x {limit}"
            );
        }
        // Past the relay's own budget, its bound is the one that holds.
        assert_eq!(max_answer_len_for(256, 100), max_answer_len(256));
        assert!(max_answer_len_for(1, 1) < max_answer_len(1));
    }

    #[test]
    fn fetch_round_trip_with_keys_and_grants() {
        let mut e = DangerousSeededEntropy::new(b"mailboxes");
        let ks = keys(3, &mut e);
        let live = FetchGrant::sign(ks[1].signing(), UnixTime(NOW.0 + 3600));
        let expired = FetchGrant::sign(ks[2].signing(), UnixTime(NOW.0 - 1));
        let body = sign_fetch(
            &[
                (FetchAuth::Key(ks[0].signing()), 7),
                (FetchAuth::Grant(&live), 0),
                (FetchAuth::Grant(&expired), 3),
            ],
            50,
            NOW,
            &mut e,
        )
        .unwrap();
        let v = verify_fetch(&body, UnixTime(NOW.0 + 10)).unwrap();
        assert_eq!(v.limit, 50);
        assert_eq!(
            v.entries,
            vec![
                FetchEntry {
                    mailbox: ks[0].mailbox(),
                    after: 7,
                    allowed: true
                },
                FetchEntry {
                    mailbox: ks[1].mailbox(),
                    after: 0,
                    allowed: true
                },
                FetchEntry {
                    mailbox: ks[2].mailbox(),
                    after: 3,
                    allowed: false
                },
            ]
        );
        assert_eq!(v.replay_horizon, UnixTime(NOW.0 + MAX_SKEW_SECS));
        // Same request again: same replay id (the relay refuses it); a new
        // one: another.
        assert_eq!(verify_fetch(&body, NOW).unwrap().replay_id, v.replay_id);
        let again = sign_fetch(&[(FetchAuth::Key(ks[0].signing()), 7)], 50, NOW, &mut e).unwrap();
        assert_ne!(verify_fetch(&again, NOW).unwrap().replay_id, v.replay_id);
    }

    #[test]
    fn a_fetch_names_the_most_bytes_of_its_answer() {
        let mut e = DangerousSeededEntropy::new(b"mailboxes-within");
        let ks = keys(2, &mut e);
        let live = FetchGrant::sign(ks[1].signing(), UnixTime(NOW.0 + 3600));
        let entries = [
            (FetchAuth::Key(ks[0].signing()), 7),
            (FetchAuth::Grant(&live), 0),
        ];
        let body = sign_fetch_within(&entries, 9, 300_000, NOW, &mut e).unwrap();
        // Op 3, and the size right after the nonce.
        assert_eq!(body[1], 3);
        assert_eq!(&body[26..30], &300_000u32.to_be_bytes());
        assert_eq!(&body[30..34], &[0, 9, 0, 2]);
        let v = verify_fetch(&body, NOW).unwrap();
        assert_eq!((v.limit, v.max_bytes), (9, Some(300_000)));
        assert_eq!(v.answer_budget(), 300_000);
        assert_eq!(v.longest_answer(), 300_000);
        assert_eq!(v.entries.len(), 2);
        assert_eq!(v.entries[0].after, 7);
        // Without it: the relay's budget, and what an older relay may send.
        let old = sign_fetch(&entries, 9, NOW, &mut e).unwrap();
        let v = verify_fetch(&old, NOW).unwrap();
        assert_eq!(v.max_bytes, None);
        assert_eq!(v.answer_budget(), ANSWER_BUDGET);
        assert_eq!(v.longest_answer(), max_answer_len(2));
        // Every bit of it is signed; stripping it (a request of op 1 with
        // the same entries and signatures) does not verify either.
        for i in 0..body.len() {
            let mut t = body.clone();
            t[i] ^= 0x01;
            assert!(verify_fetch(&t, NOW).is_err(), "bit flip at byte {i}");
        }
        let mut stripped = body.clone();
        stripped[1] = 1;
        stripped.drain(26..30);
        assert!(matches!(
            verify_fetch(&stripped, NOW),
            Err(ProtocolError::BadSignature(_))
        ));
        // The bounds: one envelope of the largest size with the framing of
        // every entry, up to the relay's budget.
        let least = u32::try_from(min_answer_len(2)).unwrap();
        assert_eq!(least, 2 + 8 + 12 + 65_598);
        let most = u32::try_from(ANSWER_BUDGET).unwrap();
        for ok in [least, most] {
            let b = sign_fetch_within(&entries, 9, ok, NOW, &mut e).unwrap();
            assert_eq!(verify_fetch(&b, NOW).unwrap().max_bytes, Some(ok));
        }
        for bad in [0, least - 1, most + 1, u32::MAX] {
            assert_eq!(
                sign_fetch_within(&entries, 9, bad, NOW, &mut e),
                Err(ProtocolError::Invalid("answer size"))
            );
            // Signed anyway: the relay refuses it too.
            let b = build_fetch(&entries, 9, Some(bad), NOW, &mut e).unwrap();
            assert_eq!(
                verify_fetch(&b, NOW),
                Err(ProtocolError::Invalid("answer size"))
            );
        }
        // The bound depends on the number of entries.
        let one = sign_fetch_within(&entries[..1], 9, least - 4, NOW, &mut e).unwrap();
        assert_eq!(verify_fetch(&one, NOW).unwrap().max_bytes, Some(least - 4));
        // Truncated inside the size.
        assert!(matches!(
            verify_fetch(&body[..28], NOW),
            Err(ProtocolError::Truncated { .. })
        ));
    }

    #[test]
    fn fetch_refuses_any_change() {
        let mut e = DangerousSeededEntropy::new(b"mailboxes-tamper");
        let ks = keys(2, &mut e);
        let body = sign_fetch(
            &[
                (FetchAuth::Key(ks[0].signing()), 0),
                (FetchAuth::Key(ks[1].signing()), 0),
            ],
            100,
            NOW,
            &mut e,
        )
        .unwrap();
        verify_fetch(&body, NOW).unwrap();
        // Every single-bit change of the request is refused.
        for i in 0..body.len() {
            let mut t = body.clone();
            t[i] ^= 0x01;
            assert!(
                verify_fetch(&t, NOW).is_err(),
                "bit flip at byte {i} accepted"
            );
        }
        // Dropping the last entry's signature, or adding bytes.
        assert!(verify_fetch(&body[..body.len() - 64], NOW).is_err());
        let mut longer = body.clone();
        longer.push(0);
        assert_eq!(
            verify_fetch(&longer, NOW),
            Err(ProtocolError::TrailingBytes(1))
        );
        // Stale on both sides.
        assert_eq!(
            verify_fetch(&body, UnixTime(NOW.0 + MAX_SKEW_SECS + 1)),
            Err(ProtocolError::StaleRequest)
        );
        assert_eq!(
            verify_fetch(&body, UnixTime(NOW.0 - MAX_SKEW_SECS - 1)),
            Err(ProtocolError::StaleRequest)
        );
        // An ack is not a fetch.
        let ack = sign_ack(&[(ks[0].signing(), vec![EnvelopeId([1; 16])])], NOW, &mut e).unwrap();
        assert!(verify_fetch(&ack, NOW).is_err());
        assert!(verify_ack(&body, NOW).is_err());
    }

    #[test]
    fn fetch_limits() {
        let mut e = DangerousSeededEntropy::new(b"mailboxes-limits");
        let ks = keys(2, &mut e);
        assert!(sign_fetch(&[], 10, NOW, &mut e).is_err());
        assert!(sign_fetch(&[(FetchAuth::Key(ks[0].signing()), 0)], 0, NOW, &mut e).is_err());
        assert!(sign_fetch(&[(FetchAuth::Key(ks[0].signing()), 0)], 101, NOW, &mut e).is_err());
        let twice = sign_fetch(
            &[
                (FetchAuth::Key(ks[0].signing()), 0),
                (FetchAuth::Key(ks[0].signing()), 5),
            ],
            10,
            NOW,
            &mut e,
        )
        .unwrap();
        assert_eq!(
            verify_fetch(&twice, NOW),
            Err(ProtocolError::Invalid(
                "the same mailbox twice in one request"
            ))
        );
        let big = sign_fetch(
            &[(FetchAuth::Key(ks[0].signing()), u64::MAX)],
            10,
            NOW,
            &mut e,
        )
        .unwrap();
        assert_eq!(
            verify_fetch(&big, NOW),
            Err(ProtocolError::Invalid("cursor"))
        );
        let many: Vec<RecipientKeys> = keys(MAX_ENTRIES + 1, &mut e);
        let entries: Vec<_> = many
            .iter()
            .map(|k| (FetchAuth::Key(k.signing()), 0))
            .collect();
        assert!(sign_fetch(&entries, 10, NOW, &mut e).is_err());
        let body = sign_fetch(&entries[..MAX_ENTRIES], 10, NOW, &mut e).unwrap();
        assert_eq!(verify_fetch(&body, NOW).unwrap().entries.len(), MAX_ENTRIES);
        // A full request of grants fits the body limit.
        let grants: Vec<FetchGrant> = many
            .iter()
            .take(MAX_ENTRIES)
            .map(|k| FetchGrant::sign(k.signing(), UnixTime(NOW.0 + 60)))
            .collect();
        let entries: Vec<_> = grants.iter().map(|g| (FetchAuth::Grant(g), 0)).collect();
        let body = sign_fetch(&entries, 10, NOW, &mut e).unwrap();
        assert_eq!(body.len(), 33_310);
        assert!(body.len() <= MAX_BODY);
        verify_fetch(&body, NOW).unwrap();
        let within = sign_fetch_within(&entries, 10, ANSWER_BUDGET as u32, NOW, &mut e).unwrap();
        assert_eq!(within.len(), 33_314);
        assert!(within.len() <= MAX_BODY);
        assert_eq!(
            verify_fetch(&within, NOW).unwrap().max_bytes,
            Some(ANSWER_BUDGET as u32)
        );
    }

    #[test]
    fn ack_round_trip_and_limits() {
        let mut e = DangerousSeededEntropy::new(b"mailboxes-ack");
        let ks = keys(2, &mut e);
        let body = sign_ack(
            &[
                (
                    ks[0].signing(),
                    vec![EnvelopeId([1; 16]), EnvelopeId([2; 16])],
                ),
                (ks[1].signing(), vec![EnvelopeId([3; 16])]),
            ],
            NOW,
            &mut e,
        )
        .unwrap();
        let v = verify_ack(&body, NOW).unwrap();
        assert_eq!(
            v.entries,
            vec![
                AckEntry {
                    mailbox: ks[0].mailbox(),
                    ids: vec![EnvelopeId([1; 16]), EnvelopeId([2; 16])]
                },
                AckEntry {
                    mailbox: ks[1].mailbox(),
                    ids: vec![EnvelopeId([3; 16])]
                },
            ]
        );
        for i in 0..body.len() {
            let mut t = body.clone();
            t[i] ^= 0x80;
            assert!(
                verify_ack(&t, NOW).is_err(),
                "bit flip at byte {i} accepted"
            );
        }
        assert!(sign_ack(&[(ks[0].signing(), vec![])], NOW, &mut e).is_err());
        // The largest acknowledgement fits the body limit.
        let many = keys(MAX_ENTRIES, &mut e);
        let mut entries: Vec<(&SigningKey, Vec<EnvelopeId>)> = many
            .iter()
            .map(|k| (k.signing(), vec![EnvelopeId([7; 16])]))
            .collect();
        entries[0].1 = vec![EnvelopeId([7; 16]); MAX_ACK_IDS - MAX_ENTRIES + 1];
        let body = sign_ack(&entries, NOW, &mut e).unwrap();
        assert_eq!(body.len(), 41_116);
        assert!(body.len() <= MAX_BODY);
        assert_eq!(verify_ack(&body, NOW).unwrap().entries.len(), MAX_ENTRIES);
        let too_many = vec![EnvelopeId([0; 16]); MAX_ACK_IDS + 1];
        assert!(sign_ack(&[(ks[0].signing(), too_many)], NOW, &mut e).is_err());
    }

    #[test]
    fn answer_round_trip() {
        let mut e = DangerousSeededEntropy::new(b"mailboxes-answer");
        let k = RecipientKeys::generate(&mut e).unwrap();
        let h = crate::padding::InnerHeader::new(&mut e, NOW).unwrap();
        let env = Envelope::seal(
            &k.public(),
            crate::envelope::Purpose::Reply,
            &h,
            b"reply",
            &mut e,
        )
        .unwrap();
        let answer = encode_fetch_answer([
            FetchResult::Page {
                items: vec![(9u64, env.as_bytes().to_vec())],
                more: true,
            },
            FetchResult::Refused,
            FetchResult::Page {
                items: vec![],
                more: false,
            },
        ]);
        let decoded = decode_fetch_answer(&answer, 3).unwrap();
        assert_eq!(
            decoded,
            vec![
                FetchResult::Page {
                    items: vec![(9, env.clone())],
                    more: true
                },
                FetchResult::Refused,
                FetchResult::Page {
                    items: vec![],
                    more: false
                },
            ]
        );
        assert!(decode_fetch_answer(&answer, 2).is_err());
        assert!(decode_fetch_answer(&answer[..answer.len() - 1], 3).is_err());
    }

    proptest! {
        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
            let _ = verify_fetch(&bytes, NOW);
            let _ = verify_ack(&bytes, NOW);
            let _ = decode_fetch_answer(&bytes, 3);
        }
    }
}
