//! The same zone signed by ipx and by Knot with the same key (NSEC3 as RFC 9276 has it):
//! every signed answer compared, proofs included, but for what differs by nature (signature
//! values and validity, the serial).

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

use super::{TYPES, names, zone};
use crate::helpers::{query, query_over, spawn_app, udp_query};
use crate::interop::{Daemon, free_port, knotd, start_knot_conf};

/// A signed answer as compared: each record as text, RRSIGs without their validity and
/// signature (ECDSA signatures differ every time), the SOA without its serial, and no TTL
/// on the CDS/CDNSKEY sets or their signatures (Knot publishes them with TTL 0, ipx with the
/// DNSKEY's).
fn comparable_signed(m: &Message) -> String {
    use hickory_proto::dnssec::rdata::DNSSECRData;
    use hickory_proto::rr::RData;
    let show = |rs: &[hickory_proto::rr::Record]| {
        let mut v: Vec<String> = rs
            .iter()
            .filter(|r| r.record_type() != RecordType::OPT)
            .map(|r| {
                let ttl = match &r.data {
                    RData::DNSSEC(DNSSECRData::CDS(_) | DNSSECRData::CDNSKEY(_)) => 0,
                    RData::DNSSEC(DNSSECRData::RRSIG(s))
                        if matches!(s.input().type_covered, RecordType::CDS | RecordType::CDNSKEY) =>
                    {
                        0
                    }
                    _ => r.ttl,
                };
                let data = match &r.data {
                    RData::DNSSEC(DNSSECRData::RRSIG(s)) => {
                        let i = s.input();
                        let original = if ttl == 0 { 0 } else { i.original_ttl };
                        format!(
                            "RRSIG {} {} {} {original} {} {}",
                            i.type_covered,
                            u8::from(i.algorithm),
                            i.num_labels,
                            i.key_tag,
                            i.signer_name
                        )
                    }
                    RData::SOA(s) => format!("SOA {} {} <serial>", s.mname, s.rname),
                    other => format!("{} {other}", r.record_type()),
                };
                format!("{} {ttl} {data}", r.name).to_lowercase()
            })
            .collect();
        v.sort();
        v
    };
    format!(
        "rcode={} aa={} tc={}\nanswer={:#?}\nauthority={:#?}\nadditional={:#?}",
        m.metadata.response_code,
        m.metadata.authoritative,
        m.metadata.truncation,
        show(&m.answers),
        show(&m.authorities),
        show(&m.additionals)
    )
}

/// Knot signing `zone` (NSEC3 as RFC 9276 has it, CDS/CDNSKEY always) with the key in the
/// PEM file `key`.
fn start_knot_signing(dir: &std::path::Path, port: u16, zone: &str, key: &std::path::Path) -> Daemon {
    let kdir = dir.join("knot-signing");
    std::fs::create_dir_all(&kdir).unwrap();
    let file = kdir.join("conf.test.zone");
    std::fs::write(&file, zone).unwrap();
    let conf = format!(
        "server:\n    listen: 127.0.0.1@{port}\n    rundir: {d}\n    udp-workers: 1\n    tcp-workers: 1\n    background-workers: 1\n\
         database:\n    storage: {d}\nlog:\n  - target: stderr\n    any: info\n\
         policy:\n  - id: csk\n    algorithm: ecdsap256sha256\n    single-type-signing: on\n    manual: on\n    nsec3: on\n    nsec3-iterations: 0\n    nsec3-salt-length: 0\n    nsec3-opt-out: off\n    cds-cdnskey-publish: always\n    cds-digest-type: sha256\n\
         zone:\n  - domain: conf.test.\n    file: {f}\n    zonefile-sync: -1\n    zonefile-load: whole\n    journal-content: none\n    dnssec-signing: on\n    dnssec-policy: csk\n",
        d = kdir.display(),
        f = file.display()
    );
    let path = kdir.join("knot.conf");
    std::fs::write(&path, conf).unwrap();
    let keymgr = crate::clients::tool("keymgr", "apt-get install knot-dnssecutils");
    let out = std::process::Command::new(keymgr)
        .arg("-c")
        .arg(&path)
        .args(["conf.test.", "import-pem"])
        .arg(key)
        .args(["ksk=yes", "zsk=yes"])
        .output()
        .unwrap();
    assert!(out.status.success(), "keymgr: {}", String::from_utf8_lossy(&out.stderr));
    start_knot_conf(&path, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipx_signs_what_knot_signs_for_the_same_zone_and_key() {
    knotd().expect("knot is installed (apt-get install knot)");
    let app = spawn_app().await;
    app.team("acme", &[]).await;
    let zone = zone();
    app.operator(ipx::admin::Command::Zone(ipx::admin::ZoneCmd::Import {
        file: std::path::PathBuf::new(),
        team: "acme".into(),
        text: Some(zone.clone()),
    }))
    .await
    .unwrap();
    let signed = ipx::admin::DnssecCmd::Enable {
        zone: "conf.test".into(),
    };
    app.operator(ipx::admin::Command::Zone(ipx::admin::ZoneCmd::Dnssec(signed)))
        .await
        .unwrap();
    // The zone's own key, opened as the server opens it, handed to Knot as PEM.
    let running = app.running.as_ref().unwrap();
    let name = ipx::domain::DomainName::parse("conf.test").unwrap();
    let keys = running
        .store
        .read_blocking(|r| {
            let z = r.zone_by_name(&name)?.unwrap();
            r.dnssec_keys(z.id)
        })
        .unwrap();
    let pkcs8 = running
        .sealer
        .open(&ipx::domain::dnssec_key_context(keys[0].id), &keys[0].private)
        .unwrap();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        data_encoding::BASE64.encode(pkcs8.expose())
    );
    let key_file = app.dir().join("csk.pem");
    std::fs::write(&key_file, pem).unwrap();
    let knot = start_knot_signing(app.dir(), free_port(), &zone, &key_file);
    let mut ready = false;
    for _ in 0..200 {
        let mut q = query("conf.test.", RecordType::SOA, true);
        q.edns.as_mut().unwrap().set_dnssec_ok(true);
        if let Ok(m) = tokio::time::timeout(std::time::Duration::from_millis(200), udp_query(knot.addr, &q)).await
            && m.answers.len() == 2
        {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        ready,
        "knot signed the zone: {}",
        std::fs::read_to_string(&knot.log).unwrap_or_default()
    );
    let mut compared = 0;
    let mut differences = Vec::new();
    let types = TYPES
        .iter()
        .copied()
        .chain([RecordType::DNSKEY, RecordType::CDS, RecordType::NSEC3PARAM]);
    for name in names() {
        for t in types.clone() {
            for tcp in [false, true] {
                let mut q = query(&name, t, true);
                q.edns.as_mut().unwrap().set_dnssec_ok(true);
                let (ours, theirs) = (
                    query_over(tcp, app.dns_addr(), &q).await,
                    query_over(tcp, knot.addr, &q).await,
                );
                let (a, b) = (comparable_signed(&ours), comparable_signed(&theirs));
                compared += 1;
                if a != b {
                    differences.push(format!("{name} {t} tcp={tcp}\n--- ipx\n{a}\n--- knot\n{b}"));
                }
            }
        }
    }
    assert!(compared > 1500, "{compared} questions");
    assert!(
        differences.is_empty(),
        "{} of {compared} signed answers differ:\n{}",
        differences.len(),
        differences.iter().take(6).cloned().collect::<Vec<_>>().join("\n\n")
    );
}
