//! Official test vectors for every primitive Amparo calls directly, and for
//! our HPKE suite. The data files and their sources are in
//! `protocol/testdata/README.md`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use amparo_protocol::ProtocolError;
use amparo_protocol::hpke;
use amparo_protocol::primitives::{aead, ed25519, hkdf, x25519};
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn hex(v: &Value) -> Vec<u8> {
    let s = v.as_str().unwrap();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn arr<const N: usize>(v: &Value) -> [u8; N] {
    hex(v).try_into().unwrap()
}

fn wycheproof_tests(doc: &Value) -> impl Iterator<Item = (&Value, &Value)> {
    doc["testGroups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["tests"].as_array().unwrap().iter().map(move |t| (g, t)))
}

fn flags(t: &Value) -> Vec<&str> {
    t["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect()
}

#[test]
fn rfc9180_base_mode_vectors() {
    let doc = load("rfc9180_x25519_sha256_chacha20poly1305.json");
    let mut vectors = 0;
    let mut encryptions = 0;
    let mut exports = 0;
    for v in doc.as_array().unwrap() {
        assert_eq!(
            (
                v["kem_id"].as_u64(),
                v["kdf_id"].as_u64(),
                v["aead_id"].as_u64()
            ),
            (Some(32), Some(1), Some(3))
        );
        if v["mode"].as_u64() != Some(0) {
            continue; // psk and auth modes are not part of Amparo
        }
        vectors += 1;
        // DeriveKeyPair gives the published keys.
        let sk_r = hpke::derive_key_pair(&hex(&v["ikmR"])).unwrap();
        let sk_e = hpke::derive_key_pair(&hex(&v["ikmE"])).unwrap();
        assert_eq!(*sk_r.dangerously_export(), arr::<32>(&v["skRm"]));
        assert_eq!(*sk_e.dangerously_export(), arr::<32>(&v["skEm"]));
        assert_eq!(sk_r.public_key().0, arr::<32>(&v["pkRm"]));
        assert_eq!(sk_e.public_key().0, arr::<32>(&v["pkEm"]));

        // Encap and Decap agree with the vector.
        let (ss_s, enc) = hpke::encap_with_ephemeral(&sk_r.public_key(), &sk_e).unwrap();
        assert_eq!(enc, arr::<32>(&v["enc"]));
        assert_eq!(ss_s.dangerously_as_bytes(), &arr::<32>(&v["shared_secret"]));
        let ss_r = hpke::decap(&enc, &sk_r).unwrap();
        assert_eq!(ss_r.dangerously_as_bytes(), &arr::<32>(&v["shared_secret"]));

        // Key schedule.
        let info = hex(&v["info"]);
        let mut sender = hpke::Context::base(&ss_s, &info).unwrap();
        let mut receiver = hpke::Context::base(&ss_r, &info).unwrap();
        let (key, nonce, exporter) = sender.dangerously_secrets();
        assert_eq!(key, &arr::<32>(&v["key"]));
        assert_eq!(nonce, &arr::<12>(&v["base_nonce"]));
        assert_eq!(exporter, &arr::<32>(&v["exporter_secret"]));

        // All encryptions, in sequence.
        for e in v["encryptions"].as_array().unwrap() {
            let (aad, pt, ct) = (hex(&e["aad"]), hex(&e["pt"]), hex(&e["ct"]));
            assert_eq!(sender.seal(&aad, &pt).unwrap(), ct);
            assert_eq!(receiver.open(&aad, &ct).unwrap(), pt);
            encryptions += 1;
        }
        assert_eq!(encryptions, 257);

        // Exports.
        for x in v["exports"].as_array().unwrap() {
            let len = x["L"].as_u64().unwrap() as usize;
            let out = receiver.export(&hex(&x["exporter_context"]), len).unwrap();
            assert_eq!(*out, hex(&x["exported_value"]));
            exports += 1;
        }

        // Single-shot with the vector's ephemeral key gives the first encryption.
        let first = &v["encryptions"][0];
        let (enc1, ct1) = hpke::seal_base_with_ephemeral(
            &sk_r.public_key(),
            &sk_e,
            &info,
            &hex(&first["aad"]),
            &hex(&first["pt"]),
        )
        .unwrap();
        assert_eq!(ct1, hex(&first["ct"]));
        assert_eq!(
            hpke::open_base(&enc1, &sk_r, &info, &hex(&first["aad"]), &ct1).unwrap(),
            hex(&first["pt"])
        );
    }
    assert_eq!(vectors, 1, "one mode-0 vector for our suite");
    println!(
        "RFC 9180 mode 0: {vectors} vector, {encryptions} encryptions, {exports} exports passed"
    );
}

#[test]
fn wycheproof_x25519() {
    let doc = load("wycheproof_x25519_test.json");
    let (mut passed, mut zero_rejected) = (0, 0);
    for (_, t) in wycheproof_tests(&doc) {
        let private = arr::<32>(&t["private"]);
        let public = arr::<32>(&t["public"]);
        let shared = arr::<32>(&t["shared"]);
        let result = t["result"].as_str().unwrap();
        assert_ne!(result, "invalid", "the file has no invalid X25519 cases");
        // Raw X25519 gives the published result for valid and acceptable cases.
        assert_eq!(
            x25519::raw_x25519(private, public),
            shared,
            "tcId {}",
            t["tcId"]
        );
        // Through the checked API (what HPKE uses), an all-zero result is
        // rejected and everything else matches.
        let sk = x25519::SecretKey::from_bytes(&private);
        let checked = sk.diffie_hellman(&x25519::PublicKey(public));
        if shared == [0u8; 32] {
            assert!(flags(t).contains(&"ZeroSharedSecret"), "tcId {}", t["tcId"]);
            assert_eq!(checked.unwrap_err(), ProtocolError::WeakPublicKey);
            // And HPKE refuses both to seal to it and to open from it.
            assert_eq!(
                hpke::encap_with_ephemeral(&x25519::PublicKey(public), &sk).unwrap_err(),
                ProtocolError::WeakPublicKey
            );
            assert_eq!(
                hpke::decap(&public, &sk).unwrap_err(),
                ProtocolError::WeakPublicKey
            );
            zero_rejected += 1;
        } else {
            assert_eq!(*checked.unwrap(), shared, "tcId {}", t["tcId"]);
        }
        passed += 1;
    }
    assert_eq!(passed, doc["numberOfTests"].as_u64().unwrap() as usize);
    assert_eq!(zero_rejected, 31);
    println!(
        "Wycheproof X25519: {passed} cases passed, {zero_rejected} all-zero cases rejected by HPKE"
    );
}

#[test]
fn wycheproof_chacha20_poly1305() {
    let doc = load("wycheproof_chacha20_poly1305_test.json");
    let (mut valid, mut invalid) = (0, 0);
    for (_, t) in wycheproof_tests(&doc) {
        let key: [u8; 32] = arr(&t["key"]);
        let iv = hex(&t["iv"]);
        let (aad, msg) = (hex(&t["aad"]), hex(&t["msg"]));
        let mut ct = hex(&t["ct"]);
        ct.extend_from_slice(&hex(&t["tag"]));
        let result = t["result"].as_str().unwrap();
        let Ok(nonce) = <[u8; 12]>::try_from(iv.as_slice()) else {
            // Our API only takes 96-bit nonces: other sizes cannot be expressed.
            assert_eq!(result, "invalid", "tcId {}", t["tcId"]);
            assert!(flags(t).contains(&"InvalidNonceSize"));
            invalid += 1;
            continue;
        };
        let opened = aead::open(&key, &nonce, &aad, &ct);
        match result {
            "valid" => {
                assert_eq!(
                    aead::seal(&key, &nonce, &aad, &msg).unwrap(),
                    ct,
                    "tcId {}",
                    t["tcId"]
                );
                assert_eq!(opened.unwrap(), msg, "tcId {}", t["tcId"]);
                valid += 1;
            }
            "invalid" => {
                assert_eq!(opened, Err(ProtocolError::OpenFailed), "tcId {}", t["tcId"]);
                invalid += 1;
            }
            other => panic!("unexpected result {other}"),
        }
    }
    assert_eq!(
        valid + invalid,
        doc["numberOfTests"].as_u64().unwrap() as usize
    );
    println!("Wycheproof ChaCha20-Poly1305: {valid} valid and {invalid} invalid cases passed");
}

#[test]
fn wycheproof_hkdf_sha256() {
    let doc = load("wycheproof_hkdf_sha256_test.json");
    let (mut valid, mut invalid) = (0, 0);
    for (_, t) in wycheproof_tests(&doc) {
        let size = t["size"].as_u64().unwrap() as usize;
        let prk = hkdf::extract(&hex(&t["salt"]), &[&hex(&t["ikm"])]);
        let okm = hkdf::expand(&*prk, &[&hex(&t["info"])], size);
        match t["result"].as_str().unwrap() {
            "valid" => {
                assert_eq!(*okm.unwrap(), hex(&t["okm"]), "tcId {}", t["tcId"]);
                valid += 1;
            }
            "invalid" => {
                assert!(flags(t).contains(&"SizeTooLarge"));
                assert!(
                    matches!(okm, Err(ProtocolError::TooLarge { .. })),
                    "tcId {}",
                    t["tcId"]
                );
                invalid += 1;
            }
            other => panic!("unexpected result {other}"),
        }
    }
    assert_eq!(
        valid + invalid,
        doc["numberOfTests"].as_u64().unwrap() as usize
    );
    println!("Wycheproof HKDF-SHA256: {valid} valid and {invalid} invalid cases passed");
}

#[test]
fn wycheproof_ed25519() {
    let doc = load("wycheproof_ed25519_test.json");
    let (mut valid, mut invalid) = (0, 0);
    for (g, t) in wycheproof_tests(&doc) {
        let key = ed25519::VerifyingKey(arr(&g["publicKey"]["pk"]));
        let verdict = key.verify(&[&hex(&t["msg"])], &hex(&t["sig"]), "test");
        match t["result"].as_str().unwrap() {
            "valid" => {
                assert_eq!(verdict, Ok(()), "tcId {}", t["tcId"]);
                valid += 1;
            }
            "invalid" => {
                assert!(verdict.is_err(), "tcId {} {:?}", t["tcId"], t["comment"]);
                invalid += 1;
            }
            other => panic!("unexpected result {other}"),
        }
    }
    assert_eq!(
        valid + invalid,
        doc["numberOfTests"].as_u64().unwrap() as usize
    );
    println!("Wycheproof Ed25519: {valid} valid and {invalid} invalid cases passed");
}

/// RFC 9578 Appendix A.2 (Privacy Pass token type 0x0002): Amparo reads the
/// RFC's issuer key and writes it back byte for byte (so its token key id is
/// the RFC's), signs each token request to the RFC's response, finishes the
/// RFC's token from it, and checks the token; a changed byte is refused.
#[test]
fn rfc9578_blind_rsa_tokens() {
    use amparo_protocol::entropy::DangerousSeededEntropy;
    use amparo_protocol::token::{self, IssuerKey, Token, TokenKey, TokenRequest};
    use base64::Engine as _;
    use blind_rsa_signatures::reexports::crypto_bigint::{BoxedUint, NonZero};

    let doc = load("rfc9578_type2_vectors.json");
    let vectors = doc["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 5);
    let mut e = DangerousSeededEntropy::new(b"rfc9578");
    for (i, v) in vectors.iter().enumerate() {
        let pem = String::from_utf8(hex(&v["skS"])).unwrap();
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
        let issuer = IssuerKey::from_der(&der).unwrap();
        let spki = hex(&v["pkS"]);
        assert_eq!(
            issuer.public().spki(),
            &spki[..],
            "vector {i}: our SPKI is the RFC's"
        );
        let key = TokenKey::from_spki(&spki).unwrap();
        let request = TokenRequest::decode(&hex(&v["token_request"])).unwrap();
        assert_eq!(request.encode().to_vec(), hex(&v["token_request"]));
        let response = issuer.sign(&request, &mut e).unwrap();
        assert_eq!(response.to_vec(), hex(&v["token_response"]), "vector {i}");
        let expected = Token::decode(&hex(&v["token"])).unwrap();
        assert_eq!(expected.encode().to_vec(), hex(&v["token"]));
        assert_eq!(expected.key_id, key.id());
        let digest: [u8; 32] = {
            use amparo_protocol::primitives::sha256;
            sha256(&[&hex(&v["token_challenge"])])
        };
        assert_eq!(expected.challenge_digest, digest);
        key.verify(&expected, &digest).unwrap();
        // Finish with the RFC's blind: the unblinder is its inverse mod n.
        let n = BoxedUint::from_be_slice(&spki[81..81 + 256], 2048).unwrap();
        let r = BoxedUint::from_be_slice(&hex(&v["blind"]), 2048).unwrap();
        let inverse = r.invert_mod(&NonZero::new(n).unwrap()).unwrap();
        let finished = token::finish_with_blind(
            &key,
            arr::<32>(&v["nonce"]),
            digest,
            &inverse.to_be_bytes(),
            &response,
        )
        .unwrap();
        assert_eq!(finished, expected, "vector {i}");
        for at in [0, 2, 40, 70, 200, 353] {
            let mut bytes = expected.encode();
            bytes[at] ^= 1;
            if let Ok(changed) = Token::decode(&bytes) {
                assert!(
                    key.verify(&changed, &digest).is_err(),
                    "vector {i} byte {at}"
                );
            }
        }
    }
    println!("RFC 9578 A.2 (blind RSA tokens): 5/5");
}
