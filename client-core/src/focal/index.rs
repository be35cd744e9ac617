//! The case index a focal point's desk works from: every case's summary
//! and searchable text, decrypted once into memory when the profile is
//! unlocked, then filtered, searched, sorted and paged there.
//!
//! Why in memory: the cases are sealed item by item in the profile, so a
//! search or a sort on disk would need an index in clear, which is exactly
//! what a seized laptop must not hold. Reading every case once costs about
//! as much as listing them once; after that a query over 10 000 cases is a
//! scan of memory. The index zeroes its text when dropped (on lock).

use amparo_protocol::payload::{AggressorKind, CaseStatus, Language, Need, ViolenceKind};
use zeroize::Zeroize;

use super::{CaseEventKind, CaseStage, CaseSummary, StoredCase};
use crate::Result;
use crate::store::{ItemKind, Profile};

/// How a page of cases is ordered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CaseSort {
    /// By the hour the report was written.
    #[default]
    Received,
    /// By the latest thing that happened on the case.
    Activity,
    /// By status (received, in progress, referred, closed).
    Status,
    /// By region code (cases without one last).
    Region,
}

/// What to show of the cases: every filter set must match, then the
/// matching cases are sorted and one page of them returned.
#[derive(Debug, Clone, Default)]
pub struct CaseQuery {
    /// Status.
    pub status: Option<CaseStatus>,
    /// The office's stage.
    pub stage: Option<CaseStage>,
    /// A need the report names.
    pub need: Option<Need>,
    /// A kind of violence the report names.
    pub violence: Option<ViolenceKind>,
    /// A kind of aggressor the report names.
    pub aggressor: Option<AggressorKind>,
    /// Region code (compared without regard to case).
    pub region: Option<String>,
    /// The language she asked to be answered in.
    pub language: Option<Language>,
    /// Written at or after this hour.
    pub since_hour: Option<u32>,
    /// Written before this hour.
    pub until_hour: Option<u32>,
    /// Only cases with something unread.
    pub unread_only: bool,
    /// Only starred cases.
    pub starred_only: bool,
    /// Words that must all appear in the case's text (her words, the
    /// conversation, the internal notes, the free fields, the id), without
    /// regard to case or accents.
    pub text: Option<String>,
    /// Order.
    pub sort: CaseSort,
    /// Newest (or last) first.
    pub descending: bool,
    /// Matching cases skipped before the page.
    pub offset: usize,
    /// Most cases in the page (0: all).
    pub limit: usize,
}

/// One page of cases.
#[derive(Debug, Clone, Default)]
pub struct CasePage {
    /// Cases held.
    pub total: usize,
    /// Cases that match the query (the page is a part of them).
    pub matching: usize,
    /// Cases held with something unread.
    pub unread: usize,
    /// The page.
    pub cases: Vec<CaseSummary>,
}

struct Row {
    summary: CaseSummary,
    /// Everything searchable of the case, folded ([`fold`]).
    text: String,
}

impl Drop for Row {
    fn drop(&mut self) {
        self.text.zeroize();
        if let Some(r) = &mut self.summary.region {
            r.zeroize();
        }
    }
}

/// Every case's summary and searchable text, in memory.
#[derive(Default)]
pub struct CaseIndex {
    rows: Vec<Row>,
}

impl std::fmt::Debug for CaseIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaseIndex")
            .field("cases", &self.rows.len())
            .finish_non_exhaustive()
    }
}

/// Lower case without accents, so that "Violación" finds "violacion" and
/// "agressão" finds "AGRESSAO".
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().flat_map(char::to_lowercase) {
        out.push(match c {
            'á' | 'à' | 'â' | 'ã' | 'ä' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'í' | 'ì' | 'î' | 'ï' => 'i',
            'ó' | 'ò' | 'ô' | 'õ' | 'ö' => 'o',
            'ú' | 'ù' | 'û' | 'ü' => 'u',
            'ç' => 'c',
            'ñ' => 'n',
            c => c,
        });
    }
    out
}

fn hex(id: &[u8; 16]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

fn row(id: [u8; 16], c: &StoredCase) -> Row {
    let r = &c.report;
    let mut parts: Vec<&str> = vec![&r.text];
    parts.extend(r.violence_other.as_deref());
    parts.extend(r.aggressor_other.as_deref());
    parts.extend(r.place.detail.as_deref());
    parts.extend(r.place.region.as_deref());
    parts.extend(r.referral.as_ref().map(|f| f.note.as_str()));
    for e in &c.history {
        match &e.kind {
            CaseEventKind::FromSurvivor { text, .. } | CaseEventKind::Reply { text } => {
                parts.push(text);
            }
            CaseEventKind::Status { message, .. } => parts.extend(message.as_deref()),
            CaseEventKind::Referred { to, note } => {
                parts.push(to);
                parts.push(note);
            }
        }
    }
    parts.extend(c.notes.iter().map(|n| n.text.as_str()));
    let id_hex = hex(&id);
    parts.push(&id_hex);
    let mut joined = parts.join("\n");
    let text = fold(&joined);
    joined.zeroize();
    Row {
        summary: c.summary(id),
        text,
    }
}

fn status_rank(s: CaseStatus) -> u8 {
    super::status_code(s)
}

impl Profile {
    /// Reads every case into a [`CaseIndex`] (one decryption each).
    pub fn case_index(&self) -> Result<CaseIndex> {
        let ids = self.item_ids(ItemKind::Case, None)?;
        let mut rows = Vec::with_capacity(ids.len());
        for id in ids {
            rows.push(row(id, &self.stored_case(&id)?));
        }
        Ok(CaseIndex { rows })
    }
}

impl CaseIndex {
    /// Cases held.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no case is held.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Reads `id` again after it changed (a reply, a status, a note, a
    /// read mark), or adds it if it is new.
    pub fn refresh(&mut self, profile: &Profile, id: &[u8; 16]) -> Result<()> {
        let fresh = row(*id, &profile.stored_case(id)?);
        match self.rows.iter_mut().find(|r| &r.summary.id == id) {
            Some(r) => *r = fresh,
            None => self.rows.push(fresh),
        }
        Ok(())
    }

    /// Cases with something unread.
    pub fn unread(&self) -> usize {
        self.rows.iter().filter(|r| r.summary.unread).count()
    }

    /// The summary of one case, if held.
    pub fn summary(&self, id: &[u8; 16]) -> Option<&CaseSummary> {
        self.rows.iter().map(|r| &r.summary).find(|s| &s.id == id)
    }

    /// The region codes the cases name, sorted, each once.
    pub fn regions(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .rows
            .iter()
            .filter_map(|r| r.summary.region.clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// One page of the cases that match `q`.
    pub fn query(&self, q: &CaseQuery) -> CasePage {
        let words: Vec<String> = q
            .text
            .as_deref()
            .map(|t| fold(t).split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        let region = q.region.as_deref().map(str::to_ascii_lowercase);
        let mut hits: Vec<&Row> = self
            .rows
            .iter()
            .filter(|r| {
                let s = &r.summary;
                q.status.is_none_or(|x| s.status == x)
                    && q.stage.is_none_or(|x| s.stage == x)
                    && q.need.is_none_or(|x| s.needs.contains(&x))
                    && q.violence.is_none_or(|x| s.violence.contains(&x))
                    && q.aggressor.is_none_or(|x| s.aggressors.contains(&x))
                    && q.language.is_none_or(|x| s.language == x)
                    && q.since_hour.is_none_or(|h| s.reported_hour >= h)
                    && q.until_hour.is_none_or(|h| s.reported_hour < h)
                    && (!q.unread_only || s.unread)
                    && (!q.starred_only || s.starred)
                    && region.as_ref().is_none_or(|want| {
                        s.region
                            .as_deref()
                            .is_some_and(|r| r.eq_ignore_ascii_case(want))
                    })
                    && words.iter().all(|w| r.text.contains(w.as_str()))
            })
            .collect();
        // Ties keep the order of the report's hour, then its id, so a page
        // boundary is the same from one request to the next.
        let tie = |r: &Row| (r.summary.reported_hour, r.summary.id);
        match q.sort {
            CaseSort::Received => hits.sort_by_key(|r| tie(r)),
            CaseSort::Activity => hits.sort_by_key(|r| (r.summary.last_activity, tie(r))),
            CaseSort::Status => hits.sort_by_key(|r| (status_rank(r.summary.status), tie(r))),
            CaseSort::Region => hits.sort_by(|a, b| {
                let key = |r: &Row| (r.summary.region.is_none(), r.summary.region.clone());
                key(a).cmp(&key(b)).then(tie(a).cmp(&tie(b)))
            }),
        }
        if q.descending {
            hits.reverse();
        }
        // Alerts of check-in timers first, whatever the order: she
        // stopped checking in.
        hits.sort_by_key(|r| r.summary.alert.is_none());
        let matching = hits.len();
        let limit = if q.limit == 0 { usize::MAX } else { q.limit };
        CasePage {
            total: self.rows.len(),
            matching,
            unread: self.unread(),
            cases: hits
                .into_iter()
                .skip(q.offset)
                .take(limit)
                .map(|r| r.summary.clone())
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_ignores_case_and_accents() {
        assert_eq!(fold("Violación AGRESSÃO Ñandú"), "violacion agressao nandu");
    }
}
