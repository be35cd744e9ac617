//! The language the command line speaks: `--lang`, else the locale
//! (`LC_ALL`, `LC_MESSAGES`, `LANG`), else English. Survivors and
//! facilitators in the field mostly read Spanish or Portuguese.

use amparo_protocol::payload::Language;

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
}
