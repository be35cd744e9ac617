//! Argument errors in the session's language. clap words its own errors in
//! English; a person who asked for `--lang es` and typed a wrong value gets
//! the sentence (and the list of accepted values) in Spanish instead. Help
//! and version output stay clap's.

use std::error::Error as _;

use amparo_protocol::payload::Language;
use clap::error::{ContextKind, ContextValue, ErrorKind};

use crate::lang::tr;

/// What to print for a parse error, or `None` to let clap print its own.
pub fn sentence(lang: Language, e: &clap::Error) -> Option<String> {
    let context = |kind| e.get(kind).map(value_text);
    let arg = context(ContextKind::InvalidArg).unwrap_or_default();
    let usage = context(ContextKind::Usage)
        .map(|u| {
            let u = u.trim();
            let u = u.strip_prefix("Usage:").unwrap_or(u).trim();
            format!(
                "\n{} {u}\n{}",
                tr(lang, "Uso:", "Uso:", "Usage:"),
                tr(
                    lang,
                    "Más detalles con --help.",
                    "Mais detalhes com --help.",
                    "More with --help."
                )
            )
        })
        .unwrap_or_default();
    let main = match e.kind() {
        // Our own value parsers already speak the session's language.
        ErrorKind::ValueValidation => {
            let why = e.source().map(|s| s.to_string()).unwrap_or_default();
            format!("{arg}: {why}")
        }
        _ if lang == Language::En => return None,
        ErrorKind::InvalidValue => {
            let value = context(ContextKind::InvalidValue).unwrap_or_default();
            let valid = context(ContextKind::ValidValue).unwrap_or_default();
            tr(
                lang,
                &format!("{arg}: «{value}» no es un valor aceptado. Valores aceptados: {valid}."),
                &format!("{arg}: «{value}» não é um valor aceito. Valores aceitos: {valid}."),
                "",
            )
        }
        ErrorKind::MissingRequiredArgument => tr(
            lang,
            &format!("Falta lo siguiente: {arg}."),
            &format!("Falta o seguinte: {arg}."),
            "",
        ),
        ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            tr(lang, "Falta la orden.", "Falta o comando.", "")
        }
        ErrorKind::UnknownArgument => {
            let hint = suggestion(lang, context(ContextKind::SuggestedArg));
            tr(
                lang,
                &format!("No se conoce la opción «{arg}».{hint}"),
                &format!("Opção desconhecida: «{arg}».{hint}"),
                "",
            )
        }
        ErrorKind::InvalidSubcommand => {
            let name = context(ContextKind::InvalidSubcommand).unwrap_or_default();
            let hint = suggestion(lang, context(ContextKind::SuggestedSubcommand));
            tr(
                lang,
                &format!("No se conoce la orden «{name}».{hint}"),
                &format!("Comando desconhecido: «{name}».{hint}"),
                "",
            )
        }
        ErrorKind::ArgumentConflict => {
            let other = context(ContextKind::PriorArg).unwrap_or_default();
            tr(
                lang,
                &format!("{arg} no puede usarse junto con {other}."),
                &format!("{arg} não pode ser usado junto com {other}."),
                "",
            )
        }
        _ => return None,
    };
    Some(format!("{main}{usage}"))
}

fn suggestion(lang: Language, s: Option<String>) -> String {
    match s {
        Some(s) if !s.is_empty() => tr(
            lang,
            &format!(" ¿Quiso decir «{s}»?"),
            &format!(" Quis dizer «{s}»?"),
            "",
        ),
        _ => String::new(),
    }
}

fn value_text(v: &ContextValue) -> String {
    match v {
        ContextValue::String(s) => s.clone(),
        ContextValue::Strings(list) => list.join(", "),
        ContextValue::StyledStr(s) => s.to_string(),
        ContextValue::StyledStrs(list) => list
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        ContextValue::Number(n) => n.to_string(),
        ContextValue::Bool(b) => b.to_string(),
        ContextValue::None => String::new(),
        _ => String::new(),
    }
}
