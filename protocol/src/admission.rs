//! Admission work: what an upload pays when the relay is pressed.
//!
//! The relay cannot ask who is sending (that is the point), so when it is
//! pressed it asks for work instead: a client puzzle an honest phone solves
//! in the background while the report waits in its outbox, and a flooder
//! must solve once per envelope, at scale. The puzzle is Equi-X (tevador's,
//! as Tor's onion services use it, proposal 327 / hspow-spec v1; the `equix`
//! crate from the arti project): about 2 MiB of memory per solve, so a GPU
//! buys little over a phone, 16-byte solutions, and verification in tens of
//! microseconds, so checking a flood of bogus proofs costs the relay little.
//! PROTOCOL.md "Admission work" has the measured costs and the reasons.
//!
//! **Challenge** (signed by the relay's receipt key; 117 bytes):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | version = 1 |
//! | 1 | 8 | relay key id |
//! | 9 | 4 | epoch (the relay's seed period) |
//! | 13 | 32 | seed |
//! | 45 | 4 | effort asked per envelope (0: no work needed now) |
//! | 49 | 4 | seconds the challenge stays good from when it was fetched |
//! | 53 | 64 | Ed25519 signature over `"amparo-admission-v1" \|\| bytes[0..53]` |
//!
//! **Proof** (one per upload request; 41 bytes):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | version = 1 |
//! | 1 | 4 | epoch of the challenge solved |
//! | 5 | 16 | nonce |
//! | 21 | 4 | effort claimed (for the whole request) |
//! | 25 | 16 | Equi-X solution |
//!
//! The Equi-X challenge string is `"amparo-admission-v1" || seed ||
//! ids_digest || nonce || effort` (effort big-endian), where `ids_digest` is
//! SHA-256 of `"amparo-admission-ids"` and the request's envelope ids,
//! sorted and without repeats: a proof is good for exactly those envelopes
//! (replaying it stores nothing new: the relay keeps an envelope id once)
//! and for its challenge's epoch only. The effort check is Tor's: with `r`
//! the first four bytes (big-endian) of SHA-256 of the challenge string and
//! the solution, a proof of effort `e` holds if `r * e` fits in 32 bits, so
//! effort `e` takes `e` solutions on average. A request of `n` envelopes
//! must claim at least `n` times the effort asked per envelope.

use crate::codec::{Reader, expect_version};
use crate::entropy::{Entropy, random};
use crate::envelope::EnvelopeId;
use crate::keys::KeyId;
use crate::primitives::ed25519::{self, SIGNATURE_LEN};
use crate::primitives::sha256;
use crate::{ProtocolError, Result};

/// Challenge and proof format version.
pub const VERSION: u8 = 1;
/// Length of an encoded challenge.
pub const CHALLENGE_LEN: usize = 1 + 8 + 4 + 32 + 4 + 4 + SIGNATURE_LEN;
const CHALLENGE_SIGNED_LEN: usize = CHALLENGE_LEN - SIGNATURE_LEN;
/// Length of an encoded proof.
pub const PROOF_LEN: usize = 1 + 4 + 16 + 4 + 16;
const CONTEXT: &[u8] = b"amparo-admission-v1";
const IDS_CONTEXT: &[u8] = b"amparo-admission-ids";
const SEED_CONTEXT: &[u8] = b"amparo-admission-seed-v1";

/// The most effort per envelope a relay may ask (about 2^20 solutions: far
/// beyond what a phone pays; a relay asking more is refused by phones).
pub const MAX_EFFORT: u32 = 1 << 20;

/// The relay's signed word on what an upload must pay now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Challenge {
    /// Which relay key signed.
    pub relay_key_id: KeyId,
    /// The seed period it belongs to.
    pub epoch: u32,
    /// The seed proofs are bound to.
    pub seed: [u8; 32],
    /// Effort asked per envelope; 0 when the relay is not pressed.
    pub effort: u32,
    /// For how long from its fetching the challenge stays good (the phone
    /// fetches a new one after, without reading a clock against the
    /// relay's).
    pub good_for_seconds: u32,
    /// The signature.
    pub signature: [u8; SIGNATURE_LEN],
}

/// The seed of `epoch` for the relay whose receipt key is `relay_key`:
/// derived, not stored, so every relay process holding the key agrees.
pub fn seed_for(relay_key: &ed25519::SigningKey, epoch: u32) -> [u8; 32] {
    // A signature is deterministic (Ed25519) and unforgeable without the
    // key: hashing one gives every holder of the key the same secret seed.
    let signature = relay_key.sign(&[SEED_CONTEXT, &epoch.to_be_bytes()]);
    sha256(&[SEED_CONTEXT, &signature])
}

impl Challenge {
    /// The relay signs the challenge of `epoch` asking `effort` per
    /// envelope.
    pub fn sign(
        relay_key: &ed25519::SigningKey,
        epoch: u32,
        effort: u32,
        good_for_seconds: u32,
    ) -> Challenge {
        let mut c = Challenge {
            relay_key_id: KeyId::for_key(&relay_key.verifying_key()),
            epoch,
            seed: seed_for(relay_key, epoch),
            effort: effort.min(MAX_EFFORT),
            good_for_seconds,
            signature: [0; SIGNATURE_LEN],
        };
        c.signature = relay_key.sign(&[CONTEXT, &c.signed_bytes()]);
        c
    }

    fn signed_bytes(&self) -> [u8; CHALLENGE_SIGNED_LEN] {
        let mut out = [0u8; CHALLENGE_SIGNED_LEN];
        out[0] = VERSION;
        out[1..9].copy_from_slice(&self.relay_key_id.0);
        out[9..13].copy_from_slice(&self.epoch.to_be_bytes());
        out[13..45].copy_from_slice(&self.seed);
        out[45..49].copy_from_slice(&self.effort.to_be_bytes());
        out[49..53].copy_from_slice(&self.good_for_seconds.to_be_bytes());
        out
    }

    /// Encodes the challenge.
    pub fn encode(&self) -> [u8; CHALLENGE_LEN] {
        let mut out = [0u8; CHALLENGE_LEN];
        out[..CHALLENGE_SIGNED_LEN].copy_from_slice(&self.signed_bytes());
        out[CHALLENGE_SIGNED_LEN..].copy_from_slice(&self.signature);
        out
    }

    /// Decodes a challenge (without checking its signature: see
    /// [`Challenge::verify`]).
    pub fn decode(bytes: &[u8]) -> Result<Challenge> {
        let mut r = Reader::new(bytes);
        expect_version("admission challenge", r.u8()?, VERSION)?;
        let relay_key_id = KeyId(r.array()?);
        let epoch = r.u32()?;
        let seed = r.array()?;
        let effort = r.u32()?;
        if effort > MAX_EFFORT {
            return Err(ProtocolError::Invalid("admission effort"));
        }
        let good_for_seconds = r.u32()?;
        let signature = r.array()?;
        r.finish()?;
        Ok(Challenge {
            relay_key_id,
            epoch,
            seed,
            effort,
            good_for_seconds,
            signature,
        })
    }

    /// Checks the signature against a relay key the phone trusts.
    pub fn verify(&self, relay_key: &ed25519::VerifyingKey) -> Result<()> {
        if KeyId::for_key(relay_key) != self.relay_key_id {
            return Err(ProtocolError::UnknownSigner("admission challenge"));
        }
        relay_key.verify(
            &[CONTEXT, &self.signed_bytes()],
            &self.signature,
            "admission challenge",
        )
    }

    /// The effort a request of `envelopes` envelopes must claim.
    pub fn effort_for(&self, envelopes: usize) -> u32 {
        required_effort(self.effort, envelopes)
    }
}

/// The effort a request of `envelopes` envelopes must claim when `per_envelope`
/// is asked (saturating: a request that would need more than 32 bits of
/// effort cannot be admitted and must be split).
pub fn required_effort(per_envelope: u32, envelopes: usize) -> u32 {
    u32::try_from(envelopes)
        .unwrap_or(u32::MAX)
        .saturating_mul(per_envelope)
}

/// Work bound to one upload request's envelopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proof {
    /// The epoch of the challenge solved.
    pub epoch: u32,
    /// The nonce that made the puzzle.
    pub nonce: [u8; 16],
    /// The effort claimed for the whole request.
    pub effort: u32,
    /// The Equi-X solution.
    pub solution: [u8; 16],
}

impl Proof {
    /// Encodes the proof.
    pub fn encode(&self) -> [u8; PROOF_LEN] {
        let mut out = [0u8; PROOF_LEN];
        out[0] = VERSION;
        out[1..5].copy_from_slice(&self.epoch.to_be_bytes());
        out[5..21].copy_from_slice(&self.nonce);
        out[21..25].copy_from_slice(&self.effort.to_be_bytes());
        out[25..41].copy_from_slice(&self.solution);
        out
    }

    /// The proof as the `Amparo-Admission` header carries it (base64url).
    pub fn to_header(&self) -> String {
        crate::b64::encode(&self.encode())
    }

    /// A proof from an `Amparo-Admission` header's value.
    pub fn from_header(text: &str) -> Result<Proof> {
        Proof::decode(&crate::b64::decode_array::<PROOF_LEN>(
            text,
            "admission proof",
        )?)
    }

    /// Decodes a proof (checking nothing but its shape: see [`verify`]).
    pub fn decode(bytes: &[u8]) -> Result<Proof> {
        let mut r = Reader::new(bytes);
        expect_version("admission proof", r.u8()?, VERSION)?;
        let epoch = r.u32()?;
        let nonce = r.array()?;
        let effort = r.u32()?;
        let solution = r.array()?;
        r.finish()?;
        Ok(Proof {
            epoch,
            nonce,
            effort,
            solution,
        })
    }
}

/// The digest a proof binds: the request's envelope ids, sorted and without
/// repeats (the order a phone sends them in does not matter).
pub fn ids_digest(ids: &[EnvelopeId]) -> [u8; 32] {
    let mut sorted: Vec<[u8; 16]> = ids.iter().map(|id| id.0).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts: Vec<&[u8]> = Vec::with_capacity(sorted.len() + 1);
    parts.push(IDS_CONTEXT);
    parts.extend(sorted.iter().map(|id| &id[..]));
    sha256(&parts)
}

fn puzzle(seed: &[u8; 32], digest: &[u8; 32], nonce: &[u8; 16], effort: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(CONTEXT.len() + 32 + 32 + 16 + 4);
    out.extend_from_slice(CONTEXT);
    out.extend_from_slice(seed);
    out.extend_from_slice(digest);
    out.extend_from_slice(nonce);
    out.extend_from_slice(&effort.to_be_bytes());
    out
}

/// Whether `solution` to `puzzle` carries `effort` (Tor's check: `r * effort`
/// fits in 32 bits).
fn meets_effort(puzzle: &[u8], solution: &[u8; 16], effort: u32) -> bool {
    let h = sha256(&[puzzle, solution]);
    let r = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
    u64::from(r) * u64::from(effort) <= u64::from(u32::MAX)
}

/// Checks that `proof` is work of at least `required` effort for the
/// envelopes `ids`, on the challenge whose seed is `seed`. The caller checks
/// that the proof's epoch is one it accepts and derives `seed` from it.
pub fn verify(proof: &Proof, seed: &[u8; 32], ids: &[EnvelopeId], required: u32) -> Result<()> {
    if proof.effort < required {
        return Err(ProtocolError::Invalid("admission effort"));
    }
    let p = puzzle(seed, &ids_digest(ids), &proof.nonce, proof.effort);
    if equix::verify_bytes(&p, &proof.solution).is_err() {
        return Err(ProtocolError::Invalid("admission proof"));
    }
    if !meets_effort(&p, &proof.solution, proof.effort) {
        return Err(ProtocolError::Invalid("admission effort"));
    }
    Ok(())
}

/// What a solve did: the proof, if found, and the Equi-X solves it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Solved {
    /// The proof, or `None` when `keep_going` said stop first.
    pub proof: Option<Proof>,
    /// Equi-X solver runs (one per nonce tried).
    pub runs: u64,
}

/// Solves `challenge` for the envelopes `ids` at `effort` (at least what
/// [`Challenge::effort_for`] says). Runs until a proof is found or
/// `keep_going` (asked before each solver run, with the runs so far)
/// returns false. Effort `e` takes about `e / 1.9` solver runs (each run
/// yields 1.9 solutions on average), a few milliseconds each on a phone's
/// core with the compiled hash program (see PROTOCOL.md).
pub fn solve(
    challenge: &Challenge,
    ids: &[EnvelopeId],
    effort: u32,
    entropy: &mut dyn Entropy,
    keep_going: &mut dyn FnMut(u64) -> bool,
) -> Result<Solved> {
    let digest = ids_digest(ids);
    let mut nonce: [u8; 16] = random(entropy)?;
    let mut runs = 0u64;
    loop {
        if !keep_going(runs) {
            return Ok(Solved { proof: None, runs });
        }
        runs += 1;
        let p = puzzle(&challenge.seed, &digest, &nonce, effort);
        // A small share of puzzles make no valid hash program: skipped, as
        // the verifier refuses them too.
        if let Ok(solutions) = equix::solve(&p) {
            for s in solutions.iter() {
                let solution = s.to_bytes();
                if meets_effort(&p, &solution, effort) {
                    return Ok(Solved {
                        proof: Some(Proof {
                            epoch: challenge.epoch,
                            nonce,
                            effort,
                            solution,
                        }),
                        runs,
                    });
                }
            }
        }
        increment(&mut nonce);
    }
}

/// [`solve`] within the solver runs a payer should spend on `effort`:
/// effort `e` takes about `e / 2` runs on average, so 32 times `e` (at
/// least 64) means bad luck or a relay that changed its seed meanwhile.
/// `None` when the runs ran out.
pub fn solve_capped(
    challenge: &Challenge,
    ids: &[EnvelopeId],
    effort: u32,
    entropy: &mut dyn Entropy,
) -> Result<Option<Proof>> {
    let most = u64::from(effort).saturating_mul(32).max(64);
    Ok(solve(challenge, ids, effort, entropy, &mut |runs| runs < most)?.proof)
}

fn increment(nonce: &mut [u8; 16]) {
    let n = u128::from_be_bytes(*nonce).wrapping_add(1);
    *nonce = n.to_be_bytes();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::DangerousSeededEntropy;

    fn key() -> ed25519::SigningKey {
        ed25519::SigningKey::from_seed(&[7; 32]).unwrap()
    }

    fn ids(n: u8) -> Vec<EnvelopeId> {
        (0..n).map(|i| EnvelopeId([i; 16])).collect()
    }

    fn solved(c: &Challenge, ids: &[EnvelopeId], effort: u32) -> Proof {
        let mut e = DangerousSeededEntropy::new(b"admission");
        solve(c, ids, effort, &mut e, &mut |_| true)
            .unwrap()
            .proof
            .unwrap()
    }

    #[test]
    fn a_challenge_round_trips_and_its_signature_binds_every_field() {
        let k = key();
        let c = Challenge::sign(&k, 42, 16, 600);
        assert_eq!(c.seed, seed_for(&k, 42));
        assert_ne!(seed_for(&k, 42), seed_for(&k, 43));
        let bytes = c.encode();
        assert_eq!(bytes.len(), CHALLENGE_LEN);
        let back = Challenge::decode(&bytes).unwrap();
        assert_eq!(back, c);
        back.verify(&k.verifying_key()).unwrap();
        for i in 0..CHALLENGE_LEN {
            let mut bad = bytes;
            bad[i] ^= 1;
            let ok = Challenge::decode(&bad).and_then(|c| c.verify(&k.verifying_key()));
            assert!(ok.is_err(), "byte {i} is not covered");
        }
        let other = ed25519::SigningKey::from_seed(&[8; 32]).unwrap();
        assert!(matches!(
            c.verify(&other.verifying_key()),
            Err(ProtocolError::UnknownSigner(_))
        ));
        assert!(Challenge::decode(&bytes[..CHALLENGE_LEN - 1]).is_err());
        let mut long = bytes.to_vec();
        long.push(0);
        assert!(Challenge::decode(&long).is_err());
    }

    #[test]
    fn a_proof_holds_for_its_envelopes_and_its_seed_only() {
        let k = key();
        let c = Challenge::sign(&k, 1, 4, 600);
        let mine = ids(3);
        let effort = c.effort_for(mine.len());
        assert_eq!(effort, 12);
        let p = solved(&c, &mine, effort);
        assert_eq!(Proof::decode(&p.encode()).unwrap(), p);
        verify(&p, &c.seed, &mine, effort).unwrap();
        // The same envelopes in another order, or one repeated: the same set.
        let mut shuffled = vec![mine[2], mine[0], mine[1], mine[0]];
        verify(&p, &c.seed, &shuffled, effort).unwrap();
        // Other envelopes, one more or one fewer.
        shuffled.push(EnvelopeId([9; 16]));
        assert!(verify(&p, &c.seed, &shuffled, effort).is_err());
        assert!(verify(&p, &c.seed, &mine[..2], effort).is_err());
        // Another epoch's seed.
        assert!(verify(&p, &seed_for(&k, 2), &mine, effort).is_err());
        // More effort asked than claimed.
        assert!(verify(&p, &c.seed, &mine, effort + 1).is_err());
        // A claim raised after the fact, or a solution altered.
        let raised = Proof {
            effort: effort * 100,
            ..p
        };
        assert!(verify(&raised, &c.seed, &mine, effort).is_err());
        for i in 0..16 {
            let mut s = p;
            s.solution[i] ^= 0x10;
            assert!(verify(&s, &c.seed, &mine, effort).is_err(), "byte {i}");
        }
    }

    #[test]
    fn effort_takes_about_that_many_solutions() {
        // Over many proofs at effort 8, the solver runs average about
        // 8 / 1.9; loose bounds, so the test cannot flake, yet a check that
        // ignored the effort (1 run each) or a solver that missed
        // solutions (tens each) fails.
        let c = Challenge::sign(&key(), 1, 8, 600);
        let mut e = DangerousSeededEntropy::new(b"effort");
        let mut runs = 0;
        for i in 0..24u8 {
            let s = solve(&c, &[EnvelopeId([i; 16])], 8, &mut e, &mut |_| true).unwrap();
            verify(&s.proof.unwrap(), &c.seed, &[EnvelopeId([i; 16])], 8).unwrap();
            runs += s.runs;
        }
        let mean = runs as f64 / 24.0;
        assert!((1.5..=12.0).contains(&mean), "{mean} runs per proof");
    }

    #[test]
    fn a_solve_stops_when_told() {
        let c = Challenge::sign(&key(), 1, MAX_EFFORT, 600);
        let mut e = DangerousSeededEntropy::new(b"stop");
        let s = solve(&c, &ids(1), MAX_EFFORT, &mut e, &mut |runs| runs < 3).unwrap();
        assert_eq!(
            s,
            Solved {
                proof: None,
                runs: 3
            }
        );
    }

    #[test]
    fn decoders_refuse_what_is_not_a_challenge_or_a_proof() {
        let mut c = Challenge::sign(&key(), 1, 1, 600).encode();
        c[45..49].copy_from_slice(&(MAX_EFFORT + 1).to_be_bytes());
        assert!(matches!(
            Challenge::decode(&c),
            Err(ProtocolError::Invalid(_))
        ));
        c[0] = 2;
        assert!(matches!(
            Challenge::decode(&c),
            Err(ProtocolError::UnsupportedVersion { .. })
        ));
        assert!(Proof::decode(&[]).is_err());
        assert!(Proof::decode(&[1; PROOF_LEN + 1]).is_err());
        assert!(Proof::decode(&[2; PROOF_LEN]).is_err());
        assert_eq!(required_effort(u32::MAX, 2), u32::MAX);
    }
}
