//! The commands, one module per kind of user.

pub mod carry;
pub mod coordinator;
pub mod directory;
pub mod focal;
pub mod profile;
pub mod report;

use amparo_protocol::i18n::Label;
use amparo_protocol::payload::Language;
use serde::de::DeserializeOwned;

/// Parses a form value as the protocol spells it (`legal_advice`, also
/// `legal-advice`), so the command line and the wire use the same words.
pub fn parse_enum<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    let word = text.trim().to_ascii_lowercase().replace('-', "_");
    serde_json::from_value(serde_json::Value::String(word))
        .map_err(|_| format!("{text:?} is not one of the accepted values (see --help)"))
}

/// The wire name of a form value (`in_progress`), for `--json`.
pub fn wire_name<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// Labels of a list in `lang`, joined.
pub fn labels<T: Label>(items: &[T], lang: Language) -> String {
    items
        .iter()
        .map(|i| i.label(lang))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use amparo_protocol::payload::{CaseStatus, Need};

    #[test]
    fn form_values_parse_as_the_wire_spells_them() {
        assert_eq!(parse_enum::<Need>("legal-advice"), Ok(Need::LegalAdvice));
        assert_eq!(parse_enum::<Need>("STI_HIV_PEP"), Ok(Need::StiHivPep));
        assert_eq!(
            parse_enum::<CaseStatus>("in_progress"),
            Ok(CaseStatus::InProgress)
        );
        assert!(parse_enum::<Need>("money").is_err());
        assert_eq!(wire_name(&CaseStatus::InProgress), "in_progress");
    }
}
