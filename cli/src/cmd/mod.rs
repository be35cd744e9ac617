//! The commands, one module per kind of user.

pub mod carry;
pub mod coordinator;
pub mod directory;
pub mod focal;
pub mod profile;
pub mod report;
pub mod stats;
pub mod timer;
pub mod tokens;
pub mod write;

use amparo_protocol::i18n::Label;
use amparo_protocol::payload::Language;
use serde::de::DeserializeOwned;

/// Parses a form value as the protocol spells it (`legal_advice`, also
/// `legal-advice`), so the command line and the wire use the same words.
/// A value that is not accepted gets a sentence in the language of the
/// session (see [`crate::lang::early`]) listing the accepted ones.
pub fn parse_enum<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    let word = text.trim().to_ascii_lowercase().replace('-', "_");
    serde_json::from_value(serde_json::Value::String(word))
        .map_err(|e| not_accepted(crate::lang::early(), text, &accepted_values(&e.to_string())))
}

/// The accepted values a serde "unknown variant" error lists (`expected one
/// of `a`, `b``), as the command line spells them (`in-progress`).
fn accepted_values(serde_error: &str) -> Vec<String> {
    let Some((_, expected)) = serde_error.split_once("expected") else {
        return Vec::new();
    };
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|v| v.replace('_', "-"))
        .collect()
}

/// "`x` is not accepted; accepted values: …" in `lang`.
fn not_accepted(lang: Language, text: &str, accepted: &[String]) -> String {
    let list = accepted.join(", ");
    if accepted.is_empty() {
        return crate::lang::tr(
            lang,
            &format!("«{text}» no es un valor aceptado (vea --help)."),
            &format!("«{text}» não é um valor aceito (veja --help)."),
            &format!("{text:?} is not an accepted value (see --help)."),
        );
    }
    crate::lang::tr(
        lang,
        &format!("«{text}» no es un valor aceptado. Valores aceptados: {list}."),
        &format!("«{text}» não é um valor aceito. Valores aceitos: {list}."),
        &format!("{text:?} is not an accepted value. Accepted values: {list}."),
    )
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
        let lists = |e: Result<CaseStatus, String>| e.err().unwrap_or_default();
        let refused = lists(parse_enum("done"));
        assert!(
            refused.contains("done")
                && refused.contains("received")
                && refused.contains("in-progress"),
            "{refused}"
        );
        assert_eq!(wire_name(&CaseStatus::InProgress), "in_progress");
    }

    #[test]
    fn refused_values_are_listed_in_the_session_language() {
        let accepted = accepted_values(
            "unknown variant `done`, expected one of `received`, `in_progress`, `closed`",
        );
        assert_eq!(accepted, vec!["received", "in-progress", "closed"]);
        let es = not_accepted(Language::Es, "done", &accepted);
        assert_eq!(
            es,
            "«done» no es un valor aceptado. Valores aceptados: received, in-progress, closed."
        );
        assert!(not_accepted(Language::Pt, "x", &accepted).contains("Valores aceitos"));
        assert!(not_accepted(Language::En, "x", &[]).contains("see --help"));
    }
}
