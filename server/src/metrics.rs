//! Counters for `/metrics`, in the Prometheus text format. Counts only:
//! nothing per mailbox, per client or per request.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use amparo_protocol::wire::RejectCode;

use crate::store::StoreCounts;

const REJECT_CODES: [RejectCode; 5] = [
    RejectCode::Malformed,
    RejectCode::UnsupportedVersion,
    RejectCode::UnsupportedSuite,
    RejectCode::BadSizeClass,
    RejectCode::Unavailable,
];

/// The relay's counters (per process).
#[derive(Default)]
pub struct Metrics {
    accepted: AtomicU64,
    duplicates: AtomicU64,
    accepted_bytes: AtomicU64,
    rejected: [AtomicU64; 5],
    request_errors: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    /// A new envelope was stored.
    pub fn accepted(&self, bytes: usize) {
        self.accepted.fetch_add(1, Ordering::Relaxed);
        self.accepted_bytes
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// An envelope already held was received again.
    pub fn duplicate(&self) {
        self.duplicates.fetch_add(1, Ordering::Relaxed);
    }

    /// An envelope was refused.
    pub fn rejected(&self, code: RejectCode) {
        if let Some(i) = REJECT_CODES.iter().position(|c| *c == code)
            && let Some(c) = self.rejected.get(i)
        {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A whole request was refused with `code`.
    pub fn request_error(&self, code: &'static str) {
        if let Ok(mut m) = self.request_errors.lock() {
            *m.entry(code).or_default() += 1;
        }
    }

    /// The exposition text.
    pub fn render(&self, counts: Option<StoreCounts>) -> String {
        let mut out = String::new();
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP amparo_envelopes_accepted_total Envelopes stored (first copy)."
        );
        let _ = writeln!(out, "# TYPE amparo_envelopes_accepted_total counter");
        let _ = writeln!(
            out,
            "amparo_envelopes_accepted_total {}",
            load(&self.accepted)
        );
        let _ = writeln!(
            out,
            "# HELP amparo_envelopes_duplicate_total Copies of envelopes already held (answered with the same receipt)."
        );
        let _ = writeln!(out, "# TYPE amparo_envelopes_duplicate_total counter");
        let _ = writeln!(
            out,
            "amparo_envelopes_duplicate_total {}",
            load(&self.duplicates)
        );
        let _ = writeln!(
            out,
            "# HELP amparo_envelope_bytes_accepted_total Bytes of envelopes stored."
        );
        let _ = writeln!(out, "# TYPE amparo_envelope_bytes_accepted_total counter");
        let _ = writeln!(
            out,
            "amparo_envelope_bytes_accepted_total {}",
            load(&self.accepted_bytes)
        );
        let _ = writeln!(
            out,
            "# HELP amparo_envelopes_rejected_total Envelopes refused, by reason."
        );
        let _ = writeln!(out, "# TYPE amparo_envelopes_rejected_total counter");
        for (code, c) in REJECT_CODES.iter().zip(&self.rejected) {
            let _ = writeln!(
                out,
                "amparo_envelopes_rejected_total{{reason=\"{}\"}} {}",
                code.name(),
                load(c)
            );
        }
        let _ = writeln!(
            out,
            "# HELP amparo_requests_rejected_total Requests refused, by error code."
        );
        let _ = writeln!(out, "# TYPE amparo_requests_rejected_total counter");
        if let Ok(m) = self.request_errors.lock() {
            for (code, n) in m.iter() {
                let _ = writeln!(out, "amparo_requests_rejected_total{{code=\"{code}\"}} {n}");
            }
        }
        if let Some(c) = counts {
            let _ = writeln!(
                out,
                "# HELP amparo_envelopes_stored Envelopes waiting in mailboxes."
            );
            let _ = writeln!(out, "# TYPE amparo_envelopes_stored gauge");
            let _ = writeln!(out, "amparo_envelopes_stored {}", c.envelopes);
            let _ = writeln!(
                out,
                "# HELP amparo_envelope_bytes_stored Bytes waiting in mailboxes."
            );
            let _ = writeln!(out, "# TYPE amparo_envelope_bytes_stored gauge");
            let _ = writeln!(out, "amparo_envelope_bytes_stored {}", c.bytes);
        }
        out
    }
}
