//! # amparo-core
//!
//! The one library that a phone app (through UniFFI), a focal point's tool and
//! the `amparo` command line embed. It turns what people do — write a report,
//! attach a photo, read a reply — into sealed envelopes and back, on top of
//! the pure [`amparo_protocol`] crate.
//!
//! What is here so far: sealing a report with its attachments to a focal point
//! ([`compose`]), opening what arrives in a mailbox into typed messages
//! ([`inbox`]), and talking to a relay ([`relay`]). The encrypted local store,
//! outbox, sync engine, directory cache and wipe are built on these in later
//! work (see the issues).

pub mod bundles;
pub mod compose;
pub mod directory;
pub mod drafts;
mod error;
pub mod focal;
pub mod inbox;
pub mod metadata;
pub mod relay;
pub mod retry;
pub mod store;
pub mod survivor;

pub use error::CoreError;

/// Result type of this crate.
pub type Result<T, E = CoreError> = core::result::Result<T, E>;
