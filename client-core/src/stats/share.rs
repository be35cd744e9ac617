//! Sharing a month: the focal point publishes its table once, signed and
//! sealed to the coordinator's statistics key; the coordinator fetches its
//! statistics mailbox, keeps one table per office and month, and merges
//! them into the picture.

use std::collections::HashSet;

use amparo_protocol::UnixTime;
use amparo_protocol::aggregation::SignedMessage;
use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::envelope::{Envelope, EnvelopeId, Purpose};
use amparo_protocol::keys::{RecipientKeys, RecipientPublic};
use amparo_protocol::padding::InnerHeader;
use amparo_protocol::primitives::sha256_prefix;
use amparo_protocol::statistics::{Month, MonthTable, SignedMonthTable};
use serde::{Deserialize, Serialize};

use super::{DEFAULT_THRESHOLD, MonthStats, picture::Picture};
use crate::focal::CaseFilter;
use crate::relay::RelayClient;
use crate::store::{ItemKind, Profile};
use crate::survivor::{decode, encode};
use crate::{CoreError, Result};

/// Most envelopes one [`Profile::fetch_statistics`] reads before it
/// returns (the rest wait for the next call): a stranger can fill the
/// statistics mailbox with junk, which is read, dropped and acknowledged.
pub const STATISTICS_FETCH_MAX: usize = 10_000;
/// Oldest month a coordinator accepts a table for, in months before the
/// current one (ten years). With months in the future refused too, an
/// office's key — even a stolen one — adds at most this many tables.
pub const STATISTICS_MONTHS_BACK: u32 = 120;
const PAGE: u32 = 200;

/// Item state of a focal point's own record of a month it published.
const PUBLISHED: u8 = 1;
/// Item state of a table the coordinator received.
const RECEIVED: u8 = 2;

/// A month this focal point published: the table exactly as it left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    /// When it was queued (seconds since the epoch).
    pub at: u64,
    /// The table sent.
    pub table: MonthTable,
}

/// What one statistics fetch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatisticsFetch {
    /// New tables kept.
    pub kept: usize,
    /// Tables for an office and month already held (the first is kept).
    pub duplicates: usize,
    /// Envelopes dropped: not openable, not signed by a focal point of the
    /// directory, or not a valid table.
    pub dropped: usize,
    /// The mailbox holds more: fetch again.
    pub more: bool,
    /// Statistics-sum messages kept (keys, masked months, shares).
    pub aggregation: usize,
    /// Months whose sum was finished by this fetch.
    pub summed: Vec<Month>,
}

impl Profile {
    /// The suppression threshold: counts from 1 to this minus one are not
    /// shared ([`DEFAULT_THRESHOLD`] unless the settings say otherwise).
    pub fn statistics_threshold(&self) -> Result<u32> {
        Ok(self
            .settings()?
            .statistics_threshold
            .unwrap_or(DEFAULT_THRESHOLD))
    }

    /// Sets the suppression threshold (1 to 1000; 1 suppresses nothing and
    /// is refused: a count of one is a person).
    pub fn set_statistics_threshold(&self, threshold: u32) -> Result<()> {
        if !(2..=amparo_protocol::statistics::MAX_THRESHOLD).contains(&threshold) {
            return Err(CoreError::Invalid(
                "the statistics threshold is 2 to 1000 (default 5)",
            ));
        }
        let mut settings = self.settings()?;
        settings.statistics_threshold = Some(threshold);
        self.save_settings(&settings)
    }

    /// This focal point's own statistics for `month` (nothing suppressed).
    pub fn month_stats(&self, month: Month) -> Result<MonthStats> {
        Ok(MonthStats::of(&self.cases(&CaseFilter::default())?, month))
    }

    pub(crate) fn published_id(&self, month: Month) -> [u8; 16] {
        self.fixed_id(format!("statistics-published-{month}").as_bytes())
    }

    /// The months this focal point has published, oldest first.
    pub fn published_months(&self) -> Result<Vec<Published>> {
        let mut out = Vec::new();
        for id in self.item_ids(ItemKind::Statistics, Some(PUBLISHED))? {
            if let Some((_, bytes)) = self.get_item(ItemKind::Statistics, &id)? {
                out.push(decode::<Published>(&bytes, "published statistics")?);
            }
        }
        out.sort_by_key(|p| p.table.month);
        Ok(out)
    }

    /// The table `month` would be published as, without sending it.
    pub fn shareable_month(&self, month: Month) -> Result<MonthTable> {
        self.shareable_table(&self.month_stats(month)?)
    }

    /// The table `stats` would be published as: this focal point's id,
    /// threshold and the regions its directory lists (a caller that holds
    /// the summaries already, as the desk's index does, counts `stats`
    /// itself instead of decrypting every case again).
    pub fn shareable_table(&self, stats: &MonthStats) -> Result<MonthTable> {
        let settings = self.settings()?;
        let coordinator = settings.coordinator()?;
        let from = settings.focal_point_id.clone().ok_or(CoreError::Invalid(
            "set this focal point's directory id first",
        ))?;
        let directory = self
            .directory(&coordinator)?
            .ok_or(CoreError::Invalid("this profile holds no directory yet"))?;
        let regions: HashSet<String> = directory
            .focal_points
            .iter()
            .flat_map(|f| f.regions.iter().cloned())
            .collect();
        stats.shareable(&from, self.statistics_threshold()?, &regions)
    }

    /// Publishes `month`: builds its table after disclosure control, signs
    /// it with this focal point's key, seals it to the coordinator's
    /// statistics key from the directory and queues it (it leaves at the
    /// next sync, like a reply). A month is published once, and only once
    /// it is over: a second, different table of the same month would show,
    /// by difference, the cases that changed between the two.
    pub fn publish_month(&self, month: Month, now: UnixTime) -> Result<MonthTable> {
        if now.0 < month.next().start_unix() {
            return Err(CoreError::Invalid(
                "a month can be published once it is over",
            ));
        }
        let id = self.published_id(month);
        if self.in_statistics_sum(month)? {
            return Err(CoreError::Invalid(
                "this office takes part in the statistics sum for this month: it is not published on its own",
            ));
        }
        if self.get_item(ItemKind::Statistics, &id)?.is_some() {
            return Err(CoreError::Invalid(
                "this month was already published (once only: a second table would reveal the cases that changed)",
            ));
        }
        let coordinator = self.settings()?.coordinator()?;
        let to: RecipientPublic = self
            .directory(&coordinator)?
            .and_then(|d| d.statistics)
            .ok_or(CoreError::Invalid(
                "the directory names no statistics key: this network gathers no statistics",
            ))?;
        let table = self.shareable_month(month)?;
        let keys = self.focal_keys_for_statistics()?;
        let body = SignedMonthTable::sign(&table, keys.signing())?.to_json()?;
        let mut e = SystemEntropy::new();
        let header = InnerHeader::new(&mut e, now)?;
        let env = Envelope::seal(&to, Purpose::Statistics, &header, &body, &mut e)?;
        let record = Published {
            at: now.0,
            table: table.clone(),
        };
        self.in_transaction(|| {
            self.enqueue(&id, &env)?;
            self.put_item(ItemKind::Statistics, &id, PUBLISHED, &encode(&record)?)
        })?;
        Ok(table)
    }

    pub(crate) fn focal_keys_for_statistics(&self) -> Result<RecipientKeys> {
        self.focal_keys_if_any()?
            .ok_or(CoreError::Invalid("this profile has no focal point keys"))
    }

    fn statistics_keys_item(&self) -> [u8; 16] {
        self.fixed_id(b"coordinator-statistics-keys")
    }

    /// The coordinator's statistics keys, made the first time they are
    /// asked for. Their public half goes in every directory this profile
    /// signs.
    pub fn coordinator_statistics_keys(&self) -> Result<RecipientKeys> {
        if let Some((_, bytes)) = self.get_item(ItemKind::Identity, &self.statistics_keys_item())? {
            return Ok(RecipientKeys::from_secret_bytes(&bytes)?);
        }
        let keys = RecipientKeys::generate(&mut SystemEntropy::new())?;
        self.put_item(
            ItemKind::Identity,
            &self.statistics_keys_item(),
            0,
            &keys.dangerously_export()[..],
        )?;
        Ok(keys)
    }

    fn received_id(&self, from: &str, month: Month) -> [u8; 16] {
        let key = format!("statistics-received-{from}-{month}");
        sha256_prefix(&[b"amparo-statistics-item", &self.fixed_id(key.as_bytes())])
    }

    /// Files statistics envelopes: each must open with the statistics
    /// keys, name a focal point of the directory this coordinator signed
    /// and carry its signature, and be a valid table of a month that is
    /// over and at most [`STATISTICS_MONTHS_BACK`] months old. One table is
    /// kept per office and month (the first: an office publishes a month
    /// once).
    pub fn file_statistics(
        &self,
        envelopes: &[Envelope],
        now: UnixTime,
    ) -> Result<StatisticsFetch> {
        let current = Month::of_unix(now.0);
        let oldest = current.index().saturating_sub(STATISTICS_MONTHS_BACK);
        let keys = self.coordinator_statistics_keys()?;
        let coordinator = self.coordinator_public()?;
        let directory = self
            .directory(&coordinator)?
            .ok_or(CoreError::Invalid("this profile holds no directory yet"))?;
        let mut out = StatisticsFetch::default();
        for env in envelopes {
            let opened = env.open(&keys, &Purpose::FOR_STATISTICS).ok();
            if let Some(o) = opened
                .as_ref()
                .filter(|o| o.purpose == Purpose::Aggregation)
            {
                // A step of the statistics sum, signed by an office of the
                // directory.
                let message = SignedMessage::from_json(&o.body).ok().and_then(|s| {
                    let focal = directory.focal_point(&s.from)?;
                    s.verify(&focal.keys.verifying_key()).ok()
                });
                let kept = match message {
                    Some(m) => self.file_aggregation_at_coordinator(m, now)?,
                    None => false,
                };
                if kept {
                    out.aggregation += 1;
                } else {
                    out.dropped += 1;
                }
                continue;
            }
            let table = opened
                .and_then(|o| SignedMonthTable::from_json(&o.body).ok())
                .and_then(|s| {
                    let focal = directory.focal_point(&s.from)?;
                    s.verify(&focal.keys.verifying_key()).ok()
                });
            let Some(table) = table.filter(|t| t.month < current && t.month.index() >= oldest)
            else {
                out.dropped += 1;
                continue;
            };
            let id = self.received_id(&table.from, table.month);
            if self.get_item(ItemKind::Statistics, &id)?.is_some() {
                out.duplicates += 1;
                continue;
            }
            self.put_item(ItemKind::Statistics, &id, RECEIVED, &encode(&table)?)?;
            out.kept += 1;
        }
        Ok(out)
    }

    /// Reads the coordinator's statistics mailbox, files what it holds
    /// ([`Profile::file_statistics`]) and acknowledges every envelope read,
    /// kept or dropped, so the relay deletes it.
    pub async fn fetch_statistics(
        &self,
        relay: &RelayClient,
        now: UnixTime,
    ) -> Result<StatisticsFetch> {
        let keys = self.coordinator_statistics_keys()?;
        let mut e = SystemEntropy::new();
        let mut total = StatisticsFetch::default();
        let mut after = 0;
        let mut read = 0usize;
        loop {
            let page = relay.fetch(&keys, after, PAGE, now, &mut e).await?;
            let envelopes: Vec<Envelope> = page.items.iter().map(|(_, e)| e.clone()).collect();
            after = page.items.last().map_or(after, |(seq, _)| *seq);
            let got = self.file_statistics(&envelopes, now)?;
            let ids: Vec<EnvelopeId> = envelopes.iter().map(Envelope::id).collect();
            if !ids.is_empty() {
                relay.ack(&keys, &ids, now, &mut e).await?;
            }
            total.kept += got.kept;
            total.duplicates += got.duplicates;
            total.dropped += got.dropped;
            total.aggregation += got.aggregation;
            read += envelopes.len();
            if !page.more || envelopes.is_empty() {
                break;
            }
            if read >= STATISTICS_FETCH_MAX {
                total.more = true;
                break;
            }
        }
        total.summed = self.finish_rounds()?;
        Ok(total)
    }

    /// Every table this coordinator received, by month then office.
    pub fn received_tables(&self) -> Result<Vec<MonthTable>> {
        let mut out = Vec::new();
        for id in self.item_ids(ItemKind::Statistics, Some(RECEIVED))? {
            if let Some((_, bytes)) = self.get_item(ItemKind::Statistics, &id)? {
                out.push(decode::<MonthTable>(&bytes, "statistics table")?);
            }
        }
        out.sort_by(|a, b| (a.month, &a.from).cmp(&(b.month, &b.from)));
        Ok(out)
    }

    /// The regional picture: every received table summed by month, region
    /// and kind of place, no office named.
    ///
    /// A month summed by the statistics sum comes in as one table; an
    /// office's own table of a month whose sum holds it is left out (it
    /// would count twice).
    pub fn statistics_picture(&self) -> Result<Picture> {
        let sums = self.summed_months()?;
        let mut tables: Vec<MonthTable> = self
            .received_tables()?
            .into_iter()
            .filter(|t| {
                !sums
                    .iter()
                    .any(|s| s.table.month == t.month && s.offices.contains(&t.from))
            })
            .collect();
        tables.extend(sums.into_iter().map(|s| s.table));
        Ok(Picture::merge(&tables))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::KdfParams;
    use amparo_protocol::directory::{Directory, FocalPoint, LocalizedText};
    use amparo_protocol::payload::{Language, Need};

    fn table(from: &str, month: &str) -> MonthTable {
        MonthTable {
            v: 1,
            from: from.into(),
            month: Month::parse(month).unwrap(),
            threshold: 5,
            rows: vec![],
            row_totals: vec![],
            total: Some(0),
            breakdowns: vec![],
        }
    }

    #[test]
    fn the_coordinator_keeps_one_signed_table_per_office_and_past_month() {
        let dir = tempfile::tempdir().unwrap();
        let coordinator = Profile::create(
            &dir.path().join("c"),
            "1234",
            KdfParams::DANGEROUSLY_FAST_FOR_TESTS,
        )
        .unwrap();
        coordinator.create_coordinator_key().unwrap();
        let office = RecipientKeys::generate(&mut SystemEntropy::new()).unwrap();
        let t = |s: &str| LocalizedText {
            es: s.into(),
            pt: s.into(),
            en: s.into(),
        };
        let directory = Directory {
            focal_points: vec![FocalPoint {
                reads: Vec::new(),
                id: "pe-lima".into(),
                name: t("Lima"),
                organization: String::new(),
                regions: vec!["PE-LIM".into()],
                categories: vec![Need::LegalAdvice],
                languages: vec![Language::Es],
                keys: office.public(),
                valid_from: 0,
                valid_until: u64::MAX / 2,
            }],
            service_routes: vec![],
            relays: vec![],
            statistics: None,
        };
        // 1 December 2026.
        let now = UnixTime(Month::parse("2026-12").unwrap().start_unix() + 3600);
        let signed = coordinator.sign_directory(&directory, now).unwrap();
        let to = signed.directory().statistics.unwrap();
        let seal = |table: &MonthTable, key: &RecipientKeys| {
            let body = SignedMonthTable::sign(table, key.signing())
                .unwrap()
                .to_json()
                .unwrap();
            let mut e = SystemEntropy::new();
            let header = InnerHeader::new(&mut e, now).unwrap();
            Envelope::seal(&to, Purpose::Statistics, &header, &body, &mut e).unwrap()
        };
        let stranger = RecipientKeys::generate(&mut SystemEntropy::new()).unwrap();
        let envelopes = [
            seal(&table("pe-lima", "2026-10"), &office),
            seal(&table("pe-lima", "2026-12"), &office), // not over
            seal(&table("pe-lima", "2027-01"), &office), // future
            seal(&table("pe-lima", "2016-11"), &office), // 121 months back
            seal(&table("pe-lima", "2026-09"), &stranger), // not its key
            seal(&table("pe-cusco", "2026-09"), &office), // not in the directory
        ];
        let got = coordinator.file_statistics(&envelopes, now).unwrap();
        assert_eq!((got.kept, got.dropped, got.duplicates), (1, 5, 0));
        let again = coordinator
            .file_statistics(&[seal(&table("pe-lima", "2026-10"), &office)], now)
            .unwrap();
        assert_eq!((again.kept, again.duplicates), (0, 1));
        let ten_years = coordinator
            .file_statistics(&[seal(&table("pe-lima", "2016-12"), &office)], now)
            .unwrap();
        assert_eq!(ten_years.kept, 1, "exactly 120 months back is kept");
        assert_eq!(coordinator.received_tables().unwrap().len(), 2);
    }
}
