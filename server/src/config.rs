//! Settings: command-line flags, environment variables and an optional TOML
//! file, in that order of precedence, then defaults. `amparo-relay --help`
//! lists every setting with its variable.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use amparo_protocol::b64;
use amparo_protocol::primitives::ed25519::VerifyingKey;
use clap::Parser;
use serde::Deserialize;

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
    /// TOML file with any of the settings below (keys as the long flag names
    /// with underscores, e.g. `max_body_bytes = 1048576`).
    #[arg(long, env = "AMPARO_CONFIG")]
    pub config: Option<PathBuf>,

    /// Address and port to listen on [default: 127.0.0.1:8470].
    #[arg(long, env = "AMPARO_LISTEN")]
    pub listen: Option<SocketAddr>,

    /// Directory for the receipt-signing key and the SQLite database
    /// [default: ./amparo-relay-data].
    #[arg(long, env = "AMPARO_DATA_DIR")]
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
    coordinator_key: Option<String>,
    log: Option<String>,
    workers: Option<usize>,
    upstream: Option<String>,
    upstream_key: Option<String>,
    forward_interval: Option<u64>,
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

impl Config {
    /// Resolves flags and environment (already in `args`), then the file, then defaults.
    pub fn resolve(args: Args) -> Result<Config, ConfigError> {
        let file = match &args.config {
            Some(p) => read_file(p)?,
            None => FileSettings::default(),
        };
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
                Some(Upstream {
                    url: url.trim_end_matches('/').to_string(),
                    key,
                    interval_secs,
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
        Ok(Config {
            upstream,
            listen,
            data_dir: args
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            database_url,
            retention_hours: retention_days * 24,
            max_body_bytes,
            max_batch,
            coordinator_key,
            log: args.log.or(file.log).unwrap_or_else(|| "info".into()),
            workers: args.workers.or(file.workers),
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
}
