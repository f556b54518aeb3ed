//! RFC 2136 UPDATE signed with a team's TSIG key, spoken byte for byte (hickory builds and
//! signs the messages): TSIG errors as RFC 8945 wants them, every rcode, the key's policy,
//! the API's rules and caps, one transaction per message, replays and floods.

use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::tsig::{TsigAlgorithm, TsigError};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType, TSigner};
use serde_json::json;

use crate::helpers::{Resp, TestApp, answers, spawn_app, spawn_app_with, tcp_query, udp_raw};
use crate::tsig_keys::{make_key, whole};

/// A team's key as the create response gave it.
#[derive(Clone, Debug)]
pub struct Key {
    pub id: String,
    pub name: String,
    pub secret: String,
    pub algorithm: String,
}

impl Key {
    pub fn from_created(r: &Resp) -> Self {
        let d = r.data();
        let text = |f: &str| d[f].as_str().unwrap().to_string();
        Self {
            id: text("id"),
            name: text("name"),
            secret: text("secret"),
            algorithm: text("algorithm"),
        }
    }

    fn signer(&self) -> TSigner {
        let algorithm = match self.algorithm.as_str() {
            "hmac-sha384" => TsigAlgorithm::HmacSha384,
            "hmac-sha512" => TsigAlgorithm::HmacSha512,
            _ => TsigAlgorithm::HmacSha256,
        };
        let secret = data_encoding::BASE64.decode(self.secret.as_bytes()).unwrap();
        TSigner::new(secret, algorithm, Name::from_ascii(&self.name).unwrap(), 300).unwrap()
    }

    /// `m` signed now.
    pub fn sign(&self, m: Message) -> Message {
        self.sign_at(m, now())
    }

    /// `m` signed as if at `time` (Unix seconds).
    pub fn sign_at(&self, mut m: Message, time: u64) -> Message {
        let (sig, _) = self.signer().sign_message(&m, time).unwrap();
        m.signature = Some(sig);
        m
    }

    /// Checks that `raw` is a response signed with this key to the request `m`.
    pub fn verify(&self, m: &Message, raw: &[u8]) {
        let mac = &m.signature.as_ref().unwrap().data.mac;
        self.signer()
            .verify_message_byte(raw, Some(mac), true)
            .expect("the response is signed with the request's key");
    }
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An UPDATE to `zone` with nothing in it yet.
pub fn update_to(zone: &str) -> Message {
    let mut m = Message::new(rand_id(), MessageType::Query, OpCode::Update);
    m.add_query(Query::query(Name::from_ascii(zone).unwrap(), RecordType::SOA));
    m
}

fn rand_id() -> u16 {
    let mut b = [0u8; 2];
    getrandom::fill(&mut b).unwrap();
    u16::from_ne_bytes(b)
}

fn rr(name: &str, class: DNSClass, ttl: u32, data: RData) -> Record {
    let mut r = Record::from_rdata(Name::from_ascii(name).unwrap(), ttl, data);
    r.dns_class = class;
    r
}

fn txt(text: &str) -> RData {
    RData::TXT(hickory_proto::rr::rdata::TXT::new(vec![text.to_string()]))
}

fn a(ip: &str) -> RData {
    RData::A(ip.parse().unwrap())
}

pub fn add_txt(m: &mut Message, name: &str, text: &str) {
    m.authorities.push(rr(name, DNSClass::IN, 300, txt(text)));
}

pub fn add(m: &mut Message, name: &str, ttl: u32, data: RData) {
    m.authorities.push(rr(name, DNSClass::IN, ttl, data));
}

pub fn delete_rrset(m: &mut Message, name: &str, t: RecordType) {
    m.authorities.push(rr(name, DNSClass::ANY, 0, RData::Update0(t)));
}

pub fn delete_record(m: &mut Message, name: &str, data: RData) {
    m.authorities.push(rr(name, DNSClass::NONE, 0, data));
}

pub fn prerequisite(m: &mut Message, name: &str, class: DNSClass, t: RecordType) {
    m.answers.push(rr(name, class, 0, RData::Update0(t)));
}

/// Sends `m` over UDP and reads the response (raw, and parsed).
pub async fn send_udp_raw(app: &TestApp, m: &Message) -> (Vec<u8>, Message) {
    let raw = udp_raw(app.dns_addr(), &m.to_vec().unwrap()).await.expect("an answer");
    let parsed = Message::from_vec(&raw).unwrap();
    (raw, parsed)
}

pub async fn send_tcp(app: &TestApp, m: &Message) -> Message {
    tcp_query(app.dns_addr(), m).await
}

async fn serial(app: &TestApp, zone: &str) -> u32 {
    let m = app.udp(zone, RecordType::SOA).await;
    match &m.answers[0].data {
        RData::SOA(s) => s.serial,
        other => panic!("{other:?}"),
    }
}

fn rcode(m: &Message) -> ResponseCode {
    m.metadata.response_code
}

/// The TSIG error and MAC length of a response.
fn tsig_of(m: &Message) -> (Option<TsigError>, usize) {
    let sig = m.signature.as_ref().expect("a TSIG record in the response");
    (sig.data.error, sig.data.mac.len())
}

/// An app with one team, a zone and a key for the whole zone.
async fn with_key(zone: &str) -> (TestApp, String, String, Key) {
    let app = spawn_app_with(|c, _| c.dns.allow_transfer = vec!["127.0.0.2".into()]).await;
    let token = app.team("acme", &[]).await;
    let zone_id = app.zone(&token, zone).await;
    let key = make_key(&app, &token, json!({ "name": "ci", "rules": whole(&zone_id) })).await;
    (app, token, zone_id, key)
}

#[tokio::test]
async fn an_update_over_udp_or_tcp_is_answered_once_dns_serves_it() {
    let (app, token, zone, key) = with_key("upd.test").await;
    let before = serial(&app, "upd.test.").await;
    let mut m = update_to("upd.test.");
    add(&mut m, "www.upd.test.", 300, a("192.0.2.1"));
    add(&mut m, "www.upd.test.", 300, a("192.0.2.2"));
    add_txt(&mut m, "www.upd.test.", "hello");
    let m = key.sign(m);
    let (raw, r) = send_udp_raw(&app, &m).await;
    assert_eq!(rcode(&r), ResponseCode::NoError);
    assert_eq!(
        (r.metadata.message_type, r.metadata.op_code),
        (MessageType::Response, OpCode::Update)
    );
    key.verify(&m, &raw);
    assert_eq!(
        answers(&app.udp("www.upd.test.", RecordType::A).await),
        ["www.upd.test. A 192.0.2.1", "www.upd.test. A 192.0.2.2"],
        "answered the moment the response came"
    );
    assert_eq!(
        serial(&app, "upd.test.").await,
        before.wrapping_add(1),
        "one serial for the message"
    );
    let records = app.get(&token, &format!("/v1/zones/{zone}/records")).await;
    assert_eq!(records.body["meta"]["pagination"]["total"], 6, "SOA, 2 NS, 2 A, 1 TXT");

    // Over TCP: replace the A RRset, delete the TXT record.
    let mut m = update_to("upd.test.");
    delete_rrset(&mut m, "www.upd.test.", RecordType::A);
    add(&mut m, "www.upd.test.", 60, a("192.0.2.9"));
    delete_record(&mut m, "www.upd.test.", txt("hello"));
    let r = send_tcp(&app, &key.sign(m)).await;
    assert_eq!(rcode(&r), ResponseCode::NoError);
    assert!(r.signature.is_some());
    assert_eq!(
        answers(&app.udp("www.upd.test.", RecordType::A).await),
        ["www.upd.test. A 192.0.2.9"]
    );
    assert!(app.udp("www.upd.test.", RecordType::TXT).await.answers.is_empty());
    assert_eq!(serial(&app, "upd.test.").await, before.wrapping_add(2));

    // One audit event per message, naming the key.
    let events = app.get(&token, "/v1/events").await;
    let updates: Vec<&serde_json::Value> = events
        .data()
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "zone.updated")
        .collect();
    assert_eq!(updates.len(), 2, "{}", events.body);
    assert_eq!(updates[0]["actor"]["kind"], "tsig_key");
    assert_eq!(updates[0]["actor"]["key_id"], key.id.as_str());
    assert!(updates[1]["summary"].as_str().unwrap().contains(&key.name));
}

#[tokio::test]
async fn one_update_is_one_journal_entry_for_ixfr() {
    let (app, _token, _zone, key) = with_key("ixfr.test").await;
    let before = serial(&app, "ixfr.test.").await;
    let mut m = update_to("ixfr.test.");
    for i in 0..3 {
        add(&mut m, &format!("h{i}.ixfr.test."), 300, a(&format!("192.0.2.{i}")));
    }
    assert_eq!(rcode(&send_tcp(&app, &key.sign(m)).await), ResponseCode::NoError);
    // IXFR from the old serial: SOA, one delta (SOA old, SOA new + 3 adds), SOA.
    let mut q = crate::helpers::query("ixfr.test.", RecordType::IXFR, false);
    let mut soa = app.udp("ixfr.test.", RecordType::SOA).await.answers[0].clone();
    if let RData::SOA(s) = &mut soa.data {
        s.serial = before;
    }
    q.authorities.push(soa);
    let r = crate::helpers::tcp_query_from("127.0.0.2", app.dns_addr(), &q).await;
    let soas: Vec<u32> = r
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::SOA(s) => Some(s.serial),
            _ => None,
        })
        .collect();
    assert_eq!(soas, [before + 1, before, before + 1, before + 1], "{r:?}");
    assert_eq!(r.answers.len(), 7);
}

#[tokio::test]
async fn tsig_errors_are_notauth_with_badkey_badsig_unsigned_and_badtime_signed() {
    let (app, _token, _zone, key) = with_key("err.test").await;
    let before = serial(&app, "err.test.").await;
    let change = || {
        let mut m = update_to("err.test.");
        add_txt(&mut m, "x.err.test.", "nope");
        m
    };
    // An unknown key: BADKEY, unsigned.
    let stranger = Key {
        name: "nobody.example.".into(),
        ..key.clone()
    };
    let (_, r) = send_udp_raw(&app, &stranger.sign(change())).await;
    assert_eq!(rcode(&r), ResponseCode::NotAuth);
    assert_eq!(tsig_of(&r), (Some(TsigError::BadKey), 0));
    // A wrong secret: BADSIG, unsigned.
    let forged = Key {
        secret: data_encoding::BASE64.encode(&[7u8; 32]),
        ..key.clone()
    };
    let (_, r) = send_udp_raw(&app, &forged.sign(change())).await;
    assert_eq!(
        (rcode(&r), tsig_of(&r)),
        (ResponseCode::NotAuth, (Some(TsigError::BadSig), 0))
    );
    // The right key under another algorithm is another key: BADKEY.
    let other_alg = Key {
        algorithm: "hmac-sha512".into(),
        ..key.clone()
    };
    let (_, r) = send_udp_raw(&app, &other_alg.sign(change())).await;
    assert_eq!(tsig_of(&r).0, Some(TsigError::BadKey));
    // Signed ten minutes ago: BADTIME, signed, with our time in Other Data.
    let old = key.sign_at(change(), now() - 600);
    let (raw, r) = send_udp_raw(&app, &old).await;
    assert_eq!(
        (rcode(&r), tsig_of(&r).0),
        (ResponseCode::NotAuth, Some(TsigError::BadTime))
    );
    key.verify(&old, &raw);
    let sig = &r.signature.as_ref().unwrap().data;
    assert_eq!(
        sig.time,
        now() - 600,
        "the request's time, so the client can check the MAC"
    );
    let ours = sig.other.iter().fold(0u64, |acc, b| acc << 8 | u64::from(*b));
    assert!(sig.other.len() == 6 && ours.abs_diff(now()) <= 2, "{:?}", sig.other);
    // A truncated MAC (a prefix of the right one): BADTRUNC, signed.
    let mut cut = key.sign(change());
    cut.signature.as_mut().unwrap().data.mac.truncate(16);
    let (_, r) = send_udp_raw(&app, &cut).await;
    assert_eq!(tsig_of(&r).0, Some(TsigError::BadTrunc));
    // A MAC too short to be one: FORMERR.
    let mut tiny = key.sign(change());
    tiny.signature.as_mut().unwrap().data.mac.truncate(4);
    let (_, r) = send_udp_raw(&app, &tiny).await;
    assert_eq!(rcode(&r), ResponseCode::FormErr);
    // Unsigned: REFUSED.
    let (_, r) = send_udp_raw(&app, &change()).await;
    assert_eq!(rcode(&r), ResponseCode::Refused);
    assert_eq!(serial(&app, "err.test.").await, before, "nothing changed");
    assert!(app.udp("x.err.test.", RecordType::TXT).await.answers.is_empty());
}

#[tokio::test]
async fn prerequisites_that_fail_answer_their_rcode_and_change_nothing() {
    let (app, _token, _zone, key) = with_key("pre.test").await;
    let mut m = update_to("pre.test.");
    add(&mut m, "www.pre.test.", 300, a("192.0.2.1"));
    assert_eq!(rcode(&send_tcp(&app, &key.sign(m)).await), ResponseCode::NoError);
    let before = serial(&app, "pre.test.").await;
    let cases = [
        ("nx.pre.test.", DNSClass::ANY, RecordType::ANY, ResponseCode::NXDomain),
        ("www.pre.test.", DNSClass::NONE, RecordType::ANY, ResponseCode::YXDomain),
        ("www.pre.test.", DNSClass::ANY, RecordType::TXT, ResponseCode::NXRRSet),
        ("www.pre.test.", DNSClass::NONE, RecordType::A, ResponseCode::YXRRSet),
    ];
    for (name, class, t, want) in cases {
        let mut m = update_to("pre.test.");
        prerequisite(&mut m, name, class, t);
        add_txt(&mut m, "changed.pre.test.", "no");
        assert_eq!(rcode(&send_tcp(&app, &key.sign(m)).await), want, "{name} {class} {t}");
    }
    // Value-dependent: the RRset must be exactly the given records.
    let mut m = update_to("pre.test.");
    m.answers.push(rr("www.pre.test.", DNSClass::IN, 0, a("192.0.2.2")));
    add_txt(&mut m, "changed.pre.test.", "no");
    assert_eq!(rcode(&send_tcp(&app, &key.sign(m)).await), ResponseCode::NXRRSet);
    assert_eq!(serial(&app, "pre.test.").await, before, "nothing changed");
    // Prerequisites that hold let the change through; the apex always has its SOA.
    let mut m = update_to("pre.test.");
    m.answers.push(rr("www.pre.test.", DNSClass::IN, 0, a("192.0.2.1")));
    prerequisite(&mut m, "pre.test.", DNSClass::ANY, RecordType::SOA);
    prerequisite(&mut m, "new.pre.test.", DNSClass::NONE, RecordType::ANY);
    add_txt(&mut m, "new.pre.test.", "yes");
    assert_eq!(rcode(&send_tcp(&app, &key.sign(m)).await), ResponseCode::NoError);
    assert_eq!(
        answers(&app.udp("new.pre.test.", RecordType::TXT).await),
        ["new.pre.test. TXT yes"]
    );
}

#[tokio::test]
async fn a_key_never_reaches_another_teams_zone_nor_learns_it_exists() {
    let app = spawn_app().await;
    let ours = app.team("ours", &[]).await;
    let theirs = app.team("theirs", &[]).await;
    let mine = app.zone(&ours, "mine.test").await;
    app.zone(&ours, "also-mine.test").await;
    app.zone(&theirs, "theirs.test").await;
    let key = make_key(
        &app,
        &ours,
        json!({ "name": "k", "rules": whole(&mine), "transfer": true }),
    )
    .await;
    let reader = make_key(&app, &ours, json!({ "name": "r", "rules": whole(&mine) })).await;
    // UPDATE: another team's zone, an unserved one, and our own zone outside the key's rules
    // all answer NOTAUTH alike.
    for zone in ["theirs.test.", "nowhere.test.", "also-mine.test."] {
        let mut m = update_to(zone);
        add_txt(&mut m, &format!("x.{zone}"), "no");
        let r = send_tcp(&app, &key.sign(m)).await;
        assert_eq!(rcode(&r), ResponseCode::NotAuth, "{zone}");
        assert_eq!(tsig_of(&r).0, None, "a signed NOTAUTH, not a TSIG error");
    }
    assert!(app.udp("x.theirs.test.", RecordType::TXT).await.answers.is_empty());
    // AXFR: its own zone by key; the others NOTAUTH alike; a key without transfer REFUSED.
    let axfr = |zone: &str| crate::helpers::query(zone, RecordType::AXFR, false);
    let r = send_tcp(&app, &key.sign(axfr("mine.test."))).await;
    assert_eq!(rcode(&r), ResponseCode::NoError);
    assert!(r.answers.len() >= 4 && r.signature.is_some());
    for zone in ["theirs.test.", "nowhere.test.", "also-mine.test."] {
        assert_eq!(
            rcode(&send_tcp(&app, &key.sign(axfr(zone))).await),
            ResponseCode::NotAuth,
            "{zone}"
        );
    }
    for zone in ["mine.test.", "theirs.test.", "nowhere.test."] {
        assert_eq!(
            rcode(&send_tcp(&app, &reader.sign(axfr(zone))).await),
            ResponseCode::Refused,
            "{zone}"
        );
    }
}

#[tokio::test]
async fn changes_outside_the_keys_policy_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "pol.test").await;
    let rules = json!([{ "zone_id": zone, "names": ["_acme-challenge"], "subtrees": ["dev"], "types": ["TXT"] }]);
    let key = make_key(&app, &token, json!({ "name": "acme", "rules": rules })).await;
    let before = serial(&app, "pol.test.").await;
    let refused = [
        ("www.pol.test.", txt("x")),
        ("_acme-challenge.pol.test.", a("192.0.2.1")),
        ("x._acme-challenge.pol.test.", txt("x")),
    ];
    for (name, data) in refused {
        let mut m = update_to("pol.test.");
        add_txt(&mut m, "_acme-challenge.pol.test.", "fine"); // allowed, but not alone
        add(&mut m, name, 60, data);
        assert_eq!(
            rcode(&send_tcp(&app, &key.sign(m)).await),
            ResponseCode::Refused,
            "{name}"
        );
    }
    let mut m = update_to("pol.test.");
    m.authorities.push(rr(
        "_acme-challenge.pol.test.",
        DNSClass::ANY,
        0,
        RData::Update0(RecordType::ANY),
    ));
    assert_eq!(
        rcode(&send_tcp(&app, &key.sign(m)).await),
        ResponseCode::Refused,
        "every type at a name"
    );
    assert_eq!(serial(&app, "pol.test.").await, before, "nothing changed");
    for name in ["_acme-challenge.pol.test.", "dev.pol.test.", "a.b.dev.pol.test."] {
        let mut m = update_to("pol.test.");
        add_txt(&mut m, name, "token");
        assert_eq!(
            rcode(&send_tcp(&app, &key.sign(m)).await),
            ResponseCode::NoError,
            "{name}"
        );
    }
    // Outside the zone: NOTZONE.
    let mut m = update_to("pol.test.");
    add_txt(&mut m, "_acme-challenge.elsewhere.test.", "x");
    assert_eq!(rcode(&send_tcp(&app, &key.sign(m)).await), ResponseCode::NotZone);
}

#[tokio::test]
async fn record_rules_managed_records_and_caps_hold_for_updates() {
    let app = spawn_app_with(|c, _| c.limits.records_per_zone = 6).await;
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "rules.test").await;
    let key = make_key(&app, &token, json!({ "name": "k", "rules": whole(&zone) })).await;
    let mut m = update_to("rules.test.");
    add(&mut m, "www.rules.test.", 300, a("192.0.2.1"));
    assert_eq!(rcode(&send_tcp(&app, &key.sign(m)).await), ResponseCode::NoError);
    let before = serial(&app, "rules.test.").await;
    let cname = |target: &str| RData::CNAME(hickory_proto::rr::rdata::CNAME(Name::from_ascii(target).unwrap()));
    let ns = RData::NS(hickory_proto::rr::rdata::NS(Name::from_ascii("ns.evil.test.").unwrap()));
    type Build = Box<dyn Fn(&mut Message)>;
    let bad: Vec<(&str, Build)> = vec![
        (
            "a CNAME beside an A",
            Box::new(move |m| add(m, "www.rules.test.", 300, cname("x.test."))),
        ),
        (
            "a CNAME at the apex",
            Box::new(move |m| add(m, "rules.test.", 300, cname("x.test."))),
        ),
        (
            "NS at the apex",
            Box::new(move |m| add(m, "rules.test.", 300, ns.clone())),
        ),
        (
            "the apex NS set",
            Box::new(|m| delete_rrset(m, "rules.test.", RecordType::NS)),
        ),
        (
            "a type the API does not take",
            Box::new(|m| {
                add(
                    m,
                    "h.rules.test.",
                    300,
                    RData::NULL(hickory_proto::rr::rdata::NULL::with(vec![1])),
                )
            }),
        ),
    ];
    for (what, build) in bad {
        let mut m = update_to("rules.test.");
        build(&mut m);
        assert_eq!(
            rcode(&send_tcp(&app, &key.sign(m)).await),
            ResponseCode::Refused,
            "{what}"
        );
    }
    // The zone cap: 2 NS + 1 A now; 4 more would pass 6.
    let mut m = update_to("rules.test.");
    for i in 0..4 {
        add_txt(&mut m, &format!("t{i}.rules.test."), "x");
    }
    assert_eq!(
        rcode(&send_tcp(&app, &key.sign(m)).await),
        ResponseCode::Refused,
        "records_per_zone"
    );
    assert_eq!(serial(&app, "rules.test.").await, before, "nothing changed");
    // A CNAME replacing the A in the same message is fine.
    let mut m = update_to("rules.test.");
    delete_rrset(&mut m, "www.rules.test.", RecordType::A);
    add(&mut m, "www.rules.test.", 300, cname("elsewhere.test."));
    assert_eq!(rcode(&send_tcp(&app, &key.sign(m)).await), ResponseCode::NoError);
}

#[tokio::test]
async fn a_message_seen_again_gets_its_first_answer_and_changes_nothing() {
    let (app, token, zone, key) = with_key("replay.test").await;
    let mut m = update_to("replay.test.");
    prerequisite(&mut m, "once.replay.test.", DNSClass::NONE, RecordType::ANY);
    add_txt(&mut m, "once.replay.test.", "first");
    let m = key.sign(m);
    let (_, first) = send_udp_raw(&app, &m).await;
    assert_eq!(rcode(&first), ResponseCode::NoError);
    let after_first = serial(&app, "replay.test.").await;
    // Someone deletes it through the API; the captured message comes again.
    let records = app.get(&token, &format!("/v1/zones/{zone}/records")).await;
    let id = records
        .data()
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "TXT")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        app.delete(&token, &format!("/v1/zones/{zone}/records/{id}"))
            .await
            .status,
        204
    );
    let (raw, again) = send_udp_raw(&app, &m).await;
    assert_eq!(rcode(&again), ResponseCode::NoError, "the first answer, again");
    key.verify(&m, &raw);
    assert_eq!(
        serial(&app, "replay.test.").await,
        after_first + 1,
        "only the API's delete"
    );
    assert!(
        app.udp("once.replay.test.", RecordType::TXT).await.answers.is_empty(),
        "not re-applied"
    );
}

#[tokio::test]
async fn a_teams_keys_share_its_rate_and_other_teams_go_on() {
    let app = spawn_app_with(|c, _| {
        c.dns.update_rate_per_key = 100;
        c.dns.update_rate_per_team = 3;
    })
    .await;
    let ours = app.team("ours", &[]).await;
    let zone = app.zone(&ours, "team-rate.test").await;
    let keys = [
        make_key(&app, &ours, json!({ "name": "a", "rules": whole(&zone) })).await,
        make_key(&app, &ours, json!({ "name": "b", "rules": whole(&zone) })).await,
    ];
    let theirs = app.team("theirs", &[]).await;
    let their_zone = app.zone(&theirs, "other-rate.test").await;
    let their_key = make_key(&app, &theirs, json!({ "name": "c", "rules": whole(&their_zone) })).await;
    let mut codes = Vec::new();
    for i in 0..6 {
        let mut m = update_to("team-rate.test.");
        add_txt(&mut m, &format!("t{i}.team-rate.test."), "x");
        codes.push(rcode(&send_tcp(&app, &keys[i % 2].sign(m)).await));
    }
    let ok = codes.iter().filter(|c| **c == ResponseCode::NoError).count();
    assert!((3..=4).contains(&ok), "both keys spend one budget: {codes:?}");
    let mut m = update_to("other-rate.test.");
    add_txt(&mut m, "x.other-rate.test.", "x");
    assert_eq!(rcode(&send_tcp(&app, &their_key.sign(m)).await), ResponseCode::NoError);
}

#[tokio::test]
async fn a_name_holds_at_most_250_records_before_and_after_an_update() {
    let (app, token, zone, key) = with_key("crowd.test").await;
    let creates: Vec<serde_json::Value> = (0..249)
        .map(|i| json!({ "name": "crowd", "type": "TXT", "content": format!("r{i}"), "ttl": 300 }))
        .collect();
    let path = format!("/v1/zones/{zone}/records/batch");
    assert_eq!(app.post(&token, &path, json!({ "creates": creates })).await.status, 200);
    let mut m = update_to("crowd.test.");
    add_txt(&mut m, "crowd.crowd.test.", "the 250th");
    assert_eq!(rcode(&send_tcp(&app, &key.sign(m)).await), ResponseCode::NoError);
    let before = serial(&app, "crowd.test.").await;
    let mut m = update_to("crowd.test.");
    add_txt(&mut m, "crowd.crowd.test.", "the 251st");
    assert_eq!(
        rcode(&send_tcp(&app, &key.sign(m)).await),
        ResponseCode::Refused,
        "after"
    );
    let one_more = json!({ "name": "crowd", "type": "TXT", "content": "through the API", "ttl": 300 });
    assert_eq!(
        app.post(&token, &path, json!({ "creates": [one_more] })).await.status,
        200
    );
    let mut m = update_to("crowd.test.");
    delete_record(&mut m, "crowd.crowd.test.", txt("r0"));
    assert_eq!(
        rcode(&send_tcp(&app, &key.sign(m)).await),
        ResponseCode::Refused,
        "before"
    );
    assert_eq!(serial(&app, "crowd.test.").await, before + 1, "only the API's create");
    let mut m = update_to("crowd.test.");
    add_txt(&mut m, "elsewhere.crowd.test.", "fine");
    assert_eq!(
        rcode(&send_tcp(&app, &key.sign(m)).await),
        ResponseCode::NoError,
        "other names are fine"
    );
}

#[tokio::test]
async fn updates_past_a_keys_rate_are_refused_and_other_keys_go_on() {
    let app = spawn_app_with(|c, _| c.dns.update_rate_per_key = 3).await;
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "rate.test").await;
    let busy = make_key(&app, &token, json!({ "name": "busy", "rules": whole(&zone) })).await;
    let calm = make_key(&app, &token, json!({ "name": "calm", "rules": whole(&zone) })).await;
    let mut codes = Vec::new();
    for i in 0..8 {
        let mut m = update_to("rate.test.");
        add_txt(&mut m, &format!("r{i}.rate.test."), "x");
        codes.push(rcode(&send_tcp(&app, &busy.sign(m)).await));
    }
    let ok = codes.iter().filter(|c| **c == ResponseCode::NoError).count();
    assert!((3..=4).contains(&ok), "{codes:?}");
    assert!(codes.contains(&ResponseCode::Refused));
    let mut m = update_to("rate.test.");
    add_txt(&mut m, "calm.rate.test.", "x");
    assert_eq!(rcode(&send_tcp(&app, &calm.sign(m)).await), ResponseCode::NoError);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mut m = update_to("rate.test.");
    add_txt(&mut m, "later.rate.test.", "x");
    assert_eq!(
        rcode(&send_tcp(&app, &busy.sign(m)).await),
        ResponseCode::NoError,
        "the budget refills"
    );
}

/// A name in wire form.
fn wire_name(name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in name.trim_end_matches('.').split('.') {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

/// Appends a TSIG record (hmac-sha256, signed now) to the message in `msg`, by RFC 8945 §4.3
/// from the bytes up: for messages hickory cannot build (it compresses 120 names at most).
fn sign_raw(key: &Key, msg: &mut Vec<u8>) {
    let (name, alg) = (wire_name(&key.name), wire_name("hmac-sha256"));
    let time = now().to_be_bytes();
    let mut vars = name.clone();
    vars.extend_from_slice(&[0, 255, 0, 0, 0, 0]); // class ANY, TTL 0
    vars.extend_from_slice(&alg);
    vars.extend_from_slice(&time[2..]);
    vars.extend_from_slice(&[1, 44, 0, 0, 0, 0]); // fudge 300, error 0, other length 0
    let secret = data_encoding::BASE64.decode(key.secret.as_bytes()).unwrap();
    let hmac = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret);
    let mac = ring::hmac::sign(&hmac, &[msg.as_slice(), &vars].concat());
    let mut rdata = alg;
    rdata.extend_from_slice(&time[2..]);
    rdata.extend_from_slice(&[1, 44, 0, 32]);
    rdata.extend_from_slice(mac.as_ref());
    rdata.extend_from_slice(&msg[0..2]); // original id
    rdata.extend_from_slice(&[0, 0, 0, 0]);
    msg.extend_from_slice(&name);
    msg.extend_from_slice(&[0, 250, 0, 255, 0, 0, 0, 0]);
    msg.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    msg.extend_from_slice(&rdata);
    let count = u16::from_be_bytes([msg[10], msg[11]]) + 1;
    msg[10..12].copy_from_slice(&count.to_be_bytes());
}

/// Sends message octets over TCP and reads the response.
async fn tcp_raw(addr: std::net::SocketAddr, msg: &[u8]) -> Message {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(&(msg.len() as u16).to_be_bytes()).await.unwrap();
    s.write_all(msg).await.unwrap();
    let mut len = [0u8; 2];
    s.read_exact(&mut len).await.unwrap();
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).await.unwrap();
    Message::from_vec(&buf).unwrap()
}

#[tokio::test]
async fn an_update_with_more_records_than_a_batch_is_refused() {
    let (app, _token, _zone, key) = with_key("big.test").await;
    let before = serial(&app, "big.test.").await;
    // 5,001 deletes of the TXT RRset at the apex, each owner a pointer to the zone section.
    let build = |count: u16| {
        let mut msg = vec![0x12, 0x34, 0x28, 0, 0, 1, 0, 0];
        msg.extend_from_slice(&count.to_be_bytes());
        msg.extend_from_slice(&[0, 0]);
        msg.extend_from_slice(&wire_name("big.test"));
        msg.extend_from_slice(&[0, 6, 0, 1]); // SOA IN
        for _ in 0..count {
            msg.extend_from_slice(&[0xC0, 12, 0, 16, 0, 255, 0, 0, 0, 0, 0, 0]); // TXT ANY TTL 0
        }
        sign_raw(&key, &mut msg);
        msg
    };
    let addr = app.dns_addr();
    let good = tcp_raw(addr, &build(3)).await;
    assert_eq!(rcode(&good), ResponseCode::NoError, "the hand-signed message is good");
    let big = build(5_001);
    assert!(big.len() < 65_535, "{}", big.len());
    assert_eq!(rcode(&tcp_raw(addr, &big).await), ResponseCode::Refused);
    assert_eq!(serial(&app, "big.test.").await, before);
}

#[tokio::test]
async fn revoking_a_key_takes_effect_on_the_next_message() {
    let (app, token, _zone, key) = with_key("rev.test").await;
    let mut m = update_to("rev.test.");
    add_txt(&mut m, "a.rev.test.", "before");
    assert_eq!(rcode(&send_tcp(&app, &key.sign(m)).await), ResponseCode::NoError);
    assert_eq!(
        app.delete(&token, &format!("/v1/tsig-keys/{}", key.id)).await.status,
        204
    );
    let mut m = update_to("rev.test.");
    add_txt(&mut m, "b.rev.test.", "after");
    let r = send_tcp(&app, &key.sign(m)).await;
    assert_eq!(
        (rcode(&r), tsig_of(&r).0),
        (ResponseCode::NotAuth, Some(TsigError::BadKey))
    );
    assert!(app.udp("b.rev.test.", RecordType::TXT).await.answers.is_empty());
}

#[tokio::test]
async fn malformed_updates_are_formerr() {
    let (app, _token, _zone, key) = with_key("form.test").await;
    // Two zones.
    let mut m = update_to("form.test.");
    m.add_query(Query::query(Name::from_ascii("form.test.").unwrap(), RecordType::SOA));
    assert_eq!(rcode(&send_tcp(&app, &key.sign(m)).await), ResponseCode::FormErr);
    // A zone section that is not SOA.
    let mut m = update_to("form.test.");
    m.queries[0] = Query::query(Name::from_ascii("form.test.").unwrap(), RecordType::A);
    assert_eq!(rcode(&send_tcp(&app, &key.sign(m)).await), ResponseCode::FormErr);
    // A delete with a TTL.
    let mut m = update_to("form.test.");
    m.authorities
        .push(rr("x.form.test.", DNSClass::ANY, 60, RData::Update0(RecordType::A)));
    assert_eq!(rcode(&send_tcp(&app, &key.sign(m)).await), ResponseCode::FormErr);
    // Nothing at all is fine: NOERROR, nothing changed.
    let before = serial(&app, "form.test.").await;
    assert_eq!(
        rcode(&send_tcp(&app, &key.sign(update_to("form.test."))).await),
        ResponseCode::NoError
    );
    assert_eq!(serial(&app, "form.test.").await, before);
}
