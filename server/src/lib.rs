//! # amparo-relay
//!
//! A thin, blind, durable relay: it stores sealed envelopes in mailboxes and
//! hands them to whoever holds the mailbox's key, signs receipts, and serves
//! the coordinator-signed directory. It may know a mailbox id, a size class
//! and an arrival hour — nothing else: no access log, no addresses, no user
//! agents, no exact times, nothing that links envelopes of one request.
//!
//! Storage is SQLite embedded by default and PostgreSQL when one machine is
//! outgrown; [`store::Store`] hides which, and the HTTP layer ([`http`]) is
//! generic over it.

pub mod admission;
pub mod commit;
pub mod config;
pub mod error;
pub mod field;
pub mod http;
pub mod malformed;
pub mod metrics;
pub mod quota;
pub mod relay_key;
pub mod shared;
pub mod store;
pub mod timers;
pub mod tokens;
pub mod uploads;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use amparo_protocol::primitives::ed25519::{SigningKey, VerifyingKey};
use amparo_protocol::{UnixTime, b64};

use crate::commit::Committer;
use crate::config::Config;
use crate::http::AppState;
use crate::metrics::{Metrics, MetricsAccess, MetricsGate};
use crate::shared::{Clock, Limits};
use crate::store::{PgStore, SqliteStore, Store, StoreError};

/// The OpenAPI document served at `/v1/openapi.json`.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

/// How often the retention task runs.
const RETENTION_PERIOD: Duration = Duration::from_secs(600);

/// What a relay needs besides its store.
pub struct RelayOptions {
    /// Request limits.
    pub limits: Limits,
    /// Coordinator key for directory uploads.
    pub coordinator_key: Option<VerifyingKey>,
    /// HTTP worker threads.
    pub workers: Option<usize>,
    /// Who may read `/metrics` (default: nobody).
    pub metrics: metrics::MetricsAccess,
    /// A listener of its own for `/metrics`: when given, it serves `/metrics`
    /// and nothing else, and the public listener does not serve `/metrics`.
    pub metrics_listener: Option<TcpListener>,
    /// Storage limits ([`quota`]); `None`: the default limits, with no disk
    /// watermark.
    pub quotas: Option<Arc<quota::Quotas>>,
    /// Most admission effort asked per envelope at full pressure
    /// (PROTOCOL.md §14); 0: the relay never asks for work.
    pub admission_max_effort: u32,
    /// Admission tokens issued per day to each focal point and facilitator
    /// (PROTOCOL.md §14.2).
    pub tokens: tokens::TokenLimits,
    /// Caps on check-in timers (PROTOCOL.md §17).
    pub timers: timers::TimerLimits,
}

/// Limits on connections and on reading request bodies (issue 15.2).
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// Time, count and memory limits of request bodies.
    pub uploads: uploads::UploadLimits,
    /// Most open connections, shared among the HTTP workers; more wait in
    /// the listen backlog until one closes.
    pub max_connections: usize,
    /// How often the log sums up malformed requests and cut bodies (at
    /// most one line each per interval).
    pub log_summary_interval: Duration,
}

/// Default interval of the log's summary of malformed requests.
pub const DEFAULT_LOG_SUMMARY_SECS: u64 = 60;

/// Default most open connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            uploads: uploads::UploadLimits::default(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            log_summary_interval: Duration::from_secs(DEFAULT_LOG_SUMMARY_SECS),
        }
    }
}

/// Why the relay could not start.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The database could not be opened or migrated.
    #[error("cannot open the database: {0}")]
    Store(#[from] StoreError),
    /// A file or socket could not be used.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Builds the HTTP server on `listener` (must run inside a tokio runtime,
/// which actix provides). The returned server runs when awaited or spawned.
pub fn serve<S: Store>(
    store: S,
    receipt_key: SigningKey,
    options: RelayOptions,
    clock: Clock,
    listener: TcpListener,
) -> std::io::Result<Server> {
    serve_with(store, receipt_key, options, clock, listener, None)
}

/// [`serve`], as a field relay when `field` is given (see [`field`]).
pub fn serve_with<S: Store>(
    store: S,
    receipt_key: SigningKey,
    options: RelayOptions,
    clock: Clock,
    listener: TcpListener,
    field: Option<Arc<field::Field>>,
) -> std::io::Result<Server> {
    serve_limited(
        store,
        receipt_key,
        options,
        ServerLimits::default(),
        clock,
        listener,
        field,
    )
}

/// [`serve_with`], with the limits on reading request bodies and on
/// connections ([`uploads`]).
pub fn serve_limited<S: Store>(
    store: S,
    receipt_key: SigningKey,
    options: RelayOptions,
    server_limits: ServerLimits,
    clock: Clock,
    listener: TcpListener,
    field: Option<Arc<field::Field>>,
) -> std::io::Result<Server> {
    let uploads = Arc::new(uploads::Uploads::new(server_limits.uploads));
    let metrics = Arc::new(Metrics::default());
    if let Some(f) = &field {
        metrics.attach_field(f.counts());
    }
    let field = field.map(web::Data::from);
    metrics.attach_uploads(uploads.clone());
    malformed::spawn_summary(
        server_limits
            .log_summary_interval
            .max(Duration::from_secs(1)),
        uploads.clone(),
    );
    let uploads = web::Data::from(uploads);
    let gate = MetricsGate {
        access: options.metrics,
        listener: options
            .metrics_listener
            .as_ref()
            .map(TcpListener::local_addr)
            .transpose()?,
    };
    let quotas = options.quotas.unwrap_or_else(|| {
        Arc::new(quota::Quotas::new(
            quota::StorageLimits::default(),
            options.coordinator_key,
            None,
        ))
    });
    quotas.clone().spawn_refresh(store.clone());
    let receipt_key = Arc::new(receipt_key);
    let admission = Arc::new(admission::Admission::new(
        options.admission_max_effort,
        receipt_key.clone(),
        quotas.pressure(),
    ));
    let tokens = Arc::new(tokens::Tokens::new(
        &receipt_key,
        options.coordinator_key,
        options.tokens,
    ));
    // The release pass runs with the server, on every relay (on one
    // PostgreSQL database they take turns; each alert goes out once).
    timers::spawn_release(store.clone(), clock.clone(), metrics.clone());
    let state = web::Data::new(AppState {
        committer: Committer::start(store.clone(), quotas.clone()),
        admission,
        tokens,
        quotas,
        timer_limits: options.timers,
        store,
        receipt_key,
        coordinator_key: options.coordinator_key,
        limits: options.limits,
        metrics: metrics.clone(),
        metrics_gate: gate.clone(),
        clock,
    });
    let mut server = HttpServer::new(move || {
        let metrics = metrics.clone();
        let gate = gate.clone();
        let mut app = App::new().app_data(state.clone()).app_data(uploads.clone());
        if let Some(f) = &field {
            app = app.app_data(f.clone());
        }
        app
            // Every refused request is counted here, by its error code alone,
            // whichever handler (or storage failure) refused it. The metrics
            // listener, if there is one, answers nothing but /metrics (the
            // address compared is this relay's own listener, never a peer's).
            .wrap_fn(move |mut req, srv| {
                let metrics = metrics.clone();
                // The body outlives its handler until the answer is sent,
                // so that one left unread closes the connection.
                let held = uploads::hold_body(&mut req);
                let fut = if gate.blocks(req.app_config().local_addr(), req.path()) {
                    futures_util::future::Either::Left(std::future::ready(Ok(
                        req.error_response(error::ApiError::not_found())
                    )))
                } else {
                    futures_util::future::Either::Right(actix_web::dev::Service::call(srv, req))
                };
                async move {
                    let res = fut.await?;
                    if let Some(e) = res
                        .response()
                        .error()
                        .and_then(|e| e.as_error::<error::ApiError>())
                    {
                        metrics.request_error(e.code);
                    }
                    Ok(res.map_body(|_, body| uploads::Holding::new(body, held)))
                }
            })
            .configure(http::configure::<S>)
    })
    .listen(listener)?;
    if let Some(l) = options.metrics_listener {
        server = server.listen(l)?;
    }
    let workers = options
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    // actix counts connections per worker.
    server = server
        .workers(workers)
        .max_connections(server_limits.max_connections.div_ceil(workers).max(1));
    Ok(server.run())
}

/// One retention pass: deletes envelopes that arrived more than
/// `retention_hours` before `now`, and forgets expired request nonces,
/// spent tokens of retired keys and past days' issuance counts.
pub async fn retention_pass<S: Store>(
    store: &S,
    now: UnixTime,
    retention_hours: u32,
) -> Result<(u64, u64), StoreError> {
    let expired = store
        .expire(now.hours().saturating_sub(retention_hours))
        .await?;
    let forgotten = store.forget_requests(now.hours()).await?;
    // Spent tokens are kept while their key is good (this epoch's and the
    // one before); issuance counts for today and yesterday.
    let epoch = amparo_protocol::token::key_epoch(now.0);
    store.forget_spent_tokens(epoch.saturating_sub(1)).await?;
    store.forget_issuance(now.days().saturating_sub(1)).await?;
    Ok((expired, forgotten))
}

fn spawn_retention<S: Store>(store: S, retention_hours: u32, clock: Clock) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(RETENTION_PERIOD);
        loop {
            tick.tick().await;
            match retention_pass(&store, clock(), retention_hours).await {
                Ok((0, _)) => {}
                Ok((expired, _)) => tracing::info!(expired, "expired unacknowledged envelopes"),
                Err(e) => tracing::warn!(error = %e, "retention pass failed; will retry"),
            }
        }
    });
}

async fn run_with<S: Store>(
    store: S,
    config: Config,
    backend: &str,
    field: Option<field::Field>,
    disk: Option<quota::DiskProbe>,
) -> Result<(), RelayError> {
    // The caps know the focal points' mailboxes from the first request on.
    let quotas = Arc::new(quota::Quotas::new(
        config.storage,
        config.coordinator_key,
        disk,
    ));
    quotas.refresh(&store).await?;
    let receipt_key = relay_key::load_or_create(&config.data_dir)?;
    let bind = |addr: std::net::SocketAddr, setting: &str| {
        TcpListener::bind(addr).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("cannot listen on {addr} ({setting}): {e}"),
            )
        })
    };
    let listener = bind(config.listen, "listen")?;
    let addr = listener.local_addr()?;
    let metrics_listener = config
        .metrics
        .listen
        .map(|a| bind(a, "metrics_listen"))
        .transpose()?;
    let metrics_where = match (&metrics_listener, &config.metrics.access) {
        (_, MetricsAccess::Off) => {
            "metrics off (set metrics_listen or metrics_token to serve /metrics)".to_string()
        }
        (Some(l), access) => format!(
            "metrics on http://{}{}{}",
            l.local_addr()?,
            metrics::PATH,
            token_note(access)
        ),
        (None, access) => format!(
            "metrics on this listener's {}{}",
            metrics::PATH,
            token_note(access)
        ),
    };
    let clock = match config.test_clock_skew_hours {
        0 => shared::system_clock(),
        skew => shared::skewed_clock(skew),
    };
    spawn_retention(store.clone(), config.retention_hours, clock.clone());
    let field = field.map(Arc::new);
    if let Some(f) = &field {
        f.clone().spawn(config.retention_hours);
    }
    let forwarding = match &config.upstream {
        Some(u) if field.is_some() => format!(", forwarding to {}", u.url),
        _ => String::new(),
    };
    let server = serve_limited(
        store,
        SigningKey::from_seed(&receipt_key.dangerously_export_seed())
            .map_err(|e| std::io::Error::other(e.to_string()))?,
        RelayOptions {
            limits: Limits {
                max_body_bytes: config.max_body_bytes,
                max_batch: config.max_batch,
                max_page: 500,
            },
            coordinator_key: config.coordinator_key,
            workers: config.workers,
            metrics: config.metrics.access.clone(),
            metrics_listener,
            quotas: Some(quotas),
            admission_max_effort: config.admission_max_effort,
            tokens: config.tokens,
            timers: config.timers,
        },
        config.server,
        clock,
        listener,
        field,
    )?;
    // Before the line that says where the relay listens: tests and scripts
    // wait for that one and may look back for this.
    tracing::info!("{metrics_where}");
    tracing::info!(
        "amparo-relay listening on http://{addr}, data in {} ({backend}){forwarding}, receipt key {}",
        config.data_dir.display(),
        b64::encode(receipt_key.verifying_key().as_bytes())
    );
    server.await?;
    Ok(())
}

fn token_note(access: &MetricsAccess) -> &'static str {
    match access {
        MetricsAccess::Bearer(_) => " (bearer token required)",
        _ => " (no token: anyone who reaches it can read them)",
    }
}

/// Opens the configured store and runs the relay until it is stopped.
pub async fn run(config: Config) -> Result<(), RelayError> {
    match config.database_url.clone() {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            let store = PgStore::open(&url).await?;
            // No disk watermark: the database is elsewhere; the global cap
            // bounds what the relays store in it.
            run_with(store, config, "PostgreSQL", None, None).await
        }
        url => {
            std::fs::create_dir_all(&config.data_dir)?;
            // The one-time rewrite of an older database leaves the free disk
            // the operator asked for, or waits for a start with room.
            let checks = store::sqlite::OpenChecks {
                disk: None,
                min_free_disk_bytes: config.storage.min_free_disk_bytes,
            };
            let store = match url {
                Some(url) => SqliteStore::open_with(&url, &checks).await?,
                None => SqliteStore::open_in_with(&config.data_dir, &checks).await?,
            };
            let field = config
                .upstream
                .clone()
                .map(|u| {
                    field::Field::new(
                        store.clone(),
                        u,
                        config.coordinator_key,
                        shared::system_clock(),
                    )
                })
                .transpose()?;
            let disk = store
                .path()
                .and_then(|p| p.parent())
                .map(|dir| {
                    if dir.as_os_str().is_empty() {
                        std::path::PathBuf::from(".")
                    } else {
                        dir.to_path_buf()
                    }
                })
                .map(quota::statvfs_probe);
            run_with(store, config, "SQLite", field, disk).await
        }
    }
}
