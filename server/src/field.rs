//! The field relay (`amparo-relay --upstream URL`): the same relay on a
//! laptop, Raspberry Pi or spare phone at a community centre or clinic,
//! where phones have local Wi-Fi but the internet comes and goes.
//!
//! - Phones upload as to any relay and get this relay's receipt at once
//!   (their apps show "handed over", not "delivered").
//! - A background task forwards every stored envelope upstream in batches
//!   whenever the upstream answers, and keeps the upstream's receipts, which
//!   phones collect with `POST /v1/receipts`. An envelope leaves the queue
//!   only when the upstream's receipt for it verifies; a lying or broken
//!   upstream leaves it queued for the next attempt.
//! - The same task mirrors the upstream's signed directory, verified against
//!   the coordinator key (a field relay cannot forge one).
//! - Mailbox fetches and acknowledgements are checked here, then passed
//!   upstream with the phone's own signature; what comes back is cached, so
//!   a phone can pick up sealed replies while the upstream is out of reach.
//!
//! What this relay learns is what any relay learns: mailbox ids, sizes,
//! hours. It forwards no addresses or headers but the phone's signature.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::HeaderValue;
use actix_web::{HttpRequest, HttpResponse, web};
use amparo_protocol::directory::{self, SignedDirectory};
use amparo_protocol::envelope::EnvelopeId;
use amparo_protocol::keys::MailboxId;
use amparo_protocol::mailboxes::{self, AckEntry, FetchResult, VerifiedFetch};
use amparo_protocol::primitives::ed25519::VerifyingKey;
use amparo_protocol::receipt::{self, Receipt};
use amparo_protocol::request;
use amparo_protocol::wire::{self, EnvelopeResult, RejectCode};

use crate::config::Upstream;
use crate::error::ApiError;
use crate::quota::{DiskProbe, statvfs_probe};
use crate::shared::{Clock, MAX_RECEIPT_IDS, answer_room, read_body, within_budget};
use crate::store::field_queue::{CacheCaps, Queued};
use crate::store::sqlite::database_dir;
use crate::store::{BoundedPage, PageEnd, PageRoom, SqliteStore, Store, StoreError};

/// Most bytes of one single-mailbox page (`GET
/// /v1/mailboxes/{mailbox}/envelopes`), envelopes with their cursors and
/// lengths: a page stops before the envelope that would pass it (the first
/// always goes) and says more wait, so the memory a page takes follows
/// this, not `limit` × the largest envelope (500 × 64 KiB).
pub const PAGE_BYTES: usize = 8 * 1024 * 1024;

/// What a single-mailbox page of `limit` envelopes may hold.
pub fn single_page(limit: u32) -> PageRoom {
    PageRoom {
        limit,
        room: PAGE_BYTES,
        item_head: mailboxes::ITEM_HEAD,
    }
}

/// Whether more may wait after a single-mailbox page of `limit`: it is
/// full, or it stopped at its byte room.
pub fn single_page_more(page: &BoundedPage, limit: u32) -> bool {
    page.envelopes.len() == limit as usize || page.end == PageEnd::Cut
}

/// What one mailbox's page in a many-mailbox answer may hold: `limit`
/// envelopes within the `room` the answer has left.
pub fn answer_page(limit: u32, room: usize) -> PageRoom {
    PageRoom {
        limit,
        room,
        item_head: mailboxes::ITEM_HEAD,
    }
}

/// One mailbox's result in a many-mailbox answer, from its page read
/// within the room left ([`answer_page`]); takes its bytes off `room`. As
/// [`within_budget`]: a page cut at the room says more and leaves no room
/// for the pages after it; a full page says more only when more wait.
pub fn answer_result(page: BoundedPage, limit: u32, room: &mut usize) -> FetchResult<Vec<u8>> {
    let end = page.end;
    let mut result = within_budget(page.envelopes, limit, room);
    if let FetchResult::Page { more, .. } = &mut result {
        match end {
            PageEnd::Whole => {}
            PageEnd::More => *more = true,
            PageEnd::Cut => {
                *more = true;
                *room = 0;
            }
        }
    }
    result
}

/// Most envelopes per forwarding request.
const FORWARD_BATCH: u32 = 64;
/// Most bytes per forwarding request (under a relay's default 8 MiB).
const FORWARD_BYTES: usize = 4 * 1024 * 1024;
/// Time limit for one upstream request.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(60);

/// Why forwarding stopped for now.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// The upstream could not be reached or did not answer.
    #[error("the upstream relay could not be reached")]
    Unreachable,
    /// The upstream answered with something other than results.
    #[error("the upstream relay answered {0}")]
    Refused(u16),
    /// The upstream's answer was malformed.
    #[error("the upstream relay's answer is malformed")]
    Malformed,
    /// Local storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one forwarding pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Forwarded {
    /// Envelopes whose upstream receipt verified (they left the queue).
    pub delivered: usize,
    /// Envelopes the upstream refused outright (dropped here, logged by code).
    pub refused: usize,
    /// Envelopes whose receipt did not verify (kept, retried later).
    pub unverified: usize,
    /// Envelopes the upstream could not take now (full or busy: kept,
    /// retried at a later round).
    pub postponed: usize,
}

/// What forwarding did since the field relay started, for `/metrics`:
/// counts of envelopes only, never per client or per mailbox.
#[derive(Debug, Default)]
pub struct ForwardCounts {
    /// Envelopes whose upstream receipt verified (they left the queue).
    pub forwarded: AtomicU64,
    /// Times an envelope was postponed by a full or busy upstream (it
    /// stays queued; one postponed at three rounds counts three).
    pub postponed: AtomicU64,
    /// Envelopes the upstream refused outright (dropped here).
    pub refused: AtomicU64,
    /// Envelopes whose upstream receipt did not verify (kept).
    pub unverified: AtomicU64,
}

impl ForwardCounts {
    fn count(&self, done: &Forwarded) {
        let add = |c: &AtomicU64, n: usize| {
            c.fetch_add(n as u64, Ordering::Relaxed);
        };
        add(&self.forwarded, done.delivered);
        add(&self.postponed, done.postponed);
        add(&self.refused, done.refused);
        add(&self.unverified, done.unverified);
    }
}

/// Where one forwarding round got to.
#[derive(Debug, Default, Clone)]
pub struct Round {
    /// The queue position of the last envelope sent.
    pub after: u64,
    /// Mailboxes the upstream said are full: their envelopes wait for the
    /// next round.
    pub full: std::collections::HashSet<[u8; 12]>,
    /// The upstream said it is full or busy as a whole (`relay_full`,
    /// `unavailable`): the round ends, and the rest of the queue waits for
    /// the next one instead of crossing a poor link only to be refused.
    pub ended: bool,
}

/// A field relay's link to its upstream.
pub struct Field {
    store: SqliteStore,
    http: reqwest::Client,
    upstream: Upstream,
    coordinator: Option<VerifyingKey>,
    clock: Clock,
    directory_etag: Mutex<Option<String>>,
    counts: Arc<ForwardCounts>,
    /// Reads the free disk where the database is (the cache of upstream
    /// mailboxes does not grow below `min_free_disk_bytes`).
    disk: Option<DiskProbe>,
}

impl Field {
    /// A field relay over `store` forwarding to `upstream`.
    pub fn new(
        store: SqliteStore,
        upstream: Upstream,
        coordinator: Option<VerifyingKey>,
        clock: Clock,
    ) -> Result<Field, std::io::Error> {
        let http = reqwest::Client::builder()
            .timeout(UPSTREAM_TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            // Under the upstream's 5 s keep-alive, so a pooled connection
            // is never reused just as the upstream closes it.
            .pool_idle_timeout(Duration::from_secs(4))
            .user_agent("amparo-relay")
            .build()
            .map_err(std::io::Error::other)?;
        Ok(Field {
            http,
            upstream,
            coordinator,
            clock,
            directory_etag: Mutex::new(None),
            counts: Arc::default(),
            disk: store.path().map(|p| statvfs_probe(database_dir(p))),
            store,
        })
    }

    /// Reads the free disk with `probe` instead (tests).
    pub fn with_disk_probe(mut self, probe: DiskProbe) -> Field {
        self.disk = Some(probe);
        self
    }

    /// What the cache of upstream mailboxes may hold now: its caps, and
    /// the room the disk has above its minimum free (free pages inside the
    /// database count as free, as for the envelopes' watermark).
    fn cache_caps(&self) -> CacheCaps {
        let c = self.upstream.cache;
        let disk_room = self.disk.as_ref().and_then(|probe| probe()).map(|free| {
            free.saturating_add(self.store.reusable_bytes())
                .saturating_sub(c.min_free_disk_bytes)
        });
        CacheCaps {
            mailbox_bytes: c.mailbox_bytes,
            total_bytes: c.max_bytes,
            disk_room,
        }
    }

    /// What forwarding did so far (rendered in `/metrics`).
    pub fn counts(&self) -> Arc<ForwardCounts> {
        self.counts.clone()
    }

    fn url(&self, target: &str) -> String {
        format!("{}{target}", self.upstream.url)
    }

    /// Keys whose receipts count as delivered: the configured upstream key
    /// and the relays of the mirrored, coordinator-signed directory.
    async fn trusted(&self) -> Result<Vec<VerifyingKey>, StoreError> {
        let mut keys: Vec<VerifyingKey> = self.upstream.key.into_iter().collect();
        if let (Some(coordinator), Some((_, bytes))) =
            (&self.coordinator, self.store.directory().await?)
            && let Ok(signed) = SignedDirectory::verify(&bytes, coordinator)
        {
            keys.extend(
                signed
                    .directory()
                    .relays
                    .iter()
                    .map(|r| VerifyingKey(r.receipt_key)),
            );
        }
        Ok(keys)
    }

    /// Forwards one batch of the round, from where the round got to;
    /// returns how many envelopes were sent and what happened, or why it
    /// could not.
    pub async fn forward_batch(
        &self,
        round: &mut Round,
    ) -> Result<(usize, Forwarded), ForwardError> {
        if round.ended {
            return Ok((0, Forwarded::default()));
        }
        let queued = self
            .store
            .queued_for_upstream(round.after, FORWARD_BATCH, FORWARD_BYTES, &round.full)
            .await?;
        let Some(last) = queued.last() else {
            return Ok((0, Forwarded::default()));
        };
        let last = last.seq;
        let mut resp = self.post_batch(&queued, None).await?;
        if let Some(effort) = work_asked(&resp) {
            // The upstream is pressed and asks admission work (PROTOCOL.md
            // §14): the field relay pays it for what it forwards, once.
            let ids: Vec<EnvelopeId> = queued.iter().map(|q| EnvelopeId(q.id)).collect();
            let proof = self.work_for(&ids, effort).await?;
            resp = self.post_batch(&queued, Some(proof)).await?;
        }
        if resp.status() != reqwest::StatusCode::OK {
            return Err(ForwardError::Refused(resp.status().as_u16()));
        }
        let max = wire::max_results_len(queued.len());
        let bytes = read_capped(resp, max)
            .await
            .ok_or(ForwardError::Unreachable)?;
        let results = wire::decode_results(&bytes).map_err(|_| ForwardError::Malformed)?;
        if results.len() != queued.len() {
            return Err(ForwardError::Malformed);
        }
        let trusted = self.trusted().await?;
        let mut done = Forwarded::default();
        let mut record = Vec::new();
        let mut dropped = Vec::new();
        for (q, result) in queued.iter().zip(results) {
            match result {
                EnvelopeResult::Accepted(receipt)
                    if receipt.envelope_id == EnvelopeId(q.id)
                        && trusted.iter().any(|k| receipt.verify(k).is_ok()) =>
                {
                    record.push((q.id, receipt.encode().to_vec()));
                    done.delivered += 1;
                }
                EnvelopeResult::Accepted(_) => done.unverified += 1,
                EnvelopeResult::Rejected(code) if code.is_transient() => {
                    // Full or busy upstream: it stays queued here and goes
                    // at a later round; nothing is dropped to make room.
                    // A full mailbox holds up only its own envelopes (the
                    // ones behind them go now); a full or busy upstream
                    // ends the round, since the rest would be refused too.
                    done.postponed += 1;
                    if code == RejectCode::MailboxFull {
                        round.full.insert(q.mailbox);
                    } else {
                        round.ended = true;
                    }
                }
                EnvelopeResult::Rejected(code) => {
                    tracing::warn!(
                        code = code.name(),
                        "the upstream refused an envelope; dropping it here"
                    );
                    dropped.push(q.id);
                    done.refused += 1;
                }
            }
        }
        round.after = last;
        let hour = (self.clock)().hours();
        self.store.record_upstream(&record, hour).await?;
        self.store.drop_queued(&dropped).await?;
        // Counted once what it says is on record.
        self.counts.count(&done);
        Ok((queued.len(), done))
    }

    async fn post_batch(
        &self,
        queued: &[Queued],
        proof: Option<String>,
    ) -> Result<reqwest::Response, ForwardError> {
        // Encoded for each sending: a second one only follows a refusal.
        let body = wire::encode_batch(queued.iter().map(|q| q.bytes.as_slice()));
        let mut request = self
            .http
            .post(self.url("/v1/envelopes"))
            .header(reqwest::header::CONTENT_TYPE, wire::CONTENT_TYPE);
        if let Some(p) = proof {
            request = request.header(crate::admission::PROOF_HEADER, p);
        }
        request
            .body(body)
            .send()
            .await
            .map_err(|_| ForwardError::Unreachable)
    }

    /// Solves the upstream's admission challenge for `ids` at `effort`, on
    /// a blocking thread. The challenge must be signed by a key the field
    /// relay trusts for receipts; more than [`FIELD_MAX_WORK`] is not paid
    /// (the batch waits for a later round).
    async fn work_for(&self, ids: &[EnvelopeId], effort: u32) -> Result<String, ForwardError> {
        if effort > FIELD_MAX_WORK {
            return Err(ForwardError::Refused(429));
        }
        let resp = self
            .http
            .get(self.url("/v1/admission"))
            .send()
            .await
            .map_err(|_| ForwardError::Unreachable)?;
        if resp.status() != reqwest::StatusCode::OK {
            return Err(ForwardError::Refused(resp.status().as_u16()));
        }
        let bytes = read_capped(resp, amparo_protocol::admission::CHALLENGE_LEN)
            .await
            .ok_or(ForwardError::Unreachable)?;
        let challenge = amparo_protocol::admission::Challenge::decode(&bytes)
            .map_err(|_| ForwardError::Malformed)?;
        let trusted = self.trusted().await?;
        if !trusted.iter().any(|k| challenge.verify(k).is_ok()) {
            return Err(ForwardError::Malformed);
        }
        let ids = ids.to_vec();
        let proof = tokio::task::spawn_blocking(move || {
            let mut entropy = amparo_protocol::entropy::SystemEntropy::new();
            amparo_protocol::admission::solve_capped(&challenge, &ids, effort, &mut entropy)
        })
        .await
        .map_err(|_| ForwardError::Malformed)?
        .map_err(|_| ForwardError::Malformed)?;
        Ok(proof.ok_or(ForwardError::Refused(429))?.to_header())
    }

    /// One forwarding round: goes through the whole queue once, from its
    /// head, past envelopes the upstream postponed (a full mailbox
    /// upstream holds up only its own envelopes), and stops when the queue
    /// ends, the upstream fails, says it is full or busy as a whole
    /// (`relay_full`, `unavailable`), or its receipts stop verifying.
    pub async fn forward_all(&self) -> Result<Forwarded, ForwardError> {
        let mut total = Forwarded::default();
        let mut round = Round::default();
        loop {
            let (sent, done) = self.forward_batch(&mut round).await?;
            total.delivered += done.delivered;
            total.refused += done.refused;
            total.unverified += done.unverified;
            total.postponed += done.postponed;
            if sent == 0 || done.unverified == sent || round.ended {
                return Ok(total);
            }
        }
    }

    /// Fetches a newer directory from upstream, if it verifies against the
    /// coordinator key. Returns the version stored, if any.
    pub async fn mirror_directory(&self) -> Result<Option<u64>, ForwardError> {
        let Some(coordinator) = self.coordinator else {
            return Ok(None);
        };
        let etag = self.directory_etag.lock().ok().and_then(|e| e.clone());
        let mut req = self.http.get(self.url("/v1/directory"));
        if let Some(tag) = &etag {
            req = req.header(reqwest::header::IF_NONE_MATCH, tag);
        }
        let resp = req.send().await.map_err(|_| ForwardError::Unreachable)?;
        match resp.status() {
            reqwest::StatusCode::OK => {}
            reqwest::StatusCode::NOT_MODIFIED | reqwest::StatusCode::NOT_FOUND => return Ok(None),
            other => return Err(ForwardError::Refused(other.as_u16())),
        }
        let tag = resp
            .headers()
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = read_capped(resp, directory::MAX_SIGNED_LEN)
            .await
            .ok_or(ForwardError::Unreachable)?;
        let Ok(signed) = SignedDirectory::verify(&bytes, &coordinator) else {
            tracing::warn!(
                "the upstream's directory does not verify against the coordinator key; ignored"
            );
            return Ok(None);
        };
        let stored = self.store.put_directory(signed.version(), &bytes).await?;
        if let Ok(mut e) = self.directory_etag.lock() {
            *e = tag;
        }
        Ok(stored.then_some(signed.version()))
    }

    /// Runs forwarding and mirroring in the background, every interval.
    pub fn spawn(self: Arc<Self>, retention_hours: u32) {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(self.upstream.interval_secs));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut was_reachable = true;
            loop {
                tick.tick().await;
                let _ = self.mirror_directory().await;
                match self.forward_all().await {
                    Ok(done) => {
                        if !was_reachable {
                            tracing::info!("the upstream relay is reachable again");
                        }
                        was_reachable = true;
                        if done.delivered > 0 || done.refused > 0 {
                            tracing::info!(
                                delivered = done.delivered,
                                refused = done.refused,
                                "forwarded upstream"
                            );
                        }
                        if done.postponed > 0 {
                            tracing::info!(
                                kept = done.postponed,
                                "the upstream is full or busy; envelopes wait here for a later round"
                            );
                        }
                        if done.unverified > 0 {
                            tracing::warn!(
                                kept = done.unverified,
                                "upstream receipts did not verify; envelopes kept for the next attempt"
                            );
                        }
                    }
                    Err(ForwardError::Unreachable) => {
                        if was_reachable {
                            tracing::info!(
                                "the upstream relay cannot be reached; envelopes wait here"
                            );
                        }
                        was_reachable = false;
                    }
                    Err(e) => tracing::warn!(error = %e, "forwarding stopped; will retry"),
                }
                let before = (self.clock)().hours().saturating_sub(retention_hours);
                if let Err(e) = self.store.expire_field(before).await {
                    tracing::warn!(error = %e, "field relay retention failed; will retry");
                }
            }
        });
    }

    /// Passes a checked mailbox fetch upstream and caches what it returns;
    /// serves the cache when the upstream cannot be reached.
    pub async fn fetch(
        &self,
        req: &HttpRequest,
        target: &str,
        mailbox: &MailboxId,
        after: u64,
        limit: u32,
    ) -> Result<HttpResponse, ApiError> {
        let mut up = self.http.get(self.url(target));
        for name in [request::HEADER, amparo_protocol::grant::HEADER] {
            if let Some(value) = req.headers().get(name) {
                up = up.header(name, value.as_bytes());
            }
        }
        match up.send().await {
            Ok(resp) if resp.status() == reqwest::StatusCode::OK => {
                let more = resp
                    .headers()
                    .get("Amparo-More")
                    .is_some_and(|v| v.as_bytes() == b"1");
                let body = read_capped(resp, wire::max_page_len(limit))
                    .await
                    .ok_or_else(ApiError::upstream_unavailable)?;
                let page =
                    wire::decode_page(&body).map_err(|_| ApiError::upstream_unavailable())?;
                let items: Vec<([u8; 16], Vec<u8>)> = page
                    .into_iter()
                    .map(|(_, env)| (env.id().0, env.into_bytes()))
                    .collect();
                self.store
                    .cache_mailbox(
                        &mailbox.0,
                        &items,
                        (self.clock)().hours(),
                        self.cache_caps(),
                    )
                    .await?;
                Ok(page_response(body.to_vec(), more))
            }
            Ok(resp) => pass_through(resp).await,
            Err(_) => {
                let page = self
                    .store
                    .cached_mailbox_within(&mailbox.0, after, single_page(limit))
                    .await?;
                let more = single_page_more(&page, limit);
                Ok(page_response(
                    wire::encode_page(
                        page.envelopes
                            .iter()
                            .map(|e| (e.cursor, e.bytes.as_slice())),
                    ),
                    more,
                ))
            }
        }
    }

    /// Passes a checked acknowledgement upstream and drops the acknowledged
    /// envelopes from the cache. With the upstream out of reach only the
    /// cache is cleared: the phone acknowledges upstream itself later (its
    /// app files each message once, so seeing one again is harmless).
    pub async fn ack(
        &self,
        req: &HttpRequest,
        target: &str,
        mailbox: &MailboxId,
        body: Vec<u8>,
        ids: &[[u8; 16]],
    ) -> Result<HttpResponse, ApiError> {
        let local = self.store.uncache_mailbox(&mailbox.0, ids).await?;
        let mut up = self
            .http
            .post(self.url(target))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(sig) = req.headers().get(request::HEADER) {
            up = up.header(request::HEADER, sig.as_bytes());
        }
        match up.send().await {
            Ok(resp) => pass_through(resp).await,
            Err(_) => Ok(HttpResponse::Ok().json(serde_json::json!({ "acknowledged": local }))),
        }
    }
}

impl Field {
    /// Passes a checked multi-mailbox fetch upstream as it came (the
    /// upstream checks its signatures again) and caches each mailbox's page
    /// for pickup offline; with the upstream out of reach, answers every
    /// mailbox from the cache. Either way the answer is no longer than the
    /// request allows (the size it named, or 4 MiB): the upstream's is read
    /// no further than that, and one from the cache stops there.
    pub async fn fetch_many(
        &self,
        body: Vec<u8>,
        fetch: &VerifiedFetch,
        limit: u32,
    ) -> Result<HttpResponse, ApiError> {
        let entries = &fetch.entries;
        let up = self
            .http
            .post(self.url(mailboxes::FETCH_PATH))
            .header(reqwest::header::CONTENT_TYPE, wire::CONTENT_TYPE)
            .body(body)
            .send()
            .await;
        match up {
            Ok(resp) if resp.status() == reqwest::StatusCode::OK => {
                let answer = read_capped(resp, fetch.longest_answer())
                    .await
                    .ok_or_else(ApiError::upstream_unavailable)?;
                let results = mailboxes::decode_fetch_answer(&answer, entries.len())
                    .map_err(|_| ApiError::upstream_unavailable())?;
                let hour = (self.clock)().hours();
                let mut rows: Vec<([u8; 12], [u8; 16], Vec<u8>)> = Vec::new();
                for (entry, result) in entries.iter().zip(results) {
                    if let FetchResult::Page { items, .. } = result {
                        rows.extend(
                            items
                                .into_iter()
                                .filter(|(_, env)| env.mailbox() == entry.mailbox)
                                .map(|(_, env)| (entry.mailbox.0, env.id().0, env.into_bytes())),
                        );
                    }
                }
                self.store
                    .cache_envelopes(
                        rows.iter()
                            .map(|(m, id, b)| (*m, *id, b.as_slice()))
                            .collect(),
                        hour,
                        self.cache_caps(),
                    )
                    .await?;
                Ok(HttpResponse::Ok()
                    .content_type(wire::CONTENT_TYPE)
                    .body(answer.to_vec()))
            }
            Ok(resp) => pass_through(resp).await,
            Err(_) => {
                let mut budget = answer_room(fetch);
                let mut results = Vec::with_capacity(entries.len());
                for entry in entries {
                    if !entry.allowed {
                        results.push(FetchResult::Refused);
                        continue;
                    }
                    let page = if budget == 0 {
                        BoundedPage {
                            envelopes: Vec::new(),
                            end: PageEnd::Cut,
                        }
                    } else {
                        self.store
                            .cached_mailbox_within(
                                &entry.mailbox.0,
                                entry.after,
                                answer_page(limit, budget),
                            )
                            .await?
                    };
                    results.push(answer_result(page, limit, &mut budget));
                }
                Ok(HttpResponse::Ok()
                    .content_type(wire::CONTENT_TYPE)
                    .body(mailboxes::encode_fetch_answer(results)))
            }
        }
    }

    /// Passes a checked multi-mailbox acknowledgement upstream and drops the
    /// acknowledged envelopes from the cache (as [`Field::ack`] does for one
    /// mailbox).
    pub async fn ack_many(
        &self,
        body: Vec<u8>,
        entries: &[AckEntry],
    ) -> Result<HttpResponse, ApiError> {
        let mut local = 0;
        for entry in entries {
            let ids: Vec<[u8; 16]> = entry.ids.iter().map(|i| i.0).collect();
            local += self.store.uncache_mailbox(&entry.mailbox.0, &ids).await?;
        }
        let up = self
            .http
            .post(self.url(mailboxes::ACK_PATH))
            .header(reqwest::header::CONTENT_TYPE, wire::CONTENT_TYPE)
            .body(body)
            .send()
            .await;
        match up {
            Ok(resp) => pass_through(resp).await,
            Err(_) => Ok(HttpResponse::Ok().json(serde_json::json!({ "acknowledged": local }))),
        }
    }
}

fn page_response(body: Vec<u8>, more: bool) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(wire::CONTENT_TYPE)
        .insert_header((
            "Amparo-More",
            HeaderValue::from_static(if more { "1" } else { "0" }),
        ))
        .body(body)
}

/// Largest upstream answer passed through as it came (a JSON error or
/// acknowledgement count).
const MAX_PASSED_THROUGH: usize = 64 * 1024;

/// Reads an upstream answer's body, or `None` when the connection failed or
/// the body is longer than `max`, which every request here bounds. The
/// upstream is trusted to relay, not to be well-behaved: an endless answer
/// must not fill a field relay's memory.
/// Most admission work a field relay does for one forwarded batch
/// (PROTOCOL.md §14): a field relay is a small machine of its own, and pays
/// for the phones it carries; above this the batch waits for a later round.
pub const FIELD_MAX_WORK: u32 = 16_384;

/// The effort the upstream asks, if it refused the batch for want of
/// admission work.
fn work_asked(resp: &reqwest::Response) -> Option<u32> {
    if resp.status() != reqwest::StatusCode::TOO_MANY_REQUESTS {
        return None;
    }
    resp.headers()
        .get(crate::admission::EFFORT_HEADER)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

async fn read_capped(mut resp: reqwest::Response, max: usize) -> Option<Vec<u8>> {
    if resp
        .content_length()
        .is_some_and(|len| usize::try_from(len).map_or(true, |len| len > max))
    {
        return None;
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.ok()? {
        if body.len() + chunk.len() > max {
            return None;
        }
        body.extend_from_slice(&chunk);
    }
    Some(body)
}

/// The upstream's answer, as it came (status, type, body; no other header).
async fn pass_through(resp: reqwest::Response) -> Result<HttpResponse, ApiError> {
    let status = StatusCode::from_u16(resp.status().as_u16())
        .map_err(|_| ApiError::upstream_unavailable())?;
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_owned();
    let body = read_capped(resp, MAX_PASSED_THROUGH)
        .await
        .ok_or_else(ApiError::upstream_unavailable)?;
    Ok(HttpResponse::build(status)
        .content_type(content_type)
        .body(body))
}

/// `POST /v1/receipts`: the upstream receipts this field relay holds for
/// the envelope ids in the body (concatenated 16-byte ids), as concatenated
/// receipts. A central relay has none to hand down and answers an empty body.
pub async fn receipts(
    req: HttpRequest,
    payload: web::Payload,
    field: Option<web::Data<Field>>,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(&req, payload, MAX_RECEIPT_IDS * 16).await?;
    if body.len() % 16 != 0 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_ids",
            "The body must be envelope ids of 16 bytes each, one after the other.",
        ));
    }
    let ids: Vec<[u8; 16]> = body
        .chunks_exact(16)
        .filter_map(|c| c.try_into().ok())
        .collect();
    let mut out = Vec::new();
    if let Some(field) = field {
        for r in field.store.upstream_receipts(&ids).await? {
            // Only well-formed receipts were recorded; check anyway.
            if r.len() == receipt::LEN && Receipt::decode(&r).is_ok() {
                out.extend_from_slice(&r);
            }
        }
    }
    Ok(HttpResponse::Ok()
        .content_type(wire::CONTENT_TYPE)
        .body(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// An upstream answering `head` then zeros until the reader goes away.
    async fn endless_upstream(head: &'static str) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 16 * 1024];
            let _ = s.read(&mut buf).await;
            s.write_all(head.as_bytes()).await.unwrap();
            let chunk = vec![0u8; 64 * 1024];
            for _ in 0..4096 {
                if s.write_all(&chunk).await.is_err() {
                    break;
                }
            }
        });
        format!("http://{addr}/")
    }

    #[tokio::test]
    async fn upstream_answers_are_read_only_up_to_their_bound() {
        let url = endless_upstream("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n").await;
        let resp = reqwest::get(&url).await.unwrap();
        assert_eq!(read_capped(resp, 100_000).await, None);

        let url = endless_upstream("HTTP/1.1 200 OK\r\nContent-Length: 900000000000\r\n\r\n").await;
        let resp = reqwest::get(&url).await.unwrap();
        assert_eq!(read_capped(resp, 100_000).await, None);

        let url = endless_upstream("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n").await;
        let resp = reqwest::get(&url).await.unwrap();
        assert_eq!(read_capped(resp, 5).await, Some(vec![0; 5]));
    }
}
