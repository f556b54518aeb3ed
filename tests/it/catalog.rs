//! The catalog zone (RFC 9432) and `ipx zone delete`: the catalog lists every zone, changes
//! in the transaction that creates or deletes one, is transferred by AXFR and IXFR to those
//! allowed (and nobody else), and follows the configuration across restarts.

use std::net::SocketAddr;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use ipx::admin::{Command, ZoneCmd};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{TestApp, connect_from, query, query_over, spawn_app_with, udp_query};
use crate::tsig_keys::make_key;

pub const CATALOG: &str = "catalog.ipx.invalid";

async fn catalog_app() -> TestApp {
    spawn_app_with(|c, _| {
        c.dns.catalog_zone = CATALOG.into();
        c.dns.allow_transfer = vec!["127.0.0.1".into()];
    })
    .await
}

/// The messages of a zone transfer, from `from`, up to the closing SOA.
pub async fn transfer(from: &str, to: SocketAddr, m: &Message) -> Vec<Message> {
    let mut s = connect_from(from, to).await;
    let bytes = m.to_vec().unwrap();
    s.write_all(&(bytes.len() as u16).to_be_bytes()).await.unwrap();
    s.write_all(&bytes).await.unwrap();
    let mut out = Vec::new();
    let mut soas = 0;
    loop {
        let mut len = [0u8; 2];
        if s.read_exact(&mut len).await.is_err() {
            return out;
        }
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut buf).await.unwrap();
        let msg = Message::from_vec(&buf).unwrap();
        soas += msg
            .answers
            .iter()
            .filter(|r| r.record_type() == RecordType::SOA)
            .count();
        let done = msg.metadata.response_code != ResponseCode::NoError || soas >= 2 || msg.answers.len() == 1;
        out.push(msg);
        if done {
            return out;
        }
    }
}

/// The catalog's members, `(unique id, zone)`, from an AXFR.
pub async fn members(app: &TestApp) -> Vec<(String, String)> {
    let msgs = transfer("127.0.0.1", app.dns_addr(), &query(CATALOG, RecordType::AXFR, false)).await;
    let mut out: Vec<(String, String)> = msgs
        .iter()
        .flat_map(|m| &m.answers)
        .filter_map(|r| match &r.data {
            RData::PTR(p) => {
                let owner = r.name.to_ascii();
                let id = owner.strip_suffix(&format!(".zones.{CATALOG}.")).expect("under zones");
                Some((id.to_string(), p.0.to_ascii()))
            }
            _ => None,
        })
        .collect();
    out.sort();
    out
}

async fn serial_of(app: &TestApp, zone: &str) -> u32 {
    match &udp_query(app.dns_addr(), &query(zone, RecordType::SOA, false))
        .await
        .answers[0]
        .data
    {
        RData::SOA(s) => s.serial,
        other => panic!("{other:?}"),
    }
}

fn ixfr_from(zone: &str, serial: u32) -> Message {
    let mut m = query(zone, RecordType::IXFR, false);
    let soa = SOA::new(
        Name::from_ascii("invalid.").unwrap(),
        Name::from_ascii("invalid.").unwrap(),
        serial,
        0,
        0,
        0,
        0,
    );
    m.authorities
        .push(Record::from_rdata(Name::from_ascii(zone).unwrap(), 0, RData::SOA(soa)));
    m
}

fn delete(zone: &str) -> Command {
    Command::Zone(ZoneCmd::Delete { zone: zone.into() })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_lists_every_zone_and_changes_in_the_transaction_that_makes_or_deletes_one() {
    let app = catalog_app().await;
    let token = app.team("acme", &[]).await;
    let other = app.team("other", &[]).await;
    assert!(members(&app).await.is_empty());
    let first = serial_of(&app, CATALOG).await;
    let a = app.zone(&token, "a.test").await;
    let b = app.zone(&other, "b.test").await;
    assert_eq!(serial_of(&app, CATALOG).await, first + 2, "one change per zone");
    let simple = |id: &str| uuid::Uuid::parse_str(id).unwrap().simple().to_string();
    assert_eq!(
        members(&app).await,
        vec![(simple(&a), "a.test.".to_string()), (simple(&b), "b.test.".to_string())]
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
    );
    let axfr = transfer("127.0.0.1", app.dns_addr(), &query(CATALOG, RecordType::AXFR, false)).await;
    let all: Vec<String> = axfr.iter().flat_map(|m| &m.answers).map(|r| r.to_string()).collect();
    assert!(all.iter().any(|r| r.contains("IN NS invalid.")), "{all:?}");
    assert!(
        all.iter()
            .any(|r| r.starts_with("version.catalog.ipx.invalid. 0 IN TXT") && r.ends_with("2")),
        "{all:?}"
    );

    // IXFR carries each change: here the deletion of b.test, as the operator makes it.
    let before = serial_of(&app, CATALOG).await;
    let out = app.operator(delete("b.test")).await.unwrap();
    assert!(out.contains("deleted zone") && out.contains("b.test"), "{out}");
    assert_eq!(serial_of(&app, CATALOG).await, before + 1);
    let ixfr = transfer("127.0.0.1", app.dns_addr(), &ixfr_from(CATALOG, before)).await;
    let removed: Vec<String> = ixfr
        .iter()
        .flat_map(|m| &m.answers)
        .filter(|r| r.record_type() == RecordType::PTR)
        .map(|r| r.to_string())
        .collect();
    assert_eq!(removed.len(), 1, "the one PTR removed: {removed:?}");
    assert!(removed[0].ends_with("b.test."));
    assert_eq!(members(&app).await, vec![(simple(&a), "a.test.".to_string())]);

    // b.test is gone everywhere: DNS, API, its name free for anyone.
    let r = udp_query(app.dns_addr(), &query("b.test.", RecordType::SOA, true)).await;
    assert_eq!(r.metadata.response_code, ResponseCode::Refused);
    assert_eq!(app.get(&other, &format!("/v1/zones/{b}")).await.status, 404);
    assert_eq!(app.get(&other, &format!("/v1/zones/{b}/records")).await.status, 404);
    let again = app.zone(&token, "b.test").await;
    assert_ne!(again, b, "a new zone, a new member id");
    assert!(members(&app).await.contains(&(simple(&again), "b.test.".to_string())));

    // By UUID too; then nothing is left to delete.
    app.operator(delete(&a)).await.unwrap();
    let err = app.operator(delete(&a)).await.unwrap_err();
    assert!(err.contains("no zone"), "{err}");
    let events = app.get(&token, "/v1/events").await;
    assert!(events.body.to_string().contains("zone.deleted"), "{}", events.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_is_transferred_only_to_those_allowed_and_answers_no_lookups() {
    let app = catalog_app().await;
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "secret-name.test").await;
    // Lookups: the SOA (what secondaries ask), nothing else.
    let soa = udp_query(app.dns_addr(), &query(CATALOG, RecordType::SOA, true)).await;
    assert_eq!(soa.metadata.response_code, ResponseCode::NoError);
    assert!(soa.metadata.authoritative && soa.answers.len() == 1);
    let member = format!("{}.zones.{CATALOG}.", uuid::Uuid::parse_str(&zone).unwrap().simple());
    for (name, rtype) in [
        (member.as_str(), RecordType::PTR),
        ("version.catalog.ipx.invalid.", RecordType::TXT),
        (CATALOG, RecordType::NS),
        (CATALOG, RecordType::ANY),
        ("zones.catalog.ipx.invalid.", RecordType::A),
    ] {
        for tcp in [false, true] {
            let q = query(name, rtype, true);
            let r = query_over(tcp, app.dns_addr(), &q).await;
            assert_eq!(
                r.metadata.response_code,
                ResponseCode::Refused,
                "{name} {rtype} tcp={tcp}"
            );
            assert!(r.answers.is_empty() && r.authorities.is_empty());
        }
    }
    // Transfers: an address not allowed, and a team's key that may transfer its own zone.
    let denied = transfer("127.0.0.2", app.dns_addr(), &query(CATALOG, RecordType::AXFR, false)).await;
    assert_eq!(denied[0].metadata.response_code, ResponseCode::Refused);
    let key = make_key(
        &app,
        &token,
        json!({ "name": "xfr", "rules": [{ "zone_id": zone }], "transfer": true }),
    )
    .await;
    let signed = key.sign(query(CATALOG, RecordType::AXFR, false));
    let r = transfer("127.0.0.2", app.dns_addr(), &signed).await;
    assert_eq!(
        r[0].metadata.response_code,
        ResponseCode::NotAuth,
        "a team key never gets the catalog"
    );
    assert!(r[0].answers.is_empty());
    let own = key.sign(query("secret-name.test.", RecordType::AXFR, false));
    let r = transfer("127.0.0.2", app.dns_addr(), &own).await;
    assert_eq!(
        r[0].metadata.response_code,
        ResponseCode::NoError,
        "its own zone it gets"
    );

    // Tenants cannot take the catalog's name, nor a name above or below it.
    for name in [CATALOG, "x.catalog.ipx.invalid", "ipx.invalid"] {
        let r = app.post(&token, "/v1/zones", json!({ "name": name })).await;
        assert_eq!(r.status, 422, "{name}: {}", r.body);
        assert_eq!(r.code(), "reserved_name", "{name}");
    }
    // Nor does an operator delete it.
    let err = app.operator(delete(CATALOG)).await.unwrap_err();
    assert!(err.contains("catalog"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_follows_the_configuration_across_restarts() {
    let mut app = spawn_app_with(|c, _| c.dns.allow_transfer = vec!["127.0.0.1".into()]).await;
    let token = app.team("acme", &[]).await;
    let a = app.zone(&token, "a.test").await;
    let b = app.zone(&token, "b.test").await;
    // Turned on: made with every zone already there.
    app.config.dns.catalog_zone = CATALOG.into();
    app.restart().await;
    let ids: Vec<String> = members(&app).await.into_iter().map(|(_, z)| z).collect();
    assert_eq!(ids, ["a.test.", "b.test."]);
    let serial = serial_of(&app, CATALOG).await;
    // A restart with nothing changed changes nothing.
    app.restart().await;
    assert_eq!(serial_of(&app, CATALOG).await, serial);
    let _ = (a, b);
    // Renamed: the old one goes, the new one lists every zone.
    app.config.dns.catalog_zone = "cat2.ipx.invalid".into();
    app.restart().await;
    let r = udp_query(app.dns_addr(), &query(CATALOG, RecordType::SOA, false)).await;
    assert_eq!(
        r.metadata.response_code,
        ResponseCode::Refused,
        "the old catalog is gone"
    );
    let r = udp_query(app.dns_addr(), &query("cat2.ipx.invalid.", RecordType::SOA, false)).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    // Turned off: gone.
    app.config.dns.catalog_zone = String::new();
    app.restart().await;
    let r = udp_query(app.dns_addr(), &query("cat2.ipx.invalid.", RecordType::SOA, false)).await;
    assert_eq!(r.metadata.response_code, ResponseCode::Refused);
    // A team's zone by the catalog's name keeps the server from making the catalog.
    app.zone(&token, "taken.test").await;
    let mut config = app.config.clone();
    config.dns.catalog_zone = "taken.test".into();
    app.running.take().unwrap().shutdown().await;
    let err = ipx::app::start(config).await.err().expect("refused");
    assert!(err.to_string().contains("taken.test"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_sees_what_each_secondary_serves_of_a_zone() {
    let quiet = tokio::net::UdpSocket::bind("127.0.0.5:0").await.unwrap();
    let at = quiet.local_addr().unwrap();
    let app = spawn_app_with(|c, _| c.dns.also_notify = vec![at]).await;
    let token = app.team("acme", &[]).await;
    app.zone(&token, "seen.test").await;
    let secondaries = |zone: &str| Command::Zone(ZoneCmd::Secondaries { zone: zone.into() });
    let out = app.operator(secondaries("seen.test")).await.unwrap();
    let line = out.lines().nth(1).expect("one line per secondary");
    assert!(
        line.starts_with(&at.to_string()) && line.contains("serves unknown") && line.contains("behind"),
        "{out}"
    );
    let err = app.operator(secondaries("nope.test")).await.unwrap_err();
    assert!(err.contains("no zone"), "{err}");
    let none = spawn_app_with(|_, _| {}).await;
    let token = none.team("acme", &[]).await;
    none.zone(&token, "alone.test").await;
    let out = none.operator(secondaries("alone.test")).await.unwrap();
    assert!(out.contains("no secondaries"), "{out}");
    let zone = none.get(&token, "/v1/zones").await.data()[0].clone();
    assert_eq!(zone["propagated"], true, "nothing to wait for without secondaries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_zone_is_refused_while_a_site_lives_in_it_and_for_names_that_are_no_zone() {
    let app = catalog_app().await;
    let token = app.team("acme", &[]).await;
    let r = app.post(&token, "/v1/sites", json!({ "domain": "shop.test" })).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let site = r.id();
    let done = app.wait_site(&token, &site, |s| s["status"] == "active").await;
    let zone = done["zone_id"].as_str().unwrap().to_string();
    let before = members(&app).await;
    let records = app.get(&token, &format!("/v1/zones/{zone}/records")).await.body;
    let err = app.operator(delete("shop.test")).await.unwrap_err();
    assert!(err.contains("shop.test") && err.contains("site delete"), "{err}");
    for bad in ["nope.test", "not a name", "00000000-0000-0000-0000-000000000000"] {
        let err = app.operator(delete(bad)).await.unwrap_err();
        assert!(err.contains("no zone"), "{bad}: {err}");
    }
    // Nothing changed.
    assert_eq!(members(&app).await, before);
    assert_eq!(
        app.get(&token, &format!("/v1/zones/{zone}/records")).await.body,
        records
    );
    // Once the site is gone, the zone may go.
    app.operator(Command::Site(ipx::admin::SiteCmd::Delete { site_id: site }))
        .await
        .unwrap();
    app.operator(delete("shop.test")).await.unwrap();
    assert!(members(&app).await.is_empty());
}
