//! `amparo timer`: check-in timers (PROTOCOL.md §17) at the terminal. An
//! alert, sealed now to a focal point, that the relay releases if she
//! stops checking in — even if her phone is taken.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::json;

use super::focal::{held_directory, hour, minute, office};
use super::write::{attachment_kind, directory};
use crate::ctx::{CliError, CliResult, Ctx, hex, now, pick_id};
use amparo_core::drafts::DraftForm;
use amparo_core::timers::{TimerPhase, TimerStatus};

/// Check-in timers.
#[derive(Subcommand)]
pub enum TimerCmd {
    /// Set a timer: an alert for a focal point, sent only if you do not
    /// check in in time. / Poner un temporizador: una alerta que se envía
    /// solo si no hace check-in a tiempo. / Ativar um temporizador: um
    /// alerta enviado só se você não fizer check-in a tempo.
    Set {
        /// The focal point's id. / El id del punto focal. / O id do ponto focal.
        #[arg(long)]
        to: String,
        /// Hours until you check in, and between check-ins (1 to 672).
        /// / Horas hasta el check-in. / Horas até o check-in.
        #[arg(long)]
        every: u32,
        /// Hours of grace after a missed check-in before the alert goes (0
        /// to 72). / Horas de gracia. / Horas de tolerância.
        #[arg(long, default_value_t = 1)]
        grace: u32,
        /// What the alert says: where you are going, who you are meeting.
        /// / Qué dice la alerta: adónde va, con quién. / O que o alerta
        /// diz: aonde vai, com quem.
        #[arg(long, allow_hyphen_values = true)]
        text: String,
        /// A photo to attach (a car's plate), small enough for one
        /// envelope. / Una foto (la placa). / Uma foto (a placa).
        #[arg(long)]
        photo: Option<PathBuf>,
    },
    /// Your timers and when each check-in is due. / Sus temporizadores.
    /// / Seus temporizadores.
    List,
    /// Check in: the next check-in is due in the timer's hours from now.
    /// Sent at the next `amparo report sync`. / Hacer check-in. / Fazer check-in.
    CheckIn {
        /// The timer id (its first digits), if you have more than one.
        id: Option<String>,
    },
    /// Cancel a timer when you are safe: the alert is deleted at the relay.
    /// / Cancelar cuando esté a salvo. / Cancelar quando estiver segura.
    Cancel {
        /// The timer id (its first digits), if you have more than one.
        id: Option<String>,
    },
}

/// Runs a `timer` command.
pub async fn run(ctx: &Ctx, cmd: TimerCmd) -> CliResult {
    let p = ctx.open()?;
    match cmd {
        TimerCmd::Set {
            to,
            every,
            grace,
            text,
            photo,
        } => {
            let dir = directory(ctx, &p)?;
            let focal = dir
                .focal_point(to.trim())
                .filter(|f| f.is_valid_at(now()))
                .cloned()
                .ok_or_else(|| {
                    CliError::Message(ctx.tr(
                        &format!("No hay un punto focal vigente con el id {to}."),
                        &format!("Não há um ponto focal vigente com o id {to}."),
                        &format!("No focal point valid now has the id {to}."),
                    ))
                })?;
            let draft = p.create_draft(&DraftForm {
                text,
                language: Some(ctx.lang),
                ..DraftForm::default()
            })?;
            let set = (|| {
                if let Some(path) = &photo {
                    let (kind, mime) = attachment_kind(path);
                    p.add_attachment_file(&draft, kind, mime, path)?;
                }
                p.set_timer(&draft, &focal, every, grace, now())
            })();
            let id = match set {
                Ok(id) => id,
                Err(e) => {
                    // Nothing of a timer that was not set stays behind.
                    let _ = p.delete_draft(&draft);
                    return Err(e.into());
                }
            };
            let t = timer(&p, &id)?;
            let name = focal.name.get(ctx.lang);
            ctx.emit(
                ctx.tr(
                    &format!(
                        "Temporizador puesto ({}). Haga check-in antes de {}: si no, la alerta sale para {name} a partir de {}. La alerta queda sellada en el teléfono y sale al relay en la próxima sincronización (`amparo report sync`); desde entonces sale aunque le quiten el teléfono. Si la obligan a abrir la app con su PIN de coacción, el check-in allí se ve igual pero no aplaza la alerta.",
                        short(&id),
                        minute(t.next_due.0),
                        hour(t.release_hour)
                    ),
                    &format!(
                        "Temporizador ativado ({}). Faça check-in antes de {}: senão, o alerta sai para {name} a partir de {}. O alerta fica lacrado no telefone e vai ao relay na próxima sincronização (`amparo report sync`); a partir daí sai mesmo que tirem o seu telefone. Se a obrigarem a abrir o app com o PIN de coação, o check-in ali parece igual mas não adia o alerta.",
                        short(&id),
                        minute(t.next_due.0),
                        hour(t.release_hour)
                    ),
                    &format!(
                        "Timer set ({}). Check in before {}: otherwise the alert goes to {name} from {}. The alert is sealed on the phone and goes to the relay at the next sync (`amparo report sync`); from then on it goes even if your phone is taken. If you are made to open the app with your duress PIN, checking in there looks the same but does not postpone the alert.",
                        short(&id),
                        minute(t.next_due.0),
                        hour(t.release_hour)
                    ),
                ),
                status_json(&t),
            );
            Ok(())
        }
        TimerCmd::List => {
            let timers = p.timers()?;
            let dir = held_directory(&p);
            let mut lines = Vec::new();
            for t in &timers {
                let to = office(ctx, dir.as_ref(), &t.focal_point);
                lines.push(match t.phase {
                    TimerPhase::Active => ctx.tr(
                        &format!(
                            "{}  para {to}: check-in antes de {}; la alerta sale a partir de {}{}",
                            short(&t.id),
                            minute(t.next_due.0),
                            hour(t.release_hour),
                            waiting(ctx, t)
                        ),
                        &format!(
                            "{}  para {to}: check-in antes de {}; o alerta sai a partir de {}{}",
                            short(&t.id),
                            minute(t.next_due.0),
                            hour(t.release_hour),
                            waiting(ctx, t)
                        ),
                        &format!(
                            "{}  for {to}: check in before {}; the alert goes from {}{}",
                            short(&t.id),
                            minute(t.next_due.0),
                            hour(t.release_hour),
                            waiting(ctx, t)
                        ),
                    ),
                    TimerPhase::Cancelling => ctx.tr(
                        &format!("{}  para {to}: cancelado; se avisa al relay en la próxima sincronización", short(&t.id)),
                        &format!("{}  para {to}: cancelado; o relay é avisado na próxima sincronização", short(&t.id)),
                        &format!("{}  for {to}: cancelled; the relay is told at the next sync", short(&t.id)),
                    ),
                    TimerPhase::Released => ctx.tr(
                        &format!("{}  para {to}: la alerta salió", short(&t.id)),
                        &format!("{}  para {to}: o alerta saiu", short(&t.id)),
                        &format!("{}  for {to}: the alert went", short(&t.id)),
                    ),
                });
            }
            if timers.is_empty() {
                lines.push(ctx.tr(
                    "No tiene temporizadores.",
                    "Você não tem temporizadores.",
                    "You have no timers.",
                ));
            }
            ctx.emit(
                lines.join("\n"),
                json!(timers.iter().map(status_json).collect::<Vec<_>>()),
            );
            Ok(())
        }
        TimerCmd::CheckIn { id } => {
            let id = running(ctx, &p, id.as_deref())?;
            let t = p.check_in(&id, now())?;
            ctx.emit(
                ctx.tr(
                    &format!(
                        "Check-in hecho. El próximo, antes de {}. Sale al relay en la próxima sincronización.",
                        minute(t.next_due.0)
                    ),
                    &format!(
                        "Check-in feito. O próximo, antes de {}. Vai ao relay na próxima sincronização.",
                        minute(t.next_due.0)
                    ),
                    &format!(
                        "Checked in. The next one before {}. It goes to the relay at the next sync.",
                        minute(t.next_due.0)
                    ),
                ),
                status_json(&t),
            );
            Ok(())
        }
        TimerCmd::Cancel { id } => {
            let id = running(ctx, &p, id.as_deref())?;
            p.cancel_timer(&id)?;
            ctx.emit(
                ctx.tr(
                    "Temporizador cancelado; la alerta se borra en el relay en la próxima sincronización.",
                    "Temporizador cancelado; o alerta é apagado no relay na próxima sincronização.",
                    "Timer cancelled; the alert is deleted at the relay at the next sync.",
                ),
                json!({ "cancelled": true, "timer": hex(&id) }),
            );
            Ok(())
        }
    }
}

fn timer(p: &amparo_core::store::Profile, id: &[u8; 16]) -> CliResult<TimerStatus> {
    p.timers()?
        .into_iter()
        .find(|t| t.id == *id)
        .ok_or(CliError::Core(amparo_core::CoreError::NotFound))
}

/// The running timer `prefix` names, or the only one.
fn running(
    ctx: &Ctx,
    p: &amparo_core::store::Profile,
    prefix: Option<&str>,
) -> CliResult<[u8; 16]> {
    let ids: Vec<[u8; 16]> = p
        .timers()?
        .iter()
        .filter(|t| t.phase == TimerPhase::Active)
        .map(|t| t.id)
        .collect();
    match (prefix, ids.as_slice()) {
        (Some(prefix), _) => pick_id(ctx, prefix, &ids),
        (None, [only]) => Ok(*only),
        (None, []) => Err(CliError::Message(ctx.tr(
            "No tiene temporizadores en marcha.",
            "Você não tem temporizadores ativos.",
            "You have no running timer.",
        ))),
        (None, _) => Err(CliError::Message(ctx.tr(
            "Tiene varios temporizadores: diga cuál (vea `amparo timer list`).",
            "Você tem vários temporizadores: diga qual (veja `amparo timer list`).",
            "You have several timers: say which (see `amparo timer list`).",
        ))),
    }
}

fn waiting(ctx: &Ctx, t: &TimerStatus) -> String {
    if t.waiting_to_send {
        ctx.tr(
            " (por enviar: sincronice)",
            " (a enviar: sincronize)",
            " (waiting to be sent: sync)",
        )
    } else {
        String::new()
    }
}

fn short(id: &[u8; 16]) -> String {
    hex(id).chars().take(8).collect()
}

fn status_json(t: &TimerStatus) -> serde_json::Value {
    json!({
        "timer": hex(&t.id),
        "focal_point": t.focal_point,
        "set_hour": t.set_hour,
        "every_hours": t.every_hours,
        "grace_hours": t.grace_hours,
        "next_due": t.next_due.0,
        "release_hour": t.release_hour,
        "held": t.held,
        "waiting_to_send": t.waiting_to_send,
        "phase": match t.phase {
            TimerPhase::Active => "active",
            TimerPhase::Cancelling => "cancelling",
            TimerPhase::Released => "released",
        },
    })
}
