//! # amparo-ffi
//!
//! amparo-core for phone apps: the survivor's, the facilitator's and the
//! focal point's whole API, exported through UniFFI (proc-macros, no UDL) to
//! Kotlin, Swift and Python. This crate only converts: every rule lives in
//! amparo-core, and each method here is one call into it.
//!
//! Calls are **blocking**. Those that touch the network (`sync`,
//! `focal_sync`, `refresh_directory`, …) run on an internal tokio runtime
//! and return when done; apps call them from a background thread (a Kotlin
//! `Dispatchers.IO` coroutine, a Swift `Task.detached`, a Python thread).
//! Progress callbacks arrive on the thread that made the call. ARCHITECTURE.md
//! says why this rather than UniFFI's async functions.

mod device;
mod error;
mod timers;
mod types;

use std::path::Path;
use std::sync::{Arc, OnceLock, RwLock};

use amparo_core::relay::{RelayClient, RelayConfig};
use amparo_core::store;
use amparo_protocol::UnixTime;
use amparo_protocol::b64;
use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::primitives::ed25519::{SigningKey, VerifyingKey};

pub use device::{DeviceKey, DeviceKeyError, UnlockStatus, unlock_status};
pub use error::AmparoError;
pub use timers::{TimerPhase, TimerStatus};
pub use types::*;

uniffi::setup_scaffolding!();

type Result<T, E = AmparoError> = std::result::Result<T, E>;

/// The runtime that drives network calls: one worker thread for the
/// sockets and timers; each call's own work runs on the calling thread.
fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<std::result::Result<tokio::runtime::Runtime, String>> =
        OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("amparo-net")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| AmparoError::Internal(format!("the network thread could not start: {e}")))
}

fn block_on<T>(f: impl std::future::Future<Output = amparo_core::Result<T>>) -> Result<T> {
    Ok(runtime()?.block_on(f)?)
}

/// The phone's clock, as the protocol takes it.
fn now() -> UnixTime {
    UnixTime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    )
}

fn verifying_key(text: &str, what: &'static str) -> Result<VerifyingKey> {
    Ok(VerifyingKey(types::key32(text, what)?))
}

/// Implemented by the app to show progress of a sync (a progress bar).
/// Called on the thread that called `sync`; it must return quickly, must
/// not throw, and must not call back into the profile (post the value to
/// the UI thread instead).
#[uniffi::export(with_foreign)]
pub trait SyncListener: Send + Sync {
    /// One step of progress.
    fn on_progress(&self, progress: SyncProgress);
}

fn report_to(listener: &Option<Arc<dyn SyncListener>>, p: SyncProgress) {
    if let Some(l) = listener {
        l.on_progress(p);
    }
}

/// Whether a profile exists in `folder`. (Says nothing else: a duress
/// profile and a real one look the same.)
#[uniffi::export]
pub fn profile_exists(folder: String) -> bool {
    store::Profile::exists(Path::new(&folder))
}

/// The report form's wording (plain, the same in every app and the CLI) for
/// a kind of violence, in `language`.
#[uniffi::export]
pub fn violence_label(kind: ViolenceKind, language: Language) -> String {
    label(amparo_protocol::payload::ViolenceKind::from(kind), language)
}

/// The form's wording for a kind of aggressor, in `language`.
#[uniffi::export]
pub fn aggressor_label(kind: AggressorKind, language: Language) -> String {
    label(
        amparo_protocol::payload::AggressorKind::from(kind),
        language,
    )
}

/// The form's wording for a need (also a focal point's kind of help), in `language`.
#[uniffi::export]
pub fn need_label(need: Need, language: Language) -> String {
    label(amparo_protocol::payload::Need::from(need), language)
}

/// The wording of a case status, in `language`.
#[uniffi::export]
pub fn case_status_label(status: CaseStatus, language: Language) -> String {
    label(amparo_protocol::payload::CaseStatus::from(status), language)
}

/// The wording of a kind of attachment, in `language`.
#[uniffi::export]
pub fn attachment_label(kind: AttachmentKind, language: Language) -> String {
    label(
        amparo_protocol::payload::AttachmentKind::from(kind),
        language,
    )
}

/// The form's wording for an age band, in `language`.
#[uniffi::export]
pub fn age_band_label(band: AgeBand, language: Language) -> String {
    label(amparo_protocol::payload::AgeBand::from(band), language)
}

/// The form's wording for a kind of place, in `language`.
#[uniffi::export]
pub fn place_setting_label(setting: PlaceSetting, language: Language) -> String {
    label(
        amparo_protocol::payload::PlaceSetting::from(setting),
        language,
    )
}

/// A GBVIMS type's name, in `language` (for a focal point's app).
#[uniffi::export]
pub fn gbv_type_label(gbv_type: GbvType, language: Language) -> String {
    label(
        amparo_protocol::statistics::GbvType::from(gbv_type),
        language,
    )
}

/// The question asking her consent to be counted in shared statistics, in
/// plain words (what is counted, who sees it, that no answer is no).
#[uniffi::export]
pub fn statistics_consent_question(language: Language) -> String {
    amparo_protocol::i18n::statistics_consent_question(language.into()).to_string()
}

/// The question whether she already told another organisation.
#[uniffi::export]
pub fn reported_elsewhere_question(language: Language) -> String {
    amparo_protocol::i18n::reported_elsewhere_question(language.into()).to_string()
}

/// A language's name in itself ("Español", "Português", "English").
#[uniffi::export]
pub fn language_label(language: Language) -> String {
    label(amparo_protocol::payload::Language::from(language), language)
}

fn label(item: impl amparo_protocol::i18n::Label, language: Language) -> String {
    item.label(language.into()).to_string()
}

/// How to reach a relay.
#[derive(Debug, Clone, uniffi::Record)]
pub struct RelaySettings {
    /// Base URL, e.g. `https://relay.example` or an onion address.
    pub url: String,
    /// Optional proxy: `socks5h://127.0.0.1:9050` (Tor, Orbot) or `http://…`.
    #[uniffi(default)]
    pub proxy: Option<String>,
    /// Time limit of one request, in seconds (slow links need minutes).
    #[uniffi(default = 120)]
    pub timeout_seconds: u32,
}

/// A relay the app talks to. Cheap to keep for the app's lifetime.
#[derive(Debug, uniffi::Object)]
pub struct Relay {
    client: RelayClient,
}

#[uniffi::export]
impl Relay {
    /// A client for the relay in `settings` (no request is made yet).
    #[uniffi::constructor]
    pub fn new(settings: RelaySettings) -> Result<Arc<Self>> {
        let mut config = RelayConfig::new(settings.url);
        config.proxy = settings.proxy;
        config.timeout = std::time::Duration::from_secs(u64::from(settings.timeout_seconds.max(1)));
        Ok(Arc::new(Relay {
            client: RelayClient::new(&config)?,
        }))
    }

    /// Publishes a coordinator-signed directory (a coordinator's tool; the
    /// relay accepts only directories its coordinator key verifies).
    pub fn publish_directory(&self, signed_directory: Vec<u8>) -> Result<()> {
        block_on(self.client.publish_directory(&signed_directory))
    }
}

/// The coordinator's directory-signing key: for a coordinator's tool and for
/// tests that need a directory. A phone app holds only the public key.
#[derive(uniffi::Object)]
pub struct Coordinator {
    key: SigningKey,
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator").finish_non_exhaustive()
    }
}

#[uniffi::export]
impl Coordinator {
    /// A fresh signing key.
    #[uniffi::constructor]
    pub fn generate() -> Result<Arc<Self>> {
        Ok(Arc::new(Coordinator {
            key: SigningKey::generate(&mut SystemEntropy::new())?,
        }))
    }

    /// The key for a stored 32-byte seed.
    #[uniffi::constructor]
    pub fn from_seed(seed: Vec<u8>) -> Result<Arc<Self>> {
        let seed: [u8; 32] = seed
            .try_into()
            .map_err(|_| AmparoError::Invalid("a coordinator seed is 32 bytes".into()))?;
        Ok(Arc::new(Coordinator {
            key: SigningKey::from_seed(&seed)?,
        }))
    }

    /// The seed, to store the key encrypted. Handle with care.
    pub fn dangerously_export_seed(&self) -> Vec<u8> {
        self.key.dangerously_export_seed().to_vec()
    }

    /// The public key apps pin (base64url).
    pub fn public_key(&self) -> String {
        b64::encode(self.key.verifying_key().as_bytes())
    }

    /// Signs a directory as `version` (each new one must be higher).
    pub fn sign_directory(
        &self,
        version: u64,
        focal_points: Vec<FocalPoint>,
        service_routes: Vec<ServiceRoute>,
        relays: Vec<RelayEntry>,
    ) -> Result<Vec<u8>> {
        let directory = amparo_protocol::directory::Directory {
            statistics: None,
            focal_points: focal_points
                .into_iter()
                .map(TryInto::try_into)
                .collect::<Result<_>>()?,
            service_routes: service_routes.into_iter().map(Into::into).collect(),
            relays: relays
                .into_iter()
                .map(TryInto::try_into)
                .collect::<Result<_>>()?,
        };
        Ok(directory.sign(version, &self.key)?.as_bytes().to_vec())
    }
}

/// The keys the app pins, decoded.
struct Trust {
    coordinator: VerifyingKey,
    relays: Vec<VerifyingKey>,
}

impl TryFrom<TrustedKeys> for Trust {
    type Error = AmparoError;
    fn try_from(t: TrustedKeys) -> Result<Self> {
        Ok(Trust {
            coordinator: verifying_key(&t.coordinator_key, "coordinator key")?,
            relays: t
                .relay_receipt_keys
                .iter()
                .map(|k| verifying_key(k, "relay receipt key"))
                .collect::<Result<_>>()?,
        })
    }
}

/// An open profile: the survivor's, the facilitator's or the focal point's
/// encrypted store on this phone. Safe to share between threads.
#[derive(uniffi::Object)]
pub struct Profile {
    /// `None` once wiped or closed.
    inner: RwLock<Option<store::Profile>>,
    trust: Trust,
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profile").finish_non_exhaustive()
    }
}

impl Profile {
    /// Runs `f` on the open profile.
    fn with<T>(&self, f: impl FnOnce(&store::Profile) -> Result<T>) -> Result<T> {
        let guard = self
            .inner
            .read()
            .map_err(|_| AmparoError::Internal("the profile lock is broken".into()))?;
        match guard.as_ref() {
            Some(p) => f(p),
            None => Err(AmparoError::ProfileClosed(
                "this profile is closed; open it again with the PIN".into(),
            )),
        }
    }

    /// Relay keys whose receipts count: the pinned ones and the directory's.
    fn relay_keys(&self, p: &store::Profile) -> Result<Vec<VerifyingKey>> {
        let mut keys = self.trust.relays.clone();
        if let Some(d) = p.directory(&self.trust.coordinator)? {
            keys.extend(d.relays.iter().map(|r| VerifyingKey(r.receipt_key)));
        }
        Ok(keys)
    }

    fn focal_point(
        &self,
        p: &store::Profile,
        id: &str,
    ) -> Result<amparo_protocol::directory::FocalPoint> {
        p.directory(&self.trust.coordinator)?
            .and_then(|d| d.focal_point(id).cloned())
            .ok_or_else(|| {
                AmparoError::NotFound(format!("no focal point \"{id}\" in the directory held"))
            })
    }

    fn take(&self) -> Result<Option<store::Profile>> {
        Ok(self
            .inner
            .write()
            .map_err(|_| AmparoError::Internal("the profile lock is broken".into()))?
            .take())
    }
}

#[uniffi::export]
impl Profile {
    /// Creates a profile in `folder` (app-private storage) protected by
    /// `pin`. Use `KdfStrength::Phone` in apps.
    #[uniffi::constructor]
    pub fn create(
        folder: String,
        pin: String,
        kdf: KdfStrength,
        trusted: TrustedKeys,
    ) -> Result<Arc<Self>> {
        let trust = trusted.try_into()?;
        let p = store::Profile::create(Path::new(&folder), &pin, kdf.into())?;
        Ok(Arc::new(Profile {
            inner: RwLock::new(Some(p)),
            trust,
        }))
    }

    /// Opens the profile in `folder`. A wrong PIN is `WrongPin`; the duress
    /// PIN opens the decoy (and may destroy the real profile) without saying so.
    #[uniffi::constructor]
    pub fn open(folder: String, pin: String, trusted: TrustedKeys) -> Result<Arc<Self>> {
        let trust = trusted.try_into()?;
        let p = store::Profile::open(Path::new(&folder), &pin)?;
        Ok(Arc::new(Profile {
            inner: RwLock::new(Some(p)),
            trust,
        }))
    }

    // --- PIN, duress, wipe ---

    /// Replaces the PIN.
    pub fn change_pin(&self, new_pin: String) -> Result<()> {
        self.with(|p| Ok(p.change_pin(&new_pin)?))
    }

    /// Sets a duress PIN that opens a decoy: no reports of hers, but the
    /// same settings, role, language and directory as this profile, kept
    /// current while she uses the real one, so it looks and syncs like a
    /// quiet real profile. With `wipe_real`, using it also destroys the real
    /// profile.
    pub fn set_duress_pin(&self, duress_pin: String, wipe_real: bool) -> Result<()> {
        self.with(|p| Ok(p.set_duress_pin_with_decoy(&duress_pin, wipe_real)?))
    }

    /// Removes the duress PIN and the decoy. From inside the decoy it does
    /// nothing, as in a profile without a duress PIN.
    pub fn clear_duress_pin(&self) -> Result<()> {
        self.with(|p| Ok(p.clear_duress_pin()?))
    }

    // --- harmless content for the decoy, prepared from the real profile ---

    /// Adds an unsent draft to the decoy (a real profile often has one);
    /// returns its id in the decoy. `Invalid` without a duress PIN.
    pub fn decoy_add_draft(&self, form: DraftForm) -> Result<String> {
        self.with(|p| Ok(b64::encode(&p.decoy_add_draft(&form.into())?)))
    }

    /// Records in the decoy an old report about something minor, delivered
    /// at `sent_at` (Unix seconds, not in the future) to `focal_point` (a
    /// directory id; `None`: the one the directory suggests). Nothing is
    /// sent to anyone. Returns its id in the decoy.
    pub fn decoy_add_delivered_report(
        &self,
        form: DraftForm,
        focal_point: Option<String>,
        sent_at: u64,
    ) -> Result<String> {
        self.with(|p| {
            Ok(b64::encode(&p.decoy_add_delivered_report_under(
                &form.into(),
                focal_point.as_deref(),
                UnixTime(sent_at),
                &self.trust.coordinator,
            )?))
        })
    }

    /// The decoy's drafts, as the decoy shows them.
    pub fn decoy_drafts(&self) -> Result<Vec<Draft>> {
        self.with(|p| Ok(p.decoy_drafts()?.into_iter().map(Into::into).collect()))
    }

    /// The decoy's delivered reports, as the decoy shows them.
    pub fn decoy_sent_reports(&self) -> Result<Vec<SentReport>> {
        self.with(|p| {
            Ok(p.decoy_sent_reports()?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    /// Deletes one of the decoy's drafts.
    pub fn decoy_delete_draft(&self, draft_id: String) -> Result<()> {
        let id = id16(&draft_id)?;
        self.with(|p| Ok(p.decoy_delete_draft(&id)?))
    }

    /// Locks the profile (e.g. when the app goes to the background): its key
    /// leaves memory; every later call on this object is `ProfileClosed`.
    /// (Not `close`: Kotlin objects already have a `close()` that frees the
    /// handle.)
    pub fn lock(&self) -> Result<()> {
        self.take().map(drop)
    }

    /// Destroys the profile: its key first, then its files. Waits for calls
    /// in progress; every later call is `ProfileClosed`.
    pub fn wipe(&self) -> Result<()> {
        match self.take()? {
            Some(p) => Ok(p.wipe()?),
            None => Err(AmparoError::ProfileClosed(
                "this profile is closed; open it again to wipe it".into(),
            )),
        }
    }

    // --- drafts ---

    /// Starts a draft; returns its id.
    pub fn create_draft(&self, form: DraftForm) -> Result<String> {
        self.with(|p| Ok(b64::encode(&p.create_draft(&form.into())?)))
    }

    /// Reads a draft.
    pub fn draft(&self, draft_id: String) -> Result<Draft> {
        let id = id16(&draft_id)?;
        self.with(|p| Ok(p.draft(&id)?.into()))
    }

    /// Every draft, oldest first.
    pub fn drafts(&self) -> Result<Vec<Draft>> {
        self.with(|p| Ok(p.drafts()?.into_iter().map(Into::into).collect()))
    }

    /// Replaces a draft's form (its attachments stay).
    pub fn update_draft(&self, draft_id: String, form: DraftForm) -> Result<()> {
        let id = id16(&draft_id)?;
        self.with(|p| Ok(p.update_draft(&id, &form.into())?))
    }

    /// Deletes a draft and its attachments.
    pub fn delete_draft(&self, draft_id: String) -> Result<()> {
        let id = id16(&draft_id)?;
        self.with(|p| Ok(p.delete_draft(&id)?))
    }

    /// Attaches bytes to a draft (photo metadata is removed first); returns
    /// the attachment's id.
    pub fn add_attachment(
        &self,
        draft_id: String,
        kind: AttachmentKind,
        mime: String,
        data: Vec<u8>,
    ) -> Result<String> {
        let id = id16(&draft_id)?;
        self.with(|p| {
            Ok(b64::encode(&p.add_attachment(
                &id,
                kind.into(),
                &mime,
                &data,
            )?))
        })
    }

    /// Attaches the file at `path` to a draft; returns the attachment's id.
    pub fn add_attachment_file(
        &self,
        draft_id: String,
        kind: AttachmentKind,
        mime: String,
        path: String,
    ) -> Result<String> {
        let id = id16(&draft_id)?;
        self.with(|p| {
            Ok(b64::encode(&p.add_attachment_file(
                &id,
                kind.into(),
                &mime,
                Path::new(&path),
            )?))
        })
    }

    /// A draft's attachments with their bytes, in the order added (as
    /// they will be sent: photo metadata already removed).
    pub fn draft_attachments(&self, draft_id: String) -> Result<Vec<DraftAttachment>> {
        let id = id16(&draft_id)?;
        self.with(|p| {
            let ids = p.draft(&id)?.attachments;
            Ok(ids
                .iter()
                .zip(p.draft_attachments(&id)?)
                .map(|(a, att)| DraftAttachment {
                    id: b64::encode(a),
                    kind: att.kind.into(),
                    mime: att.mime,
                    data: att.data,
                })
                .collect())
        })
    }

    /// Removes one attachment from a draft.
    pub fn remove_attachment(&self, draft_id: String, attachment_id: String) -> Result<()> {
        let (draft, attachment) = (id16(&draft_id)?, id16(&attachment_id)?);
        self.with(|p| Ok(p.remove_attachment(&draft, &attachment)?))
    }

    // --- directory ---

    /// Accepts a signed directory (from a file, a QR code, a bundle) if the
    /// pinned coordinator key verifies it and it is newer; returns its version.
    pub fn import_directory(&self, signed_directory: Vec<u8>) -> Result<u64> {
        self.with(|p| Ok(p.import_directory(&signed_directory, &self.trust.coordinator, None)?))
    }

    /// Asks the relay for a newer directory (a few bytes when unchanged);
    /// returns the version held after, if any.
    pub fn refresh_directory(&self, relay: Arc<Relay>) -> Result<Option<u64>> {
        self.with(|p| block_on(p.refresh_directory(&relay.client, &self.trust.coordinator)))
    }

    /// The signed directory held, to hand on to another phone.
    pub fn directory_bytes(&self) -> Result<Option<Vec<u8>>> {
        self.with(|p| Ok(p.directory_bytes()?))
    }

    /// Focal points valid now that match `query`, best first (empty without
    /// a directory).
    pub fn focal_points(&self, query: FocalPointQuery) -> Result<Vec<FocalPoint>> {
        self.with(|p| {
            let Some(d) = p.directory(&self.trust.coordinator)? else {
                return Ok(vec![]);
            };
            Ok(amparo_core::directory::choose(&d, &query.into(), now())
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    /// The best match for `query`, relaxing language then need so that she
    /// always gets a suggestion in her region when there is one.
    pub fn suggest_focal_point(&self, query: FocalPointQuery) -> Result<Option<FocalPoint>> {
        self.with(|p| {
            let Some(d) = p.directory(&self.trust.coordinator)? else {
                return Ok(None);
            };
            Ok(amparo_core::directory::suggest(&d, &query.into(), now()).map(Into::into))
        })
    }

    /// Service routes (health care, legal aid, shelter…), of one region or all.
    pub fn service_routes(&self, region: Option<String>) -> Result<Vec<ServiceRoute>> {
        self.with(|p| {
            let Some(d) = p.directory(&self.trust.coordinator)? else {
                return Ok(vec![]);
            };
            Ok(d.service_routes
                .iter()
                .filter(|r| region.as_ref().is_none_or(|g| &r.region == g))
                .map(Into::into)
                .collect())
        })
    }

    // --- survivor ---

    /// Seals a draft to the focal point with directory id `focal_point_id`,
    /// queues it and deletes the draft; with `keep_copy`, keeps the form
    /// (encrypted) for her records. Returns the report id.
    pub fn send_draft(
        &self,
        draft_id: String,
        focal_point_id: String,
        keep_copy: bool,
    ) -> Result<String> {
        let id = id16(&draft_id)?;
        self.with(|p| {
            let fp = self.focal_point(p, &focal_point_id)?;
            Ok(b64::encode(&p.send_draft(&id, &fp, keep_copy, now())?))
        })
    }

    /// Every sent report, oldest first.
    pub fn sent_reports(&self) -> Result<Vec<SentReport>> {
        self.with(|p| Ok(p.sent_reports()?.into_iter().map(Into::into).collect()))
    }

    /// The copy of a sent report's form, if she kept one.
    pub fn sent_copy(&self, report_id: String) -> Result<Option<DraftForm>> {
        let id = id16(&report_id)?;
        self.with(|p| Ok(p.sent_copy(&id)?.map(Into::into)))
    }

    /// Envelopes waiting in the outbox.
    pub fn outbox_len(&self) -> Result<u64> {
        self.with(|p| Ok(p.outbox_len()? as u64))
    }

    /// Takes in admission tokens handed on as text (`amparo-tokens:…`, from
    /// a QR code or a message; PROTOCOL.md §14.2); returns how many were
    /// new. When the relay is pressed, a sync spends one instead of making
    /// the phone work.
    pub fn import_tokens(&self, text: String) -> Result<u64> {
        self.with(|p| Ok(p.import_tokens(&text)? as u64))
    }

    /// Admission tokens held.
    pub fn tokens_held(&self) -> Result<u64> {
        self.with(|p| Ok(p.tokens()?.len() as u64))
    }

    /// A focal point (or a facilitator with a voucher) asks the relay for
    /// `count` admission tokens to hand on; returns how many were kept
    /// (a profile holds at most 500). Blocking.
    pub fn request_tokens(&self, relay: Arc<Relay>, count: u64) -> Result<u64> {
        self.with(|p| {
            let keys = self.relay_keys(p)?;
            let count = usize::try_from(count).unwrap_or(usize::MAX);
            Ok(block_on(p.request_tokens(&relay.client, &keys, count, now()))? as u64)
        })
    }

    /// Up to `count` tokens as a text to hand on (a QR code or a message);
    /// they leave this profile. None when it holds none.
    pub fn export_tokens(&self, count: u64) -> Result<Option<String>> {
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        self.with(|p| Ok(p.export_tokens(count)?))
    }

    /// Messages from focal points, oldest first.
    pub fn messages(&self) -> Result<Vec<ReceivedMessage>> {
        self.with(|p| Ok(p.messages()?.into_iter().map(Into::into).collect()))
    }

    /// Marks a message read.
    pub fn mark_read(&self, message_id: String) -> Result<()> {
        let id = id16(&message_id)?;
        self.with(|p| Ok(p.mark_read(&id)?))
    }

    /// Queues her answer on a report (sent at the next sync), sealed to the
    /// office that holds the case now: after a referral, the office it went
    /// to, if the directory held lists it. Returns that office's directory id.
    pub fn reply_on_report(&self, report_id: String, text: String) -> Result<String> {
        let id = id16(&report_id)?;
        self.with(|p| {
            let directory = p.directory(&self.trust.coordinator)?;
            Ok(p.reply_on_report_via(&id, &text, directory.as_ref(), now())?)
        })
    }

    /// Refreshes the directory, uploads the outbox (an envelope leaves it
    /// only with a verified receipt) and reads replies. Blocking: call it
    /// off the UI thread.
    pub fn sync(
        &self,
        relay: Arc<Relay>,
        listener: Option<Arc<dyn SyncListener>>,
    ) -> Result<SyncSummary> {
        self.with(|p| {
            let summary = block_on(p.sync_all(
                &relay.client,
                &self.trust.coordinator,
                &self.trust.relays,
                now,
                &mut |progress| report_to(&listener, progress.into()),
            ))?;
            Ok(summary.into())
        })
    }

    /// `sync`, reading answers with at most `budget_bytes` of data (fetch
    /// and acknowledgement requests and answers; raised to one largest
    /// envelope's worth if smaller). `sync` reads up to 1.25 MiB. The app knows
    /// the link and the core does not: give less on a metered link, more on
    /// Wi-Fi. When `replies_left` comes back true, the next sync goes on.
    pub fn sync_within(
        &self,
        relay: Arc<Relay>,
        budget_bytes: u64,
        listener: Option<Arc<dyn SyncListener>>,
    ) -> Result<SyncSummary> {
        self.with(|p| {
            let summary = block_on(p.sync_all_within(
                &relay.client,
                &self.trust.coordinator,
                &self.trust.relays,
                now,
                amparo_core::survivor::ReadBudget::new(budget_bytes),
                &mut |progress| report_to(&listener, progress.into()),
            ))?;
            Ok(summary.into())
        })
    }

    // --- focal point ---

    /// Makes this profile a focal point's: generates its keys and returns
    /// the public part for the coordinator's directory.
    pub fn create_focal_identity(&self) -> Result<FocalKeys> {
        self.with(|p| Ok(p.create_focal_identity()?.into()))
    }

    /// This focal point's public keys.
    pub fn focal_keys(&self) -> Result<FocalKeys> {
        self.with(|p| Ok(p.focal_public()?.into()))
    }

    /// Sets this focal point's directory id (1 to 64 characters): its
    /// replies and status updates tell the survivor which office wrote them.
    pub fn set_focal_point_id(&self, id: String) -> Result<()> {
        self.with(|p| Ok(p.set_focal_point_id(&id)?))
    }

    /// Whether the directory held lists this focal point, with its keys,
    /// valid now: if not, no report can reach it. Show it after a sync.
    pub fn focal_listing(&self) -> Result<Listing> {
        self.with(|p| Ok(p.focal_listing(&self.trust.coordinator, now())?.into()))
    }

    /// Uploads what this focal point queued (replies, status updates,
    /// referrals), then fetches its mailbox into cases. Blocking. After each
    /// page the listener gets `SyncProgress::Mailbox` with the reports filed
    /// (already in `cases`) and the unreadable envelopes so far.
    pub fn focal_sync(
        &self,
        relay: Arc<Relay>,
        listener: Option<Arc<dyn SyncListener>>,
    ) -> Result<FocalSyncSummary> {
        self.with(|p| {
            let keys = self.relay_keys(p)?;
            let (sent, fetched) = block_on(p.focal_sync_with_progress(
                &relay.client,
                &keys,
                now,
                &mut |progress| report_to(&listener, progress.into()),
                &mut |f| report_to(&listener, f.into()),
            ))?;
            Ok(FocalSyncSummary {
                sent: sent.into(),
                fetched: fetched.into(),
            })
        })
    }

    /// Fetches the mailbox only. Blocking.
    pub fn fetch_mailbox(
        &self,
        relay: Arc<Relay>,
        listener: Option<Arc<dyn SyncListener>>,
    ) -> Result<FetchSummary> {
        self.with(|p| {
            let fetched = block_on(
                p.fetch_mailbox(&relay.client, now, &mut |f| report_to(&listener, f.into())),
            )?;
            Ok(fetched.into())
        })
    }

    /// Cases matching `filter`, oldest first.
    pub fn cases(&self, filter: CaseFilter) -> Result<Vec<CaseSummary>> {
        self.with(|p| {
            Ok(p.cases(&filter.into())?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    /// One case, with its attachments put back together.
    pub fn get_case(&self, case_id: String) -> Result<Case> {
        let id = id16(&case_id)?;
        self.with(|p| Ok(p.case(&id)?.into()))
    }

    /// Queues a reply to the survivor of a case.
    pub fn reply_to_case(&self, case_id: String, text: String) -> Result<()> {
        let id = id16(&case_id)?;
        self.with(|p| Ok(p.reply_to_case(&id, &text, now())?))
    }

    /// Adds an internal note to a case: kept here, never sent (not to the
    /// survivor, not with a referral).
    pub fn add_case_note(&self, case_id: String, text: String) -> Result<()> {
        let id = id16(&case_id)?;
        self.with(|p| Ok(p.add_case_note(&id, &text, now())?))
    }

    /// Sets where the office's own work on a case stands (internal, never
    /// sent).
    pub fn set_case_stage(&self, case_id: String, stage: CaseStage) -> Result<()> {
        let id = id16(&case_id)?;
        self.with(|p| Ok(p.set_case_stage(&id, stage.into(), now())?))
    }

    /// Stars or unstars a case (the office's own mark; never sent).
    pub fn set_case_starred(&self, case_id: String, starred: bool) -> Result<()> {
        let id = id16(&case_id)?;
        self.with(|p| Ok(p.set_case_starred(&id, starred)?))
    }

    /// Classifies a case as GBVIMS does: its core type (`None` clears it)
    /// and context flags. Internal: never sent; counted only in statistics
    /// she agreed to.
    pub fn classify_case(
        &self,
        case_id: String,
        gbv_type: Option<GbvType>,
        context: Vec<GbvContext>,
    ) -> Result<()> {
        let id = id16(&case_id)?;
        let context: Vec<amparo_protocol::statistics::GbvContext> =
            context.into_iter().map(Into::into).collect();
        self.with(|p| Ok(p.classify_case(&id, gbv_type.map(Into::into), &context)?))
    }

    /// Marks a case read: it shows nothing new until her next follow-up.
    pub fn mark_case_read(&self, case_id: String) -> Result<()> {
        let id = id16(&case_id)?;
        self.with(|p| Ok(p.mark_case_read(&id)?))
    }

    /// Sets a case's status and tells the survivor (use `refer_case` to refer).
    pub fn set_case_status(
        &self,
        case_id: String,
        status: CaseStatus,
        message: Option<String>,
    ) -> Result<()> {
        let id = id16(&case_id)?;
        self.with(|p| Ok(p.set_case_status(&id, status.into(), message.as_deref(), now())?))
    }

    /// Refers a case to another focal point of the directory, with a note for
    /// it; the survivor is told where her case went. `from_focal_point_id`
    /// is this focal point's directory id.
    pub fn refer_case(
        &self,
        case_id: String,
        from_focal_point_id: String,
        to_focal_point_id: String,
        note: String,
    ) -> Result<()> {
        let id = id16(&case_id)?;
        self.with(|p| {
            let to = self.focal_point(p, &to_focal_point_id)?;
            Ok(p.refer_case(&id, &from_focal_point_id, &to, &note, now())?)
        })
    }

    /// Records kept of envelopes that could not be opened (at most the
    /// profile's record limit), oldest first.
    pub fn rejected(&self) -> Result<Vec<RejectedEnvelope>> {
        self.with(|p| Ok(p.rejected()?.into_iter().map(Into::into).collect()))
    }

    /// Envelopes that could not be opened: exact counts by reason, what is
    /// kept, and up to `examples_per_reason` records of each reason.
    pub fn rejected_summary(&self, examples_per_reason: u32) -> Result<RejectedSummary> {
        self.with(|p| Ok(p.rejected_summary(examples_per_reason as usize)?.into()))
    }

    /// Forgets every envelope that could not be opened (records, bytes,
    /// counts); returns how many there were.
    pub fn clear_rejected(&self) -> Result<u64> {
        self.with(|p| Ok(p.clear_rejected()?))
    }

    /// How much this profile keeps of envelopes that do not open.
    pub fn rejected_limits(&self) -> Result<RejectedLimits> {
        self.with(|p| Ok(p.rejected_limits()?.into()))
    }

    /// Sets how much this profile keeps of envelopes that do not open.
    pub fn set_rejected_limits(&self, limits: RejectedLimits) -> Result<()> {
        self.with(|p| Ok(p.set_rejected_limits(limits.into())?))
    }

    // --- bundles (facilitators) ---

    /// The outbox as a bundle for a facilitator to carry, with a 7-day
    /// read-only fetch grant per report so she can bring the sealed answers
    /// back (she cannot read them, nor delete them at the relay).
    pub fn export_outbox_bundle(&self) -> Result<Vec<u8>> {
        self.with(|p| Ok(p.export_outbox_bundle_with_grants(now())?))
    }

    /// Imports a bundle: carries its envelopes (each once), files receipts
    /// for this phone's own reports, takes a newer directory.
    pub fn import_bundle(&self, bundle: Vec<u8>) -> Result<ImportReport> {
        self.with(|p| {
            let keys = self.relay_keys(p)?;
            Ok(p.import_bundle(&bundle, &self.trust.coordinator, &keys)?
                .into())
        })
    }

    /// What this phone is carrying for others.
    pub fn carrying(&self) -> Result<Carrying> {
        self.with(|p| Ok(p.carrying()?.into()))
    }

    /// Uploads every carried envelope: how many the relay signed for, how
    /// many it could not take now (still carried; see `retry_after_secs`)
    /// and how many it refused for good.
    pub fn upload_carried(&self, relay: Arc<Relay>) -> Result<CarriedUpload> {
        self.with(|p| {
            let keys = self.relay_keys(p)?;
            Ok(block_on(p.upload_carried_with_progress(&relay.client, &keys, &mut |_| {}))?.into())
        })
    }

    /// Fetches, with the grants people gave, the sealed answers waiting for
    /// them, to hand back in the return bundle; returns how many are new.
    /// Blocking: call it off the UI thread.
    pub fn fetch_granted_replies(&self, relay: Arc<Relay>) -> Result<u64> {
        self.with(|p| Ok(block_on(p.fetch_granted_replies(&relay.client, now))? as u64))
    }

    /// `fetch_granted_replies` with at most `budget_bytes` of data; each
    /// grant goes on from where the last fetch stopped, and a grant stops
    /// being fetched once 1 MiB came from it. Blocking.
    pub fn fetch_granted_replies_within(
        &self,
        relay: Arc<Relay>,
        budget_bytes: u64,
    ) -> Result<GrantedFetch> {
        self.with(|p| {
            Ok(block_on(p.fetch_granted_replies_within(
                &relay.client,
                now,
                amparo_core::survivor::ReadBudget::new(budget_bytes),
            ))?
            .into())
        })
    }

    /// The bundle to hand back: receipts held, sealed answers fetched, and
    /// the latest directory.
    pub fn export_return_bundle(&self) -> Result<Vec<u8>> {
        self.with(|p| Ok(p.export_return_bundle()?))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn forms_cross_both_ways_unchanged() {
        let form = DraftForm {
            violence: vec![ViolenceKind::Sexual, ViolenceKind::Other],
            violence_other: Some("otra".into()),
            incident_date: Some(IncidentDate {
                year: 2026,
                month: Some(2),
                day: Some(29),
                approximate: true,
            }),
            country: Some("BR".into()),
            region: Some("BR-AM".into()),
            place_detail: Some("perto do porto".into()),
            aggressors: vec![AggressorKind::Client],
            aggressor_other: None,
            needs: vec![Need::StiHivPep],
            language: Some(Language::Pt),
            text: "texto".into(),
            place_setting: Some(PlaceSetting::Border),
            age_band: Some(AgeBand::Adolescent),
            reported_elsewhere: Some(false),
            statistics_consent: true,
        };
        let core: amparo_core::drafts::DraftForm = form.clone().into();
        assert_eq!(core.place.detail.as_deref(), Some("perto do porto"));
        assert_eq!(DraftForm::from(core), form);
    }

    #[test]
    fn ids_and_keys_are_checked_at_the_edge() {
        assert_eq!(id16("AAAAAAAAAAAAAAAAAAAAAA").ok(), Some([0; 16]));
        for bad in [
            "",
            "not an id",
            "AAAAAAAAAAAAAAAAAAAAAAAA",
            "AAAAAAAAAAAAAAAAAAAAA!",
        ] {
            assert!(matches!(id16(bad), Err(AmparoError::Invalid(_))), "{bad}");
        }
        let t = TrustedKeys {
            coordinator_key: "short".into(),
            relay_receipt_keys: vec![],
        };
        assert!(matches!(Trust::try_from(t), Err(AmparoError::Invalid(_))));
    }

    #[test]
    fn core_errors_keep_their_sentence_and_get_a_kind() {
        let e = AmparoError::from(amparo_core::CoreError::WrongPin);
        assert!(matches!(&e, AmparoError::WrongPin(m) if m == "the PIN is not correct"));
        let e = AmparoError::from(amparo_core::CoreError::Network("timed out".into()));
        assert_eq!(e.to_string(), "the relay could not be reached: timed out");
        assert!(matches!(
            AmparoError::from(amparo_core::CoreError::Corrupt("draft")),
            AmparoError::Damaged(_)
        ));
    }

    #[test]
    fn labels_come_from_the_protocol() {
        assert_eq!(language_label(Language::Pt), "Português");
        assert_ne!(
            need_label(Need::LegalAdvice, Language::Es),
            need_label(Need::LegalAdvice, Language::En)
        );
    }

    #[test]
    fn a_profile_is_closed_after_lock_and_wipe() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("p").to_string_lossy().into_owned();
        let coordinator = Coordinator::generate().unwrap();
        let trusted = TrustedKeys {
            coordinator_key: coordinator.public_key(),
            relay_receipt_keys: vec![],
        };
        let p = Profile::create(
            folder.clone(),
            "1234".into(),
            KdfStrength::DangerouslyFastForTests,
            trusted.clone(),
        )
        .unwrap();
        p.lock().unwrap();
        assert!(matches!(p.drafts(), Err(AmparoError::ProfileClosed(_))));
        let p = Profile::open(folder.clone(), "1234".into(), trusted).unwrap();
        p.wipe().unwrap();
        assert!(!profile_exists(folder));
        assert!(matches!(p.wipe(), Err(AmparoError::ProfileClosed(_))));
    }
}
