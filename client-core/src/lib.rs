//! # amparo-core
//!
//! The one library that a phone app (through UniFFI), a focal point's tool and
//! the `amparo` command line embed. It turns what people do — write a report,
//! attach a photo, read a reply — into sealed envelopes and back, on top of
//! the pure [`amparo_protocol`] crate.
//!
//! Everything hangs off an open [`store::Profile`] (a directory with one
//! SQLite database, every value sealed under a key from the PIN):
//! - survivors: [`drafts`] with metadata-stripped attachments ([`metadata`]),
//!   choosing a focal point from the signed [`directory`], sealing
//!   ([`compose`]), the outbox and [`survivor`] sync, replies and status;
//! - facilitators: carrying other people's sealed envelopes ([`bundles`]);
//! - focal points: fetching, opening and filing their mailbox ([`focal`],
//!   [`inbox`]), replying, case status and referral;
//! - coordinators: the directory-signing key and the directory built from a
//!   file people edit ([`coordinator`]);
//! - all: [`settings`], the [`relay`] client and [`retry`] with backoff.

pub mod bundles;
pub mod compose;
pub mod coordinator;
pub mod decoy;
pub mod directory;
pub mod drafts;
mod error;
pub mod focal;
pub mod inbox;
pub mod metadata;
mod pacing;
pub mod relay;
pub mod retry;
pub mod settings;
pub mod stats;
pub mod store;
pub mod survivor;
mod sweep;
pub mod timers;
pub mod tokens;

pub use error::CoreError;

/// Result type of this crate.
pub type Result<T, E = CoreError> = core::result::Result<T, E>;
