//! Admission tokens at the command line (PROTOCOL.md §14.2): a focal point
//! or a vouched facilitator asks the relay for them and hands them on; a
//! survivor takes them in; a focal point vouches for a facilitator. The
//! logic is amparo-core's; this only words it.

use amparo_core::store::Profile;
use amparo_core::tokens::Paid;
use amparo_protocol::b64;
use amparo_protocol::primitives::ed25519::VerifyingKey;
use serde_json::json;

use crate::ctx::{CliError, CliResult, Ctx, now, relay_client};

/// `… tokens [--ask N] [--give N]`: asks the relay for tokens, or writes a
/// text of tokens to hand on, or says how many are held.
pub async fn tokens(ctx: &Ctx, p: &Profile, ask: Option<usize>, give: Option<usize>) -> CliResult {
    if let Some(n) = give {
        let Some(text) = p.export_tokens(n)? else {
            return Err(CliError::AfterResult(ctx.tr(
                "No tiene fichas para entregar. Pídalas primero con --ask.",
                "Você não tem fichas para entregar. Peça-as primeiro com --ask.",
                "You hold no tokens to hand on. Ask for some first with --ask.",
            )));
        };
        let left = p.tokens()?.len();
        ctx.emit(
            format!(
                "{text}\n{}",
                ctx.tr(
                    &format!("Entregue este texto en persona (o como código QR): cada ficha deja pasar una denuncia cuando el relay está saturado, sin esfuerzo del teléfono. Le quedan {left}."),
                    &format!("Entregue este texto em pessoa (ou como código QR): cada ficha deixa passar uma denúncia quando o relay está sobrecarregado, sem esforço do telefone. Restam {left}."),
                    &format!("Hand this text on in person (or as a QR code): each token lets one report through when the relay is pressed, with no work on the phone. You have {left} left."),
                )
            ),
            json!({ "tokens": text, "left": left }),
        );
        return Ok(());
    }
    if let Some(n) = ask {
        let settings = p.settings()?;
        let relay = relay_client(&settings)?;
        let keys = p.trusted_relay_keys()?;
        let added = p.request_tokens(&relay, &keys, n, now()).await?;
        let held = p.tokens()?.len();
        ctx.emit(
            ctx.tr(
                &format!("El relay firmó {added} fichas (sin saber cuáles son). Tiene {held}. Entréguelas con --give."),
                &format!("O relay assinou {added} fichas (sem saber quais são). Você tem {held}. Entregue-as com --give."),
                &format!("The relay signed {added} tokens (without knowing which they are). You hold {held}. Hand them on with --give."),
            ),
            json!({ "added": added, "held": held }),
        );
        return Ok(());
    }
    let held = p.tokens()?.len();
    ctx.emit(
        ctx.tr(
            &format!("Fichas de admisión guardadas: {held}."),
            &format!("Fichas de admissão guardadas: {held}."),
            &format!("Admission tokens held: {held}."),
        ),
        json!({ "held": held }),
    );
    Ok(())
}

/// `report tokens TEXT`: takes in tokens someone handed on.
pub fn take_in(ctx: &Ctx, p: &Profile, text: &str) -> CliResult {
    let added = p.import_tokens(text)?;
    let held = p.tokens()?.len();
    ctx.emit(
        ctx.tr(
            &format!("Fichas recibidas: {added} (tiene {held}). Si el relay está saturado, su teléfono usará una en vez de esperar."),
            &format!("Fichas recebidas: {added} (você tem {held}). Se o relay estiver sobrecarregado, seu telefone usará uma em vez de esperar."),
            &format!("Tokens taken in: {added} (you hold {held}). When the relay is pressed, your phone spends one instead of waiting."),
        ),
        json!({ "added": added, "held": held }),
    );
    Ok(())
}

/// `focal vouch KEY [--days N]`: a voucher for a facilitator's key.
pub fn vouch(ctx: &Ctx, p: &Profile, key: &str, days: u64) -> CliResult {
    let key = VerifyingKey(
        b64::decode_array::<32>(key.trim(), "facilitator key").map_err(|_| {
            CliError::AfterResult(ctx.tr(
                "Esa no es la clave de una facilitadora (la que muestra `amparo carry key`).",
                "Essa não é a chave de uma facilitadora (a que mostra `amparo carry key`).",
                "That is not a facilitator's key (the one `amparo carry key` shows).",
            ))
        })?,
    );
    let v = p.vouch(&key, days, now())?;
    let text = v.to_header();
    ctx.emit(
        format!(
            "{text}\n{}",
            ctx.tr(
                &format!("Aval por {days} días. Entrégueselo en persona; con él podrá pedir fichas al relay. No aparece en el directorio."),
                &format!("Aval por {days} dias. Entregue-o em pessoa; com ele ela poderá pedir fichas ao relay. Não aparece no diretório."),
                &format!("Voucher for {days} days. Hand it over in person; with it she can ask the relay for tokens. It appears in no directory."),
            )
        ),
        json!({ "voucher": text, "valid_until": v.valid_until.0 }),
    );
    Ok(())
}

/// `carry key`: this phone's key for a voucher.
pub fn carry_key(ctx: &Ctx, p: &Profile) -> CliResult {
    let key = b64::encode(p.carry_public_key()?.as_bytes());
    ctx.emit(
        format!(
            "{key}\n{}",
            ctx.tr(
                "Muestre esta clave a un punto focal que la conozca en persona: con `amparo focal vouch` le dará un aval para pedir fichas.",
                "Mostre esta chave a um ponto focal que a conheça em pessoa: com `amparo focal vouch` ele lhe dará um aval para pedir fichas.",
                "Show this key to a focal point who knows you in person: with `amparo focal vouch` they give you a voucher to ask for tokens.",
            )
        ),
        json!({ "key": key }),
    );
    Ok(())
}

/// `carry voucher TEXT`: keeps a voucher for this phone's key.
pub fn keep_voucher(ctx: &Ctx, p: &Profile, text: &str) -> CliResult {
    let v = p.set_voucher(text, now())?;
    let days = v.valid_until.0.saturating_sub(now().0) / 86_400;
    ctx.emit(
        ctx.tr(
            &format!("Aval guardado: vale {days} días más. Pida fichas con `amparo carry tokens --ask N`."),
            &format!("Aval guardado: vale mais {days} dias. Peça fichas com `amparo carry tokens --ask N`."),
            &format!("Voucher kept: good for {days} more days. Ask for tokens with `amparo carry tokens --ask N`."),
        ),
        json!({ "valid_until": v.valid_until.0 }),
    );
    Ok(())
}

/// A line on what paying for admission cost in a sync, if anything.
pub fn paid_note(ctx: &Ctx, paid: &Paid) {
    if paid.tokens_used > 0 {
        let n = paid.tokens_used;
        ctx.note(ctx.tr(
            &format!("El relay estaba saturado: se usaron {n} fichas de admisión."),
            &format!("O relay estava sobrecarregado: foram usadas {n} fichas de admissão."),
            &format!("The relay was pressed: {n} admission tokens were spent."),
        ));
    }
    if paid.worked > 0 {
        let e = paid.max_effort;
        ctx.note(ctx.tr(
            &format!("El relay estaba saturado: el teléfono hizo el trabajo de admisión (esfuerzo {e})."),
            &format!("O relay estava sobrecarregado: o telefone fez o trabalho de admissão (esforço {e})."),
            &format!("The relay was pressed: the phone did the admission work (effort {e})."),
        ));
    }
    if paid.waiting > 0 {
        ctx.note(ctx.tr(
            "El relay pide más trabajo del que un teléfono hace: lo pendiente espera en este teléfono, sellado, hasta que el relay se calme.",
            "O relay pede mais trabalho do que um telefone faz: o pendente espera neste telefone, lacrado, até o relay se acalmar.",
            "The relay asks more work than a phone does: what is waiting stays on this phone, sealed, until the relay calms down.",
        ));
    }
}

/// The JSON of what paying cost.
pub fn paid_json(paid: &Paid) -> serde_json::Value {
    json!({
        "tokens_used": paid.tokens_used,
        "worked": paid.worked,
        "max_effort": paid.max_effort,
        "waiting_for_relay": paid.waiting,
    })
}
