//! Statistics at the terminal: a focal point classifies its cases, reads its
//! own monthly tables and publishes a month; the coordinator fetches what
//! the offices published and reads the regional picture (table, CSV, or an
//! HTML page with charts).

use std::fmt::Write as _;
use std::path::Path;

use amparo_core::stats::picture::{Count, Picture};
use amparo_core::stats::{Exclusion, MonthStats, months, setting_key};
use amparo_core::store::Profile;
use amparo_protocol::i18n::Label;
use amparo_protocol::payload::{AgeBand, AggressorKind, Language, PlaceSetting};
use amparo_protocol::statistics::{Dimension, GbvContext, GbvType, Month, ReportDelay, RowKey};
use serde_json::json;

use crate::ctx::{CliResult, Ctx, hex, now, relay_client, write_file};

/// The label of column `c` of `dim` in `lang`.
pub fn column_label(dim: Dimension, c: usize, lang: Language) -> String {
    let unknown = match lang {
        Language::Es => "No consta",
        Language::Pt => "Não consta",
        Language::En => "Not known",
    };
    let label = match dim {
        Dimension::GbvType => GbvType::ALL.get(c).map(|t| t.label(lang)),
        Dimension::Aggressor => AggressorKind::ALL.get(c).map(|a| a.label(lang)).or((c
            == AggressorKind::ALL.len())
        .then_some(match lang {
            Language::Es => "Varios",
            Language::Pt => "Vários",
            Language::En => "Several",
        })),
        Dimension::AgeBand => AgeBand::ALL.get(c).map(|a| a.label(lang)),
        Dimension::ReportDelay => ReportDelay::ALL.get(c).map(|d| d.label(lang)),
    };
    label.unwrap_or(unknown).to_string()
}

fn dimension_label(dim: Dimension, lang: Language) -> &'static str {
    let (es, pt, en) = match dim {
        Dimension::GbvType => ("Tipo (GBVIMS)", "Tipo (GBVIMS)", "Type (GBVIMS)"),
        Dimension::Aggressor => ("Agresor", "Agressor", "Aggressor"),
        Dimension::AgeBand => ("Edad", "Idade", "Age"),
        Dimension::ReportDelay => (
            "Tiempo hasta el reporte",
            "Tempo até o relato",
            "Time to report",
        ),
    };
    match lang {
        Language::Es => es,
        Language::Pt => pt,
        Language::En => en,
    }
}

/// A row's place, as people read it.
pub fn place(key: &RowKey, lang: Language) -> String {
    let region = key.region.clone().unwrap_or_else(|| {
        match lang {
            Language::Es => "Otros lugares",
            Language::Pt => "Outros lugares",
            Language::En => "Other places",
        }
        .to_string()
    });
    match key.setting {
        Some(s) => format!("{region} · {}", s.label(lang)),
        None => region,
    }
}

fn exclusion_label(e: Exclusion, lang: Language) -> &'static str {
    let (es, pt, en) = match e {
        Exclusion::NoConsent => (
            "sin consentimiento para contarlo",
            "sem consentimento para contá-lo",
            "no consent to count it",
        ),
        Exclusion::ReportedElsewhere => (
            "reportado también en otra organización",
            "relatado também em outra organização",
            "also reported to another organisation",
        ),
        Exclusion::Referred => (
            "llegó derivado (lo cuenta quien lo derivó)",
            "chegou encaminhado (conta quem encaminhou)",
            "came by referral (the referring office counts it)",
        ),
        Exclusion::Unclassified => (
            "sin tipo GBVIMS todavía: clasifíquelo (`amparo focal classify`)",
            "sem tipo GBVIMS ainda: classifique-o (`amparo focal classify`)",
            "no GBVIMS type yet: classify it (`amparo focal classify`)",
        ),
    };
    match lang {
        Language::Es => es,
        Language::Pt => pt,
        Language::En => en,
    }
}

/// `amparo focal classify`.
pub fn classify(
    ctx: &Ctx,
    p: &Profile,
    id: [u8; 16],
    gbv: Option<GbvType>,
    context: &[GbvContext],
) -> CliResult {
    p.classify_case(&id, gbv, context)?;
    let what = gbv.map_or_else(
        || ctx.tr("sin clasificar", "sem classificação", "not classified"),
        |t| t.label(ctx.lang).to_string(),
    );
    let flags: Vec<&str> = context.iter().map(|c| c.label(ctx.lang)).collect();
    let human = if flags.is_empty() {
        what.clone()
    } else {
        format!("{what} ({})", flags.join(", "))
    };
    ctx.emit(
        format!("{} {}: {human}", ctx.tr("Caso", "Caso", "Case"), hex(&id)),
        json!({
            "case": hex(&id),
            "gbv_type": gbv.map(GbvType::key),
            "context": context.iter().map(|c| c.key()).collect::<Vec<_>>(),
        }),
    );
    Ok(())
}

/// `amparo focal stats`.
pub fn focal_stats(ctx: &Ctx, p: &Profile, month: Option<Month>, csv: bool) -> CliResult {
    let cases = p.cases(&amparo_core::focal::CaseFilter::default())?;
    let chosen: Vec<Month> = match month {
        Some(m) => vec![m],
        None => months(&cases),
    };
    let all: Vec<MonthStats> = chosen.iter().map(|m| MonthStats::of(&cases, *m)).collect();
    if csv {
        print!("{}", focal_csv(&all));
        return Ok(());
    }
    let l = ctx.lang;
    let mut out = String::new();
    if all.is_empty() {
        out.push_str(&ctx.tr("No hay casos.", "Não há casos.", "No cases."));
    }
    for s in &all {
        let _ = writeln!(
            out,
            "{}  —  {} {}, {} {}",
            s.month,
            s.cases,
            ctx.tr("casos", "casos", "cases"),
            s.counted,
            ctx.tr("contados", "contados", "counted"),
        );
        for (why, n) in &s.excluded {
            let _ = writeln!(
                out,
                "  {} {n}: {}",
                ctx.tr("no contados", "não contados", "not counted"),
                exclusion_label(*why, l)
            );
        }
        for (d, dim) in Dimension::ALL.iter().enumerate() {
            let _ = writeln!(out, "  {}", dimension_label(*dim, l));
            for row in &s.rows {
                let cells: Vec<String> = row
                    .cells
                    .get(d)
                    .into_iter()
                    .flatten()
                    .enumerate()
                    .filter(|(_, n)| **n > 0)
                    .map(|(c, n)| format!("{} {n}", column_label(*dim, c, l)))
                    .collect();
                let _ = writeln!(
                    out,
                    "    {:<28} {:>4}  {}",
                    place(&row.key, l),
                    row.total,
                    cells.join(" · ")
                );
            }
        }
        if !s.context.is_empty() {
            let flags: Vec<String> = s
                .context
                .iter()
                .map(|(f, n)| format!("{} {n}", f.label(l)))
                .collect();
            let _ = writeln!(
                out,
                "  {}: {}",
                ctx.tr("Contexto", "Contexto", "Context"),
                flags.join(" · ")
            );
        }
    }
    ctx.emit(out.trim_end(), json!({ "months": all }));
    Ok(())
}

fn focal_csv(all: &[MonthStats]) -> String {
    let mut out = String::from("month,region,setting,dimension,column,count\n");
    for s in all {
        for row in &s.rows {
            let region = csv_field(row.key.region.as_deref().unwrap_or(""));
            let setting = setting_key(row.key.setting);
            let _ = writeln!(out, "{},{region},{setting},total,,{}", s.month, row.total);
            for (d, dim) in Dimension::ALL.iter().enumerate() {
                for (c, n) in row.cells.get(d).into_iter().flatten().enumerate() {
                    let col = dim.columns().get(c).copied().unwrap_or("");
                    let _ = writeln!(
                        out,
                        "{},{region},{setting},{},{col},{n}",
                        s.month,
                        dim.key()
                    );
                }
            }
        }
        for (flag, n) in &s.context {
            let _ = writeln!(out, "{},,,context,{},{n}", s.month, flag.key());
        }
    }
    out
}

/// Quotes a CSV field when it needs it, and defuses a leading formula
/// character (a region typed as `=cmd|…` must not run in a spreadsheet).
fn csv_field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.to_string()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// `amparo focal publish-stats`.
pub fn publish(ctx: &Ctx, p: &Profile, month: Month) -> CliResult {
    let table = p.publish_month(month, now())?;
    let said = match table.total {
        Some(n) => ctx.tr(
            &format!("{n} incidentes contados"),
            &format!("{n} incidentes contados"),
            &format!("{n} incidents counted"),
        ),
        None => ctx.tr(
            "menos que el umbral: solo se dice eso",
            "menos que o limite: só se diz isso",
            "below the threshold: only that is said",
        ),
    };
    let hidden: usize = table
        .breakdowns
        .iter()
        .map(|b| b.cells.iter().filter(|c| c.is_none()).count())
        .sum();
    ctx.emit(
        ctx.tr(
            &format!("Estadísticas de {month} selladas para la coordinación ({said}; {hidden} celdas no compartidas); salen en la próxima sincronización. Un mes se publica una sola vez."),
            &format!("Estatísticas de {month} lacradas para a coordenação ({said}; {hidden} células não compartilhadas); saem na próxima sincronização. Um mês se publica uma só vez."),
            &format!("Statistics for {month} sealed to the coordinator ({said}; {hidden} cells not shared); they go at the next sync. A month is published once only."),
        ),
        json!({ "month": month, "table": table }),
    );
    Ok(())
}

/// `amparo focal aggregate`.
pub fn aggregate(ctx: &Ctx, p: &Profile, leave: bool) -> CliResult {
    if leave {
        let dropped = p.leave_statistics_sum()?;
        ctx.emit(
            ctx.tr(
                &format!("Esta oficina dejó la suma: se borraron las claves de {dropped} meses; sigue revelando las partes que guarda para las demás."),
                &format!("Este escritório saiu da soma: foram apagadas as chaves de {dropped} meses; continua revelando as partes que guarda para os demais."),
                &format!("This office left the sum: the keys of {dropped} months were deleted; it still reveals the shares it holds for the others."),
            ),
            json!({ "left": true, "months_dropped": dropped }),
        );
        return Ok(());
    }
    let keyed = p.prepare_aggregation(now())?;
    let answers = p.answer_aggregation(now())?;
    let mut text = String::new();
    if keyed > 0 {
        let _ = writeln!(
            text,
            "{}",
            ctx.tr(
                &format!("Claves de {keyed} meses hechas; sus partes van a las otras oficinas del directorio."),
                &format!("Chaves de {keyed} meses feitas; suas partes vão para os outros escritórios do diretório."),
                &format!("Keys for {keyed} months made; their shares go to the other offices of the directory."),
            )
        );
    }
    for r in p.aggregation_rounds()? {
        let state = match (&r.refused, r.sent, &r.revealed_for) {
            (Some(why), _, _) => ctx.tr(
                &format!("no participa: {why}"),
                &format!("não participa: {why}"),
                &format!("not taking part: {why}"),
            ),
            (None, _, Some(_)) => ctx.tr("partes reveladas", "partes reveladas", "shares revealed"),
            (None, true, None) => ctx.tr("mes enviado", "mês enviado", "month sent"),
            (None, false, None) => ctx.tr("en espera", "em espera", "waiting"),
        };
        let _ = writeln!(
            text,
            "{}  {state}  — {}: {}",
            r.month,
            ctx.tr("oficinas", "escritórios", "offices"),
            r.cohort.join(", ")
        );
    }
    let _ = write!(
        text,
        "{}",
        ctx.tr(
            &format!("{} meses enviados, {} respuestas con partes; salen en la próxima sincronización (`amparo focal sync`).", answers.masked.len(), answers.revealed.len()),
            &format!("{} meses enviados, {} respostas com partes; saem na próxima sincronização (`amparo focal sync`).", answers.masked.len(), answers.revealed.len()),
            &format!("{} months sent, {} answers with shares; they go at the next sync (`amparo focal sync`).", answers.masked.len(), answers.revealed.len()),
        )
    );
    ctx.emit(
        text,
        json!({
            "keyed_months": keyed,
            "masked": answers.masked,
            "revealed": answers.revealed,
            "refused": answers.refused.iter().map(|(m, why)| json!({ "month": m, "why": why })).collect::<Vec<_>>(),
        }),
    );
    Ok(())
}

/// `amparo coordinator round …`.
pub async fn round(ctx: &Ctx, p: &Profile, step: super::coordinator::RoundStep) -> CliResult {
    use super::coordinator::RoundStep;
    let send = |p: &Profile| relay_client(&p.settings()?);
    match step {
        RoundStep::Open { month } => {
            let round = p.open_round(month, now())?;
            p.send_coordinator_outbox(&send(p)?).await?;
            let ids: Vec<String> = round.cohort.iter().map(|m| m.office.clone()).collect();
            ctx.emit(
                ctx.tr(
                    &format!(
                        "Ronda de {month} abierta con {} oficinas: {}.",
                        ids.len(),
                        ids.join(", ")
                    ),
                    &format!(
                        "Rodada de {month} aberta com {} escritórios: {}.",
                        ids.len(),
                        ids.join(", ")
                    ),
                    &format!(
                        "Round of {month} opened with {} offices: {}.",
                        ids.len(),
                        ids.join(", ")
                    ),
                ),
                json!({ "month": month, "cohort": ids }),
            );
        }
        RoundStep::Close { month } => {
            let survivors = p.close_round(month, now())?;
            p.send_coordinator_outbox(&send(p)?).await?;
            ctx.emit(
                ctx.tr(
                    &format!("Ronda de {month} cerrada: se suman {} oficinas. La suma se hace cuando lleguen sus partes (`amparo coordinator stats --fetch`).", survivors.len()),
                    &format!("Rodada de {month} fechada: somam-se {} escritórios. A soma se faz quando chegarem as partes (`amparo coordinator stats --fetch`).", survivors.len()),
                    &format!("Round of {month} closed: {} offices are summed. The sum is made when their shares arrive (`amparo coordinator stats --fetch`).", survivors.len()),
                ),
                json!({ "month": month, "survivors": survivors }),
            );
        }
        RoundStep::Status => {
            let rounds = p.rounds()?;
            let mut text = String::new();
            if rounds.is_empty() {
                text.push_str(&ctx.tr(
                    "Ninguna ronda abierta.",
                    "Nenhuma rodada aberta.",
                    "No round opened.",
                ));
            }
            for r in &rounds {
                let _ = writeln!(
                    text,
                    "{}  {}/{} {}, {} {}{}",
                    r.month,
                    r.sent.len(),
                    r.cohort.len(),
                    ctx.tr("enviaron", "enviaram", "sent"),
                    r.answered,
                    ctx.tr("respuestas", "respostas", "answers"),
                    if let Some(why) = &r.failed {
                        ctx.tr(
                            &format!(" — sin suma: {why}"),
                            &format!(" — sem soma: {why}"),
                            &format!(" — no sum: {why}"),
                        )
                    } else if r.finished {
                        ctx.tr(" — suma hecha", " — soma feita", " — summed")
                    } else if r.survivors.is_some() {
                        ctx.tr(" — cerrada", " — fechada", " — closed")
                    } else {
                        String::new()
                    }
                );
            }
            ctx.emit(
                text.trim_end().to_string(),
                json!({ "rounds": rounds.iter().map(|r| json!({
                    "month": r.month, "cohort": r.cohort, "sent": r.sent,
                    "survivors": r.survivors, "answered": r.answered, "finished": r.finished,
                    "failed": r.failed,
                })).collect::<Vec<_>>() }),
            );
        }
    }
    Ok(())
}

/// `amparo coordinator stats`.
pub async fn coordinator_stats(
    ctx: &Ctx,
    p: &Profile,
    fetch: bool,
    csv: bool,
    html: Option<&Path>,
) -> CliResult {
    if fetch {
        let relay = relay_client(&p.settings()?)?;
        let got = p.fetch_statistics(&relay, now()).await?;
        ctx.note(ctx.tr(
            &format!("Recibidas: {} tablas nuevas, {} repetidas, {} descartadas (sin firma válida de un punto focal del directorio).", got.kept, got.duplicates, got.dropped),
            &format!("Recebidas: {} tabelas novas, {} repetidas, {} descartadas (sem assinatura válida de um ponto focal do diretório).", got.kept, got.duplicates, got.dropped),
            &format!("Received: {} new tables, {} repeated, {} dropped (no valid signature of a focal point of the directory).", got.kept, got.duplicates, got.dropped),
        ));
        if got.aggregation > 0 || !got.summed.is_empty() {
            let months: Vec<String> = got.summed.iter().map(ToString::to_string).collect();
            ctx.note(ctx.tr(
                &format!(
                    "Suma de estadísticas: {} mensajes de las oficinas; meses sumados: {}.",
                    got.aggregation,
                    months.join(", ")
                ),
                &format!(
                    "Soma de estatísticas: {} mensagens dos escritórios; meses somados: {}.",
                    got.aggregation,
                    months.join(", ")
                ),
                &format!(
                    "Statistics sum: {} messages from the offices; months summed: {}.",
                    got.aggregation,
                    months.join(", ")
                ),
            ));
        }
    }
    let picture = p.statistics_picture()?;
    if let Some(file) = html {
        write_file(file, picture_html(&picture, ctx.lang).as_bytes())?;
    }
    if csv {
        print!("{}", picture_csv(&picture));
        return Ok(());
    }
    ctx.emit(picture_text(ctx, &picture), json!({ "picture": picture }));
    Ok(())
}

fn picture_text(ctx: &Ctx, picture: &Picture) -> String {
    let l = ctx.lang;
    let mut out = String::new();
    if picture.months.is_empty() {
        out.push_str(&ctx.tr(
            "Todavía no llegó ninguna tabla: `amparo coordinator stats --fetch`.",
            "Ainda não chegou nenhuma tabela: `amparo coordinator stats --fetch`.",
            "No table has arrived yet: `amparo coordinator stats --fetch`.",
        ));
    }
    for m in &picture.months {
        let _ = writeln!(
            out,
            "{}  —  {} {} ({} {}), {} {}",
            m.month,
            m.tables,
            ctx.tr("tablas", "tabelas", "tables"),
            m.withheld,
            ctx.tr("bajo el umbral", "abaixo do limite", "below the threshold"),
            m.total,
            ctx.tr("incidentes", "incidentes", "incidents"),
        );
        for row in &m.rows {
            let _ = writeln!(out, "    {:<28} {:>5}", place(&row.key, l), row.total);
        }
        for (d, dim) in Dimension::ALL.iter().enumerate() {
            let cells: Vec<String> = m
                .column_totals
                .get(d)
                .into_iter()
                .flatten()
                .enumerate()
                .filter(|(_, c)| c.known > 0 || c.partial)
                .map(|(c, n)| format!("{} {n}", column_label(*dim, c, l)))
                .collect();
            let _ = writeln!(out, "  {}: {}", dimension_label(*dim, l), cells.join(" · "));
        }
    }
    let trends = picture.trends();
    if picture.months.len() > 1 && !trends.is_empty() {
        let _ = writeln!(
            out,
            "{}",
            ctx.tr(
                "Tendencia por lugar (mes a mes):",
                "Tendência por lugar (mês a mês):",
                "Trend by place (month by month):"
            )
        );
        for (key, series) in &trends {
            let s: Vec<String> = series.iter().map(u64::to_string).collect();
            let _ = writeln!(out, "    {:<28} {}", place(key, l), s.join(" → "));
        }
    }
    let _ = write!(
        out,
        "{}",
        ctx.tr(
            "≥ n: alguna oficina no compartió una parte (cifra pequeña). Ninguna cifra dice qué oficina la aportó.",
            "≥ n: algum escritório não compartilhou uma parte (número pequeno). Nenhum número diz qual escritório o informou.",
            "≥ n: some office did not share a part (a small count). No figure says which office it came from.",
        )
    );
    out
}

fn picture_csv(picture: &Picture) -> String {
    let mut out = String::from("month,region,setting,dimension,column,count,at_least\n");
    let flag = |c: &Count| if c.partial { "yes" } else { "no" };
    for m in &picture.months {
        for row in &m.rows {
            let region = csv_field(row.key.region.as_deref().unwrap_or(""));
            let setting = setting_key(row.key.setting);
            let _ = writeln!(
                out,
                "{},{region},{setting},total,,{},no",
                m.month, row.total
            );
            for (d, dim) in Dimension::ALL.iter().enumerate() {
                for (c, n) in row.cells.get(d).into_iter().flatten().enumerate() {
                    let col = dim.columns().get(c).copied().unwrap_or("");
                    let _ = writeln!(
                        out,
                        "{},{region},{setting},{},{col},{},{}",
                        m.month,
                        dim.key(),
                        n.known,
                        flag(n)
                    );
                }
            }
        }
    }
    out
}

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Horizontal bars as inline SVG, labelled, with the numbers as text too
/// (a chart that a screen reader and a printer both read).
fn bars(title: &str, items: &[(String, u64, bool)]) -> String {
    let max = items.iter().map(|(_, n, _)| *n).max().unwrap_or(0).max(1);
    let row_h = 22;
    let height = row_h * items.len().max(1) + 8;
    let mut svg = format!(
        "<svg role=\"img\" aria-label=\"{t}\" width=\"640\" height=\"{height}\" viewBox=\"0 0 640 {height}\"><title>{t}</title>",
        t = esc(title)
    );
    for (i, (label, n, partial)) in items.iter().enumerate() {
        let y = 4 + i * row_h;
        let w = (u128::from(*n) * 360 / u128::from(max)) as u64;
        let mark = if *partial { "≥" } else { "" };
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{ty}\" font-size=\"12\">{l}</text><rect x=\"230\" y=\"{y}\" width=\"{w}\" height=\"16\" fill=\"#7b3f8c\"/><text x=\"{tx}\" y=\"{ty}\" font-size=\"12\">{mark}{n}</text>",
            ty = y + 13,
            l = esc(label),
            tx = 236 + w,
        );
    }
    svg.push_str("</svg>");
    svg
}

fn picture_html(picture: &Picture, lang: Language) -> String {
    let (title, trend, note) = match lang {
        Language::Es => (
            "Panorama regional de violencias",
            "Incidentes por lugar y mes",
            "Solo casos cuyas sobrevivientes aceptaron ser contadas, una vez cada uno. ≥ n: alguna oficina no compartió una cifra pequeña. Ninguna cifra dice qué oficina la aportó.",
        ),
        Language::Pt => (
            "Panorama regional das violências",
            "Incidentes por lugar e mês",
            "Só casos cujas sobreviventes aceitaram ser contadas, uma vez cada. ≥ n: algum escritório não compartilhou um número pequeno. Nenhum número diz qual escritório o informou.",
        ),
        Language::En => (
            "Regional picture of violence",
            "Incidents by place and month",
            "Only cases whose survivors agreed to be counted, each once. ≥ n: some office did not share a small count. No figure says which office it came from.",
        ),
    };
    let code = match lang {
        Language::Es => "es",
        Language::Pt => "pt",
        Language::En => "en",
    };
    let mut body = format!(
        "<!doctype html><html lang=\"{code}\"><head><meta charset=\"utf-8\"><title>{title}</title><style>body{{font-family:sans-serif;max-width:60rem;margin:2rem auto;color:#222}}table{{border-collapse:collapse;margin:1rem 0}}td,th{{border:1px solid #bbb;padding:.2rem .5rem;text-align:right}}th:first-child,td:first-child{{text-align:left}}</style></head><body><h1>{title}</h1><p>{note}</p>"
    );
    let _ = write!(body, "<h2>{trend}</h2><table><tr><th></th>");
    for m in &picture.months {
        let _ = write!(body, "<th>{}</th>", m.month);
    }
    body.push_str("</tr>");
    for (key, series) in picture.trends() {
        let _ = write!(body, "<tr><td>{}</td>", esc(&place(&key, lang)));
        for n in series {
            let _ = write!(body, "<td>{n}</td>");
        }
        body.push_str("</tr>");
    }
    body.push_str("</table>");
    let monthly: Vec<(String, u64, bool)> = picture
        .months
        .iter()
        .map(|m| (m.month.to_string(), m.total, false))
        .collect();
    body.push_str(&bars(trend, &monthly));
    for m in picture.months.iter().rev() {
        let _ = write!(body, "<h2>{}</h2>", m.month);
        let places: Vec<(String, u64, bool)> = m
            .rows
            .iter()
            .map(|r| (place(&r.key, lang), r.total, false))
            .collect();
        body.push_str(&bars(&m.month.to_string(), &places));
        for (d, dim) in Dimension::ALL.iter().enumerate() {
            let items: Vec<(String, u64, bool)> = m
                .column_totals
                .get(d)
                .into_iter()
                .flatten()
                .enumerate()
                .map(|(c, n)| (column_label(*dim, c, lang), n.known, n.partial))
                .collect();
            let _ = write!(body, "<h3>{}</h3>", dimension_label(*dim, lang));
            body.push_str(&bars(
                &format!("{} {}", m.month, dimension_label(*dim, lang)),
                &items,
            ));
        }
    }
    body.push_str("</body></html>\n");
    body
}

/// Parses `YYYY-MM` for clap.
pub fn parse_month(text: &str) -> Result<Month, String> {
    Month::parse(text).map_err(|_| format!("{text}: write the month as YYYY-MM (e.g. 2026-10)"))
}

/// Parses a GBVIMS type for clap (`rape`, `sexual-assault`, …).
pub fn parse_gbv(text: &str) -> Result<GbvType, String> {
    super::parse_enum::<GbvType>(text)
}

/// Parses a context flag for clap.
pub fn parse_context(text: &str) -> Result<GbvContext, String> {
    super::parse_enum::<GbvContext>(text)
}

/// Parses a kind of place for clap.
pub fn parse_setting(text: &str) -> Result<PlaceSetting, String> {
    super::parse_enum::<PlaceSetting>(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("PE-LIM"), "PE-LIM");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("=cmd|' /C calc'!A0"), "'=cmd|' /C calc'!A0");
        assert_eq!(csv_field("say \"hi\", ok"), "\"say \"\"hi\"\", ok\"");
    }

    #[test]
    fn every_column_has_a_label_in_every_language() {
        for lang in Language::ALL {
            for dim in Dimension::ALL {
                for c in 0..dim.columns().len() {
                    assert!(!column_label(dim, c, lang).is_empty());
                }
            }
        }
        assert_eq!(
            column_label(Dimension::Aggressor, 7, Language::En),
            "Several"
        );
        assert_eq!(
            column_label(Dimension::AgeBand, 3, Language::En),
            "Not known"
        );
    }
}
