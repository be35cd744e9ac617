//! The bundle: how a peer facilitator carries sealed envelopes (and brings
//! back the directory and receipts) through places without signal — over
//! Bluetooth, Wi-Fi Direct, an SD card or a sequence of QR codes. The core
//! produces and consumes bytes; the app moves them.
//!
//! Layout (big-endian):
//!
//! ```text
//! "AMPB" (4) | version = 1 (1) | frame* | end frame
//! frame     = kind (1) | length n (4) | payload (n) | check (8)
//! check     = SHA-256("amparo-bundle-frame" || kind || length || payload)[0..8]
//! end frame = kind 0x00, payload = frame count (4) || SHA-256(all bytes before the end frame) (32)
//! ```
//!
//! Frame kinds: `0x01` sealed envelope, `0x02` signed directory, `0x03`
//! relay receipt, `0x04` fetch grant, `0x05` admission token, `0x06`
//! check-in timer's hold, `0x07` check-in or cancel (PROTOCOL.md §17). The checks detect *damage* (a cut transfer, a bad SD card)
//! and locate it to a frame, so that an importer can keep what came before
//! and report exactly what it could not read. They are not authentication:
//! envelopes are authenticated end-to-end by their seal, directories by the
//! coordinator's signature and receipts by the relay's.
//!
//! The decoder is streaming and total: feed it bytes as they arrive, take the
//! items it can complete, and it never buffers more than one frame (at most
//! about 1 MiB for a directory) beyond what it was given.

use crate::envelope::{self, Envelope};
use crate::grant::{self, FetchGrant};
use crate::primitives::sha256;
use crate::receipt::{self, Receipt};
use crate::{ProtocolError, Result, directory};

/// Magic at the start of a bundle.
pub const MAGIC: [u8; 4] = *b"AMPB";
/// Bundle format version.
pub const VERSION: u8 = 1;
/// Length of the bundle header.
pub const HEADER_LEN: usize = 5;
/// Bytes a frame adds to its payload (kind, length, check).
pub const FRAME_OVERHEAD: usize = 1 + 4 + CHECK_LEN;
/// Length of a frame check.
pub const CHECK_LEN: usize = 8;
/// Most frames in one bundle.
pub const MAX_FRAMES: u32 = 1_000_000;

const FRAME_CONTEXT: &[u8] = b"amparo-bundle-frame";
const END_PAYLOAD_LEN: usize = 4 + 32;

/// Frame kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Kind {
    End = 0x00,
    Envelope = 0x01,
    Directory = 0x02,
    Receipt = 0x03,
    Grant = 0x04,
    Token = 0x05,
    Hold = 0x06,
    CheckIn = 0x07,
}

impl Kind {
    fn parse(b: u8) -> Result<Kind> {
        match b {
            0x00 => Ok(Kind::End),
            0x01 => Ok(Kind::Envelope),
            0x02 => Ok(Kind::Directory),
            0x03 => Ok(Kind::Receipt),
            0x04 => Ok(Kind::Grant),
            0x05 => Ok(Kind::Token),
            0x06 => Ok(Kind::Hold),
            0x07 => Ok(Kind::CheckIn),
            _ => Err(ProtocolError::Invalid("bundle frame kind")),
        }
    }

    fn max_len(self) -> usize {
        match self {
            Kind::End => END_PAYLOAD_LEN,
            Kind::Envelope => envelope::MAX_LEN,
            Kind::Directory => directory::MAX_BODY + 25 + 64,
            Kind::Receipt => receipt::LEN,
            Kind::Grant => grant::LEN,
            Kind::Token => crate::token::TOKEN_LEN,
            Kind::Hold => crate::timer::HOLD_HEADER_LEN + envelope::MAX_LEN,
            Kind::CheckIn => crate::timer::CHECK_IN_LEN,
        }
    }
}

/// One item carried in a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleItem {
    /// A sealed envelope (framing checked; only its recipient can open it).
    Envelope(Envelope),
    /// A signed directory, not yet verified (the importer verifies it against
    /// its pinned coordinator key).
    Directory(Vec<u8>),
    /// A relay receipt, not yet verified.
    Receipt(Receipt),
    /// A fetch grant for a survivor's reply mailbox (signature checked).
    Grant(FetchGrant),
    /// An admission token handed on (PROTOCOL.md §14.2; checked by the
    /// relay when it is spent).
    Token(crate::token::Token),
    /// A check-in timer's hold, for the facilitator to send to the relay
    /// (signature checked; the alert inside is sealed).
    Hold(crate::timer::Hold),
    /// A check-in or cancel, for the facilitator to send to the relay
    /// (signature checked: she can neither forge nor change one).
    CheckIn(crate::timer::CheckIn),
}

fn frame_check(kind: u8, len: [u8; 4], payload: &[u8]) -> [u8; CHECK_LEN] {
    crate::primitives::sha256_prefix(&[FRAME_CONTEXT, &[kind], &len, payload])
}

/// Writes a bundle into memory, frame by frame.
pub struct BundleEncoder {
    out: Vec<u8>,
    hasher: ring::digest::Context,
    frames: u32,
}

impl Default for BundleEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl BundleEncoder {
    /// Starts a bundle.
    pub fn new() -> Self {
        let mut e = BundleEncoder {
            out: Vec::new(),
            hasher: ring::digest::Context::new(&ring::digest::SHA256),
            frames: 0,
        };
        let mut header = Vec::with_capacity(HEADER_LEN);
        header.extend_from_slice(&MAGIC);
        header.push(VERSION);
        e.emit(&header);
        e
    }

    fn emit(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        self.out.extend_from_slice(bytes);
    }

    fn frame(&mut self, kind: Kind, payload: &[u8]) -> Result<()> {
        if payload.len() > kind.max_len() {
            return Err(ProtocolError::TooLarge {
                what: "bundle frame",
                len: payload.len(),
                max: kind.max_len(),
            });
        }
        if self.frames >= MAX_FRAMES {
            return Err(ProtocolError::TooLarge {
                what: "bundle",
                len: self.frames as usize,
                max: MAX_FRAMES as usize,
            });
        }
        let len = u32::try_from(payload.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes();
        let check = frame_check(kind as u8, len, payload);
        self.emit(&[kind as u8]);
        self.emit(&len);
        self.emit(payload);
        self.emit(&check);
        self.frames += 1;
        Ok(())
    }

    /// Adds a sealed envelope.
    pub fn envelope(&mut self, envelope: &Envelope) -> Result<()> {
        self.frame(Kind::Envelope, envelope.as_bytes())
    }

    /// Adds a signed directory (its bytes as served by the relay).
    pub fn directory(&mut self, signed_directory: &[u8]) -> Result<()> {
        self.frame(Kind::Directory, signed_directory)
    }

    /// Adds a relay receipt.
    pub fn receipt(&mut self, receipt: &Receipt) -> Result<()> {
        self.frame(Kind::Receipt, &receipt.encode())
    }

    /// Adds a check-in timer's hold.
    pub fn hold(&mut self, hold: &crate::timer::Hold) -> Result<()> {
        self.frame(Kind::Hold, &hold.encode())
    }

    /// Adds a check-in or cancel.
    pub fn check_in(&mut self, check_in: &crate::timer::CheckIn) -> Result<()> {
        self.frame(Kind::CheckIn, &check_in.encode())
    }

    /// Adds an admission token.
    pub fn token(&mut self, token: &crate::token::Token) -> Result<()> {
        self.frame(Kind::Token, &token.encode())
    }

    /// Adds a fetch grant for a reply mailbox.
    pub fn grant(&mut self, grant: &FetchGrant) -> Result<()> {
        self.frame(Kind::Grant, grant.as_bytes())
    }

    /// Takes the bytes produced so far (to write them out while encoding).
    pub fn take_output(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.out)
    }

    /// Appends the end frame and returns the remaining bytes.
    pub fn finish(mut self) -> Vec<u8> {
        let digest = self.hasher.clone().finish();
        let mut payload = Vec::with_capacity(END_PAYLOAD_LEN);
        payload.extend_from_slice(&self.frames.to_be_bytes());
        payload.extend_from_slice(digest.as_ref());
        let len = (END_PAYLOAD_LEN as u32).to_be_bytes();
        let check = frame_check(Kind::End as u8, len, &payload);
        self.out.push(Kind::End as u8);
        self.out.extend_from_slice(&len);
        self.out.extend_from_slice(&payload);
        self.out.extend_from_slice(&check);
        self.out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Header,
    Frames,
    Done,
}

/// Decodes a bundle from bytes fed in any pieces.
pub struct BundleDecoder {
    buf: Vec<u8>,
    state: State,
    hasher: ring::digest::Context,
    frames: u32,
    failed: Option<ProtocolError>,
}

impl Default for BundleDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl BundleDecoder {
    /// A decoder waiting for the header.
    pub fn new() -> Self {
        BundleDecoder {
            buf: Vec::new(),
            state: State::Header,
            hasher: ring::digest::Context::new(&ring::digest::SHA256),
            frames: 0,
            failed: None,
        }
    }

    /// Gives the decoder more bytes. Call [`Self::next_item`] until it returns
    /// `Ok(None)` before feeding more, so the buffer stays one frame long.
    pub fn feed(&mut self, data: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(data);
        }
    }

    /// How many items have been decoded.
    pub fn frames_read(&self) -> u32 {
        self.frames
    }

    /// The next complete item, `Ok(None)` if more bytes are needed (or the
    /// end frame was read), or the error that stopped decoding. After an
    /// error every call returns the same error.
    pub fn next_item(&mut self) -> Result<Option<BundleItem>> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        match self.step() {
            Ok(item) => Ok(item),
            Err(e) => {
                self.failed = Some(e.clone());
                self.buf = Vec::new();
                Err(e)
            }
        }
    }

    fn consume(&mut self, n: usize) {
        self.buf.drain(..n.min(self.buf.len()));
    }

    fn step(&mut self) -> Result<Option<BundleItem>> {
        loop {
            match self.state {
                State::Done => {
                    if !self.buf.is_empty() {
                        return Err(ProtocolError::TrailingBytes(self.buf.len()));
                    }
                    return Ok(None);
                }
                State::Header => {
                    let Some(header) = self.buf.get(..HEADER_LEN) else {
                        // Reject a wrong magic as soon as its bytes arrive.
                        if !MAGIC
                            .starts_with(self.buf.get(..self.buf.len().min(4)).unwrap_or_default())
                        {
                            return Err(ProtocolError::BadMagic("bundle"));
                        }
                        return Ok(None);
                    };
                    if header.get(..4) != Some(&MAGIC[..]) {
                        return Err(ProtocolError::BadMagic("bundle"));
                    }
                    let version = header.get(4).copied().unwrap_or_default();
                    crate::codec::expect_version("bundle", version, VERSION)?;
                    self.hasher.update(header);
                    self.consume(HEADER_LEN);
                    self.state = State::Frames;
                }
                State::Frames => return self.frame(),
            }
        }
    }

    fn frame(&mut self) -> Result<Option<BundleItem>> {
        let Some(&kind_byte) = self.buf.first() else {
            return Ok(None);
        };
        let kind = Kind::parse(kind_byte)?;
        let Some(len_bytes) = self.buf.get(1..5) else {
            return Ok(None);
        };
        let mut len_arr = [0u8; 4];
        len_arr.copy_from_slice(len_bytes);
        let len = usize::try_from(u32::from_be_bytes(len_arr)).unwrap_or(usize::MAX);
        if len > kind.max_len() {
            return Err(ProtocolError::TooLarge {
                what: "bundle frame",
                len,
                max: kind.max_len(),
            });
        }
        let total = 5 + len + CHECK_LEN;
        let Some(frame) = self.buf.get(..total) else {
            return Ok(None);
        };
        let payload = frame.get(5..5 + len).unwrap_or_default();
        let check = frame.get(5 + len..).unwrap_or_default();
        if check != frame_check(kind_byte, len_arr, payload) {
            return Err(ProtocolError::BadChecksum("bundle frame"));
        }
        let item = match kind {
            Kind::End => {
                let digest = self.hasher.clone().finish();
                let count = payload.get(..4).map(|c| {
                    let mut a = [0u8; 4];
                    a.copy_from_slice(c);
                    u32::from_be_bytes(a)
                });
                if count != Some(self.frames) || payload.get(4..) != Some(digest.as_ref()) {
                    return Err(ProtocolError::BadChecksum("bundle"));
                }
                self.consume(total);
                self.state = State::Done;
                return self.step();
            }
            Kind::Envelope => BundleItem::Envelope(Envelope::decode(payload)?),
            Kind::Directory => BundleItem::Directory(payload.to_vec()),
            Kind::Receipt => BundleItem::Receipt(Receipt::decode(payload)?),
            Kind::Grant => BundleItem::Grant(FetchGrant::decode(payload)?),
            Kind::Token => BundleItem::Token(crate::token::Token::decode(payload)?),
            Kind::Hold => BundleItem::Hold(crate::timer::Hold::decode(payload)?),
            Kind::CheckIn => BundleItem::CheckIn(crate::timer::CheckIn::decode(payload)?),
        };
        if self.frames >= MAX_FRAMES {
            return Err(ProtocolError::TooLarge {
                what: "bundle",
                len: self.frames as usize + 1,
                max: MAX_FRAMES as usize,
            });
        }
        self.hasher.update(frame);
        self.frames += 1;
        self.consume(total);
        Ok(Some(item))
    }

    /// Ends decoding: succeeds only if the end frame was read, its checksum
    /// matched and nothing followed it.
    pub fn finish(mut self) -> Result<u32> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        // Drain anything complete that the caller did not ask for.
        while self.state != State::Done {
            match self.step()? {
                Some(_) => {}
                None if self.state == State::Done => break,
                None => {
                    return Err(ProtocolError::Truncated {
                        needed: if self.state == State::Header {
                            HEADER_LEN.saturating_sub(self.buf.len())
                        } else {
                            FRAME_OVERHEAD.saturating_sub(self.buf.len()).max(1)
                        },
                    });
                }
            }
        }
        self.step()?;
        Ok(self.frames)
    }
}

/// Decodes a whole bundle held in memory. Fails on any damage.
pub fn decode_all(bytes: &[u8]) -> Result<Vec<BundleItem>> {
    let (items, error) = decode_prefix(bytes);
    match error {
        Some(e) => Err(e),
        None => Ok(items),
    }
}

/// Decodes as much of a bundle as is intact: the items before the first
/// damaged or missing byte, and the error that stopped decoding (`None` if the
/// whole bundle, end frame included, was sound).
pub fn decode_prefix(bytes: &[u8]) -> (Vec<BundleItem>, Option<ProtocolError>) {
    let mut d = BundleDecoder::new();
    d.feed(bytes);
    let mut items = Vec::new();
    loop {
        match d.next_item() {
            Ok(Some(item)) => items.push(item),
            Ok(None) => break,
            Err(e) => return (items, Some(e)),
        }
    }
    (items, d.finish().err())
}

/// SHA-256 of a whole bundle, for naming a file or comparing copies.
pub fn digest(bytes: &[u8]) -> [u8; 32] {
    sha256(&[bytes])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::UnixTime;
    use crate::entropy::DangerousSeededEntropy;
    use crate::envelope::{EnvelopeId, Purpose};
    use crate::keys::RecipientKeys;
    use crate::padding::InnerHeader;
    use crate::primitives::ed25519::SigningKey;
    use proptest::prelude::*;

    fn sample() -> (Vec<BundleItem>, Vec<u8>) {
        let mut e = DangerousSeededEntropy::new(b"bundle");
        let k = RecipientKeys::generate(&mut e).unwrap();
        let relay = SigningKey::generate(&mut e).unwrap();
        let mut items = Vec::new();
        let mut enc = BundleEncoder::new();
        for i in 0..3u8 {
            let h = InnerHeader::new(&mut e, UnixTime(1_790_000_000)).unwrap();
            let env = Envelope::seal(&k.public(), Purpose::Report, &h, &[i; 100], &mut e).unwrap();
            enc.envelope(&env).unwrap();
            items.push(BundleItem::Envelope(env));
        }
        let r = Receipt::sign(EnvelopeId([1; 16]), UnixTime(1_790_000_000), &relay);
        enc.receipt(&r).unwrap();
        items.push(BundleItem::Receipt(r));
        enc.directory(b"not verified here").unwrap();
        items.push(BundleItem::Directory(b"not verified here".to_vec()));
        (items, enc.finish())
    }

    #[test]
    fn round_trip_in_any_pieces() {
        let (items, bytes) = sample();
        assert_eq!(decode_all(&bytes).unwrap(), items);
        for piece in [1usize, 7, 1000, 5000] {
            let mut d = BundleDecoder::new();
            let mut got = Vec::new();
            for chunk in bytes.chunks(piece) {
                d.feed(chunk);
                while let Some(item) = d.next_item().unwrap() {
                    got.push(item);
                }
            }
            assert_eq!(d.finish().unwrap(), 5);
            assert_eq!(got, items);
        }
    }

    /// A check-in timer's hold and check-in travel in a bundle (PROTOCOL.md
    /// §17.7); one whose signature does not hold is refused even when its
    /// frame check, which anyone can compute, is right.
    #[test]
    fn timer_frames_round_trip_and_a_forged_check_in_is_refused() {
        use crate::timer::{CheckIn, Hold};
        let key = SigningKey::from_seed(&[3; 32]).unwrap();
        let (items, _) = sample();
        let BundleItem::Envelope(env) = items[0].clone() else {
            unreachable!()
        };
        let hold = Hold::sign(&key, 500_000, env);
        let check_in = CheckIn::postpone(&key, 16, 500_004);
        let mut enc = BundleEncoder::new();
        enc.hold(&hold).unwrap();
        enc.check_in(&check_in).unwrap();
        let bytes = enc.finish();
        assert_eq!(
            decode_all(&bytes).unwrap(),
            vec![BundleItem::Hold(hold), BundleItem::CheckIn(check_in)]
        );
        let mut forged = check_in.encode();
        forged[45] ^= 1;
        let mut enc = BundleEncoder::new();
        enc.frame(Kind::CheckIn, &forged).unwrap();
        let bytes = enc.finish();
        assert!(matches!(
            decode_all(&bytes),
            Err(ProtocolError::BadSignature(_))
        ));
    }

    #[test]
    fn damage_keeps_what_came_before() {
        let (items, bytes) = sample();
        // Flip a byte inside the second envelope's frame.
        let second = HEADER_LEN + (FRAME_OVERHEAD + items_len(&items[0])) + 300;
        let mut bad = bytes.clone();
        bad[second] ^= 0x40;
        let (kept, err) = decode_prefix(&bad);
        assert_eq!(kept, items[..1].to_vec());
        assert_eq!(err, Some(ProtocolError::BadChecksum("bundle frame")));
    }

    fn items_len(item: &BundleItem) -> usize {
        match item {
            BundleItem::Envelope(e) => e.as_bytes().len(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn truncation_and_trailing_bytes_are_errors() {
        let (items, bytes) = sample();
        let (kept, err) = decode_prefix(&bytes[..bytes.len() - 10]);
        assert_eq!(kept, items);
        assert!(matches!(err, Some(ProtocolError::Truncated { .. })));
        let mut long = bytes.clone();
        long.push(0);
        assert!(decode_all(&long).is_err());
        assert_eq!(
            decode_all(b"XXXX\x01"),
            Err(ProtocolError::BadMagic("bundle"))
        );
        assert!(matches!(
            decode_all(b"AMPB\x02"),
            Err(ProtocolError::UnsupportedVersion { .. })
        ));
        assert!(decode_all(b"").is_err());
    }

    #[test]
    fn a_dropped_frame_is_detected_by_the_end_frame() {
        let (items, bytes) = sample();
        let first = FRAME_OVERHEAD + items_len(&items[0]);
        let mut dropped = bytes[..HEADER_LEN].to_vec();
        dropped.extend_from_slice(&bytes[HEADER_LEN + first..]);
        assert_eq!(
            decode_all(&dropped),
            Err(ProtocolError::BadChecksum("bundle"))
        );
    }

    #[test]
    fn oversize_frame_length_fails_before_buffering() {
        let mut b = b"AMPB\x01\x01".to_vec();
        b.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            decode_all(&b),
            Err(ProtocolError::TooLarge { .. })
        ));
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..3000)) {
            let _ = decode_prefix(&bytes);
        }

        #[test]
        fn decode_never_panics_on_damaged_bundles(pos in any::<prop::sample::Index>(), val in any::<u8>()) {
            let (_, mut bytes) = sample();
            let i = pos.index(bytes.len());
            bytes[i] = val;
            let _ = decode_prefix(&bytes);
        }
    }
}
