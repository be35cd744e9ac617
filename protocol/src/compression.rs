//! Compression of a body before padding (PROTOCOL.md §5.1).
//!
//! On a 2G link the bytes a survivor sends are her time and her prepaid
//! data. A report of ~1,900 characters is ~2.4 KB of JSON and pads to the
//! 4 KiB class; compressed with a preset dictionary of the form's own words
//! it is ~1 KB and pads to the 1.5 KiB class only compressed bodies use.
//! Compression happens inside the seal, so the relay and the network see
//! only the class.
//!
//! (The measured figures, and why compressed bodies have a 1.5 KiB class of
//! their own — a ~1,900-character report compresses to 1.0–1.15 KB, just
//! over what the 1 KiB class holds — are in PROTOCOL.md §5.1.)
//!
//! The encoding is raw DEFLATE (RFC 1951) with a **frozen preset
//! dictionary**: the stream's back-references may reach into the dictionary
//! as if it had been decompressed just before the body, as zlib's
//! `deflateSetDictionary` does. The compressed body is one byte naming the
//! codec and its dictionary ([`CODEC_DEFLATE_D1`]) followed by the stream.
//! A dictionary never changes once a phone has used it: an envelope sealed
//! today must open in ten years; a better dictionary gets a new codec byte.
//!
//! Decompression is bounded: it stops at [`MAX_BODY`] bytes of output, the
//! largest body an envelope can carry uncompressed, so a "zip bomb" sealed
//! in an envelope costs the focal point at most one 64 KiB buffer and
//! microseconds. A stream that ends early, has bytes after its end, or
//! expands past the bound is refused.
//!
//! `miniz_oxide` is a pure-Rust port of miniz with `#![forbid(unsafe_code)]`;
//! it has no `set_dictionary`, so the dictionary is primed by compressing it
//! first, sync-flushing (which ends on a byte boundary) and keeping only the
//! bytes written after the flush — once per process, the primed compressor
//! then copied for each body; the decoder is given the dictionary as the
//! start of its output window.

use std::sync::OnceLock;

use miniz_oxide::deflate::core::{
    CompressorOxide, TDEFLFlush, TDEFLStatus, compress_to_output, create_comp_flags_from_zip_params,
};
use miniz_oxide::inflate::TINFLStatus;
use miniz_oxide::inflate::core::inflate_flags::{
    TINFL_FLAG_STOP_ON_BLOCK_BOUNDARY, TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF,
};
use miniz_oxide::inflate::core::{DecompressorOxide, decompress as inflate};
use zeroize::Zeroizing;

use crate::padding::MAX_BODY;
use crate::{ProtocolError, Result};

/// Codec byte: raw DEFLATE with preset dictionary v1 ([`DICTIONARY_V1`]).
pub const CODEC_DEFLATE_D1: u8 = 0x01;

/// The name a focal point (in the directory, §8.1) or a phone (in its report,
/// §6.1) lists under `reads` to say it opens [`CODEC_DEFLATE_D1`] bodies.
pub const READS_DEFLATE_D1: &str = "deflate_d1";

/// Preset dictionary v1: staff replies and survivors' report vocabulary in
/// es/pt/en, then the skeletons of a status update, a reply and a report
/// (nearest the data, so the cheapest to refer to). Built by concatenating
/// `protocol/dictionary/v1/` in the order its README gives; frozen — a test
/// pins its SHA-256.
pub const DICTIONARY_V1: &[u8] = include_bytes!("../dictionary/v1.bin");

/// The most DEFLATE blocks a compressed body may have. The output bound
/// alone does not bound the work: every block rebuilds its Huffman tables,
/// so 64 KiB of tiny empty blocks would cost ~100 ms to decode for nothing.
/// A compressor makes a block per ~16–64 K symbols: a 65 510-byte body is a
/// handful (zlib and miniz_oxide at any level stay under 10).
pub const MAX_BLOCKS: usize = 64;

/// DEFLATE's compression level: the highest. A report is a few KB, so even
/// level 9 costs tens of microseconds.
const LEVEL: u8 = 9;

/// miniz's strategy numbers (zlib's `Z_DEFAULT_STRATEGY`, `Z_HUFFMAN_ONLY`).
#[cfg(test)]
const DEFAULT_STRATEGY: i32 = 0;
/// See [`DEFAULT_STRATEGY`].
const HUFFMAN_ONLY: i32 = 2;

/// Whether a peer's `reads` list says it opens bodies this implementation
/// compresses.
pub fn reads_compressed(reads: &[String]) -> bool {
    reads.iter().any(|r| r == READS_DEFLATE_D1)
}

/// The most names a `reads` list may hold, and the longest name.
pub const MAX_READS: usize = 8;
/// See [`MAX_READS`].
pub const MAX_READS_CHARS: usize = 32;

/// Checks a `reads` list (§6.1, §8.1): at most [`MAX_READS`] names of 1 to
/// [`MAX_READS_CHARS`] characters. Names this implementation does not know
/// are kept and ignored, so a newer peer's list stays readable.
pub(crate) fn check_reads(reads: &[String]) -> Result<()> {
    crate::payload::check_len(reads, MAX_READS, "list of encodings read")?;
    for r in reads {
        if r.is_empty() {
            return Err(ProtocolError::Invalid("empty encoding name"));
        }
        crate::payload::check_text(r, MAX_READS_CHARS, "encoding name")?;
    }
    Ok(())
}

/// The compressed form of `body`: the codec byte and a raw DEFLATE stream
/// made with [`DICTIONARY_V1`]. Callers keep it only if it is shorter than
/// `body` (PROTOCOL.md §5.1).
pub fn compress(body: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if body.len() > MAX_BODY {
        return Err(ProtocolError::TooLarge {
            what: "body to compress",
            len: body.len(),
            max: MAX_BODY,
        });
    }
    // A copy of the primed compressor: priming costs more than compressing
    // a typical report, and its result depends only on the dictionary. (The
    // copy keeps its 64 KiB code buffer inline, on this stack, as a boxed
    // new compressor did while it was built; its tables are boxed.)
    let mut compressor = primed()
        .ok_or(ProtocolError::Invalid("compressor state"))?
        .clone();
    // Room for the worst case (stored blocks), so the Vec never grows: a
    // reallocation would free a copy of compressed plaintext unwiped. (The
    // compressor's own buffers hold the body too and are freed unwiped:
    // miniz_oxide offers no way to clear them.)
    let mut out = Zeroizing::new(Vec::with_capacity(body.len() + body.len() / 16 + 64));
    out.push(CODEC_DEFLATE_D1);
    let (status, used) = compress_to_output(&mut compressor, body, TDEFLFlush::Finish, |chunk| {
        out.extend_from_slice(chunk);
        true
    });
    if status != TDEFLStatus::Done || used != body.len() {
        return Err(ProtocolError::Invalid("compressor state"));
    }
    Ok(out)
}

/// A compressor that has seen [`DICTIONARY_V1`] and nothing else, made once
/// per process and copied for each body (copying its ~230 KB of buffers and
/// tables costs an eighth of what priming did on every call; the compression
/// bench measures both).
///
/// Priming compresses the dictionary and sync-flushes, which ends the output
/// on a byte boundary; the output is not kept, so what the compressor writes
/// next is a stream a decoder can start at with the dictionary as its window.
/// It primes with the Huffman-only strategy (no match search, 3× cheaper)
/// and then switches to [`LEVEL`]: DEFLATE's hash chains take in every byte
/// whatever the strategy, so the compressor ends in the state level 9 would
/// leave, and its output is byte for byte the same (a test checks it).
/// `None` if the compressor refused the dictionary, which it never does.
fn primed() -> Option<&'static CompressorOxide> {
    static PRIMED: OnceLock<Option<Box<CompressorOxide>>> = OnceLock::new();
    PRIMED.get_or_init(|| prime(HUFFMAN_ONLY)).as_deref()
}

/// A compressor at [`LEVEL`] primed with [`DICTIONARY_V1`] using `strategy`
/// (see [`primed`]).
fn prime(strategy: i32) -> Option<Box<CompressorOxide>> {
    // Raw DEFLATE (window bits 0: no zlib header).
    let flags = create_comp_flags_from_zip_params(i32::from(LEVEL), 0, strategy);
    let mut compressor = Box::new(CompressorOxide::new(flags));
    let (status, used) =
        compress_to_output(&mut compressor, DICTIONARY_V1, TDEFLFlush::Sync, |_| true);
    if status != TDEFLStatus::Okay || used != DICTIONARY_V1.len() {
        return None;
    }
    // Also sets the default strategy back.
    compressor.set_compression_level_raw(LEVEL);
    Some(compressor)
}

/// The body a compressed body stands for. Refuses an unknown codec byte, a
/// malformed or truncated stream, more than [`MAX_BLOCKS`] blocks, bytes
/// after the stream's end, and output past [`MAX_BODY`] bytes (the decoder stops there; nothing larger is ever
/// allocated).
pub fn decompress(compressed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let (&codec, stream) = compressed
        .split_first()
        .ok_or(ProtocolError::Invalid("compressed body: empty"))?;
    if codec != CODEC_DEFLATE_D1 {
        // Opened (the seal authenticated) but unreadable: a focal point files
        // it as malformed, not as "does not open" (junk sealed to another key).
        return Err(ProtocolError::Invalid("compressed body: unknown codec"));
    }
    let dict = DICTIONARY_V1.len();
    // The window starts as the dictionary; the body is written after it. It
    // grows (doubling) only as the body does, up to one byte more than the
    // bound, so that "fits exactly" and "too long" differ; a typical body
    // never pays for zeroing the whole 64 KiB.
    let cap = dict + MAX_BODY + 1;
    let first = dict + stream.len().saturating_mul(4).clamp(4096, MAX_BODY + 1);
    let mut window = Zeroizing::new(vec![0u8; first.min(cap)]);
    window
        .get_mut(..dict)
        .ok_or(ProtocolError::Invalid("compression window"))?
        .copy_from_slice(DICTIONARY_V1);
    let mut decoder = Box::new(DecompressorOxide::new());
    let (mut read, mut end, mut blocks) = (0usize, dict, 1usize);
    loop {
        let rest = stream.get(read..).unwrap_or_default();
        let (status, used, written) = inflate(
            &mut decoder,
            rest,
            &mut window,
            end,
            TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF | TINFL_FLAG_STOP_ON_BLOCK_BOUNDARY,
        );
        read += used;
        end += written;
        match status {
            TINFLStatus::Done => break,
            TINFLStatus::BlockBoundary => {
                blocks += 1;
                if blocks > MAX_BLOCKS {
                    return Err(ProtocolError::Invalid("compressed body: too many blocks"));
                }
            }
            TINFLStatus::HasMoreOutput if window.len() < cap => {
                // A fresh buffer, so the old one is wiped when it goes
                // (a Vec's own growth would free it unwiped).
                let mut bigger = Zeroizing::new(vec![0u8; window.len().saturating_mul(2).min(cap)]);
                match (bigger.get_mut(..end), window.get(..end)) {
                    (Some(to), Some(from)) => to.copy_from_slice(from),
                    _ => return Err(ProtocolError::Invalid("compression window")),
                }
                window = bigger;
            }
            TINFLStatus::HasMoreOutput => {
                return Err(ProtocolError::TooLarge {
                    what: "decompressed body",
                    len: MAX_BODY + 1,
                    max: MAX_BODY,
                });
            }
            TINFLStatus::FailedCannotMakeProgress | TINFLStatus::NeedsMoreInput => {
                return Err(ProtocolError::Invalid("compressed body: truncated"));
            }
            _ => return Err(ProtocolError::Invalid("compressed body: malformed")),
        }
    }
    let written = end - dict;
    if written > MAX_BODY {
        return Err(ProtocolError::TooLarge {
            what: "decompressed body",
            len: written,
            max: MAX_BODY,
        });
    }
    if read != stream.len() {
        return Err(ProtocolError::TrailingBytes(stream.len() - read));
    }
    // The body moves to the front of the window it was written in: one
    // buffer, never a second copy of the plaintext.
    window.copy_within(dict..end, 0);
    window.truncate(written);
    Ok(window)
}

#[cfg(test)]
mod tests;
