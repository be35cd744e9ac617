//! What the desk holds between requests: the one browser session it
//! trusts, and, while unlocked, the open profile and its case index.
//!
//! Locking drops the profile (its data key is zeroed on drop) and the
//! index (its text is zeroed on drop), and stops a sync under way, which
//! holds the only other reference to the profile.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use amparo_core::focal::CaseIndex;
use amparo_core::store::{DeviceKey, Profile};
use amparo_protocol::Entropy;
use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::payload::Language;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::Zeroizing;

use crate::sync::SyncState;

/// How the desk was started.
pub struct DeskConfig {
    /// The focal point's profile folder.
    pub profile: PathBuf,
    /// The device key a bound profile opens with.
    pub device_key: Option<Arc<dyn DeviceKey>>,
    /// Idle time after which the desk locks itself.
    pub lock_after: Duration,
    /// How often the desk syncs while unlocked (`None`: only on request).
    pub sync_every: Option<Duration>,
}

/// The browser session the desk trusts: at most one at a time.
pub struct Session {
    /// The cookie's value.
    pub id: Zeroizing<String>,
    /// The token every state-changing request carries.
    pub csrf: Zeroizing<String>,
    /// The language chosen in this session, if one was.
    pub lang: Option<Language>,
}

/// The unlocked profile.
pub struct Open {
    /// The profile (shared with a sync under way).
    pub profile: Arc<Profile>,
    /// Every case, decrypted in memory.
    pub index: CaseIndex,
    /// The language the profile's settings name.
    pub language: Option<Language>,
    /// Envelopes waiting to go out, as last counted: counting lists every
    /// cell of the profile (tens of milliseconds with 10,000 cases), so it
    /// is counted after what changes it (a change on a case, a sync), not
    /// on every page.
    pub waiting: usize,
}

/// Everything behind the desk's one lock.
pub struct Inner {
    /// The trusted session, once the launch secret was exchanged.
    pub session: Option<Session>,
    /// The profile, while unlocked.
    pub open: Option<Open>,
    /// Last request that counts as use (not a progress poll).
    pub last_seen: Instant,
    /// The sync under way or the last one.
    pub sync: SyncState,
}

/// The desk.
pub struct Desk {
    /// How it was started.
    pub config: DeskConfig,
    /// The per-launch secret in the address the desk opens.
    launch: Zeroizing<String>,
    /// `Host` headers accepted: the loopback address and port it listens on.
    hosts: Vec<String>,
    /// `Origin` headers accepted.
    origins: Vec<String>,
    inner: Mutex<Inner>,
}

/// 32 random bytes as URL-safe base64.
pub fn random_token() -> std::io::Result<Zeroizing<String>> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    SystemEntropy::new()
        .fill(&mut bytes[..])
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(Zeroizing::new(URL_SAFE_NO_PAD.encode(&bytes[..])))
}

impl Desk {
    /// A locked desk listening on `port` of the loopback interface.
    pub fn new(config: DeskConfig, port: u16) -> std::io::Result<Desk> {
        let hosts = vec![format!("127.0.0.1:{port}"), format!("localhost:{port}")];
        let origins = hosts.iter().map(|h| format!("http://{h}")).collect();
        Ok(Desk {
            config,
            launch: random_token()?,
            hosts,
            origins,
            inner: Mutex::new(Inner {
                session: None,
                open: None,
                last_seen: Instant::now(),
                sync: SyncState::default(),
            }),
        })
    }

    /// The address that opens the desk (with the launch secret).
    pub fn launch_url(&self) -> String {
        format!("http://{}/open?k={}", self.hosts[0], self.launch.as_str())
    }

    /// Whether `k` is the launch secret.
    pub fn is_launch_secret(&self, k: &str) -> bool {
        amparo_protocol::primitives::ct_eq(k.as_bytes(), self.launch.as_bytes())
    }

    /// Whether a `Host` header names this desk.
    pub fn host_ok(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    /// Whether an `Origin` header names this desk.
    pub fn origin_ok(&self, origin: &str) -> bool {
        self.origins.iter().any(|o| o.eq_ignore_ascii_case(origin))
    }

    /// The state, even if a thread panicked while holding it (nothing in
    /// it is left half-changed by a panic: each field is replaced whole).
    pub fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts a new session (the old one ends) and locks: whoever holds
    /// the launch address gets a locked desk and still needs the PIN.
    pub fn new_session(&self) -> std::io::Result<(Zeroizing<String>, Zeroizing<String>)> {
        let (id, csrf) = (random_token()?, random_token()?);
        let mut inner = self.inner();
        lock(&mut inner);
        inner.session = Some(Session {
            id: id.clone(),
            csrf: csrf.clone(),
            lang: None,
        });
        Ok((id, csrf))
    }
}

/// Drops the profile, the index and any sync under way.
pub fn lock(inner: &mut Inner) {
    inner.sync.stop();
    inner.open = None;
}
