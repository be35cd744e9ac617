//! Cases for the statistics tests: what a survivor says for counting, and
//! the type the office gives it.

use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::keys::RecipientKeys;
use amparo_protocol::payload::*;
use amparo_protocol::statistics::{GbvType, Month};

/// One incident, as her report and the office's classification say it.
pub struct Case {
    /// Region code.
    pub region: &'static str,
    /// Kind of place.
    pub setting: PlaceSetting,
    /// She agrees to be counted.
    pub consent: bool,
    /// She also reported it elsewhere.
    pub elsewhere: Option<bool>,
    /// Her age band.
    pub age: Option<AgeBand>,
    /// Who did it.
    pub aggressor: AggressorKind,
    /// How the office classifies it.
    pub gbv: GbvType,
}

/// A counted case: consent, not elsewhere, an adult, a client.
pub fn case(region: &'static str, setting: PlaceSetting, gbv: GbvType) -> Case {
    Case {
        region,
        setting,
        consent: true,
        elsewhere: Some(false),
        age: Some(AgeBand::Adult),
        aggressor: AggressorKind::Client,
        gbv,
    }
}

/// Her report of `c`, the incident on the 18th of `month`.
pub fn report(c: &Case, month: Month) -> Report {
    Report {
        reads: Vec::new(),
        statistics_consent: c.consent,
        age_band: c.age,
        reported_elsewhere: c.elsewhere,
        alert: None,
        v: 1,
        violence: vec![ViolenceKind::Physical],
        violence_other: None,
        when: Some(IncidentDate {
            year: month.year,
            month: Some(month.month),
            day: Some(18),
            approximate: false,
        }),
        place: Place {
            setting: Some(c.setting),
            country: Some(c.region[..2].into()),
            region: Some(c.region.into()),
            detail: None,
        },
        aggressors: vec![c.aggressor],
        aggressor_other: None,
        needs: vec![Need::LegalAdvice],
        language: Language::Es,
        text: "Texto de prueba de la denuncia.".into(),
        attachments: vec![],
        reply_to: RecipientKeys::generate(&mut SystemEntropy::new())
            .unwrap()
            .public(),
        referral: None,
    }
}
