//! The focal point's desk: a web application served on 127.0.0.1 by the
//! process that holds the focal point's keys, so that public defenders,
//! ombudsman staff and social workers work cases in a browser while every
//! decryption stays here. The logic is amparo-core's (the case index,
//! notes, replies, statuses, referrals, sync); the desk presents it.
//!
//! A local web application has its own attack surface: see [`guard`] for
//! what every request must pass, and [`state`] for what locking drops.

pub mod guard;
pub mod pages;
pub mod routes;
pub mod state;
pub mod sync;
pub mod words;

use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{App, Error, web};
use futures_util::FutureExt as _;
use futures_util::future::{Either, ready};

pub use state::{Desk, DeskConfig};

/// The desk's application: the guard in front of every route, the strict
/// headers on every answer.
pub fn app(
    desk: web::Data<Desk>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(desk)
        // Forms are small: a reply or a note is at most 12 000 characters.
        .app_data(web::FormConfig::default().limit(256 * 1024))
        .configure(routes::configure)
        .wrap_fn(|req, srv| match guard::check(&req) {
            None => Either::Left(
                srv.call(req)
                    .map(|r| r.map(ServiceResponse::map_into_left_body)),
            ),
            Some(refusal) => {
                Either::Right(ready(Ok(req.into_response(refusal).map_into_right_body())))
            }
        })
        // Outermost, so refusals get the headers too.
        .wrap(guard::secure_headers())
}

/// How often the desk looks at its idle time and its sync timer.
pub const TICK: Duration = Duration::from_secs(5);

/// Locks an idle desk and starts the periodic sync; runs until the desk
/// stops.
pub async fn tick(desk: Arc<Desk>) {
    let mut last_sync: Option<std::time::Instant> = None;
    let mut interval = tokio::time::interval(TICK);
    loop {
        interval.tick().await;
        let unlocked = {
            let mut inner = desk.inner();
            if inner.open.is_some() && inner.last_seen.elapsed() >= desk.config.lock_after {
                state::lock(&mut inner);
            }
            inner.open.is_some()
        };
        if !unlocked {
            last_sync = None;
            continue;
        }
        if let Some(every) = desk.config.sync_every
            && last_sync.is_none_or(|t| t.elapsed() >= every)
        {
            last_sync = Some(std::time::Instant::now());
            sync::start(&desk);
        }
    }
}
