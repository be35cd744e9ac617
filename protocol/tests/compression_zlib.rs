//! PROTOCOL.md §5.1 says a compressed body is zlib's raw DEFLATE with D1 as
//! its preset dictionary. This checks that claim against zlib itself (through
//! Python's `zlib` module, which links the C library): zlib must decode what
//! we compress, and we must decode what zlib compresses — so an
//! implementation in another language can use its own zlib and interoperate.
//!
//! Needs `python3`; in CI (`CI=true`) its absence is a failure, elsewhere the
//! test says it skipped.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use amparo_protocol::compression::{self, DICTIONARY_V1};

const SCRIPT: &str = r#"
import sys, zlib
d = open(sys.argv[1], "rb").read()
data = bytes.fromhex(sys.stdin.read().strip())
if sys.argv[2] == "inflate":
    assert data[0] == 1, "codec"
    o = zlib.decompressobj(wbits=-15, zdict=d)
    out = o.decompress(data[1:]) + o.flush()
    assert o.eof and not o.unused_data, "stream not whole"
    sys.stdout.write(out.hex())
else:
    c = zlib.compressobj(level=int(sys.argv[3]), wbits=-15, zdict=d)
    sys.stdout.write("01" + (c.compress(data) + c.flush()).hex())
"#;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn python(args: &[&str], input: &[u8]) -> Option<Vec<u8>> {
    use std::io::Write;
    let dict = concat!(env!("CARGO_MANIFEST_DIR"), "/dictionary/v1.bin");
    let child = Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .arg(dict)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            assert!(
                std::env::var("CI").is_err(),
                "python3 is needed for this test in CI: {e}"
            );
            eprintln!("skipped: no python3 ({e})");
            return None;
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(hex(input).as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "python3 failed");
    Some(unhex(std::str::from_utf8(&out.stdout).unwrap()))
}

fn bodies() -> Vec<Vec<u8>> {
    let report = r#"{"v":1,"violence":["threats"],"place":{"country":"BR","region":"BR-RR"},"needs":["legal_advice"],"language":"pt","text":"Os policiais pediram meus documentos e levaram meu dinheiro. Tenho medo de denunciar porque não tenho documentos.","reply_to":{"sealing_key":"AAAA","signing_key":"BBBB"},"reads":["deflate_d1"]}"#;
    vec![
        Vec::new(),
        report.as_bytes().to_vec(),
        report.repeat(40).into_bytes(),
        // Incompressible bytes: stored blocks.
        (0..20_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect(),
        DICTIONARY_V1.to_vec(),
    ]
}

#[test]
fn zlib_opens_what_we_compress() {
    for body in bodies() {
        let packed = compression::compress(&body).unwrap();
        let Some(out) = python(&["inflate"], &packed) else {
            return;
        };
        assert_eq!(out, body);
    }
}

#[test]
fn we_open_what_zlib_compresses() {
    for level in ["1", "6", "9"] {
        for body in bodies() {
            let Some(packed) = python(&["deflate", level], &body) else {
                return;
            };
            assert_eq!(&compression::decompress(&packed).unwrap()[..], &body[..]);
        }
    }
}
