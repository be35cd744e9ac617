//! The profile's items on disk: fixed-size cells that all look the same.
//!
//! A seized phone's database must not tell what it holds: not the kinds of
//! item, not how many, not their sizes, not whether a duress decoy shares
//! the file, nor how much each side holds. So every item is stored in
//! *cells*, and every cell is two rows of fixed length:
//!
//! - `heads(n, id, head)`: `id` is 16 bytes, `head` is [`HEAD_LEN`] bytes —
//!   a sealed [`Head`] (kind, state, part index, total length, order, item
//!   id) under the data key of the profile that owns the cell;
//! - `bodies(n, body)`: `body` is [`BODY_LEN`] bytes — up to [`CAPACITY`]
//!   bytes of the value, zero-padded and sealed.
//!
//! A value longer than one cell spans several, and the id of part `i` of
//! item `x` is `HMAC-SHA256(data key, "amparo-cell-id-v1" || x || i)`
//! truncated to 16 bytes: each part is found by its id alone, no list of
//! parts is stored, and without the key the ids are random. The kind,
//! state, length and order live only inside the sealed head.
//!
//! Why two tables rather than one row per cell: listing the items of a kind
//! (the outbox, the drafts) must open every head, since nothing plaintext
//! says which cells hold what. With heads beside bodies, every listing would
//! read every body page (the whole file); in their own table the heads are
//! ~80-byte rows, ~50 to a page, so listing 60,000 cells reads ~5 MiB and
//! opens 60,000 34-byte heads (tens of milliseconds), and bodies are read
//! only for the items asked for.
//!
//! Why [`BODY_LEN`] = 1,351: with SQLite's 4 KiB pages, three rows of
//! that length fill a leaf page without overflow, so a cell costs 1,365
//! bytes of file for 1,323 bytes of value (97 %); a 4 KiB-class envelope
//! with its outbox record takes four cells. Larger cells (one 4,577-byte
//! row per overflow page, 99 % full) were tried first: they hold such an
//! envelope in one cell, but every small item (a focal point's thousand
//! records of rejected junk, a report's record) then costs 4.6 KiB, which
//! broke the bound a flooded focal point's profile keeps (under 2 MiB for
//! 3,000 junk envelopes). One size for every row is the point; this one
//! wastes least across what a profile holds.
//!
//! Unused cells are noise: a *free* cell's head is a sealed [`Head`] of
//! kind 0 under the key of the profile that owns it, and its body is random
//! bytes — to anyone else both are indistinguishable from a used cell. A
//! profile writes only into cells it can open (its own items and its own
//! free cells), so the duress decoy — which cannot tell the real profile's
//! cells from noise — never overwrites them. A delete overwrites the cell
//! as free (an ordinary write, same length, in place); nothing is ever
//! removed, so row counts and the file size never drop. When a profile has
//! no free cell left, the table grows: to at least [`MIN_CELLS`], then by a
//! quarter, rounded up to [`GROW_ROUND`] cells; all new cells are the
//! grower's free cells. So the file's size says only which step it is at:
//! a fresh profile and one with 60 reports are both [`MIN_CELLS`] cells.
//!
//! Setting a duress PIN hands [`DECOY_SHARE`] of the real profile's free
//! cells to the decoy (their heads sealed again under the decoy's key).
//! Destroying the other side (the duress PIN with wipe, clearing the duress
//! PIN, binding without the duress PIN) overwrites every cell the opener
//! cannot open as an ordinary write does: the real profile makes the
//! decoy's cells its own free cells; the decoy, which cannot tell the real
//! profile's cells from noise, makes every cell it does not own fresh
//! noise (owned by no one, so that after a wipe the decoy's view is the
//! same as before it).
//!
//! What this does not hide: someone holding the duress PIN and this source
//! can count the cells the decoy owns against the file's; a file without a
//! duress PIN has every cell owned by the real profile. And the decoy,
//! unable to reuse cells it does not own, grows the file once its own share
//! is used up where a real profile would not have.

use amparo_protocol::Entropy;
use amparo_protocol::primitives::{aead, hkdf};
use rusqlite::{Connection, OptionalExtension, params};
use zeroize::Zeroizing;

use crate::{CoreError, Result};

/// Bytes of a sealed body (nonce, value, tag): see the module doc.
pub const BODY_LEN: usize = 1351;
/// Bytes of value in one cell.
pub const CAPACITY: usize = BODY_LEN - aead::NONCE_LEN - aead::TAG_LEN;
/// Bytes of a head's plaintext.
pub const HEAD_PLAIN: usize = 34;
/// Bytes of a sealed head.
pub const HEAD_LEN: usize = aead::NONCE_LEN + HEAD_PLAIN + aead::TAG_LEN;
/// Bytes of a cell id.
pub const ID_LEN: usize = 16;
/// The fewest cells a profile has (about 0.7 MiB of file; fewer in unit
/// tests, which check that a buried profile shrinks back).
#[cfg(not(test))]
pub const MIN_CELLS: i64 = 512;
#[cfg(test)]
pub const MIN_CELLS: i64 = 32;
/// Growth is rounded up to a multiple of this many cells.
pub const GROW_ROUND: i64 = 64;
/// Free cells the real profile hands to a new duress decoy.
pub const DECOY_SHARE: usize = 32;
/// The kind number of a free cell (item kinds start at 1).
const KIND_FREE: u8 = 0;
/// The longest value: `u32` parts of [`CAPACITY`] bytes would be more than
/// any phone holds; a value longer than this is refused, not truncated.
pub const MAX_VALUE: usize = 1 << 30;

const HEAD_AAD: &[u8] = b"amparo-cell-head-v1";
const BODY_AAD: &[u8] = b"amparo-cell-body-v1";
const ID_LABEL: &[u8] = b"amparo-cell-id-v1";

/// What a cell's sealed head says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// The item's kind (`ItemKind as u8`), or 0 for a free cell.
    pub kind: u8,
    /// The item's state.
    pub state: u8,
    /// Which part of the item this cell holds.
    pub part: u32,
    /// The item's whole length in bytes.
    pub total: u32,
    /// When the item was first written (microseconds, made strictly
    /// increasing in one process): listings keep the order items were made
    /// in, as rowids did.
    pub order: u64,
    /// The item's id.
    pub item: [u8; 16],
}

impl Head {
    /// A free cell's head.
    pub const FREE: Head = Head {
        kind: KIND_FREE,
        state: 0,
        part: 0,
        total: 0,
        order: 0,
        item: [0; 16],
    };

    /// The fixed-length plaintext.
    pub fn encode(&self) -> [u8; HEAD_PLAIN] {
        let mut out = [0u8; HEAD_PLAIN];
        out[0] = self.kind;
        out[1] = self.state;
        out[2..6].copy_from_slice(&self.part.to_be_bytes());
        out[6..10].copy_from_slice(&self.total.to_be_bytes());
        out[10..18].copy_from_slice(&self.order.to_be_bytes());
        out[18..].copy_from_slice(&self.item);
        out
    }

    /// Reads a head's plaintext; anything but [`HEAD_PLAIN`] bytes, or a
    /// part past the item's length, is corrupt.
    pub fn decode(bytes: &[u8]) -> Result<Head> {
        let bytes: &[u8; HEAD_PLAIN] = bytes.try_into().map_err(|_| corrupt())?;
        let u32_at = |i: usize| -> Result<u32> {
            let b: [u8; 4] = bytes
                .get(i..i + 4)
                .and_then(|s| s.try_into().ok())
                .ok_or_else(corrupt)?;
            Ok(u32::from_be_bytes(b))
        };
        let order: [u8; 8] = bytes
            .get(10..18)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(corrupt)?;
        let item: [u8; 16] = bytes
            .get(18..)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(corrupt)?;
        let head = Head {
            kind: bytes[0],
            state: bytes[1],
            part: u32_at(2)?,
            total: u32_at(6)?,
            order: u64::from_be_bytes(order),
            item,
        };
        if head.kind != KIND_FREE && head.part >= parts(head.total as usize) {
            return Err(corrupt());
        }
        Ok(head)
    }

    fn is_free(&self) -> bool {
        self.kind == KIND_FREE
    }
}

fn corrupt() -> CoreError {
    CoreError::Corrupt("profile cell")
}

/// How many cells a value of `len` bytes takes (an empty value takes one).
pub fn parts(len: usize) -> u32 {
    u32::try_from(len.div_ceil(CAPACITY).max(1)).unwrap_or(u32::MAX)
}

/// The id of part `part` of item `item` under `key`.
pub fn cell_id(key: &[u8; 32], item: &[u8; 16], part: u32) -> [u8; ID_LEN] {
    let mac = hkdf::extract(key, &[ID_LABEL, item, &part.to_be_bytes()]);
    let mut out = [0u8; ID_LEN];
    out.copy_from_slice(&mac[..ID_LEN]);
    out
}

fn random<const N: usize>(e: &mut dyn Entropy) -> Result<[u8; N]> {
    let mut out = [0u8; N];
    e.fill(&mut out)?;
    Ok(out)
}

fn random_vec(len: usize, e: &mut dyn Entropy) -> Result<Vec<u8>> {
    let mut out = vec![0u8; len];
    e.fill(&mut out)?;
    Ok(out)
}

/// Seals `head` for the cell `id`: `nonce || ciphertext || tag`.
pub fn seal_head(
    key: &[u8; 32],
    id: &[u8; ID_LEN],
    head: &Head,
    e: &mut dyn Entropy,
) -> Result<Vec<u8>> {
    let nonce: [u8; aead::NONCE_LEN] = random(e)?;
    let mut out = nonce.to_vec();
    out.extend(aead::seal(
        key,
        &nonce,
        &[HEAD_AAD, id].concat(),
        &head.encode(),
    )?);
    Ok(out)
}

/// Opens the head of cell `id`: `None` if `key` does not open it (another
/// profile's cell, or noise); corrupt if it opens to something malformed.
pub fn open_head(key: &[u8; 32], id: &[u8], sealed: &[u8]) -> Result<Option<Head>> {
    if sealed.len() != HEAD_LEN || id.len() != ID_LEN {
        return Err(corrupt());
    }
    let (nonce, ct) = sealed.split_at(aead::NONCE_LEN);
    let nonce: [u8; aead::NONCE_LEN] = nonce.try_into().map_err(|_| corrupt())?;
    match aead::open(key, &nonce, &[HEAD_AAD, id].concat(), ct) {
        Ok(plain) => Head::decode(&Zeroizing::new(plain)).map(Some),
        Err(amparo_protocol::ProtocolError::OpenFailed) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Seals `chunk` (at most [`CAPACITY`] bytes, zero-padded to it) as the
/// body of cell `id` whose head was sealed with nonce `head_nonce`: the body
/// opens only beside that very head, so neither can be swapped for another
/// cell's or for an earlier version of its own.
pub fn seal_body(
    key: &[u8; 32],
    id: &[u8; ID_LEN],
    head_nonce: &[u8],
    chunk: &[u8],
    e: &mut dyn Entropy,
) -> Result<Vec<u8>> {
    if chunk.len() > CAPACITY {
        return Err(CoreError::Invalid("a cell holds at most CAPACITY bytes"));
    }
    let mut plain = Zeroizing::new(vec![0u8; CAPACITY]);
    plain[..chunk.len()].copy_from_slice(chunk);
    let nonce: [u8; aead::NONCE_LEN] = random(e)?;
    let mut out = nonce.to_vec();
    out.extend(aead::seal(
        key,
        &nonce,
        &[BODY_AAD, id, head_nonce].concat(),
        &plain,
    )?);
    Ok(out)
}

/// Opens the body of cell `id` (all [`CAPACITY`] bytes).
pub fn open_body(
    key: &[u8; 32],
    id: &[u8],
    head_nonce: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    if sealed.len() != BODY_LEN {
        return Err(corrupt());
    }
    let (nonce, ct) = sealed.split_at(aead::NONCE_LEN);
    let nonce: [u8; aead::NONCE_LEN] = nonce.try_into().map_err(|_| corrupt())?;
    aead::open(key, &nonce, &[BODY_AAD, id, head_nonce].concat(), ct)
        .map(Zeroizing::new)
        .map_err(|_| corrupt())
}

/// What a profile remembers of its cells between calls: a hint, checked
/// again inside each write's transaction (another connection may have
/// written since).
#[derive(Debug, Default)]
pub(crate) struct Cache {
    /// Cells believed to be this profile's free cells.
    free: Vec<i64>,
    /// Whether `free` came from a full scan (else a scan is due when it runs out).
    scanned: bool,
    /// The last order given out.
    last_order: u64,
}

/// A profile's view of the cells: its key, its connection, its cache.
pub(crate) struct Cells<'a> {
    pub(crate) conn: &'a Connection,
    pub(crate) key: &'a [u8; 32],
    pub(crate) e: &'a mut dyn Entropy,
    pub(crate) cache: &'a mut Cache,
}

/// Runs `f` atomically: in a new `BEGIN IMMEDIATE` transaction, or in a
/// savepoint of the one already open (`in_transaction`).
pub(crate) fn atomic<T>(conn: &Connection, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let outer = conn.is_autocommit();
    conn.execute_batch(if outer {
        "BEGIN IMMEDIATE"
    } else {
        "SAVEPOINT cells"
    })?;
    match f() {
        Ok(v) => {
            conn.execute_batch(if outer { "COMMIT" } else { "RELEASE cells" })?;
            Ok(v)
        }
        Err(err) => {
            let _ = conn.execute_batch(if outer {
                "ROLLBACK"
            } else {
                "ROLLBACK TO cells; RELEASE cells"
            });
            Err(err)
        }
    }
}

fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// How many cells the table has.
pub fn count(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("SELECT count(*) FROM heads", [], |r| r.get(0))?)
}

/// The size the table grows to from `n` cells.
pub fn next_size(n: i64) -> i64 {
    if n < MIN_CELLS {
        return MIN_CELLS;
    }
    let grown = n.saturating_add((n + 3) / 4);
    grown.saturating_add(GROW_ROUND - 1) / GROW_ROUND * GROW_ROUND
}

/// One row of `heads`.
struct HeadRow {
    n: i64,
    id: Vec<u8>,
    sealed: Vec<u8>,
}

impl Cells<'_> {
    fn head_at(&self, n: i64) -> Result<Option<HeadRow>> {
        Ok(self
            .conn
            .prepare_cached("SELECT id, head FROM heads WHERE n = ?1")?
            .query_row([n], |r| {
                Ok(HeadRow {
                    n,
                    id: r.get(0)?,
                    sealed: r.get(1)?,
                })
            })
            .optional()?)
    }

    fn head_by_id(&self, id: &[u8; ID_LEN]) -> Result<Option<HeadRow>> {
        Ok(self
            .conn
            .prepare_cached("SELECT n, head FROM heads WHERE id = ?1")?
            .query_row([&id[..]], |r| {
                Ok(HeadRow {
                    n: r.get(0)?,
                    id: id.to_vec(),
                    sealed: r.get(1)?,
                })
            })
            .optional()?)
    }

    /// Visits every head this key opens, in table order, with a bounded
    /// amount in memory (one row at a time).
    fn scan(&mut self, mut visit: impl FnMut(i64, &Head) -> Result<()>) -> Result<()> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT n, id, head FROM heads ORDER BY n")?;
        let mut rows = stmt.query([])?;
        let mut free = Vec::new();
        while let Some(row) = rows.next()? {
            let n: i64 = row.get(0)?;
            let id: Vec<u8> = row.get(1)?;
            let sealed: Vec<u8> = row.get(2)?;
            if let Some(head) = open_head(self.key, &id, &sealed)? {
                if head.is_free() {
                    free.push(n);
                } else {
                    visit(n, &head)?;
                }
            }
        }
        // Every scan sees every free cell: the hint is refreshed for free.
        free.reverse();
        self.cache.free = free;
        self.cache.scanned = true;
        Ok(())
    }

    /// Fills an empty table: [`MIN_CELLS`] cells, all free cells of this key.
    pub(crate) fn ensure_table(&mut self) -> Result<()> {
        if count(self.conn)? == 0 {
            self.grow_to(MIN_CELLS)?;
        }
        Ok(())
    }

    fn grow_to(&mut self, target: i64) -> Result<()> {
        let mut n: i64 = self
            .conn
            .query_row("SELECT coalesce(max(n), 0) FROM heads", [], |r| r.get(0))?;
        let have = count(self.conn)?;
        let mut heads = self
            .conn
            .prepare_cached("INSERT INTO heads (n, id, head) VALUES (?1, ?2, ?3)")?;
        let mut bodies = self
            .conn
            .prepare_cached("INSERT INTO bodies (n, body) VALUES (?1, ?2)")?;
        for _ in have..target {
            n += 1;
            let id: [u8; ID_LEN] = random(self.e)?;
            let head = seal_head(self.key, &id, &Head::FREE, self.e)?;
            heads.execute(params![n, &id[..], head])?;
            bodies.execute(params![n, random_vec(BODY_LEN, self.e)?])?;
            self.cache.free.push(n);
        }
        // Lowest positions are taken first (so the table can shrink back).
        self.cache.free.sort_unstable_by(|a, b| b.cmp(a));
        Ok(())
    }

    /// A free cell of this key, growing the table if there is none.
    fn take_free(&mut self) -> Result<HeadRow> {
        loop {
            while let Some(n) = self.cache.free.pop() {
                // Checked again: another connection may have used it.
                if let Some(row) = self.head_at(n)?
                    && open_head(self.key, &row.id, &row.sealed)?.is_some_and(|h| h.is_free())
                {
                    return Ok(row);
                }
            }
            if !self.cache.scanned {
                self.scan(|_, _| Ok(()))?;
                continue;
            }
            let have = count(self.conn)?;
            self.grow_to(next_size(have))?;
            // Free cells found after this are new; a later shortage scans again.
            self.cache.scanned = false;
            if self.cache.free.is_empty() {
                return Err(corrupt());
            }
        }
    }

    /// Writes `(id, head, body)` into cell `n`, in place.
    fn write_cell(&mut self, n: i64, id: &[u8; ID_LEN], head: &Head, chunk: &[u8]) -> Result<()> {
        let sealed_head = seal_head(self.key, id, head, self.e)?;
        let body = seal_body(self.key, id, &sealed_head[..aead::NONCE_LEN], chunk, self.e)?;
        self.conn
            .prepare_cached("UPDATE heads SET id = ?2, head = ?3 WHERE n = ?1")?
            .execute(params![n, &id[..], sealed_head])?;
        self.conn
            .prepare_cached("UPDATE bodies SET body = ?2 WHERE n = ?1")?
            .execute(params![n, body])?;
        Ok(())
    }

    /// Makes cell `n` (id `id`, kept) a free cell of `key`: a sealed free
    /// head and a random body, written in place as any write is.
    fn free_cell(&mut self, n: i64, id: &[u8]) -> Result<()> {
        let id: [u8; ID_LEN] = id.try_into().map_err(|_| corrupt())?;
        let head = seal_head(self.key, &id, &Head::FREE, self.e)?;
        self.conn
            .prepare_cached("UPDATE heads SET head = ?2 WHERE n = ?1")?
            .execute(params![n, head])?;
        self.conn
            .prepare_cached("UPDATE bodies SET body = ?2 WHERE n = ?1")?
            .execute(params![n, random_vec(BODY_LEN, self.e)?])?;
        self.cache.free.push(n);
        Ok(())
    }

    /// Part 0's head of `item`, if it is this key's.
    fn first(&self, item: &[u8; 16]) -> Result<Option<(HeadRow, Head)>> {
        let Some(row) = self.head_by_id(&cell_id(self.key, item, 0))? else {
            return Ok(None);
        };
        match open_head(self.key, &row.id, &row.sealed)? {
            Some(head) if !head.is_free() && head.item == *item && head.part == 0 => {
                Ok(Some((row, head)))
            }
            Some(head) if head.is_free() => Ok(None),
            Some(_) => Err(corrupt()),
            // Another key's cell under our derived id: this key's cells
            // were taken over (a handle on a decoy since destroyed).
            None => Ok(None),
        }
    }

    /// Reads item `item` of `kind`: its state and value.
    pub(crate) fn get(
        &mut self,
        kind: u8,
        item: &[u8; 16],
    ) -> Result<Option<(u8, Zeroizing<Vec<u8>>)>> {
        let Some((row0, head0)) = self.first(item)? else {
            return Ok(None);
        };
        if head0.kind != kind {
            return Ok(None);
        }
        let total = head0.total as usize;
        let mut value = Zeroizing::new(Vec::with_capacity(total));
        for part in 0..parts(total) {
            let row = if part == 0 {
                HeadRow {
                    n: row0.n,
                    id: row0.id.clone(),
                    sealed: row0.sealed.clone(),
                }
            } else {
                self.head_by_id(&cell_id(self.key, item, part))?
                    .ok_or_else(corrupt)?
            };
            let head = open_head(self.key, &row.id, &row.sealed)?.ok_or_else(corrupt)?;
            if head.kind != kind
                || head.item != *item
                || head.part != part
                || head.total != head0.total
            {
                return Err(corrupt());
            }
            let body: Vec<u8> = self
                .conn
                .prepare_cached("SELECT body FROM bodies WHERE n = ?1")?
                .query_row([row.n], |r| r.get(0))
                .optional()?
                .ok_or_else(corrupt)?;
            let plain = open_body(self.key, &row.id, &row.sealed[..aead::NONCE_LEN], &body)?;
            let take = (total - value.len()).min(CAPACITY);
            value.extend_from_slice(plain.get(..take).ok_or_else(corrupt)?);
        }
        Ok(Some((head0.state, value)))
    }

    /// Stores (or replaces) item `item`: all its cells in one transaction.
    pub(crate) fn put(&mut self, kind: u8, item: &[u8; 16], state: u8, value: &[u8]) -> Result<()> {
        if value.len() > MAX_VALUE {
            return Err(CoreError::Invalid("a value too long to store"));
        }
        let conn = self.conn;
        atomic(conn, || {
            let old = self.first(item)?;
            let order = match &old {
                Some((_, h)) => h.order,
                None => {
                    let o = now_micros().max(self.cache.last_order.saturating_add(1));
                    self.cache.last_order = o;
                    o
                }
            };
            let old_parts = old.as_ref().map_or(0, |(_, h)| parts(h.total as usize));
            let new_parts = parts(value.len());
            let total = u32::try_from(value.len()).map_err(|_| corrupt())?;
            for part in 0..new_parts {
                let id = cell_id(self.key, item, part);
                let n = match self.head_by_id(&id)? {
                    Some(row) if part < old_parts => row.n,
                    // A leftover of an earlier, damaged write: reuse it
                    // only if it is ours.
                    Some(row) => match open_head(self.key, &row.id, &row.sealed)? {
                        Some(_) => row.n,
                        None => return Err(corrupt()),
                    },
                    None => self.take_free()?.n,
                };
                let start = part as usize * CAPACITY;
                let chunk = value
                    .get(start..value.len().min(start + CAPACITY))
                    .unwrap_or(&[]);
                let head = Head {
                    kind,
                    state,
                    part,
                    total,
                    order,
                    item: *item,
                };
                self.write_cell(n, &id, &head, chunk)?;
            }
            for part in new_parts..old_parts {
                if let Some(row) = self.head_by_id(&cell_id(self.key, item, part))? {
                    self.free_cell(row.n, &row.id)?;
                }
            }
            Ok(())
        })
    }

    /// Deletes item `item` of `kind` (its cells become free cells); returns
    /// whether it existed.
    pub(crate) fn delete(&mut self, kind: u8, item: &[u8; 16]) -> Result<bool> {
        let conn = self.conn;
        atomic(conn, || {
            let Some((_, head)) = self.first(item)? else {
                return Ok(false);
            };
            if head.kind != kind {
                return Ok(false);
            }
            for part in 0..parts(head.total as usize) {
                if let Some(row) = self.head_by_id(&cell_id(self.key, item, part))? {
                    self.free_cell(row.n, &row.id)?;
                }
            }
            Ok(true)
        })
    }

    /// The ids of this key's items of `kind` (in `state` if given), in the
    /// order they were first written.
    pub(crate) fn list(&mut self, kind: u8, state: Option<u8>) -> Result<Vec<[u8; 16]>> {
        let mut found: Vec<(u64, i64, [u8; 16])> = Vec::new();
        self.scan(|n, head| {
            if head.kind == kind && head.part == 0 && state.is_none_or(|s| s == head.state) {
                found.push((head.order, n, head.item));
            }
            Ok(())
        })?;
        found.sort_unstable();
        Ok(found.into_iter().map(|(_, _, id)| id).collect())
    }

    /// Gives cells back when this key's free cells fill most of a table
    /// grown past [`MIN_CELLS`] (a focal point's profile buried by junk,
    /// then cleared): the table goes back to the smallest size of the
    /// growth sequence at least twice the cells in use, if every cell past
    /// it is this key's (the decoy's cells, or cells this key cannot tell
    /// from them, are never moved). Cells in use past it move, sealed as
    /// they are (a cell is bound to its id, not its position), into free
    /// cells before it; the rest are removed. Returns whether it shrank
    /// (the caller then rewrites the file with `VACUUM`). A file that
    /// shrank looks like one that never grew.
    pub(crate) fn shrink(&mut self) -> Result<bool> {
        let have = count(self.conn)?;
        if have <= MIN_CELLS {
            return Ok(false);
        }
        let mut used: Vec<i64> = Vec::new();
        self.scan(|n, _| {
            used.push(n);
            Ok(())
        })?;
        let mut target = MIN_CELLS;
        while target < (used.len() as i64).saturating_mul(2) {
            target = next_size(target);
        }
        // Past the last cell this key does not own, nothing can go.
        let foreign_last: i64 = {
            let mut last = 0;
            let mut stmt = self
                .conn
                .prepare_cached("SELECT n, id, head FROM heads WHERE n > ?1 ORDER BY n")?;
            let mut rows = stmt.query([target])?;
            while let Some(row) = rows.next()? {
                let n: i64 = row.get(0)?;
                let id: Vec<u8> = row.get(1)?;
                let head: Vec<u8> = row.get(2)?;
                if open_head(self.key, &id, &head)?.is_none() {
                    last = n;
                }
            }
            last
        };
        while target < foreign_last {
            target = next_size(target);
        }
        if target.saturating_mul(2) > have {
            return Ok(false);
        }
        // The scan left every free cell of this key in the hint.
        let moving = used.iter().filter(|n| **n > target).count();
        let room = self.cache.free.iter().filter(|n| **n <= target).count();
        if room < moving {
            return Ok(false);
        }
        let conn = self.conn;
        atomic(conn, || {
            for n in used.iter().copied().filter(|n| *n > target) {
                let row = self.head_at(n)?.ok_or_else(corrupt)?;
                let body: Vec<u8> = self
                    .conn
                    .prepare_cached("SELECT body FROM bodies WHERE n = ?1")?
                    .query_row([n], |r| r.get(0))?;
                let to = loop {
                    let free = self.take_free()?;
                    if free.n <= target {
                        break free.n;
                    }
                };
                self.conn.execute("DELETE FROM heads WHERE n = ?1", [n])?;
                self.conn.execute("DELETE FROM bodies WHERE n = ?1", [n])?;
                self.conn
                    .prepare_cached("UPDATE heads SET id = ?2, head = ?3 WHERE n = ?1")?
                    .execute(params![to, row.id, row.sealed])?;
                self.conn
                    .prepare_cached("UPDATE bodies SET body = ?2 WHERE n = ?1")?
                    .execute(params![to, body])?;
            }
            self.conn
                .execute("DELETE FROM heads WHERE n > ?1", [target])?;
            self.conn
                .execute("DELETE FROM bodies WHERE n > ?1", [target])?;
            Ok(())
        })?;
        self.cache.free.retain(|n| *n <= target);
        Ok(true)
    }

    /// Hands `count` of this key's free cells to `other` (their heads sealed
    /// again as `other`'s free cells), growing the table if needed.
    pub(crate) fn give_free(&mut self, other: &[u8; 32], count: usize) -> Result<()> {
        for _ in 0..count {
            let row = self.take_free()?;
            let id: [u8; ID_LEN] = row.id.as_slice().try_into().map_err(|_| corrupt())?;
            let head = seal_head(other, &id, &Head::FREE, self.e)?;
            self.conn
                .prepare_cached("UPDATE heads SET head = ?2 WHERE n = ?1")?
                .execute(params![row.n, head])?;
            self.conn
                .prepare_cached("UPDATE bodies SET body = ?2 WHERE n = ?1")?
                .execute(params![row.n, random_vec(BODY_LEN, self.e)?])?;
        }
        Ok(())
    }

    /// Overwrites the cells this key does not open — those `other` opens,
    /// or, with `other` unknown, every one — as ordinary writes: as this
    /// key's free cells when `claim`, else as fresh noise owned by no one.
    /// Ids are kept (a write in place changes no index).
    pub(crate) fn overwrite_others(&mut self, other: Option<&[u8; 32]>, claim: bool) -> Result<()> {
        let mut last = 0i64;
        loop {
            // In batches by position, so no list of every cell is held.
            let batch: Vec<HeadRow> = self
                .conn
                .prepare_cached("SELECT n, id, head FROM heads WHERE n > ?1 ORDER BY n LIMIT 256")?
                .query_map([last], |r| {
                    Ok(HeadRow {
                        n: r.get(0)?,
                        id: r.get(1)?,
                        sealed: r.get(2)?,
                    })
                })?
                .collect::<std::result::Result<_, _>>()?;
            let Some(end) = batch.last().map(|r| r.n) else {
                break;
            };
            for row in batch {
                if open_head(self.key, &row.id, &row.sealed)?.is_some() {
                    continue;
                }
                let theirs = match other {
                    Some(k) => open_head(k, &row.id, &row.sealed)?.is_some(),
                    None => true,
                };
                if !theirs {
                    continue;
                }
                if claim {
                    self.free_cell(row.n, &row.id)?;
                } else {
                    self.conn
                        .prepare_cached("UPDATE heads SET head = ?2 WHERE n = ?1")?
                        .execute(params![row.n, random_vec(HEAD_LEN, self.e)?])?;
                    self.conn
                        .prepare_cached("UPDATE bodies SET body = ?2 WHERE n = ?1")?
                        .execute(params![row.n, random_vec(BODY_LEN, self.e)?])?;
                }
            }
            last = end;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amparo_protocol::entropy::SystemEntropy;

    #[test]
    fn head_round_trips_and_rejects_damage() {
        let h = Head {
            kind: 4,
            state: 2,
            part: 1,
            total: (CAPACITY * 2) as u32,
            order: 77,
            item: [9; 16],
        };
        assert_eq!(Head::decode(&h.encode()).unwrap(), h);
        assert!(Head::decode(&h.encode()[..HEAD_PLAIN - 1]).is_err());
        // A part past the item's length is corrupt, not a panic.
        let past = Head { part: 2, ..h };
        assert!(matches!(
            Head::decode(&past.encode()),
            Err(CoreError::Corrupt(_))
        ));
        assert_eq!(Head::decode(&Head::FREE.encode()).unwrap(), Head::FREE);
    }

    #[test]
    fn sealed_heads_and_bodies_have_one_length_and_bind_their_cell() {
        let mut e = SystemEntropy::new();
        let key = [1u8; 32];
        let id = cell_id(&key, &[2; 16], 0);
        let head = seal_head(&key, &id, &Head::FREE, &mut e).unwrap();
        assert_eq!(head.len(), HEAD_LEN);
        assert_eq!(open_head(&key, &id, &head).unwrap(), Some(Head::FREE));
        // Another key, or another cell id: not ours (not an error).
        assert_eq!(open_head(&[3; 32], &id, &head).unwrap(), None);
        let other = cell_id(&key, &[2; 16], 1);
        assert_eq!(open_head(&key, &other, &head).unwrap(), None);
        // Wrong lengths are corrupt.
        assert!(open_head(&key, &id, &head[1..]).is_err());
        for chunk in [&b""[..], b"short", &[7u8; CAPACITY]] {
            let body = seal_body(&key, &id, &head[..12], chunk, &mut e).unwrap();
            assert_eq!(body.len(), BODY_LEN);
            let plain = open_body(&key, &id, &head[..12], &body).unwrap();
            assert_eq!(&plain[..chunk.len()], chunk);
            assert!(plain[chunk.len()..].iter().all(|b| *b == 0));
            // Beside another head (another nonce), the body does not open.
            assert!(open_body(&key, &id, &[0; 12], &body).is_err());
        }
        assert!(seal_body(&key, &id, &head[..12], &[0; CAPACITY + 1], &mut e).is_err());
    }

    #[test]
    fn ids_are_keyed_and_parts_and_sizes_count_right() {
        assert_ne!(
            cell_id(&[1; 32], &[2; 16], 0),
            cell_id(&[1; 32], &[2; 16], 1)
        );
        assert_ne!(
            cell_id(&[1; 32], &[2; 16], 0),
            cell_id(&[4; 32], &[2; 16], 0)
        );
        assert_eq!(parts(0), 1);
        assert_eq!(parts(CAPACITY), 1);
        assert_eq!(parts(CAPACITY + 1), 2);
        assert_eq!(next_size(0), MIN_CELLS);
        assert_eq!(next_size(256), 320);
        assert_eq!(next_size(320), 448);
        assert!((1..20).all(|i| next_size(i * 100) % GROW_ROUND == 0));
    }

    fn table() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut conn).unwrap();
        conn
    }

    #[test]
    fn items_of_one_cell_or_many_and_two_keys_never_touch_each_other() {
        let conn = table();
        let mut e = SystemEntropy::new();
        let (mut ca, mut cb) = (Cache::default(), Cache::default());
        let (ka, kb) = ([1u8; 32], [2u8; 32]);
        let mut a = Cells {
            conn: &conn,
            key: &ka,
            e: &mut e,
            cache: &mut ca,
        };
        a.ensure_table().unwrap();
        a.give_free(&kb, 4).unwrap();
        let big: Vec<u8> = (0..CAPACITY * 3 + 5).map(|i| i as u8).collect();
        a.put(3, &[1; 16], 0, &big).unwrap();
        a.put(3, &[2; 16], 1, b"small").unwrap();
        assert_eq!(&*a.get(3, &[1; 16]).unwrap().unwrap().1, &big[..]);
        assert_eq!(a.get(4, &[1; 16]).unwrap(), None, "another kind");
        assert_eq!(a.list(3, None).unwrap(), vec![[1; 16], [2; 16]]);
        assert_eq!(a.list(3, Some(1)).unwrap(), vec![[2; 16]]);
        // Shrinking frees the parts no longer needed.
        a.put(3, &[1; 16], 0, b"now short").unwrap();
        assert_eq!(&*a.get(3, &[1; 16]).unwrap().unwrap().1, b"now short");
        let mut e2 = SystemEntropy::new();
        let mut b = Cells {
            conn: &conn,
            key: &kb,
            e: &mut e2,
            cache: &mut cb,
        };
        assert!(b.list(3, None).unwrap().is_empty());
        // B has four cells of its own; a fifth grows the table.
        for i in 0..5u8 {
            b.put(3, &[i; 16], 0, b"decoy").unwrap();
        }
        assert_eq!(count(&conn).unwrap(), next_size(MIN_CELLS));
        assert_eq!(b.list(3, None).unwrap().len(), 5);
        assert!(b.delete(3, &[0; 16]).unwrap());
        assert!(!b.delete(3, &[0; 16]).unwrap());
        let mut e3 = SystemEntropy::new();
        let mut a = Cells {
            conn: &conn,
            key: &ka,
            e: &mut e3,
            cache: &mut ca,
        };
        assert_eq!(a.list(3, None).unwrap(), vec![[1; 16], [2; 16]]);
        // Every row has one length.
        let lens: Vec<(i64, i64)> = conn
            .prepare("SELECT DISTINCT length(h.head), length(b.body) FROM heads h JOIN bodies b USING (n)")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(lens, vec![(HEAD_LEN as i64, BODY_LEN as i64)]);
        // A damaged body is a typed error, not a panic.
        conn.execute(
            "UPDATE bodies SET body = zeroblob(?1) WHERE n = (SELECT n FROM heads WHERE id = ?2)",
            params![BODY_LEN as i64, &cell_id(&ka, &[2; 16], 0)[..]],
        )
        .unwrap();
        assert!(matches!(a.get(3, &[2; 16]), Err(CoreError::Corrupt(_))));
    }
}
