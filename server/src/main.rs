//! `amparo-relay`: see `amparo-relay --help`.

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::{FilterExt, filter_fn};
use tracing_subscriber::layer::{Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

use amparo_protocol::b64;
use amparo_relay::config::{self, Args, Command, Config};
use amparo_relay::{malformed, relay_key};

/// `amparo-relay key`: prints the receipt public key of the data directory
/// on stdout (and nothing else there, for scripts), without starting the
/// relay.
fn print_key(args: &Args, create: bool) -> ExitCode {
    let dir = match config::data_dir(args) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("amparo-relay: {e}");
            return ExitCode::from(2);
        }
    };
    let existed = relay_key::path_in(&dir).exists();
    let key = if create {
        relay_key::load_or_create(&dir).map(Some)
    } else {
        relay_key::load(&dir)
    };
    match key {
        Ok(Some(key)) => {
            if create && !existed {
                eprintln!(
                    "amparo-relay: created {}; back it up (phones trust receipts signed with it)",
                    relay_key::path_in(&dir).display()
                );
            }
            let _ = writeln!(
                std::io::stdout().lock(),
                "{}",
                b64::encode(key.verifying_key().as_bytes())
            );
            ExitCode::SUCCESS
        }
        Ok(None) => {
            eprintln!(
                "amparo-relay: there is no receipt key in {} yet. The relay creates {} on its first start; \
                 `amparo-relay key --create` creates it now. If this relay shares a PostgreSQL database with \
                 others, copy that file from one of them instead, so that all sign with the same key.",
                dir.display(),
                relay_key::FILE_NAME
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("amparo-relay: {e}");
            ExitCode::FAILURE
        }
    }
}

/// glibc's malloc serves a request of at least `M_MMAP_THRESHOLD` bytes
/// (128 KiB) with a mapping of its own, unmapped as soon as it is freed; but
/// each time such a block is freed it raises the threshold to that block's
/// size (up to 32 MiB), and from then on request bodies and connection
/// buffers come from its arenas, which fragment and keep the memory. Under
/// 2,000 slow connections the relay grew to 355 MiB and stayed there after
/// they closed; with the threshold fixed, 172 MiB at the peak and 65 MiB
/// right after (BENCHMARKS.md, slow clients). Setting the threshold, even to
/// its default, turns the raising off, and glibc reads it only from the
/// environment when the process starts: so the relay starts itself again
/// once, at once, with `MALLOC_MMAP_THRESHOLD_=131072`, unless the variable
/// is already set (an operator may choose another value). The process id
/// stays the same. Other C libraries ignore the variable.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn fix_malloc_threshold() {
    use std::os::unix::process::CommandExt;
    const VAR: &str = "MALLOC_MMAP_THRESHOLD_";
    if std::env::var_os(VAR).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    // Replaces this process and returns only if it could not.
    let err = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(VAR, "131072")
        .exec();
    eprintln!(
        "amparo-relay: could not start again with {VAR} set ({err}); going on with glibc's defaults"
    );
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn fix_malloc_threshold() {}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(Command::Key { create }) = args.command {
        return print_key(&args, create);
    }
    fix_malloc_threshold();
    run_relay(args)
}

#[actix_web::main]
async fn run_relay(args: Args) -> ExitCode {
    let config = match Config::resolve(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("amparo-relay: {e}");
            return ExitCode::from(2);
        }
    };
    // No timestamps (the relay keeps no exact times, not even in its logs),
    // no peer addresses (nothing records them), no ANSI when not a terminal.
    // Requests that are not valid HTTP are counted, not written one line
    // each (amparo_relay::malformed): the log's layer leaves them out, and a
    // layer of their own counts them at any log level.
    let filter = EnvFilter::try_new(&config.log).unwrap_or_else(|_| EnvFilter::new("info"));
    let log = tracing_subscriber::fmt::layer()
        .without_time()
        .with_target(false)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .with_filter(filter.and(malformed::Quiet));
    tracing_subscriber::registry()
        .with(log)
        .with(malformed::Counter.with_filter(filter_fn(malformed::concerns)))
        .init();
    match amparo_relay::run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("amparo-relay: {e}");
            ExitCode::FAILURE
        }
    }
}
