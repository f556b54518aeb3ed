//! Differential test: the same zone served by ipx and by Knot, thousands of generated
//! questions over UDP and TCP, with and without EDNS, and the answers compared (rcode, AA,
//! TC, and each section as a set), with no difference allowed. The protocol's edges are
//! compared in `edges`.

mod edges;
mod signed;

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

use crate::helpers::{TestApp, query, query_over, spawn_app_with, udp_query};
use crate::interop::{Daemon, free_port, knotd, spawn_knot, summary};

const ZONE: &str = "$ORIGIN conf.test.
$TTL 3600
@          IN SOA   ns1.conf.test. hostmaster.conf.test. 2026112601 7200 3600 1209600 300
@          IN NS    ns1.conf.test.
@          IN NS    ns2.elsewhere.example.
@          IN A     192.0.2.1
@          IN AAAA  2001:db8::1
@          IN MX    10 mail.conf.test.
@          IN MX    20 mx.elsewhere.example.
@          IN TXT   \"v=spf1 mx -all\"
@          IN TXT   \"two\" \"strings\"
@          IN CAA   0 issue \"letsencrypt.org\"
ns1        IN A     192.0.2.53
mail       IN A     192.0.2.25
mail       IN AAAA  2001:db8::25
www        IN CNAME @
web        IN CNAME www
ext        IN CNAME www.elsewhere.example.
dangling   IN CNAME nothing
_sip._tcp  IN SRV   10 60 5060 sip.conf.test.
_sip._tcp  IN SRV   20 0 5060 sip2.elsewhere.example.
sip        IN A     192.0.2.60
a.b.c      IN A     192.0.2.3
*.wild     IN A     192.0.2.4
*.wild     IN TXT   \"wild\"
*.wcname   IN CNAME mail
sub        IN NS    ns.sub
sub        IN NS    ns.elsewhere.example.
sub        IN DS    12345 8 2 49FD46E6C4B45C55D4AC69CBD3CD34AC1AFE51DE0F8F8E8D8E8E8E8E8E8E8E8E
ns.sub     IN A     192.0.2.54
other      IN NS    ns.elsewhere.example.
";

/// A name whose TXT set is larger than 512 octets: truncation is compared too.
pub(crate) fn zone() -> String {
    let mut z = ZONE.to_string();
    for i in 0..12 {
        z += &format!("big IN TXT \"{i:02} {}\"\n", "x".repeat(50));
    }
    z
}

/// Answers are compared whole, truncated ones too: when an answer does not fit a UDP
/// response, ipx sends what Knot sends (TC, the question, OPT, no records).
fn comparable(m: &Message) -> String {
    summary(m)
}

pub(crate) fn names() -> Vec<String> {
    let owners = [
        "",
        "ns1",
        "mail",
        "www",
        "web",
        "ext",
        "dangling",
        "_sip._tcp",
        "_tcp",
        "sip",
        "a.b.c",
        "b.c",
        "c",
        "wild",
        "x.wild",
        "y.x.wild",
        "*.wild",
        "wcname",
        "q.wcname",
        "sub",
        "x.sub",
        "ns.sub",
        "other",
        "deep.other",
        "nope",
        "nope.nope",
        "WWW",
        "Mail",
        "big",
    ];
    // And generated names under every kind of node: wildcards, the cut, ENTs, nothing.
    let generated = (0..6).flat_map(|i| {
        [
            format!("g{i}.wild"),
            format!("g{i}.sub"),
            format!("g{i}.nope"),
            format!("g{i}.a.b.c"),
            format!("g{i}.b.c"),
            format!("g{i}.x.wcname"),
        ]
    });
    owners
        .iter()
        .map(|o| o.to_string())
        .chain(generated)
        .map(|o| {
            if o.is_empty() {
                "conf.test.".to_string()
            } else {
                format!("{o}.conf.test.")
            }
        })
        .collect()
}

pub(crate) const TYPES: &[RecordType] = &[
    RecordType::A,
    RecordType::AAAA,
    RecordType::MX,
    RecordType::TXT,
    RecordType::CNAME,
    RecordType::NS,
    RecordType::SOA,
    RecordType::SRV,
    RecordType::CAA,
    RecordType::DS,
    RecordType::PTR,
    RecordType::ANY,
];

/// ipx (configured by `tweak`) and Knot (its `server:` lines, and `acl` lines for the zone)
/// serving the conformance zone, both answering.
pub(crate) async fn serve_both(
    tweak: impl FnOnce(&mut ipx::config::Config, &std::path::Path),
    knot_server: &str,
    knot_acl: &str,
) -> (TestApp, Daemon) {
    let app = spawn_app_with(tweak).await;
    app.team("acme", &[]).await;
    let zone = zone();
    app.operator(ipx::admin::Command::Zone(ipx::admin::ZoneCmd::Import {
        file: std::path::PathBuf::new(),
        team: "acme".into(),
        text: Some(zone.clone()),
    }))
    .await
    .unwrap();
    let kdir = app.dir().join("knot");
    std::fs::create_dir_all(&kdir).unwrap();
    let file = kdir.join("conf.test.zone");
    std::fs::write(&file, &zone).unwrap();
    let rest = format!(
        "{knot_acl}zone:\n  - domain: conf.test.\n    file: {}\n{}",
        file.display(),
        if knot_acl.is_empty() { "" } else { "    acl: local\n" }
    );
    let knot = spawn_knot(&kdir, free_port(), knot_server, &rest);
    for _ in 0..200 {
        if tokio::time::timeout(
            std::time::Duration::from_millis(200),
            udp_query(knot.addr, &query("conf.test.", RecordType::SOA, false)),
        )
        .await
        .is_ok_and(|m| !m.answers.is_empty())
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    (app, knot)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipx_answers_what_knot_answers_for_the_same_zone() {
    if knotd().is_none() {
        return;
    }
    let (app, knot) = serve_both(|_, _| {}, "", "").await;
    let mut compared = 0;
    let mut differences = Vec::new();
    for name in names() {
        for &t in TYPES {
            for edns in [false, true] {
                for tcp in [false, true] {
                    let q = query(&name, t, edns);
                    let (ours, theirs) = (
                        query_over(tcp, app.dns_addr(), &q).await,
                        query_over(tcp, knot.addr, &q).await,
                    );
                    let (a, b) = (comparable(&ours), comparable(&theirs));
                    compared += 1;
                    if a != b {
                        differences.push(format!("{name} {t} edns={edns} tcp={tcp}\n--- ipx\n{a}\n--- knot\n{b}"));
                    }
                }
            }
        }
    }
    assert!(compared > 3000, "{compared} questions");
    assert!(
        differences.is_empty(),
        "{} of {compared} answers differ:\n{}",
        differences.len(),
        differences.iter().take(6).cloned().collect::<Vec<_>>().join("\n\n")
    );
}
