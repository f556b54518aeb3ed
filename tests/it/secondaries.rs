//! The secondaries operators run, for real, on loopback: Knot 3.2 (catalog role
//! `interpret`) and BIND 9.18 (`catalog-zones`) configured with ipx's catalog zone alone, and
//! NSD 4.6 (older than catalog zones) with its zone listed by hand; every transfer signed
//! with TSIG (ipx allows transfers by key only). Each daemon is started once, for the one
//! test that follows it through every step, and their configurations are the examples
//! docs/dns.md points to.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use ipx::admin::ZoneCmd;
use serde_json::json;

use crate::catalog::{CATALOG, transfer};
use crate::helpers::{TestApp, query, spawn_app_with, udp_query};
use crate::interop::{Daemon, free_port, knotd, spawn_knot};

const KEY: &str = "xfr.test.";
const SECRET: &str = "c2VjcmV0LWtleS1mb3ItaXB4LXRyYW5zZmVyLXRlc3RzIQ==";
/// ipx's count of the IXFRs it completed.
const IXFR_DONE: &str = "ipx_dns_transfers_total{type=\"IXFR\",outcome=\"complete\"}";

/// A binary the test needs: `None` (test skipped) on a developer machine without it; in CI
/// (which installs them: .ci/run) a missing one fails.
fn tool(path: &'static str, package: &str) -> Option<&'static str> {
    if Path::new(path).exists() {
        return Some(path);
    }
    assert!(std::env::var_os("CI").is_none(), "CI must install {package}");
    eprintln!("skipped: {path} not installed (apt-get install {package})");
    None
}

/// ipx with a catalog, transfers by TSIG key only, and NOTIFY to `secondaries`.
async fn primary(secondaries: &[SocketAddr]) -> TestApp {
    let secondaries = secondaries.to_vec();
    spawn_app_with(move |c, _| {
        c.dns.catalog_zone = CATALOG.into();
        c.dns.tsig_keys = vec![ipx::config::TsigKey {
            name: KEY.into(),
            algorithm: "hmac-sha256".into(),
            secret: SECRET.into(),
        }];
        c.dns.allow_transfer = vec![format!("key:{KEY}")];
        c.dns.also_notify = secondaries;
    })
    .await
}

/// Knot, provisioned by the catalog: a member template transferring from ipx with the key.
fn knot_consumer(dir: &Path, port: u16, primary: SocketAddr) -> Daemon {
    let kdir = dir.join("knot-catalog");
    let storage = kdir.display();
    let rest = format!(
        "key:\n  - id: {KEY}\n    algorithm: hmac-sha256\n    secret: {SECRET}\n\
         remote:\n  - id: ipx\n    address: {}@{}\n    key: {KEY}\n\
         acl:\n  - id: notify\n    address: {}\n    action: notify\n\
         template:\n  - id: default\n    storage: {storage}\n    zonefile-sync: -1\n    zonefile-load: none\n    journal-content: changes\n\
         \x20 - id: member\n    storage: {storage}\n    master: ipx\n    acl: notify\n    zonefile-sync: -1\n    zonefile-load: none\n    journal-content: changes\n\
         zone:\n  - domain: {CATALOG}.\n    master: ipx\n    acl: notify\n    catalog-role: interpret\n    catalog-template: member\n",
        primary.ip(),
        primary.port(),
        primary.ip(),
    );
    spawn_knot(&kdir, port, "", &rest)
}

/// BIND 9.18, provisioned by the catalog (`catalog-zones`, members kept in memory).
fn bind_consumer(dir: &Path, port: u16, primary: SocketAddr) -> Option<Daemon> {
    let named = tool("/usr/sbin/named", "bind9")?;
    let bdir = dir.join("bind");
    std::fs::create_dir_all(&bdir).unwrap();
    let (ip, pport) = (primary.ip(), primary.port());
    let conf = format!(
        r#"options {{
  directory "{d}";
  pid-file "{d}/named.pid";
  listen-on port {port} {{ 127.0.0.1; }};
  listen-on-v6 {{ none; }};
  recursion no;
  dnssec-validation no;
  notify no;
  allow-notify {{ {ip}; }};
  minimal-responses yes;
  zero-no-soa-ttl no;
  catalog-zones {{
    zone "{CATALOG}" default-primaries {{ {ip} port {pport} key "{KEY}"; }} in-memory yes min-update-interval 1;
  }};
}};
key "{KEY}" {{ algorithm hmac-sha256; secret "{SECRET}"; }};
controls {{ }};
zone "{CATALOG}" {{ type secondary; primaries {{ {ip} port {pport} key "{KEY}"; }}; file "catalog.db"; }};
"#,
        d = bdir.display()
    );
    let path = bdir.join("named.conf");
    std::fs::write(&path, conf).unwrap();
    let log = bdir.join("named.log");
    let child = Command::new(named)
        .args(["-g", "-u", "root", "-c"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    Some(Daemon {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        log,
    })
}

/// NSD 4.6, a plain secondary of `zone`.
fn nsd_secondary(dir: &Path, port: u16, primary: SocketAddr, zone: &str) -> Option<Daemon> {
    let nsd = tool("/usr/sbin/nsd", "nsd")?;
    let ndir = dir.join("nsd");
    std::fs::create_dir_all(&ndir).unwrap();
    let (ip, pport) = (primary.ip(), primary.port());
    let conf = format!(
        "server:\n    ip-address: 127.0.0.1@{port}\n    username: \"\"\n    chroot: \"\"\n    zonesdir: \"{d}\"\n\
         \x20   pidfile: \"{d}/nsd.pid\"\n    xfrdfile: \"{d}/xfrd.state\"\n    zonelistfile: \"{d}/zone.list\"\n\
         \x20   database: \"\"\n    server-count: 1\n    verbosity: 2\n    logfile: \"{d}/nsd.log\"\n\
         remote-control:\n    control-enable: no\n\
         key:\n    name: \"{KEY}\"\n    algorithm: hmac-sha256\n    secret: \"{SECRET}\"\n\
         zone:\n    name: \"{zone}\"\n    zonefile: \"{zone}zone\"\n    request-xfr: {ip}@{pport} {KEY}\n    allow-notify: {ip} NOKEY\n",
        d = ndir.display()
    );
    let path = ndir.join("nsd.conf");
    std::fs::write(&path, conf).unwrap();
    let child = Command::new(nsd)
        .args(["-d", "-c"])
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(ndir.join("stderr.log")).unwrap())
        .spawn()
        .unwrap();
    Some(Daemon {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        log: ndir.join("nsd.log"),
    })
}

/// The serial `server` answers authoritatively for `zone`, if it does.
async fn serial_at(server: SocketAddr, zone: &str) -> Option<u32> {
    let m = tokio::time::timeout(
        Duration::from_millis(500),
        udp_query(server, &query(zone, RecordType::SOA, false)),
    )
    .await
    .ok()?;
    if !m.metadata.authoritative {
        return None;
    }
    match m.answers.first().map(|r| &r.data) {
        Some(RData::SOA(s)) => Some(s.serial),
        _ => None,
    }
}

/// Waits until `server` serves `zone` at `serial`; how long it took.
async fn served(server: SocketAddr, zone: &str, serial: u32, limit: Duration, who: &Daemon) -> Duration {
    let start = Instant::now();
    loop {
        if serial_at(server, zone).await == Some(serial) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "{server} does not serve {zone} at {serial} after {limit:?}\n{}",
            who.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `server` answers for `zone` no more; how long it took.
async fn dropped(server: SocketAddr, zone: &str, limit: Duration, who: &Daemon) -> Duration {
    let start = Instant::now();
    loop {
        if serial_at(server, zone).await.is_none() {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "{server} still serves {zone}\n{}", who.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What a secondary must answer as ipx does: rcode, AA, the answer section, and the SOA of a
/// negative answer (additional-section data is each server's policy: BIND runs with
/// minimal-responses, and without its TTL 0 on negative SOA answers, zero-no-soa-ttl).
fn data(m: &Message) -> String {
    let mut answer: Vec<String> = m.answers.iter().map(|r| r.to_string().to_lowercase()).collect();
    answer.sort();
    let negative: Vec<String> = m
        .authorities
        .iter()
        .filter(|r| r.record_type() == RecordType::SOA)
        .map(|r| r.to_string().to_lowercase())
        .collect();
    format!(
        "{} aa={} answer={answer:?} soa={negative:?}",
        m.metadata.response_code, m.metadata.authoritative
    )
}

/// Every name of `zone` (from an AXFR of ipx, signed), and names that do not exist.
async fn names_of(app: &TestApp, zone: &str) -> Vec<String> {
    let mut m = query(zone, RecordType::AXFR, false);
    crate::interop::signed(&mut m, KEY, SECRET);
    let mut names: Vec<String> = transfer("127.0.0.1", app.dns_addr(), &m)
        .await
        .iter()
        .flat_map(|m| &m.answers)
        .map(|r| r.name.to_ascii().to_lowercase())
        .collect();
    names.extend([format!("nx.{zone}"), format!("a.b.nx.{zone}")]);
    names.sort();
    names.dedup();
    names
}

/// The secondary answers every name of `zone` as ipx does.
async fn same_answers(app: &TestApp, secondary: &Daemon, zone: &str) {
    let names = names_of(app, zone).await;
    for name in &names {
        for t in [
            RecordType::SOA,
            RecordType::NS,
            RecordType::A,
            RecordType::AAAA,
            RecordType::TXT,
            RecordType::MX,
            RecordType::CNAME,
        ] {
            let q = query(name, t, true);
            let (ours, theirs) = (
                data(&udp_query(app.dns_addr(), &q).await),
                data(&udp_query(secondary.addr, &q).await),
            );
            assert_eq!(theirs, ours, "{} answers {name} {t} otherwise", secondary.addr);
        }
    }
}

async fn serial_of(app: &TestApp, token: &str, zone: &str) -> u32 {
    app.get(token, &format!("/v1/zones/{zone}")).await.data()["serial"]
        .as_u64()
        .unwrap() as u32
}

/// Polls `GET /v1/zones/{id}` until it says `propagated` (a customer's wait).
async fn propagated(app: &TestApp, token: &str, zone: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let r = app.get(token, &format!("/v1/zones/{zone}")).await;
        if r.data()["propagated"] == true {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "not propagated after {limit:?}: {}", r.body);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knot_and_bind_provision_every_zone_from_the_catalog_follow_each_edit_by_ixfr_and_drop_deleted_zones() {
    if knotd().is_none() {
        return;
    }
    let (kport, bport) = (free_port(), free_port());
    let (k, b) = (
        SocketAddr::from(([127, 0, 0, 1], kport)),
        SocketAddr::from(([127, 0, 0, 1], bport)),
    );
    let app = primary(&[k, b]).await;
    let token = app.team("acme", &[]).await;
    // A zone there before the secondaries start: they take it from the catalog's first AXFR.
    let early = app.zone(&token, "early.test").await;
    app.record(&token, &early, "www", "A", "192.0.2.1").await;
    let knot = knot_consumer(app.dir(), kport, app.dns_addr());
    let Some(bind) = bind_consumer(app.dir(), bport, app.dns_addr()) else {
        return;
    };
    let secondaries = [("knot", &knot), ("bind", &bind)];
    let serial = serial_of(&app, &token, &early).await;
    for (_, d) in secondaries {
        served(d.addr, "early.test.", serial, Duration::from_secs(30), d).await;
    }

    // A zone made through the API: each secondary serves it within seconds.
    let started = Instant::now();
    let zone = app.zone(&token, "new.test").await;
    let serial = serial_of(&app, &token, &zone).await;
    for (who, d) in secondaries {
        served(d.addr, "new.test.", serial, Duration::from_secs(15), d).await;
        eprintln!(
            "propagation: new.test created → served by {who} in {:?}",
            started.elapsed()
        );
    }
    let took = propagated(&app, &token, &zone, Duration::from_secs(10)).await;
    eprintln!(
        "propagation: GET /v1/zones/{{id}} says propagated {:?} after both serve it",
        took
    );

    // Every edit follows by IXFR, and the answers are ipx's, for every name.
    let knot_ixfrs = |log: &str| {
        log.lines()
            .filter(|l| l.contains("[new.test.] IXFR, incoming") && l.contains("finished"))
            .count() as f64
    };
    let ixfrs_before = app.scrape().await.value(IXFR_DONE) - knot_ixfrs(&knot.log());
    let edits = [
        ("www", "A", "192.0.2.10"),
        ("www", "AAAA", "2001:db8::10"),
        ("@", "MX", "10 mail.new.test."),
        ("mail", "A", "192.0.2.25"),
        ("alias", "CNAME", "www.new.test."),
        ("txt", "TXT", "hello from ipx"),
    ];
    for (name, rtype, content) in edits {
        let r = app.record(&token, &zone, name, rtype, content).await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let www = app.record(&token, &zone, "gone", "A", "192.0.2.99").await.id();
    let path = format!("/v1/zones/{zone}/records/{www}");
    assert_eq!(
        app.patch(&token, &path, json!({ "content": "192.0.2.98" }))
            .await
            .status,
        200
    );
    assert_eq!(app.delete(&token, &path).await.status, 204);
    let serial = serial_of(&app, &token, &zone).await;
    for (who, d) in secondaries {
        let t = served(d.addr, "new.test.", serial, Duration::from_secs(15), d).await;
        eprintln!("propagation: the last of 9 edits served by {who} {t:?} later");
        same_answers(&app, d, "new.test.").await;
    }
    propagated(&app, &token, &zone, Duration::from_secs(10)).await;
    let knot_log = knot.log();
    assert!(knot_ixfrs(&knot_log) >= 1.0, "knot takes edits by IXFR:\n{knot_log}");
    let bind_log = bind.log();
    assert!(
        bind_log.contains("transfer of 'new.test/IN'") && bind_log.contains("TSIG xfr.test"),
        "bind transfers with the key:\n{bind_log}"
    );
    // ipx counts every IXFR it completes: those that are not Knot's are BIND's.
    let bind_ixfrs = app.scrape().await.value(IXFR_DONE) - knot_ixfrs(&knot_log) - ixfrs_before;
    assert!(
        bind_ixfrs >= 1.0,
        "bind takes edits by IXFR ({bind_ixfrs}):\n{bind_log}"
    );

    // The operator's view.
    let view = app
        .operator(ipx::admin::Command::Zone(ZoneCmd::Secondaries { zone: zone.clone() }))
        .await
        .unwrap();
    assert_eq!(view.matches("current").count(), 2, "{view}");

    // An unsigned transfer is refused (the key is the only way in).
    let refused = transfer(
        "127.0.0.1",
        app.dns_addr(),
        &query("new.test.", RecordType::AXFR, false),
    )
    .await;
    assert_eq!(refused[0].metadata.response_code, ResponseCode::Refused);

    // Deleted by the operator: out of the catalog, and each secondary drops it.
    let started = Instant::now();
    app.operator(ipx::admin::Command::Zone(ZoneCmd::Delete {
        zone: "new.test".into(),
    }))
    .await
    .unwrap();
    for (who, d) in secondaries {
        dropped(d.addr, "new.test.", Duration::from_secs(15), d).await;
        eprintln!(
            "propagation: new.test deleted → dropped by {who} in {:?}",
            started.elapsed()
        );
        assert!(
            serial_at(d.addr, "early.test.").await.is_some(),
            "{who} keeps the others"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nsd_follows_a_zone_listed_by_hand_with_tsig_and_ixfr() {
    let nport = free_port();
    let n = SocketAddr::from(([127, 0, 0, 1], nport));
    let app = primary(&[n]).await;
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "plain.test").await;
    app.record(&token, &zone, "www", "A", "192.0.2.1").await;
    let Some(nsd) = nsd_secondary(app.dir(), nport, app.dns_addr(), "plain.test.") else {
        return;
    };
    let serial = serial_of(&app, &token, &zone).await;
    served(nsd.addr, "plain.test.", serial, Duration::from_secs(30), &nsd).await;
    for (name, rtype, content) in [
        ("@", "MX", "10 mail.plain.test."),
        ("mail", "A", "192.0.2.25"),
        ("txt", "TXT", "plain"),
    ] {
        assert_eq!(app.record(&token, &zone, name, rtype, content).await.status, 201);
    }
    let serial = serial_of(&app, &token, &zone).await;
    let t = served(nsd.addr, "plain.test.", serial, Duration::from_secs(15), &nsd).await;
    eprintln!("propagation: the last of 3 edits served by nsd {t:?} later");
    same_answers(&app, &nsd, "plain.test.").await;
    propagated(&app, &token, &zone, Duration::from_secs(10)).await;
    let ixfrs = app.scrape().await.value(IXFR_DONE);
    assert!(ixfrs >= 1.0, "nsd takes edits by IXFR:\n{}", nsd.log());
}
