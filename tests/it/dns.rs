//! Authoritative answers over real UDP and TCP.

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, RecordType};

use crate::helpers::{TestApp, answers, query, spawn_app, tcp_query, udp_query, udp_raw};

const ZONE: &str = r#"
$ORIGIN proto.test.
$TTL 3600
@        IN SOA ns1.ipx.test. hostmaster.ipx.test. 7 7200 3600 1209600 300
@        IN NS  ns1.ipx.test.
@        IN NS  ns2.ipx.test.
@        IN A   192.0.2.1
@        IN MX  10 mail
mail     IN A   192.0.2.25
www      IN CNAME web
web      IN CNAME proto.test.
loop1    IN CNAME loop2
loop2    IN CNAME loop1
out      IN CNAME www.elsewhere.example.
dangling IN CNAME missing
a.b.c    IN A   192.0.2.3
*.wild   IN A   192.0.2.4
*.wild   IN TXT "wild"
sub      IN NS  ns.sub
ns.sub   IN A   192.0.2.53
"#;

async fn proto_app() -> TestApp {
    let app = spawn_app().await;
    app.team("acme", &[]).await;
    let out = app
        .operator(ipx::admin::Command::Zone(ipx::admin::ZoneCmd::Import {
            file: std::path::PathBuf::new(),
            team: "acme".into(),
            text: Some(ZONE.into()),
        }))
        .await
        .unwrap();
    assert!(out.contains("proto.test"));
    app
}

#[tokio::test]
async fn positive_answers_are_authoritative_with_additional_addresses() {
    let app = proto_app().await;
    let m = app.udp("proto.test.", RecordType::MX).await;
    assert!(m.metadata.authoritative);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(answers(&m), ["proto.test. MX 10 mail.proto.test."]);
    assert!(
        m.additionals
            .iter()
            .any(|r| r.record_type() == RecordType::A && r.name.to_ascii() == "mail.proto.test.")
    );
}

#[tokio::test]
async fn nxdomain_and_nodata_carry_the_soa_with_the_negative_ttl() {
    let app = proto_app().await;
    for (name, rtype, rcode) in [
        ("nope.proto.test.", RecordType::A, ResponseCode::NXDomain),
        ("mail.proto.test.", RecordType::AAAA, ResponseCode::NoError),
        ("b.c.proto.test.", RecordType::A, ResponseCode::NoError), // empty non-terminal
        ("c.proto.test.", RecordType::A, ResponseCode::NoError),
    ] {
        for m in [app.udp(name, rtype).await, app.tcp(name, rtype).await] {
            assert_eq!(m.metadata.response_code, rcode, "{name}");
            assert!(m.metadata.authoritative);
            assert!(m.answers.is_empty());
            assert_eq!(m.authorities.len(), 1);
            assert_eq!(m.authorities[0].record_type(), RecordType::SOA);
            assert_eq!(m.authorities[0].ttl, 300, "min(SOA TTL, MINIMUM) per RFC 2308");
        }
    }
}

#[tokio::test]
async fn cnames_are_chased_inside_the_zone_and_loops_are_cut() {
    let app = proto_app().await;
    let m = app.udp("www.proto.test.", RecordType::A).await;
    assert_eq!(
        answers(&m),
        [
            "proto.test. A 192.0.2.1",
            "web.proto.test. CNAME proto.test.",
            "www.proto.test. CNAME web.proto.test."
        ]
    );
    let m = app.udp("loop1.proto.test.", RecordType::A).await;
    assert_eq!(m.answers.len(), 2);
    let m = app.udp("out.proto.test.", RecordType::A).await;
    assert_eq!(answers(&m), ["out.proto.test. CNAME www.elsewhere.example."]);
    let m = app.udp("dangling.proto.test.", RecordType::A).await;
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::NXDomain,
        "RFC 6604: the rcode of the last name"
    );
    assert_eq!(m.answers.len(), 1);
    let m = app.udp("www.proto.test.", RecordType::CNAME).await;
    assert_eq!(answers(&m), ["www.proto.test. CNAME web.proto.test."]);
}

#[tokio::test]
async fn wildcards_synthesise_answers_for_names_that_do_not_exist() {
    let app = proto_app().await;
    let m = app.udp("Anything.wild.proto.test.", RecordType::A).await;
    assert_eq!(answers(&m), ["Anything.wild.proto.test. A 192.0.2.4"]);
    assert_eq!(
        m.queries[0].name().to_ascii(),
        "Anything.wild.proto.test.",
        "question case is kept"
    );
    let m = app.udp("x.wild.proto.test.", RecordType::MX).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(m.authorities[0].record_type(), RecordType::SOA);
    let m = app.udp("wild.proto.test.", RecordType::A).await;
    assert_eq!(
        m.metadata.response_code,
        ResponseCode::NoError,
        "an empty non-terminal is not matched by its own wildcard"
    );
    assert!(m.answers.is_empty());
}

#[tokio::test]
async fn names_under_a_delegation_get_a_referral_with_glue() {
    let app = proto_app().await;
    for name in ["sub.proto.test.", "host.sub.proto.test."] {
        let m = app.udp(name, RecordType::A).await;
        assert!(!m.metadata.authoritative, "{name}: referrals are not authoritative");
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.answers.is_empty());
        assert_eq!(m.authorities.len(), 1);
        assert_eq!(m.authorities[0].record_type(), RecordType::NS);
        assert!(m.additionals.iter().any(|r| r.record_type() == RecordType::A), "glue");
    }
}

#[tokio::test]
async fn names_outside_every_zone_are_refused() {
    let app = proto_app().await;
    for name in ["example.com.", "test.", "."] {
        let m = app.udp(name, RecordType::A).await;
        assert_eq!(m.metadata.response_code, ResponseCode::Refused, "{name}");
        assert!(!m.metadata.authoritative);
    }
}

#[tokio::test]
async fn large_answers_set_tc_over_udp_and_come_whole_over_tcp() {
    let app = proto_app().await;
    let token = app.team("acme", &[]).await;
    let zone = app.get(&token, "/v1/zones").await.data()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let add = |from: usize, to: usize| {
        let (app, token, zone) = (&app, &token, &zone);
        async move {
            for i in from..to {
                let r = app
                    .record(token, zone, "big", "TXT", &format!("{i:02}-{}", "x".repeat(60)))
                    .await;
                assert_eq!(r.status, 201);
            }
        }
    };
    let addr = app.dns_addr();
    let sized = move |payload: Option<u16>| async move {
        let mut m = query("big.proto.test.", RecordType::TXT, false);
        if let Some(p) = payload {
            let mut e = Edns::new();
            e.set_max_payload(p);
            m.set_edns(e);
        }
        udp_query(addr, &m).await
    };
    add(0, 12).await; // about 1,000 octets
    let plain = sized(None).await;
    assert!(plain.metadata.truncation, "no EDNS: 512 octets (RFC 1035)");
    assert!(plain.edns.is_none(), "no OPT without one in the query");
    assert!(sized(Some(512)).await.metadata.truncation, "EDNS 512 is honoured");
    let fits = sized(Some(1232)).await;
    assert!(!fits.metadata.truncation);
    assert_eq!(fits.answers.len(), 12);
    let asked_more = sized(Some(4096)).await;
    assert!(!asked_more.metadata.truncation);
    assert_eq!(
        asked_more.edns.as_ref().unwrap().max_payload(),
        1232,
        "we advertise our own size"
    );
    add(12, 30).await; // about 2,300 octets
    assert!(
        sized(Some(4096)).await.metadata.truncation,
        "never more than our 1232 over UDP"
    );
    let full = app.tcp("big.proto.test.", RecordType::TXT).await;
    assert!(!full.metadata.truncation);
    assert_eq!(full.answers.len(), 30);
}

#[tokio::test]
async fn truncated_answers_are_well_formed_keep_opt_and_hold_no_partial_rrset() {
    let app = proto_app().await;
    let token = app.team("acme", &[]).await;
    let zone = app.get(&token, "/v1/zones").await.data()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    for i in 0..30 {
        assert_eq!(
            app.record(&token, &zone, "big", "TXT", &format!("{i:02}-{}", "x".repeat(60)))
                .await
                .status,
            201
        );
    }
    let question = "big.proto.test.".len() + 1 + 4;
    for edns in [false, true] {
        let q = query("big.proto.test.", RecordType::TXT, edns);
        let raw = udp_raw(app.dns_addr(), &q.to_vec().unwrap()).await.unwrap();
        // Exactly a header, the question and (with EDNS) an 11-octet OPT: no trailing bytes.
        assert_eq!(raw.len(), 12 + question + if edns { 11 } else { 0 }, "edns={edns}");
        assert_eq!(
            &raw[4..12],
            &[0, 1, 0, 0, 0, 0, 0, u8::from(edns)],
            "header counts match the sections"
        );
        let m = Message::from_vec(&raw).unwrap();
        assert!(m.metadata.truncation && m.metadata.authoritative);
        assert!(m.answers.is_empty(), "no partial RRset");
        assert_eq!(m.edns.is_some(), edns, "OPT kept when asked with one");
    }
}

#[tokio::test]
async fn edns_versions_opcodes_and_classes_we_do_not_serve_get_the_right_rcode() {
    let app = proto_app().await;
    let mut m = query("proto.test.", RecordType::A, true);
    m.edns.as_mut().unwrap().set_version(1);
    let r = udp_query(app.dns_addr(), &m).await;
    assert_eq!(u16::from(r.metadata.response_code), 16, "BADVERS (RFC 6891 §6.1.3)");
    assert_eq!(r.edns.as_ref().map(|e| e.version()), Some(0));
    let mut m = query("proto.test.", RecordType::A, false);
    m.metadata.op_code = OpCode::Status;
    assert_eq!(
        udp_query(app.dns_addr(), &m).await.metadata.response_code,
        ResponseCode::NotImp
    );
    let mut m = query("proto.test.", RecordType::SOA, false);
    m.metadata.op_code = OpCode::Update;
    assert_eq!(
        udp_query(app.dns_addr(), &m).await.metadata.response_code,
        ResponseCode::Refused,
        "UPDATE needs a TSIG key"
    );
    let mut m = query("proto.test.", RecordType::A, false);
    m.queries[0].set_query_class(DNSClass::CH);
    assert_eq!(
        udp_query(app.dns_addr(), &m).await.metadata.response_code,
        ResponseCode::Refused
    );
    let m = query("proto.test.", RecordType::AXFR, false);
    assert_eq!(
        tcp_query(app.dns_addr(), &m).await.metadata.response_code,
        ResponseCode::Refused
    );
}

#[tokio::test]
async fn garbage_and_responses_never_crash_the_server() {
    let app = proto_app().await;
    assert!(udp_raw(app.dns_addr(), &[1, 2, 3]).await.is_none());
    let mut response = query("proto.test.", RecordType::A, false);
    response.metadata.message_type = MessageType::Response;
    assert!(
        udp_raw(app.dns_addr(), &response.to_vec().unwrap()).await.is_none(),
        "QR=1 is ignored"
    );
    let mut truncated = query("proto.test.", RecordType::A, false).to_vec().unwrap();
    truncated.truncate(20);
    if let Some(bytes) = udp_raw(app.dns_addr(), &truncated).await {
        assert_eq!(
            Message::from_vec(&bytes).unwrap().metadata.response_code,
            ResponseCode::FormErr
        );
    }
    assert_eq!(
        app.udp("proto.test.", RecordType::A).await.metadata.response_code,
        ResponseCode::NoError
    );
}

#[tokio::test]
async fn any_is_answered_with_one_rrset_per_rfc_8482() {
    let app = proto_app().await;
    for m in [
        app.udp("proto.test.", RecordType::ANY).await,
        app.tcp("proto.test.", RecordType::ANY).await,
    ] {
        assert_eq!(
            answers(&m),
            ["proto.test. A 192.0.2.1"],
            "the lowest type, as Knot answers"
        );
    }
    assert_eq!(
        answers(&app.udp("mail.proto.test.", RecordType::ANY).await),
        ["mail.proto.test. A 192.0.2.25"]
    );
    assert_eq!(
        app.udp("nope.proto.test.", RecordType::ANY)
            .await
            .metadata
            .response_code,
        ResponseCode::NXDomain
    );
}

mod tcp {
    use std::time::Duration;

    use hickory_proto::op::{Message, ResponseCode};
    use hickory_proto::rr::RecordType;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use crate::helpers::{connect_from, query, spawn_app_with};

    async fn send(s: &mut TcpStream, bytes: &[u8]) {
        s.write_all(&(bytes.len() as u16).to_be_bytes()).await.unwrap();
        s.write_all(bytes).await.unwrap();
    }

    async fn recv(s: &mut TcpStream) -> Option<Message> {
        let mut len = [0u8; 2];
        tokio::time::timeout(Duration::from_secs(3), s.read_exact(&mut len))
            .await
            .ok()?
            .ok()?;
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut buf).await.ok()?;
        Message::from_vec(&buf).ok()
    }

    #[tokio::test]
    async fn pipelined_queries_on_one_connection_are_all_answered() {
        let app = spawn_app_with(|_, _| {}).await;
        let token = app.team("acme", &[]).await;
        app.zone(&token, "pipe.test").await;
        let mut s = TcpStream::connect(app.dns_addr()).await.unwrap();
        let mut ids = Vec::new();
        for (i, t) in [RecordType::SOA, RecordType::NS, RecordType::A, RecordType::MX]
            .into_iter()
            .enumerate()
        {
            let mut q = query("pipe.test.", t, i % 2 == 0);
            q.metadata.id = 1000 + i as u16;
            ids.push(q.metadata.id);
            send(&mut s, &q.to_vec().unwrap()).await;
        }
        send(&mut s, &[0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 7]).await; // malformed
        let mut got = Vec::new();
        for _ in 0..5 {
            let m = recv(&mut s).await.expect("an answer per query");
            if m.metadata.id == 0xabcd {
                assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
            } else {
                got.push(m.metadata.id);
            }
        }
        got.sort();
        assert_eq!(got, ids);
    }

    /// Plain queries are answered as they are read; others (here CHAOS-class ones) run as
    /// tasks, at most 32 at once per connection. A client that sends everything in one go
    /// and closes its side still gets every answer before the connection closes.
    #[tokio::test]
    async fn a_burst_of_queries_then_a_half_close_gets_every_answer() {
        let app = spawn_app_with(|_, _| {}).await;
        let token = app.team("acme", &[]).await;
        app.zone(&token, "burst.test").await;
        let mut s = TcpStream::connect(app.dns_addr()).await.unwrap();
        let mut all = Vec::new();
        let mut ids = Vec::new();
        for i in 0..140u16 {
            let mut q = query("burst.test.", RecordType::SOA, i % 2 == 0);
            if i % 7 == 0 {
                q.queries[0].set_query_class(hickory_proto::rr::DNSClass::CH);
            }
            q.metadata.id = i;
            ids.push(i);
            let bytes = q.to_vec().unwrap();
            all.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
            all.extend_from_slice(&bytes);
        }
        s.write_all(&all).await.unwrap();
        s.shutdown().await.unwrap();
        let mut got = Vec::new();
        while let Some(m) = recv(&mut s).await {
            let chaos = m.metadata.id % 7 == 0;
            assert_eq!(
                m.metadata.response_code == ResponseCode::NoError,
                !chaos,
                "{}",
                m.metadata.id
            );
            got.push(m.metadata.id);
        }
        got.sort();
        assert_eq!(got, ids);
    }

    #[tokio::test]
    async fn idle_connections_are_closed_and_connections_are_capped() {
        let app = spawn_app_with(|c, _| {
            c.dns.tcp_idle_timeout_secs = 1;
            c.dns.tcp_max_connections = 2;
        })
        .await;
        let token = app.team("acme", &[]).await;
        app.zone(&token, "cap.test").await;
        let q = query("cap.test.", RecordType::SOA, false).to_vec().unwrap();
        let mut a = TcpStream::connect(app.dns_addr()).await.unwrap();
        let mut b = TcpStream::connect(app.dns_addr()).await.unwrap();
        send(&mut a, &q).await;
        assert!(recv(&mut a).await.is_some());
        send(&mut b, &q).await;
        assert!(recv(&mut b).await.is_some());
        let mut c = TcpStream::connect(app.dns_addr()).await.unwrap();
        let _ = c.write_all(&(q.len() as u16).to_be_bytes()).await;
        let _ = c.write_all(&q).await;
        assert!(recv(&mut c).await.is_none(), "a third connection is closed at the cap");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let mut byte = [0u8; 1];
        assert_eq!(a.read(&mut byte).await.unwrap_or(0), 0, "an idle connection is closed");
        let mut d = TcpStream::connect(app.dns_addr()).await.unwrap();
        send(&mut d, &q).await;
        assert!(
            recv(&mut d).await.is_some(),
            "slots free up once idle connections close"
        );
    }

    #[tokio::test]
    async fn one_address_cannot_take_every_connection() {
        let app = spawn_app_with(|c, _| c.dns.tcp_max_connections_per_address = 3).await;
        let token = app.team("acme", &[]).await;
        app.zone(&token, "share.test").await;
        let q = query("share.test.", RecordType::SOA, false).to_vec().unwrap();
        let mut held = Vec::new();
        for _ in 0..3 {
            let mut s = connect_from("127.0.0.7", app.dns_addr()).await;
            send(&mut s, &q).await;
            assert!(recv(&mut s).await.is_some());
            held.push(s);
        }
        let mut fourth = connect_from("127.0.0.7", app.dns_addr()).await;
        let _ = fourth.write_all(&(q.len() as u16).to_be_bytes()).await;
        let _ = fourth.write_all(&q).await;
        assert!(
            recv(&mut fourth).await.is_none(),
            "a fourth connection from the address is closed"
        );
        let mut other = connect_from("127.0.0.8", app.dns_addr()).await;
        send(&mut other, &q).await;
        assert!(recv(&mut other).await.is_some(), "another address is served");
    }

    #[tokio::test]
    async fn a_peer_that_never_reads_its_answers_loses_the_connection() {
        let app = spawn_app_with(|c, _| {
            c.dns.tcp_write_timeout_secs = 1;
            c.dns.tcp_idle_timeout_secs = 30;
            c.dns.tcp_max_connections_per_address = 1;
        })
        .await;
        let token = app.team("acme", &[]).await;
        let zone = app.zone(&token, "fat.test").await;
        let creates: Vec<_> = (0..60).map(|i| serde_json::json!({ "name": "fat", "type": "TXT", "content": format!("{i:03}{}", "x".repeat(250)) })).collect();
        let r = app
            .post(
                &token,
                &format!("/v1/zones/{zone}/records/batch"),
                serde_json::json!({ "creates": creates }),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let q = query("fat.fat.test.", RecordType::TXT, false).to_vec().unwrap();
        let mut stuck = connect_from("127.0.0.9", app.dns_addr()).await;
        // ~16 KB answers, asked for again and again and never read.
        for _ in 0..2000 {
            let mut framed = (q.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(&q);
            if tokio::time::timeout(Duration::from_millis(100), stuck.write_all(&framed))
                .await
                .is_err()
            {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(3000)).await;
        let mut next = connect_from("127.0.0.9", app.dns_addr()).await;
        send(&mut next, &query("fat.test.", RecordType::SOA, false).to_vec().unwrap()).await;
        assert!(
            recv(&mut next).await.is_some(),
            "the stuck connection was closed long before its idle timeout"
        );
    }

    #[tokio::test]
    async fn a_busy_connection_still_ends_at_its_lifetime() {
        let app = spawn_app_with(|c, _| {
            c.dns.tcp_max_connection_secs = 2;
            c.dns.tcp_idle_timeout_secs = 30;
        })
        .await;
        let token = app.team("acme", &[]).await;
        app.zone(&token, "life.test").await;
        let q = query("life.test.", RecordType::SOA, false).to_vec().unwrap();
        let mut s = TcpStream::connect(app.dns_addr()).await.unwrap();
        let started = std::time::Instant::now();
        let mut answered = 0;
        while started.elapsed() < Duration::from_secs(5) {
            let _ = s.write_all(&(q.len() as u16).to_be_bytes()).await;
            let _ = s.write_all(&q).await;
            if recv(&mut s).await.is_none() {
                break;
            }
            answered += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let lived = started.elapsed();
        assert!(answered >= 5, "answered while alive: {answered}");
        assert!(
            lived < Duration::from_secs(4),
            "closed at its lifetime, not kept for ever: {lived:?}"
        );
    }
}

#[tokio::test]
async fn the_server_tells_nothing_about_itself_unless_configured() {
    let app = proto_app().await;
    for name in ["version.bind.", "version.server.", "id.server.", "hostname.bind."] {
        let mut m = query(name, RecordType::TXT, true);
        m.queries[0].set_query_class(DNSClass::CH);
        let r = udp_query(app.dns_addr(), &m).await;
        assert_eq!(r.metadata.response_code, ResponseCode::Refused, "{name}");
        assert!(r.answers.is_empty(), "{name}");
    }
    let mut m = query("proto.test.", RecordType::A, true);
    let nsid = hickory_proto::rr::rdata::opt::EdnsOption::Unknown(3, Vec::new());
    m.edns.as_mut().unwrap().options_mut().insert(nsid);
    let r = udp_query(app.dns_addr(), &m).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert!(r.edns.unwrap().options().as_ref().is_empty(), "no NSID");
}

#[tokio::test]
async fn a_configured_identity_and_nsid_are_told_and_nothing_else() {
    let app = crate::helpers::spawn_app_with(|c, _| {
        c.dns.identity = "ns7.example.net".into();
        c.dns.nsid = "ns7".into();
    })
    .await;
    let mut m = query("ID.Server.", RecordType::TXT, true);
    m.queries[0].set_query_class(DNSClass::CH);
    m.edns.as_mut().unwrap().set_dnssec_ok(true);
    let r = udp_query(app.dns_addr(), &m).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert!(!r.metadata.authoritative);
    assert_eq!(r.answers.len(), 1);
    let a = &r.answers[0];
    assert_eq!((a.dns_class, a.ttl), (DNSClass::CH, 0));
    assert_eq!(a.data.to_string(), "ns7.example.net");
    assert!(r.edns.as_ref().unwrap().flags().dnssec_ok, "DO copied");
    let mut m = query("version.bind.", RecordType::TXT, false);
    m.queries[0].set_query_class(DNSClass::CH);
    assert_eq!(
        udp_query(app.dns_addr(), &m).await.metadata.response_code,
        ResponseCode::Refused,
        "the version stays off"
    );
    // NSID on an error too.
    let mut m = query("www.elsewhere.test.", RecordType::A, true);
    let nsid = hickory_proto::rr::rdata::opt::EdnsOption::Unknown(3, Vec::new());
    m.edns.as_mut().unwrap().options_mut().insert(nsid);
    let raw = udp_raw(app.dns_addr(), &m.to_vec().unwrap()).await.unwrap();
    assert_eq!(
        Message::from_vec(&raw).unwrap().metadata.response_code,
        ResponseCode::Refused
    );
    assert!(raw.windows(7).any(|w| w == b"\x00\x03\x00\x03ns7"), "NSID in the OPT");
}

#[tokio::test]
async fn trailing_bytes_are_a_format_error_over_udp_and_tcp() {
    let app = proto_app().await;
    for edns in [false, true] {
        let mut bytes = query("proto.test.", RecordType::A, edns).to_vec().unwrap();
        bytes.extend_from_slice(&[0, 0, 0]);
        let r = Message::from_vec(&udp_raw(app.dns_addr(), &bytes).await.unwrap()).unwrap();
        assert_eq!(r.metadata.response_code, ResponseCode::FormErr, "edns {edns}");
        assert!(r.answers.is_empty());
        assert_eq!(r.edns.is_some(), edns, "OPT back when the query's could be read");
    }
}
