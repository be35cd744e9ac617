//! The desk's routes. Each reads what it shows from the core (through the
//! open profile and its case index) and renders a page; each change goes
//! through the core and answers with a redirect (so a reload does not
//! repeat it). [`crate::guard`] has already checked the session, the
//! origin and the CSRF token.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, ContentDisposition, DispositionParam, DispositionType};
use actix_web::{HttpRequest, HttpResponse, web};
use amparo_core::CoreError;
use amparo_core::coordinator::format_date;
use amparo_core::directory::region_name;
use amparo_core::focal::{
    Case, CaseEventKind, CaseQuery, CaseSort, CaseStage, CaseSummary, RejectReason,
};
use amparo_core::stats::{self, Exclusion, MonthStats};
use amparo_core::store::{Profile, system_now};
use amparo_protocol::b64;
use amparo_protocol::i18n::Label;
use amparo_protocol::payload::{
    AgeBand, AggressorKind, AttachmentKind, CaseStatus, Language, Need, ViolenceKind,
};
use amparo_protocol::statistics::{
    Dimension, GbvContext, GbvType, Month, MonthTable, ReportDelay, RowKey,
};
use base64::Engine as _;
use serde::Deserialize;
use zeroize::Zeroize;

use crate::pages::*;
use crate::state::{self, Desk, Open};
use crate::words::{Words, from_accept_language, month_name, service_kind, words};

/// Cases on one page of the table.
pub const PAGE_SIZE: usize = 50;

type Data = web::Data<Desk>;

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(home))
        .route("/open", web::get().to(open_session))
        .route("/assets/desk.css", web::get().to(css))
        .route("/assets/desk.js", web::get().to(js))
        .route("/unlock", web::get().to(unlock_page))
        .route("/unlock", web::post().to(unlock))
        .route("/lock", web::post().to(lock))
        .route("/lang", web::post().to(set_lang))
        .route("/cases", web::get().to(cases))
        .route("/case/{id}", web::get().to(case))
        .route("/case/{id}/attachment/{n}", web::get().to(attachment))
        .route("/case/{id}/export", web::get().to(export))
        .route("/case/{id}/reply", web::post().to(reply))
        .route("/case/{id}/status", web::post().to(status))
        .route("/case/{id}/note", web::post().to(note))
        .route("/case/{id}/stage", web::post().to(stage))
        .route("/case/{id}/star", web::post().to(star))
        .route("/case/{id}/refer", web::post().to(refer))
        .route("/case/{id}/classify", web::post().to(classify))
        .route("/stats", web::get().to(stats_page))
        .route("/stats/publish", web::post().to(publish))
        .route("/stats/aggregate", web::post().to(aggregate))
        .route("/sync", web::get().to(sync_page))
        .route("/sync", web::post().to(sync_start))
        .route("/sync/status", web::get().to(sync_status))
        .route("/rejected", web::get().to(rejected))
        .route("/rejected/clear", web::post().to(rejected_clear))
        .route("/directory", web::get().to(directory));
}

fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to.to_string()))
        .finish()
}

/// The page's language: chosen in the session, else the profile's, else
/// the browser's.
fn language(desk: &Desk, req: &HttpRequest) -> Language {
    let inner = desk.inner();
    inner
        .session
        .as_ref()
        .and_then(|s| s.lang)
        .or_else(|| inner.open.as_ref().and_then(|o| o.language))
        .unwrap_or_else(|| {
            from_accept_language(
                req.headers()
                    .get(header::ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok()),
            )
        })
}

fn chrome(desk: &Desk, req: &HttpRequest, nav: &'static str, title: &str) -> Chrome {
    let lang = language(desk, req);
    let inner = desk.inner();
    let (unread, waiting) = match &inner.open {
        Some(o) => (o.index.unread(), o.waiting),
        None => (0, 0),
    };
    let w = words(lang);
    let flash = web::Query::<Done>::from_query(req.query_string())
        .ok()
        .and_then(|d| match d.done.as_deref() {
            Some("reply") => Some(w.done_reply),
            Some("status") => Some(w.done_status),
            Some("note") => Some(w.done_note),
            Some("stage") => Some(w.done_stage),
            Some("refer") => Some(w.done_refer),
            Some("cleared") => Some(w.done_cleared),
            Some("classify") => Some(w.done_classify),
            Some("publish") => Some(w.done_publish),
            Some("aggregate") => Some(w.done_aggregate),
            _ => None,
        })
        .map(str::to_string);
    Chrome {
        w,
        lang: code(lang),
        title: title.to_string(),
        csrf: inner
            .session
            .as_ref()
            .map(|s| s.csrf.to_string())
            .unwrap_or_default(),
        unlocked: inner.open.is_some(),
        nav,
        unread,
        waiting,
        flash,
        lock_after_secs: desk.config.lock_after.as_secs(),
        here: req.path().to_string(),
    }
}

#[derive(Deserialize)]
struct Done {
    done: Option<String>,
}

/// Runs `f` with the open profile and index; the guard let the request in
/// only while unlocked, but a lock may have come in between.
fn with_open<T>(desk: &Desk, f: impl FnOnce(&mut Open) -> T) -> Option<T> {
    desk.inner().open.as_mut().map(f)
}

fn failure(desk: &Desk, req: &HttpRequest, e: &CoreError) -> HttpResponse {
    failure_to(desk, req, e, "/cases")
}

/// What went wrong, with "back" going to `back`.
fn failure_to(desk: &Desk, req: &HttpRequest, e: &CoreError, back: &str) -> HttpResponse {
    let lang = language(desk, req);
    let w = words(lang);
    let (status, text) = match e {
        CoreError::NotFound => (StatusCode::NOT_FOUND, w.not_found.to_string()),
        CoreError::Invalid(_) => (StatusCode::BAD_REQUEST, e.to_string()),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let c = chrome(desk, req, "", w.error);
    render(
        status,
        &MessagePage {
            heading: w.error.to_string(),
            text,
            back: Some(back.to_string()),
            c,
        },
    )
}

fn locked() -> HttpResponse {
    see_other("/unlock")
}

async fn home() -> HttpResponse {
    see_other("/cases")
}

async fn css() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .body(include_str!("../assets/desk.css"))
}

async fn js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .body(include_str!("../assets/desk.js"))
}

#[derive(Deserialize)]
struct Launch {
    k: Option<String>,
}

/// The launch address: exchanges the per-launch secret for a session
/// cookie (a new session, locked).
async fn open_session(desk: Data, req: HttpRequest, q: web::Query<Launch>) -> HttpResponse {
    let lang = language(&desk, &req);
    if !q.k.as_deref().is_some_and(|k| desk.is_launch_secret(k)) {
        return bare(StatusCode::FORBIDDEN, lang, words(lang).locked_out);
    }
    match desk.new_session() {
        Ok((id, _)) => HttpResponse::SeeOther()
            .insert_header((header::LOCATION, "/unlock"))
            .insert_header((
                header::SET_COOKIE,
                format!(
                    "{}={}; HttpOnly; SameSite=Strict; Path=/",
                    crate::guard::COOKIE,
                    id.as_str()
                ),
            ))
            .finish(),
        Err(_) => HttpResponse::InternalServerError().finish(),
    }
}

fn unlock_view(desk: &Desk, req: &HttpRequest, error: Option<String>) -> HttpResponse {
    let status = Profile::unlock_status(&desk.config.profile, system_now()).ok();
    let c = chrome(desk, req, "", words(language(desk, req)).unlock_title);
    let error = error.or_else(|| status.is_none().then(|| c.w.no_profile.to_string()));
    render(
        StatusCode::OK,
        &UnlockPage {
            error,
            failed: status.map_or(0, |s| s.failed_attempts),
            wait: status.map_or(0, |s| s.wait_seconds),
            wipe_after: status.map_or(0, |s| s.wipe_after),
            c,
        },
    )
}

async fn unlock_page(desk: Data, req: HttpRequest) -> HttpResponse {
    if desk.inner().open.is_some() {
        return see_other("/cases");
    }
    unlock_view(&desk, &req, None)
}

#[derive(Deserialize)]
struct PinForm {
    pin: String,
}

/// Opens the profile with the PIN (Argon2id, off the server's threads)
/// and reads every case into the index. The duress PIN opens the decoy,
/// as it does everywhere: the desk then shows what the decoy holds.
async fn unlock(desk: Data, req: HttpRequest, form: web::Form<PinForm>) -> HttpResponse {
    let mut pin = form.into_inner().pin;
    let dir = desk.config.profile.clone();
    let device = desk.config.device_key.clone();
    let opened = web::block(move || {
        let mut unlock = amparo_core::store::Unlock::now();
        unlock.device = device;
        let result = Profile::open_with(&dir, &pin, &unlock).and_then(|p| {
            let index = p.case_index()?;
            let language = p.settings()?.language;
            let waiting = p.outbox_len()?;
            Ok((p, index, language, waiting))
        });
        pin.zeroize();
        result
    })
    .await;
    let w = words(language(&desk, &req));
    let error = match opened {
        Ok(Ok((profile, index, language, waiting))) => {
            let mut inner = desk.inner();
            state::lock(&mut inner);
            inner.open = Some(Open {
                profile: Arc::new(profile),
                index,
                language,
                waiting,
            });
            inner.last_seen = std::time::Instant::now();
            return see_other("/cases");
        }
        Ok(Err(CoreError::WrongPin)) if !Profile::exists(&desk.config.profile) => w.wiped.into(),
        Ok(Err(CoreError::WrongPin)) => w.wrong_pin.into(),
        Ok(Err(CoreError::TooManyAttempts { .. })) => w.wait_before.into(),
        Ok(Err(CoreError::DeviceKeyNeeded)) => w.device_needed.into(),
        Ok(Err(CoreError::NoProfile)) => w.no_profile.into(),
        Ok(Err(e)) => e.to_string(),
        Err(_) => w.error.into(),
    };
    unlock_view(&desk, &req, Some(error))
}

async fn lock(desk: Data) -> HttpResponse {
    state::lock(&mut desk.inner());
    see_other("/unlock")
}

#[derive(Deserialize)]
struct LangForm {
    lang: String,
    back: Option<String>,
}

async fn set_lang(desk: Data, form: web::Form<LangForm>) -> HttpResponse {
    let lang = match form.lang.as_str() {
        "es" => Language::Es,
        "pt" => Language::Pt,
        "en" => Language::En,
        _ => return HttpResponse::BadRequest().finish(),
    };
    if let Some(s) = desk.inner().session.as_mut() {
        s.lang = Some(lang);
    }
    // Back to a page of this desk only (a path, never another site).
    let back = form
        .back
        .as_deref()
        .filter(|b| b.starts_with('/') && !b.starts_with("//") && !b.contains('\\'))
        .unwrap_or("/");
    see_other(back)
}

/// A time as the desk shows it: date, hour and minute (UTC).
pub fn when(secs: u64) -> String {
    format!(
        "{} {:02}:{:02}",
        format_date(secs),
        (secs / 3600) % 24,
        (secs / 60) % 60
    )
}

fn hour_text(h: u32) -> String {
    format!("{} {:02}h", format_date(u64::from(h) * 3600), h % 24)
}

fn hex(id: &[u8; 16]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_id(text: &str) -> Option<[u8; 16]> {
    if text.len() != 32 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn labels<T: Label>(items: &[T], lang: Language) -> String {
    items
        .iter()
        .map(|i| i.label(lang))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The wire name of an enum value (`legal_advice`).
fn wire<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn from_wire<T: serde::de::DeserializeOwned>(s: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
}

fn region_label(code: &str) -> String {
    match region_name(code) {
        Some(name) => format!("{name} ({code})"),
        None => code.to_string(),
    }
}

fn status_code(s: CaseStatus) -> u8 {
    match s {
        CaseStatus::Received => 0,
        CaseStatus::InProgress => 1,
        CaseStatus::Referred => 2,
        CaseStatus::Closed => 3,
    }
}

/// The cases page's query string.
#[derive(Deserialize, Default)]
struct CasesQuery {
    q: Option<String>,
    status: Option<String>,
    stage: Option<String>,
    region: Option<String>,
    violence: Option<String>,
    aggressor: Option<String>,
    need: Option<String>,
    language: Option<String>,
    from: Option<String>,
    to: Option<String>,
    unread: Option<String>,
    starred: Option<String>,
    sort: Option<String>,
    desc: Option<String>,
    page: Option<usize>,
}

fn nonempty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn options<T: Label + serde::Serialize + Copy>(
    all: &[T],
    chosen: Option<&str>,
    lang: Language,
) -> Vec<Opt> {
    all.iter()
        .map(|v| {
            let value = wire(v);
            Opt {
                selected: chosen == Some(value.as_str()),
                label: v.label(lang).to_string(),
                value,
            }
        })
        .collect()
}

const STATUSES: [CaseStatus; 4] = [
    CaseStatus::Received,
    CaseStatus::InProgress,
    CaseStatus::Referred,
    CaseStatus::Closed,
];

fn date_hour(text: &Option<String>) -> Option<u32> {
    let secs = amparo_core::coordinator::parse_date(nonempty(text)?)?;
    u32::try_from(secs / 3600).ok()
}

fn case_row(s: &CaseSummary, lang: Language) -> CaseRow {
    CaseRow {
        id: hex(&s.id),
        received: hour_text(s.reported_hour),
        region: s.region.as_deref().map(region_label).unwrap_or_default(),
        violence: labels(&s.violence, lang),
        aggressors: labels(&s.aggressors, lang),
        needs: labels(&s.needs, lang),
        language: s.language.label(lang).to_string(),
        status: s.status.label(lang).to_string(),
        status_code: status_code(s.status),
        stage: s.stage.label(lang).to_string(),
        attachments: s.attachments,
        unread: s.unread,
        starred: s.starred,
        alert: s.alert.is_some(),
    }
}

/// The cases: filtered, searched, sorted and paged in memory.
async fn cases(desk: Data, req: HttpRequest) -> HttpResponse {
    let q = web::Query::<CasesQuery>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default();
    let lang = language(&desk, &req);
    let w = words(lang);
    let page = q.page.unwrap_or(1).max(1);
    let query = CaseQuery {
        status: nonempty(&q.status).and_then(from_wire),
        stage: nonempty(&q.stage).and_then(from_wire),
        need: nonempty(&q.need).and_then(from_wire),
        violence: nonempty(&q.violence).and_then(from_wire),
        aggressor: nonempty(&q.aggressor).and_then(from_wire),
        region: nonempty(&q.region).map(str::to_string),
        language: nonempty(&q.language).and_then(from_wire),
        since_hour: date_hour(&q.from),
        // The "to" day is included: before the start of the next day.
        until_hour: date_hour(&q.to).map(|h| h.saturating_add(24)),
        unread_only: q.unread.is_some(),
        starred_only: q.starred.is_some(),
        text: nonempty(&q.q).map(str::to_string),
        sort: match q.sort.as_deref() {
            Some("activity") => CaseSort::Activity,
            Some("status") => CaseSort::Status,
            Some("region") => CaseSort::Region,
            _ => CaseSort::Received,
        },
        descending: q.desc.is_some(),
        offset: (page - 1).saturating_mul(PAGE_SIZE),
        limit: PAGE_SIZE,
    };
    let Some((result, regions)) = with_open(&desk, |o| (o.index.query(&query), o.index.regions()))
    else {
        return locked();
    };
    let sort_opts = [
        ("received", w.sort_received),
        ("activity", w.sort_activity),
        ("status", w.status),
        ("region", w.region),
    ];
    let selects = vec![
        Select {
            any: true,
            name: "status",
            label: w.status,
            options: options(&STATUSES, nonempty(&q.status), lang),
        },
        Select {
            any: true,
            name: "stage",
            label: w.stage,
            options: CaseStage::ALL
                .iter()
                .map(|s| {
                    let value = wire(s);
                    Opt {
                        selected: nonempty(&q.stage) == Some(value.as_str()),
                        label: s.label(lang).to_string(),
                        value,
                    }
                })
                .collect(),
        },
        Select {
            any: true,
            name: "region",
            label: w.region,
            options: regions
                .iter()
                .map(|r| Opt {
                    selected: nonempty(&q.region).is_some_and(|c| c.eq_ignore_ascii_case(r)),
                    label: region_label(r),
                    value: r.clone(),
                })
                .collect(),
        },
        Select {
            any: true,
            name: "violence",
            label: w.violence,
            options: options(&ViolenceKind::ALL, nonempty(&q.violence), lang),
        },
        Select {
            any: true,
            name: "aggressor",
            label: w.aggressor,
            options: options(&AggressorKind::ALL, nonempty(&q.aggressor), lang),
        },
        Select {
            any: true,
            name: "need",
            label: w.needs,
            options: options(&Need::ALL, nonempty(&q.need), lang),
        },
        Select {
            any: true,
            name: "language",
            label: w.language,
            options: options(&Language::ALL, nonempty(&q.language), lang),
        },
        Select {
            any: false,
            name: "sort",
            label: w.sort,
            options: sort_opts
                .iter()
                .map(|(v, l)| Opt {
                    value: (*v).into(),
                    label: (*l).into(),
                    selected: q.sort.as_deref() == Some(*v),
                })
                .collect(),
        },
    ];
    let pages = result.matching.div_ceil(PAGE_SIZE).max(1);
    let link = |n: usize| {
        let mut pairs: Vec<(String, String)> =
            web::Query::<Vec<(String, String)>>::from_query(req.query_string())
                .map(web::Query::into_inner)
                .unwrap_or_default()
                .into_iter()
                .filter(|(k, _)| k != "page")
                .collect();
        pairs.push(("page".into(), n.to_string()));
        let encoded: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        format!("/cases?{}", encoded.join("&"))
    };
    let c = chrome(&desk, &req, "cases", w.cases);
    render(
        StatusCode::OK,
        &CasesPage {
            f: FilterEcho {
                q: q.q.clone().unwrap_or_default(),
                from: q.from.clone().unwrap_or_default(),
                to: q.to.clone().unwrap_or_default(),
                unread: q.unread.is_some(),
                starred: q.starred.is_some(),
                desc: q.desc.is_some(),
            },
            selects,
            matching: result.matching,
            total: result.total,
            unread: result.unread,
            rows: result.cases.iter().map(|s| case_row(s, lang)).collect(),
            prev: (page > 1).then(|| link(page - 1)),
            next: (page < pages).then(|| link(page + 1)),
            page,
            pages,
            c,
        },
    )
}

/// Percent-encodes a query value.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn report_fields(case: &Case, w: &Words, lang: Language) -> Vec<(String, String)> {
    let r = &case.report;
    let mut out = Vec::new();
    let mut push = |k: &str, v: String| {
        if !v.is_empty() {
            out.push((k.to_string(), v));
        }
    };
    let mut violence = labels(&r.violence, lang);
    if let Some(o) = &r.violence_other {
        violence = format!("{violence} — {o}");
    }
    push(w.violence, violence);
    if let Some(d) = &r.when {
        let mut t = d.year.to_string();
        if let Some(m) = d.month {
            t = format!("{t}-{m:02}");
        }
        if let Some(day) = d.day {
            t = format!("{t}-{day:02}");
        }
        if d.approximate {
            t = format!("{t} ({})", w.approximate);
        }
        push(w.when, t);
    }
    let place: Vec<String> = [
        r.place.country.clone(),
        r.place.region.as_deref().map(region_label),
        r.place.detail.clone(),
    ]
    .into_iter()
    .flatten()
    .collect();
    push(w.place, place.join(" · "));
    let mut aggressors = labels(&r.aggressors, lang);
    if let Some(o) = &r.aggressor_other {
        aggressors = format!("{aggressors} — {o}");
    }
    push(w.aggressor, aggressors);
    push(w.needs, labels(&r.needs, lang));
    push(w.reply_in, r.language.label(lang).to_string());
    // What she said for statistics, said or not.
    let said = |v: Option<&str>| v.unwrap_or(w.not_said).to_string();
    push(w.stat_setting, said(r.place.setting.map(|s| s.label(lang))));
    push(w.stat_age, said(r.age_band.map(|a| a.label(lang))));
    push(
        w.stat_elsewhere,
        said(r.reported_elsewhere.map(|b| if b { w.yes } else { w.no })),
    );
    push(
        w.stat_consent,
        (if r.statistics_consent { w.yes } else { w.no }).to_string(),
    );
    if let Some(f) = &r.referral {
        push(w.referred_by, f.from_focal_point.clone());
        push(w.referral_note, f.note.clone());
    }
    if let Some(to) = &case.summary.referred_to {
        push(w.referred_to, to.clone());
    }
    out
}

fn is_inline_image(mime: &str) -> bool {
    // Never SVG: it can carry script.
    matches!(
        mime,
        "image/jpeg" | "image/png" | "image/webp" | "image/gif"
    )
}

fn is_inline_audio(mime: &str) -> bool {
    matches!(
        mime,
        "audio/mpeg" | "audio/mp4" | "audio/ogg" | "audio/webm" | "audio/wav" | "audio/aac"
    )
}

fn case_view(desk: &Desk, req: &HttpRequest, case: &Case, p: &Profile) -> CasePage {
    let lang = language(desk, req);
    let w = words(lang);
    let id = hex(&case.summary.id);
    let attachments = case
        .attachments
        .iter()
        .enumerate()
        .map(|(n, (a, data))| AttachmentView {
            kind: a.kind.label(lang).to_string(),
            mime: a.mime.clone(),
            size: a.size,
            sha256: a.sha256.iter().map(|b| format!("{b:02x}")).collect(),
            complete: data.is_some(),
            image: a.kind == AttachmentKind::Photo && is_inline_image(&a.mime),
            audio: a.kind == AttachmentKind::Audio && is_inline_audio(&a.mime),
            url: format!("/case/{id}/attachment/{n}"),
            inline: None,
        })
        .collect();
    let mut events = Vec::new();
    // Statuses and the office's stages, by time.
    let mut status_history: Vec<(u64, String)> = vec![(
        u64::from(case.summary.reported_hour) * 3600,
        CaseStatus::Received.label(lang).to_string(),
    )];
    status_history.extend(
        case.stages
            .iter()
            .map(|c| (c.at, format!("{}: {}", w.stage, c.stage.label(lang)))),
    );
    for e in &case.history {
        let at = when(e.at);
        match &e.kind {
            CaseEventKind::FromSurvivor { text, .. } => events.push(EventView {
                class: "her",
                who: w.from_her.into(),
                at,
                text: text.clone(),
            }),
            CaseEventKind::Reply { text } => events.push(EventView {
                class: "office",
                who: w.from_office.into(),
                at,
                text: text.clone(),
            }),
            CaseEventKind::Status { status, message } => {
                status_history.push((e.at, status.label(lang).to_string()));
                events.push(EventView {
                    class: "event",
                    who: format!("{}: {}", w.status_set, status.label(lang)),
                    at,
                    text: message.clone().unwrap_or_default(),
                });
            }
            CaseEventKind::Referred { to, note } => {
                status_history.push((e.at, format!("{} → {to}", CaseStatus::Referred.label(lang))));
                events.push(EventView {
                    class: "event",
                    who: format!("{} {to}", w.referred_to),
                    at,
                    text: note.clone(),
                });
            }
        }
    }
    let settings = p.settings().ok();
    let own = settings.as_ref().and_then(|s| s.focal_point_id.clone());
    let now = system_now();
    let mut targets: Vec<Opt> = settings
        .as_ref()
        .and_then(|s| s.coordinator().ok())
        .and_then(|c| p.directory(&c).ok().flatten())
        .map(|d| {
            d.focal_points
                .iter()
                .filter(|f| f.is_valid_at(now) && Some(&f.id) != own.as_ref())
                .map(|f| {
                    let serves_region = case
                        .report
                        .place
                        .region
                        .as_ref()
                        .is_some_and(|r| f.regions.iter().any(|fr| fr.eq_ignore_ascii_case(r)));
                    let serves_need = case.report.needs.iter().any(|n| f.categories.contains(n));
                    let fits = serves_region && serves_need;
                    Opt {
                        value: f.id.clone(),
                        label: format!(
                            "{} — {} ({}){}",
                            f.name.get(lang),
                            f.organization,
                            f.regions.join(", "),
                            if fits {
                                format!(" · {}", w.matches_case)
                            } else {
                                String::new()
                            }
                        ),
                        selected: fits,
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    // Those that fit her region and needs first.
    targets.sort_by_key(|o| !o.selected);
    if let Some(first) = targets.first_mut() {
        first.selected = true;
    }
    for t in targets.iter_mut().skip(1) {
        t.selected = false;
    }
    status_history.sort_by_key(|(at, _)| *at);
    let stages = CaseStage::ALL
        .iter()
        .map(|s| Opt {
            value: wire(s),
            label: s.label(lang).to_string(),
            selected: *s == case.summary.stage,
        })
        .collect();
    let statuses = [
        CaseStatus::Received,
        CaseStatus::InProgress,
        CaseStatus::Closed,
    ]
    .iter()
    .map(|s| Opt {
        value: wire(s),
        label: s.label(lang).to_string(),
        selected: *s == case.summary.status,
    })
    .collect();
    let s = &case.summary;
    let mut classification = s
        .gbv_type
        .map_or(w.not_classified, |t| t.label(lang))
        .to_string();
    if !s.context.is_empty() {
        classification = format!("{classification} · {}", labels(&s.context, lang));
    }
    let gbv_types = GbvType::ALL
        .iter()
        .map(|t| Opt {
            value: wire(t),
            label: t.label(lang).to_string(),
            selected: s.gbv_type == Some(*t),
        })
        .collect();
    let contexts = GbvContext::ALL
        .iter()
        .map(|f| Opt {
            value: wire(f),
            label: f.label(lang).to_string(),
            selected: s.context.contains(f),
        })
        .collect();
    let not_counted = match stats::counted(s) {
        Err(why) if why != Exclusion::Unclassified => Some(exclusion_text(why, w).to_string()),
        _ => None,
    };
    CasePage {
        classification,
        gbv_types,
        contexts,
        not_counted,
        c: chrome(
            desk,
            req,
            "cases",
            &format!("{} {}", w.case, id.get(..8).unwrap_or("")),
        ),
        short: id.get(..8).unwrap_or("").to_string(),
        status: case.summary.status.label(lang).to_string(),
        status_code: status_code(case.summary.status),
        received: hour_text(case.summary.reported_hour),
        region: case.summary.region.as_deref().map(region_label),
        fields: report_fields(case, w, lang),
        text: case.report.text.clone(),
        her_lang: code(case.report.language),
        attachments,
        events,
        starred: case.summary.starred,
        alert: case.summary.alert.map(|a| {
            vec![
                (w.alert_set.to_string(), hour_text(a.set_hour)),
                (w.alert_due.to_string(), hour_text(a.due_hour)),
                (w.alert_every.to_string(), a.every_hours.to_string()),
                (
                    w.alert_received.to_string(),
                    a.received_hour.map(hour_text).unwrap_or_default(),
                ),
            ]
        }),
        statuses,
        stages,
        status_history: status_history
            .into_iter()
            .map(|(at, what)| (when(at), what))
            .collect(),
        notes: case
            .notes
            .iter()
            .map(|n| (when(n.at), n.text.clone()))
            .collect(),
        targets,
        id,
    }
}

/// Reads a case (and marks it read).
fn read_case(desk: &Desk, id: &[u8; 16]) -> Option<Result<(Case, Arc<Profile>), CoreError>> {
    with_open(desk, |o| {
        let p = Arc::clone(&o.profile);
        let case = p.case(id)?;
        if case.summary.unread {
            p.mark_case_read(id)?;
            o.index.refresh(&p, id)?;
        }
        Ok((case, p))
    })
}

async fn case(desk: Data, req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    let Some(id) = parse_id(&path) else {
        return failure(&desk, &req, &CoreError::NotFound);
    };
    match read_case(&desk, &id) {
        None => locked(),
        Some(Err(e)) => failure(&desk, &req, &e),
        Some(Ok((case, p))) => render(StatusCode::OK, &case_view(&desk, &req, &case, &p)),
    }
}

#[derive(Deserialize)]
struct Download {
    download: Option<String>,
}

/// An attachment, from memory: images and audio the page shows are served
/// as what they are; everything else (and anything asked with
/// `download=1`) as a download of opaque bytes.
async fn attachment(
    desk: Data,
    req: HttpRequest,
    path: web::Path<(String, usize)>,
) -> HttpResponse {
    let (id, n) = path.into_inner();
    let Some(id) = parse_id(&id) else {
        return failure(&desk, &req, &CoreError::NotFound);
    };
    let Some(found) = with_open(&desk, |o| o.profile.case(&id)) else {
        return locked();
    };
    let case = match found {
        Ok(c) => c,
        Err(e) => return failure(&desk, &req, &e),
    };
    let Some((a, Some(data))) = case.attachments.into_iter().nth(n) else {
        return failure(&desk, &req, &CoreError::NotFound);
    };
    let shown = (a.kind == AttachmentKind::Photo && is_inline_image(&a.mime))
        || (a.kind == AttachmentKind::Audio && is_inline_audio(&a.mime));
    let download = web::Query::<Download>::from_query(req.query_string())
        .ok()
        .and_then(|d| d.into_inner().download)
        .is_some();
    let name = format!("amparo-{}-{}", hex(&id).get(..8).unwrap_or(""), n + 1);
    if shown && !download {
        HttpResponse::Ok()
            .content_type(a.mime.as_str())
            .insert_header(ContentDisposition {
                disposition: DispositionType::Inline,
                parameters: vec![],
            })
            .body(data)
    } else {
        HttpResponse::Ok()
            .content_type("application/octet-stream")
            .insert_header(ContentDisposition {
                disposition: DispositionType::Attachment,
                parameters: vec![DispositionParam::Filename(name)],
            })
            .body(data)
    }
}

/// The case as one HTML file to keep or print (her words, the form, the
/// attachments' hashes, photos inside, the conversation; not the internal
/// notes).
async fn export(desk: Data, req: HttpRequest, path: web::Path<String>) -> HttpResponse {
    let Some(id) = parse_id(&path) else {
        return failure(&desk, &req, &CoreError::NotFound);
    };
    let Some(found) = with_open(&desk, |o| {
        let p = Arc::clone(&o.profile);
        p.case(&id).map(|c| (c, p))
    }) else {
        return locked();
    };
    let (case, p) = match found {
        Ok(v) => v,
        Err(e) => return failure(&desk, &req, &e),
    };
    let lang = language(&desk, &req);
    let mut view = case_view(&desk, &req, &case, &p);
    for (shown, (a, data)) in view.attachments.iter_mut().zip(&case.attachments) {
        if let Some(data) = data
            && shown.image
        {
            shown.inline = Some(format!(
                "data:{};base64,{}",
                a.mime,
                base64::engine::general_purpose::STANDARD.encode(data)
            ));
        }
    }
    let page = ExportPage {
        w: words(lang),
        lang: code(lang),
        exported: when(system_now().0),
        office: p
            .settings()
            .ok()
            .and_then(|s| s.focal_point_id)
            .unwrap_or_default(),
        case: view,
    };
    let mut response = render(StatusCode::OK, &page);
    if let Ok(v) = header::HeaderValue::from_str(&format!(
        "attachment; filename=\"amparo-case-{}.html\"",
        hex(&id).get(..8).unwrap_or("")
    )) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

#[derive(Deserialize)]
struct TextForm {
    text: String,
}

/// Runs a change on a case, then reads it into the index again.
fn change(
    desk: &Desk,
    req: &HttpRequest,
    id: &str,
    done: &str,
    f: impl FnOnce(&Profile, &[u8; 16]) -> amparo_core::Result<()>,
) -> HttpResponse {
    let Some(id) = parse_id(id) else {
        return failure(desk, req, &CoreError::NotFound);
    };
    let result = with_open(desk, |o| {
        let p = Arc::clone(&o.profile);
        f(&p, &id)?;
        o.waiting = p.outbox_len()?;
        o.index.refresh(&p, &id)
    });
    match result {
        None => locked(),
        Some(Err(e)) => failure(desk, req, &e),
        Some(Ok(())) => see_other(&format!("/case/{}?done={done}", hex(&id))),
    }
}

async fn reply(
    desk: Data,
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<TextForm>,
) -> HttpResponse {
    let text = form.text.trim();
    if text.is_empty() {
        return failure(&desk, &req, &CoreError::Invalid("a reply needs some text"));
    }
    change(&desk, &req, &path, "reply", |p, id| {
        p.reply_to_case(id, text, system_now())
    })
}

#[derive(Deserialize)]
struct StatusForm {
    status: String,
    message: Option<String>,
}

async fn status(
    desk: Data,
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<StatusForm>,
) -> HttpResponse {
    let Some(status) = from_wire::<CaseStatus>(&form.status) else {
        return failure(&desk, &req, &CoreError::Invalid("unknown status"));
    };
    let message = form
        .message
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty());
    change(&desk, &req, &path, "status", |p, id| {
        p.set_case_status(id, status, message, system_now())
    })
}

#[derive(Deserialize)]
struct StarForm {
    on: String,
}

async fn star(
    desk: Data,
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<StarForm>,
) -> HttpResponse {
    let on = form.on == "1";
    change(&desk, &req, &path, "star", |p, id| {
        p.set_case_starred(id, on)
    })
}

#[derive(Deserialize)]
struct StageForm {
    stage: String,
}

async fn stage(
    desk: Data,
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<StageForm>,
) -> HttpResponse {
    let Some(stage) = from_wire::<CaseStage>(&form.stage) else {
        return failure(&desk, &req, &CoreError::Invalid("unknown stage"));
    };
    change(&desk, &req, &path, "stage", |p, id| {
        p.set_case_stage(id, stage, system_now())
    })
}

async fn note(
    desk: Data,
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<TextForm>,
) -> HttpResponse {
    change(&desk, &req, &path, "note", |p, id| {
        p.add_case_note(id, &form.text, system_now())
    })
}

#[derive(Deserialize)]
struct ReferForm {
    to: String,
    note: Option<String>,
}

async fn refer(
    desk: Data,
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<ReferForm>,
) -> HttpResponse {
    change(&desk, &req, &path, "refer", |p, id| {
        let settings = p.settings()?;
        let from = settings.focal_point_id.clone().ok_or(CoreError::Invalid(
            "this focal point's directory id is not set",
        ))?;
        let directory = p
            .directory(&settings.coordinator()?)?
            .ok_or(CoreError::Invalid("this desk holds no directory yet: sync"))?;
        let now = system_now();
        let target = directory
            .focal_point(&form.to)
            .filter(|f| f.is_valid_at(now))
            .ok_or(CoreError::Invalid(
                "the directory has no valid focal point with that id",
            ))?;
        p.refer_case(
            id,
            &from,
            target,
            form.note.as_deref().unwrap_or("").trim(),
            now,
        )
    })
}

/// The office's GBVIMS classification of a case: one type (or none) and
/// any context flags, as the form sends them (`context` once per flag).
async fn classify(
    desk: Data,
    req: HttpRequest,
    path: web::Path<String>,
    form: web::Form<Vec<(String, String)>>,
) -> HttpResponse {
    let mut gbv_type = None;
    let mut context = Vec::new();
    for (name, value) in form.iter() {
        match name.as_str() {
            "gbv_type" if value.is_empty() => gbv_type = None,
            "gbv_type" => match from_wire::<GbvType>(value) {
                Some(t) => gbv_type = Some(t),
                None => return failure(&desk, &req, &CoreError::Invalid("unknown type")),
            },
            "context" => match from_wire::<GbvContext>(value) {
                Some(f) => context.push(f),
                None => return failure(&desk, &req, &CoreError::Invalid("unknown context")),
            },
            _ => {}
        }
    }
    change(&desk, &req, &path, "classify", |p, id| {
        p.classify_case(id, gbv_type, &context)
    })
}

fn sync_line(p: &crate::sync::Progress, w: &Words) -> String {
    if p.running {
        return format!(
            "{} {} {}, {} {}",
            w.sync_running, p.fetched, w.sync_fetched, p.new_cases, w.sync_new
        );
    }
    match p.ended_ago {
        None => w.never_synced.to_string(),
        Some(_) if p.error.is_some() => w.sync_failed.to_string(),
        Some(_) => format!(
            "{}: {} {}, {} {}, {} {}, {} {}",
            w.sync_done,
            p.sent,
            w.sync_sent,
            p.fetched,
            w.sync_fetched,
            p.new_cases,
            w.sync_new,
            p.unreadable,
            w.unreadable
        ),
    }
}

async fn sync_page(desk: Data, req: HttpRequest) -> HttpResponse {
    let w = words(language(&desk, &req));
    let progress = desk.inner().sync.progress();
    let c = chrome(&desk, &req, "sync", w.sync);
    render(
        StatusCode::OK,
        &SyncPage {
            every: desk.config.sync_every.map(|d| d.as_secs() / 60),
            line: sync_line(&progress, w),
            error: progress.error.clone(),
            c,
        },
    )
}

async fn sync_start(desk: Data, req: HttpRequest) -> HttpResponse {
    let arc = desk.into_inner();
    crate::sync::start(&arc);
    let wants_json = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"));
    if wants_json {
        HttpResponse::Accepted().json(arc.inner().sync.progress())
    } else {
        see_other("/sync")
    }
}

async fn sync_status(desk: Data) -> HttpResponse {
    let inner = desk.inner();
    let mut value = serde_json::to_value(inner.sync.progress()).unwrap_or_default();
    let waiting = inner.open.as_ref().map_or(0, |o| o.waiting);
    if let Some(map) = value.as_object_mut() {
        map.insert("waiting".into(), waiting.into());
    }
    HttpResponse::Ok().json(value)
}

fn reason_text(r: RejectReason, w: &Words) -> &'static str {
    match r {
        RejectReason::DoesNotOpen => w.reason_does_not_open,
        RejectReason::Malformed => w.reason_malformed,
        RejectReason::UnknownCase => w.reason_unknown_case,
        RejectReason::NotForFocalPoint => w.reason_not_for_focal,
        RejectReason::Other => w.reason_other,
    }
}

async fn rejected(desk: Data, req: HttpRequest) -> HttpResponse {
    let w = words(language(&desk, &req));
    let Some(summary) = with_open(&desk, |o| o.profile.rejected_summary(0)) else {
        return locked();
    };
    let s = match summary {
        Ok(s) => s,
        Err(e) => return failure(&desk, &req, &e),
    };
    let c = chrome(&desk, &req, "rejected", w.unreadable);
    render(
        StatusCode::OK,
        &RejectedPage {
            total: s.total,
            reasons: s
                .by_reason
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(r, n)| (reason_text(*r, w).to_string(), *n))
                .collect(),
            span: match (s.first_hour, s.last_hour) {
                (Some(a), Some(b)) => Some(format!("{} – {}", hour_text(a), hour_text(b))),
                _ => None,
            },
            c,
        },
    )
}

async fn rejected_clear(desk: Data, req: HttpRequest) -> HttpResponse {
    match with_open(&desk, |o| o.profile.clear_rejected()) {
        None => locked(),
        Some(Err(e)) => failure(&desk, &req, &e),
        Some(Ok(_)) => see_other("/rejected?done=cleared"),
    }
}

async fn directory(desk: Data, req: HttpRequest) -> HttpResponse {
    let lang = language(&desk, &req);
    let w = words(lang);
    let Some(found) = with_open(&desk, |o| -> amparo_core::Result<Option<DirView>> {
        let p = &o.profile;
        let settings = p.settings()?;
        let Ok(coordinator) = settings.coordinator() else {
            return Ok(None);
        };
        let Some(d) = p.directory(&coordinator)? else {
            return Ok(None);
        };
        let now = system_now();
        let own = settings.focal_point_id;
        Ok(Some(DirView {
            version: p.directory_version()?.unwrap_or(0),
            signer: b64::encode(&coordinator.0),
            focal_points: d
                .focal_points
                .iter()
                .map(|f| FocalView {
                    id: f.id.clone(),
                    name: f.name.get(lang).to_string(),
                    organization: f.organization.clone(),
                    regions: f
                        .regions
                        .iter()
                        .map(|r| region_label(r))
                        .collect::<Vec<_>>()
                        .join(", "),
                    needs: labels(&f.categories, lang),
                    languages: labels(&f.languages, lang),
                    valid: format!(
                        "{} – {} ({})",
                        format_date(f.valid_from),
                        amparo_core::coordinator::format_until_date(f.valid_until),
                        if f.is_valid_at(now) {
                            w.valid_now
                        } else {
                            w.not_valid_now
                        }
                    ),
                    own: own.as_deref() == Some(f.id.as_str()),
                })
                .collect(),
            routes: d
                .service_routes
                .iter()
                .map(|s| RouteView {
                    name: s.name.get(lang).to_string(),
                    service: service_kind(s.service, lang).to_string(),
                    region: region_label(&s.region),
                    description: s.description.get(lang).to_string(),
                    contact: s.contact.clone().unwrap_or_default(),
                })
                .collect(),
        }))
    }) else {
        return locked();
    };
    let dir = match found {
        Ok(d) => d,
        Err(e) => return failure(&desk, &req, &e),
    };
    let c = chrome(&desk, &req, "directory", w.directory);
    render(StatusCode::OK, &DirectoryPage { c, dir })
}

fn exclusion_text(e: Exclusion, w: &Words) -> &'static str {
    match e {
        Exclusion::NoConsent => w.excl_no_consent,
        Exclusion::ReportedElsewhere => w.excl_elsewhere,
        Exclusion::Referred => w.excl_referred,
        Exclusion::Unclassified => w.excl_unclassified,
    }
}

fn dimension_title(dim: Dimension, w: &Words) -> &'static str {
    match dim {
        Dimension::GbvType => w.dim_gbv_type,
        Dimension::Aggressor => w.aggressor,
        Dimension::AgeBand => w.dim_age,
        Dimension::ReportDelay => w.dim_delay,
    }
}

/// The label of a column of `dim`, found by its key (`unknown` and
/// `several` are the desk's words, also for the aggressor's "I don't know":
/// the column counts reports that name none too; every other key is a
/// value's).
pub fn column_label(dim: Dimension, key: &str, w: &Words, lang: Language) -> String {
    match key {
        "unknown" => return w.unknown.to_string(),
        "several" => return w.several.to_string(),
        _ => {}
    }
    let found = match dim {
        Dimension::GbvType => GbvType::ALL
            .iter()
            .find(|t| t.key() == key)
            .map(|t| t.label(lang)),
        Dimension::Aggressor => AggressorKind::ALL
            .iter()
            .find(|a| wire(*a) == key)
            .map(|a| a.label(lang)),
        Dimension::AgeBand => AgeBand::ALL
            .iter()
            .find(|a| wire(*a) == key)
            .map(|a| a.label(lang)),
        Dimension::ReportDelay => ReportDelay::ALL
            .iter()
            .find(|d| d.key() == key)
            .map(|d| d.label(lang)),
    };
    found.unwrap_or(w.unknown).to_string()
}

/// A row's region and kind of place. In a shared table a row without a
/// region is "other places" (merged); in the office's own, a report that
/// named none.
fn place_label(key: &RowKey, shared: bool, w: &Words, lang: Language) -> String {
    let region = match &key.region {
        Some(r) => region_label(r),
        None if shared => w.other_places.to_string(),
        None => w.no_region.to_string(),
    };
    match key.setting {
        Some(s) => format!("{region} · {}", s.label(lang)),
        None => region,
    }
}

/// Chart geometry, in the view box's units.
const CHART_WIDTH: u32 = 640;
const CHART_ROW: u32 = 44;
const CHART_BAR: u32 = 16;
const CHART_BAR_MAX: u32 = 560;

/// Horizontal bars, one per label: the label above, the bar below it, the
/// count at the bar's end.
fn bar_chart(id: String, title: &str, labels: &[String], values: &[u64]) -> Chart {
    let max = values.iter().copied().max().unwrap_or(0).max(1);
    let bars: Vec<Bar> = labels
        .iter()
        .zip(values)
        .enumerate()
        .map(|(i, (label, &value))| {
            let top = u32::try_from(i).unwrap_or(0).saturating_mul(CHART_ROW);
            let long = u64::from(CHART_BAR_MAX).saturating_mul(value) / max;
            let mut width = u32::try_from(long).unwrap_or(CHART_BAR_MAX);
            if value > 0 {
                width = width.max(2);
            }
            Bar {
                label: label.clone(),
                value,
                label_y: top + 14,
                bar_y: top + 20,
                width,
                value_x: width + 6,
                value_y: top + 33,
            }
        })
        .collect();
    let said: Vec<String> = labels
        .iter()
        .zip(values)
        .map(|(l, v)| format!("{l}: {v}"))
        .collect();
    Chart {
        id,
        title: format!("{title}. {}", said.join("; ")),
        width: CHART_WIDTH,
        height: u32::try_from(bars.len())
            .unwrap_or(0)
            .saturating_mul(CHART_ROW)
            + 4,
        bar_height: CHART_BAR,
        bars,
    }
}

/// Every case's summary, from the index (no case is decrypted again).
fn all_summaries(o: &Open) -> Vec<CaseSummary> {
    o.index
        .query(&CaseQuery {
            limit: 0,
            ..CaseQuery::default()
        })
        .cases
}

/// The month's own counts by each dimension, with their charts.
fn dimension_views(ms: &MonthStats, name: &str, w: &Words, lang: Language) -> Vec<DimView> {
    Dimension::ALL
        .iter()
        .enumerate()
        .map(|(i, dim)| {
            let columns: Vec<String> = dim
                .columns()
                .iter()
                .map(|k| column_label(*dim, k, w, lang))
                .collect();
            let totals = ms.column_totals(*dim);
            let title = dimension_title(*dim, w).to_string();
            DimView {
                key: dim.key(),
                chart: bar_chart(
                    format!("chart-{}", dim.key()),
                    &format!("{}: {title}, {name}", w.chart_of),
                    &columns,
                    &totals,
                ),
                rows: ms
                    .rows
                    .iter()
                    .map(|r| DimRow {
                        place: place_label(&r.key, false, w, lang),
                        cells: r.cells.get(i).cloned().unwrap_or_default(),
                        total: r.total,
                    })
                    .collect(),
                title,
                columns,
                totals,
                total: ms.counted,
            }
        })
        .collect()
}

/// A month's table as it leaves (or left): `None` cells are not shared.
fn shared_view(table: &MonthTable, heading: String, w: &Words, lang: Language) -> SharedView {
    let dims = Dimension::ALL
        .iter()
        .filter_map(|dim| {
            let b = table.breakdown(*dim)?;
            let cols = dim.columns();
            let n = cols.len();
            Some(SharedDim {
                key: dim.key(),
                title: dimension_title(*dim, w).to_string(),
                columns: cols
                    .iter()
                    .map(|k| column_label(*dim, k, w, lang))
                    .collect(),
                rows: table
                    .rows
                    .iter()
                    .zip(&table.row_totals)
                    .enumerate()
                    .map(|(r, (key, total))| SharedRow {
                        place: place_label(key, true, w, lang),
                        cells: b.cells.iter().skip(r * n).take(n).copied().collect(),
                        total: *total,
                    })
                    .collect(),
                totals: b.column_totals.clone(),
                total: table.total.unwrap_or(0),
            })
        })
        .collect();
    SharedView {
        heading,
        below: table.total.is_none().then(|| {
            w.below_threshold
                .replace("{n}", &table.threshold.to_string())
        }),
        total: table.total,
        dims,
    }
}

#[derive(Deserialize, Default)]
struct MonthQuery {
    month: Option<String>,
}

/// Most cases listed for classifying on the statistics page.
const TO_CLASSIFY: usize = 10;

/// The office's statistics for a month (the latest with cases unless one
/// is asked): what is counted and why not, tables and charts by every
/// dimension, the table as it would be shared, and the months shared.
async fn stats_page(desk: Data, req: HttpRequest) -> HttpResponse {
    let lang = language(&desk, &req);
    let w = words(lang);
    let asked = web::Query::<MonthQuery>::from_query(req.query_string())
        .ok()
        .and_then(|q| q.into_inner().month)
        .filter(|m| !m.trim().is_empty());
    let asked = match asked.map(|m| Month::parse(m.trim())) {
        None => None,
        Some(Ok(m)) => Some(m),
        Some(Err(_)) => {
            return failure_to(
                &desk,
                &req,
                &CoreError::Invalid("month (write it YYYY-MM)"),
                "/stats",
            );
        }
    };
    let Some(found) = with_open(&desk, |o| -> amparo_core::Result<_> {
        let summaries = all_summaries(o);
        let p = &o.profile;
        let mut months = stats::months(&summaries);
        let month = asked.or_else(|| months.last().copied());
        if let Some(m) = month
            && !months.contains(&m)
        {
            months.push(m);
            months.sort();
        }
        let counted = month.map(|m| {
            let ms = MonthStats::of(&summaries, m);
            let table = p.shareable_table(&ms).map_err(|e| e.to_string());
            (ms, table)
        });
        let mut unclassified: Vec<&CaseSummary> = summaries
            .iter()
            .filter(|s| {
                Some(stats::case_month(s)) == month
                    && stats::counted(s) == Err(Exclusion::Unclassified)
            })
            .collect();
        unclassified.sort_by_key(|s| (s.reported_hour, s.id));
        let unclassified_count = unclassified.len();
        let to_classify: Vec<ToClassify> = unclassified
            .iter()
            .take(TO_CLASSIFY)
            .map(|s| ToClassify {
                href: format!("/case/{}", hex(&s.id)),
                label: match s.region.as_deref() {
                    Some(r) => format!("{} · {}", hour_text(s.reported_hour), region_label(r)),
                    None => hour_text(s.reported_hour),
                },
            })
            .collect();
        Ok((
            months,
            month,
            counted,
            to_classify,
            unclassified_count,
            p.statistics_threshold()?,
            p.published_months()?,
            p.aggregation_rounds()?,
            match month {
                Some(m) => p.in_statistics_sum(m)?,
                None => false,
            },
        ))
    }) else {
        return locked();
    };
    let (
        months,
        month,
        counted,
        to_classify,
        unclassified_count,
        threshold,
        published,
        rounds,
        in_sum,
    ) = match found {
        Ok(v) => v,
        Err(e) => return failure(&desk, &req, &e),
    };
    let now = system_now().0;
    let name = month.map(|m| month_name(m, lang)).unwrap_or_default();
    let published_this = month.and_then(|m| published.iter().find(|p| p.table.month == m));
    let mut page = StatsPage {
        c: chrome(&desk, &req, "stats", w.stats),
        months: months
            .iter()
            .rev()
            .map(|m| Opt {
                value: m.to_string(),
                label: month_name(*m, lang),
                selected: Some(*m) == month,
            })
            .collect(),
        month: month.map(|m| m.to_string()).unwrap_or_default(),
        month_name: name.clone(),
        cases: 0,
        counted: 0,
        excluded: Vec::new(),
        unclassified: 0,
        more_to_classify: unclassified_count.saturating_sub(to_classify.len()),
        to_classify,
        month_href: month
            .map(|m| {
                format!(
                    "/cases?from={}&to={}",
                    format_date(m.start_unix()),
                    format_date(m.next().start_unix().saturating_sub(86_400))
                )
            })
            .unwrap_or_default(),
        dims: Vec::new(),
        context: Vec::new(),
        legend: w.suppressed_legend.replace(
            "{n}",
            &published_this
                .map_or(threshold, |p| p.table.threshold)
                .to_string(),
        ),
        shared: None,
        share_error: None,
        can_publish: false,
        not_over: false,
        publish_label: w.publish.replace("{month}", &name),
        rounds: rounds
            .iter()
            .rev()
            .map(|r| SumRoundView {
                month: month_name(r.month, lang),
                offices: r.cohort.join(", "),
                state: match (&r.refused, r.sent, &r.revealed_for) {
                    (Some(why), _, _) => format!("{}: {why}", w.sum_refused),
                    (None, _, Some(_)) => w.sum_revealed.to_string(),
                    (None, true, None) => w.sum_sent.to_string(),
                    (None, false, None) => w.sum_waiting.to_string(),
                },
            })
            .collect(),
        published: published
            .iter()
            .rev()
            .map(|p| PublishedView {
                month: month_name(p.table.month, lang),
                href: format!("/stats?month={}", p.table.month),
                at: when(p.at),
                total: p.table.total.map_or_else(
                    || w.fewer_than.replace("{n}", &p.table.threshold.to_string()),
                    |t| t.to_string(),
                ),
            })
            .collect(),
    };
    if let (Some(m), Some((ms, table))) = (month, counted) {
        page.cases = ms.cases;
        page.counted = ms.counted;
        page.excluded = Exclusion::ALL
            .iter()
            .map(|e| {
                (
                    wire(e),
                    exclusion_text(*e, w).to_string(),
                    ms.excluded.get(e).copied().unwrap_or(0),
                )
            })
            .collect();
        page.unclassified = ms
            .excluded
            .get(&Exclusion::Unclassified)
            .copied()
            .unwrap_or(0);
        if ms.counted > 0 {
            page.dims = dimension_views(&ms, &name, w, lang);
        }
        page.context = GbvContext::ALL
            .iter()
            .map(|f| {
                (
                    f.label(lang).to_string(),
                    ms.context.get(f).copied().unwrap_or(0),
                )
            })
            .collect();
        let over = now >= m.next().start_unix();
        match (published_this, table) {
            (Some(p), _) => {
                page.shared = Some(shared_view(
                    &p.table,
                    w.shared_as_sent.replace("{at}", &when(p.at)),
                    w,
                    lang,
                ));
            }
            (None, Ok(t)) => {
                page.shared = Some(shared_view(&t, w.would_share.to_string(), w, lang));
                page.can_publish = over && !in_sum;
                page.not_over = !over && !in_sum;
            }
            (None, Err(e)) => page.share_error = Some(e),
        }
    }
    render(StatusCode::OK, &page)
}

#[derive(Deserialize)]
struct PublishForm {
    month: String,
}

/// Publishes a month to the coordinator, once (the core refuses a month
/// not over, one already published, a directory without a statistics key).
async fn publish(desk: Data, req: HttpRequest, form: web::Form<PublishForm>) -> HttpResponse {
    let Ok(month) = Month::parse(form.month.trim()) else {
        return failure_to(
            &desk,
            &req,
            &CoreError::Invalid("month (write it YYYY-MM)"),
            "/stats",
        );
    };
    let result = with_open(&desk, |o| -> amparo_core::Result<()> {
        let p = Arc::clone(&o.profile);
        p.publish_month(month, system_now())?;
        o.waiting = p.outbox_len()?;
        Ok(())
    });
    match result {
        None => locked(),
        Some(Err(e)) => failure_to(&desk, &req, &e, &format!("/stats?month={month}")),
        Some(Ok(())) => see_other(&format!("/stats?month={month}&done=publish")),
    }
}

/// Takes part in the statistics sum: this year's keys (once) and the
/// answers to the rounds that came (PROTOCOL.md §16), queued.
async fn aggregate(desk: Data, req: HttpRequest) -> HttpResponse {
    let result = with_open(&desk, |o| -> amparo_core::Result<()> {
        let p = Arc::clone(&o.profile);
        p.prepare_aggregation(system_now())?;
        p.answer_aggregation(system_now())?;
        o.waiting = p.outbox_len()?;
        Ok(())
    });
    match result {
        None => locked(),
        Some(Err(e)) => failure_to(&desk, &req, &e, "/stats"),
        Some(Ok(())) => see_other("/stats?done=aggregate"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_statistics_column_has_a_label_in_every_language() {
        for lang in Language::ALL {
            let w = words(lang);
            for dim in Dimension::ALL {
                for key in dim.columns() {
                    let label = column_label(dim, key, w, lang);
                    let desk_word = *key == "unknown" || *key == "several";
                    assert_eq!(
                        label == w.unknown || label == w.several,
                        desk_word,
                        "{dim:?} {key} in {lang:?}: {label}"
                    );
                }
            }
        }
    }

    #[test]
    fn bars_are_as_long_as_their_counts() {
        let labels = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        let c = bar_chart("x".into(), "T", &labels, &[4, 2, 0]);
        assert_eq!(c.bars[0].width, CHART_BAR_MAX);
        assert_eq!(c.bars[1].width, CHART_BAR_MAX / 2);
        assert_eq!(c.bars[2].width, 0);
        assert_eq!(c.title, "T. a: 4; b: 2; c: 0");
        assert!(c.bars.iter().all(|b| b.bar_y + c.bar_height < c.height));
    }
}
