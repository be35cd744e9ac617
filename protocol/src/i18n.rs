//! Labels for the report form in Spanish, Portuguese and English.
//!
//! Phone apps and the CLI show these, so every client words the form the
//! same way. The wording is plain and avoids legal jargon; it names police
//! violence and sex work without euphemism because the people using the form
//! do.

use crate::payload::{
    AgeBand, AggressorKind, AttachmentKind, CaseStatus, Language, Need, PlaceSetting, ViolenceKind,
};
use crate::statistics::{GbvContext, GbvType, ReportDelay};

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

impl Label for AgeBand {
    fn label(&self, l: Language) -> &'static str {
        match self {
            AgeBand::Child => pick(l, "0 a 11 años", "0 a 11 anos", "0 to 11 years old"),
            AgeBand::Adolescent => pick(l, "12 a 17 años", "12 a 17 anos", "12 to 17 years old"),
            AgeBand::Adult => pick(l, "18 años o más", "18 anos ou mais", "18 or older"),
        }
    }
}

impl Label for PlaceSetting {
    fn label(&self, l: Language) -> &'static str {
        match self {
            PlaceSetting::Border => pick(l, "Zona de frontera", "Zona de fronteira", "Border area"),
            PlaceSetting::Urban => pick(l, "Ciudad o pueblo", "Cidade", "City or town"),
            PlaceSetting::Rural => pick(
                l,
                "Campo, comunidad o zona rural",
                "Campo, comunidade ou zona rural",
                "Countryside, village or rural area",
            ),
        }
    }
}

impl Label for GbvType {
    fn label(&self, l: Language) -> &'static str {
        match self {
            GbvType::Rape => pick(l, "Violación", "Estupro", "Rape"),
            GbvType::SexualAssault => {
                pick(l, "Agresión sexual", "Agressão sexual", "Sexual assault")
            }
            GbvType::PhysicalAssault => {
                pick(l, "Agresión física", "Agressão física", "Physical assault")
            }
            GbvType::ForcedMarriage => pick(
                l,
                "Matrimonio forzado",
                "Casamento forçado",
                "Forced marriage",
            ),
            GbvType::DenialOfResources => pick(
                l,
                "Negación de recursos, oportunidades o servicios",
                "Negação de recursos, oportunidades ou serviços",
                "Denial of resources, opportunities or services",
            ),
            GbvType::PsychologicalAbuse => pick(
                l,
                "Abuso psicológico o emocional",
                "Abuso psicológico ou emocional",
                "Psychological or emotional abuse",
            ),
        }
    }
}

impl Label for GbvContext {
    fn label(&self, l: Language) -> &'static str {
        match self {
            GbvContext::IntimatePartnerViolence => pick(
                l,
                "Violencia de pareja",
                "Violência por parceiro íntimo",
                "Intimate partner violence",
            ),
            GbvContext::ChildSexualAbuse => pick(
                l,
                "Abuso sexual infantil",
                "Abuso sexual infantil",
                "Child sexual abuse",
            ),
            GbvContext::SexualExploitation => pick(
                l,
                "Posible explotación sexual",
                "Possível exploração sexual",
                "Possible sexual exploitation",
            ),
            GbvContext::Trafficking => pick(
                l,
                "Posible trata",
                "Possível tráfico",
                "Possible trafficking",
            ),
        }
    }
}

impl Label for ReportDelay {
    fn label(&self, l: Language) -> &'static str {
        match self {
            ReportDelay::Days0To3 => pick(l, "0 a 3 días", "0 a 3 dias", "0–3 days"),
            ReportDelay::Days4To5 => pick(l, "4 a 5 días", "4 a 5 dias", "4–5 days"),
            ReportDelay::Days6To14 => pick(l, "6 a 14 días", "6 a 14 dias", "6–14 days"),
            ReportDelay::Days15To30 => pick(
                l,
                "2 semanas a 1 mes",
                "2 semanas a 1 mês",
                "2 weeks to 1 month",
            ),
            ReportDelay::Over30Days => pick(l, "Más de 1 mes", "Mais de 1 mês", "Over 1 month"),
        }
    }
}

/// The question that asks her consent to be counted, in plain words: what
/// is counted, who sees it, and that no is the answer unless she says yes.
pub fn statistics_consent_question(l: Language) -> &'static str {
    pick(
        l,
        "¿Podemos contar este caso, sin tu nombre ni tus palabras, en las cifras que las \
         organizaciones comparten para mostrar la violencia que sufren las personas como tú? \
         Solo se cuentan números (tipo de violencia, región, edad aproximada), nunca lo que \
         escribiste. Si no respondes, no se cuenta.",
        "Podemos contar este caso, sem o seu nome nem as suas palavras, nos números que as \
         organizações compartilham para mostrar a violência que pessoas como você sofrem? \
         Só se contam números (tipo de violência, região, idade aproximada), nunca o que você \
         escreveu. Se não responder, não se conta.",
        "May we count this case, without your name or your words, in the figures that \
         organisations share to show the violence people like you face? Only numbers are \
         counted (kind of violence, region, age range), never what you wrote. If you do not \
         answer, it is not counted.",
    )
}

/// The question whether she already reported elsewhere (so that the
/// incident is not counted twice).
pub fn reported_elsewhere_question(l: Language) -> &'static str {
    pick(
        l,
        "¿Ya contaste esto a otra organización que ayuda a sobrevivientes?",
        "Você já contou isto a outra organização que ajuda sobreviventes?",
        "Have you already told another organisation that helps survivors about this?",
    )
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
