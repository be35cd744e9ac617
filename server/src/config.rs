//! Settings: command-line flags, environment variables and an optional TOML
//! file, in that order of precedence, then defaults. `amparo-relay --help`
//! lists every setting with its variable.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use amparo_protocol::b64;
use amparo_protocol::primitives::ed25519::VerifyingKey;
use clap::Parser;
use serde::Deserialize;

use crate::metrics::{MetricsAccess, MetricsToken};
use crate::quota::{MailboxCap, StorageLimits};

/// Default listen address: loopback only, so a fresh relay is never exposed
/// by accident.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8470";
/// Default data directory.
pub const DEFAULT_DATA_DIR: &str = "amparo-relay-data";
/// Default retention of unacknowledged envelopes, in days.
pub const DEFAULT_RETENTION_DAYS: u32 = 90;
/// Default largest request body.
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// Default most envelopes in one upload.
pub const DEFAULT_MAX_BATCH: usize = 256;

/// Amparo relay: a thin, blind mailbox server for sealed reports.
///
/// It stores sealed envelopes for focal points and survivors' reply
/// mailboxes without learning who sent them: no access log, no addresses, no
/// user agents, arrival times rounded to the hour.
#[derive(Debug, Parser)]
#[command(name = "amparo-relay", version, args_override_self = true)]
pub struct Args {
    /// What to do instead of running the relay.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// TOML file with any of the settings below (keys as the long flag names
    /// with underscores, e.g. `max_body_bytes = 1048576`).
    #[arg(long, env = "AMPARO_CONFIG", global = true)]
    pub config: Option<PathBuf>,

    /// Address and port to listen on [default: 127.0.0.1:8470].
    #[arg(long, env = "AMPARO_LISTEN")]
    pub listen: Option<SocketAddr>,

    /// Directory for the receipt-signing key and the SQLite database
    /// [default: ./amparo-relay-data]. Keep it across restarts and upgrades,
    /// and back it up: phones trust receipts signed by the key in it.
    #[arg(long, env = "AMPARO_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,

    /// Database URL: `sqlite://PATH` or `postgres://…` [default: SQLite in
    /// the data directory]. Several relays may share one PostgreSQL database.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,

    /// Days an unacknowledged envelope is kept before it is deleted [default: 90].
    #[arg(long, env = "AMPARO_RETENTION_DAYS")]
    pub retention_days: Option<u32>,

    /// Largest request body in bytes; larger uploads get 413 [default: 8388608].
    #[arg(long, env = "AMPARO_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,

    /// Most envelopes in one upload [default: 256].
    #[arg(long, env = "AMPARO_MAX_BATCH")]
    pub max_batch: Option<usize>,

    /// Seconds a request body may receive nothing before the relay cuts it
    /// (408 body_timeout, connection closed); also the grace period before
    /// body_min_rate applies [default: 20].
    #[arg(long, env = "AMPARO_BODY_IDLE_TIMEOUT")]
    pub body_idle_timeout: Option<u64>,

    /// The same while the relay is busy (three quarters of the upload slots
    /// or of the upload memory in use), so that stalled bodies make room for
    /// moving ones [default: 2].
    #[arg(long, env = "AMPARO_BUSY_BODY_IDLE_TIMEOUT")]
    pub busy_body_idle_timeout: Option<u64>,

    /// Slowest average rate of a request body in bytes per second, once past
    /// its grace period (body_idle_timeout); slower bodies are cut (408
    /// body_timeout). 0: no floor [default: 512].
    #[arg(long, env = "AMPARO_BODY_MIN_RATE")]
    pub body_min_rate: Option<u64>,

    /// Most request bodies read at once; another waits up to upload_wait for
    /// a slot, then gets 503 busy with Retry-After (its connection closed).
    /// As many as max_connections by default: a connection reads one body
    /// at a time [default: 512].
    #[arg(long, env = "AMPARO_MAX_CONCURRENT_UPLOADS")]
    pub max_concurrent_uploads: Option<usize>,

    /// Most bytes held by all request bodies being read at once, reserved as
    /// they arrive; a body that finds no room within upload_wait gets 503
    /// busy. At least max_body_bytes [default: 33554432, 32 MiB, or
    /// max_body_bytes if larger].
    #[arg(long, env = "AMPARO_MAX_UPLOAD_MEMORY")]
    pub max_upload_memory: Option<usize>,

    /// Seconds a request may wait, in all, for an upload slot and for upload
    /// memory before 503 busy (0 to 60). A waiting connection keeps up to
    /// about 0.5 MiB in the HTTP server's buffers, so under a flood of slow
    /// clients waiting costs memory; 0 answers at once [default: 0].
    #[arg(long, env = "AMPARO_UPLOAD_WAIT")]
    pub upload_wait: Option<u64>,

    /// Most open connections; more wait in the listen backlog until one
    /// closes. Each costs up to about 0.4 MiB while its client pushes a body
    /// the relay is not reading yet, so this and max_upload_memory bound
    /// the relay's memory [default: 512].
    #[arg(long, env = "AMPARO_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,

    /// Seconds between the log's summaries of malformed HTTP requests and
    /// cut or refused bodies: at most one line each per interval, never one
    /// per request [default: 60].
    #[arg(long, env = "AMPARO_LOG_SUMMARY_INTERVAL")]
    pub log_summary_interval: Option<u64>,

    /// The coordinator's Ed25519 public key (base64url). Only directories it
    /// signed are accepted on PUT /v1/directory; without it, uploads of a
    /// directory are refused.
    #[arg(long, env = "AMPARO_COORDINATOR_KEY")]
    pub coordinator_key: Option<String>,

    /// Log filter (error, warn, info, debug, trace) [default: info]. Logs
    /// never hold addresses, user agents, envelope contents or times.
    #[arg(long, env = "AMPARO_LOG")]
    pub log: Option<String>,

    /// HTTP worker threads [default: the number of CPUs].
    #[arg(long, env = "AMPARO_WORKERS")]
    pub workers: Option<usize>,

    /// Run as a field relay (a laptop or Raspberry Pi where phones have
    /// local Wi-Fi but no internet): forward every envelope to this central
    /// relay whenever it can be reached, mirror its directory, and proxy
    /// mailbox fetches to it, caching what it returns. SQLite only.
    #[arg(long, env = "AMPARO_UPSTREAM")]
    pub upstream: Option<String>,

    /// The upstream relay's receipt key (base64url): only receipts it signed
    /// (or a relay of the coordinator-signed directory signed) count as
    /// delivered; until then envelopes stay here and are retried.
    #[arg(long, env = "AMPARO_UPSTREAM_KEY")]
    pub upstream_key: Option<String>,

    /// Seconds between attempts to reach the upstream relay [default: 10].
    #[arg(long, env = "AMPARO_FORWARD_INTERVAL")]
    pub forward_interval: Option<u64>,

    /// Most admission work asked per envelope when the relay is pressed
    /// (PROTOCOL.md §14): none below half, doubling to this as a mailbox
    /// fills or floods, or the relay or its writer's queue fills; uploads
    /// without it (or an admission token) get 429 work_required. 64 is
    /// about 0.2 s of one core per envelope, 1–2 s on a low-end phone.
    /// 0 turns it off [default: 64].
    #[arg(long, env = "AMPARO_ADMISSION_MAX_EFFORT")]
    pub admission_max_effort: Option<u32>,

    /// Admission tokens (PROTOCOL.md §14.2) the relay issues per day to
    /// each focal point of its directory [default: 1000].
    #[arg(long, env = "AMPARO_TOKENS_PER_DAY_FOCAL")]
    pub tokens_per_day_focal: Option<u32>,

    /// Admission tokens the relay issues per day to each facilitator a
    /// focal point or the coordinator vouched for [default: 200].
    #[arg(long, env = "AMPARO_TOKENS_PER_DAY_FACILITATOR")]
    pub tokens_per_day_facilitator: Option<u32>,

    /// Most envelopes waiting in one focal point's mailbox (one listed in
    /// the directory; every mailbox while the relay holds no directory);
    /// more get reject code 6 mailbox_full until she fetches and
    /// acknowledges [default: 10000].
    #[arg(long, env = "AMPARO_MAILBOX_MAX_ENVELOPES")]
    pub mailbox_max_envelopes: Option<u64>,

    /// Most bytes waiting in one focal point's mailbox [default: 536870912,
    /// 512 MiB].
    #[arg(long, env = "AMPARO_MAILBOX_MAX_BYTES")]
    pub mailbox_max_bytes: Option<u64>,

    /// Most envelopes waiting in any other mailbox (a survivor's reply
    /// mailbox: a conversation is a few messages) [default: 64].
    #[arg(long, env = "AMPARO_REPLY_MAILBOX_MAX_ENVELOPES")]
    pub reply_mailbox_max_envelopes: Option<u64>,

    /// Most bytes waiting in a reply mailbox [default: 1048576, 1 MiB].
    #[arg(long, env = "AMPARO_REPLY_MAILBOX_MAX_BYTES")]
    pub reply_mailbox_max_bytes: Option<u64>,

    /// Most bytes waiting in all mailboxes together (on PostgreSQL, of all
    /// relays sharing the database); more get reject code 7 relay_full
    /// [default: 8589934592, 8 GiB].
    #[arg(long, env = "AMPARO_MAX_STORED_BYTES")]
    pub max_stored_bytes: Option<u64>,

    /// Most check-in timers on record at once (PROTOCOL.md §17; on
    /// PostgreSQL, of all relays sharing the database); more holds get 507
    /// timers_full [default: 100000].
    #[arg(long, env = "AMPARO_MAX_TIMERS")]
    pub max_timers: Option<u64>,

    /// Most alerts held for one focal point at once [default: 2000].
    #[arg(long, env = "AMPARO_MAILBOX_MAX_HELD")]
    pub mailbox_max_held: Option<u64>,

    /// Only for tests: run the relay's clock this many hours ahead (or
    /// behind) of the system's, to see what hours passing does without
    /// waiting for them.
    #[arg(
        long,
        env = "AMPARO_TEST_CLOCK_SKEW_HOURS",
        hide = true,
        allow_hyphen_values = true
    )]
    pub test_clock_skew_hours: Option<i64>,

    /// Field relay: most bytes kept of one upstream mailbox's envelopes,
    /// fetched for phones to pick up offline; past it the oldest copies
    /// are evicted [default: 8388608, 8 MiB].
    #[arg(long, env = "AMPARO_FIELD_CACHE_MAILBOX_BYTES")]
    pub field_cache_mailbox_bytes: Option<u64>,

    /// Field relay: most bytes kept of all upstream mailboxes' envelopes
    /// (and never below min_free_disk_bytes free) [default: 268435456,
    /// 256 MiB].
    #[arg(long, env = "AMPARO_FIELD_CACHE_MAX_BYTES")]
    pub field_cache_max_bytes: Option<u64>,

    /// SQLite: refuse new envelopes (reject code 7 relay_full) rather than
    /// leave less than this many bytes free on the filesystem that holds
    /// the database [default: 1073741824, 1 GiB].
    #[arg(long, env = "AMPARO_MIN_FREE_DISK_BYTES")]
    pub min_free_disk_bytes: Option<u64>,

    /// Serve /metrics on this address of its own (e.g. 127.0.0.1:9470),
    /// which answers nothing else; the public listener then has no /metrics.
    /// Without this, metrics_token or public_metrics, /metrics is off (404).
    #[arg(long, env = "AMPARO_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Require `Authorization: Bearer TOKEN` to read /metrics (16 to 256
    /// characters, e.g. from `openssl rand -hex 32`). Alone, it serves
    /// /metrics on the public listener to holders of the token; with
    /// metrics_listen, on that listener. Prefer the variable or the settings
    /// file to the flag, which other users of the machine can see.
    #[arg(long, env = "AMPARO_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// Serve /metrics on the public listener to anyone, without a token (as
    /// relays did before metrics_listen and metrics_token): only for a relay
    /// that nobody but its operator can reach.
    #[arg(long, env = "AMPARO_PUBLIC_METRICS")]
    pub public_metrics: bool,
}

/// What `amparo-relay` can do besides running the relay.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Print the relay's receipt public key (base64url) from its data
    /// directory, without starting the relay: the key coordinators list in
    /// the directory, and field relays (--upstream-key) and phones trust.
    /// Fails if there is no key yet, unless --create is given.
    Key {
        /// Create the key if the data directory has none yet, as the relay
        /// does on its first start.
        #[arg(long)]
        create: bool,
    },
}

/// The same settings, as read from the TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    retention_days: Option<u32>,
    max_body_bytes: Option<usize>,
    max_batch: Option<usize>,
    body_idle_timeout: Option<u64>,
    busy_body_idle_timeout: Option<u64>,
    body_min_rate: Option<u64>,
    max_concurrent_uploads: Option<usize>,
    max_upload_memory: Option<usize>,
    upload_wait: Option<u64>,
    max_connections: Option<usize>,
    log_summary_interval: Option<u64>,
    coordinator_key: Option<String>,
    log: Option<String>,
    workers: Option<usize>,
    upstream: Option<String>,
    upstream_key: Option<String>,
    forward_interval: Option<u64>,
    admission_max_effort: Option<u32>,
    tokens_per_day_focal: Option<u32>,
    tokens_per_day_facilitator: Option<u32>,
    metrics_listen: Option<SocketAddr>,
    metrics_token: Option<String>,
    public_metrics: Option<bool>,
    mailbox_max_envelopes: Option<u64>,
    mailbox_max_bytes: Option<u64>,
    reply_mailbox_max_envelopes: Option<u64>,
    reply_mailbox_max_bytes: Option<u64>,
    max_stored_bytes: Option<u64>,
    min_free_disk_bytes: Option<u64>,
    max_timers: Option<u64>,
    mailbox_max_held: Option<u64>,
    field_cache_mailbox_bytes: Option<u64>,
    field_cache_max_bytes: Option<u64>,
}

/// Resolved settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listen address.
    pub listen: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Database URL, if not the default SQLite file.
    pub database_url: Option<String>,
    /// Retention in hours.
    pub retention_hours: u32,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Most envelopes per upload.
    pub max_batch: usize,
    /// Coordinator key.
    pub coordinator_key: Option<VerifyingKey>,
    /// Log filter.
    pub log: String,
    /// Worker threads.
    pub workers: Option<usize>,
    /// Field relay: where to forward, and whose receipts count.
    pub upstream: Option<Upstream>,
    /// Who may read `/metrics`, and where.
    pub metrics: MetricsConfig,
    /// Storage limits.
    pub storage: StorageLimits,
    /// Limits on connections and request bodies.
    pub server: crate::ServerLimits,
    /// Most admission work asked per envelope (0: off).
    pub admission_max_effort: u32,
    /// Admission tokens issued per day.
    pub tokens: crate::tokens::TokenLimits,
    /// Caps on check-in timers.
    pub timers: crate::timers::TimerLimits,
    /// Hours the relay's clock runs ahead of the system's (tests only).
    pub test_clock_skew_hours: i64,
}

/// Who may read `/metrics`, and where.
#[derive(Debug, Clone, Default)]
pub struct MetricsConfig {
    /// Who.
    pub access: MetricsAccess,
    /// A listen address of its own, or `None` for the public listener.
    pub listen: Option<SocketAddr>,
}

/// A field relay's upstream.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Base URL of the central relay.
    pub url: String,
    /// Its receipt key, if given.
    pub key: Option<VerifyingKey>,
    /// Seconds between attempts.
    pub interval_secs: u64,
    /// How much of the upstream's mailboxes it keeps for offline pickup.
    pub cache: crate::quota::CacheLimits,
}

/// A setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The TOML file could not be read.
    #[error("cannot read the settings file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML file is not valid.
    #[error("the settings file {path} is not valid: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// A value is out of range.
    #[error("{0}")]
    Invalid(String),
}

fn read_file(path: &Path) -> Result<FileSettings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_owned(),
        message: e.message().to_owned(),
    })
}

fn file_of(args: &Args) -> Result<FileSettings, ConfigError> {
    match &args.config {
        Some(p) => read_file(p),
        None => Ok(FileSettings::default()),
    }
}

/// The data directory alone (flag or variable, then the file, then the
/// default), for commands that need nothing else.
pub fn data_dir(args: &Args) -> Result<PathBuf, ConfigError> {
    Ok(args
        .data_dir
        .clone()
        .or(file_of(args)?.data_dir)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)))
}

fn metrics_config(
    listen: SocketAddr,
    metrics_listen: Option<SocketAddr>,
    token: Option<String>,
    public: bool,
) -> Result<MetricsConfig, ConfigError> {
    let token = token
        .filter(|t| !t.is_empty())
        .map(|t| MetricsToken::new(t.trim()))
        .transpose()
        .map_err(|e| ConfigError::Invalid(e.to_string()))?;
    if public && (metrics_listen.is_some() || token.is_some()) {
        return Err(ConfigError::Invalid(
            "public_metrics serves /metrics to anyone on the public listener; it cannot be combined with metrics_listen or metrics_token".into(),
        ));
    }
    if metrics_listen.is_some_and(|m| m == listen && m.port() != 0) {
        return Err(ConfigError::Invalid(
            "metrics_listen must use another port than listen".into(),
        ));
    }
    let access = match token {
        Some(t) => MetricsAccess::Bearer(t),
        None if public || metrics_listen.is_some() => MetricsAccess::Open,
        None => MetricsAccess::Off,
    };
    Ok(MetricsConfig {
        access,
        listen: metrics_listen,
    })
}

/// The storage settings given as flags or variables, in the order
/// [`storage_limits`] reads them.
fn args_storage(args: &Args) -> [Option<u64>; 6] {
    [
        args.mailbox_max_envelopes,
        args.mailbox_max_bytes,
        args.reply_mailbox_max_envelopes,
        args.reply_mailbox_max_bytes,
        args.max_stored_bytes,
        args.min_free_disk_bytes,
    ]
}

/// Storage limits: flags or variables, then the file, then the defaults.
fn storage_limits(
    given: &[Option<u64>; 6],
    file: &FileSettings,
) -> Result<StorageLimits, ConfigError> {
    let d = StorageLimits::default();
    let [focal_n, focal_b, reply_n, reply_b, stored, free] = *given;
    let limits = StorageLimits {
        focal: MailboxCap {
            envelopes: focal_n
                .or(file.mailbox_max_envelopes)
                .unwrap_or(d.focal.envelopes),
            bytes: focal_b.or(file.mailbox_max_bytes).unwrap_or(d.focal.bytes),
        },
        reply: MailboxCap {
            envelopes: reply_n
                .or(file.reply_mailbox_max_envelopes)
                .unwrap_or(d.reply.envelopes),
            bytes: reply_b
                .or(file.reply_mailbox_max_bytes)
                .unwrap_or(d.reply.bytes),
        },
        max_stored_bytes: stored
            .or(file.max_stored_bytes)
            .unwrap_or(d.max_stored_bytes),
        min_free_disk_bytes: free
            .or(file.min_free_disk_bytes)
            .unwrap_or(d.min_free_disk_bytes),
    };
    // Each byte cap must hold at least one envelope of the largest size.
    let largest = amparo_protocol::envelope::MAX_LEN as u64;
    for (name, value) in [
        ("mailbox_max_bytes", limits.focal.bytes),
        ("reply_mailbox_max_bytes", limits.reply.bytes),
        ("max_stored_bytes", limits.max_stored_bytes),
    ] {
        if value < largest {
            return Err(ConfigError::Invalid(format!(
                "{name} must hold at least one envelope of the largest size ({largest} bytes or more)"
            )));
        }
    }
    for (name, value) in [
        ("mailbox_max_envelopes", limits.focal.envelopes),
        ("reply_mailbox_max_envelopes", limits.reply.envelopes),
    ] {
        if value == 0 {
            return Err(ConfigError::Invalid(format!("{name} must be at least 1")));
        }
    }
    Ok(limits)
}

/// Limits on connections and request bodies: flags or variables, then the
/// file, then the defaults.
fn server_limits(
    args: &Args,
    file: &FileSettings,
    max_body_bytes: usize,
) -> Result<crate::ServerLimits, ConfigError> {
    use std::time::Duration;
    let d = crate::ServerLimits::default();
    let secs = |given: Option<u64>, filed: Option<u64>, default: Duration| {
        given.or(filed).map(Duration::from_secs).unwrap_or(default)
    };
    let u = d.uploads;
    let uploads = crate::uploads::UploadLimits {
        idle_timeout: secs(
            args.body_idle_timeout,
            file.body_idle_timeout,
            u.idle_timeout,
        ),
        busy_idle_timeout: secs(
            args.busy_body_idle_timeout,
            file.busy_body_idle_timeout,
            u.busy_idle_timeout,
        ),
        min_rate: args
            .body_min_rate
            .or(file.body_min_rate)
            .unwrap_or(u.min_rate),
        max_concurrent: args
            .max_concurrent_uploads
            .or(file.max_concurrent_uploads)
            .unwrap_or(u.max_concurrent),
        max_memory: args
            .max_upload_memory
            .or(file.max_upload_memory)
            .unwrap_or(u.max_memory.max(max_body_bytes)),
        wait: secs(args.upload_wait, file.upload_wait, u.wait),
    };
    let idle = uploads.idle_timeout.as_secs();
    if !(1..=3600).contains(&idle) {
        return Err(ConfigError::Invalid(
            "body_idle_timeout must be between 1 and 3600 seconds".into(),
        ));
    }
    if uploads.busy_idle_timeout.as_secs() == 0 || uploads.busy_idle_timeout.as_secs() > idle {
        return Err(ConfigError::Invalid(
            "busy_body_idle_timeout must be at least 1 second and at most body_idle_timeout".into(),
        ));
    }
    if uploads.max_concurrent == 0 {
        return Err(ConfigError::Invalid(
            "max_concurrent_uploads must be at least 1".into(),
        ));
    }
    if uploads.max_memory < max_body_bytes || uploads.max_memory > u32::MAX as usize {
        return Err(ConfigError::Invalid(format!(
            "max_upload_memory must hold one body of max_body_bytes ({max_body_bytes} bytes or more) and be at most {} bytes",
            u32::MAX
        )));
    }
    if uploads.wait.as_secs() > 60 {
        return Err(ConfigError::Invalid(
            "upload_wait must be at most 60 seconds".into(),
        ));
    }
    let max_connections = args
        .max_connections
        .or(file.max_connections)
        .unwrap_or(d.max_connections);
    if max_connections == 0 {
        return Err(ConfigError::Invalid(
            "max_connections must be at least 1".into(),
        ));
    }
    let log_summary_interval = secs(
        args.log_summary_interval,
        file.log_summary_interval,
        d.log_summary_interval,
    );
    if log_summary_interval.is_zero() {
        return Err(ConfigError::Invalid(
            "log_summary_interval must be at least 1 second".into(),
        ));
    }
    Ok(crate::ServerLimits {
        uploads,
        max_connections,
        log_summary_interval,
    })
}

impl Config {
    /// Resolves flags and environment (already in `args`), then the file, then defaults.
    pub fn resolve(args: Args) -> Result<Config, ConfigError> {
        let file = file_of(&args)?;
        let storage = storage_limits(&args_storage(&args), &file)?;
        let data_dir = args
            .data_dir
            .clone()
            .or(file.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let listen = match args.listen.or(file.listen) {
            Some(l) => l,
            None => DEFAULT_LISTEN
                .parse()
                .map_err(|_| ConfigError::Invalid("bad default listen address".into()))?,
        };
        let retention_days = args
            .retention_days
            .or(file.retention_days)
            .unwrap_or(DEFAULT_RETENTION_DAYS);
        if retention_days == 0 || retention_days > 3650 {
            return Err(ConfigError::Invalid(
                "retention_days must be between 1 and 3650".into(),
            ));
        }
        let max_body_bytes = args
            .max_body_bytes
            .or(file.max_body_bytes)
            .unwrap_or(DEFAULT_MAX_BODY_BYTES);
        if max_body_bytes < 64 * 1024 + 128 {
            return Err(ConfigError::Invalid(
                "max_body_bytes must hold at least one 64 KiB envelope (65664 bytes or more)"
                    .into(),
            ));
        }
        let server = server_limits(&args, &file, max_body_bytes)?;
        let max_batch = args
            .max_batch
            .or(file.max_batch)
            .unwrap_or(DEFAULT_MAX_BATCH);
        if max_batch == 0 {
            return Err(ConfigError::Invalid("max_batch must be at least 1".into()));
        }
        let coordinator_key = args
            .coordinator_key
            .or(file.coordinator_key)
            .map(|k| {
                b64::decode_array::<32>(k.trim(), "coordinator key")
                    .map(VerifyingKey)
                    .map_err(|_| {
                        ConfigError::Invalid(
                            "coordinator_key must be 32 bytes in base64url (43 characters)".into(),
                        )
                    })
            })
            .transpose()?;
        let upstream = match args.upstream.or(file.upstream).filter(|u| !u.is_empty()) {
            None => None,
            Some(url) => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(ConfigError::Invalid(
                        "upstream must be an http:// or https:// URL".into(),
                    ));
                }
                let key = args
                    .upstream_key
                    .or(file.upstream_key)
                    .map(|k| {
                        b64::decode_array::<32>(k.trim(), "upstream key")
                            .map(VerifyingKey)
                            .map_err(|_| {
                                ConfigError::Invalid(
                                    "upstream_key must be 32 bytes in base64url (43 characters)"
                                        .into(),
                                )
                            })
                    })
                    .transpose()?;
                if key.is_none() && coordinator_key.is_none() {
                    return Err(ConfigError::Invalid(
                        "a field relay needs upstream_key or coordinator_key, to check the upstream's receipts".into(),
                    ));
                }
                let interval_secs = args
                    .forward_interval
                    .or(file.forward_interval)
                    .unwrap_or(10)
                    .clamp(1, 3600);
                let d = crate::quota::CacheLimits::default();
                let cache = crate::quota::CacheLimits {
                    mailbox_bytes: args
                        .field_cache_mailbox_bytes
                        .or(file.field_cache_mailbox_bytes)
                        .unwrap_or(d.mailbox_bytes),
                    max_bytes: args
                        .field_cache_max_bytes
                        .or(file.field_cache_max_bytes)
                        .unwrap_or(d.max_bytes),
                    min_free_disk_bytes: storage.min_free_disk_bytes,
                };
                let largest = amparo_protocol::envelope::MAX_LEN as u64;
                if cache.mailbox_bytes < largest || cache.max_bytes < largest {
                    return Err(ConfigError::Invalid(format!(
                        "field_cache_mailbox_bytes and field_cache_max_bytes must hold at least one envelope of the largest size ({largest} bytes or more)"
                    )));
                }
                Some(Upstream {
                    url: url.trim_end_matches('/').to_string(),
                    key,
                    interval_secs,
                    cache,
                })
            }
        };
        let database_url = args
            .database_url
            .or(file.database_url)
            .filter(|u| !u.is_empty());
        if upstream.is_some()
            && database_url
                .as_deref()
                .is_some_and(|u| u.starts_with("postgres"))
        {
            return Err(ConfigError::Invalid(
                "a field relay (upstream) keeps its queue in SQLite; leave database_url unset"
                    .into(),
            ));
        }
        let d = crate::timers::TimerLimits::default();
        let timers = crate::timers::TimerLimits {
            max_timers: args.max_timers.or(file.max_timers).unwrap_or(d.max_timers),
            mailbox_max_held: args
                .mailbox_max_held
                .or(file.mailbox_max_held)
                .unwrap_or(d.mailbox_max_held),
        };
        let metrics = metrics_config(
            listen,
            args.metrics_listen.or(file.metrics_listen),
            args.metrics_token.or(file.metrics_token),
            args.public_metrics || file.public_metrics.unwrap_or(false),
        )?;
        Ok(Config {
            server,
            storage,
            upstream,
            listen,
            metrics,
            data_dir,
            database_url,
            retention_hours: retention_days * 24,
            max_body_bytes,
            max_batch,
            coordinator_key,
            log: args.log.or(file.log).unwrap_or_else(|| "info".into()),
            workers: args.workers.or(file.workers),
            admission_max_effort: args
                .admission_max_effort
                .or(file.admission_max_effort)
                .unwrap_or(crate::admission::DEFAULT_MAX_EFFORT)
                .min(amparo_protocol::admission::MAX_EFFORT),
            tokens: crate::tokens::TokenLimits {
                focal_per_day: args
                    .tokens_per_day_focal
                    .or(file.tokens_per_day_focal)
                    .unwrap_or(crate::tokens::DEFAULT_FOCAL_PER_DAY),
                facilitator_per_day: args
                    .tokens_per_day_facilitator
                    .or(file.tokens_per_day_facilitator)
                    .unwrap_or(crate::tokens::DEFAULT_FACILITATOR_PER_DAY),
            },
            timers,
            test_clock_skew_hours: args.test_clock_skew_hours.unwrap_or(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("amparo-relay").chain(list.iter().copied())).unwrap()
    }

    #[test]
    fn defaults_flags_and_file() {
        let c = Config::resolve(args(&[])).unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.retention_hours, 90 * 24);
        assert_eq!(c.admission_max_effort, 64, "admission on by default");
        let off = Config::resolve(args(&["--admission-max-effort", "0"])).unwrap();
        assert_eq!(off.admission_max_effort, 0);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("relay.toml");
        std::fs::write(
            &file,
            "retention_days = 7\nmax_batch = 10\nlisten = \"127.0.0.1:9000\"\n",
        )
        .unwrap();
        let c = Config::resolve(args(&[
            "--config",
            file.to_str().unwrap(),
            "--max-batch",
            "20",
        ]))
        .unwrap();
        assert_eq!(c.retention_hours, 7 * 24);
        assert_eq!(c.max_batch, 20, "flags win over the file");
        assert_eq!(c.listen.port(), 9000);
        std::fs::write(&file, "unknown = 1\n").unwrap();
        assert!(Config::resolve(args(&["--config", file.to_str().unwrap()])).is_err());
        assert!(Config::resolve(args(&["--coordinator-key", "nope"])).is_err());
        assert!(Config::resolve(args(&["--retention-days", "0"])).is_err());
    }

    #[test]
    fn body_and_connection_limits_have_defaults_flags_and_file_keys() {
        use std::time::Duration;
        let c = Config::resolve(args(&[])).unwrap();
        assert_eq!(c.server.uploads, crate::uploads::UploadLimits::default());
        assert_eq!(c.server.uploads.max_memory, 32 << 20);
        assert_eq!(c.server.max_connections, crate::DEFAULT_MAX_CONNECTIONS);
        assert_eq!(c.server.log_summary_interval, Duration::from_secs(60));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("relay.toml");
        std::fs::write(
            &file,
            "body_idle_timeout = 30\nbusy_body_idle_timeout = 3\nbody_min_rate = 0\nmax_concurrent_uploads = 8\nmax_upload_memory = 16777216\nupload_wait = 1\nmax_connections = 64\nlog_summary_interval = 5\n",
        )
        .unwrap();
        let c = Config::resolve(args(&[
            "--config",
            file.to_str().unwrap(),
            "--max-connections",
            "128",
        ]))
        .unwrap();
        let u = c.server.uploads;
        assert_eq!(u.idle_timeout, Duration::from_secs(30));
        assert_eq!(u.busy_idle_timeout, Duration::from_secs(3));
        assert_eq!(u.min_rate, 0);
        assert_eq!(u.max_concurrent, 8);
        assert_eq!(u.max_memory, 16 << 20);
        assert_eq!(u.wait, Duration::from_secs(1));
        assert_eq!(c.server.max_connections, 128, "flags win over the file");
        assert_eq!(c.server.log_summary_interval, Duration::from_secs(5));
        // A larger body limit raises the default memory with it.
        let c = Config::resolve(args(&["--max-body-bytes", "67108864"])).unwrap();
        assert_eq!(c.server.uploads.max_memory, 64 << 20);
        for bad in [
            &["--body-idle-timeout", "0"][..],
            &["--busy-body-idle-timeout", "30"],
            &["--max-concurrent-uploads", "0"],
            &["--max-upload-memory", "1000"],
            &["--upload-wait", "61"],
            &["--max-connections", "0"],
            &["--log-summary-interval", "0"],
        ] {
            assert!(Config::resolve(args(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn metrics_default_to_off_and_follow_the_file() {
        let c = Config::resolve(args(&[])).unwrap();
        assert!(matches!(c.metrics.access, MetricsAccess::Off));
        assert_eq!(c.metrics.listen, None);
        let c = Config::resolve(args(&["--public-metrics"])).unwrap();
        assert!(matches!(c.metrics.access, MetricsAccess::Open));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("relay.toml");
        std::fs::write(
            &file,
            "metrics_listen = \"127.0.0.1:9470\"\nmetrics_token = \"0123456789abcdef-token\"\n",
        )
        .unwrap();
        let c = Config::resolve(args(&["--config", file.to_str().unwrap()])).unwrap();
        assert!(matches!(c.metrics.access, MetricsAccess::Bearer(_)));
        assert_eq!(c.metrics.listen.map(|a| a.port()), Some(9470));
        assert!(
            !format!("{c:?}").contains("0123456789abcdef-token"),
            "the token is not in Debug output"
        );
        std::fs::write(&file, "metrics_listen = \"127.0.0.1:9470\"\n").unwrap();
        let c = Config::resolve(args(&["--config", file.to_str().unwrap()])).unwrap();
        assert!(matches!(c.metrics.access, MetricsAccess::Open));
        std::fs::write(
            &file,
            "public_metrics = true\nmetrics_token = \"0123456789abcdef-token\"\n",
        )
        .unwrap();
        assert!(Config::resolve(args(&["--config", file.to_str().unwrap()])).is_err());
        assert_eq!(
            data_dir(&args(&["--data-dir", "/srv/amparo", "key"])).unwrap(),
            PathBuf::from("/srv/amparo")
        );
    }
}
