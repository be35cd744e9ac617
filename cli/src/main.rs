//! `amparo`: the command line for coordinators, focal points and
//! facilitators. It holds no logic of its own beyond arguments and display;
//! everything it does is amparo-core.
//!
//! So far it has one command, `demo`, which shows a report travel end to end
//! through a running relay.

mod demo;

use clap::{Parser, Subcommand};

/// Amparo: anonymous, end-to-end encrypted reports to justice focal points.
/// / Amparo: denuncias anónimas y cifradas de extremo a extremo.
/// / Amparo: denúncias anônimas e criptografadas de ponta a ponta.
#[derive(Parser)]
#[command(name = "amparo", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Send a report through a relay and watch it arrive, be answered, and the
    /// answer come back: a focal point and a survivor, both played here.
    Demo(demo::DemoArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("amparo: cannot start: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Demo(args) => runtime.block_on(demo::run(args)),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("amparo: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
