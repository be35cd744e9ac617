//! A single-mailbox page is bounded in bytes as well as in envelopes: 500
//! envelopes of 64 KiB would be 32 MiB read and held for one request. It
//! stops before the envelope that would take it past `field::PAGE_BYTES`
//! and says more wait; the next page goes on from its last cursor.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use amparo_protocol::entropy::SystemEntropy;
use amparo_protocol::keys::RecipientKeys;
use amparo_protocol::request;
use amparo_relay::field::PAGE_BYTES;
use common::*;

#[tokio::test]
async fn a_page_of_large_envelopes_stops_at_its_byte_room() {
    for backend in backends() {
        let relay = Relay::start(backend.database_url(), &[]);
        let c = client();
        let focal = RecipientKeys::generate(&mut SystemEntropy::new()).unwrap();
        let envelopes: Vec<_> = (0..140).map(|_| envelope_for(&focal, 60_000)).collect();
        let size = envelopes[0].as_bytes().len();
        for chunk in envelopes.chunks(100) {
            let results = post_batch(&c, &relay, chunk).await;
            assert_eq!(results.len(), chunk.len());
        }
        let fits = PAGE_BYTES / (size + 12);
        assert!(fits < 140);
        let target = format!(
            "/v1/mailboxes/{}/envelopes?after=0&limit=500",
            focal.mailbox()
        );
        let proof = sign(&focal, "GET", &target, b"", now());
        let r = c
            .get(relay.url(&target))
            .header(request::HEADER, proof.to_header())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", backend.name());
        assert_eq!(
            r.headers().get("Amparo-More").unwrap(),
            "1",
            "{}: more wait after a page cut at its bytes",
            backend.name()
        );
        let page = amparo_protocol::wire::decode_page(&r.bytes().await.unwrap()).unwrap();
        assert_eq!(page.len(), fits, "{}", backend.name());
        let (_, rest) = fetch(&c, &relay, &focal, page.last().unwrap().0, 500).await;
        assert_eq!(page.len() + rest.len(), 140, "{}", backend.name());
    }
}
