//! The protocol's edges, asked of ipx and of Knot serving the same zone: the DO bit and the
//! OPT record on every kind of response, NOTIFY, zone transfers over UDP and TCP, QCLASS
//! ANY, meta and obsolete types, odd headers and trailing bytes, the server's identity
//! (RFC 4892) and NSID (RFC 5001). Responses are compared whole: header bits, the question
//! as echoed, each section as a set, and the OPT record with its options. The differences
//! that remain are `KNOWN`, each with the RFC that allows it; docs/dns.md lists them, and
//! each must still show (a difference that went away is taken out of both).

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::rdata::opt::EdnsOption;
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{names, serve_both};
use crate::helpers::{connect_from, name_of};
use crate::interop::knotd;

/// How a case is sent.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Via {
    Udp,
    Tcp,
}

/// Where in the response a known difference lies.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Field {
    Aa,
    Rcode,
    Opt,
    /// One of them does not answer at all.
    Answered,
}

/// Differences from Knot that stay: the case's label, where, and why (docs/dns.md).
const KNOWN: &[(&str, Field, &str)] = &[
    ("notify accepted", Field::Aa, "RFC 1996"),
    ("notify accepted rd", Field::Aa, "RFC 1996"),
    ("nsid notify", Field::Aa, "RFC 1996"),
    ("axfr tcp", Field::Aa, "RFC 5936 §2.2.1"),
    ("ixfr tcp behind", Field::Aa, "RFC 5936 §2.2.1"),
    ("ixfr tcp current", Field::Aa, "RFC 5936 §2.2.1"),
    ("ixfr udp behind", Field::Aa, "RFC 5936 §2.2.1"),
    ("ixfr udp current", Field::Aa, "RFC 5936 §2.2.1"),
    ("axfr tcp refused", Field::Rcode, "RFC 1035 §4.1.1"),
    ("ixfr udp refused", Field::Rcode, "RFC 1035 §4.1.1"),
    ("trailing bytes after the opt", Field::Opt, "RFC 6891 §7"),
    ("two questions", Field::Answered, "RFC 9619"),
];

struct Case {
    category: &'static str,
    label: String,
    wire: Vec<u8>,
    via: Via,
    /// The source address (127.0.0.2 is not allowed to transfer).
    from: &'static str,
}

/// The query's OPT record: none, or EDNS(0) with DO and NSID as asked.
#[derive(Clone, Copy)]
struct Opt {
    edns: bool,
    dnssec_ok: bool,
    nsid: bool,
}

const PLAIN: Opt = Opt {
    edns: false,
    dnssec_ok: false,
    nsid: false,
};
const EDNS: Opt = Opt {
    edns: true,
    dnssec_ok: false,
    nsid: false,
};
const DO: Opt = Opt {
    edns: true,
    dnssec_ok: true,
    nsid: false,
};
const NSID: Opt = Opt {
    edns: true,
    dnssec_ok: false,
    nsid: true,
};

fn message(name: &str, rtype: RecordType, class: DNSClass, opcode: OpCode, opt: Opt) -> Message {
    let mut m = Message::new(0x5a5a, MessageType::Query, opcode);
    m.metadata.recursion_desired = opcode == OpCode::Query;
    m.metadata.authoritative = opcode == OpCode::Notify;
    let mut q = Query::query(name_of(name), rtype);
    q.set_query_class(class);
    m.add_query(q);
    if opt.edns {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        e.set_dnssec_ok(opt.dnssec_ok);
        if opt.nsid {
            e.options_mut().insert(EdnsOption::Unknown(3, Vec::new()));
        }
        m.set_edns(e);
    }
    m
}

fn wire(name: &str, rtype: impl Into<RecordType>, class: DNSClass, opt: Opt) -> Vec<u8> {
    message(name, rtype.into(), class, OpCode::Query, opt).to_vec().unwrap()
}

fn notify(name: &str, rtype: RecordType, opt: Opt) -> Vec<u8> {
    message(name, rtype, DNSClass::IN, OpCode::Notify, opt)
        .to_vec()
        .unwrap()
}

/// An IXFR from `serial` (the SOA in the authority section, RFC 1995 §3).
fn ixfr(serial: u32, opt: Opt) -> Vec<u8> {
    let mut m = message("conf.test.", RecordType::IXFR, DNSClass::IN, OpCode::Query, opt);
    let soa = SOA::new(
        Name::from_ascii("ns1.conf.test.").unwrap(),
        Name::from_ascii("hostmaster.conf.test.").unwrap(),
        serial,
        7200,
        3600,
        1_209_600,
        300,
    );
    m.authorities.push(Record::from_rdata(
        Name::from_ascii("conf.test.").unwrap(),
        0,
        RData::SOA(soa),
    ));
    m.to_vec().unwrap()
}

/// `wire` with header bits set (octets 2 and 3).
fn with_bits(mut wire: Vec<u8>, hi: u8, lo: u8) -> Vec<u8> {
    wire[2] |= hi;
    wire[3] |= lo;
    wire
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    let mut add = |category, label: &str, wire: Vec<u8>, via| {
        out.push(Case {
            category,
            label: label.to_string(),
            wire,
            via,
            from: "127.0.0.1",
        });
    };
    let (t, a) = (RecordType::TXT, RecordType::A);
    let (inet, ch, any) = (DNSClass::IN, DNSClass::CH, DNSClass::ANY);
    let status = |opt| {
        message("conf.test.", RecordType::SOA, inet, OpCode::Status, opt)
            .to_vec()
            .unwrap()
    };

    // DO copied into every response to a query that set it (RFC 3225 §3), errors included.
    for (label, w) in [
        ("do positive", wire("www.conf.test.", a, inet, DO)),
        ("do nxdomain", wire("nope.conf.test.", a, inet, DO)),
        ("do nodata", wire("mail.conf.test.", t, inet, DO)),
        ("do referral", wire("x.sub.conf.test.", a, inet, DO)),
        ("do refused", wire("www.elsewhere.test.", a, inet, DO)),
        ("do notimp", status(DO)),
        ("do class none", wire("www.conf.test.", a, DNSClass::NONE, DO)),
        ("do type0", wire("www.conf.test.", 0, inet, DO)),
    ] {
        add("dnssec ok", label, w.clone(), Via::Udp);
        add("dnssec ok", &format!("{label} tcp"), w, Via::Tcp);
    }

    // OPT in every response to a query that had one, and in none to a query that had none.
    for (label, opt) in [("with opt", EDNS), ("without opt", PLAIN)] {
        for (what, w, via) in [
            ("notimp", status(opt), Via::Udp),
            ("refused", wire("a.elsewhere.test.", a, inet, opt), Via::Udp),
            (
                "refused class",
                wire("www.conf.test.", a, DNSClass::Unknown(42), opt),
                Via::Udp,
            ),
            ("axfr udp", wire("conf.test.", RecordType::AXFR, inet, opt), Via::Udp),
            (
                "axfr udp not a zone",
                wire("www.conf.test.", RecordType::AXFR, inet, opt),
                Via::Udp,
            ),
            (
                "ixfr without soa",
                wire("conf.test.", RecordType::IXFR, inet, opt),
                Via::Udp,
            ),
            (
                "ixfr without soa tcp",
                wire("conf.test.", RecordType::IXFR, inet, opt),
                Via::Tcp,
            ),
            (
                "notify out of zone",
                notify("elsewhere.test.", RecordType::SOA, opt),
                Via::Udp,
            ),
        ] {
            add("opt on errors", &format!("{what} {label}"), w, via);
        }
    }
    let mut v1 = message("www.conf.test.", a, inet, OpCode::Query, EDNS);
    v1.edns.as_mut().unwrap().set_version(1);
    add("opt on errors", "badvers", v1.to_vec().unwrap(), Via::Udp);

    // NOTIFY: for the zone, for a name in it, for another zone, for another type.
    add(
        "notify",
        "notify accepted",
        notify("conf.test.", RecordType::SOA, DO),
        Via::Udp,
    );
    add(
        "notify",
        "notify accepted rd",
        with_bits(notify("conf.test.", RecordType::SOA, PLAIN), 0x01, 0),
        Via::Udp,
    );
    add(
        "notify",
        "notify not the apex",
        notify("www.conf.test.", RecordType::SOA, EDNS),
        Via::Udp,
    );
    add(
        "notify",
        "notify another zone",
        notify("nope.test.", RecordType::SOA, PLAIN),
        Via::Udp,
    );
    add("notify", "notify not soa", notify("conf.test.", a, EDNS), Via::Udp);

    // Zone transfers over UDP and TCP.
    add(
        "transfers",
        "axfr tcp",
        wire("conf.test.", RecordType::AXFR, inet, EDNS),
        Via::Tcp,
    );
    add(
        "transfers",
        "axfr tcp not a zone",
        wire("www.conf.test.", RecordType::AXFR, inet, EDNS),
        Via::Tcp,
    );
    add(
        "transfers",
        "axfr tcp elsewhere",
        wire("elsewhere.test.", RecordType::AXFR, inet, PLAIN),
        Via::Tcp,
    );
    add("transfers", "ixfr udp current", ixfr(2026112601, EDNS), Via::Udp);
    add("transfers", "ixfr udp behind", ixfr(2026112600, DO), Via::Udp);
    add("transfers", "ixfr tcp current", ixfr(2026112601, PLAIN), Via::Tcp);
    add("transfers", "ixfr tcp behind", ixfr(2026112600, EDNS), Via::Tcp);

    // QCLASS ANY is answered from the IN data, for every kind of name.
    for name in names() {
        for rtype in [
            a,
            RecordType::MX,
            t,
            RecordType::SOA,
            RecordType::NS,
            RecordType::DS,
            RecordType::ANY,
        ] {
            add(
                "qclass any",
                &format!("{name} {rtype} ANY"),
                wire(&name, rtype, any, EDNS),
                Via::Udp,
            );
        }
    }

    // Meta and obsolete types, at the apex, at a name, at nothing, at and below a cut.
    let at = [
        "conf.test.",
        "www.conf.test.",
        "nope.conf.test.",
        "x.wild.conf.test.",
        "sub.conf.test.",
        "x.sub.conf.test.",
    ];
    for name in at {
        for rtype in [0u16, 253, 254, 250, 249, 41, 46, 47, 128, 65535] {
            add(
                "meta types",
                &format!("{name} TYPE{rtype}"),
                wire(name, rtype, inet, EDNS),
                Via::Udp,
            );
        }
    }

    // Odd headers: flags a query should not set, no question, two questions, two OPTs.
    let www = wire("www.conf.test.", a, inet, EDNS);
    for (label, hi, lo) in [
        ("rd clear", 0x00, 0x00),
        ("tc set", 0x02, 0x00),
        ("aa set", 0x04, 0x00),
        ("z set", 0x00, 0x40),
        ("ad set", 0x00, 0x20),
        ("cd set", 0x00, 0x10),
    ] {
        let mut w = www.clone();
        w[2] &= !0x01;
        add("header", label, with_bits(w, hi, lo), Via::Udp);
    }
    let bare = wire("www.conf.test.", a, inet, PLAIN);
    let mut none = bare[..12].to_vec();
    none[5] = 0;
    add("header", "no question", none, Via::Udp);
    let mut two = bare.clone();
    two[5] = 2;
    two.extend_from_slice(&bare[12..]);
    add("header", "two questions", two, Via::Udp);
    let mut opts = www.clone();
    opts[11] = 2;
    opts.extend_from_slice(&www[www.len() - 11..]);
    add("header", "two opt records", opts, Via::Udp);

    // Bytes after the last record: FORMERR.
    let mut junk = bare.clone();
    junk.extend_from_slice(&[0, 0, 0]);
    add("trailing bytes", "trailing bytes", junk.clone(), Via::Udp);
    add("trailing bytes", "trailing bytes tcp", junk, Via::Tcp);
    let mut junk = www.clone();
    junk.extend_from_slice(&[0, 0, 0]);
    add("trailing bytes", "trailing bytes after the opt", junk, Via::Udp);

    // RFC 4892 identity (configured on both) and version (off on both); other CH questions.
    for (label, name, rtype) in [
        ("id.server", "id.server.", t),
        ("hostname.bind", "hostname.bind.", t),
        ("id.server in capitals", "ID.SERVER.", t),
        ("version.bind", "version.bind.", t),
        ("version.server", "version.server.", t),
        ("authors.bind", "authors.bind.", t),
        ("id.server a", "id.server.", a),
        ("id.server any", "id.server.", RecordType::ANY),
        ("a zone's name in ch", "www.conf.test.", a),
    ] {
        add("identity", label, wire(name, rtype, ch, EDNS), Via::Udp);
        add(
            "identity",
            &format!("{label} tcp"),
            wire(name, rtype, ch, PLAIN),
            Via::Tcp,
        );
    }
    add("identity", "id.server in", wire("id.server.", t, inet, EDNS), Via::Udp);

    // NSID on every kind of response to a query that asks, and only then.
    for (label, w) in [
        ("nsid positive", wire("www.conf.test.", a, inet, NSID)),
        ("nsid nxdomain", wire("nope.conf.test.", a, inet, NSID)),
        ("nsid refused", wire("www.elsewhere.test.", a, inet, NSID)),
        ("nsid notimp", status(NSID)),
        ("nsid identity", wire("id.server.", t, ch, NSID)),
        ("nsid axfr udp", wire("conf.test.", RecordType::AXFR, inet, NSID)),
        ("nsid notify", notify("conf.test.", RecordType::SOA, NSID)),
        ("nsid not asked", wire("www.conf.test.", a, inet, DO)),
    ] {
        add("nsid", label, w, Via::Udp);
    }
    add("nsid", "nsid tcp", wire("www.conf.test.", a, inet, NSID), Via::Tcp);

    // Transfers from an address that may not transfer.
    for (label, w, via) in [
        (
            "axfr tcp refused",
            wire("conf.test.", RecordType::AXFR, inet, EDNS),
            Via::Tcp,
        ),
        ("ixfr udp refused", ixfr(2026112600, EDNS), Via::Udp),
    ] {
        out.push(Case {
            category: "transfers",
            label: label.into(),
            wire: w,
            via,
            from: "127.0.0.2",
        });
    }
    out
}

/// Sends `wire` from `from` and returns the response with the same ID, if one comes.
async fn ask(to: SocketAddr, case: &Case) -> Option<Vec<u8>> {
    let wait = Duration::from_millis(800);
    match case.via {
        Via::Udp => {
            let sock = tokio::net::UdpSocket::bind(format!("{}:0", case.from)).await.unwrap();
            sock.send_to(&case.wire, to).await.unwrap();
            let mut buf = vec![0u8; 65_535];
            let deadline = tokio::time::Instant::now() + wait;
            loop {
                match tokio::time::timeout_at(deadline, sock.recv_from(&mut buf)).await {
                    Ok(Ok((n, src))) if src == to && n >= 2 && buf[..2] == case.wire[..2] => {
                        return Some(buf[..n].to_vec());
                    }
                    Ok(Ok(_)) => continue,
                    _ => return None,
                }
            }
        }
        Via::Tcp => {
            let mut s = connect_from(case.from, to).await;
            s.write_all(&(case.wire.len() as u16).to_be_bytes()).await.unwrap();
            s.write_all(&case.wire).await.unwrap();
            let read = async {
                let mut len = [0u8; 2];
                s.read_exact(&mut len).await.ok()?;
                let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
                s.read_exact(&mut buf).await.ok()?;
                Some(buf)
            };
            tokio::time::timeout(wait, read).await.ok().flatten()
        }
    }
}

/// A response as compared: one line per part; `mask` blanks the part a known difference is in.
fn describe(response: Option<&[u8]>, mask: Option<Field>) -> String {
    if mask == Some(Field::Answered) {
        return "answered or not".into();
    }
    let Some(raw) = response else {
        return "no answer".into();
    };
    let Ok(m) = Message::from_vec(raw) else {
        return format!("unparsable {:02x?}", &raw[..raw.len().min(12)]);
    };
    let h = &m.metadata;
    let section = |rs: &[Record]| {
        let mut v: Vec<String> = rs
            .iter()
            .filter(|r| r.record_type() != RecordType::OPT)
            .map(|r| r.to_string().to_lowercase())
            .collect();
        v.sort();
        v
    };
    let opt = match &m.edns {
        _ if mask == Some(Field::Opt) => "opt masked".to_string(),
        None => "no opt".to_string(),
        Some(e) => format!(
            "opt v{} do={} size={} options={:?}",
            e.version(),
            e.flags().dnssec_ok,
            e.max_payload(),
            e.options().as_ref()
        ),
    };
    format!(
        "{:?} rcode={} aa={} tc={} rd={}\nquestion={:?}\n{opt}\nanswer={:#?}\nauthority={:#?}\nadditional={:#?}",
        h.op_code,
        if mask == Some(Field::Rcode) {
            "masked".to_string()
        } else {
            h.response_code.to_string()
        },
        if mask == Some(Field::Aa) {
            "masked".to_string()
        } else {
            h.authoritative.to_string()
        },
        h.truncation,
        h.recursion_desired,
        m.queries
            .iter()
            .map(|q| q.to_string().to_lowercase())
            .collect::<Vec<_>>(),
        section(&m.answers),
        section(&m.authorities),
        section(&m.additionals)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_protocol_edges_are_answered_as_knot_answers_them_but_for_the_documented_differences() {
    if knotd().is_none() {
        return;
    }
    let (app, knot) = serve_both(
        |c, _| {
            c.dns.allow_transfer = vec!["127.0.0.1".into()];
            c.dns.identity = "conf-ns".into();
            c.dns.nsid = "conf-ns".into();
        },
        "    identity: conf-ns\n    version: \"\"\n    nsid: conf-ns\n",
        "acl:\n  - id: local\n    address: 127.0.0.1\n    action: [transfer, notify]\n",
    )
    .await;
    let mut per_category = std::collections::BTreeMap::<&str, usize>::new();
    let mut differences = Vec::new();
    let mut seen_known = Vec::new();
    for case in cases() {
        let (ours, theirs) = (ask(app.dns_addr(), &case).await, ask(knot.addr, &case).await);
        *per_category.entry(case.category).or_default() += 1;
        let known = KNOWN.iter().find(|(label, _, _)| *label == case.label);
        let (a, b) = (describe(ours.as_deref(), None), describe(theirs.as_deref(), None));
        match known {
            None if a != b => differences.push(format!(
                "[{}] {} ({:?} from {})\n--- ipx\n{a}\n--- knot\n{b}",
                case.category, case.label, case.via, case.from
            )),
            None => {}
            Some(&(label, field, rfc)) => {
                let masked = (
                    describe(ours.as_deref(), Some(field)),
                    describe(theirs.as_deref(), Some(field)),
                );
                if masked.0 != masked.1 {
                    differences.push(format!(
                        "[{}] {label}: more than the {field:?} differs\n--- ipx\n{}\n--- knot\n{}",
                        case.category, masked.0, masked.1
                    ));
                } else if a == b {
                    differences.push(format!(
                        "[{}] {label}: the known difference in {field:?} ({rfc}) is gone: take it out of KNOWN and docs/dns.md",
                        case.category
                    ));
                }
                seen_known.push(label);
            }
        }
    }
    eprintln!("edge cases compared per category: {per_category:?}");
    assert!(
        differences.is_empty(),
        "{} differences from Knot:\n{}",
        differences.len(),
        differences.join("\n\n")
    );
    for (label, _, _) in KNOWN {
        assert!(seen_known.contains(label), "no case {label:?}");
    }
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/dns.md")).unwrap();
    for (label, _, rfc) in KNOWN {
        assert!(doc.contains(rfc), "docs/dns.md does not name {rfc} ({label})");
    }
}
