//! The duress decoy, kept alive by the real profile.
//!
//! A duress PIN opens a second profile in the same file (`store`). Opened
//! under pressure, it must pass for a quiet real profile: a decoy with no
//! relay, no coordinator key and no directory, whose sync fails with "no
//! relay is set", tells an inspector at once that it is a decoy. So the real
//! profile, which keeps the decoy's data key ([`Profile::open_decoy`]),
//! writes into it:
//!
//! - **Settings and directory**, the same as its own: every field of
//!   [`Settings`] (relay, proxy, coordinator key, trusted relay keys, role,
//!   focal point id, language) and the signed directory with its ETag. They
//!   are copied when the duress PIN is set
//!   ([`Profile::set_duress_pin_with_decoy`]), each time the real profile
//!   saves its settings or accepts a directory, and at each of its syncs
//!   ([`Profile::keep_decoy_current`], which also repairs a decoy made by a
//!   bare [`Profile::set_duress_pin`] or left behind by a crash). The decoy
//!   then syncs like a real profile: it refreshes the directory with the
//!   same `If-None-Match` the real one sends, uploads its (empty) outbox and
//!   sweeps the reply mailboxes of its reports — none, or the decoy report's
//!   one — exactly as a real profile with that many quiet reports does.
//! - **Harmless content** she prepares from the real profile: a draft
//!   ([`Profile::decoy_add_draft`]) and an old delivered report about
//!   something minor ([`Profile::decoy_add_delivered_report`]), recorded as
//!   delivered without anything being sent. From inside the decoy, drafts
//!   are made with the ordinary drafts API.
//!
//! - **Its own answers**: from inside, it is a profile without a duress
//!   PIN; made to set one (or the device key), it takes the file over
//!   (`store`, [`Profile::is_decoy`]). A focal point's decoy has no keys
//!   and fetches nothing.
//!
//! Nothing of the real profile goes into the decoy besides settings and the
//! directory, which every profile of the same network shares anyway. The
//! decoy's writes go through its own SQLite connection to the shared file,
//! so they are made outside any transaction of the real profile (a write
//! from the second connection while the first holds `BEGIN IMMEDIATE` would
//! wait and fail).
//!
//! What an inspector could still find, with the decoy open and the database
//! dumped through the decoy's key (not through the app): a decoy report's
//! receipts are not signed by the relay they name (no relay ever saw it).

use amparo_protocol::UnixTime;
use amparo_protocol::directory::FocalPoint;
use amparo_protocol::keys::KeyId;
use amparo_protocol::primitives::ed25519::VerifyingKey;

use crate::directory::{FocalPointQuery, suggest};
use crate::drafts::{Draft, DraftForm};
use crate::settings::Settings;
use crate::store::{Profile, system_now};
use crate::survivor::SentReport;
use crate::{CoreError, Result};

/// The error for decoy content asked of a profile that has no decoy: a real
/// profile without a duress PIN, or the decoy itself (which, seen from
/// inside, is a real profile without one).
const NO_DECOY: CoreError = CoreError::Invalid("no duress PIN is set for this profile");

impl Profile {
    /// Sets a duress PIN ([`Profile::set_duress_pin`]) and makes its decoy
    /// live at once: the same settings and directory as this profile
    /// ([`Profile::keep_decoy_current`]). The CLI and the app call this, not
    /// the bare store call, whose decoy gives itself away until the next
    /// sync.
    ///
    /// If the decoy cannot be filled, the duress PIN is removed again and
    /// the error returned: a duress PIN is set with a decoy that lives, or
    /// not at all (a duress PIN set before is gone too, as it is whenever a
    /// new one replaces it).
    pub fn set_duress_pin_with_decoy(&self, duress_pin: &str, wipe_real: bool) -> Result<()> {
        self.set_duress_pin(duress_pin, wipe_real)?;
        match self.keep_decoy_current() {
            Ok(true) => Ok(()),
            Ok(false) => {
                let _ = self.clear_duress_pin();
                Err(CoreError::Corrupt("decoy key"))
            }
            Err(e) => {
                let _ = self.clear_duress_pin();
                Err(e)
            }
        }
    }

    /// Brings the decoy's settings and directory in line with this
    /// profile's, writing only what differs (a directory never goes back:
    /// one the decoy fetched itself and is newer stays). Returns whether
    /// there is a decoy. Idempotent and cheap; called from every sync of the
    /// real profile, and by the app after unlocking if it wants a decoy made
    /// before this existed to be repaired at once. Must not run inside a
    /// transaction of `self`.
    pub fn keep_decoy_current(&self) -> Result<bool> {
        let Some(decoy) = self.open_decoy()? else {
            return Ok(false);
        };
        let settings = self.settings()?;
        if decoy.settings()? != settings {
            decoy.put_settings(&settings)?;
        }
        self.mirror_directory_into(&decoy)?;
        self.mirror_timers_into(&decoy)?;
        Ok(true)
    }

    /// Adds a draft to the decoy, as she prepares it from the real profile
    /// (the decoy then shows an unsent draft, as a real profile often
    /// does). Returns the draft's id in the decoy.
    pub fn decoy_add_draft(&self, form: &DraftForm) -> Result<[u8; 16]> {
        self.decoy()?.create_draft(form)
    }

    /// Records in the decoy an old report about something minor, sent to
    /// the focal point `focal_point` (a directory id; `None` picks the one
    /// the directory suggests for the form's region, need and language) at
    /// `sent_at`, and delivered. Nothing is sent to anyone: the decoy's
    /// report list and status show it delivered, its reply mailbox is swept
    /// at each of the decoy's syncs as a real report's is, and no focal
    /// point ever receives it. Returns its id in the decoy.
    ///
    /// The focal point must be one the directory held lists (a report to an
    /// office the network does not know would stand out); `sent_at` must
    /// not be in the future.
    pub fn decoy_add_delivered_report(
        &self,
        form: &DraftForm,
        focal_point: Option<&str>,
        sent_at: UnixTime,
    ) -> Result<[u8; 16]> {
        let coordinator = self.settings()?.coordinator()?;
        self.decoy_add_delivered_report_under(form, focal_point, sent_at, &coordinator)
    }

    /// [`Profile::decoy_add_delivered_report`], reading the directory with
    /// `coordinator`'s key (a phone app holds it outside the settings).
    pub fn decoy_add_delivered_report_under(
        &self,
        form: &DraftForm,
        focal_point: Option<&str>,
        sent_at: UnixTime,
        coordinator: &VerifyingKey,
    ) -> Result<[u8; 16]> {
        if sent_at.0 > system_now().0 {
            return Err(CoreError::Invalid(
                "a delivered report cannot be dated in the future",
            ));
        }
        let decoy = self.decoy()?;
        let settings = self.settings()?;
        let directory = self.directory(coordinator)?.ok_or(CoreError::Invalid(
            "there is no directory yet: refresh it first",
        ))?;
        let chosen: Option<FocalPoint> = match focal_point {
            Some(id) => directory.focal_point(id).cloned(),
            None => suggest(
                &directory,
                &FocalPointQuery {
                    region: form.place.region.clone(),
                    need: form.needs.first().copied(),
                    language: form.language,
                },
                sent_at,
            )
            .cloned(),
        };
        let chosen = chosen.ok_or(CoreError::Invalid(
            "that focal point is not in the directory",
        ))?;
        let relay_key = settings
            .relay_keys
            .first()
            .copied()
            .or_else(|| directory.relays.first().map(|r| r.receipt_key))
            .map(|k| KeyId::for_key(&VerifyingKey(k)));
        decoy.record_delivered_report(form, &chosen, sent_at, relay_key)
    }

    /// The decoy's drafts, for her to check what it shows.
    pub fn decoy_drafts(&self) -> Result<Vec<Draft>> {
        self.decoy()?.drafts()
    }

    /// The decoy's reports, as its report list shows them.
    pub fn decoy_sent_reports(&self) -> Result<Vec<SentReport>> {
        self.decoy()?.sent_reports()
    }

    /// Deletes one of the decoy's drafts.
    pub fn decoy_delete_draft(&self, id: &[u8; 16]) -> Result<()> {
        self.decoy()?.delete_draft(id)
    }

    /// The decoy, or [`NO_DECOY`].
    fn decoy(&self) -> Result<Profile> {
        self.open_decoy()?.ok_or(NO_DECOY)
    }
}

/// After the real profile saved `settings`: the decoy's copy.
pub(crate) fn after_settings_saved(real: &Profile, settings: &Settings) -> Result<()> {
    if let Some(decoy) = real.open_decoy()? {
        decoy.put_settings(settings)?;
    }
    Ok(())
}

/// After the real profile accepted a directory (outside its transaction):
/// the decoy's copy.
pub(crate) fn after_directory_kept(real: &Profile) -> Result<()> {
    if let Some(decoy) = real.open_decoy()? {
        real.mirror_directory_into(&decoy)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::focal::FetchSummary;
    use crate::settings::Role;
    use crate::store::KdfParams;
    use amparo_protocol::directory::{Directory, LocalizedText, RelayEntry};
    use amparo_protocol::entropy::DangerousSeededEntropy;
    use amparo_protocol::keys::RecipientKeys;
    use amparo_protocol::payload::{Language, Need, Place};
    use amparo_protocol::primitives::ed25519::SigningKey;

    const FAST: KdfParams = KdfParams::DANGEROUSLY_FAST_FOR_TESTS;

    struct Network {
        coordinator: SigningKey,
        relay: SigningKey,
        directory: Directory,
    }

    fn network(e: &mut DangerousSeededEntropy) -> Network {
        let fp = |id: &str, region: &str, e: &mut DangerousSeededEntropy| FocalPoint {
            reads: Vec::new(),
            id: id.into(),
            name: LocalizedText {
                es: id.into(),
                pt: id.into(),
                en: id.into(),
            },
            organization: "o".into(),
            regions: vec![region.into()],
            categories: vec![Need::HealthCare, Need::LegalAdvice],
            languages: vec![Language::Es],
            keys: RecipientKeys::generate(e).unwrap().public(),
            valid_from: 0,
            valid_until: u64::MAX / 2,
        };
        let relay = SigningKey::generate(e).unwrap();
        Network {
            coordinator: SigningKey::generate(e).unwrap(),
            directory: Directory {
                statistics: None,
                focal_points: vec![fp("pe-salud", "PE-UCA", e), fp("br-saude", "BR-AM", e)],
                service_routes: vec![],
                relays: vec![RelayEntry {
                    name: "central".into(),
                    url: None,
                    receipt_key: *relay.verifying_key().as_bytes(),
                }],
            },
            relay,
        }
    }

    fn settings(n: &Network) -> Settings {
        Settings {
            statistics_threshold: None,
            role: Some(Role::Survivor),
            relay_url: Some("https://relay.example.org".into()),
            proxy: Some("socks5h://127.0.0.1:9050".into()),
            coordinator_key: Some(*n.coordinator.verifying_key().as_bytes()),
            relay_keys: vec![*n.relay.verifying_key().as_bytes()],
            focal_point_id: None,
            language: Some(Language::Pt),
        }
    }

    fn minor() -> DraftForm {
        DraftForm {
            needs: vec![Need::HealthCare],
            language: Some(Language::Es),
            place: Place {
                setting: None,
                country: Some("PE".into()),
                region: Some("PE-UCA".into()),
                detail: None,
            },
            text: "Me robaron el celular en el mercado.".into(),
            ..DraftForm::default()
        }
    }

    /// The real profile (PIN 2468) with settings, directory version 5 and
    /// one real report.
    fn real_profile(root: &std::path::Path, n: &Network) -> Profile {
        let real = Profile::create(&root.join("p"), "2468", FAST).unwrap();
        real.save_settings(&settings(n)).unwrap();
        let signed = n.directory.sign(5, &n.coordinator).unwrap();
        real.import_directory(
            signed.as_bytes(),
            &n.coordinator.verifying_key(),
            Some("\"v5\"".into()),
        )
        .unwrap();
        let draft = real
            .create_draft(&DraftForm {
                text: "Canary-real-report".into(),
                ..DraftForm::default()
            })
            .unwrap();
        real.send_draft(&draft, &n.directory.focal_points[0], true, system_now())
            .unwrap();
        real
    }

    #[test]
    fn the_decoy_gets_the_real_settings_and_directory_and_keeps_them_current() {
        let mut e = DangerousSeededEntropy::new(b"decoy-mirror");
        let n = network(&mut e);
        let root = tempfile::tempdir().unwrap();
        let real = real_profile(root.path(), &n);
        real.set_duress_pin_with_decoy("1111", false).unwrap();
        let pinned = n.coordinator.verifying_key();
        {
            let decoy = real.open_decoy().unwrap().unwrap();
            assert_eq!(decoy.settings().unwrap(), settings(&n));
            assert_eq!(decoy.directory_version().unwrap(), Some(5));
            assert_eq!(decoy.directory_etag().unwrap().as_deref(), Some("\"v5\""));
            assert_eq!(decoy.directory(&pinned).unwrap().unwrap(), n.directory);
        }
        // A setting changes and a newer directory arrives in the real profile.
        let changed = Settings {
            language: Some(Language::En),
            relay_url: Some("https://other.example.org".into()),
            ..settings(&n)
        };
        real.save_settings(&changed).unwrap();
        let mut newer = n.directory.clone();
        newer.focal_points.truncate(1);
        real.import_directory(
            newer.sign(6, &n.coordinator).unwrap().as_bytes(),
            &pinned,
            Some("\"v6\"".into()),
        )
        .unwrap();
        drop(real);

        let decoy = Profile::open(&root.path().join("p"), "1111").unwrap();
        assert_eq!(decoy.settings().unwrap(), changed);
        assert_eq!(decoy.directory_version().unwrap(), Some(6));
        assert_eq!(decoy.directory_etag().unwrap().as_deref(), Some("\"v6\""));
        assert_eq!(decoy.directory(&pinned).unwrap().unwrap(), newer);
        // Nothing of the real profile's own items.
        assert!(decoy.sent_reports().unwrap().is_empty());
        assert!(decoy.drafts().unwrap().is_empty());
        assert_eq!(decoy.outbox_len().unwrap(), 0);
        // From inside, the decoy says what a real profile without a duress
        // PIN says.
        assert!(!decoy.keep_decoy_current().unwrap());
        assert!(matches!(
            decoy.decoy_add_draft(&minor()),
            Err(CoreError::Invalid(m)) if m == "no duress PIN is set for this profile"
        ));
        // Its own settings are its own to change (and no copy goes anywhere).
        decoy
            .save_settings(&Settings {
                language: Some(Language::Es),
                ..changed.clone()
            })
            .unwrap();
    }

    #[tokio::test]
    async fn a_focal_points_decoy_syncs_as_a_quiet_desk_without_its_keys() {
        let mut e = DangerousSeededEntropy::new(b"decoy-focal");
        let n = network(&mut e);
        let root = tempfile::tempdir().unwrap();
        let real = real_profile(root.path(), &n);
        real.create_focal_identity().unwrap();
        real.set_duress_pin_with_decoy("1111", false).unwrap();
        let decoy = real.open_decoy().unwrap().unwrap();
        assert!(
            decoy.focal_public().is_err(),
            "the keys stay with the real profile"
        );
        // Nothing listens there: a fetch that tried would fail.
        let relay =
            crate::relay::RelayClient::new(&crate::relay::RelayConfig::new("http://127.0.0.1:9"))
                .unwrap();
        let fetched = decoy
            .fetch_mailbox(&relay, system_now, &mut |_| {})
            .await
            .unwrap();
        assert_eq!(fetched, FetchSummary::default());
        assert!(
            real.fetch_mailbox(&relay, system_now, &mut |_| {})
                .await
                .is_err()
        );
    }

    #[test]
    fn a_directory_from_a_bundle_reaches_the_decoy_after_the_import_commits() {
        let mut e = DangerousSeededEntropy::new(b"decoy-bundle");
        let n = network(&mut e);
        let root = tempfile::tempdir().unwrap();
        let real = real_profile(root.path(), &n);
        real.set_duress_pin_with_decoy("1111", false).unwrap();
        let mut bundle = amparo_protocol::bundle::BundleEncoder::new();
        bundle
            .directory(n.directory.sign(9, &n.coordinator).unwrap().as_bytes())
            .unwrap();
        let started = std::time::Instant::now();
        let imported = real
            .import_bundle(&bundle.finish(), &n.coordinator.verifying_key(), &[])
            .unwrap();
        assert_eq!(imported.directory, Some(9));
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "the decoy's write did not wait on the import's transaction"
        );
        let decoy = real.open_decoy().unwrap().unwrap();
        assert_eq!(decoy.directory_version().unwrap(), Some(9));
    }

    #[test]
    fn a_decoy_directory_never_goes_back_and_a_bare_duress_pin_is_repaired() {
        let mut e = DangerousSeededEntropy::new(b"decoy-repair");
        let n = network(&mut e);
        let root = tempfile::tempdir().unwrap();
        let real = real_profile(root.path(), &n);
        // Set with the bare store call: the decoy is empty until repaired.
        real.set_duress_pin("1111", false).unwrap();
        let decoy = real.open_decoy().unwrap().unwrap();
        assert_eq!(decoy.settings().unwrap(), Settings::default());
        assert!(real.keep_decoy_current().unwrap());
        assert_eq!(decoy.settings().unwrap(), settings(&n));
        assert_eq!(decoy.directory_version().unwrap(), Some(5));
        // The decoy fetched a newer one itself: an older copy does not
        // replace it.
        let pinned = n.coordinator.verifying_key();
        decoy
            .import_directory(
                n.directory.sign(7, &n.coordinator).unwrap().as_bytes(),
                &pinned,
                None,
            )
            .unwrap();
        assert!(real.keep_decoy_current().unwrap());
        assert_eq!(decoy.directory_version().unwrap(), Some(7));
        assert_eq!(
            real.directory_version().unwrap(),
            Some(5),
            "nothing flows from the decoy to the real profile"
        );
    }

    #[test]
    fn decoy_content_shows_in_the_decoy_only_and_nothing_is_queued() {
        let mut e = DangerousSeededEntropy::new(b"decoy-content");
        let n = network(&mut e);
        let root = tempfile::tempdir().unwrap();
        let real = real_profile(root.path(), &n);
        let real_outbox = real.outbox_len().unwrap();
        real.set_duress_pin_with_decoy("1111", false).unwrap();
        let draft = real.decoy_add_draft(&minor()).unwrap();
        let sent_at = UnixTime(system_now().0 - 40 * 24 * 3600);
        let report = real
            .decoy_add_delivered_report(&minor(), None, sent_at)
            .unwrap();
        // Not in the future, and only to an office the directory lists.
        assert!(
            real.decoy_add_delivered_report(&minor(), None, UnixTime(system_now().0 + 3600))
                .is_err()
        );
        assert!(
            real.decoy_add_delivered_report(&minor(), Some("nowhere"), sent_at)
                .is_err()
        );
        let to_brazil = real
            .decoy_add_delivered_report(&minor(), Some("br-saude"), sent_at)
            .unwrap();
        real.decoy_delete_draft(&draft).unwrap();
        let kept = real.decoy_add_draft(&minor()).unwrap();
        assert_eq!(real.decoy_drafts().unwrap().len(), 1);
        assert_eq!(real.decoy_sent_reports().unwrap().len(), 2);
        // The real profile is as it was.
        assert_eq!(real.outbox_len().unwrap(), real_outbox);
        assert_eq!(real.drafts().unwrap().len(), 0);
        assert_eq!(real.sent_reports().unwrap().len(), 1);
        drop(real);

        let decoy = Profile::open(&root.path().join("p"), "1111").unwrap();
        assert_eq!(decoy.outbox_len().unwrap(), 0, "nothing waits to be sent");
        let drafts = decoy.drafts().unwrap();
        assert_eq!(
            (drafts.len(), drafts[0].id, &drafts[0].form),
            (1, kept, &minor())
        );
        let reports = decoy.sent_reports().unwrap();
        let ids: Vec<[u8; 16]> = reports.iter().map(|r| r.id).collect();
        assert_eq!(ids, vec![report, to_brazil]);
        for r in &reports {
            assert!(r.delivered >= 1 && r.pending == 0, "{r:?}");
            assert_eq!(r.created_hour, sent_at.hours());
            assert_eq!((r.status, r.unread, r.handed_over), (None, 0, 0));
            assert_eq!(decoy.sent_copy(&r.id).unwrap(), Some(minor()));
        }
        assert_eq!(reports[0].focal_point, "pe-salud", "suggested for PE-UCA");
        assert_eq!(reports[1].focal_point, "br-saude");
        // Its reply mailboxes are swept like a real report's.
        assert_eq!(decoy.reply_channels().unwrap().len(), 2);
        assert!(
            decoy.sent_reports().unwrap().iter().all(|r| decoy
                .sent_copy(&r.id)
                .unwrap()
                .unwrap()
                .text
                != "Canary-real-report")
        );
    }

    #[test]
    fn clearing_the_duress_pin_leaves_no_decoy() {
        let mut e = DangerousSeededEntropy::new(b"decoy-clear");
        let n = network(&mut e);
        let root = tempfile::tempdir().unwrap();
        let real = real_profile(root.path(), &n);
        real.set_duress_pin_with_decoy("1111", false).unwrap();
        real.decoy_add_draft(&minor()).unwrap();
        real.decoy_add_delivered_report(&minor(), None, system_now())
            .unwrap();
        // A handle on the decoy, opened before: its key finds nothing after.
        let old = real.open_decoy().unwrap().unwrap();
        assert_eq!(old.settings().unwrap(), settings(&n));
        real.clear_duress_pin().unwrap();
        assert!(real.open_decoy().unwrap().is_none());
        assert!(!real.keep_decoy_current().unwrap());
        assert_eq!(old.settings().unwrap(), Settings::default());
        assert_eq!(old.directory_version().unwrap(), None);
        assert!(old.drafts().unwrap().is_empty());
        assert!(old.sent_reports().unwrap().is_empty());
        assert!(real.decoy_drafts().is_err());
        assert!(real.decoy_add_draft(&minor()).is_err());
        // The real profile goes on as before; its changes go nowhere.
        real.save_settings(&Settings {
            language: Some(Language::Es),
            ..settings(&n)
        })
        .unwrap();
        assert_eq!(old.settings().unwrap(), Settings::default());
        assert_eq!(real.sent_reports().unwrap().len(), 1);
        drop((old, real));
        assert!(matches!(
            Profile::open(&root.path().join("p"), "1111"),
            Err(CoreError::WrongPin)
        ));
    }

    #[test]
    fn without_a_duress_pin_nothing_changes() {
        let mut e = DangerousSeededEntropy::new(b"decoy-none");
        let n = network(&mut e);
        let root = tempfile::tempdir().unwrap();
        let real = real_profile(root.path(), &n);
        assert!(!real.keep_decoy_current().unwrap());
        assert_eq!(real.settings().unwrap(), settings(&n));
        assert_eq!(real.directory_version().unwrap(), Some(5));
        for err in [
            real.decoy_add_draft(&minor()).err(),
            real.decoy_add_delivered_report(&minor(), None, system_now())
                .err(),
            real.decoy_drafts().err(),
        ] {
            assert!(matches!(err, Some(CoreError::Invalid(_))), "{err:?}");
        }
        assert!(real.drafts().unwrap().is_empty(), "nothing landed here");
        assert_eq!(real.sent_reports().unwrap().len(), 1);
        // A duress PIN that equals the PIN is refused, and leaves none.
        assert!(real.set_duress_pin_with_decoy("2468", false).is_err());
        assert!(real.open_decoy().unwrap().is_none());
    }
}
