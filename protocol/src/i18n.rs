//! Labels for the report form in Spanish, Portuguese and English.
//!
//! Phone apps and the CLI show these, so every client words the form the
//! same way. The wording is plain and avoids legal jargon; it names police
//! violence and sex work without euphemism because the people using the form
//! do.

use crate::payload::{AggressorKind, AttachmentKind, CaseStatus, Language, Need, ViolenceKind};

/// A type with a human label in each supported language.
pub trait Label {
    /// The label in `lang`.
    fn label(&self, lang: Language) -> &'static str;
}

fn pick(lang: Language, es: &'static str, pt: &'static str, en: &'static str) -> &'static str {
    match lang {
        Language::Es => es,
        Language::Pt => pt,
        Language::En => en,
    }
}

impl Label for ViolenceKind {
    fn label(&self, l: Language) -> &'static str {
        use ViolenceKind::*;
        match self {
            Physical => pick(
                l,
                "Violencia física (golpes, empujones)",
                "Violência física (agressões, empurrões)",
                "Physical violence (beating, pushing)",
            ),
            Sexual => pick(
                l,
                "Violencia sexual (violación, sexo sin condón a la fuerza)",
                "Violência sexual (estupro, sexo sem camisinha à força)",
                "Sexual violence (rape, forced sex without a condom)",
            ),
            Psychological => pick(
                l,
                "Violencia psicológica, humillaciones",
                "Violência psicológica, humilhações",
                "Psychological violence, humiliation",
            ),
            Threats => pick(l, "Amenazas", "Ameaças", "Threats"),
            Harassment => pick(
                l,
                "Acoso o persecución",
                "Assédio ou perseguição",
                "Harassment or stalking",
            ),
            Extortion => pick(
                l,
                "Extorsión o cobro de dinero o sexo",
                "Extorsão ou cobrança de dinheiro ou sexo",
                "Extortion, demands for money or sex",
            ),
            Robbery => pick(
                l,
                "Robo de dinero o documentos",
                "Roubo de dinheiro ou documentos",
                "Robbery of money or documents",
            ),
            ArbitraryDetention => pick(
                l,
                "Detención arbitraria o abuso en una redada",
                "Detenção arbitrária ou abuso em batida policial",
                "Arbitrary detention or abuse in a raid",
            ),
            Discrimination => pick(
                l,
                "Discriminación o negación de atención",
                "Discriminação ou recusa de atendimento",
                "Discrimination or refusal of service",
            ),
            Trafficking => pick(
                l,
                "Trata, trabajo forzado o deudas impuestas",
                "Tráfico de pessoas, trabalho forçado ou dívidas impostas",
                "Trafficking, forced work or imposed debts",
            ),
            Other => pick(l, "Otra", "Outra", "Other"),
        }
    }
}

impl Label for AggressorKind {
    fn label(&self, l: Language) -> &'static str {
        use AggressorKind::*;
        match self {
            Client => pick(l, "Un cliente", "Um cliente", "A client"),
            PoliceOrSecurity => pick(
                l,
                "Policía, militar o agente de seguridad",
                "Polícia, militar ou agente de segurança",
                "Police, military or security agent",
            ),
            IntimatePartner => pick(
                l,
                "Pareja o expareja",
                "Parceiro ou ex-parceiro",
                "Partner or former partner",
            ),
            ThirdPartyOrPimp => pick(
                l,
                "Proxeneta, dueño o encargado del local",
                "Cafetão, dono ou gerente do local",
                "Pimp, owner or manager of the venue",
            ),
            OrganizedCrime => pick(
                l,
                "Crimen organizado o pandilla",
                "Crime organizado ou gangue",
                "Organised crime or gang",
            ),
            Other => pick(l, "Otra persona", "Outra pessoa", "Someone else"),
            Unknown => pick(
                l,
                "No sé o prefiero no decir",
                "Não sei ou prefiro não dizer",
                "I don't know or prefer not to say",
            ),
        }
    }
}

impl Label for Need {
    fn label(&self, l: Language) -> &'static str {
        use Need::*;
        match self {
            LegalAdvice => pick(
                l,
                "Asesoría legal o hacer una denuncia",
                "Orientação jurídica ou fazer uma denúncia",
                "Legal advice or filing a complaint",
            ),
            HealthCare => pick(
                l,
                "Atención de salud",
                "Atendimento de saúde",
                "Health care",
            ),
            StiHivPep => pick(
                l,
                "Prueba o tratamiento de ITS/VIH, PEP o anticoncepción de emergencia",
                "Teste ou tratamento de IST/HIV, PEP ou contracepção de emergência",
                "STI/HIV testing or treatment, PEP or emergency contraception",
            ),
            PsychologicalSupport => pick(
                l,
                "Apoyo psicológico",
                "Apoio psicológico",
                "Psychological support",
            ),
            ProtectionShelter => pick(
                l,
                "Protección o un lugar seguro",
                "Proteção ou um lugar seguro",
                "Protection or a safe place",
            ),
            Children => pick(
                l,
                "Ayuda con mis hijas o hijos",
                "Ajuda com minhas filhas ou filhos",
                "Help with my children",
            ),
            MigrationStatus => pick(
                l,
                "Situación migratoria o documentos",
                "Situação migratória ou documentos",
                "Migration status or documents",
            ),
            Other => pick(l, "Otra cosa", "Outra coisa", "Something else"),
        }
    }
}

impl Label for CaseStatus {
    fn label(&self, l: Language) -> &'static str {
        use CaseStatus::*;
        match self {
            Received => pick(l, "Recibido", "Recebido", "Received"),
            InProgress => pick(l, "En curso", "Em andamento", "In progress"),
            Referred => pick(
                l,
                "Derivado a otra entidad",
                "Encaminhado a outra entidade",
                "Referred to another office",
            ),
            Closed => pick(l, "Cerrado", "Encerrado", "Closed"),
        }
    }
}

impl Label for AttachmentKind {
    fn label(&self, l: Language) -> &'static str {
        use AttachmentKind::*;
        match self {
            Photo => pick(l, "Foto", "Foto", "Photo"),
            Audio => pick(l, "Audio", "Áudio", "Audio"),
            Video => pick(l, "Video", "Vídeo", "Video"),
            Document => pick(l, "Documento", "Documento", "Document"),
        }
    }
}

impl Label for Language {
    fn label(&self, _: Language) -> &'static str {
        // Each language is named in itself, so a person finds her own.
        match self {
            Language::Es => "Español",
            Language::Pt => "Português",
            Language::En => "English",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_exists_and_differs_where_languages_do() {
        for l in [Language::Es, Language::Pt, Language::En] {
            assert!(!ViolenceKind::Sexual.label(l).is_empty());
            assert!(!AggressorKind::PoliceOrSecurity.label(l).is_empty());
            assert!(!Need::StiHivPep.label(l).is_empty());
            assert!(!CaseStatus::Referred.label(l).is_empty());
        }
        assert_ne!(
            Need::LegalAdvice.label(Language::Es),
            Need::LegalAdvice.label(Language::Pt)
        );
        assert_eq!(Language::Pt.label(Language::En), "Português");
    }
}
