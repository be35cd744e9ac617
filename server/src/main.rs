//! `amparo-relay`: see `amparo-relay --help`.

use clap::Parser;
use tracing_subscriber::EnvFilter;

use amparo_relay::config::{Args, Config};

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    let config = match Config::resolve(Args::parse()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("amparo-relay: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    // No timestamps (the relay keeps no exact times, not even in its logs),
    // no peer addresses (nothing records them), no ANSI when not a terminal.
    let filter = EnvFilter::try_new(&config.log).unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .without_time()
        .with_target(false)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .init();
    match amparo_relay::run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("amparo-relay: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
