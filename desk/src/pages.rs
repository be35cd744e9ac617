//! The pages: compiled askama templates (auto-escaped: everything a
//! survivor or a directory wrote is text, never markup) and what each shows.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::ContentType;
use amparo_protocol::payload::Language;
use askama::Template;

use crate::words::{Words, words};

/// What every page's frame shows.
pub struct Chrome {
    /// The words in the page's language.
    pub w: &'static Words,
    /// The page's language code.
    pub lang: &'static str,
    /// The page's title.
    pub title: String,
    /// The session's CSRF token (empty without a session).
    pub csrf: String,
    /// Whether the desk is unlocked (shows the sections and the lock).
    pub unlocked: bool,
    /// Which section the page belongs to.
    pub nav: &'static str,
    /// Cases with something unread.
    pub unread: usize,
    /// Envelopes waiting to go out.
    pub waiting: usize,
    /// A sentence about what was just done.
    pub flash: Option<String>,
    /// Idle seconds before the desk locks itself.
    pub lock_after_secs: u64,
    /// This page's address (the language menu comes back to it).
    pub here: String,
}

/// The code of a language, for `lang` attributes.
pub fn code(lang: Language) -> &'static str {
    match lang {
        Language::Es => "es",
        Language::Pt => "pt",
        Language::En => "en",
    }
}

impl Chrome {
    /// The frame of a page shown without a session (refusals).
    pub fn bare(lang: Language, title: &str) -> Chrome {
        Chrome {
            w: words(lang),
            lang: code(lang),
            title: title.to_string(),
            csrf: String::new(),
            unlocked: false,
            nav: "",
            unread: 0,
            waiting: 0,
            flash: None,
            lock_after_secs: 0,
            here: "/".into(),
        }
    }
}

/// A heading and a sentence.
#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage {
    /// Frame.
    pub c: Chrome,
    /// Heading.
    pub heading: String,
    /// The sentence.
    pub text: String,
    /// Where "back" goes.
    pub back: Option<String>,
}

/// Renders `page` with `status`.
pub fn render(status: StatusCode, page: &impl Template) -> HttpResponse {
    match page.render() {
        Ok(html) => HttpResponse::build(status)
            .content_type(ContentType::html())
            .body(html),
        Err(_) => HttpResponse::InternalServerError()
            .content_type(ContentType::plaintext())
            .body("The page could not be drawn."),
    }
}

/// A refusal or an error, in `lang`, with no session's data on it.
pub fn bare(status: StatusCode, lang: Language, text: &str) -> HttpResponse {
    let w = words(lang);
    render(
        status,
        &MessagePage {
            c: Chrome::bare(lang, w.error),
            heading: w.desk.to_string(),
            text: text.to_string(),
            back: None,
        },
    )
}

/// What a browser without the trusted session is told.
pub fn session_ended(lang: Language) -> HttpResponse {
    bare(StatusCode::UNAUTHORIZED, lang, words(lang).locked_out)
}

/// The lock screen.
#[derive(Template)]
#[template(path = "unlock.html")]
pub struct UnlockPage {
    /// Frame.
    pub c: Chrome,
    /// What went wrong with the last PIN.
    pub error: Option<String>,
    /// Wrong PINs in a row.
    pub failed: u32,
    /// Seconds before the next attempt.
    pub wait: u64,
    /// Wrong PINs that wipe the profile (0: never).
    pub wipe_after: u32,
}

/// One choice of a select.
pub struct Opt {
    /// Sent value.
    pub value: String,
    /// Shown label.
    pub label: String,
    /// Whether chosen.
    pub selected: bool,
}

/// A filter select.
pub struct Select {
    /// Field name and id.
    pub name: &'static str,
    /// Label.
    pub label: &'static str,
    /// Whether "any" is a choice (every filter; not the order).
    pub any: bool,
    /// Choices.
    pub options: Vec<Opt>,
}

/// The filter form as sent back.
#[derive(Default)]
pub struct FilterEcho {
    /// Search words.
    pub q: String,
    /// From date (YYYY-MM-DD).
    pub from: String,
    /// To date (YYYY-MM-DD).
    pub to: String,
    /// Unread only.
    pub unread: bool,
    /// Starred only.
    pub starred: bool,
    /// Newest first.
    pub desc: bool,
}

/// One row of the cases table.
pub struct CaseRow {
    /// Hex id.
    pub id: String,
    /// Day and hour written.
    pub received: String,
    /// Region.
    pub region: String,
    /// Kinds of violence.
    pub violence: String,
    /// Kinds of aggressor.
    pub aggressors: String,
    /// Needs.
    pub needs: String,
    /// Reply language.
    pub language: String,
    /// Status label.
    pub status: String,
    /// Status code (for its colour).
    pub status_code: u8,
    /// The office's stage.
    pub stage: String,
    /// Attachments referenced.
    pub attachments: usize,
    /// Something unread.
    pub unread: bool,
    /// Starred by the office.
    pub starred: bool,
    /// A check-in timer's alert: urgent.
    pub alert: bool,
}

/// The cases.
#[derive(Template)]
#[template(path = "cases.html")]
pub struct CasesPage {
    /// Frame.
    pub c: Chrome,
    /// The filter as sent.
    pub f: FilterEcho,
    /// Filter selects.
    pub selects: Vec<Select>,
    /// Matching cases.
    pub matching: usize,
    /// Cases held.
    pub total: usize,
    /// Unread cases held.
    pub unread: usize,
    /// This page's rows.
    pub rows: Vec<CaseRow>,
    /// Previous page's address.
    pub prev: Option<String>,
    /// Next page's address.
    pub next: Option<String>,
    /// This page's number.
    pub page: usize,
    /// Pages.
    pub pages: usize,
}

/// An attachment as shown.
pub struct AttachmentView {
    /// Kind label.
    pub kind: String,
    /// MIME type.
    pub mime: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 in hex.
    pub sha256: String,
    /// Whether every piece arrived and the hash matched.
    pub complete: bool,
    /// Shown as an image.
    pub image: bool,
    /// Played as audio.
    pub audio: bool,
    /// Its address.
    pub url: String,
    /// The photo inside the page, as a `data:` address (the export only).
    pub inline: Option<String>,
}

/// One entry of the conversation.
pub struct EventView {
    /// `her`, `office` or `event`.
    pub class: &'static str,
    /// Who.
    pub who: String,
    /// When.
    pub at: String,
    /// What.
    pub text: String,
}

/// A case.
#[derive(Template)]
#[template(path = "case.html")]
pub struct CasePage {
    /// Frame.
    pub c: Chrome,
    /// Hex id.
    pub id: String,
    /// Its first digits.
    pub short: String,
    /// Status label.
    pub status: String,
    /// Status code.
    pub status_code: u8,
    /// Day and hour written.
    pub received: String,
    /// Region (code and name).
    pub region: Option<String>,
    /// The form's fields, labelled.
    pub fields: Vec<(String, String)>,
    /// Her words.
    pub text: String,
    /// Her language's code.
    pub her_lang: &'static str,
    /// Attachments.
    pub attachments: Vec<AttachmentView>,
    /// The conversation and what happened.
    pub events: Vec<EventView>,
    /// Starred by the office.
    pub starred: bool,
    /// Status choices.
    pub statuses: Vec<Opt>,
    /// Stage choices.
    pub stages: Vec<Opt>,
    /// Status changes: when, what.
    pub status_history: Vec<(String, String)>,
    /// Internal notes: when, text.
    pub notes: Vec<(String, String)>,
    /// Focal points it may be referred to.
    pub targets: Vec<Opt>,
    /// The office's classification, as words ("Not classified" when none).
    pub classification: String,
    /// The GBVIMS types to choose from (the chosen one selected).
    pub gbv_types: Vec<Opt>,
    /// The context flags (the recorded ones selected).
    pub contexts: Vec<Opt>,
    /// Why the case is not counted in statistics, when it is not for a
    /// reason the classification cannot change.
    pub not_counted: Option<String>,
    /// A check-in timer's alert: what the office knows of the timer
    /// (labelled), shown first.
    pub alert: Option<Vec<(String, String)>>,
}

/// The case as a page to keep (a legal file): no forms, no script, its
/// style inside, photos inside.
#[derive(Template)]
#[template(path = "export.html")]
pub struct ExportPage {
    /// Words.
    pub w: &'static Words,
    /// Language code.
    pub lang: &'static str,
    /// The case as shown on the desk (its photos inside).
    pub case: CasePage,
    /// When it was exported.
    pub exported: String,
    /// This office's directory id.
    pub office: String,
}

/// The sync page.
#[derive(Template)]
#[template(path = "sync.html")]
pub struct SyncPage {
    /// Frame.
    pub c: Chrome,
    /// Minutes between automatic syncs.
    pub every: Option<u64>,
    /// Where the sync stands.
    pub line: String,
    /// How the last one failed.
    pub error: Option<String>,
}

/// Unreadable envelopes.
#[derive(Template)]
#[template(path = "rejected.html")]
pub struct RejectedPage {
    /// Frame.
    pub c: Chrome,
    /// How many in all.
    pub total: u64,
    /// How many for each reason.
    pub reasons: Vec<(String, u64)>,
    /// First and last hour seen.
    pub span: Option<String>,
}

/// A focal point of the directory as shown.
pub struct FocalView {
    /// Directory id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Organization.
    pub organization: String,
    /// Regions.
    pub regions: String,
    /// Needs it serves.
    pub needs: String,
    /// Languages.
    pub languages: String,
    /// Validity.
    pub valid: String,
    /// This desk's own entry.
    pub own: bool,
}

/// A service route as shown.
pub struct RouteView {
    /// Name.
    pub name: String,
    /// Kind of service.
    pub service: String,
    /// Region.
    pub region: String,
    /// Description.
    pub description: String,
    /// Contact.
    pub contact: String,
}

/// The directory as shown.
pub struct DirView {
    /// Version.
    pub version: u64,
    /// The coordinator's key it is verified against.
    pub signer: String,
    /// Focal points.
    pub focal_points: Vec<FocalView>,
    /// Service routes.
    pub routes: Vec<RouteView>,
}

/// The directory page.
#[derive(Template)]
#[template(path = "directory.html")]
pub struct DirectoryPage {
    /// Frame.
    pub c: Chrome,
    /// The directory, if one is held.
    pub dir: Option<DirView>,
}

/// One bar of a chart: where it is drawn (in the chart's own units).
pub struct Bar {
    /// What it counts.
    pub label: String,
    /// The count.
    pub value: u64,
    /// Baseline of the label.
    pub label_y: u32,
    /// Top of the bar.
    pub bar_y: u32,
    /// Length of the bar.
    pub width: u32,
    /// Where the count is written.
    pub value_x: u32,
    /// Baseline of the count.
    pub value_y: u32,
}

/// A horizontal bar chart, drawn on the server as inline SVG (no script;
/// its colours come from desk.css). Its numbers are also in the table
/// beside it.
pub struct Chart {
    /// Id of its `<title>`.
    pub id: String,
    /// What it shows, with every number (its accessible name).
    pub title: String,
    /// Width of its view box.
    pub width: u32,
    /// Height of its view box.
    pub height: u32,
    /// Thickness of a bar.
    pub bar_height: u32,
    /// Its bars.
    pub bars: Vec<Bar>,
}

/// One row of a month's table: a place and its counts.
pub struct DimRow {
    /// Region and kind of place.
    pub place: String,
    /// Count per column.
    pub cells: Vec<u64>,
    /// The row's total.
    pub total: u64,
}

/// A month's counts by one dimension: table and chart.
pub struct DimView {
    /// The dimension's key (for ids).
    pub key: &'static str,
    /// Heading.
    pub title: String,
    /// Column labels.
    pub columns: Vec<String>,
    /// Rows.
    pub rows: Vec<DimRow>,
    /// Column totals.
    pub totals: Vec<u64>,
    /// Counted in all.
    pub total: u64,
    /// The column totals as bars.
    pub chart: Chart,
}

/// One row of the shared table (`None`: not shared).
pub struct SharedRow {
    /// Region and kind of place, as shared.
    pub place: String,
    /// Count per column, where shared.
    pub cells: Vec<Option<u64>>,
    /// The row's total (always said).
    pub total: u64,
}

/// One breakdown of the shared table.
pub struct SharedDim {
    /// The dimension's key (for ids).
    pub key: &'static str,
    /// Heading.
    pub title: String,
    /// Column labels.
    pub columns: Vec<String>,
    /// Rows.
    pub rows: Vec<SharedRow>,
    /// Column totals, where shared.
    pub totals: Vec<Option<u64>>,
    /// Counted in all.
    pub total: u64,
}

/// The table as it would leave (or as it left).
pub struct SharedView {
    /// Heading: what would be shared, or when it was.
    pub heading: String,
    /// The month is below the threshold: the sentence that says so.
    pub below: Option<String>,
    /// Counted in all, when said.
    pub total: Option<u64>,
    /// Breakdowns.
    pub dims: Vec<SharedDim>,
}

/// A month already shared.
pub struct PublishedView {
    /// The month, by name.
    pub month: String,
    /// Its page.
    pub href: String,
    /// When it was queued.
    pub at: String,
    /// Its total as shared.
    pub total: String,
}

/// A case of the month waiting to be classified.
pub struct ToClassify {
    /// Its page.
    pub href: String,
    /// Day and hour written, and region.
    pub label: String,
}

/// The statistics page.
#[derive(Template)]
#[template(path = "stats.html")]
pub struct StatsPage {
    /// Frame.
    pub c: Chrome,
    /// The months that have cases (the shown one selected), newest first.
    pub months: Vec<Opt>,
    /// The month shown (YYYY-MM), if any.
    pub month: String,
    /// The month shown, by name.
    pub month_name: String,
    /// Cases written in the month.
    pub cases: u64,
    /// Counted.
    pub counted: u64,
    /// Not counted, by reason (every reason, in order): key, words, count.
    pub excluded: Vec<(String, String, u64)>,
    /// Not yet classified.
    pub unclassified: u64,
    /// Some of those, to open and classify.
    pub to_classify: Vec<ToClassify>,
    /// How many more there are than listed.
    pub more_to_classify: usize,
    /// The month's cases on the cases page.
    pub month_href: String,
    /// One table and chart per dimension.
    pub dims: Vec<DimView>,
    /// Counted cases with each context flag.
    pub context: Vec<(String, u64)>,
    /// Legend of a suppressed cell.
    pub legend: String,
    /// The table as it would leave, or as it left.
    pub shared: Option<SharedView>,
    /// Why the table cannot be drawn (the core's sentence).
    pub share_error: Option<String>,
    /// Whether the month may be published now.
    pub can_publish: bool,
    /// The month is not over yet.
    pub not_over: bool,
    /// The publish button's words.
    pub publish_label: String,
    /// Months already shared.
    pub published: Vec<PublishedView>,
    /// The statistics sum's rounds this office was asked to, newest first.
    pub rounds: Vec<SumRoundView>,
}

/// A round of the statistics sum, as this office sees it.
pub struct SumRoundView {
    /// The month, by name.
    pub month: String,
    /// The offices in the round.
    pub offices: String,
    /// Where this office stands in it.
    pub state: String,
}
