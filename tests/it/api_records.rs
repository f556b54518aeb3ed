//! `/v1/zones/{id}/records`, checked against what DNS answers.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};
use serde_json::{Value, json};

use crate::helpers::{TestApp, answers, spawn_app};

fn serial(m: &hickory_proto::op::Message) -> u32 {
    match &m.answers[0].data {
        RData::SOA(s) => s.serial,
        other => panic!("not an SOA: {other:?}"),
    }
}

async fn record_ids(app: &TestApp, token: &str, zone: &str) -> Vec<Value> {
    app.get(token, &format!("/v1/zones/{zone}/records?limit=1000"))
        .await
        .data()
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn a_record_is_answered_by_dns_as_soon_as_each_call_returns() {
    let app = spawn_app().await;
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "live.test").await;
    let s0 = serial(&app.udp("live.test.", RecordType::SOA).await);

    let r = app.record(&token, &zone, "www", "A", "192.0.2.1").await;
    assert_eq!(r.status, 201);
    assert_eq!(r.data()["name"], "www.live.test");
    assert_eq!(r.data()["managed"], false);
    let id = r.id();
    assert_eq!(r.headers["location"], format!("/v1/zones/{zone}/records/{id}").as_str());
    assert_eq!(
        answers(&app.udp("www.live.test.", RecordType::A).await),
        ["www.live.test. A 192.0.2.1"]
    );
    assert_eq!(
        answers(&app.tcp("www.live.test.", RecordType::A).await),
        ["www.live.test. A 192.0.2.1"]
    );
    let s1 = serial(&app.udp("live.test.", RecordType::SOA).await);
    assert!(s1 > s0, "a create bumps the serial");

    let r = app
        .patch(
            &token,
            &format!("/v1/zones/{zone}/records/{id}"),
            json!({ "content": "192.0.2.2", "ttl": 120 }),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.data()["content"], "192.0.2.2");
    let m = app.udp("www.live.test.", RecordType::A).await;
    assert_eq!(answers(&m), ["www.live.test. A 192.0.2.2"]);
    assert_eq!(m.answers[0].ttl, 120);
    assert!(serial(&app.udp("live.test.", RecordType::SOA).await) > s1);

    let r = app
        .patch(
            &token,
            &format!("/v1/zones/{zone}/records/{id}"),
            json!({ "name": "web" }),
        )
        .await;
    assert_eq!(r.data()["name"], "web.live.test");
    assert_eq!(
        app.udp("www.live.test.", RecordType::A).await.metadata.response_code,
        ResponseCode::NXDomain
    );
    assert_eq!(
        answers(&app.udp("web.live.test.", RecordType::A).await),
        ["web.live.test. A 192.0.2.2"]
    );

    let r = app.delete(&token, &format!("/v1/zones/{zone}/records/{id}")).await;
    assert_eq!(r.status, 204);
    let m = app.udp("web.live.test.", RecordType::A).await;
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(
        app.get(&token, &format!("/v1/zones/{zone}/records/{id}")).await.status,
        404
    );
    assert_eq!(
        app.delete(&token, &format!("/v1/zones/{zone}/records/{id}"))
            .await
            .status,
        404
    );
}

#[tokio::test]
async fn every_record_type_is_accepted_and_answered() {
    let app = spawn_app().await;
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "types.test").await;
    let cases = [
        ("@", "AAAA", "2001:db8::1", "types.test.", RecordType::AAAA),
        ("@", "MX", "10 mail", "types.test.", RecordType::MX),
        ("@", "TXT", "v=spf1 -all", "types.test.", RecordType::TXT),
        (
            "_sip._tcp",
            "SRV",
            "10 60 5060 sip.types.test.",
            "_sip._tcp.types.test.",
            RecordType::SRV,
        ),
        (
            "@",
            "CAA",
            "0 issue \"letsencrypt.org\"",
            "types.test.",
            RecordType::CAA,
        ),
        (
            "alias",
            "CNAME",
            "elsewhere.example.",
            "alias.types.test.",
            RecordType::CNAME,
        ),
        ("sub", "NS", "ns1.elsewhere.example.", "sub.types.test.", RecordType::NS),
    ];
    for (name, t, content, qname, qtype) in cases {
        let r = app.record(&token, &zone, name, t, content).await;
        assert_eq!(r.status, 201, "{t}: {:?}", r.body);
        let m = app.udp(qname, qtype).await;
        let got = m.answers.len() + m.authorities.iter().filter(|r| r.record_type() == qtype).count();
        assert_eq!(got, 1, "{t} answered");
    }
    let mx = app.get(&token, &format!("/v1/zones/{zone}/records")).await;
    assert!(
        mx.data()
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["content"] == "10 mail.types.test.")
    );
}

#[tokio::test]
async fn managed_records_are_listed_and_cannot_be_changed() {
    let app = spawn_app().await;
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "managed.test").await;
    let list = record_ids(&app, &token, &zone).await;
    assert_eq!(list[0]["type"], "SOA");
    assert_eq!(list[0]["id"], zone.as_str());
    let managed: Vec<_> = list.iter().filter(|r| r["managed"] == true).collect();
    assert_eq!(managed.len(), 3, "SOA and two NS");
    for r in &managed {
        let path = format!("/v1/zones/{zone}/records/{}", r["id"].as_str().unwrap());
        let p = app.patch(&token, &path, json!({ "ttl": 60 })).await;
        assert_eq!((p.status.as_u16(), p.code()), (403, "managed_record"));
        assert!(
            p.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("managed by the platform")
        );
        let d = app.delete(&token, &path).await;
        assert_eq!((d.status.as_u16(), d.code()), (403, "managed_record"));
    }
    let r = app.record(&token, &zone, "@", "NS", "ns.evil.example.").await;
    assert_eq!(r.status, 422);
    assert_eq!(r.code(), "managed_record");
    assert_eq!(record_ids(&app, &token, &zone).await, list, "nothing changed");
    assert_eq!(app.udp("managed.test.", RecordType::NS).await.answers.len(), 2);
}

#[tokio::test]
async fn invalid_records_are_422_with_field_errors_and_change_nothing() {
    let app = spawn_app().await;
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "valid.test").await;
    assert_eq!(app.record(&token, &zone, "www", "A", "192.0.2.1").await.status, 201);
    assert_eq!(app.record(&token, &zone, "alias", "CNAME", "www").await.status, 201);
    let before = record_ids(&app, &token, &zone).await;
    let soa_before = app.udp("valid.test.", RecordType::SOA).await.answers[0].clone();
    let long_name = vec!["abcdefghij"; 24].join(".");
    let cases: Vec<(Value, &str)> = vec![
        (json!({"name": "x", "type": "A", "content": "300.1.2.3"}), "content"),
        (json!({"name": "x", "type": "A", "content": "2001:db8::1"}), "content"),
        (json!({"name": "x", "type": "MX", "content": "mail"}), "content"),
        (json!({"name": "x", "type": "A", "content": ""}), "content"),
        (
            json!({"name": "x.other.example.", "type": "A", "content": "192.0.2.1"}),
            "name",
        ),
        (json!({"name": long_name, "type": "A", "content": "192.0.2.1"}), "name"),
        (
            json!({"name": "a".repeat(64), "type": "A", "content": "192.0.2.1"}),
            "name",
        ),
        (
            json!({"name": "x", "type": "A", "content": "192.0.2.1", "ttl": 0}),
            "ttl",
        ),
        (
            json!({"name": "x", "type": "A", "content": "192.0.2.1", "ttl": 604801}),
            "ttl",
        ),
        (
            json!({"name": "@", "type": "CNAME", "content": "other.example."}),
            "type",
        ),
        (
            json!({"name": "www", "type": "CNAME", "content": "other.example."}),
            "type",
        ),
        (json!({"name": "alias", "type": "A", "content": "192.0.2.1"}), "type"),
        (
            json!({"name": "alias", "type": "CNAME", "content": "another.example."}),
            "type",
        ),
        (
            json!({"name": "x", "type": "SOA", "content": "a. b. 1 2 3 4 5"}),
            "type",
        ),
        (json!({"name": "x", "type": "BOGUS", "content": "1"}), "type"),
    ];
    for (body, field) in cases {
        let r = app
            .post(&token, &format!("/v1/zones/{zone}/records"), body.clone())
            .await;
        assert_eq!(r.status, 422, "{body}: {:?}", r.body);
        assert!(
            r.body["error"]["fields"][field].is_string(),
            "{body} names {field}: {:?}",
            r.body
        );
        assert!(!r.body["error"]["message"].as_str().unwrap().is_empty());
    }
    let dup = app.record(&token, &zone, "www", "A", "192.0.2.1").await;
    assert_eq!((dup.status.as_u16(), dup.code()), (409, "duplicate_record"));
    let www = before.iter().find(|r| r["name"] == "www.valid.test").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = app
        .patch(
            &token,
            &format!("/v1/zones/{zone}/records/{www}"),
            json!({ "name": "alias" }),
        )
        .await;
    assert_eq!(r.status, 422, "moving an A beside a CNAME is refused");
    let r = app
        .patch(
            &token,
            &format!("/v1/zones/{zone}/records/{www}"),
            json!({ "type": "AAAA" }),
        )
        .await;
    assert_eq!(r.status, 422, "a type change needs content");
    assert_eq!(record_ids(&app, &token, &zone).await, before, "the store is unchanged");
    assert_eq!(
        app.udp("valid.test.", RecordType::SOA).await.answers[0],
        soa_before,
        "the serial is unchanged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_creates_are_all_committed_and_served() {
    let app = std::sync::Arc::new(spawn_app().await);
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "busy.test").await;
    let mut tasks = Vec::new();
    for i in 0..100 {
        let (app, token, zone) = (app.clone(), token.clone(), zone.clone());
        tasks.push(tokio::spawn(async move {
            app.record(&token, &zone, &format!("h{i}"), "A", &format!("192.0.2.{}", i + 1))
                .await
                .status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 201);
    }
    let z = app.get(&token, &format!("/v1/zones/{zone}")).await;
    assert_eq!(z.data()["record_count"], 103);
    for i in 0..100 {
        let m = app.udp(&format!("h{i}.busy.test."), RecordType::A).await;
        assert_eq!(answers(&m), [format!("h{i}.busy.test. A 192.0.2.{}", i + 1)]);
    }
}

#[tokio::test]
async fn records_and_serials_survive_a_restart() {
    let mut app = spawn_app().await;
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "durable.test").await;
    app.record(&token, &zone, "www", "A", "192.0.2.7").await;
    let before = record_ids(&app, &token, &zone).await;
    let soa = app.udp("durable.test.", RecordType::SOA).await.answers[0].clone();
    app.restart().await;
    assert_eq!(record_ids(&app, &token, &zone).await, before);
    assert_eq!(
        answers(&app.udp("www.durable.test.", RecordType::A).await),
        ["www.durable.test. A 192.0.2.7"]
    );
    assert_eq!(app.udp("durable.test.", RecordType::SOA).await.answers[0], soa);
}

#[tokio::test]
async fn record_lists_page_without_skipping_or_repeating() {
    let app = spawn_app().await;
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "pages.test").await;
    for i in 0..25 {
        assert_eq!(
            app.record(&token, &zone, &format!("n{i}"), "A", "192.0.2.1")
                .await
                .status,
            201
        );
    }
    let mut ids = Vec::new();
    let mut path = format!("/v1/zones/{zone}/records?limit=1");
    let mut pages = 0;
    loop {
        let r = app.get(&token, &path).await;
        pages += 1;
        assert_eq!(r.body["meta"]["pagination"]["total"], 28);
        ids.extend(
            r.data()
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["id"].as_str().unwrap().to_string()),
        );
        match r.body["meta"]["pagination"]["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/zones/{zone}/records?limit=4&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(ids.len(), 28);
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 28);
    assert_eq!(ids[0], zone, "the SOA comes first");
    assert_eq!(pages, 1 + 7);
}

#[tokio::test]
async fn if_match_makes_concurrent_scripts_see_each_other() {
    let app = spawn_app().await;
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "etag.test").await;
    let z = app.get(&token, &format!("/v1/zones/{zone}")).await;
    let tag = z.headers["etag"].to_str().unwrap().to_string();
    assert_eq!(tag, format!("\"{}\"", z.data()["serial"]));
    let with = |tag: &str, body: Value| {
        app.client
            .post(app.url(&format!("/v1/zones/{zone}/records")))
            .bearer_auth(&token)
            .header("if-match", tag)
            .json(&body)
            .send()
    };
    // Script A writes with the tag it read...
    let a = with(&tag, json!({ "name": "a", "type": "A", "content": "192.0.2.1" }))
        .await
        .unwrap();
    assert_eq!(a.status(), 201);
    let new_tag = a.headers()["etag"].to_str().unwrap().to_string();
    assert_ne!(new_tag, tag);
    // ...so script B, holding the old one, is refused and changes nothing.
    let b = with(&tag, json!({ "name": "b", "type": "A", "content": "192.0.2.2" }))
        .await
        .unwrap();
    assert_eq!(b.status(), 412);
    assert_eq!(b.json::<Value>().await.unwrap()["error"]["code"], "precondition_failed");
    assert_eq!(
        app.udp("b.etag.test.", RecordType::A).await.metadata.response_code,
        ResponseCode::NXDomain
    );
    let id = app
        .get(&token, &format!("/v1/zones/{zone}/records"))
        .await
        .data()
        .as_array()
        .unwrap()
        .last()
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let patch = app
        .client
        .patch(app.url(&format!("/v1/zones/{zone}/records/{id}")))
        .bearer_auth(&token)
        .header("if-match", &tag)
        .json(&json!({ "content": "192.0.2.9" }))
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status(), 412);
    let del = app
        .client
        .delete(app.url(&format!("/v1/zones/{zone}/records/{id}")))
        .bearer_auth(&token)
        .header("if-match", "\"1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 412);
    assert_eq!(
        answers(&app.udp("a.etag.test.", RecordType::A).await),
        ["a.etag.test. A 192.0.2.1"],
        "unchanged"
    );
    assert_eq!(
        with("garbage", json!({ "name": "c", "type": "A", "content": "192.0.2.3" }))
            .await
            .unwrap()
            .status(),
        412
    );
    assert_eq!(
        with("*", json!({ "name": "c", "type": "A", "content": "192.0.2.3" }))
            .await
            .unwrap()
            .status(),
        201
    );
    let ok = with(
        &format!(
            "W/{}",
            app.get(&token, &format!("/v1/zones/{zone}")).await.headers["etag"]
                .to_str()
                .unwrap()
        ),
        json!({ "name": "d", "type": "A", "content": "192.0.2.4" }),
    )
    .await
    .unwrap();
    assert_eq!(ok.status(), 201, "a weak tag of the current serial matches");
}

#[tokio::test]
async fn a_batch_applies_entirely_as_one_change() {
    let app = spawn_app().await;
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "batch.test").await;
    let old = app.record(&token, &zone, "old", "A", "192.0.2.1").await.id();
    let keep = app.record(&token, &zone, "keep", "A", "192.0.2.2").await.id();
    let s0 = serial(&app.udp("batch.test.", RecordType::SOA).await);
    let creates: Vec<Value> = (0..1000)
        .map(|i| json!({ "name": format!("n{i}"), "type": "A", "content": "192.0.2.10" }))
        .collect();
    let r = app
        .post(
            &token,
            &format!("/v1/zones/{zone}/records/batch"),
            json!({ "deletes": [old], "patches": [{ "id": keep, "content": "192.0.2.3", "ttl": 60 }], "creates": creates }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.data()["created"].as_array().unwrap().len(), 1000);
    assert_eq!(r.data()["deleted"], json!([old]));
    assert_eq!(
        r.data()["serial"].as_u64().unwrap() as u32,
        s0 + 1,
        "one change, one serial"
    );
    assert_eq!(serial(&app.udp("batch.test.", RecordType::SOA).await), s0 + 1);
    assert_eq!(
        app.udp("old.batch.test.", RecordType::A).await.metadata.response_code,
        ResponseCode::NXDomain
    );
    assert_eq!(
        answers(&app.udp("keep.batch.test.", RecordType::A).await),
        ["keep.batch.test. A 192.0.2.3"]
    );
    assert_eq!(
        answers(&app.udp("n999.batch.test.", RecordType::A).await),
        ["n999.batch.test. A 192.0.2.10"]
    );
    assert_eq!(
        app.get(&token, &format!("/v1/zones/{zone}")).await.data()["record_count"],
        1004
    );
}

#[tokio::test]
async fn a_batch_with_one_bad_item_changes_nothing_and_names_it() {
    let app = spawn_app().await;
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "atomic.test").await;
    let a = app.record(&token, &zone, "a", "A", "192.0.2.1").await.id();
    let before = record_ids(&app, &token, &zone).await;
    let soa = app.udp("atomic.test.", RecordType::SOA).await.answers[0].clone();
    let path = format!("/v1/zones/{zone}/records/batch");
    let cases = [
        (
            json!({ "deletes": [a], "creates": [{ "name": "x", "type": "A", "content": "192.0.2.5" }, { "name": "y", "type": "A", "content": "999.1.1.1" }] }),
            "creates[1].content",
        ),
        (
            json!({ "creates": [{ "name": "z", "type": "A", "content": "192.0.2.5" }, { "name": "z", "type": "CNAME", "content": "a" }] }),
            "creates[1].type",
        ),
        (
            json!({ "deletes": [uuid::Uuid::now_v7()], "creates": [{ "name": "w", "type": "A", "content": "192.0.2.5" }] }),
            "deletes[0].id",
        ),
        (
            json!({ "patches": [{ "id": a, "name": "@", "type": "CNAME", "content": "x.example." }] }),
            "patches[0].type",
        ),
        (json!({ "deletes": [zone] }), "deletes[0].id"),
    ];
    for (body, field) in cases {
        let r = app.post(&token, &path, body.clone()).await;
        assert_eq!(
            (r.status.as_u16(), r.code()),
            (422, "invalid_batch"),
            "{body}: {}",
            r.body
        );
        assert!(
            r.body["error"]["fields"][field].is_string(),
            "{body} names {field}: {}",
            r.body
        );
    }
    assert_eq!(app.post(&token, &path, json!({})).await.status, 422, "an empty batch");
    let many: Vec<Value> = (0..5001)
        .map(|i| json!({ "name": format!("m{i}"), "type": "A", "content": "192.0.2.1" }))
        .collect();
    assert_eq!(
        app.post(&token, &path, json!({ "creates": many })).await.status,
        422,
        "over the cap"
    );
    let stale = app
        .client
        .post(app.url(&path))
        .bearer_auth(&token)
        .header("if-match", "\"1\"")
        .json(&json!({ "creates": [{ "name": "v", "type": "A", "content": "192.0.2.5" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 412);
    assert_eq!(record_ids(&app, &token, &zone).await, before, "the store is unchanged");
    assert_eq!(
        app.udp("atomic.test.", RecordType::SOA).await.answers[0],
        soa,
        "so is DNS"
    );
    assert_eq!(
        app.udp("x.atomic.test.", RecordType::A).await.metadata.response_code,
        ResponseCode::NXDomain
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_through_2500_records_while_others_write_skips_and_repeats_nothing() {
    let app = std::sync::Arc::new(spawn_app().await);
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "paging.test").await;
    for chunk in 0..3 {
        let creates: Vec<Value> = (chunk * 1000..(chunk * 1000 + 1000).min(2500))
            .map(|i| json!({ "name": format!("p{i}"), "type": "TXT", "content": format!("{i}") }))
            .collect();
        assert_eq!(
            app.post(
                &token,
                &format!("/v1/zones/{zone}/records/batch"),
                json!({ "creates": creates })
            )
            .await
            .status,
            200
        );
    }
    let listed = record_ids(&app, &token, &zone).await; // first 1000
    let victims: Vec<(String, String)> = listed
        .iter()
        .filter(|r| r["name"].as_str().unwrap().starts_with("p1"))
        .take(50)
        .map(|r| {
            (
                r["id"].as_str().unwrap().to_string(),
                r["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // Another client inserts and deletes while we page.
    let writer = {
        let (app, token, zone) = (app.clone(), token.clone(), zone.clone());
        tokio::spawn(async move {
            for (i, (victim, _)) in victims.iter().enumerate() {
                app.record(&token, &zone, &format!("new{i}"), "TXT", "x").await;
                app.delete(&token, &format!("/v1/zones/{zone}/records/{victim}")).await;
            }
            victims
        })
    };
    let mut seen: Vec<String> = Vec::new();
    let mut path = format!("/v1/zones/{zone}/records?limit=100");
    loop {
        let r = app.get(&token, &path).await;
        seen.extend(
            r.data()
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["name"].as_str().unwrap().to_string() + "|" + x["id"].as_str().unwrap()),
        );
        match r.body["meta"]["pagination"]["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/zones/{zone}/records?limit=100&cursor={c}"),
            None => break,
        }
        tokio::task::yield_now().await;
    }
    let deleted = writer.await.unwrap();
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "nothing repeated");
    for i in 0..2500 {
        let name = format!("p{i}.paging.test");
        let times = seen
            .iter()
            .filter(|s| s.split('|').next() == Some(name.as_str()))
            .count();
        if deleted.iter().any(|(_, n)| *n == name) {
            assert!(times <= 1, "{name}, deleted meanwhile, was seen {times} times");
        } else {
            assert_eq!(times, 1, "{name} lived through the paging and must be seen once");
        }
    }
}

#[tokio::test]
async fn txt_content_round_trips_byte_for_byte_through_the_api_and_dns() {
    let app = spawn_app().await;
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "txt.test").await;
    let cases: [(&str, &str, Vec<&[u8]>); 7] = [
        ("utf8", "café", vec!["café".as_bytes()]),
        ("ddd", r#""caf\195\169""#, vec!["café".as_bytes()]),
        (
            "quotes",
            r#""say \"hi\"" "back\\slash""#,
            vec![b"say \"hi\"", b"back\\slash"],
        ),
        ("bell", r#""\007bell""#, vec![b"\x07bell"]),
        ("two", r#""a" "b c""#, vec![b"a", b"b c"]),
        ("bidi", r#""\226\128\174x""#, vec!["\u{202E}x".as_bytes()]),
        ("raw", r#""\255\000""#, vec![&[255, 0]]),
    ];
    for (name, content, bytes) in cases {
        let r = app.record(&token, &zone, name, "TXT", content).await;
        assert_eq!(r.status, 201, "{name}: {}", r.body);
        let stored = r.data()["content"].as_str().unwrap().to_string();
        let m = app.udp(&format!("{name}.txt.test."), RecordType::TXT).await;
        let served: Vec<Vec<u8>> = match &m.answers[0].data {
            RData::TXT(t) => t.txt_data.iter().map(|s| s.to_vec()).collect(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            served,
            bytes.iter().map(|b| b.to_vec()).collect::<Vec<_>>(),
            "{name}: served as other bytes"
        );
        // The stored form reads back as the same octets: posting it again is a duplicate.
        let again = app.record(&token, &zone, name, "TXT", &stored).await;
        assert_eq!(
            again.code(),
            "duplicate_record",
            "{name}: {stored} is not the same content"
        );
    }
    let shown = app
        .get(&token, &format!("/v1/zones/{zone}/records"))
        .await
        .body
        .to_string();
    assert!(shown.contains(r#"\"café\""#), "UTF-8 is shown as itself: {shown}");
    assert!(
        shown.contains(r#"\\226\\128\\174x"#),
        "a bidi override is shown escaped"
    );
    for bad in [r#""open"#, r#""\256""#, r#""a"b"#] {
        assert_eq!(app.record(&token, &zone, "bad", "TXT", bad).await.status, 422, "{bad}");
    }
}

#[tokio::test]
async fn every_name_the_api_accepts_is_served() {
    let app = spawn_app().await;
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "names.test").await;
    for name in ["-dash", "trail-", "_sip._tcp", "x_y", "UPPER", "*.wild"] {
        let r = app.record(&token, &zone, name, "A", "192.0.2.7").await;
        assert_eq!(r.status, 201, "{name}: {}", r.body);
        let ask = format!("{}.names.test.", name.replace('*', "any"));
        let m = app.udp(&ask, RecordType::A).await;
        assert_eq!(
            m.answers.len(),
            1,
            "{name} accepted but not served: {:?}",
            m.metadata.response_code
        );
    }
}

#[tokio::test]
async fn ds_digests_of_the_wrong_length_and_deceptive_names_are_refused() {
    let app = spawn_app().await;
    let token = app.team("acme", &[]).await;
    let zone = app.zone(&token, "ds.test").await;
    let good = format!("60485 13 2 {}", "ab".repeat(32));
    assert_eq!(app.record(&token, &zone, "sub", "DS", &good).await.status, 201);
    for bad in [
        format!("60485 13 2 {}", "ab".repeat(31)),
        format!("60485 13 4 {}", "ab".repeat(32)),
        format!("60485 13 9 {}", "ab".repeat(32)),
    ] {
        let r = app.record(&token, &zone, "sub", "DS", &bad).await;
        assert_eq!((r.status.as_u16(), r.code()), (422, "invalid_record"), "{bad}");
    }
    // The zone's own DS is the parent's to serve.
    let r = app.record(&token, &zone, "@", "DS", &good).await;
    assert_eq!((r.status.as_u16(), r.code()), (422, "invalid_record"), "{}", r.body);
    assert!(r.body.to_string().contains("parent"), "{}", r.body);
    for name in ["admin\u{202E}gpj.exe", "zero\u{200B}width"] {
        assert_eq!(
            app.post(&token, "/v1/projects", serde_json::json!({ "name": name }))
                .await
                .status,
            422,
            "{name:?}"
        );
        assert_eq!(
            app.post(&token, "/v1/tokens", serde_json::json!({ "name": name }))
                .await
                .status,
            422,
            "{name:?}"
        );
    }
}
