//! `amparo-desk`: serves the focal point's desk on 127.0.0.1 and opens it
//! in the browser. The address it opens carries a per-launch secret; the
//! desk starts locked and asks for the profile's PIN.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{HttpServer, web};
use amparo_core::store::{DeviceKey, SoftwareDeviceKey};
use amparo_desk::{Desk, DeskConfig, app, tick};
use clap::Parser;

/// The focal point's desk: work cases in your browser; the keys and every
/// decryption stay in this program, on this computer.
/// / La mesa del punto focal: trabaje los casos en su navegador; las
/// claves y todo descifrado quedan en este programa, en esta computadora.
/// / A mesa do ponto focal: trabalhe os casos no seu navegador; as chaves
/// e toda decifragem ficam neste programa, neste computador.
#[derive(Parser)]
#[command(name = "amparo-desk", version)]
struct Args {
    /// The focal point's profile folder. / La carpeta del perfil. / A pasta do perfil.
    #[arg(long, env = "AMPARO_PROFILE", default_value = "amparo-profile")]
    profile: PathBuf,
    /// The device key file, for a profile bound to one.
    #[arg(long, env = "AMPARO_DEVICE_KEY")]
    device_key: Option<PathBuf>,
    /// Port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Lock after this many minutes without use. / Bloquear tras estos minutos sin uso.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=1440))]
    lock_after: u64,
    /// Sync every this many minutes while unlocked (0: only on request).
    #[arg(long, default_value_t = 15)]
    sync_every: u64,
    /// Do not open the browser; only print the address.
    #[arg(long)]
    no_browser: bool,
}

/// Opens `url` in the system's browser, if there is one to ask.
fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let _ = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}

fn main() -> std::io::Result<()> {
    // No request is logged: paths carry case ids, and nothing of a case
    // may reach a log. Only the desk's own start-up and failures are.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let device_key: Option<Arc<dyn DeviceKey>> = match &args.device_key {
        Some(path) => Some(Arc::new(SoftwareDeviceKey::load(path).map_err(|e| {
            std::io::Error::other(format!("--device-key {}: {e}", path.display()))
        })?)),
        None => None,
    };
    actix_web::rt::System::new().block_on(async move {
        // Loopback only: the desk is never reachable from the network.
        let listener = std::net::TcpListener::bind(("127.0.0.1", args.port))?;
        let port = listener.local_addr()?.port();
        let desk = web::Data::new(Desk::new(
            DeskConfig {
                profile: args.profile,
                device_key,
                lock_after: Duration::from_secs(args.lock_after * 60),
                sync_every: (args.sync_every > 0)
                    .then(|| Duration::from_secs(args.sync_every * 60)),
            },
            port,
        )?);
        let url = desk.launch_url();
        let data = desk.clone();
        let server = HttpServer::new(move || app(data.clone()))
            .workers(2)
            .listen(listener)?
            .run();
        actix_web::rt::spawn(tick(desk.into_inner()));
        println!("Amparo desk / Mesa / Mesa: {url}");
        if !args.no_browser {
            open_browser(&url);
        }
        server.await
    })
}
