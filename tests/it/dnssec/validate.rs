//! Signed answers as validators see them: delv for every kind of answer, before and right
//! after edits; unbound as a validating resolver; a tampered or expired signature found
//! bogus; the AXFR dump checked by ldns-verify-zone and kzonecheck.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use serde_json::{Value, json};

use super::{Anchor, Proxy, anchor_file, axfr_text, delv, do_query, enable, rrsigs, signed_app, validated};
use crate::clients::{run, tool};
use crate::helpers::{TestApp, udp_query};
use crate::interop::free_port;

/// A parent zone with every kind of name, a signed child (its DS in the parent) and an
/// unsigned one, all signed as `denial` says; returns the parent's id and its key.
async fn zones(app: &TestApp, token: &str) -> (String, Value) {
    let parent = app.zone(token, "parent.test").await;
    for (name, rtype, content) in [
        ("@", "A", "192.0.2.1"),
        ("www", "CNAME", "parent.test."),
        ("*.w", "TXT", "wild"),
        ("x.y.z", "A", "192.0.2.3"),
        ("@", "MX", "10 mx.parent.test."),
        ("mx", "A", "192.0.2.4"),
        ("sec", "NS", "ns1.ipx.test."),
        ("insec", "NS", "ns1.ipx.test."),
        ("glue.insec", "A", "192.0.2.53"),
    ] {
        let r = app.record(token, &parent, name, rtype, content).await;
        assert_eq!(r.status, 201, "{name} {rtype}: {}", r.body);
    }
    let child = app.zone(token, "sec.parent.test").await;
    let unsigned = app.zone(token, "insec.parent.test").await;
    for zone in [&child, &unsigned] {
        assert_eq!(app.record(token, zone, "www", "A", "192.0.2.80").await.status, 201);
    }
    let view = enable(app, token, &parent).await;
    let child_view = enable(app, token, &child).await;
    let ds = child_view["keys"][0]["ds"][0].as_str().unwrap();
    let r = app.record(token, &parent, "sec", "DS", ds).await;
    assert_eq!(r.status, 201, "{}", r.body);
    (parent, view["keys"][0].clone())
}

async fn every_kind_of_answer_validates(denial: &str, algorithm: ipx::domain::Algorithm) {
    let app = signed_app(|c| {
        c.dnssec.denial = denial.parse().unwrap();
        c.dnssec.algorithm = algorithm;
    })
    .await;
    let token = app.team("acme", &[]).await;
    let (_, key) = zones(&app, &token).await;
    assert_eq!(key["algorithm"], algorithm.number(), "{key}");
    let anchors = anchor_file(app.dir(), "parent.test", &[Anchor::Key(&key)]);
    let dns = app.dns_addr();
    let check = |name: &'static str, rtype: &'static str, expect: &'static str| {
        let anchors = anchors.clone();
        async move {
            let out = validated(dns, &anchors, "parent.test", name, rtype).await;
            assert!(
                out.contains(expect),
                "{name} {rtype} ({denial}): {expect:?} not in\n{out}"
            );
        }
    };
    check("parent.test", "A", "192.0.2.1").await;
    check("parent.test", "MX", "mx.parent.test.").await;
    check("www.parent.test", "A", "CNAME").await; // the chain ends in the apex's A
    check("a.w.parent.test", "TXT", "\"wild\"").await; // a wildcard expansion
    check("b.c.w.parent.test", "TXT", "b.c.w.parent.test.").await;
    check("nope.parent.test", "A", "NXDOMAIN").await;
    check("nope.y.z.parent.test", "A", "NXDOMAIN").await;
    check("mx.parent.test", "TXT", "NXRRSET").await; // NODATA
    check("y.z.parent.test", "A", "NXRRSET").await; // an empty non-terminal
    check("a.w.parent.test", "A", "NXRRSET").await; // wildcard NODATA
    check("w.parent.test", "TXT", "NXRRSET").await; // the wildcard's parent is an ENT
    check("insec.parent.test", "DS", "NXRRSET").await; // an insecure delegation: no DS, proven
    check("sec.parent.test", "DS", "sec.parent.test.").await; // a secure one: its DS, signed
    check("www.sec.parent.test", "A", "192.0.2.80").await; // validated through that DS
    check("parent.test", "DNSKEY", "DNSKEY").await;
    check("parent.test", "CDS", "CDS").await;
    let out = delv(dns, &anchors, "parent.test", "www.insec.parent.test", "A").await;
    assert!(out.contains("unsigned answer"), "below an insecure delegation:\n{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_answer_of_an_nsec3_zone_is_fully_validated_by_delv() {
    every_kind_of_answer_validates("nsec3", ipx::domain::Algorithm::EcdsaP256Sha256).await;
}

/// NSEC, and the other algorithm (`[dnssec] algorithm = 15`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_answer_of_an_nsec_zone_signed_with_ed25519_is_fully_validated_by_delv() {
    every_kind_of_answer_validates("nsec", ipx::domain::Algorithm::Ed25519).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_edit_is_signed_before_the_api_call_returns() {
    let app = signed_app(|_| {}).await;
    let token = app.team("acme", &[]).await;
    let (zone, key) = zones(&app, &token).await;
    let anchors = anchor_file(app.dir(), "parent.test", &[Anchor::Key(&key)]);
    let dns = app.dns_addr();
    let records = format!("/v1/zones/{zone}/records");
    // Create: validated at once, and its name's old NXDOMAIN proof is gone.
    let r = app.record(&token, &zone, "fresh", "A", "192.0.2.10").await;
    assert_eq!(r.status, 201);
    let out = validated(dns, &anchors, "parent.test", "fresh.parent.test", "A").await;
    assert!(out.contains("192.0.2.10"), "{out}");
    // Change: the new data, validated.
    let path = format!("{records}/{}", r.id());
    assert_eq!(
        app.patch(&token, &path, json!({ "content": "192.0.2.11" }))
            .await
            .status,
        200
    );
    let out = validated(dns, &anchors, "parent.test", "fresh.parent.test", "A").await;
    assert!(out.contains("192.0.2.11") && !out.contains("192.0.2.10"), "{out}");
    // Rename: the old name proven gone, the new one signed.
    assert_eq!(
        app.patch(&token, &path, json!({ "name": "moved.deep" })).await.status,
        200
    );
    let out = validated(dns, &anchors, "parent.test", "fresh.parent.test", "A").await;
    assert!(out.contains("NXDOMAIN"), "{out}");
    validated(dns, &anchors, "parent.test", "moved.deep.parent.test", "A").await;
    let out = validated(dns, &anchors, "parent.test", "deep.parent.test", "A").await;
    assert!(out.contains("NXRRSET"), "a new empty non-terminal: {out}");
    // Delete: NXDOMAIN, proven; the ENT went with it.
    assert_eq!(app.delete(&token, &path).await.status, 204);
    let out = validated(dns, &anchors, "parent.test", "deep.parent.test", "A").await;
    assert!(out.contains("NXDOMAIN"), "{out}");
    // A batch, all at once.
    let batch = json!({ "creates": [
        { "name": "b1", "type": "TXT", "content": "one" },
        { "name": "b2", "type": "AAAA", "content": "2001:db8::2" },
        { "name": "*.b3", "type": "A", "content": "192.0.2.33" },
    ]});
    let r = app.post(&token, &format!("{records}/batch"), batch).await;
    assert!(r.status.is_success(), "{}", r.body);
    validated(dns, &anchors, "parent.test", "b1.parent.test", "TXT").await;
    validated(dns, &anchors, "parent.test", "b2.parent.test", "AAAA").await;
    validated(dns, &anchors, "parent.test", "any.b3.parent.test", "A").await;
    // A delegation over names that were signed: they become glue, unsigned; and back.
    let glue = app.record(&token, &zone, "ns.cut", "A", "192.0.2.60").await.id();
    validated(dns, &anchors, "parent.test", "ns.cut.parent.test", "A").await;
    let cut = app.record(&token, &zone, "cut", "NS", "ns.cut.parent.test.").await.id();
    let out = validated(dns, &anchors, "parent.test", "cut.parent.test", "DS").await;
    assert!(out.contains("NXRRSET"), "an insecure delegation now: {out}");
    let axfr = axfr_text(dns, "parent.test").await;
    assert!(
        !axfr
            .lines()
            .any(|l| l.starts_with("ns.cut.parent.test.") && l.contains("RRSIG")),
        "glue is not signed:\n{axfr}"
    );
    assert_eq!(app.delete(&token, &format!("{records}/{cut}")).await.status, 204);
    validated(dns, &anchors, "parent.test", "ns.cut.parent.test", "A").await;
    assert_eq!(app.delete(&token, &format!("{records}/{glue}")).await.status, 204);
    verify_zone(dns, "parent.test", app.dir()).await;
}

/// The AXFR dump passes ldns-verify-zone and kzonecheck with DNSSEC checks on.
async fn verify_zone(dns: SocketAddr, zone: &str, dir: &Path) {
    let text = axfr_text(dns, zone).await;
    let file = dir.join(format!("{zone}.axfr"));
    std::fs::write(&file, &text).unwrap();
    let path = file.display().to_string();
    let ldns = tool("ldns-verify-zone", "apt-get install ldnsutils");
    let (ok, out) = run(ldns, &[&path], "", &[]).await;
    assert!(ok && out.contains("verified"), "ldns-verify-zone:\n{out}\n{text}");
    let knot = tool("kzonecheck", "apt-get install knot-dnssecutils");
    let (ok, out) = run(knot, &["-o", zone, "-d", "on", &path], "", &[]).await;
    assert!(ok, "kzonecheck -d on:\n{out}\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_axfr_dump_passes_ldns_verify_zone_and_kzonecheck_in_both_denial_modes() {
    for denial in ["nsec3", "nsec"] {
        let app = signed_app(|c| c.dnssec.denial = denial.parse().unwrap()).await;
        let token = app.team("acme", &[]).await;
        zones(&app, &token).await;
        verify_zone(app.dns_addr(), "parent.test", app.dir()).await;
        verify_zone(app.dns_addr(), "sec.parent.test", app.dir()).await;
    }
}

/// A validating unbound that asks `stub` for `zone`, trusting `ds` (a DS in presentation
/// form after owner, class and type).
pub(super) struct Unbound {
    child: Child,
    pub(super) addr: SocketAddr,
}

impl Drop for Unbound {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(super) fn start_unbound(dir: &Path, zone: &str, ds: &str, stub: SocketAddr) -> Unbound {
    let program = tool("unbound", "apt-get install unbound");
    let port = free_port();
    let d = dir.join(format!("unbound-{port}"));
    std::fs::create_dir_all(&d).unwrap();
    let conf = format!(
        "server:\n  interface: 127.0.0.1\n  port: {port}\n  do-daemonize: no\n  use-syslog: no\n  logfile: \"\"\n  chroot: \"\"\n  username: \"\"\n  directory: \"{d}\"\n  pidfile: \"{d}/unbound.pid\"\n  do-not-query-localhost: no\n  module-config: \"validator iterator\"\n  trust-anchor: \"{zone}. DS {ds}\"\n  val-log-level: 2\n  verbosity: 1\n  num-threads: 1\n  so-reuseport: no\n  qname-minimisation: no\n  access-control: 127.0.0.0/8 allow\n  local-zone: \"test.\" nodefault\nremote-control:\n  control-enable: no\nstub-zone:\n  name: \"{zone}.\"\n  stub-addr: {}@{}\n",
        stub.ip(),
        stub.port(),
        d = d.display()
    );
    let path = d.join("unbound.conf");
    std::fs::write(&path, conf).unwrap();
    let child = Command::new(program)
        .arg("-d")
        .arg("-c")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(d.join("unbound.log")).unwrap())
        .spawn()
        .unwrap();
    Unbound {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    }
}

/// Asks a resolver with RD set; retried while it starts.
pub(super) async fn resolve(resolver: SocketAddr, name: &str, rtype: RecordType) -> hickory_proto::op::Message {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut q = do_query(name, rtype);
        q.metadata.recursion_desired = true;
        let bytes = q.to_vec().unwrap();
        if let Some(answer) = crate::helpers::udp_raw(resolver, &bytes).await {
            return hickory_proto::op::Message::from_vec(&answer).unwrap();
        }
        assert!(Instant::now() < deadline, "{resolver} never answered");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbound_validates_with_ad_and_a_tampered_signature_is_servfail_there_and_bogus_in_delv() {
    let app = signed_app(|_| {}).await;
    let token = app.team("acme", &[]).await;
    let (zone, key) = zones(&app, &token).await;
    for name in ["ok", "victim"] {
        assert_eq!(app.record(&token, &zone, name, "A", "192.0.2.90").await.status, 201);
    }
    let proxy = Proxy::start(app.dns_addr(), "victim.parent.test.").await;
    let ds = key["ds"][0].as_str().unwrap();
    let unbound = start_unbound(app.dir(), "parent.test", ds, proxy.addr);
    for (name, rtype) in [("ok.parent.test.", RecordType::A), ("nope.parent.test.", RecordType::A)] {
        let m = resolve(unbound.addr, name, rtype).await;
        assert!(
            m.metadata.authentic_data,
            "{name}: AD set by a validating resolver\n{m:?}"
        );
    }
    let nx = resolve(unbound.addr, "nope.parent.test.", RecordType::A).await;
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    // Through edits: names made after unbound started, an answer, a NODATA and a CNAME.
    assert_eq!(app.record(&token, &zone, "fresh", "A", "192.0.2.91").await.status, 201);
    assert_eq!(app.record(&token, &zone, "alias", "CNAME", "fresh").await.status, 201);
    for (name, rtype, rcode) in [
        ("fresh.parent.test.", RecordType::A, ResponseCode::NoError),
        ("fresh.parent.test.", RecordType::TXT, ResponseCode::NoError),
        ("alias.parent.test.", RecordType::A, ResponseCode::NoError),
    ] {
        let m = resolve(unbound.addr, name, rtype).await;
        assert!(
            m.metadata.authentic_data && m.metadata.response_code == rcode,
            "{name} {rtype}: validated after the edit\n{m:?}"
        );
    }

    proxy.tamper(true);
    let m = resolve(unbound.addr, "victim.parent.test.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail, "{m:?}");
    let anchors = anchor_file(app.dir(), "parent.test", &[Anchor::Ds(&key)]);
    let out = delv(proxy.addr, &anchors, "parent.test", "victim.parent.test", "A").await;
    assert!(
        !out.contains("fully validated") && out.contains("resolution failed"),
        "{out}"
    );
    proxy.tamper(false);
    validated(proxy.addr, &anchors, "parent.test", "victim.parent.test", "A").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_are_refreshed_before_they_expire_and_an_expired_one_is_bogus() {
    // Signatures valid for 8 s, made again with 4 s left, looked at every second.
    let app = signed_app(|c| {
        c.dnssec.signature_validity_secs = 8;
        c.dnssec.signature_refresh_secs = 4;
        c.dnssec.resign_interval_secs = 1;
        c.dnssec.inception_offset_secs = 60;
    })
    .await;
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "fast.test").await;
    app.record(&token, &zone, "www", "A", "192.0.2.1").await;
    let view = enable(&app, &token, &zone).await;
    let anchors = anchor_file(app.dir(), "fast.test", &[Anchor::Ds(&view["keys"][0])]);
    let first = udp_query(app.dns_addr(), &do_query("www.fast.test.", RecordType::A)).await;
    let stale = first.to_vec().unwrap();
    let expires = rrsigs(&first)[0].input().sig_expiration.get();
    let serial = crate::interop::serial(app.dns_addr(), "fast.test.").await.unwrap();
    // Every answer meanwhile carries signatures that have not expired.
    while ipx::domain::unix_now() as u32 <= expires + 1 {
        for (name, rtype) in [("www.fast.test.", RecordType::A), ("nope.fast.test.", RecordType::A)] {
            let m = udp_query(app.dns_addr(), &do_query(name, rtype)).await;
            let now = ipx::domain::unix_now() as u32;
            for sig in rrsigs(&m) {
                assert!(
                    sig.input().sig_expiration.get() > now,
                    "an expired signature was served: {m:?}"
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let later = crate::interop::serial(app.dns_addr(), "fast.test.").await.unwrap();
    assert!(later != serial, "re-signing changed the zone (and so its serial)");
    validated(app.dns_addr(), &anchors, "fast.test", "www.fast.test", "A").await;
    validated(app.dns_addr(), &anchors, "fast.test", "nope.fast.test", "A").await;
    // The first answer, replayed now that its signature has expired, is bogus.
    let replay = Replay::start(app.dns_addr(), "www.fast.test.", stale).await;
    let out = delv(replay.addr, &anchors, "fast.test", "www.fast.test", "A").await;
    assert!(!out.contains("fully validated") && out.contains("expired"), "{out}");
}

/// Forwards to `upstream`, but answers `victim` with a recorded message.
struct Replay {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Replay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Replay {
    async fn start(upstream: SocketAddr, victim: &str, recorded: Vec<u8>) -> Self {
        let sock = std::sync::Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = sock.local_addr().unwrap();
        let victim = victim.to_string();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 65_535];
            loop {
                let Ok((n, client)) = sock.recv_from(&mut buf).await else {
                    return;
                };
                let query = buf[..n].to_vec();
                let asks = hickory_proto::op::Message::from_vec(&query).ok().is_some_and(|m| {
                    m.queries.first().is_some_and(|q| {
                        q.name().to_string().eq_ignore_ascii_case(&victim) && q.query_type() == RecordType::A
                    })
                });
                let answer = if asks {
                    let mut a = recorded.clone();
                    a[..2].copy_from_slice(&query[..2]);
                    Some(a)
                } else {
                    crate::helpers::udp_raw(upstream, &query).await
                };
                if let Some(a) = answer {
                    let _ = sock.send_to(&a, client).await;
                }
            }
        });
        Self { addr, task }
    }
}
