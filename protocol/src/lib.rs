//! # amparo-protocol
//!
//! The wire formats and cryptography that every part of Amparo shares: sealed
//! envelopes (RFC 9180 HPKE), padding to fixed size classes, the report and
//! reply payloads, reply capabilities, the coordinator-signed directory, relay
//! receipts and the bundle format that peer facilitators carry.
//!
//! This crate is *pure*: it performs no I/O, reads no clock and owns no global
//! random number generator. Randomness comes in through [`Entropy`] and time
//! through [`UnixTime`], so that every byte it produces can be reproduced in a
//! test, and so that it can run unchanged on a phone, a relay or in a fuzzer.
//!
//! Every decoder is total: arbitrary bytes give a [`ProtocolError`], never a
//! panic, and no decoder allocates more than a bounded multiple of its input.
//!
//! The byte layouts are specified in `PROTOCOL.md` at the root of the
//! repository; the worked examples there are generated and checked by this
//! crate's tests.
#![warn(missing_docs)]
#![warn(clippy::indexing_slicing)]
#![cfg_attr(test, allow(clippy::indexing_slicing))]

pub mod admission;
pub mod aggregation;
pub mod b64;
pub mod bundle;
mod codec;
pub mod compression;
pub mod directory;
pub mod entropy;
pub mod envelope;
mod error;
pub mod grant;
pub mod hpke;
pub mod i18n;
pub mod keys;
pub mod mailboxes;
pub mod padding;
pub mod payload;
pub mod primitives;
pub mod receipt;
pub mod request;
pub mod statistics;
pub mod time;
pub mod timer;
pub mod token;
pub mod voucher;
pub mod wire;

pub use entropy::Entropy;
pub use error::ProtocolError;
pub use time::UnixTime;

/// Result type of this crate.
pub type Result<T, E = ProtocolError> = core::result::Result<T, E>;
