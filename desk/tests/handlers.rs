//! Every route of the desk, through actix's test tools, with the refusals
//! that keep other sites and other people out: no cookie, a wrong one, a
//! foreign Host or Origin, a missing or wrong CSRF token, a locked or idle
//! desk. The profile is real (a focal point's, with cases filed from
//! sealed envelopes), so what the pages show is what the core holds.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::{Method, StatusCode, header};
use actix_web::test::{self, TestRequest};
use actix_web::web;
use amparo_core::compose::{Attachment, seal_report};
use amparo_core::drafts::DraftForm;
use amparo_core::settings::Settings;
use amparo_core::store::{KdfParams, Profile};
use amparo_desk::{Desk, DeskConfig, app};
use amparo_protocol::UnixTime;
use amparo_protocol::directory::{Directory, FocalPoint, LocalizedText};
use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::keys::{RecipientKeys, RecipientPublic};
use amparo_protocol::payload::*;
use amparo_protocol::primitives::ed25519::SigningKey;

const PORT: u16 = 48_123;
const HOST: &str = "127.0.0.1:48123";
const ORIGIN: &str = "http://127.0.0.1:48123";
const PIN: &str = "2468";
/// A tiny PNG (1×1).
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
    0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

fn entry(id: &str, keys: RecipientPublic) -> FocalPoint {
    let t = |s: &str| LocalizedText {
        es: s.into(),
        pt: s.into(),
        en: s.into(),
    };
    FocalPoint {
        reads: Vec::new(),
        id: id.into(),
        name: t(id),
        organization: "Org".into(),
        regions: vec!["PE-LIM".into()],
        categories: vec![Need::LegalAdvice],
        languages: vec![Language::Es],
        keys,
        valid_from: 0,
        valid_until: u64::MAX / 2,
    }
}

/// A focal point's profile holding two cases (one with a photo, an SVG
/// "photo" and a document) and a directory listing it and one other office.
/// Returns the ids: the case with attachments first.
fn focal_profile(dir: &std::path::Path) -> [[u8; 16]; 2] {
    let p = Profile::create(dir, PIN, KdfParams::DANGEROUSLY_FAST_FOR_TESTS).unwrap();
    let keys = p.create_focal_identity().unwrap();
    let coordinator = SigningKey::from_seed(&[7; 32]).unwrap();
    let other = RecipientKeys::generate(&mut SystemEntropy::new())
        .unwrap()
        .public();
    let d = Directory {
        statistics: None,
        focal_points: vec![entry("pe-lim-a", keys), entry("pe-lim-b", other)],
        service_routes: vec![],
        relays: vec![],
    };
    p.save_settings(&Settings {
        focal_point_id: Some("pe-lim-a".into()),
        coordinator_key: Some(coordinator.verifying_key().0),
        relay_url: Some("http://127.0.0.1:9".into()),
        ..Settings::default()
    })
    .unwrap();
    let signed = d.sign(1, &coordinator).unwrap();
    p.import_directory(signed.as_bytes(), &coordinator.verifying_key(), None)
        .unwrap();
    let form = |text: &str| DraftForm {
        text: text.into(),
        violence: vec![ViolenceKind::Sexual],
        aggressors: vec![AggressorKind::PoliceOrSecurity],
        needs: vec![Need::LegalAdvice],
        place: Place {
            setting: None,
            country: Some("PE".into()),
            region: Some("PE-LIM".into()),
            detail: None,
        },
        language: Some(Language::Es),
        ..DraftForm::default()
    };
    let mut ids = Vec::new();
    for (text, attachments) in [
        (
            "<script>alert(1)</script> Me golpearon en la comisaría",
            vec![
                Attachment {
                    kind: AttachmentKind::Photo,
                    mime: "image/png".into(),
                    data: PNG.to_vec(),
                },
                Attachment {
                    kind: AttachmentKind::Photo,
                    mime: "image/svg+xml".into(),
                    data:
                        b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"
                            .to_vec(),
                },
                Attachment {
                    kind: AttachmentKind::Document,
                    mime: "text/html".into(),
                    data: b"<html><script>alert(1)</script></html>".to_vec(),
                },
                Attachment {
                    kind: AttachmentKind::Audio,
                    mime: "audio/ogg".into(),
                    data: b"OggS-not-really-audio".to_vec(),
                },
            ],
        ),
        ("Un cliente me amenazó", vec![]),
    ] {
        let f = form(text);
        let sealed = seal_report(
            &keys,
            f.to_report(keys),
            &attachments,
            amparo_protocol::envelope::Compression::IfSmaller,
            &mut SystemEntropy::new(),
            UnixTime(1_790_000_000),
        )
        .unwrap();
        p.file_envelopes(&sealed.envelopes).unwrap();
        ids.push(sealed.report_id);
    }
    [ids[0], ids[1]]
}

fn hex(id: &[u8; 16]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

struct Harness {
    _dir: tempfile::TempDir,
    profile: std::path::PathBuf,
    desk: web::Data<Desk>,
    ids: [[u8; 16]; 2],
}

fn harness(lock_after: Duration) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("focal");
    let ids = focal_profile(&profile);
    let desk = web::Data::new(
        Desk::new(
            DeskConfig {
                profile: profile.clone(),
                device_key: None,
                lock_after,
                sync_every: None,
            },
            PORT,
        )
        .unwrap(),
    );
    Harness {
        _dir: dir,
        profile,
        desk,
        ids,
    }
}

fn get(path: &str) -> TestRequest {
    TestRequest::get()
        .uri(path)
        .insert_header((header::HOST, HOST))
}

fn post(path: &str) -> TestRequest {
    TestRequest::post()
        .uri(path)
        .insert_header((header::HOST, HOST))
        .insert_header((header::ORIGIN, ORIGIN))
}

async fn body(resp: ServiceResponse<impl MessageBody>) -> String {
    String::from_utf8(test::read_body(resp).await.to_vec()).unwrap()
}

fn location(resp: &ServiceResponse<impl MessageBody>) -> String {
    resp.headers()
        .get(header::LOCATION)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// A session: exchanges the launch secret; returns the cookie and the CSRF
/// token (read from the unlock page, as the browser would).
async fn session<S, B>(app: &S, desk: &Desk) -> (String, String)
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let url = desk.launch_url();
    let path = url.strip_prefix(&format!("http://{HOST}")).unwrap();
    let resp = test::call_service(app, get(path).to_request()).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let set = resp
        .headers()
        .get(header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_string();
    let page = body(
        test::call_service(
            app,
            get("/unlock")
                .insert_header((header::COOKIE, cookie.clone()))
                .to_request(),
        )
        .await,
    )
    .await;
    let csrf = page
        .split("data-csrf=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string();
    assert!(csrf.len() >= 40);
    (cookie, csrf)
}

#[actix_web::test]
async fn every_route_serves_its_page_and_refuses_what_it_must() {
    let h = harness(Duration::from_secs(600));
    let app = test::init_service(app(h.desk.clone())).await;
    let [with_photo, plain] = h.ids;

    // Assets need no session; anything else does.
    let css = test::call_service(&app, get("/assets/desk.css").to_request()).await;
    assert_eq!(css.status(), StatusCode::OK);
    for (name, value) in [
        ("content-security-policy", amparo_desk::guard::CSP),
        ("cache-control", "no-store"),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "same-origin"),
    ] {
        assert_eq!(css.headers().get(name).unwrap().to_str().unwrap(), value);
    }
    let posted_asset = test::call_service(&app, post("/assets/desk.js").to_request()).await;
    assert_eq!(posted_asset.status(), StatusCode::METHOD_NOT_ALLOWED);
    for path in [
        "/",
        "/unlock",
        "/cases",
        "/sync",
        "/sync/status",
        "/directory",
        "/stats",
    ] {
        let r = test::call_service(&app, get(path).to_request()).await;
        assert_eq!(
            r.status(),
            StatusCode::UNAUTHORIZED,
            "{path} without a session"
        );
        assert!(
            r.headers().contains_key("content-security-policy"),
            "refusals get the headers too"
        );
    }
    // The launch address without the secret, or with another.
    for path in ["/open", "/open?k=", "/open?k=AAAA"] {
        let r = test::call_service(&app, get(path).to_request()).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
        assert!(!r.headers().contains_key(header::SET_COOKIE));
    }
    // Another Host (DNS rebinding) is refused, even for the launch address.
    let url = h.desk.launch_url();
    let launch = url
        .strip_prefix(&format!("http://{HOST}"))
        .unwrap()
        .to_string();
    for host in [
        "evil.example:48123",
        "127.0.0.1:1",
        "127.0.0.1.nip.io:48123",
    ] {
        let r = test::call_service(
            &app,
            TestRequest::get()
                .uri(&launch)
                .insert_header((header::HOST, host))
                .to_request(),
        )
        .await;
        assert_eq!(r.status(), StatusCode::MISDIRECTED_REQUEST, "{host}");
    }
    let no_host = test::call_service(&app, TestRequest::get().uri(&launch).to_request()).await;
    assert_eq!(no_host.status(), StatusCode::MISDIRECTED_REQUEST);

    let (cookie, csrf) = session(&app, &h.desk).await;
    let with_cookie = |r: TestRequest| r.insert_header((header::COOKIE, cookie.clone()));
    // A wrong cookie is no session.
    let r = test::call_service(
        &app,
        get("/cases")
            .insert_header((header::COOKIE, "amparo_desk=forged"))
            .to_request(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // Locked: pages go to the lock screen, changes are refused.
    let r = test::call_service(&app, with_cookie(get("/cases")).to_request()).await;
    assert_eq!(
        (r.status(), location(&r)),
        (StatusCode::SEE_OTHER, "/unlock".into())
    );
    let r = test::call_service(
        &app,
        with_cookie(post(&format!("/case/{}/reply?csrf={csrf}", hex(&plain))))
            .set_form([("text", "hola")])
            .to_request(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::LOCKED);

    // Unlocking needs the CSRF token, the desk's Origin, and the PIN.
    let unlock = |pin: &str, csrf: &str, origin: Option<&str>| {
        let mut r = TestRequest::post()
            .uri(&format!("/unlock?csrf={csrf}"))
            .insert_header((header::HOST, HOST))
            .insert_header((header::COOKIE, cookie.clone()))
            .set_form([("pin", pin)]);
        if let Some(o) = origin {
            r = r.insert_header((header::ORIGIN, o));
        }
        r.to_request()
    };
    let r = test::call_service(&app, unlock(PIN, "", Some(ORIGIN))).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "no CSRF token");
    let r = test::call_service(&app, unlock(PIN, "wrong", Some(ORIGIN))).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "wrong CSRF token");
    let r = test::call_service(&app, unlock(PIN, &csrf, None)).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "no Origin on a change");
    let r = test::call_service(&app, unlock(PIN, &csrf, Some("https://evil.example"))).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "a foreign Origin");
    let r = test::call_service(&app, unlock("0000", &csrf, Some(ORIGIN))).await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = body(r).await;
    assert!(page.contains("unlock-error"), "a wrong PIN is said");
    let status = Profile::unlock_status(&h.profile, amparo_core::store::system_now()).unwrap();
    assert_eq!(
        status.failed_attempts, 1,
        "and counted by the core's throttle"
    );
    let r = test::call_service(&app, unlock(PIN, &csrf, Some(ORIGIN))).await;
    assert_eq!(
        (r.status(), location(&r)),
        (StatusCode::SEE_OTHER, "/cases".into())
    );

    // A foreign Origin on a read, or a cross-site fetch, is refused too.
    let r = test::call_service(
        &app,
        with_cookie(get("/cases"))
            .insert_header((header::ORIGIN, "https://evil.example"))
            .to_request(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Another port of this computer is the same site, not the same origin.
    for (site, status) in [
        ("cross-site", StatusCode::FORBIDDEN),
        ("same-site", StatusCode::FORBIDDEN),
        ("same-origin", StatusCode::OK),
        ("none", StatusCode::OK),
    ] {
        let r = test::call_service(
            &app,
            with_cookie(get("/cases"))
                .insert_header(("sec-fetch-site", site))
                .to_request(),
        )
        .await;
        assert_eq!(r.status(), status, "{site}");
    }

    // The cases, filtered and searched.
    let r = test::call_service(&app, with_cookie(get("/cases")).to_request()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = body(r).await;
    assert!(page.contains(&hex(&with_photo)) && page.contains(&hex(&plain)));
    assert!(page.contains("class=\"unread\""), "new cases are marked");
    let r = test::call_service(&app, with_cookie(get("/cases?q=COMISARIA")).to_request()).await;
    let page = body(r).await;
    assert!(
        page.contains(&hex(&with_photo)) && !page.contains(&hex(&plain)),
        "search ignores case and accents"
    );
    let r = test::call_service(
        &app,
        with_cookie(get("/cases?violence=robbery&status=closed")).to_request(),
    )
    .await;
    assert!(body(r).await.contains("id=\"no-cases\""));
    let r = test::call_service(
        &app,
        with_cookie(get(
            "/cases?from=2020-01-01&to=2099-12-31&page=999&sort=region&desc=1",
        ))
        .to_request(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);

    // A case: her words escaped, attachments listed with their hashes.
    let r = test::call_service(
        &app,
        with_cookie(get(&format!("/case/{}", hex(&with_photo)))).to_request(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = body(r).await;
    assert!(
        page.contains("&#60;script&#62;") || page.contains("&lt;script&gt;"),
        "her words are text"
    );
    assert!(!page.contains("<script>alert"), "never markup");
    assert!(page.contains("<img src=\"/case/"), "the PNG is shown");
    assert_eq!(page.matches("<img ").count(), 1, "the SVG is not shown");
    assert!(page.contains("<audio controls"), "the audio is playable");
    let r = test::call_service(&app, with_cookie(get("/cases")).to_request()).await;
    let page = body(r).await;
    assert_eq!(
        page.matches("class=\"unread\"").count(),
        1,
        "opening a case marks it read"
    );
    let r = test::call_service(&app, with_cookie(get("/case/nothex")).to_request()).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = test::call_service(
        &app,
        with_cookie(get(&format!("/case/{}", "0".repeat(32)))).to_request(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Attachments: the PNG inline as what it is; the SVG and the HTML only
    // as downloads of opaque bytes; any of them as a download when asked.
    let att = |n: usize, q: &str| {
        with_cookie(get(&format!(
            "/case/{}/attachment/{n}{q}",
            hex(&with_photo)
        )))
        .to_request()
    };
    let r = test::call_service(&app, att(0, "")).await;
    assert_eq!(r.headers().get(header::CONTENT_TYPE).unwrap(), "image/png");
    assert_eq!(
        r.headers().get("x-content-type-options").unwrap(),
        "nosniff"
    );
    assert!(
        r.headers()
            .get(header::CONTENT_DISPOSITION)
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("inline")
    );
    assert_eq!(test::read_body(r).await.as_ref(), PNG);
    let r = test::call_service(&app, att(3, "")).await;
    assert_eq!(r.headers().get(header::CONTENT_TYPE).unwrap(), "audio/ogg");
    for (n, q) in [(0, "?download=1"), (1, ""), (2, "")] {
        let r = test::call_service(&app, att(n, q)).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            r.headers().get(header::CONTENT_TYPE).unwrap(),
            "application/octet-stream",
            "{n}{q}"
        );
        assert!(
            r.headers()
                .get(header::CONTENT_DISPOSITION)
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("attachment")
        );
    }
    let r = test::call_service(&app, att(9, "")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = test::call_service(
        &app,
        with_cookie(get(&format!("/case/{}/export", hex(&with_photo)))).to_request(),
    )
    .await;
    assert!(
        r.headers()
            .get(header::CONTENT_DISPOSITION)
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let page = body(r).await;
    assert!(page.contains("data:image/png;base64,") && !page.contains("<script>alert"));

    // Changes: each needs the token; each goes through the core.
    let p = |path: String| with_cookie(post(&path));
    let case_path =
        |what: &str, id: &[u8; 16], token: &str| format!("/case/{}/{what}?csrf={token}", hex(id));
    for what in [
        "reply", "status", "note", "stage", "star", "refer", "classify",
    ] {
        let r = test::call_service(
            &app,
            p(case_path(what, &plain, ""))
                .set_form([("text", "x")])
                .to_request(),
        )
        .await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{what} without a token");
    }
    let r = test::call_service(
        &app,
        p(case_path("reply", &plain, &csrf))
            .set_form([("text", "Le llamamos mañana")])
            .to_request(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(location(&r).ends_with("?done=reply"));
    let r = test::call_service(
        &app,
        p(case_path("reply", &plain, &csrf))
            .set_form([("text", "   ")])
            .to_request(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "an empty reply");
    let r = test::call_service(
        &app,
        p(case_path("status", &plain, &csrf))
            .set_form([("status", "in_progress"), ("message", "Estamos en ello")])
            .to_request(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = test::call_service(
        &app,
        p(case_path("status", &plain, &csrf))
            .set_form([("status", "referred")])
            .to_request(),
    )
    .await;
    assert_eq!(
        r.status(),
        StatusCode::BAD_REQUEST,
        "referring goes through refer"
    );
    let r = test::call_service(
        &app,
        p(case_path("status", &plain, &csrf))
            .set_form([("status", "bogus")])
            .to_request(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = test::call_service(
        &app,
        p(case_path("note", &plain, &csrf))
            .set_form([("text", "Nota interna privada")])
            .to_request(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = test::call_service(
        &app,
        p(case_path("stage", &plain, &csrf))
            .set_form([("stage", "case_plan")])
            .to_request(),
    )
    .await;
    assert!(location(&r).ends_with("?done=stage"));
    let r = test::call_service(
        &app,
        p(case_path("stage", &plain, &csrf))
            .set_form([("stage", "nonsense")])
            .to_request(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = test::call_service(
        &app,
        with_cookie(get("/cases?stage=case_plan")).to_request(),
    )
    .await;
    let page = body(r).await;
    assert!(
        page.contains(&hex(&plain)) && !page.contains(&hex(&with_photo)),
        "filter by stage"
    );
    let r = test::call_service(
        &app,
        p(case_path("star", &plain, &csrf))
            .set_form([("on", "1")])
            .to_request(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = test::call_service(&app, with_cookie(get("/cases?starred=1")).to_request()).await;
    let page = body(r).await;
    assert!(
        page.contains(&hex(&plain)) && !page.contains(&hex(&with_photo)),
        "starred only"
    );
    assert!(page.contains("class=\"star\""));
    let r = test::call_service(
        &app,
        p(case_path("refer", &with_photo, &csrf))
            .set_form([("to", "pe-lim-a"), ("note", "x")])
            .to_request(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "not to itself");
    let r = test::call_service(
        &app,
        p(case_path("refer", &with_photo, &csrf))
            .set_form([("to", "nobody"), ("note", "x")])
            .to_request(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = test::call_service(
        &app,
        p(case_path("refer", &with_photo, &csrf))
            .set_form([("to", "pe-lim-b"), ("note", "Para su equipo legal")])
            .to_request(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = test::call_service(
        &app,
        with_cookie(get(&format!("/case/{}", hex(&plain)))).to_request(),
    )
    .await;
    let page = body(r).await;
    assert!(
        page.contains("Le llamamos mañana")
            && page.contains("Nota interna privada")
            && page.contains("Estamos en ello")
    );

    // Sync: the page, a start (no relay answers here: it fails and says so), its progress.
    let r = test::call_service(&app, with_cookie(get("/sync")).to_request()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = body(r).await;
    assert!(
        page.contains("id=\"waiting\">"),
        "what waits to go out is shown"
    );
    let r = test::call_service(&app, p("/sync".into()).to_request()).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "sync without a token");
    let r = test::call_service(
        &app,
        p("/sync".into())
            .insert_header(("x-csrf-token", csrf.clone()))
            .insert_header((header::ACCEPT, "application/json"))
            .to_request(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let mut status = serde_json::Value::Null;
    for _ in 0..100 {
        let r = test::call_service(&app, with_cookie(get("/sync/status")).to_request()).await;
        status = serde_json::from_slice(&test::read_body(r).await).unwrap();
        if status["running"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status["running"], false);
    assert!(status["error"].is_string(), "{status}");
    assert!(
        status["waiting"].as_u64().unwrap() >= 3,
        "reply, status and referral wait: {status}"
    );

    // Unreadable envelopes and the directory.
    let r = test::call_service(&app, with_cookie(get("/rejected")).to_request()).await;
    assert!(body(r).await.contains("id=\"none-unreadable\""));
    let r = test::call_service(&app, p(format!("/rejected/clear?csrf={csrf}")).to_request()).await;
    assert_eq!(location(&r), "/rejected?done=cleared");
    let r = test::call_service(&app, with_cookie(get("/directory")).to_request()).await;
    let page = body(r).await;
    assert!(page.contains("id=\"dir-version\">1<") && page.contains("pe-lim-b"));

    // The language, switched; back only to a page of the desk.
    let r = test::call_service(
        &app,
        p(format!("/lang?csrf={csrf}"))
            .set_form([("lang", "pt"), ("back", "/directory")])
            .to_request(),
    )
    .await;
    assert_eq!(location(&r), "/directory");
    let r = test::call_service(&app, with_cookie(get("/cases")).to_request()).await;
    assert!(body(r).await.contains("<html lang=\"pt\">"));
    let r = test::call_service(
        &app,
        p(format!("/lang?csrf={csrf}"))
            .set_form([("lang", "en"), ("back", "//evil.example/")])
            .to_request(),
    )
    .await;
    assert_eq!(location(&r), "/");

    // Lock: the profile is dropped; pages go to the lock screen.
    let r = test::call_service(&app, p(format!("/lock?csrf={csrf}")).to_request()).await;
    assert_eq!(location(&r), "/unlock");
    assert!(h.desk.inner().open.is_none());
    let r = test::call_service(
        &app,
        with_cookie(get(&format!("/case/{}", hex(&plain)))).to_request(),
    )
    .await;
    assert_eq!(location(&r), "/unlock");

    // A new launch ends the old session (and starts locked).
    let (cookie2, _) = session(&app, &h.desk).await;
    assert_ne!(cookie, cookie2);
    let r = test::call_service(&app, with_cookie(get("/unlock")).to_request()).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Other methods are not served.
    let r = test::call_service(
        &app,
        TestRequest::default()
            .method(Method::DELETE)
            .uri("/cases")
            .insert_header((header::HOST, HOST))
            .insert_header((header::ORIGIN, ORIGIN))
            .insert_header((header::COOKIE, cookie2))
            .to_request(),
    )
    .await;
    assert!(r.status().is_client_error());
}

#[actix_web::test]
async fn an_idle_desk_locks_itself() {
    let h = harness(Duration::ZERO);
    let app = test::init_service(app(h.desk.clone())).await;
    let (cookie, csrf) = session(&app, &h.desk).await;
    let r = test::call_service(
        &app,
        post(&format!("/unlock?csrf={csrf}"))
            .insert_header((header::COOKIE, cookie.clone()))
            .set_form([("pin", PIN)])
            .to_request(),
    )
    .await;
    assert_eq!(location(&r), "/cases");
    assert!(h.desk.inner().open.is_some());
    // The next request finds it idle past the limit (zero here).
    let r = test::call_service(
        &app,
        get("/cases")
            .insert_header((header::COOKIE, cookie))
            .to_request(),
    )
    .await;
    assert_eq!(location(&r), "/unlock");
    assert!(
        h.desk.inner().open.is_none(),
        "the profile and the index are dropped"
    );
}

#[actix_web::test]
async fn the_duress_pin_opens_a_quiet_desk() {
    let h = harness(Duration::from_secs(600));
    {
        let p = Profile::open(&h.profile, PIN).unwrap();
        p.set_duress_pin("97531", false).unwrap();
    }
    let app = test::init_service(app(h.desk.clone())).await;
    let (cookie, csrf) = session(&app, &h.desk).await;
    let r = test::call_service(
        &app,
        post(&format!("/unlock?csrf={csrf}"))
            .insert_header((header::COOKIE, cookie.clone()))
            .set_form([("pin", "97531")])
            .to_request(),
    )
    .await;
    assert_eq!(location(&r), "/cases", "it opens like the real PIN");
    let r = test::call_service(
        &app,
        get("/cases")
            .insert_header((header::COOKIE, cookie.clone()))
            .to_request(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = body(r).await;
    assert!(
        page.contains("id=\"no-cases\""),
        "no case of the real profile"
    );
    for id in h.ids {
        assert!(!page.contains(&hex(&id)));
        let r = test::call_service(
            &app,
            get(&format!("/case/{}", hex(&id)))
                .insert_header((header::COOKIE, cookie.clone()))
                .to_request(),
        )
        .await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }
    // A sync from the decoy fetches nothing and fails on nothing it holds.
    let r = test::call_service(
        &app,
        post("/sync")
            .insert_header((header::COOKIE, cookie.clone()))
            .insert_header(("x-csrf-token", csrf.clone()))
            .to_request(),
    )
    .await;
    assert!(r.status().is_redirection());
}

/// Files a report from a survivor who answered the statistics questions,
/// written at `at`.
fn file_counted_case(
    p: &Profile,
    consent: bool,
    age: Option<AgeBand>,
    setting: Option<PlaceSetting>,
    elsewhere: Option<bool>,
    at: u64,
) -> [u8; 16] {
    let keys = p.focal_public().unwrap();
    let mut report = DraftForm {
        text: "Me amenazaron en la frontera".into(),
        violence: vec![ViolenceKind::Threats],
        aggressors: vec![AggressorKind::Client],
        needs: vec![Need::LegalAdvice],
        place: Place {
            setting,
            country: Some("PE".into()),
            region: Some("PE-LIM".into()),
            detail: None,
        },
        language: Some(Language::Es),
        ..DraftForm::default()
    }
    .to_report(keys);
    report.statistics_consent = consent;
    report.age_band = age;
    report.reported_elsewhere = elsewhere;
    let sealed = seal_report(
        &keys,
        report,
        &[],
        amparo_protocol::envelope::Compression::IfSmaller,
        &mut SystemEntropy::new(),
        UnixTime(at),
    )
    .unwrap();
    p.file_envelopes(&sealed.envelopes).unwrap();
    sealed.report_id
}

#[actix_web::test]
async fn cases_are_classified_counted_and_a_month_shared_once() {
    use amparo_core::stats::MonthStats;
    use amparo_protocol::statistics::{GbvContext, GbvType, Month};

    let h = harness(Duration::from_secs(600));
    // Besides the two cases of the harness (she did not answer the
    // statistics questions: not counted), three who did, in September 2026.
    let (adult, teen, elsewhere) = {
        let p = Profile::open(&h.profile, PIN).unwrap();
        let at = 1_790_000_000;
        (
            file_counted_case(
                &p,
                true,
                Some(AgeBand::Adult),
                Some(PlaceSetting::Urban),
                Some(false),
                at,
            ),
            file_counted_case(
                &p,
                true,
                Some(AgeBand::Adolescent),
                Some(PlaceSetting::Border),
                None,
                at + 3600,
            ),
            file_counted_case(&p, true, None, None, Some(true), at + 7200),
        )
    };
    let app = test::init_service(app(h.desk.clone())).await;
    let (cookie, csrf) = session(&app, &h.desk).await;
    let with_cookie = |r: TestRequest| r.insert_header((header::COOKIE, cookie.clone()));
    let r = test::call_service(
        &app,
        with_cookie(post(&format!("/unlock?csrf={csrf}")))
            .set_form([("pin", PIN)])
            .to_request(),
    )
    .await;
    assert_eq!(location(&r), "/cases");
    let open = |f: &dyn Fn(&amparo_desk::state::Open)| f(h.desk.inner().open.as_ref().unwrap());

    // The statistics page: the latest month with cases, what is counted
    // and why the rest is not, and the cases still to classify.
    let r = test::call_service(&app, with_cookie(get("/stats")).to_request()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = body(r).await;
    assert!(page.contains("id=\"nav-stats\" href=\"/stats\" aria-current=\"page\""));
    assert!(page.contains("<option value=\"2026-09\" selected>septiembre de 2026</option>"));
    for (id, n) in [
        ("stats-cases", 5),
        ("stats-counted", 0),
        ("excluded-no_consent", 2),
        ("excluded-reported_elsewhere", 1),
        ("excluded-referred", 0),
        ("excluded-unclassified", 2),
    ] {
        assert!(page.contains(&format!("id=\"{id}\">{n}<")), "{id} {n}");
    }
    assert!(page.contains(&format!("href=\"/case/{}\"", hex(&adult))));
    assert!(page.contains(&format!("href=\"/case/{}\"", hex(&teen))));
    assert!(!page.contains(&format!("href=\"/case/{}\"", hex(&elsewhere))));
    assert!(page.contains("id=\"nothing-counted\""));

    // The case shows what she said for statistics, and the classification.
    let r = test::call_service(
        &app,
        with_cookie(get(&format!("/case/{}", hex(&adult)))).to_request(),
    )
    .await;
    let page = body(r).await;
    for (label, value) in [
        ("Tipo de lugar", "Ciudad o pueblo"),
        ("Edad entonces", "18 años o más"),
        ("Lo contó a otra organización", "No"),
        ("Acepta que se cuente en estadísticas", "Sí"),
    ] {
        assert!(
            page.contains(&format!("<dt>{label}</dt><dd>{value}</dd>")),
            "{label}: {value}"
        );
    }
    assert!(page.contains("id=\"classification\">Sin clasificar<"));
    assert!(page.contains("id=\"classify-form\"") && !page.contains("id=\"not-counted\""));
    let r = test::call_service(
        &app,
        with_cookie(get(&format!("/case/{}", hex(&h.ids[1])))).to_request(),
    )
    .await;
    let page = body(r).await;
    assert!(page.contains("<dt>Acepta que se cuente en estadísticas</dt><dd>No</dd>"));
    assert!(page.contains("<dt>Edad entonces</dt><dd>No lo dijo</dd>"));
    assert!(page.contains("id=\"not-counted\""), "why it is not counted");

    // Classifying: refused without the token (nothing changes), done with it.
    let classify = |id: &[u8; 16], token: &str, form: &[(&str, &str)]| {
        with_cookie(post(&format!("/case/{}/classify?csrf={token}", hex(id))))
            .set_form(form.to_vec())
            .to_request()
    };
    let form = [
        ("gbv_type", "rape"),
        ("context", "intimate_partner_violence"),
        ("context", "trafficking"),
    ];
    let summary = |id: [u8; 16]| {
        let inner = h.desk.inner();
        let o = inner.open.as_ref().unwrap();
        (
            o.profile.case(&id).unwrap().summary,
            o.index.summary(&id).cloned().unwrap(),
        )
    };
    for token in ["", "wrong"] {
        let r = test::call_service(&app, classify(&adult, token, &form)).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
    let r = test::call_service(
        &app,
        with_cookie(post(&format!("/case/{}/classify", hex(&adult))))
            .insert_header(("x-csrf-token", "forged"))
            .set_form(form.to_vec())
            .to_request(),
    )
    .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (stored, indexed) = summary(adult);
    assert_eq!(
        (stored.gbv_type, stored.context.len()),
        (None, 0),
        "unchanged"
    );
    assert_eq!(indexed.gbv_type, None);
    let r = test::call_service(&app, classify(&adult, &csrf, &form)).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(location(&r).ends_with("?done=classify"), "{}", location(&r));
    let (stored, indexed) = summary(adult);
    assert_eq!(stored.gbv_type, Some(GbvType::Rape));
    assert_eq!(
        stored.context,
        vec![GbvContext::IntimatePartnerViolence, GbvContext::Trafficking]
    );
    assert_eq!(indexed.gbv_type, Some(GbvType::Rape), "the index follows");
    for bad in [
        [("gbv_type", "bogus"), ("context", "trafficking")],
        [("gbv_type", "rape"), ("context", "bogus")],
    ] {
        let r = test::call_service(&app, classify(&adult, &csrf, &bad)).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }
    assert_eq!(summary(adult).0.gbv_type, Some(GbvType::Rape));
    let r = test::call_service(
        &app,
        with_cookie(get(&format!("/case/{}?done=classify", hex(&adult)))).to_request(),
    )
    .await;
    let page = body(r).await;
    assert!(page.contains("Clasificación guardada (interna)."));
    assert!(page.contains("id=\"classification\">Violación · Violencia de pareja, Posible trata<"));
    assert!(page.contains("<option value=\"rape\" selected>"));
    assert!(page.contains("value=\"trafficking\" checked"));
    // A second classification, and one cleared and given again.
    for form in [
        &[("gbv_type", "physical_assault")][..],
        &[("gbv_type", "")][..],
        &[("gbv_type", "physical_assault")][..],
    ] {
        let r = test::call_service(&app, classify(&teen, &csrf, form)).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
    }
    assert_eq!(summary(teen).0.gbv_type, Some(GbvType::PhysicalAssault));

    // Counted now: tables, charts (inline SVG with a title giving every
    // number), context, and the table as it would leave (below the
    // threshold of 5: it says only that).
    let r = test::call_service(&app, with_cookie(get("/stats?month=2026-09")).to_request()).await;
    let page = body(r).await;
    assert!(page.contains("id=\"stats-counted\">2<"));
    assert!(page.contains("id=\"excluded-unclassified\">0<"));
    assert!(!page.contains("id=\"to-classify\""));
    for dim in ["gbv_type", "aggressor", "age_band", "report_delay"] {
        assert!(page.contains(&format!("id=\"table-{dim}\"")), "{dim}");
        assert!(
            page.contains(&format!("id=\"chart-{dim}\" viewBox=\"0 0 640 ")),
            "{dim}"
        );
        assert!(page.contains(&format!("aria-labelledby=\"chart-{dim}-title\"")));
    }
    assert!(page.contains("Violación: 1; Agresión sexual: 0; Agresión física: 1"));
    assert!(page.contains("Lima") || page.contains("PE-LIM"));
    assert!(page.contains("Zona de frontera") && page.contains("Ciudad o pueblo"));
    assert!(
        !page.contains(" style="),
        "no inline style (the CSP forbids it)"
    );
    assert!(page.contains("id=\"below-threshold\""));
    assert!(page.contains("id=\"publish-form\"") && page.contains("id=\"publish-confirm\""));
    // With a threshold of 2 the month is shared, and what cannot be (a
    // count of 1, or one that would reveal it) is a dash.
    open(&|o| {
        let mut s = o.profile.settings().unwrap();
        s.statistics_threshold = Some(2);
        o.profile.save_settings(&s).unwrap();
    });
    let r = test::call_service(&app, with_cookie(get("/stats?month=2026-09")).to_request()).await;
    let page = body(r).await;
    assert!(!page.contains("id=\"below-threshold\""));
    assert!(page.contains("id=\"shared-total\">2<"));
    assert!(page.contains("no compartido: menos de 2, o podría revelar uno"));
    assert!(page.contains("id=\"shared-gbv_type\"") && page.contains("Otros lugares"));
    assert!(page.contains("<span class=\"sr\">no compartido</span>"));
    // What the page would share is what the core would publish.
    open(&|o| {
        let m = Month::parse("2026-09").unwrap();
        let all = o.index.query(&Default::default()).cases;
        let desk = o.profile.shareable_table(&MonthStats::of(&all, m));
        assert_eq!(desk.unwrap(), o.profile.shareable_month(m).unwrap());
    });
    let r = test::call_service(&app, with_cookie(get("/stats?month=2026-13")).to_request()).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = test::call_service(&app, with_cookie(get("/stats?month=2025-01")).to_request()).await;
    let page = body(r).await;
    assert!(
        page.contains("id=\"stats-cases\">0<"),
        "a month without cases"
    );

    // Publishing: refused without the token; refused by the core when the
    // directory names no statistics key, or the month is not over; nothing
    // queued either way.
    let waiting = || {
        let inner = h.desk.inner();
        let o = inner.open.as_ref().unwrap();
        (
            o.profile.outbox_len().unwrap(),
            o.profile.published_months().unwrap().len(),
        )
    };
    let before = waiting();
    let publish = |token: &str, month: &str| {
        with_cookie(post(&format!("/stats/publish?csrf={token}")))
            .set_form([("month", month)])
            .to_request()
    };
    let r = test::call_service(&app, publish("", "2026-09")).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = test::call_service(&app, publish(&csrf, "2026-09")).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        body(r)
            .await
            .contains("the directory names no statistics key: this network gathers no statistics")
    );
    assert_eq!(waiting(), before, "nothing queued");
    let this_month = Month::of_unix(amparo_core::store::system_now().0).to_string();
    let r = test::call_service(&app, publish(&csrf, &this_month)).await;
    assert!(
        body(r)
            .await
            .contains("a month can be published once it is over")
    );
    let r = test::call_service(&app, publish(&csrf, "September")).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(waiting(), before, "nothing queued");

    // With a statistics key in the directory, the month goes once.
    open(&|o| {
        let coordinator = SigningKey::from_seed(&[7; 32]).unwrap();
        let mut d = o
            .profile
            .directory(&coordinator.verifying_key())
            .unwrap()
            .unwrap();
        d.statistics = Some(
            RecipientKeys::generate(&mut SystemEntropy::new())
                .unwrap()
                .public(),
        );
        let signed = d.sign(2, &coordinator).unwrap();
        o.profile
            .import_directory(signed.as_bytes(), &coordinator.verifying_key(), None)
            .unwrap();
    });
    let r = test::call_service(&app, publish(&csrf, "2026-09")).await;
    assert_eq!(
        location(&r),
        "/stats?month=2026-09&done=publish",
        "{}",
        body(r).await
    );
    assert_eq!(waiting(), (before.0 + 1, 1), "queued once");
    let r = test::call_service(
        &app,
        with_cookie(get("/stats?month=2026-09&done=publish")).to_request(),
    )
    .await;
    let page = body(r).await;
    assert!(page.contains("Mes compartido: sale en la próxima sincronización."));
    assert!(page.contains("id=\"published-table\""));
    assert!(page.contains("Compartido el ") && page.contains("la tabla tal como salió"));
    assert!(!page.contains("id=\"publish-form\""), "once only");
    let r = test::call_service(&app, publish(&csrf, "2026-09")).await;
    assert!(body(r).await.contains("already published"));
    assert_eq!(waiting(), (before.0 + 1, 1));
}

#[actix_web::test]
async fn the_office_takes_part_in_the_statistics_sum_from_the_desk() {
    use amparo_protocol::aggregation::{self, Member, Message, Round, SignedMessage};
    use amparo_protocol::envelope::{Envelope, Purpose};
    use amparo_protocol::padding::InnerHeader;
    use amparo_protocol::statistics::Month;

    let h = harness(Duration::from_secs(600));
    let app = test::init_service(app(h.desk.clone())).await;
    let (cookie, csrf) = session(&app, &h.desk).await;
    let with_cookie = |r: TestRequest| r.insert_header((header::COOKIE, cookie.clone()));
    let r = test::call_service(
        &app,
        with_cookie(post(&format!("/unlock?csrf={csrf}")))
            .set_form([("pin", PIN)])
            .to_request(),
    )
    .await;
    assert_eq!(location(&r), "/cases");
    let open = |f: &dyn Fn(&amparo_desk::state::Open)| f(h.desk.inner().open.as_ref().unwrap());
    let waiting = || {
        h.desk
            .inner()
            .open
            .as_ref()
            .unwrap()
            .profile
            .outbox_len()
            .unwrap()
    };
    let join = || with_cookie(post(&format!("/stats/aggregate?csrf={csrf}"))).to_request();

    // The page explains the sum and offers to take part.
    let r = test::call_service(&app, with_cookie(get("/stats")).to_request()).await;
    let page = body(r).await;
    assert!(page.contains("id=\"sum-heading\"") && page.contains("id=\"no-rounds\""));
    assert!(page.contains("id=\"aggregate-form\""));
    // Without the token: refused; with two offices and no statistics key:
    // the core says why, nothing queued.
    let before = waiting();
    let r = test::call_service(&app, with_cookie(post("/stats/aggregate")).to_request()).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = test::call_service(&app, join()).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(body(r).await.contains("no statistics key"));
    assert_eq!(waiting(), before);

    // Four offices and a statistics key: keys made, shares to the three
    // others and the public keys to the coordinator queued.
    let coordinator = SigningKey::from_seed(&[7; 32]).unwrap();
    let others: Vec<RecipientKeys> = (0..2)
        .map(|_| RecipientKeys::generate(&mut SystemEntropy::new()).unwrap())
        .collect();
    let mine = std::cell::RefCell::new(None);
    open(&|o| {
        let mut d = o
            .profile
            .directory(&coordinator.verifying_key())
            .unwrap()
            .unwrap();
        d.statistics = Some(
            RecipientKeys::generate(&mut SystemEntropy::new())
                .unwrap()
                .public(),
        );
        for (i, k) in others.iter().enumerate() {
            d.focal_points
                .push(entry(&format!("pe-lim-{}", i + 3), k.public()));
        }
        *mine.borrow_mut() = d.focal_point("pe-lim-a").map(|f| f.keys);
        let signed = d.sign(2, &coordinator).unwrap();
        o.profile
            .import_directory(signed.as_bytes(), &coordinator.verifying_key(), None)
            .unwrap();
    });
    let r = test::call_service(&app, join()).await;
    assert_eq!(location(&r), "/stats?done=aggregate", "{}", body(r).await);
    assert_eq!(waiting(), before + 4, "3 offices' shares and the keys");
    let r = test::call_service(&app, join()).await;
    assert_eq!(location(&r), "/stats?done=aggregate");
    assert_eq!(waiting(), before + 4, "keys are made once");

    // A round from the coordinator arrives: the page lists its offices.
    let last = Month::of_unix(amparo_core::store::system_now().0).previous();
    let holders: Vec<String> = vec!["pe-lim-a".into(), "pe-lim-b".into()];
    let cohort: Vec<Member> = others
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let id = format!("pe-lim-{}", i + 3);
            let (_, _, key) =
                aggregation::month_key(&id, last, &holders, k.signing(), &mut SystemEntropy::new())
                    .unwrap();
            Member { office: id, key }
        })
        .collect();
    let mut cohort = cohort;
    cohort.push(Member {
        office: "pe-lim-b".into(),
        key: cohort[0].key.clone(),
    });
    cohort.sort_by(|a, b| a.office.cmp(&b.office));
    let round = Message::Round(Round {
        month: last,
        layout: aggregation::Layout {
            regions: vec!["PE-LIM".into()],
        },
        cohort,
    });
    let body_bytes = SignedMessage::sign(&round, &coordinator)
        .unwrap()
        .to_json()
        .unwrap();
    let mut e = SystemEntropy::new();
    let header = InnerHeader::new(&mut e, amparo_core::store::system_now()).unwrap();
    let to = mine.borrow().unwrap();
    let env = Envelope::seal(&to, Purpose::Aggregation, &header, &body_bytes, &mut e).unwrap();
    open(&|o| {
        let got = o
            .profile
            .file_envelopes(std::slice::from_ref(&env))
            .unwrap();
        assert_eq!(got.rejected, 0);
    });
    let r = test::call_service(&app, with_cookie(get("/stats")).to_request()).await;
    let page = body(r).await;
    assert!(page.contains("id=\"rounds-table\""), "{page}");
    assert!(page.contains("pe-lim-3, pe-lim-4, pe-lim-b"));
    assert!(page.contains("en espera"), "not in the round: it waits");
    let r = test::call_service(&app, with_cookie(get("/stats?done=aggregate")).to_request()).await;
    assert!(body(r).await.contains("Suma: lo que había que enviar"));
}

/// A check-in timer's alert (PROTOCOL.md §17) is urgent: first in the
/// list, whatever the order asked, marked, and its page says so first with
/// when the timer was set, due and received.
#[actix_web::test]
async fn a_timer_alert_is_listed_first_and_marked_urgent() {
    let h = harness(Duration::from_secs(600));
    let alert_id = {
        let p = Profile::open(&h.profile, PIN).unwrap();
        let keys = p.focal_public().unwrap();
        let mut report = DraftForm {
            text: "Voy al hotel con un cliente nuevo. Placa ABC-123.".into(),
            language: Some(Language::Es),
            ..DraftForm::default()
        }
        .to_report(keys);
        // Set a year before the harness's cases were written, so that any
        // order by date would put it last.
        report.alert = Some(TimerAlert {
            set_hour: 470_000,
            due_hour: 470_003,
            every_hours: 2,
        });
        let sealed = seal_report(
            &keys,
            report,
            &[],
            amparo_protocol::envelope::Compression::IfSmaller,
            &mut SystemEntropy::new(),
            UnixTime(470_000 * 3600),
        )
        .unwrap();
        p.file_envelopes(&sealed.envelopes).unwrap();
        sealed.report_id
    };
    let app = test::init_service(app(h.desk.clone())).await;
    let (cookie, csrf) = session(&app, &h.desk).await;
    test::call_service(
        &app,
        post(&format!("/unlock?csrf={csrf}"))
            .insert_header((header::COOKIE, cookie.clone()))
            .set_form([("pin", PIN)])
            .to_request(),
    )
    .await;
    for order in [
        "",
        "?sort=received",
        "?sort=received&desc=1",
        "?sort=region",
    ] {
        let page = body(
            test::call_service(
                &app,
                get(&format!("/cases{order}"))
                    .insert_header((header::COOKIE, cookie.clone()))
                    .to_request(),
            )
            .await,
        )
        .await;
        let first = page.split("data-case=\"").nth(1).unwrap();
        assert!(first.starts_with(&hex(&alert_id)), "{order}: {page}");
        assert!(page.contains("badge urgent"), "{order}");
    }
    let page = body(
        test::call_service(
            &app,
            get(&format!("/case/{}", hex(&alert_id)))
                .insert_header((header::COOKIE, cookie.clone()))
                .to_request(),
        )
        .await,
    )
    .await;
    assert!(page.contains("id=\"timer-alert\""), "{page}");
    assert!(page.contains("dejó de hacer check-in"), "{page}");
    // Ordinary cases carry no alert.
    let page = body(
        test::call_service(
            &app,
            get(&format!("/case/{}", hex(&h.ids[0])))
                .insert_header((header::COOKIE, cookie))
                .to_request(),
        )
        .await,
    )
    .await;
    assert!(!page.contains("timer-alert"));
}
