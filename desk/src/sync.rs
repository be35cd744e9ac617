//! Sync from the desk: one at a time, in the background, with progress the
//! page polls; started by the button or by the desk's own timer.

use std::sync::Arc;
use std::time::Instant;

use amparo_core::focal::{FetchProgress, Listing};
use amparo_core::store::{Profile, system_now};
use amparo_core::survivor::SyncProgress;
use serde::Serialize;

use crate::state::Desk;

/// How far the sync under way has got, or how the last one ended.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Progress {
    /// Whether a sync is under way.
    pub running: bool,
    /// Envelopes uploaded so far, of `to_send`.
    pub sent: usize,
    /// Envelopes the upload started with.
    pub to_send: usize,
    /// Envelopes fetched and stored so far.
    pub fetched: usize,
    /// New cases among them.
    pub new_cases: usize,
    /// Her follow-ups filed.
    pub messages: usize,
    /// Envelopes that could not be opened.
    pub unreadable: usize,
    /// Envelopes the relay could not take now (they stay queued).
    pub postponed: usize,
    /// Whether more waits in the mailbox past what one sync fetches.
    pub more: bool,
    /// Whether the directory does not list this focal point as it is.
    pub not_listed: bool,
    /// The error that ended the last sync (a sentence, no case content).
    pub error: Option<String>,
    /// Seconds since the last sync ended, if one did in this session.
    pub ended_ago: Option<u64>,
}

/// The sync state kept in the desk.
#[derive(Default)]
pub struct SyncState {
    task: Option<tokio::task::JoinHandle<()>>,
    progress: Progress,
    ended: Option<Instant>,
}

impl SyncState {
    /// Stops the sync under way, if any (on lock).
    pub fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
        self.progress = Progress::default();
        self.ended = None;
    }

    /// What to show.
    pub fn progress(&self) -> Progress {
        let mut p = self.progress.clone();
        p.running = self.task.as_ref().is_some_and(|t| !t.is_finished());
        p.ended_ago = self.ended.map(|e| e.elapsed().as_secs());
        p
    }

    fn running(&self) -> bool {
        self.task.as_ref().is_some_and(|t| !t.is_finished())
    }
}

/// Starts a sync if the desk is unlocked and none is under way. Returns
/// whether one is under way now.
pub fn start(desk: &Arc<Desk>) -> bool {
    let profile = {
        let mut inner = desk.inner();
        if inner.sync.running() {
            return true;
        }
        let Some(open) = &inner.open else {
            return false;
        };
        let profile = Arc::clone(&open.profile);
        inner.sync.progress = Progress {
            running: true,
            ..Progress::default()
        };
        profile
    };
    let task_desk = Arc::clone(desk);
    // The core's sync future is not `Send` (its progress callbacks are
    // plain `FnMut`): it runs on this worker's thread.
    let task = actix_web::rt::spawn(async move {
        let outcome = run(&task_desk, &profile).await;
        finish(&task_desk, &profile, outcome);
    });
    desk.inner().sync.task = Some(task);
    true
}

fn update(desk: &Desk, f: impl FnOnce(&mut Progress)) {
    f(&mut desk.inner().sync.progress);
}

async fn run(desk: &Desk, p: &Profile) -> amparo_core::Result<(usize, bool)> {
    let settings = p.settings()?;
    let relay = settings.relay_client()?;
    if let Ok(coordinator) = settings.coordinator() {
        p.refresh_directory(&relay, &coordinator).await?;
    }
    let keys = p.trusted_relay_keys()?;
    let (sent, fetched) = p
        .focal_sync_with_progress(
            &relay,
            &keys,
            system_now,
            &mut |s| {
                if let SyncProgress::Upload { done, total, .. } = s {
                    update(desk, |p| {
                        p.sent = done;
                        p.to_send = total;
                    });
                }
            },
            &mut |f: FetchProgress| {
                update(desk, |p| {
                    p.fetched = f.fetched;
                    p.new_cases = f.reports;
                    p.unreadable = f.unreadable;
                });
            },
        )
        .await?;
    let not_listed = match settings.coordinator() {
        Ok(c) => p.focal_listing(&c, system_now())? != Listing::Listed,
        Err(_) => true,
    };
    update(desk, |pr| {
        pr.sent = sent.delivered;
        pr.postponed = sent.postponed;
        pr.fetched = pr.fetched.max(fetched.new_cases);
        pr.new_cases = fetched.new_cases;
        pr.messages = fetched.messages;
        pr.unreadable = fetched.rejected;
        pr.more = fetched.more;
        pr.not_listed = not_listed;
    });
    Ok((fetched.new_cases + fetched.messages, fetched.more))
}

/// Records how the sync ended, and reads the cases again if it filed any
/// (while the same profile is still open).
fn finish(desk: &Desk, profile: &Arc<Profile>, outcome: amparo_core::Result<(usize, bool)>) {
    let fresh = match &outcome {
        Ok((filed, _)) if *filed > 0 => profile.case_index().ok(),
        _ => None,
    };
    let waiting = profile.outbox_len().ok();
    let mut inner = desk.inner();
    if let Err(e) = outcome {
        // Said in the page's language when it is the usual case (offline);
        // otherwise the core's sentence (never case content).
        let lang = inner
            .session
            .as_ref()
            .and_then(|s| s.lang)
            .or_else(|| inner.open.as_ref().and_then(|o| o.language))
            .unwrap_or(amparo_protocol::payload::Language::Es);
        inner.sync.progress.error = Some(match e {
            amparo_core::CoreError::Network(_) => {
                crate::words::words(lang).sync_unreachable.to_string()
            }
            e => e.to_string(),
        });
    }
    inner.sync.ended = Some(Instant::now());
    if let Some(open) = inner.open.as_mut()
        && Arc::ptr_eq(&open.profile, profile)
    {
        if let Some(index) = fresh {
            open.index = index;
        }
        if let Some(n) = waiting {
            open.waiting = n;
        }
    }
}
