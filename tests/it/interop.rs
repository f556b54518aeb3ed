//! A real Knot secondary follows ipx by NOTIFY and IXFR.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::{RData, RecordType};
use serde_json::json;

use crate::helpers::{TestApp, query, spawn_app_with, udp_query};

const KNOTD: &str = "/usr/sbin/knotd";

/// The Knot binary, or `None` (test skipped) on a developer machine without it. CI installs
/// knot, and there a missing knotd is a failure, not a skip.
pub fn knotd() -> Option<&'static str> {
    if std::path::Path::new(KNOTD).exists() {
        return Some(KNOTD);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must install knot (apt-get install knot)"
    );
    eprintln!("skipped: {KNOTD} not installed");
    None
}

/// A port free for both UDP and TCP on loopback.
pub fn free_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A third-party server we started (Knot here; BIND and NSD in `secondaries`), stopped when
/// dropped.
pub struct Daemon {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: std::path::PathBuf,
}

impl Daemon {
    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts knotd on `port` with `zones` as secondaries of `primary`, or as primary from
/// the given zone files when `primary` is `None`.
pub fn start_knot(
    dir: &std::path::Path,
    port: u16,
    primary: Option<SocketAddr>,
    zones: &[(&str, Option<&str>)],
) -> Daemon {
    start_knot_with_key(dir, port, primary, zones, None)
}

/// `start_knot`, transferring with TSIG key `(name, base64 secret)` (hmac-sha256).
pub fn start_knot_with_key(
    dir: &std::path::Path,
    port: u16,
    primary: Option<SocketAddr>,
    zones: &[(&str, Option<&str>)],
    key: Option<(&str, &str)>,
) -> Daemon {
    let kdir = dir.join("knot");
    std::fs::create_dir_all(&kdir).unwrap();
    let mut conf = String::new();
    if let Some((name, secret)) = key {
        conf += &format!("key:\n  - id: {name}\n    algorithm: hmac-sha256\n    secret: {secret}\n");
    }
    if let Some(p) = primary {
        conf += &format!(
            "remote:\n  - id: primary\n    address: {}@{}\n{}acl:\n  - id: notify\n    address: 127.0.0.1\n    action: notify\n  - id: transfer\n    address: 127.0.0.1\n    action: transfer\n",
            p.ip(),
            p.port(),
            key.map(|(n, _)| format!("    key: {n}\n")).unwrap_or_default()
        );
    }
    conf += "template:\n  - id: default\n    storage: ";
    conf += &format!(
        "{}\n    zonefile-sync: -1\n    zonefile-load: whole\n    journal-content: changes\nzone:\n",
        kdir.display()
    );
    for (name, file) in zones {
        conf += &format!("  - domain: {name}\n");
        match (primary, file) {
            (Some(_), _) => conf += "    master: primary\n    acl: [notify, transfer]\n",
            (None, Some(text)) => {
                let path = kdir.join(format!("{name}zone"));
                std::fs::write(&path, text).unwrap();
                conf += &format!("    file: {}\n", path.display());
            }
            (None, None) => panic!("a primary zone needs a file"),
        }
    }
    spawn_knot(&kdir, port, "", &conf)
}

/// Starts knotd in `kdir` on `port` with `server` lines added to its `server:` section and
/// `rest` (keys, remotes, ACLs, templates, zones) after it.
pub fn spawn_knot(kdir: &std::path::Path, port: u16, server: &str, rest: &str) -> Daemon {
    std::fs::create_dir_all(kdir).unwrap();
    let conf = format!(
        "server:\n    listen: 127.0.0.1@{port}\n    rundir: {d}\n    udp-workers: 1\n    tcp-workers: 1\n    background-workers: 1\n{server}\
         database:\n    storage: {d}\nlog:\n  - target: stderr\n    any: info\n{rest}",
        d = kdir.display()
    );
    let conf_path = kdir.join("knot.conf");
    std::fs::write(&conf_path, conf).unwrap();
    start_knot_conf(&conf_path, port)
}

/// Starts knotd with the configuration at `conf_path`, listening on `port`; it logs beside it.
pub fn start_knot_conf(conf_path: &std::path::Path, port: u16) -> Daemon {
    let log = conf_path.with_file_name("knot.log");
    let child = Command::new(knotd().unwrap())
        .arg("-c")
        .arg(conf_path)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    Daemon {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        log,
    }
}

pub async fn serial(addr: SocketAddr, zone: &str) -> Option<u32> {
    let m = tokio::time::timeout(
        Duration::from_millis(500),
        udp_query(addr, &query(zone, RecordType::SOA, false)),
    )
    .await
    .ok()?;
    match m.answers.first().map(|r| &r.data) {
        Some(RData::SOA(s)) => Some(s.serial),
        _ => None,
    }
}

/// Rcode, flags that matter, and each section as sorted text.
pub fn summary(m: &Message) -> String {
    let section = |rs: &[hickory_proto::rr::Record]| {
        let mut v: Vec<String> = rs
            .iter()
            .filter(|r| r.record_type() != RecordType::OPT)
            .map(|r| r.to_string().to_lowercase())
            .collect();
        v.sort();
        v
    };
    format!(
        "rcode={} aa={} tc={}\nanswer={:#?}\nauthority={:#?}\nadditional={:#?}",
        m.metadata.response_code,
        m.metadata.authoritative,
        m.metadata.truncation,
        section(&m.answers),
        section(&m.authorities),
        section(&m.additionals)
    )
}

async fn same_answers(app: &TestApp, knot: SocketAddr, names: &[String]) -> Result<(), String> {
    for name in names {
        for t in [RecordType::A, RecordType::TXT] {
            let a = summary(&udp_query(app.dns_addr(), &query(name, t, true)).await);
            let k = summary(&udp_query(knot, &query(name, t, true)).await);
            if a != k {
                return Err(format!("{name} {t}:\nipx  {a}\nknot {k}"));
            }
        }
    }
    Ok(())
}

pub async fn wait_in_sync(app: &TestApp, knot: SocketAddr, zone: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    let target = serial(app.dns_addr(), zone).await.unwrap();
    loop {
        if serial(knot, zone).await == Some(target) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "knot did not reach serial {target} within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_knot_secondary_follows_every_edit_by_notify_and_ixfr() {
    if knotd().is_none() {
        return;
    }
    let kport = free_port();
    let app = Arc::new(
        spawn_app_with(|c, _| {
            c.dns.allow_transfer = vec!["127.0.0.1".into()];
            c.dns.also_notify = vec![SocketAddr::from(([127, 0, 0, 1], kport))];
        })
        .await,
    );
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "sec.test").await;
    for (n, c) in [("www", "192.0.2.1"), ("mail", "192.0.2.2")] {
        assert_eq!(app.record(&token, &zone, n, "A", c).await.status, 201);
    }
    let knot = start_knot(app.dir(), kport, Some(app.dns_addr()), &[("sec.test.", None)]);
    wait_in_sync(&app, knot.addr, "sec.test.", Duration::from_secs(15)).await;
    let names: Vec<String> = ["sec.test.", "www.sec.test.", "mail.sec.test.", "nx.sec.test."]
        .map(String::from)
        .to_vec();
    same_answers(&app, knot.addr, &names).await.unwrap();

    // One edit at a time: each is on the secondary by NOTIFY and IXFR, well within a second
    // on an idle machine; 3 s leaves room for a loaded one (the SOA's refresh is hours, so
    // only the NOTIFY can do it).
    let id = app.record(&token, &zone, "new", "A", "192.0.2.3").await.id();
    wait_in_sync(&app, knot.addr, "sec.test.", Duration::from_secs(3)).await;
    let path = format!("/v1/zones/{zone}/records/{id}");
    assert_eq!(
        app.patch(&token, &path, json!({ "content": "192.0.2.4" })).await.status,
        200
    );
    wait_in_sync(&app, knot.addr, "sec.test.", Duration::from_secs(3)).await;
    same_answers(&app, knot.addr, &["new.sec.test.".to_string()])
        .await
        .unwrap();
    assert_eq!(app.delete(&token, &path).await.status, 204);
    wait_in_sync(&app, knot.addr, "sec.test.", Duration::from_secs(3)).await;
    same_answers(&app, knot.addr, &["new.sec.test.".to_string()])
        .await
        .unwrap();

    // A burst of 1,000 edits from 16 writers.
    let mut tasks = Vec::new();
    for w in 0..16 {
        let (app, token, zone) = (app.clone(), token.clone(), zone.clone());
        tasks.push(tokio::spawn(async move {
            for i in (w..1000).step_by(16) {
                let r = app
                    .record(&token, &zone, &format!("b{i}"), "TXT", &format!("burst {i}"))
                    .await;
                assert_eq!(r.status, 201);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let took = wait_in_sync(&app, knot.addr, "sec.test.", Duration::from_secs(20)).await;
    eprintln!("knot caught up {took:?} after the last of 1,000 edits");
    let burst: Vec<String> = (0..1000).map(|i| format!("b{i}.sec.test.")).collect();
    same_answers(&app, knot.addr, &burst).await.unwrap();
    let log = std::fs::read_to_string(&knot.log).unwrap();
    let ixfr = log.matches("IXFR, incoming").count();
    let axfr = log
        .lines()
        .filter(|l| l.contains("AXFR, incoming") && l.contains("finished"))
        .count();
    assert!(ixfr >= 4, "edits arrive by IXFR: {ixfr} IXFRs\n{log}");
    assert!(axfr <= 1, "only the first transfer is a whole zone: {axfr}\n{log}");
}

const KEY_NAME: &str = "xfr.test.";
const KEY_SECRET: &str = "c2VjcmV0LWtleS1mb3ItaXB4LXRyYW5zZmVyLXRlc3RzIQ==";

fn signer(name: &str, secret: &str) -> hickory_proto::rr::TSigner {
    use hickory_proto::rr::rdata::tsig::TsigAlgorithm;
    use hickory_proto::rr::{Name, TSigner};
    let key = data_encoding::BASE64.decode(secret.as_bytes()).unwrap();
    TSigner::new(key, TsigAlgorithm::HmacSha256, Name::from_ascii(name).unwrap(), 300).unwrap()
}

pub fn signed(m: &mut Message, name: &str, secret: &str) {
    let signer = signer(name, secret);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (sig, _) = signer.sign_message(m, now).unwrap();
    m.signature = Some(sig);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_allowed_by_tsig_key_are_signed_and_others_refused() {
    if knotd().is_none() {
        return;
    }
    let kport = free_port();
    let app = spawn_app_with(|c, _| {
        c.dns.allow_transfer = vec![format!("key:{KEY_NAME}")];
        c.dns.tsig_keys = vec![ipx::config::TsigKey {
            name: KEY_NAME.into(),
            algorithm: "hmac-sha256".into(),
            secret: KEY_SECRET.into(),
        }];
        c.dns.also_notify = vec![SocketAddr::from(([127, 0, 0, 1], kport))];
    })
    .await;
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "tsig.test").await;
    app.record(&token, &zone, "www", "A", "192.0.2.1").await;

    let axfr = query("tsig.test.", RecordType::AXFR, false);
    let r = crate::helpers::tcp_query(app.dns_addr(), &axfr).await;
    assert_eq!(
        r.metadata.response_code,
        hickory_proto::op::ResponseCode::Refused,
        "an address alone is not enough"
    );
    let mut forged = axfr.clone();
    signed(&mut forged, KEY_NAME, "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXkhIQ==");
    let r = crate::helpers::tcp_query(app.dns_addr(), &forged).await;
    assert_eq!(
        r.metadata.response_code,
        hickory_proto::op::ResponseCode::NotAuth,
        "a bad signature"
    );
    let mut good = axfr.clone();
    signed(&mut good, KEY_NAME, KEY_SECRET);
    let r = crate::helpers::tcp_query(app.dns_addr(), &good).await;
    assert_eq!(r.metadata.response_code, hickory_proto::op::ResponseCode::NoError);
    assert!(r.answers.len() >= 4, "SOA, NS, NS, A, SOA");
    assert!(r.signature.is_some(), "the response is signed");

    // A signed answer too large for UDP goes out truncated, and the truncated message is
    // signed (RFC 8945 §5.3): the client can trust the TC bit and retry over TCP.
    for i in 0..12 {
        let text = format!("\"{i:02}{}\"", "x".repeat(60));
        assert_eq!(app.record(&token, &zone, "big", "TXT", &text).await.status, 201);
    }
    let mut big = query("big.tsig.test.", RecordType::TXT, false);
    signed(&mut big, KEY_NAME, KEY_SECRET);
    let raw = crate::helpers::udp_raw(app.dns_addr(), &big.to_vec().unwrap())
        .await
        .expect("an answer");
    let cut = Message::from_vec(&raw).unwrap();
    assert!(cut.metadata.truncation && cut.answers.is_empty(), "{cut:?}");
    let request_mac = &big.signature.as_ref().unwrap().data.mac;
    signer(KEY_NAME, KEY_SECRET)
        .verify_message_byte(&raw, Some(request_mac), true)
        .expect("the TC answer is signed");
    assert!(raw.len() <= 512, "{} octets", raw.len());

    // An answer that fits in 512 octets unsigned but not with its TSIG is cut too: the
    // signed message stays within what the client takes.
    let mut edge = None;
    for i in 0..40 {
        let text = format!("\"{i:02}xxxxxxxx\"");
        assert_eq!(app.record(&token, &zone, "edge", "TXT", &text).await.status, 201);
        let plain = query("edge.tsig.test.", RecordType::TXT, false).to_vec().unwrap();
        let answer = crate::helpers::udp_raw(app.dns_addr(), &plain).await.unwrap();
        if answer.len() > 512 - 60 && !Message::from_vec(&answer).unwrap().metadata.truncation {
            edge = Some(answer.len());
            break;
        }
    }
    assert!(edge.is_some(), "no unsigned answer between 452 and 512 octets");
    let mut q = query("edge.tsig.test.", RecordType::TXT, false);
    signed(&mut q, KEY_NAME, KEY_SECRET);
    let raw = crate::helpers::udp_raw(app.dns_addr(), &q.to_vec().unwrap())
        .await
        .expect("an answer");
    assert!(
        raw.len() <= 512,
        "a signed UDP answer of {} octets (unsigned {edge:?})",
        raw.len()
    );
    assert!(Message::from_vec(&raw).unwrap().metadata.truncation);
    let request_mac = &q.signature.as_ref().unwrap().data.mac;
    signer(KEY_NAME, KEY_SECRET)
        .verify_message_byte(&raw, Some(request_mac), true)
        .expect("signed");

    // Knot, configured with the key, transfers and follows edits.
    let knot = start_knot_with_key(
        app.dir(),
        kport,
        Some(app.dns_addr()),
        &[("tsig.test.", None)],
        Some((KEY_NAME, KEY_SECRET)),
    );
    wait_in_sync(&app, knot.addr, "tsig.test.", Duration::from_secs(15)).await;
    app.record(&token, &zone, "new", "A", "192.0.2.2").await;
    wait_in_sync(&app, knot.addr, "tsig.test.", Duration::from_secs(2)).await;
    same_answers(
        &app,
        knot.addr,
        &["www.tsig.test.".to_string(), "new.tsig.test.".to_string()],
    )
    .await
    .unwrap();
    let log = std::fs::read_to_string(&knot.log).unwrap();
    assert!(log.contains("IXFR, incoming"), "{log}");
    assert!(!log.contains("TSIG"), "no TSIG complaints: {log}");
}

#[tokio::test]
async fn notify_is_retried_until_answered_and_the_change_is_propagated_once_the_secondary_serves_it() {
    use hickory_proto::op::{MessageType, OpCode};
    let fake = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let fake_addr = fake.local_addr().unwrap();
    let app = spawn_app_with(|c, _| c.dns.also_notify = vec![fake_addr]).await;
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "notified.test").await;
    let path = format!("/v1/zones/{zone}");
    let serial = app.get(&token, &path).await.data()["serial"].as_u64().unwrap() as u32;
    // The first NOTIFY goes unanswered...
    let (first, _) = next(&fake, OpCode::Notify).await.expect("a NOTIFY");
    assert!(first.metadata.authoritative);
    assert_eq!(first.queries[0].name().to_ascii(), "notified.test.");
    assert_eq!(first.queries[0].query_type(), RecordType::SOA);
    // ...so it comes again; this one is answered.
    let (second, from) = next(&fake, OpCode::Notify).await.expect("NOTIFY retried");
    let mut ack = Message::new(second.metadata.id, MessageType::Response, OpCode::Notify);
    ack.metadata.authoritative = true;
    ack.add_query(second.queries[0].clone());
    fake.send_to(&ack.to_vec().unwrap(), from).await.unwrap();
    // Then ipx asks the secondary's SOA until it serves the new serial; no NOTIFY again.
    assert_eq!(app.get(&token, &path).await.data()["propagated"], false);
    for (answer, propagated) in [(serial - 1, false), (serial, true)] {
        let (q, from) = next(&fake, OpCode::Query).await.expect("an SOA query");
        assert_eq!(q.queries[0].query_type(), RecordType::SOA);
        let mut r = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
        r.metadata.authoritative = true;
        r.add_query(q.queries[0].clone());
        let soa = hickory_proto::rr::rdata::SOA::new(
            q.queries[0].name().clone(),
            q.queries[0].name().clone(),
            answer,
            1,
            1,
            1,
            1,
        );
        r.answers.push(hickory_proto::rr::Record::from_rdata(
            q.queries[0].name().clone(),
            60,
            RData::SOA(soa),
        ));
        fake.send_to(&r.to_vec().unwrap(), from).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            app.get(&token, &path).await.data()["propagated"],
            propagated,
            "the secondary serves {answer}; ours is {serial}"
        );
    }
    let more = tokio::time::timeout(Duration::from_millis(1500), fake.recv_from(&mut [0u8; 512])).await;
    assert!(more.is_err(), "nothing more once it serves the serial");
}

/// The next message `fake` receives with `opcode`; the others are dropped.
async fn next(fake: &tokio::net::UdpSocket, opcode: hickory_proto::op::OpCode) -> Option<(Message, SocketAddr)> {
    let mut buf = [0u8; 2048];
    loop {
        let (n, from) = recv(fake, &mut buf).await?;
        let m = Message::from_vec(&buf[..n]).unwrap();
        if m.metadata.op_code == opcode {
            return Some((m, from));
        }
    }
}

async fn recv(fake: &tokio::net::UdpSocket, buf: &mut [u8; 2048]) -> Option<(usize, SocketAddr)> {
    tokio::time::timeout(Duration::from_secs(3), fake.recv_from(buf))
        .await
        .ok()
        .and_then(|r| r.ok())
}
