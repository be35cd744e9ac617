use super::*;
use proptest::prelude::*;
use ring::digest::{SHA256, digest};

/// The dictionary's SHA-256. It must never change: envelopes sealed with it
/// must open for as long as a case is kept.
const DICTIONARY_V1_SHA256: &str =
    "185f25953b6132184fd518e5bbb6b5a0aa717fcffb301986d68b260b335c24d1";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A ~1,900-character report text in Spanish (written for the tests, not a
/// real report).
fn spanish_text() -> String {
    let mut t = String::from(
        "El sábado en la noche estaba trabajando en la avenida cuando llegó un carro de la \
         policía. Dos policías me pidieron mis documentos y como no tengo papeles me dijeron \
         que me iban a llevar a Migraciones. Me quitaron la plata de toda la noche y el \
         celular. Uno de ellos me tocó y me amenazó con volver cada semana si no le pagaba. ",
    );
    while t.chars().count() < 1900 {
        t.push_str(
            "Tengo miedo de denunciar porque me pueden deportar y mis hijos están conmigo. \
             Necesito un abogado y un lugar seguro donde quedarme unos días. ",
        );
    }
    t.chars().take(1900).collect()
}

#[test]
fn the_dictionary_is_frozen() {
    assert_eq!(
        hex(digest(&SHA256, DICTIONARY_V1).as_ref()),
        DICTIONARY_V1_SHA256
    );
}

#[test]
fn the_dictionary_is_what_its_sources_make() {
    // protocol/dictionary/README.md: the order is part of the dictionary.
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/dictionary/v1/");
    let mut built = Vec::new();
    for name in [
        "replies.txt",
        "vocab_en.txt",
        "vocab_pt.txt",
        "vocab_es.txt",
        "skeleton.json",
    ] {
        built.extend(std::fs::read(format!("{dir}{name}")).unwrap());
    }
    assert_eq!(built, DICTIONARY_V1);
}

#[test]
fn a_typical_report_shrinks_by_more_than_half() {
    let text = spanish_text();
    let json = format!(
        r#"{{"v":1,"violence":["threats","extortion"],"place":{{}},"language":"es","text":"{text}","reply_to":{{"sealing_key":"x","signing_key":"y"}}}}"#
    );
    let packed = compress(json.as_bytes()).unwrap();
    assert_eq!(packed[0], CODEC_DEFLATE_D1);
    assert!(
        packed.len() * 2 < json.len(),
        "{} of {}",
        packed.len(),
        json.len()
    );
    assert_eq!(&decompress(&packed).unwrap()[..], json.as_bytes());
}

/// The body compressed by a compressor primed at level 9 with the default
/// strategy, as before the primed copy: the reference for [`primed`].
fn compressed_primed_at_level_9(body: &[u8]) -> Vec<u8> {
    let mut c = prime(DEFAULT_STRATEGY).unwrap();
    let mut out = vec![CODEC_DEFLATE_D1];
    let (status, used) = compress_to_output(&mut c, body, TDEFLFlush::Finish, |chunk| {
        out.extend_from_slice(chunk);
        true
    });
    assert_eq!((status, used), (TDEFLStatus::Done, body.len()));
    out
}

#[test]
fn the_cheaply_primed_copy_compresses_as_level_9_priming_does() {
    let text = spanish_text();
    for body in [
        Vec::new(),
        b"x".to_vec(),
        text.as_bytes().to_vec(),
        text.repeat(20).into_bytes(),
        DICTIONARY_V1.to_vec(),
        (0..40_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect(),
    ] {
        let fast = compress(&body).unwrap();
        assert_eq!(
            *fast,
            compressed_primed_at_level_9(&body),
            "{} bytes",
            body.len()
        );
        // And copies do not share state: the same body twice, the same bytes.
        assert_eq!(*compress(&body).unwrap(), *fast);
        assert_eq!(*decompress(&fast).unwrap(), body);
    }
}

#[test]
fn the_dictionary_is_used() {
    // The report skeleton is in the dictionary: its keys cost almost nothing.
    let json = br#"{"v":1,"violence":[],"place":{},"aggressors":[],"needs":[],"language":"es","text":"","reply_to":{"sealing_key":"","signing_key":""}}"#;
    let packed = compress(json).unwrap();
    assert!(packed.len() < 40, "{} bytes", packed.len());
    assert_eq!(&decompress(&packed).unwrap()[..], json);
}

#[test]
fn empty_and_largest_bodies_round_trip() {
    for body in [
        Vec::new(),
        vec![b'a'; MAX_BODY],
        (0..MAX_BODY).map(|i| (i * 7919 % 251) as u8).collect(),
    ] {
        let packed = compress(&body).unwrap();
        assert_eq!(&decompress(&packed).unwrap()[..], &body[..]);
    }
    assert!(matches!(
        compress(&vec![0; MAX_BODY + 1]),
        Err(ProtocolError::TooLarge { .. })
    ));
}

/// A stream that would expand past the bound: a valid DEFLATE stream (no
/// reference to the dictionary) of `n` zero bytes.
fn bomb(n: usize) -> Vec<u8> {
    let mut s = vec![CODEC_DEFLATE_D1];
    s.extend(miniz_oxide::deflate::compress_to_vec(&vec![0u8; n], 10));
    s
}

#[test]
fn a_bomb_stops_at_the_bound() {
    // 16 MiB of zeros in ~16 KB: refused after at most 64 KiB of output.
    let b = bomb(16 << 20);
    assert!(b.len() < 20_000);
    assert_eq!(
        decompress(&b),
        Err(ProtocolError::TooLarge {
            what: "decompressed body",
            len: MAX_BODY + 1,
            max: MAX_BODY
        })
    );
    // Exactly the bound opens; one byte more does not.
    assert_eq!(decompress(&bomb(MAX_BODY)).unwrap().len(), MAX_BODY);
    assert!(matches!(
        decompress(&bomb(MAX_BODY + 1)),
        Err(ProtocolError::TooLarge { .. })
    ));
}

#[test]
fn malformed_streams_are_refused() {
    let packed = compress(spanish_text().as_bytes()).unwrap();
    assert_eq!(
        decompress(&[]),
        Err(ProtocolError::Invalid("compressed body: empty"))
    );
    let mut other_codec = packed.to_vec();
    other_codec[0] = 0x02;
    assert_eq!(
        decompress(&other_codec),
        Err(ProtocolError::Invalid("compressed body: unknown codec"))
    );
    assert_eq!(
        decompress(&packed[..packed.len() - 1]),
        Err(ProtocolError::Invalid("compressed body: truncated"))
    );
    assert_eq!(
        decompress(&[CODEC_DEFLATE_D1]),
        Err(ProtocolError::Invalid("compressed body: truncated"))
    );
    let mut trailing = packed.to_vec();
    trailing.extend_from_slice(b"xy");
    assert_eq!(decompress(&trailing), Err(ProtocolError::TrailingBytes(2)));
    // Block type 3 does not exist.
    assert_eq!(
        decompress(&[CODEC_DEFLATE_D1, 0b111, 0, 0]),
        Err(ProtocolError::Invalid("compressed body: malformed"))
    );
    // A back-reference to the dictionary's first byte opens; one byte
    // further does not.
    let reach = |distance: u32| {
        // Fixed Huffman block: literal 'a', then length 3 at `distance`
        // (code 24: 4097..6144, 11 extra bits).
        let mut bits = BitWriter::default();
        bits.put(1, 1);
        bits.put(1, 2);
        bits.put_rev(0x30 + u32::from(b'a'), 8);
        bits.put_rev(1, 7);
        bits.put_rev(24, 5);
        bits.put(distance - 4097, 11);
        bits.put_rev(0, 7);
        let mut s = vec![CODEC_DEFLATE_D1];
        s.extend(bits.finish());
        s
    };
    let edge = DICTIONARY_V1.len() as u32 + 1;
    let mut expected = b"a".to_vec();
    expected.extend_from_slice(&DICTIONARY_V1[..3]);
    assert_eq!(&decompress(&reach(edge)).unwrap()[..], &expected[..]);
    assert_eq!(
        decompress(&reach(edge + 1)),
        Err(ProtocolError::Invalid("compressed body: malformed"))
    );
    // A back-reference further than the window reaches.
    let far = {
        // Fixed Huffman block: literal 'a', then length 3 at distance 32768 —
        // beyond the 5 KiB dictionary plus one byte.
        let mut bits = BitWriter::default();
        bits.put(1, 1); // BFINAL
        bits.put(1, 2); // fixed Huffman
        bits.put_rev(0x30 + u32::from(b'a'), 8); // literal 'a'
        bits.put_rev(1, 7); // length code 257: 3
        bits.put_rev(29, 5); // distance code 29: 24577..32768
        bits.put(8191, 13); // + 8191 extra = 32768
        bits.put_rev(0, 7); // end of block
        let mut s = vec![CODEC_DEFLATE_D1];
        s.extend(bits.finish());
        s
    };
    assert_eq!(
        decompress(&far),
        Err(ProtocolError::Invalid("compressed body: malformed"))
    );
}

/// Writes DEFLATE's bit order: values LSB first; Huffman codes MSB first.
#[derive(Default)]
struct BitWriter {
    bytes: Vec<u8>,
    acc: u32,
    n: u32,
}

impl BitWriter {
    fn put(&mut self, value: u32, bits: u32) {
        for i in 0..bits {
            self.acc |= ((value >> i) & 1) << self.n;
            self.n += 1;
            if self.n == 8 {
                self.bytes.push(self.acc as u8);
                self.acc = 0;
                self.n = 0;
            }
        }
    }
    fn put_rev(&mut self, code: u32, bits: u32) {
        for i in (0..bits).rev() {
            self.put((code >> i) & 1, 1);
        }
    }
    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.bytes.push(self.acc as u8);
        }
        self.bytes
    }
}

/// A stream of `blocks` empty fixed-Huffman blocks (10 bits each), the
/// last one final.
fn empty_blocks(blocks: usize) -> Vec<u8> {
    let mut bits = BitWriter::default();
    for i in 0..blocks {
        bits.put(u32::from(i + 1 == blocks), 1);
        bits.put(1, 2);
        bits.put_rev(0, 7);
    }
    let mut s = vec![CODEC_DEFLATE_D1];
    s.extend(bits.finish());
    s
}

#[test]
fn many_tiny_blocks_are_refused() {
    // Each block rebuilds tables: work the output bound does not limit.
    assert_eq!(&decompress(&empty_blocks(MAX_BLOCKS)).unwrap()[..], b"");
    assert_eq!(
        decompress(&empty_blocks(MAX_BLOCKS + 1)),
        Err(ProtocolError::Invalid("compressed body: too many blocks"))
    );
    assert_eq!(
        decompress(&empty_blocks(50_000)),
        Err(ProtocolError::Invalid("compressed body: too many blocks"))
    );
    // What our compressor makes for the largest bodies stays far below.
    for body in [
        (0..MAX_BODY)
            .map(|i| (i * 7919 % 251) as u8)
            .collect::<Vec<u8>>(),
        spanish_text().repeat(40).into_bytes()[..MAX_BODY].to_vec(),
    ] {
        assert_eq!(
            &decompress(&compress(&body).unwrap()).unwrap()[..],
            &body[..]
        );
    }
}

#[test]
fn names_in_reads() {
    assert!(reads_compressed(&["x".into(), READS_DEFLATE_D1.into()]));
    assert!(!reads_compressed(&["deflate_d2".into()]));
    assert!(!reads_compressed(&[]));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn round_trip(body in proptest::collection::vec(any::<u8>(), 0..20_000)) {
        let packed = compress(&body).unwrap();
        prop_assert_eq!(&decompress(&packed).unwrap()[..], &body[..]);
    }

    #[test]
    fn round_trip_text(words in proptest::collection::vec("[a-zà-ú ]{0,12}|policía|denuncia|\\n", 0..800)) {
        let body = words.concat();
        let packed = compress(body.as_bytes()).unwrap();
        prop_assert_eq!(&decompress(&packed).unwrap()[..], body.as_bytes());
        prop_assert_eq!(&packed[..], &compressed_primed_at_level_9(body.as_bytes())[..]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// Any input: an error or a body within the bound, never a panic.
    #[test]
    fn bounded_for_any_input(tail in proptest::collection::vec(any::<u8>(), 0..3000)) {
        let mut input = vec![CODEC_DEFLATE_D1];
        input.extend(tail);
        if let Ok(body) = decompress(&input) {
            prop_assert!(body.len() <= MAX_BODY);
        }
    }

    /// A real stream with bytes changed: refused or a bounded body.
    #[test]
    fn bounded_for_damaged_streams(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut packed = compress(spanish_text().as_bytes()).unwrap().to_vec();
        let len = packed.len();
        for (i, b) in flips {
            packed[1 + i.index(len - 1)] ^= b;
        }
        if let Ok(body) = decompress(&packed) {
            prop_assert!(body.len() <= MAX_BODY);
        }
    }
}
