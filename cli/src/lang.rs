//! The language the command line speaks: `--lang`, else the locale
//! (`LC_ALL`, `LC_MESSAGES`, `LANG`), else English. Survivors and
//! facilitators in the field mostly read Spanish or Portuguese.

use std::sync::OnceLock;

use amparo_protocol::payload::Language;

/// The language picked before the arguments are parsed (from `--lang` in the
/// raw arguments, else the locale), so that the argument parser's own
/// messages — a value that is not accepted, the list of those that are —
/// come in it too.
static EARLY: OnceLock<Language> = OnceLock::new();

/// Looks for `--lang X` or `--lang=X` in the raw arguments, before clap
/// parses them; an unknown value is left for clap to refuse.
pub fn from_args<I: IntoIterator<Item = std::ffi::OsString>>(args: I) -> Option<Language> {
    let mut args = args.into_iter();
    let mut found = None;
    while let Some(a) = args.next() {
        let a = a.to_string_lossy().into_owned();
        if a == "--" {
            break;
        }
        let value = if a == "--lang" {
            args.next().map(|v| v.to_string_lossy().into_owned())
        } else {
            a.strip_prefix("--lang=").map(str::to_string)
        };
        if let Some(v) = value {
            // The last one wins, as clap's `args_override_self` does.
            found = from_code(&v).or(found);
        }
    }
    found
}

fn from_code(code: &str) -> Option<Language> {
    match code.trim().to_ascii_lowercase().as_str() {
        "es" => Some(Language::Es),
        "pt" => Some(Language::Pt),
        "en" => Some(Language::En),
        _ => None,
    }
}

/// Sets the language for messages given before the arguments are parsed.
pub fn set_early(lang: Language) {
    let _ = EARLY.set(lang);
}

/// The language for messages from argument parsing.
pub fn early() -> Language {
    EARLY.get().copied().unwrap_or_else(|| detect(None))
}

/// Picks the language from `--lang` or the locale.
pub fn detect(flag: Option<Language>) -> Language {
    if let Some(l) = flag {
        return l;
    }
    for var in ["LC_ALL", "LC_MESSAGES", "LANG"] {
        if let Ok(v) = std::env::var(var) {
            if let Some(l) = from_locale(&v) {
                return l;
            }
            if !v.is_empty() {
                break;
            }
        }
    }
    Language::En
}

/// `es_PE.UTF-8` → Spanish, `pt_BR` → Portuguese, `en_US` → English.
pub fn from_locale(locale: &str) -> Option<Language> {
    match locale.get(..2)?.to_ascii_lowercase().as_str() {
        "es" => Some(Language::Es),
        "pt" => Some(Language::Pt),
        "en" => Some(Language::En),
        _ => None,
    }
}

/// One of three wordings.
pub fn tr(lang: Language, es: &str, pt: &str, en: &str) -> String {
    match lang {
        Language::Es => es,
        Language::Pt => pt,
        Language::En => en,
    }
    .to_string()
}

/// A count and its noun, agreeing in number: `1 ruta`, `2 rutas`.
/// `forms` are (singular, plural) in Spanish, Portuguese and English.
pub fn count(
    lang: Language,
    n: usize,
    es: (&str, &str),
    pt: (&str, &str),
    en: (&str, &str),
) -> String {
    let (one, many) = match lang {
        Language::Es => es,
        Language::Pt => pt,
        Language::En => en,
    };
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The name of `language` in the language of the page (`view`): a page in
/// Portuguese says "inglês", not "English". (Menus where a person picks her
/// own language name each in itself: see [`Label`] for `Language`.)
///
/// [`Label`]: amparo_protocol::i18n::Label
pub fn language_name(view: Language, language: Language) -> &'static str {
    use Language::*;
    match (view, language) {
        (Es, Es) => "español",
        (Es, Pt) => "portugués",
        (Es, En) => "inglés",
        (Pt, Es) => "espanhol",
        (Pt, Pt) => "português",
        (Pt, En) => "inglês",
        (En, Es) => "Spanish",
        (En, Pt) => "Portuguese",
        (En, En) => "English",
    }
}

/// Names of `languages` in the language of the page, joined.
pub fn language_names(view: Language, languages: &[Language]) -> String {
    languages
        .iter()
        .map(|l| language_name(view, *l))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What an I/O error means, in `lang`, for the errors people meet with
/// files (a name mistyped, a folder without permission); others keep the
/// system's words.
pub fn io_reason(lang: Language, e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        NotFound => tr(lang, "no existe", "não existe", "it does not exist"),
        PermissionDenied => tr(
            lang,
            "no tiene permiso para leerlo o escribirlo",
            "sem permissão para lê-lo ou escrevê-lo",
            "permission denied",
        ),
        IsADirectory => tr(
            lang,
            "es una carpeta, no un archivo",
            "é uma pasta, não um arquivo",
            "it is a folder, not a file",
        ),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locales_map_to_languages() {
        assert_eq!(from_locale("es_PE.UTF-8"), Some(Language::Es));
        assert_eq!(from_locale("pt_BR"), Some(Language::Pt));
        assert_eq!(from_locale("en"), Some(Language::En));
        assert_eq!(from_locale("C"), None);
        assert_eq!(from_locale("fr_FR"), None);
        assert_eq!(detect(Some(Language::Pt)), Language::Pt);
    }

    fn args(list: &[&str]) -> Vec<std::ffi::OsString> {
        list.iter().map(Into::into).collect()
    }

    #[test]
    fn the_language_is_found_before_parsing() {
        assert_eq!(
            from_args(args(&["amparo", "--lang", "es", "focal", "status"])),
            Some(Language::Es)
        );
        assert_eq!(
            from_args(args(&["amparo", "focal", "--lang=PT"])),
            Some(Language::Pt)
        );
        assert_eq!(
            from_args(args(&["amparo", "--lang", "es", "--lang", "en"])),
            Some(Language::En)
        );
        assert_eq!(from_args(args(&["amparo", "--lang", "fr"])), None);
        assert_eq!(
            from_args(args(&["amparo", "report", "answer", "--", "--lang", "es"])),
            None,
            "after -- it is text, not an option"
        );
        assert_eq!(from_args(args(&["amparo", "--lang"])), None);
    }

    #[test]
    fn counts_agree_and_languages_are_named_in_the_page_language() {
        let routes = |l, n| {
            count(
                l,
                n,
                ("ruta", "rutas"),
                ("rota", "rotas"),
                ("route", "routes"),
            )
        };
        assert_eq!(routes(Language::En, 1), "1 route");
        assert_eq!(routes(Language::En, 0), "0 routes");
        assert_eq!(routes(Language::Es, 2), "2 rutas");
        assert_eq!(routes(Language::Pt, 1), "1 rota");
        assert_eq!(language_name(Language::Pt, Language::En), "inglês");
        assert_eq!(language_name(Language::Es, Language::Pt), "portugués");
        assert_eq!(
            language_names(Language::En, &[Language::Es, Language::Pt]),
            "Spanish, Portuguese"
        );
        let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert_eq!(io_reason(Language::Es, &missing), "no existe");
    }
}
