//! The DNS hot path (query bytes in, answer bytes out, as `Handler::answer` does it) and the cost of one edit in zones
//! of growing size. Run: `cargo bench --bench dns`.

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use hickory_server::net::xfer::Protocol;
use ipx::dns::{Handler, Zones};
use ipx::domain::{DomainName, Record as Row, Soa, Timestamp, Zone, parse_rdata};
use ipx::store::Change;
use uuid::Uuid;

fn zone_row(name: &DomainName) -> Zone {
    Zone {
        id: Uuid::now_v7(),
        team_id: Uuid::nil(),
        name: name.clone(),
        serial: 1,
        soa: Soa {
            mname: "ns1.ipx.test.".into(),
            rname: "h.ipx.test.".into(),
            refresh: 1,
            retry: 1,
            expire: 1,
            minimum: 300,
            ttl: 3600,
        },
        nameservers: vec![],
        record_count: 0,
        created_at: Timestamp::from_unix(0),
        updated_at: Timestamp::from_unix(0),
        catalog: false,
        dnssec: None,
    }
}

fn row(zone: &Zone, name: &str, t: &str, content: &str) -> Row {
    let t: RecordType = t.parse().unwrap();
    let data = parse_rdata(t, content, &zone.name).unwrap();
    Row {
        id: Uuid::now_v7(),
        zone_id: zone.id,
        name: DomainName::resolve_in(name, &zone.name).unwrap(),
        rtype: t,
        content: data.content,
        ttl: 300,
        managed: false,
        site_id: None,
        rdata: data.wire,
        created_at: Timestamp::from_unix(0),
        updated_at: Timestamp::from_unix(0),
    }
}

/// A zone of `n` names with an A each, a few MX/CNAME/TXT, and a wildcard.
fn build(n: usize) -> (Zones, Zone, Vec<Row>) {
    let zone = zone_row(&DomainName::parse_zone("bench.test").unwrap());
    let mut rows = vec![
        row(&zone, "@", "NS", "ns1.ipx.test."),
        row(&zone, "@", "MX", "10 mail"),
        row(&zone, "mail", "A", "192.0.2.25"),
    ];
    for i in 0..n {
        rows.push(row(
            &zone,
            &format!("host{i}"),
            "A",
            &format!("10.{}.{}.{}", i >> 16 & 255, i >> 8 & 255, i & 255),
        ));
    }
    rows.push(row(&zone, "www", "CNAME", "host1"));
    rows.push(row(&zone, "*.wild", "A", "192.0.2.9"));
    let zones = Zones::default();
    zones.rebuild(vec![(zone.clone(), rows.clone())]);
    (zones, zone, rows)
}

fn wire(name: &str, t: RecordType) -> Vec<u8> {
    let mut m = Message::new(4242, MessageType::Query, OpCode::Query);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
    let mut e = Edns::new();
    e.set_max_payload(1232);
    m.set_edns(e);
    m.to_vec().unwrap()
}

fn answer_path(c: &mut Criterion) {
    let (zones, _, _) = build(10_000);
    let handler = Handler::new(Arc::new(zones), 1232);
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let src: SocketAddr = "127.0.0.1:5300".parse().unwrap();
    let mut group = c.benchmark_group("answer");
    for (label, name, t) in [
        ("a_hit", "host4242.bench.test.", RecordType::A),
        ("nxdomain", "nope4242.bench.test.", RecordType::A),
        ("nodata", "host4242.bench.test.", RecordType::AAAA),
        ("cname_chain", "www.bench.test.", RecordType::A),
        ("mx_additional", "bench.test.", RecordType::MX),
        ("wildcard", "x.wild.bench.test.", RecordType::A),
        ("refused", "other.example.", RecordType::A),
    ] {
        let q = wire(name, t);
        group.bench_function(label, |b| {
            b.iter(|| rt.block_on(handler.answer(black_box(q.clone()), src, Protocol::Udp)))
        });
    }
    group.finish();
}

fn one_edit(c: &mut Criterion) {
    let mut group = c.benchmark_group("edit_one_record");
    for n in [1_000usize, 100_000] {
        let (zones, zone, rows) = build(n);
        let old = rows[n / 2].clone();
        let mut new = old.clone();
        let mut flip = false;
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                flip = !flip;
                new.content = if flip {
                    "192.0.2.200".into()
                } else {
                    old.content.clone()
                };
                let changes = [
                    Change::ZonePut(Box::new(zone.clone())),
                    Change::RecordPut {
                        old: Some(Box::new(old.clone())),
                        new: new.clone(),
                    },
                ];
                zones.apply(black_box(&changes));
            })
        });
    }
    group.finish();
}

/// A `Zones` whose `bench.test` of `n` names is signed whole (NSEC3); returns how long the
/// signing took, and what `build` returns.
fn signed(n: usize) -> (std::time::Duration, Zones, Zone, Vec<Row>) {
    let (plain, mut zone, rows) = build(n);
    let sealer = ipx::seal::Sealer::ephemeral();
    let key = ipx::dnssec::new_key(ipx::domain::Algorithm::EcdsaP256Sha256, zone.id, &sealer);
    let zones = Zones::new(Some(Arc::new(sealer)), ipx::dnssec::Policy::default());
    zones.rebuild(vec![(zone.clone(), rows.clone())]);
    drop(plain);
    zone.serial += 1;
    zone.dnssec = Some(ipx::domain::ZoneDnssec {
        state: ipx::domain::ZoneState::Signed,
        denial: ipx::domain::Denial::Nsec3,
        rollover: None,
        since: Timestamp::from_unix(0),
        unsign_at: None,
    });
    let started = std::time::Instant::now();
    zones.apply(&[Change::DnssecKeyPut(key), Change::ZonePut(Box::new(zone.clone()))]);
    (started.elapsed(), zones, zone, rows)
}

fn signing(c: &mut Criterion) {
    let mut group = c.benchmark_group("sign");
    group.sample_size(10);
    for n in [1_000usize, 100_000] {
        group.bench_with_input(BenchmarkId::new("whole_zone", n), &n, |b, &n| {
            b.iter_custom(|iters| (0..iters).map(|_| signed(n).0).sum())
        });
    }
    group.finish();
    let mut group = c.benchmark_group("edit_one_record_signed");
    for n in [1_000usize, 100_000] {
        let (_, zones, mut zone, rows) = signed(n);
        let old = rows[n / 2].clone();
        let mut new = old.clone();
        let mut flip = false;
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                flip = !flip;
                zone.serial += 1;
                new.content = if flip {
                    "192.0.2.200".into()
                } else {
                    old.content.clone()
                };
                let (from, to) = if flip { (&old, &new) } else { (&new, &old) };
                let changes = [
                    Change::ZonePut(Box::new(zone.clone())),
                    Change::RecordPut {
                        old: Some(Box::new(from.clone())),
                        new: to.clone(),
                    },
                ];
                zones.apply(black_box(&changes));
            })
        });
    }
    group.finish();
    let (_, zones, _, _) = signed(10_000);
    let handler = Handler::new(Arc::new(zones), 1232);
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let src: SocketAddr = "127.0.0.1:5300".parse().unwrap();
    let mut group = c.benchmark_group("answer_signed");
    for (label, name, t) in [
        ("a_hit", "host4242.bench.test.", RecordType::A),
        ("nxdomain", "nope4242.bench.test.", RecordType::A),
        ("nodata", "host4242.bench.test.", RecordType::AAAA),
        ("wildcard", "x.wild.bench.test.", RecordType::A),
    ] {
        for dnssec_ok in [false, true] {
            let mut m = Message::from_vec(&wire(name, t)).unwrap();
            if let Some(e) = m.edns.as_mut() {
                e.set_dnssec_ok(dnssec_ok);
            }
            let q = m.to_vec().unwrap();
            let label = format!("{label}{}", if dnssec_ok { "_do" } else { "" });
            group.bench_function(label, |b| {
                b.iter(|| rt.block_on(handler.answer(black_box(q.clone()), src, Protocol::Udp)))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, answer_path, one_edit, signing);
criterion_main!(benches);
