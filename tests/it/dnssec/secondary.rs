//! A Knot secondary transfers the signed zone (AXFR, then IXFR deltas that carry the
//! re-signed records) and its answers validate.

use std::net::SocketAddr;
use std::time::Duration;

use super::{Anchor, anchor_file, enable, signed_app, validated};
use crate::interop::{free_port, knotd, start_knot, wait_in_sync};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_knot_secondary_serves_the_signed_zone_and_its_answers_validate_through_edits() {
    knotd().expect("knot is installed (apt-get install knot)");
    let kport = free_port();
    let app = signed_app(|c| c.dns.also_notify = vec![SocketAddr::from(([127, 0, 0, 1], kport))]).await;
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "knot.test").await;
    for (n, t, c) in [
        ("www", "A", "192.0.2.1"),
        ("*.w", "TXT", "wild"),
        ("x.y", "A", "192.0.2.2"),
    ] {
        assert_eq!(app.record(&token, &zone, n, t, c).await.status, 201);
    }
    let view = enable(&app, &token, &zone).await;
    let anchors = anchor_file(app.dir(), "knot.test", &[Anchor::Ds(&view["keys"][0])]);
    let knot = start_knot(app.dir(), kport, Some(app.dns_addr()), &[("knot.test.", None)]);
    wait_in_sync(&app, knot.addr, "knot.test.", Duration::from_secs(15)).await;
    let check = |name: &'static str, rtype: &'static str| {
        let anchors = anchors.clone();
        async move { validated(knot.addr, &anchors, "knot.test", name, rtype).await }
    };
    check("www.knot.test", "A").await;
    check("a.w.knot.test", "TXT").await;
    check("nope.knot.test", "A").await;
    check("y.knot.test", "A").await;

    // Edits reach the secondary by IXFR, with their signatures and the chain's changes.
    let id = app.record(&token, &zone, "new", "A", "192.0.2.3").await.id();
    wait_in_sync(&app, knot.addr, "knot.test.", Duration::from_secs(5)).await;
    check("new.knot.test", "A").await;
    check("nope.knot.test", "A").await;
    let path = format!("/v1/zones/{zone}/records/{id}");
    assert_eq!(app.delete(&token, &path).await.status, 204);
    wait_in_sync(&app, knot.addr, "knot.test.", Duration::from_secs(5)).await;
    let out = check("new.knot.test", "A").await;
    assert!(out.contains("NXDOMAIN"), "{out}");
    for i in 0..20 {
        app.record(&token, &zone, &format!("b{i}.deep"), "TXT", "burst").await;
    }
    wait_in_sync(&app, knot.addr, "knot.test.", Duration::from_secs(5)).await;
    check("b7.deep.knot.test", "TXT").await;
    check("deep.knot.test", "TXT").await;
    // The secondary holds exactly what the primary serves.
    let ours = super::axfr_text(app.dns_addr(), "knot.test").await;
    let theirs = super::axfr_text(knot.addr, "knot.test").await;
    let sorted = |t: &str| {
        let mut v: Vec<String> = t
            .lines()
            .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase())
            .collect();
        v.sort();
        v.dedup();
        v
    };
    assert_eq!(sorted(&ours), sorted(&theirs), "the secondary's zone is the primary's");
    let log = std::fs::read_to_string(&knot.log).unwrap();
    assert!(
        log.matches("IXFR, incoming").count() >= 2,
        "edits arrive by IXFR:\n{log}"
    );
    assert!(!log.contains("failed to apply"), "{log}");
}
