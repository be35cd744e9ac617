//! `amparo`: the command line for coordinators, focal points, facilitators
//! and (for tests, demos and desktop use) survivors. It holds no logic of its
//! own beyond arguments and display; everything it does is amparo-core.
//!
//! Secrets (PINs) come from a prompt without echo or from environment
//! variables for scripts (`AMPARO_PIN`, `AMPARO_NEW_PIN`,
//! `AMPARO_DURESS_PIN`), never from flags, which land in shell history.
//! A profile may be bound to a device key file (`--device-key`,
//! `AMPARO_DEVICE_KEY`): the desktop's stand-in for a phone's Keystore.

mod args;
mod cmd;
mod ctx;
mod demo;
mod lang;
mod present;

use std::path::PathBuf;
use std::process::ExitCode;

use amparo_protocol::payload::Language;
use clap::{Parser, Subcommand};

use crate::ctx::Ctx;

/// Amparo: anonymous, end-to-end encrypted reports to justice focal points.
/// / Amparo: denuncias anónimas y cifradas de extremo a extremo.
/// / Amparo: denúncias anônimas e criptografadas de ponta a ponta.
///
/// PINs are asked without echo, or read from AMPARO_PIN (scripts).
/// / El PIN se pide sin mostrarlo, o se lee de AMPARO_PIN.
/// / O PIN é pedido sem aparecer na tela, ou lido de AMPARO_PIN.
#[derive(Parser)]
#[command(name = "amparo", version, args_override_self = true)]
struct Cli {
    /// The profile folder. / La carpeta del perfil. / A pasta do perfil.
    #[arg(
        long,
        global = true,
        env = "AMPARO_PROFILE",
        default_value = "amparo-profile"
    )]
    profile: PathBuf,
    /// Language of messages: es, pt, en (default: from the locale).
    /// / Idioma: es, pt, en. / Idioma: es, pt, en.
    #[arg(long, global = true, value_parser = cmd::parse_enum::<Language>)]
    lang: Option<Language>,
    /// Print JSON for scripts instead of sentences.
    #[arg(long, global = true)]
    json: bool,
    /// A device key file (32 random bytes, made by `profile create` if
    /// missing): a profile bound to it opens only with the PIN *and* this
    /// file. Keep it apart from the profile (another disk, a USB key): a
    /// copy of both protects nothing. / Archivo de clave de dispositivo:
    /// guárdelo aparte del perfil. / Arquivo de chave de dispositivo:
    /// guarde-o longe do perfil.
    #[arg(long, global = true, env = "AMPARO_DEVICE_KEY")]
    device_key: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create, show, configure, protect or wipe a profile.
    /// / Crear, ver, configurar, proteger o borrar un perfil.
    /// / Criar, ver, configurar, proteger ou apagar um perfil.
    #[command(subcommand)]
    Profile(cmd::profile::ProfileCmd),
    /// Write reports, send them, read the answers (survivors).
    /// / Escribir denuncias, enviarlas, leer las respuestas.
    /// / Escrever denúncias, enviá-las, ler as respostas.
    #[command(subcommand)]
    Report(cmd::report::ReportCmd),
    /// Check-in timers: an alert that goes to a focal point only if you stop
    /// checking in, even if your phone is taken.
    /// / Temporizadores: una alerta que sale solo si deja de hacer check-in.
    /// / Temporizadores: um alerta que sai só se você parar de fazer check-in.
    #[command(subcommand)]
    Timer(cmd::timer::TimerCmd),
    /// Carry other people's sealed reports (facilitators).
    /// / Llevar denuncias selladas de otras personas (facilitadoras).
    /// / Levar denúncias lacradas de outras pessoas (facilitadoras).
    #[command(subcommand)]
    Carry(cmd::carry::CarryCmd),
    /// Receive reports and handle cases (focal points).
    #[command(subcommand)]
    Focal(cmd::focal::FocalCmd),
    /// The directory of focal points and service routes.
    /// / El directorio de puntos focales y rutas de atención.
    /// / O diretório de pontos focais e rotas de atendimento.
    #[command(subcommand)]
    Directory(cmd::directory::DirectoryCmd),
    /// Sign and publish the directory (coordinators).
    #[command(subcommand)]
    Coordinator(cmd::coordinator::CoordinatorCmd),
    /// Play the whole story on this machine: a relay, a coordinator, two focal
    /// points, a survivor and a facilitator; every step checked.
    /// / Toda la historia en esta máquina, cada paso verificado.
    /// / Toda a história nesta máquina, cada passo verificado.
    Demo(demo::DemoArgs),
}

fn main() -> ExitCode {
    // The language is needed before clap parses: its value errors (and the
    // list of accepted values) are worded in it.
    lang::set_early(lang::detect(lang::from_args(std::env::args_os())));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => match args::sentence(lang::early(), &e) {
            Some(sentence) => {
                eprintln!("amparo: {sentence}");
                return ExitCode::from(2);
            }
            None => e.exit(),
        },
    };
    let ctx = Ctx {
        lang: lang::detect(cli.lang),
        json: cli.json,
        profile: cli.profile,
        device_key: cli.device_key,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("amparo: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Profile(c) => cmd::profile::run(&ctx, c),
            Command::Report(c) => cmd::report::run(&ctx, c).await,
            Command::Timer(c) => cmd::timer::run(&ctx, c).await,
            Command::Carry(c) => cmd::carry::run(&ctx, c).await,
            Command::Focal(c) => cmd::focal::run(&ctx, c).await,
            Command::Directory(c) => cmd::directory::run(&ctx, c).await,
            Command::Coordinator(c) => cmd::coordinator::run(&ctx, c).await,
            Command::Demo(args) => demo::run(&ctx, args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ ctx::CliError::AfterResult(_)) => {
            // The result is on stdout already (JSON too): the failure is told
            // on stderr.
            eprintln!("amparo: {}", e.sentence(ctx.lang));
            ExitCode::FAILURE
        }
        Err(e) => {
            let sentence = e.sentence(ctx.lang);
            if ctx.json {
                println!("{}", serde_json::json!({ "error": sentence }));
            } else {
                eprintln!("amparo: {sentence}");
            }
            ExitCode::FAILURE
        }
    }
}
