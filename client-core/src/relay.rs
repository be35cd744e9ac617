//! Talking to a relay over HTTP (reqwest, rustls), optionally through a
//! SOCKS5 or HTTP proxy such as Tor: upload envelopes in one batch, fetch and
//! acknowledge a mailbox with signed requests, download the directory only
//! when it changed.
//!
//! The client sends nothing that identifies the phone: no cookies, a fixed
//! generic User-Agent, no extra headers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use amparo_protocol::admission;
use amparo_protocol::directory;
use amparo_protocol::envelope::{Envelope, EnvelopeId};
use amparo_protocol::keys::RecipientKeys;
use amparo_protocol::mailboxes::{self, FetchAuth, FetchResult};
use amparo_protocol::primitives::ed25519::SigningKey;
use amparo_protocol::receipt::Receipt;
use amparo_protocol::request::{self, RequestProof};
use amparo_protocol::token;
use amparo_protocol::wire::{self, EnvelopeResult};
use amparo_protocol::{Entropy, UnixTime};

use crate::{CoreError, Result};

mod timers;
pub use timers::TimerAnswer;

/// The User-Agent every Amparo client sends: the same for everyone.
pub const USER_AGENT: &str = "amparo";

/// How to reach a relay.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Base URL, e.g. `http://127.0.0.1:8470` or an onion address.
    pub base_url: String,
    /// Optional proxy: `socks5h://127.0.0.1:9050` (Tor) or `http://…`.
    pub proxy: Option<String>,
    /// Time limit for one request.
    pub timeout: Duration,
}

impl RelayConfig {
    /// A relay at `base_url`, no proxy, a generous timeout for slow links.
    pub fn new(base_url: impl Into<String>) -> Self {
        RelayConfig {
            base_url: base_url.into(),
            proxy: None,
            timeout: Duration::from_secs(120),
        }
    }
}

/// One page of a mailbox.
#[derive(Debug)]
pub struct Page {
    /// `(cursor, envelope)` in cursor order.
    pub items: Vec<(u64, Envelope)>,
    /// Whether more envelopes may follow.
    pub more: bool,
}

/// Result of asking for the directory.
#[derive(Debug, PartialEq, Eq)]
pub enum DirectoryFetch {
    /// The copy held (its ETag was sent) is current.
    NotModified,
    /// The relay has no directory.
    Missing,
    /// The relay's directory bytes (not yet verified) and their ETag.
    Fresh {
        /// Signed directory bytes.
        bytes: Vec<u8>,
        /// ETag to send next time.
        etag: Option<String>,
    },
}

/// A client for one relay.
#[derive(Debug, Clone)]
pub struct RelayClient {
    http: reqwest::Client,
    base: String,
    /// Whether the relay may know many-mailbox fetches that name their
    /// answer's size (PROTOCOL.md §12.14, op 0x03): until it refuses one.
    /// Shared by the clones, so one refusal is enough.
    fetch_within: Arc<AtomicBool>,
    /// Tokens to spend and what paying for admission did (a sync's).
    admission: Option<crate::tokens::SharedAdmission>,
}

/// What a many-mailbox fetch that names its answer's size came back with.
#[derive(Debug)]
pub(crate) enum FetchWithin {
    /// One result per entry (as [`RelayClient::fetch_many`]), and the bytes
    /// of the request and answer bodies.
    Answer(Vec<Option<Page>>, usize),
    /// The relay predates such requests and refused it as an unknown
    /// operation (`400 invalid_field`); the bytes that cost. Ask again with
    /// [`RelayClient::fetch_many_metered`], sized to the worst case.
    NotKnown(usize),
}

fn network(e: reqwest::Error) -> CoreError {
    // reqwest's message may contain the URL; the URL is the relay's, not the
    // person's, so it can be shown.
    CoreError::Network(e.without_url().to_string())
}

/// Largest JSON answer (an acknowledgement count, an error) read from a
/// relay.
const MAX_JSON_ANSWER: usize = 64 * 1024;
/// Largest single-mailbox page read, whatever `limit` asked for: a relay
/// answers at most its own page limit (500 by default).
const MAX_PAGE_ANSWER: usize = 64 * 1024 * 1024;

/// Reads an answer's body, refusing one longer than `max` bytes — by its
/// Content-Length before reading, or as soon as the bytes received pass it.
/// Every answer has a size its request bounds; without this, a lying or
/// broken relay could fill a phone's memory with one answer.
async fn read_capped(mut r: reqwest::Response, max: usize, what: &'static str) -> Result<Vec<u8>> {
    let too_large = |len: usize| {
        CoreError::Protocol(amparo_protocol::ProtocolError::TooLarge { what, len, max })
    };
    if let Some(len) = r.content_length() {
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len > max {
            return Err(too_large(len));
        }
    }
    let mut body = Vec::new();
    while let Some(chunk) = r.chunk().await.map_err(network)? {
        if body.len() + chunk.len() > max {
            return Err(too_large(body.len() + chunk.len()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Bytes a page of at most `limit` envelopes can take, within
/// [`MAX_PAGE_ANSWER`].
fn page_cap(limit: u32) -> usize {
    wire::max_page_len(limit).min(MAX_PAGE_ANSWER)
}

/// Reads `{"acknowledged": n}`.
async fn acknowledged(r: reqwest::Response) -> Result<u64> {
    let v: serde_json::Value = serde_json::from_slice(
        &read_capped(r, MAX_JSON_ANSWER, "relay answer").await?,
    )
    .map_err(|_| CoreError::Protocol(amparo_protocol::ProtocolError::Invalid("relay answer")))?;
    Ok(v.get("acknowledged").and_then(|n| n.as_u64()).unwrap_or(0))
}

/// Parses `{"acknowledged": n}`.
fn acknowledged_in(body: &[u8]) -> Result<u64> {
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|_| {
        CoreError::Protocol(amparo_protocol::ProtocolError::Invalid("relay answer"))
    })?;
    Ok(v.get("acknowledged").and_then(|n| n.as_u64()).unwrap_or(0))
}

/// Most admission work a phone does for one upload request (PROTOCOL.md
/// §14): about 13 s of one core of a desktop, one to two minutes of a
/// low-end phone's; a relay asking more is left for a later sync.
pub const MAX_WORK: u32 = 4096;
const ADMISSION_HEADER: &str = "Amparo-Admission";
const ADMISSION_EFFORT_HEADER: &str = "Amparo-Admission-Effort";
const TOKEN_SPENT_HEADER: &str = "Amparo-Token-Spent";
const ISSUER_DIRECTORY_PATH: &str = "/.well-known/private-token-issuer-directory";
const TOKENS_PATH: &str = "/v1/tokens";
const VOUCHER_HEADER: &str = "Amparo-Voucher";

/// What an upload request got back.
enum Sent {
    /// An answer to read (success or another error).
    Answer(reqwest::Response),
    /// 429 `work_required`, with the effort the request must claim.
    Work(u32),
    /// 429 `token_spent` or `bad_token`: the token sent does not admit.
    TokenRefused,
}

/// What a request that pays admission carries (PROTOCOL.md §14): the
/// work is bound to its envelopes' ids.
#[derive(Clone, Copy)]
pub(crate) enum Carrying<'a> {
    /// A batch of envelopes: `POST /v1/envelopes`.
    Batch(&'a [Envelope]),
    /// A check-in timer's hold (its bytes) of one envelope: `POST
    /// /v1/timers` (PROTOCOL.md §12.16).
    Hold(&'a [u8], &'a Envelope),
}

impl Carrying<'_> {
    fn path(&self) -> &'static str {
        match self {
            Carrying::Batch(_) => "/v1/envelopes",
            Carrying::Hold(..) => "/v1/timers",
        }
    }

    /// The body, made for each sending: a second one only follows a refusal.
    fn body(&self) -> Vec<u8> {
        match self {
            Carrying::Batch(envelopes) => {
                wire::encode_batch(envelopes.iter().map(|e| e.as_bytes()))
            }
            Carrying::Hold(hold, _) => hold.to_vec(),
        }
    }

    fn ids(&self) -> Vec<EnvelopeId> {
        match self {
            Carrying::Batch(envelopes) => envelopes.iter().map(Envelope::id).collect(),
            Carrying::Hold(_, envelope) => vec![envelope.id()],
        }
    }

    fn len(&self) -> usize {
        match self {
            Carrying::Batch(envelopes) => envelopes.len(),
            Carrying::Hold(..) => 1,
        }
    }
}

/// How an admitted request ended.
pub(crate) enum Admitted {
    /// The relay answered (success or an error to read).
    Answer(reqwest::Response),
    /// Not sent: the work asked was `beyond` what a phone does, or the
    /// relay asked again after it paid (a transient refusal).
    NotPaid {
        /// Asked beyond [`MAX_WORK`].
        beyond: bool,
    },
}

/// How an upload request pays for admission.
enum Payment {
    /// Not at all (the relay asks nothing when it is quiet).
    None,
    /// With work: the `Amparo-Admission` header.
    Work(String),
    /// With a token: the `Authorization` header.
    Token(String),
}

/// The effort an answer names (`Amparo-Admission-Effort`).
fn effort_in(r: &reqwest::Response) -> Option<u32> {
    r.headers()
        .get(ADMISSION_EFFORT_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u32>().ok())
}

async fn relay_error(r: reqwest::Response) -> CoreError {
    let status = r.status().as_u16();
    let body = read_capped(r, MAX_JSON_ANSWER, "relay error")
        .await
        .unwrap_or_default();
    let parsed: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
    let field = |k: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(k))
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    CoreError::Relay {
        status,
        code: field("error"),
        message: field("message"),
    }
}

/// Decodes a many-mailbox answer to `entries` and checks it: every
/// envelope belongs to its entry's mailbox, cursors move forward.
fn checked_pages(entries: &[(FetchAuth<'_>, u64)], bytes: &[u8]) -> Result<Vec<Option<Page>>> {
    let answer = mailboxes::decode_fetch_answer(bytes, entries.len())?;
    let mut out = Vec::with_capacity(entries.len());
    for ((auth, after), result) in entries.iter().zip(answer) {
        match result {
            FetchResult::Refused => out.push(None),
            FetchResult::Page { items, more } => {
                let mailbox = mailboxes::mailbox_of(auth);
                if items.iter().any(|(_, e)| e.mailbox() != mailbox) {
                    return Err(CoreError::Protocol(
                        amparo_protocol::ProtocolError::Misaddressed,
                    ));
                }
                // Cursors must move forward from where this fetch began:
                // a relay answering the same items again with "more" set
                // would otherwise keep a sync going forever.
                let mut last = *after;
                for (cursor, _) in &items {
                    if *cursor <= last {
                        return Err(CoreError::Protocol(
                            amparo_protocol::ProtocolError::Invalid("cursor from the relay"),
                        ));
                    }
                    last = *cursor;
                }
                out.push(Some(Page { items, more }));
            }
        }
    }
    Ok(out)
}

impl RelayClient {
    /// A client for `config`.
    pub fn new(config: &RelayConfig) -> Result<Self> {
        let mut builder = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(60))
            // The relay closes a connection idle for 5 s (actix-web's
            // keep-alive). A pooled connection older than that may be
            // closing just as it is reused, and the request fails with a
            // network error; on a slow phone, between two steps of a sync,
            // that happens. Reuse only what is fresher than the relay's limit.
            .pool_idle_timeout(Duration::from_secs(4));
        if let Some(p) = &config.proxy {
            builder = builder.proxy(reqwest::Proxy::all(p).map_err(network)?);
        }
        Ok(RelayClient {
            http: builder.build().map_err(network)?,
            base: config.base_url.trim_end_matches('/').to_string(),
            fetch_within: Arc::new(AtomicBool::new(true)),
            admission: None,
        })
    }

    /// This client, spending the tokens of `admission` when the relay asks
    /// for work and counting there what paying did.
    pub fn paying_with(&self, admission: crate::tokens::SharedAdmission) -> RelayClient {
        RelayClient {
            admission: Some(admission),
            ..self.clone()
        }
    }

    fn note(&self, f: impl FnOnce(&mut crate::tokens::Admission)) {
        if let Some(a) = &self.admission
            && let Ok(mut a) = a.lock()
        {
            f(&mut a);
        }
    }

    /// Pays for `envelopes` with a token, if one is held that this relay's
    /// issuer directory vouches for: the answer, or `None` (no token, or
    /// every one tried refused: up to three).
    async fn pay_with_token(&self, what: Carrying<'_>) -> Result<Option<Sent>> {
        let Some(shared) = &self.admission else {
            return Ok(None);
        };
        let (held, known) = match shared.lock() {
            Ok(a) => (!a.tokens.is_empty(), a.directory.clone()),
            Err(_) => (false, None),
        };
        if !held {
            return Ok(None);
        }
        let directory = match known {
            Some(d) => d,
            None => {
                let d = self.issuer_directory().await?;
                self.note(|a| a.directory = Some(d.clone()));
                d
            }
        };
        for _ in 0..3 {
            let token = shared.lock().ok().and_then(|mut a| a.take(&directory));
            let Some(token) = token else {
                return Ok(None);
            };
            match self
                .send_paid(what, Payment::Token(token.to_header()))
                .await?
            {
                Sent::TokenRefused => self.note(|a| a.tokens_dropped += 1),
                Sent::Answer(r)
                    if r.status().is_success() && !r.headers().contains_key(TOKEN_SPENT_HEADER) =>
                {
                    // Not spent: the relay did not need it (quiet again),
                    // or gave it back (nothing stored). It stays hers.
                    self.note(|a| a.tokens.push(token));
                    return Ok(Some(Sent::Answer(r)));
                }
                sent => {
                    self.note(|a| a.tokens_used += 1);
                    return Ok(Some(sent));
                }
            }
        }
        Ok(None)
    }

    fn url(&self, target: &str) -> String {
        format!("{}{}", self.base, target)
    }

    /// Uploads envelopes in one request; one result per envelope, in order.
    ///
    /// When the relay is pressed and asks for admission work (429
    /// `work_required`, PROTOCOL.md §14), the work is done here, off the
    /// async threads, and the request sent again with its proof, once. When
    /// the work is not done (beyond [`MAX_WORK`], or asked again), every
    /// envelope comes back refused `mailbox_full`, the transient refusal
    /// that keeps an envelope in the outbox and holds back only its own
    /// mailbox for the rest of the sync. The challenge's signature is not
    /// checked: a false one only makes a proof the relay refuses, and costs
    /// at most that bounded work.
    pub async fn upload(&self, envelopes: &[Envelope]) -> Result<Vec<EnvelopeResult>> {
        self.upload_with(envelopes, |_| {}).await
    }

    /// [`RelayClient::upload`], calling `on_work(effort)` when it is about
    /// to do admission work (for the app's "preparing to send").
    pub async fn upload_with<F: FnMut(u32)>(
        &self,
        envelopes: &[Envelope],
        on_work: F,
    ) -> Result<Vec<EnvelopeResult>> {
        let r = match self.admitted(Carrying::Batch(envelopes), on_work).await? {
            Admitted::Answer(r) => r,
            Admitted::NotPaid { beyond } => return Ok(self.not_paid(envelopes, beyond)),
        };
        if !r.status().is_success() {
            return Err(relay_error(r).await);
        }
        let max = wire::max_results_len(envelopes.len());
        let results = wire::decode_results(&read_capped(r, max, "upload results").await?)?;
        if results.len() != envelopes.len() {
            return Err(CoreError::Protocol(
                amparo_protocol::ProtocolError::Invalid("number of results from the relay"),
            ));
        }
        Ok(results)
    }

    /// Sends `what`, paying the admission the relay asks: ahead when it
    /// asked lately, else when an answer asks (once). The answer, or why
    /// it was not sent.
    pub(crate) async fn admitted<F: FnMut(u32)>(
        &self,
        what: Carrying<'_>,
        mut on_work: F,
    ) -> Result<Admitted> {
        let n = u32::try_from(what.len().max(1)).unwrap_or(u32::MAX);
        // When the relay asked for work lately, pay before sending: on 2G a
        // body sent only to be refused is every byte sent twice.
        let ahead = self.effort_ahead(n);
        let mut sent = match ahead {
            Some(effort) => self.paid_upload(what, effort, &mut on_work).await?,
            None => Some(self.send_paid(what, Payment::None).await?),
        };
        // Asked for (more) work: pay it, once.
        if let Some(Sent::Work(effort)) = sent {
            self.note(|a| {
                a.ahead = effort.div_ceil(n);
                a.challenge = None;
            });
            sent = self.paid_upload(what, effort, &mut on_work).await?;
        }
        let r = match sent {
            Some(Sent::Answer(r)) => r,
            // Asked for work beyond a phone's: waiting for the relay.
            None => return Ok(Admitted::NotPaid { beyond: true }),
            // Asked again after paying (the effort rose while the phone
            // worked, or the token was refused twice): a transient
            // refusal, tried again at the next sync.
            Some(_) => return Ok(Admitted::NotPaid { beyond: false }),
        };
        if r.status().is_success() {
            // What the relay asked of this upload (nothing: it is quiet
            // again, and the next upload pays nothing ahead).
            let asked = effort_in(&r).unwrap_or(0);
            self.note(|a| a.ahead = asked.div_ceil(n));
        }
        Ok(Admitted::Answer(r))
    }

    /// The effort to pay ahead for an upload of `n` envelopes: what the
    /// relay asked per envelope lately, if it is within what a phone pays.
    fn effort_ahead(&self, n: u32) -> Option<u32> {
        let a = self.admission.as_ref()?.lock().ok()?;
        let effort = a.ahead.checked_mul(n)?;
        (a.ahead > 0 && effort <= MAX_WORK).then_some(effort)
    }

    /// Pays for an upload with a token or else with `effort` of work, and
    /// sends it; `None` when it cannot be paid (no token, and more work
    /// than a phone does).
    async fn paid_upload<F: FnMut(u32)>(
        &self,
        what: Carrying<'_>,
        effort: u32,
        on_work: &mut F,
    ) -> Result<Option<Sent>> {
        if let Some(sent) = self.pay_with_token(what).await? {
            return Ok(Some(sent));
        }
        if effort <= MAX_WORK {
            on_work(effort);
        }
        let Some(proof) = self.work_for(&what.ids(), effort).await? else {
            return Ok(None);
        };
        let sent = self.send_paid(what, Payment::Work(proof)).await?;
        if matches!(&sent, Sent::Answer(r) if r.status().is_success()) {
            self.note(|a| {
                a.worked += 1;
                a.max_effort = a.max_effort.max(effort);
            });
        }
        Ok(Some(sent))
    }

    /// Every envelope of an upload whose admission was not paid, as the
    /// relay's transient refusal that keeps it on the phone; counted as
    /// waiting when the work asked was `beyond` what a phone does.
    fn not_paid(&self, envelopes: &[Envelope], beyond: bool) -> Vec<EnvelopeResult> {
        if beyond {
            self.note(|a| a.waiting += envelopes.len());
        }
        vec![EnvelopeResult::Rejected(wire::RejectCode::MailboxFull); envelopes.len()]
    }

    async fn send_paid(&self, what: Carrying<'_>, payment: Payment) -> Result<Sent> {
        let body = what.body();
        let mut request = self
            .http
            .post(self.url(what.path()))
            .header("Content-Type", wire::CONTENT_TYPE);
        let token = matches!(payment, Payment::Token(_));
        match payment {
            Payment::None => {}
            Payment::Work(p) => request = request.header(ADMISSION_HEADER, p),
            Payment::Token(t) => request = request.header("Authorization", t),
        }
        let r = request.body(body).send().await.map_err(network)?;
        if r.status().as_u16() == 429 && token {
            // Any 429 that names an effort refuses the token (spent, or
            // not this relay's): drop it and pay otherwise.
            if r.headers().contains_key(ADMISSION_EFFORT_HEADER) {
                return Ok(Sent::TokenRefused);
            }
        }
        if r.status().as_u16() == 429
            && let Some(effort) = effort_in(&r)
        {
            return Ok(Sent::Work(effort));
        }
        Ok(Sent::Answer(r))
    }

    /// The relay's token issuer directory (RFC 9578 §4, PROTOCOL.md §14.2):
    /// its token keys, current first, and its token challenge.
    pub async fn issuer_directory(&self) -> Result<crate::tokens::IssuerDirectory> {
        #[derive(serde::Deserialize)]
        struct Key {
            #[serde(rename = "token-type")]
            kind: u16,
            #[serde(rename = "token-key")]
            key: String,
        }
        #[derive(serde::Deserialize)]
        struct Directory {
            #[serde(rename = "token-keys")]
            keys: Vec<Key>,
            #[serde(rename = "amparo-token-challenge")]
            challenge: String,
        }
        let r = self
            .http
            .get(self.url(ISSUER_DIRECTORY_PATH))
            .send()
            .await
            .map_err(network)?;
        if !r.status().is_success() {
            return Err(relay_error(r).await);
        }
        let body = read_capped(r, 8 * 1024, "token issuer directory").await?;
        let d: Directory = serde_json::from_slice(&body)
            .map_err(|_| CoreError::Invalid("the relay's token issuer directory"))?;
        let challenge = amparo_protocol::b64::decode_vec(&d.challenge, 256, "token challenge")?;
        let keys = d
            .keys
            .iter()
            .filter(|k| k.kind == token::TOKEN_TYPE)
            .take(4)
            .map(|k| {
                let spki = amparo_protocol::b64::decode_vec(&k.key, 512, "token key")?;
                Ok(token::TokenKey::from_spki(&spki)?)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(crate::tokens::IssuerDirectory {
            keys,
            challenge_digest: amparo_protocol::primitives::sha256(&[&challenge]),
        })
    }

    /// Asks the relay to sign `n` (at most [`token::MAX_BATCH`]) blinded
    /// token requests for `token_key`, signed by `key` (a focal point's, or
    /// a facilitator's with its `voucher`), and finishes the tokens. Each
    /// is checked against the key before it is kept.
    pub async fn issue_tokens(
        &self,
        key: &SigningKey,
        voucher: Option<&amparo_protocol::voucher::Voucher>,
        token_key: &token::TokenKey,
        relay: &amparo_protocol::keys::KeyId,
        n: usize,
        now: UnixTime,
    ) -> Result<Vec<token::Token>> {
        let mut entropy = amparo_protocol::entropy::SystemEntropy::new();
        let mut requests = Vec::with_capacity(n);
        let mut pending = Vec::with_capacity(n);
        for _ in 0..n.min(token::MAX_BATCH) {
            let (r, p) = token::begin(token_key, relay, &mut entropy)?;
            requests.push(r);
            pending.push(p);
        }
        let body = token::encode_requests(&requests);
        let proof = RequestProof::sign(key, "POST", TOKENS_PATH, &body, now, &mut entropy)?;
        let mut request = self
            .http
            .post(self.url(TOKENS_PATH))
            .header("Content-Type", "application/octet-stream")
            .header(request::HEADER, proof.to_header());
        if let Some(v) = voucher {
            request = request.header(VOUCHER_HEADER, v.to_header());
        }
        let r = request.body(body).send().await.map_err(network)?;
        if !r.status().is_success() {
            return Err(relay_error(r).await);
        }
        let answer = read_capped(r, pending.len() * token::RESPONSE_LEN, "token responses").await?;
        if answer.len() != pending.len() * token::RESPONSE_LEN {
            return Err(CoreError::Invalid("the relay's token responses"));
        }
        pending
            .iter()
            .zip(answer.chunks_exact(token::RESPONSE_LEN))
            .map(|(p, sig)| Ok(token::finish(p, sig)?))
            .collect()
    }

    /// The relay's admission challenge now (PROTOCOL.md §14).
    pub async fn admission_challenge(&self) -> Result<admission::Challenge> {
        let r = self
            .http
            .get(self.url("/v1/admission"))
            .send()
            .await
            .map_err(network)?;
        if !r.status().is_success() {
            return Err(relay_error(r).await);
        }
        let bytes = read_capped(r, admission::CHALLENGE_LEN, "admission challenge").await?;
        Ok(admission::Challenge::decode(&bytes)?)
    }

    /// Solves the relay's challenge for `envelopes` at `effort`, on a
    /// blocking thread; the proof as the header carries it, or `None` when
    /// the work is more than a phone pays ([`MAX_WORK`]) or ran out.
    async fn work_for(&self, ids: &[EnvelopeId], effort: u32) -> Result<Option<String>> {
        if effort > MAX_WORK {
            return Ok(None);
        }
        // One challenge per sync (good for ten minutes or more): on 2G
        // every request counts.
        let held = self
            .admission
            .as_ref()
            .and_then(|a| a.lock().ok()?.challenge);
        let challenge = match held {
            Some(c) => c,
            None => {
                let c = self.admission_challenge().await?;
                self.note(|a| a.challenge = Some(c));
                c
            }
        };
        let ids = ids.to_vec();
        let proof = tokio::task::spawn_blocking(move || {
            let mut entropy = amparo_protocol::entropy::SystemEntropy::new();
            admission::solve_capped(&challenge, &ids, effort, &mut entropy)
        })
        .await
        .map_err(|_| CoreError::Invalid("the admission work stopped"))??;
        Ok(proof.map(|p| p.to_header()))
    }

    /// Fetches one page of the mailbox that `keys` own.
    pub async fn fetch(
        &self,
        keys: &RecipientKeys,
        after: u64,
        limit: u32,
        now: UnixTime,
        entropy: &mut dyn Entropy,
    ) -> Result<Page> {
        self.fetch_request(keys, after, limit, now, entropy)?.await
    }

    /// [`RelayClient::fetch`] signed now and sent when awaited: the future
    /// owns what it needs, so it can be spawned and run while the caller
    /// works on the page before (a focal point's pipelined mailbox fetch).
    pub fn fetch_request(
        &self,
        keys: &RecipientKeys,
        after: u64,
        limit: u32,
        now: UnixTime,
        entropy: &mut dyn Entropy,
    ) -> Result<impl Future<Output = Result<Page>> + Send + 'static> {
        let mailbox = keys.mailbox();
        let target = format!("/v1/mailboxes/{mailbox}/envelopes?after={after}&limit={limit}");
        let proof =
            RequestProof::sign(keys.signing(), "GET", &target, b"", now, entropy)?.to_header();
        let request = self
            .http
            .get(self.url(&target))
            .header(request::HEADER, proof);
        Ok(async move {
            let r = request.send().await.map_err(network)?;
            if !r.status().is_success() {
                return Err(relay_error(r).await);
            }
            let more = r.headers().get("Amparo-More").and_then(|v| v.to_str().ok()) == Some("1");
            let items = wire::decode_page(&read_capped(r, page_cap(limit), "mailbox page").await?)?;
            // Every envelope is for this mailbox, and cursors move forward
            // from `after`: a relay answering the same items again with
            // "more" set would otherwise keep a fetch going forever.
            let mut last = after;
            for (cursor, e) in &items {
                if e.mailbox() != mailbox {
                    return Err(CoreError::Protocol(
                        amparo_protocol::ProtocolError::Misaddressed,
                    ));
                }
                if *cursor <= last {
                    return Err(CoreError::Protocol(
                        amparo_protocol::ProtocolError::Invalid("cursor from the relay"),
                    ));
                }
                last = *cursor;
            }
            Ok(Page { items, more })
        })
    }

    /// Fetches one page (up to `limit` envelopes) of each of many mailboxes
    /// in one request ([`mailboxes::MAX_ENTRIES`] at most), each authorised
    /// by its key or a grant and given with the cursor to fetch after. One
    /// result per entry, in order: `None` where the relay refused a grant
    /// (expired). Every envelope is checked to belong to its entry's mailbox.
    pub async fn fetch_many(
        &self,
        entries: &[(FetchAuth<'_>, u64)],
        limit: u16,
        now: UnixTime,
        entropy: &mut dyn Entropy,
    ) -> Result<Vec<Option<Page>>> {
        Ok(self
            .fetch_many_metered(entries, limit, now, entropy)
            .await?
            .0)
    }

    /// [`RelayClient::fetch_many`], also returning the bytes of the request
    /// and answer bodies. The answer is read only up to what `count` entries
    /// of `limit` envelopes can take ([`mailboxes::max_answer_len_for`]), so
    /// a phone that sizes its requests to a data budget cannot be made to
    /// read past it, even by a lying relay.
    pub(crate) async fn fetch_many_metered(
        &self,
        entries: &[(FetchAuth<'_>, u64)],
        limit: u16,
        now: UnixTime,
        entropy: &mut dyn Entropy,
    ) -> Result<(Vec<Option<Page>>, usize)> {
        let body = mailboxes::sign_fetch(entries, limit, now, entropy)?;
        let sent = body.len();
        let r = self
            .http
            .post(self.url(mailboxes::FETCH_PATH))
            .header("Content-Type", wire::CONTENT_TYPE)
            .body(body)
            .send()
            .await
            .map_err(network)?;
        if !r.status().is_success() {
            return Err(relay_error(r).await);
        }
        let max = mailboxes::max_answer_len_for(entries.len(), limit);
        let bytes = read_capped(r, max, "mailboxes answer").await?;
        let received = bytes.len();
        Ok((checked_pages(entries, &bytes)?, sent + received))
    }

    /// Whether many-mailbox fetches that name their answer's size are worth
    /// trying with this relay: true until it refused one
    /// ([`FetchWithin::NotKnown`]).
    pub(crate) fn knows_fetch_within(&self) -> bool {
        self.fetch_within.load(Ordering::Relaxed)
    }

    /// [`RelayClient::fetch_many_metered`] in an answer of at most
    /// `max_bytes`, framing included (PROTOCOL.md §12.14, op 0x03): the
    /// relay stops adding envelopes before the next would go over it, so
    /// one request covers every mailbox within what a phone chose to spend.
    /// The answer is read no further than `max_bytes`, so a relay that
    /// ignored it cannot push a phone past its budget (the fetch fails
    /// instead). A relay that predates such requests refuses them:
    /// [`FetchWithin::NotKnown`], and this client does not try again.
    pub(crate) async fn fetch_many_within(
        &self,
        entries: &[(FetchAuth<'_>, u64)],
        limit: u16,
        max_bytes: u32,
        now: UnixTime,
        entropy: &mut dyn Entropy,
    ) -> Result<FetchWithin> {
        let body = mailboxes::sign_fetch_within(entries, limit, max_bytes, now, entropy)?;
        let sent = body.len();
        let r = self
            .http
            .post(self.url(mailboxes::FETCH_PATH))
            .header("Content-Type", wire::CONTENT_TYPE)
            .body(body)
            .send()
            .await
            .map_err(network)?;
        if r.status() == reqwest::StatusCode::BAD_REQUEST {
            let answer = read_capped(r, MAX_JSON_ANSWER, "relay error").await?;
            let parsed = serde_json::from_slice::<serde_json::Value>(&answer).ok();
            let field = |k: &str| {
                parsed
                    .as_ref()
                    .and_then(|v| v.get(k)?.as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            // A well-formed request of op 0x03 is refused as an invalid
            // field only by a relay that does not know the operation.
            if field("error") == "invalid_field" {
                self.fetch_within.store(false, Ordering::Relaxed);
                return Ok(FetchWithin::NotKnown(sent + answer.len()));
            }
            return Err(CoreError::Relay {
                status: 400,
                code: field("error"),
                message: field("message"),
            });
        }
        if !r.status().is_success() {
            return Err(relay_error(r).await);
        }
        let max = usize::try_from(max_bytes).unwrap_or(usize::MAX);
        let bytes = read_capped(r, max, "mailboxes answer").await?;
        let received = bytes.len();
        Ok(FetchWithin::Answer(
            checked_pages(entries, &bytes)?,
            sent + received,
        ))
    }
    /// Acknowledges envelopes of many mailboxes in one request (each entry's
    /// ids belong to the mailbox of its key; at most
    /// [`mailboxes::MAX_ACK_IDS`] ids in all). Returns how many were deleted.
    pub async fn ack_many(
        &self,
        entries: &[(&SigningKey, Vec<EnvelopeId>)],
        now: UnixTime,
        entropy: &mut dyn Entropy,
    ) -> Result<u64> {
        Ok(self.ack_many_metered(entries, now, entropy).await?.0)
    }

    /// [`RelayClient::ack_many`], also returning the bytes of the request
    /// and answer bodies.
    pub(crate) async fn ack_many_metered(
        &self,
        entries: &[(&SigningKey, Vec<EnvelopeId>)],
        now: UnixTime,
        entropy: &mut dyn Entropy,
    ) -> Result<(u64, usize)> {
        let body = mailboxes::sign_ack(entries, now, entropy)?;
        let sent = body.len();
        let r = self
            .http
            .post(self.url(mailboxes::ACK_PATH))
            .header("Content-Type", wire::CONTENT_TYPE)
            .body(body)
            .send()
            .await
            .map_err(network)?;
        if !r.status().is_success() {
            return Err(relay_error(r).await);
        }
        let answer = read_capped(r, MAX_JSON_ANSWER, "relay answer").await?;
        Ok((acknowledged_in(&answer)?, sent + answer.len()))
    }

    /// Fetches one page of a mailbox with a survivor's fetch grant (read
    /// only: a grant cannot acknowledge).
    pub async fn fetch_granted(
        &self,
        grant: &amparo_protocol::grant::FetchGrant,
        after: u64,
        limit: u32,
    ) -> Result<Page> {
        let target = format!(
            "/v1/mailboxes/{}/envelopes?after={after}&limit={limit}",
            grant.mailbox()
        );
        let r = self
            .http
            .get(self.url(&target))
            .header(amparo_protocol::grant::HEADER, grant.to_header())
            .send()
            .await
            .map_err(network)?;
        if !r.status().is_success() {
            return Err(relay_error(r).await);
        }
        let more = r.headers().get("Amparo-More").and_then(|v| v.to_str().ok()) == Some("1");
        let items = wire::decode_page(&read_capped(r, page_cap(limit), "mailbox page").await?)?;
        if items.iter().any(|(_, e)| e.mailbox() != grant.mailbox()) {
            return Err(CoreError::Protocol(
                amparo_protocol::ProtocolError::Misaddressed,
            ));
        }
        Ok(Page { items, more })
    }

    /// Acknowledges envelopes of the mailbox that `keys` own; the relay then
    /// deletes them. Returns how many were deleted.
    pub async fn ack(
        &self,
        keys: &RecipientKeys,
        ids: &[EnvelopeId],
        now: UnixTime,
        entropy: &mut dyn Entropy,
    ) -> Result<u64> {
        self.ack_request(keys, ids, now, entropy)?.await
    }

    /// [`RelayClient::ack`] signed now and sent when awaited, by a future
    /// that owns what it needs (so the next page need not wait for it).
    pub fn ack_request(
        &self,
        keys: &RecipientKeys,
        ids: &[EnvelopeId],
        now: UnixTime,
        entropy: &mut dyn Entropy,
    ) -> Result<impl Future<Output = Result<u64>> + Send + 'static> {
        let target = format!("/v1/mailboxes/{}/ack", keys.mailbox());
        let body = serde_json::to_vec(&serde_json::json!({
            "ids": ids.iter().map(|i| i.to_string()).collect::<Vec<_>>()
        }))
        .map_err(|_| {
            CoreError::Protocol(amparo_protocol::ProtocolError::Invalid("acknowledgement"))
        })?;
        let proof =
            RequestProof::sign(keys.signing(), "POST", &target, &body, now, entropy)?.to_header();
        let request = self
            .http
            .post(self.url(&target))
            .header(request::HEADER, proof)
            .header("Content-Type", "application/json")
            .body(body);
        Ok(async move {
            let r = request.send().await.map_err(network)?;
            if !r.status().is_success() {
                return Err(relay_error(r).await);
            }
            acknowledged(r).await
        })
    }

    /// Downloads the directory unless `etag` is still current.
    pub async fn directory(&self, etag: Option<&str>) -> Result<DirectoryFetch> {
        let mut req = self.http.get(self.url("/v1/directory"));
        if let Some(tag) = etag {
            req = req.header("If-None-Match", tag);
        }
        let r = req.send().await.map_err(network)?;
        match r.status().as_u16() {
            304 => Ok(DirectoryFetch::NotModified),
            404 => Ok(DirectoryFetch::Missing),
            s if (200..300).contains(&s) => {
                let etag = r
                    .headers()
                    .get("ETag")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                Ok(DirectoryFetch::Fresh {
                    bytes: read_capped(r, directory::MAX_SIGNED_LEN, "directory").await?,
                    etag,
                })
            }
            _ => Err(relay_error(r).await),
        }
    }

    /// Receipts a field relay holds from its upstream for `ids` (those it
    /// has; the caller verifies each). A relay without any — a central
    /// relay, or one older than this route — gives none.
    pub async fn upstream_receipts(&self, ids: &[EnvelopeId]) -> Result<Vec<Receipt>> {
        let body: Vec<u8> = ids.iter().flat_map(|i| i.0).collect();
        let r = self
            .http
            .post(self.url("/v1/receipts"))
            .header("Content-Type", wire::CONTENT_TYPE)
            .body(body)
            .send()
            .await
            .map_err(network)?;
        if r.status().as_u16() == 404 {
            return Ok(Vec::new());
        }
        if !r.status().is_success() {
            return Err(relay_error(r).await);
        }
        let max = ids.len().saturating_mul(amparo_protocol::receipt::LEN);
        let bytes = read_capped(r, max, "receipts").await?;
        if bytes.len() % amparo_protocol::receipt::LEN != 0 {
            return Err(CoreError::Protocol(
                amparo_protocol::ProtocolError::Invalid("receipts from the relay"),
            ));
        }
        bytes
            .chunks_exact(amparo_protocol::receipt::LEN)
            .map(|c| Receipt::decode(c).map_err(CoreError::from))
            .collect()
    }

    /// Publishes a coordinator-signed directory.
    pub async fn publish_directory(&self, signed: &[u8]) -> Result<()> {
        let r = self
            .http
            .put(self.url("/v1/directory"))
            .header("Content-Type", wire::CONTENT_TYPE)
            .body(signed.to_vec())
            .send()
            .await
            .map_err(network)?;
        if !r.status().is_success() {
            return Err(relay_error(r).await);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use amparo_protocol::ProtocolError;
    use amparo_protocol::envelope;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A relay that answers every request with `head` and then `body_len`
    /// bytes (or bytes until the client goes away, when `None`), and counts
    /// how many body bytes it managed to send.
    async fn lying_relay(
        head: &'static str,
        body_len: Option<usize>,
    ) -> (String, tokio::task::JoinHandle<usize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 64 * 1024];
            let _ = s.read(&mut buf).await;
            s.write_all(head.as_bytes()).await.unwrap();
            let chunk = vec![0u8; 64 * 1024];
            let mut sent = 0;
            while body_len.is_none_or(|n| sent < n) {
                let take = body_len.map_or(chunk.len(), |n| (n - sent).min(chunk.len()));
                if s.write_all(&chunk[..take]).await.is_err() {
                    break;
                }
                sent += take;
                if sent > 256 * 1024 * 1024 {
                    break;
                }
            }
            sent
        });
        (format!("http://{addr}"), task)
    }

    fn client(url: &str) -> RelayClient {
        RelayClient::new(&RelayConfig::new(url)).unwrap()
    }

    #[tokio::test]
    async fn an_answer_announced_too_large_is_refused_before_reading() {
        let (url, relay) = lying_relay(
            "HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n",
            Some(0),
        )
        .await;
        let err = client(&url).directory(None).await.unwrap_err();
        assert!(
            matches!(
                err,
                CoreError::Protocol(ProtocolError::TooLarge {
                    what: "directory",
                    ..
                })
            ),
            "{err:?}"
        );
        relay.await.unwrap();
    }

    #[tokio::test]
    async fn an_endless_answer_is_cut_at_the_cap() {
        let (url, relay) = lying_relay("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", None).await;
        let err = client(&url)
            .upstream_receipts(&[EnvelopeId([1; 16]); 10])
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                CoreError::Protocol(ProtocolError::TooLarge {
                    what: "receipts",
                    max: 930,
                    ..
                })
            ),
            "{err:?}"
        );
        // The client stopped reading long before the relay stopped sending.
        let sent = relay.await.unwrap();
        assert!(sent < 256 * 1024 * 1024, "the client read {sent} bytes");
    }

    #[tokio::test]
    async fn answers_within_their_bounds_are_read_whole() {
        let (url, relay) =
            lying_relay("HTTP/1.1 200 OK\r\nContent-Length: 93\r\n\r\n", Some(93)).await;
        // 93 zero bytes are one receipt-sized record: read whole, then
        // refused by the receipt decoder, not by the size cap.
        let err = client(&url)
            .upstream_receipts(&[EnvelopeId([1; 16])])
            .await
            .unwrap_err();
        assert!(
            !matches!(err, CoreError::Protocol(ProtocolError::TooLarge { .. })),
            "{err:?}"
        );
        relay.await.unwrap();
    }

    #[tokio::test]
    async fn a_many_mailbox_answer_is_read_no_further_than_its_limit_allows() {
        // A relay that answers one mailbox and limit 2 with endless bytes:
        // the phone stops at two of the largest envelopes and their framing,
        // so a data budget sized from the request holds against a liar.
        let (url, relay) = lying_relay("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", None).await;
        let keys =
            RecipientKeys::generate(&mut amparo_protocol::entropy::SystemEntropy::new()).unwrap();
        let mut e = amparo_protocol::entropy::SystemEntropy::new();
        let err = client(&url)
            .fetch_many_metered(
                &[(FetchAuth::Key(keys.signing()), 0)],
                2,
                UnixTime(1),
                &mut e,
            )
            .await
            .unwrap_err();
        let max = mailboxes::max_answer_len_for(1, 2);
        assert_eq!(max, 2 + 4 + 2 * (12 + envelope::MAX_LEN));
        assert!(
            matches!(
                err,
                CoreError::Protocol(ProtocolError::TooLarge { what: "mailboxes answer", max: m, .. }) if m == max
            ),
            "{err:?}"
        );
        let sent = relay.await.unwrap();
        assert!(sent < 256 * 1024 * 1024, "the client read {sent} bytes");
    }

    #[tokio::test]
    async fn a_relay_that_ignores_the_size_asked_for_is_read_no_further() {
        // Asked for an answer of at most 70 000 bytes, a relay sends endless
        // bytes (as one that ignored the size would send 4 MiB): the phone
        // stops at the size it named.
        let (url, relay) = lying_relay("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", None).await;
        let mut e = amparo_protocol::entropy::SystemEntropy::new();
        let keys = RecipientKeys::generate(&mut e).unwrap();
        let c = client(&url);
        let err = c
            .fetch_many_within(
                &[(FetchAuth::Key(keys.signing()), 0)],
                100,
                70_000,
                UnixTime(1),
                &mut e,
            )
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                CoreError::Protocol(ProtocolError::TooLarge {
                    what: "mailboxes answer",
                    max: 70_000,
                    ..
                })
            ),
            "{err:?}"
        );
        let sent = relay.await.unwrap();
        assert!(sent < 256 * 1024 * 1024, "the client read {sent} bytes");
        // That is not taken for a relay that does not know the size.
        assert!(c.knows_fetch_within());
    }

    #[tokio::test]
    async fn a_relay_that_does_not_know_the_size_is_not_asked_again() {
        let body = r#"{"error":"invalid_field","message":"The request body is not valid: invalid mailboxes request operation."}"#;
        let head: &'static str = Box::leak(
            format!(
                "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_boxed_str(),
        );
        let (url, relay) = lying_relay(head, Some(0)).await;
        let mut e = amparo_protocol::entropy::SystemEntropy::new();
        let keys = RecipientKeys::generate(&mut e).unwrap();
        let c = client(&url);
        let copy = c.clone();
        let got = c
            .fetch_many_within(
                &[(FetchAuth::Key(keys.signing()), 0)],
                1,
                70_000,
                UnixTime(1),
                &mut e,
            )
            .await
            .unwrap();
        let FetchWithin::NotKnown(bytes) = got else {
            panic!("{got:?}");
        };
        // The request (head 26, size, limit and count 8, an entry 41, its
        // signature 64) and the error were counted.
        assert_eq!(bytes, 26 + 8 + 41 + 64 + body.len());
        assert!(!copy.knows_fetch_within());
        relay.await.unwrap();
    }

    #[test]
    fn page_caps_follow_the_limit() {
        assert_eq!(page_cap(1), envelope::MAX_LEN + 12);
        assert_eq!(page_cap(u32::MAX), MAX_PAGE_ANSWER);
        assert!(mailboxes::max_answer_len(256) > mailboxes::ANSWER_BUDGET + envelope::MAX_LEN);
    }
}
