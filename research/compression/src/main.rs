//! Amparo compression experiment: which compressor gets a ~2 KiB report JSON into the
//! 1 KiB envelope class, at what cost, and how to bound decompression.
//!
//! Run:  CARGO_TARGET_DIR=/tmp/compress-exp/target cargo run --release [-- quick]
//! Writes results.csv and results.md next to Cargo.toml.

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// Heap accounting: a global allocator that tracks current and peak bytes.
// (C code -- zstd -- allocates with libc malloc and is NOT seen here; for zstd we
// report ZSTD_sizeof_CCtx / ZSTD_sizeof_DCtx instead.)
// ---------------------------------------------------------------------------
struct Track;
static CUR: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn bump(n: usize) {
    let c = CUR.fetch_add(n, Relaxed) + n;
    PEAK.fetch_max(c, Relaxed);
}

unsafe impl GlobalAlloc for Track {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            bump(l.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(l) };
        if !p.is_null() {
            bump(l.size());
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        CUR.fetch_sub(l.size(), Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            if new > l.size() {
                bump(new - l.size());
            } else {
                CUR.fetch_sub(l.size() - new, Relaxed);
            }
        }
        q
    }
}
#[global_allocator]
static GA: Track = Track;

/// Runs `f`, returns its result and the peak heap growth (bytes) while it ran.
fn peak_heap<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let base = CUR.load(Relaxed);
    PEAK.store(base, Relaxed);
    let r = f();
    (r, PEAK.load(Relaxed).saturating_sub(base))
}

// ---------------------------------------------------------------------------
// Envelope arithmetic (PROTOCOL.md section 2 and 5):
//   envelope = 62 bytes (14 header + 32 enc + 16 tag) + padded plaintext class c
//   padded plaintext = 26-byte inner header + body n + zero padding, c = smallest of
//   {1024, 4096, 16384, 65536} with 26 + n <= c.
// Assumption for a compressed body: 1 extra byte of framing (codec/format tag), so the
// compressed stream itself may be at most 1024 - 26 - 1 = 997 bytes for the 1086 class.
// The brief's conservative figure (~980 bytes available) is also flagged.
// ---------------------------------------------------------------------------
const INNER_HEADER: usize = 26;
const CODEC_TAG: usize = 1;
const CLASSES: [usize; 4] = [1024, 4096, 16384, 65536];
const CONSERVATIVE_ROOM: usize = 980;
/// Largest body the protocol allows; also our decompression output limit.
const MAX_BODY: usize = 65510;

fn envelope_for_body(n: usize) -> usize {
    for c in CLASSES {
        if INNER_HEADER + n <= c {
            return c + 62;
        }
    }
    usize::MAX
}

// ---------------------------------------------------------------------------
// Corpus and payloads
// ---------------------------------------------------------------------------
fn corpus_file(name: &str) -> String {
    let p = format!("{}/corpus/{}", env!("CARGO_MANIFEST_DIR"), name);
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{p}: {e}"))
        .trim()
        .to_string()
}

fn b64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut s = String::new();
    for ch in bytes.chunks(3) {
        let b = [ch[0], *ch.get(1).unwrap_or(&0), *ch.get(2).unwrap_or(&0)];
        let v = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        let n = ch.len() + 1;
        for i in 0..n {
            s.push(A[((v >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    s
}

/// 32 pseudo-random bytes (splitmix64); stands in for an X25519/Ed25519 public key.
fn key(seed: u64) -> String {
    let mut st = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    let mut out = Vec::with_capacity(32);
    for _ in 0..4 {
        st = st.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = st;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    let k = b64url(&out);
    assert_eq!(k.len(), 43);
    k
}

struct Payload {
    lang: &'static str,
    size: &'static str,
    text_chars: usize,
    json: Vec<u8>,
}

fn make_payload(lang: &'static str, size: &'static str, text: &str, seed: u64) -> Payload {
    // Field order as serde_json writes the report struct (PROTOCOL.md 6.1).
    let (violence, country, region, aggressors, needs) = match lang {
        "es" => (
            r#"["threats","physical","extortion","robbery"]"#,
            "PE",
            "PE-LIM",
            r#"["police_or_security","client"]"#,
            r#"["legal_advice","protection_shelter","health_care","migration_status"]"#,
        ),
        "pt" => (
            r#"["physical","threats","extortion","discrimination"]"#,
            "BR",
            "BR-SP",
            r#"["client","police_or_security"]"#,
            r#"["legal_advice","psychological_support","protection_shelter"]"#,
        ),
        _ => (
            r#"["trafficking","physical","threats","extortion"]"#,
            "TT",
            "TT-POS",
            r#"["third_party_or_pimp","client","organized_crime"]"#,
            r#"["protection_shelter","health_care","sti_hiv_pep","legal_advice","migration_status"]"#,
        ),
    };
    let json = format!(
        r#"{{"v":1,"violence":{violence},"place":{{"country":"{country}","region":"{region}","setting":"urban"}},"aggressors":{aggressors},"needs":{needs},"language":"{lang}","text":{text},"reply_to":{{"sealing_key":"{sk}","signing_key":"{gk}"}},"statistics_consent":true}}"#,
        text = serde_json::to_string(text).unwrap(),
        sk = key(seed),
        gk = key(seed + 1000),
    );
    // must be valid JSON
    let _: serde_json::Value = serde_json::from_str(&json).unwrap();
    Payload { lang, size, text_chars: text.chars().count(), json: json.into_bytes() }
}

fn payloads() -> Vec<Payload> {
    let mut v = Vec::new();
    let mut seed = 1;
    for lang in ["es", "pt", "en"] {
        let short = corpus_file(&format!("{lang}_short.txt"));
        let medium = corpus_file(&format!("{lang}_medium.txt"));
        let long = format!("{medium}\n\n{}", corpus_file(&format!("{lang}_long_extra.txt")));
        for (size, t) in [("short", short), ("medium", medium), ("long", long)] {
            v.push(make_payload(lang, size, &t, seed));
            seed += 1;
        }
    }
    v
}

// ---------------------------------------------------------------------------
// Dictionaries
// ---------------------------------------------------------------------------
#[derive(Clone, Copy, PartialEq)]
enum Dict {
    None,
    /// ~4.2 KB: es/pt/en report vocabulary + JSON skeleton (dict/report_dict.bin)
    Full,
    /// ~0.76 KB: JSON skeleton only (dict/skeleton.json) -- no prose, so no corpus bias
    Skel,
}

fn dict_bytes(d: Dict) -> &'static [u8] {
    static FULL: OnceLock<Vec<u8>> = OnceLock::new();
    static SKEL: OnceLock<Vec<u8>> = OnceLock::new();
    let load = |n: &str| std::fs::read(format!("{}/dict/{n}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    match d {
        Dict::None => &[],
        Dict::Full => FULL.get_or_init(|| load("report_dict.bin")),
        Dict::Skel => SKEL.get_or_init(|| load("skeleton.json")),
    }
}

fn dict_suffix(d: Dict) -> &'static str {
    match d {
        Dict::None => "",
        Dict::Full => "+dict4k",
        Dict::Skel => "+skel",
    }
}

// ---------------------------------------------------------------------------
// Codecs
// ---------------------------------------------------------------------------
#[derive(Clone)]
enum Codec {
    Brotli { q: u32, lgwin: u32, text: bool, no_static: bool, dict: Dict, static_hack: bool },
    /// miniz_oxide raw deflate; dictionary done by priming (see miniz_compress)
    Miniz { level: u8, dict: Dict },
    /// flate2 with the zlib-rs backend (pure Rust, unsafe-heavy), raw deflate, window 2^15
    ZlibRs { level: u32, dict: Dict },
    Zstd { level: i32, dict: Dict },
    Lz4 { dict: Dict },
}

impl Codec {
    fn name(&self) -> String {
        match self {
            Codec::Brotli { q, lgwin, text, no_static, dict, static_hack } => format!(
                "brotli q{q} w{lgwin}{}{}{}{}",
                if *text { " text" } else { "" },
                if *no_static { " nostatic" } else { "" },
                dict_suffix(*dict),
                if *static_hack { "+static(hack)" } else { "" }
            ),
            Codec::Miniz { level, dict } => format!("miniz_oxide deflate l{level}{}", dict_suffix(*dict)),
            Codec::ZlibRs { level, dict } => format!("zlib-rs deflate l{level}{}", dict_suffix(*dict)),
            Codec::Zstd { level, dict } => format!("zstd l{level}{} [C]", dict_suffix(*dict)),
            Codec::Lz4 { dict } => format!("lz4_flex block{}", dict_suffix(*dict)),
        }
    }

    /// Returns (compressed, bytes of C-side encoder state if any).
    fn compress(&self, input: &[u8]) -> (Vec<u8>, usize) {
        match *self {
            Codec::Brotli { q, lgwin, text, no_static, dict, static_hack } => {
                (brotli_compress(input, q, lgwin, text, no_static, dict_bytes(dict), static_hack), 0)
            }
            Codec::Miniz { level, dict } => (miniz_compress(input, level, dict_bytes(dict)), 0),
            Codec::ZlibRs { level, dict } => (zlibrs_compress(input, level, dict_bytes(dict)), 0),
            Codec::Zstd { level, dict } => zstd_compress(input, level, dict_bytes(dict)),
            Codec::Lz4 { dict } => {
                let d = dict_bytes(dict);
                let v = if d.is_empty() {
                    lz4_flex::block::compress(input)
                } else {
                    lz4_flex::block::compress_with_dict(input, d)
                };
                (v, 0)
            }
        }
    }

    /// Bounded decompression into a caller-supplied buffer whose length is the limit.
    /// Returns (bytes written, bytes of C-side decoder state if any).
    fn decompress_into(&self, input: &[u8], out: &mut [u8]) -> Result<(usize, usize), String> {
        match *self {
            Codec::Brotli { dict, .. } => {
                brotli_decompress_into(input, out, dict_bytes(dict), 18, false).map(|n| (n, 0))
            }
            Codec::Miniz { dict, .. } => miniz_decompress_into(input, out, dict_bytes(dict)).map(|n| (n, 0)),
            Codec::ZlibRs { dict, .. } => zlibrs_decompress_into(input, out, dict_bytes(dict)).map(|n| (n, 0)),
            Codec::Zstd { dict, .. } => zstd_decompress_into(input, out, dict_bytes(dict), 17),
            Codec::Lz4 { dict } => {
                let d = dict_bytes(dict);
                let r = if d.is_empty() {
                    lz4_flex::block::decompress_into(input, out)
                } else {
                    lz4_flex::block::decompress_into_with_dict(input, out, d)
                };
                r.map(|n| (n, 0)).map_err(|e| format!("lz4: {e}"))
            }
        }
    }
}

// ---- brotli ---------------------------------------------------------------
fn brotli_compress(
    input: &[u8],
    q: u32,
    lgwin: u32,
    text: bool,
    no_static: bool,
    dict: &[u8],
    static_hack: bool,
) -> Vec<u8> {
    use brotli::enc::StandardAlloc;
    use brotli::enc::encode::{BrotliEncoderOperation, BrotliEncoderParameter as P, BrotliEncoderStateStruct};
    let mut s = BrotliEncoderStateStruct::new(StandardAlloc::default());
    s.set_parameter(P::BROTLI_PARAM_QUALITY, q);
    s.set_parameter(P::BROTLI_PARAM_LGWIN, lgwin);
    s.set_parameter(P::BROTLI_PARAM_MODE, if text { 1 } else { 0 });
    s.set_parameter(P::BROTLI_PARAM_SIZE_HINT, input.len() as u32);
    if no_static {
        // BROTLI_PARAM_NO_DICTIONARY is accepted by the enum but ignored by set_parameter
        // in brotli 9.1.1 (falls to `_ => return false`); the public field works.
        s.params.use_dictionary = false;
    }
    if !dict.is_empty() {
        s.set_custom_dictionary(dict.len(), dict);
        // The Rust encoder turns the built-in static dictionary OFF when a custom
        // dictionary is set. This re-enables it through a public field -- not a
        // supported API; only to measure what is lost.
        if static_hack {
            s.params.use_dictionary = true;
        }
    }
    let mut out = vec![0u8; input.len() + 1024];
    let (mut avail_in, mut in_off, mut avail_out, mut out_off, mut total) = (input.len(), 0, out.len(), 0, None);
    loop {
        let ok = s.compress_stream(
            BrotliEncoderOperation::BROTLI_OPERATION_FINISH,
            &mut avail_in,
            input,
            &mut in_off,
            &mut avail_out,
            &mut out,
            &mut out_off,
            &mut total,
            &mut |_: &mut brotli::interface::PredictionModeContextMap<brotli::InputReferenceMut>,
                  _: &mut [brotli::interface::StaticCommand],
                  _: brotli::InputPair,
                  _: &mut StandardAlloc| (),
        );
        assert!(ok, "brotli encoder failed");
        if s.is_finished() {
            break;
        }
        assert!(avail_out > 0, "brotli output buffer too small");
    }
    out.truncate(out_off);
    out
}

/// WBITS from a brotli stream header (RFC 7932 9.1); None for the large-window
/// signature or an empty input.
fn brotli_wbits(input: &[u8]) -> Option<u8> {
    let b = *input.first()? as u32;
    if b & 1 == 0 {
        return Some(16);
    }
    let n = (b >> 1) & 7;
    if n != 0 {
        return Some(17 + n as u8);
    }
    let m = (b >> 4) & 7;
    match m {
        0 => Some(17),
        1 => None, // large window (non-standard extension), WBITS in next bits
        _ => Some(8 + m as u8),
    }
}

fn brotli_decompress_into(
    input: &[u8],
    out: &mut [u8],
    dict: &[u8],
    max_wbits: u8,
    allow_large_window: bool,
) -> Result<usize, String> {
    use brotli::{BrotliDecompressStream, BrotliResult, BrotliState};
    use brotli_decompressor::{Allocator, BrotliDecoderParameter, SliceWrapperMut, StandardAlloc as SA};
    if max_wbits > 0 {
        match brotli_wbits(input) {
            Some(w) if w <= max_wbits => {}
            Some(w) => return Err(format!("brotli window 2^{w} above allowed 2^{max_wbits}")),
            None => return Err("brotli large-window stream refused".into()),
        }
    }
    let mut st = if dict.is_empty() {
        BrotliState::new(SA::default(), SA::default(), SA::default())
    } else {
        let mut a = SA::default();
        let mut d = <SA as Allocator<u8>>::alloc_cell(&mut a, dict.len());
        d.slice_mut().copy_from_slice(dict);
        BrotliState::new_with_custom_dictionary(SA::default(), SA::default(), SA::default(), d)
    };
    st.set_parameter(BrotliDecoderParameter::BROTLI_DECODER_PARAM_LARGE_WINDOW, allow_large_window as u32);
    let (mut ai, mut io, mut ao, mut oo, mut tot) = (input.len(), 0usize, out.len(), 0usize, 0usize);
    match BrotliDecompressStream(&mut ai, &mut io, input, &mut ao, &mut oo, out, &mut tot, &mut st) {
        BrotliResult::ResultSuccess if ai == 0 => Ok(oo),
        BrotliResult::ResultSuccess => Err("brotli: trailing bytes".into()),
        BrotliResult::NeedsMoreOutput => Err(format!("brotli: output exceeds limit {}", out.len())),
        BrotliResult::NeedsMoreInput => Err("brotli: truncated".into()),
        BrotliResult::ResultFailure => Err("brotli: corrupt".into()),
    }
}

// ---- miniz_oxide ------------------------------------------------------------
/// Raw deflate. miniz_oxide has no set_dictionary; for a preset dictionary we *prime* the
/// compressor: feed the dictionary, SYNC-flush (byte-aligned empty stored block), feed the
/// data, FINISH, and keep only the bytes after the flush point. That suffix is exactly a
/// raw-deflate stream "with preset dictionary" (same as zlib deflateSetDictionary on a raw
/// stream) -- checked below against zlib-rs inflateSetDictionary.
fn miniz_compress(input: &[u8], level: u8, dict: &[u8]) -> Vec<u8> {
    use miniz_oxide::deflate::core::{
        CompressorOxide, TDEFLFlush, TDEFLStatus, compress, create_comp_flags_from_zip_params,
    };
    if dict.is_empty() {
        return miniz_oxide::deflate::compress_to_vec(input, level);
    }
    let flags = create_comp_flags_from_zip_params(level as i32, 0, 0);
    let mut c = CompressorOxide::new(flags);
    let mut out = vec![0u8; dict.len() + input.len() + 1024];
    let (st, used, mark) = compress(&mut c, dict, &mut out, TDEFLFlush::Sync);
    assert!(st == TDEFLStatus::Okay && used == dict.len());
    let (st, used, n) = compress(&mut c, input, &mut out[mark..], TDEFLFlush::Finish);
    assert!(st == TDEFLStatus::Done && used == input.len(), "{st:?}");
    out[mark..mark + n].to_vec()
}

fn miniz_decompress_into(input: &[u8], out: &mut [u8], dict: &[u8]) -> Result<usize, String> {
    use miniz_oxide::inflate::TINFLStatus;
    use miniz_oxide::inflate::core::{DecompressorOxide, decompress, inflate_flags::*};
    let mut r = Box::new(DecompressorOxide::new());
    let flags = TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
    let res = if dict.is_empty() {
        let (s, _used, n) = decompress(&mut r, input, out, 0, flags);
        (s, n)
    } else {
        // Non-wrapping output buffer pre-filled with the dictionary: back-references may
        // reach into it. Costs a dict+limit scratch buffer and one copy.
        let mut buf = vec![0u8; dict.len() + out.len()];
        buf[..dict.len()].copy_from_slice(dict);
        let (s, _used, n) = decompress(&mut r, input, &mut buf, dict.len(), flags);
        out[..n].copy_from_slice(&buf[dict.len()..dict.len() + n]);
        (s, n)
    };
    match res {
        (TINFLStatus::Done, n) => Ok(n),
        (TINFLStatus::HasMoreOutput, _) => Err(format!("miniz: output exceeds limit {}", out.len())),
        (s, _) => Err(format!("miniz: {s:?}")),
    }
}

// ---- zlib-rs via flate2 ------------------------------------------------------
fn zlibrs_compress(input: &[u8], level: u32, dict: &[u8]) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress, Status};
    let mut c = Compress::new_with_window_bits(Compression::new(level), false, 15);
    if !dict.is_empty() {
        c.set_dictionary(dict).unwrap();
    }
    let mut out = Vec::with_capacity(input.len() + 1024);
    let st = c.compress_vec(input, &mut out, FlushCompress::Finish).unwrap();
    assert_eq!(st, Status::StreamEnd);
    out
}

fn zlibrs_decompress_into(input: &[u8], out: &mut [u8], dict: &[u8]) -> Result<usize, String> {
    use flate2::{Decompress, FlushDecompress, Status};
    let mut d = Decompress::new_with_window_bits(false, 15);
    if !dict.is_empty() {
        d.set_dictionary(dict).map_err(|e| format!("zlib-rs set_dictionary: {e}"))?;
    }
    match d.decompress(input, out, FlushDecompress::Finish) {
        Ok(Status::StreamEnd) => Ok(d.total_out() as usize),
        Ok(_) if d.total_out() as usize == out.len() => Err(format!("zlib-rs: output exceeds limit {}", out.len())),
        Ok(s) => Err(format!("zlib-rs: truncated ({s:?})")),
        Err(e) => Err(format!("zlib-rs: {e}")),
    }
}

// ---- zstd (C library via zstd-safe) ----------------------------------------------
fn zstd_compress(input: &[u8], level: i32, dict: &[u8]) -> (Vec<u8>, usize) {
    use zstd_safe::{CCtx, CParameter};
    let mut c = CCtx::create();
    c.set_parameter(CParameter::CompressionLevel(level)).unwrap();
    if !dict.is_empty() {
        // no zstd magic at the start => loaded as a raw-content dictionary
        c.load_dictionary(dict).unwrap();
    }
    let mut out = Vec::with_capacity(zstd_safe::compress_bound(input.len()));
    c.compress2(&mut out, input).map_err(zstd_safe::get_error_name).unwrap();
    let mem = c.sizeof();
    (out, mem)
}

fn zstd_decompress_into(input: &[u8], out: &mut [u8], dict: &[u8], window_log_max: u32) -> Result<(usize, usize), String> {
    use zstd_safe::{DCtx, DParameter};
    let mut d = DCtx::create();
    d.set_parameter(DParameter::WindowLogMax(window_log_max)).map_err(zstd_safe::get_error_name)?;
    if !dict.is_empty() {
        d.load_dictionary(dict).map_err(zstd_safe::get_error_name)?;
    }
    let r = d.decompress(out, input).map_err(|e| format!("zstd: {}", zstd_safe::get_error_name(e)));
    let mem = d.sizeof();
    r.map(|n| (n, mem))
}

// ---------------------------------------------------------------------------
// Timing
// ---------------------------------------------------------------------------
fn median_us(budget: Duration, mut f: impl FnMut()) -> (f64, usize) {
    for _ in 0..3 {
        f();
    }
    let t = Instant::now();
    f();
    let one = t.elapsed().as_nanos().max(1);
    let n = ((budget.as_nanos() / one) as usize).clamp(11, 501);
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f();
        v.push(t.elapsed().as_nanos());
    }
    v.sort_unstable();
    (v[n / 2] as f64 / 1000.0, n)
}

struct Row {
    codec: String,
    lang: &'static str,
    size: &'static str,
    raw: usize,
    comp: usize,
    comp_us: f64,
    decomp_us: f64,
    enc_heap: usize,
    dec_heap: usize,
    enc_c: usize,
    dec_c: usize,
}

fn codecs() -> Vec<Codec> {
    use Codec::*;
    let b = |q, lgwin| Brotli { q, lgwin, text: false, no_static: false, dict: Dict::None, static_hack: false };
    vec![
        b(9, 16),
        b(9, 18),
        b(10, 16),
        b(10, 18),
        b(11, 16),
        b(11, 18),
        Brotli { q: 11, lgwin: 16, text: true, no_static: false, dict: Dict::None, static_hack: false },
        Brotli { q: 11, lgwin: 16, text: false, no_static: true, dict: Dict::None, static_hack: false },
        Brotli { q: 11, lgwin: 16, text: false, no_static: false, dict: Dict::Skel, static_hack: false },
        Brotli { q: 11, lgwin: 16, text: false, no_static: false, dict: Dict::Full, static_hack: false },
        Brotli { q: 11, lgwin: 16, text: false, no_static: false, dict: Dict::Full, static_hack: true },
        Brotli { q: 9, lgwin: 16, text: false, no_static: false, dict: Dict::Full, static_hack: false },
        Miniz { level: 9, dict: Dict::None },
        Miniz { level: 10, dict: Dict::None },
        Miniz { level: 9, dict: Dict::Full },
        ZlibRs { level: 9, dict: Dict::None },
        ZlibRs { level: 9, dict: Dict::Full },
        Zstd { level: 19, dict: Dict::None },
        Zstd { level: 22, dict: Dict::None },
        Zstd { level: 19, dict: Dict::Full },
        Zstd { level: 22, dict: Dict::Full },
        Lz4 { dict: Dict::None },
        Lz4 { dict: Dict::Full },
    ]
}

// ---------------------------------------------------------------------------
// Zip-bomb checks: 32 MiB of zeros, compressed, then decoded with a 65,510-byte limit.
// ---------------------------------------------------------------------------
fn bombs(md: &mut String) {
    let zeros = vec![0u8; 32 << 20];
    let mut out = vec![0u8; MAX_BODY];
    writeln!(md, "\n## Zip-bomb check (32 MiB of zeros; output limit {MAX_BODY} bytes)\n").unwrap();
    writeln!(md, "| bomb | bomb size (B) | fits one 64 KiB envelope | bounded decode result | time (ms) | decoder peak heap (B) | C-side state (B) |").unwrap();
    writeln!(md, "|---|---:|---|---|---:|---:|---:|").unwrap();
    fn line(md: &mut String, out: &mut [u8], name: &str, bomb: &[u8], dec: &dyn Fn(&[u8], &mut [u8]) -> Result<(usize, usize), String>) {
        let t = Instant::now();
        let (r, heap) = peak_heap(|| dec(bomb, out));
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let (res, cmem) = match r {
            Ok((n, c)) => (format!("Ok({n}) !!"), c),
            Err(e) => (format!("Err: {e}"), 0),
        };
        let fits = bomb.len() + CODEC_TAG + INNER_HEADER <= 65536;
        writeln!(md, "| {name} | {} | {} | {res} | {ms:.2} | {heap} | {cmem} |", bomb.len(), if fits { "yes" } else { "no" }).unwrap();
    }
    // brotli: standard window 2^24, and a large-window (2^30) stream
    let b24 = brotli_compress(&zeros, 5, 24, false, false, &[], false);
    line(md, &mut out, "brotli q5 w24 -> our decoder (wbits<=18 pre-check)", &b24, &|i, o| brotli_decompress_into(i, o, &[], 18, false).map(|n| (n, 0)));
    line(md, &mut out, "brotli q5 w24 -> decoder without wbits pre-check", &b24, &|i, o| brotli_decompress_into(i, o, &[], 0, false).map(|n| (n, 0)));
    let large = {
        use brotli::enc::StandardAlloc;
        use brotli::enc::encode::{BrotliEncoderOperation, BrotliEncoderParameter as P, BrotliEncoderStateStruct};
        let mut s = BrotliEncoderStateStruct::new(StandardAlloc::default());
        s.set_parameter(P::BROTLI_PARAM_QUALITY, 5);
        s.set_parameter(P::BROTLI_PARAM_LARGE_WINDOW, 1);
        s.set_parameter(P::BROTLI_PARAM_LGWIN, 30);
        let mut o = vec![0u8; 1 << 20];
        let (mut ai, mut io, mut ao, mut oo, mut tot) = (zeros.len(), 0, o.len(), 0, None);
        loop {
            assert!(s.compress_stream(BrotliEncoderOperation::BROTLI_OPERATION_FINISH, &mut ai, &zeros, &mut io, &mut ao, &mut o, &mut oo, &mut tot,
                &mut |_: &mut brotli::interface::PredictionModeContextMap<brotli::InputReferenceMut>, _: &mut [brotli::interface::StaticCommand], _: brotli::InputPair, _: &mut StandardAlloc| ()));
            if s.is_finished() { break; }
        }
        o.truncate(oo);
        o
    };
    line(md, &mut out, "brotli q5 large-window w30 -> decoder, large window allowed, no pre-check", &large, &|i, o| brotli_decompress_into(i, o, &[], 0, true).map(|n| (n, 0)));
    line(md, &mut out, "brotli q5 large-window w30 -> decoder, large window refused", &large, &|i, o| brotli_decompress_into(i, o, &[], 0, false).map(|n| (n, 0)));
    // brotli through the std::io::Read adaptor + take(limit+1)
    {
        use std::io::Read;
        let t = Instant::now();
        let (r, heap) = peak_heap(|| {
            let mut v = Vec::new();
            let n = brotli::Decompressor::new(&b24[..], 4096).take(MAX_BODY as u64 + 1).read_to_end(&mut v);
            (n.map_err(|e| e.to_string()), v.len())
        });
        let ms = t.elapsed().as_secs_f64() * 1e3;
        writeln!(md, "| brotli q5 w24 -> brotli::Decompressor (Read).take(limit+1) | {} | yes | read {} bytes: limit+1 => reject | {ms:.2} | {heap} (incl. Vec) | 0 |", b24.len(), r.1).unwrap();
        let t = Instant::now();
        let (r, heap) = peak_heap(|| {
            let mut v = Vec::new();
            let n = brotli::Decompressor::new(&large[..], 4096).take(MAX_BODY as u64 + 1).read_to_end(&mut v);
            (n.map_err(|e| e.to_string()), v.len())
        });
        let ms = t.elapsed().as_secs_f64() * 1e3;
        writeln!(md, "| brotli q5 large-window w30 -> brotli::Decompressor (Read).take(limit+1) | {} | yes | read {} bytes ({}) | {ms:.2} | {heap} (incl. Vec) | 0 |", large.len(), r.1,
            match r.0 { Ok(_) => "accepted large window".to_string(), Err(e) => e }).unwrap();
    }
    let d9 = miniz_oxide::deflate::compress_to_vec(&zeros, 9);
    line(md, &mut out, "deflate l9 -> miniz_oxide non-wrapping buffer", &d9, &|i, o| miniz_decompress_into(i, o, &[]).map(|n| (n, 0)));
    line(md, &mut out, "deflate l9 -> zlib-rs inflate", &d9, &|i, o| zlibrs_decompress_into(i, o, &[]).map(|n| (n, 0)));
    {
        let t = Instant::now();
        let (r, heap) = peak_heap(|| miniz_oxide::inflate::decompress_to_vec_with_limit(&d9, MAX_BODY).map(|v| v.len()));
        let ms = t.elapsed().as_secs_f64() * 1e3;
        writeln!(md, "| deflate l9 -> miniz_oxide::inflate::decompress_to_vec_with_limit | {} | {} | {} | {ms:.2} | {heap} (incl. Vec) | 0 |", d9.len(), if d9.len() + 27 <= 65536 { "yes" } else { "no" },
            match r { Ok(n) => format!("Ok({n}) !!"), Err(e) => format!("Err: {:?}", e.status) }).unwrap();
    }
    let z3 = zstd_compress(&zeros, 3, &[]).0;
    line(md, &mut out, "zstd l3 -> DCtx one-shot, windowLogMax 17", &z3, &|i, o| zstd_decompress_into(i, o, &[], 17));
    line(md, &mut out, "zstd l3 -> DCtx one-shot, windowLogMax 27 (default max)", &z3, &|i, o| zstd_decompress_into(i, o, &[], 27));
    {
        let t = Instant::now();
        let r = zstd::bulk::decompress(&z3, MAX_BODY);
        let ms = t.elapsed().as_secs_f64() * 1e3;
        writeln!(md, "| zstd l3 -> zstd::bulk::decompress(data, capacity) | {} | yes | {} | {ms:.2} | (C) | - |", z3.len(),
            match r { Ok(v) => format!("Ok({}) !!", v.len()), Err(e) => format!("Err: {e}") }).unwrap();
    }
    let l = lz4_flex::block::compress(&zeros);
    line(md, &mut out, "lz4_flex block -> decompress_into(limit buffer)", &l, &|i, o| lz4_flex::block::decompress_into(i, o).map(|n| (n, 0)).map_err(|e| e.to_string()));
    {
        // decompress_size_prepended trusts a 4-byte length prefix and allocates it up front
        let mut hostile = (u32::MAX).to_le_bytes().to_vec();
        hostile.extend_from_slice(&l[..64]);
        let (r, heap) = peak_heap(|| lz4_flex::block::decompress_size_prepended(&hostile).map(|v| v.len()));
        writeln!(md, "| lz4_flex: 4-byte size prefix 0xFFFFFFFF -> decompress_size_prepended | {} | yes | {} | - | {heap} (allocated from the prefix) | 0 |", hostile.len(),
            match r { Ok(n) => format!("Ok({n})"), Err(e) => format!("Err: {e}") }).unwrap();
    }
}

/// Longest prefix of each language's long text (in chars) whose payload still lands in
/// the 1086-byte envelope, for a few codecs. Binary search (compressed size is close to
/// monotone in the prefix length).
fn fit_search(md: &mut String) {
    use Codec::*;
    let list = vec![
        None,
        Some(Brotli { q: 10, lgwin: 16, text: false, no_static: false, dict: Dict::None, static_hack: false }),
        Some(Brotli { q: 11, lgwin: 16, text: false, no_static: false, dict: Dict::None, static_hack: false }),
        Some(Brotli { q: 11, lgwin: 16, text: false, no_static: false, dict: Dict::Full, static_hack: false }),
        Some(Brotli { q: 11, lgwin: 16, text: false, no_static: false, dict: Dict::Full, static_hack: true }),
        Some(Miniz { level: 9, dict: Dict::None }),
        Some(Miniz { level: 9, dict: Dict::Full }),
        Some(Zstd { level: 19, dict: Dict::None }),
        Some(Zstd { level: 19, dict: Dict::Full }),
        Some(Lz4 { dict: Dict::Full }),
    ];
    let texts: Vec<(&'static str, Vec<char>)> = ["es", "pt", "en"]
        .iter()
        .map(|l| {
            let m = corpus_file(&format!("{l}_medium.txt"));
            let t = format!("{m}\n\n{}", corpus_file(&format!("{l}_long_extra.txt")));
            (*l, t.chars().collect())
        })
        .collect();
    writeln!(md, "\n## Longest report text that still fits the 1086- (and 4158-) byte envelope (chars; prefixes of the long texts)\n").unwrap();
    writeln!(md, "Each cell: 1086 class with 997 B room (exact, 1-byte tag) / 1086 class with the brief's conservative 980 B ; 4158 class (4069 B room). `>N` = the whole long text (N chars) fits.\n").unwrap();
    writeln!(md, "| codec | es | pt | en |\n|---|---|---|---|").unwrap();
    for c in &list {
        let name = c.as_ref().map(|c| c.name()).unwrap_or_else(|| "none (raw JSON, no tag)".into());
        let mut cells = Vec::new();
        for (i, (lang, chars)) in texts.iter().enumerate() {
            let size_at = |k: usize| -> usize {
                let t: String = chars[..k].iter().collect();
                let p = make_payload(lang, "fit", &t, 100 + i as u64);
                match c {
                    Some(c) => c.compress(&p.json).0.len() + CODEC_TAG,
                    None => p.json.len(),
                }
            };
            let mut res = Vec::new();
            for room in [1024 - INNER_HEADER, CONSERVATIVE_ROOM + CODEC_TAG, 4096 - INNER_HEADER] {
                let (mut lo, mut hi) = (0usize, chars.len());
                if size_at(lo) > room { res.push("0".to_string()); continue; }
                if size_at(hi) <= room { res.push(format!(">{hi}")); continue; }
                while lo < hi {
                    let mid = (lo + hi + 1) / 2;
                    if size_at(mid) <= room { lo = mid } else { hi = mid - 1 }
                }
                res.push(lo.to_string());
            }
            cells.push(format!("{} / {} ; {}", res[0], res[1], res[2]));
        }
        writeln!(md, "| {name} | {} | {} | {} |", cells[0], cells[1], cells[2]).unwrap();
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let budget = Duration::from_millis(if quick { 20 } else { 120 });
    let payloads = payloads();
    let codecs = codecs();
    let mut rows: Vec<Row> = Vec::new();
    let mut out = vec![0u8; MAX_BODY];

    eprintln!("dictionary sizes: full {} B, skeleton {} B", dict_bytes(Dict::Full).len(), dict_bytes(Dict::Skel).len());
    for p in &payloads {
        eprintln!("payload {}/{}: text {} chars, JSON {} bytes, raw envelope {}", p.lang, p.size, p.text_chars, p.json.len(), envelope_for_body(p.json.len()));
    }

    // Dump payloads for cross-checks with other tools (e.g. reference C brotli).
    let dir = format!("{}/payloads", env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(&dir).unwrap();
    for p in &payloads {
        std::fs::write(format!("{dir}/{}_{}.json", p.lang, p.size), &p.json).unwrap();
    }

    // Interop check for the two deflate+dictionary paths.
    for p in &payloads {
        let d = dict_bytes(Dict::Full);
        let a = miniz_compress(&p.json, 9, d);
        let n = zlibrs_decompress_into(&a, &mut out, d).expect("miniz-primed -> zlib-rs inflateSetDictionary");
        assert_eq!(&out[..n], &p.json[..]);
        let b = zlibrs_compress(&p.json, 9, d);
        let n = miniz_decompress_into(&b, &mut out, d).expect("zlib-rs dict -> miniz prefilled window");
        assert_eq!(&out[..n], &p.json[..]);
    }
    eprintln!("deflate+dict interop ok (miniz-primed <-> zlib-rs set_dictionary)");

    for c in &codecs {
        let name = c.name();
        eprintln!("{name}");
        for p in &payloads {
            let input = &p.json[..];
            let ((comp, enc_c), enc_heap) = peak_heap(|| c.compress(input));
            // round trip
            let (r, dec_heap) = peak_heap(|| c.decompress_into(&comp, &mut out));
            let (n, dec_c) = r.unwrap_or_else(|e| panic!("{name} {}/{}: {e}", p.lang, p.size));
            assert_eq!(&out[..n], input, "{name} round trip");
            // limit works: a limit one byte short must be refused
            let short = c.decompress_into(&comp, &mut out[..input.len() - 1]);
            assert!(short.is_err(), "{name}: limit not enforced");
            let (comp_us, _) = median_us(budget, || {
                black_box(c.compress(black_box(input)));
            });
            let (decomp_us, _) = median_us(budget, || {
                black_box(c.decompress_into(black_box(&comp), &mut out).unwrap());
            });
            rows.push(Row { codec: name.clone(), lang: p.lang, size: p.size, raw: input.len(), comp: comp.len(), comp_us, decomp_us, enc_heap, dec_heap, enc_c, dec_c });
        }
    }

    // ---- CSV ----
    let mut csv = String::from("codec,lang,size,raw_json_bytes,compressed_bytes,ratio,envelope_bytes,compress_us_median,decompress_us_median,encoder_peak_heap,decoder_peak_heap,zstd_cctx_bytes,zstd_dctx_bytes\n");
    for r in &rows {
        writeln!(csv, "{},{},{},{},{},{:.3},{},{:.1},{:.1},{},{},{},{}", r.codec, r.lang, r.size, r.raw, r.comp, r.comp as f64 / r.raw as f64,
            envelope_for_body(r.comp + CODEC_TAG), r.comp_us, r.decomp_us, r.enc_heap, r.dec_heap, r.enc_c, r.dec_c).unwrap();
    }
    std::fs::write(format!("{}/results.csv", env!("CARGO_MANIFEST_DIR")), &csv).unwrap();

    // ---- Markdown ----
    let mut md = String::new();
    writeln!(md, "# Results\n\nEnvelope = class for body = 1-byte codec tag + compressed stream (26-byte inner header, 62-byte envelope overhead). \
        1086-class room for the compressed stream: 997 B exact; `*` marks 981..997 B (fits exactly, but not under the brief's conservative 980 B).\n").unwrap();
    writeln!(md, "| payload | text chars | raw JSON (B) | raw envelope |\n|---|---:|---:|---:|").unwrap();
    for p in &payloads {
        writeln!(md, "| {}/{} | {} | {} | {} |", p.lang, p.size, p.text_chars, p.json.len(), envelope_for_body(p.json.len())).unwrap();
    }
    for size in ["short", "medium", "long"] {
        writeln!(md, "\n## {size}: compressed bytes (ratio) -> envelope; median compress / decompress µs\n").unwrap();
        writeln!(md, "| codec | es | pt | en | comp µs (es/pt/en) | decomp µs (es/pt/en) |\n|---|---|---|---|---|---|").unwrap();
        for c in &codecs {
            let name = c.name();
            let rs: Vec<&Row> = ["es", "pt", "en"].iter().map(|l| rows.iter().find(|r| r.codec == name && r.lang == *l && r.size == size).unwrap()).collect();
            let cell = |r: &Row| {
                let env = envelope_for_body(r.comp + CODEC_TAG);
                let star = if env == 1086 && r.comp > CONSERVATIVE_ROOM { "*" } else { "" };
                format!("{} ({:.0}%) → {}{}", r.comp, 100.0 * r.comp as f64 / r.raw as f64, env, star)
            };
            let us = |f: fn(&Row) -> f64| rs.iter().map(|r| { let v = f(r); if v < 100.0 { format!("{v:.1}") } else { format!("{v:.0}") } }).collect::<Vec<_>>().join(" / ");
            writeln!(md, "| {name} | {} | {} | {} | {} | {} |", cell(rs[0]), cell(rs[1]), cell(rs[2]), us(|r| r.comp_us), us(|r| r.decomp_us)).unwrap();
        }
    }
    writeln!(md, "\n## Memory (peak heap growth during one call, bytes; Rust allocations only — for zstd the C context size is given)\n").unwrap();
    writeln!(md, "| codec | encoder medium | encoder long | decoder medium | decoder long | zstd CCtx / DCtx (long) |\n|---|---:|---:|---:|---:|---|").unwrap();
    for c in &codecs {
        let name = c.name();
        let g = |s: &str| rows.iter().find(|r| r.codec == name && r.lang == "es" && r.size == s).unwrap();
        let (m, l) = (g("medium"), g("long"));
        let cz = if l.enc_c > 0 { format!("{} / {}", l.enc_c, l.dec_c) } else { "-".into() };
        writeln!(md, "| {name} | {} | {} | {} | {} | {cz} |", m.enc_heap, l.enc_heap, m.dec_heap, l.dec_heap).unwrap();
    }
    writeln!(md, "\nmem::size_of::<miniz_oxide::inflate::core::DecompressorOxide>() = {} B; decoder output buffer (caller-supplied, not counted above) = {MAX_BODY} B.",
        std::mem::size_of::<miniz_oxide::inflate::core::DecompressorOxide>()).unwrap();

    fit_search(&mut md);
    if !quick {
        bombs(&mut md);
    }
    std::fs::write(format!("{}/results.md", env!("CARGO_MANIFEST_DIR")), &md).unwrap();
    println!("{md}");
}
